import pytest
from kvfakes import FakeClient, running_vmi

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.watch import WatchGone
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    ApiError,
    InputError,
    WaitFailed,
    WaitTimeout,
)

END = ("BOOKMARK", {"metadata": {"resourceVersion": "50", "annotations": {"k8s.io/initial-events-end": "true"}}})


def pending_vmi(name="vm1", phase="Scheduling"):
    vmi = running_vmi(name, "ns", phase=phase, ready=False)
    vmi["status"].pop("interfaces")
    return vmi


@pytest.mark.parametrize("values, expected", [
    (None, ["ready"]),
    ([], ["ready"]),
    (["ready", "ip"], ["ready", "ip"]),
    (["ip:br1", "agent", "ip:br1"], ["ip:br1", "agent"]),
])
def test_parse_wait_for(values, expected):
    assert waiter.parse_wait_for(values) == expected


@pytest.mark.parametrize("value", ["running", "ip:", "ready:x", "agent:1"])
def test_parse_wait_for_bad(value):
    with pytest.raises(InputError) as exc:
        waiter.parse_wait_for([value])
    assert "wait_for item" in str(exc.value)


def test_done_from_initial_state_in_one_watch():
    client = FakeClient()
    client.watch_script = [[("ADDED", running_vmi("vm1", "ns")), END]]
    objects, progress = waiter.wait_vmis(client, "ns", ["vm1"], ["ready", "ip"], 5, resource_version="42")
    assert progress["result"] == "ok" and progress["watches"] == 1
    kind, name, kw = client.calls[0][0], client.calls[0][1], client.calls[0][2]
    assert kind == "WATCH" and kw["initial"] is True and kw["rv"] == "42"
    assert kw["field_selector"] == "metadata.name=vm1"
    assert client.requests == 1


def test_follows_changes_after_initial_state():
    client = FakeClient()
    client.watch_script = [[END, ("ADDED", pending_vmi()), ("MODIFIED", running_vmi("vm1", "ns"))]]
    objects, progress = waiter.wait_vmis(client, "ns", ["vm1"], ["ready"], 5)
    assert objects["vm1"]["status"]["phase"] == "Running" and progress["events"] == 3


def test_resumes_after_cut_from_last_resource_version():
    client = FakeClient()
    first = pending_vmi()
    first["metadata"]["resourceVersion"] = "77"
    client.watch_script = [[END, ("ADDED", first)], [("MODIFIED", running_vmi("vm1", "ns"))]]
    dummy, progress = waiter.wait_vmis(client, "ns", ["vm1"], ["ready"], 5)
    second = client.calls[1][2]
    assert second["initial"] is False and second["rv"] == "77" and progress["watches"] == 2


def test_relists_on_410():
    client = FakeClient()
    client.watch_script = [[END], WatchGone("too old"), [("ADDED", running_vmi("vm1", "ns")), END]]
    dummy, progress = waiter.wait_vmis(client, "ns", ["vm1"], ["ready"], 5)
    assert client.calls[2][2]["initial"] is True and progress["result"] == "ok"


def test_falls_back_to_list_then_watch_without_watchlist():
    client = FakeClient()
    client.watchlist_supported = True
    client.put(pending_vmi())
    client.watch_script = [ApiError(422, "GET", "/x", {"message": "sendInitialEvents is forbidden"}),
                           [("MODIFIED", running_vmi("vm1", "ns"))]]
    dummy, progress = waiter.wait_vmis(client, "ns", ["vm1"], ["ready"], 5)
    kinds = [c[0] for c in client.calls]
    assert kinds == ["WATCH", "LIST", "WATCH"] and client.watchlist_supported is False
    assert client.calls[2][2]["initial"] is False


def test_ip_on_named_network():
    client = FakeClient()
    vmi = running_vmi("vm1", "ns", ips={"default": "10.0.0.1", "br1": "192.168.1.5"})
    client.watch_script = [[("ADDED", vmi), END]]
    waiter.wait_vmis(client, "ns", ["vm1"], ["ip:br1", "agent"], 5)


def test_timeout_says_what_it_saw_with_events():
    client = FakeClient()
    vmi = pending_vmi()
    vmi["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                    "message": "0/1 nodes are available: 1 Insufficient memory."}]
    client.put({"kind": "Event", "apiVersion": "v1", "type": "Warning", "reason": "FailedScheduling",
                "message": "0/1 nodes are available: 1 Insufficient memory.",
                "metadata": {"name": "e1", "namespace": "ns"},
                "involvedObject": {"kind": "Pod", "name": "virt-launcher-vm1-x7k2q"}, "lastTimestamp": "t2"})
    client.watch_script = [[("ADDED", vmi), END]]
    with pytest.raises(WaitTimeout) as exc:
        waiter.wait_vmis(client, "ns", ["vm1"], ["ready"], 0.3)
    msg = str(exc.value)
    assert msg.startswith("Timed out after 0s waiting for VirtualMachine ns/vm1 to be ready; last seen: vm1 ")
    assert "phase Scheduling" in msg and "PodScheduled=False (Unschedulable: 0/1 nodes are available" in msg
    assert "latest warning events: Pod/virt-launcher-vm1-x7k2q FailedScheduling" in msg
    assert exc.value.details["progress"]["result"] == "timeout"


def _warning(name, kind, obj, reason, uid=None, when="t1"):
    involved = {"kind": kind, "name": obj}
    if uid:
        involved["uid"] = uid
    return {"kind": "Event", "apiVersion": "v1", "type": "Warning", "reason": reason, "message": reason + " here",
            "metadata": {"name": name, "namespace": "ns"}, "involvedObject": involved, "lastTimestamp": when}


def test_timeout_events_are_only_about_the_awaited_object():
    # VM web's wait must not show VM web-2's launcher pod events, nor those of an earlier VMI named web.
    client = FakeClient()
    vmi = pending_vmi("web")
    client.put(_warning("e1", "Pod", "virt-launcher-web-2-x7k2q", "OtherVmsPod"))
    client.put(_warning("e2", "VirtualMachineInstance", "web", "EarlierVmi", uid="old-uid"))
    client.put(_warning("e3", "VirtualMachineInstance", "web", "ThisVmi", uid=vmi["metadata"]["uid"]))
    client.put(_warning("e4", "Pod", "virt-launcher-web-b9c4d", "ThisPod"))
    client.watch_script = [[("ADDED", vmi), END]]
    with pytest.raises(WaitTimeout) as exc:
        waiter.wait_vmis(client, "ns", ["web"], ["ready"], 0.3)
    reasons = {e["reason"] for e in exc.value.details["events"]}
    assert reasons == {"ThisVmi", "ThisPod"}
    assert "OtherVmsPod" not in str(exc.value) and "EarlierVmi" not in str(exc.value)


def test_launcher_pod_names_follow_generate_name():
    assert waiter.launcher_pod_name_re("web").match("virt-launcher-web-x7k2q")
    assert not waiter.launcher_pod_name_re("web").match("virt-launcher-web-2-x7k2q")
    long_name = "a" * 60
    assert waiter.launcher_pod_name_re(long_name).match(("virt-launcher-" + long_name)[:58] + "b9c4d")


def test_a_diagnosis_replaces_the_event_lookup_on_timeout():
    client = FakeClient()
    client.watch_script = [[("ADDED", pending_vmi()), END]]
    wait = waiter.Wait(client, res.VMI, "ns", lambda objects: False, "vm1 to be ready", 0.3, names=["vm1"],
                       diagnose=lambda objects: ("the cause: %s" % sorted(objects), []))
    with pytest.raises(WaitTimeout) as exc:
        wait.run()
    assert str(exc.value).endswith("; the cause: ['vm1'].") and exc.value.details["events"] == []
    assert not [c for c in client.calls if c[1] == "Event"]


def test_timeout_when_object_never_appears():
    client = FakeClient()
    client.watch_script = [[END]]
    with pytest.raises(WaitTimeout) as exc:
        waiter.wait_vmis(client, "ns", ["vm1"], ["ready"], 0.2)
    assert "vm1 does not exist" in str(exc.value)


def test_standalone_vmi_failed_fails_at_once():
    client = FakeClient()
    client.watch_script = [[("ADDED", pending_vmi(phase="Failed")), END]]
    with pytest.raises(WaitFailed) as exc:
        waiter.wait_vmis(client, "ns", ["vm1"], ["ready"], 5, owned_by_vm=False)
    assert "ended in phase Failed" in str(exc.value)


@pytest.mark.parametrize("strategy, phase, fails", [
    ("Always", "Failed", False), ("Once", "Failed", True), ("RerunOnFailure", "Succeeded", True),
    ("RerunOnFailure", "Failed", False),
])
def test_vm_owned_vmi_end_depends_on_run_strategy(strategy, phase, fails):
    check = waiter.vmi_check(["ready"], ["vm1"], True, {"vm1": strategy})
    if fails:
        with pytest.raises(WaitFailed):
            check({"vm1": pending_vmi(phase=phase)})
    else:
        assert check({"vm1": pending_vmi(phase=phase)}) is False


def test_wait_gone_by_name_and_selector():
    client = FakeClient()
    client.watch_script = [[("ADDED", {"metadata": {"name": "vm1"}}), END, ("DELETED", {"metadata": {"name": "vm1"}})]]
    progress = waiter.wait_gone(client, res.VM, "ns", ["vm1"], 5)
    assert progress["result"] == "ok"
    client.watch_script = [[END]]
    waiter.wait_gone(client, res.POD, "ns", None, 5, label_selector="kubevirt.io=virt-launcher",
                     description="pods gone")
    assert client.calls[-1][2]["label_selector"] == "kubevirt.io=virt-launcher"


def test_many_names_use_one_namespace_watch():
    client = FakeClient()
    client.watch_script = [[("ADDED", running_vmi("a", "ns")), ("ADDED", running_vmi("other", "ns")), END,
                            ("ADDED", running_vmi("b", "ns"))]]
    objects, progress = waiter.wait_vmis(client, "ns", ["a", "b"], ["ready"], 5)
    assert set(objects) == {"a", "b"} and client.calls[0][2]["field_selector"] is None
    assert progress["watches"] == 1 and progress["waited_for"] == "2 VirtualMachines in ns to be ready"


def test_other_api_errors_propagate():
    client = FakeClient()
    client.watch_script = [ApiError(403, "GET", "/x", {"message": "forbidden"})]
    with pytest.raises(ApiError):
        waiter.wait_vmis(client, "ns", ["vm1"], ["ready"], 5)


def test_describe_object():
    assert waiter.describe_object(None) == "does not exist"
    assert waiter.describe_object({"status": {}}) == "no status yet"
    text = waiter.describe_object({"metadata": {"deletionTimestamp": "x"},
                                   "status": {"printableStatus": "Stopping", "phase": "Running"}})
    assert text == "status Stopping, phase Running, being deleted"


def test_deleting_or_foreign_vmis_never_count():
    check = waiter.vmi_check(["ready"], ["vm1"], True, {"vm1": "Always"}, {"vm1": "uid-new"})
    old = running_vmi("vm1", "ns")
    old["metadata"]["ownerReferences"] = [{"kind": "VirtualMachine", "uid": "uid-old"}]
    assert check({"vm1": old}) is False
    new = running_vmi("vm1", "ns")
    new["metadata"]["ownerReferences"] = [{"kind": "VirtualMachine", "uid": "uid-new"}]
    assert check({"vm1": new}) is True
    new["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    assert check({"vm1": new}) is False


def test_a_running_wait_is_listed_with_its_status_and_removed_after():
    client = FakeClient()
    client.watch_script = [[END, ("ADDED", pending_vmi()), ("MODIFIED", running_vmi("vm1", "ns"))]]
    seen = []
    check = waiter.vmi_check(["ready"], ["vm1"])

    def spying_check(objects):
        seen.append(waiter.ACTIVE[-1].status())
        return check(objects)

    wait = waiter.Wait(client, res.VMI, "ns", spying_check, "VMIs ns/vm1 to be ready", 300, names=["vm1"])
    wait.run()
    assert waiter.ACTIVE == []
    assert seen[0] == "waiting for VMIs ns/vm1 to be ready: 0s of 300s, last seen: vm1 does not exist"
    assert any("vm1 phase Scheduling" in line for line in seen), seen


def test_status_of_many_objects_names_three():
    wait = waiter.Wait(FakeClient(), res.VMI, "ns", lambda o: False, "20 VMIs", 60, names=["a%d" % i for i in range(20)])
    wait.started = wait.clock()
    assert wait.status().endswith("a0 does not exist; a1 does not exist; a10 does not exist and 17 more")


def test_status_of_a_fleet_counts_the_done_and_where_the_others_are():
    # The live line of a fleet's one wait: how many are done, the others counted by phase, the first
    # pending ones described; a VMI that ended for good counts as failed, not as pending.
    names = ["a", "b", "c", "d", "e"]
    checks = {name: waiter.vmi_check(["ready"], [name], True, {"e": "Once"}) for name in names}
    wait = waiter.Wait(FakeClient(), res.VMI, "ns", lambda o: False, "5 VirtualMachines in ns to be ready", 600,
                       names=names, each=checks)
    wait.started = wait.clock() - 12
    ended = running_vmi("e", "ns", phase="Failed", ready=False)
    wait.objects = {"a": running_vmi("a", "ns"), "b": pending_vmi("b"), "c": pending_vmi("c"), "e": ended}
    assert wait.status() == (
        "waiting for 5 VirtualMachines in ns to be ready: 12s of 600s, 1/5 done (2 Scheduling, "
        "1 failed, 1 without a VirtualMachineInstance yet), last seen: b %s; c %s; d does not exist" % (
            waiter.describe_object(wait.objects["b"]), waiter.describe_object(wait.objects["c"])))
    wait.objects.update({name: running_vmi(name, "ns") for name in "bcd"})
    assert wait.status().endswith("4/5 done (1 failed), last seen: all done")


def test_status_of_a_fleet_deletion_counts_the_gone_and_names_only_the_others():
    names = ["a", "b", "c"]
    wait = waiter.Wait(FakeClient(), res.VM, "ns", waiter.gone_check(names), "3 VirtualMachines in ns to be deleted",
                       300, names=names, each={n: waiter.gone_check([n]) for n in names})
    wait.started = wait.clock()
    deleting = {"metadata": {"name": "c", "deletionTimestamp": "2026-01-01T00:00:00Z"},
                "status": {"printableStatus": "Terminating"}}
    wait.objects = {"c": deleting}
    assert wait.status() == ("waiting for 3 VirtualMachines in ns to be deleted: 0s of 300s, 2/3 done "
                             "(1 Terminating (being deleted)), last seen: c status Terminating, being deleted")


def test_keep_limits_a_selector_wait_to_its_objects_also_on_timeout():
    # Deleting VMs a and b: the launcher-pod selector also sees VM c's pod, which must not be named.
    client = FakeClient()

    def pod(name, vm):
        return {"kind": "Pod", "metadata": {"name": name, "namespace": "ns", "labels": {"vm.kubevirt.io/name": vm}},
                "status": {"phase": "Running"}}
    client.watch_script = [[("ADDED", pod("virt-launcher-a-x7k2q", "a")), ("ADDED", pod("virt-launcher-c-b9c4d", "c")),
                            END]]
    wait = waiter.Wait(client, res.POD, "ns", waiter.gone_check(None), "the pods of a and b to be deleted", 0.3,
                       label_selector="kubevirt.io=virt-launcher",
                       keep=lambda o: o["metadata"]["labels"]["vm.kubevirt.io/name"] in ("a", "b"))
    with pytest.raises(WaitTimeout) as exc:
        wait.run()
    assert "virt-launcher-a-x7k2q" in str(exc.value) and "virt-launcher-c-b9c4d" not in str(exc.value)
    client.watch_script = [[("ADDED", pod("virt-launcher-c-b9c4d", "c")), END]]
    wait = waiter.Wait(client, res.POD, "ns", waiter.gone_check(None), "the pods of a and b to be deleted", 1,
                       label_selector="kubevirt.io=virt-launcher",
                       keep=lambda o: o["metadata"]["labels"]["vm.kubevirt.io/name"] in ("a", "b"))
    assert wait.run()["result"] == "ok"


# -- a VM without a VMI: what the VM says ------------------------------------------------------------
NO_INSTANCETYPE = {"type": "Failure", "status": "True", "reason": "FailedFindInstancetype",
                   "message": 'virtualmachineclusterinstancetypes.instancetype.kubevirt.io "u1.small" not found',
                   "lastTransitionTime": "2026-01-01T00:00:00Z"}


def vm_with_status(name="vm1", printable="Stopped", conditions=()):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": name, "namespace": "ns", "uid": "uid-" + name},
            "spec": {"runStrategy": "Always"},
            "status": {"printableStatus": printable, "ready": False, "created": False,
                       "conditions": [{"type": "Ready", "status": "False", "reason": "VMINotExists",
                                       "message": "VMI does not exist"}] + list(conditions)}}


@pytest.fixture
def probe_at_once(monkeypatch):
    monkeypatch.setattr(waiter.VmProbe, "FIRST", 0.0)


def test_vm_wait_fails_fast_when_the_vm_cannot_start(probe_at_once):
    """The instancetype does not exist: KubeVirt never creates the VMI and says so on the VM only."""
    client = FakeClient(namespaces=("ns",))
    client.put(vm_with_status(conditions=[NO_INSTANCETYPE]))
    client.watch_script = [[END]]
    with pytest.raises(WaitFailed) as exc:
        waiter.wait_vmis(client, "ns", ["vm1"], ["ready"], 30)
    assert str(exc.value) == (
        'VirtualMachine ns/vm1 cannot start: KubeVirt reports Failure=True (FailedFindInstancetype: '
        'virtualmachineclusterinstancetypes.instancetype.kubevirt.io "u1.small" not found); it retries only after '
        'the VM or what it refers to changes.')
    watch = [c for c in client.calls if c[0] == "WATCH"][0][2]
    assert watch["idle"] is not None  # the watch does not outlast the VM's first look


def test_the_progress_record_counts_the_vms_reads_while_it_has_no_vmi(probe_at_once):
    """A slow VMI: each look at the VM is one request, and the record says how many (requests ~ watches + reads)."""
    client = FakeClient(namespaces=("ns",))
    client.put(vm_with_status(printable="Starting"))
    vmi = running_vmi("vm1", "ns")
    vmi["metadata"]["ownerReferences"] = [{"kind": "VirtualMachine", "name": "vm1", "uid": "uid-vm1"}]
    client.watch_script = [[END], [], [("ADDED", vmi)]]
    objects, progress = waiter.wait_vmis(client, "ns", ["vm1"], ["ready"], 10)
    assert progress["result"] == "ok" and progress["reads"] >= 1
    gets = [c for c in client.calls if c[0] == "GET"]
    assert len(gets) == progress["reads"] and client.requests == progress["watches"] + progress["reads"]
    client.watch_script = [[("ADDED", vmi), END]]
    _objects, quick = waiter.wait_vmis(client, "ns", ["vm1"], ["ready"], 10)
    assert "reads" not in quick      # no look needed: no key


def test_vm_wait_timeout_describes_the_vm_not_a_missing_vmi():
    """No VMI while the VM provisions its DataVolumes: the VM is described, never 'does not exist'."""
    client = FakeClient(namespaces=("ns",))
    client.put(vm_with_status(printable="Provisioning", conditions=[
        {"type": "DataVolumesReady", "status": "False", "reason": "NotAllDataVolumesReady",
         "message": "DataVolume root is ImportInProgress"}]))
    client.watch_script = [[END]]
    with pytest.raises(WaitTimeout) as exc:
        waiter.wait_vmis(client, "ns", ["vm1"], ["ready"], 1)
    msg = str(exc.value)
    assert "does not exist" not in msg
    assert ("last seen: vm1 has no VirtualMachineInstance; its VirtualMachine: status Provisioning, conditions "
            "DataVolumesReady=False (NotAllDataVolumesReady: DataVolume root is ImportInProgress)") in msg


def test_vm_wait_says_does_not_exist_only_when_the_vm_is_gone():
    client = FakeClient(namespaces=("ns",))
    client.watch_script = [[END]]
    with pytest.raises(WaitTimeout) as exc:
        waiter.wait_vmis(client, "ns", ["vm1"], ["ready"], 1)
    assert "last seen: vm1 does not exist." in str(exc.value)
    assert ("GET", "VirtualMachine") in [(c[0], c[1]) for c in client.calls]  # it looked for the VM


def test_vm_probe_waits_out_a_failure_from_before_the_write():
    """A Failure the VM had before the task's write may be gone once KubeVirt sees the change: no early end."""
    client = FakeClient(namespaces=("ns",))
    vm = vm_with_status(conditions=[NO_INSTANCETYPE])
    client.put(vm)
    probe = waiter.VmProbe(client, "ns", ["vm1"], before={"vm1": vm})
    probe.look({})
    assert probe.failures == {} and probe.vms["vm1"]["status"]["printableStatus"] == "Stopped"
    fresh = vm_with_status(conditions=[dict(NO_INSTANCETYPE, lastTransitionTime="2026-01-01T00:05:00Z")])
    client.put(fresh)
    probe.look({})
    assert "FailedFindInstancetype" in probe.failures["vm1"]


@pytest.mark.parametrize("cond, lasts", [
    (NO_INSTANCETYPE, True),
    (dict(NO_INSTANCETYPE, reason="FailedFindPreference"), True),
    (dict(NO_INSTANCETYPE, reason="FailedCreate", message='Failure while starting VMI: admission webhook '
                                                          '"virtualmachineinstances-create-validator.kubevirt.io" '
                                                          'denied the request: no memory requested'), True),
    (dict(NO_INSTANCETYPE, reason="FailedCreate", message="Failure while starting VMI: etcdserver: timeout"), False),
    (dict(NO_INSTANCETYPE, reason="HotPlugVolumeError"), False),
])
def test_which_failures_last(cond, lasts):
    from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import failure_lasts
    assert failure_lasts(cond) is lasts


def test_bulk_wait_texts_name_the_objects():
    assert waiter.objects_label("VirtualMachine", "ns", ["a"]) == "VirtualMachine ns/a"
    assert waiter.objects_label("VirtualMachine", "ns", list("abcde")) == "5 VirtualMachines in ns"
    assert waiter.objects_label("Pod", "ns", None) == "the Pods in ns"


def test_a_fleet_wait_checks_only_the_vm_an_event_was_about():
    from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.vm import settled_check
    calls = []

    def counted(name):
        one = waiter.vmi_check(["ready"], [name])

        def check(objects):
            calls.append(name)
            return one(objects)
        return check
    names = ["vm%d" % i for i in range(50)]
    check = settled_check({n: counted(n) for n in names}, {})
    client = FakeClient()
    # vm0 ready, then not ready again (a restart) before the others are: it is pending once more.
    script = [END, ("ADDED", running_vmi("vm0", "ns")), ("MODIFIED", pending_vmi("vm0"))]
    script += [("ADDED", running_vmi(n, "ns")) for n in names]
    client.watch_script = [script]
    wait = waiter.Wait(client, res.VMI, "ns", check, "the fleet", 5, names=names)
    progress = wait.run()
    assert progress["result"] == "ok"
    # one full check at the end of the initial state, then one VM's check per event: not 50 per event
    assert len(calls) == len(names) + 2 + len(names)
    assert calls[len(names):len(names) + 2] == ["vm0", "vm0"]


def test_a_fleet_check_settles_failures_and_vms_that_come_back():
    from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.vm import settled_check
    failed = running_vmi("b", "ns", phase="Failed", ready=False)
    check = settled_check({"a": waiter.vmi_check(["ready"], ["a"], True, {"a": "Always"}),
                           "b": waiter.vmi_check(["ready"], ["b"], True, {"b": "Once"})}, {})
    objects = {"a": running_vmi("a", "ns"), "b": pending_vmi("b")}
    assert check(objects) is False
    objects["b"] = failed
    assert check.update(objects, "b") is True and "ended in phase Failed" in check.failures["b"]
    objects["a"] = pending_vmi("a")
    assert check.update(objects, "a") is False and check.update(objects, "other") is False
    objects["a"] = running_vmi("a", "ns")
    assert check.update(objects, "a") is True
