import pytest
from modhelp import run_module
from opsfakes import OpsClient, vm_obj, warnings_text

from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows import vm_volume as vm_volume_flow
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows import vm_devices
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows import vm_nic as vm_nic_flow
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError
from ansible_collections.virtops.kubevirt.plugins.modules import vm_nic, vm_volume

VOL = {"vm": "web1", "pvc": None, "data_volume": None, "image": None, "image_pull_policy": None, "type": "disk",
       "bus": None, "readonly": None, "serial": None, "cache": None, "boot_order": None, "hotplug": False,
       "name": None}


def vol(**kw):
    return dict(VOL, **kw)


# -- pure pieces ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, disk, volume", [
    ({"pvc": "data"}, {"name": "data", "disk": {}}, {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}),
    ({"pvc": "data", "hotplug": True}, {"name": "data", "disk": {"bus": "scsi"}},
     {"name": "data", "persistentVolumeClaim": {"claimName": "data", "hotpluggable": True}}),
    ({"data_volume": "dv1", "name": "logs", "bus": "virtio", "serial": "s1"},
     {"name": "logs", "disk": {"bus": "virtio"}, "serial": "s1"}, {"name": "logs", "dataVolume": {"name": "dv1"}}),
    ({"image": "quay.io/x:1", "name": "iso", "type": "cdrom", "bus": "sata"}, {"name": "iso", "cdrom": {"bus": "sata"}},
     {"name": "iso", "containerDisk": {"image": "quay.io/x:1"}}),
    ({"data_volume": "dv1", "hotplug": True, "bus": "virtio", "type": "lun"}, {"name": "dv1", "lun": {"bus": "virtio"}},
     {"name": "dv1", "dataVolume": {"name": "dv1", "hotpluggable": True}}),
])
def test_build_volume(kw, disk, volume):
    built_disk, built_volume, _source = vm_volume_flow.build_volume(vol(**kw))
    assert built_disk == disk and built_volume == volume


@pytest.mark.parametrize("kw, message", [
    ({}, "name is required"),
    ({"image": "quay.io/x:1"}, "an image disk has no default name"),
    ({"name": "d"}, "needs a source: pvc, data_volume or image"),
    ({"image": "quay.io/x:1", "name": "d", "hotplug": True}, "KubeVirt hot-plugs PVCs and DataVolumes only"),
    ({"pvc": "d", "hotplug": True, "type": "cdrom"}, "not cdroms"),
    ({"pvc": "d", "hotplug": True, "bus": "sata"}, "uses bus scsi or virtio, not sata"),
    ({"pvc": "d", "hotplug": True, "boot_order": 1}, "can't be a boot disk"),
    ({"pvc": "Data_1"}, "disk name 'Data_1' is invalid"),
    ({"pvc": "d", "type": "cdrom", "bus": "virtio"}, "can't use bus virtio"),
])
def test_build_volume_errors(kw, message):
    with pytest.raises(InputError) as exc:
        vm_volume_flow.build_volume(vol(**kw))
    assert message in str(exc.value)


def test_attach_detach_volume_replace_by_name():
    tspec = vm_obj()["spec"]["template"]["spec"]
    disk, volume, _source = vm_volume_flow.build_volume(vol(pvc="data"))
    vm_volume_flow.attach_volume(tspec, disk, volume)
    vm_volume_flow.attach_volume(tspec, dict(disk, serial="x"), volume)
    assert [d["name"] for d in tspec["domain"]["devices"]["disks"]] == ["root", "data"]
    assert tspec["domain"]["devices"]["disks"][1]["serial"] == "x"
    vm_volume_flow.detach_volume(tspec, "data")
    assert [v["name"] for v in tspec["volumes"]] == ["root"]


def test_attach_nic_makes_the_default_pod_network_explicit():
    tspec = vm_obj()["spec"]["template"]["spec"]
    iface, net = vm_nic_flow.build_nic({"name": "br1", "network_name": "br1-net", "type": "multus"})
    vm_nic_flow.attach_nic(tspec, iface, net)
    assert tspec["domain"]["devices"]["interfaces"] == [{"name": "default", "masquerade": {}},
                                                        {"name": "br1", "bridge": {}}]
    assert tspec["networks"] == [{"name": "default", "pod": {}}, {"name": "br1", "multus": {"networkName": "br1-net"}}]
    vm_nic_flow.detach_nic(tspec, "br1", mark_absent=True)
    assert tspec["domain"]["devices"]["interfaces"][1] == {"name": "br1", "bridge": {}, "state": "absent"}
    vm_nic_flow.detach_nic(tspec, "br1", mark_absent=False)
    assert [n["name"] for n in tspec["networks"]] == ["default"]


@pytest.mark.parametrize("kw, message", [
    ({"network_name": None}, "network_name is required"),
    ({"network_name": "a/b/c"}, "must be 'name' or 'namespace/name'"),
    ({"network_name": "n", "type": "sriov", "binding": "bridge"}, "type sriov needs binding sriov"),
    ({"network_name": "n", "binding": "masquerade"}, "masquerade binding works only with the pod network"),
    ({"network_name": "n", "mac": "zz"}, "is not a MAC address"),
])
def test_build_nic_errors(kw, message):
    with pytest.raises(InputError) as exc:
        vm_nic_flow.build_nic(dict({"name": "br1", "type": "multus"}, **kw))
    assert message in str(exc.value)


def test_subset():
    assert vm_devices.subset({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}, "d": 3})
    assert not vm_devices.subset({"a": {"b": 1}}, {"a": {"b": 2}})
    assert not vm_devices.subset({"a": [1]}, {"a": [1, 2]})


# -- vm_volume module ----------------------------------------------------------------------------
@pytest.fixture
def client():
    c = OpsClient()
    for kind, name in (("PersistentVolumeClaim", "data"), ("DataVolume", "dv1")):
        c.put({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "demo"}, "spec": {}})
    return c


@pytest.fixture
def run_vol(client, monkeypatch, capsys):
    def _run(args, **kw):
        return run_module(vm_volume, dict({"vm": "web1", "namespace": "demo"}, **args), client, monkeypatch, capsys,
                          **kw)
    return _run


@pytest.fixture
def run_nic(client, monkeypatch, capsys):
    def _run(args, **kw):
        return run_module(vm_nic, dict({"vm": "web1", "namespace": "demo"}, **args), client, monkeypatch, capsys, **kw)
    return _run


def volumes_of(client):
    return [v["name"] for v in client.vm()["spec"]["template"]["spec"]["volumes"]]


def test_persistent_attach_on_a_stopped_vm(run_vol, client):
    client.add_vm(vm_obj(strategy="Halted"))
    first = run_vol({"pvc": "data"})
    assert first["changed"] and first["method"] == "spec" and not first["restart_required"]
    assert volumes_of(client) == ["root", "data"]
    assert [c[0] for c in client.calls if c[1] == "VirtualMachine"].count("PUT") == 1
    assert run_vol({"pvc": "data"})["changed"] is False


def test_persistent_attach_on_a_running_vm_needs_a_restart(run_vol, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    result = run_vol({"data_volume": "dv1"}, diff=True)
    assert result["changed"] and result["restart_required"] is True
    assert "RestartRequired" in warnings_text(result)
    after = [d["name"] for d in result["diff"]["after"]["spec"]["template"]["spec"]["domain"]["devices"]["disks"]]
    assert after == ["root", "dv1"]


def test_check_mode_is_a_dry_run(run_vol, client):
    client.add_vm(vm_obj(strategy="Halted"))
    result = run_vol({"pvc": "data"}, check_mode=True)
    assert result["changed"] and volumes_of(client) == ["root"]
    assert [c[2].get("dry_run") for c in client.calls if c[0] == "PUT"] == [True]


def test_hotplug_and_unplug(run_vol, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    plugged = run_vol({"pvc": "data", "hotplug": True, "wait": True, "wait_timeout": 5})
    assert plugged["changed"] and plugged["method"] == "hotplug" and plugged["hotplugged"]
    assert plugged["volume_status"]["phase"] == "Ready"
    assert client.sub_calls[-1] == ("virtualmachines", "web1", "addvolume", {
        "name": "data", "disk": {"name": "data", "disk": {"bus": "scsi"}},
        "volumeSource": {"persistentVolumeClaim": {"claimName": "data", "hotpluggable": True}}})
    assert not plugged["restart_required"]
    assert run_vol({"pvc": "data", "hotplug": True})["changed"] is False
    unplugged = run_vol({"name": "data", "state": "absent", "wait": True, "wait_timeout": 5})
    assert unplugged["changed"] and unplugged["method"] == "unplug" and unplugged["volume_status"] is None
    assert client.sub_calls[-1][2:] == ("removevolume", {"name": "data"})
    assert run_vol({"name": "data", "state": "absent"})["changed"] is False
    assert ("PersistentVolumeClaim", "demo", "data") in client.store


def test_hotplug_check_mode_sends_a_dry_run(run_vol, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    result = run_vol({"pvc": "data", "hotplug": True}, check_mode=True)
    assert result["changed"] and client.sub_calls[-1][3]["dryRun"] == ["All"]
    assert volumes_of(client) == ["root"]


def test_missing_claim_is_named(run_vol, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    result = run_vol({"pvc": "nosuch", "hotplug": True})
    assert result["failed"] and result["msg"] == (
        "PersistentVolumeClaim demo/nosuch (volume 'nosuch' of VirtualMachine demo/web1) does not exist; create it "
        "first (virtops.kubevirt.volume with kind: pvc) or check the disk's pvc.")
    missing_dv = run_vol({"data_volume": "nodv"})
    assert missing_dv["failed"] and "DataVolume demo/nodv (volume 'nodv' of VirtualMachine demo/web1) does not exist" \
        in missing_dv["msg"]
    assert client.sub_calls == []


def test_hotplug_over_another_volume_is_refused(run_vol, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    result = run_vol({"name": "root", "pvc": "data", "hotplug": True})
    assert result["failed"] and "has a volume 'root' already" in result["msg"]


def test_hotplug_wait_timeout_says_the_phase(run_vol, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    original = client._volume_status

    def pending(vmi):
        original(vmi)
        for entry in vmi["status"]["volumeStatus"]:
            if entry["name"] == "data":
                entry.update(phase="AttachedToNode", message="attaching")
    client._volume_status = pending
    result = run_vol({"pvc": "data", "hotplug": True, "wait": True, "wait_timeout": 1})
    assert result["failed"] and result["changed"]
    assert "its volumeStatus: phase AttachedToNode, attaching." in result["msg"]


def test_persistent_detach(run_vol, client):
    client.add_vm(vm_obj(strategy="Halted"))
    run_vol({"pvc": "data"})
    result = run_vol({"name": "data", "state": "absent"})
    assert result["changed"] and result["method"] == "spec" and volumes_of(client) == ["root"]
    assert ("PersistentVolumeClaim", "demo", "data") in client.store


# -- vm_nic module -------------------------------------------------------------------------------
NIC = {"name": "br1", "network_name": "br1-net"}


def add_nad(client, name="br1-net", ns="demo"):
    client.put({"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": name, "namespace": ns}, "spec": {"config": "{}"}})


def test_nic_on_a_stopped_vm(run_nic, client):
    add_nad(client)
    client.add_vm(vm_obj(strategy="Halted"))
    result = run_nic(dict(NIC, mac="02:00:00:00:10:01"))
    assert result["changed"] and result["method"] == "spec"
    assert result["interface"] == {"name": "br1", "bridge": {}, "macAddress": "02:00:00:00:10:01"}
    assert not result["restart_required"] and not result["migration_required"] and result["live_update"] is None
    assert run_nic(dict(NIC, mac="02:00:00:00:10:01"))["changed"] is False
    removed = run_nic({"name": "br1", "state": "absent"})
    assert removed["changed"] and removed["method"] == "spec"
    assert client.vm()["spec"]["template"]["spec"]["networks"] == [{"name": "default", "pod": {}}]


def test_nic_on_a_running_vm_restart_required(run_nic, client):
    add_nad(client)
    client.add_vm(vm_obj(), vmi_phase="Running")
    result = run_nic(dict(NIC))
    assert result["changed"] and result["restart_required"] is True and result["migration_required"] is False


def test_nic_live_update_needs_a_migration(run_nic, client, monkeypatch):
    add_nad(client)
    client.add_vm(vm_obj(), vmi_phase="Running")
    # A KubeVirt with LiveUpdate: the template change is no RestartRequired.
    monkeypatch.setattr(vm_volume_flow.operations, "restart_required_after", lambda c, vm, timeout=10: (False, vm, None, ""))
    result = run_nic(dict(NIC))
    assert result["changed"] and result["migration_required"] is True and not result["restart_required"]
    assert "live migration moves the VM into a pod with that interface" in result["live_update"]
    assert "migrate it (migrate: true" in warnings_text(result)
    client.vm()["status"].pop("conditions", None)  # the fake's controller does not know LiveUpdate
    migrated = run_nic(dict(NIC, migrate=True))
    assert migrated["changed"] is True and migrated["migration_required"] is False
    assert migrated["migration"]["target_node"] == "node02"
    assert client.sub_calls[-1][2] == "migrate"


def test_nic_hot_unplug_marks_absent(run_nic, client):
    add_nad(client)
    client.add_vm(vm_obj(interfaces=[{"name": "default", "masquerade": {}}, {"name": "br1", "bridge": {}}],
                         networks=[{"name": "default", "pod": {}}, {"name": "br1", "multus": {"networkName": "br1-net"}}]),
                  vmi_phase="Running")
    result = run_nic({"name": "br1", "state": "absent"})
    assert result["changed"] and result["method"] == "unplug"
    assert client.vm()["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"][1]["state"] == "absent"
    assert run_nic({"name": "br1", "state": "absent"})["changed"] is False
    readded = run_nic(dict(NIC))
    assert readded["changed"] and "state" not in client.vm()["spec"]["template"]["spec"]["domain"]["devices"][
        "interfaces"][1]


def test_nic_errors(run_nic, client):
    client.add_vm(vm_obj(strategy="Halted"))
    missing = run_nic(dict(NIC))
    assert missing["failed"] and missing["msg"] == (
        "NetworkAttachmentDefinition demo/br1-net (network 'br1' of VirtualMachine demo/web1) does not exist; create "
        "it first (virtops.kubevirt.network) or check the network's network_name.")
    add_nad(client)
    client.vm()["spec"]["template"]["spec"]["networks"] = [{"name": "default", "pod": {}}]
    pod = run_nic({"name": "default", "network_name": "br1-net"})
    assert pod["failed"] and "has a pod network named 'default'" in pod["msg"]
    remove_pod = run_nic({"name": "default", "state": "absent"})
    assert remove_pod["failed"] and "is the pod network of" in remove_pod["msg"]
    extra = run_nic({"name": "br1", "state": "absent", "network_name": "x"})
    assert extra["failed"] and "network_name applies to state: present only." == extra["msg"]


def test_nic_check_mode(run_nic, client):
    add_nad(client)
    client.add_vm(vm_obj(strategy="Halted"))
    result = run_nic(dict(NIC), check_mode=True)
    assert result["changed"] and "networks" not in client.vm()["spec"]["template"]["spec"]


# -- issue 14: checked before the first write ----------------------------------------------------------
def test_nic_binding_plugin_must_be_registered(run_nic, client):
    client.add_vm(vm_obj(strategy="Halted"))
    add_nad(client)
    client.put({"apiVersion": "kubevirt.io/v1", "kind": "KubeVirt", "metadata": {"name": "kv", "namespace": "kubevirt"},
                "spec": {"configuration": {"network": {"binding": {}}}}})
    before = client.vm()
    result = run_nic(dict(NIC, binding="brdge"))
    assert result["failed"] and result["msg"].startswith(
        "binding plugin 'brdge' (network 'br1' of VirtualMachine demo/web1) is not registered in the cluster's "
        "KubeVirt CR (spec.configuration.network.binding has none); did you mean bridge?")
    assert client.vm() == before
    checked = run_nic(dict(NIC, binding="brdge"), check_mode=True)
    assert not checked.get("failed") and "binding plugin 'brdge'" in warnings_text(checked)


def test_missing_claim_in_check_mode_is_a_warning_like_the_vm_module(run_vol, client):
    client.add_vm(vm_obj(strategy="Halted"))
    result = run_vol({"pvc": "nosuch"}, check_mode=True)
    assert result["changed"] and not result.get("failed")
    assert "PersistentVolumeClaim demo/nosuch (volume 'nosuch'" in warnings_text(result)


def test_hotplug_wait_timeout_names_the_vms_failure(run_vol, client):
    """virt-controller reports a hot-plug it could not do on the VM only (Failure, HotPlugVolumeError)."""
    client.add_vm(vm_obj(), vmi_phase="Running")
    original = client._volume_status

    def never(vmi):
        original(vmi)
        vmi["status"]["volumeStatus"] = [e for e in vmi["status"]["volumeStatus"] if e["name"] != "data"]
        vm = client.store[("VirtualMachine", "demo", "web1")]
        vm.setdefault("status", {})["conditions"] = [{
            "type": "Failure", "status": "True", "reason": "HotPlugVolumeError",
            "message": "Error encountered while handling volume hotplug requests: no such claim"}]
    client._volume_status = never
    result = run_vol({"pvc": "data", "hotplug": True, "wait": True, "wait_timeout": 1})
    assert result["failed"]
    assert result["msg"].endswith("; VirtualMachine demo/web1 reports Failure=True (HotPlugVolumeError: Error "
                                  "encountered while handling volume hotplug requests: no such claim).")
