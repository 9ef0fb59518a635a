"""Simulator: VirtualMachine/VMI lifecycle, run strategies, state change requests, status."""
import time

import pytest
from kubernetes.client.rest import ApiException

from sim_helpers import CIRROS, cond, lab, vm_manifest, wait_for  # noqa: F401  (fixture)


def test_always_reaches_running_within_seconds_with_ip_node_ready(lab):
    t0 = time.monotonic()
    lab.create_vm(vm_manifest("vm-a"))
    vmi = lab.wait_running("vm-a", timeout=10)
    took = time.monotonic() - t0
    # The boot delay (2 s) and a few controller steps: on an idle machine about 2.3 s. The bound is for a
    # stuck or slow step, with room for the CI machine's load (3.4 s and 6.4 s seen beside the compatibility
    # matrix on 2 cores).
    assert took < 9.0, f"took {took:.2f}s"
    st = vmi["status"]
    assert st["nodeName"].startswith("lab-worker-")
    assert vmi["metadata"]["labels"]["kubevirt.io/nodeName"] == st["nodeName"]
    ip = st["interfaces"][0]["ipAddress"]
    assert ip.startswith("10.12") and st["interfaces"][0]["ipAddresses"] == [ip]
    assert st["interfaces"][0]["mac"] and st["interfaces"][0]["infoSource"] == "domain, guest-agent"
    phases = [p["phase"] for p in st["phaseTransitionTimestamps"]]
    assert phases == ["Pending", "Scheduling", "Scheduled", "Running"]
    assert cond(vmi, "AgentConnected")["status"] == "True"
    assert cond(vmi, "LiveMigratable")["status"] == "True"
    assert st["guestOSInfo"]["id"] == "fedora"
    assert list(st["activePods"].values()) == [st["nodeName"]]
    assert st["volumeStatus"][0]["name"] == "root" and st["volumeStatus"][0]["target"] == "vda"
    # same name, template labels, controller owner reference to the VM
    vm = lab.wait_printable("vm-a", "Running")
    ref = vmi["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == \
        ("VirtualMachine", "vm-a", vm["metadata"]["uid"], True, True)
    assert vmi["metadata"]["labels"]["app"] == "vm-a"
    assert vm["status"]["ready"] is True and vm["status"]["created"] is True
    assert vm["status"]["runStrategy"] == "Always"
    assert cond(vm, "Ready")["status"] == "True"
    assert cond(vm, "AgentConnected")["status"] == "True", "VMI conditions are mirrored"
    assert "kubevirt.io/virtualMachineControllerFinalize" in vm["metadata"]["finalizers"]
    # the virt-launcher pod
    pods = lab.pods("vm-a")
    assert len(pods) == 1
    pod = pods[0]
    assert pod.metadata.name.startswith("virt-launcher-vm-a-")
    assert pod.metadata.labels["kubevirt.io"] == "virt-launcher"
    assert pod.metadata.labels["kubevirt.io/created-by"] == vmi["metadata"]["uid"]
    assert pod.metadata.annotations["kubevirt.io/domain"] == "vm-a"
    assert pod.spec.node_name == st["nodeName"] and pod.status.phase == "Running"
    assert pod.status.pod_ip == ip
    compute = next(c for c in pod.spec.containers if c.name == "compute")
    assert compute.resources.requests["cpu"] == "100m"
    assert compute.resources.requests["memory"].endswith(("Ki", "Mi")), "guest memory plus launcher overhead"
    assert pod.metadata.owner_references[0].kind == "VirtualMachineInstance"
    # events with KubeVirt's reasons
    lab.wait_event("vm-a", "SuccessfulCreate", "Started the virtual machine by creating the new virtual machine "
                   "instance vm-a", kind="VirtualMachine")
    lab.wait_event("vm-a", "SuccessfulCreate", "Created virtual machine pod virt-launcher-vm-a-",
                   kind="VirtualMachineInstance")
    lab.wait_event("vm-a", "Started", "VirtualMachineInstance started.", kind="VirtualMachineInstance")


def test_stop_deletes_the_vmi_and_shows_stopped(lab):
    lab.create_vm(vm_manifest("vm-b"))
    uid = lab.wait_running("vm-b")["metadata"]["uid"]
    status, body = lab.vm_sub("vm-b", "stop", {})
    assert status == 202, body
    assert lab.vm("vm-b")["spec"]["runStrategy"] == "Halted"
    lab.wait_vmi_gone("vm-b")
    vm = wait_for(lambda: (lambda v: v if v["status"].get("printableStatus") == "Stopped"
                           and v["status"]["created"] is False else None)(lab.vm("vm-b")), 10, what="Stopped")
    assert vm["status"]["ready"] is False
    ready = cond(vm, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == ("False", "VMINotExists", "VMI does not exist")
    assert lab.pods("vm-b") == [] or all(p.metadata.deletion_timestamp for p in lab.pods("vm-b"))
    lab.wait_event("vm-b", "SuccessfulDelete", f"Stopped the virtual machine by deleting the virtual machine instance {uid}")
    lab.wait_event("vm-b", "ShuttingDown", "Signaled Graceful Shutdown", kind="VirtualMachineInstance")


def test_halted_creates_no_vmi_then_start_runs_it(lab):
    lab.create_vm(vm_manifest("vm-h", run_strategy="Halted"))
    vm = lab.wait_printable("vm-h", "Stopped")
    assert lab.vmi_or_none("vm-h") is None and "runStrategy" not in vm["status"]
    status, _ = lab.vm_sub("vm-h", "start", {})
    assert status == 202
    assert lab.vm("vm-h")["spec"]["runStrategy"] == "Always"
    lab.wait_running("vm-h")
    lab.wait_printable("vm-h", "Running")


def test_deprecated_running_field(lab):
    lab.create_vm(vm_manifest("vm-r", run_strategy=None, running=True))
    lab.wait_running("vm-r")
    assert lab.wait_printable("vm-r", "Running")["status"]["runStrategy"] == "Always"
    status, _ = lab.vm_sub("vm-r", "stop", {})
    assert status == 202
    assert lab.vm("vm-r")["spec"]["running"] is False
    lab.wait_vmi_gone("vm-r")
    lab.wait_printable("vm-r", "Stopped")


def test_manual_acts_only_on_state_change_requests(lab):
    lab.create_vm(vm_manifest("vm-m", run_strategy="Manual"))
    lab.wait_printable("vm-m", "Stopped")
    time.sleep(0.5)
    assert lab.vmi_or_none("vm-m") is None
    status, _ = lab.vm_sub("vm-m", "start", {})
    assert status == 202
    vmi = lab.wait_running("vm-m")
    vm = lab.wait_printable("vm-m", "Running")
    assert not vm["status"].get("stateChangeRequests"), "the Start request is consumed once the VMI exists"
    assert vm["spec"]["runStrategy"] == "Manual"
    status, _ = lab.vm_sub("vm-m", "stop", {})
    assert status == 202
    lab.wait_vmi_gone("vm-m")
    # Stopped shows while the final VMI is still there; its Stop request goes once the VMI is gone
    vm = wait_for(lambda: (lambda v: v if v["status"].get("printableStatus") == "Stopped" and
                           not v["status"].get("stateChangeRequests") else None)(lab.vm("vm-m")), 10,
                  what="Stopped, request consumed")
    assert vm["spec"]["runStrategy"] == "Manual"
    # a stop request written directly to the status, as virt-api does, for a new VMI
    lab.vm_sub("vm-m", "start", {})
    vmi = lab.wait_running("vm-m")
    lab.custom.patch_namespaced_custom_object_status(
        "kubevirt.io", "v1", lab.ns, "virtualmachines", "vm-m",
        {"status": {"stateChangeRequests": [{"action": "Stop", "uid": vmi["metadata"]["uid"]}]}})
    lab.wait_vmi_gone("vm-m")


def test_rerun_on_failure_restarts_a_failed_vmi_not_a_succeeded_one(lab, core):
    lab.create_vm(vm_manifest("vm-f", run_strategy="RerunOnFailure"))
    first = lab.wait_running("vm-f")
    # the launcher pod dies under a running VMI: the VMI fails, the VM starts a new one
    pod = lab.pods("vm-f")[0]
    core.delete_namespaced_pod(pod.metadata.name, lab.ns, grace_period_seconds=0)
    second = wait_for(lambda: (lambda v: v if v and v["metadata"]["uid"] != first["metadata"]["uid"] else None)(
        lab.vmi_or_none("vm-f")), 20, what="a new VMI after the failure")
    lab.wait_running("vm-f")
    # a user stop (Stop request) is honoured and the VMI is not restarted
    status, _ = lab.vm_sub("vm-f", "stop", {})
    assert status == 202
    lab.wait_vmi_gone("vm-f")
    time.sleep(1.0)
    assert lab.vmi_or_none("vm-f") is None
    assert second["metadata"]["uid"] != first["metadata"]["uid"]


def test_always_replaces_a_failed_vmi(lab, core):
    lab.create_vm(vm_manifest("vm-al"))
    first = lab.wait_running("vm-al")
    core.delete_namespaced_pod(lab.pods("vm-al")[0].metadata.name, lab.ns, grace_period_seconds=0)
    wait_for(lambda: (lambda v: v if v and v["metadata"]["uid"] != first["metadata"]["uid"]
                      and v["status"].get("phase") == "Running" else None)(lab.vmi_or_none("vm-al")), 20,
             what="a replacement VMI")
    lab.wait_event("vm-al", "Stopped", "The VirtualMachineInstance crashed.", kind="VirtualMachineInstance")


def test_once_runs_once_and_is_not_restarted(lab, core):
    lab.create_vm(vm_manifest("vm-o", run_strategy="Once"))
    first = lab.wait_running("vm-o")
    core.delete_namespaced_pod(lab.pods("vm-o")[0].metadata.name, lab.ns, grace_period_seconds=0)
    lab.wait_vmi_phase("vm-o", "Failed")
    time.sleep(1.0)
    vmi = lab.vmi("vm-o")
    assert vmi["metadata"]["uid"] == first["metadata"]["uid"] and vmi["status"]["phase"] == "Failed"
    lab.wait_printable("vm-o", "Stopped")


def test_restart_replaces_the_vmi(lab):
    lab.create_vm(vm_manifest("vm-rs"))
    first = lab.wait_running("vm-rs")
    status, _ = lab.vm_sub("vm-rs", "restart", {})
    assert status == 202
    wait_for(lambda: (lambda v: v if v and v["metadata"]["uid"] != first["metadata"]["uid"]
                      and v["status"].get("phase") == "Running" else None)(lab.vmi_or_none("vm-rs")), 20,
             what="the restarted VMI")
    assert not lab.vm("vm-rs")["status"].get("stateChangeRequests")


def test_restart_required_when_the_template_changes_under_a_running_vmi(lab):
    lab.create_vm(vm_manifest("vm-rr"))
    lab.wait_running("vm-rr")
    lab.patch_vm("vm-rr", {"spec": {"template": {"spec": {"domain": {"memory": {"guest": "256Mi"}}}}}})

    def restart_required():
        c = cond(lab.vm("vm-rr"), "RestartRequired")
        return c if c and c["status"] == "True" else None
    c = wait_for(restart_required, 10, what="RestartRequired")
    # guest memory is live-updatable (LiveUpdate), but a VM that started with less than 1Gi got no maxGuest
    assert c["message"] == "memory updated in template spec. Memory-hotplug is not available for this VM configuration"
    # restarting clears the condition
    status, _ = lab.vm_sub("vm-rr", "restart", {})
    assert status == 202
    wait_for(lambda: cond(lab.vm("vm-rr"), "RestartRequired") is None, 15, what="RestartRequired cleared")
    vmi = lab.wait_running("vm-rr")
    assert vmi["spec"]["domain"]["memory"]["guest"] == "256Mi"


def test_paused_start_and_pause_unpause(lab):
    lab.create_vm(vm_manifest("vm-p", run_strategy="Halted", image=CIRROS))
    lab.wait_printable("vm-p", "Stopped")
    status, _ = lab.vm_sub("vm-p", "start", {"paused": True})
    assert status == 202
    vm = lab.wait_printable("vm-p", "Paused")
    assert vm["spec"]["runStrategy"] == "Always"
    vmi = lab.vmi("vm-p")
    assert vmi["spec"]["startStrategy"] == "Paused"
    assert cond(vmi, "Paused")["reason"] == "PausedByUser"
    status, _ = lab.vmi_sub("vm-p", "unpause", {})
    assert status == 200
    lab.wait_printable("vm-p", "Running")


def test_vm_deletion_goes_through_terminating_and_removes_everything(lab):
    lab.create_vm(vm_manifest("vm-d"))
    lab.wait_running("vm-d")
    lab.delete_vm("vm-d")
    wait_for(lambda: not lab.custom.list_namespaced_custom_object("kubevirt.io", "v1", lab.ns,
                                                                   "virtualmachines")["items"], 20, what="VM gone")
    lab.wait_vmi_gone("vm-d")


def test_instancetype_and_preference_expand_into_the_vmi(lab, api):
    from kubernetes import client as k8s
    custom = k8s.CustomObjectsApi(api)
    name = f"it-{lab.ns}"
    custom.create_cluster_custom_object("instancetype.kubevirt.io", "v1beta1", "virtualmachineclusterinstancetypes", {
        "apiVersion": "instancetype.kubevirt.io/v1beta1", "kind": "VirtualMachineClusterInstancetype",
        "metadata": {"name": name}, "spec": {"cpu": {"guest": 2}, "memory": {"guest": "256Mi"}}})
    try:
        lab.create(*("instancetype.kubevirt.io", "v1beta1"), "virtualmachinepreferences", {
            "apiVersion": "instancetype.kubevirt.io/v1beta1", "kind": "VirtualMachinePreference",
            "metadata": {"name": "cores"}, "spec": {"cpu": {"preferredCPUTopology": "preferCores"}}})
        vm = vm_manifest("vm-it")
        del vm["spec"]["template"]["spec"]["domain"]["memory"]
        vm["spec"]["instancetype"] = {"name": name}
        vm["spec"]["preference"] = {"kind": "VirtualMachinePreference", "name": "cores"}
        lab.create_vm(vm)
        vmi = lab.wait_running("vm-it")
        assert vmi["spec"]["domain"]["memory"]["guest"] == "256Mi"
        assert (vmi["spec"]["domain"]["cpu"]["cores"], vmi["spec"]["domain"]["cpu"]["sockets"]) == (2, 1)
        assert vmi["metadata"]["annotations"]["kubevirt.io/cluster-instancetype-name"] == name
        assert vmi["status"]["currentCPUTopology"]["cores"] == 2
        # a missing instancetype is a Failure on the VM
        vm2 = vm_manifest("vm-it2")
        del vm2["spec"]["template"]["spec"]["domain"]["memory"]
        vm2["spec"]["instancetype"] = {"name": "does-not-exist"}
        lab.create_vm(vm2)
        failure = wait_for(lambda: cond(lab.vm("vm-it2"), "Failure"), 10, what="Failure condition")
        assert "does-not-exist" in failure["message"] and lab.vmi_or_none("vm-it2") is None
        # as virt-controller's instancetype check (checkResourcesExist): its reason, the API's not-found
        # message, and KubeVirt's printableStatus for a VM it cannot start (Stopped, not Starting)
        assert failure["status"] == "True" and failure["reason"] == "FailedFindInstancetype"
        assert failure["message"] == ('virtualmachineclusterinstancetypes.instancetype.kubevirt.io '
                                      '"does-not-exist" not found')
        assert lab.vm("vm-it2")["status"]["printableStatus"] == "Stopped"
        # nothing else is done for it: no DataVolume from its templates either
        vm3 = vm_manifest("vm-it3")
        vm3["spec"]["preference"] = {"name": "no-such-preference"}
        vm3["spec"]["dataVolumeTemplates"] = [{"metadata": {"name": "vm-it3-root"}, "spec": {
            "source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1Gi"}}}}}]
        vm3["spec"]["template"]["spec"]["volumes"].append({"name": "data", "dataVolume": {"name": "vm-it3-root"}})
        lab.create_vm(vm3)
        failure = wait_for(lambda: cond(lab.vm("vm-it3"), "Failure"), 10, what="Failure condition")
        assert failure["reason"] == "FailedFindPreference"
        time.sleep(0.5)  # what a DataVolume controller would have done by now
        with pytest.raises(ApiException) as gone:
            lab.dv("vm-it3-root")
        assert gone.value.status == 404
    finally:
        custom.delete_cluster_custom_object("instancetype.kubevirt.io", "v1beta1",
                                            "virtualmachineclusterinstancetypes", name)
