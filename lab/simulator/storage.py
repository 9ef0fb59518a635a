"""External provisioner for the lab StorageClasses (provisioner lab.virtops.io/simulated).

kube-controller-manager's PV controller annotates claims with the provisioner's name; we create a
PV with a claimRef and KCM binds the pair. WaitForFirstConsumer claims wait for the scheduler's
`volume.kubernetes.io/selected-node`. Released PVs with reclaim policy Delete are deleted.
"""
from .kube import PV, ApiError
from .runtime import Controller
from .util import dig

PROVISIONER = "lab.virtops.io/simulated"
PROVISIONER_NO_SNAPSHOTS = "lab.virtops.io/no-snapshots"     # the same volumes, no VolumeSnapshotClass
PROVISIONERS = (PROVISIONER, PROVISIONER_NO_SNAPSHOTS)
ANN_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_PROVISIONER_BETA = "volume.beta.kubernetes.io/storage-provisioner"
SELECTED_NODE = "volume.kubernetes.io/selected-node"


class Provisioner(Controller):
    name = "provisioner"
    workers = 2

    async def sync(self, key):
        if key.startswith("pv/"):
            await self.reclaim(key[3:])
            return
        pvc = self.sim.cache.pvcs.get(key)
        if pvc is None or pvc["metadata"].get("deletionTimestamp"):
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

    async def reclaim(self, name):
        pv = self.sim.cache.pvs.get(name)
        if pv is None:
            return
        if (pv["metadata"].get("annotations") or {}).get("pv.kubernetes.io/provisioned-by") not in PROVISIONERS:
            return
        if dig(pv, "status", "phase") == "Released" and \
                dig(pv, "spec", "persistentVolumeReclaimPolicy") == "Delete" and not pv["metadata"].get("deletionTimestamp"):
            await self.sim.kube.delete(PV, name)

