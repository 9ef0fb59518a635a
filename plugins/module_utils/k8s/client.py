# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one REST layer under every module: a pooled HTTPS transport that sends each request by the
policy of retry.py, typed helpers (get, list, apply, patch, delete, subresources) and watches
(watch.py). Connection settings come from connection.py.

    * Writes can't duplicate: objects have fixed names (a replayed create answers 409
      AlreadyExists, a replayed apply is a no-op), and updates use server-side apply with our own
      field manager, which changes only the fields we own and leaves other writers' fields alone.
    * 409 Conflict on a ``resourceVersion``-guarded update: ``update_with_retry`` re-reads the
      object, re-applies the caller's change to the fresh copy and writes again.
    * Watches resume from the last ``resourceVersion`` seen after a cut connection, and the
      waiter re-lists on 410 Gone (see kubevirt/wait.py).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from urllib.parse import urlencode, urlsplit

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import watch
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.connection import host_matches_no_proxy, resolve_connection, ssl_context
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    GO_HTTP_TO_HTTPS,
    ApiError,
    ConfigError,
    ConnectError,
    answered_with_tls,
    connection_reason,
    is_tls_error,
    is_tls_record_alert,
    relayed_refusal,
    no_answer_to_http,
    not_http_message,
    speaks_https_message,
    tls_message,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.retry import (
    REFUSED_ATTEMPTS,
    RETRY_ATTEMPTS,
    RETRY_STATUSES,
    Decision,
    backoff_delay,
    decide,
)

FIELD_MANAGER = "virtops.kubevirt"
CONNECT_TIMEOUT = watch.CONNECT_TIMEOUT
READ_TIMEOUT = 60.0
TLS_PROBE_TIMEOUT = 3.0


class Client:
    """REST calls to the API server with the retry policy described at the top of this file."""

    def __init__(self, conn, pool=None, sleep=time.sleep):
        self.conn = conn
        self.host = conn.host
        self.namespace = conn.namespace
        self.warnings = []
        self.requests = 0
        self._lock = threading.Lock()
        self._sleep = sleep
        self._headers = conn.headers()
        self._groups = conn.impersonate_groups or []
        self._speaks_tls = None  # http:// host that dropped a request: does it answer a TLS handshake?
        # Reads run on threads: the others wait for the one probe's answer (a provisional "no" they read
        # meanwhile made them send their request again).
        self._tls_probe_lock = threading.Lock()
        if not conn.verify and conn.host.startswith("https://"):
            self.warnings.append("TLS verification of the API server %s is off (%s): its identity is not checked; "
                                 "give its CA with ca_cert instead." % (
                                     conn.host, conn.verify_off_by or "validate_certs false"))
        self._pool = pool if pool is not None else self._make_pool()

    def _make_pool(self):
        try:
            import urllib3
        except ImportError:  # pragma: no cover - urllib3 is a dependency of kubernetes
            raise ConfigError("The urllib3 Python package is required; pip install kubernetes.")
        if not self.conn.verify:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        kwargs = dict(num_pools=4, maxsize=32, block=False)
        ctx = ssl_context(self.conn)
        if ctx is not None:
            kwargs["ssl_context"] = ctx
            if self.conn.tls_server_name:
                kwargs["server_hostname"] = self.conn.tls_server_name
        if self._proxied():
            headers = None
            if self.conn.proxy_headers:
                headers = urllib3.util.make_headers(**self.conn.proxy_headers)
            return urllib3.ProxyManager(self.conn.proxy, proxy_headers=headers, **kwargs)
        return urllib3.PoolManager(**kwargs)

    def _proxied(self):
        return bool(self.conn.proxy) and not host_matches_no_proxy(self.host, self.conn.no_proxy)

    # -- the one request function -------------------------------------------------------------
    def _url(self, path, query):
        url = self.host + path
        if query:
            items = [(k, v) for k, v in query.items() if v is not None and v != ""]
            if items:
                url += "?" + urlencode([(k, _qval(v)) for k, v in items])
        return url

    def _headers_for(self, content_type):
        headers = dict(self._headers)
        if content_type:
            headers["Content-Type"] = content_type
        if self._groups:
            import urllib3

            headers = urllib3.HTTPHeaderDict(headers)
            for group in self._groups:
                headers.add("Impersonate-Group", group)
        return headers

    def request(self, method, path, query=None, body=None, content_type="application/json", retry=None,
                timeout=None, stream=False, verify=None, binary=False):
        """Send one request (again, by retry.decide); return the decoded JSON answer (or text).

        ``retry`` (idempotent: send again whatever happened) defaults to True for GET, DELETE and
        apply patches, False otherwise. ``verify`` (a callable) lets a write that is not idempotent
        be sent again: after an answer that leaves its outcome unknown (no response, 5xx),
        ``verify()`` says whether the write took effect; if it did, the call returns ``{}``,
        otherwise the write is sent again. An error answer to such a repeat is checked with
        ``verify()`` too (it may be about our own earlier attempt). With ``stream`` the urllib3
        response is returned unread (for watches). With ``binary`` a success answer is returned
        as it came: (body bytes, Content-Type).
        """
        import urllib3

        if retry is None:
            retry = method in ("GET", "DELETE") or content_type == "application/apply-patch+yaml"
        url = self._url(path, query)
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        headers = self._headers_for(content_type if data is not None else None)
        if timeout is None:
            timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
        attempt = 0
        unknown = False  # an earlier attempt reached the server (or may have) without a clear answer
        while True:
            attempt += 1
            with self._lock:
                self.requests += 1
            error = resp = status = raw = None
            try:
                resp = self._pool.request(method, url, body=data, headers=headers, timeout=timeout,
                                          retries=False, redirect=False, preload_content=not stream)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                error = exc
            if error is not None:
                # may_have_acted: the request may have reached the server (an unknown outcome)
                may_have_acted, limit = self._unanswered(error)
                decision = decide(attempt, limit, may_have_acted, retry, verify)
                check_at_end, retry_after = may_have_acted, None
            else:
                if stream and resp.status < 300:
                    return resp
                status, raw = resp.status, self._read(resp, stream)
                if status < 400:
                    return (raw or b"", resp.headers.get("Content-Type") or "") if binary else _decode(raw, status)
                if status == 400 and self.host.startswith("http://") and GO_HTTP_TO_HTTPS.encode() in (raw or b""):
                    raise ConnectError(speaks_https_message(self.host))
                # 429: the server refused the request before acting on it, so any request is sent again.
                may_have_acted, check_at_end = status != 429, status in RETRY_STATUSES
                decision = decide(attempt, RETRY_ATTEMPTS, True, retry, verify, status,
                                  refused=check_at_end and relayed_refusal(status, _message(raw, status)))
                retry_after = resp.headers.get("Retry-After")
            if decision is Decision.VERIFY_THEN_SEND:
                if verify():
                    return {}
                decision = Decision.SEND_AGAIN
            if decision is Decision.SEND_AGAIN:
                unknown = unknown or may_have_acted
                self._sleep(backoff_delay(attempt, retry_after))
                continue
            if verify is not None and (unknown or check_at_end) and verify():
                return {}
            if error is not None:
                raise self._connect_error(error, attempt)
            err = ApiError(status, method, url, _decode(raw, status), attempts=attempt)
            err.after_unknown = unknown
            raise err

    @staticmethod
    def _read(resp, stream):
        if not stream:
            return resp.data
        raw = resp.read()
        resp.release_conn()
        return raw

    def _unanswered(self, exc):
        """A request without an answer: (may it have reached the server, attempts allowed).

        TLS and name-resolution failures and a protocol mismatch (http:// to an HTTPS server) raise
        ConnectError: sending again would not help. No connection made (refused, connect timeout)
        means nothing was sent; otherwise (reset, read timeout, proxy failure) the outcome is unknown.
        """
        import urllib3

        if is_tls_record_alert(exc):
            return True, RETRY_ATTEMPTS  # a TLS record the server could not read: that connection broke, not the setup
        if isinstance(exc, urllib3.exceptions.SSLError) or is_tls_error(exc):
            raise ConnectError(tls_message(self.host, exc))
        if isinstance(exc, urllib3.exceptions.NameResolutionError):
            raise ConnectError("Could not connect to the API server %s: the name does not resolve; check host or the "
                               "kubeconfig's server." % self.host)
        if self.host.startswith("http://") and (answered_with_tls(exc) or (
                no_answer_to_http(exc) and self._answers_tls())):
            raise ConnectError(speaks_https_message(self.host))
        if not_http_message(self.host, exc):
            raise ConnectError(not_http_message(self.host, exc))
        refused = isinstance(exc, urllib3.exceptions.NewConnectionError) and "refused" in str(exc)
        sent = not isinstance(exc, urllib3.exceptions.ConnectTimeoutError)
        return sent, REFUSED_ATTEMPTS if refused else RETRY_ATTEMPTS

    def _answers_tls(self):
        """Does the http:// host answer a TLS handshake? (Asked once, after it dropped a plain-HTTP
        request without answering; through a proxy the proxy answers, so not asked.) Nothing is sent
        but the handshake: a server that presents a certificate speaks TLS, whether or not the
        default CAs can verify it."""
        with self._tls_probe_lock:
            if self._speaks_tls is None:
                self._speaks_tls = not self._proxied() and self._handshakes()
            return self._speaks_tls

    def _handshakes(self):
        parts = urlsplit(self.host)
        try:
            with socket.create_connection((parts.hostname, parts.port or 80), TLS_PROBE_TIMEOUT) as sock:
                with ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname):
                    return True
        except ssl.SSLCertVerificationError:
            return True
        except (OSError, ValueError):
            return False

    def _connect_error(self, exc, attempt):
        import urllib3

        attempts = "%d attempt%s" % (attempt, "" if attempt == 1 else "s")
        if isinstance(exc, urllib3.exceptions.ProxyError) or self._proxied():
            return ConnectError("Could not reach the API server %s through the proxy %s: %s (%s); check proxy, and "
                                "that the API server is reachable from it." % (
                                    self.host, self.conn.proxy, connection_reason(exc), attempts))
        return ConnectError("Could not connect to the API server %s: %s (%s); check host or the kubeconfig's server, "
                            "and that the API server is running and reachable." % (
                                self.host, connection_reason(exc), attempts))

    # -- typed helpers ------------------------------------------------------------------------
    def get(self, resource, name, namespace=None):
        return self.request("GET", resource.path(namespace, name))

    def get_or_none(self, resource, name, namespace=None):
        try:
            return self.get(resource, name, namespace)
        except ApiError as exc:
            if exc.status == 404 and not _namespace_missing(exc):
                return None
            raise

    def list(self, resource, namespace=None, label_selector=None, field_selector=None, limit=500):
        """All objects (following 'continue'); returns the List with every item in ``items``."""
        query = {"labelSelector": label_selector, "fieldSelector": field_selector, "limit": limit}
        result = self.request("GET", resource.path(namespace), query)
        items = list(result.get("items") or [])
        while (result.get("metadata") or {}).get("continue"):
            query["continue"] = result["metadata"]["continue"]
            result = self.request("GET", resource.path(namespace), query)
            items.extend(result.get("items") or [])
        result["items"] = items
        return result

    def apply(self, resource, obj, dry_run=False, force=True, field_manager=FIELD_MANAGER):
        """Server-side apply with our field manager (force: our options win over other managers)."""
        meta = obj.get("metadata") or {}
        query = {"fieldManager": field_manager, "force": "true" if force else None,
                 "dryRun": "All" if dry_run else None}
        path = resource.path(meta.get("namespace"), meta["name"])
        return self.request("PATCH", path, query, body=obj, content_type="application/apply-patch+yaml")

    def create(self, resource, obj, dry_run=False, field_manager=FIELD_MANAGER):
        meta = obj.get("metadata") or {}
        query = {"fieldManager": field_manager, "dryRun": "All" if dry_run else None}
        return self.request("POST", resource.path(meta.get("namespace")), query, body=obj, retry=False)

    def merge_patch(self, resource, name, namespace, patch, dry_run=False, field_manager=FIELD_MANAGER,
                    retry=True):
        query = {"fieldManager": field_manager, "dryRun": "All" if dry_run else None}
        return self.request("PATCH", resource.path(namespace, name), query, body=patch,
                            content_type="application/merge-patch+json", retry=retry)

    def json_patch(self, resource, name, namespace, ops, dry_run=False, field_manager=FIELD_MANAGER, retry=False):
        query = {"fieldManager": field_manager, "dryRun": "All" if dry_run else None}
        return self.request("PATCH", resource.path(namespace, name), query, body=ops,
                            content_type="application/json-patch+json", retry=retry)

    def replace(self, resource, obj, dry_run=False, field_manager=FIELD_MANAGER):
        """PUT; guarded by the object's resourceVersion, so it is retried."""
        meta = obj.get("metadata") or {}
        query = {"fieldManager": field_manager, "dryRun": "All" if dry_run else None}
        return self.request("PUT", resource.path(meta.get("namespace"), meta["name"]), query, body=obj,
                            retry=bool(meta.get("resourceVersion")))

    def delete(self, resource, name, namespace=None, propagation="Foreground", dry_run=False, grace_period=None,
               uid=None):
        """DELETE; returns the answer, or None when the object was already gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if grace_period is not None:
            body["gracePeriodSeconds"] = grace_period
        if uid:
            body["preconditions"] = {"uid": uid}
        if dry_run:
            # With a DeleteOptions body the API server reads dryRun from the body, not the query.
            body["dryRun"] = ["All"]
        query = {"dryRun": "All" if dry_run else None}
        try:
            return self.request("DELETE", resource.path(namespace, name), query, body=body)
        except ApiError as exc:
            if exc.status == 404 and not _namespace_missing(exc):
                if exc.after_unknown:
                    # An earlier attempt reached the server and deleted it; only its answer was lost.
                    return {"kind": "Status", "apiVersion": "v1", "status": "Success",
                            "details": {"name": name, "kind": resource.plural}}
                return None
            raise

    def update_with_retry(self, resource, name, namespace, mutate, attempts=5, dry_run=False):
        """Read, let ``mutate(obj)`` change it, PUT with its resourceVersion; on 409 re-read and redo.

        ``mutate`` returns False to skip the write (nothing to change). Returns (obj, written).
        """
        for attempt in range(1, attempts + 1):
            current = self.get(resource, name, namespace)
            if mutate(current) is False:
                return current, False
            try:
                return self.replace(resource, current, dry_run=dry_run), True
            except ApiError as exc:
                if exc.status != 409 or attempt == attempts:
                    raise
                self._sleep(backoff_delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def subresource(self, method, path, body=None, query=None, verify=None):
        """virt-api subresource call (start, stop, guestosinfo...); never retried blindly.

        GETs are retried; an action (PUT) is sent again after 429, after a connection that was never
        made, and, when the caller gives ``verify`` (has the action taken effect?), after an answer
        that leaves its outcome unknown and verify() says it has not.
        """
        return self.request(method, path, query, body=body, retry=method == "GET", verify=verify)

    def subresource_bytes(self, path, query=None):
        """GET a virt-api subresource whose answer is not JSON (vnc/screenshot's PNG): (bytes, Content-Type)."""
        return self.request("GET", path, query, binary=True)

    def watch(self, resource, namespace=None, resource_version=None, label_selector=None,
              field_selector=None, timeout=60, send_initial_events=False, idle=None):
        """Open a watch; yields (type, object) events (see watch.open_watch)."""
        return watch.open_watch(self, resource, namespace, resource_version, label_selector, field_selector, timeout,
                                send_initial_events, idle)


def _namespace_missing(exc):
    return (exc.status_details or {}).get("kind") == "namespaces"


def _qval(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _decode(raw, status):
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return text if status >= 400 else {"text": text}


def _message(raw, status):
    """The message of an error answer (a metav1.Status's, or the plain-text body)."""
    body = _decode(raw, status)
    return body.get("message") or "" if isinstance(body, dict) else str(body)


_CLIENTS = {}


def connect(params, environ=None):
    """A Client for these module options (one per process and settings)."""
    conn = resolve_connection(params, environ)
    key = (conn.host, conn.token, conn.token_file, conn.username, conn.verify, conn.ca_file, conn.ca_data,
           conn.cert_file, conn.key_file, conn.cert_data, conn.key_data, conn.proxy, conn.impersonate_user,
           tuple(conn.impersonate_groups or ()), conn.tls_server_name)
    client = _CLIENTS.get(key)
    if client is None:
        client = _CLIENTS[key] = Client(conn)
    return client
