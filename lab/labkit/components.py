"""The lab's processes, one class each: its ports, its command line and its health check.

Like controller-runtime envtest's `controlplane/` (one type per component), so that labctl's
commands iterate over `COMPONENTS` instead of switching on names. A component knows nothing of the
commands; `Lab` is what it reads: the state folder, lab.json (`info`) and the binaries found.
"""
import os
import shutil
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path

from .common import LabError
from .kubeapi import Api, ApiError

LAB = Path(__file__).resolve().parents[1]
REPO = LAB.parent

CONTROLLERS = ("garbage-collector-controller", "namespace-controller", "serviceaccount-controller",
               "serviceaccount-token-controller", "root-ca-certificate-publisher-controller",
               "persistentvolume-binder-controller", "persistentvolumeclaim-protection-controller",
               "persistentvolume-protection-controller", "clusterrole-aggregation-controller",
               "service-cidr-controller")
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


class Lab:
    """What a component reads: the state folder, lab.json and (to start) the binaries found."""

    def __init__(self, state, info, bins=None):
        self.state, self.info, self.bins = Path(state), info, bins or {}

    @property
    def pki(self):
        return self.state / "pki"

    @property
    def ports(self):
        return self.info["ports"]

    @property
    def opts(self):
        return self.info.get("options", {})

    def admin_api(self):
        p = self.pki
        return Api(self.info["apiserver"]["url"], p / "ca.crt", p / "admin.crt", p / "admin.key")

    def lab_tls(self):
        """A client context that trusts the lab CA (the simulator's and the proxy's serving certs)."""
        return ssl.create_default_context(cafile=str(self.pki / "ca.crt"))


def venv_python():
    candidate = REPO / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def _get(url, ctx=None, timeout=2.0):
    with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
        return resp.status, resp.read().decode(errors="replace")


class Component:
    """One process of the lab. Subclasses set the class attributes and argv / check."""

    name = ""
    ports = {}               # port name -> offset from the port base; the first is the one `up` checks is free
    binary = False           # argv starts with a control-plane binary (kubelab or KUBEBUILDER_ASSETS)
    required = False         # with `binary`: the lab cannot run without it
    missing_warning = None   # with `binary`: what `up` warns when it is missing
    python = False           # a module of lab/ run with the venv's Python (PYTHONPATH and cwd lab/)
    start_timeout = 60
    restart_options = ()     # options (lab.json `options`) whose change restarts a running one
    go_runtime = {}          # Go runtime settings (GOGC, ...) it starts with unless the environment sets them

    @property
    def port_name(self):
        return next(iter(self.ports))

    def enabled(self, opts):
        """Whether the lab runs this component with these options."""
        return True

    def wanted(self, bins):
        """Whether `up` can start it with the binaries found."""
        return not self.binary or self.name in bins

    def info_entry(self, ports, opts, state):
        """(key, value) this component adds to lab.json, or None."""
        return None

    def argv(self, lab):  # pragma: no cover - abstract
        raise NotImplementedError

    def check(self, lab):  # pragma: no cover - abstract
        raise NotImplementedError

    def health(self, lab):
        """(healthy, detail) from the component's own health endpoint."""
        try:
            return self.check(lab)
        except (OSError, ApiError, urllib.error.URLError, ValueError) as exc:
            return False, str(getattr(exc, "reason", exc))

    def environment(self):
        """(env, cwd) to start it with."""
        env = dict(self.go_runtime, **os.environ)
        if not self.python:
            return env, None
        env["PYTHONPATH"] = str(LAB) + os.pathsep + env.get("PYTHONPATH", "")
        return env, str(LAB)

    def after_up(self, lab, say):
        """What `up` does once the component runs (started now or already running)."""


class Etcd(Component):
    name = "etcd"
    ports = {"etcd": 1, "etcd-peer": 2}
    binary = required = True

    def argv(self, lab):
        ports = lab.ports
        peer = f"http://127.0.0.1:{ports['etcd-peer']}"
        return lab.bins["etcd"] + [
            "--name=lab", f"--data-dir={lab.state / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{ports['etcd']}",
            f"--advertise-client-urls=http://127.0.0.1:{ports['etcd']}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=lab={peer}", "--log-level=warn",
            # A throw-away lab: durability on power loss does not matter, speed does.
            "--unsafe-no-fsync", "--quota-backend-bytes=4294967296"]

    def check(self, lab):
        status, body = _get(f"http://127.0.0.1:{lab.ports['etcd']}/health")
        return status == 200 and '"true"' in body, body.strip()


class KubeApiserver(Component):
    name = "kube-apiserver"
    ports = {"kube-apiserver": 0}
    binary = required = True
    restart_options = ("audit",)
    # Its garbage collector took a sixth of its CPU while a fleet of VMs was made, on a machine of two
    # cores that the simulator and Ansible share: collect at 4x the live heap instead of 2x, but keep
    # under 4 GiB (a fresh lab: a fleet of 100 to Ready in 4.2 s instead of 5.0 s, medians of 5). At
    # the default it held 2.2 GiB after six such fleets; with these it grows toward the limit, and
    # collects more often once its live heap nears it (a long-running lab).
    go_runtime = {"GOGC": "400", "GOMEMLIMIT": "4GiB"}

    def info_entry(self, ports, opts, state):
        port = ports[self.port_name]
        return "apiserver", {"port": port, "url": f"https://127.0.0.1:{port}"}

    def argv(self, lab):
        s, p, ports = lab.state, lab.pki, lab.ports
        argv = lab.bins["kube-apiserver"] + [
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
            "--delete-collection-workers=8",  # one by one (the default) took 5 s to delete 100 VMs
            # The aggregation layer: the simulator's virt-api is an extension API server.
            f"--requestheader-client-ca-file={p / 'front-proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={p / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={p / 'front-proxy-client.key'}"]
        if lab.opts.get("audit"):
            (s / "audit-policy.yaml").write_text(AUDIT_POLICY)
            argv += [f"--audit-policy-file={s / 'audit-policy.yaml'}",
                     f"--audit-log-path={s / 'logs' / 'audit.log'}", "--audit-log-format=json",
                     "--audit-log-maxsize=0", "--audit-log-mode=blocking"]
        return argv

    def check(self, lab):
        status = lab.admin_api().request("GET", "/readyz", timeout=2)
        return status == "ok", f"readyz {status}"

    def after_up(self, lab, say):
        # Every `up` (re)applies them: server-side apply makes it cheap and idempotent.
        from . import bootstrap
        api = lab.admin_api()
        crds = bootstrap.apply_crds(api)
        total, written, versions = bootstrap.apply_instancetypes(api)
        bootstrap.apply_storage_classes(api)
        bootstrap.apply_snapshot_class(api)
        bootstrap.wait_default_namespace(api)
        say(f"  {'crds':<24} {len(crds)} Established; StorageClasses lab-local (default), lab-wffc, lab-nosnap "
            f"(no VolumeSnapshotClass); VolumeSnapshotClass {bootstrap.SNAPSHOT_CLASS}")
        say(f"  {'common-instancetypes':<24} {', '.join(versions)}: {total} cluster instancetypes and "
            f"preferences ({written} written)")


class KubeControllerManager(Component):
    name = "kube-controller-manager"
    ports = {"kube-controller-manager": 3}
    binary = True
    missing_warning = ("garbage collection and namespace deletion will not work "
                       "(build lab/.bin/kubelab with `make lab-bin`)")

    def argv(self, lab):
        s, p = lab.state, lab.pki
        kc = s / "controller-manager.kubeconfig"
        return lab.bins["kube-controller-manager"] + [
            f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1", f"--secure-port={lab.ports['kube-controller-manager']}",
            f"--cert-dir={s / 'controller-manager-certs'}", "--leader-elect=false",
            f"--controllers={','.join(CONTROLLERS)}", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={p / 'sa.key'}", f"--root-ca-file={p / 'ca.crt'}",
            # Its clients' default 20 requests/s held the garbage collector to ~5 owners a second
            # (1000 VMs deleted took 200 s); the API server is on this machine, nothing to protect.
            "--kube-api-qps=200", "--kube-api-burst=400"]

    def check(self, lab):
        ctx = ssl._create_unverified_context()  # noqa: S323 - its self-signed cert, loopback
        status, body = _get(f"https://127.0.0.1:{lab.ports['kube-controller-manager']}/healthz", ctx)
        return status == 200, f"healthz {body.strip()}"


class FaultProxy(Component):
    name = "faultproxy"
    ports = {"faultproxy": 7}
    python = True
    restart_options = ("faults", "fault_seed")

    def enabled(self, opts):
        return opts.get("faults") is not None

    def info_entry(self, ports, opts, state):
        if not self.enabled(opts):
            return "faultproxy", None
        return "faultproxy", {"url": f"https://127.0.0.1:{ports['faultproxy']}", "rate": opts["faults"],
                              "seed": opts.get("fault_seed", 0), "kubeconfig": str(state / "kubeconfig-faults")}

    def argv(self, lab):
        p, opts = lab.pki, lab.opts
        return [venv_python(), "-m", "labkit.faultproxy", f"--listen=127.0.0.1:{lab.ports['faultproxy']}",
                f"--upstream={lab.info['apiserver']['url']}", f"--ca={p / 'ca.crt'}",
                f"--tls-cert={p / 'faultproxy.crt'}", f"--tls-key={p / 'faultproxy.key'}",
                f"--client-ca={p / 'ca.crt'}", f"--upstream-cert={p / 'admin.crt'}",
                f"--upstream-key={p / 'admin.key'}", f"--rate={opts['faults']}",
                f"--seed={opts.get('fault_seed', 0)}"]

    def check(self, lab):
        status, _ = _get(f"https://127.0.0.1:{lab.ports['faultproxy']}/faultproxy/healthz", lab.lab_tls())
        return status == 200, f"rate {lab.opts.get('faults')}, seed {lab.opts.get('fault_seed', 0)}"


class Simulator(Component):
    name = "simulator"
    ports = {"simulator": 4, "simulator-metrics": 5}
    python = True
    start_timeout = 90
    restart_options = ("nodes", "boot_delay", "guests", "guest_cap")

    def enabled(self, opts):
        return opts.get("simulator", True)

    def info_entry(self, ports, opts, state):
        return "simulator", {"port": ports["simulator"], "metrics_port": ports["simulator-metrics"]}

    def argv(self, lab):
        s, p, ports, opts = lab.state, lab.pki, lab.ports, lab.opts
        return [venv_python(), "-m", "simulator",
                f"--kubeconfig={s / 'simulator.kubeconfig'}",
                f"--listen=127.0.0.1:{ports['simulator']}",
                f"--tls-cert={p / 'simulator.crt'}", f"--tls-key={p / 'simulator.key'}",
                f"--ca-bundle={p / 'ca.crt'}", f"--requestheader-client-ca={p / 'front-proxy-ca.crt'}",
                f"--metrics-listen=127.0.0.1:{ports['simulator-metrics']}",
                f"--nodes={opts.get('nodes', 3)}", f"--boot-delay={opts.get('boot_delay', 2.0)}",
                f"--guests={opts.get('guests') or 'simulated'}", f"--guest-cap={opts.get('guest_cap', 4)}",
                f"--guest-dir={s / 'guests'}", f"--volume-dir={s / 'volumes'}"]

    def check(self, lab):
        status, body = _get(f"https://127.0.0.1:{lab.ports['simulator']}/healthz", lab.lab_tls())
        if status != 200:
            return False, body
        svc = lab.admin_api().get("/apis/apiregistration.k8s.io/v1/apiservices/v1.subresources.kubevirt.io")
        avail = [c for c in svc.get("status", {}).get("conditions", []) if c["type"] == "Available"]
        ok = bool(avail) and avail[0]["status"] == "True"
        why = avail[0].get("message") if avail else "no status yet"
        return ok, "healthz ok, APIService " + ("Available" if ok else f"not Available: {why}")


class Prometheus(Component):
    name = "prometheus"
    ports = {"prometheus": 6}

    def enabled(self, opts):
        return opts.get("prometheus")

    def info_entry(self, ports, opts, state):
        return "prometheus", {"url": f"http://127.0.0.1:{ports['prometheus']}"} if opts["prometheus"] else None

    @staticmethod
    def binary_path():
        path = shutil.which("prometheus")
        if not path:
            raise LabError("`labctl up --prometheus` needs Prometheus: install it with "
                           "`apt-get install prometheus` (or `make prometheus`)")
        return path

    def argv(self, lab):
        s, ports = lab.state, lab.ports
        config = s / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 5s, evaluation_interval: 5s}\n"
            "scrape_configs:\n- job_name: kubevirt\n  static_configs:\n"
            f"  - targets: ['127.0.0.1:{ports['simulator-metrics']}']\n")
        return [self.binary_path(), f"--config.file={config}", f"--storage.tsdb.path={s / 'prometheus'}",
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}", "--log.level=warn"]

    def check(self, lab):
        status, body = _get(f"http://127.0.0.1:{lab.ports['prometheus']}/-/ready")
        return status == 200, body.strip()


# Start order; `down` goes the other way.
COMPONENTS = (Etcd(), KubeApiserver(), KubeControllerManager(), FaultProxy(), Simulator(), Prometheus())
BY_NAME = {c.name: c for c in COMPONENTS}
NAMES = tuple(BY_NAME)


def component(name):
    try:
        return BY_NAME[name]
    except KeyError:
        raise LabError(f"unknown component {name}") from None


def ports_for(base):
    """Every port of the lab: base + offset, all on 127.0.0.1."""
    return {port: base + off for c in COMPONENTS for port, off in c.ports.items()}
