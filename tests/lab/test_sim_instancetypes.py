"""Simulator: the common-instancetypes bundles `labctl up` deploys, and VMs that use them, as KubeVirt v1.8 does
(pkg/instancetype: expansion into the VMI, annotations, ControllerRevisions, a missing instance type)."""
import json

import pytest
from kubernetes.client.rest import ApiException

from sim_helpers import KV, cond, lab, wait_for  # noqa: F401

IT = ("instancetype.kubevirt.io", "v1beta1")
CENTOS = "quay.io/containerdisks/centos-stream:9"


def it_vm(name, instancetype="u1.small", preference="centos.stream9", run_strategy="Always", domain=None):
    """A VM as users write it today: an instance type, a preference, a containerDisk and nothing else."""
    spec = {"runStrategy": run_strategy,
            "template": {"spec": {"domain": domain or {"devices": {}},
                                  "volumes": [{"name": "root", "containerDisk": {"image": CENTOS}}]}}}
    if instancetype:
        spec["instancetype"] = {"name": instancetype}
    if preference:
        spec["preference"] = {"name": preference}
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name}, "spec": spec}


def test_common_instancetypes_are_deployed_as_virt_operator_does(lab):
    its = lab.custom.list_cluster_custom_object(*IT, "virtualmachineclusterinstancetypes")["items"]
    prefs = lab.custom.list_cluster_custom_object(*IT, "virtualmachineclusterpreferences")["items"]
    names = {i["metadata"]["name"] for i in its}
    assert len(its) == 65 and len(prefs) == 54
    assert {"u1.small", "u1.medium", "o1.large", "cx1.xlarge", "m1.large", "n1.medium", "rt1.small"} <= names
    assert {"fedora", "centos.stream9", "rhel.9", "ubuntu", "windows.11"} <= {p["metadata"]["name"] for p in prefs}
    small = next(i for i in its if i["metadata"]["name"] == "u1.small")
    assert small["spec"] == {"cpu": {"guest": 1}, "memory": {"guest": "2Gi"}}
    assert small["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "virt-operator"
    assert small["metadata"]["labels"]["instancetype.kubevirt.io/common-instancetypes-version"] == "v1.6.0"
    assert small["metadata"]["annotations"]["kubevirt.io/install-strategy-version"] == "v1.8.4"


def test_vm_with_instancetype_and_preference_starts_with_their_cpu_and_memory(lab):
    lab.create_vm(it_vm("it-small"))
    vmi = lab.wait_running("it-small")
    assert vmi["status"]["interfaces"][0]["ipAddress"]
    domain = vmi["spec"]["domain"]
    # maxSockets / maxGuest: the VMI defaults of the LiveUpdate rollout (4 x the instancetype's sockets and guest)
    assert domain["cpu"] == {"sockets": 1, "cores": 1, "threads": 1, "maxSockets": 4}
    assert domain["memory"] == {"guest": "2Gi", "maxGuest": "8Gi"}
    # centos.stream9's device preferences, filled where the template left them unset
    assert domain["devices"]["disks"] == [{"name": "root", "disk": {"bus": "virtio"}, "dedicatedIOThread": True}]
    assert domain["devices"]["interfaces"][0]["model"] == "virtio"
    assert domain["devices"]["rng"] == {}
    ann = vmi["metadata"]["annotations"]
    assert ann["kubevirt.io/cluster-instancetype-name"] == "u1.small"
    assert ann["kubevirt.io/cluster-preference-name"] == "centos.stream9"
    assert ann["vm.kubevirt.io/os"] == "linux"      # the preference's spec.annotations
    vm = lab.vm("it-small")
    refs = {k: vm["status"][k] for k in ("instancetypeRef", "preferenceRef")}
    for field, name in (("instancetypeRef", "u1.small"), ("preferenceRef", "centos.stream9")):
        ref = refs[field]
        assert ref["name"] == name and "kind" not in ref
        cr_name = ref["controllerRevisionRef"]["name"]
        assert cr_name.startswith(f"it-small-{name}-v1beta1-") and cr_name.endswith("-1")
        status, cr = lab.call("GET", f"/apis/apps/v1/namespaces/{lab.ns}/controllerrevisions/{cr_name}")
        assert status == 200
        assert cr["metadata"]["labels"]["instancetype.kubevirt.io/object-name"] == name
        assert cr["metadata"]["ownerReferences"][0]["name"] == "it-small"
        assert "labels" not in cr["data"]["metadata"]


def test_vm_naming_a_missing_instancetype_is_admitted_then_fails_to_find_it(lab):
    # vms-admitter ignores a failed lookup; the VM controller's instancetype Sync reports it
    lab.create_vm(it_vm("it-missing", instancetype="u1.nope", preference=None))
    vm = wait_for(lambda: (lambda v: v if cond(v, "Failure") else None)(lab.vm("it-missing")),
                  what="Failure condition")
    failure = cond(vm, "Failure")
    assert failure["reason"] == "FailedFindInstancetype"
    assert failure["message"] == 'virtualmachineclusterinstancetypes.instancetype.kubevirt.io "u1.nope" not found'
    assert lab.vmi_or_none("it-missing") is None
    assert not vm["status"].get("created")


def test_preference_requirements_are_checked_at_admission(lab):
    with pytest.raises(ApiException) as info:
        lab.create_vm(it_vm("it-req", instancetype="u1.nope"))
    message = json.loads(info.value.body)["message"]
    assert info.value.status == 422
    assert ("failure checking preference requirements: insufficient Memory resources of 0 provided by "
            "VirtualMachine, preference requires 1536Mi") in message


def test_instancetype_conflicts_name_every_field(lab):
    domain = {"cpu": {"sockets": 2}, "memory": {"guest": "1Gi"}, "devices": {}}
    with pytest.raises(ApiException) as info:
        lab.create_vm(it_vm("it-conflict", domain=domain))
    message = json.loads(info.value.body)["message"]
    assert ("VM field(s) spec.template.spec.domain.cpu.sockets conflicts with selected instance type, "
            "VM field(s) spec.template.spec.domain.memory.guest conflicts with selected instance type") in message
