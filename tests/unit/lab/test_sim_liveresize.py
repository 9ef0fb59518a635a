"""CPU and memory hot-plug rules of the lab (lab/simulator/liveresize.py), with KubeVirt v1.8.4's values
(pkg/defaults/defaults.go, pkg/liveupdate/memory, pkg/virt-controller/watch/vm/vm.go handleCPUChangeRequest /
handleMemoryHotplugRequest, pkg/virt-handler/migration-target.go)."""
from simulator import liveresize as L


def running_vmi(sockets=1, guest="1Gi", conditions=None, **cpu):
    spec = {"domain": {"cpu": {"sockets": sockets, "cores": 1, "threads": 1, **cpu}, "memory": {"guest": guest}}}
    status = {}
    L.set_vmi_defaults(spec, status)
    status["conditions"] = conditions or []
    return {"spec": spec, "status": status}


def test_defaults_give_maxima_four_times_and_the_status():
    vmi = running_vmi(sockets=2, guest="2Gi")
    assert vmi["spec"]["domain"]["cpu"]["maxSockets"] == 8
    assert vmi["spec"]["domain"]["memory"]["maxGuest"] == "8Gi"
    assert vmi["status"]["currentCPUTopology"] == {"sockets": 2, "cores": 1, "threads": 1}
    assert vmi["status"]["memory"] == {"guestAtBoot": "2Gi", "guestCurrent": "2Gi", "guestRequested": "2Gi"}


def test_defaults_keep_given_maxima_cap_at_512_vcpus_and_skip_unaligned_memory():
    assert running_vmi(sockets=1, maxSockets=3)["spec"]["domain"]["cpu"]["maxSockets"] == 3
    assert running_vmi(sockets=2, cores=128)["spec"]["domain"]["cpu"]["maxSockets"] == 4   # 512 / 128
    assert "maxGuest" not in running_vmi(guest="1000Ki")["spec"]["domain"]["memory"]
    assert "maxGuest" not in running_vmi(guest="512Mi")["spec"]["domain"]["memory"], "hot-plug needs 1Gi at least"


def test_a_topology_without_sockets_stays_so_and_gets_no_max_sockets():
    spec = {"domain": {"cpu": {"cores": 2}, "memory": {"guest": "1Gi"}}}
    status = {}
    L.set_vmi_defaults(spec, status)
    assert spec["domain"]["cpu"] == {"cores": 2}
    assert status["currentCPUTopology"] == {"cores": 2}
    # the template says no sockets either: nothing to hot-plug, no RestartRequired
    assert L.cpu_change({"domain": {"cpu": {"cores": 2}}}, {"spec": spec, "status": status}, False) is None


def test_defaults_take_sockets_and_guest_from_resources():
    spec = {"domain": {"resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}}
    status = {}
    L.set_vmi_defaults(spec, status)
    assert spec["domain"]["cpu"] == {"sockets": 2, "cores": 1, "threads": 1, "maxSockets": 8}
    assert spec["domain"]["memory"] == {"guest": "1Gi", "maxGuest": "4Gi"}


def test_cpu_change_patches_sockets_and_moves_the_cpu_request():
    vmi = running_vmi()
    vmi["spec"]["domain"]["resources"] = {"requests": {"cpu": "100m"}}
    tspec = {"domain": {"cpu": {"sockets": 2}, "resources": {"requests": {"cpu": "100m"}}}}
    what, ops = L.cpu_change(tspec, vmi, migrating=False)
    assert what == "patch"
    assert {"op": "replace", "path": "/spec/domain/cpu/sockets", "value": 2} in ops
    assert {"op": "replace", "path": "/spec/domain/resources/requests/cpu", "value": "200m"} in ops


def test_cpu_change_needs_a_restart_or_waits_as_kubevirt_says():
    vmi = running_vmi(sockets=2)
    assert L.cpu_change({"domain": {"cpu": {"sockets": 1}}}, vmi, False) == ("restart", L.MSG_CPU_REDUCED)
    assert L.cpu_change({"domain": {"cpu": {"sockets": 9}}}, vmi, False) == ("restart", L.MSG_CPU_ABOVE_MAX)
    assert L.cpu_change({"domain": {"cpu": {"sockets": 3}}}, vmi, True) == \
        ("error", "CPU hotplug is not allowed while VMI is migrating")
    busy = running_vmi(conditions=[{"type": L.VCPU_CHANGE, "status": "True"}])
    assert L.cpu_change({"domain": {"cpu": {"sockets": 2}}}, busy, False) == \
        ("error", "another CPU hotplug is in progress")
    assert L.cpu_change({"domain": {"cpu": {"sockets": 2}}}, vmi, False) is None


def test_memory_change_rules():
    vmi = running_vmi(guest="2Gi")
    assert L.memory_change({"domain": {"memory": {"guest": "4Gi"}}}, vmi, False, migratable=False) == \
        ("restart", L.MSG_MEM_NOT_MIGRATABLE)
    assert L.memory_change({"domain": {"memory": {"guest": "1Gi"}}}, vmi, False, True) == ("restart", L.MSG_MEM_LOWER)
    assert L.memory_change({"domain": {"memory": {"guest": "16Gi"}}}, vmi, False, True) == (
        "restart", "memory hotplug not supported, Guest memory is greater than the configured maxGuest memory")
    assert L.memory_change({"domain": {"memory": {"guest": "3000Ki"}}}, vmi, False, True) == (
        "restart", "memory hotplug not supported, Guest memory must be 2Mi aligned")
    failed = running_vmi(guest="2Gi", conditions=[{"type": L.MEMORY_CHANGE, "status": "False"}])
    assert L.memory_change({"domain": {"memory": {"guest": "4Gi"}}}, failed, False, True) == \
        ("restart", L.MSG_MEM_FAILED)
    what, ops = L.memory_change({"domain": {"memory": {"guest": "4Gi"}}}, vmi, False, True)
    assert what == "patch" and {"op": "replace", "path": "/spec/domain/memory/guest", "value": "4Gi"} in ops


def test_conditions_then_the_target_applies_the_change():
    vmi = running_vmi()
    assert L.hotplug_conditions(vmi) == []
    vmi["spec"]["domain"]["cpu"]["sockets"] = 2
    vmi["spec"]["domain"]["memory"]["guest"] = "2Gi"
    assert L.hotplug_conditions(vmi) == [L.VCPU_CHANGE, L.MEMORY_CHANGE]
    vmi["status"]["conditions"] = [{"type": t, "status": "True"} for t in L.hotplug_conditions(vmi)]
    assert L.needs_workload_update(vmi)
    L.apply_at_target(vmi["status"], vmi["spec"])
    assert vmi["status"]["currentCPUTopology"]["sockets"] == 2
    assert vmi["status"]["memory"] == {"guestAtBoot": "1Gi", "guestCurrent": "2Gi", "guestRequested": "2Gi"}
    assert vmi["status"]["conditions"] == [] and not L.needs_workload_update(vmi)
    assert L.hotplug_conditions(vmi) == []


def test_vm_admission_checks_sockets_and_memory_against_their_maxima():
    from simulator import webhooks as W
    vm = {"spec": {"runStrategy": "Always", "template": {"spec": {"domain": {
        "cpu": {"sockets": 5, "maxSockets": 4}, "memory": {"guest": "8Gi", "maxGuest": "4Gi"},
        "devices": {}}}}}}
    causes = W.validate_vm(vm)
    assert {"type": "FieldValueInvalid", "field": "spec.template.spec.domain.cpu.sockets",
            "message": "Number of sockets in CPU topology is greater than the maximum sockets allowed"} in causes
    assert any(c["message"] == "Guest memory is greater than the configured maxGuest memory" and
               c["field"] == "spec.template.spec.domain.memory.guest" for c in causes)
