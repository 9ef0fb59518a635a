"""Cluster set-up on every `labctl up`: the CRDs (Established), the common-instancetypes bundles, the
StorageClasses, the default namespace."""
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .common import LabError, rel
from .kubeapi import ApiError

CRDS = Path(__file__).resolve().parents[1] / "crds"
INSTANCETYPES = Path(__file__).resolve().parents[1] / "instancetypes"
INSTANCETYPE_PLURALS = {"VirtualMachineClusterInstancetype": "virtualmachineclusterinstancetypes",
                        "VirtualMachineClusterPreference": "virtualmachineclusterpreferences"}
PROVISIONER = "lab.virtops.io/simulated"
# A driver with no VolumeSnapshotClass: KubeVirt snapshots no volume of its class (volumeSnapshotStatuses
# says "No VolumeSnapshotClass: ..."), as on storage without CSI snapshots.
PROVISIONER_NO_SNAPSHOTS = "lab.virtops.io/no-snapshots"
STORAGE_CLASSES = (("lab-local", "Immediate", True, PROVISIONER),
                   ("lab-wffc", "WaitForFirstConsumer", False, PROVISIONER),
                   ("lab-nosnap", "Immediate", False, PROVISIONER_NO_SNAPSHOTS))
SNAPSHOT_CLASS = "lab-snapshots"


def apply_crds(api):
    names = []
    for path in sorted(CRDS.glob("*.yaml")):
        body = path.read_bytes()
        name = _crd_name(body.decode())
        try:
            api.apply(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}", body)
        except ApiError as exc:
            raise LabError(f"the apiserver rejected CRD {name} from {rel(path)}: {exc}") from None
        names.append(name)
    deadline = time.monotonic() + 30
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            crd = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conds = {c["type"]: c["status"] for c in crd.get("status", {}).get("conditions", [])}
            if conds.get("Established") == "True":
                pending.discard(name)
        if pending:
            time.sleep(0.1)
    if pending:
        raise LabError(f"CRDs not Established after 30s: {', '.join(sorted(pending))}")
    return names


def _crd_name(text):
    """metadata.name of a one-document CRD YAML, without needing PyYAML."""
    in_meta = False
    for line in text.splitlines():
        if line.startswith("metadata:"):
            in_meta = True
        elif in_meta and line.startswith("  name:"):
            return line.split(":", 1)[1].strip().strip("'\"")
        elif in_meta and line and not line.startswith(" "):
            in_meta = False
    raise LabError("a CRD file has no metadata.name")


def apply_instancetypes(api):
    """What virt-operator's reconciler does with the common-instancetypes bundles (createOrUpdateInstancetype /
    createOrUpdatePreference): an object whose labels, annotations and spec already match is left alone, the
    others are written. One list per kind, then the writes in parallel: a fresh `up` stays quick.
    Returns (objects in the bundles, objects written, common-instancetypes versions)."""
    wanted, versions = [], set()
    for path in sorted(INSTANCETYPES.glob("*.json")):
        bundle = json.loads(path.read_text())
        versions.update(v for v in bundle["source"]["common-instancetypes"].split(",") if v)
        wanted += bundle["items"]
    existing = {}
    for kind, plural in INSTANCETYPE_PLURALS.items():
        for item in _list_when_served(api, f"/apis/instancetype.kubevirt.io/v1beta1/{plural}"):
            existing[(kind, item["metadata"]["name"])] = item
    stale = [obj for obj in wanted if not _same_object(obj, existing.get((obj["kind"], obj["metadata"]["name"])))]

    def write(obj):
        path = f"/apis/instancetype.kubevirt.io/v1beta1/{INSTANCETYPE_PLURALS[obj['kind']]}/{obj['metadata']['name']}"
        try:
            api.apply(path, obj, manager="virt-operator")
        except ApiError as exc:
            raise LabError(f"the apiserver rejected {obj['kind']} {obj['metadata']['name']}: {exc}") from None
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, stale))
    return len(wanted), len(stale), sorted(versions)


def _list_when_served(api, path, timeout=20):
    """A CRD just Established answers 404/429 ("storage is (re)initializing") for a moment."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return api.get(path).get("items") or []
        except ApiError as exc:
            if exc.status not in (404, 429, 503) or time.monotonic() > deadline:
                raise LabError(f"listing {path}: {exc}") from None
            time.sleep(0.1)


def _same_object(want, have):
    if have is None:
        return False
    meta, hmeta = want["metadata"], have["metadata"]
    return all((hmeta.get(k) or {}).get(key) == value for k in ("labels", "annotations")
               for key, value in (meta.get(k) or {}).items()) and have.get("spec") == want.get("spec")


def apply_storage_classes(api):
    for name, mode, default, provisioner in STORAGE_CLASSES:
        api.apply(f"/apis/storage.k8s.io/v1/storageclasses/{name}", {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name, "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true" if default else "false"}},
            "provisioner": provisioner, "reclaimPolicy": "Delete", "volumeBindingMode": mode,
            "allowVolumeExpansion": True})


def apply_snapshot_class(api):
    """The lab driver's VolumeSnapshotClass (external-snapshotter's API; the CRD was just Established)."""
    path = f"/apis/snapshot.storage.k8s.io/v1/volumesnapshotclasses/{SNAPSHOT_CLASS}"
    _list_when_served(api, "/apis/snapshot.storage.k8s.io/v1/volumesnapshotclasses")
    api.apply(path, {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
                     "metadata": {"name": SNAPSHOT_CLASS, "annotations": {
                         "snapshot.storage.kubernetes.io/is-default-class": "true"}},
                     "driver": PROVISIONER, "deletionPolicy": "Delete"})


def wait_default_namespace(api, timeout=20):
    """The apiserver creates `default` itself; tests and users assume it exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            api.get("/api/v1/namespaces/default")
            return
        except ApiError:
            time.sleep(0.1)
