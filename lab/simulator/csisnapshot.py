"""The CSI snapshot path of the lab's storage: external-snapshotter's snapshot-controller and csi-snapshotter
sidecar for the driver lab.virtops.io/simulated (kubernetes-csi/external-snapshotter v8.2.0,
pkg/common-controller/snapshot_controller.go and pkg/sidecar-controller/snapshot_controller.go).

A VolumeSnapshot of a bound claim gets a VolumeSnapshotContent `snapcontent-<snapshot uid>` (dynamic
provisioning: the class is spec.volumeSnapshotClassName or the driver's default class); the sidecar "cuts"
the snapshot (sim.volumes.snapshot copies the PersistentVolume's image, when it has one) and sets the content's
status: snapshotHandle, creationTime (Unix nanoseconds), readyToUse, restoreSize (bytes); the common controller
copies that to the VolumeSnapshot (creationTime as a timestamp, restoreSize as a quantity). Deleting a
VolumeSnapshot deletes its content under deletionPolicy Delete (Retain keeps it); deleting a content deletes
the snapshot's bytes (sim.volumes.delete_snapshot). Errors are written to status.error as upstream words them.
"""
import asyncio
import datetime as dt
import time

from .kube import PV, VOLUME_SNAPSHOT, VOLUME_SNAPSHOT_CONTENT, ApiError
from .runtime import Controller
from .storage import PROVISIONER
from .util import deep, dig, format_bytes, parse_quantity, ts

SNAPSHOT_BOUND_FINALIZER = "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"
CONTENT_FINALIZER = "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"
DEFAULT_CLASS = "snapshot.storage.kubernetes.io/is-default-class"
COMPONENT = "snapshot-controller"


def content_name(vs):
    return f"snapcontent-{vs['metadata']['uid']}"


def snapshot_class_for(classes, storage_class, wanted=None):
    """(class, error): the VolumeSnapshotClass a snapshot of a claim of `storage_class` uses."""
    if wanted:
        found = next((c for c in classes if c["metadata"]["name"] == wanted), None)
        if found is None:
            return None, f'volumesnapshotclass.snapshot.storage.k8s.io "{wanted}" not found'
        return found, None
    driver = (storage_class or {}).get("provisioner")
    defaults = [c for c in classes if c.get("driver") == driver
                and (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS) == "true"]
    if len(defaults) == 1:
        return defaults[0], None
    if len(defaults) > 1:
        return None, f"cannot find default snapshot class: {len(defaults)} default snapshot classes found"
    return None, "cannot find default snapshot class"


def error(message):
    return {"message": message, "time": ts()}


class CsiSnapshotter(Controller):
    name = "csi-snapshotter"
    workers = 2

    # keys: "vs/<ns>/<name>" for VolumeSnapshots, "content/<name>" for VolumeSnapshotContents
    async def sync(self, key):
        kind, _, rest = key.partition("/")
        if kind == "vs":
            await self.sync_snapshot(rest)
        else:
            await self.sync_content(rest)

    # --------------------------------------------------------------------- common controller
    async def sync_snapshot(self, key):
        cache = self.sim.cache
        vs = cache.volumesnapshots.get(key)
        if vs is None:
            return
        meta = vs["metadata"]
        bound = dig(vs, "status", "boundVolumeSnapshotContentName")
        content = cache.volumesnapshotcontents.get(bound) if bound else None
        if meta.get("deletionTimestamp"):
            if content is not None and content.get("spec", {}).get("deletionPolicy") == "Delete":
                if not content["metadata"].get("deletionTimestamp"):
                    await self.sim.kube.delete(VOLUME_SNAPSHOT_CONTENT, bound)
                return          # the content's deletion wakes us again
            await self._set_finalizers(vs, [f for f in meta.get("finalizers") or [] if f != SNAPSHOT_BOUND_FINALIZER])
            return
        if SNAPSHOT_BOUND_FINALIZER not in (meta.get("finalizers") or []):
            vs = await self._set_finalizers(vs, (meta.get("finalizers") or []) + [SNAPSHOT_BOUND_FINALIZER])
            if vs is None:
                return
        if content is None and not bound:
            content = cache.volumesnapshotcontents.get(content_name(vs))
            if content is None:
                problem = self._check_source(vs)
                if problem:
                    await self._fail(vs, problem)
                    return
                content = await self._create_content(vs)
        await self._copy_status(vs, content)

    def _check_source(self, vs):
        """What stops a snapshot (getCreateSnapshotInput, checkandAddSnapshotFinalizers): the claim and the class."""
        cache = self.sim.cache
        ns, name = vs["metadata"]["namespace"], vs["metadata"]["name"]
        claim = dig(vs, "spec", "source", "persistentVolumeClaimName")
        if not claim:
            return None if dig(vs, "spec", "source", "volumeSnapshotContentName") else \
                f"failed to get input parameters to create snapshot {name}: \"the snapshot source is not specified\""
        pvc = cache.pvcs.get_ns(ns, claim)
        if pvc is None:
            return (f"failed to get input parameters to create snapshot {name}: \"failed to retrieve PVC {claim} from "
                    f"the lister: \\\"persistentvolumeclaim \\\\\\\"{claim}\\\\\\\" not found\\\"\"")
        if dig(pvc, "status", "phase") != "Bound" or not dig(pvc, "spec", "volumeName"):
            return (f"failed to get input parameters to create snapshot {name}: \"the PVC {claim} is not yet bound "
                    f"to a PV, will not attempt to take a snapshot\"")
        sc = cache.storageclasses.get(dig(pvc, "spec", "storageClassName") or "")
        _cls, problem = snapshot_class_for(cache.volumesnapshotclasses.items(), sc,
                                           dig(vs, "spec", "volumeSnapshotClassName"))
        if problem:
            return f"failed to get input parameters to create snapshot {name}: \"{problem}\""
        return None

    async def _create_content(self, vs):
        cache = self.sim.cache
        ns = vs["metadata"]["namespace"]
        pvc = cache.pvcs.get_ns(ns, vs["spec"]["source"]["persistentVolumeClaimName"])
        cls, _ = snapshot_class_for(cache.volumesnapshotclasses.items(),
                                    cache.storageclasses.get(dig(pvc, "spec", "storageClassName") or ""),
                                    dig(vs, "spec", "volumeSnapshotClassName"))
        body = {"apiVersion": VOLUME_SNAPSHOT_CONTENT.api_version, "kind": VOLUME_SNAPSHOT_CONTENT.kind,
                "metadata": {"name": content_name(vs), "finalizers": [CONTENT_FINALIZER]},
                "spec": {"volumeSnapshotRef": {"kind": "VolumeSnapshot", "apiVersion": VOLUME_SNAPSHOT.api_version,
                                               "namespace": ns, "name": vs["metadata"]["name"],
                                               "uid": vs["metadata"]["uid"],
                                               "resourceVersion": vs["metadata"]["resourceVersion"]},
                         "source": {"volumeHandle": pvc["spec"]["volumeName"]},
                         "driver": cls["driver"], "deletionPolicy": cls.get("deletionPolicy") or "Delete",
                         "volumeSnapshotClassName": cls["metadata"]["name"],
                         "sourceVolumeMode": dig(pvc, "spec", "volumeMode", default="Filesystem")}}
        try:
            created = await self.sim.kube.create_or_get(VOLUME_SNAPSHOT_CONTENT, body)
        except ApiError as exc:
            await self._fail(vs, f"Failed to create snapshot content with error {exc.body.get('message')}")
            raise
        cache.volumesnapshotcontents.observe(created)
        self.sim.recorder.normal(vs, "CreatingSnapshot", "Waiting for a snapshot "
                                 f"{ns}/{vs['metadata']['name']} to be created by the CSI driver.", COMPONENT)
        return created

    async def _copy_status(self, vs, content):
        """updateSnapshotStatus: the content's status, in the VolumeSnapshot's types."""
        st = deep(vs.get("status") or {})
        st["boundVolumeSnapshotContentName"] = content["metadata"]["name"]
        cst = content.get("status") or {}
        st["readyToUse"] = bool(cst.get("readyToUse"))
        if cst.get("creationTime"):
            st["creationTime"] = ts(dt.datetime.fromtimestamp(cst["creationTime"] / 1e9, dt.timezone.utc))
        if cst.get("restoreSize") is not None:
            st["restoreSize"] = format_bytes(int(cst["restoreSize"]))
        if cst.get("error"):
            st["error"] = cst["error"]
        else:
            st.pop("error", None)
        if st == (vs.get("status") or {}):
            return
        was = vs.get("status") or {}
        body = deep(vs)
        body["status"] = st
        if await self.sim.cache.volumesnapshots.replace(body, sub="status") is None:
            return
        ref = f"{vs['metadata']['namespace']}/{vs['metadata']['name']}"
        if st.get("creationTime") and not was.get("creationTime"):
            self.sim.recorder.normal(vs, "SnapshotCreated",
                                     f"Snapshot {ref} was successfully created by the CSI driver.", COMPONENT)
        if st["readyToUse"] and not was.get("readyToUse"):
            self.sim.recorder.normal(vs, "SnapshotReady", f"Snapshot {ref} is ready to use.", COMPONENT)

    async def _fail(self, vs, message):
        st = deep(vs.get("status") or {})
        if (st.get("error") or {}).get("message") == message:
            return
        st["error"] = error(message)
        st["readyToUse"] = False
        body = deep(vs)
        body["status"] = st
        await self.sim.cache.volumesnapshots.replace(body, sub="status")
        self.sim.recorder.warning(vs, "SnapshotContentCreationFailed", message, COMPONENT)

    async def _set_finalizers(self, obj, finalizers):
        res = VOLUME_SNAPSHOT if obj["metadata"].get("namespace") else VOLUME_SNAPSHOT_CONTENT
        try:
            patched = await self.sim.kube.patch(res, obj["metadata"]["name"], [
                {"op": "test", "path": "/metadata/resourceVersion", "value": obj["metadata"]["resourceVersion"]},
                {"op": "replace" if "finalizers" in obj["metadata"] else "add", "path": "/metadata/finalizers",
                 "value": finalizers}], obj["metadata"].get("namespace"), kind="json")
        except ApiError as exc:
            if exc.status == 404:
                return None
            if exc.status == 422:       # the test failed: a newer version is on its way to the cache
                raise ApiError(409, exc.body) from None
            raise
        (self.sim.cache.volumesnapshots if res is VOLUME_SNAPSHOT else self.sim.cache.volumesnapshotcontents) \
            .observe(patched)
        return patched

    # --------------------------------------------------------------------------- sidecar
    async def sync_content(self, name):
        content = self.sim.cache.volumesnapshotcontents.get(name)
        if content is None or dig(content, "spec", "driver") != PROVISIONER:
            return
        ref = dig(content, "spec", "volumeSnapshotRef", default={}) or {}
        if content["metadata"].get("deletionTimestamp"):
            handle = dig(content, "status", "snapshotHandle")
            if handle and dig(content, "spec", "deletionPolicy") == "Delete":
                await asyncio.to_thread(self.sim.volumes.delete_snapshot, handle)
            await self._set_finalizers(content, [f for f in content["metadata"].get("finalizers") or []
                                                 if f != CONTENT_FINALIZER])
            if ref.get("name"):
                self.enqueue(f"vs/{ref.get('namespace')}/{ref['name']}")
            return
        if dig(content, "status", "snapshotHandle") or not dig(content, "spec", "source", "volumeHandle"):
            if ref.get("name"):
                self.enqueue(f"vs/{ref.get('namespace')}/{ref['name']}")
            return
        pv_name = content["spec"]["source"]["volumeHandle"]
        pv = self.sim.cache.pvs.get(pv_name)
        handle = f"snapshot-{content['metadata']['uid']}"
        await asyncio.to_thread(self.sim.volumes.snapshot, pv_name, handle)
        size = parse_quantity(dig(pv, "spec", "capacity", "storage", default="0"))
        body = deep(content)
        body["status"] = {"snapshotHandle": handle, "creationTime": time.time_ns(), "readyToUse": True,
                          "restoreSize": int(size)}
        await self.sim.cache.volumesnapshotcontents.replace(body, sub="status")
        if ref.get("name"):
            self.enqueue(f"vs/{ref.get('namespace')}/{ref['name']}")
