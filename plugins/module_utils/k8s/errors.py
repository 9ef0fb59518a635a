# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors the collection raises, and how an API error becomes one sentence a user can act on.

A message says what failed, on which object, why (the API's own ``message``) and what to check.
"""

from __future__ import annotations

import re
import ssl


class KubevirtError(Exception):
    """Base error: ``str(err)`` is the complete, user-facing message."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details

    def __str__(self):
        return self.msg


class InputError(KubevirtError):
    """Invalid module input, found before any request is sent."""


class ConfigError(KubevirtError):
    """No usable connection settings (kubeconfig, host, credentials)."""


class ConnectError(KubevirtError):
    """The API server could not be reached, or TLS verification failed."""


class WaitTimeout(KubevirtError):
    """A wait ended at its timeout; ``details`` hold what was last seen."""


class WaitFailed(KubevirtError):
    """A wait ended early because the object reached a final, failed state."""


class ApiError(KubevirtError):
    """An HTTP error answer from the API server.

    ``status`` is the HTTP code; ``reason``, ``api_message``, ``causes`` and ``details`` come from
    the metav1.Status body when there is one, else ``api_message`` holds the plain-text body.
    """

    def __init__(self, status, method, url, body=None, attempts=1):
        self.status = status
        self.method = method
        self.url = url
        self.attempts = attempts
        self.after_unknown = False  # an earlier attempt may have reached the server (see client.request)
        self.reason = ""
        self.api_message = ""
        self.causes = []
        self.status_details = {}
        if isinstance(body, dict):
            self.reason = body.get("reason") or ""
            self.api_message = body.get("message") or ""
            self.status_details = body.get("details") or {}
            self.causes = self.status_details.get("causes") or []
        elif body:
            self.api_message = str(body).strip()[:500]
        # Where a caller does not turn it into a sentence of its own (describe()), the error is still
        # one sentence: the request, the API's message (a 403 names user, verb and resource) and a hint.
        text = "%s %s answered %s%s%s" % (
            method, url, status, " " + self.reason if self.reason else "",
            ": " + _strip_period(one_line(self.api_message)) if self.api_message else "")
        hint = hint_for(self)
        super().__init__(text + ("; " + hint if hint else "") + ".")

    @property
    def not_found(self):
        return self.status == 404

    @property
    def conflict(self):
        return self.status == 409


# Server-side apply of an object with a field the schema does not declare: kube-apiserver answers
# 500 ("failed to create typed patch object (ns/name; group/version, Kind=...): .spec.x: field not
# declared in schema"), though the request, not the server, is at fault.
_TYPED_PATCH_RE = re.compile(r"^failed to create typed patch object \([^)]*\):\s*")
# virt-api relays an error of its own request as 500 InternalError: an admission webhook's denial
# ('admission webhook "migration-create-validator.kubevirt.io" denied the request: in-flight migration
# detected...') is then a 500 too, though the request was refused, not the server overloaded.
_WEBHOOK_DENIAL_RE = re.compile(r'admission webhook "[^"]*" denied the request')


def relayed_refusal(status, message):
    """A 5xx whose message is a refusal of the request (a field not in the schema, an admission
    webhook's denial): the same answer every time, so neither sent again nor 'overloaded'."""
    text = str(message or "")
    return status is not None and status >= 500 and bool(
        _WEBHOOK_DENIAL_RE.search(text) or "failed to create typed patch object" in text)


_QUANTITY_HINT_RE = re.compile(r"quantit|must match the regular expression.*\^\(\[\+-\]", re.I)


def _strip_period(text):
    text = (text or "").strip()
    return text[:-1] if text.endswith(".") else text


def _causes(err):
    parts = []
    for cause in err.causes or []:
        field = cause.get("field")
        message = cause.get("message") or cause.get("reason") or ""
        if field and field not in message:
            parts.append("%s: %s" % (field, message))
        elif message:
            parts.append(message)
    return "; ".join(parts)


def hint_for(err, ref=None):
    """What to check, for an ApiError; empty when the API's message says it all."""
    status = err.status
    msg = err.api_message or ""
    kind = (err.status_details or {}).get("kind")
    if status == 401:
        return "check api_key / the kubeconfig user, and that the token has not expired"
    if status == 403:
        return "grant that permission to the user or ServiceAccount (see docs/rbac.md)"
    if status == 404:
        if kind == "namespaces":
            return "create the namespace first, or check the namespace option"
        if "could not find the requested resource" in msg:
            return ("check that KubeVirt (and CDI/Multus for those kinds) is installed on this "
                    "cluster and that the connection points at the right cluster")
        return ""
    if status == 409 and err.reason == "AlreadyExists":
        return "choose another name or manage the existing object"
    if status == 409:
        return "another writer changed it at the same time; run the task again"
    if _TYPED_PATCH_RE.search(msg):
        return ("a field is not in the schema of the object: check its name and place in spec or definition "
                "(kubectl explain shows the schema)")
    if status in (422, 400) and _QUANTITY_HINT_RE.search(msg + _causes(err)):
        return "write sizes as Kubernetes quantities such as 2Gi or 512Mi"
    if relayed_refusal(status, msg):
        return ""
    if status == 500 and "/apis/subresources.kubevirt.io/" in (err.url or "") and msg:
        return ""   # virt-api relays what virt-handler or the guest said: its words are the reason
    if status == 429 or status >= 500:
        return "the API server is overloaded or failing; retry later (%d attempt%s made)" % (
            err.attempts, "" if err.attempts == 1 else "s")
    return ""


def describe(err, action, ref):
    """One sentence for an error raised while doing ``action`` ('create', 'read', ...) on ``ref``.

    ``ref`` is 'VirtualMachine ns/name' or similar. Non-API errors keep their own message.
    """
    if not isinstance(err, ApiError):
        return str(err)
    why = _strip_period(_TYPED_PATCH_RE.sub("", err.api_message or "")) or (
        "HTTP %d %s" % (err.status, err.reason)).strip()
    causes = _causes(err)
    if causes and _strip_period(causes) not in why:
        why = "%s (%s)" % (why, causes)
    if err.status == 404 and (err.status_details or {}).get("kind") == "namespaces":
        name = (err.status_details or {}).get("name") or ""
        why = "namespace %r does not exist" % name if name else why
    text = "Could not %s %s: %s" % (action, ref, why)
    hint = hint_for(err, ref)
    if hint:
        text += "; " + hint
    return text + "."


def did_you_mean(name, known):
    """' (did you mean 'x'?)' for the known name closest to a mistyped ``name``, else ''."""
    import difflib

    close = difflib.get_close_matches(str(name), sorted(known), n=1, cutoff=0.6)
    return " (did you mean %r?)" % close[0] if close else ""


def unknown_name_message(what, name, known, see=None):
    """One sentence for an unknown keyword/option/key: names it, suggests the closest known one, and
    when none is close lists the known ones (or says where they are listed: ``see``)."""
    hint = did_you_mean(name, known)
    text = "unknown %s %r%s" % (what, name, hint)
    if not hint:
        text += "; %s" % (see or "known: %s" % ", ".join(sorted(known)))
    return text + "."


def one_line(text, limit=400):
    """Collapse whitespace so a message stays one readable line."""
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- connection failures -------------------------------------------------------------------------
# Each failure of a request that got no HTTP answer becomes a short phrase, never the repr of an
# exception or of urllib3's connection object (ProtocolError's text is a tuple:
# "('Connection aborted.', RemoteDisconnected(...))").
_OBJECT_REPR_RE = re.compile(r"<[^<>]*? object at 0x[0-9a-fA-F]+>:?\s*")
_TIMEOUT_RE = re.compile(r"timeout=([0-9.]+)")
# What an HTTPS server says to a plain-HTTP request: Go's net/http (kube-apiserver) answers 400 with
# this text; OpenSSL-based servers answer with a TLS alert record, which http.client reads as a bad
# status line starting with the TLS record header (0x15 alert or 0x16 handshake, then version 3.x).
GO_HTTP_TO_HTTPS = "Client sent an HTTP request to an HTTPS server"
_TLS_RECORD_PREFIXES = ("\x15\x03", "\x16\x03")
# OpenSSL's words when the answer to a TLS ClientHello is not TLS (a plain-HTTP server).
_NOT_TLS_ANSWERS = ("WRONG_VERSION_NUMBER", "wrong version number", "record layer failure", "packet length too long",
                    "http request")


def _causes_of(exc):
    """``exc`` and what it wraps: urllib3's ``reason``/``original_error``, a ProtocolError's second
    argument, ``__cause__``/``__context__``; outermost first."""
    seen, out = set(), []
    while isinstance(exc, BaseException) and id(exc) not in seen:
        seen.add(id(exc))
        out.append(exc)
        inner = getattr(exc, "reason", None) or getattr(exc, "original_error", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in reversed(exc.args) if isinstance(a, BaseException)), None)
        exc = inner or exc.__cause__ or exc.__context__
    return out


def _named(exc, *names):
    return any(type(e).__name__ in names for e in _causes_of(exc))


def connection_reason(exc):
    """Why a request got no answer, as a short phrase without any exception repr."""
    causes = _causes_of(exc)
    text = " ".join(str(e) for e in causes)
    names = {type(e).__name__ for e in causes}
    if "ConnectionRefusedError" in names or "Errno 111" in text or "Connection refused" in text:
        return "connection refused"
    if "NameResolutionError" in names or "socket.gaierror" in text or "gaierror" in names:
        return "the name does not resolve"
    if "ReadTimeoutError" in names:
        seconds = _TIMEOUT_RE.search(text)
        return "no answer within %s s" % seconds.group(1) if seconds else "no answer in time"
    if "ConnectTimeoutError" in names or "timed out" in text.lower():
        return "connection timed out"
    if "RemoteDisconnected" in names:
        return "the server closed the connection without answering"
    if "ConnectionResetError" in names or "Connection reset" in text:
        return "the connection was reset"
    if "BadStatusLine" in names or "LineTooLong" in names:
        return "the server's answer is not HTTP"
    if "ConnectionAbortedError" in names or "BrokenPipeError" in names:
        return "the connection was cut"
    # Anything else: the innermost exception's own words, without urllib3's object reprs.
    inner = causes[-1] if causes else exc
    words = _OBJECT_REPR_RE.sub("", str(inner)).strip(" :")
    if not words or words.startswith("("):
        words = type(inner).__name__
    return one_line(words, 200)


def _status_line(exc):
    """The first line of a non-HTTP answer (http.client's BadStatusLine), or None."""
    for cause in _causes_of(exc):
        if type(cause).__name__ == "BadStatusLine":
            return str(cause.args[0] if cause.args else "")
    return None


def answered_with_tls(exc):
    """True when the server answered a plain-HTTP request with a TLS record: it speaks HTTPS."""
    return (_status_line(exc) or "").lstrip("'\"").startswith(_TLS_RECORD_PREFIXES)


def not_http_message(host, exc):
    """The server answered, but not in HTTP (an SSH or database port...): one sentence, or None.
    Sending again gets the same answer, so this is not retried."""
    line = _status_line(exc)
    if not line or not line.strip():
        return None
    shown = "".join(c if c.isprintable() else "?" for c in line.strip())[:40]
    return ("Could not talk to the API server at %s: what answered there does not speak HTTP (it said %r); check "
            "the address and port in host (or the kubeconfig's server)." % (host, shown))


def no_answer_to_http(exc):
    """The server closed or reset the connection instead of answering: what an HTTPS server does with
    a plain-HTTP request (so worth a TLS probe when the host is http://)."""
    return _named(exc, "RemoteDisconnected", "ConnectionResetError", "BadStatusLine")


def speaks_https_message(host):
    """http:// to a server that speaks HTTPS: one sentence, the fix in it."""
    return ("Could not talk to the API server at %s: it speaks HTTPS, not plain HTTP; use %s in host (or the "
            "kubeconfig's server)." % (host, "https://" + host.split("://", 1)[-1]))


def is_tls_error(exc):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLError):
            return True
        exc = getattr(exc, "reason", None) or exc.__cause__ or exc.__context__
    return False


# Alerts a TLS peer sends when a record of an established connection arrives garbled (RFC 8446 6.2): the bytes
# of that one connection, not the certificates or versions a handshake checks; a new connection may succeed.
TLS_RECORD_ALERTS = ("DECODE_ERROR", "BAD_RECORD_MAC", "DECRYPTION_FAILED")


def is_tls_record_alert(exc):
    """A TLS failure of one connection's records (sent again on a new connection), not of the TLS setup."""
    text = "%s %s" % (exc, getattr(exc, "reason", ""))
    return (is_tls_error(exc) or type(exc).__name__ == "SSLError") and any(alert in text for alert in TLS_RECORD_ALERTS)


def tls_message(host, exc):
    text = re.sub(r"\s*\(_ssl\.c:\d+\)", "", str(getattr(exc, "reason", None) or exc))
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        detail = text.split("certificate verify failed:", 1)[-1].strip(" )'\"]") if "certificate verify failed:" \
            in text else "certificate verify failed"
        return ("TLS verification of the API server %s failed: its certificate could not be verified (%s); check "
                "ca_cert (K8S_AUTH_SSL_CA_CERT) or the kubeconfig's certificate-authority: it must hold the CA that "
                "signed the server's certificate." % (host, one_line(detail, 150)))
    if any(words in text for words in _NOT_TLS_ANSWERS):
        return ("Could not talk to the API server at %s: it did not answer in TLS (a plain-HTTP server, or the wrong "
                "port); check the port in host, and use %s only if the server really speaks plain HTTP." % (
                    host, "http://" + host.split("://", 1)[-1]))
    text = _OBJECT_REPR_RE.sub("", text).strip(" :")
    return "The TLS connection to the API server %s failed (%s); check ca_cert, client_cert and client_key." % (
        host, one_line(text, 200))
