# Copyright (c) virtops.kubevirt developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs virtops.kubevirt.vm_pool in Ansible's worker when the task runs locally (plugin_utils/in_process.py)."""

from __future__ import annotations

from ansible_collections.virtops.kubevirt.plugins.plugin_utils.in_process import InProcessModuleAction


class ActionModule(InProcessModuleAction):
    pass
