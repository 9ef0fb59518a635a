"""Simulator: NIC hot-plug and hot-unplug with KubeVirt's LiveUpdate rollout strategy - the VM
controller patches the running VMI's interfaces, the VMI reports MigrationRequired until a
migration brings a virt-launcher pod that has (or no longer has) the interface; no RestartRequired.
Interfaces marked `state: absent` leave the VMI and the template once the VMI stops reporting them."""
import json

from sim_helpers import KV, cond, lab, vm_manifest, wait_for  # noqa: F401

MAC = "02:00:00:00:10:01"
DEFAULT_IF = {"name": "default", "masquerade": {}}
DEFAULT_NET = {"name": "default", "pod": {}}
BR1_IF = {"name": "br1", "bridge": {}, "macAddress": MAC}
BR1_NET = {"name": "br1", "multus": {"networkName": "br1-net"}}


def nad(lab, name, config):
    lab.create("k8s.cni.cncf.io", "v1", "network-attachment-definitions",
               {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": name}, "spec": {"config": json.dumps(config)}})


def bridge_nad(lab):
    nad(lab, "br1-net", {"cniVersion": "0.3.1", "name": "br1-net", "type": "bridge", "bridge": "br1",
                         "ipam": {"type": "whereabouts", "range": "192.168.50.0/24"}})


def ifaces(obj, spec_path=("spec",)):
    spec = obj
    for p in spec_path:
        spec = spec[p]
    return {i["name"]: i for i in spec["domain"]["devices"].get("interfaces") or []}


def status_iface(vmi, name):
    return next((i for i in vmi["status"].get("interfaces") or [] if i["name"] == name), None)


def launcher(lab, name):
    return next(p for p in lab.pods(name) if not p.metadata.deletion_timestamp)


def pod_networks(pod):
    return [n["name"] for n in json.loads((pod.metadata.annotations or {}).get("k8s.v1.cni.cncf.io/networks") or "[]")]


def pod_network_status(pod):
    return [n["name"] for n in json.loads(pod.metadata.annotations.get("k8s.v1.cni.cncf.io/network-status"))]


def migrate(lab, name):
    vmi = lab.vmi(name)
    status, body = lab.vm_sub(name, "migrate", {})
    assert status == 202, body

    def moved():
        v = lab.vmi(name)
        ms = v["status"].get("migrationState") or {}
        return v if ms.get("completed") and v["status"]["nodeName"] != vmi["status"]["nodeName"] and \
            len(v["status"].get("activePods", {})) == 1 else None
    return wait_for(moved, 30, what="migration done")


def migration_required(obj):
    return cond(obj, "MigrationRequired")


def test_bridge_nic_hotplug_then_hot_unplug_through_migrations(lab):
    bridge_nad(lab)
    lab.create_vm(vm_manifest("vm-nic", interfaces=[DEFAULT_IF], networks=[DEFAULT_NET]))
    lab.wait_running("vm-nic")
    lab.patch_vm("vm-nic", {"spec": {"template": {"spec": {"domain": {"devices": {"interfaces": [DEFAULT_IF, BR1_IF]}},
                                                           "networks": [DEFAULT_NET, BR1_NET]}}}})
    # the VM controller plugs it into the VMI spec; the guest does not have it yet
    vmi = wait_for(lambda: (lambda v: v if "br1" in ifaces(v) and migration_required(v) else None)(lab.vmi("vm-nic")),
                   10, what="interface added to the VMI")
    assert ifaces(vmi)["br1"] == BR1_IF and BR1_NET in vmi["spec"]["networks"]
    assert status_iface(vmi, "br1") is None
    mr = migration_required(vmi)
    assert (mr["status"], mr["reason"]) == ("False", "AutoMigrationPending")
    pod = wait_for(lambda: (lambda p: p if "br1-net" in pod_networks(p) else None)(launcher(lab, "vm-nic")), 10,
                   what="launcher pod networks annotation updated")
    assert pod_network_status(pod) == ["ovn-kubernetes"], "no dynamic networks controller: the pod did not change"
    vm = wait_for(lambda: (lambda v: v if migration_required(v) else None)(lab.vm("vm-nic")), 10,
                  what="MigrationRequired on the VM")
    assert cond(vm, "RestartRequired") is None, "a bridge NIC is hot-plugged, not a restart"
    # without the dynamic networks controller, the condition turns True after its grace period
    vmi = wait_for(lambda: (lambda v: v if migration_required(v)["status"] == "True" else None)(lab.vmi("vm-nic")),
                   20, interval=0.5, what="MigrationRequired True")
    assert migration_required(vmi)["reason"] == "AutoMigrationDueToLiveUpdate"
    assert cond(lab.vm("vm-nic"), "RestartRequired") is None
    # a migration moves the VM into a pod with the interface
    migrate(lab, "vm-nic")
    vmi = wait_for(lambda: (lambda v: v if status_iface(v, "br1") and not migration_required(v) else None)(
        lab.vmi("vm-nic")), 10, what="br1 in the VMI status")
    br1 = status_iface(vmi, "br1")
    assert br1["mac"] == MAC and br1["ipAddress"].startswith("192.168.50.")
    assert br1["infoSource"] == "domain, guest-agent, multus-status" and br1["interfaceName"] == "eth1"
    wait_for(lambda: migration_required(lab.vm("vm-nic")) is None, 10, what="MigrationRequired gone from the VM")

    # hot-unplug: state absent
    lab.custom.patch_namespaced_custom_object(*KV, lab.ns, "virtualmachines", "vm-nic", [
        {"op": "add", "path": "/spec/template/spec/domain/devices/interfaces/1/state", "value": "absent"}],
        _content_type="application/json-patch+json")
    vmi = wait_for(lambda: (lambda v: v if ifaces(v)["br1"].get("state") == "absent" and migration_required(v)
                            else None)(lab.vmi("vm-nic")), 10, what="absent on the VMI")
    wait_for(lambda: status_iface(lab.vmi("vm-nic"), "br1")["infoSource"] == "multus-status", 10,
             what="detached from the domain, still in the pod")
    assert migration_required(vmi)["reason"] == "AutoMigrationPending"
    wait_for(lambda: "br1-net" not in pod_networks(launcher(lab, "vm-nic")), 10, what="pod annotation updated")
    vm = lab.vm("vm-nic")
    assert ifaces(vm, ("spec", "template", "spec"))["br1"]["state"] == "absent", "kept while the VMI reports it"
    assert cond(vm, "RestartRequired") is None
    migrate(lab, "vm-nic")
    vmi = wait_for(lambda: (lambda v: v if "br1" not in ifaces(v) else None)(lab.vmi("vm-nic")), 10,
                   what="br1 gone from the VMI spec")
    assert status_iface(vmi, "br1") is None and [n["name"] for n in vmi["spec"]["networks"]] == ["default"]
    assert migration_required(vmi) is None
    vm = wait_for(lambda: (lambda v: v if "br1" not in ifaces(v, ("spec", "template", "spec")) else None)(
        lab.vm("vm-nic")), 10, what="br1 gone from the VM template")
    assert [n["name"] for n in vm["spec"]["template"]["spec"]["networks"]] == ["default"]
    assert cond(vm, "RestartRequired") is None


def test_sriov_hotplug_needs_a_migration_at_once(lab):
    nad(lab, "sriov-net", {"cniVersion": "0.3.1", "name": "sriov-net", "type": "sriov", "vlan": 0})
    lab.create_vm(vm_manifest("vm-sr", interfaces=[DEFAULT_IF], networks=[DEFAULT_NET]))
    lab.wait_running("vm-sr")
    lab.patch_vm("vm-sr", {"spec": {"template": {"spec": {
        "domain": {"devices": {"interfaces": [DEFAULT_IF, {"name": "fast0", "sriov": {}}]}},
        "networks": [DEFAULT_NET, {"name": "fast0", "multus": {"networkName": "sriov-net"}}]}}}})
    vmi = wait_for(lambda: (lambda v: v if migration_required(v) else None)(lab.vmi("vm-sr")), 10,
                   what="MigrationRequired")
    mr = migration_required(vmi)
    assert (mr["status"], mr["reason"]) == ("True", "AutoMigrationDueToLiveUpdate")
    assert "fast0" in ifaces(vmi) and status_iface(vmi, "fast0") is None
    assert "sriov-net" not in pod_networks(launcher(lab, "vm-sr")), "SR-IOV needs a new pod (device plugin)"
    assert cond(lab.vm("vm-sr"), "RestartRequired") is None


def test_absent_interface_left_out_of_a_new_vmi_and_removal_needs_a_restart(lab):
    bridge_nad(lab)
    lab.create_vm(vm_manifest("vm-ab", run_strategy="Halted", interfaces=[DEFAULT_IF, {**BR1_IF, "state": "absent"}],
                              networks=[DEFAULT_NET, BR1_NET]))
    lab.wait_printable("vm-ab", "Stopped")
    status, _ = lab.vm_sub("vm-ab", "start", {})
    assert status == 202
    vmi = lab.wait_running("vm-ab")
    assert "br1-net" not in pod_networks(launcher(lab, "vm-ab")) and status_iface(vmi, "br1") is None
    wait_for(lambda: "br1" not in ifaces(lab.vmi("vm-ab")), 10, what="absent interface left out of the VMI")
    vm = wait_for(lambda: (lambda v: v if "br1" not in ifaces(v, ("spec", "template", "spec")) else None)(
        lab.vm("vm-ab")), 10, what="and out of the template")
    assert [n["name"] for n in vm["spec"]["template"]["spec"]["networks"]] == ["default"]
    assert migration_required(lab.vmi("vm-ab")) is None
    # taking an interface of the running VMI out of the template without `state: absent` needs a restart
    lab.patch_vm("vm-ab", {"spec": {"template": {"spec": {"domain": {"devices": {"interfaces": [
        {"name": "default", "bridge": {}}]}}}}}})
    c = wait_for(lambda: cond(lab.vm("vm-ab"), "RestartRequired"), 10, what="RestartRequired")
    assert (c["status"], c["message"]) == ("True", "a non-live-updatable field was changed in the template spec")
