"""Instance type and preference expansion (lab/simulator/instancetype.py) and the VM admission rules built on it
(lab/simulator/webhooks.py), against the committed common-instancetypes bundles. Expected values are KubeVirt
v1.8.4's (pkg/instancetype/apply, preference/apply, preference/requirements, vms-admitter.go)."""
import json
from pathlib import Path

import pytest

from simulator import instancetype as I
from simulator import webhooks as W
from simulator.util import set_latest_api_version

BUNDLES = Path(__file__).resolve().parents[3] / "lab" / "instancetypes"


def _bundle(name):
    data = json.loads((BUNDLES / f"common-cluster{name}-bundle.json").read_text())
    return {item["metadata"]["name"]: item for item in data["items"]}, data["source"]


INSTANCETYPES, IT_SOURCE = _bundle("instancetypes")
PREFERENCES, PREF_SOURCE = _bundle("preferences")


def spec_of(kind, name):
    return (INSTANCETYPES if kind == "it" else PREFERENCES)[name]["spec"]


def test_bundles_record_their_source_and_carry_virt_operator_metadata():
    for source in (IT_SOURCE, PREF_SOURCE):
        assert source["kubevirt"] == "v1.8.4" and source["common-instancetypes"] == "v1.6.0"
    small = INSTANCETYPES["u1.small"]["metadata"]
    assert small["labels"]["app.kubernetes.io/managed-by"] == "virt-operator"
    assert small["labels"]["app.kubernetes.io/component"] == "compute"
    assert small["annotations"]["kubevirt.io/install-strategy-version"] == "v1.8.4"
    assert len(INSTANCETYPES) == 65 and len(PREFERENCES) == 54


def expand(it_name, pref_name, vmi_spec=None, meta=None):
    vmi_spec = vmi_spec if vmi_spec is not None else {"domain": {"devices": {
        "disks": [{"name": "root"}], "interfaces": [{"name": "default", "masquerade": {}}]}},
        "networks": [{"name": "default", "pod": {}}]}
    meta = meta if meta is not None else {}
    it = spec_of("it", it_name) if it_name else None
    pref = spec_of("pref", pref_name) if pref_name else None
    return I.apply_to_vmi("spec", it, pref, vmi_spec, meta), vmi_spec, meta


def test_u1_small_with_centos_stream9():
    conflicts, spec, meta = expand("u1.small", "centos.stream9")
    assert conflicts == []
    dom = spec["domain"]
    assert dom["cpu"] == {"sockets": 1, "cores": 1, "threads": 1}
    assert dom["memory"] == {"guest": "2Gi"}
    assert dom["devices"]["disks"] == [{"name": "root", "disk": {"bus": "virtio"}, "dedicatedIOThread": True}]
    assert dom["devices"]["interfaces"] == [{"name": "default", "masquerade": {}, "model": "virtio"}]
    assert dom["devices"]["rng"] == {}
    assert meta["annotations"] == {"vm.kubevirt.io/os": "linux"}


@pytest.mark.parametrize("it,pref,topology", [
    ("u1.medium", None, {"sockets": 1, "cores": 1, "threads": 1}),          # 1 vCPU
    ("u1.large", None, {"sockets": 2, "cores": 1, "threads": 1}),           # default: sockets
    ("u1.large", "fedora", {"sockets": 2, "cores": 1, "threads": 1}),
    ("u1.2xlarge", "windows.11", {"sockets": 8, "cores": 1, "threads": 1}),
    ("u1.8xlarge", "centos.stream9.dpdk", {"sockets": 4, "cores": 4, "threads": 2}),   # spread SocketsCoresThreads
])
def test_guest_cpu_topology(it, pref, topology):
    conflicts, spec, _ = expand(it, pref)
    assert conflicts == []
    assert {k: spec["domain"]["cpu"][k] for k in topology} == topology


def test_dedicated_instancetype_and_overcommit():
    _, spec, meta = expand("cx1.medium", None)
    cpu = spec["domain"]["cpu"]
    assert cpu["dedicatedCpuPlacement"] is True and cpu["isolateEmulatorThread"] is True
    assert spec["domain"]["memory"]["hugepages"] == {"pageSize": "2Mi"}
    assert spec["domain"]["ioThreadsPolicy"] == "auto"
    assert cpu["numa"] == {"guestMappingPassthrough": {}} and cpu["maxSockets"] == 1
    _, _, meta = expand("n1.2xlarge", None)
    assert meta["annotations"]["cpu-quota.crio.io"] == "disable"        # the instance type's spec.annotations
    conflicts, _, _ = expand("n1.2xlarge", None, meta={"annotations": {"cpu-quota.crio.io": "enable"}})
    assert conflicts == ["annotations.cpu-quota.crio.io"]
    _, spec, _ = expand("o1.medium", None)
    guest = spec["domain"]["memory"]["guest"]
    assert guest == "4Gi" and spec["domain"]["resources"]["requests"]["memory"] == str(int(4 * 2 ** 30 * 0.5))


def test_windows_preference_defaults():
    _, spec, _ = expand("u1.large", "windows.11")
    dom = spec["domain"]
    assert dom["features"]["hyperv"]["spinlocks"] == {"spinlocks": 8191}
    assert dom["clock"]["timer"]["hpet"] == {"present": False}
    assert dom["firmware"]["bootloader"]["efi"] == {"secureBoot": True, "persistent": True}
    assert dom["devices"]["tpm"] == {"persistent": True}
    assert dom["devices"]["disks"][0]["disk"]["bus"] == "sata"
    assert dom["devices"]["interfaces"][0]["model"] == "e1000e"
    assert spec["terminationGracePeriodSeconds"] == 3600


def test_user_values_win_over_preferences():
    spec = {"domain": {"devices": {"disks": [{"name": "root", "disk": {"bus": "sata"}}]}}}
    I.apply_to_vmi("spec", None, spec_of("pref", "fedora"), spec, {})
    assert spec["domain"]["devices"]["disks"][0] == {"name": "root", "disk": {"bus": "sata"}}


def test_conflicts_are_reported_per_field_and_stop_preferences():
    spec = {"domain": {"cpu": {"sockets": 2}, "memory": {"guest": "1Gi"},
                       "resources": {"requests": {"cpu": "1"}}, "devices": {"disks": [{"name": "root"}]}}}
    conflicts = I.apply_to_vmi("spec.template.spec", spec_of("it", "u1.small"), spec_of("pref", "fedora"), spec, {})
    assert conflicts == ["spec.template.spec.domain.resources.requests.cpu", "spec.template.spec.domain.cpu.sockets",
                         "spec.template.spec.domain.memory.guest"]
    assert spec["domain"]["devices"]["disks"] == [{"name": "root"}]     # no preference applied
    assert I.conflict_causes(conflicts[-1:]) == [{
        "type": "FieldValueInvalid", "field": "spec.template.spec.domain.memory.guest",
        "message": "VM field(s) spec.template.spec.domain.memory.guest conflicts with selected instance type"}]


def test_matcher_kinds_and_annotations():
    assert I.annotation_for("instancetype", {"name": "x"}) == "kubevirt.io/cluster-instancetype-name"
    assert I.annotation_for("instancetype", {"name": "x", "kind": "VirtualMachineInstancetype"}) == \
        "kubevirt.io/instancetype-name"
    assert I.annotation_for("preference", {"name": "x", "kind": "virtualmachinepreferences"}) == \
        "kubevirt.io/preference-name"
    assert I.resource_for("preference", {"kind": "Other"}) is None


def test_revision_and_status_ref():
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
          "metadata": {"name": "vm1", "namespace": "ns", "uid": "vm-uid"}}
    obj = dict(INSTANCETYPES["u1.small"], metadata={**INSTANCETYPES["u1.small"]["metadata"], "uid": "it-uid",
                                                    "generation": 1})
    rev = I.revision_for(vm, obj)
    assert rev["metadata"]["name"] == "vm1-u1.small-v1beta1-it-uid-1"
    assert rev["metadata"]["labels"]["instancetype.kubevirt.io/object-kind"] == "VirtualMachineClusterInstancetype"
    assert "labels" not in rev["data"]["metadata"] and "annotations" not in rev["data"]["metadata"]
    ref, needs = I.status_ref({"name": "u1.small"}, None)
    assert ref == {"name": "u1.small"} and needs
    ref, needs = I.status_ref({"name": "u1.large"}, {"name": "u1.small", "controllerRevisionRef": {"name": "r"}})
    assert ref == {"name": "u1.large"} and needs


def vm_with(template_spec, **spec):
    return {"spec": {"runStrategy": "Always", "template": {"metadata": {}, "spec": template_spec}, **spec}}


def messages(causes):
    return [c["message"] for c in causes]


def test_vm_without_memory_is_valid_its_vmi_is_not():
    tspec = {"domain": {"devices": {}}}
    assert W.validate_vm(vm_with(tspec)) == []
    assert messages(W.validate_vmi_mandatory_fields("spec", tspec)) == [
        "no memory requested, at least one of 'spec.domain.memory.guest', 'spec.domain.memory.hugepages.pageSize' "
        "or 'spec.domain.resources.requests.memory' must be set"]


def test_vm_with_missing_instancetype_is_admitted():
    # the webhook passes None when the lookup failed (vms-admitter ignores that error)
    assert W.validate_vm(vm_with({"domain": {"devices": {}}}, instancetype={"name": "nope"})) == []


def test_preference_requirements():
    causes = W.validate_vm(vm_with({"domain": {"devices": {}}}, preference={"name": "centos.stream9"}),
                           None, spec_of("pref", "centos.stream9"))
    assert causes == [{"type": "FieldValueNotFound", "field": "spec.template.spec.domain.memory",
                       "message": "failure checking preference requirements: insufficient Memory resources of 0 "
                                  "provided by VirtualMachine, preference requires 1536Mi"}]
    causes = W.validate_vm(vm_with({"domain": {"devices": {}}}, instancetype={"name": "u1.small"},
                                   preference={"name": "windows.11"}),
                           spec_of("it", "u1.small"), spec_of("pref", "windows.11"))
    assert messages(causes) == ["failure checking preference requirements: insufficient CPU resources of 1 vCPU "
                                "provided by instance type, preference requires 2 vCPU"]


@pytest.mark.parametrize("rs,expected", [
    ("Always", []), ("Once", []), ("Sometimes", ["Invalid RunStrategy (Sometimes)"]),
    ("WaitAsReceiver", ["Invalid RunStrategy (WaitAsReceiver), DecentralizedLiveMigration feature gate is not "
                        "enabled in kubevirt resource"]),
])
def test_run_strategies(rs, expected):
    assert messages(W.validate_run_strategy({"runStrategy": rs})) == expected


def test_reserved_labels_only_for_kubevirt():
    meta = {"labels": {"kubevirt.io/created-by": "x"}}
    assert messages(W.validate_vmi_metadata("metadata", meta, kubevirt_sa=False)) == [
        "creation of the following reserved kubevirt.io/ labels on a VMI object is prohibited"]
    assert W.validate_vmi_metadata("metadata", meta, kubevirt_sa=True) == []


def test_latest_api_version_annotations_once():
    meta = {"annotations": {"keep": "me"}}
    assert set_latest_api_version(meta) is True
    assert meta["annotations"] == {"keep": "me", "kubevirt.io/latest-observed-api-version": "v1",
                                   "kubevirt.io/storage-observed-api-version": "v1"}
    assert set_latest_api_version(meta) is False
