"""The KubeVirt CR's feature gates off: the simulator's admitters refuse what the gates guard, and the modules say
so in one sentence before anything is made.

Turning a gate off changes the whole cluster, so these tests run alone (tests/run-all.sh runs this file with the
simulator's restart test, before the suites that run beside each other): run beside the integration targets they
would make those targets' exports, snapshots and clones fail.
"""
import json

import kubernetes
import pytest

from faulthelp import ansible_env, run_playbook
from sim_helpers import lab, wait_for  # noqa: F401

GATED = ("Snapshot", "VMExport")
VM_REF = {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "any"}
ADMITTED = [
    (("export.kubevirt.io", "v1beta1", "virtualmachineexports"),
     {"kind": "VirtualMachineExport", "spec": {"source": VM_REF}}, "vm export feature gate not enabled"),
    (("clone.kubevirt.io", "v1beta1", "virtualmachineclones"),
     {"kind": "VirtualMachineClone", "spec": {"source": VM_REF, "target": dict(VM_REF, name="b")}},
     "snapshot feature gate is not enabled"),
    (("snapshot.kubevirt.io", "v1beta1", "virtualmachinesnapshots"),
     {"kind": "VirtualMachineSnapshot", "spec": {"source": VM_REF}}, "snapshot feature gate not enabled"),
    (("snapshot.kubevirt.io", "v1beta1", "virtualmachinerestores"),
     {"kind": "VirtualMachineRestore", "spec": {"target": VM_REF, "virtualMachineSnapshotName": "s"}},
     "Snapshot/Restore feature gate not enabled"),
]


def set_gates(custom, value):
    custom.patch_namespaced_custom_object("kubevirt.io", "v1", "kubevirt", "kubevirts", "kubevirt", {
        "spec": {"configuration": {"developerConfiguration": {"featureGates": value}}}})


@pytest.fixture(scope="module")
def gates_off(custom):
    """Snapshot and VMExport off in the KubeVirt CR for this file's tests, on again afterwards."""
    cr = custom.get_namespaced_custom_object("kubevirt.io", "v1", "kubevirt", "kubevirts", "kubevirt")
    gates = cr["spec"]["configuration"]["developerConfiguration"]["featureGates"]
    assert set(GATED) <= set(gates)
    set_gates(custom, [g for g in gates if g not in GATED])
    try:
        yield
    finally:
        set_gates(custom, gates)


def test_the_admitters_refuse_what_the_gates_guard(gates_off, lab):
    """KubeVirt's admitters read the gates from the KubeVirt CR: VMExport for exports, Snapshot for the rest."""
    for (group, version, plural), body, message in ADMITTED:
        obj = dict(body, apiVersion=f"{group}/{version}", metadata={"name": "nogate"})

        def refused():
            try:
                lab.create(group, version, plural, obj)
            except kubernetes.client.exceptions.ApiException as exc:
                return message in json.loads(exc.body)["message"]
            lab.custom.delete_namespaced_custom_object(group, version, lab.ns, plural, "nogate")
            return False     # the webhook has not seen the CR change yet
        wait_for(refused, 10, what=f"{plural} refused without the gate")


def test_the_modules_name_the_gate_and_make_nothing(gates_off, lab, kubeconfig, tmp_path):
    """vm_export (check mode and for real), vm_clone and vm_snapshot with their gate off: one sentence each,
    naming the gate; nothing is made, and state: absent of what was refused changes nothing."""
    defaults = {"group/virtops.kubevirt.kubevirt": {"kubeconfig": kubeconfig, "namespace": lab.ns}}
    refused = {"ignore_errors": True}
    play = [{"hosts": "localhost", "gather_facts": False, "module_defaults": defaults, "tasks": [
        {"name": "vm", "virtops.kubevirt.vm": {"name": "gated", "memory": "256Mi", "run_strategy": "Halted",
                                               "disks": [{"name": "data", "data_volume_template": {
                                                   "size": "16Mi", "blank": True}}], "wait": False}},
        dict(refused, name="export check mode", check_mode=True,
             **{"virtops.kubevirt.vm_export": {"name": "exp-nogate", "vm": "gated"}}),
        dict(refused, name="export", **{"virtops.kubevirt.vm_export": {"name": "exp-nogate", "vm": "gated"}}),
        {"name": "export absent", "check_mode": True,
         "virtops.kubevirt.vm_export": {"name": "exp-nogate", "state": "absent"}},
        dict(refused, name="clone", **{"virtops.kubevirt.vm_clone": {"name": "cl-nogate", "vm": "gated",
                                                                     "target": "gated-copy", "wait_timeout": 60}}),
        dict(refused, name="snapshot", **{"virtops.kubevirt.vm_snapshot": {"name": "snap-nogate", "vm": "gated",
                                                                           "wait_timeout": 60}}),
    ]}]
    result = run_playbook(tmp_path, play, env=ansible_env())
    assert result.rc == 0, result.explain()
    assert "vm export feature gate not enabled" in result.task("export check mode")["msg"]
    assert result.task("export")["msg"].startswith(
        "Creating VirtualMachineExport %s/exp-nogate failed: KubeVirt's VMExport feature gate is off" % lab.ns)
    assert not result.task("export absent")["changed"]
    assert result.task("clone")["msg"].startswith(
        "Creating VirtualMachineClone %s/cl-nogate failed: KubeVirt's Snapshot feature gate is off" % lab.ns)
    assert "snapshot feature gate not enabled" in result.task("snapshot")["msg"]
    assert {name for name, _msg in result.failures()} == {"export check mode", "export", "clone", "snapshot"}
    for name in ("export", "clone", "snapshot"):
        msg = result.task(name)["msg"]
        assert "Traceback" not in msg and msg.count(". ") == 0, msg
    for group, version, plural in [a[0] for a in ADMITTED[:3]]:
        assert lab.custom.list_namespaced_custom_object(group, version, lab.ns, plural)["items"] == [], plural
