"""virt-api's `portforward` subresource (pkg/virt-api/rest/portforward.go, streamer.go, dialers.go):
a websocket whose binary frames carry the raw bytes of one TCP connection to a port of the VMI.

What KubeVirt v1.8 does, and so this file:
- find the VMI (for `virtualmachines/NAME/portforward`: the VM, which must have `status.created`,
  then its VMI, which it must own); refuse a paused one (409 "VMI is paused");
- dial `status.interfaces[0].ipAddress:PORT` with the path's protocol (tcp unless given) BEFORE the
  websocket upgrade, so a failure is an HTTP error with a metav1.Status: 400 "no network
  interfaces are present", 500 "dialing VM: dial tcp IP:PORT: connect: connection refused";
- there is no phase check of its own: a VMI that is not Running has no interface yet (400) or an
  address nobody answers on any more (500);
- upgrade (subprotocol `plain.kubevirt.io`), copy guest bytes into binary frames and binary frames
  into the guest (other frames are skipped), ping the client every second ("keep alive") and give
  up when no pong came for a minute;
- when either side ends, close both: virt-api closes the TCP connection without a close frame
  (gorilla's Conn.Close), so the client sees the stream end.

The lab reaches the guest's port through `sim.guests.open_connection(vmi, port)` (realguest.py), the
way virt-api reaches the pod's address; UDP is not forwarded by the lab (500, said so).
"""
import asyncio
import ipaddress
import time

from aiohttp import WSMsgType, web

from .util import dig

SUBPROTOCOL = "plain.kubevirt.io"
PING_INTERVAL = 1.0        # streamer.go keepAliveClientStream: a ping every second
KEEPALIVE_TIMEOUT = 60.0   # ... and the read deadline, moved on by each pong
CHUNK = 32 * 1024


class DialError(Exception):
    """Why the port could not be reached: ``kind`` is "bad_request" (400) or "internal" (500)."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind, self.message = kind, message


def target_ip(vmi):
    """getTargetInterfaceIP: the first interface's IP ("" when it has none yet), or DialError."""
    interfaces = dig(vmi, "status", "interfaces", default=[]) or []
    if not interfaces:
        raise DialError("bad_request", "no network interfaces are present")
    return interfaces[0].get("ipAddress") or ""


def address(ip, port):
    try:
        if ipaddress.ip_address(ip).version == 6:
            return f"[{ip}]:{port}"
    except ValueError:
        pass
    return f"{ip}:{port}"


def check_port(port, protocol):
    """What Go's net.Dial says of a port it cannot use (go-restful does not check the path)."""
    if not port.isdigit():
        raise DialError("internal", f"dialing VM: dial {protocol}: lookup {protocol}/{port}: unknown port")
    if int(port) > 65535:
        raise DialError("internal", f"dialing VM: dial {protocol}: address {port}: invalid port")
    return int(port)


async def dial(guests, vmi, port, protocol="tcp"):
    """netDial.DialUnderlying: (reader, writer) to the VMI's port, or DialError with KubeVirt's message."""
    ip = target_ip(vmi)
    protocol = protocol or "tcp"
    if protocol not in ("tcp", "tcp4", "tcp6", "udp", "udp4", "udp6"):
        raise DialError("internal", f"dialing VM: dial {protocol}: unknown network {protocol}")
    number = check_port(port, protocol)
    addr = address(ip, number)
    if protocol.startswith("udp"):
        raise DialError("internal", f"dialing VM: dial {protocol} {addr}: the lab simulator forwards TCP only")
    if not ip or dig(vmi, "status", "phase") != "Running":
        # The launcher pod (and its address) is gone or not there yet: nothing answers.
        raise DialError("internal", f"dialing VM: dial {protocol} {addr}: connect: no route to host")
    try:
        return await guests.open_connection(vmi, number)
    except ConnectionRefusedError:
        raise DialError("internal", f"dialing VM: dial {protocol} {addr}: connect: connection refused") from None
    except (asyncio.TimeoutError, TimeoutError):
        raise DialError("internal", f"dialing VM: dial {protocol} {addr}: i/o timeout") from None
    except OSError as exc:
        reason = (exc.strerror or str(exc) or "error").lower()
        raise DialError("internal", f"dialing VM: dial {protocol} {addr}: connect: {reason}") from None


async def serve(request, reader, writer, **pump_args):
    """Upgrade the request and pump bytes both ways until one side ends (Streamer.Handle)."""
    ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), autoping=False)
    try:
        await ws.prepare(request)
    except Exception:
        writer.close()
        raise
    await pump(ws, reader, writer, **pump_args)
    # gorilla's Conn.Close: the TCP connection ends without a close frame.
    if request.transport is not None:
        request.transport.close()
    return ws


async def pump(ws, reader, writer, ping_interval=PING_INTERVAL, keepalive_timeout=KEEPALIVE_TIMEOUT):
    """Copy guest -> client (binary frames) and client -> guest until either ends; then close the guest side.

    ``ws`` is an aiohttp WebSocketResponse prepared with autoping=False: pings are answered here and
    pongs move the keep-alive deadline on, as gorilla's pong handler does."""
    state = {"pong": time.monotonic()}
    tasks = [asyncio.ensure_future(_to_client(ws, reader)),
             asyncio.ensure_future(_to_guest(ws, writer, state)),
             asyncio.ensure_future(_keepalive(ws, state, ping_interval, keepalive_timeout))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Also when aiohttp cancels the handler because the client went away: the guest side closes.
        for task in tasks:
            task.cancel()
        writer.close()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _to_client(ws, reader):
    """kvcorev1.CopyTo: each read from the guest is one binary message."""
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                return
            await ws.send_bytes(data)
    except (ConnectionError, RuntimeError):
        return


async def _to_guest(ws, writer, state):
    """kvcorev1.CopyFrom: binary messages go to the guest; a close (or an error) ends the copy."""
    try:
        while True:
            msg = await ws.receive()
            if msg.type == WSMsgType.BINARY:
                writer.write(msg.data)
                await writer.drain()
            elif msg.type == WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                state["pong"] = time.monotonic()
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return
            # text frames are skipped, as binaryReader does
    except (ConnectionError, RuntimeError):
        return


async def _keepalive(ws, state, interval, timeout):
    """keepAliveClientStream: ping every ``interval``; no pong for ``timeout`` ends the stream."""
    while True:
        await asyncio.sleep(interval)
        if time.monotonic() - state["pong"] > timeout:
            return
        try:
            await ws.ping(b"keep alive")
        except (ConnectionError, RuntimeError):
            return
