"""The simulator's portforward subresource (lab/simulator/portforward.py) without a control plane:
the dial's errors as KubeVirt words them, and the websocket pump against an in-test TCP server."""
import asyncio

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from lab.simulator import portforward as pf


def vmi(ip="10.128.1.5", phase="Running", interfaces=True):
    status = {"phase": phase}
    if interfaces:
        status["interfaces"] = [{"name": "default", "ipAddress": ip, "ipAddresses": [ip] if ip else []}]
    return {"metadata": {"name": "v1", "namespace": "ns", "uid": "u1"}, "status": status}


class Guests:
    """sim.guests with open_connection answering as told."""

    def __init__(self, outcome):
        self.outcome, self.calls = outcome, []

    async def open_connection(self, vmi, port):
        self.calls.append(port)
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def dial_error(guests, obj, port="22", protocol=None):
    with pytest.raises(pf.DialError) as info:
        asyncio.run(pf.dial(guests, obj, port, protocol))
    return info.value.kind, info.value.message


@pytest.mark.parametrize("obj, port, protocol, expected", [
    (vmi(), "22", None, ("internal", "dialing VM: dial tcp 10.128.1.5:22: connect: connection refused")),
    (vmi(), "22", "tcp", ("internal", "dialing VM: dial tcp 10.128.1.5:22: connect: connection refused")),
    (vmi("fd10:0:2::2"), "2222", None, ("internal", "dialing VM: dial tcp [fd10:0:2::2]:2222: connect: "
                                                    "connection refused")),
    (vmi(interfaces=False, phase="Scheduling"), "22", None, ("bad_request", "no network interfaces are present")),
    (vmi(phase="Succeeded"), "22", None, ("internal", "dialing VM: dial tcp 10.128.1.5:22: connect: no route to host")),
    (vmi(), "ssh", None, ("internal", "dialing VM: dial tcp: lookup tcp/ssh: unknown port")),
    (vmi(), "70000", None, ("internal", "dialing VM: dial tcp: address 70000: invalid port")),
    (vmi(), "22", "sctp", ("internal", "dialing VM: dial sctp: unknown network sctp")),
    (vmi(), "53", "udp", ("internal", "dialing VM: dial udp 10.128.1.5:53: the lab simulator forwards TCP only")),
])
def test_dial_errors_as_kubevirt_words_them(obj, port, protocol, expected):
    guests = Guests(ConnectionRefusedError("refused"))
    assert dial_error(guests, obj, port, protocol) == expected


def test_dial_timeout_and_other_socket_errors():
    assert dial_error(Guests(TimeoutError()), vmi())[1] == "dialing VM: dial tcp 10.128.1.5:22: i/o timeout"
    err = OSError(113, "No route to host")
    assert dial_error(Guests(err), vmi())[1] == "dialing VM: dial tcp 10.128.1.5:22: connect: no route to host"


def test_dial_hands_back_the_guest_connection():
    guests = Guests(("reader", "writer"))
    assert asyncio.run(pf.dial(guests, vmi(), "22")) == ("reader", "writer")
    assert guests.calls == [22]


# -- the stream ------------------------------------------------------------------------------------
async def forwarding(guest_handler, client_fn, client_autoping=True, **pump_args):
    """Run a TCP 'guest' (guest_handler), a virt-api-like app that forwards to it, and client_fn(ws)."""
    guest = await asyncio.start_server(guest_handler, "127.0.0.1", 0)
    port = guest.sockets[0].getsockname()[1]
    done = asyncio.Event()

    async def handler(request):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await pf.serve(request, reader, writer, **pump_args)
        finally:   # aiohttp may cancel the handler once the client has gone
            done.set()

    app = web.Application()
    app.router.add_get("/pf", handler)
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(server.make_url("/pf"), protocols=(pf.SUBPROTOCOL,),
                                          autoping=client_autoping) as ws:
                assert ws.protocol == pf.SUBPROTOCOL
                result = await client_fn(ws)
        await asyncio.wait_for(done.wait(), 5)
        return result
    finally:
        await server.close()
        guest.close()
        await guest.wait_closed()


async def echo(reader, writer):
    while True:
        data = await reader.read(1024)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()


def test_bytes_round_trip_in_binary_frames_text_frames_skipped():
    async def client(ws):
        await ws.send_str("not forwarded")
        await ws.send_bytes(b"SSH-2.0-test\r\n")
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type == WSMsgType.BINARY
        got = msg.data
        big = bytes(range(256)) * 1024
        await ws.send_bytes(big)
        received = b""
        while len(received) < len(big):
            msg = await asyncio.wait_for(ws.receive(), 5)
            assert msg.type == WSMsgType.BINARY
            received += msg.data
        await ws.close()
        return got, received == big

    assert asyncio.run(forwarding(echo, client)) == (b"SSH-2.0-test\r\n", True)


def test_guest_closing_ends_the_stream_without_a_close_frame():
    async def banner_then_close(reader, writer):
        writer.write(b"SSH-2.0-dropbear\r\n")
        await writer.drain()
        writer.close()

    async def client(ws):
        msgs = []
        while True:
            msg = await asyncio.wait_for(ws.receive(), 5)
            msgs.append(msg.type)
            if msg.type != WSMsgType.BINARY:
                return msgs, msg.data if msg.type == WSMsgType.BINARY else None

    types, _ = asyncio.run(forwarding(banner_then_close, client))
    assert types[0] == WSMsgType.BINARY
    assert types[-1] in (WSMsgType.CLOSED, WSMsgType.ERROR, WSMsgType.CLOSE)


def test_client_closing_closes_the_guest_connection():
    seen = {}
    finished = asyncio.Event()

    async def guest(reader, writer):
        seen["data"] = await reader.read()   # to EOF
        writer.close()
        finished.set()

    async def client(ws):
        await ws.send_bytes(b"last words")
        await ws.close()
        await asyncio.wait_for(finished.wait(), 5)

    asyncio.run(forwarding(guest, client))
    assert seen["data"] == b"last words"


def test_keepalive_pings_and_gives_up_without_pongs():
    seen = {}
    closed = asyncio.Event()

    async def guest(reader, writer):
        seen["eof"] = await reader.read() == b""
        writer.close()
        closed.set()

    async def client(ws):
        msg = await asyncio.wait_for(ws.receive(), 5)
        seen["ping"] = (msg.type, msg.data)
        # never answer: the stream ends after keepalive_timeout
        while msg.type not in (WSMsgType.CLOSED, WSMsgType.ERROR, WSMsgType.CLOSE):
            msg = await asyncio.wait_for(ws.receive(), 5)
        await asyncio.wait_for(closed.wait(), 5)

    asyncio.run(forwarding(guest, client, client_autoping=False, ping_interval=0.05, keepalive_timeout=0.3))
    assert seen["ping"] == (WSMsgType.PING, b"keep alive")
    assert seen["eof"] is True
