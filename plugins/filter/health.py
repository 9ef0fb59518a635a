# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health rules for VirtualMachines: vm_info summaries (+ objects, + metrics) -> one verdict per VM."""

from __future__ import annotations

import copy
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

SEVERITIES = ("ok", "info", "warning", "critical")
RANK = {name: index for index, name in enumerate(SEVERITIES)}

# Every rule: enabled, severity, and its threshold when it has one. Documented in
# roles/vm_monitor/meta/argument_specs.yml (vm_monitor_rules).
DEFAULT_RULES = {
    "not_running": {"enabled": True, "severity": "critical"},
    "not_ready": {"enabled": True, "severity": "critical"},
    "stopped": {"enabled": False, "severity": "warning"},
    "agent_missing": {"enabled": True, "severity": "warning"},
    "restart_required": {"enabled": True, "severity": "warning"},
    "failure": {"enabled": True, "severity": "warning"},
    "restarts": {"enabled": True, "severity": "warning", "max": 3},
    "cpu": {"enabled": True, "severity": "warning", "max_percent": 90.0, "aggregate": "avg"},
    "memory": {"enabled": True, "severity": "warning", "max_percent": 90.0, "aggregate": "avg"},
    "warning_events": {"enabled": False, "severity": "info", "max": 0},
}
AGGREGATES = ("avg", "max", "last")
# Run strategies under which KubeVirt keeps (or was asked to keep) the VM running.
WANTS_RUNNING = ("Always", "RerunOnFailure")
# What a stand-alone VMI (no VM owns it) shows when it ended or is ending on purpose: it is not coming back.
VMI_ENDED = ("Succeeded", "Stopping")


def plain(value):
    """A plain copy of template data (dicts, lists, scalars); never deepcopy Ansible's lazy containers."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def merge_rules(rules=None):
    """DEFAULT_RULES with the user's overrides (rule: {key: value}, or rule: false to disable)."""
    merged = copy.deepcopy(DEFAULT_RULES)
    for name, override in (rules or {}).items():
        if name not in merged:
            raise AnsibleFilterError("vm_health: unknown rule %r (known: %s)" % (name, ", ".join(sorted(merged))))
        if isinstance(override, bool):
            merged[name]["enabled"] = override
            continue
        if override is None:
            continue
        if not isinstance(override, dict):
            raise AnsibleFilterError("vm_health: rule %r must be a dict or a boolean, got %r" % (name, override))
        for key, value in override.items():
            if value is None:
                continue
            if key not in merged[name]:
                raise AnsibleFilterError("vm_health: rule %r has no option %r (options: %s)"
                                         % (name, key, ", ".join(sorted(merged[name]))))
            merged[name][key] = value
        if merged[name]["severity"] not in SEVERITIES[1:]:
            raise AnsibleFilterError("vm_health: rule %r severity must be one of info, warning, critical, got %r"
                                     % (name, merged[name]["severity"]))
        if merged[name].get("aggregate", "avg") not in AGGREGATES:
            raise AnsibleFilterError("vm_health: rule %r aggregate must be one of %s, got %r"
                                     % (name, ", ".join(AGGREGATES), merged[name]["aggregate"]))
    return merged


def vm_key(obj):
    """'namespace/name' of a summary, a VM object or a verdict."""
    if not isinstance(obj, dict):
        return str(obj)
    meta = obj.get("metadata") or {}
    return "%s/%s" % (obj.get("namespace") or meta.get("namespace"), obj.get("name") or meta.get("name"))


def restarts_of(vm):
    """How often KubeVirt failed to start the VM in a row (status.startFailure.consecutiveFailCount)."""
    failure = ((vm or {}).get("status") or {}).get("startFailure") or {}
    try:
        return int(failure.get("consecutiveFailCount") or 0)
    except (TypeError, ValueError):
        return 0


def _stat(metric, aggregate):
    if not isinstance(metric, dict):
        return None
    value = metric.get(aggregate)
    return None if value is None else float(value)


# The usage rules: (rule, its metric from vm_metrics, the finding's text: aggregate, value, limit).
USAGE_RULES = (
    ("cpu", "cpu_percent", "CPU %s %.1f %% of its vCPUs over the window (limit %.0f %%)"),
    ("memory", "memory_percent", "memory in use %s %.1f %% of the guest's memory (limit %.0f %%)"),
)


def standalone(summary):
    """Is this the summary of a stand-alone VirtualMachineInstance (no VirtualMachine owns it)?"""
    return summary.get("kind") == "VirtualMachineInstance" and not summary.get("owner_vm")


def _wants_running(summary):
    if standalone(summary):
        # Nothing restarts a stand-alone VMI: it exists to run until its guest shuts down.
        return summary.get("status") not in VMI_ENDED
    strategy = summary.get("run_strategy")
    if strategy in WANTS_RUNNING:
        return True
    if strategy in ("Manual", "Once"):
        # Running on request: expected to run while a VMI exists.
        return bool(summary.get("created"))
    return False


def restart_required_message(summary):
    """Why KubeVirt says the VM needs a restart: its RestartRequired condition's reason and message."""
    cond = next((c for c in summary.get("conditions_not_ok") or [] if c.get("type") == "RestartRequired"), {})
    why = ": ".join(str(x) for x in (cond.get("reason"), cond.get("message")) if x) or "RestartRequired is True"
    return ("restart required (%s); a template change waits for the next restart: restart it with "
            "virtops.kubevirt.vm_power (state: restarted)" % why)


def failure_condition(summary):
    """KubeVirt's Failure condition when it is True (the VM could not do something it was asked), or None."""
    return next((c for c in summary.get("conditions_not_ok") or []
                 if c.get("type") == "Failure" and str(c.get("status")) == "True"), None)


def evaluate(summary, rules, vm=None, metrics=None):
    """The verdict for one VM: {name, namespace, status, severity, healthy, findings: [...]}."""
    findings = []

    def add(rule, message, **data):
        findings.append(dict({"rule": rule, "severity": rules[rule]["severity"], "message": message}, **data))

    status = summary.get("status") or "Unknown"
    reason = summary.get("reason")
    running = status == "Running"
    if _wants_running(summary) and not running:
        if rules["not_running"]["enabled"]:
            what = "stand-alone VMI" if standalone(summary) else "run strategy %s" % summary.get("run_strategy")
            add("not_running", reason or "%s (%s)" % (status, what), status=status)
    elif not _wants_running(summary) and not running and status in ("Stopped", "Stopping") + VMI_ENDED:
        if rules["stopped"]["enabled"]:
            add("stopped", reason or "Stopped", status=status)
    elif running and not summary.get("ready") and rules["not_ready"]["enabled"]:
        add("not_ready", reason or "Running but not ready", status=status)
    if running and summary.get("ready") and summary.get("agent_connected") is False \
            and rules["agent_missing"]["enabled"]:
        add("agent_missing", "the guest agent is not connected (no guest OS data, IPs only from the pod network)")
    if summary.get("restart_required") and rules["restart_required"]["enabled"]:
        add("restart_required", restart_required_message(summary))
    failure = failure_condition(summary)
    if failure and rules["failure"]["enabled"] and not any(f["rule"] in ("not_running", "not_ready") for f in findings):
        # Already the reason of a not_running/not_ready finding; otherwise (a running, ready VM whose
        # hot-plug failed, a VM stopped as asked that cannot start) it would go unseen.
        add("failure", "KubeVirt reports Failure=True (%s)" % ": ".join(
            str(x) for x in (failure.get("reason"), failure.get("message")) if x))
    count = restarts_of(vm)
    if rules["restarts"]["enabled"] and count > int(rules["restarts"]["max"]):
        add("restarts", "KubeVirt failed to start it %d times in a row (more than %d)"
            % (count, int(rules["restarts"]["max"])), value=count)
    metrics = metrics or {}
    for rule, metric, text in USAGE_RULES:
        limit = rules[rule]
        value = _stat(metrics.get(metric), limit["aggregate"]) if limit["enabled"] else None
        if value is not None and value > float(limit["max_percent"]):
            add(rule, text % (limit["aggregate"], value, float(limit["max_percent"])), value=round(value, 2))
    events = summary.get("warning_events") or []
    if rules["warning_events"]["enabled"] and len(events) > int(rules["warning_events"]["max"]):
        latest = events[0]
        add("warning_events", "%d warning event(s), latest %s: %s"
            % (len(events), latest.get("reason"), latest.get("message")), value=len(events))
    severity = "ok"
    for finding in findings:
        if RANK[finding["severity"]] > RANK[severity]:
            severity = finding["severity"]
    return {
        "name": summary.get("name"),
        "namespace": summary.get("namespace"),
        "status": status,
        "reason": reason,
        "severity": severity,
        "healthy": RANK[severity] < RANK["warning"],
        "findings": findings,
    }


def vm_health(summaries, rules=None, metrics=None, resources=None):
    """One verdict per summary (vm_info's ``summaries``), in the same order.

    ``rules`` overrides DEFAULT_RULES; ``metrics`` is {"ns/name": {"cpu_percent": {"avg":..}, ...}}
    (what vm_metrics returns); ``resources`` are the VM objects (vm_info's ``resources``) for
    counters that only the object has (start failures).
    """
    if summaries is None:
        return []
    if not isinstance(summaries, list):
        raise AnsibleFilterError("vm_health: expected the list of summaries vm_info returns, got %r"
                                 % type(summaries).__name__)
    merged = merge_rules(rules)
    objects = {vm_key(vm): vm for vm in resources or [] if isinstance(vm, dict)}
    metrics = metrics or {}
    return [evaluate(s, merged, objects.get(vm_key(s)), metrics.get(vm_key(s))) for s in summaries]


def vm_health_totals(verdicts):
    """Counts per severity and per status, plus the unhealthy VMs' keys."""
    totals = {"vms": 0, "healthy": 0, "unhealthy": 0, "by_severity": {s: 0 for s in SEVERITIES},
              "by_status": {}, "unhealthy_vms": []}
    for verdict in verdicts or []:
        totals["vms"] += 1
        totals["by_severity"][verdict["severity"]] += 1
        totals["by_status"][verdict["status"]] = totals["by_status"].get(verdict["status"], 0) + 1
        if verdict["healthy"]:
            totals["healthy"] += 1
        else:
            totals["unhealthy"] += 1
            totals["unhealthy_vms"].append(vm_key(verdict))
    return totals


class FilterModule(object):
    def filters(self):
        return {
            "vm_health": vm_health,
            "vm_health_totals": vm_health_totals,
        }
