import pytest
from kvfakes import running_vmi
from modhelp import run_module
from opsfakes import OpsClient, conflict, vm_obj, warnings_text

from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows import vm_power as vm_power_flow
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import operations
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError, InputError, KubevirtError
from ansible_collections.virtops.kubevirt.plugins.modules import vm_power


def vmi_in(phase="Running", paused=False, deleting=False, migratable=True, agent=True, acpi=None, migrating=False):
    vmi = running_vmi("web1", "demo", phase=phase)
    conds = vmi["status"]["conditions"]
    if paused:
        conds.append({"type": "Paused", "status": "True"})
    if not migratable:
        conds.append({"type": "LiveMigratable", "status": "False", "reason": "InterfaceNotLiveMigratable",
                      "message": "cannot migrate VMI which does not use masquerade."})
    if not agent:
        vmi["status"]["conditions"] = [c for c in conds if c["type"] != "AgentConnected"]
    if acpi is not None:
        vmi["spec"]["domain"] = {"features": {"acpi": {"enabled": acpi}}}
    if deleting:
        vmi["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    if migrating:
        vmi["status"]["migrationState"] = {"migrationUid": "m1", "completed": False}
    return vmi


P = {"paused": False, "force": False, "grace_period": None, "node_selector": None}


# -- decide(): the pure core -----------------------------------------------------------------------
@pytest.mark.parametrize("state, strategy, vmi, action, verb, wait", [
    ("started", "Halted", None, "start", "start", "ready"),
    ("started", "Manual", None, "start", "start", "ready"),
    ("started", "RerunOnFailure", vmi_in("Succeeded"), "start", "start", "ready"),
    ("started", "Always", None, "none", None, "ready"),
    ("started", "Always", vmi_in(), "none", None, "ready"),
    ("started", "Manual", vmi_in("Scheduling"), "none", None, "ready"),
    ("started", "Halted", vmi_in(paused=True), "none", None, "paused"),
    ("started", "Once", None, "none", None, "ready"),
    ("stopped", "Always", vmi_in(), "stop", "stop", "gone"),
    ("stopped", "Manual", vmi_in(), "stop", "stop", "gone"),
    ("stopped", "Always", None, "stop", "stop", "gone"),
    ("stopped", "Halted", None, "none", None, "gone"),
    ("stopped", "Halted", vmi_in(deleting=True), "none", None, "gone"),
    ("stopped", "Halted", vmi_in(), "none", None, "gone"),
    ("stopped", "Manual", vmi_in("Succeeded"), "none", None, "gone"),
    ("restarted", "Always", vmi_in(), "restart", "restart", "new_vmi"),
    ("restarted", "Halted", None, "start", "start", "ready"),
    ("restarted", "Always", None, "none", None, "ready"),
    ("paused", "Always", vmi_in(), "pause", "pause", "paused"),
    ("paused", "Always", vmi_in(paused=True), "none", None, "paused"),
    ("unpaused", "Always", vmi_in(paused=True), "unpause", "unpause", "unpaused"),
    ("unpaused", "Always", vmi_in(), "none", None, "none"),
    ("soft_rebooted", "Always", vmi_in(), "soft_reboot", "softreboot", "none"),
    ("soft_rebooted", "Always", vmi_in(agent=False), "soft_reboot", "softreboot", "none"),
    ("migrated", "Always", vmi_in(), "migrate", "migrate", "migration"),
    # The VMI's migrationState does not decide (a cancelled migration still shows there): the migration
    # objects do (migration_in_flight, tested below).
    ("migrated", "Always", vmi_in(migrating=True), "migrate", "migrate", "migration"),
])
def test_decide(state, strategy, vmi, action, verb, wait):
    decision = vm_power_flow.decide(state, vm_obj(strategy=strategy), vmi, P)
    assert (decision.action, decision.verb, decision.wait) == (action, verb, wait)
    assert decision.changed is (action != "none")


@pytest.mark.parametrize("state, strategy, vmi, message", [
    ("paused", "Always", None, "is not running (status Stopped), so it can't be paused; start it first (state: "
                               "started with paused: true starts it paused)"),
    ("unpaused", "Halted", None, "so it can't be unpaused"),
    ("migrated", "Always", vmi_in(migratable=False),
     "can't be live-migrated: InterfaceNotLiveMigratable: cannot migrate VMI which does not use masquerade."),
    ("migrated", "Always", vmi_in("Scheduling"), "is not Running yet (its VMI is Scheduling)"),
    ("soft_rebooted", "Always", vmi_in(paused=True), "is paused, so it can't be soft rebooted"),
    ("soft_rebooted", "Always", vmi_in(agent=False, acpi=False), "guest agent is not connected and ACPI is disabled"),
    ("restarted", "Once", vmi_in(), "run strategy Once, which KubeVirt can't restart"),
    ("started", "Once", vmi_in("Succeeded"), "has run strategy Once and its VMI has ended (phase Succeeded)"),
])
def test_decide_refuses_with_a_sentence(state, strategy, vmi, message):
    with pytest.raises(KubevirtError) as exc:
        vm_power_flow.decide(state, vm_obj(strategy=strategy), vmi, P)
    assert message in str(exc.value)
    assert str(exc.value).startswith("VirtualMachine demo/web1 ") and str(exc.value).endswith(".")


def test_decide_bodies():
    assert vm_power_flow.decide("stopped", vm_obj(), vmi_in(), dict(P, force=True)).body == {"gracePeriod": 0}
    assert vm_power_flow.decide("stopped", vm_obj(), vmi_in(), dict(P, grace_period=30)).body == {"gracePeriod": 30}
    assert vm_power_flow.decide("stopped", vm_obj(strategy="Halted"), vmi_in(deleting=True),
                                dict(P, force=True)).action == "stop"
    assert vm_power_flow.decide("restarted", vm_obj(), vmi_in(), dict(P, force=True)).body == {"gracePeriodSeconds": 0}
    assert vm_power_flow.decide("started", vm_obj(strategy="Halted"), None, dict(P, paused=True)).body == {"paused": True}
    decision = vm_power_flow.decide("migrated", vm_obj(), vmi_in(), dict(P, node_selector={"zone": "b"}))
    assert decision.body == {"addedNodeSelector": {"zone": "b"}}
    assert vm_power_flow.decide("started", vm_obj(strategy="Halted"), vmi_in(deleting=True), P).pre_wait_gone
    with pytest.raises(InputError):
        vm_power_flow.decide("stopped", vm_obj(), vmi_in(), dict(P, grace_period=-1))


def test_decide_notes():
    assert "paused applies only when starting" in vm_power_flow.decide("started", vm_obj(), vmi_in(), dict(P, paused=True)).note
    assert "RerunOnFailure" in vm_power_flow.decide("stopped", vm_obj(strategy="RerunOnFailure"), vmi_in("Failed"), P).note


# -- explain_subresource ------------------------------------------------------------------------------
@pytest.mark.parametrize("message, hint", [
    ("VM is already running", "it is running already"),
    ("Always does not support manual start requests", "change run_strategy with virtops.kubevirt.vm"),
    ("Halted only supports manual stop requests with a shorter graceperiod", "use force: true"),
    ("VM is not running", "start it first"),
    ("VMI is already paused", "it is paused already"),
    ("something new", "check the VM's state and try again"),
])
def test_conflicts_become_sentences(message, hint):
    text = operations.explain_subresource(conflict("virtualmachine", "web1", message), "start",
                                          "VirtualMachine demo/web1", "start", res.VM)
    assert text.startswith("Could not start VirtualMachine demo/web1: %s; " % message)
    assert hint in text and text.endswith(".")


def test_forbidden_subresource_names_the_permission():
    exc = ApiError(403, "PUT", "/x", {"reason": "Forbidden", "message": "user cannot update virtualmachines/start"})
    text = operations.explain_subresource(exc, "start", "VirtualMachine demo/web1", "start", res.VM)
    assert "grant 'update' on virtualmachines/start in the API group subresources.kubevirt.io" in text


def test_missing_virt_api():
    exc = ApiError(404, "PUT", "/x", {"reason": "NotFound", "message": "the server could not find the requested "
                                                                       "resource"})
    text = operations.explain_subresource(exc, "stop", "VirtualMachine demo/web1", "stop", res.VM)
    assert "KubeVirt's virt-api is installed" in text


# -- the module against the fake API --------------------------------------------------------------
@pytest.fixture
def client():
    return OpsClient()


@pytest.fixture
def run(client, monkeypatch, capsys):
    def _run(args, **kw):
        return run_module(vm_power, dict({"name": "web1", "namespace": "demo"}, **args), client, monkeypatch,
                          capsys, **kw)
    return _run


def test_start_a_halted_vm_then_again(run, client):
    client.add_vm(vm_obj(strategy="Halted"))
    first = run({"state": "started"})
    assert first["changed"] is True and first["action"] == "start"
    assert client.sub_calls == [("virtualmachines", "web1", "start", {})]
    assert first["ready"] is True and first["printable_status"] == "Running" and first["node"] == "node01"
    assert first["progress"][0]["result"] == "ok"
    second = run({"state": "started"})
    assert second["changed"] is False and second["action"] == "none"
    assert len(client.sub_calls) == 1


def test_check_mode_calls_nothing(run, client):
    client.add_vm(vm_obj(strategy="Halted"))
    result = run({"state": "started"}, check_mode=True)
    assert result["changed"] is True and result["action"] == "start"
    assert client.sub_calls == [] and client.vmi() is None
    client.add_vm(vm_obj(), vmi_phase="Running")
    assert run({"state": "started"}, check_mode=True)["changed"] is False


def test_stop_force_and_idempotence(run, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    result = run({"state": "stopped", "force": True})
    assert result["changed"] is True and client.sub_calls[-1][3] == {"gracePeriod": 0}
    assert result["vmi"] is None and result["printable_status"] == "Stopped"
    assert client.vm()["spec"]["runStrategy"] == "Halted"
    assert run({"state": "stopped"})["changed"] is False


def test_pause_unpause(run, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    paused = run({"state": "paused"})
    assert paused["changed"] and paused["paused"] and paused["printable_status"] == "Paused"
    assert client.sub_calls[-1][:3] == ("virtualmachineinstances", "web1", "pause")
    assert run({"state": "paused"})["changed"] is False
    unpaused = run({"state": "unpaused"})
    assert unpaused["changed"] and not unpaused["paused"]
    assert run({"state": "unpaused"})["changed"] is False


def test_restart_waits_for_a_new_vmi(run, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    old_uid = client.vmi()["metadata"]["uid"]
    result = run({"state": "restarted"})
    assert result["changed"] and result["action"] == "restart"
    assert client.vmi()["metadata"]["uid"] != old_uid
    assert "to restart and be ready" in result["progress"][0]["waited_for"]


def test_migrate_reports_source_and_target(run, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    result = run({"state": "migrated", "node_selector": {"zone": "b"}})
    assert result["changed"] and result["action"] == "migrate"
    assert client.sub_calls[-1][3] == {"addedNodeSelector": {"zone": "b"}}
    assert result["migration"]["source_node"] == "node01" and result["migration"]["target_node"] == "node02"
    assert result["migration"]["phase"] == "Succeeded" and result["node"] == "node02"
    assert result["progress"][-1]["phases"][-1]["phase"] == "Succeeded"


def test_migrate_skipped_when_the_node_matches(run, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    client.put({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node01", "labels": {"zone": "b"}}})
    result = run({"state": "migrated", "node_selector": {"zone": "b"}})
    assert result["changed"] is False and result["migration"] is None
    assert "matches node_selector" in warnings_text(result)


def test_not_migratable_fails_without_a_call(run, client):
    client.migratable = False
    client.add_vm(vm_obj(), vmi_phase="Running")
    result = run({"state": "migrated"})
    assert result["failed"] and "can't be live-migrated: DisksNotLiveMigratable" in result["msg"]
    assert client.sub_calls == []


def test_409_becomes_a_sentence(run, client):
    client.add_vm(vm_obj(strategy="Halted"))
    client.sub_fail["start"] = conflict("virtualmachine", "web1", "VM is already running")
    result = run({"state": "started"})
    assert result["failed"] and result["changed"] is False
    assert result["msg"] == ("Could not start VirtualMachine demo/web1: VM is already running; it is running "
                             "already.")


def test_missing_vm(run, client):
    result = run({"state": "started"})
    assert result["failed"]
    assert result["msg"] == ("VirtualMachine demo/web1 does not exist; check name and namespace (create it with "
                             "virtops.kubevirt.vm).")


@pytest.mark.parametrize("args, message", [
    ({"state": "paused", "force": True}, "force and grace_period apply to state: stopped and restarted only."),
    ({"state": "stopped", "node_selector": {"a": "b"}}, "node_selector applies to state: migrated only."),
    ({"state": "stopped", "paused": True}, "paused applies to state: started only"),
    ({"state": "restarted", "grace_period": 5}, "KubeVirt's restart takes no grace period"),
    ({"state": "started", "wait_for": ["bogus"]}, "wait_for item 'bogus' is unknown"),
    ({"state": "started", "name": "Web_1"}, "name 'Web_1' is invalid"),
])
def test_bad_input(run, client, args, message):
    client.add_vm(vm_obj())
    result = run(args)
    assert result["failed"] and message in result["msg"]
    assert client.sub_calls == []


def test_wait_timeout_reports_progress(run, client):
    client.add_vm(vm_obj(strategy="Halted"))
    client.sub_fail = {}

    def start_nothing(ns, name, body):
        client.vm(name, ns)["spec"]["runStrategy"] = "Always"
    client._sub_start = start_nothing
    result = run({"state": "started", "wait_timeout": 1})
    assert result["failed"] and result["changed"] is True
    assert result["msg"].startswith("Timed out after 1s waiting for VirtualMachine demo/web1 to be ready")
    assert result["progress"][-1]["result"] == "timeout"


def test_stopped_check_waits_for_a_final_vmi_that_is_not_being_deleted():
    check = vm_power_flow._stopped_check("vm1")
    ended = {"metadata": {"name": "vm1"}, "status": {"phase": "Succeeded"}}
    deleting = {"metadata": {"name": "vm1", "deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Failed"}}
    running = {"metadata": {"name": "vm1"}, "status": {"phase": "Running"}}
    assert check({}) and check({"vm1": ended})
    assert not check({"vm1": deleting}) and not check({"vm1": running})


# -- live migration: scoped to this VMI, joins the one in flight, names the cause -----------------
def _migration(name, vmi, phase, uid=None, created="2025-01-01T00:00:05Z", selector=None):
    mig = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
           "metadata": {"name": name, "namespace": "demo", "uid": uid or "uid-" + name, "creationTimestamp": created},
           "spec": {"vmiName": vmi}, "status": {"phase": phase}}
    if selector:
        mig["spec"]["addedNodeSelector"] = selector
    return mig


def _event(name, kind, obj, uid, reason, message, when="2025-01-01T00:00:09Z"):
    return {"apiVersion": "v1", "kind": "Event", "type": "Warning", "reason": reason, "message": message,
            "metadata": {"name": name, "namespace": "demo"}, "lastTimestamp": when,
            "involvedObject": {"kind": kind, "name": obj, "uid": uid, "namespace": "demo"}}


UNSCHEDULABLE = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."


def _stuck_migrate(client):
    """virt-api's migrate whose target pod can't be scheduled (nodeSelector matches no node)."""
    def migrate(ns, name, body):
        mig = client.put(_migration("kubevirt-migrate-vm-ours1", name, "Scheduling", uid="ours-uid",
                                    selector=body.get("addedNodeSelector")))
        client.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "virt-launcher-web1-t4rgt", "namespace": ns, "uid": "target-pod-uid",
            "labels": {"kubevirt.io": "virt-launcher", operations.MIGRATION_JOB_LABEL: mig["metadata"]["uid"]}},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                           "reason": "Unschedulable", "message": UNSCHEDULABLE}]}})
        client.put(_event("e-target", "Pod", "virt-launcher-web1-t4rgt", "target-pod-uid", "FailedScheduling",
                          UNSCHEDULABLE))
    client._sub_migrate = migrate


def test_a_stuck_migration_times_out_naming_its_target_pods_cause_and_is_cancelled(run, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    # Another VM's failed migration and its events, in the same namespace: never quoted.
    client.put(_migration("kubevirt-migrate-vm-7l5xj", "other", "Failed", created="2025-01-01T00:00:01Z"))
    client.put(_event("e-other", "VirtualMachineInstanceMigration", "kubevirt-migrate-vm-7l5xj",
                      "uid-kubevirt-migrate-vm-7l5xj", "FailedMigration",
                      "Migration failed because the VMI is not running"))
    _stuck_migrate(client)
    result = run({"state": "migrated", "node_selector": {"zone": "nowhere"}, "wait_timeout": 1})
    msg = result["msg"]
    assert result["failed"] and result["changed"] is True
    assert "kubevirt-migrate-vm-7l5xj" not in msg and "VMI is not running" not in msg
    assert msg.startswith("Timed out after 1s waiting for the live migration kubevirt-migrate-vm-ours1 of "
                          "VirtualMachineInstance demo/web1 to succeed; last seen: kubevirt-migrate-vm-ours1 phase "
                          "Scheduling; target pod virt-launcher-web1-t4rgt phase Pending, conditions "
                          "PodScheduled=False (Unschedulable: " + UNSCHEDULABLE.rstrip("."))
    assert msg.count(UNSCHEDULABLE.rstrip(".")) == 1   # the FailedScheduling event says it again: once is enough
    assert "the migration was cancelled (VirtualMachineInstanceMigration kubevirt-migrate-vm-ours1 deleted" in msg
    assert result["migration"]["name"] == "kubevirt-migrate-vm-ours1"
    assert result["migration"]["phase"] == "Scheduling" and result["migration"]["cancelled"] is True
    assert client.get_or_none(res.MIGRATION, "kubevirt-migrate-vm-ours1", "demo") is None
    assert client.get_or_none(res.MIGRATION, "kubevirt-migrate-vm-7l5xj", "demo") is not None
    assert len(result["progress"]) == 1 and result["progress"][0]["result"] == "timeout"
    assert [p["phase"] for p in result["progress"][0]["phases"]] == ["Scheduling"]


def test_a_migration_in_flight_is_joined_not_started_again(run, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    client.put(_migration("kubevirt-migrate-vm-7l5xj", "other", "Scheduling"))   # another VMI's: not ours to join
    client.put(_migration("kubevirt-migrate-vm-first", "web1", "Scheduling"))
    result = run({"state": "migrated", "wait_timeout": 1})
    assert client.sub_calls == []
    assert result["failed"] and result["changed"] is False and result["action"] == "none"
    assert "waiting for the live migration kubevirt-migrate-vm-first of VirtualMachineInstance demo/web1" in \
        result["msg"]
    assert "this task did not start that migration and leaves it running" in result["msg"]
    assert client.get_or_none(res.MIGRATION, "kubevirt-migrate-vm-first", "demo") is not None
    assert result["migration"]["name"] == "kubevirt-migrate-vm-first" and result["migration"]["cancelled"] is False
    assert "is being migrated already (migration kubevirt-migrate-vm-first, phase Scheduling)" in \
        warnings_text(result)
    check = run({"state": "migrated"}, check_mode=True)
    assert check["changed"] is False and check["migration"]["name"] == "kubevirt-migrate-vm-first"


def test_ended_migrations_are_not_joined(run, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    client.put(_migration("kubevirt-migrate-vm-first", "web1", "Succeeded"))
    client.put(dict(_migration("kubevirt-migrate-vm-second", "web1", "Running"), status={
        "phase": "Succeeded", "migrationState": {"sourceNode": "node01", "targetNode": "node03"}}))
    # status.phase Succeeded means it ended: nothing in flight, so a new migration is made.
    result = run({"state": "migrated"})
    assert result["changed"] and client.sub_calls[-1][2] == "migrate"
    assert result["migration"]["name"] == "kubevirt-migrate-vm-abcde" and result["migration"]["phase"] == "Succeeded"


IN_FLIGHT = ('Internal error occurred: admission webhook "migration-create-validator.kubevirt.io" denied the request: '
             'in-flight migration detected. Active migration job (racer-uid) is currently already in progress for VMI '
             'web1.')


def test_an_in_flight_refusal_joins_the_migration_that_won_the_race(run, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    racer = _migration("kubevirt-migrate-vm-racer", "web1", "Succeeded", uid="racer-uid")
    racer["status"]["migrationState"] = {"sourceNode": "node01", "targetNode": "node02"}

    def refuse(ns, name, body):
        client.put(racer)
        raise ApiError(500, "PUT", "/x", {"kind": "Status", "reason": "InternalError", "code": 500,
                                          "message": IN_FLIGHT})
    client._sub_migrate = refuse
    result = run({"state": "migrated"})
    assert not result.get("failed"), result.get("msg")
    assert len(client.sub_calls) == 1
    assert result["changed"] is False and result["migration"]["name"] == "kubevirt-migrate-vm-racer"
    assert "overloaded" not in str(result)


def _cancelled(name, phase="Running", uid=None):
    mig = _migration(name, "web1", phase, uid=uid, created="2025-01-01T00:00:03Z")
    mig["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:04Z"
    mig["metadata"]["finalizers"] = ["kubevirt.io/migrationJobFinalize"]
    return mig


def test_a_cancelled_migration_still_ending_is_waited_for_not_joined(run, client):
    # virtctl migrate-cancel deleted it; KubeVirt is aborting it (finalizer, phase not final yet) and
    # refuses a new migration until it has ended. Joining it would report the abort as this task's result.
    client.add_vm(vm_obj(), vmi_phase="Running")
    client.vmi()["status"]["migrationState"] = {"migrationUid": "uid-kubevirt-migrate-vm-cancel", "completed": False}
    client.put(_cancelled("kubevirt-migrate-vm-cancel"))
    check = run({"state": "migrated"}, check_mode=True)
    assert check["changed"] is True and check["action"] == "migrate" and not check.get("migration")
    assert client.sub_calls == []
    client.going.add(("VirtualMachineInstanceMigration", "demo", "kubevirt-migrate-vm-cancel"))
    result = run({"state": "migrated"})
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True and result["action"] == "migrate"
    assert [c[2] for c in client.sub_calls] == ["migrate"]
    assert result["migration"]["name"] == "kubevirt-migrate-vm-abcde"
    assert "being migrated already" not in warnings_text(result)
    waits = [p["waited_for"] for p in result["progress"]]
    assert waits[0] == ("the cancelled live migration kubevirt-migrate-vm-cancel of VirtualMachineInstance "
                        "demo/web1 to end")


def test_an_in_flight_refusal_naming_a_cancelled_migration_waits_for_it_and_calls_again(run, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    migrate = client._sub_migrate

    def refuse_once(ns, name, body):
        if len(client.sub_calls) == 1:
            # cancelled between our read and our call: still ending when virt-api looked
            client.put(_cancelled("kubevirt-migrate-vm-racer", uid="racer-uid"))
            client.going.add(("VirtualMachineInstanceMigration", "demo", "kubevirt-migrate-vm-racer"))
            raise ApiError(500, "PUT", "/x", {"kind": "Status", "reason": "InternalError", "code": 500,
                                              "message": IN_FLIGHT})
        return migrate(ns, name, body)
    client._sub_migrate = refuse_once
    result = run({"state": "migrated"})
    assert not result.get("failed"), result.get("msg")
    assert [c[2] for c in client.sub_calls] == ["migrate", "migrate"]
    assert result["changed"] is True and result["migration"]["name"] == "kubevirt-migrate-vm-abcde"


def test_a_cancelled_migration_that_never_ends_times_out_naming_it(run, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    client.put(_cancelled("kubevirt-migrate-vm-cancel"))
    result = run({"state": "migrated", "wait_timeout": 1})
    assert result["failed"] and client.sub_calls == []
    assert result["msg"].startswith("Timed out after 1s waiting for the cancelled live migration "
                                    "kubevirt-migrate-vm-cancel of VirtualMachineInstance demo/web1 to end")


def test_another_refusal_relayed_as_500_is_not_called_an_overloaded_api_server(run, client):
    client.add_vm(vm_obj(), vmi_phase="Running")
    message = ('Internal error occurred: admission webhook "migration-create-validator.kubevirt.io" denied the '
               'request: Cannot migrate VMI, Reason: DisksNotLiveMigratable, Message: PVC data is not shared')
    client.sub_fail["migrate"] = ApiError(500, "PUT", "/x", {"kind": "Status", "reason": "InternalError",
                                                             "code": 500, "message": message})
    result = run({"state": "migrated"})
    assert result["failed"] and "Cannot migrate VMI, Reason: DisksNotLiveMigratable" in result["msg"]
    assert "overloaded" not in result["msg"]


# -- check mode: restart_required as the real change leaves it --------------------------------------
def test_check_mode_restart_required_is_what_the_action_leaves(run, client):
    client.add_vm(vm_obj(), vmi_phase="Running", restart_required=True)
    restart = run({"state": "restarted"}, check_mode=True)
    assert restart["changed"] and restart["restart_required"] is False
    assert restart["summary"]["restart_required"] is False
    pause = run({"state": "paused"}, check_mode=True)
    assert pause["changed"] and pause["restart_required"] is True


def test_check_mode_reads_restart_required_after_kubevirt_processed_the_change(run, client):
    # The VM's template was just changed (generation 2) and KubeVirt has not synced it yet
    # (desiredGeneration 1): a check-mode migrate must not answer restart_required: false.
    vm = client.add_vm(vm_obj(), vmi_phase="Running")
    stored = client.vm()
    stored["metadata"]["generation"] = 2
    stored["status"]["desiredGeneration"] = 1
    processed = dict(stored, status=dict(stored["status"], desiredGeneration=2, conditions=[
        {"type": "RestartRequired", "status": "True"}]))
    processed["metadata"] = dict(stored["metadata"], resourceVersion="999")
    client.watch_script = [[("ADDED", stored), ("BOOKMARK", {"metadata": {
        "resourceVersion": "998", "annotations": {"k8s.io/initial-events-end": "true"}}}), ("MODIFIED", processed)]]
    result = run({"state": "migrated"}, check_mode=True)
    assert vm is not None and result["changed"] is True
    assert result["restart_required"] is True and result["summary"]["restart_required"] is True
    assert "to process the template change" in result["progress"][0]["waited_for"]


def test_wait_for_ip_of_a_network_the_vm_lacks_fails_before_starting(run, client):
    client.add_vm(vm_obj(strategy="Halted"))
    result = run({"state": "started", "wait_for": ["ip:br7"]})
    assert result["failed"] and result["msg"] == (
        "wait_for 'ip:br7' names no network of VirtualMachine demo/web1 (its networks: default); use ip:default or "
        "plain ip (the first network).")
    assert client.sub_calls == [] and client.vm()["spec"]["runStrategy"] == "Halted"


def test_node_selector_values_are_the_yaml_text():
    node = {"metadata": {"labels": {"ssd": "true", "rack": "3"}}}
    assert vm_power_flow.node_matches(node, {"ssd": True, "rack": 3})
    assert not vm_power_flow.node_matches(node, {"ssd": "True"})
