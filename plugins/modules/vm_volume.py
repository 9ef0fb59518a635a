#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_volume
short_description: Attach or detach a PVC, DataVolume or container disk to a KubeVirt VM, persistently or hot-plugged
version_added: 0.1.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Attaches one disk to a C(VirtualMachine), or detaches it, without touching the rest of the VM.
  - Persistent (the default) - the disk and its volume are added to (or removed from) the VM's template. A running
    VM gets the change at its next restart - RV(restart_required) says so, from KubeVirt's C(RestartRequired)
    condition. The write reads the VM and updates it guarded by its resourceVersion (re-done on a conflict), so
    other changes to the VM are kept.
  - Hot-plugged (O(hotplug=true)) - a PVC or DataVolume is added through virt-api's C(addvolume) subresource
    (C(virtctl addvolume --persist)) - it is in the VM's spec as C(hotpluggable) and the running guest sees it at
    once; with O(wait) the task waits until the VMI's C(status.volumeStatus) entry is C(Ready). KubeVirt hot-plugs
    PVCs and DataVolumes only, not container disks.
  - O(state=absent) detaches the disk - a hot-plugged disk of a running VM through C(removevolume) (with O(wait)
    until it is gone from C(volumeStatus)), any other disk from the template (a restart applies it).
    The PVC or DataVolume itself is never deleted; use M(virtops.kubevirt.volume) for that.
  - A PVC or DataVolume that does not exist fails the task before anything is changed, naming it.
extends_documentation_fragment:
  - virtops.kubevirt.auth
  - virtops.kubevirt.wait_basic
options:
  vm:
    description:
      - Name of the VirtualMachine.
    type: str
    required: true
    aliases: [vm_name]
  namespace:
    description:
      - Namespace of the VM (and of the PVC or DataVolume). Default the namespace of the kubeconfig context,
        else V(default).
    type: str
  name:
    description:
      - Name of the disk and volume in the VM. Default O(pvc) or O(data_volume); required for O(image) and with
        O(state=absent) when neither is given.
    type: str
  state:
    description:
      - V(present) attaches the disk; V(absent) detaches it.
    type: str
    choices: [present, absent]
    default: present
  pvc:
    description:
      - An existing PersistentVolumeClaim to attach.
    type: str
  data_volume:
    description:
      - An existing DataVolume to attach (KubeVirt waits for its import before it starts the VM).
    type: str
  image:
    description:
      - A container disk image, for example V(quay.io/containerdisks/fedora:41) (ephemeral; not hot-pluggable).
    type: str
  image_pull_policy:
    description:
      - Pull policy of O(image).
    type: str
    choices: [Always, IfNotPresent, Never]
  type:
    description:
      - V(disk), V(cdrom) or V(lun).
    type: str
    choices: [disk, cdrom, lun]
    default: disk
  bus:
    description:
      - Disk bus. Default KubeVirt's (virtio) for a persistent disk, V(scsi) for a hot-plugged one (which takes
        V(scsi) or V(virtio)).
    type: str
    choices: [virtio, sata, scsi, usb]
  readonly:
    description:
      - Attach the disk read-only.
    type: bool
  serial:
    description:
      - Serial number the guest sees (for stable device names under C(/dev/disk/by-id)).
    type: str
  cache:
    description:
      - Cache mode.
    type: str
    choices: [none, writethrough, writeback]
  boot_order:
    description:
      - Boot order of the disk (1 boots first). Not for hot-plugged disks.
    type: int
  hotplug:
    description:
      - Hot-plug the PVC or DataVolume (virt-api C(addvolume)) instead of changing the template.
      - On a stopped VM the disk is added to the spec as C(hotpluggable) and is there when it starts.
    type: bool
    default: false
attributes:
  check_mode:
    description: Decides from the VM; template changes are server-side dry runs and hot-plugs are sent with
      C(dryRun), so nothing changes.
    support: full
  diff_mode:
    description: The VM before and after (cloud-init data redacted).
    support: full
seealso:
  - module: virtops.kubevirt.volume
  - module: virtops.kubevirt.vm
  - module: virtops.kubevirt.vm_power
notes:
  - Hot-plug needs C(update) on C(virtualmachines/addvolume) and C(virtualmachines/removevolume) in
    C(subresources.kubevirt.io); persistent changes need C(get) and C(update) on C(virtualmachines).
  - A persistent disk added by this module is removed again when the M(virtops.kubevirt.vm) module later applies
    a O(virtops.kubevirt.vm#module:disks) list that does not name it - manage a VM's disks with one of the two.
"""

EXAMPLES = r"""
- name: Hot-plug a data disk into a running VM and wait until the guest has it
  virtops.kubevirt.vm_volume:
    vm: web1
    namespace: demo
    pvc: web1-data
    hotplug: true
    wait: true

- name: Unplug it again
  virtops.kubevirt.vm_volume:
    vm: web1
    namespace: demo
    name: web1-data
    state: absent
    wait: true

- name: Attach a DataVolume persistently (the running VM gets it at its next restart)
  virtops.kubevirt.vm_volume:
    vm: db1
    namespace: demo
    data_volume: db1-logs
    bus: virtio
    serial: logs0001
  register: attached

- name: Restart when KubeVirt says so
  virtops.kubevirt.vm_power:
    name: db1
    namespace: demo
    state: restarted
  when: attached.restart_required

- name: An installer ISO as a cdrom (from a container disk)
  virtops.kubevirt.vm_volume:
    vm: win1
    namespace: demo
    name: virtio-drivers
    image: quay.io/kubevirt/virtio-container-disk:v1.6.0
    type: cdrom
    bus: sata
"""

RETURN = r"""
changed:
  description: Whether the disk was attached, changed or detached (would be, in check mode).
  returned: always
  type: bool
method:
  description: V(spec) (template change), V(hotplug), V(unplug) or V(none).
  returned: success
  type: str
  sample: hotplug
vm:
  description: The VirtualMachine after the task (cloud-init data redacted).
  returned: success
  type: dict
hotplugged:
  description: Whether the disk is attached through hot-plug.
  returned: success
  type: bool
volume_status:
  description: The VMI's C(status.volumeStatus) entry of the disk (null when the VM does not run or the disk is
    not attached to the VMI).
  returned: success
  type: dict
  sample: {name: web1-data, target: sda, phase: Ready, reason: VolumeReady, hotplugVolume: {},
           persistentVolumeClaimInfo: {claimName: web1-data, capacity: {storage: 10Gi}}}
restart_required:
  description: Whether the running VM needs a restart to get the change (KubeVirt's RestartRequired condition).
  returned: success
  type: bool
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
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.vm_volume import (
    MUTUALLY_EXCLUSIVE,
    VmVolumeRunner,
    argument_spec,
)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), mutually_exclusive=MUTUALLY_EXCLUSIVE,
                           supports_check_mode=True)
    run_module(module, VmVolumeRunner)


if __name__ == "__main__":
    main()
