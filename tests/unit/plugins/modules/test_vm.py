import json

import pytest
from kvfakes import FakeClient, running_vmi
from modhelp import run_module

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.modules import vm as vm_module


def warnings_text(result):
    return " ".join(w if isinstance(w, str) else json.dumps(w) for w in result.get("warnings") or [])


BASIC = {"name": "web1", "namespace": "demo", "memory": "1Gi",
         "disks": [{"name": "root", "image": "quay.io/containerdisks/fedora:41"}]}


@pytest.fixture
def client():
    return FakeClient()


@pytest.fixture
def run(client, monkeypatch, capsys):
    def _run(args, **kw):
        return run_module(vm_module, args, client, monkeypatch, capsys, **kw)
    return _run


def stored_vm(client, name="web1", ns="demo"):
    return client.store.get(("VirtualMachine", ns, name))


def test_create_then_idempotent(run, client):
    first = run(dict(BASIC))
    assert first["changed"] is True and first["method"] == "create"
    vm = stored_vm(client)
    assert vm["spec"]["runStrategy"] == "Always"
    assert vm["spec"]["template"]["spec"]["domain"]["memory"] == {"guest": "1Gi"}
    assert first["vm"]["metadata"]["name"] == "web1"
    assert first["api_requests"] == 2
    second = run(dict(BASIC))
    assert second["changed"] is False and second["method"] == "none"


def test_create_and_wait_costs_three_requests(run, client):
    result = run(dict(BASIC, wait=True, wait_for=["ready", "ip"]))
    assert result["changed"] and result["ready"] is True
    assert result["printable_status"] == "Running" and result["node"] == "node01"
    assert result["ip_address"] == "10.244.0.10" and result["ip_addresses"] == ["10.244.0.10"]
    assert result["vmi"]["phase"] == "Running"
    assert result["progress"][0]["result"] == "ok"
    assert [c[0] for c in client.calls] == ["GET", "APPLY", "WATCH"]
    assert result["api_requests"] == 3


def test_check_mode_on_new_vm_creates_nothing(run, client):
    result = run(dict(BASIC), check_mode=True)
    assert result["changed"] is True and stored_vm(client) is None
    assert [c[2].get("dry_run") for c in client.calls if c[0] == "APPLY"] == [True]


def test_check_mode_unchanged_says_unchanged(run, client):
    run(dict(BASIC))
    result = run(dict(BASIC), check_mode=True)
    assert result["changed"] is False


def test_diff_shows_label_change_without_server_fields(run, client):
    run(dict(BASIC))
    result = run(dict(BASIC, labels={"tier": "web"}), diff=True)
    assert result["changed"] is True
    diff = result["diff"]
    assert "labels" not in diff["before"]["metadata"] and diff["after"]["metadata"]["labels"] == {"tier": "web"}
    for side in (diff["before"], diff["after"]):
        assert "status" not in side and "resourceVersion" not in side["metadata"]
        assert "managedFields" not in side["metadata"] and "finalizers" not in side["metadata"]
        assert "kubevirt.io/latest-observed-api-version" not in json.dumps(side)


def test_secrets_never_in_result_or_diff(run, client):
    args = dict(BASIC, cloud_init={"user": "fedora", "password": "hunter2-secret"})
    result = run(args, diff=True)
    text = json.dumps(result)
    assert "hunter2-secret" not in text
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in text
    changed = run(dict(BASIC, cloud_init={"user": "fedora", "password": "new-secret"}), diff=True)
    text = json.dumps(changed)
    assert "new-secret" not in text and "hunter2" not in text and "(changed)" in text


def test_partial_update_touches_only_run_strategy(run, client):
    run(dict(BASIC, labels={"a": "1"}))
    result = run({"name": "web1", "namespace": "demo", "run_strategy": "Halted", "wait": True})
    assert result["changed"] is True and result["method"] == "patch"
    vm = stored_vm(client)
    assert vm["spec"]["runStrategy"] == "Halted"
    assert vm["spec"]["template"]["spec"]["domain"]["memory"] == {"guest": "1Gi"}
    assert vm["metadata"]["labels"] == {"a": "1"}
    assert ("VirtualMachineInstance", "demo", "web1") not in client.store
    assert result["printable_status"] == "Stopped" and "stopped" in result["progress"][0]["waited_for"]
    again = run({"name": "web1", "namespace": "demo", "run_strategy": "Halted"})
    assert again["changed"] is False


def test_run_strategy_kept_when_not_given(run, client):
    run(dict(BASIC, run_strategy="Manual"))
    run(dict(BASIC, labels={"x": "y"}))
    assert stored_vm(client)["spec"]["runStrategy"] == "Manual"


def test_running_false_means_halted(run, client):
    run(dict(BASIC, running=False))
    assert stored_vm(client)["spec"]["runStrategy"] == "Halted"


def test_memory_change_on_running_vm_reports_restart_required(run, client):
    run(dict(BASIC, wait=True))
    result = run(dict(BASIC, memory="2Gi"))
    assert result["changed"] is True and result["restart_required"] is True
    assert "RestartRequired" in warnings_text(result)


def test_a_change_kubevirt_has_not_processed_in_time_is_no_restart_free_change(run, client):
    # virt-controller busy: the VM's status after the write says nothing of the change (no RestartRequired,
    # no desiredGeneration); the module waits up to wait_timeout (at most 30 s) and then says it does not know.
    run(dict(BASIC, wait=True))
    client.controller = False
    result = run(dict(BASIC, memory="2Gi", wait_timeout=1))
    assert result["changed"] is True and result["restart_required"] is True
    assert "had not processed the template change after 1s" in warnings_text(result)
    assert result["progress"][-1]["result"] == "timeout"
    assert "template change" in result["progress"][-1]["waited_for"]


def test_wait_timeout_on_unschedulable(run, client):
    client.unschedulable.add("big")
    client.put({"kind": "Event", "apiVersion": "v1", "type": "Warning", "reason": "FailedScheduling",
                "message": "0/1 nodes are available: 1 Insufficient memory.",
                "metadata": {"name": "e", "namespace": "demo"},
                "involvedObject": {"kind": "Pod", "name": "virt-launcher-big-abcde"}})
    result = run(dict(BASIC, name="big", memory="64Gi", wait=True, wait_timeout=1))
    assert result["failed"] is True
    assert "Timed out after 1s waiting for VirtualMachine demo/big to be ready" in result["msg"]
    assert "Insufficient memory" in result["msg"]
    assert result["progress"][-1]["result"] == "timeout"
    assert result["changed"] is True


def test_absent_waits_for_vm_vmi_and_pods(run, client):
    run(dict(BASIC, wait=True))
    assert any(k[0] == "Pod" for k in client.store)
    result = run({"name": "web1", "namespace": "demo", "state": "absent", "wait": True})
    assert result["changed"] is True and result["vm"] is None
    assert not [k for k in client.store if k[0] in ("VirtualMachine", "VirtualMachineInstance", "Pod")]
    waited = [p["waited_for"] for p in result["progress"]]
    assert waited == ["VirtualMachine demo/web1 to be deleted", "VirtualMachineInstance demo/web1 to be deleted",
                      "the virt-launcher pods of VirtualMachine demo/web1 to be deleted"]
    again = run({"name": "web1", "namespace": "demo", "state": "absent"})
    assert again["changed"] is False


def test_absent_on_a_vm_already_being_deleted_sends_nothing_and_is_no_change(run, client):
    # A finalizer (KubeVirt's, or a foreground deletion) still holds it: a second DELETE would change nothing.
    run(dict(BASIC))
    stored_vm(client)["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z",
                                         finalizers=["kubevirt.io/virtualMachineControllerFinalize"])
    client.calls.clear()
    result = run({"name": "web1", "namespace": "demo", "state": "absent"})
    assert result["changed"] is False and result["method"] == "none"
    assert not [c for c in client.calls if c[0] == "DELETE"]


def test_present_on_a_vm_being_deleted_waits_for_it_to_go_then_creates_it(run, client):
    # Applying onto it would report it unchanged, and then it would vanish with its VMI.
    run(dict(BASIC))
    client.being_deleted("VirtualMachine", "web1", finalizer="kubevirt.io/virtualMachineControllerFinalize")
    check = run(dict(BASIC), check_mode=True)
    assert check["changed"] is True and stored_vm(client)["metadata"].get("deletionTimestamp")
    result = run(dict(BASIC))
    assert result["changed"] is True
    assert "deletionTimestamp" not in stored_vm(client)["metadata"]
    assert [p["waited_for"] for p in result["progress"]][0] == (
        "VirtualMachine demo/web1, being deleted, to be gone before it is created again")


def test_absent_check_mode(run, client):
    run(dict(BASIC))
    result = run({"name": "web1", "namespace": "demo", "state": "absent"}, check_mode=True)
    assert result["changed"] is True and stored_vm(client) is not None


def test_bulk_twenty_vms_one_watch(run, client):
    names = ["node-%02d" % i for i in range(20)]
    result = run({"namespace": "fleet", "memory": "1Gi", "disks": [{"name": "root", "image": "img"}],
                  "labels": {"app": "fleet"}, "vms": names[:-1] + [{"name": names[-1], "memory": "2Gi",
                                                                    "labels": {"size": "big"}}],
                  "wait": True})
    assert result["changed"] is True and len(result["results"]) == 20
    assert all(r["ready"] and r["changed"] for r in result["results"])
    last = stored_vm(client, names[-1], "fleet")
    assert last["metadata"]["labels"] == {"app": "fleet", "size": "big"}
    assert last["spec"]["template"]["spec"]["domain"]["memory"] == {"guest": "2Gi"}
    kinds = [c[0] for c in client.calls]
    assert kinds.count("WATCH") == 1 and kinds.count("LIST") == 1 and kinds.count("APPLY") == 20
    again = run({"namespace": "fleet", "memory": "1Gi", "disks": [{"name": "root", "image": "img"}],
                 "labels": {"app": "fleet"}, "vms": names[:-1] + [{"name": names[-1], "memory": "2Gi",
                                                                   "labels": {"size": "big"}}]})
    assert again["changed"] is False
    assert all("vm" in r and "vmi" in r for r in again["results"])


def test_return_objects_false_leaves_the_objects_out(run):
    item = {"namespace": "fleet", "memory": "1Gi", "disks": [{"name": "root", "image": "img"}]}
    lean = run(dict(item, vms=["a", "b"], wait=True, return_objects=False))
    assert [sorted(set(r) & {"vm", "vmi", "summary"}) for r in lean["results"]] == [["summary"]] * 2
    assert all(r["summary"]["creation_time"] and r["ready"] and r["ip_address"] for r in lean["results"])
    single = run(dict(item, name="c", return_objects=False))
    assert "vm" not in single and "vmi" not in single and single["summary"]["name"] == "c"
    gone = run(dict(item, name="c", state="absent", return_objects=False))
    assert gone["changed"] is True and "vm" not in gone


def test_bulk_partial_failure_reports_each(run, client):
    result = run({"namespace": "fleet", "memory": "1Gi", "vms": [
        {"name": "ok1"}, {"name": "bad", "namespace": "missing"}]})
    assert result["failed"] is True
    assert result["msg"].startswith("1 of 2 VMs failed: missing/bad: Could not create VirtualMachine missing/bad: "
                                    "namespace 'missing' does not exist")
    assert [r["name"] for r in result["results"]] == ["ok1", "bad"]
    assert result["results"][0]["changed"] is True


def test_bulk_item_validation(run, client):
    result = run({"namespace": "fleet", "vms": [{"name": "a", "memory": "1Gi", "networks": [
        {"name": "n", "type": "vlan"}]}]})
    assert result["failed"] and result["msg"].startswith("vms[0] (a): ")
    assert "vlan" in result["msg"] and "pod, multus, sriov" in result["msg"]


def test_definition(run, client):
    definition = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                  "metadata": {"name": "raw1", "namespace": "demo"},
                  "spec": {"runStrategy": "Halted", "template": {"spec": {"domain": {
                      "memory": {"guest": "1Gi"}, "devices": {}}}}}}
    result = run({"definition": definition, "labels": {"x": "1"}})
    assert result["changed"] is True
    assert stored_vm(client, "raw1")["metadata"]["labels"] == {"x": "1"}
    assert stored_vm(client, "raw1")["spec"]["runStrategy"] == "Halted"


@pytest.mark.parametrize("args, message", [
    ({"name": "Bad_Name", "memory": "1Gi"}, "name 'Bad_Name' is invalid"),
    ({"name": "web1", "memory": "2GB"}, "memory '2GB' is not a Kubernetes quantity; did you mean '2Gi'?"),
    ({"name": "web1", "memory": "1Gi", "networks": [{"name": "n", "type": "vlan"}]},
     "value of type must be one of: pod, multus, sriov, got: vlan"),
    ({"name": "web1", "memory": "1Gi", "disks": [{"name": "d", "image": "a", "pvc": "b"}]},
     "disk 'd' has 2 sources (image, pvc)"),
    ({"name": "web1", "memory": "1Gi", "namespace": "missing"},
     "Could not create VirtualMachine missing/web1: namespace 'missing' does not exist"),
    ({"name": "web1"}, "does not exist and the task gives no memory"),
    ({"name": "web1", "memory": "1Gi", "run_strategy": "Always", "running": True}, "mutually exclusive"),
    ({"name": "web1", "memory": "1Gi", "definition": {"spec": {}}}, "mutually exclusive: definition|memory"),
    ({"name": "web1", "memory": "1Gi", "wait": True, "wait_for": ["booted"]}, "wait_for item 'booted' is unknown"),
    ({"vms": []}, "vms is empty"),
    ({"vms": ["a", "a"], "memory": "1Gi"}, "listed twice"),
])
def test_bad_input(run, client, args, message):
    args = dict({"namespace": "demo"}, **args) if "namespace" not in args else args
    result = run(args)
    assert result["failed"] is True
    assert message in result["msg"], result["msg"]
    assert "Traceback" not in json.dumps(result)
    assert not client.store


def test_namespace_defaults_to_client_namespace(run, client):
    client.namespace = "demo"
    run({"name": "web1", "memory": "1Gi"})
    assert stored_vm(client, "web1", "demo") is not None


def test_existing_vm_with_deprecated_running_is_converted(run, client):
    client.put({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                "metadata": {"name": "old", "namespace": "demo"},
                "spec": {"running": True, "template": {"spec": {"domain": {"memory": {"guest": "1Gi"}}}}}})
    result = run({"name": "old", "namespace": "demo", "run_strategy": "Halted"})
    assert result["changed"] is True
    spec = stored_vm(client, "old")["spec"]
    assert spec["runStrategy"] == "Halted" and "running" not in spec


def test_manual_run_strategy_does_not_wait(run, client):
    result = run(dict(BASIC, run_strategy="Manual", wait=True))
    assert result["changed"] and result["progress"] == []
    assert "starts nothing by itself" in warnings_text(result)


def test_summary_of_existing_vm_without_wait_reads_vmi(run, client):
    run(dict(BASIC, wait=True))
    client.calls.clear()
    result = run(dict(BASIC))
    assert result["changed"] is False and result["vmi"]["phase"] == "Running"
    assert [c[0] for c in client.calls] == ["GET", "APPLY", "GET"]
    assert client.calls[-1][1] == res.VMI.kind


def test_vms_strings_become_names(run, client):
    result = run({"namespace": "fleet", "memory": "1Gi", "vms": ["a", "b"]})
    assert [r["name"] for r in result["results"]] == ["a", "b"]


def test_wait_reports_running_vmi_when_standalone_name_clash(run, client):
    client.put(running_vmi("web1", "demo"))
    result = run(dict(BASIC, wait=True))
    assert result["ready"] is True


def test_bulk_item_secrets_are_masked_everywhere(run, client):
    result = run({"namespace": "fleet", "memory": "1Gi", "vms": [
        {"name": "a", "cloud_init": {"user": "u", "password": "bulk-secret-1"}},
        {"name": "b", "cloud_init": {"user_data": "#cloud-config\npassword: bulk-secret-2\n"}}]}, diff=True)
    text = json.dumps(result)
    assert result["changed"] and "bulk-secret-1" not in text and "bulk-secret-2" not in text


# -- objects the VM needs and the task does not create -------------------------------------------------
NEEDS = dict(BASIC, name="app1", disks=[{"name": "root", "pvc": "app1-root"}, {"name": "data", "data_volume": "app1-data"},
                                        {"name": "scratch", "data_volume_template": {"size": "1Gi"}}],
             networks=[{"name": "default", "type": "pod"}, {"name": "br", "type": "multus", "network_name": "br1-net"}])


def _put_needs(client, skip=()):
    objs = {"pvc": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "metadata": {"name": "app1-root", "namespace": "demo"}},
            "dv": {"kind": "DataVolume", "apiVersion": "cdi.kubevirt.io/v1beta1",
                   "metadata": {"name": "app1-data", "namespace": "demo"}},
            "nad": {"kind": "NetworkAttachmentDefinition", "apiVersion": "k8s.cni.cncf.io/v1",
                    "metadata": {"name": "br1-net", "namespace": "demo"}}}
    for key, obj in objs.items():
        if key not in skip:
            client.put(obj)


@pytest.mark.parametrize("missing, message", [
    ("pvc", "PersistentVolumeClaim demo/app1-root (volume 'root' of VirtualMachine demo/app1) does not exist; "
            "create it first (virtops.kubevirt.volume with kind: pvc) or check the disk's pvc."),
    ("dv", "DataVolume demo/app1-data (volume 'data' of VirtualMachine demo/app1) does not exist; create it first "
           "(virtops.kubevirt.volume) or check the disk's data_volume."),
    ("nad", "NetworkAttachmentDefinition demo/br1-net (network 'br' of VirtualMachine demo/app1) does not exist; "
            "create it first (virtops.kubevirt.network) or check the network's network_name."),
])
def test_missing_reference_fails_before_writing(run, client, missing, message):
    _put_needs(client, skip=(missing,))
    result = run(dict(NEEDS))
    assert result["failed"] and result["msg"] == message
    assert stored_vm(client, "app1") is None
    assert "APPLY" not in [c[0] for c in client.calls]


def test_references_present_vm_created(run, client):
    _put_needs(client)
    result = run(dict(NEEDS))
    assert result["changed"] and stored_vm(client, "app1") is not None


def test_data_volume_garbage_collected_its_pvc_is_enough(run, client):
    _put_needs(client, skip=("dv",))
    client.put({"kind": "PersistentVolumeClaim", "apiVersion": "v1", "metadata": {"name": "app1-data", "namespace": "demo"}})
    assert run(dict(NEEDS))["changed"]


def test_missing_reference_in_check_mode_is_a_warning(run, client):
    result = run(dict(NEEDS), check_mode=True)
    assert result["changed"] and not result.get("failed")
    assert "PersistentVolumeClaim demo/app1-root (volume 'root'" in warnings_text(result)


def test_missing_reference_fails_only_that_vm_of_many(run, client):
    _put_needs(client)
    result = run({"namespace": "demo", "memory": "1Gi", "vms": [
        {"name": "ok1", "disks": [{"name": "root", "pvc": "app1-root"}]},
        {"name": "bad1", "disks": [{"name": "root", "pvc": "nosuch"}]}]})
    assert result["failed"] and "1 of 2 VMs failed: demo/bad1: PersistentVolumeClaim demo/nosuch" in result["msg"]
    assert stored_vm(client, "ok1") is not None and stored_vm(client, "bad1") is None


def test_labels_only_update_does_not_check_references(run, client):
    client.put({"kind": "VirtualMachine", "apiVersion": "kubevirt.io/v1", "metadata": {"name": "old1", "namespace": "demo"},
                "spec": {"runStrategy": "Always", "template": {"spec": {
                    "domain": {"memory": {"guest": "1Gi"}, "devices": {}},
                    "volumes": [{"name": "root", "persistentVolumeClaim": {"claimName": "gone"}}]}}}})
    result = run({"name": "old1", "namespace": "demo", "labels": {"tier": "x"}})
    assert result["changed"] and not result.get("failed")


def test_forbidden_reference_read_is_a_warning(run, client, monkeypatch):
    from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError
    real = client.get_or_none

    def get_or_none(resource, name, namespace=None):
        if resource is res.NAD:
            raise ApiError(403, "GET", "/nad", {"reason": "Forbidden", "message": "nope"})
        return real(resource, name, namespace)
    monkeypatch.setattr(client, "get_or_none", get_or_none)
    _put_needs(client, skip=("nad",))
    result = run(dict(NEEDS))
    assert result["changed"] and "Could not check that NetworkAttachmentDefinition demo/br1-net exists (nope)" in \
        warnings_text(result)


def test_definition_without_a_name_says_where_to_put_it(run, client):
    result = run({"namespace": "demo", "definition": {"kind": "VirtualMachine", "spec": {"template": {"spec": {}}}}})
    assert result["failed"] and result["msg"] == "name is required: set name, or metadata.name in definition."


# -- secrets --------------------------------------------------------------------------------------------
UD_SECRET = "Unit-UserData-Secret-4411"


def test_inline_user_data_of_a_definition_is_masked_everywhere(run, client):
    definition = {"kind": "VirtualMachine", "metadata": {"name": "d1"}, "spec": {"template": {"spec": {
        "domain": {"memory": {"guest": "1Gi"}, "devices": {"disks": [{"name": "ci", "disk": {}}]}},
        "volumes": [{"name": "ci", "cloudInitNoCloud": {"userData": "runcmd: [%s]" % UD_SECRET}}]}}}}
    result = run({"namespace": "demo", "definition": definition}, diff=True)
    assert result["changed"] and UD_SECRET not in json.dumps(result)
    assert result["invocation"]["module_args"]["definition"]["spec"]["template"]["spec"]["volumes"][0][
        "cloudInitNoCloud"]["userData"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def test_last_applied_annotation_is_redacted_in_results_and_diffs(run, client):
    vm = {"kind": "VirtualMachine", "apiVersion": "kubevirt.io/v1", "metadata": {"name": "web1", "namespace": "demo"},
          "spec": {"runStrategy": "Halted", "template": {"spec": {
              "domain": {"memory": {"guest": "1Gi"}, "devices": {}},
              "volumes": [{"name": "ci", "cloudInitNoCloud": {"userData": "token %s" % UD_SECRET}}]}}}}
    vm["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(vm)}
    client.put(vm)
    result = run({"name": "web1", "namespace": "demo", "labels": {"a": "b"}}, diff=True)
    assert result["changed"] and UD_SECRET not in json.dumps(result)


# -- state: absent and the DataVolumes of dataVolumeTemplates -----------------------------------------
def _vm_with_template(client):
    client.put({"kind": "VirtualMachine", "apiVersion": "kubevirt.io/v1",
                "metadata": {"name": "app1", "namespace": "demo", "uid": "vm-uid-1"},
                "spec": {"runStrategy": "Always", "dataVolumeTemplates": [{"metadata": {"name": "app1-data"}, "spec": {}}],
                         "template": {"spec": {"domain": {"memory": {"guest": "1Gi"}, "devices": {}},
                                               "volumes": [{"name": "data", "dataVolume": {"name": "app1-data"}}]}}}})
    client.put(running_vmi("app1", "demo", uid="vmi-uid-1", owner_uid="vm-uid-1"))
    client.put({"kind": "ControllerRevision", "apiVersion": "apps/v1", "metadata": {
        "name": "revision-start-vm-vm-uid-1-1", "namespace": "demo", "uid": "cr-1",
        "ownerReferences": [{"kind": "VirtualMachine", "name": "app1", "uid": "vm-uid-1"}]}})
    client.put({"kind": "ControllerRevision", "apiVersion": "apps/v1", "metadata": {
        "name": "someone-elses", "namespace": "demo", "uid": "cr-2",
        "ownerReferences": [{"kind": "VirtualMachine", "name": "other", "uid": "vm-uid-2"}]}})


@pytest.fixture
def deletes(client, monkeypatch):
    seen = []
    real = client.delete

    def delete(resource, name, namespace=None, propagation="Foreground", dry_run=False, grace_period=None, uid=None):
        seen.append((resource.kind, name, propagation, uid, dry_run))
        return real(resource, name, namespace, propagation=propagation, dry_run=dry_run, uid=uid)
    monkeypatch.setattr(client, "delete", delete)
    return seen


def test_keep_volumes_orphans_the_template_data_volumes(run, client, deletes):
    _vm_with_template(client)
    result = run({"name": "app1", "namespace": "demo", "state": "absent", "keep_volumes": True})
    assert result["changed"] and result["kept_data_volumes"] == ["app1-data"]
    assert deletes == [("VirtualMachine", "app1", "Orphan", None, False),
                       ("VirtualMachineInstance", "app1", "Foreground", "vmi-uid-1", False),
                       ("ControllerRevision", "revision-start-vm-vm-uid-1-1", "Foreground", "cr-1", False)]
    assert client.store.get(("ControllerRevision", "demo", "someone-elses")) is not None


def test_keep_volumes_in_check_mode_only_dry_runs_the_vm(run, client, deletes):
    _vm_with_template(client)
    result = run({"name": "app1", "namespace": "demo", "state": "absent", "keep_volumes": True}, check_mode=True)
    assert result["changed"] and result["kept_data_volumes"] == ["app1-data"]
    assert deletes == [("VirtualMachine", "app1", "Orphan", None, True)]


def test_by_default_a_vm_goes_with_its_template_data_volumes(run, client, deletes):
    _vm_with_template(client)
    result = run({"name": "app1", "namespace": "demo", "state": "absent"})
    assert result["changed"] and "kept_data_volumes" not in result
    assert deletes == [("VirtualMachine", "app1", "Foreground", None, False)]


def test_keep_volumes_without_templates_is_a_plain_delete(run, client, deletes):
    run(dict(BASIC))
    result = run({"name": "web1", "namespace": "demo", "state": "absent", "keep_volumes": True})
    assert result["changed"] and "kept_data_volumes" not in result
    assert [d[:3] for d in deletes] == [("VirtualMachine", "web1", "Foreground")]


def test_keep_volumes_per_item_of_vms(run, client, deletes):
    _vm_with_template(client)
    run(dict(BASIC))
    result = run({"namespace": "demo", "state": "absent", "vms": [{"name": "app1", "keep_volumes": True}, "web1"]})
    assert [r.get("kept_data_volumes") for r in result["results"]] == [["app1-data"], None]
    assert ("VirtualMachine", "app1", "Orphan") in [d[:3] for d in deletes]
    assert ("VirtualMachine", "web1", "Foreground") in [d[:3] for d in deletes]


def test_keep_volumes_without_rights_on_vmis_and_revisions_warns(run, client, monkeypatch):
    from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError
    _vm_with_template(client)
    real_delete, real_list = client.delete, client.list
    forbidden = ApiError(403, "X", "u", {"reason": "Forbidden", "message": "forbidden"})

    def delete(resource, name, namespace=None, **kw):
        if resource is res.VMI:
            raise forbidden
        return real_delete(resource, name, namespace, **kw)

    def list_(resource, namespace=None, **kw):
        if resource.kind == "ControllerRevision":
            raise forbidden
        return real_list(resource, namespace, **kw)
    monkeypatch.setattr(client, "delete", delete)
    monkeypatch.setattr(client, "list", list_)
    result = run({"name": "app1", "namespace": "demo", "state": "absent", "keep_volumes": True})
    assert result["changed"] and not result.get("failed") and result["kept_data_volumes"] == ["app1-data"]
    text = warnings_text(result)
    assert "Could not delete VirtualMachineInstance demo/app1 (forbidden)" in text
    assert "Could not list the ControllerRevisions of VirtualMachine demo/app1 (forbidden)" in text


# -- issue 14: checked before the first write; labels reach the template as written ---------------------
def put_kubevirt(client, bindings):
    client.put({"apiVersion": "kubevirt.io/v1", "kind": "KubeVirt", "metadata": {"name": "kubevirt",
                "namespace": "kubevirt"}, "spec": {"configuration": {"network": {"binding": bindings}}}})


def writes_of(client):
    return [c for c in client.calls if c[0] in ("APPLY", "MERGE", "DELETE")]


@pytest.mark.parametrize("extra, message", [
    ({"wait": True, "wait_for": ["ip:br7"]},
     "wait_for 'ip:br7' names no network of VirtualMachine demo/web1 (its networks: default); use ip:default or "
     "plain ip (the first network)."),
    ({"wait": True, "wait_timeout": 0}, "wait_timeout must be a positive number of seconds, got 0."),
    ({"wait": True, "wait_timeout": -5}, "wait_timeout must be a positive number of seconds, got -5."),
    ({"instancetype": "u1.nosuch", "memory": None},
     "VirtualMachineClusterInstancetype 'u1.nosuch' (instancetype of VirtualMachine demo/web1) does not exist; "
     "check the name (kubectl get virtualmachineclusterinstancetypes), or set kind: VirtualMachineInstancetype for "
     "one of the VM's namespace."),
    ({"disks": [{"name": "data", "data_volume_template": {"size": "1Gi", "storage_class": "nosuch"}}]},
     "StorageClass 'nosuch' (storage class of volume 'data' of VirtualMachine demo/web1) does not exist; check the "
     "name, or leave the disk's data_volume_template.storage_class out for the cluster's default storage class."),
    ({"networks": [{"name": "default"}, {"name": "br", "network_name": "br1-net", "binding": "brdge"}]},
     "binding plugin 'brdge' (network 'br' of VirtualMachine demo/web1) is not registered in the cluster's KubeVirt "
     "CR (spec.configuration.network.binding has none); did you mean bridge? use one of bridge, masquerade, sriov "
     "as the network's binding, or register the plugin first."),
])
def test_bad_values_fail_before_anything_is_written(run, client, extra, message):
    client.put({"kind": "NetworkAttachmentDefinition", "apiVersion": "k8s.cni.cncf.io/v1",
                "metadata": {"name": "br1-net", "namespace": "demo"}})
    put_kubevirt(client, {})
    args = {k: v for k, v in dict(BASIC, **extra).items() if v is not None}
    result = run(args)
    assert result["failed"] and result["msg"] == message
    assert stored_vm(client) is None and writes_of(client) == []


def test_wait_for_ip_of_an_existing_vm_is_checked_against_its_networks(run, client):
    run(dict(BASIC, networks=[{"name": "default"}, {"name": "br1", "network_name": "br1-net"}]), check_mode=True)
    client.put({"kind": "VirtualMachine", "apiVersion": "kubevirt.io/v1", "metadata": {"name": "old1", "namespace": "demo"},
                "spec": {"runStrategy": "Always", "template": {"spec": {
                    "domain": {"memory": {"guest": "1Gi"}, "devices": {"interfaces": [{"name": "nic0", "bridge": {}}]}},
                    "networks": [{"name": "nic0", "multus": {"networkName": "br1-net"}}]}}}})
    before = stored_vm(client, "old1")
    bad = run({"name": "old1", "namespace": "demo", "labels": {"a": "b"}, "wait": True, "wait_for": ["ip:br1"]})
    assert bad["failed"] and bad["msg"].startswith("wait_for 'ip:br1' names no network of VirtualMachine demo/old1 "
                                                   "(its networks: nic0)")
    assert stored_vm(client, "old1") == before


def test_wait_for_ip_is_not_asked_of_a_vm_left_halted(run, client):
    # A bulk wait_for applies to the VMs waited for to run; a Halted one is waited for to be stopped.
    client.put({"kind": "NetworkAttachmentDefinition", "apiVersion": "k8s.cni.cncf.io/v1",
                "metadata": {"name": "br1-net", "namespace": "demo"}})
    result = run({"namespace": "demo", "wait_for": ["ip:br1"], "vms": [
        dict(BASIC, name="up1", networks=[{"name": "default"}, {"name": "br1", "network_name": "br1-net"}]),
        dict(BASIC, name="off1", run_strategy="Halted")]}, check_mode=True)
    assert not result.get("failed"), result.get("msg")
    # ... but when no VM of the task is to run, a network none has is a mistake all the same
    alone = run(dict(BASIC, name="off2", run_strategy="Halted", wait_for=["ip:br7"]), check_mode=True)
    assert alone["failed"] and alone["msg"].startswith("wait_for 'ip:br7' names no network of VirtualMachine demo/off2")


def test_a_registered_binding_plugin_passes(run, client):
    client.put({"kind": "NetworkAttachmentDefinition", "apiVersion": "k8s.cni.cncf.io/v1",
                "metadata": {"name": "br1-net", "namespace": "demo"}})
    put_kubevirt(client, {"passt": {"sidecarImage": "quay.io/x/passt:1"}})
    result = run(dict(BASIC, networks=[{"name": "default", "binding": "passt"}]))
    assert result["changed"]
    assert stored_vm(client)["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"] == [
        {"name": "default", "binding": {"name": "passt"}}]


def test_an_instancetype_the_vm_uses_already_is_not_read_again(run, client):
    client.put({"apiVersion": "instancetype.kubevirt.io/v1beta1", "kind": "VirtualMachineClusterInstancetype",
                "metadata": {"name": "u1.small"}})
    args = {k: v for k, v in BASIC.items() if k != "memory"}
    assert run(dict(args, instancetype="u1.small"))["changed"]
    del client.store[("VirtualMachineClusterInstancetype", None, "u1.small")]
    # KubeVirt keeps a ControllerRevision of it: a later change of that VM must not fail on it.
    changed = run(dict(args, instancetype="u1.small", hostname="web"))
    assert changed["changed"] and not changed.get("failed")


def test_bulk_item_with_a_missing_storage_class_fails_alone(run, client):
    client.put({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"}})
    result = run({"namespace": "demo", "memory": "1Gi", "vms": [
        {"name": "ok1", "disks": [{"name": "d", "data_volume_template": {"size": "1Gi", "storage_class": "fast"}}]},
        {"name": "bad1", "disks": [{"name": "d", "data_volume_template": {"size": "1Gi", "storage_class": "slow"}}]}]})
    assert result["failed"] and "demo/bad1: StorageClass 'slow' (storage class of volume 'd'" in result["msg"]
    assert stored_vm(client, "ok1") is not None and stored_vm(client, "bad1") is None


def test_labels_of_an_existing_vm_reach_its_template_as_written_and_stay_idempotent(run, client):
    run(dict(BASIC, run_strategy="Halted"))
    first = run({"name": "web1", "namespace": "demo", "labels": {"env": "test", "prod": True, "n": 3}})
    vm = stored_vm(client)
    want = {"env": "test", "prod": "true", "n": "3"}
    assert first["changed"] and vm["metadata"]["labels"] == want
    assert vm["spec"]["template"]["metadata"]["labels"] == want
    again = run({"name": "web1", "namespace": "demo", "labels": {"env": "test", "prod": True, "n": 3}})
    assert again["changed"] is False
    quoted = run({"name": "web1", "namespace": "demo", "labels": {"prod": "True"}})
    assert quoted["changed"] and stored_vm(client)["spec"]["template"]["metadata"]["labels"]["prod"] == "True"


def test_new_vm_labels_and_node_selector_keep_the_yaml_text(run, client):
    result = run(dict(BASIC, labels={"prod": True}, annotations={"n": 2}, node_selector={"ssd": True}))
    vm = stored_vm(client)
    assert result["changed"] and vm["metadata"]["labels"] == {"prod": "true"}
    assert vm["spec"]["template"]["metadata"]["labels"] == {"prod": "true"}
    assert vm["metadata"]["annotations"]["n"] == "2"
    assert vm["spec"]["template"]["spec"]["nodeSelector"] == {"ssd": "true"}
    assert run(dict(BASIC, labels={"prod": True}, annotations={"n": 2}, node_selector={"ssd": True}))["changed"] is False


def test_definition_labels_reach_the_template_too(run, client):
    definition = {"kind": "VirtualMachine", "metadata": {"name": "def1"}, "spec": {"runStrategy": "Halted", "template": {
        "metadata": {"labels": {"own": "x"}}, "spec": {"domain": {"memory": {"guest": "1Gi"}, "devices": {}}}}}}
    assert run({"namespace": "demo", "definition": definition, "labels": {"env": True}})["changed"]
    vm = stored_vm(client, "def1")
    assert vm["metadata"]["labels"] == {"env": "true"}
    assert vm["spec"]["template"]["metadata"]["labels"] == {"own": "x", "env": "true"}


# -- VMs that do not get ready: each says why, the counts are right ---------------------------------
NO_INSTANCETYPE = {"reason": "FailedFindInstancetype",
                   "message": 'virtualmachineclusterinstancetypes.instancetype.kubevirt.io "u1.small" not found'}


@pytest.fixture
def probe_at_once(monkeypatch):
    from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
    monkeypatch.setattr(waiter.VmProbe, "FIRST", 0.0)


def test_wait_fails_fast_with_the_vms_failure_and_the_summary_shows_it(run, client, probe_at_once):
    # The instancetype exists when the task checks it (preflight) and is gone when KubeVirt looks.
    client.put({"apiVersion": "instancetype.kubevirt.io/v1beta1", "kind": "VirtualMachineClusterInstancetype",
                "metadata": {"name": "u1.small"}, "spec": {"cpu": {"guest": 1}, "memory": {"guest": "1Gi"}}})
    client.failing["it3"] = NO_INSTANCETYPE
    result = run({"name": "it3", "namespace": "demo", "instancetype": "u1.small", "wait": True, "wait_timeout": 30,
                  "disks": [{"name": "root", "image": "quay.io/containerdisks/fedora:41"}]})
    assert result["failed"] is True
    assert result["msg"] == ('VirtualMachine demo/it3 cannot start: KubeVirt reports Failure=True '
                             '(FailedFindInstancetype: virtualmachineclusterinstancetypes.instancetype.kubevirt.io '
                             '"u1.small" not found); it retries only after the VM or what it refers to changes.')
    assert result["progress"][-1]["result"] == "failed"
    assert result["printable_status"] == "Stopped"
    assert result["summary"]["reason"].startswith("FailedFindInstancetype: ")
    assert [c["type"] for c in result["summary"]["conditions_not_ok"]] == ["Ready", "Failure"]


def test_wait_timeout_of_a_vm_without_vmi_describes_the_vm(run, client):
    client.failing["it3"] = dict(NO_INSTANCETYPE, reason="UnsupportedSyncError")  # a Failure that may pass
    result = run({"name": "it3", "namespace": "demo", "memory": "1Gi", "wait": True, "wait_timeout": 1,
                  "disks": [{"name": "root", "image": "quay.io/containerdisks/fedora:41"}]})
    assert result["failed"] is True and "does not exist" not in result["msg"]
    assert ("last seen: it3 has no VirtualMachineInstance; its VirtualMachine: status Stopped, conditions "
            "Failure=True (UnsupportedSyncError: ") in result["msg"]
    assert result["summary"]["reason"].startswith("UnsupportedSyncError: ")


def test_bulk_counts_the_vms_not_ready_and_each_entry_says_why(run, client, probe_at_once):
    client.unschedulable.update({"b", "c", "d"})
    client.failing["e"] = NO_INSTANCETYPE
    result = run({"namespace": "fleet", "memory": "1Gi", "vms": ["a", "b", "c", "d", "e"], "wait": True,
                  "wait_timeout": 1, "disks": [{"name": "root", "image": "quay.io/containerdisks/fedora:41"}]})
    assert result["failed"] is True
    assert result["msg"].startswith("4 of 5 VMs not ready after 1s: fleet/b: VirtualMachine fleet/b is not ready "
                                    "after 1s; last seen: phase Scheduling, conditions PodScheduled=False "
                                    "(Unschedulable: 0/1 nodes are available: 1 Insufficient memory.) | fleet/c: ")
    assert "fleet/e: VirtualMachine fleet/e cannot start: KubeVirt reports Failure=True (FailedFindInstancetype" \
        in result["msg"]
    by_name = {r["name"]: r for r in result["results"]}
    assert "failed" not in by_name["a"] and by_name["a"]["ready"] is True
    for name in "bcde":
        assert by_name[name]["failed"] is True and by_name[name]["msg"].startswith("VirtualMachine fleet/%s " % name)
        assert by_name[name]["changed"] is True
    assert by_name["e"]["printable_status"] == "Stopped"
    assert by_name["e"]["summary"]["reason"].startswith("FailedFindInstancetype: ")
    assert result["progress"][-1]["waited_for"] == "5 VirtualMachines in fleet to be ready"


def test_infer_from_volume_keeps_what_kubevirt_inferred(run, client):
    args = {"name": "web1", "namespace": "demo",
            "disks": [{"name": "root", "image": "quay.io/containerdisks/fedora:41"}],
            "instancetype": {"infer_from_volume": "root"}, "preference": {"infer_from_volume": "root"}}
    first = run(dict(args))
    assert first["changed"] is True
    vm = stored_vm(client)
    assert vm["spec"]["instancetype"] == {"inferFromVolume": "root"}
    # KubeVirt's VM mutator: the inferred name and kind replace the matcher; the Ignore policy may drop one
    vm["spec"]["instancetype"] = {"name": "u1.small", "kind": "VirtualMachineClusterInstancetype"}
    del vm["spec"]["preference"]
    second = run(dict(args))
    assert second["changed"] is False
    assert stored_vm(client)["spec"]["instancetype"] == {"name": "u1.small",
                                                         "kind": "VirtualMachineClusterInstancetype"}
    assert "preference" not in stored_vm(client)["spec"]


def _live_update_controller(client):
    """KubeVirt with LiveUpdate: a memory / sockets change of a running VM is no RestartRequired."""
    def control(obj, template_changed=False):
        stored = client.store[("VirtualMachine", obj["metadata"]["namespace"], obj["metadata"]["name"])]
        # processed at once (desiredGeneration reached), no RestartRequired; the template-change wait sees it
        stored["status"] = {k: v for k, v in (stored.get("status") or {}).items() if k != "conditions"}
        stored["status"]["desiredGeneration"] = 10 ** 6
        client.watch_script.insert(0, [("ADDED", json.loads(json.dumps(stored))), BOOKMARK])
    client._control = control


BOOKMARK = ("BOOKMARK", {"metadata": {"resourceVersion": "998", "annotations": {"k8s.io/initial-events-end": "true"}}})


def _vmi_with(client, guest):
    vmi = client.store[("VirtualMachineInstance", "demo", "web1")]
    vmi["status"]["memory"] = {"guestAtBoot": "1Gi", "guestCurrent": guest, "guestRequested": guest}
    vmi["status"]["currentCPUTopology"] = {"sockets": 1, "cores": 1, "threads": 1}
    return vmi


def test_live_resize_is_waited_for_until_the_vmi_has_the_memory(run, client):
    run(dict(BASIC, wait=True))
    vmi = _vmi_with(client, "1Gi")
    _live_update_controller(client)
    done = json.loads(json.dumps(vmi))
    done["status"]["memory"]["guestCurrent"] = "2Gi"
    client.watch_script = [[("ADDED", vmi), BOOKMARK, ("MODIFIED", done)]]
    result = run(dict(BASIC, memory="2Gi"))
    assert result["changed"] is True and result["restart_required"] is False
    assert result["live_resize"] == ["memory 1Gi -> 2Gi"]
    assert "live resize of VirtualMachine demo/web1" in result["progress"][-1]["waited_for"]
    assert result["progress"][-1]["result"] == "ok"


def test_live_resize_that_kubevirt_reports_failed_fails_the_task(run, client):
    run(dict(BASIC, wait=True))
    vmi = _vmi_with(client, "1Gi")
    _live_update_controller(client)
    failed = json.loads(json.dumps(vmi))
    failed["status"]["conditions"] = [{"type": "HotMemoryChange", "status": "False",
                                       "message": "memory hotplug failed, the VM configuration is not supported"}]
    client.watch_script = [[("ADDED", vmi), BOOKMARK, ("MODIFIED", failed)]]
    result = run(dict(BASIC, memory="2Gi"))
    assert result["failed"] is True
    assert result["msg"] == ("The live resize of VirtualMachine demo/web1 failed: memory hotplug failed, the VM "
                             "configuration is not supported; restart the VM with vm_power to apply the change.")


def test_live_resize_timeout_says_the_vmi_cannot_migrate(run, client):
    run(dict(BASIC, wait=True))
    vmi = _vmi_with(client, "1Gi")
    vmi["status"]["conditions"] = [{"type": "LiveMigratable", "status": "False", "reason": "DisksNotLiveMigratable",
                                    "message": "cannot migrate VMI: PVC root is not shared"}]
    _live_update_controller(client)
    client.watch_script = [[("ADDED", vmi), BOOKMARK]]
    result = run(dict(BASIC, memory="2Gi", wait_timeout=1))
    assert result["failed"] is True
    assert "Timed out after 1s waiting for the live resize of VirtualMachine demo/web1" in result["msg"]
    assert "still to do: web1 memory 1Gi -> 2Gi" in result["msg"]
    assert "these VMIs can't migrate: web1 (cannot migrate VMI: PVC root is not shared)" in result["msg"]
