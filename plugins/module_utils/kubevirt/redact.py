# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets out of everything the collection shows: module results and diffs, lookups, inventory
host variables, the vm_monitor report and console transcripts. Pure functions.

The markers are Ansible's own, so hidden values read the same as ansible-core's no_log output: a
value hidden whole reads REDACTED (what a no_log option's value reads in ``invocation``), a secret
inside a text (a console transcript) reads MASK (what ansible-core puts for a no_log value found
inside other output).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.writes import normalize

REDACTED = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
REDACTED_CHANGED = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER (changed)"
MASK = "********"


def mask(text, secrets):
    """``text`` with every secret in it (longest first, so no part of a longer one is left) as MASK."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


# -- secrets ---------------------------------------------------------------------------------------
# One redaction for everything the collection shows: module results and diffs, lookups, inventory
# host variables and the vm_monitor report. A value is a secret when
#   * it is the user or network data of a cloud-init volume (cloudInitNoCloud, cloudInitConfigDrive),
#   * its key names a secret wherever it is (password, token, api_key, userData... compared without
#     case, '_' and '-'), or
#   * it is a string that reads like cloud-init or a password assignment (#cloud-config, chpasswd,
#     'password:'), whatever its key.
# kubectl's client-side apply keeps a copy of the whole object in the annotation
# kubectl.kubernetes.io/last-applied-configuration: that JSON is parsed and redacted by the same
# rules (replaced whole when it can't be parsed).
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_CLOUD_INIT_SOURCES = ("cloudInitNoCloud", "cloudInitConfigDrive")
_SECRET_KEYS = ("userData", "userDataBase64", "networkData", "networkDataBase64")


def _norm(key):
    return str(key).replace("_", "").replace("-", "").lower()


SECRET_KEYS = frozenset(_norm(k) for k in _SECRET_KEYS + (
    "password", "passwd", "plain_text_passwd", "chpasswd", "api_key", "token", "bearer", "authorization",
    "client_key", "private_key", "ssh_private_key", "stringData", "secret_value", "K8S_AUTH_API_KEY",
    "K8S_AUTH_PASSWORD", "proxy_basic_auth", "basic_auth"))
SECRET_TEXT = re.compile(r"(#cloud-config|#!\s*/bin/|chpasswd|password\s*[:=])", re.IGNORECASE)
_EMPTY = (None, "", [], {})


def _secret(key, value, parent):
    """Is ``value`` (under ``key``, in a mapping under ``parent``) a secret by where it is?"""
    if value is None or (isinstance(value, (list, dict, str)) and not value):
        return False
    return (parent in _CLOUD_INIT_SOURCES and key in _SECRET_KEYS) or _norm(key) in SECRET_KEYS


def _redact_json_text(text, marker):
    try:
        return json.dumps(redact(json.loads(text), marker), sort_keys=True)
    except (TypeError, ValueError):
        return marker


def redact(obj, marker=REDACTED, _parent=None):
    """A copy of ``obj`` with its secrets (see above) replaced by ``marker``."""
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if _secret(key, value, _parent):
                out[key] = marker
            elif key == LAST_APPLIED and isinstance(value, str):
                out[key] = _redact_json_text(value, marker)
            else:
                out[key] = redact(value, marker, key)
        return out
    if isinstance(obj, (list, tuple)):
        return [redact(v, marker, _parent) for v in obj]
    if isinstance(obj, str) and SECRET_TEXT.search(obj):
        return marker
    return obj


def secret_values(obj, _parent=None):
    """The strings ``redact`` would hide in ``obj`` (to mask them in a module's whole output)."""
    found = set()
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if _secret(key, value, _parent):
                found.update(_strings(value))
            elif key == LAST_APPLIED and isinstance(value, str):
                try:
                    found.update(secret_values(json.loads(value)))
                except (TypeError, ValueError):
                    found.add(value)
            else:
                found.update(secret_values(value, key))
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            found.update(secret_values(value, _parent))
    elif isinstance(obj, str) and SECRET_TEXT.search(obj):
        found.add(obj)
    return found


def _strings(value):
    if isinstance(value, str):
        return {value}
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return set().union(*[_strings(v) for v in value]) if value else set()
    return {str(value)}


def redact_pair(before, after, marker=REDACTED, _parent=None):
    """Redacted copies of two objects for a diff; a secret that changed shows as REDACTED_CHANGED in after."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        b_out, a_out = {}, {}
        for key in list(before) + [k for k in after if k not in before]:
            in_b, in_a = key in before, key in after
            b, a = before.get(key), after.get(key)
            if (in_b and _secret(key, b, _parent)) or (in_a and _secret(key, a, _parent)) or (
                    key == LAST_APPLIED and isinstance(b if in_b else a, str)):
                if in_b:
                    b_out[key] = redact({key: b}, marker, _parent)[key]
                if in_a:
                    a_out[key] = redact({key: a}, marker, _parent)[key]
                    if in_b and b != a and b not in _EMPTY and a not in _EMPTY:
                        a_out[key] = REDACTED_CHANGED if a_out[key] == marker else a_out[key]
            elif in_b and in_a:
                b_out[key], a_out[key] = redact_pair(b, a, marker, key)
            elif in_b:
                b_out[key] = redact(b, marker, key)
            else:
                a_out[key] = redact(a, marker, key)
        return b_out, a_out
    if isinstance(before, (list, tuple)) and isinstance(after, (list, tuple)):
        pairs = [redact_pair(b, a, marker, _parent) for b, a in zip(before, after)]
        b_out = [p[0] for p in pairs] + [redact(v, marker, _parent) for v in before[len(after):]]
        a_out = [p[1] for p in pairs] + [redact(v, marker, _parent) for v in after[len(before):]]
        return b_out, a_out
    b_out, a_out = redact(before, marker, _parent), redact(after, marker, _parent)
    if a_out == marker and b_out == marker and before != after:
        a_out = REDACTED_CHANGED
    return b_out, a_out


def diff_of(before, after):
    """A module's diff of two objects: what their owner controls, secrets redacted."""
    b, a = redact_pair(normalize(before), normalize(after))
    return {"before": b, "after": a}


def redacted(obj):
    """An object as modules return it: cloud-init data redacted, no managedFields (noise)."""
    if not obj:
        return obj
    out = redact(obj)
    (out.get("metadata") or {}).pop("managedFields", None)
    return out


def redacted_copy(obj):
    return redacted(copy.deepcopy(obj)) if obj else obj
