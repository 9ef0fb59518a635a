"""Issue 15: a VM and a VMI with fields from every top-level part of KubeVirt v1.8.4's schema are stored and
read back unchanged (the lab's CRDs are upstream's, so nothing valid is pruned or refused by the schema).

Left out, each for a reason KubeVirt gives: `running` (mutually exclusive with runStrategy; a second VM has
it), `utilityVolumes` (UtilityVolumes feature gate, storagehotplug.go), `resourceClaims` (only meaningful with
the DRA feature gates), `domain.launchSecurity` (WorkloadEncryptionSEV gate) and `domain.rebootPolicy`
(RebootPolicy gate): a default KubeVirt refuses them in its webhook.
"""
import copy
from pathlib import Path

import pytest
import yaml

from sim_helpers import KV, Lab, lab  # noqa: F401

CRDS = Path(__file__).resolve().parents[2] / "lab" / "crds"
NOT_COVERED_VMI = {"utilityVolumes", "resourceClaims"}
NOT_COVERED_DOMAIN = {"launchSecurity", "rebootPolicy"}
NOT_COVERED_VM = {"running"}


def _spec_fields(crd_file, *path):
    schema = yaml.safe_load((CRDS / crd_file).read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for key in path:
        schema = schema["properties"][key]
    return set(schema["properties"])


def vmi_spec(paused=False):
    """Every top-level field but one of the pair KubeVirt refuses together (validateStartStrategy:
    startStrategy Paused and a livenessProbe): the VMI has the probe, the VM's template starts paused."""
    spec = {
        "accessCredentials": [{"sshPublicKey": {"source": {"secret": {"secretName": "my-keys"}},
                                                "propagationMethod": {"noCloud": {}}}}],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                               "labelSelector": {"matchLabels": {"app": "web"}}}}]}},
        "architecture": "amd64",
        "dnsConfig": {"nameservers": ["10.0.0.10"], "searches": ["example.org"],
                      "options": [{"name": "ndots", "value": "2"}]},
        "dnsPolicy": "None",
        "domain": {
            "chassis": {"manufacturer": "virtops", "serial": "1234", "asset": "lab"},
            "clock": {"utc": {"offsetSeconds": 0}, "timer": {"rtc": {"tickPolicy": "catchup"}}},
            "cpu": {"cores": 1, "sockets": 1, "threads": 1, "model": "host-model"},
            "devices": {
                "disks": [{"name": "root", "disk": {"bus": "virtio"}, "bootOrder": 1},
                          {"name": "cloudinit", "disk": {"bus": "virtio"}}],
                "interfaces": [{"name": "default", "masquerade": {}, "model": "virtio",
                                "ports": [{"name": "ssh", "port": 22, "protocol": "TCP"}]}],
                "rng": {}, "autoattachSerialConsole": True, "logSerialConsole": False,
                "watchdog": {"name": "wd", "i6300esb": {"action": "poweroff"}},
            },
            "features": {"acpi": {}, "smm": {"enabled": True}},
            "firmware": {"uuid": "5d307ca9-b3ef-428c-8861-06e72d69f223", "serial": "lab-serial",
                         "bootloader": {"efi": {"secureBoot": True}}},
            "ioThreads": {"supplementalPoolThreadCount": 2},
            "ioThreadsPolicy": "supplementalPool",
            "machine": {"type": "q35"},
            "memory": {"guest": "256Mi"},
            "resources": {"requests": {"memory": "256Mi", "cpu": "100m"}, "overcommitGuestOverhead": False},
        },
        "evictionStrategy": "None",
        "hostname": "roundtrip",
        "livenessProbe": {"tcpSocket": {"port": 22}, "initialDelaySeconds": 120, "periodSeconds": 20},
        "networks": [{"name": "default", "pod": {}}],
        # no node has it: the VMI waits for a node and nothing rewrites what was stored
        "nodeSelector": {"virtops.io/round-trip": "nowhere"},
        "priorityClassName": "",
        "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "failureThreshold": 3},
        "schedulerName": "default-scheduler",
        "startStrategy": "Paused",
        "subdomain": "lab",
        "terminationGracePeriodSeconds": 0,
        "tolerations": [{"key": "virtops.io/dedicated", "operator": "Equal", "value": "vms", "effect": "NoSchedule"}],
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                       "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": {"app": "web"}}}],
        "volumes": [{"name": "root", "containerDisk": {"image": "quay.io/containerdisks/fedora:41"}},
                    {"name": "cloudinit", "cloudInitNoCloud": {"userData": "#cloud-config\n"}}],
    }
    spec.pop("livenessProbe" if paused else "startStrategy")
    return spec


def vm_manifest(name):
    template_spec = vmi_spec(paused=True)
    del template_spec["domain"]["cpu"], template_spec["domain"]["memory"]  # the instancetype's
    del template_spec["domain"]["resources"]
    return {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name},
        "spec": {
            "runStrategy": "Halted",
            "instancetype": {"kind": "VirtualMachineClusterInstancetype", "name": "roundtrip-missing"},
            "preference": {"kind": "VirtualMachineClusterPreference", "name": "roundtrip-missing"},
            "updateVolumesStrategy": "Replacement",
            "dataVolumeTemplates": [{
                "metadata": {"name": f"{name}-data", "labels": {"app": "web"}},
                "spec": {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1Gi"}},
                                                             "accessModes": ["ReadWriteOnce"]}}}],
            "template": {"metadata": {"labels": {"app": "web"}, "annotations": {"virtops.io/note": "kept"}},
                         "spec": {**template_spec,
                                  "volumes": template_spec["volumes"] + [
                                      {"name": "data", "dataVolume": {"name": f"{name}-data"}}]}},
        },
    }


def _contains(stored, sent, path="spec"):
    """Every field sent is stored with the same value (defaults may be added, nothing may be lost)."""
    if isinstance(sent, dict):
        assert isinstance(stored, dict), path
        for key, value in sent.items():
            assert key in stored, f"{path}.{key} was dropped"
            _contains(stored[key], value, f"{path}.{key}")
    elif isinstance(sent, list):
        assert isinstance(stored, list) and len(stored) == len(sent), f"{path} changed: {stored!r}"
        for i, (a, b) in enumerate(zip(stored, sent)):
            _contains(a, b, f"{path}[{i}]")
    else:
        assert stored == sent, f"{path}: stored {stored!r}, sent {sent!r}"


def test_the_manifests_cover_every_top_level_part_of_the_schema():
    vmi_fields = _spec_fields("kubevirt.io_virtualmachineinstances.yaml", "spec")
    assert set(vmi_spec()) | set(vmi_spec(paused=True)) == vmi_fields - NOT_COVERED_VMI
    domain_fields = _spec_fields("kubevirt.io_virtualmachineinstances.yaml", "spec", "domain")
    assert set(vmi_spec()["domain"]) == domain_fields - NOT_COVERED_DOMAIN
    assert set(vm_manifest("x")["spec"]) == _spec_fields("kubevirt.io_virtualmachines.yaml", "spec") - NOT_COVERED_VM


def test_vm_is_stored_and_read_back_unchanged(lab):  # noqa: F811
    sent = vm_manifest("roundtrip")
    lab.create_vm(copy.deepcopy(sent))
    stored = lab.vm("roundtrip")
    _contains(stored["spec"], sent["spec"])
    assert stored["metadata"]["name"] == "roundtrip"


def test_vm_with_the_deprecated_running_field_is_stored_unchanged(lab):  # noqa: F811
    sent = vm_manifest("roundtrip-running")
    del sent["spec"]["runStrategy"]
    sent["spec"]["running"] = False
    lab.create_vm(copy.deepcopy(sent))
    _contains(lab.vm("roundtrip-running")["spec"], sent["spec"])


def test_vmi_is_stored_and_read_back_unchanged(lab):  # noqa: F811
    sent = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": "roundtrip", "labels": {"app": "web"}}, "spec": vmi_spec()}
    lab.create(*KV, "virtualmachineinstances", copy.deepcopy(sent))
    _contains(lab.vmi("roundtrip")["spec"], sent["spec"])


@pytest.mark.parametrize("version", ["v1", "v1alpha3"])
def test_every_served_version_reads_the_vm(lab, version):  # noqa: F811
    lab.create_vm(vm_manifest("roundtrip-versions"))
    stored = lab.custom.get_namespaced_custom_object("kubevirt.io", version, lab.ns, "virtualmachines",
                                                     "roundtrip-versions")
    assert stored["apiVersion"] == f"kubevirt.io/{version}"
    _contains(stored["spec"], vm_manifest("roundtrip-versions")["spec"])
