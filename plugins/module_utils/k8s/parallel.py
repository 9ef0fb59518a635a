# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Independent requests at the same time, on threads: one error never loses the others' results."""

from __future__ import annotations

import traceback
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import errors
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError, KubevirtError


def parallel(fn, items, workers=16):
    """Run fn(item) on threads; returns [(item, result, error)] in input order."""
    items = list(items)
    if not items:
        return []

    def call(item):
        try:
            return item, fn(item), None
        except KubevirtError as exc:
            return item, None, exc
        except Exception as exc:  # keep one VM's bug from losing the others' results
            return item, None, KubevirtError("Unexpected error: %s" % errors.one_line(exc),
                                             traceback=traceback.format_exc())

    if len(items) == 1:
        return [call(items[0])]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(call, items))


def gather(client, calls):
    """Several independent reads at once: {key: (callable)} -> {key: result}; errors raise."""
    keys = list(calls)
    results = parallel(lambda k: calls[k](), keys, workers=len(keys) or 1)
    out = {}
    for key, value, error in results:
        if error is not None:
            raise error
        out[key] = value
    return out


def read_quiet(fn, default=None):
    """A diagnostic read that must not fail the task (e.g. events without RBAC)."""
    try:
        return fn()
    except (ApiError, KubevirtError):
        return default
