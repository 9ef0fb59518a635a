"""External provisioner for the lab StorageClasses (provisioner lab.virtops.io/simulated).

kube-controller-manager's PV controller annotates claims with the provisioner's name; we create a
PV with a claimRef and KCM binds the pair. WaitForFirstConsumer claims wait for the scheduler's
`volume.kubernetes.io/selected-node`. Released PVs with reclaim policy Delete are deleted, and
so are their bytes (volumedata.py: DeleteVolume).

A claim with a data source starts as a copy, as external-provisioner asks the CSI driver
(kubernetes-csi/external-provisioner pkg/controller/controller.go, getVolumeContentSource): a
VolumeSnapshot source waits until the snapshot is bound and readyToUse, then the volume is the
snapshot's image (its VolumeSnapshotContent's status.snapshotHandle, read by plain GET); a
PersistentVolumeClaim source must be Bound and no larger than the claim, then the volume is a copy
of its volume. Until then the claim stays Pending with ProvisioningFailed events saying why, in
external-provisioner's words, and the provisioner retries with a growing delay.
"""
import asyncio

from .kube import PV, VOLUME_SNAPSHOT, VOLUME_SNAPSHOT_CONTENT, ApiError
from .runtime import Controller
from .util import dig, parse_quantity

PROVISIONER = "lab.virtops.io/simulated"
PROVISIONER_NO_SNAPSHOTS = "lab.virtops.io/no-snapshots"     # the same volumes, no VolumeSnapshotClass
PROVISIONERS = (PROVISIONER, PROVISIONER_NO_SNAPSHOTS)
ANN_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_PROVISIONER_BETA = "volume.beta.kubernetes.io/storage-provisioner"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
SNAPSHOT_GROUP = "snapshot.storage.k8s.io"
RETRY_MAX = 30.0   # seconds between attempts at most (the provisioner library's backoff caps higher)


class SourceNotReady(Exception):
    """The claim's data source cannot be used yet; the message is external-provisioner's."""


def data_source(pvc):
    """(kind, namespace, name) of a claim's snapshot or claim data source, or None (no source, or a
    kind a populator fills: provisioned empty). dataSourceRef wins: it is the one with a namespace."""
    ref = dig(pvc, "spec", "dataSourceRef") or dig(pvc, "spec", "dataSource")
    if not ref or not ref.get("name"):
        return None
    kind, group = ref.get("kind"), ref.get("apiGroup") or ""
    if (kind, group) not in (("VolumeSnapshot", SNAPSHOT_GROUP), ("PersistentVolumeClaim", "")):
        return None
    return kind, ref.get("namespace") or pvc["metadata"]["namespace"], ref["name"]


async def snapshot_handle(sim, namespace, name):
    """The CSI handle of a ready VolumeSnapshot, or SourceNotReady in external-provisioner's words
    (getSnapshotSource); also CDI's snapshot clone source."""
    try:
        snap = await sim.kube.get(VOLUME_SNAPSHOT, name, namespace)
    except ApiError as exc:
        raise SourceNotReady(f"error getting snapshot {name} from api server: {_message(exc)}") from None
    if snap["metadata"].get("deletionTimestamp"):
        raise SourceNotReady(f"snapshot {name} is being deleted")
    content_name = dig(snap, "status", "boundVolumeSnapshotContentName")
    if not content_name:
        raise SourceNotReady(f"snapshot {name} not bound")
    try:
        content = await sim.kube.get(VOLUME_SNAPSHOT_CONTENT, content_name)
    except ApiError:
        raise SourceNotReady(f"snapshot {name} not bound") from None
    ref = dig(content, "spec", "volumeSnapshotRef", default={}) or {}
    if (ref.get("uid"), ref.get("namespace"), ref.get("name")) != (snap["metadata"]["uid"], namespace, name):
        raise SourceNotReady(f"snapshot {name} not bound")
    if dig(snap, "status", "readyToUse") is not True:
        raise SourceNotReady(f"snapshot {name} is not Ready")
    handle = dig(content, "status", "snapshotHandle")
    if not handle:
        raise SourceNotReady(f"snapshot handle {name} is not available")
    return handle, snap


def _message(exc):
    return exc.body.get("message") or str(exc)


class Provisioner(Controller):
    name = "provisioner"
    workers = 2

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._tries = {}        # claim key -> failed attempts (the retry delay grows)
        self._deletable = {}    # PV name -> reclaim policy Delete (its image goes when the PV goes)

    async def sync(self, key):
        if key.startswith("pv/"):
            await self.reclaim(key[3:])
            return
        pvc = self.sim.cache.pvcs.get(key)
        if pvc is None or pvc["metadata"].get("deletionTimestamp"):
            self._tries.pop(key, None)
            return
        ann = pvc["metadata"].get("annotations") or {}
        provisioner = ann.get(ANN_PROVISIONER) or ann.get(ANN_PROVISIONER_BETA)
        if provisioner not in PROVISIONERS:
            return
        if dig(pvc, "spec", "volumeName") or dig(pvc, "status", "phase") == "Bound":
            return
        sc_name = dig(pvc, "spec", "storageClassName")
        sc = self.sim.cache.storageclasses.get(sc_name) if sc_name else None
        if sc is None:
            return
        node = ann.get(SELECTED_NODE)
        if sc.get("volumeBindingMode") == "WaitForFirstConsumer" and not node:
            return
        name = f"pvc-{pvc['metadata']['uid']}"
        if self.sim.cache.pvs.get(name) is not None:
            return
        size = dig(pvc, "spec", "resources", "requests", "storage") or "1Gi"
        source = data_source(pvc)
        if source is not None:
            try:
                await self.fill(pvc, source, name)
            except SourceNotReady as exc:
                tries = self._tries.get(key, 0)
                self._tries[key] = tries + 1
                self.sim.recorder.warning(
                    pvc, "ProvisioningFailed", f'failed to provision volume with StorageClass "{sc_name}": '
                    f"error getting handle for DataSource Type {source[0]} by Name {source[2]}: {exc}",
                    component=f"{provisioner}_lab")
                self.enqueue(key, after=min(RETRY_MAX, 2.0 ** tries))
                return
            self._tries.pop(key, None)
        pv = {"apiVersion": "v1", "kind": "PersistentVolume",
              "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": provisioner},
                           "finalizers": ["kubernetes.io/pv-protection"]},
              "spec": {"capacity": {"storage": size},
                       "accessModes": dig(pvc, "spec", "accessModes", default=["ReadWriteOnce"]),
                       "volumeMode": dig(pvc, "spec", "volumeMode", default="Filesystem"),
                       "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
                       "storageClassName": sc_name,
                       "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                    "namespace": pvc["metadata"]["namespace"], "name": pvc["metadata"]["name"],
                                    "uid": pvc["metadata"]["uid"]},
                       "hostPath": {"path": f"/var/lib/lab/volumes/{name}", "type": ""}}}
        if node:
            pv["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
        try:
            created = await self.sim.kube.create(PV, pv)
        except ApiError as exc:
            if exc.status == 409:
                return
            self.sim.recorder.warning(pvc, "ProvisioningFailed", f"failed to provision volume: {exc}",
                                      component=f"{provisioner}_lab")
            raise
        self.sim.cache.pvs.observe(created)
        self.sim.recorder.normal(pvc, "ProvisioningSucceeded",
                                 f"Successfully provisioned volume {name}", component=f"{provisioner}_lab")

    async def fill(self, pvc, source, pv_name):
        """Make the new volume's image from the claim's data source (SourceNotReady: not yet)."""
        kind, ns, src = source
        requested = parse_quantity(dig(pvc, "spec", "resources", "requests", "storage"))
        if kind == "VolumeSnapshot":
            handle, snap = await snapshot_handle(self.sim, ns, src)
            restore_size = dig(snap, "status", "restoreSize")
            if restore_size and requested < parse_quantity(restore_size):
                raise SourceNotReady(f"requested volume size {int(requested)} is less than the size "
                                     f"{int(parse_quantity(restore_size))} for the source snapshot {src}")
            await asyncio.to_thread(self.sim.volumes.restore, handle, pv_name)
            return
        source_pvc = self.sim.cache.pvcs.get_ns(ns, src)
        if source_pvc is None:
            raise SourceNotReady(f'error getting PVC {src} (namespace "{pvc["metadata"]["namespace"]}") from api '
                                 f'server: persistentvolumeclaim "{src}" not found')
        if dig(source_pvc, "status", "phase") != "Bound":
            raise SourceNotReady(f"the PVC DataSource {src} must have a status of Bound.  Got "
                                 f"{dig(source_pvc, 'status', default={})}")
        if source_pvc["metadata"].get("deletionTimestamp"):
            raise SourceNotReady(f"the PVC DataSource {src} is currently being deleted")
        source_size = parse_quantity(dig(source_pvc, "spec", "resources", "requests", "storage"))
        if requested < source_size:
            raise SourceNotReady("error, new PVC request must be greater than or equal in size to the specified "
                                 f"PVC data source, requested {int(requested)} but source is {int(source_size)}")
        source_pv = dig(source_pvc, "spec", "volumeName")
        if not source_pv or self.sim.cache.pvs.get(source_pv) is None:
            raise SourceNotReady("claim in dataSource not bound or invalid")
        await asyncio.to_thread(self.sim.volumes.clone, source_pv, pv_name)

    async def reclaim(self, name):
        pv = self.sim.cache.pvs.get(name)
        if pv is None:
            if self._deletable.pop(name, False):   # deleted by someone else: its bytes go with it
                await asyncio.to_thread(self.sim.volumes.delete_volume, name)
            return
        if (pv["metadata"].get("annotations") or {}).get("pv.kubernetes.io/provisioned-by") not in PROVISIONERS:
            return
        delete = dig(pv, "spec", "persistentVolumeReclaimPolicy") == "Delete"
        self._deletable[name] = delete
        if dig(pv, "status", "phase") == "Released" and delete and not pv["metadata"].get("deletionTimestamp"):
            await asyncio.to_thread(self.sim.volumes.delete_volume, name)   # the driver's DeleteVolume first
            await self.sim.kube.delete(PV, name)

