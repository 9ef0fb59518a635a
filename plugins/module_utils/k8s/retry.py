# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""When the client sends a request again: one policy table and the backoff.

    * Retried: GET (read, list, watch set-up), server-side apply (idempotent: the same applied
      configuration gives the same object), DELETE (a repeated delete answers 404, which callers
      treat as done), and writes guarded by a ``resourceVersion`` precondition. Never sent again
      blindly: a subresource action (start, stop, migrate...) and anything the caller marks
      ``retry=False``; with a ``verify`` callable such a write is sent again only when a fresh read
      shows it has not taken effect.
    * On: connection reset, timeouts, connection refused (at most ``REFUSED_ATTEMPTS``: nothing
      listening is more often a wrong address than a restart), HTTP 429 (honouring ``Retry-After``
      up to 10 s) and 500/502/503/504. Not on TLS or name-resolution failures, a protocol mismatch
      (http:// to an HTTPS server, an answer that is not HTTP: client.py raises ConnectError at once),
      4xx other than 429 (409 included), nor on a 5xx that relays a refusal (errors.relayed_refusal: a
      schema error, an admission webhook's denial such as virt-api's "in-flight migration detected"):
      it would be the same answer every time.
    * How: at most ``RETRY_ATTEMPTS`` attempts, exponential backoff from ``RETRY_BASE`` seconds
      doubling to ``RETRY_CAP``, with jitter; the final error says how many attempts were made.
"""

from __future__ import annotations

import enum
import random

RETRY_ATTEMPTS = 6
REFUSED_ATTEMPTS = 3
RETRY_BASE = 0.25
RETRY_CAP = 4.0
RETRY_AFTER_CAP = 10.0
RETRY_STATUSES = (429, 500, 502, 503, 504)


class Decision(enum.Enum):
    """What the client does after an attempt that failed."""

    SEND_AGAIN = "send again"
    VERIFY_THEN_SEND = "send again unless verify() finds the write took effect"
    GIVE_UP = "give up"


def decide(attempt, limit, sent, idempotent, verify, status=None, refused=False):
    """The policy table for attempt number ``attempt`` of at most ``limit``.

    ``sent``: the request may have reached the server (False when no connection was made);
    ``idempotent``: sending it twice does no harm; ``verify``: None, or a callable that says
    whether a write took effect; ``status``: the HTTP status of an error answer (None when there
    was no answer); ``refused``: the answer is a 5xx that relays a refusal of the request, the same
    every time (see errors.relayed_refusal).

    | what happened                                    | decision         |
    | ------------------------------------------------ | ---------------- |
    | no attempts left                                 | GIVE_UP          |
    | 429 (the server acted on nothing)                | SEND_AGAIN       |
    | another status not in RETRY_STATUSES, or refused | GIVE_UP          |
    | nothing was sent, or the request is idempotent   | SEND_AGAIN       |
    | a write that may have happened, with verify      | VERIFY_THEN_SEND |
    | a write that may have happened, without verify   | GIVE_UP          |
    """
    if attempt >= limit:
        return Decision.GIVE_UP
    if status is not None:
        if status == 429:
            return Decision.SEND_AGAIN
        if status not in RETRY_STATUSES or refused:
            return Decision.GIVE_UP
    if not sent or idempotent:
        return Decision.SEND_AGAIN
    return Decision.VERIFY_THEN_SEND if verify is not None else Decision.GIVE_UP


def backoff_delay(attempt, retry_after=None, rand=random.random):
    """Seconds to wait before attempt ``attempt + 1``: Retry-After (capped), else exponential with jitter."""
    delay = None
    if retry_after:
        try:
            delay = min(float(retry_after), RETRY_AFTER_CAP)
        except ValueError:
            delay = None
    if delay is None:
        delay = min(RETRY_CAP, RETRY_BASE * (2 ** (attempt - 1)))
        delay = delay * (0.8 + 0.4 * rand())
    return delay
