"""Real guests' disks (issue 18): a persistentVolumeClaim disk of a real guest is its PersistentVolume's
image, so a file system made and written in the guest is still there after the VM is stopped and
started; a claim restored from a VolumeSnapshot (a VirtualMachineRestore's) holds the snapshot's data.

One VM, two boots: the second one gets the restored claim and the original one as disks.
"""
import json
import sys
import uuid
from pathlib import Path

import pytest

from ansible_run import ansible_env, run_playbook
from sim_helpers import Lab, vm_manifest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "lab") not in sys.path:
    sys.path.insert(0, str(REPO / "lab"))

from guest import qemu  # noqa: E402
from simulator.volumedata import VolumeData  # noqa: E402

REAL = {"lab.virtops.io/guest": "real"}
VMSNAP = ("snapshot.kubevirt.io", "v1beta1")


@pytest.fixture
def lab(api, custom, core, namespace):
    return Lab(api, custom, core, namespace)


class _Pid:
    def __init__(self, pid):
        self.pid = pid

    def poll(self):
        return None if Path(f"/proc/{self.pid}").exists() else 0


def console_of(lab_state, vmi, password):
    """A root shell on the VMI's real guest's serial console."""
    folder = lab_state / "guests" / vmi["metadata"]["uid"][:13]
    guest = qemu.Guest.adopt(folder, _Pid(int((folder / "qemu.pid").read_text().split()[0])))
    guest.wait_for_login_prompt(120)
    con = guest.console(timeout=60)
    con.login("root", password, timeout=90)
    return con


def run_ok(con, command):
    out = con.run(f"{command}; echo rc=$?", timeout=60)
    assert out.rstrip().endswith("rc=0"), out
    return out.rstrip()[:-len("rc=0")].strip()


def run_tasks(tmp_path, kubeconfig, tasks):
    """The collection's modules in a playbook; returns what each registered."""
    tasks = tasks + [{"ansible.builtin.copy": {"dest": str(tmp_path / "out.json"),
                                               "content": "{{ {'out': out} | to_json }}"}}]
    proc = run_playbook(tmp_path, [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                        env=ansible_env(kubeconfig))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return json.loads((tmp_path / "out.json").read_text())["out"]


def test_a_real_guests_claim_keeps_its_data_and_a_vm_restore_brings_a_deleted_file_back(
        custom, core, lab, lab_state, kubeconfig, tmp_path):
    """Acceptance (issue 18): write a file on a claim's disk, snapshot the running VM with vm_snapshot
    (the agent freezes the guest), delete the file, restore the snapshot with vm_restore (which stops
    the VM for it), and the file is back: the restored claim starts as the VolumeSnapshot's copy. The
    original claim, attached beside it on the next boot, shows what was written after the snapshot:
    the data of a claim outlives its VMI."""
    password = "Disk-%s" % uuid.uuid4().hex[:8]
    core.create_namespaced_persistent_volume_claim(lab.ns, {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}})
    user_data = f"#cloud-config\nchpasswd:\n  expire: false\n  list:\n    - root:{password}\n"
    manifest = vm_manifest(
        "rg-disks", annotations=REAL, memory="256Mi", user_data=user_data,
        disks=[{"name": "root", "disk": {"bus": "virtio"}},
               {"name": "data", "disk": {"bus": "virtio"}, "serial": "DATA-1"}],
        volumes=[{"name": "root", "containerDisk": {"image": "quay.io/containerdisks/fedora:41"}},
                 {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        extra_spec={"terminationGracePeriodSeconds": 30})
    lab.create_vm(manifest)
    try:
        vmi = lab.wait_running("rg-disks", timeout=90)
        targets = {v["name"]: v.get("target") for v in vmi["status"]["volumeStatus"]}
        assert targets["data"] == "vdb"
        pv_name = core.read_namespaced_persistent_volume_claim("data", lab.ns).spec.volume_name
        volumes = VolumeData(lab_state / "volumes")

        # First boot: the claim's disk is vdb (root's stand-in is vda), with the disk's serial.
        with console_of(lab_state, vmi, password) as con:
            assert run_ok(con, "cat /sys/block/vdb/serial") == "DATA-1"
            run_ok(con, "mke2fs /dev/vdb >/dev/null && mount /dev/vdb /mnt && echo in-the-snapshot > /mnt/note "
                        "&& sync")
            assert volumes.image(pv_name).stat().st_size == 64 * 2 ** 20
            snap = run_tasks(tmp_path, kubeconfig, [{"virtops.kubevirt.vm_snapshot": {
                "name": "before", "namespace": lab.ns, "vm": "rg-disks", "wait_timeout": 60}, "register": "out"}])
            assert snap["changed"] and snap["snapshot"]["ready_to_use"] and snap["snapshot"]["freeze"] == "frozen"
            assert "Online" in snap["snapshot"]["indications"] and "GuestAgent" in snap["snapshot"]["indications"]
            run_ok(con, "rm /mnt/note && echo after-the-snapshot > /mnt/later && sync")

        restore = run_tasks(tmp_path, kubeconfig, [{"virtops.kubevirt.vm_restore": {
            "name": "back", "namespace": lab.ns, "snapshot": "before", "stop_vm": True, "start_vm": False,
            "wait_timeout": 90}, "register": "out"}])
        assert restore["changed"] and restore["vm_stopped"] and not restore.get("vm_started")
        done = lab.get(*VMSNAP, "virtualmachinerestores", "back")
        assert done["status"]["complete"] is True
        [restored] = done["status"]["restores"]
        claim = core.read_namespaced_persistent_volume_claim(restored["persistentVolumeClaim"], lab.ns)
        assert claim.spec.data_source.kind == "VolumeSnapshot"

        # Second boot: vdb is the restored claim, vdd (after cloudinit's vdc) the original one.
        vm = lab.vm("rg-disks")
        tspec = vm["spec"]["template"]["spec"]
        tspec["domain"]["devices"]["disks"].append({"name": "original", "disk": {"bus": "virtio"}})
        tspec["volumes"].append({"name": "original", "persistentVolumeClaim": {"claimName": "data"}})
        custom.replace_namespaced_custom_object("kubevirt.io", "v1", lab.ns, "virtualmachines", "rg-disks", vm)
        status, _ = lab.vm_sub("rg-disks", "start")
        assert status == 202
        vmi = lab.wait_running("rg-disks", timeout=90)
        targets = {v["name"]: v.get("target") for v in vmi["status"]["volumeStatus"]}
        assert (targets["data"], targets["original"]) == ("vdb", "vdd")
        with console_of(lab_state, vmi, password) as con:
            assert run_ok(con, "mount /dev/vdb /mnt && ls -1 /mnt && cat /mnt/note") == \
                "lost+found\nnote\nin-the-snapshot"
            assert run_ok(con, "mkdir -p /o && mount /dev/vdd /o && ls -1 /o && cat /o/later") == \
                "later\nlost+found\nafter-the-snapshot"
    finally:
        lab.delete_vm("rg-disks")
