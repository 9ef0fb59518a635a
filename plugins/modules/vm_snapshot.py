#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_snapshot
short_description: Take or delete a snapshot of a KubeVirt VirtualMachine (VirtualMachineSnapshot)
version_added: 0.2.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Makes a C(VirtualMachineSnapshot) (C(snapshot.kubevirt.io/v1beta1)) of a VM present or absent, and waits until
    KubeVirt reports it C(readyToUse).
  - KubeVirt takes the snapshot - the VM's spec and one CSI C(VolumeSnapshot) per disk on a storage class that has
    a C(VolumeSnapshotClass). A running VM with a guest agent has its file systems frozen while the volumes are
    snapshotted and thawed after; the C(freeze) key of RV(snapshot) says what happened.
  - The snapshot is named by the task, so it is idempotent - a second run finds the snapshot of the same VM and
    reports C(changed=false); a snapshot of that name of another VM fails the task, it is never replaced.
  - Before creating, the VM must exist and KubeVirt must be able to snapshot each of its disks (the VM's
    C(status.volumeSnapshotStatuses)); otherwise the task fails naming the disks and KubeVirt's reason, unless
    O(allow_excluded_volumes=true). Right after a VM is made, KubeVirt says C(PVC not found) for the claims of its
    DataVolumes until they exist; the task waits (up to O(wait_timeout)) until KubeVirt has seen the claims that
    are being made, then judges.
  - Check mode and diff mode are supported (check mode makes a server-side dry run of the create).
extends_documentation_fragment:
  - virtops.kubevirt.auth
options:
  name:
    description:
      - Name of the C(VirtualMachineSnapshot).
    type: str
    required: true
  namespace:
    description:
      - Namespace of the snapshot and its VM. Default the namespace of the kubeconfig context, else V(default).
    type: str
  vm:
    description:
      - Name of the VirtualMachine to snapshot (same namespace). Required with O(state=present).
      - With O(state=absent), when given, the snapshot is deleted only if it is a snapshot of this VM.
    type: str
  state:
    description:
      - V(present) - the snapshot exists (taken if missing). V(absent) - it is deleted; with the default
        O(deletion_policy) KubeVirt deletes its content and volume snapshots too.
    type: str
    choices: [present, absent]
    default: present
  labels:
    description:
      - Labels of the snapshot (added to an existing one; values as strings).
    type: dict
  failure_deadline:
    description:
      - How long KubeVirt may take before it marks the snapshot C(Failed) - a duration such as V(5m), V(1h30m) or a
        number of seconds; V(0s) means no deadline. KubeVirt's default is 5 minutes. Used when creating.
    type: str
  deletion_policy:
    description:
      - What deleting the snapshot does to its C(VirtualMachineSnapshotContent) - V(Delete) (KubeVirt's default) or
        V(Retain). Used when creating.
    type: str
    choices: [Delete, Retain]
  allow_excluded_volumes:
    description:
      - Take the snapshot even if KubeVirt cannot snapshot some of the VM's disks (they are left out and a warning
        names them). By default such a VM fails the task before anything is created.
    type: bool
    default: false
  wait:
    description:
      - Wait until the snapshot is ready to use (V(present)) or gone (V(absent)).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait.
    type: int
    default: 300
notes:
  - Needs C(get), C(create), C(patch), C(delete), C(watch) on C(virtualmachinesnapshots) and C(get) on
    C(virtualmachinesnapshotcontents) and C(virtualmachines) in the C(snapshot.kubevirt.io) and C(kubevirt.io) API
    groups; see C(docs/rbac/day-two.yml).
seealso:
  - module: virtops.kubevirt.vm_restore
  - module: virtops.kubevirt.vm_info
"""

EXAMPLES = r"""
- name: Snapshot web1 before the upgrade
  virtops.kubevirt.vm_snapshot:
    name: web1-before-upgrade
    namespace: demo
    vm: web1
    labels:
      purpose: upgrade
  register: snap

- name: Show whether the guest was quiesced
  ansible.builtin.debug:
    msg: "{{ snap.snapshot.freeze }} ({{ snap.snapshot.volumes | map(attribute='name') | join(', ') }})"

- name: Snapshot a VM that also has a disk on storage without snapshots
  virtops.kubevirt.vm_snapshot:
    name: db1-nightly
    namespace: demo
    vm: db1
    allow_excluded_volumes: true
    failure_deadline: 10m

- name: Delete the snapshot
  virtops.kubevirt.vm_snapshot:
    name: web1-before-upgrade
    namespace: demo
    state: absent
"""

RETURN = r"""
snapshot:
  description: The snapshot as last seen (null when absent) - C(name), C(namespace), C(vm), C(phase) (InProgress,
    Succeeded, Failed), C(ready_to_use), C(creation_time), C(indications) (KubeVirt's, such as Online and
    GuestAgent), C(freeze) (V(frozen), V(quiesce_timeout), V(no_guest_agent), V(paused), V(offline), or null while
    unknown), C(error), C(content_name), C(included_volumes), C(excluded_volumes), C(deletion_policy) and
    C(volumes) - one per snapshotted volume with C(name), C(claim), C(volume_snapshot), C(ready_to_use),
    C(creation_time) and C(error).
  returned: always
  type: dict
  sample: {name: web1-before-upgrade, namespace: demo, vm: web1, phase: Succeeded, ready_to_use: true,
           creation_time: "2026-12-06T11:00:00Z", indications: [GuestAgent, Online], freeze: frozen, error: null,
           included_volumes: [rootdisk], excluded_volumes: [cloudinit],
           volumes: [{name: rootdisk, claim: web1-root, volume_snapshot: vmsnapshot-0f1e-volume-rootdisk,
                      ready_to_use: true, creation_time: "2026-12-06T11:00:00Z", error: null}]}
resource:
  description: The C(VirtualMachineSnapshot) object as last seen (null when absent).
  returned: always
  type: dict
method:
  description: What the task did - V(create), V(patch) (labels), V(delete) or V(none).
  returned: always
  type: str
diff:
  description: The snapshot before and after (its spec and metadata), in diff mode.
  returned: when diff mode is on
  type: dict
progress:
  description: The waits made - what was awaited, seconds, result, watches and events seen.
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
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.vm_snapshot import (
    VmSnapshotRunner,
    argument_spec,
)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, VmSnapshotRunner)


if __name__ == "__main__":
    main()
