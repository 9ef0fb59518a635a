"""Golden steps of the simulator's phase progressions (lab/simulator/phases.py), without a control plane.

Each table row is one reconcile: what the controller sees -> what it writes (and which event it records).
The lab tests (tests/lab/test_sim_*.py) check the same progressions end to end against the real apiserver.
"""
import pytest

from simulator import phases as P

POD = P.AttachPod("hp-volume-abcde", "uid-1")
POD_STARTING = P.AttachPod("hp-volume-abcde", "uid-1", ready=False)
POD_DELETING = P.AttachPod("hp-volume-abcde", "uid-1", ready=False, deleting=True)


# ------------------------------------------------------------------------------ VMI
@pytest.mark.parametrize("phase,pod,expected", [
    ("", None, "Pending"),
    ("Pending", None, "Pending"),
    ("", "starting", "Scheduling"),
    ("Pending", "down", "Scheduling"),        # as KubeVirt: a pod exists, its end shows next time
    ("Pending", "ready", "Scheduled"),
    ("Scheduling", "starting", "Scheduling"),
    ("Scheduling", "ready", "Scheduled"),
    ("Scheduling", None, "Failed"),
    ("Scheduling", "down", "Failed"),
    ("Scheduled", "ready", "Scheduled"),      # Running is virt-handler's, after the boot delay
    ("Scheduled", "starting", "Scheduled"),
    ("Scheduled", "down", "Failed"),
    ("Running", "ready", "Running"),
    ("Running", None, "Failed"),
])
def test_vmi_phase(phase, pod, expected):
    assert P.vmi_phase(phase, pod) == expected


def _stamps(*phases_and_times):
    return [{"phase": p, "phaseTransitionTimestamp": t} for p, t in phases_and_times]


@pytest.mark.parametrize("old,new,stamps,expected", [
    # the first reconcile: Pending at creation
    ("", "Pending", [], _stamps(("Pending", "created"))),
    # one reconcile from Pending to Scheduled passes Scheduling too
    ("Pending", "Scheduled", _stamps(("Pending", "created")),
     _stamps(("Pending", "created"), ("Scheduling", "now"), ("Scheduled", "now"))),
    ("Scheduled", "Running", _stamps(("Pending", "c"), ("Scheduling", "a"), ("Scheduled", "b")),
     _stamps(("Pending", "c"), ("Scheduling", "a"), ("Scheduled", "b"), ("Running", "now"))),
    # a final phase is stamped alone
    ("Scheduling", "Failed", _stamps(("Pending", "c"), ("Scheduling", "a")),
     _stamps(("Pending", "c"), ("Scheduling", "a"), ("Failed", "now"))),
    # from no phase at all straight to Scheduling: no stamps in between
    ("", "Scheduling", [], _stamps(("Pending", "created"), ("Scheduling", "now"))),
    # a phase already stamped is not stamped again; no change, no stamp
    ("Scheduled", "Scheduling", _stamps(("Pending", "c"), ("Scheduling", "a"), ("Scheduled", "b")),
     _stamps(("Pending", "c"), ("Scheduling", "a"), ("Scheduled", "b"))),
    ("Running", "Running", _stamps(("Pending", "c")), _stamps(("Pending", "c"))),
])
def test_vmi_phase_stamps(old, new, stamps, expected):
    assert P.vmi_phase_stamps(old, new, stamps, "created", "now") == expected


def test_vmi_phase_stamps_without_a_creation_time():
    assert P.vmi_phase_stamps("", "Pending", None, None, "now") == _stamps(("Pending", "now"))


# ------------------------------------------------------------------------------ hot-plug volumes
def _entry(phase, reason=None, message=None, **hp):
    e = {"name": "data", "hotplugVolume": hp, "phase": phase}
    if reason:
        e["reason"] = reason
    if message:
        e["message"] = message
    return e


@pytest.mark.parametrize("pvc_phase,expected", [
    (None, _entry("Pending", "FailedPvcNotFound", "PVC data-pvc not found")),
    ("Bound", _entry("Bound", "PVCNotReady", "PVC is in phase Bound")),
    ("Pending", _entry("Pending", "PVCNotReady", "PVC is in phase ClaimPending")),
    ("", _entry("Pending", "PVCNotReady", "PVC is in phase ClaimPending")),
])
def test_hotplug_volume_waits_for_its_claim(pvc_phase, expected):
    step = P.hotplug_volume(None, "data", claim="data-pvc", pvc_phase=pvc_phase)
    assert (step.entry, step.event, step.entered, step.requeue) == (expected, None, False, None)


def test_hotplug_volume_ready_stays_ready_without_a_pod():
    entry = _entry("Ready", "VolumeReady", "m", attachPodName="hp-old", attachPodUID="u")
    assert P.hotplug_volume(entry, "data", pvc_phase="Bound").entry == entry


@pytest.mark.parametrize("phase,pod,dwell,expected_phase,event,requeue", [
    ("Bound", POD, 0.0, "AttachedToNode",
     ("SuccessfulCreate", "Created hotplug attachment pod hp-volume-abcde, for volume data", "virt-controller"), None),
    ("Pending", POD_STARTING, 0.0, "AttachedToNode",
     ("SuccessfulCreate", "Created hotplug attachment pod hp-volume-abcde, for volume data", "virt-controller"), None),
    ("AttachedToNode", POD_STARTING, 10.0, "AttachedToNode", None, 0.3),
    ("AttachedToNode", POD, 0.05, "AttachedToNode", None, pytest.approx(0.1)),
    ("AttachedToNode", POD, 0.2, "MountedToPod",
     ("VolumeMountedToPod", "Volume data has been mounted in virt-launcher pod", "virt-handler"), None),
    ("MountedToPod", POD, 0.1, "MountedToPod", None, pytest.approx(0.05)),
    ("MountedToPod", POD, 0.2, "Ready",
     ("VolumeReady", "Successfully attach hotplugged volume data to VM", "virt-handler"), None),
    ("Ready", POD, 0.0, "Ready", None, None),
])
def test_hotplug_volume_attach_steps(phase, pod, dwell, expected_phase, event, requeue):
    step = P.hotplug_volume(_entry(phase, "r", "m"), "data", pod=pod, dwell=dwell, step=0.15)
    assert step.entry["phase"] == expected_phase
    assert (step.event, step.requeue, step.entered) == (event, requeue, event is not None)
    assert step.entry["hotplugVolume"]["attachPodName"] == "hp-volume-abcde"
    assert step.entry["hotplugVolume"].get("attachPodUID") == ("uid-1" if pod.ready else None)
    if event:
        assert (step.entry["reason"], step.entry["message"]) == event[:2]


def test_hotplug_volume_does_not_change_its_input():
    entry = _entry("Bound", "PVCNotReady", "PVC is in phase Bound")
    P.hotplug_volume(entry, "data", pod=POD)
    assert entry == _entry("Bound", "PVCNotReady", "PVC is in phase Bound")


@pytest.mark.parametrize("phase,reason,pod,dwell,expected,event,requeue", [
    ("Ready", "VolumeReady", POD, 0.0, ("Ready", "VolumeReady"), None, 0.15),
    ("Ready", "VolumeReady", POD, 1.0, ("UnMountedFromPod", "VolumeUnMountedFromPod"),
     ("VolumeUnMountedFromPod", "Volume data has been unmounted from virt-launcher pod", "virt-handler"), None),
    ("AttachedToNode", "SuccessfulCreate", POD, 1.0, ("UnMountedFromPod", "VolumeUnMountedFromPod"),
     ("VolumeUnMountedFromPod", "Volume data has been unmounted from virt-launcher pod", "virt-handler"), None),
    # Detaching keeps what the entry said until the pod is deleted
    ("UnMountedFromPod", "VolumeUnMountedFromPod", POD, 1.0, ("Detaching", "VolumeUnMountedFromPod"), None, None),
    ("UnMountedFromPod", "VolumeUnMountedFromPod", POD, 0.1, ("UnMountedFromPod", "VolumeUnMountedFromPod"),
     None, pytest.approx(0.05)),
    ("Detaching", "VolumeUnMountedFromPod", POD, 0.0, ("Detaching", "VolumeUnMountedFromPod"), None, None),
    ("Detaching", "VolumeUnMountedFromPod", POD_DELETING, 0.0, ("Detaching", "SuccessfulDelete"),
     ("SuccessfulDelete", "Deleted hotplug attachment pod hp-volume-abcde, for volume data", "virt-controller"),
     None),
    ("Detaching", "SuccessfulDelete", POD_DELETING, 0.0, ("Detaching", "SuccessfulDelete"), None, None),
])
def test_hotplug_volume_leaving_steps(phase, reason, pod, dwell, expected, event, requeue):
    step = P.hotplug_volume_leaving(_entry(phase, reason, "m"), "data", pod, dwell=dwell, step=0.15)
    assert (step.entry["phase"], step.entry.get("reason")) == expected
    assert (step.event, step.requeue) == (event, requeue)
    assert step.entry["hotplugVolume"] == {"attachPodName": "hp-volume-abcde", "attachPodUID": "uid-1"}


def test_hotplug_volume_whole_way_in_and_out():
    """Every reconcile a step late: the phases a hot-plugged, then unplugged, volume shows."""
    entry, seen = None, []
    for pod in (None, POD, POD, POD, POD):
        entry = P.hotplug_volume(entry, "data", pod=pod, pvc_phase="Bound", dwell=1.0).entry
        seen.append(entry["phase"])
    for pod in (POD, POD, POD_DELETING):
        entry = P.hotplug_volume_leaving(entry, "data", pod, dwell=1.0).entry
        seen.append(entry["phase"])
    assert seen == ["Bound", "AttachedToNode", "MountedToPod", "Ready", "Ready",
                    "UnMountedFromPod", "Detaching", "Detaching"]
    assert entry["reason"] == "SuccessfulDelete"


# ------------------------------------------------------------------------------ DataVolume
@pytest.mark.parametrize("what,elapsed,expected", [
    ("Import", 0.0, ("ImportScheduled", ("False", "Pending"), ("False", "ImportScheduled"), None, 0.3,
                     "ImportScheduled")),
    ("Import", 0.2, ("ImportScheduled", ("False", "Pending"), ("False", "ImportScheduled"), None,
                     pytest.approx(0.1), "ImportScheduled")),
    ("Import", 0.3, ("ImportInProgress", ("True", "Pod is running"), ("False", "TransferRunning"), "0.00%", 0.5,
                     "ImportInProgress")),
    ("Import", 1.15, ("ImportInProgress", ("True", "Pod is running"), ("False", "TransferRunning"), "50.00%",
                      pytest.approx(0.5), "ImportInProgress")),
    ("Import", 1.8, ("ImportInProgress", ("True", "Pod is running"), ("False", "TransferRunning"), "88.24%",
                     pytest.approx(0.2), "ImportInProgress")),
    ("Import", 2.0, ("Succeeded", ("False", "Completed"), ("True", ""), "100.0%", None, "ImportSucceeded")),
    ("Clone", 0.1, ("CloneScheduled", ("False", "Pending"), ("False", "CloneScheduled"), None,
                    pytest.approx(0.2), "CloneScheduled")),
    ("Clone", 9.0, ("Succeeded", ("False", "Completed"), ("True", ""), "100.0%", None, "CloneSucceeded")),
])
def test_dv_transfer(what, elapsed, expected):
    s = P.dv_transfer(what, elapsed, 2.0)
    assert (s.phase, s.running, s.ready, s.progress, s.requeue, s.event_reason) == expected


def test_dv_transfer_progress_never_says_100_before_it_is_done():
    assert P.dv_transfer("Import", 1.99999, 2.0).progress == "99.99%"


@pytest.mark.parametrize("what,phase,message", [
    ("Import", "ImportScheduled", "Import into disk scheduled"),
    ("Import", "ImportInProgress", "Import into disk in progress"),
    ("Import", "Succeeded", "Successfully imported into PVC disk"),
    ("Clone", "CloneScheduled", "Cloning from src-ns/golden into ns/disk scheduled"),
    ("Clone", "CloneInProgress", "Cloning from src-ns/golden into ns/disk in progress"),
    ("Clone", "Succeeded", "Successfully cloned from src-ns/golden into ns/disk"),
])
def test_dv_transfer_messages(what, phase, message):
    assert P.dv_transfer_message(what, phase, name="disk", ns="ns", source_ns="src-ns", source="golden") == message


@pytest.mark.parametrize("elapsed,expected", [
    (0.0, ("UploadScheduled", ("False", "Pending"), ("False", "UploadScheduled"), 0.5,
           "Upload into disk scheduled")),
    (0.5, ("UploadReady", ("True", "Pod is running"), ("False", "UploadReady"), None, "Upload into disk ready")),
])
def test_dv_upload(elapsed, expected):
    s = P.dv_upload(elapsed)
    assert (s.phase, s.running, s.ready, s.requeue, P.dv_upload_message(s.phase, "disk")) == expected
    assert s.event_reason == s.phase and s.progress is None


@pytest.mark.parametrize("restarts,since,failing,expected", [
    (0, 0.0, False, (0, True, 2.0)),            # the first error: reported, no restart yet
    (0, 1.0, True, (0, False, 1.0)),
    (0, 2.0, True, (1, True, 3.0)),             # the importer restarts: back-off 2 * 1.5 ** n
    (1, 2.9, True, (1, False, pytest.approx(0.1))),
    (3, 7.0, True, (4, True, 10.0)),            # capped at 10 s
    (9, 3.0, True, (9, False, 7.0)),
    (0, 5.0, False, (0, True, 0.1)),            # never sooner than 0.1 s
])
def test_dv_failing_import(restarts, since, failing, expected):
    assert P.dv_failing_import(restarts, since, failing) == expected


# ------------------------------------------------------------------------------ migration
def test_migration_walks_its_phases_in_kubevirts_order():
    phase, seen = "Scheduled", ["Scheduled"]
    while phase != "Succeeded":
        phase = P.migration_next(phase)
        seen.append(phase)
    assert seen == ["Scheduled", "PreparingTarget", "TargetReady", "Running", "Succeeded"]
    assert P.MIGRATION_PHASES == ("Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running",
                                  "Succeeded")


def test_migration_timing_and_events():
    assert [P.migration_dwell(p, 0.2) for p in ("Scheduled", "PreparingTarget", "TargetReady", "Running")] == \
        [0.2, 0.2, 0.2, pytest.approx(0.6)]
    assert P.MIGRATION_VMI_EVENTS == {
        "TargetReady": ("PreparingTarget", "VirtualMachineInstance Migration Target Prepared."),
        "Running": ("Migrating", "VirtualMachineInstance is migrating.")}
