"""The guest's serial console (boot lines, login, a tiny shell) and its VNC display (RFB 3.8),
spoken over virt-api's websockets as binary frames."""
import asyncio
import datetime as dt
import struct
import time

from aiohttp import WSMsgType

from . import guest
from .util import age, dig

_REBOOTS = {}
W, H = 320, 200


def reboot(vmi):
    _REBOOTS[vmi["metadata"]["uid"]] = time.monotonic()


def _running_since(vmi):
    for s in dig(vmi, "status", "phaseTransitionTimestamps", default=[]):
        if s.get("phase") == "Running":
            return s.get("phaseTransitionTimestamp")
    return None


def boot_lines(vmi, dvs):
    osid, name, version, kernel, _, _ = guest.distro(vmi, dvs)
    host = guest.hostname(vmi)
    lines = [
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
        "",
        f"{name} {version} (Lab)".strip(),
        f"Kernel {kernel} on an x86_64 (ttyS0)",
        "",
    ]
    return "\r\n".join(lines) + "\r\n"


def ip_addr(sim, vmi):
    fresh = sim.inf["virtualmachineinstances"].get(f"{vmi['metadata']['namespace']}/{vmi['metadata']['name']}") or vmi
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
                if ch == "\n" and getattr(self, "_last_cr", False):
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

    def _logout(self):
        self.state, self.user = "login", None
        return f"\r\n{self.info[1]} {self.info[2]}\r\nKernel {self.info[3]} on an x86_64 (ttyS0)\r\n\r\n" + self.prompt()

    def enter(self, line):
        if self.state == "login":
            if not line.strip():
                return self.prompt()
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
            since = _running_since(self.sim.inf["virtualmachineinstances"].get(
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


async def serial_session(sim, ws, vmi, dvs):
    shell = Shell(sim, vmi, dvs)
    since = _running_since(vmi)
    rebooted = _REBOOTS.get(vmi["metadata"]["uid"])
    banner = ""
    if (since and age(since) < 120) or (rebooted and time.monotonic() - rebooted < 120):
        banner = boot_lines(vmi, dvs)
    await ws.send_bytes((banner + "\r\n" + shell.prompt()).encode())
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            data = msg.data
        elif msg.type == WSMsgType.TEXT:
            data = msg.data.encode()
        else:
            break
        reply = shell.feed(data)
        if reply:
            await ws.send_bytes(reply)


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


async def vnc_session(ws, vmi):
    name = f"{vmi['metadata']['namespace']}_{vmi['metadata']['name']}".encode()
    rd = _Reader(ws)
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
