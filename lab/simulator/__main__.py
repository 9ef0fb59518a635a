"""python -m simulator --kubeconfig ... --listen 127.0.0.1:PORT --tls-cert ... (see lab/labctl)."""
import argparse
import asyncio
import logging
import signal
import sys

from .app import Sim


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="simulator", description="KubeVirt/CDI/Multus simulator for the virtops lab")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--listen", default="127.0.0.1:8443", help="virt-api, webhooks and /healthz (HTTPS)")
    p.add_argument("--tls-cert", required=True)
    p.add_argument("--tls-key", required=True)
    p.add_argument("--ca-bundle", required=True, help="CA that signed --tls-cert (for the APIService and webhooks)")
    p.add_argument("--requestheader-client-ca", required=True, help="front-proxy CA of the aggregation layer")
    p.add_argument("--metrics-listen", default="", help="plain HTTP /metrics")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--boot-delay", type=float, default=2.0, help="seconds from VMI creation to Running")
    p.add_argument("--guests", choices=("simulated", "real"), default="simulated",
                   help="real: VMIs boot the lab guest under QEMU (up to --guest-cap at once); a VMI's "
                        "lab.virtops.io/guest annotation chooses for itself")
    p.add_argument("--guest-cap", type=int, default=4, help="real guests running at once, at most")
    p.add_argument("--guest-dir", default="", help="folder of the real guests' sockets and logs")
    p.add_argument("--volume-dir", default="", help="folder of the volumes' and snapshots' data (volumedata.py)")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    sim = Sim(args)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    main_task = loop.create_task(sim.run())
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, main_task.cancel)
    try:
        loop.run_until_complete(main_task)
    except asyncio.CancelledError:
        logging.getLogger("simulator").info("stopped")
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
