"""Boot one lab guest (lab/guest/build.py's kernel + initramfs) under QEMU, as virt-launcher would.

Everything the outside world touches is a unix socket in the guest's folder or a loopback port:

    serial.sock  the serial console (ttyS0; also logged to serial.log)
    qmp.sock     QMP (stop/cont/system_powerdown/quit/screendump)
    vnc.sock     VNC of the guest's VGA screen (tty1 has a login prompt)
    agent.sock   the virtio-serial channel org.qemu.guest_agent.0 (qemu-ga in the guest)
    127.0.0.1:ssh_port -> guest port 22 (QEMU user networking's hostfwd)

The network is laid out like KubeVirt's masquerade binding: guest 10.0.2.2/24 by DHCP, gateway
10.0.2.1, and `restrict=on` so the guest reaches nothing beyond the forwarded port. The guest's
root file system is its initramfs, unpacked into guest RAM: every boot starts clean. Extra disk
images (a containerDisk's) are attached as qcow2 overlays on top of them, never written; drives
(a volume's raw image: Drive) are attached as they are and written in place, in the order given. The
cloud-init disk (cidata for NoCloud, config-2 for ConfigDrive) is an ISO 9660 image, as KubeVirt
makes it.

Acceleration is TCG unless `accel="kvm"`, or `accel="auto"` and kvm_works() proved at start-up that
KVM boots a kernel here (nested virtualization makes QEMU with KVM hang on this project's machines).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GUEST_DIR = Path(os.environ.get("LAB_GUEST_DIR", REPO / "lab" / ".guest")) / "current"
QEMU = "qemu-system-x86_64"
AGENT_CHANNEL = "org.qemu.guest_agent.0"
# KubeVirt's masquerade layout (pkg/network/setup: 10.0.2.0/24, gateway .1, the guest .2).
GUEST_NET = "net=10.0.2.0/24,host=10.0.2.1,dhcpstart=10.0.2.2"
SUN_PATH_MAX = 107
# Under TCG the guest kernel's Spectre mitigations and crypto self-tests cost a third of the boot's
# CPU (measured: 6.2 s -> 3.9 s to the login prompt) and protect nothing in a lab guest.
KERNEL_ARGS = "quiet mitigations=off cryptomgr.notests"
# qemu-ga commands that answer only when they fail (the guest goes away on success).
NO_REPLY = ("guest-shutdown", "guest-suspend-disk", "guest-suspend-ram", "guest-suspend-hybrid")


class GuestError(RuntimeError):
    """Something about a guest went wrong; the message is one sentence."""


def guest_build(path=None):
    """The built guest's folder (with manifest.json); GuestError naming `make lab-guest` if missing."""
    build = Path(path) if path else GUEST_DIR
    if not (build / "manifest.json").exists():
        raise GuestError(f"the lab guest is not built ({build / 'manifest.json'} is missing): run `make lab-guest`")
    return build.resolve()


def manifest(path=None):
    return json.loads((guest_build(path) / "manifest.json").read_text())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_KVM_VERDICT = {}


def kvm_works(build=None, timeout=20):
    """True when QEMU with KVM boots the guest's kernel to its first messages here (cached)."""
    if "kvm" in _KVM_VERDICT:
        return _KVM_VERDICT["kvm"]
    ok = False
    if os.access("/dev/kvm", os.R_OK | os.W_OK) and shutil.which(QEMU):
        kernel = guest_build(build) / "vmlinuz"
        argv = [QEMU, "-accel", "kvm", "-m", "64", "-nodefaults", "-display", "none", "-no-reboot",
                "-serial", "stdio", "-kernel", str(kernel), "-append", "console=ttyS0 panic=-1"]
        try:
            out = subprocess.run(argv, capture_output=True, timeout=timeout, check=False).stdout
            ok = b"Linux version" in out
        except subprocess.TimeoutExpired:
            ok = False
    _KVM_VERDICT["kvm"] = ok
    return ok


def make_cidata(folder, user_data=None, meta_data=None, network_data=None, kind="nocloud"):
    """The cloud-init disk as KubeVirt builds it: an ISO 9660 image labelled cidata (NoCloud:
    user-data, meta-data, network-config) or config-2 (ConfigDrive: openstack/latest/...)."""
    folder = Path(folder)
    tree = folder / "cidata.d"
    shutil.rmtree(tree, ignore_errors=True)
    if kind == "nocloud":
        label = "cidata"
        files = {"user-data": user_data or "", "meta-data": meta_data or "",
                 "network-config": network_data}
    elif kind == "configdrive":
        label = "config-2"
        meta = meta_data if isinstance(meta_data, str) else json.dumps(meta_data or {})
        files = {"openstack/latest/user_data": user_data or "", "openstack/latest/meta_data.json": meta,
                 "openstack/latest/network_data.json": network_data}
    else:
        raise GuestError(f"cloud-init disk kind must be nocloud or configdrive, not {kind!r}")
    for rel, text in files.items():
        if text is None:
            continue
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if isinstance(text, str) else json.dumps(text))
    tool = shutil.which("xorrisofs") or shutil.which("genisoimage")
    if not tool:
        raise GuestError("neither xorrisofs nor genisoimage is installed: run `make debs`")
    image = folder / f"{label}.iso"
    subprocess.run([tool, "-quiet", "-output", str(image), "-volid", label, "-joliet", "-rock", str(tree)],
                   check=True, capture_output=True)
    return image


def overlay(base, folder):
    """A qcow2 overlay of BASE in FOLDER: the guest writes there, BASE stays as it was."""
    base = Path(base).resolve()
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(base)], check=True,
                                     capture_output=True, text=True).stdout)
    image = Path(folder) / f"{base.stem}.overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", info["format"], "-b", str(base), str(image)],
                   check=True, capture_output=True)
    return image


class Drive:
    """One disk on QEMU's command line, attached as virtio-blk in the order given.

    `serial` is the disk's serial number (the guest's /sys/block/vdX/serial), `cache` QEMU's cache
    mode (none|writethrough|writeback|directsync|unsafe; default_cache(path) when not given);
    `shared`: other QEMUs may write the image too (libvirt's <shareable/>: share-rw=on), else QEMU's
    image lock keeps a second writer out."""

    def __init__(self, path, fmt="raw", readonly=False, serial=None, cache=None, shared=False):
        self.path, self.fmt, self.readonly, self.serial, self.cache = Path(path), fmt, readonly, serial, cache
        self.shared = shared

    def option(self, index):
        opts = [f"file={self.path}", "if=none", f"id=disk{index}", f"format={self.fmt}",
                f"cache={self.cache or default_cache(self.path)}"]
        if self.readonly:
            opts.append("readonly=on")
        device = f"virtio-blk-pci,drive=disk{index}"
        if self.serial:
            device += f",serial={self.serial}"
        if self.shared:
            device += ",share-rw=on"
        return ["-drive", ",".join(opts), "-device", device]


# Where Guest(drives=...) puts the cloud-init disk (else it comes last).
CIDATA = "cidata"


def default_cache(path):
    """KubeVirt's default cache mode for a disk image: none (O_DIRECT) where the image's file system
    supports it, else writethrough (virt-launcher's converter: SetDriverCacheMode)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError:
        return "writethrough"
    os.close(fd)
    return "none"


class Guest:
    """One QEMU process running the lab guest; its sockets and logs live in `folder`."""

    def __init__(self, folder, *, user_data=None, meta_data=None, network_data=None, cloud_init="nocloud",
                 disks=(), drives=(), memory_mib=256, cpus=1, accel="tcg", ssh_port=None, build=None, name="guest",
                 tb_size_mib=32, vga_mib=4, kernel_args=KERNEL_ARGS, own_session=True,
                 mac="52:54:00:00:00:02"):
        self.folder = Path(folder).resolve()
        self.build = guest_build(build)
        self.name = name
        self.user_data, self.meta_data, self.network_data = user_data, meta_data, network_data
        self.cloud_init = cloud_init
        self.disks = list(disks)     # base images, attached as qcow2 overlays the guest writes to
        self.drives = list(drives)   # Drive objects (and CIDATA) attached as they are, after the overlays
        self.memory_mib, self.cpus, self.tb_size_mib = memory_mib, cpus, tb_size_mib
        self.kernel_args = kernel_args
        self.vga_mib = vga_mib
        self.accel_request = accel
        self.accel = None
        self.ssh_port = ssh_port
        self.own_session = own_session  # False: QEMU stays in its parent's process group (the lab's down stops it)
        self.mac = mac
        self.forwards = {}              # guest port -> loopback port (QEMU user networking's hostfwd)
        self.proc = None
        self.started_at = None
        self._drives = []  # made by start(): the overlays, the drives and the cloud-init disk
        self.serial_sock = self.folder / "serial.sock"
        self.serial_log = self.folder / "serial.log"
        self.qmp_sock = self.folder / "qmp.sock"
        self.vnc_sock = self.folder / "vnc.sock"
        self.agent_sock = self.folder / "agent.sock"
        self.qemu_log = self.folder / "qemu.log"
        longest = max(len(str(p)) for p in (self.serial_sock, self.qmp_sock, self.vnc_sock, self.agent_sock))
        if longest > SUN_PATH_MAX:
            raise GuestError(f"the guest folder {self.folder} is too long for unix sockets (at most "
                             f"{SUN_PATH_MAX - 11} characters)")

    # ------------------------------------------------------------------------- life cycle
    def _accel(self):
        if self.accel_request == "auto":
            return "kvm" if kvm_works(self.build) else "tcg"
        if self.accel_request not in ("tcg", "kvm"):
            raise GuestError(f"accel must be tcg, kvm or auto, not {self.accel_request!r}")
        return self.accel_request

    def argv(self):
        accel = self.accel or self._accel()
        accel_opt = f"tcg,tb-size={self.tb_size_mib}" if accel == "tcg" else "kvm"
        argv = [
            QEMU, "-name", f"guest={self.name}", "-accel", accel_opt, "-machine", "q35",
            "-m", str(self.memory_mib), "-smp", str(self.cpus), "-nodefaults", "-no-user-config",
            "-kernel", str(self.build / "vmlinuz"), "-initrd", str(self.build / manifest(self.build)["initramfs"]),
            "-append", f"console=tty0 console=ttyS0 {self.kernel_args}",
            # The standard VGA, as KubeVirt gives; text mode needs little of its 16 MiB of video memory.
            "-device", f"VGA,vgamem_mb={self.vga_mib}", "-vnc", f"unix:{self.vnc_sock}",
            "-chardev", f"socket,id=serial0,path={self.serial_sock},server=on,wait=off,logfile={self.serial_log}",
            "-serial", "chardev:serial0",
            "-chardev", f"socket,id=qmp,path={self.qmp_sock},server=on,wait=off",
            "-mon", "chardev=qmp,mode=control",
            "-device", "virtio-serial-pci,id=virtio-serial0",
            "-chardev", f"socket,id=agent0,path={self.agent_sock},server=on,wait=off",
            "-device", f"virtserialport,bus=virtio-serial0.0,chardev=agent0,name={AGENT_CHANNEL}",
            "-netdev", f"user,id=net0,{GUEST_NET},restrict=on,hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22",
            # romfile= : no iPXE option ROM, the kernel boots directly
            "-device", f"virtio-net-pci,netdev=net0,mac={self.mac},romfile=",
            "-device", "virtio-rng-pci",
            # As KubeVirt's default memballoon: free page reporting hands pages the guest frees back.
            "-device", "virtio-balloon-pci,free-page-reporting=on",
        ]
        for i, drive in enumerate(self._drives):
            argv += drive.option(i)
        return argv

    def start(self):
        if self.proc is not None:
            raise GuestError(f"guest {self.name} is already started")
        if not shutil.which(QEMU):
            raise GuestError(f"{QEMU} is not installed: run `make debs`")
        self.folder.mkdir(parents=True, exist_ok=True)
        for path in (self.serial_sock, self.qmp_sock, self.vnc_sock, self.agent_sock, self.serial_log):
            path.unlink(missing_ok=True)
        self.ssh_port = self.ssh_port or free_port()
        self.accel = self._accel()
        self._drives = self.make_drives()
        argv = self.argv()
        self.started_at = time.monotonic()
        with open(self.qemu_log, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=self.own_session)
        self._wait_for(lambda: self.qmp_sock.exists() and self.serial_sock.exists(), 10, "QEMU's sockets")
        return self

    def make_drives(self):
        """QEMU's drives in order: overlays of the base images, then `drives` with the cloud-init
        disk (made now) where CIDATA stands, else last."""
        cidata = None
        if self.user_data is not None or self.meta_data is not None:
            cidata = Drive(make_cidata(self.folder, self.user_data, self.meta_data, self.network_data,
                                       self.cloud_init), readonly=True, cache="writeback")
        drives = [Drive(overlay(d, self.folder), fmt="qcow2", cache="writeback") for d in self.disks]
        drives += [cidata if d is CIDATA else d for d in self.drives if d is not CIDATA or cidata]
        if cidata and CIDATA not in self.drives:
            drives.append(cidata)
        return drives

    @classmethod
    def adopt(cls, folder, proc, name="guest", build=None):
        """A Guest for a QEMU already running with its sockets in FOLDER (PROC: a Popen-like handle)."""
        guest = cls(folder, name=name, build=build)
        guest.proc, guest.started_at = proc, time.monotonic()
        return guest

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout=None):
        """QEMU's exit status once it has exited (negative: the signal that killed it)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise GuestError(f"QEMU of guest {self.name} still runs after {timeout} s") from exc

    def watch(self, callback):
        """Call CALLBACK(exit status) from a thread once QEMU exits, however it ends (as
        virt-launcher notices its domain going away)."""
        proc = self.proc
        threading.Thread(target=lambda: callback(proc.wait()), name=f"watch-{self.name}", daemon=True).start()

    def kill(self, sig=signal.SIGKILL):
        if self.running():
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def stop(self, grace=10, every=5):
        """KubeVirt's stop: ACPI power-down, asked again every EVERY seconds (a guest still
        starting its ACPI daemon misses the first press), then the kill once GRACE is over."""
        deadline = time.monotonic() + grace
        while self.running() and time.monotonic() < deadline:
            try:
                self.qmp("system_powerdown")
                self.proc.wait(min(every, max(0.1, deadline - time.monotonic())))
            except (subprocess.TimeoutExpired, GuestError, OSError):
                continue
        self.kill()
        return self.proc.returncode if self.proc else None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()

    def _wait_for(self, check, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return time.monotonic() - self.started_at
            if not self.running():
                tail = self.qemu_log.read_text(errors="replace").strip()[-400:] if self.qemu_log.exists() else ""
                raise GuestError(f"QEMU of guest {self.name} exited ({self.proc.returncode}) before {what}: {tail}")
            time.sleep(0.05)
        raise GuestError(f"guest {self.name}: no {what} within {timeout} s")

    # ------------------------------------------------------------------------- readiness
    def wait_for_login_prompt(self, timeout=60):
        """Seconds from QEMU's start until the serial console shows `login:`."""
        return self._wait_for(lambda: self.serial_log.exists() and b"login:" in self.serial_log.read_bytes(),
                              timeout, "login prompt on the serial console")

    def ssh_banner(self, timeout=2.0):
        """The SSH server's identification line on the forwarded port, or None."""
        try:
            with socket.create_connection(("127.0.0.1", self.ssh_port), timeout=timeout) as conn:
                conn.settimeout(timeout)
                data = conn.recv(256)
        except OSError:
            return None
        return data.split(b"\r\n")[0].decode(errors="replace") if data.startswith(b"SSH-") else None

    def wait_for_ssh(self, timeout=60):
        """Seconds from QEMU's start until the forwarded port answers with an SSH banner."""
        return self._wait_for(lambda: self.ssh_banner(1.0) is not None, timeout, "SSH banner")

    # ------------------------------------------------------------------------- QMP
    def qmp(self, command, timeout=10, **arguments):
        """Run one QMP command; its `return` value, or GuestError with QEMU's error text."""
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(timeout)
            conn.connect(str(self.qmp_sock))
            stream = conn.makefile("rwb")
            json.loads(stream.readline())  # the greeting
            for cmd in ({"execute": "qmp_capabilities"}, {"execute": command, "arguments": arguments}):
                stream.write(json.dumps(cmd).encode() + b"\n")
                stream.flush()
                while True:
                    line = stream.readline()
                    if not line:
                        raise GuestError(f"QMP closed the connection during {cmd['execute']}")
                    reply = json.loads(line)
                    if "error" in reply:
                        raise GuestError(f"QMP {cmd['execute']}: {reply['error'].get('desc')}")
                    if "return" in reply:
                        break
            return reply["return"]

    def forward(self, guest_port):
        """A loopback port forwarded to GUEST_PORT in the guest (added to the running QEMU once)."""
        if guest_port == 22 and self.ssh_port:
            return self.ssh_port
        if guest_port not in self.forwards:
            host_port = free_port()
            reply = self.qmp("human-monitor-command",
                             **{"command-line": f"hostfwd_add net0 tcp:127.0.0.1:{host_port}-:{guest_port}"})
            if reply.strip():
                raise GuestError(f"QEMU could not forward port {guest_port}: {reply.strip()}")
            self.forwards[guest_port] = host_port
        return self.forwards[guest_port]

    def pause(self):
        self.qmp("stop")

    def unpause(self):
        self.qmp("cont")

    def status(self):
        """QMP query-status: running, paused, shutdown ..."""
        return self.qmp("query-status")["status"]

    def powerdown(self):
        self.qmp("system_powerdown")

    def quit(self):
        try:
            self.qmp("quit")
        except (GuestError, OSError):
            pass  # QEMU may close the socket before it answers
        return self.wait(10)

    def screendump(self, path):
        """The guest's screen as a PNG file (QMP screendump, format png: QEMU 7.1 and later)."""
        path = Path(path).resolve()
        self.qmp("screendump", filename=str(path), format="png")
        return path

    # ------------------------------------------------------------------------- guest agent
    def agent(self, command, timeout=5, **arguments):
        """Run one qemu-ga command over the agent channel; its `return` value.

        Each call first syncs (guest-sync-delimited) so a reply left over from an earlier,
        timed-out client is never taken for this one's."""
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(timeout)
            conn.connect(str(self.agent_sock))
            token = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF
            conn.sendall(json.dumps({"execute": "guest-sync-delimited", "arguments": {"id": token}}).encode() + b"\n")
            buf = b""
            deadline = time.monotonic() + timeout
            while True:
                if time.monotonic() > deadline:
                    raise GuestError(f"the guest agent did not answer within {timeout} s")
                try:
                    chunk = conn.recv(65536)
                except socket.timeout as exc:
                    raise GuestError(f"the guest agent did not answer within {timeout} s") from exc
                if not chunk:
                    raise GuestError("the guest agent channel closed")
                buf += chunk
                start = buf.rfind(b"\xff")
                if start >= 0 and b"\n" in buf[start:]:
                    line = buf[start + 1:].split(b"\n", 1)[0]
                    try:
                        if json.loads(line).get("return") == token:
                            break
                    except ValueError:
                        pass
            request = {"execute": command}
            if arguments:
                request["arguments"] = arguments
            conn.sendall(json.dumps(request).encode() + b"\n")
            stream = conn.makefile("rb")
            if command in NO_REPLY:
                conn.settimeout(1.0)   # silence is success; only a failure answers
                try:
                    line = stream.readline()
                except socket.timeout:
                    return None
                reply = json.loads(line or b"{}")
                if "error" not in reply:
                    return None
            else:
                reply = json.loads(stream.readline() or b"{}")
        if "error" in reply:
            raise GuestError(f"guest agent {command}: {reply['error'].get('desc')}")
        if "return" not in reply:
            raise GuestError(f"guest agent {command}: no answer")
        return reply["return"]

    def wait_for_agent(self, timeout=60):
        """Seconds from QEMU's start until the agent answers guest-ping."""
        def answers():
            try:
                self.agent("guest-ping", timeout=1)
                return True
            except (GuestError, OSError):
                return False
        return self._wait_for(answers, timeout, "guest agent")

    def guest_info(self):
        return self.agent("guest-info")

    def osinfo(self):
        return self.agent("guest-get-osinfo")

    def interfaces(self):
        return self.agent("guest-network-get-interfaces")

    # ------------------------------------------------------------------------- serial console
    def console(self, timeout=30):
        return SerialConsole(self.serial_sock, timeout)

    # ------------------------------------------------------------------------- process figures
    def rss_bytes(self):
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self):
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SerialConsole:
    """A client of the guest's serial socket: send text, wait for a pattern (one client at a time)."""

    def __init__(self, path, timeout=30):
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(path))
        self.buffer = b""

    def send(self, text):
        self.sock.sendall(text.encode())

    def expect(self, pattern, timeout=None):
        """Read until PATTERN (a regex over bytes) matches; returns the text up to and including it."""
        deadline = time.monotonic() + (timeout or self.timeout)
        regex = re.compile(pattern if isinstance(pattern, bytes) else pattern.encode())
        while True:
            match = regex.search(self.buffer)
            if match:
                text, self.buffer = self.buffer[:match.end()], self.buffer[match.end():]
                return text.decode(errors="replace")
            left = deadline - time.monotonic()
            if left <= 0:
                raise GuestError(f"the serial console did not show {regex.pattern!r}; last output: "
                                 f"{self.buffer[-200:].decode(errors='replace')!r}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                raise GuestError("the serial console closed")
            self.buffer += chunk

    def login(self, user, password, timeout=None):
        """Log in on the console; returns once the shell prompt shows.

        Answers what the console shows (login prompt, password prompt, a refusal) rather than
        typing ahead: busybox getty and login switch the terminal's modes after printing their
        prompts, and what arrives in between is dropped or read under the old modes."""
        deadline = time.monotonic() + (timeout or self.timeout)
        refused = 0
        self.send("\r")
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise GuestError(f"could not log in as {user} on the serial console; last output: "
                                 f"{self.buffer[-200:].decode(errors='replace')!r}")
            try:
                seen = self.expect(rb"login: |Password: |Login incorrect|[$#] ", timeout=min(left, 8))
            except GuestError:
                # Silence. When the user name arrived while getty was still switching modes, getty
                # never saw its CR and leaves the terminal expecting NL: the password line waits
                # for one. A NL ends that line; elsewhere it is one more empty line.
                self.send("\n")
                continue
            if seen.endswith("login: "):
                time.sleep(0.3)
                self.send(user + "\r")
            elif seen.endswith("Password: "):
                time.sleep(0.3)
                self.send(password + "\r")
            elif seen.endswith("Login incorrect"):
                refused += 1
                if refused == 3:
                    raise GuestError(f"the guest refused the password of {user} three times")
            else:
                return

    def run(self, command, timeout=None):
        """Run COMMAND in the logged-in shell; its output, found between two markers that the
        echoed command line never contains (the echo may be wrapped at the terminal's width)."""
        token = f"{os.getpid()}x{int(time.monotonic() * 1000)}"
        self.send(f"printf '\\n%s%s\\n' __vb {token}; {command}; printf '\\n%s%s\\n' __ve {token}\r")
        out = self.expect(rf"__ve{token}\r?\n".encode(), timeout)
        body = out.split(f"__vb{token}", 1)[1].rsplit(f"__ve{token}", 1)[0]
        return body.replace("\r", "").strip("\n")

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
