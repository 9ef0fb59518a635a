"""labctl: bring the lab up, take it down, and look at it.

    labctl up [--prometheus] [--audit] [--nodes N] [--boot-delay S] [--guests real|simulated] [--guest-cap N] [--no-simulator] [--port-base P]
    labctl down [--keep]
    labctl status | env | logs [COMPONENT] [-n N] | restart COMPONENT

Each process of the lab is a class in components.py (its ports, command line and health check);
the commands here iterate over them.
"""
import argparse
import base64
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

from . import pki
from .common import LabError, rel, say
from .components import COMPONENTS, NAMES, Lab, component, ports_for
from .process import Proc

LAB = Path(__file__).resolve().parents[1]
REPO = LAB.parent
STATE = Path(os.environ.get("LAB_STATE_DIR", LAB / ".state"))
BIN = LAB / ".bin"
K8S_VERSION = "v1.36.3"
DEFAULT_PORT_BASE = int(os.environ.get("LAB_PORT_BASE", "16443"))


# ----------------------------------------------------------------------------- state

def load_info():
    try:
        return json.loads((STATE / "lab.json").read_text())
    except (OSError, ValueError):
        return {}


def save_info(info):
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "lab.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def pki_dir():
    return STATE / "pki"


def kubeconfig_text(url, user, cert, key):
    p = pki_dir()
    b64 = lambda path: base64.b64encode(Path(path).read_bytes()).decode()  # noqa: E731
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab", "preferences": {},
        "clusters": [{"name": "lab", "cluster": {"server": url,
                                                 "certificate-authority-data": b64(p / "ca.crt")}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert),
                                          "client-key-data": b64(key)}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": user, "namespace": "default"}}],
    }, indent=2) + "\n"


def write_kubeconfigs(url, faults_url=None):
    p = pki_dir()
    if faults_url:  # the same admin identity, through the fault-injection proxy
        path = STATE / "kubeconfig-faults"
        path.write_text(kubeconfig_text(faults_url, "lab-admin", p / "admin.crt", p / "admin.key"))
        path.chmod(0o600)
    for fname, user, cert in (("kubeconfig", "lab-admin", "admin"),
                              ("controller-manager.kubeconfig", "kube-controller-manager", "controller-manager"),
                              ("simulator.kubeconfig", "kubevirt-simulator", "simulator-client")):
        path = STATE / fname
        path.write_text(kubeconfig_text(url, user, p / f"{cert}.crt", p / f"{cert}.key"))
        path.chmod(0o600)


# ----------------------------------------------------------------------------- binaries

def binaries():
    """argv prefixes for the components that run a control-plane binary (etcd, kube-apiserver, ...)."""
    kubelab = BIN / "kubelab"
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    names = [c.name for c in COMPONENTS if c.binary]
    found = {}
    if assets:
        for name in names:
            path = Path(assets) / name
            if path.is_file() and os.access(path, os.X_OK):
                found[name] = [str(path)]
        missing = [c.name for c in COMPONENTS if c.binary and c.required and c.name not in found]
        if missing:
            raise LabError(f"KUBEBUILDER_ASSETS={assets} has no {' or '.join(missing)}; "
                           "point it at a folder with envtest's kube-apiserver and etcd, or unset it")
    if kubelab.is_file():
        for name in names:
            found.setdefault(name, [str(kubelab), name])
    if "kube-apiserver" not in found:
        raise LabError(f"{kubelab.relative_to(REPO)} is missing: build it with `make lab-bin` "
                       "(or set KUBEBUILDER_ASSETS to a folder with kube-apiserver and etcd)")
    return found


# ----------------------------------------------------------------------------- components

def wait_healthy(comp, lab, proc, timeout):
    start = time.monotonic()
    detail = ""
    while time.monotonic() - start < timeout:
        if proc.pid() is None:
            raise LabError(f"{comp.name} exited during start-up; last lines of {rel(proc.logfile)}:\n"
                           + proc.log_tail(15))
        ok, detail = comp.health(lab)
        if ok:
            return time.monotonic() - start
        time.sleep(0.1)
    raise LabError(f"{comp.name} did not become healthy within {timeout:.0f}s (last: {detail}); "
                   f"see {rel(proc.logfile)}")


def check_port_free(port, name):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise LabError(f"port {port} on 127.0.0.1 (for {name}) is already in use by another program; "
                           "stop that program or pick other ports with `labctl up --port-base N`") from None


# ----------------------------------------------------------------------------- commands

def start_component(proc, comp, lab):
    env, cwd = comp.environment()
    proc.start(comp.argv(lab), env=env, cwd=cwd)
    took = wait_healthy(comp, lab, proc, timeout=comp.start_timeout)
    say(f"  {comp.name:<24} ready in {took:.1f}s (pid {proc.pid()}, log {rel(proc.logfile)})")


def guest_build_check():
    """Real guests need the built guest and QEMU: one sentence saying what to run when not."""
    if not (LAB / ".guest" / "current" / "manifest.json").exists():
        raise LabError("--guests real needs the lab guest: run `make lab-guest`")
    if not shutil.which("qemu-system-x86_64"):
        raise LabError("--guests real needs QEMU: run `make debs` (Debian package qemu-system-x86)")


def cmd_up(args):
    t0 = time.monotonic()
    bins = binaries()
    STATE.mkdir(parents=True, exist_ok=True)
    info = load_info()
    running = {c.name: Proc(STATE, c.name).pid() for c in COMPONENTS}
    any_running = any(running.values())
    base = args.port_base or info.get("port_base") or DEFAULT_PORT_BASE
    if any_running and info.get("port_base") and args.port_base and args.port_base != info["port_base"]:
        raise LabError(f"the lab is running on port base {info['port_base']}; `labctl down` first to change it")
    old_opts = info.get("options", {})
    opts = dict(old_opts)
    if args.audit:
        opts["audit"] = True
    if args.nodes is not None:
        opts["nodes"] = args.nodes
    if args.boot_delay is not None:
        opts["boot_delay"] = args.boot_delay
    if args.guests is not None:
        opts["guests"] = args.guests
    if args.guest_cap is not None:
        if args.guest_cap < 0:
            raise LabError("--guest-cap must be 0 or more")
        opts["guest_cap"] = args.guest_cap
    if opts.get("guests") == "real":
        guest_build_check()
    if args.faults is not None or args.no_faults:
        opts["faults"] = None if args.no_faults else args.faults
        opts["fault_seed"] = args.fault_seed
    opts["prometheus"] = bool(args.prometheus or (old_opts.get("prometheus") and running.get("prometheus")))
    opts["simulator"] = not args.no_simulator
    ports = ports_for(base)
    info = {"port_base": base, "ports": ports, "options": opts, "kubernetes_version": K8S_VERSION,
            "kubeconfig": str(STATE / "kubeconfig")}
    info.update(entry for entry in (c.info_entry(ports, opts, STATE) for c in COMPONENTS) if entry)
    # Options that change a running component's flags restart that component.
    restart = {c.name for c in COMPONENTS
               if any(opts.get(o) != old_opts.get(o) for o in c.restart_options)}
    for c in COMPONENTS:
        if c.binary and c.missing_warning and c.name not in bins:
            say(f"warning: no {c.name} binary: {c.missing_warning}")
    wanted = [c for c in COMPONENTS if c.wanted(bins) and c.enabled(opts)]
    for c in wanted:
        if running.get(c.name) is None:
            check_port_free(ports[c.port_name], c.name)
    save_info(info)
    pki.ensure_pki(pki_dir())
    write_kubeconfigs(info["apiserver"]["url"], info["faultproxy"] and info["faultproxy"]["url"])
    for c in COMPONENTS:  # optional components switched off by this `up`
        if not c.enabled(opts) and Proc(STATE, c.name).stop():
            say(f"  {c.name:<24} stopped")
    lab = Lab(STATE, info, bins)
    started = []
    try:
        for c in wanted:
            proc = Proc(STATE, c.name)
            if proc.pid() is not None and c.name in restart:
                proc.stop()
                check_port_free(ports[c.port_name], c.name)
            if proc.pid() is not None:
                say(f"  {c.name:<24} already running (pid {proc.pid()})")
            else:
                start_component(proc, c, lab)
                started.append(c.name)
            c.after_up(lab, say)
    except BaseException:
        for name in reversed(started):
            Proc(STATE, name).stop()
        raise
    say(f"lab is up ({time.monotonic() - t0:.1f}s): Kubernetes {K8S_VERSION} at {info['apiserver']['url']}")
    say(f"  kubeconfig: {STATE / 'kubeconfig'}   (eval \"$({rel(LAB / 'labctl')} env)\")")
    if info["faultproxy"]:
        say(f"  faults: {opts['faults']:.0%} at {info['faultproxy']['url']} (seed {opts.get('fault_seed', 0)}); "
            f"kubeconfig {info['faultproxy']['kubeconfig']}")
    return 0


def cmd_down(args):
    stopped = []
    for c in reversed(COMPONENTS):
        if Proc(STATE, c.name).stop():
            stopped.append(c.name)
    if not args.keep and STATE.exists():
        shutil.rmtree(STATE)
    say(f"lab is down (stopped: {', '.join(stopped) or 'nothing was running'}"
        f"{'; state kept in ' + rel(STATE) if args.keep else ''})")
    return 0


def cmd_status(args):
    info = load_info()
    if not info:
        say("lab is down (no state)")
        return 1
    all_ok = True
    lab = Lab(STATE, info)
    for c in COMPONENTS:
        if not c.enabled(lab.opts):
            continue
        pid = Proc(STATE, c.name).pid()
        if pid is None:
            all_ok = False
            say(f"  {c.name:<24} not running")
            continue
        ok, detail = c.health(lab)
        all_ok &= ok
        say(f"  {c.name:<24} {'healthy' if ok else 'UNHEALTHY'}  pid {pid}  {detail}")
    say(f"lab is {'up' if all_ok else 'degraded'}: {info['apiserver']['url']}, kubeconfig {info['kubeconfig']}")
    return 0 if all_ok else 1


def cmd_env(args):
    print(f"export KUBECONFIG={STATE / 'kubeconfig'}")
    return 0


def cmd_logs(args):
    names = [args.component] if args.component else [n for n in NAMES if Proc(STATE, n).logfile.exists()]
    for name in names:
        if name not in NAMES and name != "audit":
            raise LabError(f"no component {name!r}; choose one of {', '.join(NAMES)}")
        path = STATE / "logs" / f"{name}.log"
        if not path.exists():
            raise LabError(f"no log for {name} at {rel(path)}")
        if len(names) > 1:
            say(f"==> {rel(path)} <==")
        lines = path.read_text(errors="replace").splitlines()
        say("\n".join(lines[-args.lines:] if args.lines else lines))
    return 0


def cmd_restart(args):
    info = load_info()
    if not info:
        raise LabError("the lab is not up; run `labctl up`")
    comp = component(args.component)
    proc = Proc(STATE, comp.name)
    proc.stop()
    start_component(proc, comp, Lab(STATE, info, binaries()))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="labctl", description="The virtops.kubevirt lab: a real "
                                     "Kubernetes control plane plus a KubeVirt simulator on 127.0.0.1.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the lab (harmless when already up)")
    up.add_argument("--prometheus", action="store_true", help="also run Prometheus scraping the simulator")
    up.add_argument("--audit", action="store_true", help="write the apiserver's audit log (logs/audit.log)")
    up.add_argument("--nodes", type=int, help="simulated nodes (default 3)")
    up.add_argument("--boot-delay", type=float, help="seconds from VMI creation to Running (default 2.0)")
    up.add_argument("--guests", choices=("simulated", "real"),
                    help="real: VMIs boot the lab guest under QEMU, up to --guest-cap at once (default simulated; "
                         "a VMI's lab.virtops.io/guest annotation chooses for itself)")
    up.add_argument("--guest-cap", type=int, help="real guests running at once, at most (default 4)")
    up.add_argument("--faults", type=float, metavar="RATE",
                    help="also run the fault-injection proxy at this rate (0..1); clients use kubeconfig-faults")
    up.add_argument("--no-faults", action="store_true", help="stop the fault-injection proxy")
    up.add_argument("--fault-seed", type=int, default=0, help="seed for the fault proxy's random faults")
    up.add_argument("--no-simulator", action="store_true", help="control plane only")
    up.add_argument("--port-base", type=int, help=f"first of 8 ports on 127.0.0.1 (default {DEFAULT_PORT_BASE})")
    down = sub.add_parser("down", help="stop what `up` started and remove lab/.state")
    down.add_argument("--keep", action="store_true", help="keep lab/.state (certificates, etcd data, logs)")
    sub.add_parser("status", help="each component and its health")
    sub.add_parser("env", help="print `export KUBECONFIG=...`")
    logs = sub.add_parser("logs", help="show a component's log")
    logs.add_argument("component", nargs="?", help=f"one of {', '.join(NAMES)}, or audit")
    logs.add_argument("-n", "--lines", type=int, default=0, help="only the last N lines")
    restart = sub.add_parser("restart", help="restart one component")
    restart.add_argument("component", choices=NAMES)
    args = parser.parse_args(argv)
    handler = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "env": cmd_env,
               "logs": cmd_logs, "restart": cmd_restart}[args.command]
    try:
        return handler(args)
    except LabError as exc:
        print(f"labctl: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("labctl: interrupted", file=sys.stderr)
        return 130
