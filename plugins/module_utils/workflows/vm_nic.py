# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vm_nic module: one interface of a VM, written as a template change. KubeVirt plugs bridge and
SR-IOV interfaces of a running VM live; the result says when a restart (RestartRequired) or a
live migration is needed to apply the change.
"""

from __future__ import annotations

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError, KubevirtError
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import spec as vmspec
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import operations
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import preflight
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import condition_true, vmi_active
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.vm_devices import (
    ABSENT,
    DeviceRunner,
    devices_of,
    named,
    put_named,
    subset,
)


def argument_spec():
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
    devices = devices_of(tspec)
    ifaces = devices.get("interfaces")
    if ifaces is None:
        # No interfaces means KubeVirt's default pod network; keep it explicit when adding another NIC.
        if not tspec.get("networks") and devices.get("autoattachPodInterface") is not False:
            devices["interfaces"] = [{"name": "default", "masquerade": {}}]
            tspec["networks"] = [{"name": "default", "pod": {}}]
        else:
            devices["interfaces"] = []
    put_named(devices["interfaces"], iface)
    put_named(tspec.setdefault("networks", []), network)
    return tspec


def detach_nic(tspec, name, mark_absent):
    """Remove an interface and its network, or (hot-unplug) mark the interface state: absent."""
    devices = devices_of(tspec)
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


class VmNicRunner(DeviceRunner):
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
        preflight.require(self.client, preflight.template_references(self.namespace, {
            "domain": {"devices": {"interfaces": [iface]}}, "networks": [network]}), self.ref, self.check_mode,
            self.warnings)
        tspec = operations.template_spec(vm)
        cur_iface = named(((tspec.get("domain") or {}).get("devices") or {}).get("interfaces"), name)
        cur_net = named(tspec.get("networks"), name)
        active = vmi_active(vmi)
        if cur_net is not None and cur_net.get("pod") is not None:
            raise KubevirtError("%s has a pod network named %r; choose another name for the %s interface." % (
                self.ref, name, p.get("type") or "multus"))
        same = (cur_iface is not None and cur_net is not None and subset(iface, cur_iface)
                and subset(network, cur_net) and cur_iface.get("state") != ABSENT)
        if same:
            return self.finish(False, "none", vm, vm, vmi, active, iface)
        before, after, _written = self.write_spec(vm, lambda t: attach_nic(t, iface, network))
        return self.finish(True, "spec", before, after, vmi, active, iface)

    def detach(self, name):
        vm = operations.read_vm(self.client, self.name, self.namespace)
        vmi = operations.read_vmi(self.client, self.name, self.namespace)
        active = vmi_active(vmi)
        tspec = operations.template_spec(vm)
        cur_iface = named(((tspec.get("domain") or {}).get("devices") or {}).get("interfaces"), name)
        cur_net = named(tspec.get("networks"), name)
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
        )
        if p["migrate"]:
            result["migration"] = migration
        if restart_required:
            self.warnings.append("%s: the interface change takes effect at the next restart (RestartRequired); "
                                 "restart it with virtops.kubevirt.vm_power state: restarted." % self.ref)
        elif migration_required:
            self.warnings.append("%s: %s; migrate it (migrate: true, or vm_power state: migrated)." % (self.ref, live))
        return result, None
