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
