# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The layer between modules and the client: write with honest change detection, delete, read facts.

``present()`` compares what the server holds with what a write produces (server-side apply, or a
dry run of it in check mode), ignoring server-owned fields, so server defaults never look like
changes. Diffs are redacted: cloud-init data never appears in them.
"""

from __future__ import annotations

import copy
import traceback
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.virtops.kubevirt.plugins.module_utils import errors
from ansible_collections.virtops.kubevirt.plugins.module_utils import facts
from ansible_collections.virtops.kubevirt.plugins.module_utils import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.client import AUTH_ARG_SPEC, connect
from ansible_collections.virtops.kubevirt.plugins.module_utils.errors import ApiError, KubevirtError

SERVER_META = ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp", "selfLink",
               "finalizers", "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences")
SERVER_ANNOTATIONS = ("kubevirt.io/latest-observed-api-version", "kubevirt.io/storage-observed-api-version",
                      "kubemacpool.io/transaction-timestamp")


WAIT_ARG_SPEC = dict(
    wait=dict(type="bool", default=False),
    wait_for=dict(type="list", elements="str"),
    wait_timeout=dict(type="int", default=300),
)


def auth_spec():
    return copy.deepcopy(AUTH_ARG_SPEC)


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


def diff_of(before, after):
    b, a = facts.redact_pair(normalize(before), normalize(after))
    return {"before": b, "after": a}


def redacted(obj):
    """An object as modules return it: cloud-init data redacted, no managedFields (noise)."""
    if not obj:
        return obj
    out = facts.redact(obj)
    (out.get("metadata") or {}).pop("managedFields", None)
    return out


class Outcome:
    """What a write did: changed, before/after objects, and how."""

    def __init__(self, changed, before, after, method):
        self.changed = changed
        self.before = before
        self.after = after
        self.method = method

    def diff(self):
        return diff_of(self.before, self.after)


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


def explain(exc, action, ref, resource=None):
    """errors.describe plus hints that need to know the kind."""
    text = errors.describe(exc, action, ref)
    message = (exc.api_message or "").lower()
    if resource is res.VMI and ("restricted" in message or "immutable" in message):
        text = text[:-1] + "; a VMI's spec can't change after creation: delete it (state: absent) and create it again."
    return text


def absent(client, resource, name, namespace, check_mode=False, propagation="Foreground", current=None,
           have_current=False):
    """Delete if present; returns (changed, last object or None)."""
    ref = resource.ref(name, namespace)
    try:
        if not have_current:
            current = client.get_or_none(resource, name, namespace)
        if current is None:
            return False, None
        result = client.delete(resource, name, namespace, propagation=propagation, dry_run=check_mode)
    except ApiError as exc:
        raise KubevirtError(explain(exc, "delete", ref, resource))
    if result is None:
        return False, None
    if isinstance(result, dict) and result.get("kind") == resource.kind:
        return True, result
    return True, current


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


def connect_module(module):
    """The Client for a module; connection problems fail the module with one sentence."""
    try:
        client = connect(module.params)
    except KubevirtError as exc:
        module.fail_json(msg=str(exc))
    # One Client per process and settings keeps its connections; a loop run in Ansible's worker
    # reuses it from item to item, so api_requests counts from here, per module run.
    client.requests = 0
    for warning in client.warnings:
        module.warn(warning)
    return client


def launcher_selector(name=None):
    return "kubevirt.io=virt-launcher" + (",vm.kubevirt.io/name=%s" % name if name else "")


def summaries_for(client, kind, namespace, objects=None, name=None, with_pods=True, with_events=True, find=None):
    """Read VMIs / launcher pods / warning events once and summarize each object.

    With ``find`` (a callable returning the objects) the objects are read together with the rest,
    all requests at the same time, so the task waits for one round trip instead of two.
    """
    calls = {}
    if find is not None:
        calls["objects"] = find
    if kind == "VirtualMachine":
        if name:
            calls["vmis"] = lambda: [v for v in [client.get_or_none(res.VMI, name, namespace)] if v]
        else:
            calls["vmis"] = lambda: client.list(res.VMI, namespace).get("items") or []
    if with_pods:
        calls["pods"] = lambda: read_quiet(
            lambda: client.list(res.POD, namespace, label_selector=launcher_selector(name)).get("items"), [])
    if with_events:
        calls["events"] = lambda: read_quiet(
            lambda: client.list(res.EVENT, namespace, field_selector="type=Warning").get("items"), [])
    got = gather(client, calls) if calls else {}
    if find is not None:
        objects = got["objects"]
    pods = got.get("pods") or []
    events = got.get("events") or []
    out = []
    if kind == "VirtualMachine":
        vmis = {(v["metadata"].get("namespace"), v["metadata"]["name"]): v for v in got.get("vmis") or []}
        for vm in objects:
            key = (vm["metadata"].get("namespace"), vm["metadata"]["name"])
            out.append(facts.summarize_vm(vm, vmis.get(key), _same_ns(pods, key[0]), _same_ns(events, key[0])))
        return out, got
    for vmi in objects:
        ns = vmi["metadata"].get("namespace")
        out.append(facts.summarize_vmi(vmi, _same_ns(pods, ns), _same_ns(events, ns)))
    return out, got


def _same_ns(items, namespace):
    return [i for i in items or [] if (i.get("metadata") or {}).get("namespace") == namespace]


def run_runner(module, runner_class):
    """Run a module's runner: connect, run, report its warnings, fail or exit.

    A runner has .run() -> (result, wait_error), .warnings and .progress; a wait error still returns
    the result (with the wait's own progress record when it has one).
    """
    client = connect_module(module)
    runner = runner_class(module, client)
    try:
        result, wait_error = runner.run()
    except KubevirtError as exc:
        for warning in runner.warnings:
            module.warn(warning)
        module.fail_json(msg=str(exc), changed=False, progress=runner.progress, api_requests=client.requests)
    for warning in runner.warnings:
        module.warn(warning)
    if wait_error is not None:
        details = getattr(wait_error, "details", {}) or {}
        if details.get("progress"):
            result["progress"] = runner.progress + [details["progress"]]
        module.fail_json(msg=str(wait_error), **result)
    module.exit_json(**result)
