"""Simulator: failures on purpose, shaped like KubeVirt's (printableStatus, condition, event)."""
import json

from kubernetes import client

from sim_helpers import cond, lab, vm_manifest, wait_for  # noqa: F401

BAD_IMAGE = "quay.io/containerdisks/does-not-exist:latest"


def test_missing_image_errimagepull_then_imagepullbackoff(lab):
    lab.create_vm(vm_manifest("vm-img", image=BAD_IMAGE))
    vm = lab.wait_printable("vm-img", "ErrImagePull", timeout=10)
    c = cond(vm, "Synchronized")    # the VMI's condition, mirrored on the VM
    assert (c["status"], c["reason"]) == ("False", "ErrImagePull")
    assert f'failed to pull and unpack image "{BAD_IMAGE}"' in c["message"]
    vm = lab.wait_printable("vm-img", "ImagePullBackOff", timeout=10)
    c = cond(vm, "Synchronized")
    assert c["reason"] == "ImagePullBackOff" and c["message"] == f'Back-off pulling image "{BAD_IMAGE}"'
    assert lab.vmi("vm-img")["status"]["phase"] == "Scheduling"
    pod = lab.pods("vm-img")[0]
    waiting = next(s for s in pod.status.container_statuses if s.name == "volumeroot").state.waiting
    assert waiting.reason in ("ErrImagePull", "ImagePullBackOff")
    lab.wait_event(pod.metadata.name, "Failed", f'Failed to pull image "{BAD_IMAGE}"', kind="Pod")
    lab.wait_event(pod.metadata.name, "BackOff", f'Back-off pulling image "{BAD_IMAGE}"', kind="Pod")


def test_missing_pvc_error_pvc_not_found(lab):
    lab.create_vm(vm_manifest("vm-pvc", volumes=[{"name": "root", "persistentVolumeClaim": {"claimName": "nowhere"}}]))
    vm = lab.wait_printable("vm-pvc", "ErrorPvcNotFound", timeout=10)
    vmi = lab.vmi("vm-pvc")
    msg = f"PVC {lab.ns}/nowhere does not exist, waiting for it to appear"
    c = cond(vmi, "Synchronized")
    assert (c["status"], c["reason"], c["message"]) == ("False", "FailedPvcNotFound", msg)
    ps = cond(vmi, "PodScheduled")
    assert (ps["status"], ps["reason"], ps["message"]) == ("False", "Unschedulable", msg)
    assert vmi["status"]["phase"] == "Pending" and lab.pods("vm-pvc") == []
    assert cond(vm, "Ready")["status"] == "False"
    lab.wait_event("vm-pvc", "FailedPvcNotFound", msg, kind="VirtualMachineInstance")
    # creating the claim lets it start
    lab.core.create_namespaced_persistent_volume_claim(lab.ns, client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name="nowhere"),
        spec=client.V1PersistentVolumeClaimSpec(access_modes=["ReadWriteOnce"],
                                                resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}))))
    lab.wait_running("vm-pvc", timeout=20)
    lab.wait_printable("vm-pvc", "Running")


def test_missing_network_attachment_definition(lab):
    lab.create_vm(vm_manifest(
        "vm-nad", interfaces=[{"name": "default", "masquerade": {}}, {"name": "data", "bridge": {}}],
        networks=[{"name": "default", "pod": {}}, {"name": "data", "multus": {"networkName": "br-missing"}}]))
    msg = f"failed to render launch manifest: failed to locate network attachment definition {lab.ns}/br-missing"

    def synced_false():
        c = cond(lab.vmi_or_none("vm-nad"), "Synchronized")
        return c if c and c["status"] == "False" else None
    c = wait_for(synced_false, 10, what="Synchronized=False")
    assert (c["reason"], c["message"]) == ("FailedCreate", msg)
    vmi = lab.vmi("vm-nad")
    assert vmi["status"]["phase"] == "Pending" and lab.pods("vm-nad") == []
    vm = lab.wait_printable("vm-nad", "Starting")
    assert cond(vm, "Synchronized")["message"] == msg
    lab.wait_event("vm-nad", "FailedCreate", msg, kind="VirtualMachineInstance")
    # the NAD appears: the VMI starts, with the secondary interface's IP from the NAD's IPAM
    config = {"cniVersion": "0.3.1", "name": "br-missing", "type": "bridge", "bridge": "br1",
              "ipam": {"type": "whereabouts", "range": "192.168.50.0/24"}}
    lab.create("k8s.cni.cncf.io", "v1", "network-attachment-definitions",
               {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": "br-missing"}, "spec": {"config": json.dumps(config)}})
    vmi = lab.wait_running("vm-nad", timeout=20)
    data = next(i for i in vmi["status"]["interfaces"] if i["name"] == "data")
    assert data["ipAddress"].startswith("192.168.50.") and data["infoSource"] == "domain, guest-agent, multus-status"
    assert data["interfaceName"] == "eth1"
    pod = lab.pods("vm-nad")[0]
    networks = json.loads(pod.metadata.annotations["k8s.v1.cni.cncf.io/networks"])
    assert networks[0]["name"] == "br-missing" and networks[0]["namespace"] == lab.ns


def test_memory_larger_than_any_node_is_unschedulable(lab):
    lab.create_vm(vm_manifest("vm-big", memory="128Gi"))
    vm = lab.wait_printable("vm-big", "ErrorUnschedulable", timeout=10)
    vmi = lab.vmi("vm-big")
    c = cond(vmi, "PodScheduled")
    assert (c["status"], c["reason"]) == ("False", "Unschedulable")
    assert c["message"].startswith("0/3 nodes are available: 3 Insufficient memory. preemption: ")
    assert vmi["status"]["phase"] == "Scheduling"
    assert cond(vm, "PodScheduled")["reason"] == "Unschedulable"
    pod = lab.pods("vm-big")[0]
    assert pod.spec.node_name is None
    lab.wait_event(pod.metadata.name, "FailedScheduling", "Insufficient memory", kind="Pod")


def test_node_selector_nobody_matches(lab):
    lab.create_vm(vm_manifest("vm-sel", node_selector={"disktype": "nvme"}))
    lab.wait_printable("vm-sel", "ErrorUnschedulable", timeout=10)
    c = cond(lab.vmi("vm-sel"), "PodScheduled")
    assert "3 node(s) didn't match Pod's node affinity/selector" in c["message"]
