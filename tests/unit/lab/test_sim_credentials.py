"""The lab's access credential manager (lab/simulator/credentials.py) without a control plane or a
guest: which credentials the agent applies, how Secrets are read, what is sent to qemu-ga, what the
condition and events say, and the keys a cloud-init disk gets."""
import asyncio
import base64
import json
from types import SimpleNamespace

import pytest

from lab.simulator import credentials as cr
from lab.simulator.kube import ApiError


def b64(text):
    return base64.b64encode(text.encode()).decode()


def secret(**data):
    return {"data": {k: b64(v) for k, v in data.items()}}


def vmi(creds, uid="u1"):
    return {"metadata": {"name": "v1", "namespace": "ns", "uid": uid}, "spec": {"accessCredentials": creds}}


def ssh(name, users=None, method=None):
    return {"sshPublicKey": {"source": {"secret": {"secretName": name}},
                             "propagationMethod": method or {"qemuGuestAgent": {"users": users or ["u"]}}}}


def password(name):
    return {"userPassword": {"source": {"secret": {"secretName": name}}, "propagationMethod": {"qemuGuestAgent": {}}}}


class Sim:
    """sim.kube, sim.guests, sim.recorder and sim.vmi_ctl as credentials.py uses them."""

    def __init__(self, secrets, fail=None, offline=False):
        self.secrets, self.fail, self.offline = secrets, fail or {}, offline
        self.calls, self.events, self.enqueued = [], [], []
        self.kube = SimpleNamespace(get=self._get)
        self.guests = SimpleNamespace(agent_call=self._agent)
        self.recorder = SimpleNamespace(normal=lambda o, r, m, c: self.events.append(("Normal", r, m)),
                                        warning=lambda o, r, m, c: self.events.append(("Warning", r, m)))
        self.vmi_ctl = SimpleNamespace(enqueue=self.enqueued.append)

    async def _get(self, _res, name, _ns):
        if name not in self.secrets:
            raise ApiError(404, {"message": 'secrets "%s" not found' % name})
        return self.secrets[name]

    async def _agent(self, _vmi, command, **args):
        if command == "guest-ping" and self.offline:
            raise OSError("agent socket closed")
        if command != "guest-ping":
            self.calls.append((command, args))
        if command in self.fail:
            raise RuntimeError("guest agent %s: %s" % (command, self.fail[command]))   # qemu.GuestError's words
        return {}


def test_only_the_agents_credentials_are_synced_live():
    obj = vmi([ssh("a", ["u1", "u2"]), ssh("b", method={"noCloud": {}}), password("p"), {"sshPublicKey": {}}])
    assert cr.agent_credentials(obj) == [("ssh", "a", ["u1", "u2"]), ("password", "p", [])]


def test_secrets_are_read_as_virt_launcher_reads_their_files():
    assert cr.secret_keys(secret(z="k3", a="k1\n\n  k2  \n")) == ["k1", "k2", "k3"]
    assert cr.secret_passwords(secret(root="pw \n", empty=" ")) == {"root": "pw"}
    keys, passwords = cr.desired_state([("ssh", "a", ["u1", "u2"]), ("ssh", "b", ["u1"]), ("password", "p", [])],
                                       {"a": secret(k="ka"), "b": secret(k="kb"), "p": secret(bob="x")})
    assert keys == {"u1": ["ka", "kb"], "u2": ["ka"]} and passwords == {"bob": "x"}


def test_a_sync_sets_each_users_keys_and_passwords_then_only_what_changed():
    sim = Sim({"a": secret(k="ssh-ed25519 AAAA a"), "p": secret(bob="pw")})
    manager = cr.AccessCredentials(sim)
    obj = vmi([ssh("a", ["u"]), password("p")])
    assert asyncio.run(manager.sync(obj)) == (True, "")
    assert sim.calls == [("guest-ssh-add-authorized-keys", {"username": "u", "keys": ["ssh-ed25519 AAAA a"],
                                                            "reset": True}),
                         ("guest-set-user-password", {"username": "bob", "crypted": False, "password": b64("pw")})]
    assert sim.events == [("Normal", "AccessCredentialsSyncSuccess", "Access credentials sync successful.")]
    assert sim.enqueued == ["ns/v1"]
    sim.calls.clear()
    assert asyncio.run(manager.sync(obj)) == (True, "") and sim.calls == []     # nothing changed
    sim.secrets["a"] = secret(k="ssh-ed25519 AAAA a\nssh-ed25519 BBBB b")
    asyncio.run(manager.sync(obj))
    assert sim.calls[0][1]["keys"] == ["ssh-ed25519 AAAA a", "ssh-ed25519 BBBB b"]
    assert len(sim.events) == 1 and sim.enqueued == ["ns/v1"]                     # the result did not change


def test_failures_in_kubevirts_words():
    sim = Sim({"a": secret(k="key")}, fail={"guest-ssh-add-authorized-keys": "failed to lookup user 'u': Success"})
    manager = cr.AccessCredentials(sim)
    result = asyncio.run(manager.sync(vmi([ssh("a", ["u"])])))
    assert result == (False, "Error encountered writing ssh pub key access credentials for user [u]: internal "
                             "error: unable to execute QEMU agent command 'guest-ssh-add-authorized-keys': failed "
                             "to lookup user 'u': Success")
    assert sim.events[-1][:2] == ("Warning", "AccessCredentialsSyncFailed")
    assert sim.events[-1][2].startswith("Access credentials sync failed: Error encountered writing")
    sim.fail.clear()
    assert asyncio.run(manager.sync(vmi([ssh("a", ["u"])]))) == (True, "")       # retried: the guest made the user
    offline = Sim({"a": secret(k="key")}, offline=True)
    assert asyncio.run(cr.AccessCredentials(offline).sync(vmi([ssh("a")]))) == (False, "Guest agent is offline")
    missing = asyncio.run(cr.AccessCredentials(Sim({})).sync(vmi([ssh("gone")])))
    assert missing[0] is False and "/var/run/kubevirt-private/secret/gone-access-cred" in missing[1]


def test_a_deleted_secret_keeps_its_last_content():
    sim = Sim({"a": secret(k="key")})
    manager = cr.AccessCredentials(sim)
    asyncio.run(manager.sync(vmi([ssh("a")])))
    del sim.secrets["a"]
    assert asyncio.run(manager.sync(vmi([ssh("a")]))) == (True, "")     # the kubelet leaves the files in place


def test_cloud_init_gets_the_keys_of_its_propagation_only():
    obj = vmi([ssh("n", method={"noCloud": {}}), ssh("c", method={"configDrive": {}}), ssh("g")])
    sim = Sim({"n": secret(k="kn1\nkn2"), "c": secret(k="kc")})
    nocloud = asyncio.run(cr.boot_meta_data(sim, obj, "nocloud", "instance-id: v1.ns\n"))
    assert nocloud == 'instance-id: v1.ns\npublic-keys:\n  "0": "kn1"\n  "1": "kn2"\n'
    drive = asyncio.run(cr.boot_meta_data(sim, obj, "configdrive", json.dumps({"uuid": "v1.ns"})))
    assert json.loads(drive) == {"uuid": "v1.ns", "public_keys": {"0": "kc"}}
    assert asyncio.run(cr.boot_meta_data(sim, vmi([]), "nocloud", "x\n")) == "x\n"
    with pytest.raises(ValueError, match="access credential Secret ns/n: 404"):
        asyncio.run(cr.boot_meta_data(Sim({}), obj, "nocloud", ""))


def messages(spec):
    from lab.simulator import webhooks
    return [c["message"] for c in webhooks.validate_access_credentials("spec.accessCredentials", spec)]


def test_the_webhook_refuses_what_kubevirt_refuses():
    nocloud = {"volumes": [{"name": "ci", "cloudInitNoCloud": {"userData": "#cloud-config\n"}}]}
    assert messages(dict(nocloud, accessCredentials=[ssh("a"), ssh("b", method={"noCloud": {}}), password("p")])) == []
    assert messages({"accessCredentials": [ssh("a", method={"qemuGuestAgent": {"users": []}})]}) == [
        "spec.accessCredentials[0] requires at least one user to be present in the users list"]
    assert messages({"accessCredentials": [ssh("a", method={"configDrive": {}})]}) == [
        "spec.accessCredentials[0] requires a configDrive volume to exist when the configDrive propagationMethod "
        "is in use."]
    assert messages({"accessCredentials": [dict(ssh("a"), **password("p"))]}) == [
        "spec.accessCredentials[0] must have exactly one access credential type set"]
    assert messages({"accessCredentials": [{"sshPublicKey": {"source": {}, "propagationMethod": {}}}]}) == [
        "spec.accessCredentials[0] must have exactly one source set",
        "spec.accessCredentials[0] must have exactly one propagationMethod set"]
