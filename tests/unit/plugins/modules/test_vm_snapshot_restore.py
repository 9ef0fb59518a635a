"""vm_snapshot and vm_restore against a fake client: idempotence by name, what is refused before the first write
(a VM KubeVirt cannot snapshot whole, a snapshot of another VM, a running target, a caller who may not stop it, a
snapshot not ready, another existing VM), check mode; and vm_info's snapshot list."""
import copy

import pytest
from modhelp import run_module
from opsfakes import OpsClient, vm_obj

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError, WaitFailed
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows import vm_restore as restore_flow
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows import vm_snapshot as snapshot_flow
from ansible_collections.virtops.kubevirt.plugins.modules import vm_info, vm_restore, vm_snapshot

NOSNAP = "No VolumeSnapshotClass: Volume snapshots are not configured for this StorageClass [lab-nosnap] [data]"


def data_vm(enabled=True, strategy="Halted"):
    vm = vm_obj(strategy=strategy, disks=[{"name": "root", "disk": {}}, {"name": "data", "disk": {}}],
                volumes=[{"name": "root", "containerDisk": {"image": "quay.io/x:1"}},
                         {"name": "data", "persistentVolumeClaim": {"claimName": "web1-data"}}])
    return vm, [{"name": "root", "enabled": False,
                 "reason": "Snapshot is not supported for this volumeSource type [root]"},
                {"name": "data", "enabled": True} if enabled else {"name": "data", "enabled": False, "reason": NOSNAP}]


def client_with(enabled=True, running=False):
    client = OpsClient()
    vm, statuses = data_vm(enabled, "Always" if running else "Halted")
    stored = client.add_vm(vm, vmi_phase="Running" if running else None)
    stored["status"]["volumeSnapshotStatuses"] = statuses
    client.put(stored)
    return client


def snapshot_obj(name="s1", vm="web1", ready=True, phase="Succeeded", source_uid="uid-web1",
                 created="2026-01-01T00:00:00Z"):
    return {"apiVersion": "snapshot.kubevirt.io/v1beta1", "kind": "VirtualMachineSnapshot",
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": vm}},
            "status": {"phase": phase, "readyToUse": ready, "sourceUID": source_uid, "creationTime": created,
                       "indications": ["GuestAgent", "Online"], "virtualMachineSnapshotContentName": "c-" + name}}


def writes(client):
    return [c for c in client.calls if c[0] in ("PATCH", "POST", "PUT", "DELETE")] + client.sub_calls


@pytest.fixture
def snap(monkeypatch, capsys):
    def run(client, check_mode=False, diff=False, **args):
        return run_module(vm_snapshot, dict({"name": "s1", "namespace": "demo", "vm": "web1", "wait": False}, **args),
                          client, monkeypatch, capsys, check_mode=check_mode, diff=diff)
    return run


@pytest.fixture
def rest(monkeypatch, capsys):
    def run(client, check_mode=False, diff=False, **args):
        return run_module(vm_restore, dict({"name": "r1", "namespace": "demo", "snapshot": "s1", "wait": False},
                                           **args), client, monkeypatch, capsys, check_mode=check_mode, diff=diff)
    return run


# -- vm_snapshot ------------------------------------------------------------------------------------
def test_snapshot_is_created_once_and_found_again(snap):
    client = client_with()
    checked = snap(client, check_mode=True, diff=True)
    assert checked["changed"] and checked["method"] == "create"
    assert checked["diff"]["after"]["spec"]["source"] == {"apiGroup": "kubevirt.io", "kind": "VirtualMachine",
                                                          "name": "web1"}
    assert client.get_or_none(snapshot_flow.snapshots.SNAPSHOT, "s1", "demo") is None
    first = snap(client, failure_deadline="90")
    assert first["changed"] and first["resource"]["spec"]["failureDeadline"] == "90s"
    again = snap(client)
    assert not again["changed"] and again["method"] == "none"


def test_a_snapshot_being_deleted_is_made_again_once_gone(snap):
    # The earlier one is going (its content's finalizer): the task wants a snapshot, so a new one is made.
    client = client_with()
    client.put(snapshot_obj())
    client.being_deleted("VirtualMachineSnapshot", "s1", finalizer="snapshot.kubevirt.io/vmsnapshot-protection")
    assert snap(client, check_mode=True)["method"] == "create"
    made = snap(client)
    assert made["changed"] and made["method"] == "create"
    assert "deletionTimestamp" not in client.get_or_none(snapshot_flow.snapshots.SNAPSHOT, "s1", "demo")["metadata"]


def test_snapshot_of_another_vm_by_that_name_is_an_error(snap):
    client = client_with()
    client.put(snapshot_obj(vm="db1"))
    out = snap(client)
    assert out["failed"]
    assert out["msg"] == ("VirtualMachineSnapshot demo/s1 exists and is a snapshot of VirtualMachine db1, not web1; "
                          "choose another name, or delete it first (state: absent).")


def test_a_vm_kubevirt_cannot_snapshot_whole_is_refused_before_any_write(snap):
    client = client_with(enabled=False)
    out = snap(client)
    assert out["failed"] and writes(client) == []
    assert out["msg"] == ("VirtualMachine demo/web1 cannot be snapshotted whole: volume 'data': %s; put those disks "
                          "on a storage class that has a VolumeSnapshotClass, or set allow_excluded_volumes: true to "
                          "snapshot it without them." % NOSNAP)
    allowed = snap(client, allow_excluded_volumes=True)
    assert allowed["changed"] and "leaves out volume data" in str(allowed["warnings"])


def test_a_snapshot_waits_until_kubevirt_has_seen_a_claim_that_exists(snap):
    # The claim was just made and KubeVirt's status still says it isn't there: the task waits for the new status.
    client = client_with()
    fresh = copy.deepcopy(client.vm())
    stale = copy.deepcopy(fresh)
    stale["status"]["volumeSnapshotStatuses"][1] = {"name": "data", "enabled": False, "reason": "PVC not found"}
    client.put(stale)
    client.put({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "web1-data", "namespace": "demo"}, "spec": {}})
    client.watch_script = [[("ADDED", stale), ("BOOKMARK", {"metadata": {
        "resourceVersion": "998", "annotations": {"k8s.io/initial-events-end": "true"}}}), ("MODIFIED", fresh)]]
    out = snap(client, wait_timeout=5)
    assert out["changed"] and out["method"] == "create", out.get("msg")
    assert out["progress"][0]["waited_for"].startswith("KubeVirt to see the claim web1-data of VirtualMachine demo/web1")


@pytest.mark.parametrize("args, message", [
    ({"vm": None}, "vm is required with state: present (the VirtualMachine to snapshot)."),
    ({"failure_deadline": "soon"}, "failure_deadline 'soon' is not a duration"),
    ({"vm": "Bad_Name"}, "vm"),
])
def test_snapshot_bad_input_fails_before_connecting(snap, args, message):
    client = OpsClient()
    out = snap(client, **args)
    assert out["failed"] and message in out["msg"] and client.calls == []


def test_snapshot_absent_deletes_once(snap):
    client = client_with()
    client.put(snapshot_obj())
    gone = snap(client, state="absent", diff=True)
    assert gone["changed"] and gone["diff"]["after"] == {} and gone["snapshot"] is None
    assert not snap(client, state="absent")["changed"]


def test_snapshot_absent_with_vm_deletes_only_that_vms_snapshot(snap):
    client = client_with()
    client.put(snapshot_obj(vm="db1"))
    out = snap(client, state="absent")       # vm: web1 (the fixture's)
    assert out["failed"] and writes(client) == []
    assert out["msg"] == ("VirtualMachineSnapshot demo/s1 is a snapshot of VirtualMachine db1, not web1; not deleting "
                          "it (leave vm out to delete it whatever its VM).")
    assert snap(client, state="absent", vm=None)["changed"]


def test_ready_check_ends_on_failed_with_kubevirt_reason():
    failed = snapshot_obj(ready=False, phase="Failed")
    failed["status"]["conditions"] = [{"type": "Failure", "status": "True", "reason": "snapshot deadline exceeded"}]
    with pytest.raises(WaitFailed, match="VirtualMachineSnapshot demo/s1 failed: snapshot deadline exceeded;"):
        snapshot_flow.ready_check("s1", "demo")({"s1": failed})
    assert snapshot_flow.ready_check("s1", "demo")({"s1": snapshot_obj()}) is True
    assert snapshot_flow.ready_check("s1", "demo")({"s1": snapshot_obj(ready=False, phase="InProgress")}) is False


@pytest.mark.parametrize("value, expected", [("5m", "5m"), ("1h30m", "1h30m"), ("0s", "0s"), ("120", "120s"),
                                             (None, None)])
def test_failure_deadline(value, expected):
    assert snapshot_flow.failure_deadline(value) == expected


# -- vm_restore -------------------------------------------------------------------------------------
def test_restore_onto_a_running_vm_is_refused_unless_stop_vm(rest):
    client = client_with(running=True)
    client.put(snapshot_obj())
    out = rest(client)
    assert out["failed"] and writes(client) == []
    assert out["msg"] == ("VirtualMachine demo/web1 is running and KubeVirt restores only a stopped VM; stop it "
                          "first (virtops.kubevirt.vm_power state: stopped), or set stop_vm: true to let this task "
                          "stop it and start it again after the restore.")
    predicted = rest(client, check_mode=True, stop_vm=True)
    assert predicted["changed"] and predicted["vm_stopped"] and predicted["vm_started"] and writes(client) == []


def test_a_caller_who_may_not_stop_the_vm_gets_the_403_before_anything_is_made(rest):
    client = client_with(running=True)
    client.put(snapshot_obj())
    client.sub_fail["stop"] = ApiError(403, "PUT", "/x", {
        "kind": "Status", "reason": "Forbidden", "code": 403,
        "message": 'virtualmachines.subresources.kubevirt.io "web1" is forbidden: User "system:serviceaccount:demo:'
                   'viewer" cannot update resource "virtualmachines/stop" in API group "subresources.kubevirt.io" in '
                   'the namespace "demo"'})
    out = rest(client, stop_vm=True)
    assert out["failed"]
    assert out["msg"].startswith("Could not stop VirtualMachine demo/web1: ")
    assert "grant 'update' on virtualmachines/stop in the API group subresources.kubevirt.io" in out["msg"]
    assert client.get_or_none(restore_flow.snapshots.RESTORE, "r1", "demo") is None


def test_restore_with_stop_vm_stops_restores_and_starts(rest, monkeypatch):
    client = client_with(running=True)
    client.put(snapshot_obj())
    monkeypatch.setattr(restore_flow.waiter, "wait_gone", lambda *a, **k: {"waited_for": "gone", "result": "ok"})

    def done(self, restore, name, namespace):
        restore = dict(restore, status={"complete": True, "restoreTime": "2026-01-01T00:00:05Z"})
        return restore, None
    monkeypatch.setattr(restore_flow.VmRestoreRunner, "wait", done)
    out = rest(client, stop_vm=True)
    assert out["changed"] and out["vm_stopped"] and out["vm_started"] and out["restore"]["complete"]
    assert [c[2] for c in client.sub_calls] == ["stop", "start"]
    again = rest(client, stop_vm=True)      # finds r1 (the VM runs again): waits for it, stops nothing
    assert not again["changed"] and not again["vm_stopped"] and len(client.sub_calls) == 2


def test_a_completed_restore_is_left_alone(rest):
    client = client_with()
    client.put(snapshot_obj())
    client.put({"apiVersion": "snapshot.kubevirt.io/v1beta1", "kind": "VirtualMachineRestore",
                "metadata": {"name": "r1", "namespace": "demo"},
                "spec": {"target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "web1"},
                         "virtualMachineSnapshotName": "s1"},
                "status": {"complete": True, "restoreTime": "2026-01-01T00:00:05Z"}})
    out = rest(client)
    assert not out["changed"] and out["restore"]["complete"] and writes(client) == []
    other = rest(client, snapshot="s1", vm="web2")
    assert other["failed"]
    assert "restores snapshot s1 onto VirtualMachine web1, not snapshot s1 onto web2" in other["msg"]


@pytest.mark.parametrize("snapshot, vm, message", [
    (None, None, "VirtualMachineSnapshot demo/s1 does not exist; check snapshot and namespace"),
    (snapshot_obj(ready=False, phase="InProgress"), None, "VirtualMachineSnapshot demo/s1 is not ready to use "
                                                          "(phase InProgress); wait for it"),
    (snapshot_obj(ready=False, phase="Failed"), None, "VirtualMachineSnapshot demo/s1 failed and can't be restored"),
    (snapshot_obj(source_uid="uid-other"), "web1", "Can't restore VirtualMachineSnapshot demo/s1 onto VirtualMachine "
                                                   "demo/web1: restore source and restore target are different but "
                                                   "restore target already exists"),
])
def test_restore_refusals_before_the_first_write(rest, snapshot, vm, message):
    client = client_with()
    if snapshot:
        client.put(snapshot)
    out = rest(client, **({"vm": vm} if vm else {}))
    assert out["failed"] and out["msg"].startswith(message) and writes(client) == []


def test_restore_to_a_new_vm_in_check_mode(rest):
    client = client_with()
    client.put(snapshot_obj())
    out = rest(client, check_mode=True, diff=True, vm="web1-copy")
    assert out["changed"] and out["new_vm"] and not out["vm_stopped"]
    assert out["diff"]["after"]["spec"]["target"]["name"] == "web1-copy" and writes(client) == []


def test_start_vm_needs_stop_vm(rest):
    out = rest(OpsClient(), start_vm=True)
    assert out["failed"] and out["msg"].startswith("start_vm applies with stop_vm: true only")


def test_complete_check_ends_on_failure():
    failed = {"metadata": {"name": "r1"}, "status": {"complete": False, "conditions": [
        {"type": "Failure", "status": "True",
         "reason": "Restore target VMI must be powered off before restore operation"}]}}
    with pytest.raises(WaitFailed, match="VirtualMachineRestore demo/r1 failed: Restore target VMI must be powered"):
        restore_flow.complete_check("r1", "demo")({"r1": failed})


# -- vm_info snapshots: true ------------------------------------------------------------------------
def test_vm_info_lists_each_vms_snapshots_newest_first(monkeypatch, capsys):
    client = client_with()
    client.put(snapshot_obj("old", created="2026-01-01T00:00:00Z"))
    client.put(snapshot_obj("new", created="2026-02-01T00:00:00Z"))
    client.put(snapshot_obj("db", vm="db1"))
    out = run_module(vm_info, {"name": "web1", "namespace": "demo", "snapshots": True}, client, monkeypatch, capsys)
    assert [s["name"] for s in out["summaries"][0]["snapshots"]] == ["new", "old"]
    assert out["summaries"][0]["snapshots"][0] == {"name": "new", "phase": "Succeeded", "ready_to_use": True,
                                                   "creation_time": "2026-02-01T00:00:00Z", "labels": {}}
    labelled = snapshot_obj("nightly", created="2026-03-01T00:00:00Z")
    labelled["metadata"]["labels"] = {"virtops.kubevirt/backup-set": "nightly"}
    client.put(labelled)
    out = run_module(vm_info, {"name": "web1", "namespace": "demo", "snapshots": True}, client, monkeypatch, capsys)
    assert out["summaries"][0]["snapshots"][0]["labels"] == {"virtops.kubevirt/backup-set": "nightly"}
    refused = run_module(vm_info, {"name": "web1", "namespace": "demo", "snapshots": True, "summary": False}, client,
                         monkeypatch, capsys)
    assert refused["failed"] and "it needs summary: true" in refused["msg"]


def gate_refusal(words):
    return ApiError(400, "PATCH", "/x", {
        "kind": "Status", "reason": "BadRequest", "code": 400,
        "message": 'admission webhook "virtualmachinerestore-validator.snapshot.kubevirt.io" denied the request: '
                   + words})


def test_a_restore_kubevirt_refuses_is_refused_before_the_vm_is_stopped(rest):
    # The Snapshot gate off: KubeVirt's dry run says so before the task stops the running VM for nothing.
    client = client_with(running=True)
    client.put(snapshot_obj())
    client.fail[("APPLY", "VirtualMachineRestore")] = gate_refusal("Snapshot/Restore feature gate not enabled")
    out = rest(client, stop_vm=True)
    assert out["failed"] and writes(client) == []
    assert out["msg"] == ("Creating VirtualMachineRestore demo/r1 failed: KubeVirt's Snapshot feature gate is off "
                          "(its webhook: Snapshot/Restore feature gate not enabled); enable the Snapshot feature gate "
                          "in the KubeVirt CR (spec.configuration.developerConfiguration.featureGates) or ask the "
                          "cluster administrator to.")
    checked = rest(client, stop_vm=True, check_mode=True)
    assert checked["failed"] and checked["msg"] == out["msg"]


def test_a_snapshot_without_the_gate_is_one_sentence_naming_it(snap):
    client = client_with()
    client.fail[("APPLY", "VirtualMachineSnapshot")] = gate_refusal("snapshot feature gate not enabled")
    out = snap(client)
    assert out["failed"] and out["msg"].startswith("Creating VirtualMachineSnapshot demo/s1 failed: KubeVirt's "
                                                   "Snapshot feature gate is off (its webhook: snapshot feature gate "
                                                   "not enabled); enable the Snapshot feature gate")
