# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Watch streaming: open a watch (optionally asking for the current state first) and yield its
events; 410 Gone becomes WatchGone (the waiter re-lists), a cut stream just ends (the waiter
resumes from the last resourceVersion).
"""

from __future__ import annotations

import json

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError

CONNECT_TIMEOUT = 10.0


class WatchGone(Exception):
    """The watch's resourceVersion is too old (410 Gone): re-list and watch again."""


def open_watch(client, resource, namespace=None, resource_version=None, label_selector=None,
               field_selector=None, timeout=60, send_initial_events=False, idle=None):
    """Open a watch; yields (type, object) events until the server ends it or ``timeout``.

    With ``idle`` (seconds) the stream also ends when no event (or bookmark) came for that long, so
    that a waiter can look elsewhere and resume from the last resourceVersion.

    Raises WatchGone on 410 (the caller re-lists), ApiError on other error events.
    ``send_initial_events`` asks for the current state first (WatchList), ending with a
    BOOKMARK whose annotation ``k8s.io/initial-events-end`` is "true".
    """
    import urllib3

    query = {
        "watch": "true",
        "allowWatchBookmarks": "true",
        "resourceVersion": resource_version,
        "labelSelector": label_selector,
        "fieldSelector": field_selector,
        "timeoutSeconds": max(1, int(timeout)),
    }
    if send_initial_events:
        query["sendInitialEvents"] = "true"
        query["resourceVersionMatch"] = "NotOlderThan"
        query["resourceVersion"] = resource_version or ""
    read_timeout = max(1.0, float(idle)) if idle else max(1.0, float(timeout)) + 5.0
    try:
        resp = client.request("GET", resource.path(namespace), query, stream=True,
                              timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=read_timeout))
    except ApiError as exc:
        if exc.status == 410:
            raise WatchGone(str(exc))
        raise
    return _iter_events(resp, client.host)


def _iter_events(resp, host):
    import urllib3

    buf = b""
    try:
        for chunk in resp.stream(65536, decode_content=True):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                event = json.loads(line)
                etype = event.get("type")
                obj = event.get("object") or {}
                if etype == "ERROR":
                    code = obj.get("code")
                    if code == 410:
                        raise WatchGone(obj.get("message") or "resourceVersion too old")
                    raise ApiError(code or 500, "WATCH", host, obj)
                yield etype, obj
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.SSLError,
            OSError):
        # A cut watch (reset, timeout, TLS record cut short) ends the stream; the waiter resumes
        # from the last resourceVersion.
        return
    finally:
        resp.release_conn()
