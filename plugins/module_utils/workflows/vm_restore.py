# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vm_restore module: a VirtualMachineRestore of a snapshot onto its VM or onto a new VM, waited for.

KubeVirt restores only onto a VM that does not run. This task never stops a VM by surprise: with stop_vm (false
by default) it stops a running target through virt-api's stop - with the caller's own permission, so a caller
who may not stop the VM gets the API's refusal - and starts it again afterwards (start_vm). Everything that would
make KubeVirt refuse or wait (snapshot missing or not ready, the target another existing VM, the target running)
is checked before the first write. A completed restore of the same name, snapshot and VM is left alone.
"""

from __future__ import annotations

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import parallel, writes
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    ApiError,
    InputError,
    KubevirtError,
    WaitFailed,
    WaitTimeout,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import gates, operations, snapshots
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import diff_of, redacted

# pkg/storage/snapshot/restore.go: errorRestoreToExistingTarget
EXISTING_TARGET = "restore source and restore target are different but restore target already exists"


def argument_spec():
    spec = dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str"),
        snapshot=dict(type="str", required=True),
        vm=dict(type="str"),
        stop_vm=dict(type="bool", default=False),
        start_vm=dict(type="bool"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
    )
    spec.update(runner.auth_spec())
    return spec


def build(name, namespace, snapshot, target):
    return {"apiVersion": snapshots.API_VERSION, "kind": snapshots.RESTORE.kind,
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": target},
                     "virtualMachineSnapshotName": snapshot}}


def complete_check(name, namespace):
    ref = snapshots.RESTORE.ref(name, namespace)

    def check(objects):
        restore = objects.get(name)
        if restore is None:
            return False
        summary = snapshots.summarize_restore(restore)
        if summary["complete"]:
            return True
        if summary["failed"]:
            raise WaitFailed("%s failed: %s." % (ref, (summary["message"] or "no reason given").rstrip(".")))
        return False
    return check


class VmRestoreRunner(runner.Runner):
    @classmethod
    def before_connect(cls, module):
        p = module.params
        cls.check_target(p)
        cls.check_target(p, "snapshot")
        if p.get("vm"):
            cls.check_target(p, "vm")
        if p.get("start_vm") and not p.get("stop_vm"):
            raise InputError("start_vm applies with stop_vm: true only (it says whether to start the VM the task "
                             "stopped).")

    def run(self):
        p = self.params
        name, namespace = self.target()
        ref = snapshots.RESTORE.ref(name, namespace)
        snap = self.ready_snapshot(p["snapshot"], namespace)
        source = snapshots.source_name(snap)
        target = p.get("vm") or source
        try:
            current = self.client.get_or_none(snapshots.RESTORE, name, namespace)
        except ApiError as exc:
            raise KubevirtError(writes.explain(exc, "read", ref, snapshots.RESTORE))
        current = waiter.present_unless_going(self.client, snapshots.RESTORE, current, p["wait_timeout"],
                                              self.check_mode, self.progress)
        result = dict(changed=False, method="none", vm_stopped=False, vm_started=False, progress=self.progress)
        if current is not None:
            spec = current.get("spec") or {}
            have = (spec.get("virtualMachineSnapshotName"), (spec.get("target") or {}).get("name"))
            if have != (p["snapshot"], target):
                raise KubevirtError("%s exists and restores snapshot %s onto VirtualMachine %s, not snapshot %s onto "
                                    "%s; choose another name, or delete it first."
                                    % (ref, have[0], have[1], p["snapshot"], target))
            after, wait_error = self.wait(current, name, namespace) if not snapshots.summarize_restore(
                current)["complete"] else (current, None)
            return self.finish(result, current, after, wait_error, new_vm=False)
        vm = self.target_vm(target, namespace, snap)
        vmi = operations.read_vmi(self.client, target, namespace) if vm is not None else None
        running = vmi is not None
        if running and not p["stop_vm"]:
            raise KubevirtError("VirtualMachine %s/%s is running and KubeVirt restores only a stopped VM; stop it "
                                "first (virtops.kubevirt.vm_power state: stopped), or set stop_vm: true to let this "
                                "task stop it and start it again after the restore." % (namespace, target))
        desired = build(name, namespace, p["snapshot"], target)
        # KubeVirt's admission first (a dry run: the Snapshot gate, another restore of the target in progress), so
        # that a refusal never comes after the VM was stopped for it.
        gates.create_gated(self.client, snapshots.RESTORE, desired, True, ref, "Snapshot")
        if self.check_mode:
            result.update(changed=True, method="create", vm_stopped=running,
                          vm_started=running and p.get("start_vm") is not False)
            return self.finish(result, None, desired, None, new_vm=vm is None)
        if running:
            self.stop(vm, vmi, namespace, target)
            result["vm_stopped"] = True
        outcome = gates.create_gated(self.client, snapshots.RESTORE, desired, False, ref, "Snapshot")
        result.update(changed=True, method=outcome.method)
        after, wait_error = (self.wait(outcome.after, name, namespace) if p["wait"] or running
                             else (outcome.after, None))
        if running and wait_error is None and p.get("start_vm") is not False:
            operations.call(self.client, res.VM, namespace, target, "start", {}, action="start")
            result["vm_started"] = True
            if p["wait"]:
                try:
                    _objects, record = waiter.wait_vmis(self.client, namespace, [target], ["ready"],
                                                        p["wait_timeout"])
                    self.progress.append(record)
                except (WaitTimeout, WaitFailed) as exc:
                    wait_error = exc
        return self.finish(result, None, after, wait_error, new_vm=vm is None)

    def ready_snapshot(self, name, namespace):
        ref = snapshots.SNAPSHOT.ref(name, namespace)
        try:
            snap = self.client.get_or_none(snapshots.SNAPSHOT, name, namespace)
        except ApiError as exc:
            raise KubevirtError(writes.explain(exc, "read", ref, snapshots.SNAPSHOT))
        if snap is None:
            raise KubevirtError("%s does not exist; check snapshot and namespace (take one with "
                                "virtops.kubevirt.vm_snapshot)." % ref)
        summary = snapshots.summarize_snapshot(snap)
        if summary["phase"] == "Failed":
            raise KubevirtError("%s failed and can't be restored: %s." % (ref, summary["error"] or "phase Failed"))
        if not summary["ready_to_use"]:
            raise KubevirtError("%s is not ready to use (phase %s); wait for it (virtops.kubevirt.vm_snapshot with "
                                "wait: true) before restoring it." % (ref, summary["phase"]))
        return snap

    def target_vm(self, target, namespace, snap):
        """The target VM, or None (KubeVirt creates it); an existing VM that is not the snapshot's source is
        refused as KubeVirt refuses it."""
        try:
            vm = self.client.get_or_none(res.VM, target, namespace)
        except ApiError as exc:
            raise KubevirtError(writes.explain(exc, "read", res.VM.ref(target, namespace), res.VM))
        source_uid = (snap.get("status") or {}).get("sourceUID")
        if vm is not None and source_uid and vm["metadata"].get("uid") != source_uid:
            raise KubevirtError("Can't restore %s onto VirtualMachine %s/%s: %s (KubeVirt restores onto the "
                                "snapshot's own VM or a new one); name a VM that does not exist." % (
                                    snapshots.SNAPSHOT.ref(snap["metadata"]["name"], namespace), namespace, target,
                                    EXISTING_TARGET))
        return vm

    def stop(self, vm, vmi, namespace, target):
        verify = operations.took_effect(self.client, "stop", namespace, target, vm, vmi)
        operations.call(self.client, res.VM, namespace, target, "stop", {}, action="stop", verify=verify)
        self.progress.append(waiter.wait_gone(self.client, res.VMI, namespace, [target],
                                              self.params["wait_timeout"]))

    def wait(self, restore, name, namespace):
        wait = waiter.Wait(self.client, snapshots.RESTORE, namespace, complete_check(name, namespace),
                           "%s to be complete" % snapshots.RESTORE.ref(name, namespace), self.params["wait_timeout"],
                           names=[name], resource_version=(restore.get("metadata") or {}).get("resourceVersion"))
        try:
            self.progress.append(wait.run())
        except (WaitTimeout, WaitFailed) as exc:
            return wait.objects.get(name) or restore, exc
        return wait.objects.get(name) or restore, None

    def finish(self, result, before, after, wait_error, new_vm):
        result["restore"] = snapshots.summarize_restore(after)
        result["new_vm"] = new_vm
        result["resource"] = redacted(after) if not self.check_mode else None
        if not self.check_mode and after is not None:
            target = (after.get("spec") or {}).get("target", {}).get("name")
            namespace = after["metadata"]["namespace"]
            result["vm"] = redacted(parallel.read_quiet(lambda: self.client.get_or_none(res.VM, target, namespace)))
        if self.diff_mode:
            result["diff"] = diff_of(before, after if result["changed"] else before)
        return result, wait_error
