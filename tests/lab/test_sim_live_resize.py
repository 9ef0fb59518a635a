"""Simulator: CPU and memory hot-plug with KubeVirt's LiveUpdate rollout strategy - maxSockets / maxGuest
defaults on the VMI, the VM controller patches the running VMI, HotVCPUChange / HotMemoryChange, the
workload-update migration, the new topology and memory in the VMI status (same VMI); RestartRequired with
KubeVirt's messages for what cannot be done live."""
from sim_helpers import cond, lab, vm_manifest, wait_for  # noqa: F401


def resizable(name, sockets=1, memory="1Gi"):
    manifest = vm_manifest(name, memory=memory)
    manifest["spec"]["template"]["spec"]["domain"]["cpu"] = {"sockets": sockets, "cores": 1, "threads": 1}
    return manifest


def set_template(lab, name, cpu=None, memory=None):
    domain = {}
    if cpu:
        domain["cpu"] = cpu
    if memory:
        domain["memory"] = {"guest": memory}
    lab.patch_vm(name, {"spec": {"template": {"spec": {"domain": domain}}}})


def test_new_vmi_gets_hotplug_maxima_and_status(lab):
    lab.create_vm(resizable("rs-defaults", sockets=2, memory="1Gi"))
    lab.wait_running("rs-defaults")
    vmi = lab.vmi("rs-defaults")
    assert vmi["spec"]["domain"]["cpu"]["maxSockets"] == 8, "sockets x maxHotplugRatio 4"
    assert vmi["spec"]["domain"]["memory"]["maxGuest"] == "4Gi"
    assert vmi["status"]["currentCPUTopology"] == {"sockets": 2, "cores": 1, "threads": 1}
    assert vmi["status"]["memory"] == {"guestAtBoot": "1Gi", "guestCurrent": "1Gi", "guestRequested": "1Gi"}


def test_sockets_and_memory_hotplug_through_a_workload_update_migration(lab):
    lab.create_vm(resizable("rs-live"))
    lab.wait_running("rs-live")
    before = lab.vmi("rs-live")
    set_template(lab, "rs-live", cpu={"sockets": 2}, memory="2Gi")
    vmi = wait_for(lambda: (lambda v: v if v["spec"]["domain"]["cpu"]["sockets"] == 2 and
                            v["spec"]["domain"]["memory"]["guest"] == "2Gi" else None)(lab.vmi("rs-live")), 10,
                   what="VMI spec patched")
    assert vmi["metadata"]["uid"] == before["metadata"]["uid"]
    lab.wait_event("rs-live", "SuccessfulCreateVirtualMachineInstanceMigration", "for automated workload update",
                   kind="VirtualMachineInstance")
    migs = lab.custom.list_namespaced_custom_object("kubevirt.io", "v1", lab.ns,
                                                    "virtualmachineinstancemigrations")["items"]
    mig = next(m for m in migs if m["spec"]["vmiName"] == "rs-live")
    assert mig["metadata"]["name"].startswith("kubevirt-workload-update-")
    assert "kubevirt.io/workloadUpdateMigration" in mig["metadata"]["annotations"]
    vmi = wait_for(lambda: (lambda v: v if v["status"]["currentCPUTopology"]["sockets"] == 2 and
                            v["status"]["memory"]["guestCurrent"] == "2Gi" else None)(lab.vmi("rs-live")), 30,
                   interval=0.3, what="new topology and memory in the status")
    assert vmi["metadata"]["uid"] == before["metadata"]["uid"], "the same VMI, not a restart"
    assert vmi["status"]["nodeName"] != before["status"]["nodeName"]
    assert vmi["status"]["memory"] == {"guestAtBoot": "1Gi", "guestCurrent": "2Gi", "guestRequested": "2Gi"}
    assert not [c for c in vmi["status"]["conditions"] if c["type"] in ("HotVCPUChange", "HotMemoryChange")]
    assert cond(lab.vm("rs-live"), "RestartRequired") is None


def test_what_cannot_be_done_live_needs_a_restart(lab):
    lab.create_vm(resizable("rs-restart", sockets=2, memory="2Gi"))
    lab.wait_running("rs-restart")
    set_template(lab, "rs-restart", cpu={"sockets": 1})
    vm = wait_for(lambda: (lambda v: v if cond(v, "RestartRequired") else None)(lab.vm("rs-restart")), 10,
                  what="RestartRequired")
    assert cond(vm, "RestartRequired")["message"] == "Reduction of CPU socket count requires a restart"
    assert lab.vmi("rs-restart")["spec"]["domain"]["cpu"]["sockets"] == 2

    lab.create_vm(resizable("rs-mem", sockets=1, memory="2Gi"))
    lab.wait_running("rs-mem")
    set_template(lab, "rs-mem", memory="16Gi")
    vm = wait_for(lambda: (lambda v: v if cond(v, "RestartRequired") else None)(lab.vm("rs-mem")), 10,
                  what="RestartRequired")
    # ValidateLiveUpdateMemory comes before the maxGuest comparison in handleMemoryHotplugRequest
    assert cond(vm, "RestartRequired")["message"] == \
        "memory hotplug not supported, Guest memory is greater than the configured maxGuest memory"

    lab.create_vm(resizable("rs-less", sockets=1, memory="2Gi"))
    lab.wait_running("rs-less")
    set_template(lab, "rs-less", memory="1Gi")
    vm = wait_for(lambda: (lambda v: v if cond(v, "RestartRequired") else None)(lab.vm("rs-less")), 10,
                  what="RestartRequired")
    assert cond(vm, "RestartRequired")["message"] == \
        "memory updated in template spec to a value lower than what the VM started with"

    lab.create_vm(resizable("rs-cores"))
    lab.wait_running("rs-cores")
    set_template(lab, "rs-cores", cpu={"cores": 2})
    vm = wait_for(lambda: (lambda v: v if cond(v, "RestartRequired") else None)(lab.vm("rs-cores")), 10,
                  what="RestartRequired")
    assert cond(vm, "RestartRequired")["message"] == "a non-live-updatable field was changed in the template spec"
