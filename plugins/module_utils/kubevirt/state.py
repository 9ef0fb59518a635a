# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KubeVirt's rules about a VM and its VMI, each defined once: conditions, phases, readiness.

Pure functions of the objects as the API returns them; no I/O.
"""

from __future__ import annotations

from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.spec import quantity_bytes


def _meta(obj):
    return (obj or {}).get("metadata") or {}


def _status(obj):
    return (obj or {}).get("status") or {}


# -- conditions ----------------------------------------------------------------------------------
def conditions(obj):
    return [c for c in _status(obj).get("conditions") or [] if isinstance(c, dict)]


def condition(obj, ctype):
    for cond in conditions(obj):
        if cond.get("type") == ctype:
            return cond
    return None


def condition_true(obj, ctype):
    cond = condition(obj, ctype)
    return bool(cond) and str(cond.get("status")) == "True"


# -- the VMI -------------------------------------------------------------------------------------
def vmi_ready(vmi):
    return _status(vmi).get("phase") == "Running" and condition_true(vmi, "Ready")


def agent_connected(vmi):
    return condition_true(vmi, "AgentConnected")


# -- phases --------------------------------------------------------------------------------------
# A VMI in a final phase runs no more; KubeVirt replaces it or not by the VM's run strategy.
FINAL_PHASES = ("Succeeded", "Failed")


def vmi_phase(vmi):
    return _status(vmi).get("phase") or ""


def vmi_final(vmi):
    return vmi_phase(vmi) in FINAL_PHASES


def vmi_stopping(vmi):
    """A VMI being deleted (its VM is stopping or restarting)."""
    return vmi is not None and bool(_meta(vmi).get("deletionTimestamp"))


def vmi_active(vmi):
    """A VMI that exists, is not final and is not being deleted: the VM runs (or is starting)."""
    return vmi is not None and not vmi_stopping(vmi) and not vmi_final(vmi)


def vmi_running(vmi):
    return vmi_active(vmi) and vmi_phase(vmi) == "Running"


def vmi_paused(vmi):
    return condition_true(vmi, "Paused")


def vm_active(vm):
    """What the VM's own status says: it has a VMI that runs or is starting."""
    status = _status(vm)
    return bool(status.get("ready") or status.get("created") or status.get("printableStatus") in (
        "Running", "Paused", "Migrating", "Starting"))


# -- why a VM has no VMI ------------------------------------------------------------------------------
# Reasons of a VM's Failure condition that stay until the user changes something: virt-controller
# (pkg/instancetype/controller/vm: checkResourcesExist) cannot find the VM's instancetype or
# preference and so never creates the VMI. A VMI that the API refuses (an admission webhook denies
# it) is refused again on every retry until the VM's template changes.
LASTING_FAILURES = ("FailedFindInstancetype", "FailedFindPreference")


def vm_failure(vm):
    """The VM's Failure condition when it is True (virt-controller could not reconcile the VM), else None."""
    cond = condition(vm, "Failure")
    return cond if cond and str(cond.get("status")) == "True" else None


def failure_lasts(cond):
    """Does this Failure condition stay until the user changes something (no retry can succeed)?"""
    if not cond:
        return False
    if cond.get("reason") in LASTING_FAILURES:
        return True
    return cond.get("reason") == "FailedCreate" and "denied the request" in str(cond.get("message") or "")


# -- run strategy --------------------------------------------------------------------------------
def run_strategy_of(run_strategy=None, running=None):
    """spec.runStrategy, or what the deprecated spec.running means (true = Always, false = Halted)."""
    if run_strategy:
        return run_strategy
    if running is not None:
        return "Always" if running else "Halted"
    return None


def run_strategy(vm):
    """The VM's run strategy (None when it has neither spec.runStrategy nor spec.running)."""
    spec = (vm or {}).get("spec") or {}
    return run_strategy_of(spec.get("runStrategy"), spec.get("running"))


def vmi_ends_for_good(strategy, phase):
    """Does a VM's VMI that ended in ``phase`` stay ended under run strategy ``strategy``?

    Always replaces it and Manual waits for a start; RerunOnFailure replaces a Failed one only;
    Once never restarts. (A stand-alone VMI is never replaced.)
    """
    return strategy == "Once" or (strategy == "RerunOnFailure" and phase == "Succeeded")


# -- owners --------------------------------------------------------------------------------------
def owner(obj, kind):
    """The name of the ``kind`` object that owns ``obj``, or None."""
    for ref in _meta(obj).get("ownerReferences") or []:
        if ref.get("kind") == kind:
            return ref.get("name")
    return None


def owner_vm(obj):
    """The name of the VirtualMachine that owns ``obj`` (a VMI, a DataVolume), or None."""
    return owner(obj, "VirtualMachine")


def owned_by(obj, uid):
    """Is ``obj`` owned by the object with this uid (the same VM, not an earlier one of that name)?"""
    return bool(uid) and any(ref.get("uid") == uid for ref in _meta(obj).get("ownerReferences") or [])


# -- after a template change ---------------------------------------------------------------------
def template_change_processed(vm, generation):
    """Has KubeVirt's VM controller processed our write of the VM at ``generation``?

    Yes when the VM has RestartRequired, or its status.desiredGeneration has reached
    ``generation``. virt-controller sets desiredGeneration to the VM's metadata.generation on
    every sync while a VMI exists, in the same status update that sets RestartRequired.
    status.observedGeneration is not this: it is the generation the running VMI was created from
    (or live-updated to), so after a change that needs a restart it stays behind until the
    restart, and waiting for it would always run into the timeout.
    """
    if vm is None:
        return True
    if condition_true(vm, "RestartRequired"):
        return True
    desired = _status(vm).get("desiredGeneration")
    return generation is None or (desired is not None and desired >= generation)


# -- live resize (LiveUpdate rollout) -------------------------------------------------------------
HOTPLUG_CONDITIONS = ("HotVCPUChange", "HotMemoryChange")


def live_resize_pending(vm, vmi):
    """What of a CPU-socket or guest-memory change of the VM's template the running VMI does not have yet,
    e.g. ['CPU sockets 1 -> 2', 'memory 1Gi -> 2Gi']; [] when it has all (or there is no VMI).

    KubeVirt (LiveUpdate rollout) patches the VMI's spec, sets HotVCPUChange / HotMemoryChange, migrates
    the VMI and, at the migration target, moves status.currentCPUTopology / status.memory.guestCurrent to
    the new values and drops the conditions (pkg/virt-controller/watch/vm/vm.go handleCPUChangeRequest,
    handleMemoryHotplugRequest; pkg/virt-handler/migration-target.go hotplugCPU / hotplugMemory).
    """
    if vmi is None or not vmi_active(vmi):
        return []
    domain = ((((vm or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get("domain") or {}
    st = _status(vmi)
    pending = []
    sockets = (domain.get("cpu") or {}).get("sockets")
    topology = st.get("currentCPUTopology") or {}
    if sockets and topology and int(topology.get("sockets") or 0) != int(sockets):
        pending.append("CPU sockets %s -> %s" % (topology.get("sockets"), sockets))
    guest = (domain.get("memory") or {}).get("guest")
    current = (st.get("memory") or {}).get("guestCurrent")
    if guest and current and quantity_bytes(guest) != quantity_bytes(current):
        pending.append("memory %s -> %s" % (current, guest))
    for ctype in HOTPLUG_CONDITIONS:
        if condition_true(vmi, ctype) and not any(p.startswith("CPU" if ctype == "HotVCPUChange" else "memory")
                                                  for p in pending):
            pending.append("%s in progress" % ctype)
    return pending


def live_resize_failure(vmi):
    """KubeVirt's word that a memory hot-plug failed (HotMemoryChange False), or None."""
    cond = condition(vmi, "HotMemoryChange")
    if cond and str(cond.get("status")) == "False":
        return cond.get("message") or cond.get("reason") or "memory hotplug failed"
    return None
