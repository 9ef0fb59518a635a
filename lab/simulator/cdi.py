"""CDI's DataVolume controller: DataVolume -> PVC, then import / clone / upload phases with
progress. An http or registry source whose host ends in `.invalid` fails and is retried with a
growing restartCount, as CDI's importer pod does.

A clone (source pvc or snapshot) copies the bytes (volumedata.py) when it completes: the source
claim's volume, or the VolumeSnapshot's (once readyToUse; CDI's snapshot-clone-datavolume.go
waits for it too), become the DataVolume's volume before it is Succeeded."""
import asyncio
from urllib.parse import urlparse

from . import phases
from .kube import PVC, VOLUME_SNAPSHOT, ApiError
from .storage import SourceNotReady, snapshot_handle
from .runtime import Controller
from .util import deep, dig, get_condition, owner_ref, parse_quantity, since
from .util import set_condition as _set_condition


IMPORT_SOURCES = ("http", "registry", "s3", "gcs", "imageio", "vddk", "blank")
# CDI's AnnImmediateBinding: the worker pod is created for an unbound claim even when its
# StorageClass binds WaitForFirstConsumer, so the claim binds at once (its presence counts).
ANN_IMMEDIATE_BINDING = "cdi.kubevirt.io/storage.bind.immediate.requested"
SELECTED_NODE = "volume.kubernetes.io/selected-node"


def set_condition(conds, ctype, status, reason="", message=""):
    """CDI's DataVolumeCondition: lastHeartbeatTime and lastTransitionTime (no lastProbeTime)."""
    _set_condition(conds, ctype, status, reason, message)
    for c in conds:
        if c["type"] == ctype:
            c.pop("lastProbeTime", None)
            c["lastHeartbeatTime"] = c["lastTransitionTime"]


def source_kind(dv):
    src = dig(dv, "spec", "source", default={}) or {}
    for kind in IMPORT_SOURCES + ("pvc", "snapshot", "upload"):
        if kind in src:
            return kind
    if dig(dv, "spec", "sourceRef"):
        return "sourceRef"
    return "blank"


def source_url(dv):
    src = dig(dv, "spec", "source", default={}) or {}
    return dig(src, "http", "url") or dig(src, "registry", "url") or dig(src, "s3", "url") or ""


def is_unreachable(url):
    host = urlparse(url.replace("docker://", "https://").replace("oci-archive://", "https://")).hostname or ""
    return host.endswith(".invalid")


def import_error(url):
    host = urlparse(url.replace("docker://", "https://")).hostname or ""
    if url.startswith("docker://"):
        return (f"Unable to process data: Unable to transfer source data to scratch space: Failed to read "
                f"registry image: pinging container registry {host}: Get \"https://{host}/v2/\": "
                f"dial tcp: lookup {host}: no such host")
    return (f"Unable to connect to http data source: HTTP request errored: Get \"{url}\": "
            f"dial tcp: lookup {host}: no such host")


def pvc_spec(dv):
    """The PVC CDI creates for a DataVolume (spec.pvc verbatim, spec.storage with defaults)."""
    if dig(dv, "spec", "pvc"):
        spec = deep(dv["spec"]["pvc"])
    else:
        st = deep(dig(dv, "spec", "storage", default={}) or {})
        spec = {k: v for k, v in st.items() if k in ("accessModes", "resources", "storageClassName", "volumeMode",
                                                   "selector", "volumeName", "dataSource", "dataSourceRef")}
    spec.setdefault("accessModes", ["ReadWriteOnce"])
    spec.setdefault("volumeMode", "Filesystem")
    spec.setdefault("resources", {}).setdefault("requests", {}).setdefault("storage", "1Gi")
    return spec


class CDIController(Controller):
    name = "cdi"
    workers = 4

    def _mark(self, dv, what, fallback=None):
        return since(self.marks, (dv["metadata"]["uid"], what), fallback)

    def duration(self, dv):
        size = parse_quantity(dig(pvc_spec(dv), "resources", "requests", "storage")) / 2 ** 30
        base = max(1.5, 1.5 * self.sim.boot_delay)
        if source_kind(dv) == "blank":
            return 0.4
        return base + min(size * 0.05, 3.0)

    async def sync(self, key):
        dv = self.sim.cache.dvs.get(key)
        if dv is None or dv["metadata"].get("deletionTimestamp"):
            return
        ns, name = dv["metadata"]["namespace"], dv["metadata"]["name"]
        new = deep(dv)
        st = new.setdefault("status", {})
        conds = st.setdefault("conditions", [])
        st["claimName"] = name
        st.setdefault("progress", "N/A")
        st.setdefault("restartCount", 0)
        pvc = self.sim.cache.pvcs.get_ns(ns, name)
        rec = self.sim.recorder
        if pvc is None:
            if dig(dv, "status", "phase") == "Succeeded":
                return
            annotations = {k: v for k, v in (dv["metadata"].get("annotations") or {}).items()
                           if k != "kubectl.kubernetes.io/last-applied-configuration"}   # CDI passes them on
            annotations.update({"cdi.kubevirt.io/storage.contentType": dig(dv, "spec", "contentType") or "kubevirt",
                                "cdi.kubevirt.io/createdForDataVolume": dv["metadata"]["uid"]})
            body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": name, "namespace": ns,
                                 "labels": {"app": "containerized-data-importer",
                                            "app.kubernetes.io/component": "storage",
                                            "app.kubernetes.io/managed-by": "cdi-controller"},
                                 "annotations": annotations,
                                 "ownerReferences": [owner_ref(dv)]},
                    "spec": pvc_spec(dv)}
            if source_url(dv):
                body["metadata"]["annotations"]["cdi.kubevirt.io/storage.import.endpoint"] = source_url(dv)
            try:
                pvc = await self.sim.kube.create(PVC, body, ns)
                self.sim.cache.pvcs.observe(pvc)
            except ApiError as exc:
                if exc.status != 409:
                    raise
                return
        bound = dig(pvc, "status", "phase") == "Bound"
        phase = dig(dv, "status", "phase")
        if not bound:
            sc_name = dig(pvc, "spec", "storageClassName")
            sc = self.sim.cache.storageclasses.get(sc_name) if sc_name else None
            pvc_ann = pvc["metadata"].get("annotations") or {}
            late = sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"
            immediate = ANN_IMMEDIATE_BINDING in (dv["metadata"].get("annotations") or {}) or \
                ANN_IMMEDIATE_BINDING in pvc_ann
            if late and immediate and not pvc_ann.get(SELECTED_NODE):
                await self._schedule_worker(dv, pvc)
            wffc = late and not immediate and not pvc_ann.get(SELECTED_NODE)
            st["phase"] = "WaitForFirstConsumer" if wffc else "Pending"
            set_condition(conds, "Bound", "False", "Pending", f"PVC {name} Pending")
            set_condition(conds, "Ready", "False", "Pending" if not wffc else "WaitForFirstConsumer")
            set_condition(conds, "Running", "False", "Pending" if not wffc else "WaitForFirstConsumer")
            if phase != st["phase"]:
                rec.normal(dv, st["phase"], f"PVC {name} Pending" if not wffc else
                           f"PVC {name} is waiting for the first consumer", component="datavolume-controller")
            await self._write(dv, new)
            return
        if get_condition(dv, "Bound") is None or get_condition(dv, "Bound").get("status") != "True":
            rec.normal(dv, "Bound", f"PVC {name} Bound", component="datavolume-controller")
        set_condition(conds, "Bound", "True", "Bound", f"PVC {name} Bound")
        if phase == "Succeeded":
            await self._write(dv, new)
            return
        kind = source_kind(dv)
        if kind == "upload":
            await self._upload(dv, new)
        elif kind in ("pvc", "snapshot"):
            await self._progress(dv, new, "Clone", self._clone_names(dv))
        else:
            if is_unreachable(source_url(dv)):
                await self._failing_import(dv, new)
            else:
                await self._progress(dv, new, "Import", None)

    async def _schedule_worker(self, dv, pvc):
        """The importer (cloner, upload server) pod of an immediate-binding claim is scheduled like any
        pod that uses it: kube-scheduler picks a node and the claim follows it (selected-node)."""
        from .scheduler import schedule
        ns, name = pvc["metadata"]["namespace"], pvc["metadata"]["name"]
        worker = {"metadata": {"name": f"importer-{name}", "namespace": ns, "labels": {}, "annotations": {}},
                  "spec": {"containers": [{"name": "importer", "resources": {
                      "requests": {"cpu": "100m", "memory": "60M"}, "limits": {"cpu": "750m", "memory": "600M"}}}],
                      "volumes": [{"name": "cdi-data-vol", "persistentVolumeClaim": {"claimName": name}}]}}
        nodes = [self.sim.cache.nodes.get(n) for n in self.sim.node_names]
        node, _msg = schedule(worker, [n for n in nodes if n is not None], self.sim.scheduler.usage())
        if node is None:
            self.enqueue(f"{dv['metadata']['namespace']}/{dv['metadata']['name']}", after=5)
            return
        updated = await self.sim.kube.patch(PVC, name, {"metadata": {"annotations": {SELECTED_NODE: node}}}, ns)
        self.sim.cache.pvcs.observe(updated)

    def _clone_names(self, dv):
        src = dig(dv, "spec", "source", "pvc") or dig(dv, "spec", "source", "snapshot") or {}
        return (src.get("namespace") or dv["metadata"]["namespace"], src.get("name", ""),
                dv["metadata"]["namespace"], dv["metadata"]["name"])

    async def _clone_source_exists(self, dv, clone):
        if source_kind(dv) == "snapshot":
            return await self.sim.kube.get_or_none(VOLUME_SNAPSHOT, clone[1], clone[0]) is not None
        return self.sim.cache.pvcs.get_ns(clone[0], clone[1]) is not None

    async def _copy_clone(self, dv, clone):
        """The clone's bytes: the source claim's volume or the snapshot's image become the
        DataVolume's volume; False while the source cannot be read yet (a snapshot not ready)."""
        target = dig(self.sim.cache.pvcs.get_ns(clone[2], clone[3]), "spec", "volumeName")
        if source_kind(dv) == "snapshot":
            try:
                handle, _snap = await snapshot_handle(self.sim, clone[0], clone[1])
            except SourceNotReady:
                return False
            await asyncio.to_thread(self.sim.volumes.restore, handle, target)
            return True
        source = dig(self.sim.cache.pvcs.get_ns(clone[0], clone[1]), "spec", "volumeName")
        if not source:
            return False
        await asyncio.to_thread(self.sim.volumes.clone, source, target)
        return True

    async def _progress(self, dv, new, what, clone):
        st, conds = new["status"], new["status"]["conditions"]
        ns, name = dv["metadata"]["namespace"], dv["metadata"]["name"]
        if clone is not None and not await self._clone_source_exists(dv, clone):
            st["phase"] = "CloneScheduled"
            set_condition(conds, "Running", "False", "CloneWithoutSource",
                          f"The source {source_kind(dv)} {clone[1]} doesn't exist")
            set_condition(conds, "Ready", "False", "CloneScheduled")
            await self._write(dv, new)
            return
        elapsed = self._mark(dv, "bound", dig(get_condition(dv, "Bound") or {}, "lastTransitionTime"))
        step = phases.dv_transfer(what, elapsed, self.duration(dv))
        if clone is not None and step.phase == "Succeeded" and dig(dv, "status", "phase") != "Succeeded" \
                and not await self._copy_clone(dv, clone):
            self.enqueue(f"{ns}/{name}", after=2)   # the source's bytes are not there yet: finish later
            return
        names = {"name": name, "ns": ns}
        if clone is not None:
            names.update(source_ns=clone[0], source=clone[1])
        await self._step(dv, new, step, phases.dv_transfer_message(what, step.phase, **names))

    async def _step(self, dv, new, step, message):
        """Write one phases.DVStep: phase, progress, conditions, the event when the phase is new."""
        st, conds = new["status"], new["status"]["conditions"]
        st["phase"] = step.phase
        if step.progress is not None:
            st["progress"] = step.progress
        set_condition(conds, "Running", *step.running)
        set_condition(conds, "Ready", *step.ready)
        if step.requeue is not None:
            self.enqueue(f"{dv['metadata']['namespace']}/{dv['metadata']['name']}", after=step.requeue)
        if step.phase != dig(dv, "status", "phase"):
            self.sim.recorder.normal(dv, step.event_reason, message, component="datavolume-controller")
        await self._write(dv, new)

    async def _failing_import(self, dv, new):
        st, conds = new["status"], new["status"]["conditions"]
        name = dv["metadata"]["name"]
        msg = import_error(source_url(dv))
        st["phase"] = "ImportInProgress"
        st["progress"] = "N/A"
        restarts = int(dig(dv, "status", "restartCount", default=0) or 0)
        since_restart = self._mark(dv, f"restart-{restarts}",
                                   dig(get_condition(dv, "Running") or {}, "lastTransitionTime"))
        failing = (get_condition(dv, "Running") or {}).get("reason") == "Error"
        st["restartCount"], report, requeue = phases.dv_failing_import(restarts, since_restart, failing)
        if not failing:
            self.sim.recorder.normal(dv, "ImportInProgress", f"Import into {name} in progress",
                                     component="datavolume-controller")
        if report:
            self.sim.recorder.warning(dv, "Error", msg, component="datavolume-controller")
        set_condition(conds, "Running", "False", "Error", msg)
        set_condition(conds, "Ready", "False", "Error")
        await self._write(dv, new)
        self.enqueue(f"{dv['metadata']['namespace']}/{name}", after=requeue)

    async def _upload(self, dv, new):
        elapsed = self._mark(dv, "bound", dig(get_condition(dv, "Bound") or {}, "lastTransitionTime"))
        step = phases.dv_upload(elapsed)
        await self._step(dv, new, step, phases.dv_upload_message(step.phase, dv["metadata"]["name"]))

    async def _write(self, old, new):
        if old.get("status") != new.get("status"):
            await self.sim.cache.dvs.replace(new, sub="status")
