"""KubeVirt's snapshot controller (v1.8.4 pkg/storage/snapshot/snapshot.go, source.go, util.go).

VirtualMachineSnapshot: a finalizer; the source VM is locked (status.snapshotInProgress = the snapshot, finalizer
snapshot.kubevirt.io/snapshot-source-protection) once its claims are bound and, for a stopped VM, no pod uses
them; then a VirtualMachineSnapshotContent `vmsnapshot-content-<uid>` holds the VM (metadata and spec) and one
volumeBackup per claim whose StorageClass has a VolumeSnapshotClass. The content's controller freezes a running
guest that has an agent (qemu-ga guest-fsfreeze-freeze on a real guest), creates the VolumeSnapshots
`vmsnapshot-<uid>-volume-<volume>`, thaws the guest once all are created, and reports readyToUse. The snapshot's
status follows: phase InProgress -> Succeeded (or Failed past failureDeadline, default 5m), conditions Progressing /
Ready / Failure with KubeVirt's reasons, indications + sourceIndications of an online source, snapshotVolumes,
then the source is unlocked. Deletion deletes the content under deletionPolicy Delete (the default) or when it
is not ready. Every VM also gets status.volumeSnapshotStatuses (which volumes can be snapshotted, and why not).
"""
import re
import time

from .csisnapshot import DEFAULT_CLASS
from .kube import VM, VMSNAPSHOT, VMSNAPSHOT_CONTENT, VOLUME_SNAPSHOT, ApiError
from .runtime import Controller
from .util import deep, dig, has_condition, owner_ref, parse_ts, ts

SNAPSHOT_FINALIZER = "snapshot.kubevirt.io/vmsnapshot-protection"
CONTENT_FINALIZER = "snapshot.kubevirt.io/vmsnapshotcontent-protection"
SOURCE_FINALIZER = "snapshot.kubevirt.io/snapshot-source-protection"
SOURCE_NAME_LABEL = "snapshot.kubevirt.io/source-vm-name"
SOURCE_NAMESPACE_LABEL = "snapshot.kubevirt.io/source-vm-namespace"
DEFAULT_FAILURE_DEADLINE = 300.0
DEADLINE_EXCEEDED = "snapshot deadline exceeded"
RETRY = 5.0
INDICATIONS = {
    "Online": "Snapshot taken while the VM was running. Consistency depends on guest-agent quiescing.",
    "GuestAgent": "Guest agent was active and attempted to quiesce the filesystem for application consistency.",
    "NoGuestAgent": "Guest agent was not available. Snapshot is crash-consistent and may not be "
                    "application-consistent.",
    "Paused": "Snapshot taken while the VM was paused. Snapshot is crash-consistent and may not be "
              "application-consistent.",
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)")
_UNIT = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def duration(text):
    """A metav1.Duration string ("5m0s") in seconds."""
    if text in (None, ""):
        return None
    return sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(str(text)))


def failure_deadline(snap):
    value = duration(dig(snap, "spec", "failureDeadline"))
    return DEFAULT_FAILURE_DEADLINE if value is None else value


def until_deadline(snap, now=None):
    """timeUntilDeadline: seconds left (0 = no deadline)."""
    deadline = failure_deadline(snap)
    if deadline == 0:
        return 0
    created = parse_ts(snap["metadata"].get("creationTimestamp"))
    return (created.timestamp() + deadline) - (now or time.time()) if created else deadline


def phase(snap):
    return dig(snap, "status", "phase")


def progressing(snap):
    return phase(snap) not in ("Failed", "Succeeded")


def deleting(obj):
    return obj is not None and bool(obj["metadata"].get("deletionTimestamp"))


def deadline_exceeded(snap, now=None):
    if phase(snap) == "Failed":
        return True
    if not progressing(snap):
        return False
    return until_deadline(snap, now) < 0


def terminating(snap):
    return deleting(snap) or deadline_exceeded(snap)


def content_name(snap):
    return dig(snap, "status", "virtualMachineSnapshotContentName") or \
        f"vmsnapshot-content-{snap['metadata']['uid']}"


def content_ready(content):
    return bool(dig(content, "status", "readyToUse"))


def should_delete_content(snap, content):
    return dig(snap, "spec", "deletionPolicy") in (None, "Delete") or not content_ready(content)


def locked_by(vm, snap):
    return dig(vm, "status", "snapshotInProgress") == snap["metadata"]["name"] and \
        SOURCE_FINALIZER in (vm["metadata"].get("finalizers") or [])


def condition(ctype, status, reason):
    return {"type": ctype, "status": status, "reason": reason, "lastProbeTime": None, "lastTransitionTime": ts()}


def update_condition(conditions, new):
    """updateCondition: a condition is replaced only when its status or reason changes."""
    for i, c in enumerate(conditions):
        if c["type"] == new["type"]:
            if c.get("status") != new["status"] or c.get("reason") != new["reason"]:
                conditions[i] = new
            return conditions
    conditions.append(new)
    return conditions


def claim_of(volume):
    """The claim a snapshottable volume uses (persistentVolumeClaim or dataVolume), or None."""
    if volume.get("persistentVolumeClaim"):
        return volume["persistentVolumeClaim"].get("claimName")
    if volume.get("dataVolume"):
        return volume["dataVolume"].get("name")
    return None


def snapshot_class_name(storage_class, classes):
    """getVolumeSnapshotClassName: (name or "", error)."""
    if storage_class is None:
        return "", None
    matches = [c for c in classes if c.get("driver") == storage_class.get("provisioner")]
    if not matches:
        return "", None
    if len(matches) == 1:
        return matches[0]["metadata"]["name"], None
    for c in matches:
        if DEFAULT_CLASS in (c["metadata"].get("annotations") or {}):
            return c["metadata"]["name"], None
    return "", f"{len(matches)} matching VolumeSnapshotClasses for {storage_class['metadata']['name']}"


def indications(vmi):
    """updateSnapshotSourceIndications for a source whose VMI is `vmi` (None: offline, no indications)."""
    if vmi is None:
        return []
    found = {"Online"}
    if has_condition(vmi, "Paused", "True"):
        found.add("Paused")
    elif has_condition(vmi, "AgentConnected"):
        found.add("GuestAgent")
    else:
        found.add("NoGuestAgent")
    return sorted(found)


def snapshot_status(snap, vm, vmi, content, lock_msg):
    """updateSnapshotStatus (without the write): the VirtualMachineSnapshot's new status."""
    st = deep(snap.get("status") or {"readyToUse": False})
    if vm is not None:
        st["sourceUID"] = vm["metadata"]["uid"]
    if content is not None and content.get("status") is not None:
        cst = content["status"]
        st["virtualMachineSnapshotContentName"] = content["metadata"]["name"]
        for field in ("creationTime", "readyToUse", "error"):
            if cst.get(field) is not None:
                st[field] = cst[field]
            else:
                st.pop(field, None)
    conds = st.setdefault("conditions", [])
    view = dict(snap, status=st)
    if deadline_exceeded(view):
        st["phase"] = "Failed"
        update_condition(conds, condition("Failure", "True", DEADLINE_EXCEEDED))
        update_condition(conds, condition("Progressing", "False", "Operation failed"))
    elif st.get("phase") == "Succeeded" or st.get("creationTime"):
        st["phase"] = "Succeeded"
        update_condition(conds, condition("Progressing", "False", "Operation complete"))
        if content is not None:
            st["snapshotVolumes"] = snapshot_volumes(content)
    else:
        st["phase"] = "InProgress"
        if vm is not None:
            locked = locked_by(vm, snap)
            update_condition(conds, condition("Progressing", "True" if locked else "False", lock_msg))
            found = indications(vmi)
            if found:
                st["indications"] = found
                st["sourceIndications"] = [{"indication": i, "message": INDICATIONS[i]} for i in found]
            else:
                st.pop("indications", None)
                st.pop("sourceIndications", None)
        else:
            update_condition(conds, condition("Progressing", "False", "Source does not exist"))
        if deleting(snap):
            st["phase"] = "Deleting"
            update_condition(conds, condition("Progressing", "False", "VM snapshot is deleting"))
    ready = bool(st.get("readyToUse"))
    update_condition(conds, condition("Ready", "True" if ready else "False", "Ready" if ready else "Not ready"))
    if st.get("error") is not None:
        update_condition(conds, condition("Progressing", "False", "In error state"))
    return st


def snapshot_volumes(content):
    """updateSnapshotSnapshotableVolumes: the source's volumes that were (not) snapshotted."""
    vm = dig(content, "spec", "source", "virtualMachine")
    volumes = dig(vm, "spec", "template", "spec", "volumes", default=[]) or []
    backed = {b["volumeName"] for b in dig(content, "spec", "volumeBackups", default=[]) or []}
    out = {}
    included = [v["name"] for v in volumes if v["name"] in backed]
    excluded = [v["name"] for v in volumes if v["name"] not in backed]
    if included:
        out["includedVolumes"] = included
    if excluded:
        out["excludedVolumes"] = excluded
    return out


class SnapshotController(Controller):
    """Keys: "snap/<ns>/<name>", "content/<ns>/<name>", "vm/<ns>/<name>" (the VM's volumeSnapshotStatuses)."""

    name = "vmsnapshot"
    workers = 2

    def __init__(self, sim):
        super().__init__(sim)
        self.frozen = set()     # VMI uids this controller froze (virt-launcher's fsFreezeStatus)

    async def sync(self, key):
        kind, _, rest = key.partition("/")
        if kind == "snap":
            await self.sync_snapshot(rest)
        elif kind == "content":
            await self.sync_content(rest)
        else:
            await self.sync_vm(rest)

    # ------------------------------------------------------------------ VM volumeSnapshotStatuses
    def volume_status(self, vm, volume):
        """getVolumeSnapshotStatus."""
        name = volume["name"]
        if claim_of(volume) is None and not volume.get("memoryDump"):
            return {"name": name, "enabled": False,
                    "reason": f"Snapshot is not supported for this volumeSource type [{name}]"}
        sc_name, err = self.volume_storage_class(vm, volume)
        if err:
            return {"name": name, "enabled": False, "reason": err}
        snap_class, err = snapshot_class_name(self.sim.cache.storageclasses.get(sc_name),
                                              self.sim.cache.volumesnapshotclasses.items())
        if err:
            return {"name": name, "enabled": False, "reason": err}
        if not snap_class:
            return {"name": name, "enabled": False,
                    "reason": "No VolumeSnapshotClass: Volume snapshots are not configured for this StorageClass "
                              f"[{sc_name}] [{name}]"}
        return {"name": name, "enabled": True}

    def volume_storage_class(self, vm, volume):
        """getVolumeStorageClass: (StorageClass name, error). A claim not made yet is "PVC not found": KubeVirt
        reports the volume as not snapshottable until the claim exists (its own comment says so)."""
        ns = vm["metadata"]["namespace"]
        cache = self.sim.cache

        def of_claim(claim):
            pvc = cache.pvcs.get_ns(ns, claim)
            if pvc is None:
                return "", "PVC not found"
            return dig(pvc, "spec", "storageClassName") or "", None

        if volume.get("persistentVolumeClaim") or volume.get("memoryDump"):
            return of_claim(claim_of(volume) or volume["memoryDump"].get("claimName"))
        # getStorageClassNameForDV: the DataVolume's spec.pvc class, then the owning VM's template's, then the claim's
        dv_name = volume["dataVolume"].get("name")
        dv = cache.dvs.get_ns(ns, dv_name)
        if dv is None:
            return of_claim(dv_name)
        if dig(dv, "spec", "pvc", "storageClassName"):
            return dv["spec"]["pvc"]["storageClassName"], None
        for ref in dv["metadata"].get("ownerReferences") or []:
            owner = cache.vms.get_ns(ns, ref.get("name")) if ref.get("kind") == "VirtualMachine" else None
            for template in dig(owner, "spec", "dataVolumeTemplates", default=[]) or []:
                if template["metadata"]["name"] == dv_name and dig(template, "spec", "pvc", "storageClassName"):
                    return template["spec"]["pvc"]["storageClassName"], None
        return of_claim(dv_name)

    async def sync_vm(self, key):
        vm = self.sim.cache.vms.get(key)
        if vm is None or deleting(vm):
            return
        volumes = dig(vm, "spec", "template", "spec", "volumes", default=[]) or []
        statuses = [self.volume_status(vm, v) for v in volumes]
        if statuses == (dig(vm, "status", "volumeSnapshotStatuses") or []):
            return
        await self._vm_status(vm, {"volumeSnapshotStatuses": statuses or None})

    async def _vm_status(self, vm, patch):
        try:
            patched = await self.sim.kube.patch(VM, vm["metadata"]["name"], {"status": patch},
                                                vm["metadata"]["namespace"], sub="status")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        self.sim.cache.vms.observe(patched)
        return patched

    async def _vm_finalizers(self, vm, finalizers):
        patched = await self.sim.kube.patch(VM, vm["metadata"]["name"], [
            {"op": "test", "path": "/metadata/resourceVersion", "value": vm["metadata"]["resourceVersion"]},
            {"op": "add", "path": "/metadata/finalizers", "value": finalizers}],
            vm["metadata"]["namespace"], kind="json")
        self.sim.cache.vms.observe(patched)
        return patched

    async def _finalizers(self, res, obj, finalizers):
        try:
            patched = await self.sim.kube.patch(res, obj["metadata"]["name"], [
                {"op": "test", "path": "/metadata/resourceVersion", "value": obj["metadata"]["resourceVersion"]},
                {"op": "add", "path": "/metadata/finalizers", "value": finalizers}],
                obj["metadata"]["namespace"], kind="json")
        except ApiError as exc:
            if exc.status == 404:
                return None
            if exc.status == 422:
                raise ApiError(409, exc.body) from None
            raise
        (self.sim.cache.vmsnapshots if res is VMSNAPSHOT else self.sim.cache.vmsnapshotcontents).observe(patched)
        return patched

    # ---------------------------------------------------------------------------- source lock
    def lock_problem(self, vm, snap, online):
        """Why Lock() cannot lock the source now ("" when it can)."""
        ns = vm["metadata"]["namespace"]
        claims = [c for c in (claim_of(v) for v in dig(vm, "spec", "template", "spec", "volumes", default=[]) or [])
                  if c]
        where = f" source {ns}/{vm['metadata']['name']}"
        for claim in claims:
            pvc = self.sim.cache.pvcs.get_ns(ns, claim)
            if pvc is None:
                return where + f" volume doesnt exist: {claim}"
            if deleting(pvc):
                return where + f" volume is being deleted: {claim}"
            if dig(pvc, "status", "phase") != "Bound":
                return where + f" volume not bound: {claim}"
            dv = self.sim.cache.dvs.get_ns(ns, claim)
            if dv is not None and dig(dv, "status", "phase") != "Succeeded":
                return where + f" volume not populated: {claim}"
        if not online:
            users = [p for p in self.sim.cache.pods.items(ns)
                     if dig(p, "status", "phase") not in ("Succeeded", "Failed")
                     and any(dig(v, "persistentVolumeClaim", "claimName") in claims
                             for v in dig(p, "spec", "volumes", default=[]) or [])]
            if users:
                return f" source is offline but {len(users)} pods using PVCs {sorted(claims)}"
        busy = dig(vm, "status", "snapshotInProgress")
        if busy and busy != snap["metadata"]["name"]:
            return f' snapshot "{busy}" in progress'
        return ""

    async def lock(self, vm, snap, online):
        """Lock(): (locked, lock message)."""
        problem = self.lock_problem(vm, snap, online)
        if problem:
            return False, "Source not locked" + problem
        if dig(vm, "status", "snapshotInProgress") is None:
            vm = await self._vm_status(vm, {"snapshotInProgress": snap["metadata"]["name"]})
            if vm is None:
                return False, "Source not locked"
        if SOURCE_FINALIZER not in (vm["metadata"].get("finalizers") or []):
            await self._vm_finalizers(vm, (vm["metadata"].get("finalizers") or []) + [SOURCE_FINALIZER])
        return True, "Source locked and operation in progress"

    async def unlock(self, vm, snap):
        if dig(vm, "status", "snapshotInProgress") != snap["metadata"]["name"]:
            return vm
        if SOURCE_FINALIZER in (vm["metadata"].get("finalizers") or []):
            vm = await self._vm_finalizers(vm, [f for f in vm["metadata"]["finalizers"] if f != SOURCE_FINALIZER])
        return await self._vm_status(vm, {"snapshotInProgress": None})

    # -------------------------------------------------------------------------------- freeze
    def _agent(self, vmi):
        return vmi is not None and has_condition(vmi, "AgentConnected") and not has_condition(vmi, "Paused", "True")

    async def freeze(self, vm, snap, vmi):
        """Freeze(): quiesce a running guest with an agent (no-op offline, paused or without an agent)."""
        if not locked_by(vm, snap):
            raise RuntimeError("attempting to freeze unlocked VM")
        if not self._agent(vmi) or vmi["metadata"]["uid"] in self.frozen:
            return
        if self.sim.guests.guest_for(vmi) is not None:
            await self.sim.guests.agent_call(vmi, "guest-fsfreeze-freeze")
        self.frozen.add(vmi["metadata"]["uid"])
        self.sim.recorder.normal(vmi, "FreezeVirtualMachine", "VirtualMachineInstance frozen", "virt-handler")

    async def unfreeze(self, snap):
        if snap is None:
            return
        vmi = self.sim.cache.vmis.get_ns(snap["metadata"]["namespace"], dig(snap, "spec", "source", "name"))
        if vmi is None or vmi["metadata"]["uid"] not in self.frozen:
            return
        if self.sim.guests.guest_for(vmi) is not None:
            await self.sim.guests.agent_call(vmi, "guest-fsfreeze-thaw")
        self.frozen.discard(vmi["metadata"]["uid"])
        self.sim.recorder.normal(vmi, "UnfreezeVirtualMachine", "VirtualMachineInstance unfrozen", "virt-handler")

    # ------------------------------------------------------------------------------ snapshot
    async def sync_snapshot(self, key):
        cache = self.sim.cache
        snap = cache.vmsnapshots.get(key)
        if snap is None:
            return
        ns = snap["metadata"]["namespace"]
        source_kind = dig(snap, "spec", "source", "kind")
        vm = cache.vms.get_ns(ns, dig(snap, "spec", "source", "name")) if source_kind == "VirtualMachine" else None
        vmi = cache.vmis.get_ns(ns, vm["metadata"]["name"]) if vm is not None else None
        content = cache.vmsnapshotcontents.get_ns(ns, content_name(snap))
        ending = terminating(snap)
        if not ending and SNAPSHOT_FINALIZER not in (snap["metadata"].get("finalizers") or []):
            snap = await self._finalizers(VMSNAPSHOT, snap, (snap["metadata"].get("finalizers") or [])
                                          + [SNAPSHOT_FINALIZER])
            if snap is None:
                return
        can_remove_finalizer = True
        lock_msg = "Source not locked"
        retry = None
        if snap.get("status") is not None and vm is not None:
            if progressing(snap) and not ending:
                if not locked_by(vm, snap):
                    _locked, lock_msg = await self.lock(vm, snap, vmi is not None)
                    retry = RETRY
                else:
                    lock_msg = "Source locked and operation in progress"
                    if content is None:
                        content = await self.create_content(snap, vm, vmi)
                can_remove_finalizer = False
            else:
                if not progressing(snap) or (ending and (content is None
                                                         or not should_delete_content(snap, content))):
                    vm = await self.unlock(vm, snap) or vm
                can_remove_finalizer = not locked_by(vm, snap)
                lock_msg = "Source locked and operation in progress" if locked_by(vm, snap) else lock_msg
        if ending and content is not None and should_delete_content(snap, content) and not deleting(content):
            await self.sim.kube.delete(VMSNAPSHOT_CONTENT, content["metadata"]["name"], ns)
        vm = cache.vms.get_ns(ns, dig(snap, "spec", "source", "name")) if vm is not None else None
        st = snapshot_status(snap, vm, vmi, content, lock_msg)
        if st != snap.get("status"):
            body = deep(snap)
            body["status"] = st
            snap = await cache.vmsnapshots.replace(body, sub="status")
            if snap is None:
                return
        if deleting(snap) and can_remove_finalizer:
            await self._finalizers(VMSNAPSHOT, snap, [f for f in snap["metadata"].get("finalizers") or []
                                                      if f != SNAPSHOT_FINALIZER])
            return
        left = until_deadline(snap)
        if retry is None and progressing(snap) and left > 0:
            retry = left + 0.1
        if retry:
            self.enqueue("snap/" + key, after=retry)

    async def create_content(self, snap, vm, vmi):
        cache = self.sim.cache
        ns = snap["metadata"]["namespace"]
        backups = []
        for volume in dig(vm, "spec", "template", "spec", "volumes", default=[]) or []:
            claim = claim_of(volume)
            pvc = cache.pvcs.get_ns(ns, claim) if claim else None
            if pvc is None or dig(pvc, "status", "phase") != "Bound" or not dig(pvc, "spec", "storageClassName"):
                continue
            snap_class, _err = snapshot_class_name(cache.storageclasses.get(pvc["spec"]["storageClassName"]),
                                                   cache.volumesnapshotclasses.items())
            if not snap_class:
                continue
            meta = {k: v for k, v in pvc["metadata"].items() if k != "managedFields"}
            backups.append({"volumeName": volume["name"],
                            "persistentVolumeClaim": {"metadata": meta, "spec": deep(pvc["spec"])},
                            "volumeSnapshotName": f"vmsnapshot-{snap['metadata']['uid']}-volume-{volume['name']}"})
        source_meta = {k: v for k, v in vm["metadata"].items() if k != "managedFields"}
        body = {"apiVersion": VMSNAPSHOT_CONTENT.api_version, "kind": VMSNAPSHOT_CONTENT.kind,
                "metadata": {"name": content_name(snap), "namespace": ns, "finalizers": [CONTENT_FINALIZER]},
                "spec": {"virtualMachineSnapshotName": snap["metadata"]["name"],
                         "source": {"virtualMachine": {"metadata": source_meta, "spec": deep(vm["spec"])}},
                         "volumeBackups": backups}}
        created = await self.sim.kube.create_or_get(VMSNAPSHOT_CONTENT, body)
        cache.vmsnapshotcontents.observe(created)
        self.sim.recorder.normal(snap, "SuccessfulVirtualMachineSnapshotContentCreate",
                                 f"Successfully created VirtualMachineSnapshotContent {body['metadata']['name']}")
        return created

    # ------------------------------------------------------------------------------- content
    async def sync_content(self, key):
        cache = self.sim.cache
        content = cache.vmsnapshotcontents.get(key)
        if content is None:
            return
        ns = content["metadata"]["namespace"]
        snap = cache.vmsnapshots.get_ns(ns, dig(content, "spec", "virtualMachineSnapshotName"))
        if snap is None or terminating(snap):
            await self.unfreeze(snap)
            if CONTENT_FINALIZER in (content["metadata"].get("finalizers") or []):
                content = await self._finalizers(VMSNAPSHOT_CONTENT, content, [
                    f for f in content["metadata"]["finalizers"] if f != CONTENT_FINALIZER])
                if content is None:
                    return
            if snap is not None and should_delete_content(snap, content):
                return
        if deleting(content):
            return
        st = deep(content.get("status") or {})
        created_before = bool(st.get("creationTime"))
        statuses, missing, skipped = [], [], []
        froze = False
        for backup in dig(content, "spec", "volumeBackups", default=[]) or []:
            vs_name = backup.get("volumeSnapshotName")
            if not vs_name:
                continue
            vs = cache.volumesnapshots.get_ns(ns, vs_name)
            if vs is None:
                if created_before:
                    self.sim.recorder.warning(content, "VolumeSnapshotMissing",
                                              f"VolumeSnapshot {vs_name} no longer exists")
                    missing.append(vs_name)
                    continue
                if snap is None or deleting(snap):
                    skipped.append(vs_name)
                    continue
                if not froze:
                    vm = cache.vms.get_ns(ns, dig(snap, "spec", "source", "name"))
                    if vm is None:
                        raise RuntimeError("unable to get snapshot source")
                    try:
                        await self.freeze(vm, snap, cache.vmis.get_ns(ns, vm["metadata"]["name"]))
                    except Exception as exc:  # the agent's answer, as virt-launcher reports it
                        st["error"] = {"time": ts(), "message": str(exc)}
                        st["readyToUse"] = False
                        await self._content_status(content, st)
                        self.enqueue("content/" + key, after=RETRY)
                        return
                    froze = True
                vs = await self.create_volume_snapshot(content, backup)
            vss = {"volumeSnapshotName": vs["metadata"]["name"]}
            vst = vs.get("status") or {}
            if vst.get("readyToUse") is not None:
                vss["readyToUse"] = vst["readyToUse"]
            if vst.get("creationTime"):
                vss["creationTime"] = vst["creationTime"]
            if vst.get("error"):
                vss["error"] = {k: vst["error"][k] for k in ("message", "time") if k in vst["error"]}
            statuses.append(vss)
        created, ready, message = True, True, ""
        if missing:
            created = ready = False
            message = f"VolumeSnapshots ({','.join(missing)}) missing"
        elif skipped:
            created = ready = False
            message = f"VolumeSnapshots ({','.join(skipped)}) skipped because vm snapshot is deleted"
        else:
            for vss in statuses:
                created = created and bool(vss.get("creationTime"))
                ready = ready and bool(vss.get("readyToUse"))
                if (vss.get("error") or {}).get("message"):
                    message = f"VolumeSnapshot {vss['volumeSnapshotName']} error: {vss['error']['message']}"
                    break
        if created and not st.get("creationTime"):
            st["creationTime"] = ts()
            await self.unfreeze(snap)
        if message and not ready:
            if (st.get("error") or {}).get("message") != message:
                st["error"] = {"time": ts(), "message": message}
        elif not message:
            st.pop("error", None)
        st["readyToUse"] = ready
        if statuses:
            st["volumeSnapshotStatus"] = statuses
        else:
            st.pop("volumeSnapshotStatus", None)
        await self._content_status(content, st)

    async def _content_status(self, content, st):
        if st == content.get("status"):
            return
        body = deep(content)
        body["status"] = st
        await self.sim.cache.vmsnapshotcontents.replace(body, sub="status")

    async def create_volume_snapshot(self, content, backup):
        """createVolumeSnapshot: owned by the content, labelled with the source VM."""
        cache = self.sim.cache
        sc_name = dig(backup, "persistentVolumeClaim", "spec", "storageClassName")
        claim = dig(backup, "persistentVolumeClaim", "metadata", "name")
        ns = content["metadata"]["namespace"]
        if not sc_name:
            raise RuntimeError(f"{ns}/{claim} VolumeSnapshot requested but no storage class")
        snap_class, err = snapshot_class_name(cache.storageclasses.get(sc_name), cache.volumesnapshotclasses.items())
        if err or not snap_class:
            raise RuntimeError(err or f"Couldn't find VolumeSnapshotClass for {sc_name}")
        source = dig(content, "spec", "source", "virtualMachine", "metadata", default={}) or {}
        body = {"apiVersion": VOLUME_SNAPSHOT.api_version, "kind": VOLUME_SNAPSHOT.kind,
                "metadata": {"name": backup["volumeSnapshotName"], "namespace": ns,
                             "labels": {SOURCE_NAME_LABEL: source.get("name", ""),
                                        SOURCE_NAMESPACE_LABEL: source.get("namespace", ns)},
                             "ownerReferences": [owner_ref(content)]},
                "spec": {"source": {"persistentVolumeClaimName": claim}, "volumeSnapshotClassName": snap_class}}
        created = await self.sim.kube.create_or_get(VOLUME_SNAPSHOT, body)
        cache.volumesnapshots.observe(created)
        self.sim.recorder.normal(content, "SuccessfulVolumeSnapshotCreate",
                                 f"Successfully created VolumeSnapshot {body['metadata']['name']}")
        return created

