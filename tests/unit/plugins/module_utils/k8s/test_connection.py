"""Who a task runs as: explicit credentials (options or K8S_AUTH_* variables) replace the kubeconfig's
user and the in-cluster ServiceAccount token entirely; the kubeconfig still gives the server, CA, TLS
and proxy settings and the namespace."""
import base64
import json

import pytest

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import connection as kconn
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ConfigError

CA = base64.b64encode(b"-----CA-----").decode()
ADMIN_USER = {"client-certificate-data": base64.b64encode(b"ADMIN CERT").decode(),
              "client-key-data": base64.b64encode(b"ADMIN KEY").decode(),
              "token": "admin-token", "username": "admin", "password": "admin-pw",
              "as": "someone", "as-groups": ["admins"]}


def kubeconfig(tmp_path, user):
    data = {"apiVersion": "v1", "kind": "Config", "current-context": "main",
            "clusters": [{"name": "c1", "cluster": {"server": "https://api.lab:6443", "certificate-authority-data": CA,
                                                    "tls-server-name": "kubernetes",
                                                    "proxy-url": "http://proxy:3128"}}],
            "users": [{"name": "u1", "user": user}],
            "contexts": [{"name": "main", "context": {"cluster": "c1", "user": "u1", "namespace": "demo"}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(data))
    return str(path)


def assert_no_kubeconfig_user(conn):
    assert conn.cert_data is None and conn.key_data is None and conn.cert_file is None and conn.key_file is None
    assert conn.token_file is None
    assert conn.impersonate_user is None and conn.impersonate_groups is None


def assert_kubeconfig_cluster(conn):
    assert conn.host == "https://api.lab:6443" and conn.ca_data == "-----CA-----"
    assert conn.tls_server_name == "kubernetes" and conn.proxy == "http://proxy:3128" and conn.namespace == "demo"


@pytest.mark.parametrize("how", ["option", "env"])
def test_api_key_without_host_replaces_the_kubeconfig_user(tmp_path, how):
    """The defect: the kubeconfig's admin certificate went along with the token, and the API server
    authenticated the certificate."""
    path = kubeconfig(tmp_path, ADMIN_USER)
    if how == "option":
        conn = kconn.resolve_connection({"api_key": "sa-token"}, {"KUBECONFIG": path})
    else:
        conn = kconn.resolve_connection({}, {"KUBECONFIG": path, "K8S_AUTH_API_KEY": "sa-token"})
    assert_no_kubeconfig_user(conn)
    assert_kubeconfig_cluster(conn)
    headers = conn.headers()
    assert headers["Authorization"] == "Bearer sa-token" and "Impersonate-User" not in headers


def test_basic_auth_without_host_replaces_the_kubeconfig_user(tmp_path):
    conn = kconn.resolve_connection({"kubeconfig": kubeconfig(tmp_path, ADMIN_USER), "username": "u",
                                     "password": "p"}, {})
    assert_no_kubeconfig_user(conn)
    assert conn.token is None
    assert conn.headers()["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()


def test_client_cert_replaces_the_kubeconfig_token_and_key(tmp_path):
    cert = tmp_path / "me.crt"
    cert.write_text("cert and key")
    conn = kconn.resolve_connection({"kubeconfig": kubeconfig(tmp_path, ADMIN_USER), "client_cert": str(cert)}, {})
    assert conn.cert_file == str(cert) and conn.key_file is None and conn.key_data is None
    assert conn.token is None and conn.username is None
    assert "Authorization" not in conn.headers()


def test_explicit_impersonation_still_applies(tmp_path):
    conn = kconn.resolve_connection({"kubeconfig": kubeconfig(tmp_path, ADMIN_USER), "api_key": "t",
                                     "impersonate_user": "bob"}, {})
    assert conn.headers()["Impersonate-User"] == "bob"


def test_exec_user_is_not_run_with_explicit_credentials(tmp_path):
    """An exec plugin would need the kubernetes package and run a command: neither happens."""
    path = kubeconfig(tmp_path, {"exec": {"command": "/nonexistent/credential-helper", "apiVersion":
                                          "client.authentication.k8s.io/v1"}})
    conn = kconn.resolve_connection({"kubeconfig": path, "api_key": "t"}, {})
    assert conn.headers()["Authorization"] == "Bearer t"
    assert_kubeconfig_cluster(conn)


def test_in_cluster_token_is_replaced(tmp_path, monkeypatch):
    for name, text in (("token", "pod-sa-token"), ("ca.crt", "ca"), ("namespace", "jobs")):
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(kconn, "SA_DIR", str(tmp_path))
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    conn = kconn.resolve_connection({"username": "u", "password": "p"}, env)
    assert conn.host == "https://10.0.0.1:443" and conn.ca_file == str(tmp_path / "ca.crt")
    assert conn.token_file is None and conn.headers()["Authorization"].startswith("Basic ")


def test_without_explicit_credentials_the_kubeconfig_user_is_used(tmp_path):
    conn = kconn.resolve_connection({"kubeconfig": kubeconfig(tmp_path, ADMIN_USER)}, {})
    assert conn.cert_data == b"ADMIN CERT" and conn.token == "admin-token" and conn.impersonate_user == "someone"


@pytest.mark.parametrize("params, env, message", [
    ({"username": "u"}, {}, "username is set (option or K8S_AUTH_USERNAME) but password is not"),
    ({}, {"K8S_AUTH_PASSWORD": "p"}, "password is set (option or K8S_AUTH_PASSWORD) but username is not"),
    ({"client_key": "/k"}, {}, "client_key is set (option or K8S_AUTH_CLIENT_KEY) but client_cert is not"),
])
def test_half_a_credential_is_an_error(params, env, message):
    with pytest.raises(ConfigError) as exc:
        kconn.resolve_connection(dict(params, host="https://h"), env)
    assert str(exc.value).startswith(message)


def test_explicit_credentials_lists_what_was_given():
    assert kconn.explicit_credentials({"api_key": "t", "host": "h", "client_cert": "/c"}) == ["api_key", "client_cert"]
    assert kconn.explicit_credentials({"kubeconfig": "/k"}) == []
