import pytest
from kvfakes import running_vmi

from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import summary


def vm(name="web1", status=None, strategy="Always", image="quay.io/x:1"):
    return {"kind": "VirtualMachine", "metadata": {"name": name, "namespace": "demo"},
            "spec": {"runStrategy": strategy, "template": {"spec": {"volumes": [
                {"name": "root", "containerDisk": {"image": image}}]}}},
            "status": status or {}}


def pod(name="virt-launcher-web1-abcde", phase="Running", uid="uid-1", waiting=None):
    p = {"metadata": {"name": name, "namespace": "demo", "creationTimestamp": "2025-01-01T00:00:00Z",
                      "labels": {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": uid,
                                 "vm.kubevirt.io/name": "web1"}, "annotations": {"kubevirt.io/domain": "web1"}},
         "spec": {"nodeName": "node01"}, "status": {"phase": phase}}
    if waiting:
        p["status"]["containerStatuses"] = [{"name": "compute", "state": {"waiting": waiting}}]
    return p


def event(name, reason, message, when, etype="Warning", kind="Pod"):
    return {"type": etype, "reason": reason, "message": message, "lastTimestamp": when, "count": 2,
            "involvedObject": {"kind": kind, "name": name}, "metadata": {"namespace": "demo"}}


def test_running_vm_summary():
    vmi = running_vmi("web1", "demo", uid="uid-1", ips={"default": "10.0.0.5", "br1": "192.168.1.9"})
    s = summary.summarize_vm(vm(status={"printableStatus": "Running", "ready": True}), vmi, [pod()], [])
    assert s["status"] == "Running" and s["ready"] is True and s["reason"] is None
    assert s["node"] == "node01" and s["ip_address"] == "10.0.0.5"
    assert s["ip_addresses"] == ["10.0.0.5", "192.168.1.9"]
    assert s["networks"]["br1"] == {"ip_address": "192.168.1.9", "ip_addresses": ["192.168.1.9"],
                                    "mac": "02:00:00:00:00:01", "interface_name": "eth1"}
    assert s["guest_os"]["pretty_name"] == "Fedora 41" and s["agent_connected"] is True
    assert s["launcher_pod"] == {"name": "virt-launcher-web1-abcde", "phase": "Running", "node": "node01",
                                 "waiting": None}
    assert s["conditions_not_ok"] == [] and s["run_strategy"] == "Always"


def test_err_image_pull_reason_names_the_image():
    image = "quay.io/example/does-not-exist:latest"
    vmi = running_vmi("web1", "demo", uid="uid-1", phase="Scheduled", ready=False)
    vmi["spec"]["volumes"][0]["containerDisk"]["image"] = image
    vmi["status"]["conditions"].append({"type": "Synchronized", "status": "False", "reason": "ErrImagePull",
                                        "message": "rpc error: pull access denied"})
    s = summary.summarize_vm(vm(status={"printableStatus": "ErrImagePull"}, image=image), vmi,
                             [pod(phase="Pending", waiting={"reason": "ErrImagePull", "message": "x"})],
                             [event("virt-launcher-web1-abcde", "Failed", "Failed to pull image", "t1")])
    assert s["status"] == "ErrImagePull"
    assert s["reason"] == ("ErrImagePull: cannot pull the container disk image "
                           "'quay.io/example/does-not-exist:latest' (rpc error: pull access denied)")
    assert s["launcher_pod"]["waiting"]["reason"] == "ErrImagePull"
    assert {"type": "Synchronized", "status": "False", "reason": "ErrImagePull",
            "message": "rpc error: pull access denied"} in s["conditions_not_ok"]


def test_unschedulable_reason_has_scheduler_message():
    vmi = running_vmi("web1", "demo", phase="Scheduling", ready=False)
    vmi["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                    "message": "0/1 nodes are available: 1 Insufficient memory."}]
    s = summary.summarize_vm(vm(), vmi)
    assert s["status"] == "ErrorUnschedulable"
    assert s["reason"] == ("ErrorUnschedulable: the virt-launcher pod can't be scheduled: "
                           "0/1 nodes are available: 1 Insufficient memory.")


@pytest.mark.parametrize("status, strategy, vmi_phase, expected", [
    ("Stopped", "Halted", None, "Stopped: run_strategy is Halted"),
    ("Stopped", "Manual", None, "Stopped: run_strategy is Manual and no start was requested"),
    ("Stopped", "Once", "Succeeded", "Stopped: the VMI ended in phase Succeeded"),
    ("Starting", "Always", "Scheduling", "Starting: the VMI is Scheduling"),
    ("Provisioning", "Always", None, "Provisioning: waiting for its DataVolumes to be imported or cloned"),
    ("Stopping", "Always", "Running", "Stopping"),
    ("Migrating", "Always", "Running", "Migrating"),
    ("CrashLoopBackOff", "Always", None, "CrashLoopBackOff: the VM keeps failing to start"),
    ("Paused", "Always", "Running", "Paused: paused by a user"),
])
def test_reasons(status, strategy, vmi_phase, expected):
    vmi = None
    if vmi_phase:
        vmi = running_vmi("web1", "demo", phase=vmi_phase, ready=False)
        vmi["status"]["conditions"] = []
    s = summary.summarize_vm(vm(status={"printableStatus": status}, strategy=strategy), vmi)
    assert s["reason"].startswith(expected)


def test_running_not_ready():
    vmi = running_vmi("web1", "demo", ready=False)
    vmi["status"]["conditions"][0]["message"] = "guest not running"
    s = summary.summarize_vm(vm(status={"printableStatus": "Running", "ready": False}), vmi)
    assert s["reason"] == "Running but not ready: guest not running"


@pytest.mark.parametrize("vmi_changes, expected", [
    ({"phase": "Running"}, "Running"),
    ({"phase": "Scheduling"}, "Starting"),
    ({"phase": "Failed"}, "Stopped"),
    ({"phase": "Running", "migrationState": {"completed": False}}, "Migrating"),
    ({"phase": "Scheduled", "conditions": [{"type": "Synchronized", "status": "False", "reason": "ImagePullBackOff"}]},
     "ImagePullBackOff"),
    ({"phase": "Pending", "conditions": [{"type": "Synchronized", "status": "False", "reason": "FailedPvcNotFound"}]},
     "ErrorPvcNotFound"),
    ({"phase": "Running", "conditions": [{"type": "Paused", "status": "True"}]}, "Paused"),
])
def test_derived_status(vmi_changes, expected):
    vmi = running_vmi("web1", "demo")
    vmi["status"].update(vmi_changes)
    assert summary.derived_status(vm(), vmi) == expected


def test_derived_status_without_vmi_and_deleting():
    assert summary.derived_status(vm(), None) == "Stopped"
    deleting = vm()
    deleting["metadata"]["deletionTimestamp"] = "x"
    assert summary.derived_status(deleting, None) == "Terminating"
    vmi = running_vmi("web1", "demo")
    vmi["metadata"]["deletionTimestamp"] = "x"
    assert summary.derived_status(vm(), vmi) == "Stopping"


def test_conditions_not_ok_table_and_heuristics():
    obj = {"status": {"conditions": [
        {"type": "Ready", "status": "True"},
        {"type": "RestartRequired", "status": "True", "message": "restart"},
        {"type": "LiveMigratable", "status": "False", "reason": "DisksNotLiveMigratable"},
        {"type": "AgentConnected", "status": "False"},
        {"type": "SomethingFailed", "status": "True", "message": "boom"},
        {"type": "Custom", "status": "False", "reason": "Why"},
        {"type": "Custom2", "status": "False"},
    ]}}
    types = [c["type"] for c in summary.conditions_not_ok(obj, obj)]
    assert types == ["RestartRequired", "SomethingFailed", "Custom"]


def test_warning_events_newest_first_and_filtered():
    events = [event("web1", "A", "old", "2025-01-01T00:00:01Z", kind="VirtualMachine"),
              event("virt-launcher-web1-abcde", "B", "new", "2025-01-01T00:00:09Z"),
              event("other", "C", "x", "2025-01-01T00:00:10Z"),
              event("web1", "N", "normal", "2025-01-01T00:00:11Z", etype="Normal")]
    s = summary.summarize_vm(vm(), running_vmi("web1", "demo", uid="uid-1"), [pod()], events)
    assert [e["reason"] for e in s["warning_events"]] == ["B", "A"]
    assert s["warning_events"][0] == {"reason": "B", "message": "new", "object": "Pod/virt-launcher-web1-abcde",
                                      "count": 2, "last_seen": "2025-01-01T00:00:09Z"}


def test_launcher_pod_prefers_running_newest():
    old = pod(name="virt-launcher-web1-old", phase="Succeeded")
    new = pod(name="virt-launcher-web1-new", phase="Running")
    other = pod(name="virt-launcher-db-x", uid="uid-db")
    other["metadata"]["annotations"]["kubevirt.io/domain"] = "db"
    assert summary.launcher_pod(running_vmi("web1", "demo", uid="uid-1"), [new, old, other])["metadata"]["name"] == \
        "virt-launcher-web1-new"
    assert summary.launcher_pod(None, [other], "web1") is None


def test_vmi_summary_standalone():
    vmi = running_vmi("scratch", "demo")
    vmi["metadata"]["ownerReferences"] = []
    s = summary.summarize_vmi(vmi)
    assert s["kind"] == "VirtualMachineInstance" and s["status"] == "Running" and s["owner_vm"] is None
    assert s["reason"] is None


@pytest.mark.parametrize("phase, conds, reason_start", [
    ("Pending", [], "Pending"),
    ("Scheduling", [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "no room"}],
     "ErrorUnschedulable: the virt-launcher pod can't be scheduled: no room"),
    ("Failed", [], "Failed"),
    ("Succeeded", [], "Succeeded"),
])
def test_vmi_summary_reasons(phase, conds, reason_start):
    vmi = running_vmi("scratch", "demo", phase=phase, ready=False)
    vmi["status"]["conditions"] = conds
    assert summary.summarize_vmi(vmi)["reason"].startswith(reason_start)


def test_ip_address_fallbacks():
    vmi = running_vmi("a", "d", ips={"default": "10.0.0.1"})
    assert summary.ip_address(vmi) == "10.0.0.1" and summary.ip_address(vmi, "br1") is None
    vmi["spec"]["networks"] = [{"name": "nic0", "pod": {}}]
    assert summary.ip_address(vmi) == "10.0.0.1"
    assert summary.ip_address({"status": {}}) is None


def test_paused_follows_the_vmi_when_there_is_one():
    """Right after an unpause the VM can still carry the Paused condition the VMI has dropped."""
    stale = vm(status={"printableStatus": "Paused", "conditions": [{"type": "Paused", "status": "True"}]})
    assert summary.summarize_vm(stale, running_vmi("web1", "demo"), [pod()], [])["paused"] is False
    paused_vmi = running_vmi("web1", "demo")
    paused_vmi["status"]["conditions"].append({"type": "Paused", "status": "True", "reason": "PausedByUser"})
    assert summary.summarize_vm(vm(status={"printableStatus": "Running"}), paused_vmi, [pod()], [])["paused"] is True
    assert summary.summarize_vm(stale, None, [], [])["paused"] is True


FAILURE = {"type": "Failure", "status": "True", "reason": "FailedFindInstancetype",
           "message": 'virtualmachineclusterinstancetypes.instancetype.kubevirt.io "u1.small" not found'}


def test_failure_condition_is_the_reason_of_a_stopped_vm():
    """KubeVirt shows a VM whose instancetype is missing as Stopped; the reason says why, not 'Stopped'."""
    vm = {"kind": "VirtualMachine", "metadata": {"name": "it3", "namespace": "ns"},
          "spec": {"runStrategy": "Always"},
          "status": {"printableStatus": "Stopped", "conditions": [
              {"type": "Ready", "status": "False", "reason": "VMINotExists", "message": "VMI does not exist"},
              FAILURE]}}
    out = summary.summarize_vm(vm)
    assert out["status"] == "Stopped"
    assert out["reason"] == ('FailedFindInstancetype: virtualmachineclusterinstancetypes.instancetype.kubevirt.io '
                             '"u1.small" not found (Stopped)')
    assert {"type": "Failure", "status": "True", "reason": "FailedFindInstancetype",
            "message": FAILURE["message"]} in out["conditions_not_ok"]


def test_failure_condition_is_not_hidden_on_a_running_vm():
    vm = {"kind": "VirtualMachine", "metadata": {"name": "web", "namespace": "ns"}, "spec": {"runStrategy": "Always"},
          "status": {"printableStatus": "Running", "ready": True, "conditions": [
              dict(FAILURE, reason="HotPlugVolumeError", message="Error encountered while handling volume hotplug "
                                                                 "requests: VMI is not running")]}}
    out = summary.summarize_vm(vm, running_vmi("web", "ns"))
    assert out["reason"] == ("Running, but KubeVirt reports a failure: HotPlugVolumeError: Error encountered while "
                             "handling volume hotplug requests: VMI is not running")


class CountingList(list):
    """A list that counts how often it is walked."""
    walks = 0

    def __iter__(self):
        CountingList.walks += 1
        return super().__iter__()


class ListingClient:
    """summaries_for's reads: VMIs, launcher pods and warning events of a namespace."""

    def __init__(self, vmis, pods, events):
        self.items = {"virtualmachineinstances": vmis, "pods": pods, "events": events}

    def list(self, resource, namespace=None, **_kw):
        return {"items": self.items[resource.plural]}


def fleet(n):
    vms = [vm("vm-%d" % k) for k in range(n)]
    vmis = [running_vmi("vm-%d" % k, "demo", uid="uid-%d" % k) for k in range(n)]
    pods, events = CountingList(), CountingList()
    for k in range(n):
        p = pod(name="virt-launcher-vm-%d-abcde" % k, uid="uid-%d" % k)
        p["metadata"]["annotations"]["kubevirt.io/domain"] = "vm-%d" % k
        pods.append(p)
        events.append(event("virt-launcher-vm-%d-abcde" % k, "Pulled%d" % k, "x", "2025-01-01T00:00:0%dZ" % (k % 10)))
    return vms, vmis, pods, events


def test_summaries_for_reads_the_pods_and_events_once_not_once_per_vm():
    """A namespace of N VMs was summarized by scanning every pod and event for each VM (N x N)."""
    vms, vmis, pods, events = fleet(50)
    CountingList.walks = 0
    out, _got = summary.summaries_for(ListingClient(vmis, pods, events), "VirtualMachine", "demo", objects=vms)
    assert CountingList.walks <= 4
    assert [s["launcher_pod"]["name"] for s in out] == ["virt-launcher-vm-%d-abcde" % k for k in range(50)]
    assert [[e["reason"] for e in s["warning_events"]] for s in out] == [["Pulled%d" % k] for k in range(50)]


def test_related_picks_what_a_scan_of_every_pod_and_event_picks():
    """The index gives launcher_pod and warning_events a superset of their choice, in the listed order:
    names that are prefixes of others, pods found by uid, by the domain annotation or by name alone,
    pods and events of another namespace, events about the VM, its VMI and its pod."""
    def other_ns(obj):
        obj = dict(obj, metadata=dict(obj["metadata"], namespace="elsewhere"))
        return obj
    web = pod(name="virt-launcher-web-aaaaa", uid="uid-web")
    web["metadata"]["annotations"]["kubevirt.io/domain"] = "web"
    web_old = pod(name="virt-launcher-web-bbbbb", uid="uid-web", phase="Failed")
    web_old["metadata"]["annotations"]["kubevirt.io/domain"] = "web"
    web1 = pod(name="virt-launcher-web-1-ccccc", uid="uid-1")   # 'web-1' starts with 'web-'
    web1["metadata"]["annotations"]["kubevirt.io/domain"] = "web-1"
    no_labels = {"metadata": {"name": "virt-launcher-web-2-ddddd", "namespace": "demo"}, "status": {}}
    pods = [web_old, web1, other_ns(web), web, no_labels]
    events = [event("web", "VmEvent", "m", "2025-01-01T00:00:03Z", kind="VirtualMachine"),
              event("virt-launcher-web-aaaaa", "PodEvent", "m", "2025-01-01T00:00:02Z"),
              other_ns(event("web", "Elsewhere", "m", "2025-01-01T00:00:09Z", kind="VirtualMachine")),
              event("web-1", "Other", "m", "2025-01-01T00:00:05Z", kind="VirtualMachine")]
    related = summary.Related(pods, events)
    same_ns = [p for p in pods if p["metadata"]["namespace"] == "demo"]
    same_ns_events = [e for e in events if e["metadata"]["namespace"] == "demo"]
    cases = [(running_vmi("web", "demo", uid="uid-web"), "web"), (running_vmi("web-1", "demo", uid="uid-1"), "web-1"),
             (None, "web"), (None, "web-2"), (None, "web-3")]
    for vmi, name in cases:
        picked = related.pods("demo", vmi, name)
        assert summary.launcher_pod(vmi, picked, name) is summary.launcher_pod(vmi, same_ns, name)
        assert picked == [p for p in same_ns if p in picked]   # the listed order
        vm_obj = vm(name)
        assert summary.summarize_vm(vm_obj, vmi, picked, related.events("demo", [name], picked)) == \
            summary.summarize_vm(vm_obj, vmi, same_ns, same_ns_events)
    assert summary.launcher_pod(None, related.pods("demo", None, "web-2"), "web-2") is no_labels
