"""Acceptance of issue 17, item 4: KubeVirt's accessCredentials on a REAL guest (lab/guest under QEMU).

The vm module creates the VM with `access_credentials` (an SSH key Secret propagated by the guest
agent); the lab's virt-launcher (lab/simulator/credentials.py) writes the Secret's keys into the
user's authorized_keys through qemu-ga and reports AccessCredentialsSynchronized. A key added to the
Secret of the running VM then logs in, without a restart (the VMI keeps its uid). ssh goes through
KubeVirt's port-forward (the collection's ProxyCommand), keeping known hosts in the test's folder.
Needs the built guest (`make lab-guest`, which `make test` runs); nothing is skipped.
"""
import base64
import subprocess
from pathlib import Path

from kubernetes import client

from ansible_run import PYTHON, ansible_env, collection_path, run_playbook
from sim_helpers import lab, wait_for  # noqa: F401

REAL_GUEST_ANNOTATION = {"lab.virtops.io/guest": "real"}
USER = "labuser"
BOOT_TIMEOUT = 300   # TCG boots take a while on a 2-CPU machine
SYNC_TIMEOUT = 60    # the lab syncs every 3 s (KubeVirt within 15 s of the kubelet's Secret refresh)


def keypair(folder, name):
    key = Path(folder) / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key, key.with_suffix(".pub").read_text().strip()


def put_secret(core, ns, name, data, replace=False):
    body = client.V1Secret(metadata=client.V1ObjectMeta(name=name),
                           data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()})
    if replace:
        core.replace_namespaced_secret(name, ns, body)
    else:
        core.create_namespaced_secret(ns, body)


def proxy_ssh(kubeconfig, key, name, ns, folder, command="true"):
    """ssh USER@VM through the port-forward ProxyCommand with only KEY; the CompletedProcess."""
    proxy = Path(collection_path()) / "ansible_collections/virtops/kubevirt/plugins/plugin_utils/ssh_proxy.py"
    argv = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", str(key),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=%s" % (Path(folder) / "known_hosts"),
            "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "ConnectTimeout=60",
            "-o", "ProxyCommand=%s %s --kubeconfig %s vm/%s/%s %%p" % (PYTHON, proxy, kubeconfig, name, ns),
            "%s@vm.%s.%s" % (USER, name, ns), command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def synchronized(lab, name):
    """The VMI's AccessCredentialsSynchronized condition, or None."""
    vmi = lab.vmi(name) or {}
    return next((c for c in vmi.get("status", {}).get("conditions", [])
                 if c.get("type") == "AccessCredentialsSynchronized"), None)


def vm_task(ns, name, secret):
    return {"virtops.kubevirt.vm": {
        "name": name, "namespace": ns, "memory": "256Mi", "annotations": REAL_GUEST_ANNOTATION,
        "disks": [{"name": "root", "image": "quay.io/containerdisks/fedora:41"}],
        "cloud_init": {"user": USER},
        "access_credentials": [{"ssh_public_key": {"secret": secret, "users": [USER]}}],
        "termination_grace_period": 0}}


def test_a_key_added_to_the_secret_logs_in_without_a_restart(lab, core, kubeconfig, tmp_path):
    key_a, pub_a = keypair(tmp_path, "key-a")
    key_b, pub_b = keypair(tmp_path, "key-b")
    put_secret(core, lab.ns, "ac-keys", {"key-a": pub_a})
    env = ansible_env(kubeconfig)
    made = run_playbook(tmp_path / "play", [{"hosts": "localhost", "gather_facts": False, "tasks": [
        dict(vm_task(lab.ns, "ac-real", "ac-keys"), register="made")]}], env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    vm = lab.custom.get_namespaced_custom_object("kubevirt.io", "v1", lab.ns, "virtualmachines", "ac-real")
    assert vm["spec"]["template"]["spec"]["accessCredentials"] == [{"sshPublicKey": {
        "source": {"secret": {"secretName": "ac-keys"}}, "propagationMethod": {"qemuGuestAgent": {"users": [USER]}}}}]

    cond = wait_for(lambda: (lambda c: c if c and c["status"] == "True" else None)(synchronized(lab, "ac-real")),
                    BOOT_TIMEOUT, interval=2, what="AccessCredentialsSynchronized True")
    assert not cond.get("message")
    uid = lab.vmi("ac-real")["metadata"]["uid"]
    first = proxy_ssh(kubeconfig, key_a, "ac-real", lab.ns, tmp_path, "cat ~/.ssh/authorized_keys")
    assert first.returncode == 0 and first.stdout.split("\n")[0].strip() == pub_a, first.stdout + first.stderr
    refused = proxy_ssh(kubeconfig, key_b, "ac-real", lab.ns, tmp_path)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused.stderr

    put_secret(core, lab.ns, "ac-keys", {"key-a": pub_a, "key-b": pub_b}, replace=True)
    second = wait_for(lambda: (lambda p: p if p.returncode == 0 else None)(
        proxy_ssh(kubeconfig, key_b, "ac-real", lab.ns, tmp_path, "id -un")), SYNC_TIMEOUT, interval=2,
        what="key B logging in")
    assert second.stdout.strip() == USER
    assert lab.vmi("ac-real")["metadata"]["uid"] == uid        # no restart
    assert proxy_ssh(kubeconfig, key_a, "ac-real", lab.ns, tmp_path).returncode == 0
    assert synchronized(lab, "ac-real")["status"] == "True"
    reasons = [e.reason for e in lab.events("ac-real", "VirtualMachineInstance")]
    assert "AccessCredentialsSyncSuccess" in reasons

    # A key taken out of the Secret is taken out of the guest too (authorized_keys = the Secret's keys).
    put_secret(core, lab.ns, "ac-keys", {"key-b": pub_b}, replace=True)
    wait_for(lambda: proxy_ssh(kubeconfig, key_a, "ac-real", lab.ns, tmp_path).returncode == 255, SYNC_TIMEOUT,
             interval=2, what="key A refused")
    assert lab.vmi("ac-real")["metadata"]["uid"] == uid


def test_a_missing_secret_fails_before_anything_is_written(lab, custom, kubeconfig, tmp_path):
    result = run_playbook(tmp_path / "play", [{"hosts": "localhost", "gather_facts": False, "tasks": [
        vm_task(lab.ns, "ac-missing", "no-such-keys")]}], env=ansible_env(kubeconfig))
    assert result.returncode != 0
    assert ("Secret %s/no-such-keys (access_credentials[0].ssh_public_key of VirtualMachine %s/ac-missing) does "
            "not exist" % (lab.ns, lab.ns)) in result.stdout, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    names = [v["metadata"]["name"] for v in custom.list_namespaced_custom_object(
        "kubevirt.io", "v1", lab.ns, "virtualmachines")["items"]]
    assert "ac-missing" not in names


def test_a_password_from_the_secret_logs_in_on_the_console_without_a_restart(lab, core, kubeconfig, tmp_path):
    """userPassword: the Secret's user -> password, set through qemu-ga (guest-set-user-password runs the
    guest's chpasswd); a changed password logs in on the serial console without a restart."""
    put_secret(core, lab.ns, "ac-pw", {USER: "First-pw-1"})
    task = vm_task(lab.ns, "ac-pw", "unused")
    task["virtops.kubevirt.vm"]["access_credentials"] = [{"user_password": {"secret": "ac-pw"}}]
    env = ansible_env(kubeconfig)
    made = run_playbook(tmp_path / "play", [{"hosts": "localhost", "gather_facts": False, "tasks": [task]}], env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    wait_for(lambda: (lambda c: c if c and c["status"] == "True" else None)(synchronized(lab, "ac-pw")),
             BOOT_TIMEOUT, interval=2, what="AccessCredentialsSynchronized True")
    uid = lab.vmi("ac-pw")["metadata"]["uid"]

    def console_login(password):
        return run_playbook(tmp_path / "console", [{"hosts": "localhost", "gather_facts": False, "tasks": [
            {"virtops.kubevirt.console": {"name": "ac-pw", "namespace": lab.ns, "timeout": 20,
                                          "login": {"user": USER, "password": password}, "send": ["id -un"]}}]}],
            env=env)
    first = console_login("First-pw-1")
    assert first.returncode == 0, first.stdout[-3000:]
    put_secret(core, lab.ns, "ac-pw", {USER: "Second-pw-2"}, replace=True)
    wait_for(lambda: console_login("Second-pw-2").returncode == 0, SYNC_TIMEOUT, interval=2,
             what="the new password logging in")
    assert console_login("First-pw-1").returncode != 0
    assert lab.vmi("ac-pw")["metadata"]["uid"] == uid        # no restart
