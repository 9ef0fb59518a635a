"""guest_info: agent checks, normalising the agent's answers, the fewest calls, virt-api's plain-text 500,
and the module (success, agent not connected, VM stopped, wait)."""
import copy

import pytest

from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import guest
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError, KubevirtError
from ansible_collections.virtops.kubevirt.plugins.modules import guest_info as guest_info_module

from kvfakes import FakeClient, running_vmi
from modhelp import run_module

AGENT_INFO = {
    "guestAgentVersion": "9.0.0",
    "hostname": "web1",
    "os": {"id": "fedora", "name": "Fedora Linux", "prettyName": "Fedora Linux 41", "version": "41",
           "versionId": "41", "kernelRelease": "6.11.4", "kernelVersion": "#1 SMP", "machine": "x86_64"},
    "timezone": "UTC, 0",
    "userList": [{"userName": "fedora", "domain": "", "loginTime": 1732520051.5}],
    "fsInfo": {"disks": [{"diskName": "vda1", "mountPoint": "/", "fileSystemType": "xfs", "usedBytes": 2 * 2 ** 30,
                          "totalBytes": 10 * 2 ** 30, "disk": [{"busType": "virtio", "serial": ""}]}]},
    "fsFreezeStatus": "thawed",
}


class AgentClient(FakeClient):
    """FakeClient plus virt-api's guest agent subresources."""

    def __init__(self, answers=None, **kw):
        super().__init__(controller=False, **kw)
        self.answers = answers or {}
        self.subcalls = []

    def subresource(self, method, path, body=None, query=None):
        self.requests += 1
        verb = path.rsplit("/", 1)[1]
        self.subcalls.append(verb)
        answer = self.answers.get(verb)
        if isinstance(answer, Exception):
            raise answer
        return copy.deepcopy(answer)


def vm_obj(name, strategy="Always"):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name, "namespace": "demo"},
            "spec": {"runStrategy": strategy, "template": {"spec": {}}},
            "status": {"printableStatus": "Stopped" if strategy == "Halted" else "Running"}}


def no_agent_vmi(name="web1", cond=None):
    vmi = running_vmi(name, "demo")
    vmi["status"]["conditions"] = [c for c in vmi["status"]["conditions"] if c["type"] != "AgentConnected"]
    if cond:
        vmi["status"]["conditions"].append(cond)
    return vmi


# -- pure ----------------------------------------------------------------------------------------
def test_agent_message():
    assert guest.agent_message(running_vmi("web1", "demo")) is None
    text = guest.agent_message(no_agent_vmi())
    assert text.startswith("the guest agent of VMI demo/web1 is not connected: the VMI has no AgentConnected")
    text = guest.agent_message(no_agent_vmi(cond={"type": "AgentConnected", "status": "False",
                                                  "reason": "AgentVersionNotSupported", "message": "too old"}))
    assert "AgentConnected is False (AgentVersionNotSupported: too old)" in text


def test_normalised_parts():
    part = guest.os_part(AGENT_INFO)
    assert part["hostname"] == "web1" and part["os"]["pretty_name"] == "Fedora Linux 41"
    assert part["agent_version"] == "9.0.0" and part["timezone"] == "UTC, 0"
    users = guest.users_part(AGENT_INFO["userList"])
    assert users == [{"name": "fedora", "domain": None, "login_time": 1732520051.5}]
    fs = guest.filesystems_part(AGENT_INFO["fsInfo"]["disks"])
    assert fs[0]["mount_point"] == "/" and fs[0]["used_percent"] == 20.0 and fs[0]["type"] == "xfs"
    assert fs[0]["devices"] == [{"bus": "virtio", "serial": None}]
    assert guest.filesystems_part([{"diskName": "x", "totalBytes": 0, "usedBytes": 0}])[0]["used_percent"] is None


def test_one_call_when_guestosinfo_has_everything():
    client = AgentClient({"guestosinfo": AGENT_INFO})
    data, raw = guest.gather(client, "demo", "web1", ["os", "users", "filesystems"])
    assert client.subcalls == ["guestosinfo"]
    assert data["users"][0]["name"] == "fedora" and data["filesystems"][0]["disk_name"] == "vda1"
    assert list(raw) == ["guestosinfo"]


def test_fallback_to_userlist_and_filesystemlist():
    info = {k: v for k, v in AGENT_INFO.items() if k not in ("userList", "fsInfo")}
    client = AgentClient({"guestosinfo": info, "userlist": {"items": AGENT_INFO["userList"]},
                          "filesystemlist": {"items": AGENT_INFO["fsInfo"]["disks"]}})
    data, raw = guest.gather(client, "demo", "web1", ["os", "users", "filesystems"])
    assert client.subcalls == ["guestosinfo", "userlist", "filesystemlist"]
    assert data["users"][0]["name"] == "fedora" and data["filesystems"][0]["total_bytes"] == 10 * 2 ** 30
    client = AgentClient({"filesystemlist": {"items": []}})
    data, raw = guest.gather(client, "demo", "web1", ["filesystems"])
    assert client.subcalls == ["filesystemlist"] and data == {"filesystems": []}


def test_plain_text_500_becomes_one_sentence():
    client = AgentClient({"guestosinfo": ApiError(500, "GET", "/x", "VMI does not have guest agent connected\n")})
    with pytest.raises(KubevirtError) as err:
        guest.gather(client, "demo", "web1", ["os"])
    assert str(err.value) == ("The guest agent of VMI demo/web1 could not answer guestosinfo: VMI does not have "
                              "guest agent connected.")
    client = AgentClient({"userlist": ApiError(403, "GET", "/x", {"reason": "Forbidden", "message": "forbidden"})})
    with pytest.raises(KubevirtError, match="Could not read userlist of VMI demo/web1: forbidden; grant"):
        guest.gather(client, "demo", "web1", ["users"])


# -- the module ---------------------------------------------------------------------------------
@pytest.fixture
def client():
    c = AgentClient({"guestosinfo": AGENT_INFO})
    c.put(vm_obj("web1"))
    c.put(running_vmi("web1", "demo"))
    c.put(vm_obj("off", "Halted"))
    c.put(vm_obj("noagent"))
    c.put(no_agent_vmi("noagent"))
    return c


def test_module_success(client, monkeypatch, capsys):
    out = run_module(guest_info_module, {"name": "web1", "namespace": "demo"}, client, monkeypatch, capsys)
    assert out["changed"] is False
    assert out["guest"]["os"]["id"] == "fedora" and out["guest"]["hostname"] == "web1"
    assert out["guest"]["filesystems"][0]["mount_point"] == "/"
    assert out["vmi"] == {"name": "web1", "namespace": "demo", "node": "node01", "phase": "Running"}
    assert out["api_requests"] == 2  # the VMI, then guestosinfo


def test_module_gather_only_users(client, monkeypatch, capsys):
    client.answers["userlist"] = {"items": AGENT_INFO["userList"]}
    out = run_module(guest_info_module, {"name": "web1", "namespace": "demo", "gather": ["users"]}, client,
                     monkeypatch, capsys)
    assert set(out["guest"]) == {"users"} and client.subcalls == ["userlist"]


def test_module_agent_not_connected(client, monkeypatch, capsys):
    out = run_module(guest_info_module, {"name": "noagent", "namespace": "demo"}, client, monkeypatch, capsys)
    assert out["failed"]
    assert out["msg"].startswith("The guest agent of VMI demo/noagent is not connected: ")
    assert client.subcalls == []


def test_module_stopped_vm(client, monkeypatch, capsys):
    out = run_module(guest_info_module, {"name": "off", "namespace": "demo"}, client, monkeypatch, capsys)
    assert out["msg"] == "VM demo/off is not running; start it with virtops.kubevirt.vm_power."
    out = run_module(guest_info_module, {"name": "off", "namespace": "demo", "wait": True}, client, monkeypatch,
                     capsys)
    assert out["msg"] == "VM demo/off is not running; start it with virtops.kubevirt.vm_power."


def test_module_wait_for_agent(client, monkeypatch, capsys):
    connected = running_vmi("noagent", "demo")
    client.watch_script = [[("ADDED", no_agent_vmi("noagent")),
                            ("BOOKMARK", {"metadata": {"resourceVersion": "5", "annotations": {
                                "k8s.io/initial-events-end": "true"}}}),
                            ("MODIFIED", connected)]]

    real_get = client.get_or_none
    calls = []

    def get_or_none(resource, name, namespace=None):
        calls.append(resource.kind)
        if resource.kind == "VirtualMachineInstance" and len(calls) > 1:
            return copy.deepcopy(connected)
        return real_get(resource, name, namespace)

    monkeypatch.setattr(client, "get_or_none", get_or_none)
    out = run_module(guest_info_module, {"name": "noagent", "namespace": "demo", "wait": True, "wait_timeout": 5},
                     client, monkeypatch, capsys)
    assert not out.get("failed"), out
    assert out["progress"][0]["result"] == "ok"
    assert "guest agent connected" in out["progress"][0]["waited_for"]


def test_module_wait_when_already_connected(client, monkeypatch, capsys):
    out = run_module(guest_info_module, {"name": "web1", "namespace": "demo", "wait": True}, client, monkeypatch,
                     capsys)
    assert out["progress"] == [{"waited_for": "VMI demo/web1 to run with its guest agent connected", "seconds": 0,
                                "result": "ok", "watches": 0, "events": 0}]
    assert not [c for c in client.calls if c[0] == "WATCH"]


def test_module_missing_and_bad_input(client, monkeypatch, capsys):
    out = run_module(guest_info_module, {"name": "nope", "namespace": "demo", "wait": True}, client, monkeypatch,
                     capsys)
    assert out["msg"] == ("Neither a VirtualMachine nor a VirtualMachineInstance demo/nope exists; check name and "
                          "namespace.")
    out = run_module(guest_info_module, {"name": "web1", "namespace": "demo", "gather": ["disks"]}, client,
                     monkeypatch, capsys)
    assert out["failed"] and "gather" in out["msg"]
    out = run_module(guest_info_module, {"name": "web1", "namespace": "Demo!"}, client, monkeypatch, capsys)
    assert out["failed"] and "namespace 'Demo!' is invalid" in out["msg"]
