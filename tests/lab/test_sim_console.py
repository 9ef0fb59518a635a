"""Simulator: serial console and VNC websockets through the aggregation layer; metrics."""

import struct
import time
import urllib.request

import websocket as wsc

from sim_helpers import CIRROS, SUB, admin_tls, lab, vm_manifest, wait_for, websocket  # noqa: F401

USER_DATA = "#cloud-config\nuser: alice\npassword: wonderland\nchpasswd: {expire: false}\n"


_pending = {}


def read_until(ws, marker, timeout=10):
    """Text received up to and including marker; what follows stays for the next read."""
    buf = _pending.pop(id(ws), b"")
    deadline = time.monotonic() + timeout
    while marker.encode() not in buf:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {marker!r} in {buf.decode(errors='replace')!r}")
        opcode, data = ws.recv_data()
        assert opcode == wsc.ABNF.OPCODE_BINARY, "virt-api sends binary frames"
        buf += data
    end = buf.index(marker.encode()) + len(marker.encode())
    _pending[id(ws)] = buf[end:]
    return buf[:end].decode(errors="replace")


def send(ws, text):
    ws.send_binary(text.encode())


def test_console_login_and_commands(lab, admin_tls):
    lab.create_vm(vm_manifest("vm-con", user_data=USER_DATA))
    vmi = lab.wait_running("vm-con")
    ws = websocket(admin_tls, f"{SUB}/namespaces/{lab.ns}/virtualmachineinstances/vm-con/console")
    try:
        assert ws.subprotocol == "plain.kubevirt.io"
        banner = read_until(ws, "vm-con login: ")
        assert "Fedora Linux" in banner
        send(ws, "alice\r")
        read_until(ws, "Password: ")
        send(ws, "wrong\r")
        read_until(ws, "Login incorrect")
        read_until(ws, "login: ")
        send(ws, "alice\r")
        read_until(ws, "Password: ")
        send(ws, "wonderland\r")
        read_until(ws, "[alice@vm-con ~]$ ")
        send(ws, "hostname\r")
        out = read_until(ws, "$ ")
        assert "vm-con\r\n" in out
        send(ws, "whoami\r")
        assert "alice" in read_until(ws, "$ ")
        send(ws, "ip -4 addr\r")
        out = read_until(ws, "$ ")
        assert "inet 127.0.0.1/8" in out and "eth0" in out
        send(ws, "uptime\r")
        assert " up " in read_until(ws, "$ ")
        send(ws, "frobnicate\r")
        assert "-bash: frobnicate: command not found" in read_until(ws, "$ ")
        send(ws, "exit\r")
        assert "logout" in read_until(ws, "login: ")
    finally:
        ws.close()
    assert vmi["status"]["phase"] == "Running"


def test_console_default_user_and_not_running(lab, admin_tls):
    lab.create_vm(vm_manifest("vm-cir", image=CIRROS))
    lab.wait_running("vm-cir")
    ws = websocket(admin_tls, f"{SUB}/namespaces/{lab.ns}/virtualmachineinstances/vm-cir/console")
    try:
        read_until(ws, "vm-cir login: ")
        send(ws, "cirros\rgocubsgo\r")
        read_until(ws, "$ ")
        send(ws, "hostname\r")
        assert "vm-cir" in read_until(ws, "$ ")
    finally:
        ws.close()
    lab.create_vm(vm_manifest("vm-off", run_strategy="Halted"))
    status, body = lab.vmi_sub("vm-off", "console", method="GET")
    assert status == 404


def quiet(ws, seconds):
    """Whatever arrives within seconds (b'' when the line stays quiet)."""
    ws.settimeout(seconds)
    buf = b""
    try:
        while True:
            _, data = ws.recv_data()
            buf += data
    except wsc.WebSocketTimeoutException:
        pass
    finally:
        ws.settimeout(10)
    return buf


def close_frame(ws):
    """(code, reason) of the close frame the server sent, skipping data still queued before it."""
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == wsc.ABNF.OPCODE_CLOSE:
            return struct.unpack(">H", data[:2])[0], data[2:].decode()


def booted(lab, name):
    """Wait until the guest is past its boot (the simulator's guests take 2.5 x boot delay, >= 4 s)."""
    vmi = lab.vmi(name)
    since = next(p["phaseTransitionTimestamp"] for p in vmi["status"]["phaseTransitionTimestamps"]
                 if p["phase"] == "Running")
    import datetime as dt
    started = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
    left = 6.0 - (dt.datetime.now(dt.timezone.utc) - started).total_seconds()
    if left > 0:
        time.sleep(left)


def test_serial_console_is_quiet_after_boot_until_a_key_is_pressed(lab, admin_tls):
    lab.create_vm(vm_manifest("vm-q", image=CIRROS))
    lab.wait_running("vm-q")
    booted(lab, "vm-q")
    path = f"{SUB}/namespaces/{lab.ns}/virtualmachineinstances/vm-q/console"
    ws = websocket(admin_tls, path)
    try:
        assert quiet(ws, 1.5) == b"", "a booted guest writes nothing until a key is pressed"
        send(ws, "\r")
        out = read_until(ws, "vm-q login: ")
        assert "CirrOS" in out and "Linux version" not in out, "agetty prompts again, no boot lines"
        # a soft reboot while connected: the boot messages, then the prompt
        status, _ = lab.vmi_sub("vm-q", "softreboot")
        assert status == 200
        out = read_until(ws, "vm-q login: ", timeout=15)
        assert "reboot: Restarting system" in out and "Linux version" in out
    finally:
        ws.close()


def test_one_console_connection_at_a_time(lab, admin_tls):
    lab.create_vm(vm_manifest("vm-one", image=CIRROS))
    lab.wait_running("vm-one")
    path = f"{SUB}/namespaces/{lab.ns}/virtualmachineinstances/vm-one/console"
    first = websocket(admin_tls, path)
    read_until(first, "vm-one login: ")          # connected during boot: boot lines, then the prompt
    send(first, "cirros\rgocubsgo\r")
    read_until(first, "$ ")
    second = websocket(admin_tls, path)
    third = None
    try:
        # virt-handler serves one connection per VMI: the new one closes the old one
        assert close_frame(first) == (1001, "close by another connection")
        # the serial line is the guest's: the shell is still logged in
        send(second, "\r")
        assert read_until(second, "$ ").endswith("$ ")
        send(second, "whoami\r")
        assert "cirros" in read_until(second, "$ ")
        third = websocket(admin_tls, path)
        assert close_frame(second) == (1001, "close by another connection")
        send(third, "exit\r")
        assert "logout" in read_until(third, "vm-one login: ")
    finally:
        for ws in (first, second, third):
            if ws is not None:
                ws.close()
    # VNC alike
    vnc_path = f"{SUB}/namespaces/{lab.ns}/virtualmachineinstances/vm-one/vnc"
    v1 = websocket(admin_tls, vnc_path)
    try:
        assert v1.recv_data()[1] == b"RFB 003.008\n"
        v2 = websocket(admin_tls, vnc_path)
        assert close_frame(v1) == (1001, "close by another connection")
        assert v2.recv_data()[1] == b"RFB 003.008\n"
        v2.close()
    finally:
        v1.close()


def test_vnc_rfb_handshake_and_framebuffer(lab, admin_tls):
    lab.create_vm(vm_manifest("vm-vnc"))
    lab.wait_running("vm-vnc")
    ws = websocket(admin_tls, f"{SUB}/namespaces/{lab.ns}/virtualmachineinstances/vm-vnc/vnc")
    buf = b""

    def need(n):
        nonlocal buf
        while len(buf) < n:
            _, data = ws.recv_data()
            buf += data
        out, buf = buf[:n], buf[n:]
        return out
    try:
        assert need(12) == b"RFB 003.008\n"
        ws.send_binary(b"RFB 003.008\n")
        count = need(1)[0]
        types = need(count)
        assert 1 in types, "security type None"
        ws.send_binary(b"\x01")
        assert struct.unpack(">I", need(4))[0] == 0
        ws.send_binary(b"\x01")                                   # ClientInit, shared
        width, height = struct.unpack(">HH", need(4))
        bpp, depth = need(16)[:2]
        name_len = struct.unpack(">I", need(4))[0]
        name = need(name_len).decode()
        assert (width, height, bpp) == (320, 200, 32) and depth == 24
        assert name == f"{lab.ns}_vm-vnc"
        ws.send_binary(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))   # full update request
        mtype, nrect = struct.unpack(">BxH", need(4))
        x, y, w, h, enc = struct.unpack(">HHHHi", need(12))
        pixels = need(w * h * 4)
        assert (mtype, nrect, enc) == (0, 1, 0) and (w, h) == (width, height)
        assert len(set(pixels[i:i + 4] for i in range(0, len(pixels), 4))) > 1, "not a blank frame"
    finally:
        ws.close()


def test_metrics_endpoint_has_kubevirt_series_that_move(lab, lab_info):
    lab.create_vm(vm_manifest("vm-met"))
    lab.wait_running("vm-met")
    url = f"http://127.0.0.1:{lab_info['simulator']['metrics_port']}/metrics"

    def scrape():
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
        values = {}
        for line in text.splitlines():
            if line.startswith("#") or f'name="vm-met"' not in line or f'namespace="{lab.ns}"' not in line:
                continue
            series, value = line.rsplit(" ", 1)
            values[series] = float(value)
        return text, values
    # virt-handler's collector sees the VMI a moment after the API says Running (the simulator's
    # informer, under load): scrape until its series are there
    text, first = wait_for(lambda: (lambda t, v: (t, v) if any(
        k.startswith("kubevirt_vmi_cpu_usage_seconds_total{") for k in v) else None)(*scrape()), timeout=15,
        what="vm-met's series on /metrics")
    for name in ("kubevirt_vmi_cpu_usage_seconds_total", "kubevirt_vmi_memory_available_bytes",
                 "kubevirt_vmi_memory_usable_bytes", "kubevirt_vmi_network_receive_bytes_total",
                 "kubevirt_vmi_network_transmit_bytes_total", "kubevirt_vmi_storage_read_traffic_bytes_total",
                 "kubevirt_vmi_storage_write_traffic_bytes_total", "kubevirt_vmi_info"):
        assert f"# TYPE {name} " in text
        assert any(s.startswith(name + "{") for s in first), name
    info = next(s for s in first if s.startswith("kubevirt_vmi_info{"))
    assert 'phase="running"' in info and 'guest_os_name="Fedora Linux"' in info
    time.sleep(2.2)
    _, second = scrape()
    for name in ("kubevirt_vmi_cpu_usage_seconds_total", "kubevirt_vmi_network_receive_bytes_total",
                 "kubevirt_vmi_storage_read_traffic_bytes_total"):
        s = next(k for k in first if k.startswith(name + "{"))
        assert second[s] > first[s] > 0, f"{name} moves"
    mem = next(k for k in first if k.startswith("kubevirt_vmi_memory_available_bytes{"))
    assert first[mem] == 128 * 2 ** 20



