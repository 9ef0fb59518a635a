"""Helpers for the reliability lab tests (faults, concurrency, RBAC): a private fault proxy, a
kubeconfig through it, ansible-playbook runs with the JSON callback, the collection importable
in-process.
"""
import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml
from ansible_run import clean_environ, collection_path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def collections_path():
    """ANSIBLE_COLLECTIONS_PATH with this checkout as virtops.kubevirt (ansible_run makes the link)."""
    return collection_path()


def import_collection():
    """Make ansible_collections.virtops.kubevirt importable in this process."""
    path = collections_path()
    if path not in sys.path:
        sys.path.insert(0, path)


class FaultProxy:
    """labkit.faultproxy as a subprocess on a free loopback port."""

    def __init__(self, lab_state, upstream, rate, seed, faults=None, latency_ms=None):
        pki = Path(lab_state) / "pki"
        self.pki = pki
        cmd = [sys.executable, "-m", "labkit.faultproxy", "--listen", "127.0.0.1:0", "--upstream", upstream,
               "--ca", str(pki / "ca.crt"), "--tls-cert", str(pki / "faultproxy.crt"),
               "--tls-key", str(pki / "faultproxy.key"), "--client-ca", str(pki / "ca.crt"),
               "--upstream-cert", str(pki / "admin.crt"), "--upstream-key", str(pki / "admin.key"),
               "--rate", str(rate), "--seed", str(seed)]
        if faults:
            cmd += ["--faults", faults]
        if latency_ms is not None:
            cmd += ["--latency-ms", str(latency_ms)]
        self.proc = subprocess.Popen(cmd, env=dict(os.environ, PYTHONPATH=str(REPO / "lab"), PYTHONUNBUFFERED="1"),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline()
        match = re.search(r"listening on https://127\.0\.0\.1:(\d+) ", first)
        if not match:
            self.stop()
            raise RuntimeError("the fault proxy did not start: %s%s" % (first, self.proc.stderr.read()))
        self.port = int(match.group(1))
        self.url = "https://127.0.0.1:%d" % self.port
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stats(self):
        import ssl
        import urllib.request
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        with urllib.request.urlopen(self.url + "/faultproxy/stats", context=ctx, timeout=10) as resp:
            return json.loads(resp.read())

    def kubeconfig(self, path):
        """An admin kubeconfig (client certificate) that goes through the proxy."""
        def b64(name):
            return base64.b64encode((self.pki / name).read_bytes()).decode()
        data = {"apiVersion": "v1", "kind": "Config", "current-context": "faults",
                "clusters": [{"name": "faults",
                              "cluster": {"server": self.url, "certificate-authority-data": b64("ca.crt")}}],
                "users": [{"name": "admin", "user": {"client-certificate-data": b64("admin.crt"),
                                                     "client-key-data": b64("admin.key")}}],
                "contexts": [{"name": "faults", "context": {"cluster": "faults", "user": "admin"}}]}
        Path(path).write_text(json.dumps(data))
        os.chmod(path, 0o600)
        return str(path)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read() if self.proc.stderr else ""


# A callback that writes every task result (name, result) as JSON lines to $RESULTS_FILE.
CALLBACK = """
import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "results_file"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, result, status):
        path = os.environ.get("RESULTS_FILE")
        if not path:
            return
        data = dict(result._result)
        data.setdefault("_status", status)
        with open(path, "a") as handle:
            handle.write(json.dumps({"task": result._task.get_name(), "result": data}, default=str) + "\\n")

    def v2_runner_on_ok(self, result):
        self._write(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._write(result, "skipped")
"""


def callback_dir():
    path = REPO / ".cache" / "test-callbacks"
    path.mkdir(parents=True, exist_ok=True)
    plugin = path / "results_file.py"
    if not plugin.exists() or plugin.read_text() != CALLBACK:
        plugin.write_text(CALLBACK)
    return str(path)


def ansible_env(**extra):
    """ansible-playbook's environment: our collection, task results to $RESULTS_FILE, no
    K8S_AUTH_*/KUBECONFIG from outside."""
    env = clean_environ()
    env.pop("KUBECONFIG", None)
    env.update(ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               ANSIBLE_NOCOLOR="1", ANSIBLE_CALLBACK_PLUGINS=callback_dir(), ANSIBLE_CALLBACKS_ENABLED="results_file",
               ANSIBLE_RETRY_FILES_ENABLED="false", ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               PATH=str(BIN) + os.pathsep + os.environ.get("PATH", ""))
    env.update({k: str(v) for k, v in extra.items()})
    return env


class PlayResult:
    """rc, output, and each task's result by task name (from the results_file callback)."""

    def __init__(self, proc, results_file):
        self.rc = proc.returncode
        self.stderr = proc.stderr
        self.stdout = proc.stdout
        self.tasks = []
        if os.path.exists(results_file):
            with open(results_file) as handle:
                for line in handle:
                    entry = json.loads(line)
                    self.tasks.append((entry["task"], entry["result"]))

    def task(self, name):
        found = [r for n, r in self.tasks if n == name]
        assert found, "no task %r in %s" % (name, [n for n, _r in self.tasks])
        return found[-1]

    def failures(self):
        out = []
        for name, result in self.tasks:
            if result.get("failed") or result.get("_status") == "failed":
                items = [i for i in result.get("results") or [] if isinstance(i, dict) and i.get("failed")]
                if items:
                    out.extend((name, i.get("msg")) for i in items)
                else:
                    out.append((name, result.get("msg")))
        return out

    def explain(self):
        return "rc=%s failures=%s\n%s\n%s" % (self.rc, self.failures(), self.stdout[-3000:], self.stderr[-2000:])


def run_playbook(tmp_path, plays, env=None, extra_vars=None, timeout=600, name="play.yml"):
    """Write ``plays`` (a list, or a path to an existing playbook) and run it; returns a PlayResult."""
    if isinstance(plays, (str, Path)):
        path = str(plays)
    else:
        path = str(Path(tmp_path) / name)
        Path(path).write_text(yaml.safe_dump(plays, sort_keys=False))
    cmd = [str(BIN / "ansible-playbook"), path]
    if extra_vars:
        vars_file = Path(tmp_path) / ("vars-%s.json" % name)
        vars_file.write_text(json.dumps(extra_vars))
        cmd += ["-e", "@%s" % vars_file]
    results_file = Path(tmp_path) / ("results-%s.jsonl" % name)
    if results_file.exists():
        results_file.unlink()
    env = dict(env or ansible_env(), RESULTS_FILE=str(results_file))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=str(tmp_path))
    return PlayResult(proc, str(results_file))


def wait_for(predicate, timeout=60, interval=0.5, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)
