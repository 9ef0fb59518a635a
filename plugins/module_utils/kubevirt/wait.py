# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Watch-based waits with a timeout and a progress record. No sleeps, no polling.

One wait is one watch: it asks for the current state first (``sendInitialEvents``, resourceVersion
"not older than" the write that started the wait) and then follows changes. A cut watch resumes
from the last resourceVersion; 410 Gone re-lists. Servers without WatchList get a LIST then a
watch from the list's resourceVersion.

On timeout the error says what was awaited, what was last seen (phase, conditions), the latest
warning events and how long it waited.
"""

from __future__ import annotations

import re
import time
from collections import Counter

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.watch import WatchGone
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    ApiError,
    InputError,
    WaitFailed,
    WaitTimeout,
    one_line,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import (
    agent_connected,
    failure_lasts,
    owned_by,
    vmi_ends_for_good,
    vmi_final,
    vmi_phase,
    vmi_ready,
    vmi_stopping,
    vm_failure,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.summary import (
    EVENTS_KEPT,
    conditions_not_ok,
    ip_address,
    warning_events,
)

WAIT_FOR_CHOICES = ("ready", "ip", "agent")
QUIET_WATCH = 1.0        # a watch that ends within this many seconds without an event...
QUIET_BACKOFF_CAP = 2.0  # ...is opened again after 0.1, 0.2, 0.4... seconds, at most this
INITIAL_END = "k8s.io/initial-events-end"


def parse_wait_for(values):
    """wait_for list -> normalized list: 'ready', 'agent', 'ip' or 'ip:<network>'."""
    out = []
    for value in values or ["ready"]:
        text = str(value).strip()
        base, _sep, net = text.partition(":")
        if base not in WAIT_FOR_CHOICES or (net and base != "ip") or (_sep and not net):
            raise InputError("wait_for item %r is unknown; use ready, ip, ip:<network name> or agent." % value)
        if text not in out:
            out.append(text)
    return out


def _rv(obj):
    return ((obj or {}).get("metadata") or {}).get("resourceVersion")


def _name(obj):
    return ((obj or {}).get("metadata") or {}).get("name")


def describe_object(obj, skip=()):
    """'phase Scheduling; PodScheduled=False (Unschedulable: ...)' for timeout messages (without the
    condition types in ``skip``)."""
    if obj is None:
        return "does not exist"
    status = obj.get("status") or {}
    parts = []
    if status.get("printableStatus"):
        parts.append("status %s" % status["printableStatus"])
    if status.get("phase"):
        parts.append("phase %s" % status["phase"])
    conds = []
    for cond in conditions_not_ok(obj):
        if cond["type"] in skip:
            continue
        text = "%s=%s" % (cond["type"], cond["status"])
        detail = ": ".join(x for x in (cond.get("reason"), cond.get("message")) if x)
        if detail:
            text += " (%s)" % one_line(detail, 250)
        conds.append(text)
    if conds:
        parts.append("conditions " + "; ".join(conds))
    if not parts:
        parts.append("no status yet")
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        parts.append("being deleted")
    return ", ".join(parts)


# The waits running now, for live progress lines (kubevirt/progress.py): plugin_utils/in_process.py
# reads them in Ansible's worker; a module process publishes them to a file its action reads.
ACTIVE = []


class Wait:
    """One watch-based wait over the objects of one resource in one namespace."""

    def __init__(self, client, resource, namespace, check, description, timeout, names=None,
                 label_selector=None, field_selector=None, resource_version=None, clock=time.monotonic,
                 sleep=time.sleep, diagnose=None, keep=None, probe=None, each=None):
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.check = check
        self.description = description
        self.timeout = timeout
        self.names = set(names) if names else None
        self.label_selector = label_selector
        self.field_selector = field_selector
        if self.names and len(self.names) == 1 and not field_selector:
            self.field_selector = "metadata.name=%s" % next(iter(self.names))
        self.resource_version = resource_version
        self.clock = clock
        self.sleep = sleep
        # On timeout: diagnose(objects) -> (what else explains the wait, warning events); by default
        # the warning events of the awaited objects (and their virt-launcher pods).
        self.diagnose = diagnose
        # keep(obj): which of the watched objects the wait is about (a selector may take in more);
        # the others are neither checked nor named on timeout.
        self.keep = keep
        self.objects = {}
        self.events = 0
        self.watches = 0
        # A probe (VmProbe) looks at what the watched objects depend on while they are missing.
        self.probe = probe
        # {name: check of that object alone}: lets status() say how many of a fleet are done.
        self.each = each

    def _keep(self, obj):
        if self.keep is not None and not self.keep(obj):
            return False
        return self.names is None or _name(obj) in self.names

    def _apply(self, etype, obj):
        name = _name(obj)
        if etype == "DELETED":
            self.objects.pop(name, None)
        else:
            self.objects[name] = obj

    def _done(self, name=None):
        """Is the wait over? With ``name`` (the object an event was about), a check that can look again
        at that one alone (``check.update``, see workflows.vm.settled_check) does so."""
        update = getattr(self.check, "update", None)
        if name is not None and update is not None:
            return bool(update(self.objects, name))
        return bool(self.check(self.objects))

    def _list(self):
        listing = self.client.list(self.resource, self.namespace, label_selector=self.label_selector,
                                   field_selector=self.field_selector)
        self.objects = {_name(o): o for o in listing.get("items") or [] if self._keep(o)}
        return (listing.get("metadata") or {}).get("resourceVersion")

    def run(self):
        """Block until check(objects) is true; returns the progress record. Raises WaitTimeout/WaitFailed."""
        self.started = self.clock()
        ACTIVE.append(self)
        try:
            return self._run(self.started)
        finally:
            ACTIVE.remove(self)

    def describe(self, name):
        described = self.probe.describe(name, self.objects.get(name)) if self.probe else None
        return described or describe_object(self.objects.get(name))

    def _probe_due(self):
        # the clock first: needed() looks at every awaited object
        return self.probe is not None and self.clock() >= self.probe.next_at and self.probe.needed(self.objects)

    def _idle(self, synced, remaining):
        """How long a watch may stay silent before the probe is due (None: as long as the watch lasts)."""
        if self.probe is None or (synced and not self.probe.needed(self.objects)):
            return None
        return max(1.0, min(remaining, self.probe.next_at - self.clock()))

    def status(self):
        """One line on what this wait is waiting on, for how long and what it last saw, for a live progress
        display: with ``each`` and several objects, how many are done and where the others are, counted."""
        names = sorted(self.names or list(self.objects))
        line = "waiting for %s: %ds of %ds" % (self.description, self.clock() - self.started, self.timeout)
        pending = names
        if self.each and len(names) > 1:
            pending, failed = self._tally(names)
            line += ", %d/%d done" % (len(names) - len(pending) - len(failed), len(names))
            counts = Counter(self._state(name) for name in pending)
            if failed:
                counts["failed"] = len(failed)
            if counts:
                line += " (%s)" % ", ".join("%d %s" % (n, state) for state, n in
                                            sorted(counts.items(), key=lambda item: (-item[1], item[0])))
        seen = "; ".join("%s %s" % (name, self.describe(name)) for name in pending[:3])
        if len(pending) > 3:
            seen += " and %d more" % (len(pending) - 3)
        return "%s, last seen: %s" % (line, seen or ("all done" if pending is not names else "nothing yet"))

    def _tally(self, names):
        """(names not done yet, names that failed for good) by each name's own check."""
        failures = self.probe.failures if self.probe is not None else {}
        pending, failed = [], []
        for name in names:
            one = self.each.get(name)
            try:
                if name in failures:
                    failed.append(name)
                elif one is None or not one(self.objects):
                    pending.append(name)
            except WaitFailed:
                failed.append(name)
        return pending, failed

    def _state(self, name):
        """Where one awaited object is, in a word or two: its printableStatus or phase."""
        obj = self.objects.get(name)
        if obj is None:
            return "without a %s yet" % self.resource.kind
        status = obj.get("status") or {}
        state = status.get("printableStatus") or status.get("phase") or "without a status yet"
        if (obj.get("metadata") or {}).get("deletionTimestamp"):
            state += " (being deleted)"
        return state

    def _run(self, start):
        deadline = start + self.timeout
        rv = self.resource_version
        initial = True
        synced = False
        watchlist = getattr(self.client, "watchlist_supported", True)
        quiet = 0  # watches in a row that ended at once with no event
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                break
            if initial and not watchlist:
                rv = self._list()
                synced = True
                initial = False
                if self._done():
                    return self._progress(start, "ok")
            try:
                self.watches += 1
                opened, seen = self.clock(), self.events
                idle = self._idle(synced, remaining)
                stream = self.client.watch(self.resource, self.namespace, resource_version=rv,
                                           label_selector=self.label_selector, field_selector=self.field_selector,
                                           timeout=remaining, send_initial_events=initial,
                                           **({"idle": idle} if idle else {}))
                if initial:
                    self.objects = {}
                for etype, obj in stream:
                    self.events += 1
                    if _rv(obj):
                        rv = _rv(obj)
                    if etype == "BOOKMARK":
                        annotations = (obj.get("metadata") or {}).get("annotations") or {}
                        if initial and annotations.get(INITIAL_END) == "true":
                            initial = False
                            synced = True
                            if self._done():
                                return self._progress(start, "ok")
                        continue
                    if not self._keep(obj):
                        continue
                    self._apply(etype, obj)
                    if synced and self._done(_name(obj)):
                        return self._progress(start, "ok")
                    if self.clock() >= deadline:
                        break
                    if synced and self._probe_due():
                        self.probe.look(self.objects)
                        if self._done():
                            return self._progress(start, "ok")
                if synced and self._probe_due():
                    self.probe.look(self.objects)
                    if self._done():
                        return self._progress(start, "ok")
                if self.events == seen and self.clock() - opened < QUIET_WATCH:
                    # A server (or something in between) that ends watches at once: back off, don't spin.
                    quiet += 1
                    delay = min(QUIET_BACKOFF_CAP, 0.1 * 2 ** (quiet - 1))
                    self.sleep(max(0.0, min(delay, deadline - self.clock())))
                else:
                    quiet = 0
                if initial:
                    # The stream ended before the initial state was complete; start over.
                    continue
            except WatchGone:
                initial, synced, rv = True, False, None
                continue
            except ApiError as exc:
                if initial and exc.status in (400, 422) and watchlist:
                    # No WatchList on this server: LIST, then watch from the list's resourceVersion.
                    watchlist = False
                    try:
                        self.client.watchlist_supported = False
                    except AttributeError:
                        pass
                    continue
                raise
        raise self._timeout(start)

    def _progress(self, start, result):
        record = {"waited_for": self.description, "seconds": round(self.clock() - start, 2), "result": result,
                  "watches": self.watches, "events": self.events}
        if self.probe is not None and self.probe.reads:
            record["reads"] = self.probe.reads   # the probe's looks at what the awaited objects depend on
        return record

    def _timeout(self, start):
        elapsed = self.clock() - start
        pending = self.names or set(self.objects)
        if self.probe is not None:
            self.probe.look(self.objects, final=True)
        seen = []
        for name in sorted(pending):
            seen.append("%s %s" % (name, self.describe(name)))
        if self.diagnose is not None:
            cause, events = self.diagnose(dict(self.objects))
        else:
            cause, events = "", fetch_warning_events(self.client, self.namespace, pending, uids={
                name: (obj.get("metadata") or {}).get("uid") for name, obj in self.objects.items()})
        msg = "Timed out after %ds waiting for %s; last seen: %s" % (
            round(elapsed), self.description, "; ".join(seen) or "nothing")
        if cause:
            msg += "; " + cause
        if events:
            lines = []
            for event in events:
                line = "%s %s: %s" % (event["object"], event["reason"], event["message"].rstrip("."))
                if line not in lines:
                    lines.append(line)
            msg += "; latest warning events: %s" % "; ".join(lines[:3])
        msg += "."
        return WaitTimeout(msg, seconds=round(elapsed, 2), objects=dict(self.objects), events=events,
                           progress=self._progress(start, "timeout"))


def fetch_warning_events(client, namespace, names, keep=EVENTS_KEPT, uids=None):
    """Latest Warning events about ``names`` and their virt-launcher pods (best effort).

    ``uids`` ({name: uid}) leaves out events about an earlier object of the same name.
    """
    names = [n for n in names or [] if n]
    if not names or not namespace:
        return []
    try:
        listing = client.list(res.EVENT, namespace, field_selector="type=Warning")
    except Exception:  # diagnostics must never hide the real error
        return []
    uids = uids or {}
    items = []
    wanted = set(names)
    launchers = [launcher_pod_name_re(name) for name in names]
    for event in listing.get("items") or []:
        involved = event.get("involvedObject") or {}
        name = involved.get("name") or ""
        if uids.get(name) and involved.get("uid") and involved["uid"] != uids[name]:
            continue
        if any(pattern.match(name) for pattern in launchers):
            wanted.add(name)
        items.append(event)
    return warning_events(items, wanted, keep)


def launcher_pod_name_re(vmi_name):
    """The names KubeVirt gives the virt-launcher pods of VMI ``vmi_name``: generateName
    'virt-launcher-<vmi>-' (cut to 58 characters, as Kubernetes does) and 5 random characters. A prefix
    match alone would also take VMI 'web-2''s pods for VMI 'web'."""
    prefix = ("virt-launcher-%s-" % vmi_name)[:58]
    return re.compile(r"^%s[a-z0-9]{5}$" % re.escape(prefix))


# -- the waits modules use ---------------------------------------------------------------------
def vmi_check(conditions, names, owned_by_vm=True, run_strategies=None, owners=None):
    """check() for VMIs: every name meets every wait_for condition.

    A VMI that ends (Failed/Succeeded) fails the wait when nothing will restart it: a stand-alone
    VMI, or a VM whose run strategy is Once (or RerunOnFailure after Succeeded). A VMI being
    deleted, or (with ``owners``, {name: VM uid}) one that belongs to an earlier VM of the same
    name, never counts.
    """
    run_strategies = run_strategies or {}
    owners = owners or {}

    def check(objects):
        for name in names:
            vmi = objects.get(name)
            if vmi is None:
                return False
            if vmi_stopping(vmi):
                return False
            if owners.get(name) and not owned_by(vmi, owners[name]):
                return False
            phase = vmi_phase(vmi)
            if vmi_final(vmi):
                if not owned_by_vm or vmi_ends_for_good(run_strategies.get(name), phase):
                    raise WaitFailed("VirtualMachineInstance %s/%s ended in phase %s while waiting for it to be %s; "
                                     "%s." % ((vmi.get("metadata") or {}).get("namespace"), name, phase,
                                              ", ".join(conditions), describe_object(vmi)))
            for cond in conditions:
                if cond == "ready" and not vmi_ready(vmi):
                    return False
                if cond == "agent" and not agent_connected(vmi):
                    return False
                if cond.startswith("ip") and not ip_address(vmi, cond[3:] or None):
                    return False
        return True

    return check


class VmProbe:
    """What the VirtualMachines of a VMI wait say while they have no VMI of theirs.

    virt-controller says why it does not create a VM's VMI only on the VM: a Failure condition (an
    instancetype that does not exist, a VMI the API refuses, ...), printableStatus Provisioning
    while its DataVolumes import, and so on. While an awaited VM has no VMI, the wait reads the VM
    (2 s after the start, then at doubling intervals up to 30 s, and once at the timeout): a
    Failure that lasts until the user changes something (state.failure_lasts) ends the wait at
    once with KubeVirt's message, and the timeout message describes the VM as it is.
    ``before`` ({name: VM before the task's write}) keeps a Failure that the task's write has
    not been reconciled against yet from ending the wait.
    """

    FIRST = 2.0
    CAP = 30.0

    def __init__(self, client, namespace, names, owners=None, before=None, clock=time.monotonic):
        self.client = client
        self.namespace = namespace
        self.names = list(names)
        self.owners = owners or {}
        self.before = {name: vm_failure(vm) for name, vm in (before or {}).items()}
        self.clock = clock
        self.every = self.FIRST
        self.next_at = clock() + self.FIRST
        self.vms = {}
        self.failures = {}  # name -> why it cannot start (a lasting Failure); settled for the wait
        self.reads = 0      # requests made (one a look)

    def _without_vmi(self, objects):
        out = []
        for name in self.names:
            vmi = objects.get(name)
            if vmi is None or (self.owners.get(name) and not owned_by(vmi, self.owners[name])):
                out.append(name)
        return out

    def needed(self, objects):
        return bool(self._without_vmi(objects))

    def _read(self, names):
        from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import parallel

        self.reads += 1
        if len(names) == 1:
            found = parallel.read_quiet(lambda: [self.client.get_or_none(res.VM, names[0], self.namespace)], None)
        else:
            found = parallel.read_quiet(lambda: self.client.list(res.VM, self.namespace).get("items"), None)
        if found is None:
            return  # no answer (no permission, a fault): describe what was seen before
        by_name = {_name(vm): vm for vm in found if vm}
        for name in names:
            self.vms[name] = by_name.get(name)

    def look(self, objects, final=False):
        """Read the VMs that have no VMI; note each lasting Failure in ``failures`` (not at ``final``)."""
        names = [n for n in self._without_vmi(objects) if n not in self.failures]
        self.every = min(self.every * 2, self.CAP)
        self.next_at = self.clock() + self.every
        if not names:
            return
        self._read(names)
        if final:
            return
        for name in names:
            vm = self.vms.get(name)
            cond = vm_failure(vm)
            if failure_lasts(cond) and cond != self.before.get(name):
                self.failures[name] = (
                    "VirtualMachine %s/%s cannot start: KubeVirt reports Failure=True (%s: %s); it retries only "
                    "after the VM or what it refers to changes." % (
                        self.namespace, name, cond.get("reason"),
                        one_line(cond.get("message") or "no message", 400).rstrip(".")))

    def check(self, check):
        """``check`` (of one VM's VMI) that fails as soon as the VM cannot start."""
        def checked(objects):
            for name in self.names:
                if name in self.failures:
                    raise WaitFailed(self.failures[name])
            return check(objects)
        return checked

    def describe(self, name, vmi):
        """'has no VMI; its VirtualMachine: status Stopped, conditions Failure=True (...)', or None."""
        if name not in self.names or name not in self.vms or name not in self._without_vmi({name: vmi}):
            return None
        vm = self.vms[name]
        if vm is None:
            return "does not exist"  # no VirtualMachine of that name (nor a VMI)
        # The VM's Ready=False (VMINotExists) only repeats that there is no VMI.
        return "has no VirtualMachineInstance; its VirtualMachine: %s" % describe_object(vm, skip=("Ready",))


def vm_failure_note(client, namespace, name):
    """'; VirtualMachine ns/name reports Failure=True (reason: message)' when it does (best effort), else ''.

    For waits on a VMI that a VM's controller acts on (hot-plug): virt-controller reports what it
    could not do on the VM only.
    """
    from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import parallel

    cond = vm_failure(parallel.read_quiet(lambda: client.get_or_none(res.VM, name, namespace)))
    if not cond:
        return ""
    return "; VirtualMachine %s/%s reports Failure=True (%s: %s)" % (
        namespace, name, cond.get("reason"), one_line(cond.get("message") or "no message", 400).rstrip("."))


def gone_check(names=None):
    """check(): the named objects (or, without names, every watched object) are gone."""

    def check(objects):
        if names is None:
            return not objects
        return not any(n in objects for n in names)

    return check


def objects_label(kind, namespace, names, plural=None):
    """'VirtualMachine ns/vm1', or '5 VirtualMachines in ns' for wait texts."""
    names = list(names or [])
    if len(names) == 1:
        return "%s %s/%s" % (kind, namespace, names[0])
    if not names:
        return "the %s in %s" % (plural or kind + "s", namespace)
    return "%d %s in %s" % (len(names), plural or kind + "s", namespace)


def wait_vmis(client, namespace, names, conditions, timeout, resource_version=None, owned_by_vm=True,
              run_strategies=None, what="VirtualMachine"):
    names = list(names)
    description = "%s to be %s" % (objects_label(what, namespace, names), describe_conditions(conditions))
    check = vmi_check(conditions, names, owned_by_vm, run_strategies)
    probe = None
    if owned_by_vm and what == "VirtualMachine":
        probe = VmProbe(client, namespace, names)
        check = probe.check(check)
    wait = Wait(client, res.VMI, namespace, check, description, timeout, names=names,
                resource_version=resource_version, probe=probe)
    progress = wait.run()
    return wait.objects, progress


def wait_gone(client, resource, namespace, names, timeout, resource_version=None, label_selector=None,
              description=None):
    names = list(names) if names else None
    what = description or "%s to be deleted" % objects_label(resource.kind, namespace, names)
    wait = Wait(client, resource, namespace, gone_check(None if label_selector else names), what, timeout,
                names=None if label_selector else names, label_selector=label_selector,
                resource_version=resource_version)
    return wait.run()


# How long a task without a wait_timeout (network, instancetype) waits for an object being deleted to go
# before it creates its own.
GONE_BEFORE_CREATE_TIMEOUT = 120


def terminating(obj):
    """Being deleted: a finalizer or a foreground deletion still holds it."""
    return bool(((obj or {}).get("metadata") or {}).get("deletionTimestamp"))


def gone_before_create(client, resource, namespace, objs, timeout, check_mode=False):
    """Of ``objs`` (one namespace), those being deleted are waited for until they have gone, so that the task
    creates its own: applying onto one would change an object about to vanish. Returns the progress record
    (None when nothing waited: check mode predicts the creates without waiting)."""
    going = [o for o in objs if terminating(o)]
    names = [o["metadata"]["name"] for o in going]
    if not names or check_mode:
        return None
    label = resource.ref(names[0], namespace) if len(names) == 1 else objects_label(resource.kind, namespace, names)
    return wait_gone(client, resource, namespace, names, timeout, resource_version=newest_resource_version(going),
                     description="%s, being deleted, to be gone before %s created again" % (
                         label, "it is" if len(names) == 1 else "they are"))


def present_unless_going(client, resource, current, timeout, check_mode, progress):
    """``current``, or None when it was being deleted and has gone now (see gone_before_create)."""
    if not terminating(current):
        return current
    meta = current["metadata"]
    record = gone_before_create(client, resource, meta.get("namespace"), [current], timeout, check_mode)
    if record is not None:
        progress.append(record)
    return None


def _human(cond):
    if cond == "ready":
        return "ready"
    if cond == "agent":
        return "connected to its guest agent"
    if cond == "ip":
        return "given an IP address"
    return "given an IP address on network %s" % cond[3:]


def describe_conditions(conditions):
    """'ready and given an IP address' for wait descriptions."""
    return " and ".join(_human(c) for c in conditions)


def newest_resource_version(objs):
    """The highest resourceVersion of ``objs`` (a wait started there misses none of their changes)."""
    best = None
    for obj in objs:
        rv = ((obj or {}).get("metadata") or {}).get("resourceVersion")
        if rv is None:
            continue
        try:
            value = int(rv)
        except ValueError:
            return None
        best = value if best is None or value > best else best
    return str(best) if best is not None else None
