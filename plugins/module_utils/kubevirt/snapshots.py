# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KubeVirt's snapshot and restore objects (snapshot.kubevirt.io v1beta1) read the way people ask about them.

Summaries of a VirtualMachineSnapshot (with its content's per-volume status) and of a VirtualMachineRestore,
what the guest-agent freeze did (from the snapshot's indications), which of a VM's volumes KubeVirt can snapshot
(the VM's status.volumeSnapshotStatuses, once KubeVirt has seen the VM's claims), and a VM's snapshots newest
first. Used by vm_snapshot, vm_clone, vm_restore and vm_info (snapshots: true).
"""

from __future__ import annotations

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import errors
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError, KubevirtError, WaitTimeout
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter

SNAPSHOT = res.BY_KIND["VirtualMachineSnapshot"]
CONTENT = res.BY_KIND["VirtualMachineSnapshotContent"]
RESTORE = res.BY_KIND["VirtualMachineRestore"]
API_VERSION = "%s/%s" % (SNAPSHOT.group, SNAPSHOT.version)


def _status(obj):
    return (obj or {}).get("status") or {}


def source_name(snapshot):
    return (((snapshot or {}).get("spec") or {}).get("source") or {}).get("name")


def freeze_state(snapshot):
    """What the guest-agent freeze did, from the snapshot's indications (pkg/storage/snapshot/snapshot.go,
    updateSnapshotSourceIndications): frozen (the agent quiesced the file systems), quiesce_timeout (it did,
    but the freeze window ran out), no_guest_agent and paused (crash-consistent), offline (the VM was stopped:
    nothing to freeze); None while KubeVirt has not said."""
    found = set(_status(snapshot).get("indications") or [])
    if not found:
        return "offline" if _status(snapshot).get("phase") == "Succeeded" else None
    for indication, state in (("QuiesceTimeout", "quiesce_timeout"), ("Paused", "paused"),
                              ("GuestAgent", "frozen"), ("NoGuestAgent", "no_guest_agent")):
        if indication in found:
            return state
    return None


def volume_statuses(content):
    """Per volume of the snapshot: its claim, VolumeSnapshot, readyToUse, creation time and error."""
    statuses = {s.get("volumeSnapshotName"): s for s in _status(content).get("volumeSnapshotStatus") or []}
    out = []
    for backup in ((content or {}).get("spec") or {}).get("volumeBackups") or []:
        vs = statuses.get(backup.get("volumeSnapshotName")) or {}
        out.append({
            "name": backup.get("volumeName"),
            "claim": (((backup.get("persistentVolumeClaim") or {}).get("metadata")) or {}).get("name"),
            "volume_snapshot": backup.get("volumeSnapshotName"),
            "ready_to_use": bool(vs.get("readyToUse")),
            "creation_time": vs.get("creationTime"),
            "error": (vs.get("error") or {}).get("message"),
        })
    return out


def summarize_snapshot(snapshot, content=None):
    if not snapshot:
        return None
    meta = snapshot.get("metadata") or {}
    st = _status(snapshot)
    lists = st.get("snapshotVolumes") or {}
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "vm": source_name(snapshot),
        "phase": st.get("phase") or "Pending",
        "ready_to_use": bool(st.get("readyToUse")),
        "creation_time": st.get("creationTime"),
        "indications": list(st.get("indications") or []),
        "freeze": freeze_state(snapshot),
        "error": (st.get("error") or {}).get("message"),
        "content_name": st.get("virtualMachineSnapshotContentName"),
        "included_volumes": list(lists.get("includedVolumes") or []),
        "excluded_volumes": list(lists.get("excludedVolumes") or []),
        "volumes": volume_statuses(content),
        "deletion_policy": (snapshot.get("spec") or {}).get("deletionPolicy") or "Delete",
    }


def brief(snapshot):
    """The few fields vm_info lists for each of a VM's snapshots; the labels say who made one (the vm_backup
    role prunes only its own)."""
    st = _status(snapshot)
    return {"name": snapshot["metadata"]["name"], "phase": st.get("phase") or "Pending",
            "ready_to_use": bool(st.get("readyToUse")), "creation_time": st.get("creationTime"),
            "labels": dict(snapshot["metadata"].get("labels") or {})}


def newest_first(snapshots):
    """Newest first: by creation time (KubeVirt's, else the object's), then name."""
    def key(snap):
        return (_status(snap).get("creationTime") or (snap.get("metadata") or {}).get("creationTimestamp") or "",
                snap["metadata"]["name"])
    return sorted(snapshots, key=key, reverse=True)


def by_vm(snapshots):
    """{(namespace, vm name): [brief, ...] newest first}."""
    out = {}
    for snap in newest_first(snapshots):
        if ((snap.get("spec") or {}).get("source") or {}).get("kind", "VirtualMachine") != "VirtualMachine":
            continue
        out.setdefault((snap["metadata"].get("namespace"), source_name(snap)), []).append(brief(snap))
    return out


def claim_of(volume):
    if volume.get("persistentVolumeClaim"):
        return volume["persistentVolumeClaim"].get("claimName")
    if volume.get("dataVolume"):
        return volume["dataVolume"].get("name")
    return None


def unsnapshottable_volumes(vm):
    """[(volume, KubeVirt's reason)] for the VM's disk volumes (claims, DataVolumes) that KubeVirt says it cannot
    snapshot (status.volumeSnapshotStatuses, enabled false); a snapshot would leave them out."""
    volumes = {v.get("name"): v for v in (((vm.get("spec") or {}).get("template") or {}).get("spec") or {})
               .get("volumes") or []}
    out = []
    for status in _status(vm).get("volumeSnapshotStatuses") or []:
        volume = volumes.get(status.get("name")) or {}
        if claim_of(volume) and not status.get("enabled"):
            out.append((status.get("name"), status.get("reason") or "no reason given"))
    return out


def claim_not_seen(reason):
    """Is this KubeVirt's reason for a claim it has not seen yet? ("PVC not found" in v1.8; "DV 'ns/name' not
    found" before.) Its snapshot controller says so itself: the status is false until the claim exists."""
    return "not found" in (reason or "")


def judged_volumes(client, vm, timeout):
    """``vm`` once KubeVirt has judged every claim volume it has not seen yet but that is being made (a
    DataVolume template of the VM, a DataVolume, or a claim that exists and KubeVirt has not caught up with):
    right after a VM is created its DataVolumes' claims don't exist yet, and KubeVirt reports those volumes as
    not snapshottable until they do. Returns (the VM, the progress record or None when nothing was awaited).
    A claim nothing is making stays as KubeVirt reports it; past ``timeout`` the VM is returned as last seen."""
    meta = vm["metadata"]
    namespace = meta.get("namespace")
    volumes = {v.get("name"): v for v in (((vm.get("spec") or {}).get("template") or {}).get("spec") or {})
               .get("volumes") or []}
    templates = {(t.get("metadata") or {}).get("name") for t in (vm.get("spec") or {}).get("dataVolumeTemplates") or []}
    awaited = {}
    for name, reason in unsnapshottable_volumes(vm):
        claim = claim_of(volumes.get(name) or {})
        if not claim_not_seen(reason):
            continue
        made = claim in templates
        for resource in (res.PVC, res.DATAVOLUME):
            try:
                made = made or client.get_or_none(resource, claim, namespace) is not None
            except ApiError as exc:
                raise KubevirtError(errors.describe(exc, "read", resource.ref(claim, namespace)))
        if made:
            awaited[name] = claim

    if not awaited:
        return vm, None

    def judged(objects):
        current = objects.get(meta["name"])
        return current is not None and not any(
            claim_not_seen(reason) for name, reason in unsnapshottable_volumes(current) if name in awaited)

    what = "KubeVirt to see the claim%s %s of VirtualMachine %s/%s (made after the VM; until then it says " \
        "those volumes can't be snapshotted)" % ("s" if len(awaited) > 1 else "", ", ".join(sorted(awaited.values())),
                                                 namespace, meta["name"])
    wait = waiter.Wait(client, res.VM, namespace, judged, what, timeout, names=[meta["name"]],
                       resource_version=meta.get("resourceVersion"))
    try:
        record = wait.run()
    except WaitTimeout:
        record = dict(waited_for=what, seconds=timeout, result="timeout")
    return wait.objects.get(meta["name"]) or vm, record


def unseen_note(record):
    """What a refusal adds when judged_volumes gave up waiting: those volumes' claims may just be slow."""
    if not record or record.get("result") == "ok":
        return ""
    return " (after waiting %ds for %s)" % (record["seconds"], record["waited_for"].split(" (")[0])


def summarize_restore(restore):
    if not restore:
        return None
    meta = restore.get("metadata") or {}
    spec = restore.get("spec") or {}
    st = _status(restore)
    conds = {c.get("type"): c for c in st.get("conditions") or []}
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "snapshot": spec.get("virtualMachineSnapshotName"),
        "vm": (spec.get("target") or {}).get("name"),
        "complete": bool(st.get("complete")),
        "restore_time": st.get("restoreTime"),
        "failed": "Failure" in conds,
        "message": (conds.get("Failure") or conds.get("Ready") or {}).get("reason"),
        "volumes": [{"name": r.get("volumeName"), "claim": r.get("persistentVolumeClaim"),
                     "volume_snapshot": r.get("volumeSnapshotName")} for r in st.get("restores") or []],
    }
