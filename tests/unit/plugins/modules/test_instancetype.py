"""The instancetype module against the fake API: spec from options, schema check, idempotence, check mode,
diff, and the in-use warning on delete."""
import json

import pytest
from kvfakes import FakeClient
from modhelp import run_module

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows import instancetype as flow
from ansible_collections.virtops.kubevirt.plugins.modules import instancetype as it_module

IT = {"name": "web-medium", "namespace": "demo", "kind": "VirtualMachineInstancetype",
      "cpu": {"guest": 2, "max_sockets": 4}, "memory": {"guest": "4Gi", "max_guest": "16Gi"}}


@pytest.fixture
def client():
    return FakeClient()


@pytest.fixture
def run(client, monkeypatch, capsys):
    def _run(args, **kw):
        return run_module(it_module, args, client, monkeypatch, capsys, **kw)
    return _run


def warnings_text(result):
    return " ".join(w if isinstance(w, str) else json.dumps(w) for w in result.get("warnings") or [])


def stored(client, kind="VirtualMachineInstancetype", ns="demo", name="web-medium"):
    return client.store.get((kind, ns, name))


def test_create_then_unchanged_check_mode_and_diff(run, client):
    check = run(dict(IT), check_mode=True)
    assert check["changed"] is True and stored(client) is None
    first = run(dict(IT))
    assert first["changed"] is True and first["method"] == "create"
    assert stored(client)["spec"] == {"cpu": {"guest": 2, "maxSockets": 4},
                                      "memory": {"guest": "4Gi", "maxGuest": "16Gi"}}
    assert run(dict(IT))["changed"] is False
    bigger = run(dict(IT, memory={"guest": "8Gi"}), diff=True)
    assert bigger["changed"] is True
    assert bigger["diff"]["before"]["spec"]["memory"]["guest"] == "4Gi"
    assert bigger["diff"]["after"]["spec"]["memory"]["guest"] == "8Gi"


def test_preference_from_spec(run, client):
    args = {"name": "virtio", "kind": "VirtualMachineClusterPreference",
            "spec": {"cpu": {"preferredCPUTopology": "preferSockets"}, "devices": {"preferredDiskBus": "virtio"}}}
    assert run(dict(args))["changed"] is True
    assert stored(client, "VirtualMachineClusterPreference", None, "virtio")["spec"]["devices"] == \
        {"preferredDiskBus": "virtio"}
    assert run(dict(args))["changed"] is False


@pytest.mark.parametrize("params, message", [
    (dict(IT, spec={"cpu": {"sockets": 2}}), "spec.cpu.sockets is not a field of a VirtualMachineInstancetype"),
    (dict(IT, cpu={"guest": 2}, memory=None), "A VirtualMachineInstancetype needs memory.guest"),
    (dict(IT, cpu={"guest": 0}), "cpu.guest must be a positive integer, got 0."),
    (dict(IT, memory={"guest": "8Gi", "max_guest": "4Gi"}), "memory.guest 8Gi is more than memory.max_guest 4Gi."),
    ({"name": "p", "kind": "VirtualMachinePreference", "cpu": {"guest": 2}},
     "cpu applies to instance types; a VirtualMachinePreference takes its preferences"),
    ({"name": "p", "kind": "VirtualMachinePreference", "spec": {"devices": {"diskBus": "virtio"}}},
     "spec.devices.diskBus is not a field of a VirtualMachinePreference"),
])
def test_bad_input_is_refused_before_writing(params, message):
    with pytest.raises(InputError) as err:
        flow.build_object(dict({"spec": None, "labels": None, "annotations": None, "cpu": None, "memory": None},
                               **params), params["name"], "demo")
    assert message in str(err.value)


def test_delete_warns_about_vms_that_use_it(run, client):
    run(dict(IT))
    client.store[("VirtualMachine", "demo", "web1")] = {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "web1", "namespace": "demo"},
        "spec": {"instancetype": {"name": "web-medium", "kind": "VirtualMachineInstancetype"}}}
    gone = run(dict(IT, state="absent"), diff=True)
    assert gone["changed"] is True and stored(client) is None
    assert gone["used_by"] == ["demo/web1"]
    assert "still used by VM demo/web1" in warnings_text(gone)
    assert gone["diff"]["before"]["metadata"]["name"] == "web-medium" and not gone["diff"]["after"]
    again = run(dict(IT, state="absent"))
    assert again["changed"] is False and again["used_by"] == []


def test_present_on_an_instancetype_being_deleted_creates_it_again_once_gone(run, client):
    # A foreground deletion (its ControllerRevisions first) still holds it: applying onto it would be no change.
    run(dict(IT))
    client.being_deleted("VirtualMachineInstancetype", "web-medium", finalizer="foregroundDeletion")
    assert run(dict(IT), check_mode=True)["changed"] is True
    assert stored(client)["metadata"].get("deletionTimestamp")   # check mode waited for nothing
    again = run(dict(IT))
    assert again["changed"] is True and again["method"] == "create"
    assert "deletionTimestamp" not in stored(client)["metadata"]
