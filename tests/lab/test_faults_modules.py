"""The modules through the lab's fault proxy (docs/reliability.md): with a high fault rate
(500, 503, 429 with Retry-After, resets before and after writes, cut watches, latency), every task
still succeeds, and what it creates exists exactly once.

Each test starts its own proxy (tests/lab/faulthelp.py) in front of the lab's kube-apiserver and
runs ansible-playbook with a kubeconfig through it; the counts are read with the direct admin
kubeconfig.
"""
import os

import pytest

from faulthelp import FaultProxy, ansible_env, run_playbook

RATE = 0.3
SEED = int(os.environ.get("VIRTOPS_FAULT_SEED", "8"))
IMAGE = "quay.io/containerdisks/fedora:41"


@pytest.fixture
def proxy(lab_state, lab_info):
    started = []

    def start(rate=RATE, seed=SEED, faults=None):
        p = FaultProxy(lab_state, lab_info["apiserver"]["url"], rate, seed, faults=faults)
        started.append(p)
        return p

    yield start
    for p in started:
        stderr = p.stop()
        assert "Traceback" not in stderr, stderr


def _counts(core, custom, namespace, vm="f1"):
    """What exists for VM ``vm`` in the namespace, read directly (not through the proxy)."""
    def items(group, version, plural):
        return custom.list_namespaced_custom_object(group, version, namespace, plural)["items"]

    pods = [p for p in core.list_namespaced_pod(namespace, label_selector="kubevirt.io=virt-launcher").items
            if (p.metadata.labels or {}).get("vm.kubevirt.io/name") == vm and not p.metadata.deletion_timestamp]
    return {
        "vms": len(items("kubevirt.io", "v1", "virtualmachines")),
        "vmis": len([v for v in items("kubevirt.io", "v1", "virtualmachineinstances")
                     if not v["metadata"].get("deletionTimestamp")]),
        "launcher_pods": len(pods),
        "datavolumes": len(items("cdi.kubevirt.io", "v1beta1", "datavolumes")),
        "pvcs": len(core.list_namespaced_persistent_volume_claim(namespace).items),
        "migrations": len(items("kubevirt.io", "v1", "virtualmachineinstancemigrations")),
    }


def _defaults(kubeconfig, namespace):
    return {"group/virtops.kubevirt.kubevirt": {"kubeconfig": kubeconfig, "namespace": namespace}}


@pytest.mark.slow
def test_modules_succeed_and_create_nothing_twice_under_faults(proxy, namespace, core, custom, tmp_path):
    p = proxy()
    kubeconfig = p.kubeconfig(tmp_path / "kubeconfig-faults")
    vm = {"name": "f1", "memory": "256Mi", "labels": {"app": "faults"},
          "disks": [{"name": "root", "image": IMAGE}, {"name": "data", "data_volume": "data1"}]}
    create = [{
        "hosts": "localhost", "gather_facts": False, "module_defaults": _defaults(kubeconfig, namespace),
        "tasks": [
            {"name": "volume", "virtops.kubevirt.volume": {"name": "data1", "size": "64Mi", "wait": True,
                                                           "wait_timeout": 120}},
            {"name": "vm", "virtops.kubevirt.vm": dict(vm, wait=True, wait_timeout=120)},
            {"name": "vm_info", "virtops.kubevirt.vm_info": {"name": "f1"}},
            {"name": "stop", "virtops.kubevirt.vm_power": {"name": "f1", "state": "stopped", "wait_timeout": 120}},
            {"name": "start", "virtops.kubevirt.vm_power": {"name": "f1", "state": "started", "wait_timeout": 120}},
            {"name": "restart", "virtops.kubevirt.vm_power": {"name": "f1", "state": "restarted",
                                                              "wait_timeout": 120}},
            {"name": "vm again", "virtops.kubevirt.vm": dict(vm, wait=True, wait_timeout=120)},
            {"name": "volume again", "virtops.kubevirt.volume": {"name": "data1"}},
        ]}]
    result = run_playbook(tmp_path, create, name="create.yml")
    assert result.rc == 0, result.explain()
    assert result.task("vm")["changed"] and result.task("volume")["changed"]
    assert result.task("vm_info")["resources"][0]["metadata"]["name"] == "f1"
    for task in ("stop", "start", "restart"):
        assert result.task(task)["changed"], task
    assert result.task("restart")["ready"] is True
    assert not result.task("vm again")["changed"] and not result.task("volume again")["changed"]
    assert _counts(core, custom, namespace) == {"vms": 1, "vmis": 1, "launcher_pods": 1, "datavolumes": 1,
                                                "pvcs": 1, "migrations": 0}

    remove = [{
        "hosts": "localhost", "gather_facts": False, "module_defaults": _defaults(kubeconfig, namespace),
        "tasks": [
            {"name": "vm absent", "virtops.kubevirt.vm": {"name": "f1", "state": "absent", "wait": True,
                                                          "wait_timeout": 120}},
            {"name": "volume absent", "virtops.kubevirt.volume": {"name": "data1", "state": "absent",
                                                                  "wait": True, "wait_timeout": 120}},
            {"name": "vm absent again", "virtops.kubevirt.vm": {"name": "f1", "state": "absent"}},
        ]}]
    result = run_playbook(tmp_path, remove, name="remove.yml")
    assert result.rc == 0, result.explain()
    assert result.task("vm absent")["changed"] and result.task("volume absent")["changed"]
    assert not result.task("vm absent again")["changed"]
    left = _counts(core, custom, namespace)
    assert left["vms"] == left["vmis"] == left["launcher_pods"] == left["datavolumes"] == 0, left

    stats = p.stats()
    assert stats["faults_total"] >= 10, stats
    hit = set(stats["faults"])
    assert {"500", "503", "429"} & hit and ({"reset", "reset-after-write"} & hit), stats
    writes = {m: v for m, v in stats["methods"].items() if m != "GET"}
    assert sum(sum(v["faults"].values()) for v in writes.values()) > 0, ("no write was faulted", stats)


@pytest.mark.slow
def test_a_wait_resumes_after_its_watch_is_cut(proxy, namespace, tmp_path):
    """Every watch is cut (after 0-4 events or 0.5-5 s): the wait resumes and the task succeeds."""
    p = proxy(rate=1.0, faults="cut-watch")
    kubeconfig = p.kubeconfig(tmp_path / "kubeconfig-cuts")
    play = [{
        "hosts": "localhost", "gather_facts": False, "module_defaults": _defaults(kubeconfig, namespace),
        "tasks": [
            {"name": "vm", "virtops.kubevirt.vm": {
                "name": "c1", "memory": "256Mi", "disks": [{"name": "root", "image": IMAGE}],
                "wait": True, "wait_for": ["ready", "ip"], "wait_timeout": 120}},
            {"name": "restart", "virtops.kubevirt.vm_power": {"name": "c1", "state": "restarted",
                                                              "wait_timeout": 120}},
            {"name": "vm absent", "virtops.kubevirt.vm": {"name": "c1", "state": "absent", "wait": True,
                                                          "wait_timeout": 120}},
        ]}]
    result = run_playbook(tmp_path, play, env=ansible_env())
    assert result.rc == 0, result.explain()
    stats = p.stats()
    assert stats["faults"].get("cut-watch", 0) > 0, stats
    watches = sum(record.get("watches", 0) for task in ("vm", "restart", "vm absent")
                  for record in result.task(task).get("progress") or [])
    assert watches > len(result.task("vm")["progress"]) + 1, "no wait needed a second watch"
    assert result.task("vm")["vm"]["metadata"]["name"] == "c1" and result.task("restart")["ready"]
