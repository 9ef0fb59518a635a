import base64
import json
import os
import ssl

import pytest
import urllib3
from kvfakes import FakePool, FakeResponse

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import client as kclient
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import retry as kretry
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import connection as kconn
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import watch as kwatch
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError, ConfigError, ConnectError


# -- option / env precedence (kubernetes.core's) -------------------------------------------------------
@pytest.mark.parametrize("env, option, value", [
    ({"K8S_AUTH_HOST": "https://h"}, "host", "https://h"),
    ({"K8S_AUTH_API_KEY": "t"}, "api_key", "t"),
    ({"K8S_AUTH_KUBECONFIG": "/k"}, "kubeconfig", "/k"),
    ({"K8S_AUTH_CONTEXT": "c"}, "context", "c"),
    ({"K8S_AUTH_VERIFY_SSL": "no"}, "validate_certs", False),
    ({"K8S_AUTH_VERIFY_SSL": "True"}, "validate_certs", True),
    ({"K8S_AUTH_VALIDATE_CERTS": "false"}, "validate_certs", False),
    ({"K8S_AUTH_SSL_CA_CERT": "/ca"}, "ca_cert", "/ca"),
    ({"K8S_AUTH_CA_CERT": "/ca2"}, "ca_cert", "/ca2"),
    ({"K8S_AUTH_CERT_FILE": "/c"}, "client_cert", "/c"),
    ({"K8S_AUTH_CLIENT_CERT": "/c2"}, "client_cert", "/c2"),
    ({"K8S_AUTH_KEY_FILE": "/k"}, "client_key", "/k"),
    ({"K8S_AUTH_PROXY": "http://p:3128"}, "proxy", "http://p:3128"),
    ({"K8S_AUTH_NO_PROXY": "a,b"}, "no_proxy", "a,b"),
    ({"K8S_AUTH_USERNAME": "u"}, "username", "u"),
    ({"K8S_AUTH_PASSWORD": "p"}, "password", "p"),
    ({"K8S_AUTH_PERSIST_CONFIG": "yes"}, "persist_config", True),
    ({"K8S_AUTH_IMPERSONATE_USER": "bob"}, "impersonate_user", "bob"),
    ({"K8S_AUTH_IMPERSONATE_GROUPS": "g1, g2"}, "impersonate_groups", ["g1", "g2"]),
    ({"K8S_AUTH_PROXY_HEADERS_USER_AGENT": "ua"}, "proxy_headers", {"user_agent": "ua"}),
])
def test_env_vars(env, option, value):
    assert kconn.auth_settings({}, env)[option] == value


def test_option_beats_env():
    auth = kconn.auth_settings({"host": "https://opt", "validate_certs": True},
                               {"K8S_AUTH_HOST": "https://env", "K8S_AUTH_VERIFY_SSL": "false"})
    assert auth["host"] == "https://opt" and auth["validate_certs"] is True


def test_awx_credential_env_only(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    conn = kconn.resolve_connection({}, {"K8S_AUTH_HOST": "https://api:6443", "K8S_AUTH_API_KEY": "tok",
                                         "K8S_AUTH_SSL_CA_CERT": str(ca), "K8S_AUTH_VERIFY_SSL": "True",
                                         "KUBECONFIG": "/nonexistent"})
    assert conn.host == "https://api:6443"
    assert conn.token == "tok" and conn.verify is True and conn.ca_file == str(ca)
    assert conn.source == "options"
    assert conn.headers()["Authorization"] == "Bearer tok"


def _kubeconfig(tmp_path, user, cluster=None, name="kc", extra_contexts=()):
    cluster = cluster or {"server": "https://127.0.0.1:6443", "certificate-authority-data":
                          base64.b64encode(b"-----CA-----").decode()}
    data = {
        "apiVersion": "v1", "kind": "Config", "current-context": "main",
        "clusters": [{"name": "c1", "cluster": cluster}],
        "users": [{"name": "u1", "user": user}],
        "contexts": [{"name": "main", "context": {"cluster": "c1", "user": "u1", "namespace": "demo"}}]
        + list(extra_contexts),
    }
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_kubeconfig_token_and_namespace(tmp_path):
    path = _kubeconfig(tmp_path, {"token": "abc"})
    conn = kconn.resolve_connection({"kubeconfig": path}, {})
    assert conn.host == "https://127.0.0.1:6443" and conn.token == "abc"
    assert conn.namespace == "demo" and conn.ca_data == "-----CA-----" and conn.verify is True


def test_kubeconfig_relative_paths_and_client_cert_data(tmp_path):
    (tmp_path / "ca.pem").write_text("ca")
    path = _kubeconfig(tmp_path, {"client-certificate-data": base64.b64encode(b"CERT").decode(),
                                  "client-key-data": base64.b64encode(b"KEY").decode()},
                       cluster={"server": "https://h:1", "certificate-authority": "ca.pem",
                                "tls-server-name": "kubernetes", "proxy-url": "http://proxy:3128"})
    conn = kconn.resolve_connection({"kubeconfig": path}, {})
    assert conn.ca_file == str(tmp_path / "ca.pem")
    assert conn.cert_data == b"CERT" and conn.key_data == b"KEY"
    assert conn.tls_server_name == "kubernetes" and conn.proxy == "http://proxy:3128"


def test_kubeconfig_insecure_and_explicit_override(tmp_path):
    path = _kubeconfig(tmp_path, {"token": "abc"}, cluster={"server": "https://h:1", "insecure-skip-tls-verify": True})
    conn = kconn.resolve_connection({"kubeconfig": path}, {})
    assert conn.verify is False
    conn = kconn.resolve_connection({"kubeconfig": path, "validate_certs": True, "api_key": "other",
                                     "host": "https://o:2/"}, {})
    assert conn.verify is True and conn.token == "other" and conn.host == "https://o:2"


def test_kubeconfig_dict_and_context(tmp_path):
    data = json.loads(open(_kubeconfig(tmp_path, {"token": "abc"}, extra_contexts=[
        {"name": "other", "context": {"cluster": "c1", "user": "u1"}}])).read())
    conn = kconn.resolve_connection({"kubeconfig": data, "context": "other"}, {})
    assert conn.context == "other" and conn.namespace == "default"


def test_default_kubeconfig_merge(tmp_path):
    first = _kubeconfig(tmp_path, {"token": "first"}, name="a")
    second = _kubeconfig(tmp_path, {"token": "second"}, name="b")
    conn = kconn.resolve_connection({}, {"KUBECONFIG": os.pathsep.join([first, second])})
    assert conn.token == "first"


def test_in_cluster(tmp_path, monkeypatch):
    for name, text in (("token", "sa-token"), ("ca.crt", "ca"), ("namespace", "jobs")):
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(kconn, "SA_DIR", str(tmp_path))
    conn = kconn.resolve_connection({}, {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"})
    assert conn.host == "https://10.0.0.1:443" and conn.namespace == "jobs"
    assert conn.headers()["Authorization"] == "Bearer sa-token"


def test_impersonation_and_basic_auth():
    conn = kconn.resolve_connection({"host": "https://h", "username": "u", "password": "p",
                                     "impersonate_user": "bob"}, {})
    headers = conn.headers()
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    assert headers["Impersonate-User"] == "bob"


@pytest.mark.parametrize("params, env, message", [
    ({}, {"KUBECONFIG": "/does/not/exist"}, "No connection settings"),
    ({"kubeconfig": "/does/not/exist"}, {}, "The kubeconfig file /does/not/exist does not exist"),
    ({"host": "https://h", "api_key": "t", "ca_cert": "/no/ca.pem"}, {}, "The ca_cert file /no/ca.pem does not exist"),
])
def test_config_errors(params, env, message):
    with pytest.raises(ConfigError) as exc:
        kconn.resolve_connection(params, env)
    assert message in str(exc.value)


def test_unknown_context(tmp_path):
    path = _kubeconfig(tmp_path, {"token": "abc"})
    with pytest.raises(ConfigError) as exc:
        kconn.resolve_connection({"kubeconfig": path, "context": "nope"}, {})
    assert "The context 'nope' is not in the kubeconfig" in str(exc.value) and "main" in str(exc.value)


def test_bad_yaml(tmp_path):
    path = tmp_path / "bad"
    path.write_text("{{{")
    with pytest.raises(ConfigError) as exc:
        kconn.resolve_connection({"kubeconfig": str(path)}, {})
    assert "is not valid YAML" in str(exc.value)


@pytest.mark.parametrize("host, no_proxy, expected", [
    ("https://api.example.com:6443", "example.com", True),
    ("https://api.example.com:6443", ".example.com", True),
    ("https://api.example.org:6443", "example.com", False),
    ("https://10.1.2.3:6443", "10.0.0.0/8", True),
    ("https://10.1.2.3:6443", "", False),
])
def test_no_proxy(host, no_proxy, expected):
    assert kconn.host_matches_no_proxy(host, no_proxy) is expected


# -- the request layer and retry policy ------------------------------------------------------------
def make_client(answers):
    conn = kconn.Connection()
    conn.host = "https://h:6443"
    conn.token = "tok"
    pool = FakePool(answers)
    sleeps = []
    client = kclient.Client(conn, pool=pool, sleep=sleeps.append)
    return client, pool, sleeps


def test_get_sends_token_and_decodes():
    client, pool, dummy_sleeps = make_client([FakeResponse(200, {"kind": "VirtualMachine"})])
    assert client.get(res.VM, "a", "ns") == {"kind": "VirtualMachine"}
    method, url, kw = pool.sent[0]
    assert method == "GET" and url == "https://h:6443/apis/kubevirt.io/v1/namespaces/ns/virtualmachines/a"
    assert kw["headers"]["Authorization"] == "Bearer tok"


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retries_safe_requests(status):
    client, pool, sleeps = make_client([FakeResponse(status, {}), FakeResponse(200, {"ok": 1})])
    assert client.get(res.VM, "a", "ns") == {"ok": 1}
    assert len(pool.sent) == 2 and len(sleeps) == 1


def test_retry_after_is_honoured_and_capped():
    client, pool, sleeps = make_client([FakeResponse(429, {}, {"Retry-After": "3"}),
                                        FakeResponse(429, {}, {"Retry-After": "100"}), FakeResponse(200, {})])
    client.get(res.VM, "a", "ns")
    assert sleeps == [3.0, kretry.RETRY_AFTER_CAP]


def test_gives_up_after_attempts():
    client, pool, sleeps = make_client([FakeResponse(503, {"message": "busy"})] * kretry.RETRY_ATTEMPTS)
    with pytest.raises(ApiError) as exc:
        client.get(res.VM, "a", "ns")
    assert exc.value.attempts == kretry.RETRY_ATTEMPTS and len(pool.sent) == kretry.RETRY_ATTEMPTS
    assert all(s <= kretry.RETRY_CAP * 1.2 for s in sleeps)


@pytest.mark.parametrize("call", [
    lambda c: c.create(res.VM, {"metadata": {"name": "a", "namespace": "n"}}),
    lambda c: c.subresource("PUT", "/apis/subresources.kubevirt.io/v1/namespaces/n/virtualmachines/a/start"),
    lambda c: c.json_patch(res.VM, "a", "n", []),
])
def test_unsafe_requests_are_not_retried(call):
    client, pool, sleeps = make_client([FakeResponse(503, {}), FakeResponse(200, {})])
    with pytest.raises(ApiError):
        call(client)
    assert len(pool.sent) == 1


def test_apply_is_retried_and_uses_apply_patch():
    client, pool, dummy_sleeps = make_client([FakeResponse(500, {}), FakeResponse(200, {"a": 1})])
    client.apply(res.VM, {"metadata": {"name": "a", "namespace": "n"}}, dry_run=True)
    method, url, kw = pool.sent[1]
    assert method == "PATCH" and "fieldManager=virtops.kubevirt" in url and "force=true" in url
    assert "dryRun=All" in url and kw["headers"]["Content-Type"] == "application/apply-patch+yaml"


def test_4xx_not_retried_and_status_parsed():
    body = {"kind": "Status", "reason": "Invalid", "message": "bad",
            "details": {"causes": [{"field": "spec.x", "message": "nope"}]}}
    client, pool, dummy_sleeps = make_client([FakeResponse(422, body)])
    with pytest.raises(ApiError) as exc:
        client.get(res.VM, "a", "ns")
    assert exc.value.status == 422 and exc.value.causes[0]["field"] == "spec.x" and len(pool.sent) == 1


def test_connection_refused_retried_a_little():
    err = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    client, pool, sleeps = make_client([err] * 10)
    with pytest.raises(ConnectError) as exc:
        client.get(res.VM, "a", "ns")
    assert len(pool.sent) == kretry.REFUSED_ATTEMPTS
    assert "connection refused" in str(exc.value) and "https://h:6443" in str(exc.value)


def test_connection_reset_retried():
    err = urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
    client, pool, dummy_sleeps = make_client([err, FakeResponse(200, {"x": 1})])
    assert client.get(res.VM, "a", "ns") == {"x": 1}


def test_wrong_ca_is_one_clear_sentence():
    err = urllib3.exceptions.SSLError(ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate"))
    client, pool, dummy_sleeps = make_client([err])
    with pytest.raises(ConnectError) as exc:
        client.get(res.VM, "a", "ns")
    msg = str(exc.value)
    assert msg.startswith("TLS verification of the API server https://h:6443 failed")
    assert "unable to get local issuer certificate" in msg and "ca_cert" in msg and len(pool.sent) == 1


def test_unresolvable_host():
    err = urllib3.exceptions.NameResolutionError("nohost", None, OSError("Name or service not known"))
    client, pool, dummy_sleeps = make_client([err])
    with pytest.raises(ConnectError) as exc:
        client.get(res.VM, "a", "ns")
    assert "does not resolve" in str(exc.value)


def test_delete_missing_is_none_and_namespace_missing_raises():
    client, dummy_pool, dummy_sleeps = make_client([FakeResponse(404, {"reason": "NotFound", "details": {"kind": "virtualmachines"}})])
    assert client.delete(res.VM, "a", "n") is None
    client, dummy_pool, dummy_sleeps = make_client([FakeResponse(404, {"reason": "NotFound", "details": {"kind": "namespaces"}})])
    with pytest.raises(ApiError):
        client.get_or_none(res.VM, "a", "n")


def test_list_follows_continue():
    client, pool, dummy_sleeps = make_client([
        FakeResponse(200, {"metadata": {"continue": "c1"}, "items": [{"a": 1}]}),
        FakeResponse(200, {"metadata": {"resourceVersion": "9"}, "items": [{"a": 2}]})])
    result = client.list(res.VM, "n", label_selector="app=x")
    assert result["items"] == [{"a": 1}, {"a": 2}] and "continue=c1" in pool.sent[1][1]
    assert "labelSelector=app%3Dx" in pool.sent[0][1]


def test_update_with_retry_on_conflict():
    obj = {"metadata": {"name": "a", "namespace": "n", "resourceVersion": "1"}, "spec": {}}
    fresh = dict(obj, metadata=dict(obj["metadata"], resourceVersion="2"))
    answers = [FakeResponse(200, obj), FakeResponse(409, {"reason": "Conflict"}), FakeResponse(200, fresh),
               FakeResponse(200, {"done": True})]
    client, pool, dummy_sleeps = make_client(answers)
    seen = []

    def mutate(current):
        seen.append(current["metadata"]["resourceVersion"])
        current["spec"]["x"] = 1

    result, written = client.update_with_retry(res.VM, "a", "n", mutate)
    assert written and result == {"done": True} and seen == ["1", "2"]


def test_impersonate_groups_are_repeated_headers():
    conn = kconn.Connection()
    conn.host, conn.token, conn.impersonate_groups = "https://h", "t", ["g1", "g2"]
    pool = FakePool([FakeResponse(200, {})])
    kclient.Client(conn, pool=pool).get(res.VM, "a", "n")
    headers = pool.sent[0][2]["headers"]
    assert headers.getlist("Impersonate-Group") == ["g1", "g2"]


# -- watch ----------------------------------------------------------------------------------------
def _line(etype, obj):
    return (json.dumps({"type": etype, "object": obj}) + "\n").encode()


def test_watch_parses_split_lines_and_params():
    data = _line("ADDED", {"metadata": {"name": "a", "resourceVersion": "5"}}) + _line(
        "BOOKMARK", {"metadata": {"resourceVersion": "6"}})
    client, pool, dummy_sleeps = make_client([FakeResponse(200, chunks=[data[:10], data[10:40], data[40:]])])
    events = list(client.watch(res.VMI, "n", resource_version="4", field_selector="metadata.name=a", timeout=30,
                               send_initial_events=True))
    assert [e[0] for e in events] == ["ADDED", "BOOKMARK"]
    url = pool.sent[0][1]
    for part in ("watch=true", "allowWatchBookmarks=true", "sendInitialEvents=true",
                 "resourceVersionMatch=NotOlderThan", "resourceVersion=4", "timeoutSeconds=30"):
        assert part in url
    assert pool.sent[0][2]["preload_content"] is False


def test_watch_error_410_raises_gone():
    client, dummy_pool, dummy_sleeps = make_client([FakeResponse(200, chunks=[_line("ERROR", {"code": 410, "message": "too old"})])])
    with pytest.raises(kwatch.WatchGone):
        list(client.watch(res.VMI, "n"))


def test_watch_cut_ends_quietly():
    cut = urllib3.exceptions.ProtocolError("Connection broken")
    client, dummy_pool, dummy_sleeps = make_client([FakeResponse(200, chunks=[_line("ADDED", {"metadata": {"name": "a"}}), cut])])
    assert [e[0] for e in client.watch(res.VMI, "n")] == ["ADDED"]


def test_client_warns_when_tls_off():
    conn = kconn.Connection()
    conn.host, conn.verify = "https://h", False
    client = kclient.Client(conn, pool=FakePool([]))
    assert "TLS verification of the API server https://h is off" in client.warnings[0]


def test_real_pool_with_bad_ca_file(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a cert")
    conn = kconn.Connection()
    conn.host, conn.ca_file = "https://h", str(bad)
    with pytest.raises(ConfigError) as exc:
        kclient.Client(conn)
    assert "could not be loaded" in str(exc.value)


def test_paths():
    assert res.VM.path("ns", "a") == "/apis/kubevirt.io/v1/namespaces/ns/virtualmachines/a"
    assert res.POD.path("ns") == "/api/v1/namespaces/ns/pods"
    assert res.VMI.path() == "/apis/kubevirt.io/v1/virtualmachineinstances"
    assert res.NAMESPACE.path(name="x") == "/api/v1/namespaces/x"
    assert res.subresource_path(res.VM, "ns", "a", "start") == \
        "/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachines/a/start"
    assert res.VM.ref("a", "ns") == "VirtualMachine ns/a"
    with pytest.raises(KeyError):
        res.get("Nope")


def test_kubeconfig_exec_user_goes_through_the_kubernetes_client(tmp_path):
    plugin = tmp_path / "cred.sh"
    plugin.write_text('#!/bin/sh\necho \'{"apiVersion": "client.authentication.k8s.io/v1beta1", '
                      '"kind": "ExecCredential", "status": {"token": "exec-token"}}\'\n')
    plugin.chmod(0o755)
    path = _kubeconfig(tmp_path, {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                                           "command": str(plugin)}})
    conn = kconn.resolve_connection({"kubeconfig": path}, {})
    assert conn.token == "exec-token" and conn.host == "https://127.0.0.1:6443"


def test_kubeconfig_exec_failure_is_one_sentence(tmp_path):
    path = _kubeconfig(tmp_path, {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                                           "command": str(tmp_path / "missing-plugin")}})
    with pytest.raises(ConfigError) as exc:
        kconn.resolve_connection({"kubeconfig": path}, {})
    assert "Could not get credentials for context 'main'" in str(exc.value)


def test_apply_with_a_field_the_schema_lacks_is_not_retried():
    body = {"kind": "Status", "message": "failed to create typed patch object (n/a; kubevirt.io/v1, Kind=VirtualMachine): "
                                         ".spec.x: field not declared in schema"}
    client, pool, sleeps = make_client([FakeResponse(500, body), FakeResponse(200, {})])
    with pytest.raises(ApiError) as exc:
        client.apply(res.VM, {"metadata": {"name": "a", "namespace": "n"}})
    assert exc.value.status == 500 and len(pool.sent) == 1 and not sleeps


# -- TLS: on by default; every way to turn it off is explicit and warned about ----------------------------
def _ctx_for(conn):
    return kconn.ssl_context(conn)


def test_tls_verification_is_on_by_default_without_any_ca():
    conn = kconn.resolve_connection({"host": "https://h:6443", "api_key": "t"}, {})
    assert conn.verify is True
    ctx = _ctx_for(conn)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname is True
    assert kclient.Client(conn, pool=FakePool([])).warnings == []


@pytest.mark.parametrize("params, env, by", [
    ({"validate_certs": False}, {}, "validate_certs false (or K8S_AUTH_VERIFY_SSL)"),
    ({}, {"K8S_AUTH_VERIFY_SSL": "false"}, "validate_certs false (or K8S_AUTH_VERIFY_SSL)"),
    ({}, {"K8S_AUTH_VALIDATE_CERTS": "no"}, "validate_certs false (or K8S_AUTH_VERIFY_SSL)"),
])
def test_tls_off_only_when_asked_and_warned(params, env, by):
    conn = kconn.resolve_connection(dict({"host": "https://h:6443", "api_key": "t"}, **params), env)
    assert conn.verify is False
    ctx = _ctx_for(conn)
    assert ctx.verify_mode == ssl.CERT_NONE and ctx.check_hostname is False
    warnings = kclient.Client(conn, pool=FakePool([])).warnings
    assert warnings == ["TLS verification of the API server https://h:6443 is off (%s): its identity is not checked; "
                        "give its CA with ca_cert instead." % by]


def test_tls_off_by_the_kubeconfig_is_warned_naming_it(tmp_path):
    path = _kubeconfig(tmp_path, {"token": "abc"}, cluster={"server": "https://h:1", "insecure-skip-tls-verify": True})
    conn = kconn.resolve_connection({"kubeconfig": path}, {})
    assert conn.verify is False and _ctx_for(conn).verify_mode == ssl.CERT_NONE
    [warning] = kclient.Client(conn, pool=FakePool([])).warnings
    assert "is off (insecure-skip-tls-verify in the kubeconfig %s)" % path in warning


@pytest.mark.parametrize("value", ["", "  "])
def test_empty_verify_variable_counts_as_unset(value):
    assert "validate_certs" not in kconn.auth_settings({}, {"K8S_AUTH_VERIFY_SSL": value})
    conn = kconn.resolve_connection({"host": "https://h", "api_key": "t"}, {"K8S_AUTH_VERIFY_SSL": value})
    assert conn.verify is True


@pytest.mark.parametrize("name", ["K8S_AUTH_VERIFY_SSL", "K8S_AUTH_VALIDATE_CERTS"])
def test_a_typo_in_the_verify_variable_is_an_error_not_off(name):
    with pytest.raises(ConfigError, match="%s='ture' is not a boolean; use true or false" % name):
        kconn.resolve_connection({"host": "https://h", "api_key": "t"}, {name: "ture"})


def test_console_websocket_uses_the_same_tls_context(monkeypatch):
    """The console and VNC websockets take their TLS settings from the same Connection (no path of their own)."""
    from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import console
    seen = {}

    class FakeWebsocket:
        class WebSocketBadStatusException(Exception):
            pass

        class WebSocketTimeoutException(Exception):
            pass

        @staticmethod
        def create_connection(url, **kw):
            seen.update(kw)
            raise OSError("stop here")
    monkeypatch.setitem(__import__("sys").modules, "websocket", FakeWebsocket)
    conn = kconn.resolve_connection({"host": "https://h:6443", "api_key": "t"}, {})
    client = kclient.Client(conn, pool=FakePool([]))
    with pytest.raises(Exception):
        console.open_stream(client, "ns", "vm", "console")
    assert seen["sslopt"]["context"].verify_mode == ssl.CERT_REQUIRED
    assert seen["sslopt"]["context"].check_hostname is True


def test_subresource_bytes_returns_the_body_as_it_came():
    png = b"\x89PNG\r\n\x1a\n\x00\xff"
    client, pool, sleeps = make_client([FakeResponse(503, {}), FakeResponse(200, png, {"Content-Type": "image/png"})])
    path = "/apis/subresources.kubevirt.io/v1/namespaces/n/virtualmachineinstances/a/vnc/screenshot"
    assert client.subresource_bytes(path, {"moveCursor": False}) == (png, "image/png")
    assert pool.methods() == ["GET", "GET"] and len(sleeps) == 1, "a GET is sent again after 503"
    assert pool.sent[1][1] == "https://h:6443" + path + "?moveCursor=false"
