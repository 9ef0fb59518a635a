import json

import pytest
from modhelp import run_module
from opsfakes import OpsClient, warnings_text

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import client as kclient
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import connection as kconn
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows import volume as volume_flow
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError, WaitFailed
from ansible_collections.virtops.kubevirt.plugins.modules import volume

BASE = {"storage_api": "storage", "source": None, "access_modes": None, "storage_class": None,
        "volume_mode": None, "labels": None, "annotations": None}


def params(**kw):
    return dict(BASE, **kw)


# -- builders ------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, expected", [
    (None, {"source": {"blank": {}}}),
    ({"blank": True}, {"source": {"blank": {}}}),
    ({"http": {"url": "https://x.example.com/a.qcow2", "secret_ref": "creds", "cert_config_map": "ca"}},
     {"source": {"http": {"url": "https://x.example.com/a.qcow2", "secretRef": "creds", "certConfigMap": "ca"}}}),
    ({"registry": {"url": "quay.io/containerdisks/fedora:41", "pull_method": "node"}},
     {"source": {"registry": {"url": "docker://quay.io/containerdisks/fedora:41", "pullMethod": "node"}}}),
    ({"registry": {"url": "docker://quay.io/x:1"}}, {"source": {"registry": {"url": "docker://quay.io/x:1"}}}),
    ({"pvc": {"name": "golden"}}, {"source": {"pvc": {"namespace": "demo", "name": "golden"}}}),
    ({"pvc": {"name": "golden", "namespace": "images"}}, {"source": {"pvc": {"namespace": "images", "name": "golden"}}}),
    ({"upload": True}, {"source": {"upload": {}}}),
    ({"data_source": {"name": "fedora", "namespace": "os-images"}},
     {"sourceRef": {"kind": "DataSource", "name": "fedora", "namespace": "os-images"}}),
])
def test_datavolume_sources(source, expected):
    dv = volume_flow.build_datavolume(params(size="2Gi", source=source), "d1", "demo")
    assert dv["apiVersion"] == "cdi.kubevirt.io/v1beta1" and dv["kind"] == "DataVolume"
    for key, value in expected.items():
        assert dv["spec"][key] == value
    assert dv["spec"]["storage"] == {"resources": {"requests": {"storage": "2Gi"}}}


def test_datavolume_targets():
    dv = volume_flow.build_datavolume(params(size="2Gi", storage_class="fast", access_modes=["ReadWriteMany"],
                                             volume_mode="Block"), "d1", "demo")
    assert dv["spec"]["storage"] == {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "2Gi"}},
                                     "storageClassName": "fast", "volumeMode": "Block"}
    dv = volume_flow.build_datavolume(params(size="2Gi", storage_api="pvc"), "d1", "demo")
    assert "storage" not in dv["spec"]
    assert dv["spec"]["pvc"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}
    clone = volume_flow.build_datavolume(params(source={"pvc": {"name": "golden"}}), "d1", "demo")
    assert clone["spec"]["storage"] == {}


def test_pvc_builder():
    pvc = volume_flow.build_pvc(params(size="5Gi", labels={"a": 1}), "p1", "demo")
    assert pvc == {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": "p1", "namespace": "demo", "labels": {"a": "1"}},
                   "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}}
    clone = volume_flow.build_pvc(params(size="5Gi", source={"pvc": {"name": "golden"}}), "p1", "demo")
    assert clone["spec"]["dataSource"] == {"kind": "PersistentVolumeClaim", "name": "golden"}


@pytest.mark.parametrize("build, kw, message", [
    (volume_flow.build_datavolume, {"size": "2GB"}, "size '2GB' is not a Kubernetes quantity; did you mean '2Gi'?"),
    (volume_flow.build_datavolume, {}, "size is required to create a DataVolume"),
    (volume_flow.build_datavolume, {"storage_api": "pvc", "source": {"pvc": {"name": "x"}}}, "size is required"),
    (volume_flow.build_datavolume, {"size": "1Gi", "source": {"http": {"url": "ftp://x/a"}}},
     "must start with http:// or https://"),
    (volume_flow.build_datavolume, {"size": "1Gi", "source": {"registry": {"url": "https://quay.io/x"}}},
     "must be an image such as"),
    (volume_flow.build_datavolume, {"size": "1Gi", "source": {"blank": True, "upload": True}}, "give exactly one of"),
    (volume_flow.build_datavolume, {"size": "100"}, "is only 100 bytes"),
    (volume_flow.build_pvc, {"size": "1Gi", "source": {"registry": {"url": "quay.io/x"}}},
     "source.registry needs kind: datavolume"),
    (volume_flow.build_pvc, {}, "size is required to create a PVC"),
    (volume_flow.build_pvc, {"size": "1Gi", "storage_api": "pvc"}, "storage_api applies to kind: datavolume only"),
    (volume_flow.build_pvc, {"size": "1Gi", "source": {"pvc": {"name": "x", "namespace": "other"}}},
     "a PVC can clone a PVC of its own namespace only"),
])
def test_builder_errors(build, kw, message):
    with pytest.raises(InputError) as exc:
        build(params(**kw), "v1", "demo")
    assert message in str(exc.value)


# -- comparison ----------------------------------------------------------------------------------
def test_differences_ignore_server_defaults_and_equal_quantities():
    want = {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1Gi"}}}}
    have = {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1024Mi"}},
                                                 "storageClassName": "lab-local"}}
    assert volume_flow.differences(want, have) == []


def test_differences_describe_what_differs():
    want = {"source": {"http": {"url": "https://b"}}, "storage": {"resources": {"requests": {"storage": "3Gi"}}}}
    have = {"source": {"http": {"url": "https://a"}}, "storage": {"resources": {"requests": {"storage": "2Gi"}}}}
    diffs = volume_flow.differences(want, have)
    assert diffs == [("spec.source.http.url", "https://b", "https://a"),
                     ("spec.storage.resources.requests.storage", "3Gi", "2Gi")]
    assert volume_flow.describe_differences(diffs) == ("spec.source.http.url is 'https://a', the task asks 'https://b'; "
                                                       "spec.storage.resources.requests.storage is '2Gi', the task asks "
                                                       "'3Gi'")


@pytest.mark.parametrize("want, have, grow", [("2Gi", "1Gi", "2Gi"), ("1Gi", "2Gi", None), ("1Gi", "1Gi", None)])
def test_pvc_growth(want, have, grow):
    diffs = volume_flow.differences({"resources": {"requests": {"storage": want}}},
                                    {"resources": {"requests": {"storage": have}}})
    assert volume_flow.pvc_growth(diffs) == grow


# -- the DataVolume wait -------------------------------------------------------------------------
def dv(phase, progress="N/A", restarts=0, message=None):
    conds = []
    if message:
        conds.append({"type": "Running", "status": "False", "reason": "Error", "message": message})
    return {"metadata": {"name": "d1"}, "status": {"phase": phase, "progress": progress, "restartCount": restarts,
                                                   "conditions": conds}}


def test_dv_check_records_phases_and_progress():
    record = {}
    ticks = iter(range(100))
    check = volume_flow.dv_check("d1", "demo", 3, record, clock=lambda: next(ticks))
    for state in (dv("Pending"), dv("ImportScheduled"), dv("ImportInProgress", "12.50%"),
                  dv("ImportInProgress", "45.12%")):
        assert check({"d1": state}) is False
    assert check({"d1": dv("Succeeded", "100.0%")}) is True
    assert [p["phase"] for p in record["phases"]] == ["Pending", "ImportScheduled", "ImportInProgress", "Succeeded"]
    # each phase: the second it was first seen and the progress then, plus the last progress seen in it
    assert record["phases"][2] == {"phase": "ImportInProgress", "seconds": 3, "progress": "12.50%",
                                   "last_progress": "45.12%"}
    assert "progress" not in record["phases"][0] and record["progress"] == "100.0%"


def test_dv_check_phase_first_seen_mid_import_keeps_its_own_time_and_progress():
    """A DataVolume already importing when the wait starts: its phase is seen at once with the progress it
    had then; the progress reached later is last_progress, not the progress 'at 0.02s'."""
    record = {}
    now = [100.0]
    check = volume_flow.dv_check("d1", "demo", 3, record, clock=lambda: now[0], start=100.0)
    now[0] = 100.02
    check({"d1": dv("ImportInProgress", "37.00%")})
    now[0] = 103.5
    check({"d1": dv("ImportInProgress", "99.92%")})
    now[0] = 104.0
    assert check({"d1": dv("Succeeded", "100.0%")}) is True
    assert record["phases"] == [
        {"phase": "ImportInProgress", "seconds": 0.02, "progress": "37.00%", "last_progress": "99.92%"},
        {"phase": "Succeeded", "seconds": 4.0, "progress": "100.0%"}]


@pytest.mark.parametrize("value", ["N/A", "", None, "abc%", "250.0%", "-1%"])
def test_dv_check_keeps_no_bogus_progress(value):
    record = {}
    volume_flow.dv_check("d1", "demo", 3, record)({"d1": dv("ImportInProgress", value)})
    assert "progress" not in record["phases"][0] and record.get("progress") is None


@pytest.mark.parametrize("phase", ["WaitForFirstConsumer", "PendingPopulation", "UploadReady"])
def test_dv_check_parked_phases_end_the_wait(phase):
    record = {}
    assert volume_flow.dv_check("d1", "demo", 3, record)({"d1": dv(phase)}) is True
    assert record["parked"] == phase


def test_dv_check_fails_on_restarts_with_the_message():
    check = volume_flow.dv_check("d1", "demo", 1, {})
    assert check({"d1": dv("ImportInProgress", restarts=1, message="dial tcp: no such host")}) is False
    with pytest.raises(WaitFailed) as exc:
        check({"d1": dv("ImportInProgress", restarts=2, message="dial tcp: no such host")})
    assert str(exc.value) == ("The import into DataVolume demo/d1 is failing: its importer restarted 2 times "
                              "(max_restarts 1), phase ImportInProgress: dial tcp: no such host; check the source "
                              "URL, its secret and certificate, then delete the DataVolume or fix the source.")
    assert volume_flow.dv_check("d1", "demo", -1, {})({"d1": dv("ImportInProgress", restarts=50)}) is False


def test_dv_check_failed_phase():
    with pytest.raises(WaitFailed) as exc:
        volume_flow.dv_check("d1", "demo", 3, {})({"d1": dv("Failed", restarts=0, message="bad image")})
    assert "DataVolume demo/d1 failed (phase Failed, restartCount 0): bad image" in str(exc.value)


def test_summaries():
    obj = volume_flow.build_datavolume(params(size="2Gi", source={"http": {"url": "https://a/b"}}), "d1", "demo")
    obj["status"] = {"phase": "ImportInProgress", "progress": "45.12%", "restartCount": 0}
    pvc = {"spec": {"storageClassName": "lab-local", "accessModes": ["ReadWriteOnce"]},
           "status": {"capacity": {"storage": "2Gi"}}}
    summary = volume_flow.summarize(obj, pvc)
    assert summary["progress"] == "45.12%" and summary["source"] == "http" and summary["ready"] is False
    assert summary["capacity"] == "2Gi" and summary["storage_class"] == "lab-local"
    claim = volume_flow.build_pvc(params(size="1Gi"), "p1", "demo")
    claim["status"] = {"phase": "Bound"}
    assert volume_flow.summarize(claim)["bound"] is True


# -- the module ----------------------------------------------------------------------------------
@pytest.fixture
def client():
    return OpsClient()


@pytest.fixture
def run(client, monkeypatch, capsys):
    def _run(args, **kw):
        return run_module(volume, dict({"name": "d1", "namespace": "demo"}, **args), client, monkeypatch, capsys,
                          **kw)
    return _run


HTTP = {"size": "2Gi", "source": {"http": {"url": "https://images.example.com/f.qcow2"}}}


def succeed(client, name="d1"):
    stored = client.store[("DataVolume", "demo", name)]
    stored["status"] = {"phase": "Succeeded", "progress": "100.0%", "restartCount": 0}


def test_create_wait_and_idempotence(run, client):
    created = run(dict(HTTP))
    assert created["changed"] and created["method"] == "create"
    assert created["volume"]["spec"]["source"]["http"]["url"] == "https://images.example.com/f.qcow2"
    succeed(client)
    waited = run(dict(HTTP, wait=True))
    assert waited["changed"] is False and waited["method"] == "none"
    assert waited["summary"]["phase"] == "Succeeded" and waited["summary"]["progress"] == "100.0%"
    assert waited["progress"][0]["phases"][-1]["phase"] == "Succeeded"
    assert run(dict(HTTP), check_mode=True)["changed"] is False


def test_check_mode_creates_nothing(run, client):
    result = run(dict(HTTP), check_mode=True)
    assert result["changed"] is True and ("DataVolume", "demo", "d1") not in client.store


def test_immutable_spec_is_an_error_unless_recreate(run, client):
    run(dict(HTTP))
    result = run(dict(HTTP, size="3Gi"))
    assert result["failed"] and result["changed"] is False
    assert result["msg"] == ("DataVolume demo/d1 exists with another spec and a DataVolume's spec is immutable: "
                             "spec.storage.resources.requests.storage is '2Gi', the task asks '3Gi'; set recreate: "
                             "true to delete and recreate it (its data is lost), or change the task to match.")
    checked = run(dict(HTTP, size="3Gi", recreate=True), check_mode=True)
    assert checked["changed"] and checked["method"] == "recreate"
    assert client.store[("DataVolume", "demo", "d1")]["spec"]["storage"]["resources"]["requests"]["storage"] == "2Gi"
    recreated = run(dict(HTTP, size="3Gi", recreate=True))
    assert recreated["changed"] and recreated["method"] == "recreate"
    assert client.store[("DataVolume", "demo", "d1")]["spec"]["storage"]["resources"]["requests"]["storage"] == "3Gi"


def test_labels_are_merged_with_a_patch_and_diff(run, client):
    run(dict(HTTP))
    result = run(dict(HTTP, labels={"tier": "gold"}), diff=True)
    assert result["changed"] and result["method"] == "patch"
    assert "MERGE" in [c[0] for c in client.calls if c[1] == "DataVolume"]
    assert [c[0] for c in client.calls if c[1] == "DataVolume"].count("APPLY") == 1
    assert result["diff"]["after"]["metadata"]["labels"] == {"tier": "gold"}


def test_pvc_grows_not_shrinks(run, client):
    run({"kind": "pvc", "size": "1Gi"})
    grown = run({"kind": "pvc", "size": "2Gi"})
    assert grown["changed"] and grown["method"] == "patch"
    assert client.store[("PersistentVolumeClaim", "demo", "d1")]["spec"]["resources"]["requests"]["storage"] == "2Gi"
    shrunk = run({"kind": "pvc", "size": "1Gi"})
    assert shrunk["failed"] and "immutable except for growing its size" in shrunk["msg"]


def test_datavolume_over_a_plain_pvc_is_refused(run, client):
    client.put({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "d1", "namespace": "demo"},
                "spec": {}})
    result = run(dict(HTTP))
    assert result["failed"] and "belongs to no DataVolume" in result["msg"]


def test_absent_deletes_only_the_named_object(run, client):
    run(dict(HTTP))
    client.put({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {
        "name": "d1", "namespace": "demo", "ownerReferences": [{"kind": "DataVolume", "name": "d1"}]}, "spec": {}})
    refused = run({"kind": "pvc", "state": "absent"})
    assert refused["failed"] and "belongs to DataVolume demo/d1" in refused["msg"]
    checked = run({"state": "absent"}, check_mode=True)
    assert checked["changed"] and ("DataVolume", "demo", "d1") in client.store
    deleted = run({"state": "absent"})
    assert deleted["changed"] and deleted["method"] == "delete"
    assert ("DataVolume", "demo", "d1") not in client.store
    assert run({"state": "absent"})["changed"] is False


def test_absent_warns_when_a_vmi_uses_it(run, client):
    run({"kind": "pvc", "size": "1Gi"})
    client.put({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                "metadata": {"name": "web1", "namespace": "demo"},
                "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "d1"}}]}})
    result = run({"kind": "pvc", "state": "absent"})
    assert result["changed"] and "used by VirtualMachineInstance web1" in warnings_text(result)


def test_wffc_pvc_ends_the_wait_with_a_warning(run, client):
    client.put({"apiVersion": "volume_flow.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "wffc"},
                "volumeBindingMode": "WaitForFirstConsumer"})
    result = run({"kind": "pvc", "size": "1Gi", "storage_class": "wffc", "wait": True, "wait_timeout": 5})
    assert result["changed"] and "WaitForFirstConsumer" in warnings_text(result)


def test_failed_import_fails_the_task(run, client):
    run(dict(HTTP))
    client.store[("DataVolume", "demo", "d1")]["status"] = {
        "phase": "ImportInProgress", "progress": "N/A", "restartCount": 4,
        "conditions": [{"type": "Running", "status": "False", "reason": "Error", "message": "no such host"}]}
    result = run(dict(HTTP, wait=True))
    assert result["failed"] and "importer restarted 4 times (max_restarts 3)" in result["msg"]
    assert result["summary"]["restart_count"] == 4
    assert result["progress"][-1]["result"] == "failed"


def test_client_delete_dry_run_is_in_the_body():
    """With a DeleteOptions body the API server ignores ?dryRun: the body must carry it."""
    sent = []
    conn = kconn.Connection()
    conn.host = "https://h:6443"
    client = kclient.Client(conn, pool=object())
    client.request = lambda method, path, query=None, body=None, **kw: sent.append((method, query, body)) or {}
    client.delete(res.DATAVOLUME, "d1", "demo", dry_run=True)
    method, query, body = sent[0]
    assert method == "DELETE" and body["dryRun"] == ["All"] and query["dryRun"] == "All"
    client.delete(res.DATAVOLUME, "d1", "demo")
    assert "dryRun" not in sent[1][2]
    assert json.dumps(sent[1][2])


def test_an_existing_volume_needs_no_size(run, client):
    run(dict(HTTP))
    assert run({"source": HTTP["source"]})["changed"] is False
    run({"name": "p1", "kind": "pvc", "size": "1Gi", "access_modes": ["ReadWriteMany"]})
    same = run({"name": "p1", "kind": "pvc"})
    assert same["changed"] is False and same["summary"]["access_modes"] == ["ReadWriteMany"]
    missing = run({"name": "p2", "kind": "pvc"})
    assert missing["failed"] and "size is required to create a PVC" in missing["msg"]
    assert not [c for c in client.calls if c[2].get("name") == "p2" and c[0] != "GET"]


# -- checked before the first write (issue 14) -------------------------------------------------------
def put_storage_class(client, name):
    client.put({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name}})


def test_unknown_storage_class_fails_before_creating(run, client):
    put_storage_class(client, "lab-local")
    result = run(dict(HTTP, storage_class="nosuch"))
    assert result["failed"] and result["msg"] == (
        "StorageClass 'nosuch' (storage_class of DataVolume demo/d1) does not exist; use one of lab-local, or leave "
        "storage_class out for the cluster's default storage class.")
    assert ("DataVolume", "demo", "d1") not in client.store
    assert "APPLY" not in [c[0] for c in client.calls]
    checked = run(dict(HTTP, storage_class="nosuch"), check_mode=True)
    assert checked["changed"] and "StorageClass 'nosuch'" in warnings_text(checked)
    assert run({"kind": "pvc", "size": "1Gi", "storage_class": "nosuch"})["failed"]
    assert run(dict(HTTP, storage_class="lab-local"))["changed"]


def test_recreate_checks_the_storage_class_before_deleting(run, client):
    put_storage_class(client, "lab-local")
    run(dict(HTTP, storage_class="lab-local"))
    result = run(dict(HTTP, size="3Gi", storage_class="nosuch", recreate=True))
    assert result["failed"] and "StorageClass 'nosuch'" in result["msg"]
    assert "DELETE" not in [c[0] for c in client.calls]


def test_forbidden_storage_class_read_is_not_a_failure(run, client, monkeypatch):
    real = client.get_or_none

    def get_or_none(resource, name, namespace=None):
        if resource.kind == "StorageClass":
            raise kclient.ApiError(403, "GET", "/sc", {"reason": "Forbidden", "message": "nope"})
        return real(resource, name, namespace)
    monkeypatch.setattr(client, "get_or_none", get_or_none)
    result = run(dict(HTTP, storage_class="fast"))
    assert result["changed"] and "'fast'" not in warnings_text(result)


def test_label_values_keep_the_yaml_text_and_stay_idempotent(run, client):
    first = run(dict(HTTP, labels={"prod": True, "n": 3}, annotations={"debug": False}))
    meta = client.store[("DataVolume", "demo", "d1")]["metadata"]
    assert meta["labels"] == {"prod": "true", "n": "3"} and meta["annotations"] == {"debug": "false"}
    assert first["changed"]
    assert run(dict(HTTP, labels={"prod": True, "n": 3}, annotations={"debug": False}))["changed"] is False


@pytest.mark.parametrize("timeout", [0, -5])
def test_wait_timeout_must_be_positive(run, client, timeout):
    result = run(dict(HTTP, wait=True, wait_timeout=timeout))
    assert result["failed"] and result["msg"] == "wait_timeout must be a positive number of seconds, got %d." % timeout
    assert client.calls == []
