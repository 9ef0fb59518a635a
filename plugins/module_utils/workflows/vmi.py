# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vmi module: the vm module's steps (plan, check references, write, wait, summarize) for one
stand-alone VirtualMachineInstance, whose spec can't change after creation.
"""

from __future__ import annotations

import copy

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import writes
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    InputError,
    KubevirtError,
    WaitFailed,
    WaitTimeout,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import spec as vmspec
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import redacted
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.summary import summarize_vmi
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.vm import Plan, VmRunner, prepare

VMI_ITEM_SPEC = dict(
    name=dict(type="str"),
    namespace=dict(type="str"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    definition=dict(type="dict"),
)
VMI_ITEM_SPEC.update(copy.deepcopy(vmspec.SPEC_ARG_SPEC))
for _key in ("instancetype", "preference"):
    VMI_ITEM_SPEC.pop(_key)

VMI_MUTUALLY_EXCLUSIVE = [("definition", key) for key in vmspec.TEMPLATE_OPTIONS if key in VMI_ITEM_SPEC]


def argument_spec():
    spec = copy.deepcopy(VMI_ITEM_SPEC)
    spec.update(copy.deepcopy(runner.WAIT_ARG_SPEC))
    spec.update(runner.auth_spec())
    return spec


class VmiRunner(VmRunner):
    kind = "VirtualMachineInstance"
    resource = res.VMI

    def plans(self):
        plan = Plan(0, self.params)
        prepare(plan, self.client.namespace, self.kind)
        return [plan]

    def write(self, plan):
        if plan.state == "absent":
            return VmRunner.write(self, plan)
        plan.outcome = writes.present(self.client, res.VMI, plan.desired, self.check_mode, current=plan.current,
                                      have_current=True)

    def execute(self):
        self.wait_conditions()
        plans = self.plans()
        plan = plans[0]
        if plan.state == "present" and plan.desired and not vmspec.memory_defined(plan.desired):
            raise InputError("VirtualMachineInstance %s/%s would have no memory: set memory (e.g. 2Gi) or "
                             "spec.domain.memory.guest." % plan.key)
        self.fetch_current(plans)
        self.check_references(plans)
        if plan.error is None:
            try:
                self.write(plan)
            except KubevirtError as exc:
                plan.error = exc
        wait_error = None
        if self.params.get("wait") and not self.check_mode and plan.error is None:
            try:
                self.wait_vmi(plan)
            except (WaitTimeout, WaitFailed, KubevirtError) as exc:
                wait_error = exc
        if plan.vmi is None and plan.outcome and plan.outcome.after and plan.state == "present":
            plan.vmi = plan.outcome.after
        return plans, wait_error

    def wait_vmi(self, plan):
        timeout = self.params.get("wait_timeout")
        if plan.state == "absent":
            if plan.outcome and plan.outcome.changed:
                self.wait_deleted([plan], timeout)
            return
        conditions = self.wait_conditions()
        wait = waiter.Wait(self.client, res.VMI, plan.namespace,
                           waiter.vmi_check(conditions, [plan.name], owned_by_vm=False),
                           "VirtualMachineInstance %s/%s to be %s" % (
                               plan.namespace, plan.name, waiter.describe_conditions(conditions)),
                           timeout, names=[plan.name], resource_version=waiter.newest_resource_version([plan.outcome.after]))
        try:
            self.progress.append(wait.run())
        finally:
            plan.vmi = wait.objects.get(plan.name) or plan.vmi
            plan.waited = True

    def summarize(self, plan, after, out):
        vmi = plan.vmi or after
        summary = summarize_vmi(vmi) if vmi else None
        out["vmi_object"] = redacted(vmi)
        out["summary"] = summary
        out["phase"] = (summary or {}).get("phase")
        out["ready"] = bool((summary or {}).get("ready"))
        out["ip_address"] = (summary or {}).get("ip_address")
        out["ip_addresses"] = (summary or {}).get("ip_addresses") or []
        out["node"] = (summary or {}).get("node")
