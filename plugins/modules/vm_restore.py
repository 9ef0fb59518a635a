#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_restore
short_description: Restore a KubeVirt VirtualMachine from a snapshot (VirtualMachineRestore)
version_added: 0.2.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Creates a C(VirtualMachineRestore) (C(snapshot.kubevirt.io/v1beta1)) of a snapshot taken with
    M(virtops.kubevirt.vm_snapshot) and waits until KubeVirt reports it complete.
  - Restores onto the snapshot's own VM (the default) or onto a new VM named by O(vm), which KubeVirt creates
    (stopped). KubeVirt makes new claims from the snapshot's C(VolumeSnapshot)s and points the VM's disks at them.
  - KubeVirt restores only a VM that does not run. By default a running VM fails the task with one sentence; with
    O(stop_vm=true) the task stops it through virt-api (with the caller's permissions - a caller without
    C(update) on C(virtualmachines/stop) gets the API's refusal, before anything is created), restores, and starts
    it again (O(start_vm)).
  - Checked before the first write - the snapshot exists and is ready to use, O(vm) is the snapshot's own VM or
    does not exist (KubeVirt refuses to restore over another VM), and KubeVirt would admit the restore (a
    server-side dry run - the C(Snapshot) feature gate, the caller's permission, no other restore of the VM in
    progress), so a refusal never comes after the VM was stopped for it.
  - Idempotent by name - a restore of this name, snapshot and VM that exists is waited for if it is unfinished and
    left alone when complete (C(changed=false)); one of another snapshot or VM fails the task. Check mode and diff
    mode are supported.
extends_documentation_fragment:
  - virtops.kubevirt.auth
options:
  name:
    description:
      - Name of the C(VirtualMachineRestore).
    type: str
    required: true
  namespace:
    description:
      - Namespace of the restore, the snapshot and the VM. Default the namespace of the kubeconfig context, else
        V(default).
    type: str
  snapshot:
    description:
      - Name of the C(VirtualMachineSnapshot) to restore.
    type: str
    required: true
  vm:
    description:
      - The VM to restore onto. Default the snapshot's own VM. A name that does not exist makes a new VM.
    type: str
  stop_vm:
    description:
      - Stop the target VM when it runs (virt-api's C(stop)), instead of failing.
    type: bool
    default: false
  start_vm:
    description:
      - With O(stop_vm=true), start the VM again after the restore (the default when the task stopped it). Set
        V(false) to leave it stopped.
    type: bool
  wait:
    description:
      - Wait until the restore is complete (always done when the task stopped the VM, to start it again).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait (for the stop, the restore and the start, each).
    type: int
    default: 300
notes:
  - Needs C(get), C(create), C(patch), C(watch) on C(virtualmachinerestores) and C(get) on
    C(virtualmachinesnapshots) (C(snapshot.kubevirt.io)), C(get) and C(watch) on C(virtualmachines) and
    C(virtualmachineinstances); with O(stop_vm=true) also C(update) on C(virtualmachines/stop) and
    C(virtualmachines/start) (C(subresources.kubevirt.io)); see C(docs/rbac/day-two.yml).
seealso:
  - module: virtops.kubevirt.vm_snapshot
  - module: virtops.kubevirt.vm_power
"""

EXAMPLES = r"""
- name: Roll web1 back to its snapshot, stopping and starting it
  virtops.kubevirt.vm_restore:
    name: web1-rollback-1
    namespace: demo
    snapshot: web1-before-upgrade
    stop_vm: true

- name: Make a new VM web1-copy from the snapshot (left stopped)
  virtops.kubevirt.vm_restore:
    name: web1-copy-from-snapshot
    namespace: demo
    snapshot: web1-before-upgrade
    vm: web1-copy
"""

RETURN = r"""
restore:
  description: The restore as last seen - C(name), C(namespace), C(snapshot), C(vm), C(complete), C(restore_time),
    C(failed), C(message) (KubeVirt's last reason) and C(volumes) (C(name), the new C(claim), the
    C(volume_snapshot) it came from).
  returned: always
  type: dict
  sample: {name: web1-rollback-1, namespace: demo, snapshot: web1-before-upgrade, vm: web1, complete: true,
           restore_time: "2026-12-06T11:05:00Z", failed: false, message: Operation complete,
           volumes: [{name: rootdisk, claim: restore-4c1d-rootdisk, volume_snapshot: vmsnapshot-0f1e-volume-rootdisk}]}
new_vm:
  description: Whether the target VM did not exist before (KubeVirt created it).
  returned: always
  type: bool
vm_stopped:
  description: Whether the task stopped the VM (or would, in check mode).
  returned: always
  type: bool
vm_started:
  description: Whether the task started the VM again after the restore (or would, in check mode).
  returned: always
  type: bool
vm:
  description: The target VirtualMachine after the restore.
  returned: success, not in check mode
  type: dict
resource:
  description: The C(VirtualMachineRestore) object as last seen (null in check mode).
  returned: always
  type: dict
method:
  description: What the task did - V(create) or V(none).
  returned: always
  type: str
diff:
  description: The restore object before and after, in diff mode.
  returned: when diff mode is on
  type: dict
progress:
  description: The waits made (the VM stopping, the restore, the VM starting).
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
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.vm_restore import (
    VmRestoreRunner,
    argument_spec,
)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, VmRestoreRunner)


if __name__ == "__main__":
    main()
