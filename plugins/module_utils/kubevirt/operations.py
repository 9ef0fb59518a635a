# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What vm_power, vm_volume and vm_nic share: reading a VM and its VMI, virt-api subresource calls
with 409s turned into sentences, the RestartRequired check after a template change, and a live
migration started and followed to its end.
"""

from __future__ import annotations

import time

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import errors, writes
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    ApiError,
    KubevirtError,
    WaitFailed,
    WaitTimeout,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.spec import string_map
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import (
    FINAL_PHASES,
    condition_true,
    run_strategy,
    template_change_processed,
    vmi_active,
    vmi_paused,
    vmi_stopping,
)

RESTART_CHECK_TIMEOUT = 10
CONFLICT_PREFIX = "Operation cannot be fulfilled on "

# virt-api 409 messages -> what to do about them.
CONFLICT_HINTS = (
    ("already running", "it is running already"),
    ("does not support manual start requests",
     "its run strategy starts it by itself; change run_strategy with virtops.kubevirt.vm to control it by hand"),
    ("does not support manual restart requests",
     "change run_strategy (virtops.kubevirt.vm) to Always, Manual or RerunOnFailure to restart it"),
    ("shorter graceperiod", "it is stopping already; use force: true to stop it at once"),
    ("VM is not running", "start it first (virtops.kubevirt.vm_power state: started)"),
    ("VMI is not running", "start it first (virtops.kubevirt.vm_power state: started)"),
    ("already paused", "it is paused already"),
    ("is not paused", "it is not paused"),
    ("VMI is paused", "unpause it first (state: unpaused)"),
    ("currently being migrated", "wait until the migration ends"),
    ("agent connected nor the ACPI", "a soft reboot needs the guest agent or ACPI in the guest; use state: restarted"),
    ("stop/start already underway", "another start or stop is being processed; run the task again in a moment"),
)


# -- reading --------------------------------------------------------------------------------------
def read_vm(client, name, namespace):
    """The VM, or a KubevirtError saying it does not exist."""
    ref = res.VM.ref(name, namespace)
    try:
        vm = client.get_or_none(res.VM, name, namespace)
    except ApiError as exc:
        raise KubevirtError(writes.explain(exc, "read", ref, res.VM))
    if vm is None:
        raise KubevirtError("%s does not exist; check name and namespace (create it with virtops.kubevirt.vm)." % ref)
    return vm


def read_vmi(client, name, namespace):
    try:
        return client.get_or_none(res.VMI, name, namespace)
    except ApiError as exc:
        raise KubevirtError(writes.explain(exc, "read", res.VMI.ref(name, namespace), res.VMI))


def template_spec(vm):
    return (((vm or {}).get("spec") or {}).get("template") or {}).get("spec") or {}


# -- virt-api subresources ------------------------------------------------------------------------
def _strip_conflict(message):
    text = (message or "").strip()
    if text.startswith(CONFLICT_PREFIX) and '": ' in text:
        text = text.split('": ', 1)[1]
    if text.startswith("Internal error occurred: "):
        text = text[len("Internal error occurred: "):]
    return text.rstrip(".")


def explain_subresource(exc, action, ref, verb, resource):
    """One sentence for a failed virt-api call (409s get what to do next)."""
    if not isinstance(exc, ApiError):
        return str(exc)
    message = _strip_conflict(exc.api_message) or ("HTTP %d %s" % (exc.status, exc.reason)).strip()
    if exc.status == 409:
        for needle, hint in CONFLICT_HINTS:
            if needle.lower() in message.lower():
                return "Could not %s %s: %s; %s." % (action, ref, message, hint)
        return "Could not %s %s: %s; check the VM's state and try again." % (action, ref, message)
    if exc.status == 404 and "could not find the requested resource" in (exc.api_message or ""):
        return ("Could not %s %s: the API server does not serve subresources.kubevirt.io (%s); check that "
                "KubeVirt's virt-api is installed and running." % (action, ref, message))
    if exc.status == 403:
        return ("Could not %s %s: %s; grant 'update' on %s/%s in the API group subresources.kubevirt.io to the "
                "user or ServiceAccount (see docs/rbac.md)." % (action, ref, message, resource.plural, verb))
    return errors.describe(exc, action, ref)


def call(client, resource, namespace, name, verb, body=None, action=None, verify=None):
    """PUT a virt-api subresource (start, stop, pause, addvolume...); errors become one sentence.

    ``verify`` (see took_effect) lets the client send the action again after an answer that
    leaves its outcome unknown, once a fresh read shows it has not taken effect.
    """
    path = res.subresource_path(resource, namespace, name, verb)
    try:
        return client.subresource("PUT", path, body=body if body is not None else {}, verify=verify)
    except ApiError as exc:
        raise KubevirtError(explain_subresource(exc, action or verb, resource.ref(name, namespace), verb, resource))


def _uid(obj):
    return ((obj or {}).get("metadata") or {}).get("uid")


def _change_requests(vm):
    return [r.get("action") for r in ((vm or {}).get("status") or {}).get("stateChangeRequests") or []]


def _volume_requests(vm, key):
    requests = ((vm or {}).get("status") or {}).get("volumeRequests") or []
    return [((r or {}).get(key) or {}).get("name") for r in requests]


def took_effect(client, verb, namespace, name, vm=None, vmi=None, before=None, volume=None):
    """A verify() for call(): from a fresh read, has ``verb`` on VM ``name`` taken effect?

    ``vm`` and ``vmi`` are what was read before the call, ``before`` the migrations that existed
    then, ``volume`` the volume an add/removevolume names. None for a verb whose effect can't be
    seen afterwards (softreboot): such an action is never sent twice.
    """
    old_uid = _uid(vmi)
    old_strategy = run_strategy(vm)
    was_active = vmi_active(vmi)

    def fresh_vm():
        return client.get_or_none(res.VM, name, namespace)

    def fresh_vmi():
        return client.get_or_none(res.VMI, name, namespace)

    def start():
        now = fresh_vm()
        if now is None:
            return False
        if old_strategy == "Halted" and run_strategy(now) != "Halted":
            return True
        if "Start" in _change_requests(now):
            return True
        cur = fresh_vmi()
        return vmi_active(cur) and _uid(cur) != old_uid

    def stop():
        now = fresh_vm()
        if now is None:
            return True
        if old_strategy != "Halted" and run_strategy(now) == "Halted":
            return True
        if "Stop" in _change_requests(now):
            return True
        if not was_active:
            return False
        cur = fresh_vmi()
        return not vmi_active(cur) or _uid(cur) != old_uid

    def restart():
        if set(_change_requests(fresh_vm())) & {"Stop", "Start"}:
            return True
        cur = fresh_vmi()
        return cur is None or vmi_stopping(cur) or _uid(cur) != old_uid

    def pause():
        return vmi_paused(fresh_vmi())

    def unpause():
        cur = fresh_vmi()
        return cur is not None and not vmi_paused(cur)

    def migrate():
        return find_new_migration(client, namespace, name, set(before or ())) is not None

    def addvolume():
        now = fresh_vm()
        names = [v.get("name") for v in template_spec(now).get("volumes") or []]
        return volume in names or volume in _volume_requests(now, "addVolumeOptions")

    def removevolume():
        now = fresh_vm()
        names = [v.get("name") for v in template_spec(now).get("volumes") or []]
        return volume not in names or volume in _volume_requests(now, "removeVolumeOptions")

    return {"start": start, "stop": stop, "restart": restart, "pause": pause, "unpause": unpause,
            "migrate": migrate, "addvolume": addvolume, "removevolume": removevolume}.get(verb)


# -- after a template change ----------------------------------------------------------------------
def wait_template_changes(client, namespace, generations, timeout, resource_version=None):
    """Wait (briefly) until KubeVirt has processed the template changes of VMs ``generations``
    ({name: generation of our write}); see state.template_change_processed. A timeout is no error:
    the VMs are then as last seen. Returns ({name: VM}, progress record or None).
    """
    def processed(objects):
        return all(template_change_processed(objects.get(name), gen) for name, gen in generations.items())

    wait = waiter.Wait(client, res.VM, namespace, processed, "KubeVirt to process the template change of %s" % (
        ", ".join("%s/%s" % (namespace, n) for n in sorted(generations))), timeout, names=list(generations),
        resource_version=resource_version)
    progress = None
    try:
        progress = wait.run()
    except (WaitTimeout, ApiError):
        progress = None
    return wait.objects, progress


def restart_required_after(client, vm_after, timeout=RESTART_CHECK_TIMEOUT):
    """After a template change of one VM: (restart_required, the VM as KubeVirt left it, progress)."""
    meta = (vm_after or {}).get("metadata") or {}
    name = meta.get("name")
    objects, progress = wait_template_changes(client, meta.get("namespace"), {name: meta.get("generation")}, timeout,
                                              resource_version=meta.get("resourceVersion"))
    vm = objects.get(name) or vm_after
    return condition_true(vm, "RestartRequired"), vm, progress


# -- live migration -------------------------------------------------------------------------------
def migration_of(mig):
    """The summary of a VirtualMachineInstanceMigration."""
    status = (mig or {}).get("status") or {}
    state = status.get("migrationState") or {}
    return {
        "name": ((mig or {}).get("metadata") or {}).get("name"),
        "phase": status.get("phase") or "Pending",
        "source_node": state.get("sourceNode"),
        "target_node": state.get("targetNode"),
        "start_timestamp": state.get("startTimestamp"),
        "end_timestamp": state.get("endTimestamp"),
    }


def _mine(mig, vmi_name, before):
    meta = mig.get("metadata") or {}
    return ((mig.get("spec") or {}).get("vmiName") == vmi_name and meta.get("name") not in before)


def active_migration(client, namespace, vmi_name):
    """A migration of this VMI that has not ended, or None."""
    try:
        listing = client.list(res.MIGRATION, namespace)
    except ApiError as exc:
        raise KubevirtError(writes.explain(exc, "list", "VirtualMachineInstanceMigrations in namespace %s" %
                                           namespace))
    active = None
    for mig in listing.get("items") or []:
        if (mig.get("spec") or {}).get("vmiName") != vmi_name:
            continue
        if ((mig.get("status") or {}).get("phase")) in FINAL_PHASES:
            continue
        active = mig
    return active, {(m.get("metadata") or {}).get("name") for m in listing.get("items") or []}, \
        (listing.get("metadata") or {}).get("resourceVersion")


def migration_failure(client, namespace, mig, vmi_name):
    """Why a migration failed: its warning events (best effort)."""
    names = [((mig or {}).get("metadata") or {}).get("name"), vmi_name]
    events = waiter.fetch_warning_events(client, namespace, names)
    failed = [e for e in events if e.get("reason") == "FailedMigration"]
    pick = (failed or events)[:1]
    return pick[0]["message"] if pick else "no warning event says why"


def wait_migration(client, namespace, vmi_name, timeout, before=(), resource_version=None, name=None):
    """Follow the migration of ``vmi_name`` (``name``, or the first one not in ``before``) to its end.

    Returns (migration, progress); WaitFailed when it fails.
    """
    before = set(before or ())
    phases = []
    start = time.monotonic()
    found = {}

    def check(objects):
        for mig in objects.values():
            if name and (mig.get("metadata") or {}).get("name") != name:
                continue
            if not name and not _mine(mig, vmi_name, before):
                continue
            found["mig"] = mig
            phase = (mig.get("status") or {}).get("phase") or "Pending"
            if not phases or phases[-1]["phase"] != phase:
                phases.append({"phase": phase, "seconds": round(time.monotonic() - start, 2)})
            if phase == "Failed":
                raise WaitFailed("The live migration %s of VirtualMachineInstance %s/%s failed: %s." % (
                    mig["metadata"]["name"], namespace, vmi_name,
                    migration_failure(client, namespace, mig, vmi_name)))
            return phase == "Succeeded"
        return False

    wait = waiter.Wait(client, res.MIGRATION, namespace, check,
                       "the live migration of VirtualMachineInstance %s/%s to succeed" % (namespace, vmi_name),
                       timeout, names=[name] if name else None, resource_version=resource_version)
    try:
        progress = wait.run()
    except WaitTimeout as exc:
        exc.details.setdefault("phases", phases)
        raise
    progress["phases"] = phases
    return found.get("mig"), progress


def find_new_migration(client, namespace, vmi_name, before):
    """The migration virt-api just created (it has a generated name): the one not in ``before``."""
    try:
        listing = client.list(res.MIGRATION, namespace)
    except ApiError:
        return None
    new = [m for m in listing.get("items") or [] if _mine(m, vmi_name, before)]
    new.sort(key=lambda m: (m.get("metadata") or {}).get("creationTimestamp") or "")
    return new[-1] if new else None


def migrate(client, namespace, name, node_selector=None, wait=True, timeout=300):
    """Start a live migration of VM ``name`` and (with ``wait``) follow it to Succeeded.

    Returns (migration summary, progress records).
    """
    _active, before, rv = active_migration(client, namespace, name)
    body = {}
    if node_selector:
        body["addedNodeSelector"] = string_map(node_selector, "node_selector")
    call(client, res.VM, namespace, name, "migrate", body, action="live-migrate",
         verify=took_effect(client, "migrate", namespace, name, before=before))
    progress = []
    if not wait:
        mig = find_new_migration(client, namespace, name, before)
        return migration_of(mig) if mig else {"name": None, "phase": "Pending"}, progress
    mig, record = wait_migration(client, namespace, name, timeout, before=before, resource_version=rv)
    progress.append(record)
    return migration_of(mig), progress
