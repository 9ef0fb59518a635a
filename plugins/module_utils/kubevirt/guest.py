# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The guest inside a running VMI: finding the running VMI, and what its guest agent reports.

``running_vmi()`` is shared by the console and guest_info modules: it reads the VMI and, when it
is not running, says why in one sentence (the VM is stopped, the VMI is still starting...).

virt-api answers every failure of ``guestosinfo``, ``userlist`` and ``filesystemlist`` with HTTP
500 and a plain-text body (even "not found" or "no agent"), so the agent's connection is checked
on the VMI's ``AgentConnected`` condition first and the plain text is passed on as it is.
"""

from __future__ import annotations

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    ApiError,
    KubevirtError,
    describe,
    one_line,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import (
    agent_connected,
    condition,
    condition_true,
    run_strategy,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.summary import summarize_vmi, vm_status

GATHER_CHOICES = ("os", "users", "filesystems")


class NotRunning(KubevirtError):
    """The VM or VMI is not running (or does not exist): console and agent need a running VMI."""


class AgentNotConnected(KubevirtError):
    """The VMI runs, but its guest agent is not connected."""


def running_vmi(client, namespace, name):
    """The VMI ``namespace/name`` when it is Running; otherwise NotRunning saying why."""
    try:
        vmi = client.get_or_none(res.VMI, name, namespace)
    except ApiError as exc:
        raise KubevirtError(describe(exc, "read", res.VMI.ref(name, namespace)))
    if vmi is None:
        try:
            vm = client.get_or_none(res.VM, name, namespace)
        except ApiError:
            vm = None  # no permission on VMs: the VMI answer is all we know
        if vm is not None:
            raise NotRunning(not_running_message(vm, None))
        raise NotRunning(missing_message(namespace, name))
    phase = (vmi.get("status") or {}).get("phase")
    if phase != "Running" or (vmi.get("metadata") or {}).get("deletionTimestamp"):
        raise NotRunning(not_running_message(None, vmi))
    if condition_true(vmi, "Paused"):
        raise NotRunning("VMI %s/%s is paused, so its guest can't answer; unpause it with virtops.kubevirt.vm_power "
                         "(state: unpaused)." % (namespace, name))
    return vmi


def missing_message(namespace, name):
    """Neither a VM nor a VMI of that name (pure)."""
    return ("Neither a VirtualMachine nor a VirtualMachineInstance %s/%s exists; check name and namespace."
            % (namespace, name))


def not_running_message(vm, vmi):
    """One sentence for a VM without a running VMI (pure)."""
    if vmi is None:
        meta = (vm or {}).get("metadata") or {}
        status = vm_status(vm or {}, None)
        detail = "" if status in ("Stopped", None) else " (status %s)" % status
        return "VM %s/%s is not running%s; start it with virtops.kubevirt.vm_power." % (
            meta.get("namespace"), meta.get("name"), detail)
    meta = vmi.get("metadata") or {}
    ref = "VMI %s/%s" % (meta.get("namespace"), meta.get("name"))
    phase = (vmi.get("status") or {}).get("phase") or "Pending"
    if meta.get("deletionTimestamp"):
        return "%s is shutting down; start its VM again with virtops.kubevirt.vm_power." % ref
    if phase in ("Succeeded", "Failed"):
        return "%s has stopped (phase %s); start it with virtops.kubevirt.vm_power." % (ref, phase)
    summary = summarize_vmi(vmi)
    why = summary.get("reason") or phase
    return ("%s is not running yet (%s); wait for it with virtops.kubevirt.vm_info and wait: true." % (
        ref, one_line(why, 300)))


def agent_message(vmi):
    """Why the agent is not usable, or None when AgentConnected is True (pure)."""
    if agent_connected(vmi):
        return None
    meta = vmi.get("metadata") or {}
    cond = condition(vmi, "AgentConnected")
    if cond is None:
        why = ("the VMI has no AgentConnected condition: the guest runs no qemu-guest-agent, or it has not "
               "started yet")
    else:
        why = "AgentConnected is %s%s" % (cond.get("status"), " (%s)" % one_line(
            ": ".join(x for x in (cond.get("reason"), cond.get("message")) if x), 200)
            if cond.get("reason") or cond.get("message") else "")
    return ("the guest agent of VMI %s/%s is not connected: %s; install and start qemu-guest-agent in the guest, "
            "or wait for it with wait: true." % (meta.get("namespace"), meta.get("name"), why))


def agent_call(client, namespace, name, verb):
    """GET a guest-agent subresource; virt-api's plain-text 500 becomes one sentence."""
    path = res.subresource_path(res.VMI, namespace, name, verb)
    try:
        return client.subresource("GET", path)
    except ApiError as exc:
        ref = "VMI %s/%s" % (namespace, name)
        if exc.status == 500:
            text = one_line(exc.api_message or "no details", 300).rstrip(".")
            raise KubevirtError("The guest agent of %s could not answer %s: %s." % (ref, verb, text))
        raise KubevirtError(describe(exc, "read %s of" % verb, ref))


# -- normalising the agent's answers (pure) -------------------------------------------------------
def os_part(info):
    info = info or {}
    osinfo = info.get("os") or {}
    return {
        "hostname": info.get("hostname"),
        "timezone": info.get("timezone"),
        "agent_version": info.get("guestAgentVersion"),
        "os": {
            "id": osinfo.get("id"),
            "name": osinfo.get("name"),
            "pretty_name": osinfo.get("prettyName"),
            "version": osinfo.get("version"),
            "version_id": osinfo.get("versionId"),
            "kernel_release": osinfo.get("kernelRelease"),
            "kernel_version": osinfo.get("kernelVersion"),
            "machine": osinfo.get("machine"),
        },
        "fs_freeze_status": info.get("fsFreezeStatus"),
    }


def users_part(items):
    out = []
    for user in items or []:
        out.append({"name": user.get("userName"), "domain": user.get("domain") or None,
                    "login_time": user.get("loginTime")})
    return out


def filesystems_part(items):
    out = []
    for disk in items or []:
        total, used = disk.get("totalBytes"), disk.get("usedBytes")
        percent = None
        if isinstance(total, (int, float)) and isinstance(used, (int, float)) and total > 0:
            percent = round(100.0 * used / total, 1)
        out.append({
            "disk_name": disk.get("diskName"),
            "mount_point": disk.get("mountPoint"),
            "type": disk.get("fileSystemType"),
            "used_bytes": used,
            "total_bytes": total,
            "used_percent": percent,
            "devices": [{"bus": d.get("busType"), "serial": d.get("serial") or None}
                        for d in disk.get("disk") or [] if isinstance(d, dict)],
        })
    return out


def gather(client, namespace, name, parts):
    """Read what ``parts`` asks for with as few calls as possible; returns (guest, raw).

    ``guestosinfo`` already carries the user list and the file systems on current KubeVirt, so the
    ``userlist``/``filesystemlist`` subresources are read only when it lacks them (or when the OS
    part is not asked for).
    """
    raw = {}
    guest = {}
    info = None
    if "os" in parts:
        info = agent_call(client, namespace, name, "guestosinfo")
        raw["guestosinfo"] = info
        guest.update(os_part(info))
    if "users" in parts:
        if info is not None and info.get("userList") is not None:
            guest["users"] = users_part(info.get("userList"))
        else:
            answer = agent_call(client, namespace, name, "userlist")
            raw["userlist"] = answer
            guest["users"] = users_part((answer or {}).get("items"))
    if "filesystems" in parts:
        if info is not None and (info.get("fsInfo") or {}).get("disks") is not None:
            guest["filesystems"] = filesystems_part(info["fsInfo"]["disks"])
        else:
            answer = agent_call(client, namespace, name, "filesystemlist")
            raw["filesystemlist"] = answer
            guest["filesystems"] = filesystems_part((answer or {}).get("items"))
    return guest, raw


# -- the guest_info module's work -----------------------------------------------------------------
def vmi_brief(vmi):
    meta, status = vmi.get("metadata") or {}, vmi.get("status") or {}
    return {"name": meta.get("name"), "namespace": meta.get("namespace"), "node": status.get("nodeName"),
            "phase": status.get("phase")}


def wait_for_agent(client, namespace, name, timeout, progress):
    """Wait (one watch) until the VMI runs with its agent connected; fail fast when it never will."""
    from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter

    ref = res.VMI.ref(name, namespace)
    description = "VMI %s/%s to run with its guest agent connected" % (namespace, name)
    try:
        vmi = client.get_or_none(res.VMI, name, namespace)
        if vmi is not None and (vmi.get("status") or {}).get("phase") == "Running" and agent_connected(vmi):
            progress.append({"waited_for": description, "seconds": 0, "result": "ok", "watches": 0, "events": 0})
            return
        if vmi is None:
            vm = client.get_or_none(res.VM, name, namespace)
            if vm is None:
                raise NotRunning(missing_message(namespace, name))
            if run_strategy(vm) == "Halted":
                raise NotRunning(not_running_message(vm, None))
    except ApiError as exc:
        raise KubevirtError(describe(exc, "read", ref))
    wait = waiter.Wait(client, res.VMI, namespace, waiter.vmi_check(["agent"], [name]), description, timeout,
                       names=[name])
    try:
        progress.append(wait.run())
    except ApiError as exc:
        raise KubevirtError(describe(exc, "watch", ref))
