#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_nic
short_description: Attach or detach a Multus (bridge) or SR-IOV network interface of a KubeVirt VM
version_added: 0.1.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Adds one interface with its C(multus) network to a C(VirtualMachine)'s template, or removes it, without touching
    the rest of the VM. The write reads the VM and updates it guarded by its resourceVersion (re-done on a
    conflict), so other changes to the VM are kept.
  - On a running VM, KubeVirt (with its default C(LiveUpdate) rollout strategy) hot-plugs bridge and SR-IOV
    interfaces - the VM controller adds the interface to the VMI, and a live migration moves the VM into a
    virt-launcher pod that has the new interface (always for SR-IOV; for bridge interfaces unless the Multus dynamic
    networks controller plugs it in place). The result says which applies - RV(migration_required) when the
    interface is not on the VMI yet, RV(restart_required) when KubeVirt asks for a restart (its C(RestartRequired)
    condition, for example with the C(Stage) rollout strategy). With O(migrate=true) the task migrates the VM
    itself and waits for the migration.
  - Removing a bridge interface from a running VM marks it C(state - absent); KubeVirt unplugs it from the guest.
    The entry leaves the spec when the task runs again while the VM is stopped. Other interfaces (SR-IOV) are
    removed from the template and need a restart.
  - A NetworkAttachmentDefinition that does not exist fails the task before anything is changed, naming it.
extends_documentation_fragment:
  - virtops.kubevirt.auth
options:
  vm:
    description:
      - Name of the VirtualMachine.
    type: str
    required: true
    aliases: [vm_name]
  namespace:
    description:
      - Namespace of the VM. Default the namespace of the kubeconfig context, else V(default).
    type: str
  name:
    description:
      - Name of the interface and its network in the VM (an RFC 1123 label, for example V(br1)).
    type: str
    required: true
  state:
    description:
      - V(present) attaches the interface; V(absent) detaches it.
    type: str
    choices: [present, absent]
    default: present
  network_name:
    description:
      - The NetworkAttachmentDefinition, V(name) (in the VM's namespace) or V(namespace/name). Required with
        O(state=present).
    type: str
  type:
    description:
      - V(multus) (a bridge-bound interface by default) or V(sriov) (an SR-IOV VF, binding C(sriov)).
    type: str
    choices: [multus, sriov]
    default: multus
  binding:
    description:
      - The interface binding. Default V(bridge) for V(multus), V(sriov) for V(sriov); another name is used as a
        network binding plugin (C(binding.name)), which must be registered in the cluster's KubeVirt CR
        (checked before the VM is changed, when the credentials may list C(kubevirts)).
    type: str
  mac:
    description:
      - MAC address of the interface, for example V(02:00:00:00:10:01).
    type: str
  model:
    description:
      - NIC model (V(virtio), V(e1000e)...). Hot-plug needs V(virtio) (the default).
    type: str
  migrate:
    description:
      - When the interface was hot-plugged into a running VM and is not on the VMI yet (RV(migration_required)),
        live-migrate the VM and wait for the migration (up to O(wait_timeout)), so the guest gets it.
    type: bool
    default: false
  wait_timeout:
    description:
      - How many seconds to wait at most for the migration of O(migrate) (a watch, recorded in RV(progress));
        a positive number.
    type: int
    default: 300
attributes:
  check_mode:
    description: The template change is a server-side dry run; nothing changes and no migration is made.
    support: full
  diff_mode:
    description: The VM before and after (cloud-init data redacted).
    support: full
seealso:
  - module: virtops.kubevirt.network
  - module: virtops.kubevirt.vm
  - module: virtops.kubevirt.vm_power
notes:
  - An interface added by this module is removed again when the M(virtops.kubevirt.vm) module later applies a
    O(virtops.kubevirt.vm#module:networks) list that does not name it - manage a VM's networks with one of the two.
  - Needs C(get) and C(update) on C(virtualmachines), C(get) on C(network-attachment-definitions), and for
    O(migrate) C(update) on C(virtualmachines/migrate) and C(list)/C(watch) on C(virtualmachineinstancemigrations).
"""

EXAMPLES = r"""
- name: Add a second NIC on the br1-net bridge network to a running VM, and migrate so the guest gets it
  virtops.kubevirt.vm_nic:
    vm: web1
    namespace: demo
    name: br1
    network_name: br1-net
    mac: "02:00:00:00:10:01"
    migrate: true
  register: nic

- name: Tell what KubeVirt needed
  ansible.builtin.debug:
    msg: "restart: {{ nic.restart_required }}, migration: {{ nic.migration_required }} - {{ nic.live_update }}"

- name: An SR-IOV interface from another namespace's network (applied at the next restart or migration)
  virtops.kubevirt.vm_nic:
    vm: dpdk1
    namespace: demo
    name: fast0
    type: sriov
    network_name: sriov-infra/sriov-net

- name: Remove the bridge NIC (hot-unplug on a running VM)
  virtops.kubevirt.vm_nic:
    vm: web1
    namespace: demo
    name: br1
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the interface was added, changed or removed (or a migration made); would be, in check mode.
  returned: always
  type: bool
method:
  description: V(spec) (template change), V(unplug) (marked C(state - absent) for hot-unplug) or V(none).
  returned: success
  type: str
vm:
  description: The VirtualMachine after the task (cloud-init data redacted).
  returned: success
  type: dict
interface:
  description: The interface as written to the VM (null after removal of one that was not there).
  returned: success
  type: dict
  sample: {name: br1, bridge: {}, macAddress: "02:00:00:00:10:01"}
restart_required:
  description: Whether the running VM needs a restart to get the change (KubeVirt's RestartRequired condition).
  returned: success
  type: bool
migration_required:
  description: Whether the interface was added to a running VM but is not on its VMI yet - a live migration
    applies it (see O(migrate)).
  returned: success
  type: bool
live_update:
  description: What KubeVirt does with the change on the running VM, in a sentence (null when the VM does not run
    or a restart is needed).
  returned: success
  type: str
migration:
  description: With O(migrate), the migration made (C(name), C(phase), C(source_node), C(target_node)); null when
    none was needed.
  returned: when O(migrate=true)
  type: dict
diff:
  description: The VM before and after, without server-owned fields.
  returned: in diff mode
  type: dict
progress:
  description: The waits made - what was awaited, seconds, result, watches and events.
  returned: always
  type: list
  elements: dict
api_requests:
  description: Number of HTTP requests the task sent to the API server.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtops.kubevirt.plugins.module_utils.runner import run_module
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.vm_nic import VmNicRunner, argument_spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, VmNicRunner)


if __name__ == "__main__":
    main()
