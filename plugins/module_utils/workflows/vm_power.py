# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vm_power module: decide from the VM and its VMI what a power state needs, do it through
virt-api, wait for the result.

``decide()`` is pure: it looks at the VM and VMI and returns a Decision (which call, if any, what
to wait for, or an error), so check mode answers from the same logic as a real run.
"""

from __future__ import annotations

import copy
import time

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import parallel
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    InputError,
    KubevirtError,
    WaitFailed,
    WaitTimeout,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import operations
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import preflight
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import redacted
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.spec import string_map
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import (
    agent_connected,
    condition,
    run_strategy,
    template_change_processed,
    vmi_active,
    vmi_final,
    vmi_paused,
    vmi_phase,
    vmi_stopping,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.summary import (
    summarize_vm,
    summarize_vmi,
    vm_status,
)

STATES = ["started", "stopped", "restarted", "paused", "unpaused", "soft_rebooted", "migrated"]


def argument_spec():
    spec = dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str"),
        state=dict(type="str", required=True, choices=STATES),
        paused=dict(type="bool", default=False),
        grace_period=dict(type="int"),
        force=dict(type="bool", default=False),
        node_selector=dict(type="dict"),
        wait=dict(type="bool", default=True),
        wait_for=dict(type="list", elements="str"),
        wait_timeout=dict(type="int", default=300),
    )
    spec.update(runner.auth_spec())
    return spec


class Decision:
    """What a power state needs: a call (resource, verb, body), what to wait for, messages."""

    def __init__(self, action="none", resource=None, verb=None, body=None, wait="none", note=None,
                 pre_wait_gone=False):
        self.action = action          # start, stop, restart, pause, unpause, soft_reboot, migrate, none
        self.resource = resource
        self.verb = verb
        self.body = body
        self.wait = wait              # ready, paused, unpaused, gone, new_vmi, migration, none
        self.note = note              # a warning for the user
        self.pre_wait_gone = pre_wait_gone

    @property
    def changed(self):
        return self.action != "none"


def _ref(vm):
    meta = vm.get("metadata") or {}
    return res.VM.ref(meta.get("name"), meta.get("namespace"))


def _start(vm, vmi, params, strategy):
    """How to start a VM that does not run (None: KubeVirt starts it by itself)."""
    ref = _ref(vm)
    paused = bool(params.get("paused"))
    if strategy == "Always" or (strategy == "Once" and vmi is None):
        # The controller (re)creates the VMI by itself; a start request would be refused (409).
        return Decision(wait="paused" if paused else "ready",
                        note=None if not paused else "%s has run strategy %s, so KubeVirt starts it by itself and "
                        "paused is not applied; pause it with state: paused." % (ref, strategy))
    if strategy == "Once":
        raise KubevirtError("%s has run strategy Once and its VMI has ended (phase %s), so it can't be started "
                            "again; change run_strategy with virtops.kubevirt.vm to start it." % (
                                ref, vmi_phase(vmi) or "unknown"))
    if strategy is None:
        raise KubevirtError("%s has neither spec.runStrategy nor spec.running; set run_strategy with "
                            "virtops.kubevirt.vm." % ref)
    body = {"paused": True} if paused else {}
    return Decision("start", res.VM, "start", body, wait="paused" if paused else "ready",
                    pre_wait_gone=vmi_stopping(vmi))


def decide(state, vm, vmi, params):
    """The Decision for ``state`` given the VM and its VMI (None when there is none)."""
    ref = _ref(vm)
    strategy = run_strategy(vm)
    active = vmi_active(vmi)
    force = bool(params.get("force"))
    grace = params.get("grace_period")
    if grace is not None and grace < 0:
        raise InputError("grace_period must be 0 or more seconds, got %d." % grace)
    if state == "started":
        if active:
            note = None
            if params.get("paused") and not vmi_paused(vmi):
                note = "%s is running already and not paused; paused applies only when starting (use state: paused)." \
                    % ref
            return Decision(wait="paused" if vmi_paused(vmi) else "ready", note=note)
        return _start(vm, vmi, params, strategy)
    if state == "stopped":
        stop_body = {}
        if force:
            stop_body["gracePeriod"] = 0
        elif grace is not None:
            stop_body["gracePeriod"] = grace
        if active and strategy != "Halted":
            return Decision("stop", res.VM, "stop", stop_body, wait="gone")
        if active or vmi_stopping(vmi):
            # Halted already, the VMI is on its way out.
            if force or grace is not None:
                return Decision("stop", res.VM, "stop", stop_body or {"gracePeriod": 0}, wait="gone")
            return Decision(wait="gone")
        if strategy == "Always":
            # No VMI now, but KubeVirt would create one: stopping sets the run strategy to Halted.
            return Decision("stop", res.VM, "stop", stop_body, wait="gone")
        note = None
        if strategy == "RerunOnFailure" and vmi_phase(vmi) == "Failed":
            note = "%s has run strategy RerunOnFailure and its VMI failed, so KubeVirt will start it again." % ref
        return Decision(wait="gone", note=note)
    if state == "restarted":
        if not active:
            decision = _start(vm, vmi, dict(params, paused=False), strategy)
            if decision.action == "none":
                return decision
            decision.action = "start"
            return decision
        if strategy in ("Halted", "Once"):
            raise KubevirtError("%s has run strategy %s, which KubeVirt can't restart; change run_strategy with "
                                "virtops.kubevirt.vm, or stop and start it." % (ref, strategy))
        body = {"gracePeriodSeconds": 0} if force else {}
        return Decision("restart", res.VM, "restart", body, wait="new_vmi")
    # The rest act on a running VMI.
    if not active:
        hint = {"paused": " (state: started with paused: true starts it paused)",
                "unpaused": "", "soft_rebooted": "", "migrated": ""}[state]
        raise KubevirtError("%s is not running (status %s), so it can't be %s; start it first%s." % (
            ref, vm_status(vm, vmi), state.replace("_", " "), hint))
    phase = vmi_phase(vmi)
    if state == "paused":
        if vmi_paused(vmi):
            return Decision(wait="paused")
        _need_running(ref, phase, "paused")
        return Decision("pause", res.VMI, "pause", {}, wait="paused")
    if state == "unpaused":
        if not vmi_paused(vmi):
            return Decision(wait="none")
        return Decision("unpause", res.VMI, "unpause", {}, wait="unpaused")
    if state == "soft_rebooted":
        _need_running(ref, phase, "soft rebooted")
        if vmi_paused(vmi):
            raise KubevirtError("%s is paused, so it can't be soft rebooted; unpause it first (state: unpaused)." % ref)
        acpi = ((((vmi.get("spec") or {}).get("domain") or {}).get("features") or {}).get("acpi") or {})
        if not agent_connected(vmi) and acpi.get("enabled") is False:
            raise KubevirtError("%s can't be soft rebooted: its guest agent is not connected and ACPI is disabled; "
                                "use state: restarted." % ref)
        return Decision("soft_reboot", res.VMI, "softreboot", {}, wait="none")
    if state == "migrated":
        _need_running(ref, phase, "migrated")
        cond = condition(vmi, "LiveMigratable")
        if cond is not None and str(cond.get("status")) == "False":
            detail = ": ".join(x for x in (cond.get("reason"), cond.get("message")) if x) or "LiveMigratable is False"
            raise KubevirtError("%s can't be live-migrated: %s." % (ref, detail.rstrip(".")))
        body = {}
        if params.get("node_selector"):
            body["addedNodeSelector"] = string_map(params["node_selector"], "node_selector")
        return Decision("migrate", res.VM, "migrate", body, wait="migration")
    raise InputError("state %r is unknown; use one of %s." % (state, ", ".join(STATES)))


def _need_running(ref, phase, what):
    if phase != "Running":
        raise KubevirtError("%s is not Running yet (its VMI is %s), so it can't be %s; wait until it runs "
                            "(state: started waits for it)." % (ref, phase or "being created", what))


def node_matches(node, selector):
    labels = ((node or {}).get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in (string_map(selector, "node_selector") or {}).items())


# -- waits ----------------------------------------------------------------------------------------
def _paused_check(name, want):
    def check(objects):
        vmi = objects.get(name)
        if vmi is None:
            return False
        if want:
            return vmi_phase(vmi) == "Running" and vmi_paused(vmi)
        return not vmi_paused(vmi)
    return check


def _new_vmi_check(name, old_uid, ready_check):
    def check(objects):
        vmi = objects.get(name)
        if vmi is None or (vmi.get("metadata") or {}).get("uid") == old_uid:
            return False
        return ready_check(objects)
    return check


def _stopped_check(name):
    def check(objects):
        vmi = objects.get(name)
        if vmi is None:
            return True
        # A final VMI that nothing deletes is stopped; one being deleted is gone soon: wait for that.
        return vmi_final(vmi) and not vmi_stopping(vmi)
    return check


# What an action leaves of a template change that waits for a restart: start, restart and stop
# create the next VMI from the current template (KubeVirt then drops RestartRequired).
ACTIONS_APPLYING_TEMPLATE = ("start", "restart", "stop")


class VmPowerRunner(runner.Runner):
    migration = None

    def run(self):
        p = self.params
        name, namespace = self.target()
        if p.get("node_selector") and p["state"] != "migrated":
            raise InputError("node_selector applies to state: migrated only.")
        if p.get("paused") and p["state"] != "started":
            raise InputError("paused applies to state: started only (use state: paused to pause a running VM).")
        if (p.get("force") or p.get("grace_period") is not None) and p["state"] not in ("stopped", "restarted"):
            raise InputError("force and grace_period apply to state: stopped and restarted only.")
        if p.get("grace_period") is not None and p["state"] == "restarted":
            raise InputError("KubeVirt's restart takes no grace period; use force: true for an immediate restart.")
        conditions = waiter.parse_wait_for(p.get("wait_for"))
        start = time.monotonic()
        vm = operations.read_vm(self.client, name, namespace)
        vmi = operations.read_vmi(self.client, name, namespace)
        vm = self.processed(vm, vmi)
        preflight.require_wait_networks(conditions, vm, res.VM.ref(name, namespace))
        decision = decide(p["state"], vm, vmi, p)
        joined = None
        if decision.wait == "migration":
            joined = self.migration_in_flight(decision, namespace, name)
        if decision.note:
            self.warnings.append(decision.note)
        if p["state"] == "migrated" and decision.action == "migrate" and p.get("node_selector"):
            node_name = (vmi.get("status") or {}).get("nodeName")
            node = parallel.read_quiet(lambda: self.client.get_or_none(res.BY_KIND["Node"], node_name)) \
                if node_name else None
            if node is not None and node_matches(node, p["node_selector"]):
                decision = Decision(wait="none")
                self.warnings.append("%s/%s runs on node %s, which matches node_selector already; not migrating." % (
                    namespace, name, node_name))
        result = dict(changed=decision.changed, action=decision.action, state=p["state"])
        if self.check_mode:
            if joined is not None:
                self.migration = operations.migration_of(joined)
            return self.finish(result, vm, vmi, predicted=decision)
        if p["state"] == "migrated":
            wait_error = self.migrate(result, decision, namespace, name, joined, start)
            vm = parallel.read_quiet(lambda: self.client.get_or_none(res.VM, name, namespace)) or vm
            vmi = parallel.read_quiet(lambda: self.client.get_or_none(res.VMI, name, namespace))
            return self.finish(result, vm, vmi, wait_error)
        old_uid = ((vmi or {}).get("metadata") or {}).get("uid")
        timeout = p["wait_timeout"]
        if decision.pre_wait_gone:
            self.progress.append(waiter.wait_gone(self.client, res.VMI, namespace, [name], timeout))
        if decision.changed:
            verify = operations.took_effect(self.client, decision.verb, namespace, name, vm, vmi)
            operations.call(self.client, decision.resource, namespace, name, decision.verb, decision.body,
                            action=decision.action.replace("_", " "), verify=verify)
        wait_error = None
        if p["wait"] and decision.wait != "none":
            remaining = max(1, timeout - (time.monotonic() - start))
            try:
                vmi = self.wait(decision, namespace, name, conditions, remaining, old_uid, vm)
            except (WaitTimeout, WaitFailed) as exc:
                wait_error = exc   # run_module adds its progress record
        vm = parallel.read_quiet(lambda: self.client.get_or_none(res.VM, name, namespace)) or vm
        if decision.changed or p["wait"]:
            vmi = parallel.read_quiet(lambda: self.client.get_or_none(res.VMI, name, namespace))
        return self.finish(result, vm, vmi, wait_error)

    def processed(self, vm, vmi):
        """The VM once KubeVirt has processed its latest template change (briefly awaited), so that
        restart_required is what KubeVirt says of it, in check mode too."""
        generation = (vm.get("metadata") or {}).get("generation")
        # Without status.desiredGeneration (an older KubeVirt) there is nothing to wait for.
        known = (vm.get("status") or {}).get("desiredGeneration") is not None
        if vmi is None or not known or template_change_processed(vm, generation):
            return vm
        timeout = min(operations.RESTART_CHECK_TIMEOUT, self.params["wait_timeout"])
        objects, record, late = operations.wait_template_changes(
            self.client, (vm.get("metadata") or {}).get("namespace"), {vm["metadata"]["name"]: generation},
            timeout, resource_version=(vm.get("metadata") or {}).get("resourceVersion"))
        if record:
            self.progress.append(record)
        if late:
            namespace = vm["metadata"].get("namespace")
            self.warnings.append(operations.unprocessed_note(namespace, late[0], timeout, assumed=False))
        return objects.get(vm["metadata"]["name"]) or vm

    def migration_in_flight(self, decision, namespace, name):
        """This VMI's migration in flight, if any: the task joins it instead of starting one (KubeVirt
        refuses a second one). Turns ``decision`` into that wait. The migration objects decide, not the
        VMI's migrationState: a cancelled migration still shows there while KubeVirt aborts it."""
        active, _ending, _names = operations.active_migration(self.client, namespace, name)
        if active is None:
            return None
        decision.action, decision.resource, decision.verb, decision.body = "none", None, None, None
        decision.note = "%s/%s is being migrated already (migration %s, phase %s); waiting for that one%s." % (
            namespace, name, active["metadata"]["name"], (active.get("status") or {}).get("phase") or "Pending",
            self.selector_note(active))
        return active

    def selector_note(self, mig):
        wanted = {str(k): str(v) for k, v in (self.params.get("node_selector") or {}).items()}
        theirs = (mig.get("spec") or {}).get("addedNodeSelector") or {}
        if wanted and wanted != theirs:
            return " (it was started with addedNodeSelector %s, not this task's node_selector)" % (theirs or "{}")
        return ""

    def migrate(self, result, decision, namespace, name, joined, start):
        """Start the migration (or join the one in flight) and follow it; returns the wait's error.

        On timeout the migration this task started is cancelled, one it joined is left running.
        """
        mig, started = joined, False
        if decision.action == "migrate":
            remaining = max(1, self.params["wait_timeout"] - (time.monotonic() - start))
            mig, started, records = operations.start_migration(self.client, namespace, name,
                                                               self.params.get("node_selector"), remaining)
            self.progress.extend(records)
            if not started:
                # It raced us: virt-api refused ours ("in-flight migration detected"); join that one.
                result.update(changed=False, action="none")
                self.warnings.append("%s/%s is being migrated already (migration %s); waiting for that one%s." % (
                    namespace, name, mig["metadata"]["name"], self.selector_note(mig)))
        wait_error = None
        cancelled = False
        if self.params["wait"] and mig is not None:
            remaining = max(1, self.params["wait_timeout"] - (time.monotonic() - start))
            try:
                mig, record = operations.follow_migration(self.client, namespace, name, mig, remaining, started)
                self.progress.append(record)
            except (WaitTimeout, WaitFailed) as exc:
                wait_error = exc   # run_module adds its progress record
                mig = exc.details.get("migration") or mig
                cancelled = bool(exc.details.get("cancelled"))
        if mig is not None:
            self.migration = dict(operations.migration_of(mig), cancelled=cancelled)
        return wait_error

    def wait(self, decision, namespace, name, conditions, timeout, old_uid, vm):
        kind = decision.wait
        label = "VirtualMachine %s/%s" % (namespace, name)
        strategies = {name: run_strategy(vm)}
        ready = waiter.vmi_check(conditions, [name], True, strategies)
        human = waiter.describe_conditions(conditions)
        probe = None
        if kind in ("ready", "new_vmi"):
            # While it has no VMI, the VM says why (a Failure condition, Provisioning, ...).
            probe = waiter.VmProbe(self.client, namespace, [name], before={name: vm} if vm else None)
        if kind == "ready":
            check, what = probe.check(ready), "%s to be %s" % (label, human)
        elif kind == "new_vmi":
            check, what = probe.check(_new_vmi_check(name, old_uid, ready)), "%s to restart and be %s" % (label, human)
        elif kind == "paused":
            check, what = _paused_check(name, True), "%s to be paused" % label
        elif kind == "unpaused":
            check, what = _paused_check(name, False), "%s to be unpaused" % label
        else:
            check, what = _stopped_check(name), "%s to be stopped" % label
        wait = waiter.Wait(self.client, res.VMI, namespace, check, what, timeout, names=[name], probe=probe)
        self.progress.append(wait.run())
        return wait.objects.get(name)

    def finish(self, result, vm, vmi, wait_error=None, predicted=None):
        """The result; in check mode (``predicted``: the decision not carried out) restart_required is
        what the real action would leave."""
        waited = bool(self.progress)
        vm_for_summary = vm
        # The VMI read after the wait is newer than the VM's status; without a VMI the VM's own status
        # (read after the wait too) says what no VMI can: Provisioning, a Failure condition, ...
        if waited and vm is not None and vmi is not None:
            vm_for_summary = copy.deepcopy(vm)
            status = vm_for_summary.setdefault("status", {})
            status.pop("printableStatus", None)
            status.pop("ready", None)
        summary = summarize_vm(vm_for_summary, vmi) if vm else None
        if summary is not None and predicted is not None and predicted.action in ACTIONS_APPLYING_TEMPLATE:
            summary["restart_required"] = False
        result.update(
            vm=redacted(vm),
            summary=summary,
            vmi=summarize_vmi(vmi) if vmi else None,
            printable_status=(summary or {}).get("status"),
            ready=bool((summary or {}).get("ready")),
            paused=bool((summary or {}).get("paused")),
            node=(summary or {}).get("node"),
            restart_required=bool((summary or {}).get("restart_required")),
            progress=self.progress,
        )
        if self.migration is not None or result["state"] == "migrated":
            result["migration"] = self.migration
        return result, wait_error
