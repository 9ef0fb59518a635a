# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The serial console and the VNC display of a VMI, over virt-api's websockets.

Websockets
    ``open_websocket()`` is the one way a virt-api websocket is opened (here and by portforward.py):
    the ``websocket-client`` package with the Connection's TLS context (CA, client certificate,
    verification), ``Authorization`` and impersonation headers, and its proxy. Subprotocol
    ``plain.kubevirt.io``: raw bytes in binary frames both ways. ``open_stream()`` opens
    ``.../virtualmachineinstances/NAME/console`` or ``/vnc`` with it.

Serial console
    ``Console`` keeps everything the guest printed (line endings normalised, terminal escape
    sequences removed), waits for regular expressions with a timeout (``expect``), logs in when it
    sees a login prompt, sends lines and cuts the output of each. Secrets are redacted from the
    transcript whatever the guest echoes.

VNC
    ``rfb_handshake()`` runs the RFB 3.3/3.7/3.8 handshake up to ServerInit (version exchange,
    security type None, ClientInit) and returns the display's width, height and name. The parsers
    are pure functions.

VNC screenshot
    ``screenshot()`` GETs virt-api's ``vnc/screenshot`` subresource (a plain HTTPS request, no
    websocket) and checks that the answer is a whole PNG (``png_size``).
"""

from __future__ import annotations

import codecs
import re
import socket
import struct
import time
import zlib
from urllib.parse import urlsplit

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    ApiError,
    ConnectError,
    KubevirtError,
    describe,
    hint_for,
    one_line,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import mask

SUBPROTOCOL = "plain.kubevirt.io"

LOGIN_RE = r"(?im)^[^\n]*\blog ?in: ?\Z"
PASSWORD_RE = r"(?i)password(?: for [^\n:]*)?: ?\Z"
PROMPT_RE = r"(?m)^[^\n]*?[$#>%] ?\Z"
LOGIN_FAILED_RE = r"(?i)login incorrect|authentication failure|permission denied"

_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78cDEHM]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class ConsoleError(KubevirtError):
    """The console could not be opened or did not answer as expected."""


class ConsoleTimeout(ConsoleError):
    """An expected pattern did not appear in time."""


# -- websockets ----------------------------------------------------------------------------------
def stream_url(host, path):
    """wss://HOST/PATH (ws:// for a plain-HTTP host)."""
    base = host.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://"):]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://"):]
    return base + path


def websocket_url(host, namespace, name, verb):
    """wss://HOST/apis/subresources.kubevirt.io/v1/namespaces/NS/virtualmachineinstances/NAME/VERB."""
    return stream_url(host, res.subresource_path(res.VMI, namespace, name, verb))


def handshake_headers(conn):
    """The HTTP headers of the websocket upgrade: auth and impersonation, as the REST calls send."""
    headers = []
    for key, value in conn.headers().items():
        if key.lower() in ("accept",):
            continue
        headers.append("%s: %s" % (key, value))
    for group in conn.impersonate_groups or []:
        headers.append("Impersonate-Group: %s" % group)
    return headers


def _proxy_options(conn):
    from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.connection import host_matches_no_proxy

    if not conn.proxy or host_matches_no_proxy(conn.host, conn.no_proxy):
        return {}
    parts = urlsplit(conn.proxy if "://" in conn.proxy else "http://" + conn.proxy)
    options = {"http_proxy_host": parts.hostname, "http_proxy_port": parts.port or 3128,
               "proxy_type": "http"}
    auth = (conn.proxy_headers or {}).get("proxy_basic_auth")
    if auth and ":" in auth:
        options["http_proxy_auth"] = tuple(auth.split(":", 1))
    elif parts.username:
        options["http_proxy_auth"] = (parts.username, parts.password or "")
    return options


class StreamRefused(ConsoleError):
    """The API server or virt-api answered the websocket upgrade with an HTTP error; ``api_error`` is
    that answer as an ApiError, for callers that word it their own way."""

    def __init__(self, msg, api_error):
        super().__init__(msg)
        self.api_error = api_error


def open_websocket(conn, path, timeout, what, ref, multithread=False):
    """The one way a websocket to the API server is opened: ``conn``'s TLS context (CA, client
    certificate, verification), auth and impersonation headers and proxy; subprotocol
    plain.kubevirt.io. ``path`` is a subresource path; ``what``/``ref`` ("serial console", "VMI ns/name")
    make the sentences. A refused upgrade raises StreamRefused, every other failure one sentence."""
    try:
        import websocket
    except ImportError:
        raise ConsoleError("The websocket-client Python package is required for the %s; "
                           "install it (pip install websocket-client)." % what)
    from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.connection import ssl_context

    url = stream_url(conn.host, path)
    sslopt = {}
    ctx = ssl_context(conn)
    if ctx is not None:
        sslopt["context"] = ctx
        if conn.tls_server_name:
            sslopt["server_hostname"] = conn.tls_server_name
    try:
        return websocket.create_connection(url, timeout=timeout, subprotocols=[SUBPROTOCOL],
                                           header=handshake_headers(conn), sslopt=sslopt,
                                           enable_multithread=multithread, **_proxy_options(conn))
    except websocket.WebSocketBadStatusException as exc:
        body = getattr(exc, "resp_body", None)
        raise StreamRefused(handshake_error_message(exc.status_code, body, "open the %s of" % what, ref, url),
                            handshake_api_error(exc.status_code, body, url))
    except websocket.WebSocketTimeoutException:
        raise ConsoleError("Could not open the %s of %s: no answer within %ds from %s." % (
            what, ref, timeout, conn.host))
    except Exception as exc:  # ssl.SSLError, OSError, WebSocketException...
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            raise ConnectError("TLS verification of the API server %s failed while opening the %s of %s (%s); check "
                               "ca_cert." % (conn.host, what, ref, one_line(text, 200)))
        if isinstance(exc, (TimeoutError, socket.timeout)):
            raise ConsoleError("Could not open the %s of %s: no answer within %ds from %s." % (
                what, ref, timeout, conn.host))
        raise ConsoleError("Could not open the %s of %s at %s: %s." % (what, ref, conn.host, one_line(text, 300)))


def open_stream(client, namespace, name, verb, timeout=30.0, what=None):
    """Open the ``verb`` (console|vnc) websocket of a VMI; returns a Stream."""
    what = what or ("serial console" if verb == "console" else "VNC display")
    ref = "VMI %s/%s" % (namespace, name)
    path = res.subresource_path(res.VMI, namespace, name, verb)
    ws = open_websocket(client.conn, path, timeout, what, ref)
    return Stream(ws, stream_url(client.conn.host, path), "the %s of %s" % (what, ref))


def handshake_api_error(status, body, url):
    """The HTTP answer to a websocket upgrade as an ApiError (a metav1.Status body decoded)."""
    import json

    decoded = body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = body.strip()
    return ApiError(status, "GET", url, decoded)


def handshake_error_message(status, body, action, ref, url):
    """An upgrade refused by the API server or virt-api -> one sentence (pure)."""
    return _described(handshake_api_error(status, body, url), action, ref)


def _described(err, action, ref):
    """describe(), plus what to do when virt-api says the VMI stopped running meanwhile (pure)."""
    text = describe(err, action, ref)
    if err.status == 400 and "instead of Running" in (err.api_message or ""):
        text = text[:-1] + "; start it with virtops.kubevirt.vm_power."
    return text


class Stream:
    """Bytes over a websocket: ``recv(timeout)`` returns b"" when nothing came in time."""

    def __init__(self, ws, url, what="the console"):
        self.ws = ws
        self.url = url
        self.what = what  # "the serial console of VMI ns/name", for messages
        self.closed = False

    def send(self, data):
        import websocket

        if isinstance(data, str):
            data = data.encode("utf-8")
        try:
            self.ws.send(data, opcode=websocket.ABNF.OPCODE_BINARY)
        except (websocket.WebSocketException, OSError) as exc:
            self.closed = True
            raise ConsoleError("The connection to %s closed while sending: %s." % (
                self.what, one_line(exc, 200).rstrip(".")))

    def recv(self, timeout):
        import websocket

        if self.closed:
            return b""
        self.ws.settimeout(max(0.01, timeout))
        try:
            data = self.ws.recv()
        except websocket.WebSocketTimeoutException:
            return b""
        except (websocket.WebSocketConnectionClosedException, OSError):
            self.closed = True
            return b""
        if data is None or data == "" or data == b"":
            # A close frame (or an empty frame): treat an empty read as closed only on close.
            if not self.ws.connected:
                self.closed = True
            return b""
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)

    def close(self):
        try:
            self.ws.close(timeout=1)
        except Exception:  # closing is best effort
            pass
        self.closed = True


# -- text handling (pure) ------------------------------------------------------------------------
def clean(text):
    """Console output -> plain text: no escape sequences, \\n line ends, no other control characters."""
    text = _ESCAPES.sub("", text)
    text = text.replace("\r\n", "\n")
    # A lone CR moves to the start of the line (progress meters): keep what was written last.
    if "\r" in text:
        text = "\n".join(line.rsplit("\r", 1)[-1] if "\r" in line.rstrip("\r") else line.rstrip("\r")
                         for line in text.split("\n"))
    while "\b \b" in text:  # an erased character: the echo of a backspace
        erased = re.sub(r"[^\n]?\x08 \x08", "", text, count=1)
        if erased == text:
            break
        text = erased
    return _CONTROL.sub("", text)


def command_output(segment, line):
    """The output of ``line`` from what followed sending it (its echo and the next prompt removed)."""
    text = segment
    first, sep, rest = text.partition("\n")
    if sep and (first.strip() == line.strip() or first.rstrip().endswith(line.strip())):
        text = rest
    elif not sep and first.strip() == line.strip():
        text = ""
    return text.rstrip("\n")


class Console:
    """An expect-style session on a serial console Stream."""

    def __init__(self, stream, secrets=None, clock=time.monotonic, ref="the VMI"):
        self.stream = stream
        self.secrets = [s for s in (secrets or []) if s]
        self.clock = clock
        self.ref = ref
        self.raw = ""
        self.pos = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    @property
    def text(self):
        return clean(self.raw)

    def transcript(self):
        return mask(self.text, self.secrets)

    def _feed(self, data):
        self.raw += self._decoder.decode(data)

    def drain(self, quiet=0.2, limit=2.0):
        """Read until the line has been quiet for ``quiet`` seconds (at most ``limit``)."""
        end = self.clock() + limit
        while self.clock() < end:
            data = self.stream.recv(min(quiet, max(0.01, end - self.clock())))
            if not data:
                return
            self._feed(data)

    def expect(self, patterns, timeout, what=None):
        """Wait until one of ``patterns`` matches the text after the last match.

        Returns (index, match); raises ConsoleTimeout with the latest output.
        """
        compiled = [p if hasattr(p, "search") else re.compile(p) for p in patterns]
        deadline = self.clock() + timeout
        while True:
            text = self.text
            for index, regex in enumerate(compiled):
                match = regex.search(text, self.pos)
                if match:
                    self.pos = match.end()
                    return index, match
            remaining = deadline - self.clock()
            if remaining <= 0 or self.stream.closed:
                break
            data = self.stream.recv(min(remaining, 1.0))
            if data:
                self._feed(data)
        tail = mask(self.text[self.pos:], self.secrets)[-300:]
        reason = "the console closed" if self.stream.closed else "timed out after %ss" % _secs(timeout)
        raise ConsoleTimeout("Waiting for %s on the serial console of %s: %s; the last output was %r." % (
            what or " or ".join("/%s/" % r.pattern for r in compiled), self.ref, reason, tail.strip()[-200:]))

    def send(self, text):
        self.stream.send(text)

    def sendline(self, line):
        self.stream.send(line + "\r")


def _secs(value):
    return int(value) if float(value).is_integer() else round(value, 1)


def serial_session(stream, ref, send=None, expect=None, login=None, prompt=None, timeout=60.0, logout=None,
                   wake=2.0, clock=time.monotonic):
    """Run one console conversation; returns the result dict of the console module."""
    login = login or {}
    secrets = [login.get("password")]
    console = Console(stream, secrets=secrets, clock=clock, ref=ref)
    prompt_re = re.compile(prompt if prompt else PROMPT_RE)
    login_re, password_re = re.compile(LOGIN_RE), re.compile(PASSWORD_RE)
    failed_re = re.compile(LOGIN_FAILED_RE)
    result = {"logged_in": False, "outputs": [], "matched": None, "groups": [], "named_groups": {}}
    send = list(send or [])
    state = None
    if login.get("user") or send:
        state = _wake(console, [login_re, password_re, prompt_re], timeout, wake)[0]
    if login.get("user"):
        _login(console, state, login, login_re, password_re, prompt_re, failed_re, timeout)
        result["logged_in"] = True
    elif send and state == 0:
        raise ConsoleError("The serial console of %s shows a login prompt; give login (user and password) so the "
                           "lines can be sent to a shell." % ref)
    send_start = len(console.text)
    for line in send:
        start = len(console.text)
        console.pos = max(console.pos, start)
        console.sendline(line)
        _index, match = console.expect([prompt_re], timeout, what="the shell prompt after %r" % mask(
            line, secrets))
        text = console.text
        # The output ends where the prompt's line starts (whatever part of it the prompt regex matched).
        segment = text[start:max(start, text.rfind("\n", 0, match.start()) + 1)]
        result["outputs"].append({"line": mask(line, secrets),
                                  "output": mask(command_output(segment, line), secrets)})
    if expect:
        # The pattern may be anywhere in what the sent lines printed (or, without send, anywhere).
        console.pos = send_start if send else 0
        if send or login.get("user"):
            _index, match = console.expect([re.compile(expect)], timeout, what="/%s/" % expect)
        else:  # only looking: a quiet serial line shows its prompt once Enter is pressed
            _index, match = _wake(console, [re.compile(expect)], timeout, wake, what="/%s/" % expect)
        result["matched"] = mask(match.group(0), secrets)
        result["groups"] = [mask(g, secrets) if isinstance(g, str) else g for g in match.groups()]
        result["named_groups"] = {k: mask(v, secrets) if isinstance(v, str) else v
                                  for k, v in match.groupdict().items()}
    elif not send and not login.get("user"):
        console.drain(quiet=0.5, limit=min(timeout, 3.0))
    if logout is None:
        logout = result["logged_in"]
    if logout and result["logged_in"] and not stream.closed:
        console.sendline("exit")
        console.drain(quiet=0.2, limit=1.0)
    result["transcript"] = console.transcript()
    return result


def _wake(console, patterns, timeout, wake, what="a login or shell prompt"):
    """See what the console shows now; press Enter once if it shows nothing recognisable.

    A serial line is quiet once the guest has booted: a person presses Enter to see a prompt.
    Returns (index, match) of the pattern seen."""
    try:
        return console.expect(patterns, min(wake, timeout), what=what)
    except ConsoleTimeout:
        if console.stream.closed:
            raise
    console.pos = len(console.text)
    console.sendline("")
    return console.expect(patterns, timeout, what=what)


def _login(console, state, login, login_re, password_re, prompt_re, failed_re, timeout):
    user, password = login.get("user"), login.get("password")
    if state == 2:
        return  # a shell is already open on the console
    if state == 1:
        # Someone left the console at a password prompt: send an empty one to get a login prompt again.
        console.sendline("")
        console.expect([login_re], timeout, what="a login prompt")
    console.sendline(user)
    index, _match = console.expect([password_re, prompt_re, failed_re], timeout,
                                   what="the password prompt after the user name")
    if index == 1:
        return
    if index == 2:
        raise ConsoleError("Login as %s on the serial console of %s failed: the guest refused the user; check "
                           "login.user." % (user, console.ref))
    if password is None:
        raise ConsoleError("The serial console of %s asks for a password for %s; give login.password." % (
            console.ref, user))
    console.sendline(password)
    index, _match = console.expect([prompt_re, failed_re, login_re], timeout,
                                   what="the shell prompt after logging in as %s" % user)
    if index != 0:
        raise ConsoleError("Login as %s on the serial console of %s failed (Login incorrect); check login.user and "
                           "login.password." % (user, console.ref))


# -- VNC (pure parsers, and the handshake over a Stream) -----------------------------------------
RFB_VERSIONS = {(3, 3), (3, 7), (3, 8)}
SECURITY_NAMES = {0: "Invalid", 1: "None", 2: "VNC Authentication", 5: "RA2", 6: "RA2ne", 16: "Tight",
                  17: "Ultra", 18: "TLS", 19: "VeNCrypt", 20: "SASL", 22: "XVP"}


class RfbError(ConsoleError):
    """The VNC server did not speak RFB as expected."""


def _of(ref):
    """' of VMI ns/name' when the display is known: every RFB message names the VMI it is about."""
    return " of %s" % ref if ref else ""


def _server(ref):
    return "The VNC server%s" % _of(ref)


def parse_version(data, ref=None):
    """b'RFB 003.008\\n' -> (3, 8)."""
    match = re.match(rb"^RFB (\d{3})\.(\d{3})\n$", data or b"")
    if not match:
        raise RfbError("%s did not send an RFB ProtocolVersion (got %r)." % (_server(ref), data[:12]))
    return int(match.group(1)), int(match.group(2))


def client_version(server_version):
    """The version we answer with: the server's, capped at 3.8 (3.4-3.6 are read as 3.3)."""
    major, minor = server_version
    if major > 3 or (major == 3 and minor >= 8):
        return 3, 8
    if minor == 7:
        return 3, 7
    return 3, 3


def format_version(version):
    return b"RFB %03d.%03d\n" % version


def parse_server_init(data, ref=None):
    """ServerInit -> {width, height, pixel_format, name}; ``data`` is the whole message."""
    if len(data) < 24:
        raise RfbError("The VNC ServerInit message%s is too short (%d bytes)." % (_of(ref), len(data)))
    width, height = struct.unpack(">HH", data[:4])
    (bpp, depth, big_endian, true_colour, red_max, green_max, blue_max, red_shift, green_shift,
     blue_shift) = struct.unpack(">BBBBHHHBBB3x", data[4:20])
    (length,) = struct.unpack(">I", data[20:24])
    name = data[24:24 + length]
    if len(name) < length:
        raise RfbError("The VNC ServerInit message%s is truncated (name of %d bytes, %d received)." % (
            _of(ref), length, len(name)))
    return {
        "width": width,
        "height": height,
        "name": name.decode("utf-8", "replace"),
        "pixel_format": {
            "bits_per_pixel": bpp, "depth": depth, "big_endian": bool(big_endian),
            "true_colour": bool(true_colour), "red_max": red_max, "green_max": green_max,
            "blue_max": blue_max, "red_shift": red_shift, "green_shift": green_shift, "blue_shift": blue_shift,
        },
    }


class _Reader:
    def __init__(self, stream, timeout, clock=time.monotonic, ref=None):
        self.stream = stream
        self.ref = ref
        self.buf = b""
        self.deadline = clock() + timeout
        self.clock = clock
        self.timeout = timeout

    def read(self, count, what):
        while len(self.buf) < count:
            remaining = self.deadline - self.clock()
            if remaining <= 0 or self.stream.closed:
                reason = "the connection closed" if self.stream.closed else "no answer within %ss" % _secs(
                    self.timeout)
                raise RfbError("The VNC handshake%s stopped while reading the %s: %s." % (_of(self.ref), what, reason))
            self.buf += self.stream.recv(min(remaining, 1.0))
        out, self.buf = self.buf[:count], self.buf[count:]
        return out

    def read_string(self, what):
        (length,) = struct.unpack(">I", self.read(4, what))
        return self.read(length, what).decode("utf-8", "replace")


def rfb_handshake(stream, timeout=30.0, shared=True, clock=time.monotonic, ref=None):
    """Version exchange, security type None, ClientInit; returns what ServerInit says. ``ref`` ('VMI ns/name')
    names the display in the messages."""
    reader = _Reader(stream, timeout, clock, ref)
    server = parse_version(reader.read(12, "ProtocolVersion"), ref)
    version = client_version(server)
    stream.send(format_version(version))
    if version == (3, 3):
        (sectype,) = struct.unpack(">I", reader.read(4, "security type"))
        if sectype == 0:
            raise RfbError("%s refused the connection: %s." % (_server(ref), reader.read_string("failure reason")))
        offered = [sectype]
    else:
        (count,) = struct.unpack(">B", reader.read(1, "number of security types"))
        if count == 0:
            raise RfbError("%s refused the connection: %s." % (_server(ref), reader.read_string("failure reason")))
        offered = list(reader.read(count, "security types"))
    names = [SECURITY_NAMES.get(t, "type %d" % t) for t in offered]
    if 1 not in offered:
        raise RfbError("%s asks for authentication (%s); the collection checks only displays that need "
                       "none, as KubeVirt's do." % (_server(ref), ", ".join(names)))
    if version != (3, 3):
        stream.send(b"\x01")
    if version == (3, 8):
        (status,) = struct.unpack(">I", reader.read(4, "SecurityResult"))
        if status != 0:
            raise RfbError("%s rejected security type None: %s." % (_server(ref), reader.read_string("failure reason")))
    stream.send(b"\x01" if shared else b"\x00")
    head = reader.read(24, "ServerInit")
    (length,) = struct.unpack(">I", head[20:24])
    info = parse_server_init(head + reader.read(length, "desktop name"), ref)
    info["protocol_version"] = "%d.%d" % version
    info["server_version"] = "%d.%d" % server
    info["security_types"] = names
    info["security_type"] = "None"
    return info


# -- the console module's work ---------------------------------------------------------------------
def virtctl_command(kind, name, namespace):
    return "virtctl %s %s -n %s" % (kind, name, namespace)


# -- VNC screenshot (virt-api's vnc/screenshot subresource) ----------------------------------------
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
# The API server authorizes .../virtualmachineinstances/NAME/vnc/screenshot as the subresource
# "vnc" (Kubernetes reads one subresource from a path), whatever rules name vnc/screenshot.
SCREENSHOT_PERMISSION = "get on virtualmachineinstances/vnc in the subresources.kubevirt.io API group"


class NotPng(ConsoleError):
    """virt-api's screenshot answer is not a whole PNG image."""


def png_size(data, what="The VNC screenshot"):
    """(width, height) of a whole PNG: its signature, an IHDR chunk with a good CRC and a non-empty size
    first, IEND last (pure); NotPng says what is wrong otherwise."""
    data = bytes(data or b"")
    if not data.startswith(PNG_SIGNATURE):
        raise NotPng("%s is not a PNG image (it starts with %r)." % (what, data[:16]))
    head = data[8:33]
    if len(head) < 25 or head[:8] != struct.pack(">I", 13) + b"IHDR":
        raise NotPng("%s is not a PNG image: its first chunk is not a 13-byte IHDR." % what)
    if struct.unpack(">I", head[21:25])[0] != zlib.crc32(head[4:21]):
        raise NotPng("%s is not a PNG image: the CRC of its IHDR chunk is wrong." % what)
    width, height = struct.unpack(">II", head[8:16])
    if not width or not height:
        raise NotPng("%s is an empty PNG image (%dx%d)." % (what, width, height))
    if not data.endswith(PNG_END):
        raise NotPng("%s is a truncated PNG image (%d bytes, no IEND chunk at the end)." % (what, len(data)))
    return width, height


def screenshot(client, namespace, name):
    """A PNG of the VMI's display from virt-api (moveCursor=false: the guest gets no input)
    -> (png bytes, width, height); one sentence for each failure."""
    ref = "VMI %s/%s" % (namespace, name)
    path = res.subresource_path(res.VMI, namespace, name, "vnc/screenshot")
    try:
        data, content_type = client.subresource_bytes(path, {"moveCursor": False})
    except ApiError as exc:
        text = _described(exc, "take a VNC screenshot of", ref)
        if exc.status == 403:  # name the permission the API server really checks
            generic = "; %s." % hint_for(exc)
            text = "%s; grant %s (see docs/rbac.md)." % (
                text[:-len(generic)] if text.endswith(generic) else text[:-1], SCREENSHOT_PERMISSION)
        raise ConsoleError(text)
    kind = (content_type or "").split(";")[0].strip() or "no Content-Type"
    width, height = png_size(data, "virt-api's VNC screenshot of %s (%s, %d bytes)" % (ref, kind, len(data)))
    return data, width, height
