"""virt-launcher's QEMU: a VMI that asks for a real guest boots lab/guest's Linux under QEMU.

Which VMIs: the annotation `lab.virtops.io/guest: real|simulated` on the VMI (a VM's
`spec.template.metadata.annotations`) or on the VM that owns it, else the lab-wide `labctl up --guests real|simulated`; at
most `--guest-cap` real guests run at once, the others stay simulated (an event says so). The
choice is made once, when the VMI boots, and kept for the VMI's life.

What is real then (the rest of the VMI's life cycle is the simulator's, as for any VMI):
- Running when QEMU runs; the VMI fails when QEMU dies (exit 0, a guest that powered itself off,
  makes it Succeeded), and the VM controller restarts it as its run strategy says;
- AgentConnected once qemu-ga answers; guest OS, host name, users, file systems and interface
  names from the agent, polled as virt-handler does (every 10 s once connected);
- cloud-init: a cidata (NoCloud) or config-2 (ConfigDrive) disk made from the VMI's volume -
  userData / userDataBase64 / secretRef, networkData* likewise, and the meta-data KubeVirt writes;
- the serial console and VNC are QEMU's sockets, `vnc/screenshot` QEMU's screendump;
- pause/unpause = QMP stop/cont, soft reboot = the agent's guest-shutdown (reboot), reset =
  system_reset, and a VMI's deletion = ACPI power-down, then the kill when the grace period ends.

The guest's root file system is its initramfs: every boot starts clean, like a containerDisk's
copy-on-write layer. Its persistentVolumeClaim and dataVolume disks are real (disk_layout): each is
its PersistentVolume's raw image (volumedata.py), attached as a virtio disk in KubeVirt's order with
the disk's serial, so what the guest writes there outlives the VMI, as on a PVC; other disks
(containerDisk ...) are empty stand-ins that keep the device names of the disks after them.
Guest memory is the VMI's, at most MAX_MEMORY_MIB; vCPUs at most MAX_CPUS.
Each guest's folder is <guest dir>/<uid prefix>/ (sockets, serial.log, qemu.log, qemu.pid); a
simulator restarted while guests run adopts them again.
"""
import asyncio
import base64
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import credentials
from .kube import ApiError, Resource
from .launcher import guest_memory, vcpus
from .network import mac_for
from .util import dig, parse_quantity

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from guest import qemu  # noqa: E402  (lab/guest: the guest build and QEMU's command line)

log = logging.getLogger("simulator.realguest")

ANNOTATION = "lab.virtops.io/guest"
SECRET = Resource("", "v1", "secrets", "Secret")
MAX_MEMORY_MIB = 512
MIN_MEMORY_MIB = 128
MAX_CPUS = 2
PLACEHOLDER_BYTES = 2 ** 20    # the empty stand-in for a disk whose bytes the lab has not (a containerDisk)
AGENT_POLL_CONNECTED = 10.0    # virt-handler's guest-info poll, once the agent answers
AGENT_POLL_WAITING = 1.0       # until then (the agent starts a few seconds into the boot)
STOP_EVERY = 5                 # ACPI power button pressed again every STOP_EVERY s (qemu.Guest.stop)


GuestError = qemu.GuestError


class GuestStartError(RuntimeError):
    """The real guest could not start; the message says why in one sentence."""


class _AdoptedProcess:
    """A QEMU started by an earlier simulator process: enough of Popen to watch and kill it."""

    def __init__(self, pid):
        self.pid, self.returncode = pid, None

    def poll(self):
        if self.returncode is None and not _alive(self.pid):
            self.returncode = -signal.SIGKILL   # unknown: not our child, its status is gone
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise qemu.subprocess.TimeoutExpired("qemu", timeout)
            time.sleep(0.5)
        return self.returncode

    def send_signal(self, sig):
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cloud_init_volume(vmi):
    """(kind, source) of the VMI's cloud-init volume: ("nocloud"|"configdrive", dict), or (None, None)."""
    for vol in dig(vmi, "spec", "volumes", default=[]) or []:
        if vol.get("cloudInitNoCloud") is not None:
            return "nocloud", vol["cloudInitNoCloud"]
        if vol.get("cloudInitConfigDrive") is not None:
            return "configdrive", vol["cloudInitConfigDrive"]
    return None, None


def disk_layout(vmi):
    """The VMI's disks in the order the real guest gets them: [(disk, volume, kind)], kind "claim"
    (a persistentVolumeClaim or dataVolume volume), "cloud-init" or "placeholder" (any other
    volume: its disk is there, empty, so the next disks keep their names).

    KubeVirt's domain lists the disks in spec order and the guest names virtio disks vda, vdb ...
    in that order (volumeStatus' targets, handler._targets); every disk is virtio here, so the
    spec's virtio disks come first, in order, then the others (sata/scsi/usb in KubeVirt). Hot-
    pluggable volumes are left out: they live in the attachment pod (hotplug.py), not in the
    launcher's domain, and the lab does not attach their bytes."""
    volumes = {v.get("name"): v for v in dig(vmi, "spec", "volumes", default=[]) or []}
    first, later = [], []
    for disk in dig(vmi, "spec", "domain", "devices", "disks", default=[]) or []:
        vol = volumes.get(disk.get("volumeName") or disk.get("name"))
        if vol is None or dig(vol, "persistentVolumeClaim", "hotpluggable") or dig(vol, "dataVolume", "hotpluggable"):
            continue
        if vol.get("persistentVolumeClaim") or vol.get("dataVolume"):
            kind = "claim"
        elif vol.get("cloudInitNoCloud") is not None or vol.get("cloudInitConfigDrive") is not None:
            kind = "cloud-init"
        else:
            kind = "placeholder"
        device = disk.get("disk") or disk.get("lun") or disk.get("cdrom") or {}
        bus = device.get("bus") or ("sata" if "cdrom" in disk else "virtio")
        (first if bus == "virtio" else later).append((disk, vol, kind))
    return first + later


def claim_name(volume):
    return dig(volume, "persistentVolumeClaim", "claimName") or dig(volume, "dataVolume", "name")


def guest_hostname(vmi):
    return dig(vmi, "spec", "hostname") or vmi["metadata"]["name"]


def guest_mac(vmi):
    """The MAC of the VMI's first interface, as its status reports it (handler.interfaces)."""
    ifaces = dig(vmi, "spec", "domain", "devices", "interfaces", default=[]) or []
    if not ifaces:
        return mac_for(vmi["metadata"]["uid"] + "default")
    return ifaces[0].get("macAddress") or mac_for(vmi["metadata"]["uid"] + ifaces[0]["name"])


def meta_data(vmi, kind):
    """The meta-data KubeVirt writes (pkg/cloud-init: NoCloudMetadata / ConfigDriveMetadata)."""
    meta = vmi["metadata"]
    instance_id = f"{meta['name']}.{meta['namespace']}"
    if kind == "nocloud":
        return f"instance-id: {instance_id}\nlocal-hostname: {guest_hostname(vmi)}\n"
    return json.dumps({"uuid": instance_id, "hostname": guest_hostname(vmi)})


class Guests:
    """The real guests of this simulator, by VMI uid."""

    def __init__(self, sim):
        self.sim = sim
        args = sim.args
        self.mode = getattr(args, "guests", "simulated") or "simulated"
        self.cap = int(getattr(args, "guest_cap", 4) or 0)
        self.root = Path(getattr(args, "guest_dir", "") or tempfile.gettempdir() + "/virtops-lab-guests")
        self.by_uid = {}        # uid -> qemu.Guest (started or adopted)
        self.keys = {}          # uid -> "ns/name" of its VMI
        self.simulated = set()  # uids decided simulated (kept for the VMI's life)
        self.ended = {}         # uid -> "Succeeded" | "Failed": QEMU exited on its own
        self.stopping = set()   # uids whose stop (deletion) we started
        self.agent_data = {}    # uid -> the agent's answers (None until it answers)
        self._locks = {}        # uid -> threading.Lock: one agent client at a time
        self._tasks = {}

    # ------------------------------------------------------------------------- choice
    def wanted(self, vmi):
        """Should this VMI get a real guest? Decided once per VMI."""
        uid = vmi["metadata"]["uid"]
        if uid in self.by_uid:
            return True
        if uid in self.simulated:
            return False
        ask = str(self._asked(vmi) or self.mode).lower()
        if ask != "real":
            self.simulated.add(uid)
            return False
        if len(self.by_uid) >= self.cap:
            self.simulated.add(uid)
            self.sim.recorder.warning(vmi, "RealGuestCapReached", f"{len(self.by_uid)} real guests run already "
                                      f"(labctl up --guest-cap {self.cap}): this one is simulated", "virt-handler")
            return False
        return True

    def _asked(self, vmi):
        """The annotation on the VMI, else on the VM that owns it (a lab convenience: the VM's own
        metadata is what most tools set)."""
        asked = (vmi["metadata"].get("annotations") or {}).get(ANNOTATION)
        if asked is None:
            owner = next((r for r in vmi["metadata"].get("ownerReferences") or []
                          if r.get("kind") == "VirtualMachine"), None)
            vm = self.sim.cache.vms.get_ns(vmi["metadata"]["namespace"], owner["name"]) if owner else None
            asked = (dig(vm, "metadata", "annotations", default={}) or {}).get(ANNOTATION) if vm else None
        return asked

    def guest_for(self, vmi):
        """The running lab.guest.qemu.Guest of this VMI, or None for a simulated guest."""
        return self.by_uid.get(vmi["metadata"]["uid"])

    # ------------------------------------------------------------------------- start
    async def launch(self, vmi):
        """Start the VMI's QEMU (once); GuestStartError says why it cannot."""
        uid = vmi["metadata"]["uid"]
        if uid in self.by_uid:
            return self.by_uid[uid]
        kind, source = cloud_init_volume(vmi)
        user_data = network_data = meta = None
        if kind:
            user_data = await self._cloud_init_text(vmi, source, "userData", "userdata")
            network_data = await self._cloud_init_text(vmi, source, "networkData", "networkdata")
            try:   # accessCredentials propagated by cloud-init (lab/simulator/credentials.py)
                meta = await credentials.boot_meta_data(self.sim, vmi, kind, meta_data(vmi, kind))
            except ValueError as exc:
                raise GuestStartError(str(exc)) from None
        memory = guest_memory(vmi["spec"]) // 2 ** 20 or MIN_MEMORY_MIB
        folder = self.root / uid[:13]
        shutil.rmtree(folder, ignore_errors=True)
        drives = await self._drives(vmi, folder)
        try:
            guest = qemu.Guest(folder, drives=drives, user_data=user_data if kind else None,
                               meta_data=meta, network_data=network_data,
                               cloud_init=kind or "nocloud", name=vmi["metadata"]["name"],
                               memory_mib=max(MIN_MEMORY_MIB, min(MAX_MEMORY_MIB, memory)),
                               cpus=min(MAX_CPUS, vcpus(vmi["spec"])), own_session=False, mac=guest_mac(vmi))
        except qemu.GuestError as exc:
            raise GuestStartError(str(exc)) from None
        self.by_uid[uid] = guest
        self.keys[uid] = f"{vmi['metadata']['namespace']}/{vmi['metadata']['name']}"
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, guest.start)
        except (qemu.GuestError, OSError, qemu.subprocess.CalledProcessError) as exc:
            self.by_uid.pop(uid, None)
            guest.kill()
            raise GuestStartError(f"QEMU did not start: {exc}") from None
        # pid, VMI, uid and the loopback port of the guest's SSH (bench/guest_boot.py --lab reads it)
        (folder / "qemu.pid").write_text(f"{guest.pid} {self.keys[uid]} {uid} {guest.ssh_port}\n")
        self._follow(uid, guest)
        log.info("real guest for %s: QEMU pid %d (%s, %d MiB, %d vCPU)", self.keys[uid], guest.pid,
                 guest.accel, guest.memory_mib, guest.cpus)
        return guest

    async def _drives(self, vmi, folder):
        """QEMU's drives for the VMI's disks (disk_layout): a claim's disk is its PersistentVolume's
        image (sim.volumes), made on first use and kept across boots; the disk's serial and cache
        mode are KubeVirt's (spec serial only when the disk has one; cache: the disk's, else none
        where O_DIRECT works, else writethrough)."""
        ns = vmi["metadata"]["namespace"]
        drives = []
        for disk, vol, kind in disk_layout(vmi):
            if kind == "cloud-init":
                drives.append(qemu.CIDATA)
                continue
            readonly = bool(dig(disk, "disk", "readOnly") or dig(disk, "lun", "readOnly") or "cdrom" in disk)
            if kind == "claim":
                claim = claim_name(vol)
                pvc = self.sim.cache.pvcs.get_ns(ns, claim)
                pv_name = dig(pvc, "spec", "volumeName") if pvc else None
                pv = self.sim.cache.pvs.get(pv_name) if pv_name else None
                if pv is None:
                    raise GuestStartError(f"PersistentVolumeClaim {ns}/{claim} of volume {vol['name']} is not "
                                          "bound to a PersistentVolume")
                size = parse_quantity(dig(pv, "spec", "capacity", "storage") or
                                      dig(pvc, "spec", "resources", "requests", "storage"))
                path = await asyncio.to_thread(self.sim.volumes.ensure, pv_name, size)
            else:
                size = parse_quantity(dig(vol, "emptyDisk", "capacity")) or PLACEHOLDER_BYTES
                path = folder / f"{vol['name']}.placeholder.img"
                folder.mkdir(parents=True, exist_ok=True)
                with open(path, "wb") as f:
                    f.truncate(int(size))
            # a shareable disk: cache none unless set (virt-launcher's converter), share-rw as libvirt's <shareable/>
            shared = bool(disk.get("shareable"))
            drives.append(qemu.Drive(path, readonly=readonly, serial=disk.get("serial"), shared=shared,
                                     cache=disk.get("cache") or ("none" if shared else None)))
        return drives

    async def _cloud_init_text(self, vmi, source, field, secret_key):
        """userData / networkData of a cloud-init volume: inline, base64 or from its Secret."""
        if source.get(field):
            return source[field]
        if source.get(field + "Base64"):
            try:
                return base64.b64decode(source[field + "Base64"], validate=True).decode()
            except ValueError as exc:
                raise GuestStartError(f"{field}Base64 is not base64: {exc}") from None
        ref = source.get(field + "SecretRef") if field == "networkData" else source.get("secretRef")
        if not ref or not ref.get("name"):
            return None
        ns = vmi["metadata"]["namespace"]
        try:
            secret = await self.sim.kube.get(SECRET, ref["name"], ns)
        except ApiError as exc:
            raise GuestStartError(f"cloud-init Secret {ns}/{ref['name']}: {exc}") from None
        data = secret.get("data") or {}
        for key in (secret_key, field):
            if key in data:
                return base64.b64decode(data[key]).decode()
        return None

    def _follow(self, uid, guest):
        """Notice QEMU's exit (virt-launcher noticing its domain gone) and poll the agent."""
        loop = asyncio.get_running_loop()
        guest.watch(lambda status: loop.call_soon_threadsafe(self._exited, uid, status))
        self.agent_data[uid] = None
        self._locks[uid] = threading.Lock()
        self._tasks[uid] = loop.create_task(self._poll_agent(uid, guest), name=f"agent-{uid[:8]}")

    def _exited(self, uid, status):
        if uid not in self.by_uid:
            return
        log.info("QEMU of %s exited with %s", self.keys.get(uid), status)
        if uid not in self.stopping:
            self.ended[uid] = "Succeeded" if status == 0 else "Failed"
        self._forget(uid, keep_end=True)
        self.sim.vmi_ctl.enqueue(self.keys.get(uid, ""))

    def _forget(self, uid, keep_end=False):
        guest = self.by_uid.pop(uid, None)
        task = self._tasks.pop(uid, None)
        if task is not None:
            task.cancel()
        self.agent_data.pop(uid, None)
        self._locks.pop(uid, None)
        if not keep_end:
            self.ended.pop(uid, None)
            self.keys.pop(uid, None)
            self.simulated.discard(uid)
            self.stopping.discard(uid)
            if guest is not None:
                shutil.rmtree(guest.folder, ignore_errors=True)

    def exit_phase(self, vmi):
        """"Succeeded" or "Failed" once the VMI's QEMU ended by itself, else None."""
        return self.ended.get(vmi["metadata"]["uid"])

    # ------------------------------------------------------------------------- stop
    def shutdown(self, vmi, grace):
        """Start KubeVirt's stop (ACPI power-down, the kill at the end of GRACE) once; True while
        QEMU still runs."""
        uid = vmi["metadata"]["uid"]
        guest = self.by_uid.get(uid)
        if guest is None:
            return False
        if uid not in self.stopping:
            self.stopping.add(uid)
            threading.Thread(target=guest.stop, kwargs={"grace": max(0.0, float(grace)), "every": STOP_EVERY},
                             name=f"stop-{uid[:8]}", daemon=True).start()
        return guest.running()

    def release(self, vmi):
        """The VMI is gone: its guest's folder goes too."""
        uid = vmi["metadata"]["uid"]
        guest = self.by_uid.get(uid)
        if guest is not None:
            guest.kill()
        self._forget(uid)
        folder = self.root / uid[:13]
        shutil.rmtree(folder, ignore_errors=True)

    def close(self):
        """The simulator stops: so do its guests (as pods on a node that goes away)."""
        for uid, guest in list(self.by_uid.items()):
            self.stopping.add(uid)
            guest.kill()

    # ------------------------------------------------------------------------- adopt after a restart
    def adopt(self):
        """QEMUs of an earlier simulator process: kept when their VMI still runs, else killed."""
        if not self.root.is_dir():
            return
        for pidfile in self.root.glob("*/qemu.pid"):
            try:
                pid, key, uid, ssh_port = pidfile.read_text().split()
                pid = int(pid)
            except (OSError, ValueError):
                continue
            vmi = self.sim.cache.vmis.get(key)
            if not _alive(pid):
                if vmi is not None and vmi["metadata"]["uid"] == uid:
                    self.ended[uid] = "Failed"
                    self.keys[uid] = key
                    self.sim.vmi_ctl.enqueue(key)
                else:
                    shutil.rmtree(pidfile.parent, ignore_errors=True)
                continue
            if vmi is None or vmi["metadata"]["uid"] != uid:
                os.kill(pid, signal.SIGKILL)
                shutil.rmtree(pidfile.parent, ignore_errors=True)
                continue
            guest = qemu.Guest.adopt(pidfile.parent, _AdoptedProcess(pid), name=vmi["metadata"]["name"])
            guest.ssh_port = int(ssh_port)
            self.by_uid[uid], self.keys[uid] = guest, key
            self._follow(uid, guest)
            log.info("adopted the real guest of %s (QEMU pid %d)", key, pid)

    # ------------------------------------------------------------------------- guest agent
    def _agent(self, uid, guest, command, **arguments):
        lock = self._locks.get(uid)
        if lock is None:
            raise qemu.GuestError("the guest is gone")
        with lock:
            return guest.agent(command, timeout=3, **arguments)

    def _read_agent(self, uid, guest):
        """What virt-handler reads from qemu-ga, in KubeVirt's field names (v1.VirtualMachineInstanceGuestAgentInfo)."""
        info = self._agent(uid, guest, "guest-info")
        osinfo = self._agent(uid, guest, "guest-get-osinfo")
        out = {
            "guestAgentVersion": info.get("version", ""),
            "supportedCommands": [{"name": c["name"], "enabled": bool(c.get("enabled"))}
                                  for c in info.get("supported_commands", [])],
            "os": {"id": osinfo.get("id", ""), "name": osinfo.get("name", ""),
                   "prettyName": osinfo.get("pretty-name", ""), "version": osinfo.get("version", ""),
                   "versionId": osinfo.get("version-id", ""), "kernelRelease": osinfo.get("kernel-release", ""),
                   "kernelVersion": osinfo.get("kernel-version", ""), "machine": osinfo.get("machine", "")},
            "hostname": "", "timezone": "", "userList": [], "fsInfo": {"disks": []}, "interfaces": [],
            "fsFreezeStatus": "thawed",
        }
        supported = {c["name"] for c in out["supportedCommands"] if c["enabled"]}

        def ask(command):
            return self._agent(uid, guest, command) if command in supported else None

        out["hostname"] = (ask("guest-get-host-name") or {}).get("host-name", "")
        tz = ask("guest-get-timezone")
        if tz:
            out["timezone"] = f"{tz.get('zone', 'UTC')}, {tz.get('offset', 0)}"
        out["userList"] = [{"userName": u.get("user", ""), "domain": u.get("domain", ""),
                            "loginTime": u.get("login-time", 0)} for u in ask("guest-get-users") or []]
        out["fsInfo"]["disks"] = [{
            "diskName": fs.get("name", ""), "mountPoint": fs.get("mountpoint", ""),
            "fileSystemType": fs.get("type", ""), "usedBytes": fs.get("used-bytes", 0),
            "totalBytes": fs.get("total-bytes", 0),
            "disk": [{"busType": d.get("bus-type", ""), "serial": d.get("serial", "")} for d in fs.get("disk", [])]}
            for fs in ask("guest-get-fsinfo") or []]
        out["interfaces"] = [{"interfaceName": i.get("name", ""), "mac": i.get("hardware-address", ""),
                              "ipAddresses": [a.get("ip-address") for a in i.get("ip-addresses", [])]}
                             for i in ask("guest-network-get-interfaces") or [] if i.get("name") != "lo"]
        return out

    async def _poll_agent(self, uid, guest):
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await loop.run_in_executor(None, self._read_agent, uid, guest)
            except (qemu.GuestError, OSError, ValueError):
                data = None
            if uid not in self.by_uid:
                return
            if data != self.agent_data.get(uid):
                self.agent_data[uid] = data
                self.sim.vmi_ctl.enqueue(self.keys[uid])
            await asyncio.sleep(AGENT_POLL_CONNECTED if data else AGENT_POLL_WAITING)

    def agent_info(self, vmi):
        """The agent's last answers for this VMI's real guest, or None (no agent connected)."""
        return self.agent_data.get(vmi["metadata"]["uid"])

    async def agent_call(self, vmi, command, **arguments):
        guest = self.guest_for(vmi)
        if guest is None:
            raise qemu.GuestError("the VMI has no real guest")
        uid = vmi["metadata"]["uid"]
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: self._agent(uid, guest, command, **arguments))

    async def refresh_agent(self, vmi):
        """Read the agent now (a guestosinfo request), keeping the cache in step."""
        guest = self.guest_for(vmi)
        uid = vmi["metadata"]["uid"]
        data = await asyncio.get_running_loop().run_in_executor(None, self._read_agent, uid, guest)
        self.agent_data[uid] = data
        return data

    # ------------------------------------------------------------------------- QMP, screen, ports
    async def qmp(self, vmi, command, **arguments):
        guest = self.guest_for(vmi)
        return await asyncio.get_running_loop().run_in_executor(None, lambda: guest.qmp(command, **arguments))

    async def screenshot(self, vmi):
        """PNG bytes of the real guest's screen (QMP screendump)."""
        guest = self.guest_for(vmi)

        def shot():
            path = guest.folder / f"screen-{time.monotonic_ns()}.png"
            try:
                guest.screendump(path)
                return path.read_bytes()
            finally:
                path.unlink(missing_ok=True)
        return await asyncio.get_running_loop().run_in_executor(None, shot)

    async def open_connection(self, vmi, port):
        """(reader, writer) of a TCP connection to PORT inside the real guest, as virt-handler
        dials the VMI's port in the launcher's network namespace; ConnectionRefusedError when
        nothing listens there."""
        guest = self.guest_for(vmi)
        if guest is None:
            raise ConnectionRefusedError(f"dial tcp 127.0.0.1:{port}: connect: connection refused")
        loop = asyncio.get_running_loop()
        uid = vmi["metadata"]["uid"]
        if self.agent_data.get(uid) and not await loop.run_in_executor(None, self._listening, uid, guest, int(port)):
            raise ConnectionRefusedError(f"dial tcp {port}: connect: connection refused")
        host_port = await loop.run_in_executor(None, guest.forward, int(port))
        return await asyncio.open_connection("127.0.0.1", host_port)

    def _listening(self, uid, guest, port):
        """Does a TCP socket listen on PORT in the guest? QEMU's user networking accepts every
        forwarded connection and only then finds the guest's port closed, where the pod network
        KubeVirt dials answers a closed port with a refusal; the agent reads /proc/net/tcp* to tell."""
        try:
            pid = self._agent(uid, guest, "guest-exec", path="/bin/cat",
                              arg=["/proc/net/tcp", "/proc/net/tcp6"], **{"capture-output": True})["pid"]
            for _ in range(50):
                status = self._agent(uid, guest, "guest-exec-status", pid=pid)
                if status.get("exited"):
                    break
                time.sleep(0.05)
            table = base64.b64decode(status.get("out-data", "")).decode()
        except (qemu.GuestError, OSError, KeyError, ValueError) as exc:
            log.info("cannot tell whether port %d listens in %s: %s", port, self.keys.get(uid), exc)
            return True   # cannot tell: let the connection find out
        for line in table.splitlines()[1:]:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
        return False

    async def serial_socket(self, vmi):
        return await asyncio.open_unix_connection(str(self.guest_for(vmi).serial_sock))

    async def vnc_socket(self, vmi):
        return await asyncio.open_unix_connection(str(self.guest_for(vmi).vnc_sock))
