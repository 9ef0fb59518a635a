# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vmi_info module: vm_info's find, wait and summarize, for VirtualMachineInstances."""

from __future__ import annotations

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows import vm_info


def argument_spec():
    return vm_info.argument_spec("VirtualMachineInstance")


class VmiInfoRunner(vm_info.VmInfoRunner):
    kind = "VirtualMachineInstance"
    resource = res.VMI
