"""Simulator: volume hot-plug as KubeVirt does it - VM addvolume/removevolume go through
status.volumeRequests, the VM controller applies them to the template and the running VMI, an
attachment pod hp-volume-* holds the claim and volumeStatus walks through KubeVirt's phases."""
from kubernetes import client

from sim_helpers import KV, ObjectWatch, changes, cond, lab, vm_manifest, wait_for  # noqa: F401

DISK = {"disk": {"bus": "scsi"}}


def pvc(core, ns, name, access="ReadWriteOnce"):
    core.create_namespaced_persistent_volume_claim(ns, client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PersistentVolumeClaimSpec(access_modes=[access], resources=client.V1VolumeResourceRequirements(
            requests={"storage": "1Gi"}))))


def add_body(name, claim=None):
    return {"name": name, "disk": DISK, "volumeSource": {"persistentVolumeClaim": {"claimName": claim or name}}}


def entry(vmi, name):
    return next((v for v in (vmi or {}).get("status", {}).get("volumeStatus", []) if v["name"] == name), None)


def ready(lab, vm, name):
    e = entry(lab.vmi(vm), name)
    return e if e and e.get("phase") == "Ready" else None


def names(spec):
    return [v["name"] for v in spec.get("volumes") or []]


def attachment_pods(lab):
    return [p for p in lab.core.list_namespaced_pod(lab.ns, label_selector="kubevirt.io=hotplug-disk").items
            if not p.metadata.deletion_timestamp]


def test_addvolume_goes_through_volume_requests_and_an_attachment_pod(lab, core):
    pvc(core, lab.ns, "extra")
    lab.create_vm(vm_manifest("vm-hp"))
    vmi = lab.wait_running("vm-hp")
    launcher = next(p for p in lab.pods("vm-hp") if not p.metadata.deletion_timestamp)
    with ObjectWatch(lab, *KV, "virtualmachines", "vm-hp") as vms, \
            ObjectWatch(lab, *KV, "virtualmachineinstances", "vm-hp") as vmis:
        status, body = lab.vm_sub("vm-hp", "addvolume", add_body("extra"))
        assert status == 202, body
        vs = wait_for(lambda: ready(lab, "vm-hp", "extra"), 15, what="hot-plugged volume Ready")
        wait_for(lambda: not lab.vm("vm-hp")["status"].get("volumeRequests"), 5, what="volumeRequests trimmed")
    # virt-api only wrote the request; the VM controller put it into the template afterwards
    request = {"addVolumeOptions": {"name": "extra", "disk": {"name": "extra", **DISK},
                                    "volumeSource": {"persistentVolumeClaim": {"claimName": "extra",
                                                                               "hotpluggable": True}}}}
    pending = [v for v in vms.seen() if v.get("status", {}).get("volumeRequests")]
    assert pending and pending[0]["status"]["volumeRequests"] == [request]
    assert "extra" not in names(pending[0]["spec"]["template"]["spec"])
    tspec = lab.vm("vm-hp")["spec"]["template"]["spec"]
    assert next(v for v in tspec["volumes"] if v["name"] == "extra")["persistentVolumeClaim"] == \
        {"claimName": "extra", "hotpluggable": True}
    assert {"name": "extra", **DISK} in tspec["domain"]["devices"]["disks"]
    # the VMI's volumeStatus went through KubeVirt's phases
    phases = changes([(entry(v, "extra") or {}).get("phase") for v in vmis.seen() if entry(v, "extra")])
    assert phases == ["Bound", "AttachedToNode", "MountedToPod", "Ready"], phases
    pods = attachment_pods(lab)
    assert len(pods) == 1
    hp = pods[0]
    assert hp.metadata.name.startswith("hp-volume-")
    owner = hp.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("Pod", launcher.metadata.name, True)
    assert hp.spec.node_name == vmi["status"]["nodeName"] and hp.spec.containers[0].name == "hotplug-disk"
    assert [v.persistent_volume_claim.claim_name for v in hp.spec.volumes if v.persistent_volume_claim] == ["extra"]
    assert all(v.name != "extra" for v in launcher.spec.volumes), "the launcher pod does not hold hotplug claims"
    assert vs["hotplugVolume"] == {"attachPodName": hp.metadata.name, "attachPodUID": hp.metadata.uid}
    assert (vs["reason"], vs["message"], vs["target"]) == \
        ("VolumeReady", "Successfully attach hotplugged volume extra to VM", "sda")
    assert vs["persistentVolumeClaimInfo"]["claimName"] == "extra"
    lab.wait_event("vm-hp", "SuccessfulCreate", f"Created attachment pod {hp.metadata.name}")
    lab.wait_event("vm-hp", "SuccessfulCreate", f"Created hotplug attachment pod {hp.metadata.name}, for volume extra")
    lab.wait_event("vm-hp", "VolumeMountedToPod", "Volume extra has been mounted in virt-launcher pod")
    lab.wait_event("vm-hp", "VolumeReady", "Successfully attach hotplugged volume extra to VM")
    assert cond(lab.vm("vm-hp"), "RestartRequired") is None, "hot-plug needs no restart"

    # removal reverses it
    with ObjectWatch(lab, *KV, "virtualmachines", "vm-hp") as vms, \
            ObjectWatch(lab, *KV, "virtualmachineinstances", "vm-hp") as vmis:
        status, body = lab.vm_sub("vm-hp", "removevolume", {"name": "extra"})
        assert status == 202, body
        wait_for(lambda: entry(lab.vmi("vm-hp"), "extra") is None, 15, what="volume status gone")
    pending = [v for v in vms.seen() if v.get("status", {}).get("volumeRequests")]
    assert pending and pending[0]["status"]["volumeRequests"] == [{"removeVolumeOptions": {"name": "extra"}}]
    phases = changes([(entry(v, "extra") or {}).get("phase") for v in vmis.seen() if entry(v, "extra")])
    assert phases == ["Ready", "UnMountedFromPod", "Detaching"], phases
    vmi = lab.vmi("vm-hp")
    assert "extra" not in names(vmi["spec"]) and "extra" not in names(lab.vm("vm-hp")["spec"]["template"]["spec"])
    assert not lab.vm("vm-hp")["status"].get("volumeRequests")
    wait_for(lambda: attachment_pods(lab) == [], 10, what="attachment pod deleted")
    lab.wait_event("vm-hp", "VolumeUnMountedFromPod", "Volume extra has been unmounted from virt-launcher pod")
    assert cond(lab.vm("vm-hp"), "RestartRequired") is None


def test_volume_request_codes_and_messages(lab, core):
    # the root claim does not exist: the VMI stays Pending, so a request waits in the VM's status
    pvc(core, lab.ns, "extra")
    lab.create_vm(vm_manifest("vm-vr", volumes=[{"name": "root", "persistentVolumeClaim": {"claimName": "nope"}}]))
    lab.wait_printable("vm-vr", "ErrorPvcNotFound")
    for body, message in (({"disk": DISK}, "AddVolumeOptions requires name to be set"),
                          ({"name": "x", "volumeSource": {"persistentVolumeClaim": {"claimName": "x"}}},
                           "AddVolumeOptions requires disk to not be nil"),
                          ({"name": "x", "disk": DISK}, "AddVolumeOptions requires VolumeSource to not be nil")):
        status, resp = lab.vm_sub("vm-vr", "addvolume", body)
        assert (status, resp["reason"], resp["message"]) == (400, "BadRequest", message)
    status, resp = lab.vm_sub("vm-vr", "removevolume", {})
    assert (status, resp["message"]) == (400, "RemoveVolumeOptions requires name to be set")
    prefix = 'Operation cannot be fulfilled on virtualmachine.kubevirt.io "vm-vr": '
    for verb, body, message in (
            ("addvolume", add_body("root", "other"),
             "Unable to add volume [root] because volume with that name already exists"),
            ("addvolume", add_body("data", "nope"), "Unable to add volume source [nope] because it already exists"),
            ("removevolume", {"name": "root"}, "Unable to remove volume [root] because it is not hotpluggable"),
            ("removevolume", {"name": "gone"}, "Unable to remove volume [gone] because it does not exist")):
        status, resp = lab.vm_sub("vm-vr", verb, body)
        assert (status, resp["reason"], resp["message"]) == (409, "Conflict", prefix + message), resp
    status, _ = lab.vm_sub("vm-vr", "addvolume", {**add_body("extra"), "dryRun": ["All"]})
    assert status == 202 and not lab.vm("vm-vr").get("status", {}).get("volumeRequests"), "dry run writes nothing"
    status, _ = lab.vm_sub("vm-vr", "addvolume", add_body("extra"))
    assert status == 202
    # the VMI is not running: the request stays, the VM says why
    vm = wait_for(lambda: (lambda v: v if cond(v, "Failure") else None)(lab.vm("vm-vr")), 10, what="Failure")
    failure = cond(vm, "Failure")
    assert failure["reason"] == "HotPlugVolumeError"
    assert failure["message"] == ("Error encountered while handling volume hotplug requests: Operation cannot be "
                                  'fulfilled on virtualmachineinstance.kubevirt.io "vm-vr": VMI is not running')
    assert [r["addVolumeOptions"]["name"] for r in vm["status"]["volumeRequests"]] == ["extra"]
    assert "extra" not in names(vm["spec"]["template"]["spec"])
    status, resp = lab.vm_sub("vm-vr", "addvolume", add_body("extra"))
    assert (status, resp["message"]) == (409, prefix + "add volume request for volume [extra] already exists")
    # the VMI starts once its claim appears; the waiting request is applied then
    pvc(core, lab.ns, "nope")
    lab.wait_running("vm-vr", timeout=20)
    wait_for(lambda: (lambda e: e and e.get("phase") == "Ready")(entry(lab.vmi("vm-vr"), "extra")), 15,
             what="waiting request applied")
    vm = wait_for(lambda: (lambda v: v if not v["status"].get("volumeRequests") and not cond(v, "Failure") else None)(
        lab.vm("vm-vr")), 10, what="request done, Failure gone")
    assert "extra" in names(vm["spec"]["template"]["spec"])


def test_vmi_addvolume_is_not_kept_in_the_vm(lab, core):
    pvc(core, lab.ns, "scratch")
    lab.create_vm(vm_manifest("vm-eph"))
    lab.wait_running("vm-eph")
    # virtctl addvolume without --persist: the VMI subresource, also for a VM's VMI
    status, body = lab.vmi_sub("vm-eph", "addvolume", add_body("scratch"))
    assert status == 202, body
    wait_for(lambda: (lambda e: e and e.get("phase") == "Ready")(entry(lab.vmi("vm-eph"), "scratch")), 15,
             what="ephemeral hotplug Ready")
    vm = lab.vm("vm-eph")
    assert "scratch" not in names(vm["spec"]["template"]["spec"]) and not vm["status"].get("volumeRequests")
    status, resp = lab.vmi_sub("vm-eph", "addvolume", add_body("scratch"))
    assert (status, resp["message"]) == (409, 'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io '
                                              '"vm-eph": Unable to add volume [scratch] because volume with that name '
                                              'already exists')
    status, _ = lab.vmi_sub("vm-eph", "removevolume", {"name": "scratch"})
    assert status == 202
    wait_for(lambda: entry(lab.vmi("vm-eph"), "scratch") is None, 15, what="ephemeral volume gone")


def test_addvolume_on_a_stopped_vm_changes_the_template_and_plugs_at_start(lab, core):
    pvc(core, lab.ns, "later")
    lab.create_vm(vm_manifest("vm-off", run_strategy="Halted"))
    lab.wait_printable("vm-off", "Stopped")
    status, _ = lab.vm_sub("vm-off", "addvolume", add_body("later"))
    assert status == 202
    vm = wait_for(lambda: (lambda v: v if "later" in names(v["spec"]["template"]["spec"]) and
                           not v["status"].get("volumeRequests") else None)(lab.vm("vm-off")), 10,
                  what="template changed, request trimmed")
    assert lab.vmi_or_none("vm-off") is None
    status, _ = lab.vm_sub("vm-off", "start", {})
    assert status == 202
    lab.wait_running("vm-off")
    vs = wait_for(lambda: ready(lab, "vm-off", "later"), 15, what="hotpluggable volume of the template attached after start")
    assert vs["hotplugVolume"]["attachPodName"].startswith("hp-volume-")
    assert vm["metadata"]["generation"] >= 2


def test_a_migration_keeps_the_hotplugged_volume_with_a_new_attachment_pod(lab, core):
    pvc(core, lab.ns, "shared", access="ReadWriteMany")
    lab.create_vm(vm_manifest("vm-mhp"))
    lab.wait_running("vm-mhp")
    status, _ = lab.vm_sub("vm-mhp", "addvolume", add_body("shared"))
    assert status == 202
    wait_for(lambda: (lambda e: e and e.get("phase") == "Ready")(entry(lab.vmi("vm-mhp"), "shared")), 15,
             what="hotplugged")
    before = attachment_pods(lab)[0]
    status, _ = lab.vm_sub("vm-mhp", "migrate", {})
    assert status == 202

    def moved():
        vmi = lab.vmi("vm-mhp")
        pods = attachment_pods(lab)
        ok = vmi["status"]["nodeName"] != before.spec.node_name and len(pods) == 1 and \
            pods[0].spec.node_name == vmi["status"]["nodeName"] and \
            entry(vmi, "shared")["hotplugVolume"].get("attachPodUID") == pods[0].metadata.uid
        return (vmi, pods[0]) if ok else None
    vmi, pod = wait_for(moved, 30, what="migrated with a new attachment pod")
    vs = entry(vmi, "shared")
    assert vs["phase"] == "Ready" and vs["hotplugVolume"]["attachPodName"] == pod.metadata.name
    launcher = next(p for p in lab.pods("vm-mhp") if not p.metadata.deletion_timestamp)
    assert pod.metadata.owner_references[0].name == launcher.metadata.name
