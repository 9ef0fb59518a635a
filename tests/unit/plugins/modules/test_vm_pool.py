"""vm_pool: the pool built from the vm module's options, scale by patch, waits, errors before writes."""
import copy

import pytest
from modhelp import run_module
from opsfakes import OpsClient

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows import vm_pool as flow
from ansible_collections.virtops.kubevirt.plugins.modules import vm_pool

KEY = ("VirtualMachinePool", "demo", "web")
TEMPLATE = {"memory": "1Gi", "labels": {"app": "web"}, "disks": [{"name": "root", "image": "quay.io/containerdisks/fedora:41"}]}


def params(**kw):
    base = {key: None for key in flow.argument_spec()}
    base.update(name="web", namespace="demo", state="present", wait=False, wait_timeout=300)
    base.update(kw)
    return base


# -- building ------------------------------------------------------------------------------------
def test_template_is_the_vm_modules_vm_with_the_default_selectors_label():
    pool = flow.desired_pool(params(replicas=2, **TEMPLATE), "web", "demo", None)
    spec = pool["spec"]
    assert pool["apiVersion"] == "pool.kubevirt.io/v1beta1" and pool["kind"] == "VirtualMachinePool"
    assert spec["replicas"] == 2 and spec["selector"] == {"matchLabels": {"kubevirt.io/vmpool": "web"}}
    assert spec["virtualMachineTemplate"]["metadata"] == {"labels": {"app": "web", "kubevirt.io/vmpool": "web"}}
    vm_spec = spec["virtualMachineTemplate"]["spec"]
    assert vm_spec["runStrategy"] == "Always"
    assert vm_spec["template"]["metadata"]["labels"] == {"app": "web", "kubevirt.io/vmpool": "web"}
    assert vm_spec["template"]["spec"]["domain"]["memory"] == {"guest": "1Gi"}
    assert "paused" not in spec


def test_options_not_given_keep_the_pools_values():
    current = flow.desired_pool(params(replicas=4, paused=True, run_strategy="Halted",
                                       selector={"match_labels": {"app": "web"}}, **TEMPLATE), "web", "demo", None)
    again = flow.desired_pool(params(**{**TEMPLATE, "memory": "2Gi"}), "web", "demo", current)
    assert again["spec"]["replicas"] == 4 and again["spec"]["paused"] is True
    assert again["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert again["spec"]["virtualMachineTemplate"]["spec"]["runStrategy"] == "Halted"
    # a selector of the user's own: no pool label added
    assert again["spec"]["virtualMachineTemplate"]["metadata"]["labels"] == {"app": "web"}


@pytest.mark.parametrize("kw, message", [
    (dict(TEMPLATE, selector={"match_labels": {"app": "db"}}), "selector app=db does not match the VM template's labels"),
    (dict(TEMPLATE, selector={"match_expressions": [{"key": "app", "operator": "In", "values": None}]}),
     "matchExpressions[0] (app In) needs values"),
    (dict(TEMPLATE, selector={"match_labels": {}, "match_expressions": []}), "selector is empty"),
    ({"labels": {"app": "web"}, "disks": TEMPLATE["disks"]}, "the VM template has no memory"),
])
def test_bad_pools_are_refused_while_building(kw, message):
    with pytest.raises(InputError) as exc:
        flow.desired_pool(params(**kw), "web", "demo", None)
    assert message in str(exc.value)


def test_partial_patch_names_only_what_the_task_gives():
    current = flow.desired_pool(params(replicas=2, **TEMPLATE), "web", "demo", None)
    assert flow.partial_patch(params(replicas=5), "web", "demo", current) == {"spec": {"replicas": 5}}
    assert flow.partial_patch(params(), "web", "demo", current) == {}
    patch = flow.partial_patch(params(labels={"tier": "a"}, run_strategy="Halted", pool_labels={"team": "x"}),
                               "web", "demo", current)
    assert patch == {"metadata": {"labels": {"team": "x"}}, "spec": {"virtualMachineTemplate": {
        "metadata": {"labels": {"tier": "a"}},
        "spec": {"runStrategy": "Halted", "template": {"metadata": {"labels": {"tier": "a"}}}}}}}
    with pytest.raises(InputError):
        flow.partial_patch(params(selector={"match_labels": {"app": "db"}}), "web", "demo", current)


# -- the module ----------------------------------------------------------------------------------
@pytest.fixture
def client():
    return OpsClient()


@pytest.fixture
def run(client, monkeypatch, capsys):
    def _run(args, **kw):
        return run_module(vm_pool, dict({"name": "web", "namespace": "demo"}, **args), client, monkeypatch,
                          capsys, **kw)
    return _run


def writes(client, since=0):
    return [c[0] for c in client.calls[since:] if c[0] not in ("GET", "LIST", "WATCH")]


def add_pool_vm(client, index, pool_uid="uid-web", name=None):
    client.put({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {
        "name": name or "web-%d" % index, "namespace": "demo", "labels": {"app": "web", "kubevirt.io/vmpool": "web"},
        "ownerReferences": [{"kind": "VirtualMachinePool", "name": "web", "uid": pool_uid, "controller": True}]},
        "spec": {"runStrategy": "Always", "template": {"spec": {}}},
        "status": {"printableStatus": "Running", "ready": True}})


def test_create_then_unchanged_and_the_pools_vms(run, client):
    first = run(dict(TEMPLATE, replicas=2), diff=True)
    assert first["changed"] and first["method"] == "create" and first["diff"]["before"] == {}
    assert client.store[KEY]["spec"]["replicas"] == 2
    add_pool_vm(client, 1)
    add_pool_vm(client, 0)
    add_pool_vm(client, 0, pool_uid="another-pool", name="other-0")     # selected, but not this pool's
    again = run(dict(TEMPLATE, replicas=2))
    assert again["changed"] is False and again["method"] == "none"
    assert [vm["name"] for vm in again["vms"]] == ["web-0", "web-1"]
    assert run(dict(TEMPLATE, replicas=2), check_mode=True)["changed"] is False


def test_check_mode_creates_nothing(run, client):
    result = run(dict(TEMPLATE), check_mode=True)
    assert result["changed"] and result["vms"] == [] and KEY not in client.store


def test_scale_is_a_patch_of_replicas_only(run, client):
    run(dict(TEMPLATE, replicas=2))
    template = copy.deepcopy(client.store[KEY]["spec"]["virtualMachineTemplate"])
    before = len(client.calls)
    result = run({"replicas": 5}, diff=True)
    assert result["changed"] and result["method"] == "patch"
    assert writes(client, before) == ["MERGE"] and client.calls[-1][0] != "APPLY"
    assert [c[2]["body"] for c in client.calls[before:] if c[0] == "MERGE"] == [{"spec": {"replicas": 5}}]
    assert client.store[KEY]["spec"]["virtualMachineTemplate"] == template
    assert (result["diff"]["before"]["spec"]["replicas"], result["diff"]["after"]["spec"]["replicas"]) == (2, 5)
    assert run({"replicas": 5})["changed"] is False


def test_template_change_keeps_replicas(run, client):
    run(dict(TEMPLATE, replicas=3))
    result = run(dict(TEMPLATE, memory="2Gi"))
    assert result["changed"] and result["method"] == "apply"
    assert client.store[KEY]["spec"]["replicas"] == 3


def test_wait_until_ready(run, client):
    run(dict(TEMPLATE, replicas=2))
    client.store[KEY]["status"] = {"replicas": 2, "readyReplicas": 2}
    result = run({"replicas": 2, "wait": True})
    assert result["progress"][0]["result"] == "ok"
    assert result["progress"][0]["waited_for"] == "VirtualMachinePool demo/web to have 2 ready VMs"


def test_wait_timeout_says_how_many_there_are(run, client):
    run(dict(TEMPLATE, replicas=2))
    client.store[KEY]["status"] = {"replicas": 2, "readyReplicas": 1}
    result = run({"wait": True, "wait_timeout": 1})
    assert result["failed"] and "Timed out" in result["msg"] and "it has 2 VMs, 1 ready" in result["msg"]
    assert result["progress"][-1]["result"] == "timeout"


def test_absent_deletes_and_reports_the_vms(run, client):
    run(dict(TEMPLATE, replicas=1))
    add_pool_vm(client, 0)
    result = run({"state": "absent"}, diff=True)
    assert result["changed"] and [vm["name"] for vm in result["vms"]] == ["web-0"]
    assert KEY not in client.store and result["diff"]["after"] == {}
    assert run({"state": "absent"})["changed"] is False


@pytest.mark.parametrize("args, message", [
    ({"replicas": 2}, "does not exist and the task gives no VM template"),
    (dict(TEMPLATE, replicas=-1), "replicas must be 0 or more"),
    ({"state": "absent", "replicas": 2}, "state=absent deletes the pool and its VMs; replicas do not apply"),
    (dict(TEMPLATE, selector={"match_labels": {"app": "db"}}), "does not match the VM template's labels"),
    (dict(TEMPLATE, name="p" * 62, replicas=11), "would be longer than 63 characters"),
    (dict(TEMPLATE, cpu={"socket": 2}), "socket"),
])
def test_bad_input_fails_before_any_write(run, client, args, message):
    result = run(args)
    assert result["failed"] and message in result["msg"] and "Traceback" not in result["msg"]
    assert writes(client) == []


def test_wait_after_a_template_change_waits_for_the_new_vmis_first(run, client):
    run(dict(TEMPLATE, replicas=1))
    client.store[KEY]["status"] = {"replicas": 1, "readyReplicas": 1}
    result = run(dict(TEMPLATE, memory="2Gi", wait=True, wait_timeout=1))
    assert result["failed"] and "VMIs to be restarted with the new template (1 ready of revision web-" in result["msg"]
    watched = [c[2] for c in client.calls if c[0] == "WATCH"]
    assert watched[-1]["label_selector"].startswith("kubevirt.io/vm-pool-revision-name=web-")
