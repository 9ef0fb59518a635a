"""plugins/filter/health.py: the health rules."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.virtops.kubevirt.plugins.filter import health


def summary(name="vm1", status="Running", ready=True, run_strategy="Always", agent=True, **extra):
    out = {"name": name, "namespace": "ns", "status": status, "ready": ready, "run_strategy": run_strategy,
           "agent_connected": agent, "created": status not in ("Stopped",), "reason": None, "warning_events": []}
    out.update(extra)
    return out


def rules_of(verdict):
    return [f["rule"] for f in verdict["findings"]]


def test_healthy_vm():
    verdict = health.vm_health([summary()])[0]
    assert verdict == {"name": "vm1", "namespace": "ns", "status": "Running", "reason": None, "severity": "ok",
                       "healthy": True, "findings": []}


@pytest.mark.parametrize("status,reason", [
    ("ErrImagePull", "ErrImagePull: cannot pull the container disk image 'quay.io/x/does-not-exist:1'"),
    ("Paused", "Paused: VMI was paused by user"),
    ("Starting", "Starting: the VMI is Scheduling"),
    ("ErrorUnschedulable", "ErrorUnschedulable: 0/3 nodes are available"),
    ("CrashLoopBackOff", None),
])
def test_not_running_names_the_reason(status, reason):
    verdict = health.vm_health([summary(status=status, ready=False, reason=reason)])[0]
    assert rules_of(verdict) == ["not_running"]
    assert verdict["severity"] == "critical" and not verdict["healthy"]
    assert verdict["findings"][0]["message"] == (reason or "%s (run strategy Always)" % status)
    assert verdict["findings"][0]["status"] == status


def test_stopped_vm_is_fine_unless_asked():
    vm = summary(status="Stopped", ready=False, run_strategy="Halted", reason="Stopped: run_strategy is Halted")
    assert health.vm_health([vm])[0]["healthy"]
    verdict = health.vm_health([vm], {"stopped": True})[0]
    assert rules_of(verdict) == ["stopped"] and verdict["severity"] == "warning"


@pytest.mark.parametrize("strategy,created,flagged", [
    ("Manual", True, True), ("Manual", False, False), ("Once", True, True), ("RerunOnFailure", False, True),
])
def test_run_strategies(strategy, created, flagged):
    vm = summary(status="Stopped", ready=False, run_strategy=strategy, created=created)
    assert ("not_running" in rules_of(health.vm_health([vm])[0])) is flagged


def test_running_not_ready():
    verdict = health.vm_health([summary(ready=False, reason="Running but not ready: GuestNotRunning")])[0]
    assert rules_of(verdict) == ["not_ready"]
    assert verdict["findings"][0]["message"].startswith("Running but not ready")


def test_agent_missing_is_a_warning():
    verdict = health.vm_health([summary(agent=False)])[0]
    assert rules_of(verdict) == ["agent_missing"] and verdict["severity"] == "warning" and not verdict["healthy"]
    assert health.vm_health([summary(agent=False)], {"agent_missing": False})[0]["healthy"]
    assert health.vm_health([summary(agent=False)], {"agent_missing": {"severity": "info"}})[0]["healthy"]


def test_restarts_from_start_failures():
    vm = {"metadata": {"name": "vm1", "namespace": "ns"}, "status": {"startFailure": {"consecutiveFailCount": 5}}}
    verdict = health.vm_health([summary()], resources=[vm])[0]
    assert rules_of(verdict) == ["restarts"] and verdict["findings"][0]["value"] == 5
    assert health.vm_health([summary()], {"restarts": {"max": 5}}, resources=[vm])[0]["healthy"]


def metric(avg, mx, last):
    return {"avg": avg, "max": mx, "last": last, "values": []}


@pytest.mark.parametrize("rule,key", [("cpu", "cpu_percent"), ("memory", "memory_percent")])
def test_metric_limits(rule, key):
    metrics = {"ns/vm1": {key: metric(50.0, 99.0, 60.0)}}
    assert health.vm_health([summary()], metrics=metrics)[0]["healthy"]  # avg 50 < 90
    verdict = health.vm_health([summary()], {rule: {"aggregate": "max"}}, metrics=metrics)[0]
    assert rules_of(verdict) == [rule] and verdict["findings"][0]["value"] == 99.0
    verdict = health.vm_health([summary()], {rule: {"max_percent": 40}}, metrics=metrics)[0]
    assert rules_of(verdict) == [rule] and "limit 40 %" in verdict["findings"][0]["message"]


def test_warning_events_rule():
    vm = summary(warning_events=[{"reason": "BackOff", "message": "Back-off restarting"}])
    assert health.vm_health([vm])[0]["healthy"]
    verdict = health.vm_health([vm], {"warning_events": {"enabled": True, "severity": "warning"}})[0]
    assert rules_of(verdict) == ["warning_events"] and "BackOff" in verdict["findings"][0]["message"]


def test_worst_severity_wins():
    vm = summary(status="Paused", ready=False, reason="Paused: by user")
    metrics = {"ns/vm1": {"memory_percent": metric(95, 95, 95)}}
    verdict = health.vm_health([vm], metrics=metrics)[0]
    assert rules_of(verdict) == ["not_running", "memory"] and verdict["severity"] == "critical"


@pytest.mark.parametrize("rules,message", [
    ({"nope": True}, "unknown rule 'nope'"),
    ({"cpu": {"max": 3}}, "rule 'cpu' has no option 'max'"),
    ({"cpu": {"severity": "fatal"}}, "severity must be one of"),
    ({"cpu": {"aggregate": "p99"}}, "aggregate must be one of"),
    ({"cpu": 3}, "must be a dict or a boolean"),
])
def test_bad_rules(rules, message):
    with pytest.raises(AnsibleFilterError, match=message):
        health.vm_health([summary()], rules)


def test_bad_input():
    assert health.vm_health(None) == []
    with pytest.raises(AnsibleFilterError, match="list of summaries"):
        health.vm_health({"a": 1})


def test_totals():
    verdicts = health.vm_health([summary("a"), summary("b", status="Paused", ready=False),
                                 summary("c", agent=False)])
    totals = health.vm_health_totals(verdicts)
    assert totals["vms"] == 3 and totals["healthy"] == 1 and totals["unhealthy"] == 2
    assert totals["by_severity"] == {"ok": 1, "info": 0, "warning": 1, "critical": 1}
    assert totals["by_status"] == {"Running": 2, "Paused": 1}
    assert totals["unhealthy_vms"] == ["ns/b", "ns/c"]


def test_defaults_are_not_mutated():
    before = health.merge_rules()
    health.merge_rules({"cpu": {"max_percent": 1}})
    assert health.merge_rules() == before


def test_restart_required_is_a_warning_with_the_reason():
    vm = summary(restart_required=True, conditions_not_ok=[
        {"type": "RestartRequired", "status": "True", "reason": "NonLiveUpdatable",
         "message": "a non-live-updatable field was changed in the template spec"}])
    verdict = health.vm_health([vm])[0]
    assert rules_of(verdict) == ["restart_required"] and verdict["severity"] == "warning"
    assert not verdict["healthy"]
    assert verdict["findings"][0]["message"] == (
        "restart required (NonLiveUpdatable: a non-live-updatable field was changed in the template spec); a "
        "template change waits for the next restart: restart it with virtops.kubevirt.vm_power (state: restarted)")
    assert health.vm_health([vm], {"restart_required": False})[0]["healthy"]
    # no condition details: still said
    assert "RestartRequired is True" in health.vm_health([summary(restart_required=True)])[0]["findings"][0]["message"]


HOTPLUG_FAILURE = {"type": "Failure", "status": "True", "reason": "HotPlugVolumeError",
                   "message": "Error encountered while handling volume hotplug requests: no such claim"}


def test_a_failure_condition_no_other_rule_flags_is_a_warning():
    # issue 14: a summary never hides a Failure condition, nor does the monitor
    verdict = health.vm_health([summary(conditions_not_ok=[HOTPLUG_FAILURE])])[0]
    assert rules_of(verdict) == ["failure"] and not verdict["healthy"]
    assert verdict["findings"][0]["message"] == (
        "KubeVirt reports Failure=True (HotPlugVolumeError: Error encountered while handling volume hotplug "
        "requests: no such claim)")
    assert health.vm_health([summary(conditions_not_ok=[HOTPLUG_FAILURE])], {"failure": False})[0]["healthy"]
    # Said once: when the VM is not running because of it, not_running carries the reason.
    down = summary(status="Stopped", reason="FailedFindInstancetype: ...", conditions_not_ok=[HOTPLUG_FAILURE])
    assert rules_of(health.vm_health([down])[0]) == ["not_running"]


@pytest.mark.parametrize("status,rule", [
    ("Running", None), ("Failed", "not_running"), ("Pending", "not_running"), ("Scheduling", "not_running"),
    ("Paused", "not_running"), ("Succeeded", None), ("Stopping", None),
])
def test_standalone_vmi_runs_until_its_guest_stops(status, rule):
    vmi = {"kind": "VirtualMachineInstance", "owner_vm": None, "name": "solo", "namespace": "ns",
           "status": status, "ready": status == "Running", "reason": None, "agent_connected": True}
    verdict = health.vm_health([vmi])[0]
    assert rules_of(verdict) == ([rule] if rule else [])
    if rule:
        assert verdict["findings"][0]["message"] == "%s (stand-alone VMI)" % status
    if status in ("Succeeded", "Stopping"):
        assert rules_of(health.vm_health([vmi], {"stopped": True})[0]) == ["stopped"]
