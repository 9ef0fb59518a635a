"""VirtualMachineInstanceReplicaSet controller (virt-controller's watch/replicaset/replicaset.go, v1.8.4).

VMIs from spec.template named by generateName `<template name | template generateName | rs name>`
(no dash: the apiserver appends five random characters), owned by the replica set (controller: true);
orphans matching the selector are adopted, owned VMIs that stop matching are released. Scale down deletes
the first active VMIs of the cache (KubeVirt takes the first of its informer index, in no set order);
finished VMIs are deleted. Status: replicas and readyReplicas of the active VMIs, labelSelector, conditions
ReplicaPaused and ReplicaFailure (FailedCreate / FailedDelete with the error).
"""
from . import selectors
from .kube import VMI, VMIRS, ApiError, key_of
from .runtime import Controller
from .util import (controller_of, deep, dig, has_condition, owner_ref, remove_condition, set_condition,
                   set_latest_api_version)
from .vmi import FINAL

BURST_REPLICAS = 250     # pkg/controller BurstReplicas: at most this many creates/deletes per sync


def wanted(rs):
    replicas = dig(rs, "spec", "replicas")
    return 1 if replicas is None else int(replicas)


def base_name(rs):
    """getVirtualMachineBaseName: the generateName of the VMIs."""
    tmeta = dig(rs, "spec", "template", "metadata", default={}) or {}
    return tmeta.get("name") or tmeta.get("generateName") or rs["metadata"]["name"]


def terminating(vmi):
    return has_condition(vmi, "Ready", "False", "PodTerminating")


def is_active(vmi):
    """filterActiveVMIs: not final, not deleted, its pod not terminating."""
    return dig(vmi, "status", "phase") not in FINAL and not vmi["metadata"].get("deletionTimestamp") \
        and not terminating(vmi)


def is_finished(vmi):
    """filterFinishedVMIs + filterUnkownVMIs: what cleanFinishedVmis deletes."""
    if vmi["metadata"].get("deletionTimestamp"):
        return False
    return dig(vmi, "status", "phase") in FINAL or terminating(vmi)


def vmi_from_template(rs):
    tmpl = rs["spec"]["template"]
    meta = deep(tmpl.get("metadata") or {})
    meta.pop("name", None)
    meta["generateName"] = base_name(rs)
    meta["ownerReferences"] = [owner_ref(rs)]
    return {"apiVersion": VMI.api_version, "kind": VMI.kind, "metadata": meta, "spec": deep(tmpl.get("spec") or {})}


def status_for(rs, active, scale_error, diff):
    """updateStatus: the new status, or None when KubeVirt would not write one."""
    st = deep(rs.get("status") or {})
    selector = selectors.to_string(rs["spec"]["selector"])
    ready = sum(1 for v in active if has_condition(v, "Ready", "True"))
    paused = bool(dig(rs, "spec", "paused"))
    conds = st.get("conditions") or []
    has = {c.get("type") for c in conds}
    if (len(active) == st.get("replicas", 0) and ready == st.get("readyReplicas", 0)
            and (scale_error is not None) == ("ReplicaFailure" in has) and paused == ("ReplicaPaused" in has)
            and selector == st.get("labelSelector", "")):
        return None
    st.update(labelSelector=selector, replicas=len(active), readyReplicas=ready)
    if paused and "ReplicaPaused" not in has:
        set_condition(conds, "ReplicaPaused", "True", "Paused", "Controller got paused")
    elif not paused:
        remove_condition(conds, "ReplicaPaused")
    if scale_error is not None and "ReplicaFailure" not in has:
        set_condition(conds, "ReplicaFailure", "True", "FailedCreate" if diff < 0 else "FailedDelete", scale_error)
    elif scale_error is None:
        remove_condition(conds, "ReplicaFailure")
    st["conditions"] = conds
    if not conds:
        st.pop("conditions")    # omitempty
    return st


class ReplicaSetController(Controller):
    name = "replicaset"
    workers = 2

    def __init__(self, sim):
        super().__init__(sim)
        self.deleting = {}      # rs key -> uids of VMIs we deleted, until the cache shows them going

    def enqueue_for_vmi(self, vmi, old=None):
        """The VMI's controller, and (orphan, or labels changed) every replica set selecting it."""
        ns = vmi["metadata"]["namespace"]
        ref = controller_of(vmi)
        if ref is not None and ref.get("kind") == VMIRS.kind:
            self.enqueue(f"{ns}/{ref['name']}")
        if ref is None or (old is not None and (old["metadata"].get("labels") != vmi["metadata"].get("labels")
                                                or controller_of(old) != ref)):
            for rs in self.sim.cache.replicasets.items(ns):
                try:
                    if selectors.matches(dig(rs, "spec", "selector"), vmi["metadata"].get("labels")):
                        self.enqueue(key_of(rs))
                except selectors.SelectorError:
                    continue

    async def sync(self, key):
        rs = self.sim.cache.replicasets.get(key)
        if rs is None:
            self.deleting.pop(key, None)
            return
        meta = deep(rs["metadata"])
        if set_latest_api_version(meta):
            patched = await self.sim.kube.patch(VMIRS, meta["name"], {"metadata": {"annotations": meta["annotations"]}},
                                                meta["namespace"])
            self.sim.cache.replicasets.observe(patched)
            return          # as execute(): the update's watch event brings the replica set back
        spec = rs.get("spec") or {}
        if not spec.get("template") or spec.get("selector") is None or \
                not dig(spec, "template", "metadata", "labels"):
            self.log.info("%s: invalid controller spec, will not re-enqueue", key)
            return
        try:
            if not selectors.matches(spec["selector"], spec["template"]["metadata"]["labels"]):
                self.log.info("%s: selector does not match template labels, will not re-enqueue", key)
                return
        except selectors.SelectorError as exc:
            self.log.info("%s: invalid selector (%s), will not re-enqueue", key, exc)
            return
        vmis = await self._claim(rs, self.sim.cache.vmis.items(rs["metadata"]["namespace"]))
        gone = self.deleting.setdefault(key, set())
        present = {v["metadata"]["uid"] for v in vmis if not v["metadata"].get("deletionTimestamp")}
        gone &= present
        vmis = [v for v in vmis if v["metadata"]["uid"] not in gone]
        active = [v for v in vmis if is_active(v)]
        finished = [v for v in vmis if is_finished(v)]
        scale_error = None
        if not spec.get("paused") and not rs["metadata"].get("deletionTimestamp"):
            scale_error = await self._scale(rs, active)
            if finished and scale_error is None:
                scale_error = await self._delete(rs, finished[:BURST_REPLICAS], finished=True)
        status = status_for(rs, active, scale_error, len(active) - wanted(rs))
        if status is not None:
            body = deep(rs)
            body["status"] = status
            was_paused = has_condition(rs, "ReplicaPaused")
            if await self.sim.cache.replicasets.replace(body, sub="status") is not None \
                    and was_paused != bool(spec.get("paused")):
                self.sim.recorder.normal(rs, *(("SuccessfulPaused", "Paused") if spec.get("paused")
                                               else ("SuccessfulResumed", "Resumed")))
        if scale_error is not None:
            raise ApiError(500, {"message": scale_error})     # re-enqueued with back-off, as execute() returns it

    # ------------------------------------------------------------------------------ ownership
    async def _claim(self, rs, vmis):
        """ClaimVirtualMachineInstances: the VMIs this replica set owns after adopting and releasing."""
        uid, ns = rs["metadata"]["uid"], rs["metadata"]["namespace"]
        selector = rs["spec"]["selector"]
        deleting = bool(rs["metadata"].get("deletionTimestamp"))
        owned, fresh_checked = [], False
        for vmi in vmis:
            ref = controller_of(vmi)
            matched = selectors.matches(selector, vmi["metadata"].get("labels"))
            if ref is not None and ref.get("uid") == uid:
                if matched:
                    owned.append(vmi)
                elif not deleting:
                    await self._patch_vmi(vmi, {"metadata": {"ownerReferences": []}})
                continue
            if ref is not None or not matched or deleting or vmi["metadata"].get("deletionTimestamp"):
                continue
            if not fresh_checked:       # RecheckDeletionTimestamp: an uncached read before adopting
                fresh = await self.sim.kube.get_or_none(VMIRS, rs["metadata"]["name"], ns)
                if fresh is None or fresh["metadata"]["uid"] != uid or fresh["metadata"].get("deletionTimestamp"):
                    return owned
                fresh_checked = True
            adopted = await self._patch_vmi(vmi, {"metadata": {"ownerReferences": [owner_ref(rs)],
                                                               "uid": vmi["metadata"]["uid"]}})
            if adopted is not None:
                owned.append(adopted)
        return owned

    async def _patch_vmi(self, vmi, patch):
        try:
            patched = await self.sim.kube.patch(VMI, vmi["metadata"]["name"], patch, vmi["metadata"]["namespace"])
        except ApiError as exc:
            if exc.status in (404, 422):
                return None
            raise
        self.sim.cache.vmis.observe(patched)
        return patched

    # ------------------------------------------------------------------------------ scaling
    async def _scale(self, rs, active):
        diff = len(active) - wanted(rs)
        count = min(abs(diff), BURST_REPLICAS)
        if diff > 0:
            return await self._delete(rs, active[:count])
        error = None
        for _ in range(count):
            try:
                created = await self.sim.kube.create(VMI, vmi_from_template(rs), rs["metadata"]["namespace"])
            except ApiError as exc:
                error = error or exc.body.get("message", str(exc))
                self.sim.recorder.warning(rs, "FailedCreate", f"Error creating virtual machine instance: "
                                                              f"{exc.body.get('message', exc)}")
                continue
            self.sim.cache.vmis.observe(created)
            self.sim.recorder.normal(rs, "SuccessfulCreate", "Started the virtual machine by creating the new "
                                                             f"virtual machine instance {created['metadata']['name']}")
        return error

    async def _delete(self, rs, vmis, finished=False):
        error = None
        gone = self.deleting.setdefault(key_of(rs), set())
        for vmi in vmis:
            name, uid = vmi["metadata"]["name"], vmi["metadata"]["uid"]
            try:
                await self.sim.kube.delete(VMI, name, vmi["metadata"]["namespace"],
                                           preconditions={"uid": uid})
            except ApiError as exc:
                error = error or exc.body.get("message", str(exc))
                what = "finished virtual machine" if finished else "virtual machine instance"
                self.sim.recorder.warning(rs, "FailedDelete", f"Error deleting {what} {name}: "
                                                              f"{exc.body.get('message', exc)}")
                continue
            gone.add(uid)
            self.sim.recorder.normal(rs, "SuccessfulDelete", f"Deleted finished virtual machine: {uid}" if finished else
                                     f"Stopped the virtual machine by deleting the virtual machine instance {uid}")
        return error
