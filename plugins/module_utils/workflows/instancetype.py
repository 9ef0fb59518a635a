# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The instancetype module: KubeVirt's VirtualMachine(Cluster)Instancetype and VirtualMachine(Cluster)Preference
objects (instancetype.kubevirt.io/v1beta1).

The spec comes from the cpu / memory options (instance types) and a raw ``spec`` merged over them; every key
is checked against KubeVirt's schema (kubevirt/instancetype_schema.py) before anything is written. Deleting
one that VMs use is allowed (KubeVirt keeps a copy in a ControllerRevision per VM) but warned about.
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
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import instancetype_schema
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import spec as vmspec
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import diff_of

API_VERSION = "instancetype.kubevirt.io/v1beta1"
KINDS = ("VirtualMachineInstancetype", "VirtualMachineClusterInstancetype", "VirtualMachinePreference",
         "VirtualMachineClusterPreference")
# ControllerRevision labels KubeVirt puts on the copy a VM keeps (pkg/instancetype/revision)
OBJECT_NAME_LABEL = "instancetype.kubevirt.io/object-name"
OBJECT_KIND_LABEL = "instancetype.kubevirt.io/object-kind"

CPU_SPEC = dict(
    guest=dict(type="int"),
    max_sockets=dict(type="int"),
    model=dict(type="str"),
    dedicated_cpu_placement=dict(type="bool"),
    isolate_emulator_thread=dict(type="bool"),
)
MEMORY_SPEC = dict(
    guest=dict(type="str"),
    max_guest=dict(type="str"),
    overcommit_percent=dict(type="int"),
)


def argument_spec():
    spec = dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str"),
        kind=dict(type="str", required=True, choices=list(KINDS)),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        cpu=dict(type="dict", options=CPU_SPEC),
        memory=dict(type="dict", options=MEMORY_SPEC),
        spec=dict(type="dict"),
        labels=dict(type="dict"),
        annotations=dict(type="dict"),
    )
    spec.update(runner.auth_spec())
    return spec


def is_preference(kind):
    return kind.endswith("Preference")


def _positive(value, what):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InputError("%s must be a positive integer, got %r." % (what, value))
    return value


def build_spec(params):
    """The options -> the object's spec (checked against KubeVirt's schema)."""
    kind = params["kind"]
    cpu, memory = params.get("cpu") or {}, params.get("memory") or {}
    given = [k for k in ("cpu", "memory") if any(v is not None for v in (params.get(k) or {}).values())]
    if is_preference(kind) and given:
        raise InputError("%s applies to instance types; a %s takes its preferences (preferredCPUTopology, "
                         "devices, ...) in spec." % (given[0], kind))
    spec = {}
    if not is_preference(kind):
        out_cpu = {}
        if cpu.get("guest") is not None:
            out_cpu["guest"] = _positive(cpu["guest"], "cpu.guest")
        if cpu.get("max_sockets") is not None:
            out_cpu["maxSockets"] = _positive(cpu["max_sockets"], "cpu.max_sockets")
        for option, field in (("model", "model"), ("dedicated_cpu_placement", "dedicatedCPUPlacement"),
                              ("isolate_emulator_thread", "isolateEmulatorThread")):
            if cpu.get(option) is not None:
                out_cpu[field] = cpu[option]
        out_mem = {}
        if memory.get("guest") is not None:
            out_mem["guest"] = vmspec.check_quantity(memory["guest"], "memory.guest", min_bytes=2 ** 20)
        if memory.get("max_guest") is not None:
            out_mem["maxGuest"] = vmspec.check_quantity(memory["max_guest"], "memory.max_guest", min_bytes=2 ** 20)
        if memory.get("overcommit_percent") is not None:
            if not 0 <= memory["overcommit_percent"] <= 100:
                raise InputError("memory.overcommit_percent must be 0-100, got %r." % memory["overcommit_percent"])
            out_mem["overcommitPercent"] = memory["overcommit_percent"]
        if out_cpu:
            spec["cpu"] = out_cpu
        if out_mem:
            spec["memory"] = out_mem
    if params.get("spec"):
        spec = vmspec.deep_merge(spec, copy.deepcopy(params["spec"]))
    section = "preference" if is_preference(kind) else "instancetype"
    unknown = instancetype_schema.unknown_keys(section, spec)
    if unknown:
        raise InputError("spec.%s is not a field of a %s (KubeVirt v1.8 %s spec); check the spelling%s." % (
            unknown[0], kind, API_VERSION, " (also: %s)" % ", ".join("spec." + u for u in unknown[1:4])
            if len(unknown) > 1 else ""))
    if not is_preference(kind):
        missing = [k for k in ("cpu", "memory") if (spec.get(k) or {}).get("guest") in (None, "")]
        if missing:
            raise InputError("A %s needs %s.guest (KubeVirt requires the guest's %s); set %s.guest." % (
                kind, missing[0], "vCPUs" if missing[0] == "cpu" else "memory", missing[0]))
        memory_out = spec.get("memory") or {}
        if memory_out.get("maxGuest") and vmspec.quantity_bytes(memory_out["guest"]) > \
                vmspec.quantity_bytes(memory_out["maxGuest"]):
            raise InputError("memory.guest %s is more than memory.max_guest %s."
                             % (memory_out["guest"], memory_out["maxGuest"]))
    return spec


def build_object(params, name, namespace):
    resource = res.BY_KIND[params["kind"]]
    meta = {"name": name}
    if resource.namespaced:
        meta["namespace"] = namespace
    labels = vmspec.p_labels(params)
    if labels:
        meta["labels"] = labels
    annotations = vmspec.p_annotations(params)
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": API_VERSION, "kind": params["kind"], "metadata": meta, "spec": build_spec(params)}


class InstancetypeRunner(runner.Runner):
    reports_progress = False

    def run(self):
        p = self.params
        resource = res.BY_KIND[p["kind"]]
        name = res.check_name(p["name"], "name", max_len=253)
        namespace = res.check_namespace(p.get("namespace") or self.client.namespace) if resource.namespaced else None
        if not resource.namespaced and p.get("namespace"):
            self.warnings.append("namespace is ignored: a %s is cluster-wide." % p["kind"])
        if p["state"] == "absent":
            return self.absent(resource, name, namespace)
        desired = build_object(p, name, namespace)
        ref = resource.ref(name, namespace)
        try:
            current = self.client.get_or_none(resource, name, namespace)
        except ApiError as exc:
            raise KubevirtError(writes.explain(exc, "read", ref, resource))
        current = waiter.present_unless_going(self.client, resource, current, waiter.GONE_BEFORE_CREATE_TIMEOUT,
                                              self.check_mode, self.progress)
        outcome = writes.present(self.client, resource, desired, self.check_mode, current=current, have_current=True)
        result = dict(changed=outcome.changed, method=outcome.method, object=outcome.after)
        if outcome.changed and current is not None:
            users = self.users(name, namespace)
            if users:
                self.warnings.append("%s is used by VM%s %s: each keeps the copy it took (a ControllerRevision), so "
                                     "the change reaches new VMs only." % (
                                         ref, "s" if len(users) > 1 else "", ", ".join(users)))
        if self.diff_mode:
            result["diff"] = diff_of(outcome.before, outcome.after)
        return result, None

    def absent(self, resource, name, namespace):
        ref = resource.ref(name, namespace)
        changed, last = writes.absent(self.client, resource, name, namespace, self.check_mode)
        users = self.users(name, namespace) if changed else []
        if users:
            self.warnings.append("%s is still used by VM%s %s: they run from the copy KubeVirt keeps (a "
                                 "ControllerRevision), but a VM that names it and has no copy yet can't start "
                                 "(FailedFindInstancetype / FailedFindPreference)." % (
                                     ref, "s" if len(users) > 1 else "", ", ".join(users)))
        result = dict(changed=changed, method="delete" if changed else "none", object=None, used_by=users)
        if self.diff_mode:
            result["diff"] = diff_of(last if changed else None, None)
        return result, None

    def users(self, name, namespace):
        """'ns/vm' of the VMs that name this object or keep a ControllerRevision of it (best effort: what the
        credentials may list; cluster-wide kinds are looked for in every namespace)."""
        kind = self.params["kind"]
        field = "preference" if is_preference(kind) else "instancetype"
        where = namespace  # None lists every namespace

        def revisions():
            selector = "%s=%s,%s=%s" % (OBJECT_NAME_LABEL, name, OBJECT_KIND_LABEL, kind)
            return self.client.list(res.CONTROLLER_REVISION, where, label_selector=selector).get("items") or []

        def vms():
            return self.client.list(res.VM, where).get("items") or []

        found = set()
        for cr in parallel.read_quiet(revisions, []) or []:
            meta = cr.get("metadata") or {}
            for owner in meta.get("ownerReferences") or []:
                if owner.get("kind") == "VirtualMachine":
                    found.add("%s/%s" % (meta.get("namespace"), owner.get("name")))
        default_kind = "VirtualMachineCluster" + ("Preference" if field == "preference" else "Instancetype")
        for vm in parallel.read_quiet(vms, []) or []:
            matcher = (vm.get("spec") or {}).get(field) or {}
            if matcher.get("name") == name and (matcher.get("kind") or default_kind) == kind:
                meta = vm.get("metadata") or {}
                found.add("%s/%s" % (meta.get("namespace"), meta.get("name")))
        return sorted(found)
