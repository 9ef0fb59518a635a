# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the vm_monitor role: selection, Prometheus series, the report, and secret redaction."""

from __future__ import annotations

import math
import re

from ansible.errors import AnsibleFilterError

from ansible_collections.virtops.kubevirt.plugins.filter.health import (
    merge_rules,
    plain,
    standalone,
    vm_health_totals,
    vm_key,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import REDACTED, redact

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
UNITS = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

SUMMARY_FIELDS = ("kind", "name", "namespace", "status", "ready", "reason", "run_strategy", "phase", "node",
                  "ip_address", "ip_addresses", "networks", "conditions_not_ok", "warning_events", "guest_os",
                  "agent_connected", "launcher_pod", "created", "paused", "restart_required")
# A namespace (DNS-1123 label) and a VM name (DNS-1123 subdomain), as vm_monitor_names entries give them.
NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def duration_seconds(value):
    """'90s', '15m', '1h', '2d', 300 -> seconds (int)."""
    if isinstance(value, bool):
        raise AnsibleFilterError("duration_seconds: expected a duration such as 15m or 1h, got %r" % value)
    if isinstance(value, (int, float)):
        return int(value)
    match = DURATION.match(str(value or ""))
    if not match:
        raise AnsibleFilterError("duration_seconds: expected a duration such as 90s, 15m, 1h or 2d, got %r" % value)
    return int(float(match.group(1)) * UNITS[match.group(2)])


def redact_secrets(data):
    """A deep copy of ``data`` with secret values hidden (REDACTED): the collection's one redaction
    (module_utils/kubevirt/redact.py: cloud-init data, secret keys, cloud-config text, kubectl's last-applied copy)."""
    return redact(data, marker=REDACTED)


def _split_name(name, default_namespace=None):
    text = str(name)
    if "/" in text:
        namespace, short = text.split("/", 1)
        return namespace, short
    return default_namespace, text


def namespaces_to_read(names, namespace=None, option_name="names", namespace_option=None):
    """The namespaces to read for ``names`` ('name' or 'namespace/name'; ``namespace`` is the namespace of
    the names without one): each namespace named, once, in order; [namespace] without names; [] (every
    namespace) when a name without a namespace may be in any of them.

    ``option_name`` is the variable the names come from and ``namespace_option`` the one of ``namespace``
    (default: option_name with _names replaced by _namespace), so a bad entry is reported under its name.
    """
    if namespace_option is None:
        namespace_option = str(option_name)[:-len("names")] + "namespace" if str(option_name).endswith("names") \
            else "namespace"
    if names is not None and not isinstance(names, (list, tuple)):
        raise AnsibleFilterError("%s must be a list of VM names (name or namespace/name), got %r."
                                 % (option_name, names))
    names = list(names or [])
    default = str(namespace or "").strip() or None
    if default is not None and not NAMESPACE.match(default):
        raise AnsibleFilterError("%s %r is not a valid namespace name." % (namespace_option, default))
    if not names:
        return [default] if default else []
    out = []
    every = False
    for entry in names:
        ns, short = _split_name(str(entry).strip(), default)
        if (ns is not None and not NAMESPACE.match(ns)) or not NAME.match(short):
            raise AnsibleFilterError("%s: %r is not a VM name or namespace/name." % (option_name, str(entry)))
        if ns is None:
            every = True  # a name without a namespace: it may be in any namespace
        elif ns not in out:
            out.append(ns)
    return [] if every else out


def _pairs(summaries, objects):
    return list(zip(summaries or [], objects or []))


def vm_monitor_read(results, vmi_results=None):
    """What the role read -> {summaries, resources}: the VMs, then the stand-alone VMIs (no VM owns them),
    each once, summaries and objects in the same order.

    ``results`` are the results of the looped vm_info task (its ``results``, or one vm_info result) with
    ``vmi_summaries``/``vmis`` when it read the stand-alone VMIs; ``vmi_results`` those of a vmi_info task
    that read them instead (with label selectors, which the server applies to the VMIs' own labels).
    """
    def listed(value):
        if isinstance(value, dict):
            return value.get("results") if "results" in value else [value]
        return list(value or [])

    vms, vmis = [], []
    for result in listed(results):
        if result.get("skipped"):
            continue
        vms += _pairs(result.get("summaries"), result.get("resources"))
        vmis += _pairs(result.get("vmi_summaries"), result.get("vmis"))
    for result in listed(vmi_results):
        if not result.get("skipped"):
            vmis += _pairs(result.get("summaries"), result.get("resources"))
    seen = {vm_key(summary) for summary, _obj in vms}
    for summary, obj in vmis:
        # A VMI a VM owns is reported with its VM; one of a VM's name that no VM owns yet is being adopted.
        if not standalone(summary) or vm_key(summary) in seen:
            continue
        seen.add(vm_key(summary))
        vms.append((summary, obj))
    return {"summaries": [plain(s) for s, _o in vms], "resources": [plain(o) for _s, o in vms]}


def vm_select(summaries, names=None, namespace=None):
    """The summaries (or VM objects) whose name is in ``names`` ('name' or 'namespace/name'); all without names."""
    if not names:
        return list(summaries or [])
    wanted = [_split_name(n, namespace) for n in names]
    out = []
    for item in summaries or []:
        ns, name = vm_key(item).split("/", 1)
        if any(name == w_name and (w_ns is None or w_ns == ns) for w_ns, w_name in wanted):
            out.append(item)
    return out


def vm_missing(summaries, names=None, namespace=None):
    """Names asked for that no summary matches, as 'namespace/name' (or 'name' when no namespace is known)."""
    found = {vm_key(s) for s in summaries or []}
    short = {k.split("/", 1)[1] for k in found}
    missing = []
    for name in names or []:
        ns, short_name = _split_name(name, namespace)
        if ns is None:
            if short_name not in short:
                missing.append(short_name)
        elif "%s/%s" % (ns, short_name) not in found:
            missing.append("%s/%s" % (ns, short_name))
    return missing


def _regex_alternatives(values):
    """A PromQL regex (in a double-quoted string) that matches exactly one of ``values``."""
    return "|".join(re.escape(v) for v in values).replace("\\", "\\\\")


def promql_selector(namespace=None, names=None, extra=None):
    """A PromQL label matcher for the selection: namespace="x",name=~"a|b" (namespace=~"x|y" for a list)."""
    parts = []
    namespaces = [namespace] if isinstance(namespace, str) else list(namespace or [])
    namespaces = sorted({str(n) for n in namespaces if n})
    if len(namespaces) == 1:
        parts.append('namespace="%s"' % namespaces[0].replace('"', '\\"'))
    elif namespaces:
        parts.append('namespace=~"%s"' % _regex_alternatives(namespaces))
    short = sorted({_split_name(n)[1] for n in names or []})
    if short:
        parts.append('name=~"%s"' % _regex_alternatives(short))
    if extra:
        parts.append(str(extra))
    return ",".join(parts)


def vm_monitor_queries(queries, namespace=None, names=None, rate="5m"):
    """The metric queries ({metric: {query, unit}}) ready to send, as a list of {key, value: {query, unit}}
    (the shape of dict2items, to loop over): __SELECTOR__ in each query becomes the PromQL label matcher
    of the VMs (promql_selector(namespace, names)), __RATE__ the rate window."""
    if queries is None:
        return []
    if not isinstance(queries, dict):
        raise AnsibleFilterError("vm_monitor_queries: expected a dict of {metric: {query, unit}}, got %r"
                                 % type(queries).__name__)
    selector = promql_selector(namespace, names)
    out = []
    for metric, spec in queries.items():
        if not isinstance(spec, dict) or not spec.get("query"):
            raise AnsibleFilterError("vm_monitor_queries: metric %r needs a dict with a query, got %r" % (metric, spec))
        value = plain(spec)
        value["query"] = str(spec["query"]).replace("__SELECTOR__", selector).replace("__RATE__", str(rate))
        out.append({"key": metric, "value": value})
    return out


def prom_series(response, key_labels=("namespace", "name")):
    """Prometheus query_range JSON -> {"namespace/name": [[unix_time, value], ...]}."""
    if response is None:
        return {}
    if not isinstance(response, dict):
        raise AnsibleFilterError("prom_series: expected Prometheus' JSON answer, got %r" % type(response).__name__)
    if response.get("status") not in (None, "success"):
        raise AnsibleFilterError("prom_series: Prometheus answered %s: %s"
                                 % (response.get("errorType"), response.get("error")))
    data = response.get("data") or {}
    out = {}
    for entry in data.get("result") or []:
        labels = entry.get("metric") or {}
        key = "/".join(str(labels.get(k, "")) for k in key_labels)
        values = entry.get("values")
        if values is None and entry.get("value") is not None:
            values = [entry["value"]]
        points = []
        for t, v in values or []:
            try:
                number = float(v)
            except (TypeError, ValueError):
                continue
            if math.isnan(number) or math.isinf(number):
                continue
            points.append([float(t), number])
        out.setdefault(key, []).extend(points)
    return out


def series_stats(points):
    """{min, max, avg, last, samples} of [[t, v], ...] (None values when empty)."""
    values = [p[1] for p in points or []]
    if not values:
        return {"min": None, "max": None, "avg": None, "last": None, "samples": 0}
    return {"min": min(values), "max": max(values), "avg": sum(values) / len(values), "last": values[-1],
            "samples": len(values)}


def _quantity(value):
    """A Kubernetes CPU quantity ('2', '500m', 1.5) -> cores."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        if text.endswith("m"):
            return float(text[:-1]) / 1000.0
        return float(text)
    except ValueError:
        return None


def _domain(obj):
    """spec.domain of a VMI, spec.template.spec.domain of a VM (list items carry no kind: the shape tells)."""
    spec = ((obj or {}).get("spec") or {})
    if "template" in spec or "domain" not in spec:
        spec = (spec.get("template") or {}).get("spec") or {}
    return spec.get("domain") or {}


def vm_vcpus(vm):
    """vCPUs of a VM object from its template, or of a VMI (cpu topology, else resources); None with an
    instancetype."""
    spec = ((vm or {}).get("spec") or {})
    domain = _domain(vm)
    cpu = domain.get("cpu") or {}
    if cpu.get("cores") or cpu.get("sockets") or cpu.get("threads"):
        return int(cpu.get("cores") or 1) * int(cpu.get("sockets") or 1) * int(cpu.get("threads") or 1)
    resources = domain.get("resources") or {}
    for part in ("limits", "requests"):
        cores = _quantity((resources.get(part) or {}).get("cpu"))
        if cores:
            return max(1.0, cores)
    if spec.get("instancetype"):
        return None
    return 1


def vm_metrics(query_results, resources=None):
    """The uri results of the metric queries (loop over {name: {query, unit}}) -> per VM stats.

    Returns {"namespace/name": {metric: {values, min, max, avg, last, samples, unit}}} plus
    ``cpu_percent`` (cpu_cores over the VM's vCPUs) when cpu_cores and the vCPU count are known.
    Queries that failed are listed under the key "_errors".
    """
    out = {"_errors": []}
    for result in query_results or []:
        item = result.get("item") or {}
        name = item.get("key") if isinstance(item, dict) else str(item)
        spec = item.get("value") if isinstance(item, dict) else {}
        unit = (spec or {}).get("unit", "")
        if result.get("skipped"):
            continue
        status = result.get("status")
        if result.get("failed") or (status is not None and status != 200):
            answer = result.get("json") or {}
            msg = answer.get("error") or result.get("msg") or "query failed"
            out["_errors"].append({"metric": name, "msg": ("HTTP %s: %s" % (status, msg))[:300]})
            continue
        try:
            series = prom_series(result.get("json"))
        except AnsibleFilterError as exc:
            out["_errors"].append({"metric": name, "msg": str(exc)})
            continue
        for key, points in series.items():
            entry = dict(series_stats(points), values=points, unit=unit)
            out.setdefault(key, {})[name] = entry
    vcpus = {vm_key(vm): vm_vcpus(vm) for vm in resources or [] if isinstance(vm, dict)}
    for key, metrics in out.items():
        if key == "_errors" or "cpu_cores" not in metrics or "cpu_percent" in metrics:
            continue
        count = vcpus.get(key)
        if not count:
            continue
        points = [[t, 100.0 * v / count] for t, v in metrics["cpu_cores"]["values"]]
        metrics["cpu_percent"] = dict(series_stats(points), values=points, unit="%", vcpus=count)
    return out


def vm_monitor_report(summaries, verdicts, metrics=None, resources=None, context=None, missing=None):
    """The whole report as one dict (JSON-ready, secrets redacted): context, totals, one entry per VM."""
    summaries = summaries or []
    by_key = {vm_key(v): v for v in verdicts or []}
    objects = {vm_key(o): o for o in resources or [] if isinstance(o, dict)}
    metrics = metrics or {}
    vms = []
    for summary in summaries:
        key = vm_key(summary)
        entry = {k: plain(summary.get(k)) for k in SUMMARY_FIELDS}
        entry["standalone"] = standalone(summary)
        verdict = by_key.get(key) or {}
        entry["severity"] = verdict.get("severity", "ok")
        entry["healthy"] = verdict.get("healthy", True)
        entry["findings"] = verdict.get("findings", [])
        vm = objects.get(key) or {}
        meta = vm.get("metadata") or {}
        entry["labels"] = meta.get("labels") or {}
        entry["created_at"] = meta.get("creationTimestamp")
        entry["vcpus"] = vm_vcpus(vm) if vm else None
        entry["memory"] = (_domain(vm).get("memory") or {}).get("guest")
        entry["metrics"] = plain(metrics.get(key) or {})
        vms.append(entry)
    for name in missing or []:
        entry = {k: None for k in SUMMARY_FIELDS}
        what = name if "/" in name else "named %s" % name
        entry.update({"name": name.split("/")[-1], "namespace": name.split("/")[0] if "/" in name else None,
                      "status": "NotFound", "ready": False, "standalone": False,
                      "reason": "NotFound: no such VirtualMachine or stand-alone VirtualMachineInstance",
                      "severity": "critical", "healthy": False, "metrics": {}, "labels": {}, "warning_events": [],
                      "conditions_not_ok": [], "ip_addresses": [], "networks": {}, "vcpus": None, "memory": None,
                      "created_at": None,
                      "findings": [{"rule": "not_found", "severity": "critical",
                                    "message": "no VirtualMachine or stand-alone VirtualMachineInstance %s exists%s"
                                               % (what, "" if "/" in name else " in the namespaces read")}]})
        vms.append(entry)
    order = {"critical": 0, "warning": 1, "info": 2, "ok": 3}
    vms.sort(key=lambda v: (order.get(v["severity"], 9), v.get("namespace") or "", v.get("name") or ""))
    totals = vm_health_totals([{"name": v["name"], "namespace": v["namespace"], "status": v["status"],
                                "severity": v["severity"], "healthy": v["healthy"]} for v in vms])
    totals["standalone_vmis"] = sum(1 for v in vms if v.get("standalone"))
    totals["restart_required_vms"] = ["%s/%s" % (v["namespace"], v["name"]) for v in vms if v.get("restart_required")]
    context = plain(context or {})
    context["rules"] = merge_rules(context.get("rules"))
    report = {
        "kind": "VirtualMachineHealthReport",
        "version": 1,
        "context": context,
        "totals": totals,
        "healthy": totals["unhealthy"] == 0,
        "metric_errors": list(metrics.get("_errors") or []),
        "vms": vms,
    }
    return redact_secrets(report)


def vm_report_lines(report, width=160):
    """A short plain-text summary of a report for the task output (list of lines)."""
    totals = report.get("totals") or {}
    first = "%d VMs: %d healthy, %d unhealthy (%s)" % (
        totals.get("vms", 0), totals.get("healthy", 0), totals.get("unhealthy", 0),
        ", ".join("%s %d" % (k, v) for k, v in sorted((totals.get("by_status") or {}).items())))
    if totals.get("standalone_vmis"):
        first += "; %d of them stand-alone VMIs" % totals["standalone_vmis"]
    if totals.get("restart_required_vms"):
        first += "; restart required: %s" % ", ".join(totals["restart_required_vms"])
    lines = [first]
    for vm in report.get("vms") or []:
        if vm.get("healthy"):
            continue
        for finding in vm.get("findings") or []:
            line = "%-8s %s/%s%s [%s] %s" % (
                finding["severity"].upper(), vm.get("namespace"), vm.get("name"),
                " (stand-alone VMI)" if vm.get("standalone") else "", finding["rule"], finding["message"])
            lines.append(line if len(line) <= width else line[:width - 3] + "...")
    return lines


class FilterModule(object):
    """The public filters (one documentation file each: plugins/filter/<name>.yml). The other functions
    of this file are the machinery behind them (and the unit tests' entry points), not filters."""

    def filters(self):
        return {
            "duration_seconds": duration_seconds,
            "redact_secrets": redact_secrets,
            "namespaces_to_read": namespaces_to_read,
            "vm_monitor_read": vm_monitor_read,
            "vm_select": vm_select,
            "vm_missing": vm_missing,
            "vm_monitor_queries": vm_monitor_queries,
            "vm_metrics": vm_metrics,
            "vm_monitor_report": vm_monitor_report,
            "vm_report_lines": vm_report_lines,
        }
