# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stdio port-forward to a port of a VM, through the API server and virt-api - what
``virtctl port-forward --stdio=true vm/NAME/NAMESPACE 22`` does, for ssh's ProxyCommand.

Command line (``plugins/plugin_utils/ssh_proxy.py`` runs ``main()``)::

    ssh_proxy.py [--kubeconfig PATH] [--context NAME] [--host URL] [--ca-cert PATH] [--client-cert PATH]
                 [--client-key PATH] [--validate-certs true|false] [--proxy URL] [--no-proxy HOSTS]
                 [--impersonate-user NAME] [--impersonate-group NAME]... [--namespace NS] [--timeout S]
                 vm/NAME[/NAMESPACE] | vmi/NAME[/NAMESPACE]   [tcp/]PORT

Credentials are resolved as for the modules (k8s/connection.py): these options, then the
``K8S_AUTH_*`` variables (AWX's bearer-token credential sets them), the in-cluster ServiceAccount
and the kubeconfig. Secrets (token, password) are never accepted on the command line, where every
user of the machine could read them: they come from the environment or the kubeconfig.

The stream: ``GET .../virtualmachines/NAME/portforward/PORT`` upgraded to a websocket
(``plain.kubevirt.io``); what ssh writes on stdin goes out in binary frames, binary frames come
back on stdout. virt-api pings every second; TCP keep-alive notices a dead connection. The stream
ends - exit 0 - when either side ends (stdin closed, or virt-api closing once the guest closes).
Every failure is one sentence on stderr and exit 1: no traceback, and a connect timeout.
"""

from __future__ import annotations

import argparse
import os
import select
import shlex
import signal
import socket
import sys
import threading
import time

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.connection import resolve_connection
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError, KubevirtError, one_line
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.console import StreamRefused, open_websocket

KINDS = {"vm": "vm", "vms": "vm", "virtualmachine": "vm", "virtualmachines": "vm",
         "vmi": "vmi", "vmis": "vmi", "virtualmachineinstance": "vmi", "virtualmachineinstances": "vmi"}
CONNECT_TIMEOUT = 20.0
CHUNK = 64 * 1024
# Connection options a command line may carry: none is a secret.
PATH_OPTIONS = ("kubeconfig", "ca_cert", "client_cert", "client_key")
TEXT_OPTIONS = ("context", "host", "proxy", "no_proxy", "impersonate_user")
SECRET_OPTIONS = ("api_key", "password", "username", "proxy_headers")
SSH_PORT = 22
INTERNAL_PREFIX = "Internal error occurred: "


class Target(object):
    def __init__(self, kind, name, namespace=None):
        self.kind, self.name, self.namespace = kind, name, namespace

    @property
    def resource(self):
        return res.VM if self.kind == "vm" else res.VMI

    def ref(self, namespace=None):
        return "%s %s/%s" % ("VM" if self.kind == "vm" else "VMI", namespace or self.namespace, self.name)


def parse_target(text):
    """virtctl's target syntax: KIND/NAME[/NAMESPACE] (pkg/virtctl/portforward ParseTarget)."""
    parts = str(text).split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InputError("The target %r is not KIND/NAME or KIND/NAME/NAMESPACE (for example vm/web1/demo)." % text)
    kind = KINDS.get(parts[0].lower())
    if kind is None:
        raise InputError("The target kind %r is not vm or vmi." % parts[0])
    return Target(kind, parts[1], parts[2] if len(parts) == 3 else None)


def parse_port(text):
    """PORT or tcp/PORT -> int. UDP does not fit a byte stream such as ssh's."""
    text = str(text)
    protocol, dummy, number = text.rpartition("/")
    if protocol and protocol.lower() != "tcp":
        raise InputError("Only TCP ports can be forwarded to stdin/stdout, not %r." % text)
    if not number.isdigit() or not 0 < int(number) < 65536:
        raise InputError("The port %r is not a number from 1 to 65535." % text)
    return int(number)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise InputError("ssh_proxy.py: %s (usage: ssh_proxy.py [options] vm/NAME[/NAMESPACE] PORT)." % message)


def _parser():
    parser = _Parser(prog="ssh_proxy.py", add_help=False, allow_abbrev=False)
    for option in PATH_OPTIONS + TEXT_OPTIONS:
        parser.add_argument("--" + option.replace("_", "-"), dest=option)
    parser.add_argument("--validate-certs", dest="validate_certs", choices=("true", "false"))
    parser.add_argument("--impersonate-group", dest="impersonate_groups", action="append")
    parser.add_argument("--namespace", "-n", dest="namespace")
    parser.add_argument("--timeout", dest="timeout", type=float, default=CONNECT_TIMEOUT)
    parser.add_argument("target")
    parser.add_argument("port")
    return parser


def parse_args(argv):
    """Command line -> (connection params as the modules name them, Target, port, namespace, timeout)."""
    for arg in argv:
        name = arg.split("=", 1)[0].lstrip("-").replace("-", "_")
        if arg.startswith("--") and name in SECRET_OPTIONS + ("token",):
            raise InputError("--%s is not accepted: a secret on a command line can be read by every user of the "
                             "machine; set K8S_AUTH_%s in the environment or use a kubeconfig." % (
                                 name.replace("_", "-"), "API_KEY" if name in ("api_key", "token") else name.upper()))
    args = _parser().parse_args(argv)
    params = {key: getattr(args, key) for key in PATH_OPTIONS + TEXT_OPTIONS if getattr(args, key)}
    if args.validate_certs is not None:
        params["validate_certs"] = args.validate_certs == "true"
    if args.impersonate_groups:
        params["impersonate_groups"] = args.impersonate_groups
    if not args.timeout > 0:
        raise InputError("--timeout must be a positive number of seconds, not %s." % args.timeout)
    return params, parse_target(args.target), parse_port(args.port), args.namespace, args.timeout


# -- refusals -> one sentence (pure) --------------------------------------------------------------
def refusal_message(err, target, namespace, port):
    """What virt-api or the API server said when refusing the websocket, as one sentence a user can act on.

    ``err`` is the ApiError of the HTTP answer (k8s/errors.py)."""
    ref = target.ref(namespace)
    said = one_line(err.api_message or "HTTP %d %s" % (err.status, err.reason), 300).rstrip(".")
    if said.startswith(INTERNAL_PREFIX):   # metav1's wording of every 500, noise here
        said = said[len(INTERNAL_PREFIX):]
    kind = (err.status_details or {}).get("kind")
    sub = "%s/portforward" % target.resource.plural
    if err.status == 401:
        return ("The API server rejected the credentials for the port-forward to %s (401 Unauthorized); check "
                "K8S_AUTH_API_KEY or the kubeconfig user, and that the token has not expired." % ref)
    if err.status == 403:
        return ("The credentials may not port-forward to %s: they need get on %s in API group "
                "subresources.kubevirt.io in namespace %s (API server: %s); see docs/rbac.md." % (
                    ref, sub, namespace, said))
    if err.status == 404 and kind == "virtualmachine":
        return "There is no VM %s/%s (virt-api: %s); check the name and namespace." % (namespace, target.name, said)
    if err.status == 404 and kind == "virtualmachineinstance":
        if target.kind == "vm":
            return "VM %s/%s has no VMI (virt-api: %s): it is not running; start it." % (namespace, target.name, said)
        return ("There is no VMI %s/%s (virt-api: %s): no such stand-alone VMI, or its VM is not running." % (
            namespace, target.name, said))
    if err.status == 404:
        return ("The API server has no subresources.kubevirt.io port-forward for %s (%s); check that KubeVirt is "
                "installed and the connection points at the right cluster." % (ref, said))
    if err.status == 409 and "not started" in said:
        return ("VM %s/%s is not running (virt-api: %s); start it, for example with virtops.kubevirt.vm_power." % (
            namespace, target.name, said))
    if err.status == 409 and "paused" in said:
        return "%s is paused (virt-api: %s); unpause it before connecting." % (ref, said)
    if err.status == 400 and "no network interfaces" in said:
        return ("%s has no network interface with an address yet (virt-api: %s); wait until it runs and reports "
                "its interfaces." % (ref, said))
    if "connection refused" in said:
        server = "the guest's SSH server" if port == SSH_PORT else "the guest's service"
        return "Nothing listens on port %d of %s (virt-api: %s); check that %s runs and listens on that port." % (
            port, ref, said, server)
    if "dialing VM" in said:
        return ("%s did not answer on port %d (virt-api: %s); it may be stopping, or a firewall in the guest drops "
                "the port." % (ref, port, said))
    return str(err).rstrip(".") + " (the port-forward to port %d of %s)." % (port, ref)


# -- the stream ---------------------------------------------------------------------------------
def open_forward(conn, target, namespace, port, timeout):
    """The websocket of the port-forward; KubevirtError with one sentence when refused or unreachable."""
    path = res.subresource_path(target.resource, namespace, target.name, "portforward/%d" % port)
    try:
        return open_websocket(conn, path, timeout, "port-forward to port %d" % port, target.ref(namespace),
                              multithread=True)
    except StreamRefused as exc:
        raise KubevirtError(refusal_message(exc.api_error, target, namespace, port))


def _keepalive(sock):
    """TCP keep-alive, so a connection that died silently ends the stream instead of hanging."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    except (OSError, AttributeError):
        pass


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def pump(ws, stdin_fd=0, stdout_fd=1):
    """stdin -> binary frames, binary frames -> stdout, until either ends; returns None or a sentence
    saying why the stream broke."""
    import websocket

    ws.settimeout(None)
    _keepalive(ws.sock)
    done = threading.Event()
    outcome = {}

    def upstream():
        try:
            while True:
                data = os.read(stdin_fd, CHUNK)
                if not data:
                    return
                ws.send(data, opcode=websocket.ABNF.OPCODE_BINARY)
        except (websocket.WebSocketException, OSError) as exc:
            outcome.setdefault("up", exc)
        finally:
            done.set()

    def downstream():
        try:
            while True:
                opcode, data = ws.recv_data()   # pings are answered inside
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    return
                if opcode == websocket.ABNF.OPCODE_BINARY and data:
                    _write_all(stdout_fd, data)
        except websocket.WebSocketConnectionClosedException:
            return   # virt-api closes the TCP connection without a close frame when the guest closes
        except (websocket.WebSocketException, OSError) as exc:
            outcome.setdefault("down", exc)
        finally:
            done.set()

    for fn in (upstream, downstream):
        threading.Thread(target=fn, daemon=True).start()
    done.wait()
    try:
        ws.close(timeout=1)
    except Exception:  # closing is best effort
        pass
    broken = outcome.get("down")
    if broken is not None and not isinstance(broken, BrokenPipeError):
        return one_line(broken, 200) or type(broken).__name__
    return None


def _discarded(stream):
    """Is STREAM /dev/null? ssh points a ProxyCommand's stderr there when ControlPersist is on
    (Ansible's default), so nothing written to it reaches the user."""
    try:
        here, null = os.fstat(stream.fileno()), os.stat(os.devnull)
    except (AttributeError, OSError, ValueError):
        return False
    return (here.st_rdev, here.st_ino) == (null.st_rdev, null.st_ino)


# How long a refusing proxy waits for ssh's own identification before it exits.
SSH_BANNER_WAIT = 5.0


def tell(sentence, stderr, stdout_fd, stdin_fd=0):
    """The sentence on stderr; when ssh discards that, also as the 'server's identification' on
    stdout, which ssh does print ("Bad remote protocol version identification: 'SSH-virtops: ...'",
    its first 100 characters)."""
    stderr.write(sentence + "\n")
    stderr.flush()
    if _discarded(stderr):
        os.write(stdout_fd, ("SSH-virtops: %s\r\n" % sentence).encode("utf-8", "replace"))
        await_ssh_identification(stdin_fd)


def await_ssh_identification(stdin_fd, timeout=SSH_BANNER_WAIT):
    """Read ssh's identification line (or until EOF, at most ``timeout`` seconds). ssh writes it first
    thing; a proxy that exits before taking it makes that write fail (EPIPE), and ssh then reports a
    broken pipe instead of printing our sentence."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([stdin_fd], [], [], remaining)[0]:
            return
        chunk = os.read(stdin_fd, 512)
        if not chunk or b"\n" in chunk:
            return


def run(argv, environ=None, stdin_fd=0, stdout_fd=1, stderr=None):
    """The whole command; returns the exit status. Errors are one line on ``stderr``."""
    stderr = stderr or sys.stderr
    environ = os.environ if environ is None else environ
    target = None
    try:
        params, target, port, namespace, timeout = parse_args(argv)
        conn = resolve_connection(params, environ)
        namespace = target.namespace or namespace or conn.namespace
        ws = open_forward(conn, target, namespace, port, timeout)
    except KubevirtError as exc:
        tell(one_line(exc, 1000), stderr, stdout_fd, stdin_fd)
        return 1
    broken = pump(ws, stdin_fd, stdout_fd)
    if broken:
        stderr.write("The port-forward to port %d of %s broke: %s.\n" % (
            port, target.ref(namespace), broken.rstrip(".")))
        return 1
    return 0


def main(argv=None):
    """Entry point: no traceback ever reaches ssh's stderr, signals end the process quietly."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: os._exit(128 + signum))
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except Exception as exc:  # the one sentence, never a traceback
        sys.stderr.write("virtops.kubevirt port-forward failed: %s: %s.\n" % (
            type(exc).__name__, one_line(exc, 300).rstrip(".")))
        return 1


# -- the ProxyCommand (pure) ----------------------------------------------------------------------
def proxy_argv(python, script, target, auth):
    """The ProxyCommand's argv for a host: connection options that are not secrets (an inventory's
    api_key or password stays out: the command line is visible in ps and in ssh's debug output)."""
    argv = [python, script]
    for option in PATH_OPTIONS + TEXT_OPTIONS:
        value = auth.get(option)
        if value and isinstance(value, str):
            if option == "proxy" and "@" in value:
                continue   # credentials in the proxy URL
            argv += ["--" + option.replace("_", "-"), value]
    if auth.get("validate_certs") is False:
        argv += ["--validate-certs", "false"]
    for group in auth.get("impersonate_groups") or []:
        argv += ["--impersonate-group", group]
    argv += ["%s/%s/%s" % (target.kind, target.name, target.namespace), "%p"]
    return argv


def ssh_args(argv):
    """``-o ProxyCommand=...`` for ansible_ssh_common_args: quoted for ssh's shell (``%%`` for a literal
    ``%``; ``%p`` stays ssh's port) and again for Ansible's shlex split of the variable."""
    words = [shlex.quote(a.replace("%", "%%")) if a != "%p" else a for a in argv]
    return "-o " + shlex.quote("ProxyCommand=" + " ".join(words))
