"""The fault-injection proxy (lab/labkit/faultproxy.py) in front of the lab's real kube-apiserver.

Each test starts its own proxy as a subprocess on a free loopback port (`--listen 127.0.0.1:0`;
the proxy prints the port it got) and talks to it with http.client or the kubernetes client.
"""
import datetime
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client, config, watch

REPO = Path(__file__).resolve().parents[2]
DROPPED = (ConnectionError, http.client.HTTPException, ssl.SSLError)  # no response at all


class Proxy:
    def __init__(self, proc, port, pki):
        self.proc, self.port, self.pki = proc, port, pki
        self.url = f"https://127.0.0.1:{port}"
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def faults_logged(self, kind, at_least=0, timeout=5):
        """The proxy's log lines for faults of ``kind``; waits (up to ``timeout``) for ``at_least`` of them: the
        proxy logs a fault after the client has seen it, and the reader thread takes the line a moment later."""
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.lines if re.match(rf"faultproxy: #\d+ {re.escape(kind)} ", line)]
            if len(found) >= at_least or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def conn(self, cert="admin", timeout=20):
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        if cert:
            crt, key = (self.pki / f"{cert}.crt", self.pki / f"{cert}.key") if isinstance(cert, str) else cert
            ctx.load_cert_chain(str(crt), str(key))
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=timeout)

    def request(self, method, path, body=None, cert="admin", token=None, headers=None, conn=None):
        """One request; returns (status, headers, parsed body). Raises one of DROPPED without a response."""
        own = conn is None
        conn = conn or self.conn(cert)
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        if body is not None:
            body = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            if own:
                conn.close()
        try:
            data = json.loads(data)
        except ValueError:
            data = data.decode()
        return resp.status, resp.headers, data

    def stats(self):
        status, _, data = self.request("GET", "/faultproxy/stats", cert=None)
        assert status == 200
        return data


@pytest.fixture
def start_proxy(lab_state, lab_info):
    pki = lab_state / "pki"
    procs = []

    def start(rate=0.0, seed=1, faults=None, latency_ms=None, upstream=None):
        cmd = [sys.executable, "-m", "labkit.faultproxy", "--listen", "127.0.0.1:0",
               "--upstream", upstream or lab_info["apiserver"]["url"], "--ca", str(pki / "ca.crt"),
               "--tls-cert", str(pki / "faultproxy.crt"), "--tls-key", str(pki / "faultproxy.key"),
               "--client-ca", str(pki / "ca.crt"), "--upstream-cert", str(pki / "admin.crt"),
               "--upstream-key", str(pki / "admin.key"), "--rate", str(rate), "--seed", str(seed)]
        if faults:
            cmd += ["--faults", faults]
        if latency_ms is not None:
            cmd += ["--latency-ms", str(latency_ms)]
        proc = subprocess.Popen(cmd, env=dict(os.environ, PYTHONPATH=str(REPO / "lab")),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        first = proc.stdout.readline()
        match = re.search(r"listening on https://127\.0\.0\.1:(\d+) ", first)
        assert match, f"the proxy did not start: {first}{proc.stderr.read() if proc.poll() is not None else ''}"
        return Proxy(proc, int(match.group(1)), pki)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stderr = proc.stderr.read()
        assert "Traceback" not in stderr and "error:" not in stderr, stderr


def _configmap(name):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


def _configmap_names(core, namespace):
    return {cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items
            if cm.metadata.name != "kube-root-ca.crt"}


def _assert_status(status, headers, body, code, reason):
    assert status == code
    assert headers["Content-Type"] == "application/json"
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert body["status"] == "Failure" and body["reason"] == reason and body["code"] == code
    assert body["message"]


# ---------------------------------------------------------------------------------- pass-through

def test_rate_zero_passes_everything_through(start_proxy, kubeconfig, core, namespace):
    proxy = start_proxy(rate=0)
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    cfg.host = proxy.url
    via = client.CoreV1Api(client.ApiClient(cfg))

    assert "default" in {ns.metadata.name for ns in via.list_namespace().items}
    via.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="one"),
                                                                   data={"a": "b"}))
    assert core.read_namespaced_config_map("one", namespace).data == {"a": "b"}
    via.delete_namespaced_config_map("one", namespace)
    with pytest.raises(client.ApiException) as gone:
        core.read_namespaced_config_map("one", namespace)
    assert gone.value.status == 404

    # a watch through the proxy delivers events as they happen (streamed, not buffered till the end)
    def writer():
        time.sleep(0.5)
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="two")))
        time.sleep(0.3)
        core.delete_namespaced_config_map("two", namespace)

    thread = threading.Thread(target=writer)
    thread.start()
    seen, started = [], time.monotonic()
    w = watch.Watch()
    for event in w.stream(via.list_namespaced_config_map, namespace, timeout_seconds=30):
        if event["object"].metadata.name == "two":
            seen.append(event["type"])
            if event["type"] == "DELETED":
                w.stop()
    thread.join()
    assert seen == ["ADDED", "DELETED"]
    assert time.monotonic() - started < 15, "events came only when the watch ended"

    stats = proxy.stats()
    assert stats["faults_total"] == 0 and stats["faults"] == {}
    assert stats["requests"] == stats["forwarded"] == 4
    assert stats["methods"]["GET"]["requests"] == 2
    assert stats["methods"]["POST"]["requests"] == stats["methods"]["DELETE"]["requests"] == 1
    assert proxy.lines[1:] == []  # nothing injected, nothing logged


def test_a_watch_the_client_leaves_is_closed_upstream(start_proxy, namespace):
    proxy = start_proxy(rate=0)
    conn = proxy.conn()
    conn.request("GET", f"/api/v1/namespaces/{namespace}/configmaps?watch=true&timeoutSeconds=300")
    resp = conn.getresponse()
    assert resp.status == 200 and b'"ADDED"' in resp.read1(65536)  # kube-root-ca.crt
    assert proxy.stats()["streaming"] == 1
    conn.close()  # a quiet namespace: no event will come to reveal that the client has left
    assert _eventually(lambda: proxy.stats()["streaming"] == 0, timeout=5)


# ---------------------------------------------------------------------------------- error replies

def test_rate_one_500_answers_every_request_with_a_status(start_proxy, core, namespace):
    proxy = start_proxy(rate=1, faults="500")
    _assert_status(*proxy.request("GET", "/api/v1/namespaces"), 500, "InternalError")
    _assert_status(*proxy.request("GET", "/version", cert=None), 500, "InternalError")
    status, headers, body = proxy.request("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                                          body=_configmap("never"))
    _assert_status(status, headers, body, 500, "InternalError")
    assert _configmap_names(core, namespace) == set(), "a faulted write must not reach the apiserver"

    # its own endpoints are never faulted and not counted
    status, _, body = proxy.request("GET", "/faultproxy/healthz", cert=None)
    assert (status, body) == (200, "ok")
    stats = proxy.stats()
    assert stats["requests"] == 3 and stats["forwarded"] == 0
    assert stats["faults"] == {"500": 3} and stats["faults_total"] == 3
    assert stats["methods"] == {"GET": {"requests": 2, "faults": {"500": 2}},
                                "POST": {"requests": 1, "faults": {"500": 1}}}
    assert len(proxy.faults_logged("500", at_least=3)) == 3


def test_429_carries_retry_after(start_proxy):
    proxy = start_proxy(rate=1, faults="429")
    status, headers, body = proxy.request("GET", "/api/v1/namespaces")
    _assert_status(status, headers, body, 429, "TooManyRequests")
    assert headers["Retry-After"] == "1" and headers["X-Faultproxy-Fault"] == "429"
    assert body["details"] == {"retryAfterSeconds": 1}
    assert proxy.stats()["faults"] == {"429": 1}


def test_faults_split_across_enabled_kinds_and_keep_the_connection(start_proxy):
    proxy = start_proxy(rate=1, faults="500,503,429", seed=3)
    conn = proxy.conn()
    seen = []
    for _ in range(30):  # one kept-alive connection: a Status reply does not close it
        status, headers, body = proxy.request("GET", "/api/v1/namespaces/default", conn=conn)
        reason = {500: "InternalError", 503: "ServiceUnavailable", 429: "TooManyRequests"}[status]
        _assert_status(status, headers, body, status, reason)
        assert (headers["Retry-After"] == "1") == (status == 429)
        seen.append(status)
    conn.close()
    assert set(seen) == {500, 503, 429}
    stats = proxy.stats()
    assert stats["faults"] == {str(code): seen.count(code) for code in (500, 503, 429)}
    assert stats["methods"]["GET"]["requests"] == 30


# ---------------------------------------------------------------------------------- resets

def test_reset_closes_without_a_response(start_proxy, core, namespace):
    proxy = start_proxy(rate=1, faults="reset", seed=5)
    with pytest.raises(DROPPED):
        proxy.request("GET", "/api/v1/namespaces")

    # writes: mostly reset before forwarding (nothing created), sometimes after (created, unheard)
    names = [f"cm-{i}" for i in range(20)]
    for name in names:
        with pytest.raises(DROPPED):
            proxy.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body=_configmap(name))
    stats = proxy.stats()
    before, after = stats["faults"]["reset"], stats["faults"].get("reset-after-write", 0)
    assert before == 1 + 20 - after and 0 < after < 10
    assert len(_configmap_names(core, namespace)) == after == stats["forwarded"]
    assert len(proxy.faults_logged("reset-after-write", at_least=after)) == after
    assert all("apiserver answered 201" in line for line in proxy.faults_logged("reset-after-write"))


def test_reset_after_write_performs_the_write(start_proxy, core, namespace):
    proxy = start_proxy(rate=1, faults="reset-after-write")
    status, _, _ = proxy.request("GET", f"/api/v1/namespaces/{namespace}")  # reads are not affected
    assert status == 200
    with pytest.raises(DROPPED):
        proxy.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body=_configmap("made"))
    assert _configmap_names(core, namespace) == {"made"}
    assert proxy.stats()["faults"] == {"reset-after-write": 1}


# ---------------------------------------------------------------------------------- watches

def test_cut_watch_ends_a_watch_early(start_proxy, core, namespace):
    proxy = start_proxy(rate=1, faults="cut-watch", seed=11)
    status, _, _ = proxy.request("GET", f"/api/v1/namespaces/{namespace}/configmaps")
    assert status == 200, "cut-watch leaves plain requests alone"

    stop = threading.Event()

    def writer():
        for i in range(40):
            if stop.wait(0.2):
                return
            core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"w{i}")))

    thread = threading.Thread(target=writer)
    thread.start()
    conn = proxy.conn()
    started = time.monotonic()
    conn.request("GET", f"/api/v1/namespaces/{namespace}/configmaps?watch=true&timeoutSeconds=60")
    resp = conn.getresponse()
    assert resp.status == 200
    events, clean_end, buf = [], False, b""
    try:  # read1, not readline: http.client's readline hides a truncated chunked body
        while data := resp.read1(65536):
            *lines, buf = (buf + data).split(b"\n")
            events += [json.loads(line)["type"] for line in lines]
        clean_end = True
    except (http.client.IncompleteRead, *DROPPED):
        pass
    elapsed = time.monotonic() - started
    stop.set()
    thread.join()
    conn.close()
    assert not clean_end, "the stream must end abruptly, without the terminating chunk"
    assert elapsed < 8, f"the watch (timeoutSeconds=60) was not cut: it lasted {elapsed:.1f}s"
    assert len(events) <= 5  # the initial ADDED for kube-root-ca.crt, then at most 4
    stats = proxy.stats()
    assert stats["faults"] == {"cut-watch": 1}
    assert re.search(rf"after {len(events)} events$", proxy.faults_logged("cut-watch", at_least=1)[0])


# ---------------------------------------------------------------------------------- latency

def test_latency_delays_but_answers(start_proxy):
    proxy = start_proxy(rate=1, faults="latency", latency_ms=300, seed=2)
    started = time.monotonic()
    for _ in range(4):
        assert proxy.request("GET", "/version")[0] == 200
    elapsed = time.monotonic() - started
    delays = [int(re.search(r" (\d+)ms$", line).group(1)) for line in proxy.faults_logged("latency", at_least=4)]
    assert len(delays) == 4 and all(0 <= d <= 300 for d in delays)
    assert elapsed >= (sum(delays) - 4) / 1000
    assert proxy.stats()["faults"] == {"latency": 4}


# ---------------------------------------------------------------------------------- determinism

def test_same_seed_same_fault_sequence(start_proxy):
    def sequence(seed):
        proxy = start_proxy(rate=0.5, faults="500,503,429", seed=seed)
        conn = proxy.conn()
        codes = [proxy.request("GET", "/version", conn=conn)[0] for _ in range(24)]
        conn.close()
        proxy.proc.terminate()
        proxy.proc.wait(10)
        return codes

    first = sequence(7)
    assert 200 in first and set(first) - {200}
    assert sequence(7) == first
    assert sequence(8) != first


# ---------------------------------------------------------------------------------- identity

def test_service_account_token_keeps_its_identity(start_proxy, core, namespace):
    rbac = client.RbacAuthorizationV1Api(core.api_client)
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="limited")))
    rbac.create_namespaced_role(namespace, client.V1Role(
        metadata=client.V1ObjectMeta(name="read-cm"),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list"])]))
    rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="read-cm"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="read-cm"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="limited", namespace=namespace)]))
    token = core.create_namespaced_service_account_token(
        "limited", namespace, client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))).status.token
    proxy = start_proxy(rate=0)
    user = f"system:serviceaccount:{namespace}:limited"

    status, _, body = proxy.request("GET", "/api/v1/namespaces", cert=None, token=token)
    assert status == 403 and f'User "{user}"' in body["message"]
    # the token wins over a client cert: the admin cert is not used upstream
    status, _, body = proxy.request("GET", "/api/v1/namespaces", cert="admin", token=token)
    assert status == 403 and f'User "{user}"' in body["message"]
    assert _eventually(lambda: proxy.request("GET", f"/api/v1/namespaces/{namespace}/configmaps",
                                             cert=None, token=token)[0] == 200)


def _eventually(check, timeout=10):
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            return False
        time.sleep(0.2)
    return True


def _user_cert(pki, folder, cn, org):
    ca_cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    crt, pem = folder / f"{cn}.crt", folder / f"{cn}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def test_client_cert_user_is_impersonated(start_proxy, lab_state, core, namespace, tmp_path):
    someone = _user_cert(lab_state / "pki", tmp_path, "someone", f"team-{uuid.uuid4().hex[:6]}")
    group = x509.load_pem_x509_certificate(someone[0].read_bytes()).subject.get_attributes_for_oid(
        NameOID.ORGANIZATION_NAME)[0].value
    proxy = start_proxy(rate=0)

    status, _, body = proxy.request("GET", "/api/v1/namespaces", cert=someone)
    assert status == 403 and 'User "someone"' in body["message"]
    status, _, body = proxy.request("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                                    body=_configmap("nope"), cert=someone)
    assert status == 403 and 'User "someone"' in body["message"] and "create" in body["message"]
    assert _configmap_names(core, namespace) == set()

    # its groups (O=) are passed too: a binding to the group lets it read
    rbac = client.RbacAuthorizationV1Api(core.api_client)
    rbac.create_namespaced_role(namespace, client.V1Role(
        metadata=client.V1ObjectMeta(name="read-cm"),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["list"])]))
    rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="read-cm"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="read-cm"),
        subjects=[client.RbacV1Subject(kind="Group", name=group, api_group="rbac.authorization.k8s.io")]))
    assert _eventually(lambda: proxy.request("GET", f"/api/v1/namespaces/{namespace}/configmaps",
                                             cert=someone)[0] == 200)

    # a client-cert user cannot borrow the proxy's admin cert to impersonate someone else
    status, _, body = proxy.request("GET", "/api/v1/namespaces", cert=someone,
                                    headers={"Impersonate-User": "virtops-lab-admin"})
    assert status == 403 and "Impersonate" in body["message"]
    # a system:masters cert passes as the admin; no cert and no token is anonymous
    assert proxy.request("GET", "/api/v1/namespaces")[0] == 200
    status, _, body = proxy.request("GET", "/api/v1/namespaces", cert=None)
    assert status == 403 and 'User "system:anonymous"' in body["message"]


# ---------------------------------------------------------------------------------- upgrades, loopback

def test_upgrade_requests_are_piped_and_never_faulted(start_proxy):
    proxy = start_proxy(rate=1, faults="500,503,429,reset,latency")
    conn = proxy.conn()
    status, _, body = proxy.request("GET", "/api/v1/namespaces/default", conn=conn, headers={
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert status == 200 and body["metadata"]["name"] == "default"  # the apiserver's own answer
    # from then on the connection is a raw pipe to the apiserver: bytes go through unparsed
    status, _, body = proxy.request("GET", "/api/v1/namespaces/kube-system", conn=conn)
    assert status == 200 and body["metadata"]["name"] == "kube-system"
    conn.close()
    stats = proxy.stats()
    assert stats["requests"] == stats["upgrades"] == 1 and stats["faults_total"] == 0


def test_unreachable_apiserver_is_a_502_status(start_proxy):
    proxy = start_proxy(rate=0, upstream="https://127.0.0.1:1")
    status, headers, body = proxy.request("GET", "/api/v1/namespaces")
    _assert_status(status, headers, body, 502, "InternalError")
    assert "cannot reach the apiserver https://127.0.0.1:1" in body["message"]
    assert "X-Faultproxy-Fault" not in headers and proxy.stats()["faults_total"] == 0


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "10.1.2.3:8443", "localhost:0"])
def test_listens_on_loopback_only(lab_state, listen):
    pki = lab_state / "pki"
    proc = subprocess.run([sys.executable, "-m", "labkit.faultproxy", "--listen", listen,
                           "--upstream", "https://127.0.0.1:1", "--ca", str(pki / "ca.crt"),
                           "--tls-cert", str(pki / "faultproxy.crt"), "--tls-key", str(pki / "faultproxy.key")],
                          env=dict(os.environ, PYTHONPATH=str(REPO / "lab")), capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2 and "loopback only" in proc.stderr
