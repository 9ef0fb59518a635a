#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_clone
short_description: Clone a KubeVirt VM or VM snapshot into a new VM (VirtualMachineClone)
version_added: 0.2.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Creates a C(VirtualMachineClone) (clone.kubevirt.io) named O(name) that copies a VM (O(vm)) or a VM snapshot
    (O(snapshot)) into a new VM O(target), and waits until the clone C(Succeeded), recording its phases
    (C(SnapshotInProgress), C(RestoreInProgress), C(CreatingTargetVM), C(Succeeded)) in RV(progress).
  - As KubeVirt does it - a clone of a VM takes a temporary snapshot of it and restores that into the new VM, then
    deletes the snapshot and restore. The new VM gets new MAC addresses (unless O(new_macs) gives them), a new
    SMBIOS serial (or O(new_smbios_serial)) and firmware UUID, and the source's labels and annotations except those
    the filters leave out. It is created stopped, with copies of the source's disks.
  - Every PVC and DataVolume disk of the source VM must be snapshottable (a storage class with a
    VolumeSnapshotClass), and KubeVirt's C(Snapshot) feature gate must be on; the task checks what it can before
    anything is written and fails with one sentence otherwise. A source VM made a moment ago whose DataVolumes'
    claims KubeVirt has not seen yet (it says C(PVC not found)) is waited for, up to O(wait_timeout).
  - Cloning into a VM name that exists is an error, raised before anything is written. Running the task again
    once the clone exists changes nothing (a clone is done once; asking another spec of it is an error).
  - O(state=absent) deletes the clone object only, never the VM it made.
extends_documentation_fragment:
  - virtops.kubevirt.auth
options:
  name:
    description: Name of the VirtualMachineClone object.
    type: str
    required: true
  namespace:
    description: Namespace of the clone, its source and the new VM. Default the kubeconfig context's, else V(default).
    type: str
  state:
    description: V(present) clones (once); V(absent) deletes the clone object.
    type: str
    choices: [present, absent]
    default: present
  vm:
    description: The VirtualMachine to clone. One of O(vm) and O(snapshot) is required with O(state=present).
    type: str
  snapshot:
    description: The VirtualMachineSnapshot to clone (a VM as it was when the snapshot was taken).
    type: str
  target:
    description: Name of the new VM; required with O(state=present). It must not exist.
    type: str
  new_macs:
    description:
      - MAC addresses for the new VM's interfaces, by interface name (for example V(default) with V(02:00:00:aa:bb:01)). Interfaces
        not named get a new MAC address.
      - They are written with dashes (V(02-00-00-aa-bb-01)), a form KubeVirt takes; KubeVirt's restore webhook refuses
        the patch a MAC address with colons would make (its patch check allows one colon per key and value).
    type: dict
  new_smbios_serial:
    description: SMBIOS serial of the new VM (when the source has firmware settings). Default a new one.
    type: str
  label_filters:
    description:
      - Which of the source VM's labels the new VM keeps. Each filter is matched (as a regular expression, anywhere
        in the key) against the label keys; V(*) keeps every label, V(!KEY) leaves out the keys it matches
        (applied after the others). Default all labels are kept.
      - C(!) may only start a filter and C(*) may only end it (KubeVirt's rules).
    type: list
    elements: str
  annotation_filters:
    description: As O(label_filters), for the VM's annotations.
    type: list
    elements: str
  template_label_filters:
    description: As O(label_filters), for the labels of the VM's template (which its VMIs get).
    type: list
    elements: str
  template_annotation_filters:
    description: As O(label_filters), for the annotations of the VM's template.
    type: list
    elements: str
  labels:
    description: Labels of the clone object (merged in).
    type: dict
  wait:
    description: Wait until the clone C(Succeeded) (a watch), recording its phases in RV(progress).
    type: bool
    default: true
  wait_timeout:
    description: How many seconds to wait at most; a positive number.
    type: int
    default: 300
notes:
  - Needs RBAC to create and read C(virtualmachineclones) (clone.kubevirt.io) and to read VirtualMachines and
    VirtualMachineSnapshots. See docs/rbac.md.
seealso:
  - module: virtops.kubevirt.vm_export
  - name: KubeVirt clone API
    description: VirtualMachineClone in the KubeVirt user guide.
    link: https://kubevirt.io/user-guide/storage/clone_api/
"""

EXAMPLES = r"""
- name: Make web2 from the golden VM web-golden
  virtops.kubevirt.vm_clone:
    name: web2-from-golden
    namespace: prod
    vm: web-golden
    target: web2
    label_filters: ["*", "!golden"]

- name: Clone a snapshot with a fixed MAC address and serial
  virtops.kubevirt.vm_clone:
    name: db-restore-test
    namespace: prod
    snapshot: db1-nightly
    target: db1-test
    new_macs:
      default: 02:00:00:aa:bb:01
    new_smbios_serial: db1-test

- name: Remove the clone object (the VM it made stays)
  virtops.kubevirt.vm_clone:
    name: web2-from-golden
    namespace: prod
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the clone was created, relabelled or deleted.
  returned: always
  type: bool
method:
  description: V(create), V(patch) (labels), V(delete) or V(none).
  returned: always
  type: str
clone:
  description: The clone (None after deletion).
  returned: always
  type: dict
  contains:
    name: {description: Name., type: str}
    namespace: {description: Namespace., type: str}
    source: {description: "The source: kind and name.", type: dict}
    target: {description: The new VM's name., type: str}
    phase: {description: "SnapshotInProgress, RestoreInProgress, CreatingTargetVM, Succeeded or Failed (Pending before KubeVirt starts).", type: str}
    succeeded: {description: Phase is Succeeded., type: bool}
    reason: {description: "Reason of the Ready condition (Ready, Still processing, or why the clone is pending or failed).", type: str}
    pending: {description: KubeVirt keeps the clone pending (see reason)., type: bool}
    snapshot: {description: The temporary snapshot while it exists., type: str}
    restore: {description: The temporary restore while it exists., type: str}
  sample:
    name: web2-from-golden
    namespace: prod
    source: {kind: VirtualMachine, name: web-golden}
    target: web2
    phase: Succeeded
    succeeded: true
    reason: Ready
    pending: false
    snapshot: null
    restore: null
target_vm:
  description: Name of the new VM.
  returned: with O(state=present)
  type: str
progress:
  description: The wait (waited_for, seconds, result, phases - each phase, and a pending reason, with the second it was first seen).
  returned: always
  type: list
  elements: dict
diff:
  description: The clone object before and after, in diff mode.
  returned: in diff mode
  type: dict
api_requests:
  description: Number of HTTP requests the task sent to the API server.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtops.kubevirt.plugins.module_utils.runner import run_module
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.vm_clone import (
    MUTUALLY_EXCLUSIVE,
    VmCloneRunner,
    argument_spec,
)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), mutually_exclusive=MUTUALLY_EXCLUSIVE,
                           supports_check_mode=True)
    run_module(module, VmCloneRunner)


if __name__ == "__main__":
    main()
