#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: instancetype
short_description: Manage KubeVirt instance types and preferences
version_added: 0.1.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Creates, updates or deletes a KubeVirt C(VirtualMachineInstancetype), C(VirtualMachineClusterInstancetype),
    C(VirtualMachinePreference) or C(VirtualMachineClusterPreference) (C(instancetype.kubevirt.io/v1beta1)), which
    VMs name in O(virtops.kubevirt.vm#module:instancetype) and O(virtops.kubevirt.vm#module:preference).
  - An instance type's spec comes from O(cpu) and O(memory), with O(spec) merged over them; a preference's from
    O(spec). Every key of the spec is checked against KubeVirt v1.8's schema before anything is written, so a
    misspelt key is an error rather than a field the API server drops.
  - Writes use server-side apply; C(changed) compares the object before and after without server-owned fields.
  - A VM keeps a copy of the instance type and preference it started with (a C(ControllerRevision)), so changing
    or deleting one does not change VMs that use it; the task warns and names them.
extends_documentation_fragment:
  - virtops.kubevirt.auth
options:
  name:
    description:
      - Name of the object.
    type: str
    required: true
  namespace:
    description:
      - Namespace of a V(VirtualMachineInstancetype) or V(VirtualMachinePreference). Default the namespace of
        the kubeconfig context, else V(default). Ignored (with a warning) for the cluster-wide kinds.
    type: str
  kind:
    description:
      - Which of KubeVirt's four kinds. The C(Cluster) kinds are cluster-wide (they need cluster-wide rights); a VM
        names them without C(kind) (KubeVirt's default) and the namespaced ones with C(kind).
    type: str
    required: true
    choices: [VirtualMachineInstancetype, VirtualMachineClusterInstancetype, VirtualMachinePreference,
              VirtualMachineClusterPreference]
  state:
    description:
      - V(present) creates or updates it; V(absent) deletes it (the task warns when VMs use it).
    type: str
    choices: [present, absent]
    default: present
  cpu:
    description:
      - The instance type's CPU (C(spec.cpu)); C(guest) is required for an instance type (in O(cpu) or O(spec)).
      - Not for preferences.
    type: dict
    suboptions:
      guest:
        description: Number of vCPUs (C(spec.cpu.guest)), laid out as the VM's preference says (sockets by default).
        type: int
      max_sockets:
        description: The most sockets a VM of this type can get without a restart (C(spec.cpu.maxSockets)).
        type: int
      model:
        description: CPU model, for example V(host-passthrough).
        type: str
      dedicated_cpu_placement:
        description: Pin each vCPU to a host CPU (C(dedicatedCPUPlacement)).
        type: bool
      isolate_emulator_thread:
        description: Give QEMU's emulator thread a CPU of its own (C(isolateEmulatorThread)).
        type: bool
  memory:
    description:
      - The instance type's memory (C(spec.memory)); C(guest) is required for an instance type.
      - Not for preferences.
    type: dict
    suboptions:
      guest:
        description: Guest memory as a Kubernetes quantity, for example V(2Gi).
        type: str
      max_guest:
        description: The most memory a VM of this type can get without a restart (C(spec.memory.maxGuest)).
        type: str
      overcommit_percent:
        description: Percent of the guest memory not requested from the node (C(overcommitPercent), 0-100).
        type: int
  spec:
    description:
      - The spec as KubeVirt writes it (camelCase), merged over what O(cpu) and O(memory) build; for a preference
        the whole spec, for example C(cpu.preferredCPUTopology) or C(devices.preferredDiskBus).
      - Unknown keys are errors (KubeVirt v1.8's C(v1beta1) schema).
    type: dict
  labels:
    description:
      - Labels of the object (merged in, as the other modules do).
    type: dict
  annotations:
    description:
      - Annotations of the object.
    type: dict
notes:
  - Check mode and diff mode are supported. Check mode sends the write as a server-side dry run.
seealso:
  - module: virtops.kubevirt.vm
"""

EXAMPLES = r"""
- name: A namespaced instance type with 2 vCPUs and 4Gi that can grow to 4 sockets / 16Gi live
  virtops.kubevirt.instancetype:
    name: web-medium
    namespace: demo
    kind: VirtualMachineInstancetype
    cpu:
      guest: 2
      max_sockets: 4
    memory:
      guest: 4Gi
      max_guest: 16Gi

- name: A cluster-wide preference
  virtops.kubevirt.instancetype:
    name: virtio-sockets
    kind: VirtualMachineClusterPreference
    spec:
      cpu:
        preferredCPUTopology: preferSockets
      devices:
        preferredDiskBus: virtio
        preferredInterfaceModel: virtio

- name: A VM that uses them
  virtops.kubevirt.vm:
    name: web1
    namespace: demo
    instancetype:
      name: web-medium
      kind: VirtualMachineInstancetype
    preference: virtio-sockets
    disks:
      - name: root
        image: quay.io/containerdisks/fedora:41

- name: Delete the instance type (VMs that use it keep their copy; the task warns and names them)
  virtops.kubevirt.instancetype:
    name: web-medium
    namespace: demo
    kind: VirtualMachineInstancetype
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the object was created, changed or deleted (would be, in check mode).
  returned: always
  type: bool
method:
  description: What was done - V(create), V(apply), V(delete) or V(none).
  returned: success
  type: str
object:
  description: The object after the task; null after deletion.
  returned: success
  type: dict
used_by:
  description: The VMs (C(namespace/name)) that name the deleted object or keep a copy of it, as far as the
    credentials may list them.
  returned: when O(state=absent)
  type: list
  elements: str
diff:
  description: Before and after, without server-owned fields.
  returned: in diff mode
  type: dict
api_requests:
  description: Number of HTTP requests the task sent to the API server.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtops.kubevirt.plugins.module_utils.runner import run_module
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.instancetype import (
    InstancetypeRunner,
    argument_spec,
)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, InstancetypeRunner)


if __name__ == "__main__":
    main()
