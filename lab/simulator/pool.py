"""VirtualMachinePool controller (virt-controller's watch/pool/pool.go, v1.8.4).

VMs named `<pool>-<index>` with the lowest unused indexes from 0, their dataVolumeTemplates (and the
volumes using them) suffixed `-<index>`, labels/annotations of spec.virtualMachineTemplate plus
`kubevirt.io/vm-pool-revision-name: <pool>-<generation>` (a ControllerRevision of the pool's spec),
finalizer `pool.kubevirt.io/finalizer`, owned by the pool (controller: true). The pool has that finalizer
too: deleting it removes the VMs' finalizers, then the garbage collector deletes the VMs. Owned VMs that
stop matching the selector are released (no adoption: pool.go only releases). Scale-in picks VMs by
scaleInStrategy.proactive.selectionPolicy (sortPolicy, selectors), randomly by default, as KubeVirt.
A changed virtualMachineTemplate is written to existing VMs (opportunistic update); then, unless
updateStrategy is opportunistic (or unmanaged), their VMIs are brought to it (proactive update, KubeVirt's
default): a VMI made from another revision's template is deleted so the VM starts a new one (the whole VM
when the dataVolumeTemplates differ; only the revision label is patched when the templates are equal), at
most maxUnavailable (default 100%) not-ready VMIs at a time. Unused revisions are pruned. With
spec.autohealing, VMs failing to start (startFailure count, or a failing printable status while not Ready
long enough) are deleted first and so replaced - every such VM of the namespace, as pool.go lists them. Status: replicas (owned VMs, deleting ones too), readyReplicas (VM Ready=True), labelSelector,
conditions ReplicaPaused and ReplicaFailure (FailedScaleOut / FailedScaleIn / FailedUpdate).
"""
import datetime as dt
import json
import random
import re

from . import selectors
from .kube import CR, POOL, VM, VMI, ApiError
from .runtime import Controller
from .snapshot import duration
from .util import (controller_of, deep, dig, get_condition, has_condition, now, owner_ref, parse_ts, remove_condition,
                   set_condition)
from .replicaset import BURST_REPLICAS

FINALIZER = "pool.kubevirt.io/finalizer"
REVISION_LABEL = "kubevirt.io/vm-pool-revision-name"
_INDEX = re.compile(r"-(\d+)$")


def wanted(pool):
    replicas = dig(pool, "spec", "replicas")
    return 1 if replicas is None else int(replicas)


def index_from_name(name):
    """indexFromName: the number after the last dash (None when there is none)."""
    m = _INDEX.search(name)
    return int(m.group(1)) if m else None


def new_vm_names(count, pool_name, taken):
    """calculateNewVMNames: `count` names `<pool>-<i>` for the lowest i not in `taken` (VM names)."""
    names, i = [], 0
    while len(names) < count:
        name = f"{pool_name}-{i}"
        if name not in taken:
            names.append(name)
        i += 1
    return names


def revision_name(pool):
    return f"{pool['metadata']['name']}-{pool['metadata'].get('generation', 1)}"


def index_vm_spec(pool_spec, idx):
    """indexVMSpec: the VM spec for index `idx`."""
    spec = deep(dig(pool_spec, "virtualMachineTemplate", "spec", default={}) or {})
    renamed = {}
    for dvt in spec.get("dataVolumeTemplates") or []:
        renamed[dvt["metadata"]["name"]] = f"{dvt['metadata']['name']}-{idx}"
        dvt["metadata"]["name"] = renamed[dvt["metadata"]["name"]]
    naming = pool_spec.get("nameGeneration") or {}
    configmaps, secrets = naming.get("appendIndexToConfigMapRefs"), naming.get("appendIndexToSecretRefs")
    suffix = f"-{idx}"
    for vol in dig(spec, "template", "spec", "volumes", default=[]) or []:
        if "persistentVolumeClaim" in vol:
            claim = vol["persistentVolumeClaim"]
            claim["claimName"] = renamed.get(claim.get("claimName"), claim.get("claimName"))
        elif "dataVolume" in vol:
            vol["dataVolume"]["name"] = renamed.get(vol["dataVolume"].get("name"), vol["dataVolume"].get("name"))
        elif "configMap" in vol and configmaps:
            vol["configMap"]["name"] += suffix
        elif "secret" in vol and secrets:
            vol["secret"]["secretName"] += suffix
        elif secrets and ("cloudInitNoCloud" in vol or "cloudInitConfigDrive" in vol):
            source = vol.get("cloudInitNoCloud") or vol.get("cloudInitConfigDrive")
            for ref in ("userDataSecretRef", "networkDataSecretRef"):
                if source.get(ref):
                    source[ref]["name"] += suffix
    return spec


def vm_for(pool, name, revision):
    """scaleOut's VM (and opportunisticUpdate's new metadata and spec)."""
    tmeta = dig(pool, "spec", "virtualMachineTemplate", "metadata", default={}) or {}
    spec = index_vm_spec(pool["spec"], index_from_name(name))
    labels = dict(tmeta.get("labels") or {})
    labels[REVISION_LABEL] = revision
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {}).setdefault("labels", {})[REVISION_LABEL] = revision
    meta = {"name": name, "namespace": pool["metadata"]["namespace"], "labels": labels,
            "finalizers": [FINALIZER], "ownerReferences": [owner_ref(pool)]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": VM.api_version, "kind": VM.kind, "metadata": meta, "spec": spec}


def scale_in_order(pool, vms, rng=random):
    """The VMs scale-in deletes first: sortPolicy Ascending/DescendingOrder (by index), Newest, Oldest,
    Random (the default); then the selection policy's selectors keep the matching ones."""
    policy = dig(pool, "spec", "scaleInStrategy", "proactive", "selectionPolicy", default={}) or {}
    return by_selection_policy(policy, vms, rng)


def by_selection_policy(policy, vms, rng=random):
    """sortVMsBasedOnSortPolicy then filterVMsBasedOnSelectors for one selectionPolicy."""
    order = list(vms)
    sort = policy.get("sortPolicy") or "Random"
    if sort in ("AscendingOrder", "DescendingOrder"):
        order.sort(key=lambda v: index_from_name(v["metadata"]["name"]) or 0, reverse=sort == "DescendingOrder")
    elif sort in ("Newest", "Oldest"):
        order.sort(key=lambda v: v["metadata"].get("creationTimestamp") or "", reverse=sort == "Newest")
    else:
        rng.shuffle(order)
    chosen = policy.get("selectors") or {}
    if chosen.get("labelSelector") is not None:
        order = [v for v in order if selectors.matches(chosen["labelSelector"], dig(v, "spec", "template", "metadata",
                                                                                    "labels"))]
    if chosen.get("nodeSelectorRequirementMatcher"):
        as_selector = {"matchExpressions": [{"key": r["key"], "operator": r["operator"], "values": r.get("values")}
                                            for r in chosen["nodeSelectorRequirementMatcher"]]}
        order = [v for v in order if selectors.matches(as_selector, dig(v, "spec", "template", "spec", "nodeSelector"))]
    return order


def max_unavailable(pool):
    """calculateMaxUnavailableInt: spec.maxUnavailable (a number, or a percentage of spec.replicas rounded
    down; default 100%), at least 1. Any string is a percentage, with or without its "%" (as pool.go)."""
    value = dig(pool, "spec", "maxUnavailable")
    value = "100%" if value is None else value
    count = wanted(pool) * int(value[:-1] if value.endswith("%") else value) // 100 if isinstance(value, str) \
        else int(value)
    return max(count, 1)


def vmi_update(vm_revision, vmi_revision, vm_spec, vmi_spec):
    """isOutdatedVMI: what a proactive update does to a VM's VMI - "none", "restart" (delete the VMI),
    "vm-delete" (delete the VM: its dataVolumeTemplates changed) or "label-patch" (same template, new
    revision name). ``*_spec`` are the pool specs the two revisions hold (None: no such revision)."""
    if vm_revision is None:
        return "none"
    if vmi_revision is None:
        return "restart"
    if vm_revision == vmi_revision or vm_spec is None:
        return "none"
    if vmi_spec is None:
        return "restart"
    want = dig(vm_spec, "virtualMachineTemplate", "spec", default={}) or {}
    have = dig(vmi_spec, "virtualMachineTemplate", "spec", default={}) or {}
    if (have.get("dataVolumeTemplates") or None) != (want.get("dataVolumeTemplates") or None):
        return "vm-delete"
    if have.get("template") != want.get("template"):
        return "restart"
    return "label-patch"


# filterFailingVMsToStart: the printable statuses autohealing replaces a VM in, once it has not been Ready
# for minFailingToStartDuration (default 5m); or after startUpFailureThreshold (default 3) failed starts.
AUTOHEAL_STATUSES = ("CrashLoopBackOff", "Unschedulable", "DataVolumeError", "PvcNotFound", "ErrImagePull",
                     "ImagePullBackOff")
START_FAILURE_THRESHOLD = 3
MIN_FAILING_TO_START = 300


def failing_to_start(vms, autohealing, when):
    """filterFailingVMsToStart: the VMs autohealing deletes (the pool then makes new ones). A Ready
    condition without lastProbeTime counts as failing since the epoch, as Go's zero time does."""
    threshold = autohealing.get("startUpFailureThreshold")
    threshold = START_FAILURE_THRESHOLD if threshold is None else int(threshold)
    minimum = duration(autohealing.get("minFailingToStartDuration"))
    minimum = MIN_FAILING_TO_START if minimum is None else minimum
    out = []
    for vm in vms:
        failure = dig(vm, "status", "startFailure")
        if failure is not None and int(failure.get("consecutiveFailCount") or 0) >= threshold:
            out.append(vm)
            continue
        if dig(vm, "status", "printableStatus") not in AUTOHEAL_STATUSES:
            continue
        ready = get_condition(vm, "Ready")
        if ready is not None and ready.get("status") == "False":
            since = parse_ts(ready.get("lastProbeTime")) or dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc)
            if (when - since).total_seconds() >= minimum:
                out.append(vm)
    return out


def vmi_ready(vmi):
    """isVMIReady: Running, Ready=True, not being deleted."""
    return (vmi is not None and not vmi["metadata"].get("deletionTimestamp")
            and dig(vmi, "status", "phase") == "Running" and has_condition(vmi, "Ready", "True"))


def status_for(pool, vms, sync_error):
    """updateStatus: (new status, events) — the status is written when it differs, or while not all are ready."""
    st = deep(pool.get("status") or {})
    conds = st.get("conditions") or []
    events = []
    st["labelSelector"] = selectors.to_string(pool["spec"]["selector"])
    if sync_error is not None and get_condition(pool, "ReplicaFailure") is None:
        set_condition(conds, "ReplicaFailure", "True", sync_error[0], sync_error[1])
        events.append(("Warning", sync_error[0], sync_error[1]))
    elif sync_error is None:
        remove_condition(conds, "ReplicaFailure")
    paused = bool(dig(pool, "spec", "paused"))
    if paused and get_condition(pool, "ReplicaPaused") is None:
        set_condition(conds, "ReplicaPaused", "True", "SuccessfulPaused", "Pool controller is paused")
        events.append(("Normal", "SuccessfulPaused", "Pool is paused"))
    elif not paused and get_condition(pool, "ReplicaPaused") is not None:
        remove_condition(conds, "ReplicaPaused")
        events.append(("Normal", "SuccessfulResume", "Pool is unpaused"))
    st["conditions"] = conds
    if not conds:
        st.pop("conditions")
    st["replicas"] = len(vms)
    st["readyReplicas"] = sum(1 for vm in vms if has_condition(vm, "Ready", "True"))
    return st, events


class PoolController(Controller):
    name = "pool"
    workers = 2

    def __init__(self, sim):
        super().__init__(sim)
        self.deleting = {}      # pool key -> uids of VMs we deleted, until the cache shows them going
        self.revisions = {}     # (namespace, revision name) -> the pool spec it holds (None: not there)
        self.pruned = {}        # pool uid -> the generation whose revisions were last pruned

    def enqueue_for_vm(self, vm):
        ns = vm["metadata"]["namespace"]
        ref = controller_of(vm)
        if ref is not None and ref.get("kind") == POOL.kind:
            self.enqueue(f"{ns}/{ref['name']}")

    def enqueue_for_vmi(self, vmi):
        """addVMIHandler / resolveVMIControllerRef: a VMI's VM's pool."""
        ref = controller_of(vmi)
        if ref is not None and ref.get("kind") == VM.kind:
            vm = self.sim.cache.vms.get_ns(vmi["metadata"]["namespace"], ref["name"])
            if vm is not None and vm["metadata"].get("uid") == ref.get("uid"):
                self.enqueue_for_vm(vm)

    async def sync(self, key):
        pool = self.sim.cache.pools.get(key)
        if pool is None:
            self.deleting.pop(key, None)
            return
        spec = pool.get("spec") or {}
        try:
            if not selectors.matches(spec.get("selector"), dig(spec, "virtualMachineTemplate", "metadata", "labels")):
                self.log.info("%s: selector does not match template labels, will not re-enqueue", key)
                return
        except selectors.SelectorError as exc:
            self.log.info("%s: invalid selector (%s), will not re-enqueue", key, exc)
            return
        ns = pool["metadata"]["namespace"]
        everything = self.sim.cache.vms.items(ns)
        if spec.get("autohealing") is not None:
            # pool.go heals before it sorts out which VMs are the pool's: every failing VM of the namespace
            failing = failing_to_start(everything, spec["autohealing"], now())
            if failing:
                error = await self._scale_in(pool, failing, len(failing), self.deleting.setdefault(key, set()))
                if error:
                    raise ApiError(500, {"message": error})
        vms = await self._release_detached(pool, everything)
        deleting = bool(pool["metadata"].get("deletionTimestamp"))
        if not deleting and FINALIZER not in (pool["metadata"].get("finalizers") or []):
            pool = await self._set_finalizers(POOL, pool, (pool["metadata"].get("finalizers") or []) + [FINALIZER])
            if pool is None:
                return
        gone = self.deleting.setdefault(key, set())
        gone &= {vm["metadata"]["uid"] for vm in vms if not vm["metadata"].get("deletionTimestamp")}
        sync_error = None
        if not spec.get("paused") and not deleting:
            sync_error, stable = await self._scale(pool, vms, {vm["metadata"]["name"] for vm in everything}, gone)
            if sync_error is None and stable:
                sync_error, stable = await self._update(pool, vms)
                if sync_error is None and stable:
                    sync_error = await self._prune(pool, vms)
        elif deleting:
            selector = spec["selector"]
            for vm in everything:
                if selectors.matches(selector, vm["metadata"].get("labels")) and \
                        FINALIZER in (vm["metadata"].get("finalizers") or []):
                    await self._drop_finalizer(VM, vm)
            await self._drop_finalizer(POOL, pool)
            sync_error = await self._prune(pool, vms, force=True)
            if self.sim.cache.pools.get(key) is None:
                return
        status, events = status_for(pool, vms, sync_error)
        if status != (pool.get("status") or {}) or status["replicas"] != status["readyReplicas"]:
            body = deep(self.sim.cache.pools.get(key) or pool)
            body["status"] = status
            if await self.sim.cache.pools.replace(body, sub="status") is not None:
                for etype, reason, message in events:
                    self.sim.recorder.event(pool, etype, reason, message)
        if sync_error is not None:
            raise ApiError(500, {"message": sync_error[1]})     # re-enqueued with back-off

    # ------------------------------------------------------------------------------ ownership
    async def _release_detached(self, pool, vms):
        """ReleaseDetachedVirtualMachines: the VMs the pool controls; those that no longer match its
        selector lose the owner reference and the pool finalizer (unless the pool is being deleted)."""
        uid = pool["metadata"]["uid"]
        owned = []
        for vm in vms:
            ref = controller_of(vm)
            if ref is None or ref.get("uid") != uid:
                continue
            if selectors.matches(pool["spec"]["selector"], vm["metadata"].get("labels")):
                owned.append(vm)
            elif not pool["metadata"].get("deletionTimestamp"):
                fins = [f for f in vm["metadata"].get("finalizers") or [] if f != FINALIZER]
                try:
                    patched = await self.sim.kube.patch(VM, vm["metadata"]["name"], {
                        "metadata": {"ownerReferences": [], "finalizers": fins}}, vm["metadata"]["namespace"])
                    self.sim.cache.vms.observe(patched)
                except ApiError as exc:
                    if exc.status not in (404, 422):
                        raise
        return owned

    async def _set_finalizers(self, res, obj, finalizers):
        """patchFinalizer: a JSON patch that tests the old list; None when the object is gone."""
        meta = obj["metadata"]
        try:
            patched = await self.sim.kube.patch(res, meta["name"], [
                {"op": "test", "path": "/metadata/finalizers", "value": meta.get("finalizers")},
                {"op": "replace", "path": "/metadata/finalizers", "value": finalizers}],
                meta["namespace"], kind="json")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        (self.sim.cache.pools if res is POOL else self.sim.cache.vms).observe(patched)
        return patched

    async def _drop_finalizer(self, res, obj):
        fins = obj["metadata"].get("finalizers") or []
        if FINALIZER in fins:
            await self._set_finalizers(res, obj, [f for f in fins if f != FINALIZER])

    # ------------------------------------------------------------------------------ scaling
    async def _scale(self, pool, vms, taken, gone):
        """scale(): (sync error (reason, message) or None, whether the pool is at its size)."""
        diff = len(vms) - wanted(pool)
        strategy = dig(pool, "spec", "scaleInStrategy", default={}) or {}
        if diff == 0:
            # opportunisticScaleIn: VMs deleted by someone else leave the pool (state preservation is off),
            # unless scale-in is unmanaged
            for vm in vms if "unmanaged" not in strategy else ():
                if vm["metadata"].get("deletionTimestamp"):
                    await self._drop_finalizer(VM, vm)
            return None, True
        count = min(abs(diff), BURST_REPLICAS)
        if diff < 0:
            error = await self._scale_out(pool, count, taken)
            return (("FailedScaleOut", f"error during scale out: {error}") if error else None), False
        if "unmanaged" in strategy or "opportunistic" in strategy:
            return None, False
        error = await self._scale_in(pool, vms, count, gone)
        return (("FailedScaleIn", f"error during scale in: {error}") if error else None), False

    async def _scale_in(self, pool, vms, count, gone):
        """scaleIn: delete ``count`` of ``vms`` (those being deleted count), chosen by the scale-in selection
        policy; the first error's message, or None."""
        eligible = [vm for vm in vms if not vm["metadata"].get("deletionTimestamp") and vm["metadata"]["uid"]
                    not in gone]
        count = min(count - (len(vms) - len(eligible)), len(eligible))
        if count <= 0:
            return None
        error = None
        for vm in scale_in_order(pool, eligible)[:count]:
            name, ns = vm["metadata"]["name"], vm["metadata"]["namespace"]
            try:
                await self.sim.kube.delete(VM, name, ns, preconditions={"uid": vm["metadata"]["uid"]})
            except ApiError as exc:
                msg = exc.body.get("message", str(exc))
                self.sim.recorder.warning(pool, "FailedDelete", f"Error deleting virtual machine {ns}/{name}: {msg}")
                error = error or msg
                continue
            gone.add(vm["metadata"]["uid"])
            await self._drop_finalizer(VM, vm)
            self.sim.recorder.normal(pool, "SuccessfulDelete",
                                     f"Deleted VM {ns}/{name} with uid {vm['metadata']['uid']} from pool")
        return error

    async def _scale_out(self, pool, count, taken):
        revision = await self._ensure_revision(pool)
        error = None
        for name in new_vm_names(count, pool["metadata"]["name"], taken):
            try:
                created = await self.sim.kube.create(VM, vm_for(pool, name, revision))
            except ApiError as exc:
                error = error or exc.body.get("message", str(exc))
                continue
            self.sim.cache.vms.observe(created)
            self.sim.recorder.normal(pool, "SuccessfulCreate", f"Created VM {created['metadata']['namespace']}/{name}")
        if error:
            self.sim.recorder.warning(pool, "FailedCreate", f"Error creating VM: {error}")
        return error

    # ------------------------------------------------------------------------------ revisions and updates
    async def _revision(self, ns, name):
        if (ns, name) not in self.revisions:
            cr = await self.sim.kube.get_or_none(CR, name, ns)
            self.revisions[(ns, name)] = json.loads(json.dumps(cr["data"])) if cr else None
        return self.revisions[(ns, name)]

    async def _ensure_revision(self, pool):
        """ensureControllerRevision: `<pool>-<generation>` holding the pool's spec, owned by the pool."""
        ns, name = pool["metadata"]["namespace"], revision_name(pool)
        if await self._revision(ns, name) is None:
            cr = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                  "metadata": {"name": name, "namespace": ns, "ownerReferences": [owner_ref(pool)]},
                  "data": pool["spec"], "revision": pool["metadata"].get("generation", 1)}
            try:
                await self.sim.kube.create(CR, cr, ns)
            except ApiError as exc:
                if exc.status != 409:
                    raise
            self.revisions[(ns, name)] = deep(pool["spec"])
        return name

    async def _update(self, pool, vms):
        """update(): opportunisticUpdate of the VMs whose revision's template is not the pool's, then,
        unless updateStrategy is opportunistic, proactiveUpdate of the up-to-date VMs' VMIs. Stable when
        no VM was outdated."""
        strategy = dig(pool, "spec", "updateStrategy", default={}) or {}
        if "unmanaged" in strategy:
            return None, True
        chosen = dig(strategy, "proactive", "selectionPolicy", default={}) or {}
        if chosen.get("selectors") is not None:
            vms = by_selection_policy({"selectors": chosen["selectors"], "sortPolicy": "AscendingOrder"}, vms)
        template = pool["spec"].get("virtualMachineTemplate")
        outdated, current = [], []
        for vm in vms:
            name = (vm["metadata"].get("labels") or {}).get(REVISION_LABEL)
            old = await self._revision(vm["metadata"]["namespace"], name) if name else None
            (outdated if old is None or old.get("virtualMachineTemplate") != template else current).append(vm)
        if outdated:
            error = await self._opportunistic_update(pool, outdated)
            if error is not None:
                return ("FailedUpdate", f"error during VM update: {error}"), False
        if "opportunistic" not in strategy:
            error = await self._proactive_update(pool, current, chosen)
            if error is not None:
                return ("FailedUpdate", f"error during VMI update: {error}"), False
        return None, not outdated

    async def _opportunistic_update(self, pool, outdated):
        """opportunisticUpdate: the pool's template, labels and annotations written to each VM (the VMIs
        keep running); the first error, or None."""
        revision = await self._ensure_revision(pool)
        error = None
        for vm in outdated:
            if index_from_name(vm["metadata"]["name"]) is None:
                continue
            fresh = vm_for(pool, vm["metadata"]["name"], revision)
            new = deep(vm)
            new["metadata"]["labels"] = fresh["metadata"]["labels"]
            new["metadata"]["annotations"] = fresh["metadata"].get("annotations")   # as KubeVirt: the template's
            firmware = dig(vm, "spec", "template", "spec", "domain", "firmware", default={}) or {}
            new["spec"] = fresh["spec"]
            if firmware.get("uuid") or firmware.get("serial"):    # preserveVMIdentityFields
                fw = new["spec"]["template"].setdefault("spec", {}).setdefault("domain", {}).setdefault("firmware", {})
                fw.update({k: firmware[k] for k in ("uuid", "serial") if firmware.get(k)})
            try:
                updated = await self.sim.kube.replace(VM, new)
            except ApiError as exc:
                msg = exc.body.get("message", str(exc))
                where = f"{vm['metadata']['name']}/{vm['metadata']['namespace']}"   # sic, name first as pool.go
                self.sim.recorder.warning(pool, "FailedUpdate", f"Error updating virtual machine {where}: {msg}")
                error = error or msg
                continue
            self.sim.cache.vms.observe(updated)
            self.sim.recorder.normal(pool, "SuccessfulUpdate", f"Updated VM {vm['metadata']['namespace']}/"
                                                               f"{vm['metadata']['name']}")
        return error

    async def _vmi_update(self, vm, vmi):
        vm_rev = (vm["metadata"].get("labels") or {}).get(REVISION_LABEL)
        vmi_rev = (vmi["metadata"].get("labels") or {}).get(REVISION_LABEL)
        ns = vm["metadata"]["namespace"]
        return vmi_update(vm_rev, vmi_rev, await self._revision(ns, vm_rev) if vm_rev else None,
                          await self._revision(ns, vmi_rev) if vmi_rev and vmi_rev != vm_rev else None)

    async def _proactive_update(self, pool, vms, policy):
        """proactiveUpdate: first the not-ready VMs' outdated VMIs, then the others while fewer than
        maxUnavailable VMIs are unavailable (then again after defaultRetryDelay, 3 s); the first error."""
        ns = pool["metadata"]["namespace"]
        vmis = {vm["metadata"]["name"]: self.sim.cache.vmis.get_ns(ns, vm["metadata"]["name"]) for vm in vms}
        for vm in vms:      # handleUnhealthyVMIs
            vmi = vmis[vm["metadata"]["name"]]
            if has_condition(vm, "Ready", "True") or vmi is None or vmi["metadata"].get("deletionTimestamp"):
                continue
            error = await self._handle_update(pool, vm, vmi, await self._vmi_update(vm, vmi))
            if error is not None:
                return error
        budget = max_unavailable(pool) - sum(1 for vm in vms if not vmi_ready(vmis[vm["metadata"]["name"]]))
        order = by_selection_policy({"sortPolicy": policy.get("sortPolicy")}, vms) if policy else vms
        for vm in order:
            if budget <= 0:
                self.enqueue(f"{ns}/{pool['metadata']['name']}", after=3)
                return None
            vmi = vmis[vm["metadata"]["name"]]
            if vmi is None:
                continue
            how = await self._vmi_update(vm, vmi)
            if how == "none":
                continue
            error = await self._handle_update(pool, vm, vmi, how)
            if error is not None:
                return error
            budget -= 1
        return None

    async def _handle_update(self, pool, vm, vmi, how):
        """handleResourceUpdate; the error's message, or None."""
        ns, name = vm["metadata"]["namespace"], vm["metadata"]["name"]
        try:
            if how == "restart":
                await self.sim.kube.delete(VMI, vmi["metadata"]["name"], ns)
            elif how == "vm-delete":
                await self.sim.kube.delete(VM, name, ns, propagation="Foreground")
            elif how == "label-patch":
                labels = dict(vmi["metadata"].get("labels") or {})
                labels[REVISION_LABEL] = vm["metadata"]["labels"][REVISION_LABEL]
                ops = ([{"op": "test", "path": "/metadata/labels", "value": vmi["metadata"]["labels"]},
                        {"op": "replace", "path": "/metadata/labels", "value": labels}]
                       if vmi["metadata"].get("labels") is not None else
                       [{"op": "add", "path": "/metadata/labels", "value": labels}])
                await self.sim.kube.patch(VMI, vmi["metadata"]["name"], ops, ns, kind="json")
            # "none" does nothing, yet pool.go records the event below for it too (handleUnhealthyVMIs
            # calls this for every not-ready VM); the recorder aggregates the repeats.
        except ApiError as exc:
            msg = exc.body.get("message", str(exc))
            self.sim.recorder.warning(pool, "FailedUpdate", f"Error updating resource {ns}/{name}: {msg}")
            return msg
        self.sim.recorder.normal(pool, "SuccessfulDelete", f"Successfully updated resource {ns}/{name}")
        return None

    async def _prune(self, pool, vms, force=False):
        """pruneUnusedRevisions: delete the pool's ControllerRevisions no VM (or its VMI) names. Listed
        once per pool generation (and on deletion), not on every sync."""
        uid, ns = pool["metadata"]["uid"], pool["metadata"]["namespace"]
        generation = pool["metadata"].get("generation")
        if not force and self.pruned.get(uid) == generation:
            return None
        used = set()
        for vm in vms:
            used.add((vm["metadata"].get("labels") or {}).get(REVISION_LABEL))
            vmi = self.sim.cache.vmis.get_ns(ns, vm["metadata"]["name"])
            used.add(((vmi or {}).get("metadata", {}).get("labels") or {}).get(REVISION_LABEL))
        try:
            listed = await self.sim.kube.list(CR, ns)
            for cr in listed.get("items", []):
                ref = controller_of(cr)
                if ref is None or ref.get("uid") != uid or cr["metadata"]["name"] in used:
                    continue
                await self.sim.kube.delete(CR, cr["metadata"]["name"], ns)
                self.revisions.pop((ns, cr["metadata"]["name"]), None)
        except ApiError as exc:
            return "FailedRevisionPruning", f"error while pruning vmpool revisions: {exc.body.get('message', exc)}"
        self.pruned[uid] = generation
        return None
