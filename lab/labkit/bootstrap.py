"""Cluster set-up on every `labctl up`: the CRDs (Established), the StorageClasses, the default namespace."""
import time
from pathlib import Path

from .common import LabError, rel
from .kubeapi import ApiError

CRDS = Path(__file__).resolve().parents[1] / "crds"
STORAGE_CLASSES = (("lab-local", "Immediate", True), ("lab-wffc", "WaitForFirstConsumer", False))
PROVISIONER = "lab.virtops.io/simulated"


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


def apply_storage_classes(api):
    for name, mode, default in STORAGE_CLASSES:
        api.apply(f"/apis/storage.k8s.io/v1/storageclasses/{name}", {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name, "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true" if default else "false"}},
            "provisioner": PROVISIONER, "reclaimPolicy": "Delete", "volumeBindingMode": mode,
            "allowVolumeExpansion": True})


def wait_default_namespace(api, timeout=20):
    """The apiserver creates `default` itself; tests and users assume it exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            api.get("/api/v1/namespaces/default")
            return
        except ApiError:
            time.sleep(0.1)
