"""kubevirt/state.py: each KubeVirt rule, defined once."""
import pytest

from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import state


def vm(strategy=None, running=None, generation=2, status=None):
    spec = {}
    if strategy is not None:
        spec["runStrategy"] = strategy
    if running is not None:
        spec["running"] = running
    return {"metadata": {"name": "vm1", "namespace": "ns", "generation": generation}, "spec": spec,
            "status": status or {}}


def vmi(phase="Running", deleting=False, paused=False, owners=()):
    meta = {"name": "vm1", "namespace": "ns", "ownerReferences": [dict(o) for o in owners]}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    conds = [{"type": "Paused", "status": "True"}] if paused else []
    return {"metadata": meta, "status": {"phase": phase, "conditions": conds}}


@pytest.mark.parametrize("strategy, running, expected", [
    ("Manual", None, "Manual"),
    (None, True, "Always"),
    (None, False, "Halted"),
    (None, None, None),
])
def test_run_strategy_from_spec_or_deprecated_running(strategy, running, expected):
    assert state.run_strategy(vm(strategy, running)) == expected
    assert state.run_strategy_of(strategy, running) == expected


def test_run_strategy_of_nothing_is_none():
    assert state.run_strategy(None) is None and state.run_strategy({}) is None


@pytest.mark.parametrize("obj, active, stopping, running, final", [
    (None, False, False, False, False),
    (vmi("Pending"), True, False, False, False),
    (vmi("Running"), True, False, True, False),
    (vmi("Running", deleting=True), False, True, False, False),
    (vmi("Failed"), False, False, False, True),
    (vmi("Succeeded"), False, False, False, True),
])
def test_vmi_phases(obj, active, stopping, running, final):
    assert state.vmi_active(obj) is active
    assert state.vmi_stopping(obj) is stopping
    assert state.vmi_running(obj) is running
    assert state.vmi_final(obj) is final


def test_paused_is_the_vmi_condition():
    assert state.vmi_paused(vmi(paused=True)) and not state.vmi_paused(vmi())


def test_vm_active_reads_the_vm_status():
    assert state.vm_active(vm(status={"printableStatus": "Starting"}))
    assert state.vm_active(vm(status={"created": True}))
    assert not state.vm_active(vm(status={"printableStatus": "Stopped"}))


@pytest.mark.parametrize("strategy, phase, for_good", [
    ("Always", "Failed", False), ("Always", "Succeeded", False),
    ("Manual", "Succeeded", False),
    ("RerunOnFailure", "Failed", False), ("RerunOnFailure", "Succeeded", True),
    ("Once", "Failed", True), ("Once", "Succeeded", True),
])
def test_which_ended_vmis_kubevirt_does_not_replace(strategy, phase, for_good):
    assert state.vmi_ends_for_good(strategy, phase) is for_good


def test_owners():
    owned = vmi(owners=[{"kind": "VirtualMachine", "name": "vm1", "uid": "u1"}])
    assert state.owner_vm(owned) == "vm1" and state.owned_by(owned, "u1")
    assert not state.owned_by(owned, "u-earlier-vm") and not state.owned_by(owned, None)
    assert state.owner_vm(vmi()) is None
    pvc = {"metadata": {"ownerReferences": [{"kind": "DataVolume", "name": "dv1", "uid": "u2"}]}}
    assert state.owner(pvc, "DataVolume") == "dv1" and state.owner_vm(pvc) is None


# -- has KubeVirt processed our template change? ---------------------------------------------------
# What virt-controller (and lab/simulator/vm.py, update_status) writes while the VM has a VMI:
#   status.observedGeneration = the generation the VMI was created from (annotation kubevirt.io/vm-generation)
#   status.desiredGeneration  = the VM's metadata.generation it has just synced
# Our write moved the VM from generation 1 to 2.
def test_a_restart_required_change_is_processed_while_observed_generation_stays_behind():
    synced = vm(generation=2, status={"observedGeneration": 1, "desiredGeneration": 2,
                                      "conditions": [{"type": "RestartRequired", "status": "True"}]})
    assert state.template_change_processed(synced, 2)


def test_a_live_updated_change_is_processed_when_desired_generation_reaches_ours():
    """No RestartRequired (e.g. a NIC added with the LiveUpdate rollout), and the VMI still runs
    from generation 1: observedGeneration stays 1 until a restart, so a check on it would only
    end at its timeout; desiredGeneration says the controller has seen generation 2."""
    synced = vm(generation=2, status={"observedGeneration": 1, "desiredGeneration": 2})
    assert state.template_change_processed(synced, 2)


def test_a_status_from_before_our_write_is_not_processed():
    stale = vm(generation=2, status={"observedGeneration": 1, "desiredGeneration": 1})
    assert not state.template_change_processed(stale, 2)
    assert not state.template_change_processed(vm(generation=2, status={}), 2)


def test_nothing_to_wait_for_without_a_generation_or_a_vm():
    assert state.template_change_processed(vm(status={}), None)
    assert state.template_change_processed(None, 2)


# -- live resize -------------------------------------------------------------------------------------
def resize_vm(sockets=2, guest="2Gi"):
    return {"spec": {"template": {"spec": {"domain": {"cpu": {"sockets": sockets}, "memory": {"guest": guest}}}}}}


def resize_vmi(sockets=1, guest_current="1Gi", conditions=None, phase="Running"):
    return {"metadata": {"name": "vm1"}, "status": {
        "phase": phase, "currentCPUTopology": {"sockets": sockets, "cores": 1, "threads": 1},
        "memory": {"guestAtBoot": "1Gi", "guestCurrent": guest_current, "guestRequested": guest_current},
        "conditions": conditions or []}}


def test_live_resize_pending_until_the_vmi_status_has_the_new_topology_and_memory():
    assert state.live_resize_pending(resize_vm(), resize_vmi()) == ["CPU sockets 1 -> 2", "memory 1Gi -> 2Gi"]
    assert state.live_resize_pending(resize_vm(), resize_vmi(sockets=2)) == ["memory 1Gi -> 2Gi"]
    # 2048Mi is 2Gi: quantities compare by value
    assert state.live_resize_pending(resize_vm(guest="2048Mi"), resize_vmi(sockets=2, guest_current="2Gi")) == []
    hot = [{"type": "HotVCPUChange", "status": "True"}]
    assert state.live_resize_pending(resize_vm(), resize_vmi(sockets=2, guest_current="2Gi", conditions=hot)) == \
        ["HotVCPUChange in progress"]
    assert state.live_resize_pending(resize_vm(), None) == []
    assert state.live_resize_pending(resize_vm(), resize_vmi(phase="Succeeded")) == []


def test_live_resize_failure_is_a_false_hot_memory_change():
    failed = [{"type": "HotMemoryChange", "status": "False",
               "message": "memory hotplug failed, the VM configuration is not supported"}]
    assert state.live_resize_failure(resize_vmi(conditions=failed)) == \
        "memory hotplug failed, the VM configuration is not supported"
    assert state.live_resize_failure(resize_vmi(conditions=[{"type": "HotMemoryChange", "status": "True"}])) is None
