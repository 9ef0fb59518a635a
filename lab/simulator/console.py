"""The guest's serial console (boot lines, login, a tiny shell) and its VNC display (RFB 3.8),
spoken over virt-api's websockets as binary frames.

As on a real cluster the serial line is one tty per VMI: its state (logged in or not) outlives a
connection, and one connection at a time is served - a new one closes the previous one, the way
virt-handler's console server does (close code 1001, "close by another connection"; VNC alike).
Output is only what the guest writes while one is connected: while the guest boots (the first
`boot_seconds()` after the VMI is Running, or after a soft reboot / reset) the boot messages and
then the login prompt; later, nothing until a key is pressed.
"""
import asyncio
import datetime as dt
import struct
import time
import zlib

from aiohttp import WSMsgType

from . import guest
from .util import age, dig

_REBOOTS = {}   # VMI uid -> monotonic time of the last soft reboot / reset
_TTYS = {}      # VMI uid -> Tty
_SESSIONS = {"serial": {}, "vnc": {}}   # kind -> VMI uid -> the websocket connected now
GOING_AWAY = 1001
KICKED_MESSAGE = b"close by another connection"
W, H = 320, 200


def boot_seconds(sim):
    """How long the simulated guest takes from VMI Running (or a reboot) to its login prompt."""
    return max(4.0, 2.5 * sim.boot_delay)


def reboot(vmi):
    uid = vmi["metadata"]["uid"]
    _REBOOTS[uid] = time.monotonic()
    tty = _TTYS.get(uid)
    if tty is not None:
        tty.rebooted()


def _running_since(vmi):
    for s in dig(vmi, "status", "phaseTransitionTimestamps", default=[]):
        if s.get("phase") == "Running":
            return s.get("phaseTransitionTimestamp")
    return None


def since_boot(vmi):
    """Seconds since the guest last started booting (VMI Running, soft reboot or reset)."""
    since = _running_since(vmi)
    elapsed = age(since) if since else 0.0
    rebooted = _REBOOTS.get(vmi["metadata"]["uid"])
    if rebooted is not None:
        elapsed = min(elapsed, time.monotonic() - rebooted)
    return max(0.0, elapsed)


def boot_messages(vmi, dvs):
    """Kernel and systemd lines of a boot, in order (getty's issue and prompt come after them)."""
    _, _, _, kernel, _, _ = guest.distro(vmi, dvs)
    host = guest.hostname(vmi)
    return [
        f"[    0.000000] Linux version {kernel} (mockbuild@lab) #1 SMP PREEMPT_DYNAMIC",
        "[    0.000000] Command line: BOOT_IMAGE=(hd0,gpt2)/vmlinuz root=/dev/vda1 console=tty1 console=ttyS0,115200n8",
        "[    0.012345] KVM setup pv remote TLB flush",
        "[    0.523412] virtio_blk virtio2: [vda] 20971520 512-byte logical blocks (10.7 GB/10.0 GiB)",
        f"[    1.874511] systemd[1]: Hostname set to <{host}>.",
        "[  OK  ] Started cloud-init.service - Cloud-init: Network Stage.",
        "[  OK  ] Started qemu-guest-agent.service - QEMU Guest Agent." if guest.has_agent(vmi, dvs) else
        "[  OK  ] Reached target network-online.target - Network is Online.",
        "[  OK  ] Started sshd.service - OpenSSH server daemon.",
        "[  OK  ] Reached target multi-user.target - Multi-User System.",
    ]


def issue(vmi, dvs):
    """What agetty prints before its login prompt (/etc/issue)."""
    _, name, version, kernel, _, _ = guest.distro(vmi, dvs)
    return f"\r\n{name} {version} (Lab)".rstrip() + f"\r\nKernel {kernel} on an x86_64 (ttyS0)\r\n\r\n"


def boot_lines(vmi, dvs):
    """A whole boot as the serial line shows it, up to (not including) the login prompt."""
    return "\r\n".join(boot_messages(vmi, dvs)) + "\r\n" + issue(vmi, dvs)


def ip_addr(sim, vmi):
    fresh = sim.cache.vmis.get(f"{vmi['metadata']['namespace']}/{vmi['metadata']['name']}") or vmi
    out = ["1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000",
           "    inet 127.0.0.1/8 scope host lo",
           "       valid_lft forever preferred_lft forever"]
    for i, iface in enumerate(dig(fresh, "status", "interfaces", default=[])):
        name = iface.get("interfaceName") or f"eth{i}"
        out.append(f"{i + 2}: {name}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1400 qdisc fq_codel state UP "
                   f"group default qlen 1000")
        for ip in iface.get("ipAddresses") or ([iface["ipAddress"]] if iface.get("ipAddress") else []):
            if ":" in ip:
                continue
            prefix = 24 if not ip.startswith("10.") else 14
            if iface.get("podInterfaceName") == "eth0" and "masquerade" in str(
                    dig(fresh, "spec", "domain", "devices", "interfaces", default=[])):
                ip, prefix = "10.0.2.2", 24
            out.append(f"    inet {ip}/{prefix} brd + scope global dynamic noprefixroute {name}")
            out.append("       valid_lft 86313387sec preferred_lft 86313387sec")
    return "\r\n".join(out)


class Shell:
    def __init__(self, sim, vmi, dvs):
        self.sim, self.vmi, self.dvs = sim, vmi, dvs
        self._last_cr = False
        self.creds, self.default_user = guest.credentials(vmi, dvs)
        self.info = guest.distro(vmi, dvs)
        self.host = guest.hostname(vmi)
        self.state = "login"
        self.user = None
        self.line = ""

    def prompt(self):
        if self.state == "login":
            return f"{self.host} login: "
        if self.state == "password":
            return "Password: "
        if self.info[0] in ("ubuntu", "debian"):
            return f"{self.user}@{self.host}:~$ "
        if self.info[0] == "cirros":
            return "$ "
        return f"[{self.user}@{self.host} ~]$ "

    def feed(self, data):
        """Bytes typed by the user -> bytes the serial line sends back (echo included)."""
        out = []
        for ch in data.decode("utf-8", errors="replace"):
            if ch in "\r\n":
                if ch == "\n" and self._last_cr:
                    self._last_cr = False
                    continue
                self._last_cr = ch == "\r"
                out.append("\r\n")
                line, self.line = self.line, ""
                out.append(self.enter(line))
            elif ch in "\x7f\x08":
                if self.line:
                    self.line = self.line[:-1]
                    if self.state != "password":
                        out.append("\b \b")
            elif ch == "\x03":
                self.line = ""
                out.append("^C\r\n" + self.prompt())
            elif ch == "\x04" and self.state == "shell" and not self.line:
                out.append("logout\r\n" + self._logout())
            elif ch >= " " or ch == "\t":
                self.line += ch
                if self.state != "password":
                    out.append(ch)
        return "".join(out).encode()

    def reset(self):
        self.state, self.user, self.line = "login", None, ""

    def _logout(self):
        self.state, self.user = "login", None
        return issue(self.vmi, self.dvs) + self.prompt()

    def enter(self, line):
        if self.state == "login":
            if not line.strip():
                return issue(self.vmi, self.dvs) + self.prompt()   # agetty prompts again
            self.user = line.strip()
            self.state = "password"
            return self.prompt()
        if self.state == "password":
            user, self.state = self.user, "login"
            if user in self.creds and self.creds[user] == line:
                self.state = "shell"
                last = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=3)).strftime("%a %b %d %H:%M:%S")
                return f"Last login: {last} on ttyS0\r\n" + self.prompt()
            self.user = None
            return "\r\nLogin incorrect\r\n" + self.prompt()
        return self.run(line.strip()) + self.prompt()

    def run(self, cmd):
        if not cmd:
            return ""
        argv = cmd.split()
        name = argv[0]
        if name == "hostname":
            return self.host + "\r\n"
        if name == "whoami":
            return f"{self.user}\r\n"
        if name == "id":
            return f"uid=1000({self.user}) gid=1000({self.user}) groups=1000({self.user}),10(wheel)\r\n"
        if name == "uptime":
            since = _running_since(self.sim.cache.vmis.get(
                f"{self.vmi['metadata']['namespace']}/{self.vmi['metadata']['name']}") or self.vmi)
            secs = int(age(since)) if since else 0
            up = f"{secs // 60} min" if secs < 3600 else f"{secs // 3600}:{(secs % 3600) // 60:02d}"
            now = dt.datetime.now().strftime("%H:%M:%S")
            return f" {now} up {up},  1 user,  load average: 0.08, 0.03, 0.01\r\n"
        if name == "ip" and len(argv) >= 2 and (argv[-1] in ("a", "addr", "address") or "addr" in argv
                                                or "a" in argv):
            return ip_addr(self.sim, self.vmi) + "\r\n"
        if name == "uname":
            if "-r" in argv:
                return self.info[3] + "\r\n"
            if "-a" in argv:
                return f"Linux {self.host} {self.info[3]} #1 SMP PREEMPT_DYNAMIC x86_64 GNU/Linux\r\n"
            return "Linux\r\n"
        if name == "cat" and argv[1:] == ["/etc/os-release"]:
            osi = guest.os_info(self.vmi, self.dvs)
            return (f'NAME="{osi["name"]}"\r\nVERSION="{osi["version"]}"\r\nID={osi["id"]}\r\n'
                    f'VERSION_ID="{osi["versionId"]}"\r\nPRETTY_NAME="{osi["prettyName"]}"\r\n')
        if name == "echo":
            return " ".join(argv[1:]) + "\r\n"
        if name == "pwd":
            return f"/home/{self.user}\r\n"
        if name in ("exit", "logout"):
            return "logout\r\n" + self._logout()[: -len(self.prompt())]
        if name in ("true", ":"):
            return ""
        return f"-bash: {name}: command not found\r\n"


class Tty:
    """The guest's ttyS0: the shell state and what the guest writes to it."""

    def __init__(self, sim, vmi, dvs):
        self.sim, self.vmi, self.dvs = sim, vmi, dvs
        self.shell = Shell(sim, vmi, dvs)
        self.reboots = asyncio.Event()

    def rebooted(self):
        self.shell.reset()
        self.reboots.set()

    def booting(self):
        return since_boot(self.vmi) < boot_seconds(self.sim)


def _tty(sim, vmi, dvs):
    uid = vmi["metadata"]["uid"]
    tty = _TTYS.get(uid)
    if tty is None:
        if len(_TTYS) > 5000:
            _TTYS.clear()
        tty = _TTYS[uid] = Tty(sim, vmi, dvs)
    return tty


async def _kick(ws):
    """virt-handler's stopChan: the older connection is closed when a new one arrives."""
    try:
        await ws.close(code=GOING_AWAY, message=KICKED_MESSAGE)
    except Exception:  # noqa: BLE001 - the old client may be gone already
        pass


def _take_over(kind, vmi, ws):
    uid = vmi["metadata"]["uid"]
    old = _SESSIONS[kind].get(uid)
    _SESSIONS[kind][uid] = ws
    if old is not None and not old.closed:
        asyncio.get_running_loop().create_task(_kick(old))


def disconnect(kind, vmi):
    """A connection virt-api makes for itself (the VNC screenshot's) takes the VMI's one connection:
    the client connected now is closed as by a newer one."""
    old = _SESSIONS[kind].pop(vmi["metadata"]["uid"], None)
    if old is not None and not old.closed:
        asyncio.get_running_loop().create_task(_kick(old))


def _release(kind, vmi, ws):
    uid = vmi["metadata"]["uid"]
    if _SESSIONS[kind].get(uid) is ws:
        del _SESSIONS[kind][uid]


async def _guest_output(sim, ws, tty):
    """What the guest writes on the line while this connection lasts: the rest of a boot in progress
    (the lines already printed in it are kept, then the others as they come) and agetty's prompt;
    again after each reboot."""
    try:
        await _write_boots(sim, ws, tty)
    except (ConnectionError, RuntimeError):
        pass


async def _write_boots(sim, ws, tty):
    vmi, dvs = tty.vmi, tty.dvs
    lines = boot_messages(vmi, dvs)
    total = boot_seconds(sim)
    first = True
    while True:
        tty.reboots.clear()
        if tty.booting():
            if not first:
                await ws.send_bytes(b"\r\n[  OK  ] Reached target reboot.target - System Reboot.\r\n"
                                    b"[   42.123456] reboot: Restarting system\r\n")
            sent = 0
            while tty.booting() and not tty.reboots.is_set():
                elapsed = since_boot(vmi)
                due = min(len(lines), int(elapsed / total * (len(lines) + 1)))
                if due > sent:
                    await ws.send_bytes(("\r\n".join(lines[sent:due]) + "\r\n").encode())
                    sent = due
                nxt = (sent + 1) * total / (len(lines) + 1) if sent < len(lines) else total
                try:
                    await asyncio.wait_for(tty.reboots.wait(), timeout=max(0.02, nxt - elapsed))
                except asyncio.TimeoutError:
                    pass
            if tty.reboots.is_set():
                first = False
                continue
            if sent < len(lines):
                await ws.send_bytes(("\r\n".join(lines[sent:]) + "\r\n").encode())
            tty.shell.reset()
            await ws.send_bytes((issue(vmi, dvs) + tty.shell.prompt()).encode())
        first = False
        await tty.reboots.wait()


async def serial_session(sim, ws, vmi, dvs):
    _take_over("serial", vmi, ws)
    tty = _tty(sim, vmi, dvs)
    output = asyncio.get_running_loop().create_task(_guest_output(sim, ws, tty))
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                data = msg.data
            elif msg.type == WSMsgType.TEXT:
                data = msg.data.encode()
            else:
                break
            if tty.booting():
                continue   # nothing reads the line before getty runs (it flushes its input)
            reply = tty.shell.feed(data)
            if reply:
                try:
                    await ws.send_bytes(reply)
                except (ConnectionError, RuntimeError):
                    break
    finally:
        output.cancel()
        _release("serial", vmi, ws)


async def real_session(kind, ws, vmi, connect):
    """A real guest's serial line or VNC display: the websocket bridged to QEMU's unix socket
    (CONNECT: an async function returning its (reader, writer)); one connection at a time, as above."""
    _take_over(kind, vmi, ws)
    try:
        reader, writer = await connect(vmi)
    except OSError:
        _release(kind, vmi, ws)
        await ws.close(code=1011, message=b"the guest's console is not available")
        return

    async def guest_to_client():
        while True:
            data = await reader.read(65536)
            if not data:
                break
            await ws.send_bytes(data)
        await ws.close()

    pump = asyncio.get_running_loop().create_task(guest_to_client())
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                writer.write(msg.data)
            elif msg.type == WSMsgType.TEXT:
                writer.write(msg.data.encode())
            else:
                break
            await writer.drain()
    except (ConnectionError, RuntimeError):
        pass
    finally:
        pump.cancel()
        writer.close()
        _release(kind, vmi, ws)


# ---------------------------------------------------------------------------------- VNC (RFB 3.8)
class _Reader:
    def __init__(self, ws):
        self.ws, self.buf = ws, b""

    async def read(self, n):
        while len(self.buf) < n:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.BINARY:
                self.buf += msg.data
            elif msg.type == WSMsgType.TEXT:
                self.buf += msg.data.encode()
            else:
                raise ConnectionError("closed")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def framebuffer(vmi):
    """A small 32-bit BGRX frame: a dark console with a coloured title bar."""
    seed = sum(vmi["metadata"]["uid"].encode()) % 255
    row_bar = bytes([seed, 90, 30, 0]) * W
    row_bg = bytes([20, 20, 20, 0]) * W
    text_row = bytes([200, 200, 200, 0]) * (W // 4) + bytes([20, 20, 20, 0]) * (W - W // 4)
    rows = [row_bar] * 16 + [row_bg] * 8 + [text_row] * 2 + [row_bg] * (H - 26)
    return b"".join(rows)


def png(frame, width=W, height=H):
    """A 32-bit BGRX frame (the RFB pixel format above) -> PNG bytes: 8-bit RGB, no interlace, each
    row with filter type 0, as virt-api's image/png encoder writes a VNC screen."""
    pixels = width * height
    rgb = bytearray(3 * pixels)
    rgb[0::3], rgb[1::3], rgb[2::3] = frame[2::4], frame[1::4], frame[0::4]
    stride = 3 * width
    raw = b"".join(b"\x00" + bytes(rgb[y * stride:(y + 1) * stride]) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b""))


def screenshot(vmi):
    """The simulated guest's screen as virt-api's vnc/screenshot returns it (a PNG)."""
    return png(framebuffer(vmi))


async def vnc_session(ws, vmi):
    name = f"{vmi['metadata']['namespace']}_{vmi['metadata']['name']}".encode()
    rd = _Reader(ws)
    _take_over("vnc", vmi, ws)
    try:
        await ws.send_bytes(b"RFB 003.008\n")
        await rd.read(12)                                  # client ProtocolVersion
        await ws.send_bytes(b"\x01\x01")                   # one security type: None
        await rd.read(1)
        await ws.send_bytes(struct.pack(">I", 0))          # SecurityResult OK
        await rd.read(1)                                   # ClientInit (shared flag)
        pixel = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
        await ws.send_bytes(struct.pack(">HH", W, H) + pixel + struct.pack(">I", len(name)) + name)
        frame = framebuffer(vmi)
        while True:
            mtype = (await rd.read(1))[0]
            if mtype == 0:
                await rd.read(19)
            elif mtype == 2:
                _, count = struct.unpack(">xH", await rd.read(3))
                await rd.read(4 * count)
            elif mtype == 3:
                incremental, x, y, w, h = struct.unpack(">BHHHH", await rd.read(9))
                if incremental:
                    await asyncio.sleep(1.0)
                    rect = struct.pack(">HHHHi", 0, 0, 8, 8, 0) + bytes([255, 255, 255, 0]) * 64
                else:
                    rect = struct.pack(">HHHHi", 0, 0, W, H, 0) + frame
                await ws.send_bytes(struct.pack(">BxH", 0, 1) + rect)
            elif mtype == 4:
                await rd.read(7)
            elif mtype == 5:
                await rd.read(5)
            elif mtype == 6:
                _, length = struct.unpack(">3sI", await rd.read(7))
                await rd.read(length)
            else:
                break
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        _release("vnc", vmi, ws)
