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


def one_line(text, limit=400):
    """Collapse whitespace so a message stays one readable line."""
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- connection failures -------------------------------------------------------------------------
def connection_reason(exc):
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if "Errno 111" in text or "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "connection timed out"
    # urllib3 messages start with the connection object's repr; keep the part after the colon.
    if "): " in text:
        text = text.split("): ", 1)[1]
    return one_line(text, 200)


def is_tls_error(exc):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLError):
            return True
        exc = getattr(exc, "reason", None) or exc.__cause__ or exc.__context__
    return False


def tls_message(host, exc):
    text = re.sub(r"\s*\(_ssl\.c:\d+\)", "", str(getattr(exc, "reason", None) or exc))
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        detail = text.split("certificate verify failed:", 1)[-1].strip(" )'\"]") if "certificate verify failed:" \
            in text else "certificate verify failed"
        return ("TLS verification of the API server %s failed: its certificate could not be verified (%s); check "
                "ca_cert (K8S_AUTH_SSL_CA_CERT) or the kubeconfig's certificate-authority: it must hold the CA that "
                "signed the server's certificate." % (host, one_line(detail, 150)))
    return "The TLS connection to the API server %s failed (%s); check ca_cert, client_cert and client_key." % (
        host, one_line(text, 200))
