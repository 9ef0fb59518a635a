# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How to reach and authenticate to the Kubernetes API: options, environment, kubeconfig,
in-cluster ServiceAccount, and the TLS context and proxy rules that follow from them.

Connection settings
    Same option names, environment variables and precedence as kubernetes.core:
    a module option wins over ``K8S_AUTH_<OPTION>`` (or the kubernetes-client alias, e.g.
    ``K8S_AUTH_VERIFY_SSL``, ``K8S_AUTH_SSL_CA_CERT``); ``host`` with ``api_key`` (or with
    ``username``/``password``) is used as is; otherwise ``kubeconfig``/``context`` are loaded,
    and with neither the in-cluster ServiceAccount is tried, then the default kubeconfig
    (``$KUBECONFIG`` or ``~/.kube/config``). Options given explicitly override what the
    kubeconfig says. TLS verification is on unless ``validate_certs: false`` or the kubeconfig's
    ``insecure-skip-tls-verify`` turns it off, and then the module warns.

    Static kubeconfigs (token, client certificates, CA, proxy) are read here directly; the
    ``kubernetes`` package is imported only for ``exec`` and ``auth-provider`` users, so a
    module's start-up stays small.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from urllib.parse import urlsplit

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import errors
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ConfigError

USER_AGENT = "virtops.kubevirt/0.1.0"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

# Module options, as kubernetes.core names them.
AUTH_PROXY_HEADERS_SPEC = dict(
    proxy_basic_auth=dict(type="str", no_log=True),
    basic_auth=dict(type="str", no_log=True),
    user_agent=dict(type="str"),
)

AUTH_ARG_SPEC = dict(
    kubeconfig=dict(type="raw"),
    context=dict(type="str"),
    host=dict(type="str"),
    api_key=dict(type="str", no_log=True),
    username=dict(type="str"),
    password=dict(type="str", no_log=True),
    validate_certs=dict(type="bool", aliases=["verify_ssl"]),
    ca_cert=dict(type="path", aliases=["ssl_ca_cert"]),
    client_cert=dict(type="path", aliases=["cert_file"]),
    client_key=dict(type="path", aliases=["key_file"]),
    proxy=dict(type="str"),
    no_proxy=dict(type="str"),
    proxy_headers=dict(type="dict", options=AUTH_PROXY_HEADERS_SPEC),
    persist_config=dict(type="bool"),
    impersonate_user=dict(type="str"),
    impersonate_groups=dict(type="list", elements="str"),
)

# kubernetes-client name -> module option name (kubernetes.core's AUTH_ARG_MAP); the env var is
# K8S_AUTH_<OPTION> or K8S_AUTH_<CLIENT NAME>.
AUTH_ARG_MAP = {
    "kubeconfig": "kubeconfig",
    "context": "context",
    "host": "host",
    "api_key": "api_key",
    "username": "username",
    "password": "password",
    "verify_ssl": "validate_certs",
    "ssl_ca_cert": "ca_cert",
    "cert_file": "client_cert",
    "key_file": "client_key",
    "proxy": "proxy",
    "no_proxy": "no_proxy",
    "proxy_headers": "proxy_headers",
    "persist_config": "persist_config",
    "impersonate_user": "impersonate_user",
    "impersonate_groups": "impersonate_groups",
}

_BOOL_OPTIONS = ("validate_certs", "persist_config")
# Options that say who the task runs as: any of them replaces the kubeconfig's (or in-cluster) user.
USER_CREDENTIALS = ("api_key", "username", "password", "client_cert", "client_key")
# option -> the Connection attribute it sets, and the one it replaces (a token file, inline CA data...)
EXPLICIT_SETTINGS = (
    ("host", "host", None),
    ("api_key", "token", "token_file"),
    ("username", "username", None),
    ("password", "password", None),
    ("ca_cert", "ca_file", "ca_data"),
    ("client_cert", "cert_file", "cert_data"),
    ("client_key", "key_file", "key_data"),
    ("proxy", "proxy", None),
    ("no_proxy", "no_proxy", None),
)


_TRUE = ("1", "true", "yes", "on", "y", "t")
_FALSE = ("0", "false", "no", "off", "n", "f")


def _env_bool(value, name="the variable"):
    """A boolean environment variable; empty counts as unset (None). Anything else that is not a boolean
    is an error, so that a typo in K8S_AUTH_VERIFY_SSL never turns TLS verification off."""
    text = str(value).strip().lower()
    if not text:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError("%s=%r is not a boolean; use true or false." % (name, value))


def auth_settings(params, environ=None):
    """Connection settings from module options, then K8S_AUTH_* variables (kubernetes.core order).

    Returns a dict keyed by option name with only the settings that were given.
    """
    environ = os.environ if environ is None else environ
    params = params or {}
    auth = {}
    for client_name, option in AUTH_ARG_MAP.items():
        value = params.get(option)
        if value is not None:
            auth[option] = value
            continue
        if option == "proxy_headers":
            headers = {}
            for key in AUTH_PROXY_HEADERS_SPEC:
                env_value = environ.get("K8S_AUTH_PROXY_HEADERS_%s" % key.upper())
                if env_value is not None:
                    headers[key] = env_value
            if headers:
                auth[option] = headers
            continue
        env_name = "K8S_AUTH_%s" % option.upper()
        if environ.get(env_name) is None:
            env_name = "K8S_AUTH_%s" % client_name.upper()
        env_value = environ.get(env_name)
        if env_value is None:
            continue
        if option in _BOOL_OPTIONS:
            env_value = _env_bool(env_value, env_name)
            if env_value is None:
                continue
        elif option == "impersonate_groups":
            env_value = [g.strip() for g in env_value.split(",") if g.strip()]
        auth[option] = env_value
    return auth


class Connection:
    """Resolved connection settings: where to go and how to authenticate."""

    def __init__(self):
        self.host = None
        self.token = None
        self.token_file = None
        self.username = None
        self.password = None
        self.verify = True
        self.verify_off_by = None  # what turned TLS verification off, for the warning
        self.ca_file = None
        self.ca_data = None
        self.cert_file = None
        self.cert_data = None
        self.key_file = None
        self.key_data = None
        self.tls_server_name = None
        self.proxy = None
        self.no_proxy = None
        self.proxy_headers = None
        self.impersonate_user = None
        self.impersonate_groups = None
        self.namespace = "default"
        self.source = "options"
        self.context = None

    def headers(self):
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        token = self.token
        if not token and self.token_file:
            token = _read_text(self.token_file, "tokenFile").strip()
        if token:
            headers["Authorization"] = "Bearer %s" % token
        elif self.username and self.password:
            raw = ("%s:%s" % (self.username, self.password)).encode()
            headers["Authorization"] = "Basic %s" % base64.b64encode(raw).decode()
        if self.impersonate_user:
            headers["Impersonate-User"] = self.impersonate_user
        return headers


def _read_text(path, what):
    try:
        with open(path, "r") as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise ConfigError("Could not read the %s file %s: %s; check the path." % (what, path, exc.strerror or exc))


def _load_yaml_file(path):
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
        raise ConfigError("PyYAML is required to read the kubeconfig %s." % path)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = _read_text(path, "kubeconfig")
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise ConfigError("The kubeconfig %s is not valid YAML: %s." % (path, errors.one_line(exc, 200)))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("The kubeconfig %s is not a kubeconfig (a YAML mapping was expected)." % path)
    return data


def _named(items, what, path):
    out = {}
    for item in items or []:
        if isinstance(item, dict) and item.get("name") is not None:
            out.setdefault(item["name"], (item.get(what) or {}, path))
    return out


def _merge_kubeconfigs(paths):
    """Merge kubeconfig files the way kubectl does: the first file to define a name wins."""
    merged = {"clusters": {}, "users": {}, "contexts": {}, "current-context": None, "files": []}
    for path in paths:
        data = _load_yaml_file(path)
        merged["files"].append(path)
        base = os.path.dirname(os.path.abspath(path))
        for key, what in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for name, (value, _path) in _named(data.get(key), what, path).items():
                merged[key].setdefault(name, (value, base))
        if not merged["current-context"] and data.get("current-context"):
            merged["current-context"] = data["current-context"]
    return merged


def _kubeconfig_from_dict(data):
    if not isinstance(data, dict):
        raise ConfigError("The kubeconfig option must be a path or a kubeconfig dict.")
    merged = {"clusters": {}, "users": {}, "contexts": {}, "current-context": data.get("current-context"),
              "files": ["<dict>"]}
    base = os.getcwd()
    for key, what in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
        for name, (value, _path) in _named(data.get(key), what, "<dict>").items():
            merged[key][name] = (value, base)
    return merged


def _resolve(base, path):
    if not path:
        return path
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.join(base, path)


def _b64(data, what):
    try:
        return base64.b64decode(data)
    except (TypeError, ValueError):
        raise ConfigError("The kubeconfig's %s is not valid base64." % what)


def _default_kubeconfig_paths(environ):
    value = environ.get("KUBECONFIG")
    if value:
        paths = [p for p in value.split(os.pathsep) if p]
        existing = [os.path.expanduser(p) for p in paths if os.path.exists(os.path.expanduser(p))]
        return existing, value
    path = os.path.expanduser("~/.kube/config")
    return ([path] if os.path.exists(path) else []), path


def _from_kubeconfig(conn, auth, environ, use_user=True):
    """Cluster, context namespace and (with ``use_user``) the user's credentials from a kubeconfig."""
    kubeconfig = auth.get("kubeconfig")
    if isinstance(kubeconfig, dict):
        merged = _kubeconfig_from_dict(kubeconfig)
        described = "the kubeconfig dict"
    else:
        if kubeconfig:
            paths = [os.path.expanduser(p) for p in str(kubeconfig).split(os.pathsep) if p]
            missing = [p for p in paths if not os.path.exists(p)]
            if missing:
                raise ConfigError("The kubeconfig file %s does not exist; check the kubeconfig option "
                                  "or K8S_AUTH_KUBECONFIG." % missing[0])
            described = str(kubeconfig)
        else:
            paths, described = _default_kubeconfig_paths(environ)
            if not paths:
                return False
        merged = _merge_kubeconfigs(paths)
    context_name = auth.get("context") or merged["current-context"]
    if not context_name:
        raise ConfigError("The kubeconfig %s has no current-context; set the context option." % described)
    if context_name not in merged["contexts"]:
        raise ConfigError("The context %r is not in the kubeconfig %s; known contexts: %s." % (
            context_name, described, ", ".join(sorted(merged["contexts"])) or "none"))
    context, _base = merged["contexts"][context_name]
    cluster, cbase = merged["clusters"].get(context.get("cluster"), (None, None))
    if cluster is None:
        raise ConfigError("The context %r names the cluster %r, which is not in the kubeconfig %s." % (
            context_name, context.get("cluster"), described))
    user, ubase = merged["users"].get(context.get("user"), ({}, cbase))
    conn.source = "kubeconfig %s" % described
    conn.context = context_name
    conn.namespace = context.get("namespace") or "default"
    conn.host = cluster.get("server")
    if cluster.get("insecure-skip-tls-verify"):
        conn.verify = False
        conn.verify_off_by = "insecure-skip-tls-verify in the kubeconfig %s" % described
    if cluster.get("certificate-authority-data"):
        conn.ca_data = _b64(cluster["certificate-authority-data"], "certificate-authority-data").decode()
    elif cluster.get("certificate-authority"):
        conn.ca_file = _resolve(cbase, cluster["certificate-authority"])
    conn.tls_server_name = cluster.get("tls-server-name")
    conn.proxy = cluster.get("proxy-url")
    if not use_user:
        return True
    if user.get("exec") or user.get("auth-provider"):
        _from_kubernetes_client(conn, auth, merged, context_name, described)
    else:
        conn.token = user.get("token")
        if user.get("tokenFile"):
            conn.token_file = _resolve(ubase, user["tokenFile"])
        if user.get("client-certificate-data"):
            conn.cert_data = _b64(user["client-certificate-data"], "client-certificate-data")
        elif user.get("client-certificate"):
            conn.cert_file = _resolve(ubase, user["client-certificate"])
        if user.get("client-key-data"):
            conn.key_data = _b64(user["client-key-data"], "client-key-data")
        elif user.get("client-key"):
            conn.key_file = _resolve(ubase, user["client-key"])
        conn.username = user.get("username")
        conn.password = user.get("password")
    if user.get("as"):
        conn.impersonate_user = user["as"]
    if user.get("as-groups"):
        conn.impersonate_groups = list(user["as-groups"])
    return True


def _from_kubernetes_client(conn, auth, merged, context_name, described):
    """exec and auth-provider users: let the kubernetes package produce the credentials."""
    try:
        from kubernetes import config as kconfig
        from kubernetes.client import Configuration
    except ImportError:
        raise ConfigError("The kubeconfig user of context %r uses an exec or auth-provider plugin, which needs "
                          "the 'kubernetes' Python package; install it (pip install kubernetes)." % context_name)
    configuration = Configuration()
    kubeconfig = auth.get("kubeconfig")
    try:
        if isinstance(kubeconfig, dict):
            kconfig.load_kube_config_from_dict(config_dict=kubeconfig, context=context_name,
                                               client_configuration=configuration,
                                               persist_config=bool(auth.get("persist_config")))
        else:
            kconfig.load_kube_config(config_file=merged["files"][0] if len(merged["files"]) == 1 else None,
                                     context=context_name, client_configuration=configuration,
                                     persist_config=bool(auth.get("persist_config")))
    except Exception as exc:  # the client raises many kinds; all mean the same to a user
        raise ConfigError("Could not get credentials for context %r from %s: %s." % (
            context_name, described, errors.one_line(exc, 300)))
    keys = configuration.api_key or {}
    value = keys.get("BearerToken") or keys.get("authorization") or ""
    prefix = (configuration.api_key_prefix or {}).get("authorization")
    if prefix and not value.startswith(prefix):
        value = "%s %s" % (prefix, value)
    if value.lower().startswith("bearer "):
        conn.token = value[7:]
    elif value:
        conn.token = value
    conn.cert_file = configuration.cert_file or conn.cert_file
    conn.key_file = configuration.key_file or conn.key_file
    conn.ca_file = configuration.ssl_ca_cert or conn.ca_file
    if not conn.token and not conn.cert_file:
        raise ConfigError("Could not get credentials for context %r from %s: its exec or auth-provider plugin "
                          "gave no token or client certificate; run the plugin by hand (e.g. kubectl get ns) to "
                          "see why." % (context_name, described))


def _from_in_cluster(conn, environ, use_user=True):
    host = environ.get("KUBERNETES_SERVICE_HOST")
    port = environ.get("KUBERNETES_SERVICE_PORT")
    token_path = os.path.join(SA_DIR, "token")
    if not host or not port or not os.path.exists(token_path):
        return False
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    conn.source = "in-cluster ServiceAccount"
    conn.host = "https://%s:%s" % (host, port)
    if use_user:
        conn.token_file = token_path
    ca_path = os.path.join(SA_DIR, "ca.crt")
    if os.path.exists(ca_path):
        conn.ca_file = ca_path
    ns_path = os.path.join(SA_DIR, "namespace")
    if os.path.exists(ns_path):
        conn.namespace = _read_text(ns_path, "namespace").strip() or "default"
    return True


def resolve_connection(params, environ=None):
    """Module options + environment + kubeconfig -> Connection (kubernetes.core precedence; explicit
    credentials replace the kubeconfig's user, see the top of this file)."""
    environ = os.environ if environ is None else environ
    auth = auth_settings(params, environ)
    _check_credentials(auth)
    conn = Connection()
    use_user = not explicit_credentials(auth)

    def given(*names):
        return all(auth.get(n) for n in names)

    if given("username", "password", "host") or given("api_key", "host"):
        pass
    elif given("kubeconfig") or given("context"):
        _from_kubeconfig(conn, auth, environ, use_user)
    else:
        if not _from_in_cluster(conn, environ, use_user):
            if not _from_kubeconfig(conn, auth, environ, use_user) and not auth.get("host"):
                raise ConfigError(
                    "No connection settings: no host/api_key options, no K8S_AUTH_* variables, no in-cluster "
                    "ServiceAccount and no kubeconfig at %s; set kubeconfig or host and api_key." %
                    (environ.get("KUBECONFIG") or "~/.kube/config"))

    # Explicit settings override what the kubeconfig said.
    for option, attr, replaces in EXPLICIT_SETTINGS:
        if auth.get(option):
            setattr(conn, attr, auth[option])
            if replaces:
                setattr(conn, replaces, None)
    if auth.get("validate_certs") is not None:
        conn.verify = bool(auth["validate_certs"])
        conn.verify_off_by = None if conn.verify else "validate_certs false (or K8S_AUTH_VERIFY_SSL)"
    if auth.get("proxy_headers"):
        conn.proxy_headers = {k: v for k, v in auth["proxy_headers"].items() if v is not None}
    if auth.get("impersonate_user"):
        conn.impersonate_user = auth["impersonate_user"]
    if auth.get("impersonate_groups"):
        conn.impersonate_groups = list(auth["impersonate_groups"])

    if not conn.host:
        raise ConfigError("No API server address: set the host option (K8S_AUTH_HOST) or a kubeconfig whose "
                          "cluster has a server.")
    conn.host = conn.host.rstrip("/")
    if "://" not in conn.host:
        conn.host = "https://" + conn.host
    for attr, what in (("ca_file", "ca_cert"), ("cert_file", "client_cert"), ("key_file", "client_key")):
        path = getattr(conn, attr)
        if path and not os.path.exists(path):
            raise ConfigError("The %s file %s does not exist; check %s." % (what, path, what))
    return conn


def explicit_credentials(auth):
    """The credential options given (module options or K8S_AUTH_* variables), in USER_CREDENTIALS order."""
    return [name for name in USER_CREDENTIALS if auth.get(name)]


def _check_credentials(auth):
    """Half a credential is an error: without it the request would go out anonymous (or as someone else)."""
    for name, needs in (("username", "password"), ("password", "username"), ("client_key", "client_cert")):
        if auth.get(name) and not auth.get(needs):
            raise ConfigError("%s is set (option or K8S_AUTH_%s) but %s is not; give both, or neither to use the "
                              "kubeconfig's user." % (name, name.upper(), needs))


def host_matches_no_proxy(host, no_proxy):
    if not no_proxy:
        return False
    hostname = (urlsplit(host).hostname or "").lower()
    for entry in no_proxy.split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*" or hostname == entry or (entry.startswith(".") and hostname.endswith(entry)) \
                or hostname.endswith("." + entry):
            return True
        if "/" in entry:
            try:
                import ipaddress
                if ipaddress.ip_address(hostname) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def ssl_context(conn):
    if not conn.host.startswith("https://"):
        return None
    if conn.verify:
        try:
            if conn.ca_file or conn.ca_data:
                ctx = ssl.create_default_context(cafile=conn.ca_file, cadata=conn.ca_data)
            else:
                ctx = ssl.create_default_context()
        except (ssl.SSLError, ValueError, OSError) as exc:
            raise ConfigError("The CA certificate %s could not be loaded: %s; check ca_cert." % (
                conn.ca_file or "from the kubeconfig", errors.one_line(exc, 200)))
    else:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if conn.cert_file or conn.cert_data:
        _load_client_cert(ctx, conn)
    return ctx


def _load_client_cert(ctx, conn):
    tmpdir = None
    try:
        cert_file, key_file = conn.cert_file, conn.key_file
        if conn.cert_data or conn.key_data:
            tmpdir = tempfile.mkdtemp(prefix="virtops-kubevirt-")
            if conn.cert_data:
                cert_file = os.path.join(tmpdir, "cert.pem")
                _write_private(cert_file, conn.cert_data)
            if conn.key_data:
                key_file = os.path.join(tmpdir, "key.pem")
                _write_private(key_file, conn.key_data)
        ctx.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError("The client certificate or key could not be loaded: %s; check client_cert and "
                          "client_key (or the kubeconfig user)." % errors.one_line(exc, 200))
    finally:
        if tmpdir:
            for name in os.listdir(tmpdir):
                os.unlink(os.path.join(tmpdir, name))
            os.rmdir(tmpdir)


def _write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data if isinstance(data, bytes) else data.encode())
