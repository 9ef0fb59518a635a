"""plugins/filter/backup.py: the vm_backup role's plan (which VMs get a snapshot), pruning, restore by VM name."""
from datetime import datetime, timezone

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.virtops.kubevirt.plugins.filter import backup as B

SET = {"virtops.kubevirt/backup-set": "nightly"}
OTHER = {"virtops.kubevirt/backup-set": "hourly"}
NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=timezone.utc)


def snap(name, created="2026-12-06T10:00:00Z", labels=None, phase="Succeeded", ready=True):
    return {"name": name, "phase": phase, "ready_to_use": ready, "creation_time": created,
            "labels": SET if labels is None else labels}


def vm(name, *snaps, ns="demo"):
    return {"kind": "VirtualMachine", "name": name, "namespace": ns, "snapshots": list(snaps)}


def test_plan_names_a_snapshot_per_vm():
    long_name = "a" * 47 + "-bc"
    plan = B.vm_backup_plan([vm("web-1"), vm(long_name)], "nightly", "20261206120000", now=NOW)
    assert plan["create"] == [{"namespace": "demo", "vm": "web-1", "name": "web-1-20261206120000"},
                              {"namespace": "demo", "vm": long_name, "name": "a" * 47 + "-20261206120000"}]
    assert all(len(c["name"]) <= 63 for c in plan["create"]) and plan["recent"] == []


def test_min_interval_skips_vms_with_a_recent_snapshot_of_the_set():
    vms = [vm("fresh", snap("fresh-1", "2026-12-06T11:30:00Z")),
           vm("old", snap("old-1", "2026-12-06T10:00:00Z")),
           vm("other-set", snap("o-1", "2026-12-06T11:59:00Z", labels=OTHER)),
           vm("failed", snap("f-1", "2026-12-06T11:59:00Z", phase="Failed", ready=False)),
           vm("making", snap("m-1", None, phase="InProgress", ready=False))]
    plan = B.vm_backup_plan(vms, "nightly", "20261206120000", 3600, now=NOW)
    assert [c["vm"] for c in plan["create"]] == ["old", "other-set", "failed"]
    assert [r["vm"] for r in plan["recent"]] == ["fresh", "making"]
    assert [c["vm"] for c in B.vm_backup_plan(vms, "nightly", "20261206120000", 0, now=NOW)["create"]] == \
        ["fresh", "old", "other-set", "failed", "making"]


def test_prune_keeps_the_newest_ready_ones_of_the_set_only():
    snaps = [snap("w-5", "2026-12-06T11:00:00Z"), snap("w-4", phase="InProgress", ready=False),
             snap("w-3", "2026-12-05T11:00:00Z"), snap("w-2", phase="Failed", ready=False),
             snap("mine", "2026-12-04T11:00:00Z", labels={}), snap("w-1", "2026-12-03T11:00:00Z", labels=OTHER),
             snap("w-0", "2026-12-01T11:00:00Z")]
    out = B.vm_backup_prune([vm("w", *snaps)], "nightly", 2, made=[{"namespace": "demo", "vm": "w", "name": "w-6"}])
    assert [k["name"] for k in out["kept"]] == ["w-6", "w-5", "w-4"]
    assert [d["name"] for d in out["delete"]] == ["w-3", "w-2", "w-0"]
    # the listing shows this run's snapshot already: it is not counted twice
    out = B.vm_backup_prune([vm("w", snap("w-6", "2026-12-06T12:00:00Z"), *snaps)], "nightly", 2,
                            made=[{"namespace": "demo", "vm": "w", "name": "w-6"}])
    assert [k["name"] for k in out["kept"]] == ["w-6", "w-5", "w-4"]
    assert B.vm_backup_prune([vm("w", snap("w-5"))], "nightly", 3)["delete"] == []


def test_latest_ready_snapshot_of_a_vm():
    vms = [vm("w", snap("w-3", phase="InProgress", ready=False), snap("x", labels=OTHER), snap("w-2"), snap("w-1"))]
    assert B.vm_backup_latest(vms, "nightly", "w", "demo") == "w-2"
    with pytest.raises(AnsibleFilterError, match="has no ready snapshot of backup set weekly"):
        B.vm_backup_latest(vms, "weekly", "w")
    with pytest.raises(AnsibleFilterError, match="no VM demo/gone"):
        B.vm_backup_latest(vms, "nightly", "gone", "demo")


@pytest.mark.parametrize("summaries, message", [
    ([{"name": "w", "namespace": "demo"}], "read the VMs with virtops.kubevirt.vm_info summary: true, snapshots: true"),
    ([vm("w", {"name": "s", "phase": "Succeeded"})], "lists snapshot s without its labels"),
    ("nope", "expected vm_info's summaries"),
])
def test_summaries_without_what_the_role_needs_are_refused(summaries, message):
    with pytest.raises(AnsibleFilterError, match=message):
        B.vm_backup_prune(summaries, "nightly", 1)


def test_keep_and_stamp_are_checked():
    with pytest.raises(AnsibleFilterError, match="keep must be 1 or more"):
        B.vm_backup_prune([vm("w")], "nightly", 0)
    with pytest.raises(AnsibleFilterError, match="stamp must be 14 digits"):
        B.vm_backup_plan([vm("w")], "nightly", "2026-12-06")
