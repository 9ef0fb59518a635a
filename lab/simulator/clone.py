"""VirtualMachineClone controller (KubeVirt v1.8.4 pkg/virt-controller/watch/clone/{clone,util,vm-target}.go).

A clone of a VM takes a VirtualMachineSnapshot `tmp-snapshot-<clone uid>` of it (event SnapshotCreated) once
every PVC/DataVolume volume of the VM can be snapshotted (its status.volumeSnapshotStatuses; else the clone
stays pending with event VMVolumeSnapshotsInvalid, "Virtual Machine volume X does not support snapshots"). A
clone of a VirtualMachineSnapshot uses that snapshot. Once the snapshot is ready (SnapshotReady) a
VirtualMachineRestore `tmp-restore-<clone uid>` to the target VM is made (RestoreCreated) with JSON patches
that: set each interface's macAddress to spec.newMacAddresses[name] or "" (a new one), the firmware serial
to spec.newSMBiosSerial or "" and the firmware uuid to "" (when the VM has firmware), and remove the labels
and annotations (VM and template) the filters do not keep - filters are Go regular expressions matched
anywhere in the key, `*` keeps all, `!expr` drops what matched; no filters keep everything - then the
user's spec.patches. When the restore stops progressing (RestoreReady) and the target VM exists
(TargetVMCreated) the clone Succeeds; once the restored claims are bound (PVCBound) the restore and the
temporary snapshot are deleted. Phases: SnapshotInProgress, RestoreInProgress, CreatingTargetVM, Succeeded,
Failed; conditions Progressing and Ready with reasons only ("Still processing", "Pending", "Ready",
"Failed" or the reason of the pending/failure). A source that does not exist keeps the clone pending
(event SourceDoesNotExist, "Source doesnt exist: VirtualMachine ns/name"). A Succeeded clone whose target VM
is gone is deleted. Without spec.target KubeVirt's mutating webhook names the target `<source>-clone-<5
random>`: the lab controller writes that name into the spec (lab simplification).
"""
import json
import random
import re
import string

from .kube import VMCLONE, VMRESTORE, VMSNAPSHOT, ApiError, key_of
from .runtime import Controller
from .snapshot import claim_of
from .util import deep, dig, ts

GROUP_VERSION = f"{VMCLONE.group}/{VMCLONE.version}"
LAST_RESTORE = "restore.kubevirt.io/lastRestoreUID"


def clone_owner(clone):
    meta = clone["metadata"]
    return {"apiVersion": GROUP_VERSION, "kind": "VirtualMachineClone", "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def escape(key):
    """RFC 6901 JSON pointer escaping of a map key."""
    return key.replace("~", "~0").replace("/", "~1")


def removals(mapping, filters, base):
    """addRemovePatchesFromFilter: remove ops for the keys the filters do not keep (None: keep all)."""
    if filters is None:
        return []
    regular = [".*" if f == "*" else f for f in filters if not f.startswith("!")]
    negations = [f[1:] for f in filters if f.startswith("!")]
    kept = set()
    for key in mapping or {}:
        if any(_search(f, key) for f in regular):
            kept.add(key)
        if any(_search(f, key) for f in negations):
            kept.discard(key)
    return [{"op": "remove", "path": f"{base}/{escape(key)}"} for key in mapping or {} if key not in kept]


def _search(expr, text):
    try:
        return re.search(expr, text) is not None
    except re.error:
        return False


def generate_patches(source_vm, spec):
    """generatePatches: the JSON patch strings of the restore (KubeVirt's order, then spec.patches)."""
    ops = []
    tspec = dig(source_vm, "spec", "template", "spec", default={}) or {}
    macs = spec.get("newMacAddresses") or {}
    for idx, iface in enumerate(dig(tspec, "domain", "devices", "interfaces", default=[]) or []):
        ops.append({"op": "replace", "path": f"/spec/template/spec/domain/devices/interfaces/{idx}/macAddress",
                    "value": macs.get(iface.get("name"), "")})
    firmware = dig(tspec, "domain", "firmware")
    if firmware is not None:
        ops.append({"op": "replace", "path": "/spec/template/spec/domain/firmware/serial",
                    "value": spec.get("newSMBiosSerial") or ""})
    meta = source_vm.get("metadata") or {}
    template_meta = dig(source_vm, "spec", "template", "metadata", default={}) or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_RESTORE}
    ops += removals(meta.get("labels"), spec.get("labelFilters"), "/metadata/labels")
    ops += removals(annotations, spec.get("annotationFilters"), "/metadata/annotations")
    template = spec.get("template") or {}
    ops += removals(template_meta.get("labels"), template.get("labelFilters"), "/spec/template/metadata/labels")
    ops += removals(template_meta.get("annotations"), template.get("annotationFilters"),
                    "/spec/template/metadata/annotations")
    if firmware is not None:
        ops.append({"op": "replace", "path": "/spec/template/spec/domain/firmware/uuid", "value": ""})
    return [json.dumps(op, separators=(",", ":")) for op in ops] + list(spec.get("patches") or [])


def condition(ctype, status, reason):
    return {"type": ctype, "status": status, "reason": reason, "lastProbeTime": None, "lastTransitionTime": ts()}


def set_conditions(conds, *new):
    """updateCondition with includeReason: replaced when the status or the reason changes."""
    for c in new:
        for i, old in enumerate(conds):
            if old["type"] == c["type"]:
                if old.get("status") != c["status"] or old.get("reason") != c["reason"]:
                    conds[i] = c
                break
        else:
            conds.append(c)
    return conds


class Sync:
    """syncInfoType: what one pass found."""

    def __init__(self):
        self.pending = self.failing = False
        self.event = self.reason = None
        self.snapshot_name = self.restore_name = self.target_name = None
        self.snapshot_ready = self.restore_ready = self.target_created = self.pvc_bound = False


class CloneController(Controller):
    name = "vmclone"
    workers = 2

    def enqueue_namespace(self, namespace):
        for clone in self.sim.cache.clones.items(namespace):
            self.enqueue(key_of(clone))

    def enqueue_owner(self, obj):
        for ref in obj["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "VirtualMachineClone":
                self.enqueue(f"{obj['metadata']['namespace']}/{ref['name']}")

    async def sync(self, key):
        cache = self.sim.cache
        clone = cache.clones.get(key)
        if clone is None:
            return
        ns = clone["metadata"]["namespace"]
        status = clone.get("status") or {}
        if status.get("phase") == "Succeeded" and cache.vms.get_ns(ns, status.get("targetName")) is None:
            if not clone["metadata"].get("deletionTimestamp"):
                await self.sim.kube.delete(VMCLONE, clone["metadata"]["name"], ns)
            return
        if not dig(clone, "spec", "target", "name"):
            await self.name_target(clone)
            return
        info = await self.pass_(clone)
        await self.update_status(clone, info)
        if not (info.pending or info.failing) and status.get("phase") != "Succeeded":
            self.enqueue(key, after=1.0)     # KubeVirt re-enqueues on its informers; the lab also polls slowly

    async def name_target(self, clone):
        source = dig(clone, "spec", "source", "name") or "clone-object"
        suffix = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        body = deep(clone)
        body["spec"]["target"] = {"apiGroup": "kubevirt.io", "kind": "VirtualMachine",
                                  "name": f"{source}-clone-{suffix}"}
        updated = await self.sim.kube.replace(VMCLONE, body)
        self.sim.cache.clones.observe(updated)

    async def pass_(self, clone):
        cache = self.sim.cache
        ns = clone["metadata"]["namespace"]
        status = clone.get("status") or {}
        spec = clone["spec"]
        kind, source_name = dig(spec, "source", "kind"), dig(spec, "source", "name")
        info = Sync()
        store = cache.vms if kind == "VirtualMachine" else cache.vmsnapshots
        source = store.get_ns(ns, source_name)
        if source is None:
            info.pending, info.event = True, "SourceDoesNotExist"
            info.reason = f"Source doesnt exist: {kind} {ns}/{source_name}"
            return info
        snapshot_name = source_name if kind == "VirtualMachineSnapshot" else status.get("snapshotName")
        phase = status.get("phase") or ""
        if phase in ("", "SnapshotInProgress"):
            if kind == "VirtualMachine" and not status.get("snapshotName"):
                return await self.create_snapshot(clone, source, info)
            snap = cache.vmsnapshots.get_ns(ns, snapshot_name)
            if snap is None or not (dig(snap, "status", "readyToUse") and dig(snap, "status", "phase") == "Succeeded"):
                return info
            self.record(clone, "SnapshotReady", f"snapshot {snapshot_name} for clone {clone['metadata']['name']} is "
                                                "ready to use")
            info.snapshot_ready = True
            phase = "RestoreInProgress"
        if phase == "RestoreInProgress":
            snap = cache.vmsnapshots.get_ns(ns, snapshot_name)
            if not status.get("restoreName"):
                return await self.create_restore(clone, snap, info)
            restore = cache.vmrestores.get_ns(ns, status["restoreName"])
            if restore is None or any(c.get("type") == "Progressing" and c.get("status") == "True"
                                      for c in dig(restore, "status", "conditions", default=[])) \
                    or not dig(restore, "status", "conditions"):
                return info
            self.record(clone, "RestoreReady", f"restore {restore['metadata']['name']} for clone "
                                               f"{clone['metadata']['name']} is ready to use")
            info.restore_ready = True
            info.target_name = dig(restore, "spec", "target", "name")
            phase = "CreatingTargetVM"
        if phase == "CreatingTargetVM":
            if cache.vms.get_ns(ns, spec["target"]["name"]) is None:
                return info
            self.record(clone, "TargetVMCreated", f"created target VM {spec['target']['name']} for clone "
                                                  f"{clone['metadata']['name']}")
            info.target_created = True
            phase = "Succeeded"
        if phase == "Succeeded" and status.get("restoreName"):
            restore = cache.vmrestores.get_ns(ns, status["restoreName"])
            for item in dig(restore, "status", "restores", default=[]) or []:
                pvc = cache.pvcs.get_ns(ns, item.get("persistentVolumeClaim"))
                if pvc is None or dig(pvc, "status", "phase") != "Bound":
                    return info
            self.record(clone, "PVCBound", f"all PVC for clone {clone['metadata']['name']} are bound")
            info.pvc_bound = True
            await self.delete_quietly(VMRESTORE, status["restoreName"], ns)
            if kind == "VirtualMachine" and status.get("snapshotName"):
                await self.delete_quietly(VMSNAPSHOT, status["snapshotName"], ns)
        return info

    async def create_snapshot(self, clone, vm, info):
        statuses = {s.get("name"): s for s in dig(vm, "status", "volumeSnapshotStatuses", default=[]) or []}
        problems = []
        for vol in dig(vm, "spec", "template", "spec", "volumes", default=[]) or []:
            if claim_of(vol) is None:
                continue
            st = statuses.get(vol["name"])
            if st is None:
                problems.append(f"Virtual Machine volume {vol['name']} snapshot support unknown")
            elif not st.get("enabled"):
                problems.append(f"Virtual Machine volume {vol['name']} does not support snapshots")
        if problems:
            info.pending, info.event, info.reason = True, "VMVolumeSnapshotsInvalid", "\n".join(problems)
            return info
        ns, name = clone["metadata"]["namespace"], f"tmp-snapshot-{clone['metadata']['uid']}"
        body = {"apiVersion": VMSNAPSHOT.api_version, "kind": "VirtualMachineSnapshot",
                "metadata": {"name": name, "namespace": ns, "ownerReferences": [clone_owner(clone)]},
                "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine",
                                    "name": vm["metadata"]["name"]}}}
        try:
            await self.sim.kube.create(VMSNAPSHOT, body, ns)
            self.record(clone, "SnapshotCreated", f"created snapshot {name} for clone {clone['metadata']['name']}")
        except ApiError as exc:
            if exc.status != 409:
                raise
        info.snapshot_name = name
        return info

    async def create_restore(self, clone, snap, info):
        ns, name = clone["metadata"]["namespace"], f"tmp-restore-{clone['metadata']['uid']}"
        content = self.sim.cache.vmsnapshotcontents.get_ns(ns, dig(snap, "status", "virtualMachineSnapshotContentName"))
        source_vm = dig(content, "spec", "source", "virtualMachine")
        if source_vm is None:
            raise ApiError(404, {"message": f"cannot get VM manifest from snapshot {snap['metadata']['name']}"})
        body = {"apiVersion": VMRESTORE.api_version, "kind": "VirtualMachineRestore",
                "metadata": {"name": name, "namespace": ns, "ownerReferences": [clone_owner(clone)]},
                "spec": {"target": deep(clone["spec"]["target"]),
                         "virtualMachineSnapshotName": snap["metadata"]["name"],
                         "patches": generate_patches(source_vm, clone["spec"])}}
        if dig(clone, "spec", "volumeNamePolicy"):
            body["spec"]["volumeRestorePolicy"] = clone["spec"]["volumeNamePolicy"]
        try:
            await self.sim.kube.create(VMRESTORE, body, ns)
        except ApiError as exc:
            if exc.status != 409:
                msg = f"failed creating restore {name} for clone {clone['metadata']['name']}: {exc}"
                self.sim.recorder.warning(clone, "RestoreCreationFailed", msg)
                raise
        else:
            self.record(clone, "RestoreCreated", f"created restore {name} for clone {clone['metadata']['name']}")
        info.restore_name = name
        return info

    async def delete_quietly(self, res, name, ns):
        try:
            await self.sim.kube.delete(res, name, ns)
        except ApiError as exc:
            if exc.status != 404:
                raise

    def record(self, clone, reason, message):
        self.sim.recorder.normal(clone, reason, message)

    async def update_status(self, clone, info):
        status = deep(clone.get("status") or {})
        conds = status.setdefault("conditions", [])
        if info.pending:
            self.record(clone, info.event, info.reason)
            set_conditions(conds, condition("Progressing", "False", "Pending"),
                           condition("Ready", "False", info.reason))
        elif info.failing:
            self.record(clone, info.event, info.reason)
            status["phase"] = "Failed"
            set_conditions(conds, condition("Progressing", "False", "Failed"), condition("Ready", "False", info.reason))
        else:
            set_conditions(conds, condition("Progressing", "True", "Still processing"),
                           condition("Ready", "False", "Still processing"))
        phase = status.get("phase") or ""
        if phase == "" and not info.pending:
            phase = "SnapshotInProgress"
        if phase == "SnapshotInProgress":
            if info.snapshot_name:
                status["snapshotName"] = info.snapshot_name
            if info.snapshot_ready:
                phase = "RestoreInProgress"
        if phase == "RestoreInProgress":
            if info.restore_name:
                status["restoreName"] = info.restore_name
            if info.restore_ready:
                phase = "CreatingTargetVM"
        if phase == "CreatingTargetVM":
            if info.target_name:
                status["targetName"] = info.target_name
            if info.target_created:
                phase = "Succeeded"
        if phase:
            status["phase"] = phase
        if phase == "Succeeded":
            set_conditions(conds, condition("Progressing", "False", "Ready"), condition("Ready", "True", "Ready"))
        if info.pvc_bound:
            status.pop("snapshotName", None)
            status.pop("restoreName", None)
        if status != (clone.get("status") or {}):
            updated = await self.sim.kube.replace(VMCLONE, dict(clone, status=status), sub="status")
            self.sim.cache.clones.observe(updated)
