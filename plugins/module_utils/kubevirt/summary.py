# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VM / VMI / launcher pod / events -> the summary dicts that modules and lookups return.

Pure functions. A summary answers what people ask first: is it running, where, on which IPs,
and if not, why (one line).
"""

from __future__ import annotations

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import one_line
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import (
    FINAL_PHASES,
    agent_connected,
    condition,
    condition_true,
    conditions,
    owner_vm,
    run_strategy,
    vm_failure,
    vmi_phase,
    vmi_ready,
)

# Condition type -> the status that is healthy. Others are reported when they look bad.
HEALTHY = {
    "Ready": "True",
    "Synchronized": "True",
    "PodScheduled": "True",
    "Failure": "False",
    "Paused": "False",
    "RestartRequired": "False",
    "ManualRecoveryRequired": "False",
    "DataVolumesReady": "True",
    "Provisioning": "False",
    "StorageLiveMigratable": None,
    "LiveMigratable": None,
    "AgentConnected": None,
    "AgentVersionNotSupported": "False",
    "UnsupportedGuestAgent": "False",
    "Initialized": None,
    "ContainersReady": None,
}

IMAGE_PULL = ("ErrImagePull", "ImagePullBackOff")
EVENTS_KEPT = 5


def _meta(obj):
    return (obj or {}).get("metadata") or {}


def _status(obj):
    return (obj or {}).get("status") or {}


def _is_bad(cond):
    ctype, status = cond.get("type"), str(cond.get("status"))
    if ctype in HEALTHY:
        healthy = HEALTHY[ctype]
        return healthy is not None and status != healthy
    lowered = (ctype or "").lower()
    if any(word in lowered for word in ("error", "fail", "required", "unsupported", "pressure")):
        return status == "True"
    return status == "False" and bool(cond.get("message") or cond.get("reason"))


def conditions_not_ok(*objs):
    """Conditions that are not in their healthy state, with reason and message (deduplicated)."""
    out, seen = [], set()
    for obj in objs:
        for cond in conditions(obj):
            if not _is_bad(cond):
                continue
            key = (cond.get("type"), cond.get("reason"), cond.get("message"))
            if key in seen:
                continue
            seen.add(key)
            out.append({"type": cond.get("type"), "status": cond.get("status"), "reason": cond.get("reason"),
                        "message": cond.get("message")})
    return out


# -- networks ------------------------------------------------------------------------------------
def _spec_networks(vmi):
    return [n.get("name") for n in ((vmi or {}).get("spec") or {}).get("networks") or [] if n.get("name")]


def networks(vmi):
    """{network name: {ip_address, ip_addresses, mac, interface_name}} from the VMI status."""
    out = {}
    for iface in _status(vmi).get("interfaces") or []:
        name = iface.get("name")
        ips = list(iface.get("ipAddresses") or ([iface["ipAddress"]] if iface.get("ipAddress") else []))
        key = name or iface.get("interfaceName") or "guest-%d" % len(out)
        out[key] = {
            "ip_address": iface.get("ipAddress") or (ips[0] if ips else None),
            "ip_addresses": ips,
            "mac": iface.get("mac"),
            "interface_name": iface.get("interfaceName"),
        }
    return out


def ip_addresses(vmi):
    out = []
    for data in networks(vmi).values():
        for ip in data["ip_addresses"]:
            if ip not in out:
                out.append(ip)
    return out


def primary_network(vmi):
    names = _spec_networks(vmi)
    return names[0] if names else "default"


def ip_address(vmi, network=None):
    """The IP on a network (default: the first network of the spec, else the first interface)."""
    nets = networks(vmi)
    name = network or primary_network(vmi)
    if name in nets:
        return nets[name]["ip_address"]
    if network is None:
        for data in nets.values():
            if data["ip_address"]:
                return data["ip_address"]
    return None


def guest_os(vmi):
    info = _status(vmi).get("guestOSInfo") or {}
    if not info:
        return None
    return {
        "id": info.get("id"),
        "name": info.get("name"),
        "pretty_name": info.get("prettyName"),
        "version": info.get("version"),
        "version_id": info.get("versionId"),
        "kernel_release": info.get("kernelRelease"),
        "machine": info.get("machine"),
    }


# -- pods and events ------------------------------------------------------------------------------
def launcher_pod(vmi, pods, vmi_name=None):
    """The VMI's virt-launcher pod among ``pods`` (the newest running one, else the newest)."""
    name = vmi_name or _meta(vmi).get("name")
    uid = _meta(vmi).get("uid")
    mine = []
    for pod in pods or []:
        meta = _meta(pod)
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        if uid and labels.get("kubevirt.io/created-by") == uid:
            mine.append(pod)
        elif annotations.get("kubevirt.io/domain") == name and labels.get("kubevirt.io") == "virt-launcher":
            mine.append(pod)
        elif not uid and (meta.get("name") or "").startswith("virt-launcher-%s-" % name):
            mine.append(pod)
    if not mine:
        return None
    mine.sort(key=lambda p: (_status(p).get("phase") == "Running", _meta(p).get("creationTimestamp") or ""))
    return mine[-1]


def pod_summary(pod):
    if not pod:
        return None
    status = _status(pod)
    waiting = None
    for cstatus in status.get("containerStatuses") or []:
        state = (cstatus.get("state") or {}).get("waiting")
        if state and state.get("reason"):
            waiting = {"container": cstatus.get("name"), "reason": state.get("reason"),
                       "message": state.get("message")}
            break
    return {
        "name": _meta(pod).get("name"),
        "phase": status.get("phase"),
        "node": (pod.get("spec") or {}).get("nodeName"),
        "waiting": waiting,
    }


def _event_time(event):
    series = event.get("series") or {}
    return (series.get("lastObservedTime") or event.get("lastTimestamp") or event.get("eventTime")
            or event.get("firstTimestamp") or _meta(event).get("creationTimestamp") or "")


def warning_events(events, names, keep=EVENTS_KEPT):
    """The latest Warning events about objects named in ``names`` (newest first)."""
    names = set(n for n in names if n)
    picked = []
    for event in events or []:
        if event.get("type") != "Warning":
            continue
        involved = event.get("involvedObject") or event.get("regarding") or {}
        if involved.get("name") not in names:
            continue
        picked.append(event)
    picked.sort(key=_event_time, reverse=True)
    out = []
    seen = set()
    for event in picked:
        if len(out) >= keep:
            break
        involved = event.get("involvedObject") or event.get("regarding") or {}
        key = (involved.get("kind"), involved.get("name"), event.get("reason"), event.get("message"))
        if key in seen:
            continue
        seen.add(key)
        out.append({
            "reason": event.get("reason"),
            "message": one_line(event.get("message") or event.get("note") or ""),
            "object": "%s/%s" % (involved.get("kind"), involved.get("name")),
            "count": (event.get("series") or {}).get("count") or event.get("count") or 1,
            "last_seen": _event_time(event),
        })
    return out


# -- status and reason ---------------------------------------------------------------------------
def _images(obj):
    spec = (obj or {}).get("spec") or {}
    if obj and obj.get("kind") == "VirtualMachine":
        spec = (spec.get("template") or {}).get("spec") or {}
    return [v["containerDisk"]["image"] for v in spec.get("volumes") or []
            if isinstance(v.get("containerDisk"), dict) and v["containerDisk"].get("image")]


def derived_status(vm, vmi):
    """KubeVirt's printableStatus computed from the VM and its VMI (when the VM's is missing/stale)."""
    if _meta(vm).get("deletionTimestamp"):
        return "Terminating"
    if vmi:
        if _meta(vmi).get("deletionTimestamp"):
            return "Stopping"
        migration = _status(vmi).get("migrationState") or {}
        if migration and not migration.get("completed") and not migration.get("failed"):
            return "Migrating"
        if condition_true(vmi, "Paused"):
            return "Paused"
        phase = _status(vmi).get("phase")
        if phase == "Running":
            return "Running"
        sync = condition(vmi, "Synchronized") or {}
        if str(sync.get("status")) == "False" and sync.get("reason") == "FailedPvcNotFound":
            return "ErrorPvcNotFound"
        sched = condition(vmi, "PodScheduled") or {}
        if str(sched.get("status")) == "False" and sched.get("reason") == "Unschedulable":
            return "ErrorUnschedulable"
        if str(sync.get("status")) == "False" and sync.get("reason") in IMAGE_PULL:
            return sync["reason"]
        if phase in ("Pending", "Scheduling", "Scheduled", None, ""):
            return "Starting"
        if phase in FINAL_PHASES:
            return "Stopped"
        return "Unknown"
    return "Stopped"


def vm_status(vm, vmi=None):
    """printableStatus if the VM has one, else derived."""
    return _status(vm).get("printableStatus") or derived_status(vm, vmi)


def _message_of(*conds):
    for cond in conds:
        if cond and (cond.get("message") or cond.get("reason")):
            return one_line(cond.get("message") or cond.get("reason"), 300)
    return None


def _bad_conditions(obj):
    return [c for c in conditions(obj) if _is_bad(c)]


def _failure_text(failure):
    """'FailedFindInstancetype: <KubeVirt's message>' from a VM's Failure condition."""
    return "%s: %s" % (failure.get("reason") or "Failure", _message_of(failure) or "no message")


def reason(status, vm=None, vmi=None, pod=None, events=None, ready=None):
    """One line: why it is not Running (None when it is Running and ready and KubeVirt reports no failure).

    A VM's Failure condition (virt-controller could not reconcile it: an instancetype that does
    not exist, a VMI the API refused, a failed hot-plug) is the reason whatever the printableStatus
    says: KubeVirt shows such a VM as Stopped, which alone would hide why.
    """
    events = events or []
    sync = condition(vmi, "Synchronized")
    sched = condition(vmi, "PodScheduled")
    ready_cond = condition(vmi, "Ready") or condition(vm, "Ready")
    failure = vm_failure(vm)
    latest = events[0]["message"] if events else None
    if status == "Running":
        if failure:
            return "Running, but KubeVirt reports a failure: %s" % _failure_text(failure)
        if ready or ready is None and vmi_ready(vmi):
            return None
        return "Running but not ready: %s" % (_message_of(ready_cond) or "the Ready condition is not True")
    if failure and status not in ("Stopping", "Terminating", "Migrating"):
        return "%s (%s)" % (_failure_text(failure), status or "Unknown")
    if status in IMAGE_PULL:
        images = _images(vmi) or _images(vm)
        detail = _message_of(sync) or latest or ""
        waiting = (pod_summary(pod) or {}).get("waiting") or {}
        if not detail and waiting.get("message"):
            detail = one_line(waiting["message"], 300)
        what = ("the container disk image %s" % ", ".join("'%s'" % i for i in images)) if images \
            else "a container disk image"
        return "%s: cannot pull %s%s" % (status, what, " (%s)" % detail if detail else "")
    if status == "ErrorUnschedulable":
        detail = _message_of(sched) or latest
        return "ErrorUnschedulable: the virt-launcher pod can't be scheduled%s" % (": %s" % detail if detail else "")
    if status == "ErrorPvcNotFound":
        return "ErrorPvcNotFound: %s" % (_message_of(sync) or latest or "a PVC used by a disk does not exist")
    if status == "DataVolumeError":
        return "DataVolumeError: %s" % (_message_of(failure, sync) or latest or "a DataVolume failed")
    if status == "Provisioning":
        return "Provisioning: waiting for its DataVolumes to be imported or cloned"
    if status == "WaitingForVolumeBinding":
        return "WaitingForVolumeBinding: a PVC is not bound yet%s" % (": %s" % latest if latest else "")
    if status == "Stopped":
        strategy = run_strategy(vm)
        if strategy == "Halted":
            return "Stopped: run_strategy is Halted"
        phase = vmi_phase(vmi)
        if phase in FINAL_PHASES:
            return "Stopped: the VMI ended in phase %s%s" % (phase, " (%s)" % latest if latest else "")
        if strategy == "Manual":
            return "Stopped: run_strategy is Manual and no start was requested"
        return "Stopped%s" % (": %s" % (_message_of(failure) or latest) if (failure or latest) else "")
    if status == "Starting":
        phase = _status(vmi).get("phase") or "not created yet"
        pod_phase = (pod_summary(pod) or {}).get("phase")
        detail = _message_of(*_bad_conditions(vmi))
        text = "Starting: the VMI is %s" % phase
        if pod_phase:
            text += ", its launcher pod is %s" % pod_phase
        if detail or latest:
            text += " (%s)" % (detail or latest)
        return text
    if status == "Paused":
        return "Paused: %s" % (_message_of(condition(vmi, "Paused")) or "paused by a user")
    if status == "CrashLoopBackOff":
        return "CrashLoopBackOff: the VM keeps failing to start%s" % (
            ": %s" % (_message_of(failure) or latest) if (failure or latest) else "")
    if status in ("Stopping", "Terminating", "Migrating"):
        return status
    if status in ("Pending", "Scheduling", "Scheduled"):
        # stand-alone VMI phases
        detail = _message_of(*_bad_conditions(vmi)) or latest
        return "%s%s" % (status, ": %s" % detail if detail else "")
    if status in ("Failed", "Succeeded"):
        detail = latest or _message_of(*_bad_conditions(vmi))
        return "%s%s" % (status, ": %s" % detail if detail else "")
    detail = _message_of(failure, *_bad_conditions(vmi)) or latest
    return "%s%s" % (status or "Unknown", ": %s" % detail if detail else "")


def _names(vm, vmi, pod):
    return [_meta(vm).get("name"), _meta(vmi).get("name"), _meta(pod).get("name")]


def _vmi_part(vmi, pod):
    return {
        "phase": _status(vmi).get("phase") if vmi else None,
        "node": _status(vmi).get("nodeName") or (pod_summary(pod) or {}).get("node"),
        "ip_address": ip_address(vmi) if vmi else None,
        "ip_addresses": ip_addresses(vmi) if vmi else [],
        "networks": networks(vmi) if vmi else {},
        "guest_os": guest_os(vmi),
        "agent_connected": agent_connected(vmi),
        "launcher_pod": pod_summary(pod),
        # When it became ready (its Ready condition): with the creation time, how long a start took.
        "ready_since": (condition(vmi, "Ready") or {}).get("lastTransitionTime") if vmi_ready(vmi) else None,
    }


def _head(kind, obj, status, ready):
    return {"kind": kind, "name": _meta(obj).get("name"), "namespace": _meta(obj).get("namespace"),
            "status": status, "ready": ready, "creation_time": _meta(obj).get("creationTimestamp")}


def _with_vmi_part(out, vmi, pod, bad_conditions, warnings, why):
    """A summary's common tail, in this order: the VMI's part, bad conditions, events, the reason."""
    out.update(_vmi_part(vmi, pod))
    out["conditions_not_ok"] = bad_conditions
    out["warning_events"] = warnings
    out["reason"] = why
    return out


def summarize_vm(vm, vmi=None, pods=None, events=None):
    """The summary of one VirtualMachine (with its VMI, launcher pod and events when given)."""
    pod = launcher_pod(vmi, pods, _meta(vm).get("name")) if (vmi or pods) else None
    status = vm_status(vm, vmi)
    ready = bool(_status(vm).get("ready")) if "ready" in _status(vm) else vmi_ready(vmi)
    if vmi and vmi_ready(vmi) and not _status(vm).get("printableStatus"):
        ready = True
    warnings = warning_events(events, _names(vm, vmi, pod))
    out = _head("VirtualMachine", vm, status, ready)
    out.update({
        "run_strategy": run_strategy(vm),
        "created": bool(vmi) or bool(_status(vm).get("created")),
        "restart_required": condition_true(vm, "RestartRequired"),
        # The VMI is where pausing happens; the VM's copy of the condition can lag behind it.
        "paused": condition_true(vmi, "Paused") if vmi else condition_true(vm, "Paused"),
    })
    return _with_vmi_part(out, vmi, pod, conditions_not_ok(vm, vmi), warnings,
                          reason(status, vm, vmi, pod, warnings, ready=ready))


def summarize_vmi(vmi, pods=None, events=None):
    """The summary of one VirtualMachineInstance."""
    pod = launcher_pod(vmi, pods)
    phase = _status(vmi).get("phase") or "Pending"
    ready = vmi_ready(vmi)
    warnings = warning_events(events, _names(None, vmi, pod))
    status = derived_status(None, vmi)
    if status == "Stopped":
        status = phase
    out = _head("VirtualMachineInstance", vmi, status, ready)
    out.update(owner_vm=owner_vm(vmi), paused=condition_true(vmi, "Paused"))
    # A stand-alone VMI that is starting says which phase of the start it is in.
    why = phase if status == "Starting" and phase in ("Pending", "Scheduling", "Scheduled") else status
    return _with_vmi_part(out, vmi, pod, conditions_not_ok(vmi), warnings,
                          reason(why, None, vmi, pod, warnings, ready=ready))


# -- reading what a summary needs --------------------------------------------------------------
def launcher_selector(name=None):
    return "kubevirt.io=virt-launcher" + (",vm.kubevirt.io/name=%s" % name if name else "")


def summaries_for(client, kind, namespace, objects=None, name=None, with_pods=True, with_events=True, find=None):
    """Read VMIs / launcher pods / warning events once and summarize each object.

    With ``find`` (a callable returning the objects) the objects are read together with the rest,
    all requests at the same time, so the task waits for one round trip instead of two.
    """
    from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import parallel

    calls = {}
    if find is not None:
        calls["objects"] = find
    if kind == "VirtualMachine":
        if name:
            calls["vmis"] = lambda: [v for v in [client.get_or_none(res.VMI, name, namespace)] if v]
        else:
            calls["vmis"] = lambda: client.list(res.VMI, namespace).get("items") or []
    if with_pods:
        calls["pods"] = lambda: parallel.read_quiet(
            lambda: client.list(res.POD, namespace, label_selector=launcher_selector(name)).get("items"), [])
    if with_events:
        calls["events"] = lambda: parallel.read_quiet(
            lambda: client.list(res.EVENT, namespace, field_selector="type=Warning").get("items"), [])
    got = parallel.gather(client, calls) if calls else {}
    if find is not None:
        objects = got["objects"]
    related = Related(got.get("pods"), got.get("events"))
    out = []
    if kind == "VirtualMachine":
        vmis = {(v["metadata"].get("namespace"), v["metadata"]["name"]): v for v in got.get("vmis") or []}
        for vm in objects:
            key = (vm["metadata"].get("namespace"), vm["metadata"]["name"])
            vmi = vmis.get(key)
            pods = related.pods(key[0], vmi, key[1])
            out.append(summarize_vm(vm, vmi, pods, related.events(key[0], [key[1], _meta(vmi).get("name")], pods)))
        return out, got
    for vmi in objects:
        ns = vmi["metadata"].get("namespace")
        pods = related.pods(ns, vmi)
        out.append(summarize_vmi(vmi, pods, related.events(ns, [vmi["metadata"].get("name")], pods)))
    return out, got


class Related:
    """The launcher pods and events of a namespace (or all) grouped once by what they belong to.

    Summarizing N objects then costs N look-ups instead of N scans of every pod and event (a
    namespace of 1000 VMs: seconds of scanning before). Each look-up returns a superset, in the
    listed order, of what launcher_pod and warning_events pick, so their choice is unchanged.
    """

    LAUNCHER_PREFIX = "virt-launcher-"

    def __init__(self, pods, events):
        self._pods = list(pods or [])
        self._pod_keys = {}
        for index, pod in enumerate(self._pods):
            meta = _meta(pod)
            ns, labels = meta.get("namespace"), meta.get("labels") or {}
            keys = [("uid", labels.get("kubevirt.io/created-by")),
                    ("domain", (meta.get("annotations") or {}).get("kubevirt.io/domain"))]
            name = meta.get("name") or ""
            if name.startswith(self.LAUNCHER_PREFIX):
                # Every prefix ending in '-', so a look-up by 'virt-launcher-<vmi name>-' is startswith().
                cut = name.find("-", len(self.LAUNCHER_PREFIX))
                while cut != -1:
                    keys.append(("prefix", name[:cut + 1]))
                    cut = name.find("-", cut + 1)
            for key in keys:
                if key[1]:
                    self._pod_keys.setdefault((ns,) + key, []).append(index)
        self._events = {}
        for index, event in enumerate(events or []):
            involved = event.get("involvedObject") or event.get("regarding") or {}
            key = (_meta(event).get("namespace"), involved.get("name"))
            self._events.setdefault(key, []).append((index, event))

    def pods(self, namespace, vmi, vmi_name=None):
        """The pods launcher_pod(vmi, pods, vmi_name) may pick, in their listed order."""
        name = vmi_name or _meta(vmi).get("name")
        uid = _meta(vmi).get("uid")
        keys = [("domain", name)] + ([("uid", uid)] if uid else [("prefix", "%s%s-" % (self.LAUNCHER_PREFIX, name))])
        found = set()
        for key in keys:
            found.update(self._pod_keys.get((namespace,) + key, ()))
        return [self._pods[i] for i in sorted(found)]

    def events(self, namespace, names, pods=()):
        """The events in ``namespace`` about the objects named (and about ``pods``), in their listed order."""
        wanted = set(n for n in names if n) | set(_meta(p).get("name") for p in pods)
        found = []
        for name in wanted:
            found.extend(self._events.get((namespace, name), ()))
        return [event for _index, event in sorted(found, key=lambda pair: pair[0])]
