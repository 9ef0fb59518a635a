# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every lookup plugin of the collection does around its own read: connect, show the
client's warnings, turn a KubevirtError into an AnsibleError (one sentence)."""

from __future__ import annotations

from ansible.errors import AnsibleError

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import KubevirtError


def run_lookup(connect, warn, read):
    """``connect()`` -> Client; its warnings go to ``warn``; returns ``read(client)``."""
    try:
        client = connect()
        for warning in client.warnings:
            warn(warning)
        return read(client)
    except KubevirtError as exc:
        raise AnsibleError(str(exc))
