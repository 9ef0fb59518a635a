"""Simulator: the CSI snapshot path (external-snapshotter's VolumeSnapshot -> VolumeSnapshotContent) and KubeVirt
v1.8.4's snapshot and restore controllers (VirtualMachineSnapshot, -Content, VirtualMachineRestore), with their
webhooks. Lean: simulated guests only (the real-guest data round trip is in the integration tests)."""
import pytest
from kubernetes.client.rest import ApiException

from sim_helpers import KV, cond, dv_manifest, lab, vm_manifest, wait_for  # noqa: F401

SNAP = ("snapshot.kubevirt.io", "v1beta1")
CSI = ("snapshot.storage.k8s.io", "v1")


def pvc(name, storage_class="lab-local"):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                     "resources": {"requests": {"storage": "1Gi"}}}}


def vm_with_claim(name, claim, run_strategy="Halted"):
    return vm_manifest(name, run_strategy=run_strategy,
                       disks=[{"name": "root", "disk": {"bus": "virtio"}}, {"name": "data", "disk": {"bus": "virtio"}}],
                       volumes=[{"name": "root", "containerDisk": {"image": "quay.io/containerdisks/fedora:41"}},
                                {"name": "data", "persistentVolumeClaim": {"claimName": claim}}])


def snapshot(name, vm):
    return {"apiVersion": "snapshot.kubevirt.io/v1beta1", "kind": "VirtualMachineSnapshot", "metadata": {"name": name},
            "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": vm}}}


def restore(name, snap, target, policy=None):
    spec = {"target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": target},
            "virtualMachineSnapshotName": snap}
    if policy:
        spec["targetReadinessPolicy"] = policy
    return {"apiVersion": "snapshot.kubevirt.io/v1beta1", "kind": "VirtualMachineRestore", "metadata": {"name": name},
            "spec": spec}


def bound_claim(lab, name, storage_class="lab-local"):
    lab.core.create_namespaced_persistent_volume_claim(lab.ns, pvc(name, storage_class))
    wait_for(lambda: lab.core.read_namespaced_persistent_volume_claim(name, lab.ns).status.phase == "Bound",
             what=f"claim {name} bound")


def ready_snapshot(lab, name, timeout=20):
    return wait_for(lambda: (lambda s: s if (s.get("status") or {}).get("readyToUse") else None)(
        lab.get(*SNAP, "virtualmachinesnapshots", name)), timeout=timeout, what=f"snapshot {name} ready")


def test_volume_snapshot_binds_a_content_and_becomes_ready(lab):
    bound_claim(lab, "csi-src")
    lab.create(*CSI, "volumesnapshots", {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                                         "metadata": {"name": "vs1"},
                                         "spec": {"source": {"persistentVolumeClaimName": "csi-src"}}})
    vs = wait_for(lambda: (lambda v: v if (v.get("status") or {}).get("readyToUse") else None)(
        lab.get(*CSI, "volumesnapshots", "vs1")), what="VolumeSnapshot ready")
    content = lab.custom.get_cluster_custom_object(*CSI, "volumesnapshotcontents",
                                                   vs["status"]["boundVolumeSnapshotContentName"])
    assert content["spec"]["volumeSnapshotClassName"] == "lab-snapshots"
    assert content["spec"]["driver"] == "lab.virtops.io/simulated"
    assert content["status"]["snapshotHandle"].startswith("snapshot-")
    assert vs["status"]["restoreSize"] == "1Gi" and vs["status"]["creationTime"]
    # a claim of the class without a VolumeSnapshotClass gets upstream's error, never a content
    bound_claim(lab, "csi-nosnap", "lab-nosnap")
    lab.create(*CSI, "volumesnapshots", {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                                         "metadata": {"name": "vs2"},
                                         "spec": {"source": {"persistentVolumeClaimName": "csi-nosnap"}}})
    err = wait_for(lambda: (lab.get(*CSI, "volumesnapshots", "vs2").get("status") or {}).get("error"),
                   what="VolumeSnapshot error")
    assert err["message"] == ('failed to get input parameters to create snapshot vs2: '
                              '"cannot find default snapshot class"')
    # deletion policy Delete: deleting the snapshot deletes its content
    lab.custom.delete_namespaced_custom_object(*CSI, lab.ns, "volumesnapshots", "vs1")

    def content_gone():
        try:
            lab.custom.get_cluster_custom_object(*CSI, "volumesnapshotcontents", content["metadata"]["name"])
        except ApiException as exc:
            return exc.status == 404
        return False
    wait_for(content_gone, what="content deleted")


def test_a_volume_is_pvc_not_found_until_its_claim_exists(lab):
    """KubeVirt v1.8.4's getVolumeStorageClass: a DataVolume volume whose DataVolume and claim don't exist yet is
    'PVC not found'; once the DataVolume (and CDI's claim) is made, the VM's status says it can be snapshotted."""
    vm = vm_manifest("late-claim", run_strategy="Halted",
                     disks=[{"name": "data", "disk": {"bus": "virtio"}}],
                     volumes=[{"name": "data", "dataVolume": {"name": "late-dv"}}])
    lab.create_vm(vm)
    statuses = wait_for(lambda: (lab.vm("late-claim").get("status") or {}).get("volumeSnapshotStatuses"),
                        what="volumeSnapshotStatuses")
    assert statuses == [{"name": "data", "enabled": False, "reason": "PVC not found"}]
    lab.create_dv(dv_manifest("late-dv", {"blank": {}}, size="4Mi"))
    statuses = wait_for(lambda: (lambda st: st if st and st[0].get("enabled") else None)(
        (lab.vm("late-claim").get("status") or {}).get("volumeSnapshotStatuses")), 30, what="the claim seen")
    assert statuses == [{"name": "data", "enabled": True}]


def test_vm_snapshot_and_restore_to_the_same_and_a_new_vm(lab):
    bound_claim(lab, "data-a")
    lab.create_vm(vm_with_claim("snap-a", "data-a"))
    vm = wait_for(lambda: (lambda v: v if (v.get("status") or {}).get("volumeSnapshotStatuses") else None)(
        lab.vm("snap-a")), what="volumeSnapshotStatuses")
    assert vm["status"]["volumeSnapshotStatuses"] == [
        {"name": "root", "enabled": False, "reason": "Snapshot is not supported for this volumeSource type [root]"},
        {"name": "data", "enabled": True}]
    lab.create(*SNAP, "virtualmachinesnapshots", snapshot("s1", "snap-a"))
    snap = ready_snapshot(lab, "s1")
    st = snap["status"]
    assert st["phase"] == "Succeeded" and st["sourceUID"] == vm["metadata"]["uid"]
    assert st["snapshotVolumes"] == {"includedVolumes": ["data"], "excludedVolumes": ["root"]}
    assert cond(snap, "Ready")["reason"] == "Ready" and cond(snap, "Progressing")["reason"] == "Operation complete"
    assert "indications" not in st      # offline: no indications
    assert "snapshot.kubevirt.io/vmsnapshot-protection" in snap["metadata"]["finalizers"]
    content = lab.get(*SNAP, "virtualmachinesnapshotcontents", st["virtualMachineSnapshotContentName"])
    [backup] = content["spec"]["volumeBackups"]
    assert backup["volumeSnapshotName"] == f"vmsnapshot-{snap['metadata']['uid']}-volume-data"
    # the source is unlocked again
    vm = wait_for(lambda: (lambda v: v if not (v.get("status") or {}).get("snapshotInProgress") else None)(
        lab.vm("snap-a")), what="source unlocked")
    assert "snapshot.kubevirt.io/snapshot-source-protection" not in (vm["metadata"].get("finalizers") or [])
    lab.wait_event("s1", "SuccessfulVirtualMachineSnapshotContentCreate", kind="VirtualMachineSnapshot")

    # restore to the same (stopped) VM: a new claim from the VolumeSnapshot, the VM's volume renamed
    lab.create(*SNAP, "virtualmachinerestores", restore("r1", "s1", "snap-a"))
    done = wait_for(lambda: (lambda r: r if (r.get("status") or {}).get("complete") else None)(
        lab.get(*SNAP, "virtualmachinerestores", "r1")), what="restore complete")
    [item] = done["status"]["restores"]
    claim = lab.core.read_namespaced_persistent_volume_claim(item["persistentVolumeClaim"], lab.ns)
    assert claim.spec.data_source.kind == "VolumeSnapshot"
    assert claim.spec.data_source.name == backup["volumeSnapshotName"]
    assert done["status"]["restoreTime"] and cond(done, "Ready")["reason"] == "Operation complete"
    vm = lab.vm("snap-a")
    assert {v["name"]: v for v in vm["spec"]["template"]["spec"]["volumes"]}["data"]["persistentVolumeClaim"] == \
        {"claimName": item["persistentVolumeClaim"]}
    assert vm["metadata"]["annotations"]["restore.kubevirt.io/lastRestoreUID"] == f"r1-{done['metadata']['uid']}"
    lab.wait_event("r1", "VirtualMachineRestoreComplete", kind="VirtualMachineRestore")

    # restore to a new VM: KubeVirt creates it, Halted
    lab.create(*SNAP, "virtualmachinerestores", restore("r2", "s1", "snap-a-copy"))
    wait_for(lambda: (lab.get(*SNAP, "virtualmachinerestores", "r2").get("status") or {}).get("complete"),
             what="restore to a new VM complete")
    assert lab.vm("snap-a-copy")["spec"]["runStrategy"] == "Halted"


def test_restore_onto_a_running_vm_waits_or_stops_it(lab):
    bound_claim(lab, "data-b")
    lab.create_vm(vm_with_claim("snap-b", "data-b", run_strategy="Always"))
    lab.wait_running("snap-b")
    lab.create(*SNAP, "virtualmachinesnapshots", snapshot("s2", "snap-b"))
    snap = ready_snapshot(lab, "s2")
    # the simulated Fedora guest has an agent: the snapshot froze it and thawed it again
    assert snap["status"]["indications"] == ["GuestAgent", "Online"]
    assert [i["indication"] for i in snap["status"]["sourceIndications"]] == ["GuestAgent", "Online"]
    lab.wait_event("snap-b", "UnfreezeVirtualMachine", kind="VirtualMachineInstance")
    lab.create(*SNAP, "virtualmachinerestores", restore("r3", "s2", "snap-b"))
    waiting = wait_for(lambda: (lambda r: r if cond(r, "Ready") and "powered off" in cond(r, "Ready")["reason"]
                                else None)(lab.get(*SNAP, "virtualmachinerestores", "r3")), what="waiting restore")
    assert cond(waiting, "Ready")["reason"].startswith("Waiting for target VM to be powered off")
    # a second restore of the same target is refused while the first is unfinished
    with pytest.raises(ApiException) as err:
        lab.create(*SNAP, "virtualmachinerestores", restore("r4", "s2", "snap-b", policy="StopTarget"))
    assert 'VirtualMachineRestore \\"r3\\" in progress' in err.value.body
    lab.custom.delete_namespaced_custom_object(*SNAP, lab.ns, "virtualmachinerestores", "r3")
    wait_for(lambda: not any(r["metadata"]["name"] == "r3" for r in lab.custom.list_namespaced_custom_object(
        *SNAP, lab.ns, "virtualmachinerestores")["items"]), what="r3 gone")
    lab.create(*SNAP, "virtualmachinerestores", restore("r4", "s2", "snap-b", policy="StopTarget"))
    wait_for(lambda: (lab.get(*SNAP, "virtualmachinerestores", "r4").get("status") or {}).get("complete"),
             timeout=30, what="StopTarget restore complete")
    assert lab.vm("snap-b")["spec"]["runStrategy"] == "Halted"
    lab.wait_event("r4", "RestoreTargetNotReady", contains="Automatically stopping", kind="VirtualMachineRestore")


def test_snapshot_webhook_rejects_a_bad_source(lab):
    bad = snapshot("s-bad", "x")
    bad["spec"]["source"]["kind"] = "Pod"
    with pytest.raises(ApiException) as err:
        lab.create(*SNAP, "virtualmachinesnapshots", bad)
    assert "invalid kind" in err.value.body


def test_a_running_real_guest_is_frozen_and_thawed_through_its_agent(lab, lab_state):
    """With a real guest (lab/guest's qemu-ga), the snapshot's freeze and thaw are guest-fsfreeze-freeze/-thaw."""
    bound_claim(lab, "data-real")
    manifest = vm_with_claim("snap-real", "data-real", run_strategy="Always")
    manifest["spec"]["template"]["metadata"]["annotations"] = {"lab.virtops.io/guest": "real"}
    lab.create_vm(manifest)
    lab.wait_running("snap-real", timeout=90)
    wait_for(lambda: cond(lab.vmi("snap-real"), "AgentConnected"), timeout=90, what="the real agent connected")
    lab.create(*SNAP, "virtualmachinesnapshots", snapshot("s-real", "snap-real"))
    snap = ready_snapshot(lab, "s-real", timeout=60)
    assert snap["status"]["indications"] == ["GuestAgent", "Online"]
    assert "error" not in snap["status"]        # an agent refusal would be the content's (and so the snapshot's) error
    lab.wait_event("snap-real", "FreezeVirtualMachine", kind="VirtualMachineInstance")
    lab.wait_event("snap-real", "UnfreezeVirtualMachine", kind="VirtualMachineInstance")
    # the guest's own agent says its file systems are thawed again
    from test_real_guests import guest_of
    guest, _pid = guest_of(lab_state, lab.vmi("snap-real"))
    assert guest.agent("guest-fsfreeze-status", timeout=5) == "thawed"
