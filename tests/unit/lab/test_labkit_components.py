"""labctl's components (lab/labkit/components.py): ports, command lines, options, without starting anything."""
from pathlib import Path

import pytest

from labkit import components as C
from labkit.common import LabError

STATE = Path("/state")
BINS = {"etcd": ["kubelab", "etcd"], "kube-apiserver": ["kubelab", "kube-apiserver"],
        "kube-controller-manager": ["kubelab", "kube-controller-manager"]}


def lab(**opts):
    info = {"ports": C.ports_for(20000), "options": opts, "apiserver": {"url": "https://127.0.0.1:20000"}}
    return C.Lab(STATE, info, BINS)


def test_start_order_and_names():
    assert C.NAMES == ("etcd", "kube-apiserver", "kube-controller-manager", "faultproxy", "simulator", "prometheus")


def test_ports_are_the_base_plus_fixed_offsets():
    assert C.ports_for(20000) == {"kube-apiserver": 20000, "etcd": 20001, "etcd-peer": 20002,
                                  "kube-controller-manager": 20003, "simulator": 20004,
                                  "simulator-metrics": 20005, "prometheus": 20006, "faultproxy": 20007}


def test_the_port_checked_free_is_the_components_own():
    assert {c.name: c.port_name for c in C.COMPONENTS} == {n: n for n in C.NAMES}


@pytest.mark.parametrize("opts,enabled", [
    ({}, {"etcd", "kube-apiserver", "kube-controller-manager", "simulator"}),
    ({"simulator": False, "prometheus": True, "faults": 0.0},
     {"etcd", "kube-apiserver", "kube-controller-manager", "prometheus", "faultproxy"}),
])
def test_enabled_by_options(opts, enabled):
    assert {c.name for c in C.COMPONENTS if c.enabled(opts)} == enabled


def test_only_the_control_plane_needs_binaries():
    assert {c.name for c in C.COMPONENTS if not c.wanted({})} == {"etcd", "kube-apiserver", "kube-controller-manager"}
    assert [c.name for c in C.COMPONENTS if c.binary and c.required] == ["etcd", "kube-apiserver"]


def test_restart_options():
    assert {c.name: c.restart_options for c in C.COMPONENTS if c.restart_options} == {
        "kube-apiserver": ("audit",), "faultproxy": ("faults", "fault_seed"), "simulator": ("nodes", "boot_delay", "guests", "guest_cap")}


def test_etcd_argv():
    assert C.component("etcd").argv(lab()) == [
        "kubelab", "etcd", "--name=lab", "--data-dir=/state/etcd",
        "--listen-client-urls=http://127.0.0.1:20001", "--advertise-client-urls=http://127.0.0.1:20001",
        "--listen-peer-urls=http://127.0.0.1:20002", "--initial-advertise-peer-urls=http://127.0.0.1:20002",
        "--initial-cluster=lab=http://127.0.0.1:20002", "--log-level=warn",
        "--unsafe-no-fsync", "--quota-backend-bytes=4294967296"]


def test_apiserver_argv_audit_only_when_asked(tmp_path):
    plain = C.component("kube-apiserver").argv(lab())
    assert plain[:2] == ["kubelab", "kube-apiserver"]
    assert "--etcd-servers=http://127.0.0.1:20001" in plain and "--secure-port=20000" in plain
    assert "--client-ca-file=/state/pki/ca.crt" in plain
    assert not [a for a in plain if a.startswith("--audit")]
    audited = C.Lab(tmp_path, {"ports": C.ports_for(20000), "options": {"audit": True}}, BINS)
    argv = C.component("kube-apiserver").argv(audited)
    assert f"--audit-policy-file={tmp_path / 'audit-policy.yaml'}" in argv
    assert (tmp_path / "audit-policy.yaml").read_text() == C.AUDIT_POLICY


def test_simulator_argv_defaults_and_options():
    argv = C.component("simulator").argv(lab())
    assert argv[1:3] == ["-m", "simulator"]
    assert argv[-8:] == ["--requestheader-client-ca=/state/pki/front-proxy-ca.crt",
                         "--metrics-listen=127.0.0.1:20005", "--nodes=3", "--boot-delay=2.0",
                         "--guests=simulated", "--guest-cap=4", "--guest-dir=/state/guests",
                         "--volume-dir=/state/volumes"]
    assert C.component("simulator").argv(lab(nodes=5, boot_delay=0.5, guests="real", guest_cap=2))[-6:] == [
        "--nodes=5", "--boot-delay=0.5", "--guests=real", "--guest-cap=2", "--guest-dir=/state/guests",
        "--volume-dir=/state/volumes"]


def test_faultproxy_argv():
    argv = C.component("faultproxy").argv(lab(faults=0.25, fault_seed=7))
    assert argv[1:] == ["-m", "labkit.faultproxy", "--listen=127.0.0.1:20007", "--upstream=https://127.0.0.1:20000",
                        "--ca=/state/pki/ca.crt", "--tls-cert=/state/pki/faultproxy.crt",
                        "--tls-key=/state/pki/faultproxy.key", "--client-ca=/state/pki/ca.crt",
                        "--upstream-cert=/state/pki/admin.crt", "--upstream-key=/state/pki/admin.key",
                        "--rate=0.25", "--seed=7"]


def test_python_components_run_from_lab():
    for c in C.COMPONENTS:
        env, cwd = c.environment()
        assert (cwd == str(C.LAB)) == (c.name in ("faultproxy", "simulator"))
        assert env.get("PYTHONPATH", "").startswith(str(C.LAB)) == c.python


def test_lab_json_entries():
    ports = C.ports_for(20000)
    entries = dict(e for e in (c.info_entry(ports, {"prometheus": False, "faults": None}, STATE)
                               for c in C.COMPONENTS) if e)
    assert entries == {"apiserver": {"port": 20000, "url": "https://127.0.0.1:20000"},
                       "simulator": {"port": 20004, "metrics_port": 20005},
                       "prometheus": None, "faultproxy": None}
    entries = dict(e for e in (c.info_entry(ports, {"prometheus": True, "faults": 0.1}, STATE)
                               for c in C.COMPONENTS) if e)
    assert entries["prometheus"] == {"url": "http://127.0.0.1:20006"}
    assert entries["faultproxy"] == {"url": "https://127.0.0.1:20007", "rate": 0.1, "seed": 0,
                                     "kubeconfig": "/state/kubeconfig-faults"}


def test_health_of_nothing_listening_is_a_reason_not_an_exception():
    ok, detail = C.component("etcd").health(C.Lab(STATE, {"ports": C.ports_for(1), "options": {}}))
    assert ok is False and detail


def test_unknown_component():
    with pytest.raises(LabError, match="unknown component nope"):
        C.component("nope")


def test_apiserver_gc_settings_yield_to_the_environment(monkeypatch):
    apiserver = C.component("kube-apiserver")
    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    env, _ = apiserver.environment()
    assert (env["GOGC"], env["GOMEMLIMIT"]) == ("400", "4GiB")
    monkeypatch.setenv("GOGC", "100")
    env, _ = apiserver.environment()
    assert (env["GOGC"], env["GOMEMLIMIT"]) == ("100", "4GiB")
    env, _ = C.component("etcd").environment()
    assert "GOMEMLIMIT" not in env
