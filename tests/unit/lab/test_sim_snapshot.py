"""The simulator's snapshot, restore and CSI snapshot rules (lab/simulator/snapshot.py, restore.py,
csisnapshot.py) as pure functions, without an apiserver."""
import time

import pytest

from simulator import csisnapshot, restore, snapshot, webhooks
from simulator.util import ts


def snap(phase=None, deadline=None, created=None, ready=False, deleting=False):
    obj = {"metadata": {"name": "s1", "namespace": "demo", "uid": "u1",
                        "creationTimestamp": created or ts()},
           "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "web1"}}}
    if deadline is not None:
        obj["spec"]["failureDeadline"] = deadline
    if phase:
        obj["status"] = {"phase": phase, "readyToUse": ready}
    if deleting:
        obj["metadata"]["deletionTimestamp"] = ts()
    return obj


def vm(locked=False):
    out = {"metadata": {"name": "web1", "namespace": "demo", "uid": "vm-uid", "finalizers": []}, "spec": {},
           "status": {}}
    if locked:
        out["status"]["snapshotInProgress"] = "s1"
        out["metadata"]["finalizers"] = [snapshot.SOURCE_FINALIZER]
    return out


def vmi(*conditions):
    return {"metadata": {"name": "web1", "uid": "vmi-uid"},
            "status": {"conditions": [{"type": t, "status": s} for t, s in conditions]}}


@pytest.mark.parametrize("text, seconds", [("5m0s", 300), ("1h30m", 5400), ("90s", 90), ("0s", 0), ("1.5s", 1.5),
                                           (None, None)])
def test_duration(text, seconds):
    assert snapshot.duration(text) == seconds


@pytest.mark.parametrize("the_vmi, found", [
    (None, []),
    (vmi(("AgentConnected", "True")), ["GuestAgent", "Online"]),
    (vmi(), ["NoGuestAgent", "Online"]),
    (vmi(("AgentConnected", "True"), ("Paused", "True")), ["Online", "Paused"]),
])
def test_indications(the_vmi, found):
    assert snapshot.indications(the_vmi) == found


def test_status_in_progress_while_the_source_is_not_locked():
    st = snapshot.snapshot_status(snap("InProgress"), vm(), vmi(), None, "Source not locked source is offline")
    assert st["phase"] == "InProgress" and st["sourceUID"] == "vm-uid" and not st["readyToUse"]
    conds = {c["type"]: c for c in st["conditions"]}
    assert (conds["Progressing"]["status"], conds["Progressing"]["reason"]) == ("False",
                                                                                "Source not locked source is offline")
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("False", "Not ready")
    assert st["sourceIndications"][0] == {"indication": "NoGuestAgent", "message": snapshot.INDICATIONS["NoGuestAgent"]}


def test_status_succeeded_from_the_content():
    content = {"metadata": {"name": "vmsnapshot-content-u1"},
               "spec": {"source": {"virtualMachine": {"spec": {"template": {"spec": {"volumes": [
                   {"name": "root"}, {"name": "data"}]}}}}},
                        "volumeBackups": [{"volumeName": "data"}]},
               "status": {"creationTime": "2026-01-01T00:00:00Z", "readyToUse": True}}
    st = snapshot.snapshot_status(snap("InProgress"), vm(locked=True), None, content, "Source locked and operation "
                                                                                      "in progress")
    assert st["phase"] == "Succeeded" and st["readyToUse"] and st["creationTime"] == "2026-01-01T00:00:00Z"
    assert st["virtualMachineSnapshotContentName"] == "vmsnapshot-content-u1"
    assert st["snapshotVolumes"] == {"includedVolumes": ["data"], "excludedVolumes": ["root"]}
    conds = {c["type"]: c["reason"] for c in st["conditions"]}
    assert conds == {"Progressing": "Operation complete", "Ready": "Ready"}


def test_deadline_exceeded_fails_and_zero_means_none():
    old = ts(snapshot.parse_ts("2020-01-01T00:00:00Z"))
    st = snapshot.snapshot_status(snap("InProgress", deadline="1m", created=old), vm(), None, None, "Source not locked")
    assert st["phase"] == "Failed"
    assert {c["type"]: c["reason"] for c in st["conditions"]}["Failure"] == "snapshot deadline exceeded"
    assert snapshot.until_deadline(snap(deadline="0s", created=old)) == 0
    assert not snapshot.deadline_exceeded(snap("InProgress", deadline="0s", created=old))
    assert 250 < snapshot.until_deadline(snap(), now=time.time()) <= 300


def test_update_condition_keeps_the_transition_time_when_nothing_changes():
    conds = [{"type": "Ready", "status": "False", "reason": "Not ready", "lastTransitionTime": "then"}]
    snapshot.update_condition(conds, snapshot.condition("Ready", "False", "Not ready"))
    assert conds[0]["lastTransitionTime"] == "then"
    snapshot.update_condition(conds, snapshot.condition("Ready", "True", "Ready"))
    assert conds[0]["lastTransitionTime"] != "then" and conds[0]["reason"] == "Ready"


def test_snapshot_class_choice():
    sc = {"metadata": {"name": "lab-local"}, "provisioner": "lab.virtops.io/simulated"}
    one = {"metadata": {"name": "a"}, "driver": "lab.virtops.io/simulated"}
    default = {"metadata": {"name": "b", "annotations": {csisnapshot.DEFAULT_CLASS: "true"}},
               "driver": "lab.virtops.io/simulated"}
    assert snapshot.snapshot_class_name(sc, []) == ("", None)
    assert snapshot.snapshot_class_name(sc, [one]) == ("a", None)
    assert snapshot.snapshot_class_name(sc, [one, default]) == ("b", None)
    assert snapshot.snapshot_class_name(sc, [one, dict(one, metadata={"name": "c"})]) == \
        ("", "2 matching VolumeSnapshotClasses for lab-local")
    assert csisnapshot.snapshot_class_for([one], sc) == (None, "cannot find default snapshot class")
    assert csisnapshot.snapshot_class_for([default], sc)[0] is default
    assert csisnapshot.snapshot_class_for([default], sc, "x") == \
        (None, 'volumesnapshotclass.snapshot.storage.k8s.io "x" not found')


def test_restored_claim_names():
    r = {"metadata": {"uid": "r-uid"}, "spec": {"target": {"name": "web1"}}}
    assert restore.restored_claim(r, "data", "web1-data") == "restore-r-uid-data"
    assert restore.restored_claim(dict(r, spec={"target": {"name": "web1"}, "volumeRestorePolicy": "InPlace"}),
                                  "data", "web1-data") == "web1-data"
    assert restore.restored_claim(dict(r, spec={"target": {"name": "web1"}, "volumeRestoreOverrides": [
        {"volumeName": "data", "restoreName": "mine"}]}), "data", "web1-data") == "mine"


def test_restored_vm_new_and_same():
    r = {"metadata": {"name": "r1", "uid": "r-uid", "namespace": "demo"}, "spec": {"target": {"name": "copy"}}}
    source = {"metadata": {"name": "web1", "labels": {"app": "web"}},
              "spec": {"runStrategy": "Always",
                       "dataVolumeTemplates": [{"metadata": {"name": "web1-root"}, "spec": {}}],
                       "template": {"spec": {"volumes": [{"name": "root", "dataVolume": {"name": "web1-root"}},
                                                         {"name": "data",
                                                          "persistentVolumeClaim": {"claimName": "web1-data"}}]}}}}
    restores = [{"volumeName": "root", "persistentVolumeClaim": "restore-r-uid-root"},
                {"volumeName": "data", "persistentVolumeClaim": "restore-r-uid-data"}]
    new = restore.restored_vm(r, source, None, restores)
    assert new["metadata"]["name"] == "copy" and new["spec"]["runStrategy"] == "Halted"
    assert new["metadata"]["annotations"][restore.LAST_RESTORE] == "r1-r-uid"
    assert "dataVolumeTemplates" not in new["spec"]
    assert [v.get("persistentVolumeClaim") for v in new["spec"]["template"]["spec"]["volumes"]] == [
        {"claimName": "restore-r-uid-root"}, {"claimName": "restore-r-uid-data"}]
    target = {"metadata": {"name": "web1", "namespace": "demo", "uid": "t"}, "spec": {"runStrategy": "Halted"}}
    same = restore.restored_vm(dict(r, spec={"target": {"name": "web1"}}), source, target, restores)
    assert same["metadata"]["uid"] == "t" and same["spec"]["runStrategy"] == "Halted"


@pytest.mark.parametrize("patch, messages", [
    ('{"op": "replace", "path": "/spec/runStrategy", "value": "Halted"}', []),
    ('{"op": "add", "path": "/metadata/labels/x", "value": "y"}', []),
    ('{"op": "replace", "path": "/metadata/name", "value": "other"}',
     ['patching is valid only for elements under /spec/ only:  "path": "/metadata/name"']),
    ('{"op": "replace", "path": "/spec/x", "value": "a:b"}',
     ['patch format is not valid - one ":" expected in a single key-value json patch:  "value": "a:b"']),
])
def test_restore_patches_as_the_admitter_reads_them(patch, messages):
    assert [c["message"] for c in webhooks._patch_causes(patch)] == messages


def _vm(volumes=("a",), run_strategy="Always", snapshot=None, restore=None):
    vm = {"spec": {"runStrategy": run_strategy,
                   "template": {"spec": {"volumes": [{"name": v, "emptyDisk": {}} for v in volumes]}}},
          "status": {}}
    if snapshot:
        vm["status"]["snapshotInProgress"] = snapshot
    if restore:
        vm["status"]["restoreInProgress"] = restore
    return vm


@pytest.mark.parametrize("new, old, message", [
    (_vm(("a", "b"), snapshot="s1"), _vm(), 'Cannot update vm disks or volumes until snapshot "s1" completes'),
    (_vm(run_strategy="Halted", snapshot="s1"), _vm(), 'Cannot update vm running state until snapshot "s1" completes'),
    (_vm(run_strategy="Halted", restore="r1"), _vm(), 'Cannot update VM runStrategy until restore "r1" completes'),
    (_vm(("a", "b"), restore="r1"), _vm(), None),
    (_vm(run_strategy="Halted"), _vm(), None),
])
def test_vm_updates_while_a_snapshot_or_restore_is_in_progress(new, old, message):
    causes = webhooks.validate_snapshot_restore_status(new, old)
    assert [c["message"] for c in causes] == ([message] if message else [])


class Store:
    """A cache store of the simulator (runtime.Store's get_ns / get / items) over a list."""

    def __init__(self, *objs):
        self.objs = list(objs)

    def get_ns(self, namespace, name):
        return next((o for o in self.objs if o["metadata"].get("namespace") == namespace
                     and o["metadata"]["name"] == name), None)

    def get(self, name):
        return next((o for o in self.objs if o["metadata"]["name"] == name), None)

    def items(self, namespace=None):
        return list(self.objs)


def volume_statuses(the_vm, pvcs=(), dvs=()):
    from types import SimpleNamespace
    cache = SimpleNamespace(
        pvcs=Store(*pvcs), dvs=Store(*dvs), vms=Store(the_vm),
        storageclasses=Store({"metadata": {"name": "lab-ssd"}, "provisioner": "lab.csi"},
                             {"metadata": {"name": "lab-nosnap"}, "provisioner": "lab.nosnap"}),
        volumesnapshotclasses=Store({"metadata": {"name": "lab-snap"}, "driver": "lab.csi"}))
    ctl = snapshot.SnapshotController.__new__(snapshot.SnapshotController)
    ctl.sim = SimpleNamespace(cache=cache)
    return {v["name"]: ctl.volume_status(the_vm, v)
            for v in the_vm["spec"]["template"]["spec"]["volumes"]}


def claim(name, storage_class=None):
    return {"metadata": {"name": name, "namespace": "demo"},
            "spec": {"storageClassName": storage_class} if storage_class else {}}


def dv_vm(template_class=None):
    template = {"metadata": {"name": "root-dv"}, "spec": {"storage": {}}}
    if template_class:
        template["spec"] = {"pvc": {"storageClassName": template_class}}
    the_vm = vm()
    the_vm["spec"] = {"dataVolumeTemplates": [template], "template": {"spec": {"volumes": [
        {"name": "root", "dataVolume": {"name": "root-dv"}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
        {"name": "cloudinit", "cloudInitNoCloud": {"userData": "#cloud-config"}}]}}}
    return the_vm


def test_volume_statuses_before_the_claims_exist_say_pvc_not_found():
    """getVolumeStorageClass (v1.8.4): a claim not made yet is 'PVC not found', even for a DataVolume template
    (only a template's spec.pvc class is read, once the DataVolume exists)."""
    statuses = volume_statuses(dv_vm())
    assert statuses["root"] == {"name": "root", "enabled": False, "reason": "PVC not found"}
    assert statuses["data"] == {"name": "data", "enabled": False, "reason": "PVC not found"}
    assert statuses["cloudinit"]["reason"] == "Snapshot is not supported for this volumeSource type [cloudinit]"


def test_volume_statuses_once_the_claims_exist():
    the_vm = dv_vm()
    dv = {"metadata": {"name": "root-dv", "namespace": "demo",
                       "ownerReferences": [{"kind": "VirtualMachine", "name": "web1"}]}, "spec": {"storage": {}}}
    statuses = volume_statuses(the_vm, pvcs=[claim("root-dv", "lab-ssd"), claim("data", "lab-nosnap")], dvs=[dv])
    assert statuses["root"] == {"name": "root", "enabled": True}
    assert statuses["data"]["reason"] == ("No VolumeSnapshotClass: Volume snapshots are not configured for this "
                                          "StorageClass [lab-nosnap] [data]")
    # a claim without a class: KubeVirt looks up the class "" and finds no VolumeSnapshotClass
    statuses = volume_statuses(the_vm, pvcs=[claim("data")], dvs=[dv])
    assert statuses["data"]["reason"].endswith("StorageClass [] [data]")
    # the DataVolume exists, its claim not yet: the owning VM's template's spec.pvc class answers
    statuses = volume_statuses(dv_vm("lab-ssd"), dvs=[dv])
    assert statuses["root"] == {"name": "root", "enabled": True}
