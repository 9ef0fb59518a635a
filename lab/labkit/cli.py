"""labctl: bring the lab up, take it down, and look at it.

    labctl up [--prometheus] [--audit] [--nodes N] [--boot-delay S] [--no-simulator] [--port-base P]
    labctl down [--keep]
    labctl status | env | logs [COMPONENT] [-n N] | restart COMPONENT
"""
import argparse
import base64
import json
import os
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
import ssl
from pathlib import Path

from . import pki
from .kubeapi import Api, ApiError
from .process import Proc

LAB = Path(__file__).resolve().parents[1]
REPO = LAB.parent
STATE = Path(os.environ.get("LAB_STATE_DIR", LAB / ".state"))
BIN = LAB / ".bin"
CRDS = LAB / "crds"
K8S_VERSION = "v1.36.3"

# Start order; `down` goes the other way.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "faultproxy", "simulator", "prometheus")
# Ports are base + offset, all on 127.0.0.1.
PORT_OFFSETS = {"kube-apiserver": 0, "etcd": 1, "etcd-peer": 2, "kube-controller-manager": 3,
                "simulator": 4, "simulator-metrics": 5, "prometheus": 6, "faultproxy": 7}
DEFAULT_PORT_BASE = int(os.environ.get("LAB_PORT_BASE", "16443"))
CONTROLLERS = ("garbage-collector-controller", "namespace-controller", "serviceaccount-controller",
               "serviceaccount-token-controller", "root-ca-certificate-publisher-controller",
               "persistentvolume-binder-controller", "persistentvolumeclaim-protection-controller",
               "persistentvolume-protection-controller", "clusterrole-aggregation-controller",
               "service-cidr-controller")
STORAGE_CLASSES = (("lab-local", "Immediate", True), ("lab-wffc", "WaitForFirstConsumer", False))
PROVISIONER = "lab.virtops.io/simulated"
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: ["system:kube-controller-manager", "system:apiserver"]
- level: None
  userGroups: ["system:serviceaccounts:kube-system"]
- level: Metadata
"""


class LabError(Exception):
    """One sentence for the user; labctl prints it and exits 1."""


def say(msg):
    print(msg, flush=True)


# ----------------------------------------------------------------------------- state

def load_info():
    try:
        return json.loads((STATE / "lab.json").read_text())
    except (OSError, ValueError):
        return {}


def save_info(info):
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "lab.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def ports_for(base):
    return {name: base + off for name, off in PORT_OFFSETS.items()}


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


def admin_api(info):
    p = pki_dir()
    return Api(info["apiserver"]["url"], p / "ca.crt", p / "admin.crt", p / "admin.key")


# ----------------------------------------------------------------------------- binaries

def binaries():
    """argv prefixes for etcd, kube-apiserver and kube-controller-manager."""
    kubelab = BIN / "kubelab"
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    found = {}
    if assets:
        for name in ("etcd", "kube-apiserver", "kube-controller-manager"):
            path = Path(assets) / name
            if path.is_file() and os.access(path, os.X_OK):
                found[name] = [str(path)]
        missing = [n for n in ("etcd", "kube-apiserver") if n not in found]
        if missing:
            raise LabError(f"KUBEBUILDER_ASSETS={assets} has no {' or '.join(missing)}; "
                           "point it at a folder with envtest's kube-apiserver and etcd, or unset it")
    if kubelab.is_file():
        for name in ("etcd", "kube-apiserver", "kube-controller-manager"):
            found.setdefault(name, [str(kubelab), name])
    if "kube-apiserver" not in found:
        raise LabError(f"{kubelab.relative_to(REPO)} is missing: build it with `make lab-bin` "
                       "(or set KUBEBUILDER_ASSETS to a folder with kube-apiserver and etcd)")
    return found


def venv_python():
    candidate = REPO / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


# ----------------------------------------------------------------------------- components

def argv_for(name, info, bins):
    s, p, ports = STATE, pki_dir(), info["ports"]
    if name == "etcd":
        peer = f"http://127.0.0.1:{ports['etcd-peer']}"
        return bins["etcd"] + [
            "--name=lab", f"--data-dir={s / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{ports['etcd']}",
            f"--advertise-client-urls=http://127.0.0.1:{ports['etcd']}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=lab={peer}", "--log-level=warn",
            # A throw-away lab: durability on power loss does not matter, speed does.
            "--unsafe-no-fsync", "--quota-backend-bytes=4294967296"]
    if name == "kube-apiserver":
        argv = bins["kube-apiserver"] + [
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={ports['kube-apiserver']}", f"--cert-dir={s / 'apiserver-certs'}",
            f"--tls-cert-file={p / 'apiserver.crt'}", f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}", "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16", "--endpoint-reconciler-type=none",
            "--allow-privileged=true", "--profiling=false",
            # The aggregation layer: the simulator's virt-api is an extension API server.
            f"--requestheader-client-ca-file={p / 'front-proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={p / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={p / 'front-proxy-client.key'}"]
        if info["options"].get("audit"):
            (s / "audit-policy.yaml").write_text(AUDIT_POLICY)
            argv += [f"--audit-policy-file={s / 'audit-policy.yaml'}",
                     f"--audit-log-path={s / 'logs' / 'audit.log'}", "--audit-log-format=json",
                     "--audit-log-maxsize=0", "--audit-log-mode=blocking"]
        return argv
    if name == "kube-controller-manager":
        kc = s / "controller-manager.kubeconfig"
        return bins["kube-controller-manager"] + [
            f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1", f"--secure-port={ports['kube-controller-manager']}",
            f"--cert-dir={s / 'controller-manager-certs'}", "--leader-elect=false",
            f"--controllers={','.join(CONTROLLERS)}", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={p / 'sa.key'}", f"--root-ca-file={p / 'ca.crt'}"]
    if name == "simulator":
        opts = info["options"]
        return [venv_python(), "-m", "simulator",
                f"--kubeconfig={s / 'simulator.kubeconfig'}",
                f"--listen=127.0.0.1:{ports['simulator']}",
                f"--tls-cert={p / 'simulator.crt'}", f"--tls-key={p / 'simulator.key'}",
                f"--ca-bundle={p / 'ca.crt'}", f"--requestheader-client-ca={p / 'front-proxy-ca.crt'}",
                f"--metrics-listen=127.0.0.1:{ports['simulator-metrics']}",
                f"--nodes={opts.get('nodes', 3)}", f"--boot-delay={opts.get('boot_delay', 2.0)}"]
    if name == "faultproxy":
        opts = info["options"]
        return [venv_python(), "-m", "labkit.faultproxy", f"--listen=127.0.0.1:{ports['faultproxy']}",
                f"--upstream={info['apiserver']['url']}", f"--ca={p / 'ca.crt'}",
                f"--tls-cert={p / 'faultproxy.crt'}", f"--tls-key={p / 'faultproxy.key'}",
                f"--client-ca={p / 'ca.crt'}", f"--upstream-cert={p / 'admin.crt'}",
                f"--upstream-key={p / 'admin.key'}", f"--rate={opts['faults']}",
                f"--seed={opts.get('fault_seed', 0)}"]
    if name == "prometheus":
        config = s / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 5s, evaluation_interval: 5s}\n"
            "scrape_configs:\n- job_name: kubevirt\n  static_configs:\n"
            f"  - targets: ['127.0.0.1:{ports['simulator-metrics']}']\n")
        return [prometheus_binary(), f"--config.file={config}", f"--storage.tsdb.path={s / 'prometheus'}",
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}", "--log.level=warn"]
    raise LabError(f"unknown component {name}")


def prometheus_binary():
    path = shutil.which("prometheus")
    if not path:
        raise LabError("`labctl up --prometheus` needs Prometheus: install it with "
                       "`apt-get install prometheus` (or `make prometheus`)")
    return path


def _get(url, ctx=None, timeout=2.0):
    with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
        return resp.status, resp.read().decode(errors="replace")


def health(name, info):
    """(healthy, detail) for one component, from its own health endpoint."""
    ports, p = info["ports"], pki_dir()
    try:
        if name == "etcd":
            status, body = _get(f"http://127.0.0.1:{ports['etcd']}/health")
            return status == 200 and '"true"' in body, body.strip()
        if name == "kube-apiserver":
            status, body = admin_api(info).request("GET", "/readyz", timeout=2), None
            return status == "ok", f"readyz {status}"
        if name == "kube-controller-manager":
            ctx = ssl._create_unverified_context()  # noqa: S323 - its self-signed cert, loopback
            status, body = _get(f"https://127.0.0.1:{ports['kube-controller-manager']}/healthz", ctx)
            return status == 200, f"healthz {body.strip()}"
        if name == "simulator":
            ctx = ssl.create_default_context(cafile=str(p / "ca.crt"))
            status, body = _get(f"https://127.0.0.1:{ports['simulator']}/healthz", ctx)
            if status != 200:
                return False, body
            svc = admin_api(info).get("/apis/apiregistration.k8s.io/v1/apiservices/v1.subresources.kubevirt.io")
            avail = [c for c in svc.get("status", {}).get("conditions", []) if c["type"] == "Available"]
            ok = bool(avail) and avail[0]["status"] == "True"
            return ok, "healthz ok, APIService " + ("Available" if ok else f"not Available: {avail[0].get('message') if avail else 'no status yet'}")
        if name == "faultproxy":
            ctx = ssl.create_default_context(cafile=str(p / "ca.crt"))
            status, body = _get(f"https://127.0.0.1:{ports['faultproxy']}/faultproxy/healthz", ctx)
            return status == 200, f"rate {info['options'].get('faults')}, seed {info['options'].get('fault_seed', 0)}"
        if name == "prometheus":
            status, body = _get(f"http://127.0.0.1:{ports['prometheus']}/-/ready")
            return status == 200, body.strip()
    except (OSError, ApiError, urllib.error.URLError, ValueError) as exc:
        return False, str(getattr(exc, "reason", exc))
    return False, "unknown"


def wait_healthy(name, info, proc, timeout):
    start = time.monotonic()
    detail = ""
    while time.monotonic() - start < timeout:
        if proc.pid() is None:
            raise LabError(f"{name} exited during start-up; last lines of {rel(proc.logfile)}:\n"
                           + proc.log_tail(15))
        ok, detail = health(name, info)
        if ok:
            return time.monotonic() - start
        time.sleep(0.1)
    raise LabError(f"{name} did not become healthy within {timeout:.0f}s (last: {detail}); "
                   f"see {rel(proc.logfile)}")


def rel(path):
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def check_port_free(port, name):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise LabError(f"port {port} on 127.0.0.1 (for {name}) is already in use by another program; "
                           "stop that program or pick other ports with `labctl up --port-base N`") from None


# ----------------------------------------------------------------------------- cluster set-up

def apply_crds(api):
    names = []
    for path in sorted(CRDS.glob("*.yaml")):
        body = path.read_bytes()
        name = _crd_name(body.decode())
        try:
            api.apply(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}", body)
        except ApiError as exc:
            raise LabError(f"the apiserver rejected CRD {name} from {rel(path)}: {exc}") from None
        names.append(name)
    deadline = time.monotonic() + 30
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            crd = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conds = {c["type"]: c["status"] for c in crd.get("status", {}).get("conditions", [])}
            if conds.get("Established") == "True":
                pending.discard(name)
        if pending:
            time.sleep(0.1)
    if pending:
        raise LabError(f"CRDs not Established after 30s: {', '.join(sorted(pending))}")
    return names


def _crd_name(text):
    """metadata.name of a one-document CRD YAML, without needing PyYAML."""
    in_meta = False
    for line in text.splitlines():
        if line.startswith("metadata:"):
            in_meta = True
        elif in_meta and line.startswith("  name:"):
            return line.split(":", 1)[1].strip().strip("'\"")
        elif in_meta and line and not line.startswith(" "):
            in_meta = False
    raise LabError("a CRD file has no metadata.name")


def apply_storage_classes(api):
    for name, mode, default in STORAGE_CLASSES:
        api.apply(f"/apis/storage.k8s.io/v1/storageclasses/{name}", {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name, "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true" if default else "false"}},
            "provisioner": PROVISIONER, "reclaimPolicy": "Delete", "volumeBindingMode": mode,
            "allowVolumeExpansion": True})


def wait_default_namespace(api, timeout=20):
    """The apiserver creates `default` itself; tests and users assume it exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            api.get("/api/v1/namespaces/default")
            return
        except ApiError:
            time.sleep(0.1)


# ----------------------------------------------------------------------------- commands

def enabled(name, opts):
    """Whether the lab runs this optional component with these options."""
    return {"simulator": opts.get("simulator", True), "prometheus": opts.get("prometheus"),
            "faultproxy": opts.get("faults") is not None}.get(name, True)


def start_component(proc, name, info, bins):
    env, cwd = dict(os.environ), None
    if name in ("simulator", "faultproxy"):
        env["PYTHONPATH"] = str(LAB) + os.pathsep + env.get("PYTHONPATH", "")
        cwd = str(LAB)
    proc.start(argv_for(name, info, bins), env=env, cwd=cwd)
    took = wait_healthy(name, info, proc, timeout=90 if name == "simulator" else 60)
    say(f"  {name:<24} ready in {took:.1f}s (pid {proc.pid()}, log {rel(proc.logfile)})")


def cmd_up(args):
    t0 = time.monotonic()
    bins = binaries()
    STATE.mkdir(parents=True, exist_ok=True)
    info = load_info()
    running = {name: Proc(STATE, name).pid() for name in COMPONENTS}
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
    if args.faults is not None or args.no_faults:
        opts["faults"] = None if args.no_faults else args.faults
        opts["fault_seed"] = args.fault_seed
    opts["prometheus"] = bool(args.prometheus or (old_opts.get("prometheus") and running.get("prometheus")))
    opts["simulator"] = not args.no_simulator
    ports = ports_for(base)
    info = {"port_base": base, "ports": ports, "options": opts, "kubernetes_version": K8S_VERSION,
            "kubeconfig": str(STATE / "kubeconfig"),
            "apiserver": {"port": ports["kube-apiserver"], "url": f"https://127.0.0.1:{ports['kube-apiserver']}"},
            "simulator": {"port": ports["simulator"], "metrics_port": ports["simulator-metrics"]},
            "prometheus": {"url": f"http://127.0.0.1:{ports['prometheus']}"} if opts["prometheus"] else None,
            "faultproxy": {"url": f"https://127.0.0.1:{ports['faultproxy']}", "rate": opts["faults"],
                           "seed": opts.get("fault_seed", 0), "kubeconfig": str(STATE / "kubeconfig-faults")}
            if opts.get("faults") is not None else None}
    # Options that change a running component's flags restart that component.
    restart = set()
    if opts.get("audit") != old_opts.get("audit"):
        restart.add("kube-apiserver")
    if (opts.get("nodes"), opts.get("boot_delay")) != (old_opts.get("nodes"), old_opts.get("boot_delay")):
        restart.add("simulator")
    if (opts.get("faults"), opts.get("fault_seed")) != (old_opts.get("faults"), old_opts.get("fault_seed")):
        restart.add("faultproxy")
    if "kube-controller-manager" not in bins:
        say("warning: no kube-controller-manager binary: garbage collection and namespace deletion "
            "will not work (build lab/.bin/kubelab with `make lab-bin`)")
    wanted = [n for n in COMPONENTS if n in bins or n in ("faultproxy", "simulator", "prometheus")]
    wanted = [n for n in wanted if enabled(n, opts)]
    for name in wanted:
        if running.get(name) is None:
            check_port_free(ports[name], name)
    save_info(info)
    pki.ensure_pki(pki_dir())
    write_kubeconfigs(info["apiserver"]["url"], info["faultproxy"] and info["faultproxy"]["url"])
    for name in COMPONENTS:  # optional components switched off by this `up`
        if not enabled(name, opts) and Proc(STATE, name).stop():
            say(f"  {name:<24} stopped")
    started = []
    try:
        for name in wanted:
            proc = Proc(STATE, name)
            if proc.pid() is not None and name in restart:
                proc.stop()
                check_port_free(ports[name], name)
            if proc.pid() is not None:
                say(f"  {name:<24} already running (pid {proc.pid()})")
            else:
                start_component(proc, name, info, bins)
                started.append(name)
            if name == "kube-apiserver":
                # Every `up` (re)applies them: server-side apply makes it cheap and idempotent.
                api = admin_api(info)
                crds = apply_crds(api)
                apply_storage_classes(api)
                wait_default_namespace(api)
                say(f"  {'crds':<24} {len(crds)} Established; StorageClasses lab-local (default), lab-wffc")
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
    for name in reversed(COMPONENTS):
        if Proc(STATE, name).stop():
            stopped.append(name)
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
    for name in COMPONENTS:
        if not enabled(name, info.get("options", {})):
            continue
        pid = Proc(STATE, name).pid()
        if pid is None:
            all_ok = False
            say(f"  {name:<24} not running")
            continue
        ok, detail = health(name, info)
        all_ok &= ok
        say(f"  {name:<24} {'healthy' if ok else 'UNHEALTHY'}  pid {pid}  {detail}")
    say(f"lab is {'up' if all_ok else 'degraded'}: {info['apiserver']['url']}, kubeconfig {info['kubeconfig']}")
    return 0 if all_ok else 1


def cmd_env(args):
    print(f"export KUBECONFIG={STATE / 'kubeconfig'}")
    return 0


def cmd_logs(args):
    names = [args.component] if args.component else [n for n in COMPONENTS if Proc(STATE, n).logfile.exists()]
    for name in names:
        if name not in COMPONENTS and name != "audit":
            raise LabError(f"no component {name!r}; choose one of {', '.join(COMPONENTS)}")
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
    proc = Proc(STATE, args.component)
    proc.stop()
    start_component(proc, args.component, info, binaries())
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
    logs.add_argument("component", nargs="?", help=f"one of {', '.join(COMPONENTS)}, or audit")
    logs.add_argument("-n", "--lines", type=int, default=0, help="only the last N lines")
    restart = sub.add_parser("restart", help="restart one component")
    restart.add_argument("component", choices=COMPONENTS)
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
