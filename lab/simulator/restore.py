"""KubeVirt's restore controller (v1.8.4 pkg/storage/snapshot/restore.go).

A VirtualMachineRestore gets status {complete: false} and conditions Progressing/Ready "Initializing
VirtualMachineRestore", a finalizer and the target VM as owner. A target VM that still has a VMI is not ready:
targetReadinessPolicy WaitGracePeriodAndFail (the default) waits 5 minutes then fails, WaitEventually waits,
FailImmediate fails, StopTarget stops the VM (as virt-api's stop does). The snapshot must be ready; an existing
target that is not the snapshot's source is refused. The VM's status.restoreInProgress is set, one claim per
volume backup is made from its VolumeSnapshot (`restore-<restore uid>-<volume>`, spec.dataSource the
VolumeSnapshot, the size the backup's request; the provisioner fills it), and once they are bound (or wait for a
first consumer) the target's spec becomes the snapshot's with the volumes renamed (a new target is created
Halted), with annotation restore.kubevirt.io/lastRestoreUID. Then complete, restoreTime, conditions "Operation
complete" and the event VirtualMachineRestoreComplete.

Lab simplification: a dataVolume volume is restored as a persistentVolumeClaim volume of the restored claim and
its dataVolumeTemplate dropped (KubeVirt renames the template and marks the claim prePopulated for CDI).
"""
import time

from .kube import PVC, VM, VMRESTORE, ApiError
from .runtime import Controller
from .snapshot import condition, update_condition
from .util import deep, dig, owner_ref, parse_ts, ts
from .virtapi import VirtAPI
from .vm import run_strategy

FINALIZER = "snapshot.kubevirt.io/vmrestore-protection"
LAST_RESTORE = "restore.kubevirt.io/lastRestoreUID"
RESTORE_NAME = "restore.kubevirt.io/name"
GRACE_PERIOD = 300.0
WAIT_EVENTUALLY = "Waiting for target VM to be powered off. Please stop the restore target to proceed with restore"
STOP_TARGET = "Automatically stopping restore target for restore operation"
VMI_EXISTS = "Restore target VMI still exists, please stop the restore target to proceed with restore"
NOT_READY_FAILURE = "Restore target VMI must be powered off before restore operation"
GRACE_EXCEEDED = ("Restore target failed to be ready within 5m0s. Please power off the target VM before attempting "
                  "restore")
WAIT_GRACE = ("Waiting for target VM to be powered off. Please stop the restore target to proceed with restore, or "
              "the operation will fail after 5m0s")
EXISTING_TARGET = "restore source and restore target are different but restore target already exists"


class RestoreFailed(Exception):
    """An error KubeVirt writes to the restore's conditions (doUpdateError)."""


def restore_value(restore):
    return f"{restore['metadata']['name']}-{restore['metadata']['uid']}"


def restored_claim(restore, volume_name, claim_name):
    """restoreVolumeName: overrides, then volumeRestorePolicy, else restore-<uid>-<volume>."""
    for override in dig(restore, "spec", "volumeRestoreOverrides", default=[]) or []:
        if override.get("volumeName") == volume_name and override.get("restoreName"):
            return override["restoreName"]
    policy = dig(restore, "spec", "volumeRestorePolicy")
    if policy == "InPlace":
        return claim_name
    if policy == "PrefixTargetName":
        return f"{restore['spec']['target']['name']}-{volume_name}"[:63]
    return f"restore-{restore['metadata']['uid']}-{volume_name}"


def restored_vm(restore, source_vm, target, restores):
    """generateRestoredVMSpec: the target's new object (spec from the snapshot, volumes renamed)."""
    by_volume = {r["volumeName"]: r["persistentVolumeClaim"] for r in restores}
    spec = deep(source_vm.get("spec") or {})
    dropped = set()
    for vol in dig(spec, "template", "spec", "volumes", default=[]) or []:
        claim = by_volume.get(vol["name"])
        if claim is None:
            continue
        if vol.get("dataVolume"):
            dropped.add(vol["dataVolume"].get("name"))
            vol.pop("dataVolume")
            vol["persistentVolumeClaim"] = {"claimName": claim}
        elif vol.get("persistentVolumeClaim"):
            vol["persistentVolumeClaim"]["claimName"] = claim
    if spec.get("dataVolumeTemplates"):
        spec["dataVolumeTemplates"] = [t for t in spec["dataVolumeTemplates"] if t["metadata"]["name"] not in dropped]
        if not spec["dataVolumeTemplates"]:
            spec.pop("dataVolumeTemplates")
    name = restore["spec"]["target"]["name"]
    ns = restore["metadata"]["namespace"]
    if target is None:
        smeta = source_vm.get("metadata") or {}
        meta = {"name": name, "namespace": ns, "labels": dict(smeta.get("labels") or {}),
                "annotations": dict(smeta.get("annotations") or {})}
        if "running" in spec:
            spec["running"] = False
        else:
            spec["runStrategy"] = "Halted"
        vm = {"apiVersion": VM.api_version, "kind": VM.kind, "metadata": meta, "spec": spec}
    else:
        vm = deep(target)
        rs = run_strategy(target)
        spec.pop("running", None)
        spec["runStrategy"] = rs or "Halted"
        vm["spec"] = spec
    vm["metadata"].setdefault("annotations", {})[LAST_RESTORE] = restore_value(restore)
    return vm


class RestoreController(Controller):
    name = "vmrestore"
    workers = 2

    async def sync(self, key):
        cache = self.sim.cache
        restore = cache.vmrestores.get(key)
        if restore is None:
            return
        try:
            await self.reconcile(restore)
        except RestoreFailed as exc:
            await self.error(cache.vmrestores.get(key) or restore, str(exc))

    async def write_status(self, restore, st):
        if st == restore.get("status"):
            return restore
        body = deep(restore)
        body["status"] = st
        return await self.sim.cache.vmrestores.replace(body, sub="status")

    async def error(self, restore, message, fail=False):
        """doUpdateErrorWithFailure."""
        st = deep(restore.get("status") or {})
        conds = st.setdefault("conditions", [])
        update_condition(conds, condition("Progressing", "False", message))
        update_condition(conds, condition("Ready", "False", message))
        if fail:
            update_condition(conds, condition("Failure", "True", message))
            self.sim.recorder.warning(restore, "Operation failed", f"VirtualMachineRestore failed {message}")
        else:
            self.sim.recorder.warning(restore, "VirtualMachineRestoreError",
                                      f"VirtualMachineRestore encountered error {message}")
        await self.write_status(restore, st)

    async def reconcile(self, restore):
        cache = self.sim.cache
        ns = restore["metadata"]["namespace"]
        key = f"{ns}/{restore['metadata']['name']}"
        if restore.get("status") is None:
            conds = []
            update_condition(conds, condition("Progressing", "True", "Initializing VirtualMachineRestore"))
            update_condition(conds, condition("Ready", "False", "Initializing VirtualMachineRestore"))
            await self.write_status(restore, {"complete": False, "conditions": conds})
            return
        target_name = dig(restore, "spec", "target", "name")
        target = cache.vms.get_ns(ns, target_name)
        if restore["metadata"].get("deletionTimestamp"):
            await self.deleted(restore, target)
            return
        st = restore["status"]
        if st.get("complete") or any(c["type"] == "Failure" for c in st.get("conditions") or []):
            return
        meta = restore["metadata"]
        if (not meta.get("ownerReferences") and target is not None) or FINALIZER not in (meta.get("finalizers") or []):
            body = deep(restore)
            if target is not None and not meta.get("ownerReferences"):
                body["metadata"]["ownerReferences"] = [owner_ref(target, controller=False, block=False)]
            body["metadata"]["finalizers"] = (meta.get("finalizers") or []) + \
                ([] if FINALIZER in (meta.get("finalizers") or []) else [FINALIZER])
            updated = await self.sim.kube.replace(VMRESTORE, body)
            cache.vmrestores.observe(updated)
            return
        if target is not None and cache.vmis.get_ns(ns, target_name) is not None:
            await self.not_ready(restore, target)
            return
        snap, content = self.snapshot_and_content(restore)
        source_uid = dig(snap, "status", "sourceUID")
        restored = target is not None and (target["metadata"].get("annotations") or {}).get(LAST_RESTORE) == \
            restore_value(restore)
        if target is not None and not restored and source_uid and target["metadata"]["uid"] != source_uid:
            raise RestoreFailed(EXISTING_TARGET)
        if target is not None and not restored:
            busy = dig(target, "status", "restoreInProgress")
            if busy and busy != restore["metadata"]["name"]:
                raise RestoreFailed(f"vm restore {busy} in progress")
            if busy is None:
                target = await self.vm_status(target, {"restoreInProgress": restore["metadata"]["name"]})
        if await self.volume_restores(restore, content):
            return
        if not restored:
            vm = restored_vm(restore, content["spec"]["source"]["virtualMachine"], target,
                             restore["status"].get("restores") or [])
            if target is None:
                created = await self.sim.kube.create(VM, vm)
                cache.vms.observe(created)
            else:
                updated = await self.sim.kube.replace(VM, vm)
                cache.vms.observe(updated)
            await self.progress(restore, "Updating target spec", "Waiting for target update")
            return
        if dig(target, "status", "restoreInProgress") == restore["metadata"]["name"]:
            await self.vm_status(target, {"restoreInProgress": None})
        self.sim.recorder.normal(restore, "VirtualMachineRestoreComplete",
                                 f"Successfully completed VirtualMachineRestore {restore['metadata']['name']}")
        st = deep(restore["status"])
        st["complete"] = True
        st["restoreTime"] = ts()
        update_condition(st.setdefault("conditions", []), condition("Progressing", "False", "Operation complete"))
        update_condition(st["conditions"], condition("Ready", "True", "Operation complete"))
        await self.write_status(restore, st)
        self.log.info("%s: restore complete", key)

    def snapshot_and_content(self, restore):
        cache = self.sim.cache
        ns = restore["metadata"]["namespace"]
        name = dig(restore, "spec", "virtualMachineSnapshotName")
        snap = cache.vmsnapshots.get_ns(ns, name)
        ref = f"{ns}/{name}"
        if snap is None:
            raise RestoreFailed(f"VMSnapshot {ref} does not exist")
        if dig(snap, "status", "phase") == "Failed":
            raise RestoreFailed(f"VMSnapshot {ref} failed and is invalid to use")
        if not dig(snap, "status", "readyToUse"):
            raise RestoreFailed(f"VMSnapshot {ref} not ready")
        content_name = dig(snap, "status", "virtualMachineSnapshotContentName")
        if not content_name:
            raise RestoreFailed(f"no snapshot content name in {ref}")
        content = cache.vmsnapshotcontents.get_ns(ns, content_name)
        if content is None:
            raise RestoreFailed(f"VMSnapshotContent {ns}/{content_name} does not exist")
        if not dig(content, "status", "readyToUse"):
            raise RestoreFailed(f"VMSnapshotContent {ns}/{content_name} not ready")
        return snap, content

    async def progress(self, restore, progressing, ready):
        st = deep(restore["status"])
        update_condition(st.setdefault("conditions", []), condition("Progressing", "True", progressing))
        update_condition(st["conditions"], condition("Ready", "False", ready))
        return await self.write_status(restore, st)

    async def volume_restores(self, restore, content):
        """reconcileVolumeRestores: True while claims are being made or bound."""
        cache = self.sim.cache
        ns = restore["metadata"]["namespace"]
        restores = []
        for backup in dig(content, "spec", "volumeBackups", default=[]) or []:
            have = next((r for r in restore["status"].get("restores") or []
                         if r["volumeName"] == backup["volumeName"]), None)
            if have is None:
                if not backup.get("volumeSnapshotName"):
                    raise RestoreFailed(f"VolumeSnapshotName missing {backup}")
                have = {"volumeName": backup["volumeName"],
                        "persistentVolumeClaim": restored_claim(restore, backup["volumeName"],
                                                                backup["persistentVolumeClaim"]["metadata"]["name"]),
                        "volumeSnapshotName": backup["volumeSnapshotName"]}
            restores.append(have)
        if restores != (restore["status"].get("restores") or []):
            st = deep(restore["status"])
            st["restores"] = restores
            await self.write_status(restore, st)
            return True
        waiting = False
        for item in restores:
            pvc = cache.pvcs.get_ns(ns, item["persistentVolumeClaim"])
            if pvc is None:
                backup = next(b for b in content["spec"]["volumeBackups"] if b["volumeName"] == item["volumeName"])
                await self.create_claim(restore, backup, item)
                waiting = True
            elif dig(pvc, "status", "phase") == "Pending":
                sc = cache.storageclasses.get(dig(pvc, "spec", "storageClassName") or "")
                if sc is None and dig(pvc, "spec", "storageClassName"):
                    raise RestoreFailed(f"StorageClass {pvc['spec']['storageClassName']} does not exist")
                if (sc or {}).get("volumeBindingMode", "Immediate") == "Immediate":
                    waiting = True
            elif dig(pvc, "status", "phase") != "Bound":
                raise RestoreFailed(f"PVC {ns}/{pvc['metadata']['name']} in status \"{dig(pvc, 'status', 'phase')}\"")
        if waiting:
            await self.progress(restore, "Creating new PVCs", "Waiting for new PVCs")
        return waiting

    async def create_claim(self, restore, backup, item):
        """CreateRestorePVCDef: the backup's claim, named for the restore, filled from the VolumeSnapshot."""
        ns = restore["metadata"]["namespace"]
        src = backup["persistentVolumeClaim"]
        vs = self.sim.cache.volumesnapshots.get_ns(ns, item["volumeSnapshotName"])
        if vs is None:
            raise RestoreFailed(f"missing volumeSnapshot {item['volumeSnapshotName']}")
        spec = {k: deep(v) for k, v in (src.get("spec") or {}).items()
                if k in ("accessModes", "resources", "storageClassName", "volumeMode")}
        size = dig(vs, "status", "restoreSize")
        if size:
            spec.setdefault("resources", {}).setdefault("requests", {})["storage"] = size
        spec["dataSource"] = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot",
                              "name": item["volumeSnapshotName"]}
        spec["dataSourceRef"] = dict(spec["dataSource"])
        labels = {k: v for k, v in (src["metadata"].get("labels") or {}).items()}
        annotations = {k: v for k, v in (src["metadata"].get("annotations") or {}).items()
                       if not k.startswith(("pv.kubernetes.io/", "volume.kubernetes.io/",
                                            "volume.beta.kubernetes.io/", "cdi.kubevirt.io/"))}
        annotations[RESTORE_NAME] = restore["metadata"]["name"]
        body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": item["persistentVolumeClaim"], "namespace": ns, "labels": labels,
                             "annotations": annotations},
                "spec": spec}
        target = self.sim.cache.vms.get_ns(ns, restore["spec"]["target"]["name"])
        if target is not None and dig(restore, "spec", "volumeOwnershipPolicy") != "None":
            body["metadata"]["ownerReferences"] = [owner_ref(target, controller=False, block=False)]
        try:
            created = await self.sim.kube.create(PVC, body)
        except ApiError as exc:
            if exc.status != 409:
                raise
            return
        self.sim.cache.pvcs.observe(created)

    async def not_ready(self, restore, target):
        """handleVMRestoreTargetNotReady."""
        policy = dig(restore, "spec", "targetReadinessPolicy") or "WaitGracePeriodAndFail"
        if policy == "StopTarget":
            self.sim.recorder.warning(restore, "RestoreTargetNotReady", STOP_TARGET)
            await self.progress_false(restore, STOP_TARGET)
            await self.stop(target)
            return
        if policy == "FailImmediate":
            await self.error(restore, NOT_READY_FAILURE, fail=True)
            return
        if policy == "WaitGracePeriodAndFail":
            created = parse_ts(restore["metadata"].get("creationTimestamp"))
            left = (created.timestamp() + GRACE_PERIOD - time.time()) if created else GRACE_PERIOD
            if left < 0:
                await self.error(restore, GRACE_EXCEEDED, fail=True)
                return
            self.enqueue(f"{restore['metadata']['namespace']}/{restore['metadata']['name']}", after=left + 0.1)
            reason = WAIT_GRACE
        else:
            reason = WAIT_EVENTUALLY
        self.sim.recorder.warning(restore, "RestoreTargetNotReady", VMI_EXISTS)
        await self.progress_false(restore, reason)

    async def progress_false(self, restore, reason):
        st = deep(restore["status"])
        update_condition(st.setdefault("conditions", []), condition("Progressing", "False", reason))
        update_condition(st["conditions"], condition("Ready", "False", reason))
        await self.write_status(restore, st)

    async def stop(self, vm):
        """virt-api's stop, as the controller's client calls it (Always/Once -> Halted, else a Stop request)."""
        rs = run_strategy(vm)
        ns, name = vm["metadata"]["namespace"], vm["metadata"]["name"]
        if rs in ("RerunOnFailure", "Manual", "Halted"):
            vmi = self.sim.cache.vmis.get_ns(ns, name)
            if vmi is None:
                return
            if any(r.get("action") == "Stop" for r in dig(vm, "status", "stateChangeRequests", default=[]) or []):
                return
            ops = VirtAPI.change_request_ops(vm, {"action": "Stop", "uid": vmi["metadata"]["uid"]})
            await self.sim.kube.patch(VM, name, ops, ns, sub="status", kind="json")
        else:
            await self.sim.kube.patch(VM, name, VirtAPI.running_ops(vm, False), ns, kind="json")

    async def vm_status(self, vm, patch):
        patched = await self.sim.kube.patch(VM, vm["metadata"]["name"], {"status": patch},
                                            vm["metadata"]["namespace"], sub="status")
        self.sim.cache.vms.observe(patched)
        return patched

    async def deleted(self, restore, target):
        """handleVMRestoreDeletion."""
        if FINALIZER not in (restore["metadata"].get("finalizers") or []):
            return
        if target is not None and dig(target, "status", "restoreInProgress") == restore["metadata"]["name"]:
            await self.vm_status(target, {"restoreInProgress": None})
        st = deep(restore.get("status") or {})
        update_condition(st.setdefault("conditions", []), condition("Progressing", "False", "VM restore is deleting"))
        update_condition(st["conditions"], condition("Ready", "False", "VM restore is deleting"))
        if st != restore.get("status"):
            await self.write_status(restore, st)
            return
        try:
            patched = await self.sim.kube.patch(VMRESTORE, restore["metadata"]["name"], [
                {"op": "test", "path": "/metadata/resourceVersion", "value": restore["metadata"]["resourceVersion"]},
                {"op": "replace", "path": "/metadata/finalizers",
                 "value": [f for f in restore["metadata"]["finalizers"] if f != FINALIZER]}],
                restore["metadata"]["namespace"], kind="json")
        except ApiError as exc:
            if exc.status == 404:
                return
            if exc.status == 422:
                raise ApiError(409, exc.body) from None
            raise
        self.sim.cache.vmrestores.observe(patched)
