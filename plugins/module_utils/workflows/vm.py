# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vm module: build, write (one or many VMs, concurrently), wait, summarize.

The vmi module runs the same steps for one VirtualMachineInstance (workflows/vmi.py).
"""

from __future__ import annotations

import copy
import time

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import parallel, writes
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    ApiError,
    InputError,
    KubevirtError,
    WaitFailed,
    WaitTimeout,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import spec as vmspec
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import operations
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import preflight
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import diff_of, redacted, secret_values
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import (
    condition_true,
    live_resize_pending,
    owned_by,
    run_strategy,
    run_strategy_of,
    vm_active,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.summary import (
    launcher_selector,
    summarize_vm,
    summarize_vmi,
)

VM_ITEM_SPEC = dict(
    name=dict(type="str"),
    namespace=dict(type="str"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    run_strategy=dict(type="str", choices=vmspec.RUN_STRATEGIES),
    running=dict(type="bool"),
    definition=dict(type="dict"),
    keep_volumes=dict(type="bool", default=False),
)
VM_ITEM_SPEC.update(copy.deepcopy(vmspec.SPEC_ARG_SPEC))

DEFINITION_EXCLUSIVE = [("definition", key) for key in vmspec.TEMPLATE_OPTIONS]
VM_MUTUALLY_EXCLUSIVE = [("run_strategy", "running")] + DEFINITION_EXCLUSIVE
MERGED_DICTS = ("labels", "annotations")


def argument_spec():
    spec = copy.deepcopy(VM_ITEM_SPEC)
    spec["vms"] = dict(type="list", elements="raw")
    spec["return_objects"] = dict(type="bool", default=True)
    spec.update(copy.deepcopy(runner.WAIT_ARG_SPEC))
    spec.update(runner.auth_spec())
    return spec


# -- plans: one per VM -----------------------------------------------------------------------------
class Plan:
    def __init__(self, index, params):
        self.index = index
        self.params = params
        self.name = None
        self.namespace = None
        self.state = params.get("state") or "present"
        self.desired = None
        self.current = None
        self.outcome = None
        self.error = None
        self.vmi = None
        self.waited = False
        self.restart_required = None
        self.live_resize = []       # what KubeVirt hot-plugged into the running VM (state.live_resize_pending)
        self.template_only = False
        self.deleted = None
        self.kept = None
        self.wait_error = None
        self.vm_read = False

    @property
    def key(self):
        return (self.namespace, self.name)


def item_params(task_params, item, index, item_spec, mutually_exclusive, no_log_values=None):
    """One vms item, with the task-level options as defaults, validated like the task's options.

    Secrets of the item (cloud-init password, user data) are added to ``no_log_values`` so that
    Ansible masks them everywhere in the task's output, as it does for the task-level options.
    """
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, dict):
        raise InputError("vms[%d] must be a VM name or a dict of VM options, got %r." % (index, item))
    merged = {}
    for key in item_spec:
        if key in ("name", "definition"):
            continue
        if task_params.get(key) is not None:
            merged[key] = _strip_none(task_params[key])
    for key, value in item.items():
        if key in MERGED_DICTS and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = dict(merged[key], **value)
        else:
            merged[key] = value
    validator = ArgumentSpecValidator(item_spec, mutually_exclusive=mutually_exclusive,
                                      required_one_of=[("name", "definition")])
    result = validator.validate(merged)
    if no_log_values is not None:
        no_log_values.update(getattr(result, "_no_log_values", None) or ())
    if result.error_messages:
        label = item.get("name") or (item.get("definition") or {}).get("metadata", {}).get("name") or "?"
        raise InputError("vms[%d] (%s): %s." % (index, label, "; ".join(result.error_messages)))
    return result.validated_parameters


def _strip_none(value):
    """Validated options carry None for every unset suboption; drop them before validating again."""
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return copy.deepcopy(value)


def _template_given(params):
    return any(params.get(key) is not None for key in vmspec.TEMPLATE_OPTIONS) or params.get("definition")


def prepare(plan, default_namespace, kind="VirtualMachine"):
    """Validate and build the object for one plan (no I/O)."""
    p = plan.params
    definition = p.get("definition")
    meta = (definition or {}).get("metadata") or {}
    plan.name = p.get("name") or meta.get("name")
    plan.namespace = p.get("namespace") or meta.get("namespace") or default_namespace
    if not plan.name:
        raise InputError("name is required: set name, or metadata.name in definition.")
    res.check_name(plan.name, "name")
    res.check_namespace(plan.namespace)
    if plan.state == "absent":
        return
    plan.template_only = not _template_given(p)
    if definition:
        plan.desired = vmspec.from_definition(definition, kind, plan.name, plan.namespace)
        plan.desired["metadata"]["namespace"] = plan.namespace
        if p.get("labels"):
            plan.desired["metadata"].setdefault("labels", {}).update(vmspec.p_labels(p))
        if p.get("annotations"):
            plan.desired["metadata"].setdefault("annotations", {}).update(vmspec.p_annotations(p))
        if kind == "VirtualMachine":
            spec = plan.desired["spec"]
            if p.get("labels"):
                # As without definition: the template carries them too, so the VMI and its pod get them.
                template = spec.setdefault("template", {})
                template.setdefault("metadata", {}).setdefault("labels", {}).update(vmspec.p_labels(p))
            given = _run_strategy_given(p)
            if given:
                spec.pop("running", None)
                spec["runStrategy"] = given
    elif kind == "VirtualMachine":
        plan.desired = vmspec.build_vm(p, plan.name, plan.namespace, run_strategy=_run_strategy_given(p))
    else:
        plan.desired = vmspec.build_vmi(p, plan.name, plan.namespace)


def _run_strategy_given(params):
    """The run strategy the task's options ask for (run_strategy, or the deprecated running)."""
    return run_strategy_of(params.get("run_strategy"), params.get("running"))


def _partial_patch(plan):
    p = plan.params
    patch = {}
    meta = {}
    if p.get("labels"):
        meta["labels"] = vmspec.p_labels(p)
    if p.get("annotations"):
        meta["annotations"] = vmspec.p_annotations(p)
    if meta:
        patch["metadata"] = meta
    spec = {}
    if p.get("labels"):
        # The labels option is documented to reach the VMI and its pod: they come from the template.
        spec["template"] = {"metadata": {"labels": vmspec.p_labels(p)}}
    strategy = _run_strategy_given(p)
    if strategy:
        spec["runStrategy"] = strategy
        if ((plan.current or {}).get("spec") or {}).get("running") is not None:
            spec["running"] = None
    if spec:
        patch["spec"] = spec
    return patch


def keep_inferred(desired, cur_spec):
    """KubeVirt's VM mutator replaces an inferFromVolume matcher by the inferred name and kind (or drops it
    with the Ignore policy) when the VM is created: an existing VM keeps what was inferred, so the same
    task is unchanged the second time."""
    spec = desired.get("spec") or {}
    for field in ("instancetype", "preference"):
        if not (spec.get(field) or {}).get("inferFromVolume"):
            continue
        if cur_spec.get(field):
            spec[field] = copy.deepcopy(cur_spec[field])
        else:
            spec.pop(field)


def write_vm(client, plan, check_mode):
    """Create or update one VM; sets plan.outcome."""
    current = plan.current
    desired = plan.desired
    if current is None:
        if plan.template_only and not vmspec.memory_defined(desired):
            raise InputError(
                "VirtualMachine %s/%s does not exist and the task gives no memory, instancetype, spec or definition "
                "to create it from; add memory (e.g. 2Gi) or instancetype." % (plan.namespace, plan.name))
        if not vmspec.memory_defined(desired):
            raise InputError("VirtualMachine %s/%s would have no memory: set memory (e.g. 2Gi), an instancetype, or "
                             "spec.domain.memory.guest." % (plan.namespace, plan.name))
        desired["spec"].setdefault("runStrategy", None)
        if desired["spec"]["runStrategy"] is None and desired["spec"].get("running") is None:
            desired["spec"]["runStrategy"] = "Always"
        elif desired["spec"]["runStrategy"] is None:
            desired["spec"].pop("runStrategy")
        plan.outcome = writes.present(client, res.VM, desired, check_mode, current=None, have_current=True)
        return
    cur_spec = current.get("spec") or {}
    keep_inferred(desired, cur_spec)
    if plan.template_only:
        patch = _partial_patch(plan)
        if not patch:
            plan.outcome = writes.Outcome(False, current, current, "none")
            return
        plan.outcome = writes.present(client, res.VM, desired, check_mode, current=current, have_current=True,
                                      partial=patch)
        return
    given = _run_strategy_given(plan.params) or (desired["spec"].get("runStrategy") if plan.params.get("definition")
                                                 else None)
    if given:
        desired["spec"]["runStrategy"] = given
        if cur_spec.get("running") is not None:
            # Converting from the deprecated spec.running: both set is rejected by KubeVirt.
            desired["spec"].pop("running", None)
            conversion = {"spec": {"running": None, "runStrategy": given}}
            if check_mode:
                plan.outcome = writes.present(client, res.VM, desired, True, current=current, have_current=True,
                                              partial=conversion)
                return
            writes.present(client, res.VM, desired, False, current=current, have_current=True, partial=conversion)
    elif cur_spec.get("runStrategy"):
        desired["spec"]["runStrategy"] = cur_spec["runStrategy"]
    elif cur_spec.get("running") is not None:
        desired["spec"].pop("runStrategy", None)
        desired["spec"]["running"] = cur_spec["running"]
    plan.outcome = writes.present(client, res.VM, desired, check_mode, current=current, have_current=True)
    if plan.outcome.changed and not check_mode and vm_active(current):
        before_t = writes.normalize({"spec": cur_spec.get("template")})
        after_t = writes.normalize({"spec": (plan.outcome.after.get("spec") or {}).get("template")})
        if before_t != after_t:
            plan.restart_required = True


def data_volume_templates(vm):
    """Names of the DataVolumes a VM object's dataVolumeTemplates create (owned by the VM)."""
    spec = (vm or {}).get("spec") or {}
    return [((t or {}).get("metadata") or {}).get("name") for t in spec.get("dataVolumeTemplates") or []
            if isinstance(t, dict) and (t.get("metadata") or {}).get("name")]


def settled_check(checks, failures):
    """check() over several VMs' checks ({name: check}) for one wait: done when each VM is done or has
    failed for good. A VM whose check raises WaitFailed (its VMI ended and nothing restarts it), or
    that is in ``failures`` (its VM cannot start, see wait.VmProbe), is noted in ``check.failures``
    and the wait goes on for the others. ``check.update(objects, name)`` checks again only the VM
    an event was about: a fleet's wait sees a few events per VM, and checking every VM on each of
    them grew with the square of the fleet."""
    pending = set(checks)

    def settle(objects, names):
        for name in names:
            try:
                if name in failures or checks[name](objects):
                    pending.discard(name)
                else:
                    pending.add(name)
            except WaitFailed as exc:
                failures[name] = str(exc)
                pending.discard(name)
        return not pending

    def check(objects):
        return settle(objects, list(checks))

    check.update = lambda objects, name: settle(objects, [name] if name in checks else [])
    check.failures = failures
    return check


def by_namespace(plans):
    """{namespace: [plans]}, in the plans' order."""
    out = {}
    for plan in plans:
        out.setdefault(plan.namespace, []).append(plan)
    return out


# -- the vm module -------------------------------------------------------------------------------
class VmRunner(runner.Runner):
    """Runs the vm module for one VM (name) or many (vms)."""

    kind = "VirtualMachine"
    resource = res.VM

    @classmethod
    def before_connect(cls, module):
        mask_inline_secrets(module)

    def run(self):
        plans, wait_error = self.execute()
        return self.outcome(plans, wait_error)

    # plans
    def plans(self):
        p = self.params
        if p.get("vms") is not None:
            if not p["vms"]:
                raise InputError("vms is empty; give at least one VM or use name.")
            secrets = getattr(self.module, "no_log_values", None)
            items = [item_params(p, item, n, VM_ITEM_SPEC, VM_MUTUALLY_EXCLUSIVE, secrets)
                     for n, item in enumerate(p["vms"])]
        else:
            items = [p]
        plans = [Plan(n, item) for n, item in enumerate(items)]
        seen = set()
        for plan in plans:
            prepare(plan, self.client.namespace, self.kind)
            if plan.key in seen:
                raise InputError("VM %s/%s is listed twice in vms." % plan.key)
            seen.add(plan.key)
        return plans

    def fetch_current(self, plans):
        by_ns = by_namespace(plans)
        reads = []
        for ns, group in by_ns.items():
            if len(group) > 3:
                reads.append(("list", ns, group))
            else:
                reads.extend(("get", ns, [plan]) for plan in group)

        def read(entry):
            how, ns, group = entry
            if how == "list":
                try:
                    listing = self.client.list(self.resource, ns)
                except ApiError as exc:
                    raise KubevirtError(writes.explain(exc, "list", "%ss in namespace %s" % (self.kind, ns)))
                found = {o["metadata"]["name"]: o for o in listing.get("items") or []}
                for plan in group:
                    plan.current = found.get(plan.name)
            else:
                plan = group[0]
                try:
                    plan.current = self.client.get_or_none(self.resource, plan.name, ns)
                except ApiError as exc:
                    raise KubevirtError(writes.explain(exc, "read", self.resource.ref(plan.name, ns)))

        for entry, _result, error in parallel.parallel(read, reads):
            if error is not None:
                for plan in entry[2]:
                    plan.error = error

    def being_deleted(self, plans):
        """{namespace: [object]}: the VMs (VMIs) to be present that are being deleted. They are checked and
        created as new ones (their plans forget them), once they have gone (await_deleted)."""
        going = {}
        for plan in plans:
            if plan.error is None and plan.state == "present" and waiter.terminating(plan.current):
                going.setdefault(plan.namespace, []).append(plan.current)
                plan.current = None
        return going

    def await_deleted(self, plans, going):
        for ns, objs in going.items():
            names = {o["metadata"]["name"] for o in objs}
            if all(p.error is not None for p in plans if p.namespace == ns and p.name in names):
                continue   # refused by the checks: nothing to create
            record = waiter.gone_before_create(self.client, self.resource, ns, objs,
                                               self.params["wait_timeout"], self.check_mode)
            if record is not None:
                self.progress.append(record)

    def check_references(self, plans):
        """Before anything is written (kubevirt/preflight.py, one policy for every module): each VM's
        wait_for ip:NAME names one of its networks, and what it names exists (PVCs, DataVolumes, NADs,
        storage classes, instancetypes and preferences, binding plugins). A VM with a problem fails,
        the others go on."""
        conditions = self.wait_conditions()
        wanted, owners = {}, {}
        halted_problems, running = [], 0
        for plan in plans:
            if plan.error is not None or plan.state != "present" or plan.desired is None:
                continue
            owner = self.resource.ref(plan.name, plan.namespace)
            owners[owner] = plan
            only_metadata = plan.template_only and plan.current is not None
            problem = preflight.wait_network_problem(conditions, plan.current if only_metadata else plan.desired,
                                                     owner)
            # wait_for applies to the VMs the task waits for to run: a bulk item left Halted (waited
            # for to be stopped) need not have the network - unless no VM of the task runs at all.
            if run_strategy(plan.desired) == "Halted" or (
                    run_strategy(plan.desired) is None and run_strategy(plan.current) == "Halted"):
                if problem:
                    halted_problems.append((plan, problem))
                problem = None
            else:
                running += 1
            if problem:
                plan.error = InputError(problem)
                continue
            if only_metadata:
                continue  # only labels, annotations or the run strategy change
            in_use = set(preflight.references(plan.current)) if plan.current else set()
            for ref in preflight.references(plan.desired):
                if ref.resource in preflight.SPEC_MATCHERS and ref in in_use:
                    continue  # KubeVirt keeps a ControllerRevision of the instancetype a VM uses already
                wanted.setdefault(ref, []).append(owner)
        if not running:
            for plan, problem in halted_problems:
                plan.error = InputError(problem)
        for owner, text in preflight.check(self.client, wanted, self.check_mode, self.warnings).items():
            if owners[owner].error is None:
                owners[owner].error = KubevirtError(text)

    def write(self, plan):
        if plan.state == "absent":
            if plan.params.get("keep_volumes") and data_volume_templates(plan.current):
                return self.delete_keeping_volumes(plan)
            changed, last = writes.absent(self.client, self.resource, plan.name, plan.namespace, self.check_mode,
                                          current=plan.current, have_current=True)
            plan.outcome = writes.Outcome(changed, plan.current, None, "delete" if changed else "none")
            plan.deleted = last
            return
        write_vm(self.client, plan, self.check_mode)

    def delete_keeping_volumes(self, plan):
        """Delete a VM but keep the DataVolumes of its dataVolumeTemplates (and so their PVCs).

        KubeVirt's way (kubectl delete vm --cascade=orphan): the VM is deleted with propagationPolicy
        Orphan, so the garbage collector removes the VM's ownerReference from its dependents instead of
        deleting them, and KubeVirt never adopts a DataVolume again for a VM being deleted. The other
        dependents are then deleted here: the VM's VMI (with it the virt-launcher pod) and its
        ControllerRevisions.
        """
        vm = plan.current
        uid = (vm.get("metadata") or {}).get("uid")
        ref = self.resource.ref(plan.name, plan.namespace)
        try:
            vmi = self.client.get_or_none(res.VMI, plan.name, plan.namespace)
        except ApiError as exc:
            raise KubevirtError(writes.explain(exc, "read", res.VMI.ref(plan.name, plan.namespace), res.VMI))
        try:
            revisions = self.client.list(res.CONTROLLER_REVISION, plan.namespace).get("items") or []
        except ApiError as exc:
            revisions = []
            self.warnings.append("Could not list the ControllerRevisions of %s (%s): those KubeVirt made for it stay "
                                 "behind once it is deleted; grant list and delete on controllerrevisions (apps)." % (
                                     ref, exc.api_message or exc.reason))
        revisions = [r for r in revisions if owned_by(r, uid)]
        changed, last = writes.absent(self.client, self.resource, plan.name, plan.namespace, self.check_mode,
                                      propagation="Orphan", current=vm, have_current=True)
        plan.outcome = writes.Outcome(changed, vm, None, "delete" if changed else "none")
        plan.deleted = last
        plan.kept = data_volume_templates(vm)
        if not changed or self.check_mode:
            return
        if vmi is not None and owned_by(vmi, uid):
            try:
                self.client.delete(res.VMI, plan.name, plan.namespace, uid=vmi["metadata"].get("uid"))
            except ApiError as exc:
                if exc.status == 403:
                    # KubeVirt stops the VMI of a VM being deleted; the wait (if any) tells whether it did.
                    self.warnings.append("Could not delete VirtualMachineInstance %s/%s (%s); KubeVirt stops it as "
                                         "%s goes." % (plan.namespace, plan.name, exc.api_message or exc.reason, ref))
                elif exc.status != 409:  # 409: the uid precondition failed, it is gone already
                    raise KubevirtError(writes.explain(exc, "delete", res.VMI.ref(plan.name, plan.namespace),
                                                       res.VMI) + " (%s was deleted, its volumes kept)" % ref)
        for revision in revisions:
            meta = revision.get("metadata") or {}
            parallel.read_quiet(lambda meta=meta: self.client.delete(res.CONTROLLER_REVISION, meta.get("name"),
                                                                     plan.namespace, uid=meta.get("uid")))

    def execute(self):
        self.wait_conditions()
        plans = self.plans()
        self.fetch_current(plans)
        going = self.being_deleted(plans)
        self.check_references(plans)
        self.await_deleted(plans, going)
        todo = [p for p in plans if p.error is None]
        for plan, _result, error in parallel.parallel(self.write, todo):
            if error is not None:
                plan.error = error
        wait_error = None
        if self.params.get("wait") and not self.check_mode:
            try:
                self.wait(plans)
            except (WaitTimeout, WaitFailed, KubevirtError) as exc:
                wait_error = exc
        self.check_restart(plans)
        self.refresh_waited(plans)
        self.read_vmis(plans)
        return plans, wait_error

    # waits
    def wait_conditions(self):
        return waiter.parse_wait_for(self.params.get("wait_for"))

    def wait(self, plans):
        ok = [p for p in plans if p.error is None]
        timeout = self.params.get("wait_timeout")
        conditions = self.wait_conditions()
        start = time.monotonic()
        # deleted now, or already being deleted (no change, but the task waits for it to go all the same)
        gone = [p for p in ok if p.state == "absent" and p.outcome and (p.outcome.changed or p.deleted is not None)]
        if gone:
            self.wait_deleted(gone, timeout)
        present_plans = [p for p in ok if p.state == "present" and p.outcome and p.outcome.after]
        first_error = None
        for ns, group in by_namespace(present_plans).items():
            try:
                self.wait_namespace(ns, group, conditions, max(1, timeout - (time.monotonic() - start)))
            except (WaitTimeout, WaitFailed) as exc:
                first_error = first_error or exc
        if first_error is not None:
            raise first_error

    def wait_namespace(self, ns, group, conditions, remaining):
        """Wait for the VMs of one namespace (one watch on their VMIs)."""
        up, down = {}, []
        for plan in group:
            strategy = run_strategy(plan.outcome.after)
            if strategy in ("Always", "RerunOnFailure", "Once"):
                up[plan.name] = strategy
            elif strategy == "Halted":
                down.append(plan.name)
            else:
                self.warnings.append("VM %s/%s has run strategy %s, which starts nothing by itself; not waiting "
                                     "(use vm_power to start it)." % (ns, plan.name, strategy))
        if not up and not down:
            return
        owners = {p.name: (p.outcome.after.get("metadata") or {}).get("uid") for p in group
                  if not self.check_mode}
        probe = waiter.VmProbe(self.client, ns, list(up), owners,
                               before={p.name: p.current for p in group if p.current is not None}) if up else None
        checks = {name: waiter.vmi_check(conditions, [name], True, up, owners) for name in up}
        checks.update({name: waiter.gone_check([name]) for name in down})
        check = settled_check(checks, probe.failures if probe else {})
        names = list(up) + down
        parts = []
        if up:
            parts.append(waiter.describe_conditions(conditions))
        if down:
            parts.append("stopped" if not up else "stopped (%s)" % ", ".join(down))
        description = "%s to be %s" % (waiter.objects_label(self.kind, ns, names), "; ".join(parts))
        rv = waiter.newest_resource_version(p.outcome.after for p in group)
        wait = waiter.Wait(self.client, res.VMI, ns, check, description, remaining, names=names,
                           resource_version=rv, probe=probe, each=checks)
        try:
            record = wait.run()
        except WaitTimeout as exc:
            self.not_settled(group, wait, checks, check.failures, exc)
            if exc.details.get("progress"):
                # recorded here, where the other namespaces' waits are recorded too
                self.progress.append(exc.details.pop("progress"))
            raise
        finally:
            for plan in group:
                if plan.name in wait.objects or plan.name in names:
                    plan.vmi = wait.objects.get(plan.name)
                    plan.waited = True
                seen = (probe.vms if probe else {}).get(plan.name)
                if seen is not None:
                    plan.outcome.after = seen  # what KubeVirt said of the VM while it had no VMI
                    plan.vm_read = True
        failed = [p for p in group if p.name in check.failures]
        for plan in failed:
            plan.wait_error = check.failures[plan.name]
        if failed:
            record["result"] = "failed"
        self.progress.append(record)
        if failed:
            raise WaitFailed(failed[0].wait_error if len(group) == 1 else
                             "%d of %d VirtualMachines in %s cannot start." % (len(failed), len(group), ns))

    def not_settled(self, group, wait, checks, failures, exc):
        """At a wait's timeout, each VM that is not there yet gets its own error (failed: true and msg
        in its results entry); the VMs that are there do not."""
        seconds = round((getattr(exc, "details", None) or {}).get("seconds") or 0)
        for plan in group:
            if plan.name in failures:
                plan.wait_error = failures[plan.name]
                continue
            try:
                if checks[plan.name](wait.objects):
                    continue
            except WaitFailed as own:
                plan.wait_error = str(own)
                continue
            what = "stopped" if run_strategy(plan.outcome.after) == "Halted" else \
                waiter.describe_conditions(self.wait_conditions())
            plan.wait_error = "%s %s/%s is not %s after %ds; last seen: %s." % (
                self.kind, plan.namespace, plan.name, what, seconds, wait.describe(plan.name))

    def wait_deleted(self, plans, timeout):
        start = time.monotonic()
        by_ns = by_namespace(plans)
        for ns, group in by_ns.items():
            names = [p.name for p in group]
            steps = [(self.resource, "%s to be deleted" % waiter.objects_label(self.kind, ns, names))]
            if self.resource is not res.VMI:
                steps.append((res.VMI, "%s to be deleted" % waiter.objects_label("VirtualMachineInstance", ns, names)))
            for resource, description in steps:
                remaining = max(1, timeout - (time.monotonic() - start))
                self.progress.append(waiter.Wait(self.client, resource, ns, waiter.gone_check(names), description,
                                                 remaining, names=names,
                                                 each={n: waiter.gone_check([n]) for n in names}).run())
            remaining = max(1, timeout - (time.monotonic() - start))

            def ours(pod, wanted=frozenset(names)):
                # With several VMs the selector takes in every launcher pod of the namespace: only
                # these VMs' pods are awaited (and named on timeout).
                meta = pod.get("metadata") or {}
                return ((meta.get("labels") or {}).get("vm.kubevirt.io/name") in wanted
                        or (meta.get("annotations") or {}).get("kubevirt.io/domain") in wanted)

            selector = launcher_selector(names[0] if len(names) == 1 else None)
            self.progress.append(waiter.Wait(self.client, res.POD, ns, waiter.gone_check(None),
                                             "the virt-launcher pods of %s to be deleted" % waiter.objects_label(
                                                 self.kind, ns, names),
                                             remaining, label_selector=selector, keep=ours).run())

    def check_restart(self, plans):
        """After a template change on a running VM, read what KubeVirt says (RestartRequired)."""
        pending = [p for p in plans if p.restart_required and p.error is None]
        by_ns = by_namespace(pending)
        for ns, group in by_ns.items():
            generations = {p.name: (p.outcome.after.get("metadata") or {}).get("generation") for p in group}

            timeout = min(operations.RESTART_CHECK_TIMEOUT,
                          self.params.get("wait_timeout") or operations.RESTART_CHECK_TIMEOUT)
            objects, record, late = operations.wait_template_changes(
                self.client, ns, generations, timeout,
                resource_version=waiter.newest_resource_version(p.outcome.after for p in group))
            if record is not None:
                self.progress.append(record)
            for plan in group:
                vm = objects.get(plan.name)
                if plan.name in late:
                    # restart_required stays True, and no live resize is awaited
                    self.warnings.append(operations.unprocessed_note(ns, plan.name, timeout))
                    continue
                if vm is not None:
                    plan.outcome.after = vm
                    plan.restart_required = condition_true(vm, "RestartRequired")
                if plan.restart_required:
                    self.warnings.append("VM %s/%s: the change takes effect at its next restart (RestartRequired); "
                                         "restart it with vm_power." % (ns, plan.name))
        self.wait_live_resize([p for p in pending if p.restart_required is False])

    def wait_live_resize(self, plans):
        """CPU sockets or guest memory of a running VM changed and KubeVirt did not ask for a restart: it
        hot-plugs them (LiveUpdate rollout) through a live migration; wait until the VMI has them."""
        vmis = self.read_each(res.VMI, plans)
        todo = []
        for plan in plans:
            vmi = vmis.get(plan.key)
            plan.live_resize = live_resize_pending(plan.outcome.after, vmi)
            if plan.live_resize:
                plan.vmi = vmi
                todo.append(plan)
        timeout = self.params.get("wait_timeout") or 300
        for ns, group in by_namespace(todo).items():
            try:
                objects, record = operations.wait_live_resize(
                    self.client, ns, {p.name: p.outcome.after for p in group}, timeout,
                    resource_version=waiter.newest_resource_version(p.vmi for p in group))
            except (WaitTimeout, WaitFailed) as exc:
                if exc.details.get("progress"):
                    self.progress.append(exc.details.pop("progress"))
                for plan in group:
                    plan.wait_error = str(exc)
                continue
            self.progress.append(record)
            for plan in group:
                plan.vmi = objects.get(plan.name) or plan.vmi
                plan.waited = True

    def refresh_waited(self, plans):
        """After a wait, re-read VMs that existed before the task: their status (conditions such as
        RestartRequired) predates the wait. A VM created by this task has no stale status."""
        stale = [p for p in plans if p.waited and p.current is not None and p.error is None and p.state == "present"
                 and p.outcome and p.outcome.changed and p.outcome.after and p.restart_required is None]
        found = self.read_each(res.VM, stale)
        for plan in stale:
            if found.get(plan.key):
                plan.outcome.after = found[plan.key]

    def read_vmis(self, plans):
        """Without a wait, read the VMIs of VMs that existed before, for the summary."""
        need = [p for p in plans if p.error is None and not p.waited and p.state == "present" and p.current]
        found = self.read_each(res.VMI, need)
        for plan in need:
            plan.vmi = found.get(plan.key)

    def read_each(self, resource, plans):
        """{(namespace, name): object} of the plans' objects, best effort: a GET where a namespace has
        one plan, a LIST where it has more; the namespaces at the same time."""
        def read(entry):
            ns, group = entry
            if len(group) == 1:
                return {group[0].key: parallel.read_quiet(lambda: self.client.get_or_none(resource, group[0].name, ns))}
            listing = parallel.read_quiet(lambda: self.client.list(resource, ns), {}) or {}
            return {(ns, o["metadata"]["name"]): o for o in listing.get("items") or []}

        found = {}
        for _entry, objects, _error in parallel.parallel(read, list(by_namespace(plans).items())):
            found.update(objects or {})
        return found

    # results
    def result_for(self, plan):
        out = {"name": plan.name, "namespace": plan.namespace, "state": plan.state}
        if plan.error is not None:
            out.update(failed=True, msg=str(plan.error), changed=False)
            return out
        outcome = plan.outcome
        out["changed"] = bool(outcome and outcome.changed)
        out["method"] = outcome.method if outcome else "none"
        if plan.wait_error:
            out.update(failed=True, msg=plan.wait_error)
        if plan.state == "absent":
            if self.params.get("return_objects", True):
                out["vm" if self.kind == "VirtualMachine" else "vmi_object"] = None
            if plan.kept is not None:
                out["kept_data_volumes"] = plan.kept
            if self.diff_mode and outcome and outcome.changed:
                ref = self.resource.ref(plan.name, plan.namespace)
                out["diff"] = dict(diff_of(outcome.before, None), before_header=ref, after_header=ref)
            return out
        after = outcome.after if outcome else None
        if self.diff_mode:
            ref = self.resource.ref(plan.name, plan.namespace)
            out["diff"] = dict(diff_of(outcome.before, outcome.after), before_header=ref, after_header=ref)
        self.summarize(plan, after, out)
        return out

    def summarize(self, plan, after, out):
        vm_for_summary = after
        # After a wait, the VMI it saw is newer than the VM's status as written: its summary comes from
        # the VMI. A VM that has no VMI is described by its own status as read during the wait
        # (Provisioning, a Failure condition, ...), which no VMI can tell.
        if plan.waited and after is not None and (plan.vmi is not None or not plan.vm_read):
            vm_for_summary = copy.deepcopy(after)
            status = vm_for_summary.setdefault("status", {})
            status.pop("printableStatus", None)
            status.pop("ready", None)
        summary = summarize_vm(vm_for_summary, plan.vmi) if after else None
        if self.params.get("return_objects", True):
            out["vm"] = redacted(after)
            out["vmi"] = summarize_vmi(plan.vmi) if plan.vmi else None
        out["summary"] = summary
        out["printable_status"] = summary["status"] if summary else None
        out["ready"] = summary["ready"] if summary else False
        out["ip_address"] = summary["ip_address"] if summary else None
        out["ip_addresses"] = summary["ip_addresses"] if summary else []
        out["node"] = summary["node"] if summary else None
        out["restart_required"] = bool(plan.restart_required or (summary or {}).get("restart_required"))
        if self.kind == "VirtualMachine":
            out["live_resize"] = plan.live_resize

    def outcome(self, plans, wait_error):
        """(result, error) for run_module: one VM's result, or (vms) every VM's in results."""
        results = [self.result_for(p) for p in plans]
        failed = [r for r in results if r.get("failed")]
        changed = any(r.get("changed") for r in results)
        common = dict(changed=changed, progress=self.progress)
        if self.params.get("vms") is not None:
            payload = dict(common, results=results)
            if self.diff_mode:
                payload["diff"] = [r["diff"] for r in results if r.get("diff")]
            if failed or wait_error:
                return payload, KubevirtError(bulk_error(plans, results, wait_error))
            return payload, None
        result = results[0]
        payload = dict(common)
        payload.update({k: v for k, v in result.items() if k not in ("failed", "msg", "before_header")})
        if "diff" in payload:
            payload["diff"] = {"before": payload["diff"]["before"], "after": payload["diff"]["after"]}
        if plans[0].error is not None:
            payload["changed"] = False
            return payload, KubevirtError(result["msg"])
        if wait_error is None and plans[0].wait_error:
            # a wait after the task's own (the live resize) failed or timed out
            return payload, KubevirtError(plans[0].wait_error)
        return payload, wait_error


def bulk_error(plans, results, wait_error):
    """The one sentence of a vms task that did not fully succeed: how many VMs failed to be written,
    how many are not ready (each with its own reason, as in its results entry), and a wait error that
    is no single VM's (a deletion that timed out)."""
    total = len(results)
    sentences = []
    written = [r for p, r in zip(plans, results) if p.error is not None]
    waited = [r for p, r in zip(plans, results) if p.error is None and p.wait_error]
    seconds = (getattr(wait_error, "details", None) or {}).get("seconds")
    late = "not ready after %ds" % round(seconds) if isinstance(wait_error, WaitTimeout) and seconds else "not ready"
    for entries, what in ((written, "failed"), (waited, late)):
        if not entries:
            continue
        parts = ["%s/%s: %s" % (r["namespace"], r["name"], r["msg"].rstrip(".")) for r in entries[:5]]
        more = " | ..." if len(entries) > 5 else ""
        sentences.append("%d of %d VMs %s: %s%s." % (len(entries), total, what, " | ".join(parts), more))
    if wait_error is not None and not waited:
        sentences.append(str(wait_error))
    return " ".join(sentences)


def mask_inline_secrets(module):
    """Cloud-init data written inline in definition or spec (also of vms items) is no no_log option:
    have Ansible mask it in all of the task's output (invocation, messages) as it masks the options."""
    p = module.params
    sources = [p.get("definition"), p.get("spec")] + [i for i in p.get("vms") or [] if isinstance(i, dict)]
    for source in sources:
        module.no_log_values.update(v for v in secret_values(source) if len(v) >= 4)
