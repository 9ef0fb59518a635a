# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vm_volume and vm_nic modules: one disk or one interface of a VM, persistent or hot-plugged.

Disks and interfaces are built with vmspec's builders (the same as the vm module's), compared
with what the VM has, and written either as a template change (a read-modify-write guarded by
resourceVersion, re-done on 409) or through virt-api's addvolume/removevolume. After a template
change on a running VM the result says what KubeVirt needs to apply it: a restart
(RestartRequired) or, for interfaces it plugs live, a migration.
"""

from __future__ import annotations

import copy

from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import condition_true
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import diff_of
from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import writes
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import operations
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import spec as vmspec
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    ApiError,
    InputError,
    KubevirtError,
    WaitFailed,
    WaitTimeout,
)

HOTPLUG_BUSES = ("scsi", "virtio")
ABSENT = "absent"


def volume_argument_spec():
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


VOLUME_EXCLUSIVE = [("pvc", "data_volume", "image")]


def nic_argument_spec():
    spec = dict(
        vm=dict(type="str", required=True, aliases=["vm_name"]),
        namespace=dict(type="str"),
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        network_name=dict(type="str"),
        type=dict(type="str", choices=["multus", "sriov"], default="multus"),
        binding=dict(type="str"),
        mac=dict(type="str"),
        model=dict(type="str"),
        migrate=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=300),
    )
    spec.update(runner.auth_spec())
    return spec


# -- pure helpers --------------------------------------------------------------------------------
def _devices(tspec):
    return tspec.setdefault("domain", {}).setdefault("devices", {})


def _named(items, name):
    for item in items or []:
        if item.get("name") == name:
            return item
    return None


def subset(want, have):
    """Everything ``want`` says is in ``have`` (server defaults in ``have`` are fine)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(subset(v, have.get(k)) for k, v in want.items())
    return want == have


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
    devices = _devices(tspec)
    disks = devices.setdefault("disks", [])
    volumes = tspec.setdefault("volumes", [])
    for items, item in ((disks, disk), (volumes, volume)):
        for n, existing in enumerate(items):
            if existing.get("name") == item["name"]:
                items[n] = copy.deepcopy(item)
                break
        else:
            items.append(copy.deepcopy(item))
    return tspec


def detach_volume(tspec, name):
    devices = _devices(tspec)
    devices["disks"] = [d for d in devices.get("disks") or [] if d.get("name") != name]
    tspec["volumes"] = [v for v in tspec.get("volumes") or [] if v.get("name") != name]
    return tspec


def volume_status(vmi, name):
    for entry in ((vmi or {}).get("status") or {}).get("volumeStatus") or []:
        if entry.get("name") == name:
            return entry
    return None


def build_nic(params):
    """(interface, network) from the vm_nic options, with vmspec's network builder."""
    p = params
    if not p.get("network_name"):
        raise InputError("network_name is required with state: present (the NetworkAttachmentDefinition, 'name' or "
                         "'namespace/name').")
    ifaces, nets = vmspec.build_networks([{
        "name": p["name"], "type": p.get("type") or "multus", "network_name": p["network_name"],
        "binding": p.get("binding"), "mac": p.get("mac"), "model": p.get("model")}])
    return ifaces[0], nets[0]


def attach_nic(tspec, iface, network):
    devices = _devices(tspec)
    ifaces = devices.get("interfaces")
    if ifaces is None:
        # No interfaces means KubeVirt's default pod network; keep it explicit when adding another NIC.
        if not tspec.get("networks") and devices.get("autoattachPodInterface") is not False:
            devices["interfaces"] = [{"name": "default", "masquerade": {}}]
            tspec["networks"] = [{"name": "default", "pod": {}}]
        else:
            devices["interfaces"] = []
    for items, item in ((devices["interfaces"], iface), (tspec.setdefault("networks", []), network)):
        for n, existing in enumerate(items):
            if existing.get("name") == item["name"]:
                items[n] = copy.deepcopy(item)
                break
        else:
            items.append(copy.deepcopy(item))
    return tspec


def detach_nic(tspec, name, mark_absent):
    """Remove an interface and its network, or (hot-unplug) mark the interface state: absent."""
    devices = _devices(tspec)
    if mark_absent:
        for iface in devices.get("interfaces") or []:
            if iface.get("name") == name:
                iface["state"] = ABSENT
        return tspec
    devices["interfaces"] = [i for i in devices.get("interfaces") or [] if i.get("name") != name]
    tspec["networks"] = [n for n in tspec.get("networks") or [] if n.get("name") != name]
    return tspec


def binding_of(iface):
    for key in ("bridge", "sriov", "masquerade", "passt", "slirp", "macvtap"):
        if key in (iface or {}):
            return key
    if (iface or {}).get("binding"):
        return iface["binding"].get("name")
    return None


# -- shared runner -------------------------------------------------------------------------------
class DeviceRunner:
    kind = "device"

    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.params = module.params
        self.check_mode = module.check_mode
        self.progress = []
        self.warnings = []
        self.name = None
        self.namespace = None

    def setup(self):
        p = self.params
        self.name = res.check_name(p["vm"], "vm")
        self.namespace = res.check_namespace(p.get("namespace") or self.client.namespace)
        self.ref = res.VM.ref(self.name, self.namespace)

    def write_spec(self, vm, mutate):
        """Read-modify-write the VM's template spec (retried on 409); returns (before, after) VMs."""
        before = copy.deepcopy(vm)

        def change(current):
            tspec = current.setdefault("spec", {}).setdefault("template", {}).setdefault("spec", {})
            old = copy.deepcopy(tspec)
            mutate(tspec)
            return tspec != old

        try:
            after, written = self.client.update_with_retry(res.VM, self.name, self.namespace, change,
                                                           dry_run=self.check_mode)
        except ApiError as exc:
            raise KubevirtError(writes.explain(exc, "update", self.ref, res.VM))
        return before, after, written

    def restart_check(self, after, active):
        if not active or self.check_mode:
            return False, after
        required, vm, record = operations.restart_required_after(self.client, after,
                                                            min(operations.RESTART_CHECK_TIMEOUT, self.params["wait_timeout"]))
        if record:
            self.progress.append(record)
        return required, vm

    def base_result(self, changed, method, before, after):
        result = dict(changed=changed, method=method, vm=operations.redacted_vm(after), progress=self.progress)
        if self.module._diff:
            result["diff"] = diff_of(before, after)
        return result


# -- vm_volume -----------------------------------------------------------------------------------
class VolumeRunner(DeviceRunner):
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
        self.check_claim(volume, source)
        tspec = operations.template_spec(vm)
        cur_disk = _named(_devices(copy.deepcopy(tspec)).get("disks"), disk["name"])
        cur_volume = _named(tspec.get("volumes"), volume["name"])
        active = operations.vmi_active(vmi)
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

    def check_claim(self, volume, source):
        if source == "image":
            return
        if source == "pvc":
            claim = volume["persistentVolumeClaim"]["claimName"]
            found = self.read(res.PVC, claim)
            if found is None:
                raise KubevirtError("PersistentVolumeClaim %s/%s does not exist; create it first (virtops.kubevirt."
                                    "volume with kind: pvc) or check the pvc option." % (self.namespace, claim))
            return
        dv_name = volume["dataVolume"]["name"]
        if self.read(res.DATAVOLUME, dv_name) is None and self.read(res.PVC, dv_name) is None:
            raise KubevirtError("DataVolume %s/%s does not exist; create it first (virtops.kubevirt.volume) or check "
                                "the data_volume option." % (self.namespace, dv_name))

    def read(self, resource, name):
        try:
            return self.client.get_or_none(resource, name, self.namespace)
        except ApiError as exc:
            if exc.status == 403:
                self.warnings.append("Could not check that %s exists (%s)." % (
                    resource.ref(name, self.namespace), exc.api_message or "forbidden"))
                return {}
            raise KubevirtError(writes.explain(exc, "read", resource.ref(name, self.namespace), resource))

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
            body = {"name": name, "disk": disk, "volumeSource": source}
            if self.check_mode:
                body["dryRun"] = ["All"]
            operations.call(self.client, res.VM, self.namespace, self.name, "addvolume", body,
                       action="hot-plug volume %r into" % name,
                       verify=None if self.check_mode else operations.took_effect(
                           self.client, "addvolume", self.namespace, self.name, volume=name))
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

    def detach(self, name):
        vm = operations.read_vm(self.client, self.name, self.namespace)
        vmi = operations.read_vmi(self.client, self.name, self.namespace)
        active = operations.vmi_active(vmi)
        tspec = operations.template_spec(vm)
        cur_volume = _named(tspec.get("volumes"), name)
        cur_disk = _named(((tspec.get("domain") or {}).get("devices") or {}).get("disks"), name)
        if cur_volume is None and cur_disk is None:
            return self.finish(False, "none", vm, vm, vmi, active)
        if cur_volume is not None and hotpluggable(cur_volume) and active:
            body = {"name": name}
            if self.check_mode:
                body["dryRun"] = ["All"]
            operations.call(self.client, res.VM, self.namespace, self.name, "removevolume", body,
                       action="hot-unplug volume %r from" % name,
                       verify=None if self.check_mode else operations.took_effect(
                           self.client, "removevolume", self.namespace, self.name, volume=name))
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
            in_spec = _named(((vmi.get("spec") or {}).get("volumes")), name)
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
            api_requests=self.client.requests,
        )
        if restart_required:
            self.warnings.append("%s: the disk change takes effect at the next restart (RestartRequired); restart it "
                                 "with virtops.kubevirt.vm_power state: restarted, or use hotplug: true." % self.ref)
        return result, None


# -- vm_nic --------------------------------------------------------------------------------------
class NicRunner(DeviceRunner):
    def run(self):
        self.setup()
        p = self.params
        name = res.check_name(p["name"], "name")
        if p["state"] == "absent":
            for key in ("network_name", "mac", "model", "binding"):
                if p.get(key):
                    raise InputError("%s applies to state: present only." % key)
            return self.detach(name)
        iface, network = build_nic(p)
        vm = operations.read_vm(self.client, self.name, self.namespace)
        vmi = operations.read_vmi(self.client, self.name, self.namespace)
        self.check_nad(network)
        tspec = operations.template_spec(vm)
        cur_iface = _named(((tspec.get("domain") or {}).get("devices") or {}).get("interfaces"), name)
        cur_net = _named(tspec.get("networks"), name)
        active = operations.vmi_active(vmi)
        if cur_net is not None and cur_net.get("pod") is not None:
            raise KubevirtError("%s has a pod network named %r; choose another name for the %s interface." % (
                self.ref, name, p.get("type") or "multus"))
        same = (cur_iface is not None and cur_net is not None and subset(iface, cur_iface)
                and subset(network, cur_net) and cur_iface.get("state") != ABSENT)
        if same:
            return self.finish(False, "none", vm, vm, vmi, active, iface)
        before, after, _written = self.write_spec(vm, lambda t: attach_nic(t, iface, network))
        return self.finish(True, "spec", before, after, vmi, active, iface)

    def check_nad(self, network):
        ns, nad = vmspec._ns_name(network["multus"]["networkName"], "network_name", self.namespace)
        try:
            found = self.client.get_or_none(res.NAD, nad, ns)
        except ApiError as exc:
            if exc.status in (403, 404):
                self.warnings.append("Could not check that NetworkAttachmentDefinition %s/%s exists (%s)." % (
                    ns, nad, exc.api_message or exc.reason))
                return
            raise KubevirtError(writes.explain(exc, "read", res.NAD.ref(nad, ns), res.NAD))
        if found is None:
            raise KubevirtError("NetworkAttachmentDefinition %s/%s does not exist; create it first (virtops.kubevirt."
                                "network) or check network_name." % (ns, nad))

    def detach(self, name):
        vm = operations.read_vm(self.client, self.name, self.namespace)
        vmi = operations.read_vmi(self.client, self.name, self.namespace)
        active = operations.vmi_active(vmi)
        tspec = operations.template_spec(vm)
        cur_iface = _named(((tspec.get("domain") or {}).get("devices") or {}).get("interfaces"), name)
        cur_net = _named(tspec.get("networks"), name)
        if cur_iface is None and cur_net is None:
            return self.finish(False, "none", vm, vm, vmi, active, None)
        if (cur_net or {}).get("pod") is not None:
            raise KubevirtError("%r is the pod network of %s; vm_nic manages Multus and SR-IOV interfaces, change the "
                                "pod network with virtops.kubevirt.vm." % (name, self.ref))
        hot_unplug = active and binding_of(cur_iface) == "bridge"
        if hot_unplug and cur_iface.get("state") == ABSENT:
            return self.finish(False, "none", vm, vm, vmi, active, cur_iface, unplug=True)
        before, after, _written = self.write_spec(vm, lambda t: detach_nic(t, name, hot_unplug))
        return self.finish(True, "unplug" if hot_unplug else "spec", before, after, vmi, active, cur_iface,
                           unplug=hot_unplug)

    def finish(self, changed, method, before, after, vmi, active, iface, unplug=False):
        p = self.params
        name = p["name"]
        restart_required = False
        migration_required = False
        live = None
        migration = None
        if changed and active and not self.check_mode:
            restart_required, after = self.restart_check(after, True)
        elif active and not changed:
            restart_required = condition_true(after, "RestartRequired")
        if active and p["state"] == "present" and not restart_required:
            # KubeVirt plugs bridge and SR-IOV interfaces of a running VM live (LiveUpdate rollout): the VM
            # controller adds them to the VMI; a migration moves the VM into a pod that has the new interface.
            in_status = any(i.get("name") == name for i in ((vmi or {}).get("status") or {}).get("interfaces") or [])
            if changed or not in_status:
                vmi_now = operations.read_vmi(self.client, self.name, self.namespace) if not self.check_mode else vmi
                in_status = any(i.get("name") == name for i in ((vmi_now or {}).get("status") or {}).get(
                    "interfaces") or [])
                if not in_status:
                    migration_required = True
                    live = ("KubeVirt adds interface %r to the running VM (live update); a live migration moves the VM "
                            "into a pod with that interface (always for SR-IOV, and for bridge interfaces unless the "
                            "Multus dynamic networks controller plugs it in place)" % name)
        if unplug and active:
            live = ("interface %r is marked state: absent; KubeVirt unplugs it from the running guest, and it leaves "
                    "the VM spec when vm_nic runs again while the VM is stopped" % name)
        if migration_required and p["migrate"]:
            if self.check_mode:
                migration = {"name": None, "phase": None}
            else:
                migration, records = operations.migrate(self.client, self.namespace, self.name, wait=True,
                                                   timeout=p["wait_timeout"])
                self.progress.extend(records)
                migration_required = False
                changed = True
        result = self.base_result(changed, method, before, after)
        result.update(
            restart_required=bool(restart_required),
            migration_required=bool(migration_required),
            live_update=live,
            interface=iface,
            api_requests=self.client.requests,
        )
        if p["migrate"]:
            result["migration"] = migration
        if restart_required:
            self.warnings.append("%s: the interface change takes effect at the next restart (RestartRequired); "
                                 "restart it with virtops.kubevirt.vm_power state: restarted." % self.ref)
        elif migration_required:
            self.warnings.append("%s: %s; migrate it (migrate: true, or vm_power state: migrated)." % (self.ref, live))
        return result, None


def run_volume_module(module):
    runner.run_runner(module, VolumeRunner)


def run_nic_module(module):
    runner.run_runner(module, NicRunner)
