"""Simulator: validating webhooks reject bad objects with KubeVirt's and CDI's messages."""
import copy
import json

import pytest
from kubernetes.client.rest import ApiException

from sim_helpers import CDI, KV, cond, dv_manifest, lab, vm_manifest, wait_for  # noqa: F401


def rejected(fn):
    """The ApiException of a refused write, with .message = the Status message."""
    with pytest.raises(ApiException) as info:
        fn()
    exc = info.value
    exc.message = json.loads(exc.body)["message"]
    return exc


def base_vm(name="bad"):
    return vm_manifest(name)


def tspec(vm):
    return vm["spec"]["template"]["spec"]


def no_run_strategy(vm):
    vm["spec"].pop("runStrategy")


def both_running_and_strategy(vm):
    vm["spec"]["running"] = True


def masquerade_on_multus(vm):
    tspec(vm)["domain"]["devices"]["interfaces"] = [{"name": "net1", "masquerade": {}}]
    tspec(vm)["networks"] = [{"name": "net1", "multus": {"networkName": "br1"}}]


def interface_without_network(vm):
    tspec(vm)["domain"]["devices"]["interfaces"] = [{"name": "default", "masquerade": {}},
                                                    {"name": "nic1", "bridge": {}}]
    tspec(vm)["networks"] = [{"name": "default", "pod": {}}]


def network_without_interface(vm):
    tspec(vm)["domain"]["devices"]["interfaces"] = [{"name": "default", "masquerade": {}}]
    tspec(vm)["networks"] = [{"name": "default", "pod": {}}, {"name": "net2", "multus": {"networkName": "br1"}}]


def disk_without_volume(vm):
    tspec(vm)["domain"]["devices"]["disks"].append({"name": "data", "disk": {"bus": "virtio"}})


def big_user_data(vm):
    tspec(vm)["domain"]["devices"]["disks"].append({"name": "ci", "disk": {"bus": "virtio"}})
    tspec(vm)["volumes"].append({"name": "ci", "cloudInitNoCloud": {"userData": "#cloud-config\n" + "x" * 2100}})


def reserved_label(vm):
    vm["spec"]["template"]["metadata"]["labels"]["kubevirt.io/nodeName"] = "lab-worker-0"


def sidecar_annotation(vm):
    vm["spec"]["template"]["metadata"]["annotations"]["hooks.kubevirt.io/hookSidecars"] = '[{"image": "x"}]'


def host_disk(vm):
    tspec(vm)["domain"]["devices"]["disks"].append({"name": "host", "disk": {"bus": "virtio"}})
    tspec(vm)["volumes"].append({"name": "host", "hostDisk": {"path": "/data/disk.img", "type": "Disk"}})


def dra_gpu(vm):
    tspec(vm)["domain"]["devices"]["gpus"] = [{"name": "gpu", "claimName": "claim", "requestName": "gpu"}]
    tspec(vm)["resourceClaims"] = [{"name": "claim", "resourceClaimTemplateName": "gpu-tmpl"}]


def unknown_disk_bus(vm):
    tspec(vm)["domain"]["devices"]["disks"][0]["disk"] = {"bus": "floppy"}


def unknown_eviction_strategy(vm):
    tspec(vm)["evictionStrategy"] = "Teleport"


def unknown_start_strategy(vm):
    tspec(vm)["startStrategy"] = "Later"


def matcher_without_name(vm):
    tspec(vm)["domain"].pop("memory")
    vm["spec"]["instancetype"] = {"kind": "VirtualMachineClusterInstancetype"}


RULES = [
    (no_run_strategy, "RunStrategy must be specified"),
    (both_running_and_strategy, "Running and RunStrategy are mutually exclusive. Note that Running is deprecated, "
                                "please use RunStrategy instead"),
    (masquerade_on_multus, "Masquerade interface only implemented with pod network"),
    (interface_without_network, "spec.template.spec.domain.devices.interfaces[1].name 'nic1' not found."),
    (network_without_interface, "spec.template.spec.networks[1].name 'net2' not found."),
    (disk_without_volume, "spec.template.spec.domain.devices.disks[1].Name 'data' not found."),
    (reserved_label, "creation of the following reserved kubevirt.io/ labels on a VMI object is prohibited"),
    (sidecar_annotation, "sidecar feature gate is not enabled in kubevirt-config, invalid entry "
                         "spec.template.metadata.annotations.hooks.kubevirt.io/hookSidecars"),
    (host_disk, "HostDisk feature gate is not enabled"),
    (unknown_disk_bus, "spec.template.spec.domain.devices.disks[0] is set with an unrecognized bus floppy, must be one "
                       "of: [virtio scsi sata usb]"),
    (unknown_eviction_strategy, "spec.template.spec.evictionStrategy is set with an unrecognized option: Teleport"),
    (unknown_start_strategy, "spec.template.spec.startStrategy is set with an unrecognized option: Later"),
    (dra_gpu, "vmi.spec.domain.devices.gpus contains DRA enabled GPUs but feature gate is not enabled"),
    (matcher_without_name, "Either Name or InferFromVolume should be provided within the InstancetypeMatcher"),
    (big_user_data, "spec.template.spec.volumes[1].cloudInitNoCloud userdata exceeds 2048 byte limit. "
                    "Should use UserDataSecretRef for larger data."),
]


@pytest.mark.parametrize("mutate,message", RULES, ids=[r[0].__name__ for r in RULES])
def test_vm_rule_rejects_with_kubevirts_message(lab, mutate, message):
    vm = base_vm()
    mutate(vm)
    exc = rejected(lambda: lab.create_vm(vm))
    assert exc.status == 422
    assert 'admission webhook "virtualmachine-validator.kubevirt.io" denied the request: ' + message in exc.message


def test_invalid_run_strategy_message(lab):
    # the CRD's enum answers first on a real cluster too; the webhook's message is KubeVirt's
    vm = base_vm()
    vm["spec"]["runStrategy"] = "Sometimes"
    exc = rejected(lambda: lab.create_vm(vm))
    assert exc.status == 422 and "Sometimes" in exc.message


def test_stopped_vm_without_memory_is_accepted_and_starting_it_fails(lab):
    # ValidateVirtualMachineInstanceMandatoryFields is for VMI reviews only: the VM is fine, its VMI is not
    vm = base_vm("no-memory")
    vm["spec"]["runStrategy"] = "Halted"
    tspec(vm)["domain"].pop("memory")
    lab.create_vm(vm)
    lab.patch_vm("no-memory", {"spec": {"runStrategy": "Always"}})
    refusal = ('admission webhook "virtualmachineinstances-create-validator.kubevirt.io" denied the request: '
               "no memory requested, at least one of 'spec.domain.memory.guest', "
               "'spec.domain.memory.hugepages.pageSize' or 'spec.domain.resources.requests.memory' must be set")
    lab.wait_event("no-memory", "FailedCreate", "Error creating virtual machine instance: " + refusal)
    failure = wait_for(lambda: cond(lab.vm("no-memory"), "Failure"), what="Failure condition")
    assert failure["reason"] == "FailedCreate"
    assert failure["message"] == "Failure while starting VMI: " + refusal
    assert lab.vmi_or_none("no-memory") is None


def test_vmi_create_rules(lab):
    vmi = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "metadata": {"name": "vmi-bad"},
           "spec": copy.deepcopy(tspec(base_vm()))}
    vmi["spec"]["domain"].pop("memory")
    exc = rejected(lambda: lab.create(*KV, "virtualmachineinstances", vmi))
    assert exc.status == 422
    assert ('admission webhook "virtualmachineinstances-create-validator.kubevirt.io" denied the request: '
            "no memory requested, at least one of 'spec.domain.memory.guest'") in exc.message


def test_vmi_spec_is_immutable(lab):
    vmi = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "metadata": {"name": "vmi-imm"},
           "spec": copy.deepcopy(tspec(base_vm()))}
    lab.create(*KV, "virtualmachineinstances", vmi)
    lab.wait_running("vmi-imm")
    exc = rejected(lambda: lab.custom.patch_namespaced_custom_object(
        "kubevirt.io", "v1", lab.ns, "virtualmachineinstances", "vmi-imm",
        {"spec": {"domain": {"memory": {"guest": "1Gi"}}}}))
    assert exc.status == 422
    assert ('admission webhook "virtualmachineinstances-update-validator.kubevirt.io" denied the request: '
            "update of VMI object is restricted") in exc.message
    # metadata changes are fine
    lab.custom.patch_namespaced_custom_object("kubevirt.io", "v1", lab.ns, "virtualmachineinstances", "vmi-imm",
                                              {"metadata": {"labels": {"touched": "yes"}}})


def test_datavolume_spec_is_immutable(lab):
    lab.create_dv(dv_manifest("dv-imm", {"blank": {}}))
    exc = rejected(lambda: lab.custom.patch_namespaced_custom_object(
        *CDI, lab.ns, "datavolumes", "dv-imm", {"spec": {"source": {"http": {"url": "http://example.com/x.img"}}}}))
    assert exc.status == 422
    assert 'admission webhook "datavolume-validate.cdi.kubevirt.io" denied the request:' in exc.message
    assert "Cannot update DataVolume Spec" in exc.message
    lab.custom.patch_namespaced_custom_object(*CDI, lab.ns, "datavolumes", "dv-imm",
                                              {"metadata": {"labels": {"touched": "yes"}}})


def test_instancetype_conflicts(lab):
    vm = base_vm("vm-it")
    vm["spec"]["instancetype"] = {"name": "u1.small"}
    exc = rejected(lambda: lab.create_vm(vm))
    assert exc.status == 422
    assert "VM field(s) spec.template.spec.domain.memory.guest conflicts with selected instance type" in exc.message


def test_valid_vm_is_admitted(lab):
    vm = base_vm("good")
    masquerade = {"name": "default", "masquerade": {}}
    tspec(vm)["domain"]["devices"]["interfaces"] = [masquerade]
    tspec(vm)["networks"] = [{"name": "default", "pod": {}}]
    assert lab.create_vm(vm)["metadata"]["name"] == "good"


# -- virt-api's VM mutator: inferFromVolume ----------------------------------------------------------
def test_instancetype_and_preference_inferred_from_a_pvc_volume(lab):
    lab.core.create_namespaced_persistent_volume_claim(lab.ns, {
        "metadata": {"name": "golden", "labels": {
            "instancetype.kubevirt.io/default-instancetype": "u1.small",
            "instancetype.kubevirt.io/default-preference": "fedora",
            "instancetype.kubevirt.io/default-preference-kind": "VirtualMachineClusterPreference"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    vm = vm_manifest("vm-infer", run_strategy="Halted",
                     volumes=[{"name": "root", "persistentVolumeClaim": {"claimName": "golden"}}])
    del tspec(vm)["domain"]["memory"]  # the instancetype gives it
    vm["spec"]["instancetype"] = {"inferFromVolume": "root"}
    vm["spec"]["preference"] = {"inferFromVolume": "root"}
    created = lab.create_vm(vm)
    assert created["spec"]["instancetype"] == {"name": "u1.small"}
    assert created["spec"]["preference"] == {"name": "fedora", "kind": "VirtualMachineClusterPreference"}


def test_inference_that_fails_rejects_the_vm_unless_ignored(lab):
    tpl = [{"metadata": {"name": "vm-noinfer-root"}, "spec": {
        "source": {"http": {"url": "https://images.example.com/disk.qcow2"}},
        "storage": {"resources": {"requests": {"storage": "1Gi"}}}}}]
    vm = vm_manifest("vm-noinfer", volumes=[{"name": "root", "dataVolume": {"name": "vm-noinfer-root"}}])
    vm["spec"]["dataVolumeTemplates"] = tpl
    vm["spec"]["instancetype"] = {"inferFromVolume": "root"}
    exc = rejected(lambda: lab.create_vm(copy.deepcopy(vm)))
    assert "unable to infer defaults from DataVolumeSpec as DataVolumeSource is not supported" in exc.message
    vm["spec"]["instancetype"]["inferFromVolumeFailurePolicy"] = "Ignore"
    created = lab.create_vm(vm)
    assert "instancetype" not in created["spec"]
    missing = vm_manifest("vm-novol")
    missing["spec"]["instancetype"] = {"inferFromVolume": "nope"}
    assert "unable to find volume nope to infer defaults" in rejected(lambda: lab.create_vm(missing)).message
