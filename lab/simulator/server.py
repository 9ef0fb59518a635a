"""The simulator's listeners: HTTPS for virt-api (aggregated API), webhooks and /healthz;
plain HTTP for /metrics."""
import ssl

from aiohttp import web

from . import metrics
from .export import ExportServer
from .virtapi import VirtAPI
from .webhooks import Webhooks


def tls_context(args):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    # The aggregation layer presents the front-proxy client certificate; webhook calls and
    # health checks come without one.
    ctx.load_verify_locations(args.requestheader_client_ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


async def healthz(request):
    sim = request.app["sim"]
    if not getattr(sim, "ready", False):
        return web.Response(status=503, text="starting")
    return web.Response(text="ok")


async def serve(sim):
    args = sim.args
    app = web.Application(client_max_size=8 * 2 ** 20)
    app["sim"] = sim
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", healthz)
    VirtAPI(sim).routes(app)
    Webhooks(sim).routes(app)
    ExportServer(sim).routes(app)
    host, port = args.listen.rsplit(":", 1)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, host, int(port), ssl_context=tls_context(args), backlog=256).start()
    runners = [runner]
    if args.metrics_listen:
        mapp = web.Application()
        mapp["sim"] = sim
        mapp.router.add_get("/metrics", metrics.handle)
        mapp.router.add_get("/healthz", healthz)
        mhost, mport = args.metrics_listen.rsplit(":", 1)
        mrunner = web.AppRunner(mapp, access_log=None)
        await mrunner.setup()
        await web.TCPSite(mrunner, mhost, int(mport)).start()
        runners.append(mrunner)
    return runners
