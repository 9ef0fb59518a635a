"""Acceptance of issue 17: ssh and `ansible -m ping` / `command` to a REAL guest (lab/guest under QEMU)
on the pod network, through KubeVirt's port-forward - no Service, no route - with the kubeconfig and
with only AWX's bearer-token environment; a port nothing listens on gives one sentence.

The VMs ask the simulator for a real guest (issue 16) with the annotation REAL_GUEST_ANNOTATION; the
simulator's `sim.guests.open_connection(vmi, port)` reaches the guest's port through QEMU's user
networking. Needs the built guest (`make lab-guest`, which `make test` runs); nothing is skipped.
"""
import json
import os
import subprocess
import time

import pytest
from kubernetes import client

from ansible_run import PYTHON, ansible_env
from sim_helpers import admin_tls, lab, vm_manifest, wait_for  # noqa: F401

REAL_GUEST_ANNOTATION = {"lab.virtops.io/guest": "real"}
USER = "labuser"
BOOT_TIMEOUT = 300   # TCG boots take a while on a 2-CPU machine


@pytest.fixture
def ssh_key(tmp_path):
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def real_vm(lab, name, key):
    user_data = "#cloud-config\nuser: %s\nssh_authorized_keys:\n  - %s\n" % (USER, key.with_suffix(".pub").read_text()
                                                                           .strip())
    manifest = vm_manifest(name, user_data=user_data, annotations=REAL_GUEST_ANNOTATION, memory="256Mi")
    lab.create_vm(manifest)
    return wait_for(lambda: (lambda v: v if any(c.get("type") == "AgentConnected" and c.get("status") == "True"
                                                 for c in v.get("status", {}).get("conditions", [])) else None)(
        lab.vmi(name)), BOOT_TIMEOUT, interval=2, what="VMI %s with its guest agent connected" % name)


def plain(value):
    """ansible-inventory --list writes strings marked unsafe as {"__ansible_unsafe": text}."""
    if isinstance(value, dict):
        return value["__ansible_unsafe"] if set(value) == {"__ansible_unsafe"} else {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def inventory_file(tmp_path, lab, extra=""):
    path = tmp_path / "vms.kubevirt.yml"
    path.write_text("plugin: virtops.kubevirt.kubevirt\nnamespaces: [%s]\ncompose:\n  ansible_user: \"'%s'\"\n"
                    "  ansible_python_interpreter: \"'/usr/bin/python3'\"\n%s" % (lab.ns, USER, extra))
    return path


def ansible(args, env, timeout=300):
    return subprocess.run([os.path.join(os.path.dirname(PYTHON), "ansible")] + args, capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_ping_and_command_through_the_port_forward(lab, core, kubeconfig, ssh_key, tmp_path):
    real_vm(lab, "pf-real", ssh_key)
    inv = inventory_file(tmp_path, lab)
    env = ansible_env(kubeconfig, ANSIBLE_HOST_KEY_CHECKING="false", ANSIBLE_PRIVATE_KEY_FILE=str(ssh_key))
    listed = subprocess.run([os.path.join(os.path.dirname(PYTHON), "ansible-inventory"), "-i", str(inv), "--list"],
                            capture_output=True, text=True, env=env, check=True)
    host = "%s-pf-real" % lab.ns
    hostvars = plain(json.loads(listed.stdout)["_meta"]["hostvars"][host])
    assert hostvars["kubevirt"]["access"] == "portforward"
    assert hostvars["ansible_host"] == "vm.pf-real.%s" % lab.ns
    ping = ansible(["-i", str(inv), host, "-m", "ping"], env)
    assert ping.returncode == 0 and '"ping": "pong"' in ping.stdout, ping.stdout + ping.stderr
    cmd = ansible(["-i", str(inv), host, "-m", "command", "-a", "cat /etc/os-release"], env)
    assert cmd.returncode == 0 and "virtops lab guest" in cmd.stdout, cmd.stdout + cmd.stderr
    assert core.list_namespaced_service(lab.ns).items == []   # no Service was needed


def test_awx_bearer_token_environment_only(lab, core, api, admin_tls, ssh_key, tmp_path):
    from kubernetes.client import RbacAuthorizationV1Api

    real_vm(lab, "pf-awx", ssh_key)
    core.create_namespaced_service_account(lab.ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="awx")))
    rbac = RbacAuthorizationV1Api(api)
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "rbac", "console.yml")) as handle:
        import yaml
        role = yaml.safe_load(handle)
    role["metadata"] = {"name": "console"}
    role["kind"] = "Role"
    rbac.create_namespaced_role(lab.ns, role)
    rbac.create_namespaced_role_binding(lab.ns, {"metadata": {"name": "awx"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "console"},
        "subjects": [{"kind": "ServiceAccount", "name": "awx", "namespace": lab.ns}]})
    token = core.create_namespaced_service_account_token("awx", lab.ns, client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))).status.token
    server, ca, _cert, _key = admin_tls
    env = ansible_env(None, K8S_AUTH_HOST=server, K8S_AUTH_API_KEY=token, K8S_AUTH_SSL_CA_CERT=ca,
                      K8S_AUTH_VERIFY_SSL="true", ANSIBLE_HOST_KEY_CHECKING="false",
                      ANSIBLE_PRIVATE_KEY_FILE=str(ssh_key), HOME=str(tmp_path))
    env.pop("KUBECONFIG", None)
    inv = inventory_file(tmp_path, lab)
    ping = ansible(["-i", str(inv), "%s-pf-awx" % lab.ns, "-m", "ping"], env)
    assert ping.returncode == 0 and '"ping": "pong"' in ping.stdout, ping.stdout + ping.stderr
    assert token not in ping.stdout + ping.stderr


def test_a_port_nothing_listens_on_is_one_sentence(lab, kubeconfig, ssh_key, tmp_path):
    real_vm(lab, "pf-closed", ssh_key)
    inv = inventory_file(tmp_path, lab, "  ansible_port: \"2222\"\n")
    env = ansible_env(kubeconfig, ANSIBLE_HOST_KEY_CHECKING="false", ANSIBLE_PRIVATE_KEY_FILE=str(ssh_key))
    for _attempt in range(3):
        started = time.monotonic()
        ping = ansible(["-i", str(inv), "%s-pf-closed" % lab.ns, "-m", "ping"], env, timeout=120)
        assert ping.returncode != 0 and time.monotonic() - started < 60, ping.stdout + ping.stderr
        # Ansible's own race (plugins/connection/ssh.py _send_initial_data): with pipelining its write of the
        # module into ssh's stdin fails with EPIPE once ssh has exited on the refusal, and when the exit is not
        # seen within 1 ms it reports "Data could not be sent" without ssh's stderr. Only a loaded machine hits it.
        if "Data could not be sent to remote host" not in ping.stdout + ping.stderr:
            break
    # ssh drops a ProxyCommand's stderr under ControlPersist; the sentence comes as its "identification"
    assert "SSH-virtops: Nothing listens on port 2222 of VM %s/pf-closed" % lab.ns in ping.stdout + ping.stderr, ping.stdout[-3000:]
    assert "Traceback" not in ping.stdout + ping.stderr


def awx_token(lab, core, api):
    """A ServiceAccount token bound in the test's namespace to docs/rbac/console.yml's Role (which holds the
    port-forward's rule): what AWX's bearer-token credential carries."""
    from kubernetes.client import RbacAuthorizationV1Api
    import yaml

    core.create_namespaced_service_account(lab.ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="awx")))
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "rbac", "console.yml")) as handle:
        role = yaml.safe_load(handle)
    role["metadata"], role["kind"] = {"name": "console"}, "Role"
    rbac = RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(lab.ns, role)
    rbac.create_namespaced_role_binding(lab.ns, {"metadata": {"name": "awx"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "console"},
        "subjects": [{"kind": "ServiceAccount", "name": "awx", "namespace": lab.ns}]})
    return core.create_namespaced_service_account_token("awx", lab.ns, client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))).status.token


def test_the_provision_role_then_ping_through_the_port_forward(lab, core, api, admin_tls, kubeconfig, ssh_key,
                                                               tmp_path, monkeypatch):
    """The issue's acceptance end to end: the vm_provision role makes a VM on the pod network with a real
    guest, the inventory lists it with the port-forward path, `ansible -m ping` reaches it - with the
    kubeconfig, and from ansible-runner with only AWX's bearer-token environment - and no Service exists."""
    import ansible_runner
    from ansible_run import run_playbook

    pub = ssh_key.with_suffix(".pub").read_text().strip()
    made = run_playbook(tmp_path / "provision", [{"hosts": "localhost", "gather_facts": False, "roles": [{
        "role": "virtops.kubevirt.vm_provision", "vars": {
            "vm_provision_namespace": lab.ns, "vm_provision_wait_for": ["ready"], "vm_provision_progress": False,
            "vm_provision_vms": [{
                "name": "pf-role", "memory": "256Mi", "annotations": REAL_GUEST_ANNOTATION,
                "disks": [{"name": "root", "image": "quay.io/containerdisks/fedora:41"}],
                "networks": [{"name": "default", "type": "pod"}],
                "cloud_init": {"user": USER, "ssh_authorized_keys": [pub]}}]}}]}],
        env=ansible_env(kubeconfig))
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr
    vm = lab.custom.get_namespaced_custom_object("kubevirt.io", "v1", lab.ns, "virtualmachines", "pf-role")
    assert vm["spec"]["template"]["spec"]["networks"] == [{"name": "default", "pod": {}}]
    wait_for(lambda: any(c.get("type") == "AgentConnected" and c.get("status") == "True"
                         for c in (lab.vmi("pf-role") or {}).get("status", {}).get("conditions", [])),
             BOOT_TIMEOUT, interval=2, what="the real guest's agent")

    host = "%s-pf-role" % lab.ns
    inv = inventory_file(tmp_path, lab)
    env = ansible_env(kubeconfig, ANSIBLE_HOST_KEY_CHECKING="false", ANSIBLE_PRIVATE_KEY_FILE=str(ssh_key))
    listed = subprocess.run([os.path.join(os.path.dirname(PYTHON), "ansible-inventory"), "-i", str(inv), "--list"],
                            capture_output=True, text=True, env=env, check=True)
    assert plain(json.loads(listed.stdout)["_meta"]["hostvars"][host])["kubevirt"]["access"] == "portforward"
    ping = ansible(["-i", str(inv), host, "-m", "ping"], env)
    assert ping.returncode == 0 and '"ping": "pong"' in ping.stdout, ping.stdout + ping.stderr

    # ansible-runner, as AWX runs a job: the credential's K8S_AUTH_* only, no kubeconfig, a HOME of its own.
    token = awx_token(lab, core, api)
    server, ca, _cert, _key = admin_tls
    runner_env = ansible_env(None, K8S_AUTH_HOST=server, K8S_AUTH_API_KEY=token, K8S_AUTH_SSL_CA_CERT=ca,
                             K8S_AUTH_VERIFY_SSL="true", ANSIBLE_HOST_KEY_CHECKING="false",
                             ANSIBLE_PRIVATE_KEY_FILE=str(ssh_key), HOME=str(tmp_path))
    runner_env.pop("KUBECONFIG", None)
    private = tmp_path / "runner"
    private.mkdir()
    for key in [k for k in os.environ if k.startswith(("K8S_AUTH_", "KUBECONFIG"))]:
        monkeypatch.delenv(key)   # ansible-runner passes os.environ on to the job: only the credential's may reach it
    runner = ansible_runner.run(private_data_dir=str(private), inventory=str(inv), host_pattern=host, module="ping",
                                envvars={k: v for k, v in runner_env.items()
                                         if k.startswith(("K8S_AUTH_", "ANSIBLE_")) or k in ("HOME", "PATH")},
                                quiet=True)
    out = runner.stdout.read()
    pongs = [e["event_data"]["res"].get("ping") for e in runner.events if e["event"] == "runner_on_ok"]
    assert runner.status == "successful" and pongs == ["pong"], out[-3000:]
    assert token not in out and token not in json.dumps(list(runner.events))
    assert core.list_namespaced_service(lab.ns).items == []   # no Service was needed
