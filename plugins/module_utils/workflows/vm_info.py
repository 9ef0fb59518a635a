# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vm_info module: find, optionally wait, summarize (vmi_info runs the same for VMIs).

Kept apart from vm.py so an info task loads (and compiles) only what reading needs; the waiter is
imported only when a wait is asked for.
"""

from __future__ import annotations

import copy

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import writes
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError, InputError, KubevirtError
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.selectors import labels_match, parse_label_selector
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import redacted
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import owner_vm
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.summary import summaries_for, summarize_vmi

INFO_SPEC = dict(
    name=dict(type="str"),
    namespace=dict(type="str"),
    label_selectors=dict(type="list", elements="str", default=[]),
    field_selectors=dict(type="list", elements="str", default=[]),
    summary=dict(type="bool", default=True),
)


def argument_spec(kind="VirtualMachine"):
    spec = copy.deepcopy(INFO_SPEC)
    if kind == "VirtualMachine":
        spec["include_standalone_vmis"] = dict(type="bool", default=False)
        spec["running"] = dict(type="bool")
        spec["snapshots"] = dict(type="bool", default=False)
    spec.update(copy.deepcopy(runner.WAIT_ARG_SPEC))
    spec.update(runner.auth_spec())
    return spec


def _find(client, resource, params, namespace):
    name = params.get("name")
    scope = " in namespace %s" % namespace if namespace else ""
    ref = resource.ref(name, namespace) if name else "%ss%s" % (resource.kind, scope)
    try:
        if name:
            obj = client.get_or_none(resource, name, namespace)
            # Read by name, the selectors are ours to apply (all must match, as when listing).
            selected = obj and all(labels_match((obj.get("metadata") or {}).get("labels"), s, "label_selectors")
                                   for s in params.get("label_selectors") or [])
            return [obj] if selected else []
        listing = client.list(resource, namespace, label_selector=",".join(params.get("label_selectors") or []) or None,
                              field_selector=",".join(params.get("field_selectors") or []) or None)
        return listing.get("items") or []
    except ApiError as exc:
        raise KubevirtError(writes.explain(exc, "read", ref, resource))


class VmInfoRunner(runner.Runner):
    """Runs vm_info: find, optionally wait, summarize (vmi_info runs it for VMIs)."""

    kind = "VirtualMachine"
    resource = res.VM

    def run(self):
        client, params, kind, resource = self.client, self.params, self.kind, self.resource
        progress = self.progress
        namespace = params.get("namespace") or (client.namespace if params.get("name") else None)
        if namespace:
            res.check_namespace(namespace)
        if params.get("name"):
            res.check_name(params["name"], "name")
        for selector in params.get("label_selectors") or []:
            parse_label_selector(selector, "label_selectors")
        if params.get("running") is not None and not params.get("wait"):
            raise InputError("running is used only with wait: true (it says what to wait for).")
        if params.get("snapshots") and not params.get("summary"):
            raise InputError("snapshots adds each VM's snapshots to its summary; it needs summary: true.")
        wait_error = None
        if params.get("wait"):
            from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
            from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import WaitFailed, WaitTimeout

            conditions = waiter.parse_wait_for(params.get("wait_for"))
            objects = _find(client, resource, params, namespace)
            names_by_ns = {}
            if params.get("name") and not objects:
                names_by_ns[namespace] = [params["name"]]
            for obj in objects:
                names_by_ns.setdefault(obj["metadata"]["namespace"], []).append(obj["metadata"]["name"])
            for ns, names in names_by_ns.items():
                stopped = kind == "VirtualMachine" and params.get("running") is False
                check = waiter.gone_check(names) if stopped else waiter.vmi_check(
                    conditions, names, owned_by_vm=kind == "VirtualMachine")
                probe = None
                if kind == "VirtualMachine" and not stopped:
                    # While a VM has no VMI, the VM says why (a Failure condition, Provisioning, ...).
                    probe = waiter.VmProbe(client, ns, names)
                    check = probe.check(check)
                what = "stopped" if stopped else waiter.describe_conditions(conditions)
                wait = waiter.Wait(client, res.VMI, ns, check, "%s to be %s" % (waiter.objects_label(kind, ns, names),
                                                                                what),
                                   params["wait_timeout"], names=names, probe=probe,
                                   each={n: waiter.gone_check([n]) if stopped else waiter.vmi_check(
                                       conditions, [n], owned_by_vm=kind == "VirtualMachine") for n in names})
                try:
                    progress.append(wait.run())
                except (WaitTimeout, WaitFailed) as exc:
                    wait_error = exc
                    break
        result = dict(changed=False, progress=progress)
        if params.get("summary"):
            summaries, got = summaries_for(client, kind, namespace, name=params.get("name"),
                                           find=lambda: _find(client, resource, params, namespace))
            objects = got["objects"]
        else:
            objects = _find(client, resource, params, namespace)
            summaries, got = [], {}
        result["resources"] = [redacted(o) for o in objects]
        result["summaries"] = summaries
        if kind == "VirtualMachine" and params.get("snapshots"):
            self.add_snapshots(summaries, objects, namespace)
        if kind == "VirtualMachine" and params.get("include_standalone_vmis"):
            vmis = got.get("vmis")
            if vmis is None or params.get("label_selectors") or params.get("field_selectors"):
                # The selectors select the stand-alone VMIs by their own labels, on the server; the VMIs read
                # for the VMs' summaries are every VMI of the scope.
                vmis = _find(client, res.VMI, params, namespace)
            standalone = [v for v in vmis if not owner_vm(v)]
            result["vmis"] = [redacted(v) for v in standalone]
            result["vmi_summaries"] = [summarize_vmi(v, got.get("pods"), got.get("events")) for v in standalone]
        return result, wait_error

    def add_snapshots(self, summaries, objects, namespace):
        """Each VM's summary gets ``snapshots``: its VirtualMachineSnapshots, newest first (one list request)."""
        from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import snapshots

        ref = "VirtualMachineSnapshots" + (" in namespace %s" % namespace if namespace else "")
        try:
            listing = self.client.list(snapshots.SNAPSHOT, namespace) if objects else {}
        except ApiError as exc:
            raise KubevirtError(writes.explain(exc, "read", ref, snapshots.SNAPSHOT))
        found = snapshots.by_vm(listing.get("items") or [])
        for summary in summaries:
            summary["snapshots"] = found.get((summary.get("namespace"), summary.get("name")), [])
