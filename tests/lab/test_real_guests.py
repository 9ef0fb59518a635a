"""Real guests in the lab (issue 16): a VMI that asks for one boots lab/guest's Linux under QEMU, and
the collection's guest-facing modules work against it as against a KubeVirt VM.

The VMs carry the annotation `lab.virtops.io/guest: real`; the test lab runs simulated guests
otherwise (`labctl up --guest-cap` bounds how many real ones run at once). Needs the built guest
(`make lab-guest`, which `make test` runs); nothing here is skipped.
"""
import json
import os
import re
import signal
import sys
import time
import uuid
import zlib
from pathlib import Path

import pytest

from ansible_run import ansible_env, run_playbook
from sim_helpers import Lab, wait_for

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "lab") not in sys.path:
    sys.path.insert(0, str(REPO / "lab"))

from guest import qemu  # noqa: E402  (lab/ is not a package on the default path)

REAL = {"lab.virtops.io/guest": "real"}


@pytest.fixture
def lab(api, custom, core, namespace):
    return Lab(api, custom, core, namespace)


def guest_of(lab_state, vmi):
    """The running QEMU of a VMI's real guest, from its folder in the lab's state (realguest.py)."""
    folder = lab_state / "guests" / vmi["metadata"]["uid"][:13]
    pid = int((folder / "qemu.pid").read_text().split()[0])
    return qemu.Guest.adopt(folder, _Pid(pid)), pid


class _Pid:
    def __init__(self, pid):
        self.pid = pid

    def poll(self):
        return None if Path(f"/proc/{self.pid}").exists() else 0


def vm_task(name, namespace, password, **extra):
    task = {"name": name, "namespace": namespace, "annotations": REAL, "memory": "256Mi",
            "disks": [{"name": "root", "image": "quay.io/containerdisks/fedora:41"}],
            "cloud_init": {"user": "labuser", "password": password, "hostname": f"{name}-host"},
            "wait": True, "wait_timeout": 120}
    task.update(extra)
    return {"name": f"VM {name} with a real guest", "virtops.kubevirt.vm": task}


def test_console_guest_info_and_screenshot_of_a_real_guest(namespace, kubeconfig, tmp_path):
    """Acceptance: the vm module creates the VM with cloud-init user/password; the console logs in,
    `hostname` prints what cloud-init set; guest_info's kernel release is what `uname -r` prints; a VNC
    screenshot (console type vnc) shows its console text."""
    password = "Real-%s" % uuid.uuid4().hex[:8]
    tasks = [
        vm_task("rg-console", namespace, "{{ pw }}"),
        {"name": "log in and run commands", "virtops.kubevirt.console": {
            "name": "rg-console", "namespace": namespace, "login": {"user": "labuser", "password": "{{ pw }}"},
            "send": ["hostname", "uname -r", "cat /etc/os-release"], "timeout": 60}, "register": "con"},
        {"name": "guest agent data", "virtops.kubevirt.guest_info": {
            "name": "rg-console", "namespace": namespace, "wait": True, "wait_timeout": 60}, "register": "gi"},
        {"name": "KubeVirt's VNC screenshot of its screen", "virtops.kubevirt.console": {
            "name": "rg-console", "namespace": namespace, "type": "vnc", "screenshot": str(tmp_path / "screen.png")},
         "register": "vnc"},
        {"ansible.builtin.copy": {"dest": str(tmp_path / "out.json"),
                                  "content": "{{ {'con': con, 'gi': gi, 'vnc': vnc} | to_json }}"}},
    ]
    plays = [{"hosts": "localhost", "gather_facts": False, "vars": {"pw": password}, "tasks": tasks}]
    proc = run_playbook(tmp_path, plays, env=ansible_env(kubeconfig))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    out = json.loads((tmp_path / "out.json").read_text())
    outputs = [o["output"] for o in out["con"]["outputs"]]
    assert outputs[0] == "rg-console-host"
    release = outputs[1].strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+-\d+-cloud-amd64", release), release
    os_info = out["gi"]["guest"]["os"]
    assert os_info["kernel_release"] == release
    assert 'ID=virtops-lab-guest' in outputs[2]            # it says what it is, not a distribution it mimics
    assert password not in proc.stdout and password not in (tmp_path / "out.json").read_text()
    assert out["vnc"]["changed"] and (out["vnc"]["screenshot"]["width"], out["vnc"]["screenshot"]["height"]) == (720, 400)
    assert_console_text(tmp_path / "screen.png")


def test_qemu_killed_fails_the_vmi_and_the_vm_restarts_it(lab, lab_state):
    """Acceptance: killing a guest's QEMU fails its VMI; runStrategy Always starts a new one."""
    manifest = {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
        "metadata": {"name": "rg-kill", "namespace": lab.ns},
        "spec": {"runStrategy": "Always", "template": {
            "metadata": {"annotations": REAL},
            "spec": {"domain": {"devices": {"interfaces": [{"name": "default", "masquerade": {}}]},
                                "resources": {"requests": {"memory": "128Mi"}}},
                     "networks": [{"name": "default", "pod": {}}]}}}}
    lab.create_vm(manifest)
    lab.wait_running("rg-kill", timeout=60)
    first = lab.vmi("rg-kill")
    guest, pid = guest_of(lab_state, first)
    guest.wait_for_agent(60)
    wait_for(lambda: any(c["type"] == "AgentConnected" for c in lab.vmi("rg-kill")["status"]["conditions"]),
             timeout=30, what="AgentConnected")
    os.kill(pid, signal.SIGKILL)
    lab.wait_event("rg-kill", "Stopped", "crashed", kind="VirtualMachineInstance", timeout=30)

    def restarted():
        vmi = lab.vmi_or_none("rg-kill")
        return vmi is not None and vmi["metadata"]["uid"] != first["metadata"]["uid"] and \
            (vmi.get("status") or {}).get("phase") == "Running"
    wait_for(restarted, timeout=60, what="a new VMI Running")
    second = lab.vmi("rg-kill")
    _, pid2 = guest_of(lab_state, second)
    assert pid2 != pid and Path(f"/proc/{pid2}").exists()
    assert not (lab_state / "guests" / first["metadata"]["uid"][:13]).exists()


def test_pause_soft_reboot_and_stop_act_on_the_real_guest(namespace, kubeconfig, lab, lab_state, tmp_path):
    """vm_power's pause/unpause stop and continue QEMU's CPUs (QMP), soft reboot boots the guest again
    (through its agent), and stop powers it off (ACPI) so QEMU exits."""
    tasks = [
        vm_task("rg-power", namespace, "pw-Real-1"),
        {"name": "agent connected", "virtops.kubevirt.guest_info": {
            "name": "rg-power", "namespace": namespace, "wait": True, "wait_timeout": 60}},
        {"virtops.kubevirt.vm_power": {"name": "rg-power", "namespace": namespace, "state": "paused"}},
    ]
    plays = [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    proc = run_playbook(tmp_path, plays, env=ansible_env(kubeconfig))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    guest, pid = guest_of(lab_state, lab.vmi("rg-power"))
    assert guest.status() == "paused"

    tasks = [
        {"virtops.kubevirt.vm_power": {"name": "rg-power", "namespace": namespace, "state": "unpaused"}},
        {"virtops.kubevirt.vm_power": {"name": "rg-power", "namespace": namespace, "state": "soft_rebooted"}},
    ]
    proc = run_playbook(tmp_path, [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                        env=ansible_env(kubeconfig))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert guest.status() == "running"
    wait_for(lambda: guest.serial_log.read_bytes().count(b" login: ") >= 2, timeout=60,
             what="a second boot on the serial log")

    grace = lab.vm("rg-power")["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    assert grace >= 30
    started = time.monotonic()
    tasks = [{"virtops.kubevirt.vm_power": {"name": "rg-power", "namespace": namespace, "state": "stopped",
                                            "wait": True}}]
    proc = run_playbook(tmp_path, [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                        env=ansible_env(kubeconfig))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=30, what="QEMU to exit")
    assert time.monotonic() - started < grace - 5     # the guest powered off: not killed at the grace's end
    lab.wait_event("rg-power", "Stopped", "shut down", kind="VirtualMachineInstance")


def png_pixels(data):
    """(width, height, rows of RGB(A) bytes) of a PNG, 8-bit RGB or RGBA (what QEMU's screendump writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big"), \
                body[8], body[9]
            assert depth == 8 and colour in (2, 6), (depth, colour)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + left) & 255
            elif ftype == 2:
                line[i] = (line[i] + up) & 255
            elif ftype == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif ftype == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def assert_console_text(path):
    """Acceptance: the screenshot is a PNG of the guest's VGA text console (720x400) with light text on
    the dark screen, in several 16-pixel text lines: not a blank or a filled screen."""
    width, height, rows, bpp = png_pixels(path.read_bytes())
    assert (width, height) == (720, 400)
    light_rows = [y for y, row in enumerate(rows) if sum(1 for x in range(0, len(row), bpp) if row[x] > 128) > 8]
    lit = sum(1 for row in rows for x in range(0, len(row), bpp) if row[x] > 128)
    assert 0.001 < lit / (width * height) < 0.3, lit
    assert len({y // 16 for y in light_rows}) >= 2, light_rows
