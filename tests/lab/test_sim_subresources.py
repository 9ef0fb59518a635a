"""Simulator: virt-api's subresources.kubevirt.io/v1 through the aggregation layer — status codes
and messages as virt-api's (pkg/virt-api/rest/lifecycle.go, subresource.go)."""
import pytest
from kubernetes import client

from sim_helpers import CIRROS, SUB, cond, lab, token_client, vm_manifest, wait_for  # noqa: F401


def conflict(kind, name, msg):
    return f'Operation cannot be fulfilled on {kind}.kubevirt.io "{name}": {msg}'


def test_discovery_lists_the_subresources(lab):
    status, body = lab.call("GET", SUB)
    assert status == 200
    names = {r["name"]: r["verbs"] for r in body["resources"]}
    assert names["virtualmachines/start"] == ["update"]
    assert names["virtualmachineinstances/guestosinfo"] == ["get"]
    assert "virtualmachineinstances/console" in names and "virtualmachineinstances/vnc" in names


def test_start_stop_restart_codes_and_messages(lab):
    status, body = lab.vm_sub("nope", "start", {})
    assert status == 404 and body["reason"] == "NotFound"
    assert body["message"] == 'virtualmachine.kubevirt.io "nope" not found'

    lab.create_vm(vm_manifest("vm-s"))
    lab.wait_running("vm-s")
    status, body = lab.vm_sub("vm-s", "start", {})
    assert status == 409 and body["message"] == conflict("virtualmachine", "vm-s", "VM is already running")
    assert body["kind"] == "Status" and body["reason"] == "Conflict"
    status, body = lab.vm_sub("vm-s", "restart", {"gracePeriodSeconds": 5})
    assert status == 400 and body["message"] == "For force restart, only gracePeriod=0 is supported for now"
    status, body = lab.vm_sub("vm-s", "stop", {"gracePeriod": 0})
    assert status == 202
    lab.wait_vmi_gone("vm-s")
    lab.wait_printable("vm-s", "Stopped")
    status, body = lab.vm_sub("vm-s", "stop", {})   # Halted: nothing to stop
    assert status == 409 and body["message"] == conflict("virtualmachine", "vm-s", "VM is not running")
    status, body = lab.vm_sub("vm-s", "restart", {})
    assert status == 409
    assert body["message"] == conflict("virtualmachine", "vm-s", "RunStategy Halted does not support manual restart requests")


def test_always_and_once_reject_manual_start(lab, core):
    lab.create_vm(vm_manifest("vm-once", run_strategy="Once"))
    lab.wait_running("vm-once")
    core.delete_namespaced_pod(lab.pods("vm-once")[0].metadata.name, lab.ns, grace_period_seconds=0)
    lab.wait_vmi_phase("vm-once", "Failed")
    status, body = lab.vm_sub("vm-once", "start", {})
    assert status == 409
    assert body["message"] == conflict("virtualmachine", "vm-once", "Once does not support manual start requests")
    status, body = lab.vm_sub("vm-once", "restart", {})
    assert status == 409
    assert body["message"] == conflict("virtualmachine", "vm-once", "RunStategy Once does not support manual restart requests")
    # Always without a VMI (its DataVolume never imports)
    dvt = [{"metadata": {"name": "vm-alw-root"}, "spec": {"source": {"http": {"url": "http://images.invalid/x.qcow2"}},
                                                          "storage": {"resources": {"requests": {"storage": "1Gi"}}}}}]
    lab.create_vm(vm_manifest("vm-alw", volumes=[{"name": "root", "dataVolume": {"name": "vm-alw-root"}}],
                              data_volume_templates=dvt))
    lab.wait_printable("vm-alw", "DataVolumeError")
    status, body = lab.vm_sub("vm-alw", "start", {})
    assert status == 409
    assert body["message"] == conflict("virtualmachine", "vm-alw", "Always does not support manual start requests")


def test_manual_stop_without_vmi_and_rerun_from_failed(lab):
    lab.create_vm(vm_manifest("vm-man", run_strategy="Manual"))
    lab.wait_printable("vm-man", "Stopped")
    status, body = lab.vm_sub("vm-man", "stop", {})
    assert status == 409 and body["message"] == conflict("virtualmachine", "vm-man", "VM is not running")
    status, body = lab.vm_sub("vm-man", "restart", {})
    assert status == 409 and body["message"] == conflict("virtualmachine", "vm-man", "VM is not running: Halted")


def test_pause_unpause_softreboot(lab):
    lab.create_vm(vm_manifest("vm-pp", image=CIRROS))
    lab.wait_running("vm-pp")
    status, _ = lab.vmi_sub("vm-pp", "pause", {})
    assert status == 200
    vm = lab.wait_printable("vm-pp", "Paused")
    assert cond(vm, "Paused")["status"] == "True"
    status, body = lab.vmi_sub("vm-pp", "pause", {})
    assert status == 409 and body["message"] == conflict("virtualmachineinstance", "vm-pp", "VMI is already paused")
    status, body = lab.vmi_sub("vm-pp", "softreboot", {})
    assert status == 409 and body["message"] == conflict("virtualmachineinstance", "vm-pp", "VMI is paused")
    status, _ = lab.vmi_sub("vm-pp", "unpause", {})
    assert status == 200
    lab.wait_printable("vm-pp", "Running")
    status, body = lab.vmi_sub("vm-pp", "unpause", {})
    assert status == 409 and body["message"] == conflict("virtualmachineinstance", "vm-pp", "VMI is not paused")
    status, _ = lab.vmi_sub("vm-pp", "softreboot", {})
    assert status == 200
    status, body = lab.vmi_sub("nope", "pause", {})
    assert status == 404 and body["message"] == 'virtualmachineinstance.kubevirt.io "nope" not found'
    lab.wait_event("vm-pp", "Paused", kind="VirtualMachineInstance")


def test_guest_agent_endpoints(lab):
    lab.create_vm(vm_manifest("vm-ga", user_data="#cloud-config\nuser: alice\npassword: s3cret\n"))
    lab.wait_running("vm-ga")
    status, info = lab.vmi_sub("vm-ga", "guestosinfo", method="GET")
    assert status == 200
    assert info["hostname"] == "vm-ga" and info["os"]["id"] == "fedora" and info["os"]["prettyName"]
    assert info["guestAgentVersion"] and info["fsInfo"]["disks"][0]["mountPoint"] == "/"
    assert info["userList"][0]["userName"] == "alice"
    status, users = lab.vmi_sub("vm-ga", "userlist", method="GET")
    assert status == 200 and users["items"][0]["userName"] == "alice"
    status, fs = lab.vmi_sub("vm-ga", "filesystemlist", method="GET")
    assert status == 200
    disk = fs["items"][0]
    assert {"diskName", "mountPoint", "fileSystemType", "usedBytes", "totalBytes"} <= set(disk)
    assert 0 < disk["usedBytes"] < disk["totalBytes"]


@pytest.mark.parametrize("verb", ["guestosinfo", "userlist", "filesystemlist"])
def test_guest_agent_endpoints_fail_500_plain_text_without_agent(lab, verb):
    status, body = lab.vmi_sub("ghost", verb, method="GET")
    assert status == 500 and body == 'virtualmachineinstance.kubevirt.io "ghost" not found'
    name = f"noagent-{verb}"
    lab.create_vm(vm_manifest(name, image=CIRROS))
    vmi = lab.wait_running(name)
    assert cond(vmi, "AgentConnected") is None
    assert vmi["status"]["guestOSInfo"] == {}
    status, body = lab.vmi_sub(name, verb, method="GET")
    assert status == 500
    assert body == conflict("virtualmachineinstance", name, "VMI does not have guest agent connected")


def test_guest_agent_annotation_overrides_the_image(lab):
    lab.create_vm(vm_manifest("vm-ann", image=CIRROS, annotations={"lab.virtops.io/guest-agent": "true"}))
    vmi = lab.wait_running("vm-ann")
    assert cond(vmi, "AgentConnected")["status"] == "True"
    lab.create_vm(vm_manifest("vm-ann2", annotations={"lab.virtops.io/guest-agent": "false"}))
    vmi = lab.wait_running("vm-ann2")
    assert cond(vmi, "AgentConnected") is None


def test_migrate_subresource_creates_a_migration(lab):
    lab.create_vm(vm_manifest("vm-mig"))
    lab.wait_running("vm-mig")
    status, _ = lab.vm_sub("vm-mig", "migrate", {})
    assert status == 202
    migs = wait_for(lambda: lab.custom.list_namespaced_custom_object(
        "kubevirt.io", "v1", lab.ns, "virtualmachineinstancemigrations")["items"], 5, what="a migration")
    assert migs[0]["metadata"]["name"].startswith("kubevirt-migrate-vm-")
    assert migs[0]["spec"]["vmiName"] == "vm-mig"
    lab.create_vm(vm_manifest("vm-mig-off", run_strategy="Halted"))
    status, body = lab.vm_sub("vm-mig-off", "migrate", {})
    assert status == 404 and body["message"] == 'virtualmachineinstance.kubevirt.io "vm-mig-off" not found'


def test_addvolume_removevolume(lab, core):
    core.create_namespaced_persistent_volume_claim(lab.ns, client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name="extra"),
        spec=client.V1PersistentVolumeClaimSpec(access_modes=["ReadWriteOnce"],
                                                resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}))))
    lab.create_vm(vm_manifest("vm-hp"))
    lab.wait_running("vm-hp")
    body = {"name": "extra", "disk": {"disk": {"bus": "scsi"}},
            "volumeSource": {"persistentVolumeClaim": {"claimName": "extra"}}}
    status, resp = lab.vm_sub("vm-hp", "addvolume", body)
    assert status == 202, resp

    def hotplugged():
        vmi = lab.vmi("vm-hp")
        return next((v for v in vmi["status"].get("volumeStatus", []) if v["name"] == "extra"
                     and v.get("phase") == "Ready"), None)
    vs = wait_for(hotplugged, 10, what="hotplugged volume status")
    # the VM controller applies the request to the template (asynchronously, as KubeVirt's does)
    vm = lab.vm("vm-hp")
    vol = next(v for v in vm["spec"]["template"]["spec"]["volumes"] if v["name"] == "extra")
    assert vol["persistentVolumeClaim"] == {"claimName": "extra", "hotpluggable": True}
    assert vs["persistentVolumeClaimInfo"]["claimName"] == "extra" and vs["target"] == "sda"
    status, resp = lab.vm_sub("vm-hp", "addvolume", body)
    assert status == 409 and resp["message"].endswith(
        "Unable to add volume [extra] because volume with that name already exists")
    assert cond(lab.vm("vm-hp"), "RestartRequired") is None, "hotplug needs no restart"
    status, _ = lab.vm_sub("vm-hp", "removevolume", {"name": "extra"})
    assert status == 202
    wait_for(lambda: all(v["name"] != "extra" for v in lab.vmi("vm-hp")["spec"]["volumes"]), 10, what="volume removed")
    # the whole flow (volumeRequests, attachment pod, phases) is in test_sim_hotplug.py


def test_user_without_update_on_start_gets_403(lab, api, core):
    rbac = client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(lab.ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="viewer")))
    rbac.create_namespaced_role(lab.ns, client.V1Role(
        metadata=client.V1ObjectMeta(name="vm-get"),
        rules=[client.V1PolicyRule(api_groups=["kubevirt.io"], resources=["virtualmachines"], verbs=["get", "list"])]))
    rbac.create_namespaced_role_binding(lab.ns, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="viewer-vm-get"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="vm-get"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="viewer", namespace=lab.ns)]))
    lab.create_vm(vm_manifest("vm-rbac", run_strategy="Halted"))
    viewer = token_client(api, core, lab.ns, "viewer")
    assert client.CustomObjectsApi(viewer).get_namespaced_custom_object(
        "kubevirt.io", "v1", lab.ns, "virtualmachines", "vm-rbac")["metadata"]["name"] == "vm-rbac"
    status, body = lab.vm_sub("vm-rbac", "start", {}, api=viewer)
    assert status == 403, body
    assert body["reason"] == "Forbidden"
    assert f'cannot update resource "virtualmachines/start" in API group "subresources.kubevirt.io"' in body["message"]
    assert lab.vm("vm-rbac")["spec"]["runStrategy"] == "Halted"
    # with the permission the same user can start it
    rbac.create_namespaced_role(lab.ns, client.V1Role(
        metadata=client.V1ObjectMeta(name="vm-start"),
        rules=[client.V1PolicyRule(api_groups=["subresources.kubevirt.io"], resources=["virtualmachines/start"],
                                   verbs=["update"])]))
    rbac.create_namespaced_role_binding(lab.ns, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="viewer-vm-start"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="vm-start"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="viewer", namespace=lab.ns)]))
    status, _ = wait_for(lambda: (lambda r: r if r[0] == 202 else None)(lab.vm_sub("vm-rbac", "start", {}, api=viewer)),
                         10, what="start allowed")
    assert status == 202
