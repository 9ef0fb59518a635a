"""The lab's fault-injection proxy: a TLS reverse proxy in front of kube-apiserver, loopback only.

    PYTHONPATH=lab python -m labkit.faultproxy --listen 127.0.0.1:PORT \\
        --upstream https://127.0.0.1:APIPORT --ca CA --tls-cert CRT --tls-key KEY \\
        [--client-ca CA --upstream-cert ADMIN.crt --upstream-key ADMIN.key] \\
        --rate 0.1 --seed 42 [--latency-ms 1000] [--faults 500,503,429,reset,cut-watch,latency]

Each proxied request draws four numbers from one `random.Random(seed)`, in the order requests
arrive, so a given request order always gives the same faults. With probability `rate` it gets
one fault, chosen evenly among the enabled kinds that apply to it:

    500, 503    a metav1 Status (InternalError, ServiceUnavailable); the apiserver never sees it
    429         a Status (TooManyRequests) with Retry-After: 1
    reset       TCP reset without a response, before forwarding; for a write, one time in four
                after forwarding it instead (counted as reset-after-write): the write happened,
                the client never hears it. `reset-after-write` can also be enabled on its own.
    cut-watch   watches only: forward, then drop the stream after 0-4 events or 0.5-5 s
    latency     sleep up to --latency-ms before forwarding

Identity: a request with an Authorization header goes upstream with that header and no client
cert. Without one, a client cert is replaced by --upstream-cert plus Impersonate-User (its CN)
and Impersonate-Group (each O), except for system:masters certs, which pass as the admin cert.
Anything else goes upstream anonymously.

Never faulted: upgrade requests (websockets, e.g. the VM console: a raw byte pipe),
GET /faultproxy/stats (JSON counters) and /faultproxy/healthz. One line per fault on stdout.
If the apiserver cannot be reached the proxy answers 502 with a Status saying so.
"""
import argparse
import asyncio
import ipaddress
import json
import random
import signal
import socket
import ssl
import struct
import sys
import time
from collections import Counter, namedtuple
from urllib.parse import parse_qs, urlsplit

FAULTS = ("500", "503", "429", "reset", "cut-watch", "latency")
EXTRA_FAULTS = ("reset-after-write",)
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
AFTER_WRITE_SHARE = 0.25  # of `reset` faults on writes
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
              "upgrade", "expect", "content-length", "host"}
LIMIT = 1 << 20  # longest header block / chunk-size line we accept
STATUS = {  # code -> (reason phrase, Status.reason, Status.message)
    502: ("Bad Gateway", "InternalError", ""),
    500: ("Internal Server Error", "InternalError",
          "Internal error occurred: injected by the lab's fault proxy"),
    503: ("Service Unavailable", "ServiceUnavailable",
          "the server is currently unable to handle the request (injected by the lab's fault proxy)"),
    429: ("Too Many Requests", "TooManyRequests",
          "Too many requests, please try again later. (injected by the lab's fault proxy)"),
    403: ("Forbidden", "Forbidden", ""),
}


class Request:
    def __init__(self, method, target, version, headers, body=b""):
        self.method, self.target, self.version = method, target, version
        self.headers, self.body = headers, body
        url = urlsplit(target)
        self.path = url.path
        query = parse_qs(url.query)
        self.watch = query.get("watch", [""])[-1] in ("true", "1") or "/watch/" in self.path  # or legacy /watch/ paths
        self.upgrade = "upgrade" in self.header("connection").lower() and bool(self.header("upgrade"))

    def header(self, name):
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), "")

    def keep_alive(self):
        conn = self.header("connection").lower()
        return "close" not in conn and (self.version == "HTTP/1.1" or "keep-alive" in conn)


class Stats:
    def __init__(self, args):
        self.requests = self.forwarded = self.upgrades = self.streaming = 0
        self.faults = Counter()
        self.methods = {}
        self.config = {"rate": args.rate, "seed": args.seed, "faults": args.faults,
                       "latency_ms": args.latency_ms, "upstream": args.upstream}

    def method(self, method):
        return self.methods.setdefault(method, {"requests": 0, "faults": Counter()})

    def fault(self, method, kind):
        self.faults[kind] += 1
        self.method(method)["faults"][kind] += 1

    def as_json(self):
        return {"requests": self.requests, "forwarded": self.forwarded, "upgrades": self.upgrades,
                "streaming": self.streaming,
                "faults_total": sum(self.faults.values()), "faults": dict(self.faults),
                "methods": {m: {"requests": s["requests"], "faults": dict(s["faults"])}
                            for m, s in self.methods.items()},
                "config": self.config}


Fault = namedtuple("Fault", "kind u v")  # u, v: the draws that size a fault (cut point, delay)


def _reset(writer):
    """Drop a connection with a TCP RST, no TLS close_notify, no response."""
    sock = writer.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, AttributeError):
        pass
    writer.transport.abort()


def _head(first_line, headers):
    return (first_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("latin-1")


def _parse_head(data):
    lines = data[:-4].decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


async def _read_chunked(reader):
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return body
        body += (await reader.readexactly(size + 2))[:-2]


class UpstreamDown(Exception):
    pass


async def _race(coro, gone, deadline=None):
    """coro's result; None if the `gone` future finishes or the deadline passes first."""
    task = asyncio.ensure_future(coro)
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    done, _ = await asyncio.wait({task, gone} - {None}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        return task.result()
    task.cancel()
    return None


class Client:
    """One client connection: its streams, its upstream connections (by "with the admin cert?")
    and a future that is done once the client has gone."""

    def __init__(self, reader, writer):
        self.reader, self.writer, self.upstreams = reader, writer, {}
        self.gone = asyncio.ensure_future(writer.wait_closed())


class Upstream:
    """One TLS connection to the apiserver, reused while responses are framed."""

    def __init__(self, reader, writer):
        self.reader, self.writer, self.used = reader, writer, False

    def usable(self):
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self):
        self.writer.transport.abort()


class FaultProxy:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.enabled = args.faults
        self.stats = Stats(args)
        self.tasks = set()
        up = urlsplit(args.upstream)
        self.up_host, self.up_port = up.hostname, up.port or 443
        self.up_ctx = {False: self._client_ctx(args.ca)}
        if args.upstream_cert:
            self.up_ctx[True] = self._client_ctx(args.ca, args.upstream_cert, args.upstream_key)
        self.server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_ctx.load_cert_chain(args.tls_cert, args.tls_key)
        self.server_ctx.set_alpn_protocols(["http/1.1"])
        if args.client_ca:
            self.server_ctx.load_verify_locations(args.client_ca)
            self.server_ctx.verify_mode = ssl.CERT_OPTIONAL

    @staticmethod
    def _client_ctx(ca, cert=None, key=None):
        ctx = ssl.create_default_context(cafile=ca)
        ctx.set_alpn_protocols(["http/1.1"])
        if cert:
            ctx.load_cert_chain(cert, key)
        return ctx

    # ------------------------------------------------------------------ decisions
    def draw(self, req):
        u = [self.rng.random() for _ in range(4)]  # always four: the sequence depends only on order
        kinds = [k for k in self.enabled if (k != "cut-watch" or req.watch)
                 and (k != "reset-after-write" or req.method in WRITES)]
        if not kinds or u[0] >= self.args.rate:
            return None
        kind = kinds[min(int(u[1] * len(kinds)), len(kinds) - 1)]
        if kind == "reset" and req.method in WRITES and u[2] < AFTER_WRITE_SHARE:
            kind = "reset-after-write"
        return Fault(kind, u[2], u[3])

    def log(self, n, req, kind, detail=""):
        print(f"faultproxy: #{n} {kind} {req.method} {req.target}{detail}", flush=True)

    def identity(self, req, writer):
        """(use the admin cert upstream?, headers to add) or a 403 message."""
        if req.header("authorization"):
            return False, []
        cert = writer.get_extra_info("peercert")
        if not cert:
            return False, []
        cn, orgs = "", []
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    cn = value
                elif key == "organizationName":
                    orgs.append(value)
        if "system:masters" in orgs:
            return True, []
        if any(k.lower().startswith("impersonate-") for k, _ in req.headers):
            return f"the fault proxy cannot pass Impersonate-* headers for client-cert user {cn!r}"
        return True, [("Impersonate-User", cn)] + [("Impersonate-Group", o) for o in orgs]

    # ------------------------------------------------------------------ connections
    async def handle(self, reader, writer):
        client = Client(reader, writer)
        task = asyncio.current_task()
        self.tasks.add(task)  # asyncio drops its own reference when the client disconnects
        try:
            while await self.one_request(client):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ssl.SSLError, TimeoutError, ValueError, asyncio.CancelledError):
            pass  # the client went away, sent garbage, or the proxy is stopping
        except Exception as exc:  # noqa: BLE001 - one bad connection must not stop the proxy
            print(f"faultproxy: error: {exc!r}", file=sys.stderr, flush=True)
        finally:
            for up in client.upstreams.values():
                up.close()
            client.gone.cancel()
            self.tasks.discard(task)
            if not writer.is_closing():
                writer.close()

    async def connect(self, client, with_cert):
        up = client.upstreams.get(with_cert)
        if up and up.usable():
            return up
        try:
            reader, w = await asyncio.open_connection(self.up_host, self.up_port, ssl=self.up_ctx[with_cert],
                                                      server_hostname=self.up_host, limit=LIMIT)
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamDown(f"the fault proxy cannot reach the apiserver {self.args.upstream}: {exc}") from exc
        client.upstreams[with_cert] = Upstream(reader, w)
        return client.upstreams[with_cert]

    async def one_request(self, client):
        """Serve one request; False when the client connection is finished."""
        try:
            data = await client.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        first, headers = _parse_head(data)
        method, target, version = first.split(" ", 2)
        req = Request(method, target, version, headers)
        try:
            return await self.serve_request(req, client)
        except UpstreamDown as exc:
            print(f"faultproxy: {exc}", file=sys.stderr, flush=True)
            self.status(client.writer, 502, str(exc))
            await client.writer.drain()
            return False

    async def serve_request(self, req, client):
        method, reader, writer = req.method, client.reader, client.writer
        if req.path in ("/faultproxy/stats", "/faultproxy/healthz"):
            stats = req.path.endswith("stats")
            body = json.dumps(self.stats.as_json(), indent=1) if stats else "ok"
            self.respond(writer, 200, "OK", body.encode(), "application/json" if stats else "text/plain")
            await writer.drain()
            return req.keep_alive()

        self.stats.requests += 1
        n = self.stats.requests
        self.stats.method(method)["requests"] += 1
        if not req.upgrade:
            if "100-continue" in req.header("expect").lower():
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if "chunked" in req.header("transfer-encoding").lower():
                req.body = await _read_chunked(reader)
            elif req.header("content-length"):
                req.body = await reader.readexactly(int(req.header("content-length")))
        ident = self.identity(req, writer)
        if isinstance(ident, str):
            self.status(writer, 403, ident)
            await writer.drain()
            return req.keep_alive() and not req.upgrade
        with_cert, extra = ident
        if req.upgrade:
            self.stats.upgrades += 1
            await self.pipe(req, client, await self.connect(client, with_cert), extra)
            return False

        fault = self.draw(req)
        kind = fault.kind if fault else None
        if kind in ("500", "503", "429", "reset", "latency"):
            self.stats.fault(method, kind)
        if kind in ("500", "503", "429"):
            self.log(n, req, kind)
            self.status(writer, int(kind), STATUS[int(kind)][2], [("X-Faultproxy-Fault", kind)]
                        + ([("Retry-After", "1")] if kind == "429" else []))
            await writer.drain()
            return req.keep_alive()
        if kind == "reset":
            self.log(n, req, kind, " (before forwarding)")
            _reset(writer)
            return False
        if kind == "latency":
            delay = fault.v * self.args.latency_ms / 1000
            self.log(n, req, kind, f" {delay * 1000:.0f}ms")
            await asyncio.sleep(delay)

        up = await self.connect(client, with_cert)
        try:
            status_line, status, rheaders = await self.send(up, req, extra)
        except (ConnectionError, asyncio.IncompleteReadError):
            if not up.used:
                raise
            up.close()  # a kept-alive connection the apiserver had closed: the request never got there
            up = await self.connect(client, with_cert)
            status_line, status, rheaders = await self.send(up, req, extra)
        up.used = True
        self.stats.forwarded += 1

        if kind == "reset-after-write":
            await self.relay(up, None, req, status, rheaders)
            self.stats.fault(method, kind)
            self.log(n, req, kind, f" (apiserver answered {status}, client reset)")
            _reset(writer)
            return False
        cut = None
        if kind == "cut-watch":
            cut = {"events": int(fault.u * 5), "deadline": time.monotonic() + 0.5 + fault.v * 4.5}
        writer.write(_head(status_line, rheaders))
        done = await self.relay(up, client, req, status, rheaders, cut)
        if done == "cut":
            self.stats.fault(method, kind)
            self.log(n, req, kind, f" after {cut['seen']} events")
            writer.transport.abort()  # no terminating chunk, no close_notify
            up.close()
            client.upstreams.pop(with_cert, None)
            return False
        if done in ("eof", "gone"):
            up.close()
            client.upstreams.pop(with_cert, None)
            return False
        return req.keep_alive()

    async def send(self, up, req, extra):
        headers = [(k, v) for k, v in req.headers if k.lower() not in HOP_BY_HOP]
        headers.insert(0, ("Host", f"{self.up_host}:{self.up_port}"))
        if req.body or req.method in WRITES:
            headers.append(("Content-Length", str(len(req.body))))
        up.writer.write(_head(f"{req.method} {req.target} HTTP/1.1", headers + extra) + req.body)
        await up.writer.drain()
        first, rheaders = _parse_head(await up.reader.readuntil(b"\r\n\r\n"))
        return first, int(first.split(" ", 2)[1]), rheaders

    async def relay(self, up, client, req, status, rheaders, cut=None):
        """Copy the response body as it comes (client None: read and drop it), keeping its framing.
        Returns "done" (upstream reusable), "eof" (body ended with the upstream connection),
        "cut" (cut-watch fired) or "gone" (the client left mid-stream)."""
        def header(name):
            return next((v for k, v in rheaders if k.lower() == name), "")

        async def out(data):
            if client is not None:
                client.writer.write(data)
                await client.writer.drain()

        if req.method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return "done"
        if "chunked" in header("transfer-encoding").lower():
            self.stats.streaming += 1
            try:
                return await self.relay_chunks(up, client and client.gone, out, "json" in header("content-type"), cut)
            finally:
                self.stats.streaming -= 1
        if header("content-length"):
            left = int(header("content-length"))
            while left:
                data = await up.reader.readexactly(min(left, 65536))
                left -= len(data)
                await out(data)
            return "eof" if "close" in header("connection").lower() else "done"
        while data := await up.reader.read(65536):
            await out(data)
        return "eof"

    async def relay_chunks(self, up, gone, out, json_stream, cut):
        """Chunk by chunk (watches, logs, long lists), each sent on as soon as it arrives. A cut
        comes after cut["events"] events (lines of a JSON stream, else chunks) or at its deadline."""
        seen = 0
        try:
            while True:
                if cut is not None and seen >= cut["events"]:
                    return "cut"
                line = await _race(up.reader.readuntil(b"\r\n"), gone, cut and cut["deadline"])
                if line is None:
                    return "gone" if gone is not None and gone.done() else "cut"
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while (trailer := await up.reader.readuntil(b"\r\n")) != b"\r\n":
                        line += trailer
                    await out(line + b"\r\n")
                    return "done"
                data = await up.reader.readexactly(size + 2)
                await out(line + data)
                seen += data[:-2].count(b"\n") if json_stream else 1
        finally:
            if cut is not None:
                cut["seen"] = seen

    async def pipe(self, req, client, up, extra):
        """Upgrade (websocket, SPDY): send the request, then copy bytes both ways until one side ends."""
        headers = [(k, v) for k, v in req.headers if k.lower() != "host"]
        headers.insert(0, ("Host", f"{self.up_host}:{self.up_port}"))
        up.writer.write(_head(f"{req.method} {req.target} HTTP/1.1", headers + extra))

        async def copy(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, ssl.SSLError):
                pass

        tasks = [asyncio.create_task(copy(client.reader, up.writer)),
                 asyncio.create_task(copy(up.reader, client.writer))]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        up.close()

    # ------------------------------------------------------------------ local responses
    def respond(self, writer, code, phrase, body, content_type, extra=()):
        headers = [("Content-Type", content_type), ("Cache-Control", "no-cache, private"),
                   ("Content-Length", str(len(body))), *extra]
        writer.write(_head(f"HTTP/1.1 {code} {phrase}", headers) + body)

    def status(self, writer, code, message, extra=()):
        phrase, reason, _ = STATUS[code]
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}
        if code == 429:
            body["details"] = {"retryAfterSeconds": 1}
        self.respond(writer, code, phrase, json.dumps(body).encode(), "application/json", extra)

    # ------------------------------------------------------------------ server
    async def serve(self, host, port):
        server = await asyncio.start_server(self.handle, host, port, ssl=self.server_ctx, limit=LIMIT)
        port = server.sockets[0].getsockname()[1]
        print(f"faultproxy: listening on https://{host}:{port} -> {self.args.upstream} "
              f"rate={self.args.rate} seed={self.args.seed} faults={','.join(self.enabled)}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with server:
            await stop.wait()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)  # a second signal while stopping ends the process
        return 0


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m labkit.faultproxy", description=__doc__.split("\n")[0])
    p.add_argument("--listen", required=True, help="127.x.y.z:PORT (loopback only; port 0 picks one)")
    p.add_argument("--upstream", required=True, help="https://127.0.0.1:APIPORT")
    p.add_argument("--ca", required=True, help="CA bundle that verifies the upstream apiserver")
    p.add_argument("--tls-cert", required=True, help="the proxy's serving cert")
    p.add_argument("--tls-key", required=True)
    p.add_argument("--client-ca", help="CA for (optional) client certs; they are impersonated")
    p.add_argument("--upstream-cert", help="admin client cert used upstream for client-cert users")
    p.add_argument("--upstream-key")
    p.add_argument("--rate", type=float, default=0.0, help="share of requests that get a fault, 0..1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency-ms", type=int, default=1000, help="largest added latency")
    p.add_argument("--faults", default=",".join(FAULTS), help="comma-separated: " + ",".join(FAULTS + EXTRA_FAULTS))
    args = p.parse_args(argv)
    args.faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = [f for f in args.faults if f not in FAULTS + EXTRA_FAULTS]
    if unknown:
        p.error(f"--faults: unknown kind {', '.join(unknown)}; known: {', '.join(FAULTS + EXTRA_FAULTS)}")
    if not 0 <= args.rate <= 1:
        p.error("--rate must be between 0 and 1")
    if args.latency_ms < 0:
        p.error("--latency-ms must be 0 or more")
    if args.client_ca and not (args.upstream_cert and args.upstream_key):
        p.error("--client-ca needs --upstream-cert and --upstream-key to pass client-cert users on")
    host, _, port = args.listen.rpartition(":")
    try:
        if ipaddress.ip_address(host) not in ipaddress.ip_network("127.0.0.0/8"):
            raise ValueError
        args.host, args.port = host, int(port)
    except ValueError:
        p.error(f"--listen {args.listen}: the fault proxy listens on loopback only (127.x.y.z:PORT)")
    if urlsplit(args.upstream).scheme != "https":
        p.error("--upstream must be an https:// URL")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return asyncio.run(FaultProxy(args).serve(args.host, args.port))
    except OSError as exc:
        print(f"faultproxy: cannot start: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
