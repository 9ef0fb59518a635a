"""The retry and conflict policy of client.py (docs/reliability.md), one test per rule.

Everything runs through the real Client and Wait with a fake transport (a urllib3 pool stand-in
that answers from a script), so what is tested is what goes over the wire: how many requests,
which URLs, which bodies, which sleeps.
"""
import json
import ssl

import pytest
import urllib3
from kvfakes import FakePool, FakeResponse

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import client as kclient
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import retry as kretry
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import connection as kconn
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import writes as k8s_writes
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import operations
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError, ConnectError, KubevirtError


# -- the fake transport (kvfakes.FakePool) -------------------------------------------------------------
def client_for(script):
    conn = kconn.Connection()
    conn.host = "https://api:6443"
    conn.token = "tok"
    transport = FakePool(script)
    sleeps = []
    return kclient.Client(conn, pool=transport, sleep=sleeps.append), transport, sleeps


def status(code, reason="", message="", **extra):
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
            "message": message}
    body.update(extra)
    return FakeResponse(code, body)


RESET = urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
READ_TIMEOUT = urllib3.exceptions.ReadTimeoutError(None, "/x", "Read timed out.")
NOT_CONNECTED = urllib3.exceptions.ConnectTimeoutError(None, "Connection to api timed out. (connect timeout=10)")
REFUSED = urllib3.exceptions.NewConnectionError(
    None, "Failed to establish a new connection: [Errno 111] Connection refused")
UNKNOWN_OUTCOME = [lambda: status(500, "InternalError"), lambda: status(502), lambda: status(503, "ServiceUnavailable"),
                   lambda: status(504), lambda: RESET, lambda: READ_TIMEOUT]
UNKNOWN_IDS = ["500", "502", "503", "504", "reset", "read-timeout"]
VM = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
      "metadata": {"name": "vm1", "namespace": "ns"}, "spec": {"runStrategy": "Always"}}


# -- which requests are retried, on what -------------------------------------------------------------
@pytest.mark.parametrize("fault", UNKNOWN_OUTCOME + [lambda: status(429, "TooManyRequests"), lambda: NOT_CONNECTED],
                         ids=UNKNOWN_IDS + ["429", "connect-timeout"])
@pytest.mark.parametrize("call", [
    lambda c: c.get(res.VM, "vm1", "ns"),
    lambda c: c.list(res.VM, "ns"),
    lambda c: c.apply(res.VM, VM),
    lambda c: c.merge_patch(res.VM, "vm1", "ns", {"metadata": {"labels": {"a": "1"}}}),
    lambda c: c.replace(res.VM, dict(VM, metadata=dict(VM["metadata"], resourceVersion="7"))),
    lambda c: c.delete(res.VM, "vm1", "ns"),
], ids=["get", "list", "server-side-apply", "merge-patch", "put-with-resourceVersion", "delete"])
def test_idempotent_requests_are_sent_again(call, fault):
    client, transport, sleeps = client_for([fault(), FakeResponse(200, {"kind": "VirtualMachine", "items": []})])
    call(client)
    assert len(transport.sent) == 2 and len(sleeps) == 1
    assert transport.sent[0] == transport.sent[1], "the repeat is the same request"


@pytest.mark.parametrize("fault", UNKNOWN_OUTCOME, ids=UNKNOWN_IDS)
@pytest.mark.parametrize("call", [
    lambda c: c.create(res.VM, VM),
    lambda c: c.json_patch(res.VM, "vm1", "ns", [{"op": "add", "path": "/metadata/labels/a", "value": "1"}]),
    lambda c: c.replace(res.VM, VM),
    lambda c: c.subresource("PUT", res.subresource_path(res.VM, "ns", "vm1", "restart")),
    lambda c: c.subresource("PUT", res.subresource_path(res.VMI, "ns", "vm1", "softreboot")),
], ids=["post", "json-patch", "put-without-resourceVersion", "action", "action-without-verify"])
def test_writes_that_could_repeat_an_effect_are_not_sent_again(call, fault):
    client, transport, dummy_sleeps = client_for([fault(), FakeResponse(200)])
    with pytest.raises((ApiError, ConnectError)):
        call(client)
    assert len(transport.sent) == 1


@pytest.mark.parametrize("fault", [lambda: status(429, "TooManyRequests"), lambda: NOT_CONNECTED],
                         ids=["429", "connect-timeout"])
@pytest.mark.parametrize("call", [
    lambda c: c.create(res.VM, VM),
    lambda c: c.subresource("PUT", res.subresource_path(res.VMI, "ns", "vm1", "softreboot")),
], ids=["post", "action"])
def test_requests_the_server_never_acted_on_are_sent_again_whatever_they_are(call, fault):
    client, transport, dummy_sleeps = client_for([fault(), FakeResponse(201)])
    call(client)
    assert len(transport.sent) == 2


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 410, 422])
def test_client_errors_other_than_429_are_final(code):
    client, transport, sleeps = client_for([status(code, message="no"), FakeResponse(200)])
    with pytest.raises(ApiError) as exc:
        client.get_or_none(res.VM, "vm1", "ns") if code != 404 else client.get(res.VM, "vm1", "ns")
    assert exc.value.status == code and len(transport.sent) == 1 and not sleeps


def test_tls_and_name_resolution_failures_are_final():
    tls = urllib3.exceptions.SSLError(ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed"))
    dns = urllib3.exceptions.NameResolutionError("api", None, OSError("Name or service not known"))
    for err in (tls, dns):
        client, transport, dummy_sleeps = client_for([err, FakeResponse(200)])
        with pytest.raises(ConnectError):
            client.get(res.VM, "vm1", "ns")
        assert len(transport.sent) == 1


def test_a_garbled_tls_record_is_sent_again_on_a_new_connection():
    """The server's decode_error alert (seen once in CI, a read of a lab under load) ends that connection, not
    the TLS setup: a read is sent again; a certificate that fails verification stays final (above)."""
    garbled = urllib3.exceptions.SSLError(ssl.SSLError(1, "[SSL: TLSV1_ALERT_DECODE_ERROR] tlsv1 alert decode error"))
    client, transport, sleeps = client_for([garbled, FakeResponse(200)])
    client.get(res.VM, "vm1", "ns")
    assert len(transport.sent) == 2 and len(sleeps) == 1


# -- how often, with what backoff ----------------------------------------------------------------------
def test_at_most_retry_attempts_then_the_error_counts_them():
    client, transport, sleeps = client_for([status(503, "ServiceUnavailable", "busy")] * 10)
    with pytest.raises(ApiError) as exc:
        client.get(res.VM, "vm1", "ns")
    assert len(transport.sent) == kretry.RETRY_ATTEMPTS == exc.value.attempts
    assert len(sleeps) == kretry.RETRY_ATTEMPTS - 1
    assert "%d attempts made" % kretry.RETRY_ATTEMPTS in k8s_writes.explain(exc.value, "read", "VirtualMachine ns/vm1")


def test_backoff_is_exponential_capped_and_jittered():
    client, dummy_transport, sleeps = client_for([RESET] * (kretry.RETRY_ATTEMPTS - 1) + [FakeResponse(200)])
    client.get(res.VM, "vm1", "ns")
    for attempt, slept in enumerate(sleeps, start=1):
        nominal = min(kretry.RETRY_CAP, kretry.RETRY_BASE * 2 ** (attempt - 1))
        assert 0.8 * nominal <= slept <= 1.2 * nominal
    assert sum(sleeps) <= 1.2 * sum(min(kretry.RETRY_CAP, kretry.RETRY_BASE * 2 ** n)
                                    for n in range(kretry.RETRY_ATTEMPTS - 1))


def test_retry_after_is_honoured_up_to_its_cap():
    client, dummy_transport, sleeps = client_for([
        FakeResponse(429, {"reason": "TooManyRequests"}, {"Retry-After": "2"}),
        FakeResponse(503, {"reason": "ServiceUnavailable"}, {"Retry-After": "600"}),
        FakeResponse(200)])
    client.get(res.VM, "vm1", "ns")
    assert sleeps == [2.0, kretry.RETRY_AFTER_CAP]


def test_connection_refused_is_tried_only_a_few_times():
    client, transport, dummy_sleeps = client_for([REFUSED] * 10)
    with pytest.raises(ConnectError) as exc:
        client.get(res.VM, "vm1", "ns")
    assert len(transport.sent) == kretry.REFUSED_ATTEMPTS
    assert "connection refused (%d attempts)" % kretry.REFUSED_ATTEMPTS in str(exc.value)


# -- why writes can't duplicate --------------------------------------------------------------------------
def test_a_new_object_is_written_by_server_side_apply_under_its_own_name():
    """A lost answer to the write that created the VM: the repeat is the same apply, not a second create."""
    client, transport, dummy_sleeps = client_for([
        FakeResponse(404, {"reason": "NotFound", "details": {"kind": "virtualmachines"}}),  # the read
        RESET,                                                                        # apply 1: answer lost
        FakeResponse(200, dict(VM, metadata=dict(VM["metadata"], uid="u1", resourceVersion="5")))])
    outcome = k8s_writes.present(client, res.VM, json.loads(json.dumps(VM)))
    assert outcome.changed and outcome.method == "create"
    writes = [(m, u, kw["body"]) for m, u, kw in transport.sent if m != "GET"]
    assert [m for m, _u, _b in writes] == ["PATCH", "PATCH"] and writes[0] == writes[1]
    assert writes[0][1].startswith("https://api:6443/apis/kubevirt.io/v1/namespaces/ns/virtualmachines/vm1?")
    assert "fieldManager=virtops.kubevirt" in writes[0][1] and "generateName" not in writes[0][2]


def test_a_delete_whose_answer_was_lost_counts_as_done():
    client, transport, dummy_sleeps = client_for([RESET, status(404, "NotFound", details={"kind": "virtualmachines"})])
    result = client.delete(res.VM, "vm1", "ns")
    assert result["status"] == "Success" and transport.methods() == ["DELETE", "DELETE"]


def test_absent_reports_changed_when_its_own_delete_answer_was_lost():
    client, dummy_transport, dummy_sleeps = client_for([
        status(503), status(404, "NotFound", details={"kind": "virtualmachines"})])
    changed, dummy_last = k8s_writes.absent(client, res.VM, "vm1", "ns", current=VM, have_current=True)
    assert changed is True


def test_a_delete_of_something_already_gone_is_not_a_change():
    client, dummy_transport, dummy_sleeps = client_for([status(404, "NotFound", details={"kind": "virtualmachines"})])
    assert client.delete(res.VM, "vm1", "ns") is None


# -- actions (virt-api subresources): sent again only after verifying ---------------------------------
def _action(client, verify):
    return client.subresource("PUT", res.subresource_path(res.VM, "ns", "vm1", "start"), body={}, verify=verify)


@pytest.mark.parametrize("fault", UNKNOWN_OUTCOME, ids=UNKNOWN_IDS)
def test_an_action_with_unknown_outcome_is_verified_then_sent_again(fault):
    checks = []
    client, transport, dummy_sleeps = client_for([fault(), FakeResponse(202)])
    assert _action(client, lambda: checks.append(1) or False) == {}
    assert len(transport.sent) == 2 and checks == [1]


@pytest.mark.parametrize("fault", UNKNOWN_OUTCOME, ids=UNKNOWN_IDS)
def test_an_action_that_took_effect_is_not_sent_again(fault):
    client, transport, dummy_sleeps = client_for([fault()])
    assert _action(client, lambda: True) == {}
    assert len(transport.sent) == 1


def test_an_error_answer_to_the_repeat_is_checked_against_the_first_attempt():
    """Reset after the start reached virt-api; the repeat gets 409 'already running': that is our start."""
    seen = iter([False, True])
    client, transport, dummy_sleeps = client_for([RESET, status(409, "Conflict", "VM is already running")])
    assert _action(client, lambda: next(seen)) == {}
    assert len(transport.sent) == 2


def test_a_conflict_on_the_first_attempt_is_not_explained_away():
    client, dummy_transport, dummy_sleeps = client_for([status(409, "Conflict", "VM is already running")])
    with pytest.raises(ApiError) as exc:
        _action(client, lambda: pytest.fail("verify must not be asked"))
    assert exc.value.status == 409


def test_an_action_that_never_takes_effect_fails_after_the_attempts():
    client, transport, dummy_sleeps = client_for([status(500, "InternalError", "boom")] * kretry.RETRY_ATTEMPTS)
    with pytest.raises(ApiError) as exc:
        _action(client, lambda: False)
    assert len(transport.sent) == kretry.RETRY_ATTEMPTS and exc.value.status == 500


IN_FLIGHT = ('Internal error occurred: admission webhook "migration-create-validator.kubevirt.io" denied the request: '
             'in-flight migration detected. Active migration job (u1) is currently already in progress for VMI vm1.')


def test_a_webhook_denial_relayed_as_500_is_a_refusal_not_an_overloaded_server():
    # virt-api answers 500 InternalError when the webhook refuses the migration it creates: sending
    # it again gets the same answer, and the message must not blame the API server.
    client, transport, sleeps = client_for([status(500, "InternalError", IN_FLIGHT)] * kretry.RETRY_ATTEMPTS)
    checks = []
    with pytest.raises(ApiError) as exc:
        _action(client, lambda: checks.append(1) or False)
    assert len(transport.sent) == 1 and sleeps == []
    assert checks == [1]   # asked once: the refusal may be about our own earlier attempt
    assert "in-flight migration detected" in str(exc.value) and "overloaded" not in str(exc.value)
    assert kretry.decide(1, kretry.RETRY_ATTEMPTS, True, True, None, 500, refused=True) is kretry.Decision.GIVE_UP


def test_an_action_429_is_sent_again_without_asking():
    client, transport, dummy_sleeps = client_for([status(429, "TooManyRequests"), FakeResponse(202)])
    _action(client, lambda: pytest.fail("a 429 was never acted on"))
    assert len(transport.sent) == 2


def _get(obj):
    return FakeResponse(200, obj) if obj is not None else status(404, "NotFound", details={"kind": "x"})


def _vm(strategy="Always", requests=None, volumes=(), volume_requests=None):
    vm = {"metadata": {"name": "vm1", "namespace": "ns", "uid": "vm-uid"},
          "spec": {"runStrategy": strategy, "template": {"spec": {"volumes": [{"name": v} for v in volumes]}}},
          "status": {}}
    if requests:
        vm["status"]["stateChangeRequests"] = [{"action": a} for a in requests]
    if volume_requests:
        vm["status"]["volumeRequests"] = volume_requests
    return vm


def _vmi(uid="old", phase="Running", deleting=False, paused=False):
    vmi = {"metadata": {"name": "vm1", "namespace": "ns", "uid": uid}, "status": {"phase": phase, "conditions": []}}
    if deleting:
        vmi["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    if paused:
        vmi["status"]["conditions"].append({"type": "Paused", "status": "True"})
    return vmi


@pytest.mark.parametrize("verb, before_vm, before_vmi, reads, expected", [
    ("start", _vm("Halted"), None, [_vm("Always")], True),
    ("start", _vm("Halted"), None, [_vm("Halted"), None], False),
    ("start", _vm("Manual"), None, [_vm("Manual", ["Start"])], True),
    ("start", _vm("Manual"), _vmi(phase="Succeeded"), [_vm("Manual"), _vmi("new")], True),
    ("start", _vm("Manual"), _vmi(phase="Succeeded"), [_vm("Manual"), _vmi(phase="Succeeded")], False),
    ("stop", _vm("Always"), _vmi(), [_vm("Halted")], True),
    ("stop", _vm("Always"), _vmi(), [_vm("Always"), _vmi()], False),
    ("stop", _vm("Always"), None, [_vm("Always")], False),
    ("stop", _vm("Manual"), _vmi(), [_vm("Manual", ["Stop"])], True),
    ("stop", _vm("Manual"), _vmi(), [_vm("Manual"), _vmi(deleting=True)], True),
    ("restart", _vm("Always"), _vmi(), [_vm("Always", ["Stop", "Start"])], True),
    ("restart", _vm("Always"), _vmi(), [_vm("Always"), _vmi("new")], True),
    ("restart", _vm("Always"), _vmi(), [_vm("Always"), _vmi()], False),
    ("pause", _vm(), _vmi(), [_vmi(paused=True)], True),
    ("pause", _vm(), _vmi(), [_vmi()], False),
    ("unpause", _vm(), _vmi(paused=True), [_vmi()], True),
    ("unpause", _vm(), _vmi(paused=True), [_vmi(paused=True)], False),
])
def test_took_effect_reads_what_each_action_changes(verb, before_vm, before_vmi, reads, expected):
    client, transport, dummy_sleeps = client_for([_get(obj) for obj in reads])
    check = operations.took_effect(client, verb, "ns", "vm1", before_vm, before_vmi)
    assert check() is expected
    assert not transport.script, "every scripted read was made"


def test_took_effect_for_volumes_and_migrations():
    client, dummy_transport, dummy_sleeps = client_for([
        _get(_vm(volumes=["data"])),
        _get(_vm(volume_requests=[{"addVolumeOptions": {"name": "data"}}])),
        _get(_vm()),
        _get(_vm(volumes=["data"])),
        _get(_vm()),
        FakeResponse(200, {"items": [{"metadata": {"name": "old"}, "spec": {"vmiName": "vm1"}}]}),
        FakeResponse(200, {"items": [{"metadata": {"name": "old"}, "spec": {"vmiName": "vm1"}},
                                     {"metadata": {"name": "new"}, "spec": {"vmiName": "vm1"}}]}),
    ])
    add = operations.took_effect(client, "addvolume", "ns", "vm1", volume="data")
    remove = operations.took_effect(client, "removevolume", "ns", "vm1", volume="data")
    migrate = operations.took_effect(client, "migrate", "ns", "vm1", before={"old"})
    assert [add(), add(), add()] == [True, True, False]
    assert [remove(), remove()] == [False, True]
    assert [migrate(), migrate()] == [False, True]
    assert operations.took_effect(client, "softreboot", "ns", "vm1") is None


def test_vm_power_start_survives_a_lost_answer():
    """operations.call with the verify of a start: reset after virt-api patched the VM -> done, one start sent."""
    client, transport, dummy_sleeps = client_for([RESET, _get(_vm("Always"))])
    operations.call(client, res.VM, "ns", "vm1", "start", {},
                    verify=operations.took_effect(client, "start", "ns", "vm1", _vm("Halted"), None))
    assert transport.methods() == ["PUT", "GET"]


def test_an_action_that_fails_for_good_is_one_sentence():
    client, dummy_transport, dummy_sleeps = client_for([status(503, "ServiceUnavailable", "virt-api is down")]
                                                       * kretry.RETRY_ATTEMPTS)
    with pytest.raises(KubevirtError) as exc:
        operations.call(client, res.VM, "ns", "vm1", "start", {}, verify=lambda: False)
    assert str(exc.value).startswith("Could not start VirtualMachine ns/vm1: virt-api is down")


# -- 409 on a resourceVersion-guarded update -----------------------------------------------------------
def test_conflict_rereads_and_reapplies_the_change_to_the_fresh_object():
    mine = {"metadata": {"name": "vm1", "namespace": "ns", "resourceVersion": "1", "labels": {}},
            "spec": {"template": {"spec": {"volumes": []}}}}
    theirs = json.loads(json.dumps(mine))
    theirs["metadata"].update(resourceVersion="2", labels={"other": "x"})
    client, transport, dummy_sleeps = client_for([
        FakeResponse(200, mine), status(409, "Conflict", "the object has been modified"),
        FakeResponse(200, theirs), FakeResponse(200, {"done": True})])

    def add_volume(vm):
        vm["spec"]["template"]["spec"]["volumes"].append({"name": "data"})

    after, written = client.update_with_retry(res.VM, "vm1", "ns", add_volume)
    assert written and after == {"done": True}
    assert transport.methods() == ["GET", "PUT", "GET", "PUT"]
    final = json.loads(transport.bodies()[3])
    assert final["metadata"]["resourceVersion"] == "2", "the repeat is guarded by the fresh resourceVersion"
    assert final["metadata"]["labels"] == {"other": "x"}, "the other writer's change is kept"
    assert final["spec"]["template"]["spec"]["volumes"] == [{"name": "data"}]


def test_conflicts_give_up_after_the_attempts():
    obj = {"metadata": {"name": "vm1", "namespace": "ns", "resourceVersion": "1"}, "spec": {}}
    client, transport, dummy_sleeps = client_for([FakeResponse(200, obj), status(409, "Conflict")] * 3)
    with pytest.raises(ApiError) as exc:
        client.update_with_retry(res.VM, "vm1", "ns", lambda vm: vm["spec"].update(x=1), attempts=3)
    assert exc.value.status == 409 and transport.methods() == ["GET", "PUT"] * 3


def test_a_put_whose_answer_was_lost_meets_its_own_write_and_stops():
    """PUT reaches the server, the answer is lost; the repeat gets 409; the re-read shows the change made."""
    before = {"metadata": {"name": "vm1", "namespace": "ns", "resourceVersion": "1"}, "spec": {}}
    after = {"metadata": {"name": "vm1", "namespace": "ns", "resourceVersion": "2"}, "spec": {"x": 1}}
    client, transport, dummy_sleeps = client_for([
        FakeResponse(200, before), RESET, status(409, "Conflict"), FakeResponse(200, after)])

    def mutate(vm):
        if vm["spec"].get("x") == 1:
            return False
        vm["spec"]["x"] = 1
        return True

    result, written = client.update_with_retry(res.VM, "vm1", "ns", mutate)
    assert result["spec"] == {"x": 1} and transport.methods() == ["GET", "PUT", "PUT", "GET"]


# -- watches: resume from the last resourceVersion, relist on 410 ----------------------------------------
def _line(etype, obj):
    return (json.dumps({"type": etype, "object": obj}) + "\n").encode()


def _vmi_event(rv, phase="Scheduling", ready=False):
    return {"kind": "VirtualMachineInstance", "metadata": {"name": "vm1", "namespace": "ns", "resourceVersion": rv},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


END = {"kind": "VirtualMachineInstance",
       "metadata": {"resourceVersion": "20", "annotations": {"k8s.io/initial-events-end": "true"}}}


def _query(url):
    from urllib.parse import parse_qs, urlsplit
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _wait(client):
    check = waiter.vmi_check(["ready"], ["vm1"])
    return waiter.Wait(client, res.VMI, "ns", check, "VirtualMachineInstance ns/vm1 to be ready", 30, names=["vm1"],
                       resource_version="10")


@pytest.mark.parametrize("cut", [
    urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead(0 bytes read)"),
    urllib3.exceptions.ReadTimeoutError(None, "/x", "Read timed out."),
    urllib3.exceptions.SSLError(ssl.SSLEOFError(8, "EOF occurred in violation of protocol")),
    ConnectionResetError(104, "Connection reset by peer"),
], ids=["incomplete-chunk", "read-timeout", "tls-eof", "reset"])
def test_a_cut_watch_resumes_from_the_last_resource_version(cut):
    client, transport, dummy_sleeps = client_for([
        FakeResponse(chunks=[_line("ADDED", _vmi_event("15")), _line("BOOKMARK", END),
                             _line("MODIFIED", _vmi_event("23")), cut]),
        FakeResponse(chunks=[_line("MODIFIED", _vmi_event("31", "Running", ready=True))]),
    ])
    progress = _wait(client).run()
    assert progress["result"] == "ok" and progress["watches"] == 2
    first, second = _query(transport.sent[0][1]), _query(transport.sent[1][1])
    assert first["sendInitialEvents"] == "true" and first["resourceVersion"] == "10"
    assert second["resourceVersion"] == "23", "resumed from the last event, not from the start"
    assert "sendInitialEvents" not in second and second["watch"] == "true"


def test_a_cut_during_the_initial_events_starts_the_initial_list_again():
    client, transport, dummy_sleeps = client_for([
        FakeResponse(chunks=[_line("ADDED", _vmi_event("15")), RESET]),
        FakeResponse(chunks=[_line("ADDED", _vmi_event("31", "Running", ready=True)), _line("BOOKMARK", END)]),
    ])
    assert _wait(client).run()["result"] == "ok"
    assert _query(transport.sent[1][1])["sendInitialEvents"] == "true"


@pytest.mark.parametrize("gone", [
    lambda: status(410, "Expired", "too old resource version: 23 (40)"),
    lambda: FakeResponse(chunks=[_line("ERROR", {"kind": "Status", "code": 410, "reason": "Expired",
                                                 "message": "too old resource version: 23 (40)"})]),
], ids=["http-410", "error-event-410"])
def test_410_on_resume_relists(gone):
    client, transport, dummy_sleeps = client_for([
        FakeResponse(chunks=[_line("BOOKMARK", END), _line("MODIFIED", _vmi_event("23")), RESET]),
        gone(),
        FakeResponse(chunks=[_line("ADDED", _vmi_event("41", "Running", ready=True)), _line("BOOKMARK", END)]),
    ])
    progress = _wait(client).run()
    assert progress["result"] == "ok" and progress["watches"] == 3
    resume, relist = _query(transport.sent[1][1]), _query(transport.sent[2][1])
    assert resume["resourceVersion"] == "23" and "sendInitialEvents" not in resume
    assert relist["sendInitialEvents"] == "true" and relist.get("resourceVersion", "") == ""


def test_410_without_watchlist_relists_with_a_list():
    client, transport, dummy_sleeps = client_for([
        FakeResponse(200, {"metadata": {"resourceVersion": "12"}, "items": [_vmi_event("11")]}),
        FakeResponse(chunks=[_line("MODIFIED", _vmi_event("23")), RESET]),
        status(410, "Expired", "too old resource version"),
        FakeResponse(200, {"metadata": {"resourceVersion": "44"}, "items": [_vmi_event("41")]}),
        FakeResponse(chunks=[_line("MODIFIED", _vmi_event("45", "Running", ready=True))]),
    ])
    client.watchlist_supported = False
    assert _wait(client).run()["result"] == "ok"
    urls = [_query(u) for _m, u, _kw in transport.sent]
    assert [u.get("watch") for u in urls] == [None, "true", "true", None, "true"]
    assert urls[1]["resourceVersion"] == "12" and urls[2]["resourceVersion"] == "23"
    assert urls[4]["resourceVersion"] == "44"


def test_a_watch_that_cannot_be_opened_is_retried_like_any_get():
    client, transport, dummy_sleeps = client_for([
        status(503), RESET,
        FakeResponse(chunks=[_line("ADDED", _vmi_event("31", "Running", ready=True)), _line("BOOKMARK", END)]),
    ])
    assert _wait(client).run()["result"] == "ok" and len(transport.sent) == 3


def test_watches_that_end_at_once_are_reopened_with_backoff_not_in_a_spin():
    client, transport, dummy_sleeps = client_for([
        FakeResponse(chunks=[_line("BOOKMARK", END)]),
        FakeResponse(chunks=[]), FakeResponse(chunks=[]), FakeResponse(chunks=[]),
        FakeResponse(chunks=[_line("MODIFIED", _vmi_event("23"))]),
        FakeResponse(chunks=[]),
        FakeResponse(chunks=[_line("MODIFIED", _vmi_event("31", "Running", ready=True))]),
    ])
    slept = []
    wait = waiter.Wait(client, res.VMI, "ns", waiter.vmi_check(["ready"], ["vm1"]), "VMI ns/vm1 to be ready", 30,
                       names=["vm1"], resource_version="10", sleep=slept.append)
    assert wait.run()["watches"] == 7
    assert slept[:3] == [0.1, 0.2, 0.4] and slept[3:] == [0.1], "the backoff starts again after an event"
    assert all(_query(u)["resourceVersion"] in ("10", "20", "23") for _m, u, _kw in transport.sent)
