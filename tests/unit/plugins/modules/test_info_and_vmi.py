import json

import pytest
from kvfakes import FakeClient, running_vmi
from modhelp import run_module

from ansible_collections.virtops.kubevirt.plugins.modules import vm as vm_module
from ansible_collections.virtops.kubevirt.plugins.modules import vm_info, vmi, vmi_info

VM = {"name": "web1", "namespace": "demo", "memory": "1Gi", "disks": [{"name": "root", "image": "img"}]}


@pytest.fixture
def client():
    return FakeClient()


@pytest.fixture
def run(client, monkeypatch, capsys):
    def _run(module, args, **kw):
        return run_module(module, args, client, monkeypatch, capsys, **kw)
    return _run


def test_vm_info_by_name_with_summary(run, client):
    run(vm_module, dict(VM, wait=True))
    client.calls.clear()
    result = run(vm_info, {"name": "web1", "namespace": "demo"})
    assert result["changed"] is False and len(result["resources"]) == 1
    summary = result["summaries"][0]
    assert summary["status"] == "Running" and summary["ready"] and summary["node"] == "node01"
    assert summary["launcher_pod"]["name"] == "virt-launcher-web1-abcde"
    assert summary["networks"]["default"]["ip_address"] == "10.244.0.10"
    kinds = sorted((c[0], c[1]) for c in client.calls)
    assert kinds == [("GET", "VirtualMachine"), ("GET", "VirtualMachineInstance"), ("LIST", "Event"), ("LIST", "Pod")]
    pods_call = [c for c in client.calls if c[1] == "Pod"][0]
    assert pods_call[2]["label_selector"] == "kubevirt.io=virt-launcher,vm.kubevirt.io/name=web1"


def test_vm_info_missing_name_is_empty(run, client):
    result = run(vm_info, {"name": "nope", "namespace": "demo"})
    assert result["resources"] == [] and result["summaries"] == []


def test_vm_info_all_namespaces_with_selectors_and_no_summary(run, client):
    run(vm_module, dict(VM, labels={"app": "web"}))
    run(vm_module, dict(VM, name="db1", namespace="fleet", labels={"app": "db"}))
    client.calls.clear()
    result = run(vm_info, {"label_selectors": ["app=web"], "summary": False})
    assert [r["metadata"]["name"] for r in result["resources"]] == ["web1"]
    assert result["summaries"] == [] and [c[0] for c in client.calls] == ["LIST"]
    assert client.calls[0][2]["namespace"] is None and client.calls[0][2]["label_selector"] == "app=web"


def test_vm_info_err_image_pull_reason_names_image(run, client):
    image = "quay.io/example/does-not-exist:1"
    client.controller = False
    client.put({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                "metadata": {"name": "broken", "namespace": "demo"},
                "spec": {"runStrategy": "Always", "template": {"spec": {"volumes": [
                    {"name": "root", "containerDisk": {"image": image}}]}}},
                "status": {"printableStatus": "ErrImagePull", "ready": False}})
    failing = running_vmi("broken", "demo", phase="Scheduled", ready=False)
    failing["spec"]["volumes"][0]["containerDisk"]["image"] = image
    failing["status"]["conditions"].append({"type": "Synchronized", "status": "False", "reason": "ErrImagePull",
                                            "message": "failed to pull image %s: not found" % image})
    client.put(failing)
    result = run(vm_info, {"name": "broken", "namespace": "demo"})
    reason = result["summaries"][0]["reason"]
    assert reason.startswith("ErrImagePull: cannot pull the container disk image '%s'" % image)


def test_vm_info_wait_then_report(run, client):
    run(vm_module, dict(VM))
    result = run(vm_info, {"name": "web1", "namespace": "demo", "wait": True, "wait_for": ["ready", "ip"]})
    assert result["progress"][0]["result"] == "ok" and result["summaries"][0]["ready"]


def test_vm_info_wait_stopped(run, client):
    run(vm_module, dict(VM, run_strategy="Halted"))
    result = run(vm_info, {"name": "web1", "namespace": "demo", "wait": True, "running": False})
    assert "stopped" in result["progress"][0]["waited_for"]


def test_vm_info_running_requires_wait(run, client):
    result = run(vm_info, {"name": "web1", "running": False})
    assert result["failed"] and "running" in result["msg"] and "wait" in result["msg"]


def test_vm_info_wait_timeout(run, client):
    client.unschedulable.add("big")
    run(vm_module, dict(VM, name="big"))
    result = run(vm_info, {"name": "big", "namespace": "demo", "wait": True, "wait_timeout": 1})
    assert result["failed"] and "Insufficient memory" in result["msg"] and result["resources"]


def test_vm_info_standalone_vmis(run, client):
    run(vm_module, dict(VM, wait=True))
    lone = running_vmi("lone", "demo")
    lone["metadata"]["ownerReferences"] = []
    client.put(lone)
    result = run(vm_info, {"namespace": "demo", "include_standalone_vmis": True})
    assert [v["metadata"]["name"] for v in result["vmis"]] == ["lone"]
    assert result["vmi_summaries"][0]["owner_vm"] is None


def _standalone(client, name, labels):
    lone = running_vmi(name, "demo")
    lone["metadata"]["ownerReferences"] = []
    lone["metadata"]["labels"] = labels
    client.put(lone)


@pytest.mark.parametrize("summary", [True, False])
def test_vm_info_standalone_vmis_by_label_selectors(run, client, summary):
    """Issue 14: the label selectors select the stand-alone VMIs too (by their own labels, on the server);
    before, every stand-alone VMI of the namespace was returned."""
    run(vm_module, dict(VM, labels={"team": "blue"}, wait=True))
    _standalone(client, "lone-blue", {"team": "blue"})
    _standalone(client, "lone-red", {"team": "red"})
    client.calls.clear()
    result = run(vm_info, {"namespace": "demo", "include_standalone_vmis": True, "label_selectors": ["team=blue"],
                           "summary": summary})
    assert [r["metadata"]["name"] for r in result["resources"]] == ["web1"]
    assert [v["metadata"]["name"] for v in result["vmis"]] == ["lone-blue"]
    assert [s["name"] for s in result["vmi_summaries"]] == ["lone-blue"]
    vmi_lists = [c[2]["label_selector"] for c in client.calls if c[:2] == ("LIST", "VirtualMachineInstance")]
    assert "team=blue" in vmi_lists
    if summary:  # the VM's own VMI is found whatever its labels
        assert result["summaries"][0]["status"] == "Running"


def test_vm_info_by_name_applies_the_label_selectors(run, client):
    run(vm_module, dict(VM, labels={"app": "web", "tier": "a"}))
    for selectors, found in ((["app=web"], 1), (["tier in (a,b)", "app"], 1), (["tier notin (a,b)"], 0),
                             (["app=db"], 0)):
        result = run(vm_info, {"name": "web1", "namespace": "demo", "label_selectors": selectors})
        assert len(result["resources"]) == found, selectors
        assert len(result["summaries"]) == found, selectors


def test_vm_info_unparsable_label_selector_is_one_sentence(run, client):
    client.calls.clear()
    result = run(vm_info, {"namespace": "demo", "label_selectors": ["app=web", "tier in (a,b"]})
    assert result["failed"]
    assert result["msg"] == ("label_selectors 'tier in (a,b' is not a valid label selector: found 'end of string', "
                             "expected: ',', ')' or identifier.")
    assert client.calls == []


def test_vm_info_redacts_user_data(run, client):
    run(vm_module, dict(VM, cloud_init={"password": "topsecret"}))
    result = run(vm_info, {"name": "web1", "namespace": "demo"})
    assert "topsecret" not in json.dumps(result)


def test_vm_info_bad_namespace_name(run, client):
    result = run(vm_info, {"namespace": "Bad NS"})
    assert result["failed"] and "namespace 'Bad NS' is invalid" in result["msg"]


# -- vmi -------------------------------------------------------------------------------------------
class VmiController(FakeClient):
    """Makes stand-alone VMIs Running on write."""

    def apply(self, resource, obj, **kw):
        result = super().apply(resource, obj, **kw)
        if resource.kind == "VirtualMachineInstance" and not kw.get("dry_run"):
            stored = self.store[("VirtualMachineInstance", obj["metadata"]["namespace"], obj["metadata"]["name"])]
            stored["status"] = running_vmi(obj["metadata"]["name"], "demo")["status"]
        return result


@pytest.fixture
def vclient():
    return VmiController()


@pytest.fixture
def vrun(vclient, monkeypatch, capsys):
    def _run(module, args, **kw):
        return run_module(module, args, vclient, monkeypatch, capsys, **kw)
    return _run


def test_vmi_create_wait_idempotent_delete(vrun, vclient):
    args = {"name": "scratch", "namespace": "demo", "memory": "1Gi", "disks": [{"name": "root", "image": "img"}]}
    created = vrun(vmi, dict(args, wait=True, wait_for=["ready", "ip"]))
    assert created["changed"] and created["ready"] and created["phase"] == "Running"
    assert created["ip_address"] == "10.244.0.10" and created["vmi_object"]["kind"] == "VirtualMachineInstance"
    again = vrun(vmi, args)
    assert again["changed"] is False
    check = vrun(vmi, dict(args, labels={"a": "b"}), check_mode=True, diff=True)
    assert check["changed"] is True and check["diff"]["after"]["metadata"]["labels"] == {"a": "b"}
    gone = vrun(vmi, {"name": "scratch", "namespace": "demo", "state": "absent", "wait": True})
    assert gone["changed"] and [p["waited_for"] for p in gone["progress"]] == [
        "VirtualMachineInstance demo/scratch to be deleted",
        "the virt-launcher pods of VirtualMachineInstance demo/scratch to be deleted"]


@pytest.mark.parametrize("args, message", [
    ({"name": "x", "memory": "1Gi", "disks": [{"name": "d", "data_volume_template": {"size": "1Gi"}}]},
     "needs a VirtualMachine"),
    ({"name": "x"}, "would have no memory"),
    ({"name": "x", "memory": "1Gi", "instancetype": "u1"}, "Unsupported parameters"),
])
def test_vmi_bad_input(vrun, vclient, args, message):
    result = vrun(vmi, dict(args, namespace="demo"))
    assert result["failed"] and message in result["msg"] and not vclient.store


class FailingVmi(FakeClient):
    def apply(self, resource, obj, **kw):
        result = super().apply(resource, obj, **kw)
        if not kw.get("dry_run"):
            self.store[("VirtualMachineInstance", "demo", "x")]["status"] = {"phase": "Failed", "conditions": []}
        return result


def test_vmi_failed_phase_fails_wait_at_once(monkeypatch, capsys):
    result = run_module(vmi, {"name": "x", "namespace": "demo", "memory": "1Gi", "wait": True}, FailingVmi(),
                        monkeypatch, capsys)
    assert result["failed"] and "ended in phase Failed" in result["msg"] and result["changed"] is True


def test_vmi_info(vrun, vclient):
    vrun(vmi, {"name": "scratch", "namespace": "demo", "memory": "1Gi"})
    result = vrun(vmi_info, {"namespace": "demo"})
    assert [s["name"] for s in result["summaries"]] == ["scratch"]
    assert result["summaries"][0]["kind"] == "VirtualMachineInstance"
