"""The stdio port-forward (ssh ProxyCommand): arguments, credentials, error sentences, the pump, quoting."""
import io
import os
import shlex
import threading

import pytest
import websocket

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError, InputError
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import console
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import portforward as pf
from ansible_collections.virtops.kubevirt.plugins.plugin_utils import ssh_proxy

TOKEN = "s3cr3t-token-value"


# -- arguments ------------------------------------------------------------------------------------
def test_options_become_the_modules_connection_params():
    params, target, port, namespace, timeout = pf.parse_args([
        "--kubeconfig", "/k", "--context", "lab", "--ca-cert", "/ca", "--validate-certs", "false",
        "--impersonate-group", "a", "--impersonate-group", "b", "--timeout", "5", "-n", "demo", "vm/web1", "22"])
    assert params == {"kubeconfig": "/k", "context": "lab", "ca_cert": "/ca", "validate_certs": False,
                      "impersonate_groups": ["a", "b"]}
    assert (target.kind, target.name, target.namespace, port, namespace, timeout) == ("vm", "web1", None, 22,
                                                                                      "demo", 5.0)


@pytest.mark.parametrize("text, expected", [
    ("vm/web1/demo", ("vm", "web1", "demo")), ("vmi/solo", ("vmi", "solo", None)),
    ("VirtualMachines/web1/demo", ("vm", "web1", "demo")), ("virtualmachineinstance/x", ("vmi", "x", None)),
])
def test_targets_as_virtctl_writes_them(text, expected):
    target = pf.parse_target(text)
    assert (target.kind, target.name, target.namespace) == expected


@pytest.mark.parametrize("argv, message", [
    (["web1", "22"], "The target 'web1' is not KIND/NAME or KIND/NAME/NAMESPACE"),
    (["vm//demo", "22"], "is not KIND/NAME"),
    (["pod/web1", "22"], "The target kind 'pod' is not vm or vmi."),
    (["vm/web1", "udp/53"], "Only TCP ports can be forwarded to stdin/stdout, not 'udp/53'."),
    (["vm/web1", "ssh"], "The port 'ssh' is not a number from 1 to 65535."),
    (["vm/web1", "70000"], "The port '70000' is not a number from 1 to 65535."),
    (["vm/web1"], "the following arguments are required: port"),
    (["--frobnicate", "vm/web1", "22"], "unrecognized arguments: --frobnicate"),
    (["--timeout", "0", "vm/web1", "22"], "--timeout must be a positive number of seconds"),
    (["--api-key", TOKEN, "vm/web1", "22"], "--api-key is not accepted: a secret on a command line"),
    (["--token=" + TOKEN, "vm/web1", "22"], "set K8S_AUTH_API_KEY in the environment or use a kubeconfig"),
    (["--password", TOKEN, "vm/web1", "22"], "set K8S_AUTH_PASSWORD"),
])
def test_bad_arguments_are_one_sentence(argv, message):
    with pytest.raises(InputError) as info:
        pf.parse_args(argv)
    assert message in str(info.value)
    assert TOKEN not in str(info.value) and "\n" not in str(info.value)


def test_tcp_prefix_is_accepted():
    assert pf.parse_args(["vm/a", "tcp/2222"])[2] == 2222


# -- credentials and errors through run() -----------------------------------------------------------
@pytest.fixture
def ca_file(tmp_path):
    path = tmp_path / "ca.crt"
    path.write_text("not used: open_websocket is replaced\n")
    return str(path)


def awx_env(ca_file):
    """What AWX's 'OpenShift or Kubernetes API Bearer Token' credential injects."""
    return {"K8S_AUTH_HOST": "https://api.example:6443", "K8S_AUTH_API_KEY": TOKEN,
            "K8S_AUTH_SSL_CA_CERT": ca_file, "K8S_AUTH_VERIFY_SSL": "true"}


def refused(status, body):
    def fake(conn, path, timeout, what, ref, multithread=False):
        raise console.StreamRefused("refused", console.handshake_api_error(status, body, "wss://x" + path))
    return fake


def run(monkeypatch, argv, environ, opener):
    seen = {}

    def spy(conn, path, timeout, what, ref, multithread=False):
        seen.update(conn=conn, path=path, timeout=timeout, multithread=multithread)
        return opener(conn, path, timeout, what, ref, multithread)
    monkeypatch.setattr(pf, "open_websocket", spy)
    err = io.StringIO()
    rc = pf.run(argv, environ=environ, stderr=err)
    return rc, err.getvalue(), seen


def test_awx_bearer_token_environment_is_used_with_tls_verification(monkeypatch, ca_file):
    rc, err, seen = run(monkeypatch, ["vm/web1/demo", "22"], awx_env(ca_file),
                        refused(404, {"kind": "Status", "message": 'virtualmachine.kubevirt.io "web1" not found',
                                      "reason": "NotFound", "code": 404,
                                      "details": {"name": "web1", "kind": "virtualmachine"}}))
    conn = seen["conn"]
    assert conn.host == "https://api.example:6443" and conn.token == TOKEN and conn.verify is True
    assert conn.ca_file == ca_file
    assert seen["path"] == "/apis/subresources.kubevirt.io/v1/namespaces/demo/virtualmachines/web1/portforward/22"
    assert seen["timeout"] == pf.CONNECT_TIMEOUT and seen["multithread"] is True
    assert rc == 1
    assert err == ('There is no VM demo/web1 (virt-api: virtualmachine.kubevirt.io "web1" not found); check the '
                   'name and namespace.\n')


def test_kubeconfig_namespace_is_the_default_and_explicit_credentials_win(monkeypatch, tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: lab\n"
        "clusters: [{name: c, cluster: {server: 'https://lab:6443'}}]\n"
        "contexts: [{name: lab, context: {cluster: c, user: u, namespace: team}}]\n"
        "users: [{name: u, user: {token: kubeconfig-token}}]\n")
    rc, dummy, seen = run(monkeypatch, ["--kubeconfig", str(kubeconfig), "vmi/solo", "2222"],
                          {"K8S_AUTH_API_KEY": TOKEN}, refused(500, "x"))
    assert seen["conn"].token == TOKEN and seen["conn"].host == "https://lab:6443"
    assert seen["path"].endswith("/namespaces/team/virtualmachineinstances/solo/portforward/2222")
    rc, dummy, seen = run(monkeypatch, ["--kubeconfig", str(kubeconfig), "-n", "other", "vm/web1", "22"], {},
                          refused(500, "x"))
    assert seen["conn"].token == "kubeconfig-token"
    assert "/namespaces/other/virtualmachines/web1/" in seen["path"]


FORBIDDEN = {"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
             "message": 'virtualmachines.subresources.kubevirt.io "web1" is forbidden: User '
                        '"system:serviceaccount:demo:ansible" cannot get resource "virtualmachines/portforward" in API '
                        'group "subresources.kubevirt.io" in the namespace "demo"',
             "details": {"name": "web1", "group": "subresources.kubevirt.io", "kind": "virtualmachines"}}


@pytest.mark.parametrize("target, status, body, sentence", [
    ("vm/web1/demo", 403, FORBIDDEN,
     'The credentials may not port-forward to VM demo/web1: they need get on virtualmachines/portforward in API group '
     'subresources.kubevirt.io in namespace demo (API server: virtualmachines.subresources.kubevirt.io "web1" is '
     'forbidden: User "system:serviceaccount:demo:ansible" cannot get resource "virtualmachines/portforward" in API '
     'group "subresources.kubevirt.io" in the namespace "demo"); see docs/rbac.md.'),
    ("vmi/solo/demo", 403, dict(FORBIDDEN, message="forbidden"),
     "they need get on virtualmachineinstances/portforward in API group subresources.kubevirt.io in namespace demo"),
    ("vm/web1/demo", 401, {"kind": "Status", "reason": "Unauthorized", "message": "Unauthorized", "code": 401},
     "The API server rejected the credentials for the port-forward to VM demo/web1 (401 Unauthorized); check "
     "K8S_AUTH_API_KEY or the kubeconfig user, and that the token has not expired."),
    ("vm/off/demo", 409, {"kind": "Status", "reason": "Conflict", "code": 409,
                          "message": 'Operation cannot be fulfilled on virtualmachine.kubevirt.io "off": VMI is not '
                                     'started', "details": {"name": "off", "kind": "virtualmachine"}},
     'VM demo/off is not running (virt-api: Operation cannot be fulfilled on virtualmachine.kubevirt.io "off": VMI is '
     'not started); start it, for example with virtops.kubevirt.vm_power.'),
    ("vmi/gone/demo", 404, {"kind": "Status", "reason": "NotFound", "code": 404,
                            "message": 'virtualmachineinstance.kubevirt.io "gone" not found',
                            "details": {"name": "gone", "kind": "virtualmachineinstance"}},
     'There is no VMI demo/gone (virt-api: virtualmachineinstance.kubevirt.io "gone" not found): no such stand-alone '
     'VMI, or its VM is not running.'),
    ("vm/web1/demo", 404, {"kind": "Status", "reason": "NotFound", "code": 404,
                           "message": "the server could not find the requested resource"},
     "The API server has no subresources.kubevirt.io port-forward for VM demo/web1 (the server could not find the "
     "requested resource); check that KubeVirt is installed"),
    ("vm/web1/demo", 409, {"kind": "Status", "reason": "Conflict", "code": 409,
                           "message": 'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "web1": VMI '
                                      'is paused'},
     "VM demo/web1 is paused (virt-api: "),
    ("vm/web1/demo", 400, {"kind": "Status", "reason": "BadRequest", "code": 400,
                           "message": "no network interfaces are present"},
     "VM demo/web1 has no network interface with an address yet (virt-api: no network interfaces are present); wait "
     "until it runs and reports its interfaces."),
    ("vm/web1/demo", 500, {"kind": "Status", "reason": "InternalError", "code": 500,
                           "message": "Internal error occurred: dialing VM: dial tcp 10.1.2.3:22: connect: connection "
                                      "refused"},
     "Nothing listens on port 22 of VM demo/web1 (virt-api: dialing VM: dial tcp 10.1.2.3:22: connect: connection "
     "refused); check that the guest's SSH server runs and listens on that port."),
    ("vm/web1/demo", 500, {"kind": "Status", "reason": "InternalError", "code": 500,
                           "message": "Internal error occurred: dialing VM: dial tcp 10.1.2.3:22: connect: no route "
                                      "to host"},
     "VM demo/web1 did not answer on port 22 (virt-api: dialing VM: dial tcp 10.1.2.3:22: connect: no route to host); "
     "it may be stopping"),
    ("vm/web1/demo", 502, "Bad Gateway", "GET wss://x/apis/subresources.kubevirt.io/v1/namespaces/demo/virtualmachines/"
                                         "web1/portforward/22 answered 502: Bad Gateway"),
])
def test_each_refusal_is_one_sentence_without_the_token(monkeypatch, ca_file, target, status, body, sentence):
    rc, err, dummy = run(monkeypatch, [target, "22"], awx_env(ca_file), refused(status, body))
    assert rc == 1
    assert sentence in err
    assert err.count("\n") == 1 and err.endswith(".\n")
    assert TOKEN not in err and "Traceback" not in err


def test_unreachable_api_server_and_timeouts_are_one_sentence(monkeypatch, ca_file):
    def timeout(conn, path, timeout, what, ref, multithread=False):
        raise console.ConsoleError("Could not open the %s of %s: no answer within %ds from %s." % (
            what, ref, timeout, conn.host))
    rc, err, dummy = run(monkeypatch, ["--timeout", "3", "vm/web1/demo", "22"], awx_env(ca_file), timeout)
    assert rc == 1
    assert err == ("Could not open the port-forward to port 22 of VM demo/web1: no answer within 3s from "
                   "https://api.example:6443.\n")


def test_real_open_websocket_connect_timeout(monkeypatch, ca_file):
    """A server that accepts and never answers: the connect timeout ends it with one sentence."""
    import socket
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    env = dict(awx_env(ca_file), K8S_AUTH_HOST="http://127.0.0.1:%d" % server.getsockname()[1])
    err = io.StringIO()
    try:
        rc = pf.run(["--timeout", "0.5", "vm/web1/demo", "22"], environ=env, stderr=err)
    finally:
        server.close()
    assert rc == 1
    assert "Could not open the port-forward to port 22 of VM demo/web1" in err.getvalue()
    assert "no answer within" in err.getvalue() and err.getvalue().count("\n") == 1


def test_unexpected_errors_never_show_a_traceback(monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise ValueError("bad thing.")
    monkeypatch.setattr(pf, "run", boom)
    assert pf.main(["vm/a", "22"]) == 1
    err = capsys.readouterr().err
    assert err == "virtops.kubevirt port-forward failed: ValueError: bad thing.\n"


# -- the pump -------------------------------------------------------------------------------------
class FakeWs:
    """websocket-client's WebSocket, as the pump uses it."""

    def __init__(self, frames):
        self.frames = list(frames)
        self.sent = []
        self.sock = None
        self.closed = threading.Event()

    def settimeout(self, value):
        self.timeout = value

    def send(self, data, opcode):
        self.sent.append((opcode, data))

    def recv_data(self):
        if self.frames:
            item = self.frames.pop(0)
            if isinstance(item, BaseException):
                raise item
            return item
        self.closed.wait(5)
        raise websocket.WebSocketConnectionClosedException("closed")

    def close(self, timeout=None):
        self.closed.set()


def pipes():
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    return r_in, w_in, r_out, w_out


def read_all(fd):
    chunks = []
    while True:
        data = os.read(fd, 65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def test_pump_frames_to_stdout_and_ends_quietly_when_virt_api_drops_the_connection():
    r_in, w_in, r_out, w_out = pipes()
    ws = FakeWs([(websocket.ABNF.OPCODE_BINARY, b"SSH-2.0-dropbear\r\n"), (websocket.ABNF.OPCODE_TEXT, b"skip"),
                 (websocket.ABNF.OPCODE_BINARY, b"more"), websocket.WebSocketConnectionClosedException("lost")])
    try:
        assert pf.pump(ws, r_in, w_out) is None
    finally:
        os.close(w_out)
        os.close(w_in)
    assert read_all(r_out) == b"SSH-2.0-dropbear\r\nmore"
    os.close(r_in)
    os.close(r_out)


def test_pump_sends_stdin_as_binary_frames_and_ends_at_stdin_eof():
    r_in, w_in, r_out, w_out = pipes()
    ws = FakeWs([])
    os.write(w_in, b"SSH-2.0-OpenSSH_9\r\n")
    os.close(w_in)
    try:
        assert pf.pump(ws, r_in, w_out) is None
    finally:
        for fd in (r_in, r_out, w_out):
            os.close(fd)
    assert ws.sent == [(websocket.ABNF.OPCODE_BINARY, b"SSH-2.0-OpenSSH_9\r\n")]
    assert ws.closed.is_set()


def test_pump_reports_a_broken_stream():
    r_in, w_in, r_out, w_out = pipes()
    ws = FakeWs([ConnectionResetError(104, "Connection reset by peer")])
    try:
        assert pf.pump(ws, r_in, w_out) == "[Errno 104] Connection reset by peer"
    finally:
        for fd in (r_in, w_in, r_out, w_out):
            os.close(fd)


# -- the ProxyCommand -------------------------------------------------------------------------------
def ssh_expand(command, port):
    """What ssh does with a ProxyCommand: %p -> port, %% -> %, then /bin/sh splits it."""
    out, i = [], 0
    while i < len(command):
        if command[i] == "%" and command[i + 1] == "p":
            out.append(str(port))
            i += 2
        elif command[i] == "%" and command[i + 1] == "%":
            out.append("%")
            i += 2
        else:
            out.append(command[i])
            i += 1
    return shlex.split("".join(out))


def test_proxy_command_survives_ansible_and_ssh_quoting_and_carries_no_secret():
    auth = {"kubeconfig": "/home/me/my configs/kube%1", "context": "lab's", "api_key": TOKEN, "password": TOKEN,
            "validate_certs": False, "impersonate_groups": ["ops team"], "proxy": "http://u:pw@proxy:3128"}
    argv = pf.proxy_argv("/usr/bin/python3", "/c/ansible_collections/virtops/kubevirt/plugins/plugin_utils/"
                                             "ssh_proxy.py", pf.Target("vm", "web1", "demo"), auth)
    args = pf.ssh_args(argv)
    assert TOKEN not in args and "pw@" not in args
    split = shlex.split(args)   # Ansible's ssh plugin splits ansible_ssh_common_args with shlex
    assert split[0] == "-o" and split[1].startswith("ProxyCommand=") and len(split) == 2
    command = ssh_expand(split[1][len("ProxyCommand="):], 2222)
    assert command == ["/usr/bin/python3", "/c/ansible_collections/virtops/kubevirt/plugins/plugin_utils/ssh_proxy.py",
                       "--kubeconfig", "/home/me/my configs/kube%1", "--context", "lab's", "--validate-certs", "false",
                       "--impersonate-group", "ops team", "vm/web1/demo", "2222"]
    params, target, port, dummy, dummy2 = pf.parse_args(command[2:])
    assert params["kubeconfig"] == "/home/me/my configs/kube%1" and params["validate_certs"] is False
    assert (target.kind, target.name, target.namespace, port) == ("vm", "web1", "demo", 2222)


def test_launcher_finds_the_collection_root():
    assert ssh_proxy.collections_root("/x/y/ansible_collections/virtops/kubevirt/plugins/plugin_utils/ssh_proxy.py") \
        == "/x/y"
    assert ssh_proxy.collections_root("/work/repo/plugins/plugin_utils/ssh_proxy.py") is None
    assert ssh_proxy.script_path().endswith("ansible_collections/virtops/kubevirt/plugins/plugin_utils/ssh_proxy.py")


def test_api_error_text_is_kept_for_unknown_answers():
    err = ApiError(418, "GET", "wss://h/p", {"message": "teapot"})
    assert pf.refusal_message(err, pf.Target("vm", "a", "b"), "b", 22).endswith(
        "(the port-forward to port 22 of VM b/a).")


def test_a_refusal_under_controlpersist_waits_for_sshs_identification(tmp_path):
    """ssh discards the proxy's stderr (ControlPersist): the sentence goes out as the server's identification,
    and the proxy takes ssh's own identification before it exits, so ssh's first write never meets a closed pipe
    (which ssh would report as a broken pipe instead of printing the sentence)."""
    import threading
    import time

    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    with open(os.devnull, "w") as discarded:
        timer = threading.Timer(0.3, lambda: os.write(stdin_w, b"SSH-2.0-OpenSSH_10.0\r\n"))
        started = time.monotonic()
        timer.start()
        pf.tell("Nothing listens on port 2222 of VM demo/web1.", discarded, stdout_w, stdin_r)
        waited = time.monotonic() - started
    timer.join()
    assert 0.25 <= waited < pf.SSH_BANNER_WAIT
    assert os.read(stdout_r, 4096) == b"SSH-virtops: Nothing listens on port 2222 of VM demo/web1.\r\n"
    os.close(stdin_w)              # ssh gone: EOF ends the wait at once
    started = time.monotonic()
    pf.await_ssh_identification(stdin_r, timeout=5)
    assert time.monotonic() - started < 1
    for fd in (stdin_r, stdout_r, stdout_w):
        os.close(fd)
