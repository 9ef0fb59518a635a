"""The simulator's real-guest choices that need no QEMU (lab/simulator/realguest.py): which VMIs get a
real guest (annotation, lab-wide mode, cap), the meta-data KubeVirt writes, the cloud-init text from
the VMI's volume or its Secret, the guest's MAC, and the listening-port check."""
import asyncio
import base64
import types

import pytest

from simulator import realguest as R


class Recorder:
    def __init__(self):
        self.warnings = []

    def warning(self, obj, reason, message, component=""):
        self.warnings.append((obj["metadata"]["name"], reason, message))


class Cache:
    def __init__(self, vms=()):
        self.store = {f"{v['metadata']['namespace']}/{v['metadata']['name']}": v for v in vms}

    def get_ns(self, ns, name):
        return self.store.get(f"{ns}/{name}")


def sim(mode="simulated", cap=2, vms=(), secrets=None):
    async def get(res, name, ns):
        if (ns, name) not in (secrets or {}):
            raise R.ApiError(404, {"message": f'secrets "{name}" not found'})
        return secrets[(ns, name)]
    return types.SimpleNamespace(
        args=types.SimpleNamespace(guests=mode, guest_cap=cap, guest_dir="/nonexistent"),
        recorder=Recorder(), cache=types.SimpleNamespace(vms=Cache(vms)),
        kube=types.SimpleNamespace(get=get))


def vmi(name, uid, annotations=None, owner=None, volumes=None):
    meta = {"name": name, "namespace": "ns", "uid": uid, "annotations": annotations or {}}
    if owner:
        meta["ownerReferences"] = [{"kind": "VirtualMachine", "name": owner, "uid": "vm-" + uid}]
    return {"metadata": meta, "spec": {"volumes": volumes or [],
                                       "domain": {"devices": {"interfaces": [{"name": "default", "masquerade": {}}]}}}}


def test_annotation_on_the_vmi_or_its_vm_asks_for_a_real_guest():
    vm = {"metadata": {"name": "web", "namespace": "ns", "annotations": {R.ANNOTATION: "real"}}}
    guests = R.Guests(sim(vms=[vm]))
    assert guests.wanted(vmi("web", "u1", owner="web"))
    assert guests.wanted(vmi("x", "u2", annotations={R.ANNOTATION: "real"}))
    assert not guests.wanted(vmi("y", "u3"))                                         # lab-wide: simulated
    assert not guests.wanted(vmi("web", "u4", annotations={R.ANNOTATION: "simulated"}, owner="web"))


def test_lab_wide_real_with_a_cap_and_a_sticky_choice():
    guests = R.Guests(sim(mode="real", cap=1))
    first = vmi("a", "u1")
    assert guests.wanted(first)
    guests.by_uid["u1"] = object()            # its QEMU runs
    second = vmi("b", "u2")
    assert not guests.wanted(second)
    assert guests.sim.recorder.warnings == [("b", "RealGuestCapReached",
                                             "1 real guests run already (labctl up --guest-cap 1): "
                                             "this one is simulated")]
    guests.by_uid.clear()                     # a slot is free again: b stays simulated for its life
    assert not guests.wanted(second)
    assert guests.wanted(vmi("c", "u3"))
    assert not guests.wanted(vmi("d", "u4", annotations={R.ANNOTATION: "simulated"}))


def test_meta_data_as_kubevirt_writes_it():
    v = vmi("web", "u1")
    v["spec"]["hostname"] = "web-host"
    assert R.meta_data(v, "nocloud") == "instance-id: web.ns\nlocal-hostname: web-host\n"
    assert R.meta_data(vmi("db", "u2"), "configdrive") == '{"uuid": "db.ns", "hostname": "db"}'


def test_cloud_init_text_inline_base64_and_from_the_secret():
    secrets = {("ns", "ud"): {"data": {"userdata": base64.b64encode(b"#cloud-config\nhostname: s\n").decode(),
                                       "networkdata": base64.b64encode(b"version: 2\n").decode()}}}
    guests = R.Guests(sim(secrets=secrets))
    run = asyncio.run
    v = vmi("web", "u1")
    assert run(guests._cloud_init_text(v, {"userData": "#cloud-config\n"}, "userData", "userdata")) == "#cloud-config\n"
    b64 = {"userDataBase64": base64.b64encode(b"hi").decode()}
    assert run(guests._cloud_init_text(v, b64, "userData", "userdata")) == "hi"
    ref = {"secretRef": {"name": "ud"}, "networkDataSecretRef": {"name": "ud"}}
    assert run(guests._cloud_init_text(v, ref, "userData", "userdata")) == "#cloud-config\nhostname: s\n"
    assert run(guests._cloud_init_text(v, ref, "networkData", "networkdata")) == "version: 2\n"
    assert run(guests._cloud_init_text(v, {}, "networkData", "networkdata")) is None
    with pytest.raises(R.GuestStartError, match="cloud-init Secret ns/missing"):
        run(guests._cloud_init_text(v, {"secretRef": {"name": "missing"}}, "userData", "userdata"))
    with pytest.raises(R.GuestStartError, match="userDataBase64 is not base64"):
        run(guests._cloud_init_text(v, {"userDataBase64": "%%%"}, "userData", "userdata"))


def test_cloud_init_volume_and_guest_mac():
    v = vmi("web", "u1", volumes=[{"name": "root", "containerDisk": {"image": "x"}},
                                  {"name": "ci", "cloudInitConfigDrive": {"userData": "#cloud-config\n"}}])
    assert R.cloud_init_volume(v) == ("configdrive", {"userData": "#cloud-config\n"})
    assert R.cloud_init_volume(vmi("a", "u2")) == (None, None)
    mac = R.guest_mac(v)
    assert mac.startswith("02:") and mac == R.guest_mac(v)
    v["spec"]["domain"]["devices"]["interfaces"][0]["macAddress"] = "52:54:00:12:34:56"
    assert R.guest_mac(v) == "52:54:00:12:34:56"


def test_listening_reads_the_guests_tcp_tables():
    table = ("  sl  local_address rem_address   st\n"
             "   0: 00000000:0016 00000000:0000 0A\n"
             "   1: 0100007F:1F90 00000000:0000 0A\n"
             "   2: 0202000A:0016 0202000A:C350 01\n"
             "  sl  local_address                         remote_address                        st\n"
             "   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A\n")
    guests = R.Guests(sim())
    answers = {"guest-exec": {"pid": 7},
               "guest-exec-status": {"exited": True, "exitcode": 0,
                                     "out-data": base64.b64encode(table.encode()).decode()}}
    guests._agent = lambda uid, guest, command, **kw: answers[command]
    assert guests._listening("u1", None, 22) and guests._listening("u1", None, 8080) and \
        guests._listening("u1", None, 80)
    assert not guests._listening("u1", None, 2222)       # nothing listens: refused, as on the pod network
    assert not guests._listening("u1", None, 50000)      # an established connection's port is not a listener

    def broken(uid, guest, command, **kw):
        raise R.GuestError("the guest agent did not answer within 3 s")
    guests._agent = broken
    assert guests._listening("u1", None, 2222)            # cannot tell: the connection finds out


def vmi_with_disks():
    v = vmi("db", "u1", volumes=[
        {"name": "root", "containerDisk": {"image": "quay.io/containerdisks/fedora:41"}},
        {"name": "cd", "persistentVolumeClaim": {"claimName": "iso"}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-pvc"}},
        {"name": "cloudinit", "cloudInitNoCloud": {"userData": "#cloud-config\n"}},
        {"name": "logs", "dataVolume": {"name": "logs-dv"}},
        {"name": "hot", "persistentVolumeClaim": {"claimName": "hot-pvc", "hotpluggable": True}},
    ])
    v["spec"]["domain"]["devices"]["disks"] = [
        {"name": "root", "disk": {"bus": "virtio"}},
        {"name": "cd", "cdrom": {}},                                  # sata by default
        {"name": "data", "disk": {}, "serial": "DATA-1", "cache": "writeback"},
        {"name": "cloudinit", "disk": {"bus": "virtio"}},
        {"name": "logs", "disk": {"bus": "virtio", "readOnly": True}, "shareable": True},
        {"name": "hot", "disk": {"bus": "scsi"}},
    ]
    return v


def test_disk_layout_keeps_kubevirts_virtio_order_and_leaves_hotplugged_volumes_out():
    layout = [(disk["name"], kind) for disk, _vol, kind in R.disk_layout(vmi_with_disks())]
    assert layout == [("root", "placeholder"), ("data", "claim"), ("cloudinit", "cloud-init"), ("logs", "claim"),
                      ("cd", "claim")]


def test_claim_disks_are_their_persistent_volumes_images(tmp_path):
    """data -> /dev/vdb (as volumeStatus' target says) backed by its PV's image, with its serial and
    cache mode; an unbound claim stops the start with one sentence."""
    from simulator.volumedata import VolumeData
    pvcs = {f"ns/{claim}": {"spec": {"volumeName": f"pv-{claim}", "resources": {"requests": {"storage": "1Gi"}}}}
            for claim in ("iso", "data-pvc", "logs-dv")}
    pvs = {f"pv-{claim}": {"spec": {"capacity": {"storage": "2Gi"}}} for claim in ("iso", "data-pvc", "logs-dv")}
    s = sim()
    s.cache.pvcs = types.SimpleNamespace(get_ns=lambda ns, name: pvcs.get(f"{ns}/{name}"))
    s.cache.pvs = types.SimpleNamespace(get=pvs.get)
    s.volumes = VolumeData(tmp_path / "volumes")
    guests = R.Guests(s)
    drives = asyncio.run(guests._drives(vmi_with_disks(), tmp_path / "guest"))
    assert drives[2] is R.qemu.CIDATA
    root, data, _, logs, cd = drives
    assert root.path == tmp_path / "guest" / "root.placeholder.img" and root.path.stat().st_size == R.PLACEHOLDER_BYTES
    assert (data.path, data.serial, data.cache, data.readonly) == (s.volumes.image("pv-data-pvc"), "DATA-1",
                                                                   "writeback", False)
    assert data.path.stat().st_size == 2 * 2 ** 30
    assert (logs.path, logs.serial, logs.cache, logs.readonly, logs.shared) == (
        s.volumes.image("pv-logs-dv"), None, "none", True, True)
    assert not data.shared
    assert cd.readonly
    del pvcs["ns/data-pvc"]["spec"]["volumeName"]
    with pytest.raises(R.GuestStartError, match="PersistentVolumeClaim ns/data-pvc of volume data is not bound"):
        asyncio.run(guests._drives(vmi_with_disks(), tmp_path / "guest"))
