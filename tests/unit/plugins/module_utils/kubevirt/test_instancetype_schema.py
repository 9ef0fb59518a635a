"""kubevirt/instancetype_schema.py is KubeVirt v1.8.4's instancetype and preference spec schema as key trees:
it must equal what the committed CRDs (lab/crds/, generated from KubeVirt's own) say, v1beta1 (the served,
stored version), and the cluster-wide kinds must have the same spec."""
from pathlib import Path

import pytest
import yaml

from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import instancetype_schema as S

CRDS = Path(__file__).resolve().parents[5] / "lab" / "crds"


def schema_of(path, version="v1beta1"):
    crd = yaml.safe_load(Path(path).read_text())
    return next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]


def tree_of(schema):
    """A schema -> its key tree: {key: subtree} for an object with properties, S.ANY for free-form maps and
    leaves; a list's tree is its items' tree."""
    if schema.get("type") == "array":
        return tree_of(schema.get("items") or {})
    props = schema.get("properties")
    if props:
        return {key: tree_of(sub) for key, sub in sorted(props.items())}
    return S.ANY


@pytest.mark.parametrize("kind, crd", [
    ("instancetype", "instancetype.kubevirt.io_virtualmachineinstancetypes.yaml"),
    ("instancetype", "instancetype.kubevirt.io_virtualmachineclusterinstancetypes.yaml"),
    ("preference", "instancetype.kubevirt.io_virtualmachinepreferences.yaml"),
    ("preference", "instancetype.kubevirt.io_virtualmachineclusterpreferences.yaml"),
])
def test_key_trees_are_the_crds(kind, crd):
    assert S.SPEC[kind] == tree_of(schema_of(CRDS / crd)["properties"]["spec"])


def test_unknown_keys_are_named_with_their_path():
    assert S.unknown_keys("instancetype", {"cpu": {"guest": 2, "sockets": 2}, "memory": {"guest": "1Gi"},
                                           "nodeSelector": {"any": "thing"}}) == ["cpu.sockets"]
    assert S.unknown_keys("preference", {"devices": {"preferredDiskBus": "virtio", "diskBus": "x"},
                                         "cpu": {"preferredCPUTopology": "preferSockets"}}) == ["devices.diskBus"]
    assert S.unknown_keys("instancetype", {"gpus": [{"name": "g", "deviceName": "d", "color": 1}]}) == \
        ["gpus[0].color"]
    assert S.unknown_keys("instancetype", {"cpu": "two"}) == ["cpu (must be a mapping)"]
