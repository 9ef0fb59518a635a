"""vm_clone and vm_export: builders, KubeVirt's rules, checks before the first write, idempotence, waits, downloads."""
import base64
import hashlib
import io

import pytest
from kvfakes import FakeClient
from modhelp import run_module

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError, KubevirtError, WaitFailed
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows import vm_clone as clone_flow
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows import vm_export as export_flow
from ansible_collections.virtops.kubevirt.plugins.modules import vm_clone, vm_export

WRITES = {"apply", "create", "merge_patch", "json_patch", "replace", "delete", "update_with_retry"}


def writes(client):
    return [c for c in client.calls if c[0] in WRITES]


def golden(name="golden", ns="demo", snapshottable=True, ifaces=("default",)):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name, "namespace": ns},
            "spec": {"runStrategy": "Halted", "template": {"spec": {
                "domain": {"devices": {"interfaces": [{"name": i, "masquerade": {}} for i in ifaces]}},
                "volumes": [{"name": "root", "dataVolume": {"name": name + "-root"}},
                            {"name": "ci", "cloudInitNoCloud": {"userData": "#cloud-config"}}]}}},
            "status": {"volumeSnapshotStatuses": [{"name": "root", "enabled": snapshottable, "reason": None if
                                                   snapshottable else "No VolumeSnapshotClass: Volume snapshots are "
                                                   "not configured for this StorageClass [lab-nosnap] [root]"}]}}


# -- vm_clone: builders -----------------------------------------------------------------------------
def clone_params(**kw):
    base = dict(vm="golden", snapshot=None, target="web1", new_macs=None, new_smbios_serial=None, labels=None,
                label_filters=None, annotation_filters=None, template_label_filters=None,
                template_annotation_filters=None)
    return dict(base, **kw)


def test_clone_build_is_kubevirts_spec():
    obj = clone_flow.build(clone_params(new_macs={"default": "02:00:00:aa:bb:01"}, new_smbios_serial="s1",
                                        label_filters=["*", "!golden"], template_annotation_filters=["app/*"]),
                           "c1", "demo")
    assert obj["apiVersion"] == "clone.kubevirt.io/v1beta1" and obj["kind"] == "VirtualMachineClone"
    assert obj["spec"] == {
        "source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "golden"},
        "target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "web1"},
        "newMacAddresses": {"default": "02-00-00-aa-bb-01"}, "newSMBiosSerial": "s1",
        "labelFilters": ["*", "!golden"], "template": {"annotationFilters": ["app/*"]}}
    snap = clone_flow.build(clone_params(vm=None, snapshot="s1"), "c1", "demo")
    assert snap["spec"]["source"] == {"apiGroup": "snapshot.kubevirt.io", "kind": "VirtualMachineSnapshot",
                                      "name": "s1"}


@pytest.mark.parametrize("kw, text", [
    (dict(vm=None), "needs what to clone: vm or snapshot"),
    (dict(target=None), "target (the name of the new VM) is required"),
    (dict(target="golden"), "is the source VM's own name"),
    (dict(label_filters=["a*b"]), "label_filters: filter 'a*b' may have * only at its end"),
    (dict(annotation_filters=["a!b"]), "annotation_filters: filter 'a!b' may have ! only at its start"),
    (dict(template_label_filters=["!"]), "template_label_filters: a lone ! is not a filter"),
    (dict(new_macs={"default": "zz"}), "new_macs.default 'zz' is not a MAC address"),
    (dict(target="Bad_Name"), "target"),
])
def test_clone_input_errors(kw, text):
    with pytest.raises(InputError) as err:
        clone_flow.build(clone_params(**kw), "c1", "demo")
    assert text in str(err.value)


def test_clone_spec_differences_name_what_differs():
    want = clone_flow.build(clone_params(), "c1", "demo")["spec"]
    have = dict(want, target={"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "other"})
    assert clone_flow.spec_differences(want, want) == []
    assert clone_flow.spec_differences(want, have) == [
        "target is VirtualMachine other, the task asks VirtualMachine web1"]


def test_clone_wait_records_phases_and_fails_on_failed():
    record, clock = {}, iter([0.0, 0.5, 1.0, 2.0, 3.0]).__next__
    check = clone_flow.succeeded_check("c1", "demo", record, clock=clock, start=0.0)

    def obj(phase, reason="Still processing", progressing="True"):
        return {"c1": {"metadata": {"name": "c1"}, "status": {"phase": phase, "conditions": [
            {"type": "Ready", "status": "False", "reason": reason},
            {"type": "Progressing", "status": progressing,
             "reason": "Pending" if progressing == "False" else reason}]}}}

    assert not check(obj(None, "Source doesnt exist: VirtualMachine demo/golden", "False"))
    assert not check(obj("SnapshotInProgress"))
    assert not check(obj("SnapshotInProgress"))
    assert check({"c1": {"metadata": {"name": "c1"}, "status": {"phase": "Succeeded"}}})
    assert [p["phase"] for p in record["phases"]] == ["Pending", "SnapshotInProgress", "Succeeded"]
    assert record["phases"][0]["reason"] == "Source doesnt exist: VirtualMachine demo/golden"
    with pytest.raises(WaitFailed) as err:
        check(obj("Failed", "Clone of source with backendstorage is not supported: VM demo/golden", "False"))
    assert str(err.value) == ("VirtualMachineClone demo/c1 failed: Clone of source with backendstorage is not "
                              "supported: VM demo/golden.")


# -- vm_clone: the module ---------------------------------------------------------------------------
def run_clone(client, monkeypatch, capsys, check_mode=False, **kw):
    args = dict(name="web1-clone", namespace="demo", vm="golden", target="web1", wait=False)
    args.update(kw)
    return run_module(vm_clone, args, client, monkeypatch, capsys, check_mode=check_mode)


def test_clone_into_a_vm_that_exists_fails_before_any_write(monkeypatch, capsys):
    client = FakeClient(namespace="demo")
    client.put(golden())
    client.put(golden("web1"))
    result = run_clone(client, monkeypatch, capsys)
    assert result["failed"]
    assert result["msg"] == ("VirtualMachine demo/web1 exists already, so the clone can't create it; choose another "
                             "target or delete that VM first.")
    assert writes(client) == []


@pytest.mark.parametrize("vm, kw, text", [
    (None, {}, "VirtualMachine demo/golden does not exist, so there is nothing to clone (vm: golden)."),
    (golden(snapshottable=False), {}, "VirtualMachine demo/golden can't be cloned: KubeVirt clones through a snapshot "
                                      "and these volumes can't be snapshotted: root (No VolumeSnapshotClass"),
    (golden(), {"new_macs": {"eth1": "02:00:00:00:00:09"}}, "new_macs names eth1, which VirtualMachine demo/golden "
                                                            "has no interface of (its interfaces: default)."),
])
def test_clone_checks_before_any_write(vm, kw, text, monkeypatch, capsys):
    client = FakeClient(namespace="demo")
    if vm:
        client.put(vm)
    result = run_clone(client, monkeypatch, capsys, **kw)
    assert result["failed"] and text in result["msg"]
    assert writes(client) == []


BOOKMARK = ("BOOKMARK", {"metadata": {"resourceVersion": "998", "annotations": {"k8s.io/initial-events-end": "true"}}})


def just_created(name="golden"):
    """A VM right after its creation: KubeVirt has not seen its DataVolume template's claim yet."""
    vm = golden(name)
    vm["spec"]["dataVolumeTemplates"] = [{"metadata": {"name": name + "-root"}, "spec": {"storage": {}}}]
    vm["status"]["volumeSnapshotStatuses"] = [{"name": "root", "enabled": False, "reason": "PVC not found"}]
    return vm


def test_clone_waits_until_kubevirt_has_seen_the_claims_being_made(monkeypatch, capsys):
    client = FakeClient(namespace="demo")
    client.put(just_created())
    client.watch_script = [[("ADDED", just_created()), BOOKMARK, ("MODIFIED", golden())]]
    made = run_clone(client, monkeypatch, capsys, wait_timeout=5)
    assert made["changed"] and made["method"] == "create", made.get("msg")
    assert made["progress"][0]["waited_for"].startswith("KubeVirt to see the claim golden-root of VirtualMachine "
                                                        "demo/golden") and made["progress"][0]["result"] == "ok"


def test_clone_of_a_vm_whose_claims_kubevirt_never_sees_says_how_long_it_waited(monkeypatch, capsys):
    client = FakeClient(namespace="demo")
    client.put(just_created())
    client.watch_script = [[("ADDED", just_created()), BOOKMARK]]
    out = run_clone(client, monkeypatch, capsys, wait_timeout=1)
    assert out["failed"] and writes(client) == []
    assert out["msg"] == ("VirtualMachine demo/golden can't be cloned: KubeVirt clones through a snapshot and these "
                          "volumes can't be snapshotted: root (PVC not found) (after waiting 1s for KubeVirt to see "
                          "the claim golden-root of VirtualMachine demo/golden).")


def test_clone_of_a_vm_whose_claim_nothing_makes_is_refused_at_once(monkeypatch, capsys):
    vm = just_created()
    del vm["spec"]["dataVolumeTemplates"]      # a DataVolume volume with no template, no DataVolume, no claim
    client = FakeClient(namespace="demo")
    client.put(vm)
    out = run_clone(client, monkeypatch, capsys)
    assert out["failed"] and "root (PVC not found)." in out["msg"] and "after waiting" not in out["msg"]
    assert not [c for c in client.calls if c[0] == "WATCH"]


def test_clone_create_check_mode_and_idempotence(monkeypatch, capsys):
    client = FakeClient(namespace="demo")
    client.put(golden())
    checked = run_clone(client, monkeypatch, capsys, check_mode=True)
    assert checked["changed"] and checked["method"] == "create"
    assert client.get_or_none(clone_flow.CLONE, "web1-clone", "demo") is None
    made = run_clone(client, monkeypatch, capsys)
    assert made["changed"] and made["method"] == "create" and made["target_vm"] == "web1"
    stored = client.get(clone_flow.CLONE, "web1-clone", "demo")
    stored["status"] = {"phase": "Succeeded", "targetName": "web1",
                        "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}]}
    client.put(stored)
    client.put(golden("web1"))   # the clone made it: the target existing is no error any more
    again = run_clone(client, monkeypatch, capsys)
    assert not again["changed"] and again["method"] == "none" and again["clone"]["succeeded"]
    other = run_clone(client, monkeypatch, capsys, target="web9")
    assert other["failed"] and "exists with another spec (target is VirtualMachine web1" in other["msg"]


# -- vm_export --------------------------------------------------------------------------------------
def export_params(**kw):
    base = dict(vm="db1", snapshot=None, pvc=None, token_secret=None, ttl=None, labels=None)
    return dict(base, **kw)


def test_export_build_and_sources():
    obj = export_flow.build(export_params(ttl="1h30m", token_secret="tok"), "e1", "demo")
    assert obj["apiVersion"] == "export.kubevirt.io/v1beta1"
    assert obj["spec"] == {"source": {"kind": "VirtualMachine", "name": "db1", "apiGroup": "kubevirt.io"},
                           "tokenSecretRef": "tok", "ttlDuration": "1h30m"}
    pvc = export_flow.build(export_params(vm=None, pvc="data"), "e1", "demo")
    assert pvc["spec"]["source"] == {"kind": "PersistentVolumeClaim", "name": "data"}   # no apiGroup, as KubeVirt asks


@pytest.mark.parametrize("ttl", ["90", "2x", "h", "", "1h30"])
def test_export_bad_ttl(ttl):
    with pytest.raises(InputError) as err:
        export_flow.check_ttl(ttl)
    assert "is not a duration" in str(err.value)


def export_obj(phase="Ready", reason="PodReady", message=None, volumes=("db1-root",)):
    base = "https://lab:1/api/export.kubevirt.io/v1beta1/namespaces/demo/virtualmachineexports/e1"
    cond = {"type": "Ready", "status": "True" if phase == "Ready" else "False", "reason": reason}
    if message:
        cond["message"] = message
    return {"apiVersion": "export.kubevirt.io/v1beta1", "kind": "VirtualMachineExport",
            "metadata": {"name": "e1", "namespace": "demo"},
            "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "db1"}},
            "status": {"phase": phase, "conditions": [cond], "tokenSecretRef": "export-token-e1",
                       "links": {"external": {"cert": "", "volumes": [{"name": v, "formats": [
                           {"format": "raw", "url": "%s/volumes/%s/disk.img" % (base, v)},
                           {"format": "gzip", "url": "%s/volumes/%s/disk.img.gz" % (base, v)}]} for v in volumes]}}}}


def test_export_summary_has_links_and_the_secret_name_only():
    summary = export_flow.summarize(export_obj())
    assert summary["token_secret"] == "export-token-e1" and summary["ready"] and summary["volumes"] == ["db1-root"]
    assert summary["links"]["external"]["volumes"][0]["formats"]["gzip"].endswith("/disk.img.gz")
    assert summary["links"]["internal"] is None


def test_export_wait_waits_while_in_use_and_fails_when_skipped():
    record = {}
    check = export_flow.ready_check("e1", "demo", record, clock=lambda: 1.0, start=0.0)
    running = export_obj("Pending", "InUse", "Virtual Machine demo/db1 is running")
    assert not check({"e1": running})
    assert record["phases"] == [{"phase": "Pending", "reason": "InUse", "seconds": 1.0,
                                 "message": "Virtual Machine demo/db1 is running"}]
    assert check({"e1": export_obj()})
    with pytest.raises(WaitFailed) as err:
        check({"e1": export_obj("Skipped", "VMNotFound", "Virtual Machine demo/db1 not found")})
    assert "was skipped by KubeVirt: Virtual Machine demo/db1 not found" in str(err.value)


def test_export_pick_volume():
    summary = export_flow.summarize(export_obj(volumes=("a", "b")))
    with pytest.raises(KubevirtError) as err:
        export_flow.pick_volume(summary, None)
    assert "has 2 volumes (a, b); name the one to download with download.volume" in str(err.value)
    assert export_flow.pick_volume(summary, "b")[0] == "b"


class FakeResponse:
    def __init__(self, body, status=200):
        self.status, self.reason = status, "OK"
        self.body = body
        self.headers = {"Content-Length": str(len(body))}
        self.data = body

    def stream(self, n):
        buf = io.BytesIO(self.body)
        return iter(lambda: buf.read(n), b"")

    def release_conn(self):
        pass


def test_download_sends_the_token_and_counts_bytes(monkeypatch):
    import urllib3
    sent = {}

    class Pool:
        def __init__(self, **kw):
            sent["ctx"] = kw.get("ssl_context")

        def request(self, method, url, headers=None, **kw):
            sent["headers"] = headers
            return FakeResponse(b"x" * 3000)

    monkeypatch.setattr(urllib3, "PoolManager", Pool)
    job = export_flow.Download("https://lab/x/disk.img", "volume a", clock=lambda: 0.0)
    out = io.BytesIO()
    sha = job.run("s3cret", "CTX", out)
    assert sent["headers"] == {"x-kubevirt-export-token": "s3cret"} and sent["ctx"] == "CTX"
    assert sha == hashlib.sha256(b"x" * 3000).hexdigest() and job.done == 3000 and job.total == 3000
    assert job.status() == "downloading volume a: 3000 of 3000 bytes (100%) in 0s"
    assert "s3cret" not in str(job.record())


def test_export_download_is_idempotent_and_never_shows_the_token(monkeypatch, capsys, tmp_path):
    import urllib3

    class Pool:
        def __init__(self, **kw):
            pass

        def request(self, method, url, headers=None, **kw):
            return FakeResponse(b"disk-bytes" * 100)

    monkeypatch.setattr(urllib3, "PoolManager", Pool)
    monkeypatch.setattr(export_flow.VmExportRunner, "tls", lambda self, link: None)
    client = FakeClient(namespace="demo")
    client.put(export_obj())
    client.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "export-token-e1", "namespace": "demo"},
                "data": {"token": base64.b64encode(b"t0ken-value").decode()}})
    dest = tmp_path / "db1.img"
    args = dict(name="e1", namespace="demo", vm="db1", wait=False, download={"dest": str(dest)})
    first = run_module(vm_export, args, client, monkeypatch, capsys)
    assert first["changed"] and first["method"] == "none" and first["download"]["changed"]
    assert dest.read_bytes() == b"disk-bytes" * 100 and first["download"]["size"] == 1000
    second = run_module(vm_export, args, client, monkeypatch, capsys, diff=True)
    assert not second["changed"] and not second["download"]["changed"]
    assert second["diff"]["before"]["download"]["sha256"] == second["diff"]["after"]["download"]["sha256"]
    assert "t0ken-value" not in str(first) + str(second)
    assert [p.name for p in tmp_path.iterdir()] == ["db1.img"]    # no partial file left


def test_export_download_of_an_export_that_is_not_ready_says_so(monkeypatch, capsys, tmp_path):
    client = FakeClient(namespace="demo")
    client.put(export_obj("Pending", "InUse", "Virtual Machine demo/db1 is running"))
    result = run_module(vm_export, dict(name="e1", namespace="demo", vm="db1", wait=False,
                                        download={"dest": str(tmp_path / "x.img")}), client, monkeypatch, capsys)
    assert result["failed"] and "is Pending, not Ready, so download can't start; set wait: true" in result["msg"]


def test_export_missing_source_and_other_spec_fail_before_any_write(monkeypatch, capsys):
    client = FakeClient(namespace="demo")
    missing = run_module(vm_export, dict(name="e2", namespace="demo", pvc="nope", wait=False), client,
                         monkeypatch, capsys)
    assert missing["msg"] == ("PersistentVolumeClaim demo/nope does not exist, so there is nothing to export "
                              "(pvc: nope).")
    client.put(export_obj())
    other = run_module(vm_export, dict(name="e1", namespace="demo", vm="db2", wait=False), client, monkeypatch, capsys)
    assert other["failed"] and "source is VirtualMachine db1, the task asks VirtualMachine db2" in other["msg"]
    assert writes(client) == []


@pytest.mark.parametrize("args, text", [
    (dict(name="e1"), "state=present needs what to export: one of vm, snapshot or pvc."),
    (dict(name="e1", vm="a", ttl="soon"), "ttl 'soon' is not a duration"),
    (dict(name="e1", state="absent", download={"dest": "/tmp/x"}), "download needs state=present"),
    (dict(name="e1", vm="a", download={"dest": "/nonexistent-dir/x.img"}), "its folder /nonexistent-dir does not "
                                                                           "exist"),
])
def test_export_input_errors_before_connecting(args, text, monkeypatch, capsys):
    client = FakeClient(namespace="demo")
    result = run_module(vm_export, args, client, monkeypatch, capsys)
    assert result["failed"] and text in result["msg"] and client.calls == []


def test_export_tls_trusts_the_exports_cert_else_the_clusters(monkeypatch):
    from types import SimpleNamespace
    seen = []
    monkeypatch.setattr(export_flow.ssl, "create_default_context", lambda **kw: seen.append(kw) or "CTX")
    monkeypatch.setattr(export_flow, "ssl_context", lambda conn: "CLUSTER-CTX")
    module = SimpleNamespace(params={}, check_mode=False, _diff=False)
    conn = SimpleNamespace(host="https://api:6443", verify=True)
    runner = export_flow.VmExportRunner(module, SimpleNamespace(conn=conn))
    assert runner.tls({"cert": "-----BEGIN CERTIFICATE-----"}) == "CTX"
    assert seen == [{"cadata": "-----BEGIN CERTIFICATE-----"}]
    assert runner.tls({"cert": ""}) == "CLUSTER-CTX" and runner.warnings == []
    conn.verify = False
    runner.tls({})
    assert runner.warnings and "not verified" in runner.warnings[0]


def test_export_of_a_vm_without_claim_disks_fails_before_any_write(monkeypatch, capsys):
    client = FakeClient(namespace="demo")
    vm = golden("web")
    vm["spec"]["template"]["spec"]["volumes"] = [{"name": "root", "containerDisk": {"image": "quay.io/x:1"}}]
    client.put(vm)
    result = run_module(vm_export, dict(name="e1", namespace="demo", vm="web", wait=False), client, monkeypatch, capsys)
    assert result["failed"] and result["msg"].startswith(
        "VirtualMachine demo/web has no PVC or DataVolume disk, so KubeVirt has nothing to export")
    assert writes(client) == []
