"""virt-api's portforward subresource through the kube-apiserver's aggregation layer, and the
collection's ssh ProxyCommand (plugins/plugin_utils/ssh_proxy.py) against it: each refusal is
KubeVirt's Status and, from the ProxyCommand, one sentence and exit 1 - never a hang or a traceback.

The simulated guests listen on nothing (real guests: tests/lab/test_ssh_portforward.py), so the
byte stream itself is tested in tests/unit/lab/test_sim_portforward.py."""
import os
import subprocess
import sys
import time

import pytest
import websocket as wsc
from kubernetes import client

from ansible_run import collection_path
from sim_helpers import SUB, admin_tls, lab, vm_manifest, websocket  # noqa: F401

PROXY = os.path.join(collection_path(), "ansible_collections", "virtops", "kubevirt", "plugins", "plugin_utils",
                     "ssh_proxy.py")


def status(lab, path):
    code, body = lab.call("GET", f"{SUB}/namespaces/{lab.ns}/{path}")
    return code, body.get("reason"), body.get("message")


def proxy(argv, env, timeout=30):
    """Run the ProxyCommand as ssh does (stdin a pipe); (rc, stdout, stderr, seconds)."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, PROXY] + argv, input=b"SSH-2.0-OpenSSH_9.2\r\n", capture_output=True,
                          env=env, timeout=timeout)
    return done.returncode, done.stdout, done.stderr.decode(), time.monotonic() - started


@pytest.fixture
def kube_env(kubeconfig):
    env = {k: v for k, v in os.environ.items() if not k.startswith("K8S_AUTH_")}
    env["KUBECONFIG"] = kubeconfig
    return env


def test_refusals_are_kubevirt_status_answers(lab, admin_tls):
    lab.create_vm(vm_manifest("pf-on"))
    lab.create_vm(vm_manifest("pf-off", run_strategy="Halted"))
    vmi = lab.wait_running("pf-on")
    ip = vmi["status"]["interfaces"][0]["ipAddress"]
    refused = f"Internal error occurred: dialing VM: dial tcp {ip}:22: connect: connection refused"
    assert status(lab, "virtualmachineinstances/pf-on/portforward/22") == (500, "InternalError", refused)
    assert status(lab, "virtualmachineinstances/pf-on/portforward/22/tcp") == (500, "InternalError", refused)
    assert status(lab, "virtualmachines/pf-on/portforward/22") == (500, "InternalError", refused)
    assert status(lab, "virtualmachines/pf-off/portforward/22") == (
        409, "Conflict", 'Operation cannot be fulfilled on virtualmachine.kubevirt.io "pf-off": VMI is not started')
    assert status(lab, "virtualmachines/nope/portforward/22") == (
        404, "NotFound", 'virtualmachine.kubevirt.io "nope" not found')
    assert status(lab, "virtualmachineinstances/nope/portforward/22") == (
        404, "NotFound", 'virtualmachineinstance.kubevirt.io "nope" not found')
    assert status(lab, "virtualmachineinstances/pf-on/portforward/53/udp")[:2] == (500, "InternalError")
    # a websocket client gets the same answer to its upgrade
    with pytest.raises(wsc.WebSocketBadStatusException) as info:
        websocket(admin_tls, f"{SUB}/namespaces/{lab.ns}/virtualmachineinstances/pf-on/portforward/22")
    assert info.value.status_code == 500
    # paused: 409 before any dial
    assert lab.vmi_sub("pf-on", "pause")[0] == 200
    assert status(lab, "virtualmachineinstances/pf-on/portforward/22") == (
        409, "Conflict", 'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "pf-on": VMI is paused')


def test_proxy_command_sentences(lab, kube_env):
    lab.create_vm(vm_manifest("pf-web"))
    lab.create_vm(vm_manifest("pf-stopped", run_strategy="Halted"))
    lab.wait_running("pf-web")
    cases = [
        (["vm/pf-web/%s" % lab.ns, "22"], "Nothing listens on port 22 of VM %s/pf-web (virt-api: dialing VM: dial "
                                          "tcp " % lab.ns),
        (["-n", lab.ns, "vmi/pf-web", "2222"], "Nothing listens on port 2222 of VMI %s/pf-web" % lab.ns),
        (["vm/pf-stopped/%s" % lab.ns, "22"], "VM %s/pf-stopped is not running (virt-api: Operation cannot be "
                                              "fulfilled on virtualmachine.kubevirt.io \"pf-stopped\": VMI is not "
                                              "started); start it" % lab.ns),
        (["vm/no-such-vm/%s" % lab.ns, "22"], "There is no VM %s/no-such-vm (virt-api: virtualmachine.kubevirt.io "
                                              "\"no-such-vm\" not found)" % lab.ns),
    ]
    for argv, sentence in cases:
        rc, out, err, seconds = proxy(argv, kube_env)
        assert rc == 1 and out == b"", (argv, err)
        assert sentence in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert seconds < 15


def test_proxy_command_forbidden_with_awx_credential_environment(lab, core, kubeconfig, admin_tls, api):
    """AWX's bearer-token credential: K8S_AUTH_HOST/API_KEY/SSL_CA_CERT only. A ServiceAccount that may
    read VMs but not port-forward gets the RBAC sentence; its token never appears."""
    from kubernetes.client import RbacAuthorizationV1Api

    lab.create_vm(vm_manifest("pf-rbac"))
    lab.wait_running("pf-rbac")
    core.create_namespaced_service_account(lab.ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="ops")))
    rbac = RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(lab.ns, {"metadata": {"name": "read-vms"}, "rules": [
        {"apiGroups": ["kubevirt.io"], "resources": ["virtualmachines", "virtualmachineinstances"],
         "verbs": ["get", "list"]}]})
    rbac.create_namespaced_role_binding(lab.ns, {"metadata": {"name": "ops-read"},
                                                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                             "name": "read-vms"},
                                                 "subjects": [{"kind": "ServiceAccount", "name": "ops",
                                                               "namespace": lab.ns}]})
    token = core.create_namespaced_service_account_token("ops", lab.ns, client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))).status.token
    server, ca, _cert, _key = admin_tls
    env = {k: v for k, v in os.environ.items() if not k.startswith("K8S_AUTH_") and k != "KUBECONFIG"}
    env.update(K8S_AUTH_HOST=server, K8S_AUTH_API_KEY=token, K8S_AUTH_SSL_CA_CERT=ca, K8S_AUTH_VERIFY_SSL="true",
               HOME=str(lab_home(kubeconfig)))
    rc, _out, err, seconds = proxy(["vm/pf-rbac/%s" % lab.ns, "22"], env)
    assert rc == 1 and seconds < 15
    assert ("The credentials may not port-forward to VM %s/pf-rbac: they need get on virtualmachines/portforward in "
            "API group subresources.kubevirt.io in namespace %s" % (lab.ns, lab.ns)) in err
    assert "system:serviceaccount:%s:ops" % lab.ns in err
    assert token not in err and err.count("\n") == 1
    # with the rule (as docs/rbac/*.yml grant it) the request reaches virt-api: nothing listens on 22 there
    rbac.create_namespaced_role(lab.ns, {"metadata": {"name": "portforward"}, "rules": [
        {"apiGroups": ["subresources.kubevirt.io"],
         "resources": ["virtualmachines/portforward", "virtualmachineinstances/portforward"], "verbs": ["get"]}]})
    rbac.create_namespaced_role_binding(lab.ns, {"metadata": {"name": "ops-pf"},
                                                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                             "name": "portforward"},
                                                 "subjects": [{"kind": "ServiceAccount", "name": "ops",
                                                               "namespace": lab.ns}]})
    deadline = time.monotonic() + 10
    while True:
        rc, _out, err, _s = proxy(["vm/pf-rbac/%s" % lab.ns, "22"], env)
        if "Nothing listens on port 22" in err or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert rc == 1 and "Nothing listens on port 22 of VM %s/pf-rbac" % lab.ns in err


def lab_home(kubeconfig):
    """A HOME without ~/.kube/config, inside the lab's state folder."""
    home = os.path.join(os.path.dirname(kubeconfig), "home-portforward")
    os.makedirs(home, exist_ok=True)
    return home


def test_proxy_command_connect_timeout(kube_env):
    """An API server address that accepts and never answers: the connect timeout, one sentence."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    env = dict(kube_env, K8S_AUTH_HOST="https://127.0.0.1:%d" % server.getsockname()[1], K8S_AUTH_API_KEY="x")
    try:
        rc, _out, err, seconds = proxy(["--timeout", "2", "vm/any/default", "22"], env)
    finally:
        server.close()
    assert rc == 1 and seconds < 10
    assert "Could not open the port-forward to port 22 of VM default/any" in err and err.count("\n") == 1
