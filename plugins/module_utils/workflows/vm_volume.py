# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vm_volume module: one disk of a VM, persistent (a template change) or hot-plugged through
virt-api's addvolume/removevolume. Disks are built with the spec builder (the same as the vm
module's) and compared with what the VM has; after a template change on a running VM the result
says whether KubeVirt needs a restart (RestartRequired).
"""

from __future__ import annotations

import copy

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    InputError,
    KubevirtError,
    WaitFailed,
    WaitTimeout,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import spec as vmspec
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import operations
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import preflight
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import vmi_active
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.vm_devices import (
    DeviceRunner,
    devices_of,
    named,
    put_named,
    subset,
)

HOTPLUG_BUSES = ("scsi", "virtio")


def argument_spec():
    spec = dict(
        vm=dict(type="str", required=True, aliases=["vm_name"]),
        namespace=dict(type="str"),
        name=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        pvc=dict(type="str"),
        data_volume=dict(type="str"),
        image=dict(type="str"),
        image_pull_policy=dict(type="str", choices=["Always", "IfNotPresent", "Never"]),
        type=dict(type="str", choices=["disk", "cdrom", "lun"], default="disk"),
        bus=dict(type="str", choices=["virtio", "sata", "scsi", "usb"]),
        readonly=dict(type="bool"),
        serial=dict(type="str"),
        cache=dict(type="str", choices=["none", "writethrough", "writeback"]),
        boot_order=dict(type="int"),
        hotplug=dict(type="bool", default=False),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=300),
    )
    spec.update(runner.auth_spec())
    return spec


MUTUALLY_EXCLUSIVE = [("pvc", "data_volume", "image")]


def hotpluggable(volume):
    return bool(((volume or {}).get("persistentVolumeClaim") or {}).get("hotpluggable")
                or ((volume or {}).get("dataVolume") or {}).get("hotpluggable"))


def build_volume(params):
    """(disk, volume, source kind) from the vm_volume options, with vmspec's disk builder."""
    p = params
    source = [k for k in ("pvc", "data_volume", "image") if p.get(k)]
    name = p.get("name") or (p.get("pvc") or p.get("data_volume") if source and source[0] != "image" else None)
    if not name:
        raise InputError("name is required (the disk name in the VM)%s." % (
            "; an image disk has no default name" if source else ""))
    if not source:
        raise InputError("disk %r needs a source: pvc, data_volume or image." % name)
    hot = bool(p.get("hotplug"))
    if hot:
        if source[0] == "image":
            raise InputError("disk %r: a container disk (image) can't be hot-plugged, KubeVirt hot-plugs PVCs and "
                             "DataVolumes only; use hotplug: false (the disk is added at the next restart)." % name)
        if (p.get("type") or "disk") == "cdrom":
            raise InputError("disk %r: hot-plugged volumes are disks or LUNs, not cdroms." % name)
        if p.get("bus") and p["bus"] not in HOTPLUG_BUSES:
            raise InputError("disk %r: a hot-plugged disk uses bus scsi or virtio, not %s." % (name, p["bus"]))
        if p.get("boot_order") is not None:
            raise InputError("disk %r: a hot-plugged disk can't be a boot disk; drop boot_order." % name)
    disk_opts = {k: p.get(k) for k in ("type", "readonly", "serial", "cache", "boot_order", "pvc",
                                       "data_volume", "image", "image_pull_policy")}
    disk_opts["name"] = name
    disk_opts["bus"] = p.get("bus") or ("scsi" if hot else None)
    disk_opts["hotpluggable"] = hot or None
    disks, volumes, _templates = vmspec.build_disks([disk_opts], p["vm"], allow_templates=False)
    return disks[0], volumes[0], source[0]


def attach_volume(tspec, disk, volume):
    """Put disk and volume into a template spec (replacing entries of the same name). Returns tspec."""
    devices = devices_of(tspec)
    disks = devices.setdefault("disks", [])
    volumes = tspec.setdefault("volumes", [])
    put_named(disks, disk)
    put_named(volumes, volume)
    return tspec


def detach_volume(tspec, name):
    devices = devices_of(tspec)
    devices["disks"] = [d for d in devices.get("disks") or [] if d.get("name") != name]
    tspec["volumes"] = [v for v in tspec.get("volumes") or [] if v.get("name") != name]
    return tspec


def volume_status(vmi, name):
    for entry in ((vmi or {}).get("status") or {}).get("volumeStatus") or []:
        if entry.get("name") == name:
            return entry
    return None


class VmVolumeRunner(DeviceRunner):
    def run(self):
        self.setup()
        p = self.params
        if p["state"] == "absent":
            name = p.get("name") or p.get("pvc") or p.get("data_volume")
            if not name:
                raise InputError("name is required with state: absent (the disk name in the VM).")
            res.check_name(name, "name")
            return self.detach(name)
        disk, volume, source = build_volume(p)
        vm = operations.read_vm(self.client, self.name, self.namespace)
        vmi = operations.read_vmi(self.client, self.name, self.namespace)
        preflight.require(self.client, preflight.template_references(self.namespace, {"volumes": [volume]}),
                          self.ref, self.check_mode, self.warnings)
        tspec = operations.template_spec(vm)
        cur_disk = named(devices_of(copy.deepcopy(tspec)).get("disks"), disk["name"])
        cur_volume = named(tspec.get("volumes"), volume["name"])
        active = vmi_active(vmi)
        same = cur_disk is not None and cur_volume is not None and subset(disk, cur_disk) and subset(volume, cur_volume)
        if p["hotplug"]:
            return self.hotplug(vm, vmi, disk, volume, cur_volume, same, active)
        if same:
            return self.finish(False, "none", vm, vm, vmi, active)
        if cur_volume is not None and hotpluggable(cur_volume) and active:
            raise KubevirtError("disk %r of %s is hot-plugged; detach it first (state: absent) to attach it "
                                "persistently." % (disk["name"], self.ref))
        before, after, _written = self.write_spec(vm, lambda t: attach_volume(t, disk, volume))
        return self.finish(True, "spec", before, after, vmi, active)

    def hotplug(self, vm, vmi, disk, volume, cur_volume, same, active):
        name = disk["name"]
        if cur_volume is not None and not same:
            raise KubevirtError("%s has a volume %r already, with another source or disk settings; detach it first "
                                "(state: absent), or choose another name." % (self.ref, name))
        if cur_volume is not None and not hotpluggable(cur_volume):
            self.warnings.append("disk %r is attached to %s persistently already; not hot-plugging it." % (
                name, self.ref))
            return self.finish(False, "none", vm, vm, vmi, active)
        changed = cur_volume is None
        after = vm
        if changed:
            source = {k: v for k, v in volume.items() if k != "name"}
            self.volume_call("addvolume", {"name": name, "disk": disk, "volumeSource": source},
                             "hot-plug volume %r into" % name)
            after = copy.deepcopy(vm)
            attach_volume(after["spec"]["template"]["spec"], disk, volume)
        wait_error = None
        if active and self.params["wait"] and not self.check_mode:
            try:
                vmi = self.wait_volume(name, present=True)
            except (WaitTimeout, WaitFailed) as exc:
                wait_error = exc
        elif active and not self.check_mode:
            vmi = operations.read_vmi(self.client, self.name, self.namespace)
        if changed and not self.check_mode:
            # virt-api only queues the request (status.volumeRequests); the VM controller puts the
            # volume into the template a moment later: read the VM after the wait, not before.
            after = self.client.get_or_none(res.VM, self.name, self.namespace) or after
        result = self.finish(changed, "hotplug" if changed else "none", vm, after, vmi, active, hot=True)
        return result if wait_error is None else (result[0], wait_error)

    def volume_call(self, verb, body, action):
        """virt-api addvolume / removevolume (a dry run in check mode), sent again only when a fresh read
        shows it did not take effect."""
        if self.check_mode:
            body["dryRun"] = ["All"]
        operations.call(self.client, res.VM, self.namespace, self.name, verb, body, action=action,
                        verify=None if self.check_mode else operations.took_effect(
                            self.client, verb, self.namespace, self.name, volume=body["name"]))

    def detach(self, name):
        vm = operations.read_vm(self.client, self.name, self.namespace)
        vmi = operations.read_vmi(self.client, self.name, self.namespace)
        active = vmi_active(vmi)
        tspec = operations.template_spec(vm)
        cur_volume = named(tspec.get("volumes"), name)
        cur_disk = named(((tspec.get("domain") or {}).get("devices") or {}).get("disks"), name)
        if cur_volume is None and cur_disk is None:
            return self.finish(False, "none", vm, vm, vmi, active)
        if cur_volume is not None and hotpluggable(cur_volume) and active:
            self.volume_call("removevolume", {"name": name}, "hot-unplug volume %r from" % name)
            after = copy.deepcopy(vm)
            detach_volume(after["spec"]["template"]["spec"], name)
            wait_error = None
            if not self.check_mode:
                if self.params["wait"]:
                    try:
                        vmi = self.wait_volume(name, present=False)
                    except (WaitTimeout, WaitFailed) as exc:
                        wait_error = exc
                after = self.client.get_or_none(res.VM, self.name, self.namespace) or after  # after the wait, as above
            result = self.finish(True, "unplug", vm, after, vmi, active, hot=True, name=name)
            return result if wait_error is None else (result[0], wait_error)
        before, after, _written = self.write_spec(vm, lambda t: detach_volume(t, name))
        return self.finish(True, "spec", before, after, vmi, active, name=name)

    def wait_volume(self, name, present):
        label = "volume %r of VirtualMachineInstance %s/%s" % (name, self.namespace, self.name)

        def check(objects):
            vmi = objects.get(self.name)
            if vmi is None:
                return not present
            entry = volume_status(vmi, name)
            if present:
                return bool(entry) and entry.get("phase") == "Ready"
            in_spec = named(((vmi.get("spec") or {}).get("volumes")), name)
            return entry is None and in_spec is None

        what = "%s to be %s" % (label, "Ready (volumeStatus)" if present else "gone from volumeStatus")
        wait = waiter.Wait(self.client, res.VMI, self.namespace, check, what, self.params["wait_timeout"],
                           names=[self.name])
        try:
            self.progress.append(wait.run())
        except WaitTimeout as exc:
            entry = volume_status(wait.objects.get(self.name), name)
            if entry:
                exc.msg = exc.msg[:-1] + "; its volumeStatus: phase %s%s." % (
                    entry.get("phase") or "unset", ", %s" % entry["message"] if entry.get("message") else "")
            # virt-controller says why it could not hot-plug on the VM (Failure, e.g. HotPlugVolumeError)
            exc.msg = exc.msg[:-1] + waiter.vm_failure_note(self.client, self.namespace, self.name) + "."
            exc.args = (exc.msg,)
            raise
        return wait.objects.get(self.name)

    def finish(self, changed, method, before, after, vmi, active, hot=False, name=None):
        restart_required = False
        if method == "spec":
            restart_required, after = self.restart_check(after, active)
        name = name or self.params.get("name") or self.params.get("pvc") or self.params.get("data_volume")
        result = self.base_result(changed, method, before, after)
        entry = volume_status(vmi, name) if vmi else None
        result.update(
            restart_required=bool(restart_required),
            hotplugged=bool(hot and self.params["state"] == "present"),
            volume_status=entry,
        )
        if restart_required:
            self.warnings.append("%s: the disk change takes effect at the next restart (RestartRequired); restart it "
                                 "with virtops.kubevirt.vm_power state: restarted, or use hotplug: true." % self.ref)
        return result, None
