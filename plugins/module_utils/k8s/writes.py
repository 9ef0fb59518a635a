# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writes with honest change detection: server-side apply (or a dry run of it in check mode), merge
patch, delete; compare what the user owns, ignoring server-owned fields, so server defaults never
look like changes.
"""

from __future__ import annotations

import copy

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import errors
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError, KubevirtError

SERVER_META = ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp", "selfLink",
               "finalizers", "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences")
SERVER_ANNOTATIONS = ("kubevirt.io/latest-observed-api-version", "kubevirt.io/storage-observed-api-version",
                      "kubemacpool.io/transaction-timestamp")


def normalize(obj):
    """The part of an object its owner controls: no status, no server-owned metadata."""
    if not obj:
        return {}
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in SERVER_META:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    for key in SERVER_ANNOTATIONS:
        annotations.pop(key, None)
    if "annotations" in meta and not annotations:
        meta.pop("annotations")
    return out


class Outcome:
    """What a write did: changed, before/after objects, and how."""

    def __init__(self, changed, before, after, method):
        self.changed = changed
        self.before = before
        self.after = after
        self.method = method


def present(client, resource, desired, check_mode=False, current=None, have_current=False, partial=None):
    """Make ``desired`` exist (server-side apply with our field manager); return an Outcome.

    ``partial`` (a merge patch) is used instead of ``desired`` when the object exists and the
    task only touches labels, annotations or the run strategy.
    """
    meta = desired["metadata"] if desired else {}
    name, namespace = meta.get("name"), meta.get("namespace")
    ref = resource.ref(name, namespace)
    try:
        if not have_current:
            current = client.get_or_none(resource, name, namespace)
        if current is None:
            after = client.apply(resource, desired, dry_run=check_mode)
            return Outcome(True, None, after, "create")
        if partial is not None:
            after = client.merge_patch(resource, name, namespace, partial, dry_run=check_mode)
            method = "patch"
        else:
            after = client.apply(resource, desired, dry_run=check_mode)
            method = "apply"
    except ApiError as exc:
        action = "create" if current is None else "update"
        raise KubevirtError(explain(exc, action, ref, resource))
    changed = normalize(current) != normalize(after)
    return Outcome(changed, current, after, method if changed else "none")


def labels_added(client, resource, current, labels, check_mode=False):
    """An existing object whose spec never changes (a snapshot, clone or export): the task may only add labels,
    by a merge patch of them; unchanged (no request) when it has them all already."""
    have = (current.get("metadata") or {}).get("labels") or {}
    if not labels or all(have.get(k) == v for k, v in labels.items()):
        return Outcome(False, current, current, "none")
    return present(client, resource, current, check_mode, current=current, have_current=True,
                   partial={"metadata": {"labels": labels}})


def explain(exc, action, ref, resource=None):
    """errors.describe plus hints that need to know the kind."""
    text = errors.describe(exc, action, ref)
    message = (exc.api_message or "").lower()
    if resource is res.VMI and ("restricted" in message or "immutable" in message):
        text = text[:-1] + "; a VMI's spec can't change after creation: delete it (state: absent) and create it again."
    return text


def absent(client, resource, name, namespace, check_mode=False, propagation="Foreground", current=None,
           have_current=False):
    """Delete if present; returns (changed, last object or None). An object already being deleted (a finalizer
    or a foreground deletion holds it) gets no second DELETE and is no change, but is returned: a task that
    waits for it to go still does."""
    ref = resource.ref(name, namespace)
    try:
        if not have_current:
            current = client.get_or_none(resource, name, namespace)
        if current is None:
            return False, None
        if (current.get("metadata") or {}).get("deletionTimestamp"):
            return False, current
        result = client.delete(resource, name, namespace, propagation=propagation, dry_run=check_mode)
    except ApiError as exc:
        raise KubevirtError(explain(exc, "delete", ref, resource))
    if result is None:
        return False, None
    if isinstance(result, dict) and result.get("kind") == resource.kind:
        return True, result
    return True, current
