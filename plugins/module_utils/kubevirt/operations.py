# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What vm_power, vm_volume and vm_nic share: reading a VM and its VMI, virt-api subresource calls
with 409s turned into sentences, the RestartRequired check after a template change, and a live
migration started and followed to its end.
"""

from __future__ import annotations

import re
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
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.summary import warning_events
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import (
    FINAL_PHASES,
    condition,
    condition_true,
    live_resize_failure,
    live_resize_pending,
    run_strategy,
    template_change_processed,
    vmi_active,
    vmi_paused,
    vmi_stopping,
)

# KubeVirt's VM controller sets RestartRequired (or desiredGeneration) within a second; a busy one can take
# longer, and the wait ends as soon as it has.
RESTART_CHECK_TIMEOUT = 30
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


def put(client, resource, namespace, name, verb, body=None, verify=None):
    """PUT a virt-api subresource; an error stays an ApiError (see call()).

    ``verify`` (see took_effect) lets the client send the action again after an answer that
    leaves its outcome unknown, once a fresh read shows it has not taken effect.
    """
    path = res.subresource_path(resource, namespace, name, verb)
    return client.subresource("PUT", path, body=body if body is not None else {}, verify=verify)


def call(client, resource, namespace, name, verb, body=None, action=None, verify=None):
    """PUT a virt-api subresource (start, stop, pause, addvolume...); errors become one sentence."""
    try:
        return put(client, resource, namespace, name, verb, body, verify)
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
    the VMs are then as last seen, and the names KubeVirt had not processed yet are returned, for
    their status (no RestartRequired yet) says nothing about the change.
    Returns ({name: VM}, progress record or None, [names not processed]).
    """
    def processed(objects):
        return all(template_change_processed(objects.get(name), gen) for name, gen in generations.items())

    wait = waiter.Wait(client, res.VM, namespace, processed, "KubeVirt to process the template change of %s" % (
        ", ".join("%s/%s" % (namespace, n) for n in sorted(generations))), timeout, names=list(generations),
        resource_version=resource_version)
    progress = None
    try:
        progress = wait.run()
    except WaitTimeout as exc:
        progress = (exc.details or {}).get("progress")
    except ApiError:
        return wait.objects, None, []  # not watchable here: nothing seen, nothing to say
    late = sorted(n for n, gen in generations.items()
                  if n in wait.objects and not template_change_processed(wait.objects[n], gen))
    return wait.objects, progress, late


def unprocessed_note(namespace, name, timeout, assumed=True):
    """The warning for a VM whose template change KubeVirt had not processed within ``timeout``; ``assumed``:
    the caller reports restart_required as true for it (else it reports the VM's status as it was)."""
    return ("VM %s/%s: KubeVirt had not processed the template change after %ds (its VM controller is busy or "
            "down), so whether it waits for a restart is not known yet; restart_required %s. "
            "Its RestartRequired condition (vm_info) will say." % (
                namespace, name, round(timeout),
                "assumes it does" if assumed else "is what its status said before that change"))


def restart_required_after(client, vm_after, timeout=RESTART_CHECK_TIMEOUT):
    """After a template change of one VM: (restart_required, the VM as KubeVirt left it, progress,
    a warning or ''). A change KubeVirt has not processed in time counts as needing a restart."""
    meta = (vm_after or {}).get("metadata") or {}
    name = meta.get("name")
    objects, progress, late = wait_template_changes(client, meta.get("namespace"), {name: meta.get("generation")},
                                                    timeout, resource_version=meta.get("resourceVersion"))
    vm = objects.get(name) or vm_after
    if late:
        return True, vm, progress, unprocessed_note(meta.get("namespace"), name, timeout)
    return condition_true(vm, "RestartRequired"), vm, progress, ""


def wait_live_resize(client, namespace, vms, timeout, resource_version=None):
    """After KubeVirt took a CPU-socket / guest-memory change of running VMs ``vms`` ({name: VM}) without
    RestartRequired: wait until each VMI shows the new topology and memory (state.live_resize_pending),
    which KubeVirt applies through a workload-update live migration. Returns ({name: VMI}, progress).
    WaitFailed when KubeVirt reports the memory hot-plug failed; WaitTimeout names what is still pending."""
    def check(objects):
        for name in vms:
            failure = live_resize_failure(objects.get(name))
            if failure:
                raise WaitFailed("The live resize of VirtualMachine %s/%s failed: %s; restart the VM with vm_power "
                                 "to apply the change." % (namespace, name, failure))
        return all(not live_resize_pending(vm, objects.get(name)) for name, vm in vms.items())

    def diagnose(objects):
        pending = {n: live_resize_pending(vm, objects.get(n)) for n, vm in vms.items()}
        cause = "still to do: " + "; ".join("%s %s" % (n, ", ".join(p)) for n, p in sorted(pending.items()) if p)
        stuck = [(n, condition(objects.get(n), "LiveMigratable")) for n, p in sorted(pending.items()) if p]
        stuck = ["%s (%s)" % (n, c.get("message") or c.get("reason")) for n, c in stuck
                 if c and str(c.get("status")) == "False"]
        if stuck:
            cause += ("; KubeVirt hot-plugs through a live migration and these VMIs can't migrate: %s; restart "
                      "them with vm_power to apply the change" % ", ".join(stuck))
        return cause, waiter.fetch_warning_events(client, namespace, [n for n, p in pending.items() if p])

    what = "the live resize of %s (KubeVirt's hot-plug migration)" % waiter.objects_label(
        "VirtualMachine", namespace, sorted(vms))
    wait = waiter.Wait(client, res.VMI, namespace, check, what, timeout, names=list(vms),
                       resource_version=resource_version, diagnose=diagnose)
    progress = wait.run()
    return wait.objects, progress


# -- live migration -------------------------------------------------------------------------------
# Everything here is about one VMI's migrations: those whose spec.vmiName is the VMI, the target
# pod KubeVirt labels with the migration's uid, and warning events about these objects. Another
# VMI's migrations in the namespace are never listed, awaited or quoted.
MIGRATION_JOB_LABEL = "kubevirt.io/migrationJobUID"
IN_FLIGHT = "in-flight migration detected"
_IN_FLIGHT_UID_RE = re.compile(r"Active migration job \(([^)]+)\)")


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


def _mig_name(mig):
    return ((mig or {}).get("metadata") or {}).get("name")


def _phase(mig):
    return ((mig or {}).get("status") or {}).get("phase") or "Pending"


def vmi_migrations(client, namespace, vmi_name):
    """The migrations of VMI ``vmi_name`` (spec.vmiName), oldest first, and the list's resourceVersion."""
    try:
        listing = client.list(res.MIGRATION, namespace)
    except ApiError as exc:
        raise KubevirtError(writes.explain(exc, "list", "VirtualMachineInstanceMigrations in namespace %s" %
                                           namespace))
    mine = [m for m in listing.get("items") or [] if (m.get("spec") or {}).get("vmiName") == vmi_name]
    mine.sort(key=lambda m: (m.get("metadata") or {}).get("creationTimestamp") or "")
    return mine, (listing.get("metadata") or {}).get("resourceVersion")


def _cancelled(mig):
    """Deleted (virtctl migrate-cancel) and not ended yet: KubeVirt aborts and fails it before it lets it go."""
    return waiter.terminating(mig) and _phase(mig) not in FINAL_PHASES


def active_migration(client, namespace, vmi_name):
    """(the newest migration of this VMI in flight or None, its cancelled migrations still ending, the names
    of all its migrations). A cancelled one is never joined, but virt-api refuses a new migration until it
    has ended."""
    mine, _rv = vmi_migrations(client, namespace, vmi_name)
    ending = [m for m in mine if _cancelled(m)]
    active = [m for m in mine if _phase(m) not in FINAL_PHASES and not _cancelled(m)]
    return (active[-1] if active else None), ending, {_mig_name(m) for m in mine}


def wait_cancelled(client, namespace, vmi_name, ending, timeout):
    """Wait until the cancelled migrations ``ending`` of VMI ``vmi_name`` have ended (phase final, or gone)."""
    names = [_mig_name(m) for m in ending]
    what = "the cancelled live migration%s %s of VirtualMachineInstance %s/%s to end" % (
        "s" if len(names) > 1 else "", ", ".join(names), namespace, vmi_name)

    def check(objects):
        return all(objects.get(n) is None or _phase(objects[n]) in FINAL_PHASES for n in names)
    return waiter.Wait(client, res.MIGRATION, namespace, check, what, timeout, names=names,
                       resource_version=waiter.newest_resource_version(ending)).run()


def in_flight_refusal(exc):
    """Did virt-api refuse a migration because one of the VMI is in flight already? (Its webhook's
    denial, relayed as 500: the answer to 'join that one', never to send the request again.)"""
    return isinstance(exc, ApiError) and IN_FLIGHT in (exc.api_message or "")


def find_new_migration(client, namespace, vmi_name, before):
    """The migration virt-api just created (it has a generated name): this VMI's one not in ``before``."""
    try:
        mine, _rv = vmi_migrations(client, namespace, vmi_name)
    except KubevirtError:
        return None
    new = [m for m in mine if _mig_name(m) not in set(before or ())]
    return new[-1] if new else None


def start_migration(client, namespace, name, node_selector=None, timeout=300):
    """Live-migrate VM ``name``, or join the migration of its VMI that is in flight.

    Returns (the migration, started, progress records): ``started`` is False when a migration was in
    flight already (found before the call, or named by virt-api's 'in-flight migration detected'
    refusal). A cancelled migration still ending is waited for first (within ``timeout`` seconds):
    joining it would report the abort, and virt-api refuses a new one until it has ended.
    """
    body = {}
    if node_selector:
        body["addedNodeSelector"] = string_map(node_selector, "node_selector")
    ref = res.VM.ref(name, namespace)
    deadline = time.monotonic() + timeout
    records = []
    refusal = None
    # A migration can be cancelled between our read and our call: then we wait for it and call again.
    for _attempt in range(4):
        active, ending, before = active_migration(client, namespace, name)
        if active is not None:
            return active, False, records
        if ending:
            records.append(wait_cancelled(client, namespace, name, ending, max(1, deadline - time.monotonic())))
            continue
        try:
            put(client, res.VM, namespace, name, "migrate", body,
                verify=took_effect(client, "migrate", namespace, name, before=before))
        except ApiError as exc:
            if not in_flight_refusal(exc):
                raise KubevirtError(explain_subresource(exc, "live-migrate", ref, "migrate", res.VM))
            refusal = exc
            # Another migration started between our read and the call: join it (it may have ended already),
            # unless it is a cancelled one.
            mine, _rv = vmi_migrations(client, namespace, name)
            uid = _IN_FLIGHT_UID_RE.search(exc.api_message or "")
            named = [m for m in mine if uid and (m.get("metadata") or {}).get("uid") == uid.group(1)]
            joined = [m for m in named or [m for m in mine if _phase(m) not in FINAL_PHASES] if not _cancelled(m)]
            if joined:
                return joined[-1], False, records
            if named or any(_cancelled(m) for m in mine):
                continue
            raise KubevirtError(explain_subresource(exc, "live-migrate", ref, "migrate", res.VM))
        mig = find_new_migration(client, namespace, name, before)
        if mig is None:
            raise KubevirtError("virt-api accepted the live migration of %s, but no new VirtualMachineInstanceMigration "
                                "of its VMI appeared; check virt-api's and virt-controller's logs." % ref)
        return mig, True, records
    raise KubevirtError(explain_subresource(refusal, "live-migrate", ref, "migrate", res.VM) if refusal else
                        "%s: its migrations kept being cancelled while this task tried to start one." % ref)


def target_pods(client, namespace, mig):
    """The migration's target pods (KubeVirt labels them kubevirt.io/migrationJobUID=<migration uid>)."""
    uid = ((mig or {}).get("metadata") or {}).get("uid")
    if not uid:
        return []
    try:
        return client.list(res.POD, namespace, label_selector="%s=%s" % (MIGRATION_JOB_LABEL, uid)).get("items") \
            or []
    except Exception:  # diagnostics must never hide the real error
        return []


def migration_diagnosis(client, namespace, mig, vmi_name):
    """What explains where migration ``mig`` of VMI ``vmi_name`` is: (text, warning events).

    The text describes its target pod (e.g. Pending, PodScheduled=False: 0/3 nodes are available...);
    the events are those about the migration, its target pod, and the VMI since the migration was
    created, target pod first: its FailedScheduling is the usual cause of a stuck migration.
    """
    pods = target_pods(client, namespace, mig)
    parts = []
    for pod in pods:
        parts.append("target pod %s %s" % (_mig_name(pod), waiter.describe_object(pod)))
    if not pods and _phase(mig) not in ("Pending", "Succeeded"):
        parts.append("no target pod")
    created = ((mig or {}).get("metadata") or {}).get("creationTimestamp") or ""
    try:
        items = client.list(res.EVENT, namespace, field_selector="type=Warning").get("items") or []
    except Exception:  # diagnostics must never hide the real error
        items = []
    scoped = {}
    for obj in [mig] + pods:
        scoped[_mig_name(obj)] = ((obj or {}).get("metadata") or {}).get("uid")
    picked = []
    for event in items:
        involved = event.get("involvedObject") or {}
        name, uid = involved.get("name"), involved.get("uid")
        if name in scoped:
            if not uid or not scoped[name] or uid == scoped[name]:
                picked.append(event)
        elif name == vmi_name and involved.get("kind") == "VirtualMachineInstance":
            # The VMI's events from before this migration are about earlier ones.
            if (event.get("lastTimestamp") or event.get("eventTime") or "") >= created:
                picked.append(event)
    names = list(scoped) + [vmi_name]
    events = warning_events(picked, names)
    pod_names = {_mig_name(p) for p in pods}
    events.sort(key=lambda e: e["object"].split("/", 1)[-1] not in pod_names)
    text = "; ".join(parts)
    # A FailedScheduling event repeats the PodScheduled condition's message: say it once.
    return text, [e for e in events if not e["message"] or e["message"].rstrip(".") not in text]


def migration_failure(client, namespace, mig, vmi_name):
    """Why a migration failed: its (or its target pod's) warning events, best effort."""
    _text, events = migration_diagnosis(client, namespace, mig, vmi_name)
    failed = [e for e in events if e.get("reason") == "FailedMigration"]
    pick = (failed or events)[:1]
    return pick[0]["message"].rstrip(".") if pick else "no warning event says why"


def cancel_migration(client, namespace, mig):
    """Cancel a migration as ``virtctl migrate-cancel`` does: delete it. False when it was gone already."""
    try:
        return client.delete(res.MIGRATION, _mig_name(mig), namespace) is not None
    except ApiError as exc:
        raise KubevirtError(writes.explain(exc, "delete", "VirtualMachineInstanceMigration %s/%s" % (
            namespace, _mig_name(mig)), res.MIGRATION))


def wait_migration(client, namespace, vmi_name, mig, timeout):
    """Follow migration ``mig`` of VMI ``vmi_name`` to its end. Returns (migration, progress).

    WaitFailed when it fails or is deleted; WaitTimeout names what holds it (its target pod's
    scheduling, warning events of these objects), with ``details["migration"]`` as last seen.
    """
    name = _mig_name(mig)
    phases = []
    start = time.monotonic()
    last = {"mig": mig}
    what = "the live migration %s of VirtualMachineInstance %s/%s" % (name, namespace, vmi_name)
    sentence = what[0].upper() + what[1:]

    def check(objects):
        cur = objects.get(name)
        if cur is None:
            raise WaitFailed("%s was deleted (cancelled) before it ended." % sentence)
        last["mig"] = cur
        phase = _phase(cur)
        if not phases or phases[-1]["phase"] != phase:
            phases.append({"phase": phase, "seconds": round(time.monotonic() - start, 2)})
        if phase == "Failed":
            raise WaitFailed("%s failed: %s." % (sentence, migration_failure(client, namespace, cur, vmi_name)))
        return phase == "Succeeded"

    def diagnose(objects):
        return migration_diagnosis(client, namespace, objects.get(name) or last["mig"], vmi_name)

    wait = waiter.Wait(client, res.MIGRATION, namespace, check, what + " to succeed", timeout, names=[name],
                       resource_version=((mig.get("metadata") or {}).get("resourceVersion")), diagnose=diagnose)
    try:
        progress = wait.run()
    except (WaitTimeout, WaitFailed) as exc:
        exc.details["migration"] = last["mig"]
        if exc.details.get("progress") is not None:
            exc.details["progress"]["phases"] = phases
        raise
    progress["phases"] = phases
    return last["mig"], progress


def migrate(client, namespace, name, node_selector=None, wait=True, timeout=300):
    """Start a live migration of VM ``name`` (or join the one in flight) and, with ``wait``, follow it to
    Succeeded; a migration this call started is cancelled when the wait times out (see vm_power's
    docs). Returns (migration summary, progress records).
    """
    start = time.monotonic()
    mig, started, records = start_migration(client, namespace, name, node_selector, timeout)
    if not wait:
        return migration_of(mig), records
    mig, record = follow_migration(client, namespace, name, mig, max(1, timeout - (time.monotonic() - start)),
                                   started)
    return migration_of(mig), records + [record]


def follow_migration(client, namespace, vmi_name, mig, timeout, started):
    """wait_migration(); on timeout a migration this task ``started`` is cancelled (deleted, as
    virtctl migrate-cancel does) and one it joined is left running, and the message says which."""
    try:
        return wait_migration(client, namespace, vmi_name, mig, timeout)
    except WaitTimeout as exc:
        name = _mig_name(mig)
        if started:
            try:
                cancel_migration(client, namespace, mig)
                exc.msg = exc.msg.rstrip(".") + (
                    "; the migration was cancelled (VirtualMachineInstanceMigration %s deleted, as virtctl "
                    "migrate-cancel does): the VM stays where it runs." % name)
                exc.details["cancelled"] = True
            except KubevirtError as cancel_error:
                exc.msg = exc.msg.rstrip(".") + "; cancelling it failed: %s" % cancel_error
        else:
            exc.msg = exc.msg.rstrip(".") + (
                "; this task did not start that migration and leaves it running (virtctl migrate-cancel %s "
                "cancels it)." % vmi_name)
        raise
