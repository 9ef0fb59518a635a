"""Simulator: a VirtualMachineExport serves a claim's bytes (raw and gzip) to its token only, and pauses while a
pod uses the claim; a VirtualMachineClone goes through KubeVirt's phases and events and cleans up after itself."""
import base64
import gzip
import ssl
import urllib.error
import urllib.request

from sim_helpers import cond, dv_manifest, lab, vm_manifest, wait_for  # noqa: F401

EXPORT = ("export.kubevirt.io", "v1beta1", "virtualmachineexports")
CLONE = ("clone.kubevirt.io", "v1beta1", "virtualmachineclones")


def fetch(url, cert, token=None):
    headers = {"x-kubevirt-export-token": token} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                context=ssl.create_default_context(cadata=cert), timeout=20) as resp:
        return resp.read()


def test_export_serves_the_claims_bytes_to_its_token_and_pauses_while_the_claim_is_used(lab, lab_state):
    lab.create_dv(dv_manifest("exp-d", {"blank": {}}, size="4Mi"))
    wait_for(lambda: lab.dv("exp-d").get("status", {}).get("phase") == "Succeeded", 30, what="the DataVolume")
    pv = lab.core.read_namespaced_persistent_volume_claim("exp-d", lab.ns).spec.volume_name
    image = lab_state / "volumes" / "pv" / f"{pv}.img"
    image.parent.mkdir(parents=True, exist_ok=True)
    data = b"lab-bytes" * 1000
    image.write_bytes(data)
    lab.create(*EXPORT, {"apiVersion": "export.kubevirt.io/v1beta1", "kind": "VirtualMachineExport",
                         "metadata": {"name": "exp1"}, "spec": {"source": {"kind": "PersistentVolumeClaim",
                                                                            "name": "exp-d"}}})
    wait_for(lambda: lab.get(*EXPORT, "exp1").get("status", {}).get("phase") == "Ready", 30, what="export Ready")
    status = lab.get(*EXPORT, "exp1")["status"]
    assert status["tokenSecretRef"] == "export-token-exp1" and status["serviceName"] == "virt-export-exp1"
    assert cond(lab.get(*EXPORT, "exp1"), "PVC")["reason"] == "PVCBound"
    link = status["links"]["external"]
    formats = {f["format"]: f["url"] for f in link["volumes"][0]["formats"]}
    assert sorted(formats) == ["gzip", "raw"]     # a DataVolume's claim holds a disk image
    assert status["links"]["internal"]["volumes"][0]["formats"][0]["url"] == \
        f"https://virt-export-exp1.{lab.ns}.svc/volumes/exp-d/disk.img"
    token = base64.b64decode(lab.core.read_namespaced_secret("export-token-exp1", lab.ns).data["token"]).decode()
    try:
        fetch(formats["raw"], link["cert"])
        raise AssertionError("served without a token")
    except urllib.error.HTTPError as exc:
        assert exc.code == 401
    assert fetch(formats["raw"], link["cert"], token) == data
    assert gzip.decompress(fetch(formats["gzip"], link["cert"], token)) == data
    lab.wait_event("exp1", "ExporterPodCreated", f"Created exporter pod {lab.ns}/virt-export-exp1")
    # a pod that uses the claim: the export pauses (exporter pod deleted), Pending with InUse
    lab.core.create_namespaced_pod(lab.ns, {"metadata": {"name": "user"}, "spec": {
        "nodeName": "lab-worker-0", "containers": [{"name": "c", "image": "busybox"}],
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "exp-d"}}]}})

    def paused():
        export = lab.get(*EXPORT, "exp1")
        ready = cond(export, "Ready")
        return export["status"]["phase"] == "Pending" and ready["reason"] == "InUse" and \
            ready.get("message") == f"PersistentVolumeClaim {lab.ns}/exp-d is in use"
    wait_for(paused, 30, what="the export paused")
    lab.wait_event("exp1", "ExportPaused")


def test_clone_goes_through_kubevirts_phases_and_cleans_up(lab):
    dvt = [{"metadata": {"name": "gold-root"}, "spec": {"source": {"blank": {}},
                                                        "storage": {"resources": {"requests": {"storage": "4Mi"}}}}}]
    vm = vm_manifest("gold", run_strategy="Halted", volumes=[{"name": "root", "dataVolume": {"name": "gold-root"}}],
                     data_volume_templates=dvt)
    vm["metadata"]["labels"] = {"app": "web", "golden": "true"}
    lab.create_vm(vm)
    wait_for(lambda: (lab.vm("gold").get("status", {}).get("volumeSnapshotStatuses") or [{}])[0].get("enabled"), 30,
             what="the golden VM's volume to be snapshottable")
    lab.create(*CLONE, {"apiVersion": "clone.kubevirt.io/v1beta1", "kind": "VirtualMachineClone",
                        "metadata": {"name": "c1"},
                        "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "gold"},
                                 "target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "copy"},
                                 "labelFilters": ["*", "!golden"]}})
    phases = []

    def done():
        st = lab.get(*CLONE, "c1").get("status", {})
        if st.get("phase") and (not phases or phases[-1] != st["phase"]):
            phases.append(st["phase"])
        return st.get("phase") == "Succeeded" and not st.get("restoreName")
    wait_for(done, 60, interval=0.05, what="the clone to succeed and clean up")
    assert phases[0] == "SnapshotInProgress" and phases[-1] == "Succeeded", phases
    clone = lab.get(*CLONE, "c1")
    assert clone["status"]["targetName"] == "copy"
    assert cond(clone, "Ready")["reason"] == "Ready" and cond(clone, "Progressing")["status"] == "False"
    for reason in ("SnapshotCreated", "SnapshotReady", "RestoreCreated", "RestoreReady", "TargetVMCreated", "PVCBound"):
        lab.wait_event("c1", reason)
    copy = lab.vm("copy")
    assert copy["metadata"]["labels"] == {"app": "web"} and copy["spec"]["runStrategy"] == "Halted"
    uid = clone["metadata"]["uid"]
    wait_for(lambda: all(s["metadata"]["name"] != f"tmp-snapshot-{uid}" or s["metadata"].get("deletionTimestamp")
                         for s in lab.custom.list_namespaced_custom_object(
                             "snapshot.kubevirt.io", "v1beta1", lab.ns, "virtualmachinesnapshots")["items"]), 20,
             what="the temporary snapshot deleted")
