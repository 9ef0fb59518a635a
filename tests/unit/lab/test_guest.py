"""The real guest's pieces that need no QEMU: the guest's cloud-config reader, QEMU's command line."""
import base64
import gzip
import importlib.util
import json
from pathlib import Path

import pytest

from guest import qemu

CLOUDINIT = Path(qemu.__file__).parent / "rootfs/usr/lib/virtops/cloudinit.py"


@pytest.fixture(scope="module")
def cloudinit():
    spec = importlib.util.spec_from_file_location("guest_cloudinit", CLOUDINIT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cloud_config_subset(cloudinit):
    text = """#cloud-config
hostname: lab-vm1   # a comment
users:
  - default
  - name: alice
    groups: [wheel, "adm"]
    lock_passwd: false
    plain_text_passwd: 's3cret #not a comment'
    ssh_authorized_keys:
      - ssh-ed25519 AAAA alice@x
chpasswd: { expire: False, users: [{name: bob, password: x, type: text}] }
write_files:
- path: /etc/motd
  permissions: '0644'
  content: |
    hello
      indented
    # kept: inside a block scalar

- path: /x
  encoding: b64
  content: aGk=
runcmd:
  - echo hi > /tmp/hi
  - [sh, -c, "echo 'q' > /tmp/q"]
folded: >-
  a
  b
mode: 0644
empty:
"""
    assert cloudinit.load_yaml(text) == {
        "hostname": "lab-vm1",
        "users": ["default", {"name": "alice", "groups": ["wheel", "adm"], "lock_passwd": False,
                              "plain_text_passwd": "s3cret #not a comment",
                              "ssh_authorized_keys": ["ssh-ed25519 AAAA alice@x"]}],
        "chpasswd": {"expire": False, "users": [{"name": "bob", "password": "x", "type": "text"}]},
        "write_files": [{"path": "/etc/motd", "permissions": "0644",
                         "content": "hello\n  indented\n# kept: inside a block scalar\n"},
                        {"path": "/x", "encoding": "b64", "content": "aGk="}],
        "runcmd": ["echo hi > /tmp/hi", ["sh", "-c", "echo 'q' > /tmp/q"]],
        "folded": "a b",
        "mode": 0o644,
        "empty": None,
    }


def test_meta_data_public_keys_in_every_shape_kubevirt_and_cloud_init_use(cloudinit):
    keys = {str(i): f"ssh-ed25519 K{i}" for i in range(12)}
    assert cloudinit.as_list(keys) == [f"ssh-ed25519 K{i}" for i in range(12)]   # KubeVirt's {"0": key} map
    assert cloudinit.as_list(["a", "b"]) == ["a", "b"]
    assert cloudinit.as_list("a, b") == ["a", "b"]
    assert cloudinit.as_list(None) == []


def test_cloud_config_it_cannot_read_is_an_error(cloudinit):
    with pytest.raises(cloudinit.YamlError, match="line 3"):
        cloudinit.load_yaml("a: 1\nb: 2\n   c: 3\n")


def test_write_files_encodings(cloudinit):
    assert cloudinit.decode_content({"content": "aGk=", "encoding": "b64"}) == b"hi"
    packed = base64.b64encode(gzip.compress(b"hi")).decode()
    assert cloudinit.decode_content({"content": packed, "encoding": "gz+b64"}) == b"hi"
    assert cloudinit.decode_content({"content": "plain\n"}) == b"plain\n"


def test_a_missing_guest_build_names_make_lab_guest(tmp_path):
    with pytest.raises(qemu.GuestError, match="run `make lab-guest`"):
        qemu.guest_build(tmp_path)


@pytest.fixture
def fake_build(tmp_path):
    build = tmp_path / "build"
    build.mkdir()
    (build / "manifest.json").write_text(json.dumps({"initramfs": "initramfs.cpio.zst", "kernel": "vmlinuz"}))
    return build


def test_qemu_command_line_is_masquerade_like_and_loopback_only(fake_build, tmp_path):
    argv = qemu.Guest(tmp_path / "g", build=fake_build, ssh_port=2222).argv()
    line = " ".join(argv)
    assert argv[argv.index("-accel") + 1] == "tcg,tb-size=32"
    assert argv[argv.index("-m") + 1] == "256"
    netdev = argv[argv.index("-netdev") + 1]
    assert "net=10.0.2.0/24,host=10.0.2.1,dhcpstart=10.0.2.2" in netdev
    assert "restrict=on" in netdev and "hostfwd=tcp:127.0.0.1:2222-:22" in netdev
    for sock in ("serial.sock", "qmp.sock", "agent.sock"):
        assert f"path={tmp_path / 'g' / sock}" in line
    assert f"unix:{tmp_path / 'g' / 'vnc.sock'}" in line
    assert f"name={qemu.AGENT_CHANNEL}" in line
    assert str(fake_build / "initramfs.cpio.zst") in line


def test_volume_drives_are_raw_in_order_with_serial_and_cache(fake_build, tmp_path):
    """A volume's image is attached as it is (raw, written in place) in the order given, with the
    disk's serial; the cache mode is the disk's, else KubeVirt's default (none where O_DIRECT works)."""
    data, logs = tmp_path / "data.img", tmp_path / "logs.img"
    data.write_bytes(b"")
    logs.write_bytes(b"")
    guest = qemu.Guest(tmp_path / "g", build=fake_build, ssh_port=2222,
                       drives=[qemu.Drive(data, serial="DATA-1", cache="writeback"), qemu.CIDATA,
                               qemu.Drive(logs, readonly=True, shared=True)])
    guest._drives = guest.make_drives()    # no cloud-init data: no cloud-init disk
    argv = guest.argv()
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    devices = [argv[i + 1] for i, a in enumerate(argv) if a.startswith("-device") and "drive=" in argv[i + 1]]
    assert drives == [f"file={data},if=none,id=disk0,format=raw,cache=writeback",
                      f"file={logs},if=none,id=disk1,format=raw,cache={qemu.default_cache(logs)},readonly=on"]
    assert devices == ["virtio-blk-pci,drive=disk0,serial=DATA-1", "virtio-blk-pci,drive=disk1,share-rw=on"]
    assert qemu.default_cache(logs) in ("none", "writethrough")


def test_bad_accel_and_long_folders_are_refused(fake_build, tmp_path):
    with pytest.raises(qemu.GuestError, match="accel must be tcg, kvm or auto"):
        qemu.Guest(tmp_path / "g", build=fake_build, accel="hvf")._accel()
    with pytest.raises(qemu.GuestError, match="too long for unix sockets"):
        qemu.Guest(tmp_path / ("x" * 120), build=fake_build)


def test_cidata_disk_kind_is_checked(tmp_path):
    with pytest.raises(qemu.GuestError, match="nocloud or configdrive"):
        qemu.make_cidata(tmp_path, "#cloud-config\n", kind="iso")
