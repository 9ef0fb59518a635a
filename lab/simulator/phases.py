"""The phase progressions the simulator plays, as tables and pure functions.

The controllers (vmi.py, hotplug.py, cdi.py, migration.py) read the caches, call these to decide
the next phase, then write and record events; nothing here talks to the API, keeps time or holds
state, so tests/unit/lab/test_sim_phases.py checks every step without a control plane.
"""
from dataclasses import dataclass

from .util import deep

# ================================================================================ VirtualMachineInstance
# Pending -> Scheduling (launcher pod exists) -> Scheduled (pod Ready) -> Running (boot delay over)
# -> Succeeded / Failed. Pending without a pod is the caller's: it creates the launcher pod.
VMI_PHASES = ("Pending", "Scheduling", "Scheduled", "Running", "Succeeded", "Failed")
VMI_FINAL = ("Succeeded", "Failed")
VMI_ACTIVE = ("Scheduling", "Scheduled", "Running")   # a pod that goes away fails the VMI


def vmi_phase(phase, pod):
    """virt-controller's phase for the launcher pod's state: `pod` is None (no pod), "down" (deleting or
    finished), "starting" or "ready". The boot (Scheduled -> Running) is virt-handler's, after the delay."""
    if phase in ("", "Pending"):
        if pod is None:
            return "Pending"
        phase = "Scheduling"
    elif phase in VMI_ACTIVE and pod in (None, "down"):
        return "Failed"
    if phase == "Scheduling" and pod == "ready":
        return "Scheduled"
    return phase


def vmi_phase_stamps(old_phase, new_phase, stamps, created, now):
    """phaseTransitionTimestamps after a reconcile that took the VMI from `old_phase` to `new_phase`:
    the first one is Pending at creation; phases passed through within one reconcile get a stamp too."""
    stamps = list(stamps or [])
    if not stamps:
        stamps.append({"phase": "Pending", "phaseTransitionTimestamp": created or now})
    if new_phase and new_phase != (old_phase or "") and not any(s["phase"] == new_phase for s in stamps):
        order = VMI_PHASES
        if new_phase in order[:4] and old_phase in order[:4]:
            for ph in order[order.index(old_phase) + 1:order.index(new_phase)]:
                if not any(s["phase"] == ph for s in stamps):
                    stamps.append({"phase": ph, "phaseTransitionTimestamp": now})
        stamps.append({"phase": new_phase, "phaseTransitionTimestamp": now})
    return stamps


# ================================================================================ hot-plug volumes
# volumeStatus[].phase of a hot-plugged volume: Bound -> AttachedToNode (attachment pod created) ->
# MountedToPod (virt-handler mounted it into the launcher) -> Ready (attached to the domain).
# Removed from the spec: Ready -> UnMountedFromPod -> Detaching -> (pod gone) no entry.
HOTPLUG_BEFORE_ATTACH = ("", "Pending", "Bound")                   # canMoveToAttachedPhase
HOTPLUG_CAN_UNMOUNT = ("Ready", "MountedToPod", "AttachedToNode")  # canUpdateToUnmounted
# phase entered -> (reason, message, the component whose event says so)
HOTPLUG_ENTER = {
    "AttachedToNode": ("SuccessfulCreate", "Created hotplug attachment pod {pod}, for volume {volume}",
                       "virt-controller"),
    "MountedToPod": ("VolumeMountedToPod", "Volume {volume} has been mounted in virt-launcher pod", "virt-handler"),
    "Ready": ("VolumeReady", "Successfully attach hotplugged volume {volume} to VM", "virt-handler"),
    "UnMountedFromPod": ("VolumeUnMountedFromPod", "Volume {volume} has been unmounted from virt-launcher pod",
                         "virt-handler"),
    "Detaching": ("SuccessfulDelete", "Deleted hotplug attachment pod {pod}, for volume {volume}", "virt-controller"),
}
# the next phase of a volume in the spec once its attachment pod holds it, after `step` seconds in the phase
HOTPLUG_ATTACH_NEXT = {"AttachedToNode": "MountedToPod", "MountedToPod": "Ready"}
ATTACH_POD_NOT_READY_RETRY = 0.3


@dataclass(frozen=True)
class AttachPod:
    """What a volume's status needs of the attachment pod that holds it."""
    name: str
    uid: str
    ready: bool = True       # its container is ready and it is not being deleted
    deleting: bool = False


@dataclass
class VolumeStep:
    entry: dict              # the new volumeStatus entry
    event: tuple = None      # (reason, message, component) to record, or None
    entered: bool = False    # the entry (re)entered its phase now: the phase's clock starts
    requeue: float = None    # look again in this many seconds


def _enter(entry, phase, reason, message, component=None):
    entry["phase"], entry["reason"], entry["message"] = phase, reason, message
    for k in ("reason", "message"):
        if not entry[k]:
            entry.pop(k)
    return VolumeStep(entry, (reason, message, component) if component else None, entered=True)


def _enter_step(entry, phase, volume, pod):
    reason, message, component = HOTPLUG_ENTER[phase]
    return _enter(entry, phase, reason, message.format(volume=volume, pod=pod.name), component)


def hotplug_volume(entry, volume, *, pod=None, claim="", pvc_phase=None, dwell=3600.0, step=0.15):
    """One reconcile of the volumeStatus entry of a hot-plug volume that is in the VMI's spec.

    `entry` is the current entry or None (left unchanged); `pod` the attachment pod holding the volume
    (None: no ready one holds it yet); `pvc_phase` the claim's phase (None: no claim, "" unknown); `dwell`
    seconds since the entry entered its phase; `step` how long each phase shows at least."""
    s = deep(entry or {"name": volume})
    hp = s.setdefault("hotplugVolume", {})
    phase = s.get("phase") or ""
    if pod is None:
        if phase != "Ready":
            hp.pop("attachPodUID", None)
            if pvc_phase is None:
                s.update(phase="Pending", reason="FailedPvcNotFound", message=f"PVC {claim} not found")
            elif pvc_phase == "Bound":
                s.update(phase="Bound", reason="PVCNotReady", message="PVC is in phase Bound")
            else:
                s.update(phase="Pending", reason="PVCNotReady", message="PVC is in phase ClaimPending")
        return VolumeStep(s)
    hp["attachPodName"] = pod.name
    if pod.ready:
        hp["attachPodUID"] = pod.uid
    else:
        hp.pop("attachPodUID", None)
    if phase in HOTPLUG_BEFORE_ATTACH:
        return _enter_step(s, "AttachedToNode", volume, pod)
    if phase not in HOTPLUG_ATTACH_NEXT:
        return VolumeStep(s)
    if phase == "AttachedToNode" and not pod.ready:
        return VolumeStep(s, requeue=ATTACH_POD_NOT_READY_RETRY)
    if dwell < step:
        return VolumeStep(s, requeue=step - dwell)
    return _enter_step(s, HOTPLUG_ATTACH_NEXT[phase], volume, pod)


def hotplug_volume_leaving(entry, volume, pod, dwell=3600.0, step=0.15):
    """One reconcile of the entry of a hot-plug volume gone from the spec that attachment pod `pod` still holds."""
    s = deep(entry)
    hp = s["hotplugVolume"]
    hp["attachPodName"], hp["attachPodUID"] = pod.name, pod.uid
    phase = s.get("phase") or ""
    if phase != "Detaching" and dwell < step:
        return VolumeStep(s, requeue=step - dwell)
    if phase in HOTPLUG_CAN_UNMOUNT:
        # virt-handler: not in the spec any more, detached from the domain and unmounted
        return _enter_step(s, "UnMountedFromPod", volume, pod)
    if phase != "Detaching":
        return _enter(s, "Detaching", s.get("reason", ""), s.get("message", ""))
    if pod.deleting and s.get("reason") != "SuccessfulDelete":
        return _enter_step(s, "Detaching", volume, pod)
    return VolumeStep(s)


# ================================================================================ DataVolume (CDI)
# Import or Clone: <what>Scheduled (the first 15 % of the transfer) -> <what>InProgress (progress %)
# -> Succeeded. Upload: UploadScheduled (0.5 s) -> UploadReady. A failing import stays
# ImportInProgress with a growing restartCount.
DV_SCHEDULED_SHARE = 0.15
DV_PROGRESS_EVERY = 0.5
UPLOAD_SCHEDULING = 0.5
# what -> (event message when Scheduled, InProgress, Succeeded); fields: name, and for a clone the source
DV_TRANSFER_MESSAGES = {
    "Import": ("Import into {name} scheduled", "Import into {name} in progress",
               "Successfully imported into PVC {name}"),
    "Clone": ("Cloning from {source_ns}/{source} into {ns}/{name} scheduled",
              "Cloning from {source_ns}/{source} into {ns}/{name} in progress",
              "Successfully cloned from {source_ns}/{source} into {ns}/{name}"),
}


@dataclass
class DVStep:
    phase: str
    running: tuple           # (status, reason) of the Running condition
    ready: tuple             # (status, reason) of the Ready condition
    progress: str = None     # status.progress, or None to leave it
    requeue: float = None
    event_reason: str = ""   # the event when the phase is new


def dv_transfer(what, elapsed, total):
    """An import or clone `elapsed` seconds after the claim bound, of `total` seconds."""
    sched = DV_SCHEDULED_SHARE * total
    if elapsed < sched:
        return DVStep(f"{what}Scheduled", ("False", "Pending"), ("False", f"{what}Scheduled"),
                      requeue=sched - elapsed, event_reason=f"{what}Scheduled")
    if elapsed < total:
        pct = min(99.99, (elapsed - sched) / (total - sched) * 100)
        return DVStep(f"{what}InProgress", ("True", "Pod is running"), ("False", "TransferRunning"),
                      progress=f"{pct:.2f}%", requeue=min(DV_PROGRESS_EVERY, total - elapsed),
                      event_reason=f"{what}InProgress")
    return DVStep("Succeeded", ("False", "Completed"), ("True", ""), progress="100.0%",
                  event_reason=f"{what}Succeeded")


def dv_transfer_message(what, phase, **names):
    index = {f"{what}Scheduled": 0, f"{what}InProgress": 1, "Succeeded": 2}[phase]
    return DV_TRANSFER_MESSAGES[what][index].format(**names)


def dv_upload(elapsed):
    """An upload `elapsed` seconds after the claim bound: the upload server gets ready."""
    if elapsed < UPLOAD_SCHEDULING:
        return DVStep("UploadScheduled", ("False", "Pending"), ("False", "UploadScheduled"),
                      requeue=UPLOAD_SCHEDULING - elapsed, event_reason="UploadScheduled")
    return DVStep("UploadReady", ("True", "Pod is running"), ("False", "UploadReady"), event_reason="UploadReady")


def dv_upload_message(phase, name):
    return f"Upload into {name} scheduled" if phase == "UploadScheduled" else f"Upload into {name} ready"


def import_retry_interval(restarts):
    """Seconds between the importer pod's restarts (CDI's back-off, capped at 10 s)."""
    return min(2.0 * 1.5 ** restarts, 10.0)


def dv_failing_import(restarts, since_restart, failing):
    """A failing import: (restartCount, whether this reconcile reports the error, requeue).
    `failing`: the Running condition already says Error; `since_restart` seconds since the last restart."""
    interval = import_retry_interval(restarts)
    if not failing:
        return restarts, True, max(0.1, interval - since_restart)
    if since_restart >= interval:
        return restarts + 1, True, max(0.1, import_retry_interval(restarts + 1))
    return restarts, False, max(0.1, interval - since_restart)


# ================================================================================ migration
# Pending -> Scheduling (target pod created) -> Scheduled (target pod Running) -> PreparingTarget
# -> TargetReady -> Running (the guest moves) -> Succeeded. From Scheduled on, one step every
# `step` seconds; Running lasts three steps.
MIGRATION_PHASES = ("Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running", "Succeeded")
MIGRATION_FINAL = ("Succeeded", "Failed")
MIGRATION_STEPS_IN = {"Running": 3}   # phase -> how many steps it lasts (default 1)
# phase entered -> (reason, message) of the virt-handler event on the VMI
MIGRATION_VMI_EVENTS = {
    "TargetReady": ("PreparingTarget", "VirtualMachineInstance Migration Target Prepared."),
    "Running": ("Migrating", "VirtualMachineInstance is migrating."),
}


def migration_next(phase):
    """The phase after `phase` on the timed part of the way (Scheduled on)."""
    order = MIGRATION_PHASES
    return order[order.index(phase) + 1] if phase in order[:-1] else "Succeeded"


def migration_dwell(phase, step):
    """Seconds a migration stays in `phase` (once the target pod runs)."""
    return step * MIGRATION_STEPS_IN.get(phase, 1)
