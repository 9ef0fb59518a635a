# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vm_pool module: a VirtualMachinePool (pool.kubevirt.io) built from the vm module's options.

The VM template is what ``kubevirt/spec.py`` builds for the vm module (``build_vm``): its labels and
annotations become ``spec.virtualMachineTemplate.metadata``, its spec the template's spec. KubeVirt's
pool controller (pkg/virt-controller/watch/pool) names the VMs ``<pool>-<index>`` and ignores a pool
whose selector does not match the template's labels, so that is refused before anything is written.
"""

from __future__ import annotations

import copy

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
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.selectors import (
    requirements_text,
    structured_requirements,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import spec as vmspec
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import pools, preflight
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import diff_of, redacted
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.summary import summarize_vm

POOL = pools.POOL
# The label KubeVirt's pool examples select by; the default selector and the VMs' label.
POOL_LABEL = "kubevirt.io/vmpool"

EXPRESSION_SPEC = dict(
    key=dict(type="str", required=True, no_log=False),
    operator=dict(type="str", required=True, choices=["In", "NotIn", "Exists", "DoesNotExist"]),
    values=dict(type="list", elements="str"),
)
SELECTOR_SPEC = dict(
    match_labels=dict(type="dict"),
    match_expressions=dict(type="list", elements="dict", options=EXPRESSION_SPEC),
)


def argument_spec():
    spec = dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        replicas=dict(type="int"),
        selector=dict(type="dict", options=SELECTOR_SPEC),
        paused=dict(type="bool"),
        run_strategy=dict(type="str", choices=vmspec.RUN_STRATEGIES),
        pool_labels=dict(type="dict"),
        pool_annotations=dict(type="dict"),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=300),
    )
    spec.update(copy.deepcopy(vmspec.SPEC_ARG_SPEC))
    spec.update(runner.auth_spec())
    return spec


# -- building (pure) ---------------------------------------------------------------------------------
def default_selector(name):
    return {"matchLabels": {POOL_LABEL: name}}


def build_selector(option):
    """The selector option -> a metav1.LabelSelector (None when not given)."""
    if not option:
        return None
    out = {}
    if option.get("match_labels"):
        out["matchLabels"] = vmspec.string_map(option["match_labels"], "selector.match_labels")
    expressions = []
    for expr in option.get("match_expressions") or []:
        entry = {"key": expr["key"], "operator": expr["operator"]}
        if expr.get("values"):
            entry["values"] = list(expr["values"])
        expressions.append(entry)
    if expressions:
        out["matchExpressions"] = expressions
    if not out:
        raise InputError("selector is empty; give selector.match_labels or selector.match_expressions "
                         "(an empty selector would take in every VM of the namespace).")
    structured_requirements(out, "selector")
    return out


def template_options_given(params):
    return any(params.get(key) is not None for key in vmspec.TEMPLATE_OPTIONS)


def pool_metadata(params, name, namespace):
    meta = {"name": name, "namespace": namespace}
    labels = vmspec.string_map(params.get("pool_labels"), "pool_labels")
    if labels:
        meta["labels"] = labels
    annotations = vmspec.string_map(params.get("pool_annotations"), "pool_annotations")
    if annotations:
        meta["annotations"] = annotations
    return meta


def vm_template(params, name, namespace, selector, run_strategy):
    """spec.virtualMachineTemplate from the vm module's options: build_vm's VM without name and
    namespace. The default selector's label is added to the VMs' labels (and their template's)."""
    vm_params = dict(params)
    labels = dict(params.get("labels") or {})
    if selector == default_selector(name):
        labels[POOL_LABEL] = name
    vm_params["labels"] = labels or None
    vm = vmspec.build_vm(vm_params, name, namespace, run_strategy=run_strategy)
    if not vmspec.memory_defined(vm):
        raise InputError("VirtualMachinePool %s/%s: the VM template has no memory; set memory (e.g. 2Gi), "
                         "an instancetype, or spec.domain.memory.guest." % (namespace, name))
    meta = {k: v for k, v in vm["metadata"].items() if k in ("labels", "annotations")}
    return {"metadata": meta, "spec": vm["spec"]}


def desired_pool(params, name, namespace, current):
    """The whole pool to apply. Options not given keep the pool's current values (replicas, paused,
    selector, run strategy), so applying never resets what the task did not mention."""
    cur_spec = (current or {}).get("spec") or {}
    selector = build_selector(params.get("selector")) or cur_spec.get("selector") or default_selector(name)
    cur_tspec = ((cur_spec.get("virtualMachineTemplate") or {}).get("spec") or {})
    strategy = params.get("run_strategy") or cur_tspec.get("runStrategy") or "Always"
    template = vm_template(params, name, namespace, selector, strategy)
    pools.check_selector_matches(selector, (template.get("metadata") or {}).get("labels"), namespace, name)
    replicas = params.get("replicas")
    if replicas is None:
        replicas = cur_spec.get("replicas", 1)
    spec = {"replicas": replicas, "selector": selector}
    paused = params.get("paused") if params.get("paused") is not None else cur_spec.get("paused")
    if paused is not None:
        spec["paused"] = paused
    spec["virtualMachineTemplate"] = template
    return {"apiVersion": pools.API_VERSION, "kind": POOL.kind, "metadata": pool_metadata(params, name, namespace),
            "spec": spec}


def partial_patch(params, name, namespace, current):
    """The merge patch for a task on an existing pool that gives no template options: replicas, paused,
    selector, the pool's labels and annotations, and the VMs' labels, annotations and run strategy."""
    patch = {}
    meta = pool_metadata(params, name, namespace)
    meta.pop("name")
    meta.pop("namespace")
    if meta:
        patch["metadata"] = meta
    spec = {}
    for option, field in (("replicas", "replicas"), ("paused", "paused")):
        if params.get(option) is not None:
            spec[field] = params[option]
    selector = build_selector(params.get("selector"))
    if selector is not None:
        spec["selector"] = {"matchLabels": selector.get("matchLabels"),
                            "matchExpressions": selector.get("matchExpressions")}
    template = {}
    labels, annotations = vmspec.p_labels(params), vmspec.p_annotations(params)
    if labels or annotations:
        template["metadata"] = {k: v for k, v in (("labels", labels), ("annotations", annotations)) if v}
    tspec = {}
    if params.get("run_strategy"):
        tspec["runStrategy"] = params["run_strategy"]
    if labels:
        tspec["template"] = {"metadata": {"labels": labels}}
    if tspec:
        template["spec"] = tspec
    if template:
        spec["virtualMachineTemplate"] = template
    if spec:
        patch["spec"] = spec
    cur_spec = current.get("spec") or {}
    cur_template = cur_spec.get("virtualMachineTemplate") or {}
    merged_labels = dict((cur_template.get("metadata") or {}).get("labels") or {}, **(labels or {}))
    pools.check_selector_matches(selector or cur_spec.get("selector") or {}, merged_labels, namespace, name)
    return patch


# -- the module -------------------------------------------------------------------------------------
class VmPoolRunner(runner.Runner):
    """Runs vm_pool: build, check, write, wait, list the pool's VMs."""

    @classmethod
    def before_connect(cls, module):
        p = module.params
        cls.check_target(p)
        if p.get("replicas") is not None and p["replicas"] < 0:
            raise InputError("replicas must be 0 or more, got %d." % p["replicas"])
        if p["state"] == "absent":
            given = sorted(k for k in ("replicas", "selector", "paused", "run_strategy") if p.get(k) is not None)
            if given or template_options_given(p):
                raise InputError("state=absent deletes the pool and its VMs; %s do not apply to it." % (
                    ", ".join(given) or "the VM template options"))
        build_selector(p.get("selector"))

    def run(self):
        name, namespace = self.target()
        ref = POOL.ref(name, namespace)
        try:
            current = self.client.get_or_none(POOL, name, namespace)
        except ApiError as exc:
            raise KubevirtError(writes.explain(exc, "read", ref, POOL))
        if self.params["state"] == "absent":
            return self.absent(name, namespace, current)
        current = waiter.present_unless_going(self.client, POOL, current, self.params["wait_timeout"],
                                              self.check_mode, self.progress)
        return self.present(name, namespace, ref, current)

    # present
    def present(self, name, namespace, ref, current):
        p = self.params
        pools.check_vm_names(name, p["replicas"] if p.get("replicas") is not None else pools.replicas_of(current))
        if current is None or template_options_given(p):
            if current is None and not template_options_given(p):
                raise InputError("%s does not exist and the task gives no VM template to create it from; add "
                                 "memory (e.g. 2Gi) or instancetype, and disks." % ref)
            desired = desired_pool(p, name, namespace, current)
            self.check_references(desired, ref)
            outcome = writes.present(self.client, POOL, desired, self.check_mode, current=current, have_current=True)
        else:
            patch = partial_patch(p, name, namespace, current)
            if not patch:
                outcome = writes.Outcome(False, current, current, "none")
            else:
                outcome = writes.present(self.client, POOL, {"metadata": {"name": name, "namespace": namespace}},
                                         self.check_mode, current=current, have_current=True, partial=patch)
        pool = outcome.after
        wait_error = None
        if p["wait"] and not self.check_mode:
            if pools.restarts_vmis(outcome.before, pool):
                wait_error = self.wait_restarts(pool)
            if wait_error is None:
                pool, wait_error = self.wait_ready(pool)
        result = dict(changed=outcome.changed, method=outcome.method, pool=redacted(pool),
                      vms=self.pool_vms(pool) if not (self.check_mode and current is None) else [],
                      progress=self.progress)
        if self.diff_mode:
            result["diff"] = diff_of(outcome.before, outcome.after)
        return result, wait_error

    def check_references(self, desired, ref):
        """What the VM template names (PVCs, NADs, storage classes, instancetypes...) exists
        (kubevirt/preflight.py, as the vm module checks a VM)."""
        template = desired["spec"]["virtualMachineTemplate"]
        vm = {"kind": "VirtualMachine", "metadata": {"namespace": desired["metadata"]["namespace"]},
              "spec": template["spec"]}
        preflight.require(self.client, preflight.references(vm), str(ref), self.check_mode, self.warnings)

    def wait_ready(self, pool):
        name, namespace = pool["metadata"]["name"], pool["metadata"]["namespace"]
        replicas = pools.replicas_of(pool)
        spec = pool.get("spec") or {}
        strategy = ((spec.get("virtualMachineTemplate") or {}).get("spec") or {}).get("runStrategy")
        paused = bool(spec.get("paused"))
        ready_needed = strategy not in pools.NOT_STARTED
        if paused:
            what = "VirtualMachinePool %s/%s to be paused" % (namespace, name)
        else:
            what = "VirtualMachinePool %s/%s to have %d %sVM%s" % (
                namespace, name, replicas, "ready " if ready_needed else "", "" if replicas == 1 else "s")

        def diagnose(objects):
            seen = objects.get(name)
            events = waiter.fetch_warning_events(self.client, namespace, [name])
            return "it has %s" % pools.counts(seen), events

        wait = waiter.Wait(self.client, POOL, namespace, pools.pool_check(name, replicas, ready_needed, paused), what,
                           self.params["wait_timeout"], names=[name],
                           resource_version=(pool.get("metadata") or {}).get("resourceVersion"), diagnose=diagnose)
        try:
            self.progress.append(wait.run())
        except (WaitTimeout, WaitFailed) as exc:
            return wait.objects.get(name) or pool, exc
        return wait.objects.get(name) or pool, None

    def wait_restarts(self, pool):
        """After a template change: until KubeVirt has restarted the VMIs with it, the pool's counts are
        those of the old VMIs. Waits for ``replicas`` ready VMIs of the new revision (<pool>-<generation>)."""
        spec = pool.get("spec") or {}
        strategy = ((spec.get("virtualMachineTemplate") or {}).get("spec") or {}).get("runStrategy")
        replicas = pools.replicas_of(pool)
        if spec.get("paused") or strategy in pools.NOT_STARTED or not replicas:
            return None
        name, namespace = pool["metadata"]["name"], pool["metadata"]["namespace"]
        revision = pools.revision_name(pool)
        what = "VirtualMachinePool %s/%s's VMIs to be restarted with the new template (%d ready of revision %s)" % (
            namespace, name, replicas, revision)
        wait = waiter.Wait(self.client, res.VMI, namespace, pools.revision_check(revision, replicas), what,
                           self.params["wait_timeout"],
                           label_selector="%s=%s" % (pools.REVISION_LABEL, revision))
        try:
            self.progress.append(wait.run())
        except (WaitTimeout, WaitFailed) as exc:
            return exc
        return None

    def pool_vms(self, pool, with_vmis=True):
        """Summaries of the VMs the pool controls (its selector selects them and it is their controller),
        by name."""
        if not pool:
            return []
        namespace = pool["metadata"]["namespace"]
        selector = requirements_text(structured_requirements((pool.get("spec") or {}).get("selector")))
        uid = pool["metadata"].get("uid")

        def read(resource):
            return self.client.list(resource, namespace, label_selector=selector).get("items") or []

        try:
            vms = [vm for vm in read(res.VM) if uid and pools.controlled_by(vm, uid)]
        except ApiError as exc:
            raise KubevirtError(writes.explain(exc, "list", "the VirtualMachines of %s" % POOL.ref(
                pool["metadata"]["name"], namespace)))
        vmis = {}
        if with_vmis and vms:
            listed = parallel.read_quiet(lambda: read(res.VMI), []) or []
            vmis = {v["metadata"]["name"]: v for v in listed}
        vms.sort(key=lambda vm: vm["metadata"]["name"])
        return [summarize_vm(vm, vmis.get(vm["metadata"]["name"])) for vm in vms]

    # absent
    def absent(self, name, namespace, current):
        vms = self.pool_vms(current, with_vmis=False) if current else []
        # Foreground: the pool goes once its VMs are gone (they are its dependents).
        changed, last = writes.absent(self.client, POOL, name, namespace, self.check_mode, propagation="Foreground",
                                      current=current, have_current=True)
        wait_error = None
        if last is not None and self.params["wait"] and not self.check_mode:
            rv = (last or {}).get("metadata", {}).get("resourceVersion")
            try:
                self.progress.append(waiter.wait_gone(self.client, POOL, namespace, [name], self.params["wait_timeout"],
                                                      resource_version=rv))
                if vms:
                    self.progress.append(waiter.wait_gone(self.client, res.VM, namespace,
                                                          [vm["name"] for vm in vms], self.params["wait_timeout"]))
            except (WaitTimeout, WaitFailed) as exc:
                wait_error = exc
        result = dict(changed=changed, method="delete" if changed else "none", pool=None, vms=vms,
                      progress=self.progress)
        if self.diff_mode:
            result["diff"] = diff_of(current if changed else None, None)
        return result, wait_error
