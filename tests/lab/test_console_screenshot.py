"""KubeVirt's VNC screenshot end to end: the simulator's virt-api serves `vnc/screenshot` (image/png,
the same errors as the `vnc` stream, discovery, one VNC connection per VMI), and the console module's
`screenshot: PATH` saves it - a valid PNG of the display's size, written once (a second run reports
changed false), nothing written in check mode, one sentence for a stopped VM and for a user who may
not read the display (the API server checks `get` on `virtualmachineinstances/vnc`).
"""
import hashlib
import json
import ssl
import struct
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import yaml
from kubernetes import client

from ansible_run import ansible_env, run_playbook
from sim_helpers import CIRROS, SUB, admin_tls, lab, vm_manifest, websocket  # noqa: F401
from test_sim_console import close_frame

REPO = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 320, 200   # the simulated guest's display


def decode_png(data):
    """(width, height, RGB rows) of an 8-bit RGB PNG, read chunk by chunk with every CRC checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 2, 0)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = 1 + 3 * width
    assert len(raw) == stride * height
    return width, height, [raw[y * stride:(y + 1) * stride] for y in range(height)]


def get(admin_tls, path):
    """(status, Content-Type, body) of a GET through the kube-apiserver with the admin's certificate."""
    server, ca, cert, key = admin_tls
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    try:
        with urllib.request.urlopen(server + path, context=ctx, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type"), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type"), exc.read()


def test_simulator_serves_the_screenshot_as_virt_api_does(lab, admin_tls):
    status, _type, body = get(admin_tls, SUB)
    assert status == 200
    verbs = {r["name"]: r["verbs"] for r in json.loads(body)["resources"]}
    assert verbs["virtualmachineinstances/vnc/screenshot"] == ["get"]

    lab.create_vm(vm_manifest("scr", image=CIRROS))
    lab.create_vm(vm_manifest("scr-off", image=CIRROS, run_strategy="Halted"))
    lab.wait_running("scr")
    base = f"{SUB}/namespaces/{lab.ns}/virtualmachineinstances"
    status, ctype, png = get(admin_tls, f"{base}/scr/vnc/screenshot?moveCursor=false")
    assert (status, ctype) == (200, "image/png")
    width, height, rows = decode_png(png)
    assert (width, height) == (WIDTH, HEIGHT)
    assert rows[0] != rows[-1], "the title bar and the console background differ"
    assert get(admin_tls, f"{base}/scr/vnc/screenshot?moveCursor=true")[2] == png, "the same screen"

    # a VMI that does not run: the same answer as the vnc stream's
    off_shot = get(admin_tls, f"{base}/scr-off/vnc/screenshot")
    status, _type, off_vnc = get(admin_tls, f"{base}/scr-off/vnc")
    assert off_shot[0] == status == 404 and json.loads(off_shot[2]) == json.loads(off_vnc)
    assert json.loads(off_vnc)["message"] == 'virtualmachineinstance.kubevirt.io "scr-off" not found'

    # virt-api reads the screen over a VNC connection of its own: an open viewer is disconnected
    viewer = websocket(admin_tls, f"{base}/scr/vnc")
    try:
        assert viewer.recv_data()[1] == b"RFB 003.008\n"
        assert get(admin_tls, f"{base}/scr/vnc/screenshot")[0] == 200
        assert close_frame(viewer) == (1001, "close by another connection")
    finally:
        viewer.close()


def screenshot_task(name, namespace, path, **extra):
    args = {"name": name, "namespace": namespace, "type": "vnc", "screenshot": str(path)}
    args.update(extra.pop("args", {}))
    return dict({"virtops.kubevirt.console": args}, **extra)


def limited_users(api, namespace):
    """ServiceAccounts 'shot-only' (KubeVirt's vnc/screenshot rule alone) and 'console' (docs/rbac/console.yml's
    rules), each with get on VMs and VMIs, bound in ``namespace``."""
    rbac = client.RbacAuthorizationV1Api(api)
    core = client.CoreV1Api(api)
    read = {"apiGroups": ["kubevirt.io"], "resources": ["virtualmachines", "virtualmachineinstances"],
            "verbs": ["get", "list", "watch"]}
    console_rules = yaml.safe_load((REPO / "docs" / "rbac" / "console.yml").read_text())["rules"]
    shot_only = [read, {"apiGroups": ["subresources.kubevirt.io"],
                        "resources": ["virtualmachineinstances/vnc/screenshot"], "verbs": ["get"]}]
    for name, rules in (("shot-only", shot_only), ("console", console_rules)):
        rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": rules})
        core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
        rbac.create_namespaced_role_binding(namespace, {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]})
    return {name: "system:serviceaccount:%s:%s" % (namespace, name) for name in ("shot-only", "console")}


def test_console_module_saves_the_screenshot(lab, kubeconfig, tmp_path):
    ns = lab.ns
    lab.create_vm(vm_manifest("web1", image=CIRROS))
    lab.create_vm(vm_manifest("web1-off", image=CIRROS, run_strategy="Halted"))
    lab.wait_running("web1")
    users = limited_users(lab.api, ns)
    shots = tmp_path / "shots"
    shots.mkdir()
    tasks = [
        screenshot_task("web1", ns, shots / "web1.png", register="first"),
        screenshot_task("web1", ns, shots / "web1.png", register="second"),
        screenshot_task("web1", ns, shots / "check.png", register="check", check_mode=True),
        screenshot_task("web1-off", ns, shots / "off.png", register="off", ignore_errors=True),
        screenshot_task("web1", ns, shots / "missing" / "x.png", register="nodir", ignore_errors=True),
        screenshot_task("web1", ns, shots / "serial.png", args={"type": "serial"}, register="serial",
                        ignore_errors=True),
        screenshot_task("web1", ns, shots / "denied.png", args={"impersonate_user": users["shot-only"]},
                        register="denied", ignore_errors=True),
        screenshot_task("web1", ns, shots / "granted.png", args={"impersonate_user": users["console"]},
                        register="granted"),
        {"ansible.builtin.copy": {"dest": str(tmp_path / "results.json"), "content": "{{ {'first': first, "
                                  "'second': second, 'check': check, 'off': off, 'nodir': nodir, 'serial': serial, "
                                  "'denied': denied, 'granted': granted} | to_json }}"}},
    ]
    plays = [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    proc = run_playbook(tmp_path, plays, env=ansible_env(kubeconfig))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    out = json.loads((tmp_path / "results.json").read_text())

    path = shots / "web1.png"
    data = path.read_bytes()
    assert decode_png(data)[:2] == (WIDTH, HEIGHT)
    assert (path.stat().st_mode & 0o777) == 0o644
    first = out["first"]
    assert first["changed"] is True and first["screenshot"] == {
        "path": str(path), "width": WIDTH, "height": HEIGHT, "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest()}
    assert out["second"]["changed"] is False and out["second"]["screenshot"] == first["screenshot"]

    assert out["check"]["changed"] is True and "would be written" in out["check"]["msg"]
    assert out["check"]["screenshot"]["sha256"] == first["screenshot"]["sha256"]
    assert out["off"]["msg"] == "VM %s/web1-off is not running; start it with virtops.kubevirt.vm_power." % ns
    assert out["nodir"]["msg"] == ("screenshot %s can't be written: the directory %s does not exist; create it first."
                                   % (shots / "missing" / "x.png", shots / "missing"))
    assert out["serial"]["msg"] == "screenshot is used only with type: vnc (type is serial)."
    denied = out["denied"]["msg"]
    assert 'cannot get resource "virtualmachineinstances/vnc" in API group "subresources.kubevirt.io"' in denied
    assert denied.endswith("grant get on virtualmachineinstances/vnc in the subresources.kubevirt.io API group "
                           "(see docs/rbac.md).")
    assert out["granted"]["changed"] is True and (shots / "granted.png").read_bytes() == data
    assert sorted(p.name for p in shots.iterdir()) == ["granted.png", "web1.png"], \
        "check mode and the failed tasks wrote nothing, and no temporary file is left"
