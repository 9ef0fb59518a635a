"""Real guests' disks (issue 18): a persistentVolumeClaim disk of a real guest is its PersistentVolume's
image, so a file system made and written in the guest is still there after the VM is stopped and
started; a claim restored from a VolumeSnapshot holds the snapshot's data.

One VM, two boots: the second one also gets the restored claim as a disk.
"""
import sys
import uuid
from pathlib import Path

import pytest

from sim_helpers import Lab, vm_manifest, wait_for

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "lab") not in sys.path:
    sys.path.insert(0, str(REPO / "lab"))

from guest import qemu  # noqa: E402
from simulator.volumedata import VolumeData  # noqa: E402

REAL = {"lab.virtops.io/guest": "real"}
SNAP = ("snapshot.storage.k8s.io", "v1")


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


def test_a_claims_data_survives_a_stop_and_start_and_a_restored_claim_holds_the_snapshot(custom, core, lab, lab_state):
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
    vmi = lab.wait_running("rg-disks", timeout=90)
    targets = {v["name"]: v.get("target") for v in vmi["status"]["volumeStatus"]}
    assert targets["data"] == "vdb"

    # First boot: the claim's disk is vdb (root's stand-in is vda), with the disk's serial.
    with console_of(lab_state, vmi, password) as con:
        assert run_ok(con, "cat /sys/block/vdb/serial") == "DATA-1"
        run_ok(con, "mke2fs /dev/vdb >/dev/null && mount /dev/vdb /mnt && echo kept-across-boots > /mnt/note "
                    "&& sync")
    pv_name = core.read_namespaced_persistent_volume_claim("data", lab.ns).spec.volume_name
    volumes = VolumeData(lab_state / "volumes")
    assert volumes.image(pv_name).stat().st_size == 64 * 2 ** 20

    status, _ = lab.vm_sub("rg-disks", "stop")
    assert status == 202
    lab.wait_vmi_gone("rg-disks", timeout=60)

    # A VolumeSnapshot of the stopped VM's claim (the lab's CSI snapshot path copies its image) and a
    # claim restored from it, created at once: the claim waits for the snapshot, then starts as its copy.
    lab.create(*SNAP, "volumesnapshots", {
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot", "metadata": {"name": "data-snap"},
        "spec": {"source": {"persistentVolumeClaimName": "data"}}})
    core.create_namespaced_persistent_volume_claim(lab.ns, {
        "metadata": {"name": "restored"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}},
                 "dataSource": {"apiGroup": SNAP[0], "kind": "VolumeSnapshot", "name": "data-snap"}}})
    try:
        wait_for(lambda: core.read_namespaced_persistent_volume_claim("restored", lab.ns).status.phase == "Bound",
                 timeout=60, what="the restored claim Bound")
        snap = lab.get(*SNAP, "volumesnapshots", "data-snap")
        content = custom.get_cluster_custom_object(*SNAP, "volumesnapshotcontents",
                                                   snap["status"]["boundVolumeSnapshotContentName"])
        handle = content["status"]["snapshotHandle"]
        assert volumes.snapshot_image(handle).exists()

        # Second boot, with the restored claim as a third disk: both hold the file.
        vm = lab.vm("rg-disks")
        tspec = vm["spec"]["template"]["spec"]
        tspec["domain"]["devices"]["disks"].append({"name": "restored", "disk": {"bus": "virtio"}})
        tspec["volumes"].append({"name": "restored", "persistentVolumeClaim": {"claimName": "restored"}})
        custom.replace_namespaced_custom_object("kubevirt.io", "v1", lab.ns, "virtualmachines", "rg-disks", vm)
        status, _ = lab.vm_sub("rg-disks", "start")
        assert status == 202
        vmi = lab.wait_running("rg-disks", timeout=90)
        targets = {v["name"]: v.get("target") for v in vmi["status"]["volumeStatus"]}
        assert targets["restored"] == "vdd"   # after root, data and cloudinit
        with console_of(lab_state, vmi, password) as con:
            assert run_ok(con, "mount /dev/vdb /mnt && cat /mnt/note") == "kept-across-boots"
            assert run_ok(con, "mkdir -p /r && mount /dev/vdd /r && cat /r/note") == "kept-across-boots"
        # Deleting the snapshot (deletionPolicy Delete) deletes its bytes.
        custom.delete_namespaced_custom_object(*SNAP, lab.ns, "volumesnapshots", "data-snap")
        wait_for(lambda: not volumes.snapshot_image(handle).exists(), timeout=30, what="the snapshot's image deleted")
    finally:
        lab.delete_vm("rg-disks")
