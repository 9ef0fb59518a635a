"""console: text cleaning, redaction, the expect/login engine against a scripted shell, RFB parsing
and handshakes, websocket details, and the module's checks (stopped VM, check mode, bad input)."""
import struct

import pytest

from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import console as con
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import guest
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.connection import Connection
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import KubevirtError
from ansible_collections.virtops.kubevirt.plugins.modules import console as console_module

from kvfakes import FakeClient, running_vmi
from modhelp import run_module

PW = "s3cret-Pa55"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class ShellStream:
    """A serial line with a getty and a shell: what the guest would print for what is typed."""

    def __init__(self, user="fedora", password=PW, state="login", banner=None, echo_password=False,
                 chunk=None, clock=None, silent_until_enter=False):
        self.user, self.password = user, password
        self.state = state
        self.out = []
        self.sent = []
        self.closed = False
        self.echo_password = echo_password
        self.chunk = chunk
        self.clock = clock
        self.silent = silent_until_enter
        self.line = ""
        self.pending_user = None
        if not silent_until_enter:
            self.out.append((banner or "") + "\r\n" + self.prompt())

    def prompt(self):
        return {"login": "web1 login: ", "password": "Password: "}.get(self.state, "[%s@web1 ~]$ " % self.user)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sent.append(data)
        for ch in data.decode():
            if ch == "\r":
                self.out.append("\r\n" + self.enter(self.line))
                self.line = ""
            else:
                self.line += ch
                if self.state != "password" or self.echo_password:
                    self.out.append(ch)

    def enter(self, line):
        self.silent = False
        if self.state == "login":
            if not line:
                return self.prompt()
            self.pending_user, self.state = line, "password"
            return self.prompt()
        if self.state == "password":
            if self.pending_user == self.user and line == self.password:
                self.state = "shell"
                return "Last login: today\r\n\x1b[1;32m" + self.prompt() + "\x1b[0m"
            self.state = "login"
            return "\r\nLogin incorrect\r\n" + self.prompt()
        if line == "hostname":
            return "web1\r\n" + self.prompt()
        if line == "exit":
            self.state = "login"
            return "logout\r\n\r\n" + self.prompt()
        if line == "leak":
            return "the password is %s\r\n" % self.password + self.prompt()
        if line == "ip -4 addr":
            return "2: eth0: <UP>\r\n    inet 10.0.2.2/24 brd + scope global eth0\r\n" + self.prompt()
        if line == "hang":
            return "working...\r\n"
        return "-bash: %s: command not found\r\n%s" % (line.split()[0] if line else "", self.prompt())

    def close(self):
        self.closed = True

    def recv(self, timeout):
        if self.out:
            data = "".join(self.out)
            self.out = []
            if self.chunk:
                self.out = [data[self.chunk:]] if data[self.chunk:] else []
                data = data[:self.chunk]
            return data.encode()
        if self.clock is not None:
            self.clock.now += timeout
        return b""


# -- pure text helpers --------------------------------------------------------------------------
@pytest.mark.parametrize("raw,clean", [
    ("a\r\nb\r\n", "a\nb\n"),
    ("\x1b[1;32mgreen\x1b[0m", "green"),
    ("\x1b]0;title\x07text", "text"),
    ("progress 10%\rprogress 100%\r\ndone", "progress 100%\ndone"),
    ("abc\b \bd", "abd"),
    ("bell\x07 and null\x00", "bell and null"),
])
def test_clean(raw, clean):
    assert con.clean(raw) == clean


@pytest.mark.parametrize("segment,line,out", [
    ("hostname\nweb1\n", "hostname", "web1"),
    ("web1\n", "hostname", "web1"),
    ("hostname", "hostname", ""),
    ("ls\na\nb\n", "ls", "a\nb"),
])
def test_command_output(segment, line, out):
    assert con.command_output(segment, line) == out


# -- the serial session -------------------------------------------------------------------------
def session(stream, **kw):
    clock = stream.clock or Clock()
    return con.serial_session(stream, "VMI demo/web1", clock=clock, **kw)


def test_login_send_expect_and_transcript_without_password():
    stream = ShellStream(banner="Fedora Linux 41\r\nKernel 6.11 on x86_64")
    result = session(stream, login={"user": "fedora", "password": PW}, send=["hostname", "ip -4 addr"],
                     expect=r"inet (?P<ip>[0-9.]+)/")
    assert result["logged_in"] is True
    assert result["outputs"][0] == {"line": "hostname", "output": "web1"}
    assert "inet 10.0.2.2/24" in result["outputs"][1]["output"]
    assert result["matched"] == "inet 10.0.2.2/"
    assert result["named_groups"] == {"ip": "10.0.2.2"}
    assert result["groups"] == ["10.0.2.2"]
    assert PW not in result["transcript"]
    assert "\x1b" not in result["transcript"] and "\r" not in result["transcript"]
    assert "[fedora@web1 ~]$ hostname\nweb1\n" in result["transcript"]
    # logout by default after logging in
    assert stream.sent[-1] == b"exit\r"
    assert stream.state == "login"


def test_password_redacted_even_when_echoed_or_printed():
    stream = ShellStream(echo_password=True)
    result = session(stream, login={"user": "fedora", "password": PW}, send=["leak"], logout=False)
    assert PW not in result["transcript"]
    assert PW not in str(result["outputs"])
    assert "the password is ********" in result["outputs"][0]["output"]
    assert stream.state == "shell"  # logout: false keeps the shell


def test_output_split_in_tiny_chunks():
    stream = ShellStream(chunk=3)
    result = session(stream, login={"user": "fedora", "password": PW}, send=["hostname"])
    assert result["outputs"][0]["output"] == "web1"


def test_already_logged_in_types_no_credentials():
    stream = ShellStream(state="shell")
    result = session(stream, login={"user": "fedora", "password": PW}, send=["hostname"], logout=False)
    assert result["outputs"][0]["output"] == "web1"
    assert stream.sent == [b"hostname\r"]


def test_left_at_password_prompt_recovers():
    stream = ShellStream(state="password")
    result = session(stream, login={"user": "fedora", "password": PW}, send=["hostname"])
    assert result["outputs"][0]["output"] == "web1"
    assert stream.sent[0] == b"\r"


def test_silent_console_is_woken_with_enter():
    clock = Clock()
    stream = ShellStream(silent_until_enter=True, clock=clock)
    result = session(stream, login={"user": "fedora", "password": PW}, send=["hostname"])
    assert stream.sent[0] == b"\r"
    assert result["outputs"][0]["output"] == "web1"


def test_wrong_password_is_one_clear_sentence():
    stream = ShellStream()
    with pytest.raises(con.ConsoleError) as err:
        session(stream, login={"user": "fedora", "password": "wrong"}, send=["hostname"])
    assert "Login as fedora on the serial console of VMI demo/web1 failed" in str(err.value)
    assert "check login.user and login.password" in str(err.value)


def test_send_at_login_prompt_without_login_fails():
    with pytest.raises(con.ConsoleError, match="shows a login prompt; give login"):
        session(ShellStream(), send=["hostname"])


def test_expect_timeout_names_pattern_and_last_output():
    clock = Clock()
    stream = ShellStream(state="shell", clock=clock)
    with pytest.raises(con.ConsoleTimeout) as err:
        session(stream, send=["hostname"], expect="never-printed", timeout=5)
    text = str(err.value)
    assert "/never-printed/" in text and "VMI demo/web1" in text and "timed out after 5s" in text


def test_prompt_timeout_after_a_line_that_never_returns():
    clock = Clock()
    stream = ShellStream(state="shell", clock=clock)
    with pytest.raises(con.ConsoleTimeout, match="the shell prompt after 'hang'.*working"):
        session(stream, send=["hang"], timeout=3)


def test_expect_alone_searches_everything_printed():
    stream = ShellStream(banner="Fedora Linux 41 (Lab)")
    result = session(stream, expect=r"Fedora Linux (\d+)")
    assert result["groups"] == ["41"]
    assert result["logged_in"] is False
    assert stream.sent == []


def test_expect_alone_on_a_quiet_line_presses_enter_once():
    clock = Clock()
    stream = ShellStream(silent_until_enter=True, clock=clock)
    result = session(stream, expect=r"web1 login: ?$")
    assert stream.sent == [b"\r"]
    assert result["matched"].startswith("web1 login:")
    assert result["logged_in"] is False


def test_read_only_without_expect_returns_the_screen():
    stream = ShellStream(banner="hello")
    result = session(stream)
    assert "hello" in result["transcript"] and "web1 login:" in result["transcript"]
    assert stream.sent == []


def test_custom_prompt():
    stream = ShellStream(state="shell", user="root")
    result = session(stream, send=["hostname"], prompt=r"root@web1 ~\]\$ $", logout=False)
    assert result["outputs"][0]["output"] == "web1"


# -- RFB ----------------------------------------------------------------------------------------
class RfbStream:
    """A scripted VNC server: answers as soon as the client sent what it waits for."""

    def __init__(self, version=b"RFB 003.008\n", sectypes=(1,), result=0, name=b"demo_web1", width=1280,
                 height=800, chunk=None, reason=b"too many connections"):
        self.version, self.sectypes, self.result = version, list(sectypes), result
        self.name, self.width, self.height = name, width, height
        self.chunk = chunk
        self.reason = reason
        self.sent = []
        self.buf = version
        self.closed = False
        self.stage = 0

    def send(self, data):
        self.sent.append(data)
        if self.stage == 0:
            self.stage = 1
            if data == b"RFB 003.003\n":
                self.buf += struct.pack(">I", self.sectypes[0] if self.sectypes else 0)
                if not self.sectypes:
                    self.buf += struct.pack(">I", len(self.reason)) + self.reason
                self.stage = 2
            else:
                self.buf += struct.pack(">B", len(self.sectypes)) + bytes(self.sectypes)
                if not self.sectypes:
                    self.buf += struct.pack(">I", len(self.reason)) + self.reason
        elif self.stage == 1:
            self.stage = 2
            if data != b"\x01":
                raise AssertionError("client chose %r" % data)
            if self.sent[0] == b"RFB 003.008\n":
                self.buf += struct.pack(">I", self.result)
                if self.result:
                    self.buf += struct.pack(">I", len(self.reason)) + self.reason
        elif self.stage == 2:
            self.stage = 3
            pixel = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
            self.buf += struct.pack(">HH", self.width, self.height) + pixel + struct.pack(">I", len(self.name)) + \
                self.name

    def close(self):
        self.closed = True

    def recv(self, timeout):
        size = self.chunk or len(self.buf)
        out, self.buf = self.buf[:size], self.buf[size:]
        if not out:
            self.closed = True
        return out


def test_parse_version_and_client_version():
    assert con.parse_version(b"RFB 003.008\n") == (3, 8)
    assert con.client_version((3, 8)) == (3, 8)
    assert con.client_version((3, 889)) == (3, 8)
    assert con.client_version((4, 1)) == (3, 8)
    assert con.client_version((3, 7)) == (3, 7)
    assert con.client_version((3, 5)) == (3, 3)
    with pytest.raises(con.RfbError, match="did not send an RFB ProtocolVersion"):
        con.parse_version(b"HTTP/1.1 200")


def test_parse_server_init():
    pixel = struct.pack(">BBBBHHHBBB3x", 16, 16, 1, 1, 31, 63, 31, 11, 5, 0)
    info = con.parse_server_init(struct.pack(">HH", 640, 480) + pixel + struct.pack(">I", 4) + b"win1")
    assert info["width"] == 640 and info["height"] == 480 and info["name"] == "win1"
    assert info["pixel_format"]["bits_per_pixel"] == 16 and info["pixel_format"]["big_endian"] is True
    with pytest.raises(con.RfbError, match="too short"):
        con.parse_server_init(b"\x00" * 10)
    with pytest.raises(con.RfbError, match="truncated"):
        con.parse_server_init(struct.pack(">HH", 1, 1) + pixel + struct.pack(">I", 10) + b"abc")


@pytest.mark.parametrize("chunk", [None, 1, 5])
def test_handshake_38(chunk):
    stream = RfbStream(chunk=chunk)
    info = con.rfb_handshake(stream, timeout=5, clock=Clock())
    assert (info["width"], info["height"], info["name"]) == (1280, 800, "demo_web1")
    assert info["protocol_version"] == "3.8" and info["security_types"] == ["None"]
    assert stream.sent == [b"RFB 003.008\n", b"\x01", b"\x01"]


def test_handshake_33_and_37():
    info = con.rfb_handshake(RfbStream(version=b"RFB 003.003\n"), clock=Clock())
    assert info["protocol_version"] == "3.3" and info["server_version"] == "3.3"
    stream = RfbStream(version=b"RFB 003.007\n")
    info = con.rfb_handshake(stream, clock=Clock())
    assert info["protocol_version"] == "3.7"
    assert stream.sent == [b"RFB 003.007\n", b"\x01", b"\x01"]


def test_handshake_failures():
    with pytest.raises(con.RfbError, match="asks for authentication \\(VNC Authentication, VeNCrypt\\)"):
        con.rfb_handshake(RfbStream(sectypes=(2, 19)), clock=Clock())
    with pytest.raises(con.RfbError, match="refused the connection: too many connections"):
        con.rfb_handshake(RfbStream(sectypes=()), clock=Clock())
    with pytest.raises(con.RfbError, match="rejected security type None: too many connections"):
        con.rfb_handshake(RfbStream(result=1), clock=Clock())


def test_handshake_failures_name_the_vmi():
    """Every RFB failure says whose display it is (the module passes 'VMI ns/name')."""
    ref = "VMI demo/web1"
    with pytest.raises(con.RfbError) as err:
        con.rfb_handshake(RfbStream(sectypes=(2,)), clock=Clock(), ref=ref)
    assert str(err.value).startswith("The VNC server of VMI demo/web1 asks for authentication (VNC Authentication)")
    with pytest.raises(con.RfbError, match="^The VNC server of VMI demo/web1 refused the connection"):
        con.rfb_handshake(RfbStream(sectypes=()), clock=Clock(), ref=ref)
    with pytest.raises(con.RfbError, match="^The VNC server of VMI demo/web1 did not send an RFB ProtocolVersion"):
        con.parse_version(b"HTTP/1.1 200", ref)
    with pytest.raises(con.RfbError, match="^The VNC ServerInit message of VMI demo/web1 is too short"):
        con.parse_server_init(b"\x00" * 10, ref)


def test_stream_send_failure_names_the_console():
    import websocket

    class Gone:
        def send(self, data, opcode=None):
            raise websocket.WebSocketConnectionClosedException("socket is already closed.")

    stream = con.Stream(Gone(), "wss://api/x", "the serial console of VMI demo/web1")
    with pytest.raises(con.ConsoleError) as err:
        stream.send("uptime")
    assert str(err.value) == ("The connection to the serial console of VMI demo/web1 closed while sending: "
                              "socket is already closed.")
    assert stream.closed


def test_handshake_closed_midway():
    class Closing(RfbStream):
        def send(self, data):
            self.sent.append(data)

    with pytest.raises(con.RfbError, match="stopped while reading the number of security types: the connection"):
        con.rfb_handshake(Closing(), clock=Clock())
    with pytest.raises(con.RfbError, match="^The VNC handshake of VMI demo/web1 stopped while reading"):
        con.rfb_handshake(Closing(), clock=Clock(), ref="VMI demo/web1")


# -- websocket details --------------------------------------------------------------------------
def test_websocket_url_and_headers():
    assert con.websocket_url("https://api:6443/", "demo", "web1", "vnc") == \
        "wss://api:6443/apis/subresources.kubevirt.io/v1/namespaces/demo/virtualmachineinstances/web1/vnc"
    assert con.websocket_url("http://127.0.0.1:8001", "d", "w", "console").startswith("ws://127.0.0.1:8001/apis/")
    conn = Connection()
    conn.token = "tok"
    conn.impersonate_user = "alice"
    conn.impersonate_groups = ["g1", "g2"]
    headers = con.handshake_headers(conn)
    assert "Authorization: Bearer tok" in headers
    assert "Impersonate-User: alice" in headers
    assert headers.count("Impersonate-Group: g1") == 1 and "Impersonate-Group: g2" in headers


def test_proxy_options():
    conn = Connection()
    conn.host = "https://api.example.com:6443"
    conn.proxy = "http://user:pw@proxy.example.com:3128"
    assert con._proxy_options(conn) == {"http_proxy_host": "proxy.example.com", "http_proxy_port": 3128,
                                        "proxy_type": "http", "http_proxy_auth": ("user", "pw")}
    conn.no_proxy = ".example.com"
    assert con._proxy_options(conn) == {}


def test_handshake_error_messages():
    body = b'{"kind":"Status","status":"Failure","message":"Unable to connect to VirtualMachineInstance because ' \
           b'phase is Scheduling instead of Running","reason":"BadRequest","code":400}'
    text = con.handshake_error_message(400, body, "open the serial console of", "VMI demo/web1", "wss://x")
    assert text.startswith("Could not open the serial console of VMI demo/web1: Unable to connect")
    assert text.endswith("start it with virtops.kubevirt.vm_power.")
    body = b'{"kind":"Status","message":"virtualmachineinstances.subresources.kubevirt.io \\"web1\\" is forbidden",' \
           b'"reason":"Forbidden","code":403}'
    text = con.handshake_error_message(403, body, "open the VNC display of", "VMI demo/web1", "wss://x")
    assert "is forbidden" in text and "grant that permission" in text


# -- running VMI checks (shared with guest_info) ------------------------------------------------
def vm_obj(name, ns="demo", strategy="Always", status="Running"):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"runStrategy": strategy, "template": {"spec": {}}},
            "status": {"printableStatus": status}}


def test_running_vmi_messages():
    client = FakeClient(controller=False)
    client.put(vm_obj("off", strategy="Halted", status="Stopped"))
    with pytest.raises(guest.NotRunning) as err:
        guest.running_vmi(client, "demo", "off")
    assert str(err.value) == "VM demo/off is not running; start it with virtops.kubevirt.vm_power."
    with pytest.raises(guest.NotRunning) as err:
        guest.running_vmi(client, "demo", "x")
    assert str(err.value) == ("Neither a VirtualMachine nor a VirtualMachineInstance demo/x exists; check name and "
                              "namespace.")
    client.put(running_vmi("boot", "demo", phase="Scheduling", ready=False))
    with pytest.raises(guest.NotRunning, match="VMI demo/boot is not running yet .*wait for it"):
        guest.running_vmi(client, "demo", "boot")
    client.put(running_vmi("done", "demo", phase="Succeeded", ready=False))
    with pytest.raises(guest.NotRunning, match="VMI demo/done has stopped \\(phase Succeeded\\)"):
        guest.running_vmi(client, "demo", "done")
    client.put(running_vmi("web1", "demo"))
    assert guest.running_vmi(client, "demo", "web1")["metadata"]["name"] == "web1"
    paused = running_vmi("zz", "demo")
    paused["status"]["conditions"].append({"type": "Paused", "status": "True", "reason": "PausedByUser"})
    client.put(paused)
    with pytest.raises(guest.NotRunning, match="VMI demo/zz is paused, so its guest can't answer; unpause it"):
        guest.running_vmi(client, "demo", "zz")


# -- the module ---------------------------------------------------------------------------------
@pytest.fixture
def client():
    c = FakeClient(controller=False)
    c.put(vm_obj("web1"))
    c.put(running_vmi("web1", "demo"))
    c.put(vm_obj("off", strategy="Halted", status="Stopped"))
    return c


def test_module_stopped_vm(client, monkeypatch, capsys):
    out = run_module(console_module, {"name": "off", "namespace": "demo"}, client, monkeypatch, capsys)
    assert out["failed"] and out["msg"] == "VM demo/off is not running; start it with virtops.kubevirt.vm_power."


def test_module_check_mode_with_send_opens_nothing(client, monkeypatch, capsys):
    def boom(*a, **k):
        raise AssertionError("the console was opened in check mode")

    monkeypatch.setattr(con, "open_stream", boom)
    out = run_module(console_module, {"name": "web1", "namespace": "demo", "send": ["reboot"],
                                      "login": {"user": "u", "password": PW}}, client, monkeypatch, capsys,
                     check_mode=True)
    assert out["changed"] is False and "Check mode" in out["msg"] and "not opened" in out["msg"]
    assert PW not in str(out)


def test_module_serial_through_a_fake_stream(client, monkeypatch, capsys):
    opened = []

    def fake_open(client_, namespace, name, verb, timeout=30.0, what=None):
        opened.append((namespace, name, verb))
        return ShellStream()

    monkeypatch.setattr(con, "open_stream", fake_open)
    out = run_module(console_module, {"name": "web1", "namespace": "demo", "send": ["hostname"],
                                      "login": {"user": "fedora", "password": PW}}, client, monkeypatch, capsys)
    assert opened == [("demo", "web1", "console")]
    assert out["changed"] is False and out["outputs"][0]["output"] == "web1"
    assert out["virtctl"] == "virtctl console web1 -n demo"
    assert out["websocket_url"].endswith("/namespaces/demo/virtualmachineinstances/web1/console")
    assert PW not in str(out)


def test_module_vnc_through_a_fake_stream(client, monkeypatch, capsys):
    monkeypatch.setattr(con, "open_stream", lambda *a, **k: RfbStream())
    out = run_module(console_module, {"name": "web1", "namespace": "demo", "type": "vnc"}, client, monkeypatch,
                     capsys)
    assert out["vnc"]["width"] == 1280 and out["virtctl"] == "virtctl vnc web1 -n demo"
    assert "--proxy-only" in out["virtctl_proxy"]


@pytest.mark.parametrize("args,msg", [
    ({"type": "vnc", "send": ["x"]}, "send is used only with type: serial"),
    ({"expect": "(unclosed"}, "expect '(unclosed' is not a valid regular expression"),
    ({"timeout": 0}, "timeout must be a positive number"),
    ({"name": "Web_1"}, "name 'Web_1' is invalid"),
])
def test_module_bad_input(client, monkeypatch, capsys, args, msg):
    out = run_module(console_module, dict({"name": "web1", "namespace": "demo"}, **args), client, monkeypatch,
                     capsys)
    assert out["failed"] and msg in out["msg"]


def test_rdp_details_with_nodeport_service(client, monkeypatch, capsys):
    vmi = client.get(res.VMI, "web1", "demo")
    vmi["metadata"]["labels"] = {"kubevirt.io/domain": "web1"}
    vmi["status"]["guestOSInfo"] = {"id": "mswindows", "name": "Microsoft Windows Server 2022"}
    client.put(vmi)
    client.put({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web1-rdp", "namespace": "demo"},
                "spec": {"type": "NodePort", "selector": {"kubevirt.io/domain": "web1"},
                         "ports": [{"port": 3389, "targetPort": 3389, "nodePort": 31389}]}})
    out = run_module(console_module, {"name": "web1", "namespace": "demo", "type": "rdp"}, client, monkeypatch,
                     capsys)
    rdp = out["rdp"]
    assert rdp["port"] == 31389 and rdp["host"] == "node01" and rdp["source"] == "service:demo/web1-rdp"
    assert rdp["windows"] is True and rdp["hints"] == []
    assert rdp["port_forward"] == "virtctl port-forward vmi/web1.demo 3389:3389"


def test_module_errors_are_not_tracebacks(client, monkeypatch, capsys):
    def refuse(*a, **k):
        raise KubevirtError("Could not open the serial console of VMI demo/web1: forbidden.")

    monkeypatch.setattr(con, "open_stream", refuse)
    out = run_module(console_module, {"name": "web1", "namespace": "demo", "expect": "x"}, client, monkeypatch,
                     capsys)
    assert out["failed"] and out["msg"].startswith("Could not open the serial console")


# -- VNC screenshot -------------------------------------------------------------------------------
def png_bytes(width=4, height=3):
    """A whole RGB PNG of a grey picture, built here as any encoder would."""
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * (3 * width) for dummy in range(height))
    return (con.PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_png_size_reads_ihdr():
    assert con.png_size(png_bytes(320, 200)) == (320, 200)


@pytest.mark.parametrize("data,words", [
    (b"<html>gateway error</html>", "is not a PNG image (it starts with b'<html>gateway e"),
    (b"", "is not a PNG image (it starts with b'')"),
    (png_bytes()[:8] + b"\x00\x00\x00\x0dIDAT" + png_bytes()[16:], "its first chunk is not a 13-byte IHDR"),
    (png_bytes()[:20] + b"\x07" + png_bytes()[21:], "the CRC of its IHDR chunk is wrong"),
    (png_bytes()[:-12], "is a truncated PNG image"),
    (png_bytes(0, 0), "is an empty PNG image (0x0)"),
])
def test_png_size_refuses_what_is_not_a_whole_png(data, words):
    with pytest.raises(con.NotPng) as err:
        con.png_size(data, "The answer")
    assert words in str(err.value) and str(err.value).startswith("The answer ")
    assert str(err.value).count(". ") == 0, "one sentence"


def answering(client, answer):
    """client.subresource_bytes answers ``answer`` (bytes, content type) or raises it; calls are kept."""
    calls = []

    def subresource_bytes(path, query=None):
        calls.append((path, query))
        if isinstance(answer, Exception):
            raise answer
        return answer

    client.subresource_bytes = subresource_bytes
    return calls


def test_screenshot_gets_the_subresource_without_moving_the_cursor(client):
    calls = answering(client, (png_bytes(8, 6), "image/png"))
    data, width, height = con.screenshot(client, "demo", "web1")
    assert (width, height) == (8, 6) and data == png_bytes(8, 6)
    assert calls == [("/apis/subresources.kubevirt.io/v1/namespaces/demo/virtualmachineinstances/web1/vnc/screenshot",
                      {"moveCursor": False})]


def test_screenshot_forbidden_names_the_permission_the_api_server_checks(client):
    from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError

    body = {"kind": "Status", "reason": "Forbidden", "code": 403, "message": (
        'virtualmachineinstances.subresources.kubevirt.io "web1" is forbidden: User "bob" cannot get resource '
        '"virtualmachineinstances/vnc" in API group "subresources.kubevirt.io" in the namespace "demo"')}
    answering(client, ApiError(403, "GET", "https://x/vnc/screenshot", body))
    with pytest.raises(con.ConsoleError) as err:
        con.screenshot(client, "demo", "web1")
    text = str(err.value)
    assert text.startswith("Could not take a VNC screenshot of VMI demo/web1: ")
    assert text.endswith("; grant get on virtualmachineinstances/vnc in the subresources.kubevirt.io API group "
                         "(see docs/rbac.md).")
    assert "grant that permission" not in text and text.count("; grant") == 1


def test_screenshot_of_a_vmi_that_stopped_meanwhile(client):
    from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError

    body = {"kind": "Status", "reason": "BadRequest", "code": 400,
            "message": "Unable to connect to VirtualMachineInstance because phase is Succeeded instead of Running"}
    answering(client, ApiError(400, "GET", "https://x/vnc/screenshot", body))
    with pytest.raises(con.ConsoleError) as err:
        con.screenshot(client, "demo", "web1")
    assert str(err.value) == ("Could not take a VNC screenshot of VMI demo/web1: Unable to connect to "
                              "VirtualMachineInstance because phase is Succeeded instead of Running; start it with "
                              "virtops.kubevirt.vm_power.")


def test_screenshot_that_is_not_a_png_names_what_came(client):
    answering(client, (b'{"kind": "Status"}', "application/json"))
    with pytest.raises(con.NotPng) as err:
        con.screenshot(client, "demo", "web1")
    assert str(err.value).startswith("virt-api's VNC screenshot of VMI demo/web1 (application/json, 18 bytes) is not "
                                     "a PNG image")


def test_save_screenshot_is_atomic_and_idempotent(tmp_path):
    from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows import console as wf

    path = tmp_path / "shot.png"
    first = png_bytes(4, 3)
    summary, changed = wf.save_screenshot(str(path), first, 4, 3, check_mode=True)
    assert changed is True and not path.exists(), "check mode writes nothing"
    summary, changed = wf.save_screenshot(str(path), first, 4, 3, check_mode=False)
    assert changed is True and path.read_bytes() == first
    assert (path.stat().st_mode & 0o777) == 0o644
    import hashlib
    assert summary == {"path": str(path), "width": 4, "height": 3, "bytes": len(first),
                       "sha256": hashlib.sha256(first).hexdigest()}
    inode = path.stat().st_ino
    assert wf.save_screenshot(str(path), first, 4, 3, check_mode=False)[1] is False
    assert path.stat().st_ino == inode, "the same image is not written again"
    assert wf.save_screenshot(str(path), first, 4, 3, check_mode=True)[1] is False
    second = png_bytes(5, 3)
    assert wf.save_screenshot(str(path), second, 5, 3, check_mode=True)[1] is True
    assert path.read_bytes() == first, "check mode leaves the old image"
    path.chmod(0o600)
    assert wf.save_screenshot(str(path), second, 5, 3, check_mode=False)[1] is True
    assert path.read_bytes() == second and path.stat().st_ino != inode, "a new file renamed over the old one"
    assert (path.stat().st_mode & 0o777) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.png"], "no temporary file left behind"


@pytest.mark.parametrize("args,msg", [
    ({"screenshot": "/tmp/x.png"}, "screenshot is used only with type: vnc (type is serial)."),
    ({"type": "rdp", "screenshot": "/tmp/x.png"}, "screenshot is used only with type: vnc (type is rdp)."),
    ({"type": "vnc", "screenshot": "{tmp}/missing/x.png"},
     "screenshot {tmp}/missing/x.png can't be written: the directory {tmp}/missing does not exist; create it first."),
    ({"type": "vnc", "screenshot": "{tmp}"}, "screenshot {tmp} is a directory; give the path of a file in it."),
])
def test_module_screenshot_bad_input_reads_nothing(client, monkeypatch, capsys, tmp_path, args, msg):
    args = {k: v.format(tmp=tmp_path) for k, v in args.items()}
    calls = answering(client, AssertionError("nothing may be read"))
    out = run_module(console_module, dict({"name": "web1", "namespace": "demo"}, **args), client, monkeypatch, capsys)
    assert out["failed"] and out["msg"] == msg.format(tmp=tmp_path)
    assert client.calls == [] and calls == [], "checked before anything was read"


def test_module_screenshot_writes_once_and_check_mode_writes_nothing(client, monkeypatch, capsys, tmp_path):
    def no_websocket(*a, **k):
        raise AssertionError("a screenshot needs no VNC websocket")

    monkeypatch.setattr(con, "open_stream", no_websocket)
    answering(client, (png_bytes(8, 6), "image/png"))
    path = tmp_path / "web1.png"
    args = {"name": "web1", "namespace": "demo", "type": "vnc", "screenshot": str(path)}
    out = run_module(console_module, args, client, monkeypatch, capsys, check_mode=True)
    assert out["changed"] is True and not path.exists()
    assert out["msg"] == "Check mode: the screenshot of VMI demo/web1 would be written to %s." % path
    out = run_module(console_module, args, client, monkeypatch, capsys)
    assert out["changed"] is True and path.read_bytes() == png_bytes(8, 6)
    shot = out["screenshot"]
    assert (shot["width"], shot["height"], shot["path"]) == (8, 6, str(path))
    assert "vnc" not in out and out["virtctl"] == "virtctl vnc web1 -n demo"
    out = run_module(console_module, args, client, monkeypatch, capsys)
    assert out["changed"] is False and "msg" not in out


def test_module_screenshot_of_a_stopped_vm(client, monkeypatch, capsys, tmp_path):
    calls = answering(client, AssertionError("a stopped VM has no screen to read"))
    out = run_module(console_module, {"name": "off", "namespace": "demo", "type": "vnc",
                                      "screenshot": str(tmp_path / "off.png")}, client, monkeypatch, capsys)
    assert out["failed"] and out["msg"] == "VM demo/off is not running; start it with virtops.kubevirt.vm_power."
    assert calls == [] and not (tmp_path / "off.png").exists()


def test_module_screenshot_that_is_not_a_png_writes_nothing(client, monkeypatch, capsys, tmp_path):
    answering(client, (b"<html>oops</html>", "text/html; charset=utf-8"))
    path = tmp_path / "web1.png"
    out = run_module(console_module, {"name": "web1", "namespace": "demo", "type": "vnc", "screenshot": str(path)},
                     client, monkeypatch, capsys)
    assert out["failed"] and out["msg"].startswith("virt-api's VNC screenshot of VMI demo/web1 (text/html, 17 bytes) "
                                                   "is not a PNG image")
    assert not path.exists()
