"""The lab provisioner's choice of a new volume's bytes (lab/simulator/storage.py): a claim from a
VolumeSnapshot starts as the snapshot's image once the snapshot is ready, a claim from a claim as a
copy of its volume, other claims empty; a source not usable yet leaves the claim Pending with
external-provisioner's message; a volume deleted by its reclaim policy loses its image."""
import asyncio
import types

import pytest

from simulator import storage
from simulator.kube import PV, VOLUME_SNAPSHOT, VOLUME_SNAPSHOT_CONTENT, ApiError
from simulator.volumedata import VolumeData


class Store:
    def __init__(self, objs=()):
        self.objs = {self.key(o): o for o in objs}

    @staticmethod
    def key(obj):
        meta = obj["metadata"]
        return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]

    def get(self, key):
        return self.objs.get(key)

    def get_ns(self, ns, name):
        return self.objs.get(f"{ns}/{name}")

    def observe(self, obj):
        self.objs[self.key(obj)] = obj


class Kube:
    def __init__(self, objs):
        self.objs = objs          # (resource plural, namespace, name) -> object
        self.created, self.deleted = [], []

    async def get(self, res, name, namespace=None):
        try:
            return self.objs[(res.plural, namespace, name)]
        except KeyError:
            raise ApiError(404, {"message": f'{res.plural}.{res.group} "{name}" not found'}) from None

    async def create(self, res, body, namespace=None):
        self.created.append(body)
        return body

    async def delete(self, res, name, namespace=None):
        self.deleted.append((res.kind, name))


class Recorder:
    def __init__(self):
        self.events = []

    def warning(self, obj, reason, message, component=""):
        self.events.append((reason, message))

    def normal(self, obj, reason, message, component=""):
        self.events.append((reason, message))


def claim(name, uid, size="1Gi", source=None, phase="Pending", volume=None):
    pvc = {"metadata": {"name": name, "namespace": "ns", "uid": uid,
                        "annotations": {storage.ANN_PROVISIONER: storage.PROVISIONER}},
           "spec": {"storageClassName": "lab", "resources": {"requests": {"storage": size}}},
           "status": {"phase": phase}}
    if source:
        pvc["spec"]["dataSource"] = source
    if volume:
        pvc["spec"]["volumeName"] = volume
    return pvc


def snapshot_objects(ready=True, bound=True, restore_size="1Gi"):
    snap = {"metadata": {"name": "snap", "namespace": "ns", "uid": "snap-uid"},
            "status": {"readyToUse": ready, "restoreSize": restore_size}}
    if bound:
        snap["status"]["boundVolumeSnapshotContentName"] = "snapcontent-1"
    content = {"metadata": {"name": "snapcontent-1"},
               "spec": {"volumeSnapshotRef": {"name": "snap", "namespace": "ns", "uid": "snap-uid"}},
               "status": {"snapshotHandle": "handle-1"} if ready else {}}
    return {(VOLUME_SNAPSHOT.plural, "ns", "snap"): snap,
            (VOLUME_SNAPSHOT_CONTENT.plural, None, "snapcontent-1"): content}


def provisioner(tmp_path, pvcs, pvs=(), kube_objs=None):
    sim = types.SimpleNamespace(
        cache=types.SimpleNamespace(pvcs=Store(pvcs), pvs=Store(pvs),
                                    storageclasses=Store([{"metadata": {"name": "lab"}, "reclaimPolicy": "Delete"}])),
        kube=Kube(kube_objs or {}), recorder=Recorder(), volumes=VolumeData(tmp_path))
    return storage.Provisioner(sim)


def run(prov, key):
    """One sync of KEY; the provisioner's requeues are collected in prov.requeued."""
    if not hasattr(prov, "requeued"):
        prov.requeued = []
        prov.enqueue = lambda key, after=None: prov.requeued.append((key, after))
    asyncio.run(prov.sync(key))


SNAP_SOURCE = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap"}


def test_a_claim_from_a_ready_snapshot_starts_as_the_snapshot(tmp_path):
    prov = provisioner(tmp_path, [claim("restored", "u1", source=SNAP_SOURCE)], kube_objs=snapshot_objects())
    prov.sim.volumes.snapshot_image("handle-1").parent.mkdir(parents=True)
    prov.sim.volumes.snapshot_image("handle-1").write_bytes(b"snapshot data")
    run(prov, "ns/restored")
    assert [pv["metadata"]["name"] for pv in prov.sim.kube.created] == ["pvc-u1"]
    assert prov.sim.volumes.image("pvc-u1").read_bytes() == b"snapshot data"


@pytest.mark.parametrize("objs, message", [
    (snapshot_objects(ready=False), "snapshot snap is not Ready"),
    (snapshot_objects(bound=False), "snapshot snap not bound"),
    ({}, 'error getting snapshot snap from api server: volumesnapshots.snapshot.storage.k8s.io "snap" not found'),
])
def test_a_claim_from_a_snapshot_not_ready_waits_with_external_provisioners_message(tmp_path, objs, message):
    prov = provisioner(tmp_path, [claim("restored", "u1", source=SNAP_SOURCE)], kube_objs=objs)
    run(prov, "ns/restored")
    run(prov, "ns/restored")
    assert prov.sim.kube.created == []
    assert prov.sim.recorder.events[-1] == (
        "ProvisioningFailed", 'failed to provision volume with StorageClass "lab": error getting handle for '
        f"DataSource Type VolumeSnapshot by Name snap: {message}")
    assert [after for _key, after in prov.requeued] == [1.0, 2.0]   # retried, later each time


def test_a_claim_smaller_than_the_snapshot_is_refused(tmp_path):
    prov = provisioner(tmp_path, [claim("restored", "u1", size="1Gi", source=SNAP_SOURCE)],
                       kube_objs=snapshot_objects(restore_size="2Gi"))
    run(prov, "ns/restored")
    assert prov.sim.kube.created == []
    assert prov.sim.recorder.events[-1][1].endswith(
        "requested volume size 1073741824 is less than the size 2147483648 for the source snapshot snap")


def test_a_claim_from_a_claim_is_a_copy_of_its_volume(tmp_path):
    source = claim("golden", "u0", phase="Bound", volume="pvc-u0")
    prov = provisioner(tmp_path, [source, claim("copy", "u1", source={"kind": "PersistentVolumeClaim",
                                                                       "name": "golden"})],
                       pvs=[{"metadata": {"name": "pvc-u0"}}])
    prov.sim.volumes.ensure("pvc-u0", 4096).write_bytes(b"golden bytes")
    run(prov, "ns/copy")
    assert prov.sim.volumes.image("pvc-u1").read_bytes() == b"golden bytes"


def test_a_claim_from_an_unbound_or_larger_claim_waits(tmp_path):
    prov = provisioner(tmp_path, [claim("golden", "u0", size="2Gi"),
                                  claim("copy", "u1", source={"kind": "PersistentVolumeClaim", "name": "golden"})])
    run(prov, "ns/copy")
    assert "the PVC DataSource golden must have a status of Bound." in prov.sim.recorder.events[-1][1]
    prov.sim.cache.pvcs.get("ns/golden")["status"]["phase"] = "Bound"
    run(prov, "ns/copy")
    assert prov.sim.recorder.events[-1][1].endswith(
        "error, new PVC request must be greater than or equal in size to the specified PVC data source, "
        "requested 1073741824 but source is 2147483648")
    assert prov.sim.kube.created == []


def test_claims_without_a_copyable_source_start_empty(tmp_path):
    populated = claim("imported", "u2", source={"apiGroup": "cdi.kubevirt.io", "kind": "VolumeImportSource",
                                                "name": "src"})
    prov = provisioner(tmp_path, [claim("blank", "u1"), populated])
    run(prov, "ns/blank")
    run(prov, "ns/imported")
    assert [pv["metadata"]["name"] for pv in prov.sim.kube.created] == ["pvc-u1", "pvc-u2"]
    assert not (tmp_path / "pv").exists()   # made on first use by a real guest


def test_a_released_volume_with_reclaim_delete_loses_its_image(tmp_path):
    pv = {"metadata": {"name": "pvc-u1", "annotations": {"pv.kubernetes.io/provisioned-by": storage.PROVISIONER}},
          "spec": {"persistentVolumeReclaimPolicy": "Delete"}, "status": {"phase": "Released"}}
    kept = {"metadata": {"name": "pvc-u2", "annotations": {"pv.kubernetes.io/provisioned-by": storage.PROVISIONER}},
            "spec": {"persistentVolumeReclaimPolicy": "Retain"}, "status": {"phase": "Released"}}
    prov = provisioner(tmp_path, [], pvs=[pv, kept])
    for name in ("pvc-u1", "pvc-u2"):
        prov.sim.volumes.ensure(name, 4096)
    run(prov, "pv/pvc-u1")
    run(prov, "pv/pvc-u2")
    assert prov.sim.kube.deleted == [(PV.kind, "pvc-u1")]
    assert not prov.sim.volumes.image("pvc-u1").exists() and prov.sim.volumes.image("pvc-u2").exists()


def test_a_deleted_volume_with_reclaim_delete_loses_its_image_whoever_deleted_it(tmp_path):
    pv = {"metadata": {"name": "pvc-u1", "annotations": {"pv.kubernetes.io/provisioned-by": storage.PROVISIONER}},
          "spec": {"persistentVolumeReclaimPolicy": "Delete"}, "status": {"phase": "Bound"}}
    prov = provisioner(tmp_path, [], pvs=[pv])
    prov.sim.volumes.ensure("pvc-u1", 4096)
    run(prov, "pv/pvc-u1")                       # seen bound: kept
    assert prov.sim.volumes.image("pvc-u1").exists()
    del prov.sim.cache.pvs.objs["pvc-u1"]        # deleted (kubectl delete pv): its bytes go too
    run(prov, "pv/pvc-u1")
    assert not prov.sim.volumes.image("pvc-u1").exists() and prov.sim.kube.deleted == []
