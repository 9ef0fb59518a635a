"""labctl's contract, on a second, private lab (own state folder and ports, control plane only)."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LABCTL = [sys.executable, str(REPO / "lab" / "labctl")]
# Another port base for engineers who share a machine (each runs its own labs).
PORT_BASE = int(os.environ.get("LAB_PRIVATE_PORT_BASE", "18443"))


@pytest.fixture
def private_lab(tmp_path):
    env = dict(os.environ, LAB_STATE_DIR=str(tmp_path / "state"), LAB_PORT_BASE=str(PORT_BASE))

    def run(*args, check=True, extra_env=None):
        proc = subprocess.run(LABCTL + list(args), env=dict(env, **(extra_env or {})), capture_output=True,
                              text=True, timeout=180)
        if check:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    yield run, tmp_path / "state"
    run("down", check=False)


def _pids(state):
    folder = state / "pids"
    return {p.stem: int(p.read_text().split()[0]) for p in folder.glob("*.pid")} if folder.exists() else {}


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def _listening(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_up_twice_then_down_leaves_nothing(private_lab):
    run, state = private_lab
    first = run("up", "--no-simulator")
    assert "lab is up" in first.stdout
    pids = _pids(state)
    assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
    second = run("up", "--no-simulator")
    assert second.stdout.count("already running") == 3
    assert _pids(state) == pids
    assert run("status").returncode == 0
    assert "export KUBECONFIG=" in run("env").stdout
    assert "etcd" in run("logs", "etcd").stdout or run("logs", "etcd").returncode == 0
    run("down")
    assert not any(_alive(pid) for pid in pids.values())
    assert not any(_listening(PORT_BASE + off) for off in range(8))
    assert not state.exists()


def test_down_after_a_crash_cleans_up(private_lab):
    run, state = private_lab
    run("up", "--no-simulator")
    pids = _pids(state)
    os.kill(pids["kube-apiserver"], 9)
    deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously: on a busy machine it takes a moment
    while _alive(pids["kube-apiserver"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    status = run("status", check=False)
    assert status.returncode == 1 and "kube-apiserver           not running" in status.stdout
    run("down")
    assert not any(_alive(pid) for pid in pids.values())
    assert not any(_listening(PORT_BASE + off) for off in range(8))


def test_a_taken_port_is_one_clear_sentence(private_lab):
    run, state = private_lab
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", PORT_BASE))
        sock.listen()
        proc = run("up", "--no-simulator", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"labctl: port {PORT_BASE} on 127.0.0.1 (for kube-apiserver) is already in use "
                                   "by another program; stop that program or pick other ports with "
                                   "`labctl up --port-base N`")
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not _pids(state)


def test_a_missing_binary_is_one_clear_sentence(private_lab, tmp_path):
    run, _ = private_lab
    empty = tmp_path / "assets"
    empty.mkdir()
    proc = run("up", "--no-simulator", check=False, extra_env={"KUBEBUILDER_ASSETS": str(empty)})
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f"labctl: KUBEBUILDER_ASSETS={empty} has no etcd or kube-apiserver")
    assert "Traceback" not in proc.stderr
