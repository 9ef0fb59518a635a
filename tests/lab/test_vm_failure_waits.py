"""A VM KubeVirt cannot start (issue 14, item 3): the wait and the summary report the VM's own
Failure condition, never "does not exist". The collection refuses a missing instancetype before it
writes, so the VM is made the way another tool would (the raw API; KubeVirt admits it and then sets
Failure FailedFindInstancetype), and the collection then waits on it."""
import time
import uuid

import pytest

from faulthelp import ansible_env, run_playbook

MISSING = "u1.does-not-exist"


@pytest.fixture
def failing_vm(core, custom):
    ns = "vmfail-%s" % uuid.uuid4().hex[:8]
    core.create_namespace({"metadata": {"name": ns, "labels": {"virtops.io/test": "true"}}})
    try:
        custom.create_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachines", {
            "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "it3"},
            "spec": {"runStrategy": "Always", "instancetype": {"name": MISSING},
                     "template": {"spec": {"domain": {"devices": {"disks": [{"name": "root", "disk": {}}]}},
                                           "volumes": [{"name": "root", "containerDisk": {
                                               "image": "quay.io/containerdisks/fedora:41"}}]}}}})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            vm = custom.get_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachines", "it3")
            if any(c.get("type") == "Failure" for c in (vm.get("status") or {}).get("conditions") or []):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the lab set no Failure condition on a VM naming a missing instancetype: %s" % vm)
        yield ns
    finally:
        core.delete_namespace(ns)


def test_a_wait_on_a_vm_kubevirt_cannot_start_names_its_failure(failing_vm, kubeconfig, tmp_path):
    ns = failing_vm
    tasks = [
        {"name": "vm", "virtops.kubevirt.vm": {
            "name": "it3", "namespace": ns, "instancetype": MISSING, "wait": True, "wait_timeout": 6,
            "disks": [{"name": "root", "image": "quay.io/containerdisks/fedora:41"}]}, "ignore_errors": True},
        {"name": "info", "virtops.kubevirt.vm_info": {"name": "it3", "namespace": ns}},
    ]
    result = run_playbook(tmp_path, [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                          env=ansible_env(KUBECONFIG=kubeconfig))
    vm = result.task("vm")
    assert vm.get("failed") or vm.get("_status") == "failed", vm
    # Before: "last seen: it3 does not exist", reason Stopped, conditions_not_ok [].
    assert "it3 does not exist" not in vm["msg"]
    assert "FailedFindInstancetype" in vm["msg"] and MISSING in vm["msg"], vm["msg"]
    assert vm["printable_status"] == "Stopped"
    assert vm["summary"]["reason"].startswith("FailedFindInstancetype: ")
    assert [c["type"] for c in vm["summary"]["conditions_not_ok"] if c["type"] == "Failure"] == ["Failure"]
    info = result.task("info")["summaries"][0]
    assert info["reason"].startswith("FailedFindInstancetype: ") and MISSING in info["reason"]
