# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vm_snapshot module: a VirtualMachineSnapshot of a VM, present or absent, waited for until readyToUse.

A snapshot is named by the task, so a second run finds it and changes nothing (a snapshot of another VM by that
name is an error, never replaced). Before creating, the VM must exist and KubeVirt must be able to snapshot each
of its disks (the VM's status.volumeSnapshotStatuses): a snapshot that silently leaves a disk out could not bring
it back.
"""

from __future__ import annotations

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import parallel, writes
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    ApiError,
    InputError,
    KubevirtError,
    WaitFailed,
    WaitTimeout,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import gates, operations, snapshots
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import spec as vmspec
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import diff_of, redacted

# metav1.Duration as Go's time.ParseDuration reads it (KubeVirt's failureDeadline), e.g. 5m, 1h30m, 90s, 0s


def argument_spec():
    spec = dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str"),
        vm=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        labels=dict(type="dict"),
        failure_deadline=dict(type="str"),
        deletion_policy=dict(type="str", choices=["Delete", "Retain"]),
        allow_excluded_volumes=dict(type="bool", default=False),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
    )
    spec.update(runner.auth_spec())
    return spec


def failure_deadline(value):
    """The option as KubeVirt's Duration: a Go duration (5m, 1h30m, 0s = none) or a number of seconds."""
    if value is None:
        return None
    text = str(value).strip()
    if text.isdigit():
        return "%ss" % text
    return vmspec.check_duration(text, "failure_deadline", "5m, 1h30m, 90s or 0s (no deadline)")


def build(params, name, namespace):
    """The VirtualMachineSnapshot the options describe."""
    meta = {"name": name, "namespace": namespace}
    labels = vmspec.p_labels(params)
    if labels:
        meta["labels"] = labels
    spec = {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": params["vm"]}}
    deadline = failure_deadline(params.get("failure_deadline"))
    if deadline is not None:
        spec["failureDeadline"] = deadline
    if params.get("deletion_policy"):
        spec["deletionPolicy"] = params["deletion_policy"]
    return {"apiVersion": snapshots.API_VERSION, "kind": snapshots.SNAPSHOT.kind, "metadata": meta, "spec": spec}


def ready_check(name, namespace):
    """A wait's check: the snapshot is readyToUse; Failed (KubeVirt's failure deadline) ends it with the reason."""
    ref = snapshots.SNAPSHOT.ref(name, namespace)

    def check(objects):
        snap = objects.get(name)
        if snap is None:
            return False
        st = snap.get("status") or {}
        if st.get("readyToUse"):
            return True
        if st.get("phase") == "Failed":
            failure = next((c for c in st.get("conditions") or [] if c.get("type") == "Failure"), {})
            error = (st.get("error") or {}).get("message")
            raise WaitFailed("%s failed: %s%s; delete it (state: absent) and take it again, with a longer "
                             "failure_deadline if the volumes are slow to snapshot." % (
                                 ref, failure.get("reason") or "phase Failed", " (%s)" % error if error else ""))
        return False
    return check


class VmSnapshotRunner(runner.Runner):
    @classmethod
    def before_connect(cls, module):
        p = module.params
        cls.check_target(p)
        if p["state"] == "present":
            if not p.get("vm"):
                raise InputError("vm is required with state: present (the VirtualMachine to snapshot).")
            cls.check_target(p, "vm")
            failure_deadline(p.get("failure_deadline"))

    def run(self):
        p = self.params
        name, namespace = self.target()
        ref = snapshots.SNAPSHOT.ref(name, namespace)
        try:
            current = self.client.get_or_none(snapshots.SNAPSHOT, name, namespace)
        except ApiError as exc:
            raise KubevirtError(writes.explain(exc, "read", ref, snapshots.SNAPSHOT))
        if p["state"] == "absent":
            source = snapshots.source_name(current)
            if current is not None and p.get("vm") and source != p["vm"]:
                raise KubevirtError("%s is a snapshot of VirtualMachine %s, not %s; not deleting it (leave vm out to "
                                    "delete it whatever its VM)." % (ref, source, p["vm"]))
            return self.absent(name, namespace, current)
        current = waiter.present_unless_going(self.client, snapshots.SNAPSHOT, current, p["wait_timeout"],
                                              self.check_mode, self.progress)
        if current is not None:
            outcome = self.existing(current, ref)
        else:
            self.preflight(namespace)
            outcome = gates.create_gated(self.client, snapshots.SNAPSHOT, build(p, name, namespace), self.check_mode,
                                         ref, "Snapshot")
        after = outcome.after
        wait_error = None
        if p["wait"] and not self.check_mode and after is not None:
            wait = waiter.Wait(self.client, snapshots.SNAPSHOT, namespace, ready_check(name, namespace),
                               "%s to be ready to use" % ref, p["wait_timeout"], names=[name],
                               resource_version=(after.get("metadata") or {}).get("resourceVersion"))
            try:
                self.progress.append(wait.run())
            except (WaitTimeout, WaitFailed) as exc:
                wait_error = exc
            after = wait.objects.get(name) or after
        result = dict(changed=outcome.changed, method=outcome.method, progress=self.progress,
                      snapshot=snapshots.summarize_snapshot(after, self.content(after)),
                      resource=redacted(after))
        if self.diff_mode:
            result["diff"] = diff_of(outcome.before, outcome.after)
        return result, wait_error

    def existing(self, current, ref):
        """A snapshot of this name exists: it is this task's when it is of the same VM (labels may be added)."""
        p = self.params
        source = snapshots.source_name(current)
        if source != p["vm"]:
            raise KubevirtError("%s exists and is a snapshot of VirtualMachine %s, not %s; choose another name, or "
                                "delete it first (state: absent)." % (ref, source, p["vm"]))
        return writes.labels_added(self.client, snapshots.SNAPSHOT, current, vmspec.p_labels(p), self.check_mode)

    def preflight(self, namespace):
        """The VM exists and KubeVirt can snapshot every disk it has (unless the task accepts fewer)."""
        p = self.params
        vm = operations.read_vm(self.client, p["vm"], namespace)
        ref = "VirtualMachine %s/%s" % (namespace, p["vm"])
        vm, record = snapshots.judged_volumes(self.client, vm, p["wait_timeout"])
        if record:
            self.progress.append(record)
        left_out = snapshots.unsnapshottable_volumes(vm)
        if left_out and not p["allow_excluded_volumes"]:
            raise KubevirtError("%s cannot be snapshotted whole: %s%s; put those disks on a storage class that has a "
                                "VolumeSnapshotClass, or set allow_excluded_volumes: true to snapshot it without "
                                "them." % (ref, "; ".join("volume %r: %s" % (v, why) for v, why in left_out),
                                           snapshots.unseen_note(record)))
        if left_out:
            self.warnings.append("The snapshot leaves out volume%s %s of %s (KubeVirt cannot snapshot %s)." % (
                "s" if len(left_out) > 1 else "", ", ".join(v for v, _why in left_out), ref,
                "them" if len(left_out) > 1 else "it"))
        busy = (vm.get("status") or {}).get("snapshotInProgress")
        if busy:
            self.warnings.append("%s has snapshot %s in progress; KubeVirt takes this one after it." % (ref, busy))

    def content(self, snapshot):
        name = ((snapshot or {}).get("status") or {}).get("virtualMachineSnapshotContentName")
        if not name or self.check_mode:
            return None
        namespace = snapshot["metadata"]["namespace"]
        return parallel.read_quiet(lambda: self.client.get_or_none(snapshots.CONTENT, name, namespace))

    def absent(self, name, namespace, current):
        p = self.params
        changed, last = writes.absent(self.client, snapshots.SNAPSHOT, name, namespace, self.check_mode,
                                      current=current, have_current=True)
        wait_error = None
        if last is not None and p["wait"] and not self.check_mode:
            try:
                self.progress.append(waiter.wait_gone(self.client, snapshots.SNAPSHOT, namespace, [name],
                                                      p["wait_timeout"]))
            except WaitTimeout as exc:
                wait_error = exc
        result = dict(changed=changed, method="delete" if changed else "none", progress=self.progress,
                      snapshot=None, resource=None)
        if self.diff_mode:
            result["diff"] = diff_of(last if changed else None, None)
        return result, wait_error
