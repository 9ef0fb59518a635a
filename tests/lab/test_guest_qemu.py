"""The lab's real guest under QEMU (lab/guest/qemu.py): console, cloud-init, agent, SSH, QMP.

Needs the built guest (`make lab-guest`) and QEMU (`make debs`), not the lab's control plane. A
missing guest build fails with the command that makes it; nothing here is skipped.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "lab") not in sys.path:
    sys.path.insert(0, str(REPO / "lab"))

from guest import qemu  # noqa: E402  (lab/ is not a package on the default path)

PASSWORD = "lab-Secret-1"
USER_DATA = """#cloud-config
hostname: guest-under-test
user: labuser
password: {password}
chpasswd: {{ expire: False }}
ssh_authorized_keys:
  - {key}
write_files:
  - path: /etc/lab-note
    permissions: '0644'
    content: |
      written by cloud-init
  - path: /home/labuser/secret
    owner: labuser:labuser
    permissions: '0600'
    encoding: b64
    content: c2VjcmV0IGZvciBsYWJ1c2Vy
    defer: true
runcmd:
  - echo ran-$(hostname) > /run/runcmd-done
"""


@pytest.fixture(scope="module")
def guest_folder():
    """Makes fresh folders for guests under the temp dir (unix socket paths are at most 108 bytes,
    too short for pytest's tmp_path); removes them at the end."""
    made = []

    def make():
        made.append(Path(tempfile.mkdtemp(prefix="labguest-")))
        return made[-1]
    yield make
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def build():
    try:
        return qemu.guest_build()
    except qemu.GuestError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory):
    """A key pair for the guest's user (ssh-keygen from openssh-client)."""
    path = tmp_path_factory.mktemp("sshkey") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lab@test", "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def guest(build, ssh_key, guest_folder):
    user_data = USER_DATA.format(password=PASSWORD, key=ssh_key.with_suffix(".pub").read_text().strip())
    g = qemu.Guest(guest_folder(), user_data=user_data, meta_data="instance-id: i-test\nlocal-hostname: from-meta\n",
                   name="under-test")
    g.start()
    yield g
    g.kill()


@pytest.fixture(scope="module")
def shell(guest):
    guest.wait_for_login_prompt(120)
    with guest.console(timeout=60) as console:
        console.login("labuser", PASSWORD)
        yield console


def test_serial_console_shows_login_prompt(guest):
    assert guest.wait_for_login_prompt(120) > 0
    assert b"login:" in guest.serial_log.read_bytes()


def test_login_with_cloud_init_password_and_hostname(shell):
    # cloud-config's hostname wins over meta-data's local-hostname, as in cloud-init.
    assert shell.run("hostname") == "guest-under-test"
    assert shell.run("id -un") == "labuser"


def test_cloud_init_files_keys_and_runcmd(shell, ssh_key):
    assert shell.run("cat /etc/lab-note") == "written by cloud-init"
    assert shell.run("stat -c %a /etc/lab-note") == "644"
    # Deferred (after the users exist), so it can belong to one.
    assert shell.run("cat /home/labuser/secret; echo; stat -c %U:%a /home/labuser/secret") == \
        "secret for labuser\nlabuser:600"
    assert shell.run("cat ~/.ssh/authorized_keys") == ssh_key.with_suffix(".pub").read_text().strip()
    # runcmd runs after the network is up, in the background: wait for it.
    assert shell.run("for i in $(seq 50); do [ -e /run/runcmd-done ] && break; sleep 0.2; done; "
                     "cat /run/runcmd-done") == "ran-guest-under-test"


def test_agent_kernel_release_is_unames(guest, shell):
    guest.wait_for_agent(60)
    osinfo = guest.osinfo()
    assert osinfo["kernel-release"] == shell.run("uname -r")
    assert osinfo["kernel-release"] == qemu.manifest()["kernel_release"]
    # What it really is, not a distribution it pretends to be.
    assert osinfo["pretty-name"].startswith("virtops lab guest (Debian ")
    assert osinfo["id"] == "virtops-lab-guest"
    assert guest.guest_info()["version"]


def test_agent_network_is_laid_out_like_masquerade(guest):
    guest.wait_for_agent(60)
    eth0 = next(i for i in guest.interfaces() if i["name"] == "eth0")
    ipv4 = [a for a in eth0["ip-addresses"] if a["ip-address-type"] == "ipv4"]
    assert ipv4 == [{"ip-address-type": "ipv4", "ip-address": "10.0.2.2", "prefix": 24}]


def test_ssh_banner_on_forwarded_loopback_port(guest):
    guest.wait_for_ssh(120)
    assert guest.ssh_banner().startswith("SSH-2.0-dropbear")
    assert f"hostfwd=tcp:127.0.0.1:{guest.ssh_port}-:22" in " ".join(guest.argv())


def test_ansible_modules_run_in_the_guest(guest, shell, ssh_key):
    """The guest's minimal Python runs Ansible's modules (over SSH with the cloud-init key)."""
    guest.wait_for_ssh(120)
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3",
               ANSIBLE_SSH_TRANSFER_METHOD="piped",  # dropbear has no sftp server and the guest no scp
               ANSIBLE_SSH_ARGS="-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no")
    proc = subprocess.run([str(REPO / ".venv/bin/ansible"), "all", "-i", f"127.0.0.1:{guest.ssh_port},", "-o",
                           "-u", "labuser", "--private-key", str(ssh_key), "-m", "command", "-a", "uname -r"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    # -o: one line per host, "HOST | CHANGED | rc=0 | (stdout) OUTPUT"
    assert proc.stdout.strip().endswith("(stdout) " + shell.run("uname -r")), proc.stdout


def test_screendump_is_png_of_console(guest, tmp_path):
    guest.wait_for_login_prompt(120)
    png = guest.screendump(tmp_path / "screen.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 1000


def test_pause_and_unpause(guest):
    guest.pause()
    assert guest.status() == "paused"
    guest.unpause()
    assert guest.status() == "running"
    assert guest.agent("guest-ping", timeout=10) == {}


def test_configdrive_hostname_then_kill_is_noticed(build, guest_folder):
    g = qemu.Guest(guest_folder(), meta_data={"uuid": "cd-1", "hostname": "from-config-drive"},
                   user_data="", cloud_init="configdrive", name="configdrive")
    g.start()
    try:
        g.wait_for_agent(120)
        assert g.agent("guest-get-host-name") == {"host-name": "from-config-drive"}
        exits = []
        g.watch(exits.append)
        os.kill(g.pid, signal.SIGKILL)  # as if QEMU died under the launcher
        assert g.wait(10) == -signal.SIGKILL
        deadline = time.monotonic() + 5
        while not exits and time.monotonic() < deadline:
            time.sleep(0.05)
        assert exits == [-signal.SIGKILL]
        assert not g.running()
        with pytest.raises(qemu.GuestError, match=r"exited \(-9\) before guest agent"):
            g.wait_for_agent(5)
    finally:
        g.kill()


def test_acpi_powerdown_shuts_the_guest_down(build, guest_folder):
    g = qemu.Guest(guest_folder(), name="powerdown")
    g.start()
    try:
        g.wait_for_agent(120)
        started = time.monotonic()
        assert g.stop(grace=30) == 0  # powered off by the guest itself, not killed
        assert time.monotonic() - started < 30
    finally:
        g.kill()
