# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every lookup plugin of the collection does around its own read: refuse unknown keywords,
set the options, connect, show the client's warnings, turn a KubevirtError into an AnsibleError
(one sentence)."""

from __future__ import annotations

from ansible.errors import AnsibleError

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import KubevirtError, unknown_name_message
from ansible_collections.virtops.kubevirt.plugins.plugin_utils.options import unknown_names


def set_lookup_options(plugin, variables, kwargs):
    """``plugin.set_options`` after refusing keywords the lookup does not document (Ansible would drop
    them: ``namespce='demo'`` searched the default namespace)."""
    unknown, known = unknown_names(kwargs, plugin)
    if unknown:
        raise AnsibleError("lookup('%s'): %s" % (plugin.ansible_name or plugin._load_name, unknown_name_message(
            "keyword", unknown[0], known - {"_terms"})))
    plugin.set_options(var_options=variables, direct=kwargs)


def run_lookup(connect, warn, read):
    """``connect()`` -> Client; its warnings go to ``warn``; returns ``read(client)``."""
    try:
        client = connect()
        for warning in client.warnings:
            warn(warning)
        return read(client)
    except KubevirtError as exc:
        raise AnsibleError(str(exc))
