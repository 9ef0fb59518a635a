"""Simulator: CDI DataVolumes (import, failure with retries, clone, upload), the provisioner,
WaitForFirstConsumer, and VMs with dataVolumeTemplates."""
import re
import sys
import time
from pathlib import Path

from sim_helpers import cond, dv_manifest, lab, vm_manifest, wait_for  # noqa: F401

LAB = Path(__file__).resolve().parents[2] / "lab"
if str(LAB) not in sys.path:
    sys.path.insert(0, str(LAB))

from simulator.volumedata import VolumeData  # noqa: E402  (lab/ is not a package on the default path)

URL = "https://cloud.example.com/images/fedora-41.qcow2"


def dv_phase(lab, name):
    return lab.dv(name).get("status", {}).get("phase")


def phases_until_succeeded(lab, name, timeout, what):
    """Wait for the DataVolume to succeed; returns the phases it went through, in order."""
    seen = []

    def succeeded():
        phase = dv_phase(lab, name)
        if phase and (not seen or seen[-1] != phase):
            seen.append(phase)
        return phase == "Succeeded"
    wait_for(succeeded, timeout, interval=0.1, what=what)
    return seen


def test_http_import_shows_progress_and_succeeds(lab):
    lab.create_dv(dv_manifest("dv-imp", {"http": {"url": URL}}, size="5Gi"))
    seen_phases, progress = [], []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        st = lab.dv("dv-imp").get("status", {})
        if st.get("phase") and (not seen_phases or seen_phases[-1] != st["phase"]):
            seen_phases.append(st["phase"])
        if st.get("progress") and st["progress"] not in progress:
            progress.append(st["progress"])
        if st.get("phase") == "Succeeded":
            break
        time.sleep(0.1)
    assert seen_phases[-1] == "Succeeded", seen_phases
    assert "ImportInProgress" in seen_phases
    middle = [p for p in progress if p not in ("N/A", "100.0%")]
    assert middle and all(re.fullmatch(r"\d{1,2}\.\d{2}%", p) for p in middle), progress
    values = [float(p[:-1]) for p in middle]
    assert values == sorted(values), "progress only grows"
    dv = lab.dv("dv-imp")
    assert dv["status"]["progress"] == "100.0%" and dv["status"]["claimName"] == "dv-imp"
    assert cond(dv, "Ready")["status"] == "True" and cond(dv, "Bound")["status"] == "True"
    assert cond(dv, "Bound")["message"] == "PVC dv-imp Bound"
    assert cond(dv, "Running")["reason"] == "Completed"
    pvc = lab.core.read_namespaced_persistent_volume_claim("dv-imp", lab.ns)
    assert pvc.status.phase == "Bound" and pvc.metadata.owner_references[0].kind == "DataVolume"
    pv = lab.core.read_persistent_volume(pvc.spec.volume_name)
    assert pv.metadata.annotations["pv.kubernetes.io/provisioned-by"] == "lab.virtops.io/simulated"
    assert pv.spec.claim_ref.name == "dv-imp" and pv.spec.capacity["storage"] == "5Gi"
    lab.wait_event("dv-imp", "ImportSucceeded", "Successfully imported into PVC dv-imp")


def test_invalid_host_fails_and_retries_with_growing_restart_count(lab):
    lab.create_dv(dv_manifest("dv-bad", {"http": {"url": "http://images.lab.invalid/disk.img"}}))

    def restarts(n):
        dv = lab.dv("dv-bad")
        return dv if dv.get("status", {}).get("restartCount", 0) >= n else None
    dv = wait_for(lambda: restarts(2), 20, interval=0.3, what="restartCount >= 2")
    assert dv["status"]["phase"] == "ImportInProgress" and dv["status"]["progress"] == "N/A"
    running = cond(dv, "Running")
    assert (running["status"], running["reason"]) == ("False", "Error")
    assert running["message"].startswith("Unable to connect to http data source:")
    assert "images.lab.invalid" in running["message"]
    assert cond(dv, "Ready")["status"] == "False"
    ev = lab.wait_event("dv-bad", "Error", "Unable to connect to http data source")
    assert ev.type == "Warning"
    time.sleep(0.5)
    assert dv_phase(lab, "dv-bad") != "Succeeded"


def test_clone_from_a_pvc_succeeds(lab):
    lab.create_dv(dv_manifest("src", {"blank": {}}))
    wait_for(lambda: dv_phase(lab, "src") == "Succeeded", 15, what="source DataVolume")
    lab.create_dv(dv_manifest("copy", {"pvc": {"namespace": lab.ns, "name": "src"}}))
    seen = phases_until_succeeded(lab, "copy", 20, "clone Succeeded")
    assert "CloneInProgress" in seen or "CloneScheduled" in seen, seen
    lab.wait_event("copy", "CloneSucceeded", f"Successfully cloned from {lab.ns}/src into {lab.ns}/copy")


def test_a_clone_carries_the_source_volumes_bytes_and_a_missing_snapshot_source_is_named(lab, lab_state):
    """The lab's volume images (volumedata.py) follow a CDI clone: the source claim's bytes (written
    here as a real guest would) are the clone's once it is Succeeded; a snapshot source that does
    not exist keeps the clone at CloneScheduled with CDI's CloneWithoutSource message."""
    volumes = VolumeData(lab_state / "volumes")
    lab.create_dv(dv_manifest("golden", {"blank": {}}, size="16Mi"))
    wait_for(lambda: dv_phase(lab, "golden") == "Succeeded", 15, what="source DataVolume")
    golden_pv = lab.core.read_namespaced_persistent_volume_claim("golden", lab.ns).spec.volume_name
    with open(volumes.ensure(golden_pv, 16 * 2 ** 20), "r+b") as f:
        f.seek(2 ** 20)
        f.write(b"golden image")
    lab.create_dv(dv_manifest("copy", {"pvc": {"namespace": lab.ns, "name": "golden"}}, size="16Mi"))
    lab.create_dv(dv_manifest("from-snap", {"snapshot": {"namespace": lab.ns, "name": "no-such-snap"}}, size="16Mi"))
    phases_until_succeeded(lab, "copy", 20, "clone Succeeded")
    copy_pv = lab.core.read_namespaced_persistent_volume_claim("copy", lab.ns).spec.volume_name
    with open(volumes.image(copy_pv), "rb") as f:
        f.seek(2 ** 20)
        assert f.read(12) == b"golden image"
    wait_for(lambda: dv_phase(lab, "from-snap") == "CloneScheduled", 15, what="snapshot clone scheduled")
    assert cond(lab.dv("from-snap"), "Running")["message"] == "The source snapshot no-such-snap doesn't exist"


def test_upload_waits_for_data(lab):
    lab.create_dv(dv_manifest("up", {"upload": {}}))
    wait_for(lambda: dv_phase(lab, "up") == "UploadReady", 10, what="UploadReady")


def test_wait_for_first_consumer(lab):
    lab.create_dv(dv_manifest("dv-wffc", {"http": {"url": URL}}, storage_class="lab-wffc"))
    wait_for(lambda: dv_phase(lab, "dv-wffc") == "WaitForFirstConsumer", 10, what="WaitForFirstConsumer")
    time.sleep(0.5)
    assert lab.core.read_namespaced_persistent_volume_claim("dv-wffc", lab.ns).status.phase == "Pending"
    # a VM consumes it: the scheduler picks a node, the PV follows it, the import runs, the VM starts
    lab.create_vm(vm_manifest("vm-wffc", volumes=[{"name": "root", "dataVolume": {"name": "dv-wffc"}}]))
    vmi = lab.wait_running("vm-wffc", timeout=30)
    pvc = lab.core.read_namespaced_persistent_volume_claim("dv-wffc", lab.ns)
    node = pvc.metadata.annotations["volume.kubernetes.io/selected-node"]
    assert pvc.status.phase == "Bound" and node.startswith("lab-worker-")
    pv = lab.core.read_persistent_volume(pvc.spec.volume_name)
    term = pv.spec.node_affinity.required.node_selector_terms[0].match_expressions[0]
    assert term.values == [node]
    assert vmi["status"]["nodeName"] == node
    assert dv_phase(lab, "dv-wffc") == "Succeeded"


def test_immediate_binding_annotation_binds_on_a_wait_for_first_consumer_class(lab):
    # CDI's cdi.kubevirt.io/storage.bind.immediate.requested: its worker pod is the first consumer
    manifest = dv_manifest("dv-now", {"http": {"url": URL}}, storage_class="lab-wffc")
    manifest["metadata"]["annotations"] = {"cdi.kubevirt.io/storage.bind.immediate.requested": "true"}
    lab.create_dv(manifest)
    phases = phases_until_succeeded(lab, "dv-now", 20, "import Succeeded without a consumer")
    assert "WaitForFirstConsumer" not in phases, phases
    pvc = lab.core.read_namespaced_persistent_volume_claim("dv-now", lab.ns)
    assert pvc.metadata.annotations["cdi.kubevirt.io/storage.bind.immediate.requested"] == "true", \
        "CDI passes the DataVolume's annotations to its claim"
    node = pvc.metadata.annotations["volume.kubernetes.io/selected-node"]
    assert pvc.status.phase == "Bound" and node.startswith("lab-worker-")
    pv = lab.core.read_persistent_volume(pvc.spec.volume_name)
    assert pv.spec.node_affinity.required.node_selector_terms[0].match_expressions[0].values == [node]


def test_vm_with_data_volume_template_provisions_then_runs(lab):
    dvt = [{"metadata": {"name": "vm-dv-root"},
            "spec": {"source": {"registry": {"url": "docker://quay.io/containerdisks/centos-stream:9"}},
                     "storage": {"resources": {"requests": {"storage": "10Gi"}}, "accessModes": ["ReadWriteMany"]}}}]
    lab.create_vm(vm_manifest("vm-dv", volumes=[{"name": "root", "dataVolume": {"name": "vm-dv-root"}}],
                              data_volume_templates=dvt))
    vm = lab.wait_printable("vm-dv", "Provisioning", timeout=10)
    dv = lab.dv("vm-dv-root")
    ref = dv["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("VirtualMachine", "vm-dv", True)
    assert dv["metadata"]["labels"]["kubevirt.io/created-by"] == vm["metadata"]["uid"]
    lab.wait_event("vm-dv", "SuccessfulDataVolumeCreate", "Created DataVolume vm-dv-root")
    vmi = lab.wait_running("vm-dv", timeout=30)
    assert vmi["status"]["guestOSInfo"]["id"] == "centos", "agent detected from the registry URL"
    claim = vmi["status"]["volumeStatus"][0]["persistentVolumeClaimInfo"]
    assert claim["claimName"] == "vm-dv-root" and claim["accessModes"] == ["ReadWriteMany"]
    assert cond(vmi, "DataVolumesReady")["status"] == "True"
    lab.wait_printable("vm-dv", "Running")


def test_failing_data_volume_shows_data_volume_error(lab):
    dvt = [{"metadata": {"name": "vm-dve-root"}, "spec": {"source": {"http": {"url": "http://x.invalid/a.img"}},
                                                          "storage": {"resources": {"requests": {"storage": "1Gi"}}}}}]
    lab.create_vm(vm_manifest("vm-dve", volumes=[{"name": "root", "dataVolume": {"name": "vm-dve-root"}}],
                              data_volume_templates=dvt))
    lab.wait_printable("vm-dve", "DataVolumeError", timeout=15)
    assert lab.vmi_or_none("vm-dve") is None
