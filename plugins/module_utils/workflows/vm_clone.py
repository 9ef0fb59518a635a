# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vm_clone module: a VirtualMachineClone (clone.kubevirt.io) of a VM or a VM snapshot into a new VM,
waited for until Succeeded.

KubeVirt's rules (pkg/virt-controller/watch/clone, vmclone-admitter.go): the Snapshot feature gate must be on
("snapshot feature gate is not enabled"); a clone of a VM takes a temporary snapshot of it, so every PVC and
DataVolume volume of the VM must be snapshottable (its status.volumeSnapshotStatuses); the clone restores that
snapshot into the target VM with new MAC addresses (unless given), a new SMBIOS serial and firmware UUID, and
without the labels and annotations its filters drop. KubeVirt would restore into an existing VM of the target
name (and fail); this module refuses that before anything is written.
"""

from __future__ import annotations

import time

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import writes
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    ApiError,
    InputError,
    KubevirtError,
    WaitFailed,
    WaitTimeout,
    one_line,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import gates, snapshots
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import spec as vmspec
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import diff_of
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import condition

CLONE = res.BY_KIND["VirtualMachineClone"]
SNAPSHOT = res.BY_KIND["VirtualMachineSnapshot"]
API_VERSION = "%s/%s" % (CLONE.group, CLONE.version)
SOURCES = {"vm": ("VirtualMachine", "kubevirt.io", res.VM),
           "snapshot": ("VirtualMachineSnapshot", "snapshot.kubevirt.io", SNAPSHOT)}
FILTER_OPTIONS = {"label_filters": "labelFilters", "annotation_filters": "annotationFilters"}
TEMPLATE_FILTER_OPTIONS = {"template_label_filters": "labelFilters", "template_annotation_filters": "annotationFilters"}


def argument_spec():
    spec = dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        vm=dict(type="str"),
        snapshot=dict(type="str"),
        target=dict(type="str"),
        new_macs=dict(type="dict"),
        new_smbios_serial=dict(type="str"),
        label_filters=dict(type="list", elements="str"),
        annotation_filters=dict(type="list", elements="str"),
        template_label_filters=dict(type="list", elements="str"),
        template_annotation_filters=dict(type="list", elements="str"),
        labels=dict(type="dict"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
    )
    spec.update(runner.auth_spec())
    return spec


MUTUALLY_EXCLUSIVE = [("vm", "snapshot")]


# -- builders -------------------------------------------------------------------------------------
def check_filters(filters, option):
    """vmclone-admitter.go validateFilters: `!` only at the start, `*` only at the end."""
    for item in filters or []:
        text = str(item)
        if text == "!":
            raise InputError("%s: a lone ! is not a filter; write !KEY to leave KEY out." % option)
        if len(text) > 1 and "!" in text[1:]:
            raise InputError("%s: filter %r may have ! only at its start (!KEY leaves KEY out)." % (option, text))
        if len(text) > 1 and "*" in text[:-1]:
            raise InputError("%s: filter %r may have * only at its end (a prefix such as app.kubernetes.io/*)." % (
                option, text))
    return filters


def source_of(params):
    given = [key for key in SOURCES if params.get(key)]
    if not given:
        raise InputError("state=present needs what to clone: vm or snapshot.")
    return given[0], params[given[0]]


def check_macs(macs):
    for iface, mac in (macs or {}).items():
        if mac and not vmspec.is_mac(mac):
            raise InputError("new_macs.%s %r is not a MAC address (such as 02:00:00:aa:bb:01)." % (iface, mac))
    return macs


def build(params, name, namespace):
    option, source_name = source_of(params)
    kind, group, _resource = SOURCES[option]
    if not params.get("target"):
        raise InputError("target (the name of the new VM) is required with state=present.")
    target = res.check_name(params["target"], "target")
    if option == "vm" and target == source_name:
        raise InputError("target %s is the source VM's own name; give the new VM another name." % target)
    spec = {"source": {"apiGroup": group, "kind": kind, "name": res.check_name(source_name, option)},
            "target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": target}}
    if check_macs(params.get("new_macs")):
        # With dashes: KubeVirt turns them into restore patches, and its restore webhook (validatePatches) refuses
        # a patch whose value has a colon ("patch format is not valid - one ":" expected ...").
        spec["newMacAddresses"] = {str(k): str(v).replace(":", "-") for k, v in params["new_macs"].items()}
    if params.get("new_smbios_serial"):
        spec["newSMBiosSerial"] = params["new_smbios_serial"]
    for option_name, field in FILTER_OPTIONS.items():
        if params.get(option_name) is not None:
            spec[field] = [str(f) for f in check_filters(params[option_name], option_name)]
    template = {}
    for option_name, field in TEMPLATE_FILTER_OPTIONS.items():
        if params.get(option_name) is not None:
            template[field] = [str(f) for f in check_filters(params[option_name], option_name)]
    if template:
        spec["template"] = template
    meta = {"name": name, "namespace": namespace}
    if params.get("labels"):
        meta["labels"] = {str(k): str(v) for k, v in params["labels"].items()}
    return {"apiVersion": API_VERSION, "kind": "VirtualMachineClone", "metadata": meta, "spec": spec}


SPEC_KEYS = ("source", "target", "newMacAddresses", "newSMBiosSerial", "labelFilters", "annotationFilters", "template")


def spec_differences(want, have):
    out = []
    have = have or {}
    for key in SPEC_KEYS:
        wanted, current = want.get(key), have.get(key)
        if key in ("source", "target") and current:
            current = {k: v for k, v in current.items() if k in ("apiGroup", "kind", "name") and v}
        if (wanted or None) != (current or None):
            out.append("%s is %s, the task asks %s" % (key, _show(current), _show(wanted)))
    return out


def _show(value):
    if isinstance(value, dict) and "kind" in value:
        return "%s %s" % (value.get("kind"), value.get("name"))
    return "unset" if value in (None, {}, []) else str(value)


# -- summary and wait -----------------------------------------------------------------------------
def summarize(clone):
    if not clone:
        return None
    meta, spec, status = clone.get("metadata") or {}, clone.get("spec") or {}, clone.get("status") or {}
    ready = condition(clone, "Ready") or {}
    progressing = condition(clone, "Progressing") or {}
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "source": {k: v for k, v in (spec.get("source") or {}).items() if k in ("kind", "name")},
        "target": status.get("targetName") or (spec.get("target") or {}).get("name"),
        "phase": status.get("phase") or "Pending",
        "succeeded": status.get("phase") == "Succeeded",
        "reason": ready.get("reason"),
        "pending": progressing.get("status") == "False" and progressing.get("reason") == "Pending",
        "snapshot": status.get("snapshotName"),
        "restore": status.get("restoreName"),
    }


def succeeded_check(name, namespace, record, clock=time.monotonic, start=None):
    """check() for the wait: Succeeded ends it, Failed fails it; each phase (and a pending reason) is recorded."""
    start = clock() if start is None else start
    record.setdefault("phases", [])

    def check(objects):
        clone = objects.get(name)
        if clone is None:
            return False
        summary = summarize(clone)
        seen = {"phase": summary["phase"]}
        if summary["pending"] or summary["phase"] == "Failed":
            seen["reason"] = one_line(summary["reason"] or "", 300)
        phases = record["phases"]
        if not phases or {k: phases[-1].get(k) for k in ("phase", "reason")} != \
                {"phase": seen["phase"], "reason": seen.get("reason")}:
            phases.append(dict(seen, seconds=round(max(0.0, clock() - start), 2)))
        if summary["phase"] == "Succeeded":
            return True
        if summary["phase"] == "Failed":
            raise WaitFailed("VirtualMachineClone %s/%s failed: %s." % (namespace, name, (
                summary["reason"] or "no reason given").rstrip(".")))
        return False

    return check


# -- the module -----------------------------------------------------------------------------------
class VmCloneRunner(runner.Runner):
    @classmethod
    def before_connect(cls, module):
        p = module.params
        cls.check_target(p)
        if p["state"] == "present":
            build(p, p["name"], p.get("namespace") or "default")

    def run(self):
        p = self.params
        name, namespace = self.target()
        ref = CLONE.ref(name, namespace)
        try:
            current = self.client.get_or_none(CLONE, name, namespace)
        except ApiError as exc:
            raise KubevirtError(writes.explain(exc, "read", ref, CLONE))
        if p["state"] == "absent":
            return self.absent(name, namespace, current)
        current = waiter.present_unless_going(self.client, CLONE, current, p["wait_timeout"], self.check_mode,
                                              self.progress)
        desired = build(p, name, namespace)
        if current is None:
            self.preflight(desired, namespace)
            outcome = self.create(desired, ref)
        else:
            diffs = spec_differences(desired["spec"], current.get("spec"))
            if diffs:
                raise KubevirtError("%s exists with another spec (%s); a clone is done once: delete it (state: absent) "
                                    "or give this clone another name." % (ref, "; ".join(diffs)))
            outcome = writes.labels_added(self.client, CLONE, current, desired["metadata"].get("labels"),
                                          self.check_mode)
        after = outcome.after
        error = None
        if p["wait"] and not self.check_mode and after is not None:
            try:
                after = self.wait(name, namespace, after)
            except (WaitTimeout, WaitFailed) as exc:
                error = exc
                after = self.client.get_or_none(CLONE, name, namespace) or after
        result = dict(changed=outcome.changed, method=outcome.method, clone=summarize(after),
                      target_vm=desired["spec"]["target"]["name"], progress=self.progress)
        if self.diff_mode:
            result["diff"] = diff_of(outcome.before, outcome.after)
        return result, error

    def preflight(self, desired, namespace):
        """Before the clone is made: the target name is free, the source exists and can be snapshotted."""
        target = desired["spec"]["target"]["name"]
        source = desired["spec"]["source"]
        option = "vm" if source["kind"] == "VirtualMachine" else "snapshot"
        resource = SOURCES[option][2]
        try:
            existing = self.client.get_or_none(res.VM, target, namespace)
            found = self.client.get_or_none(resource, source["name"], namespace)
        except ApiError as exc:
            raise KubevirtError(writes.explain(exc, "read", res.VM.ref(target, namespace), res.VM))
        if existing is not None:
            raise KubevirtError("VirtualMachine %s/%s exists already, so the clone can't create it; choose another "
                                "target or delete that VM first." % (namespace, target))
        if found is None:
            raise KubevirtError("%s %s/%s does not exist, so there is nothing to clone (%s: %s)." % (
                resource.kind, namespace, source["name"], option, source["name"]))
        if option == "vm":
            self.check_vm(found, desired["spec"].get("newMacAddresses") or {})

    def check_vm(self, vm, macs):
        """The VM's PVC and DataVolume volumes can be snapshotted (KubeVirt would keep the clone pending), and
        new_macs names interfaces it has."""
        vm, record = snapshots.judged_volumes(self.client, vm, self.params["wait_timeout"])
        if record:
            self.progress.append(record)
        spec = (((vm.get("spec") or {}).get("template") or {}).get("spec") or {})
        problems = ["%s (%s)" % (name, one_line(reason, 200)) for name, reason in snapshots.unsnapshottable_volumes(vm)]
        ref = "VirtualMachine %s/%s" % (vm["metadata"].get("namespace"), vm["metadata"]["name"])
        if problems:
            raise KubevirtError("%s can't be cloned: KubeVirt clones through a snapshot and these volumes can't be "
                                "snapshotted: %s%s." % (ref, "; ".join(problems), snapshots.unseen_note(record)))
        ifaces = [i.get("name") for i in ((spec.get("domain") or {}).get("devices") or {}).get("interfaces") or []]
        unknown = sorted(set(macs) - set(ifaces))
        if unknown:
            raise KubevirtError("new_macs names %s, which %s has no interface of (its interfaces: %s)." % (
                ", ".join(unknown), ref, ", ".join(ifaces) or "none"))

    def create(self, desired, ref):
        return gates.create_gated(self.client, CLONE, desired, self.check_mode, ref, "Snapshot",
                                  ", and clones need it")

    def wait(self, name, namespace, after):
        record = {}
        wait = waiter.Wait(self.client, CLONE, namespace, succeeded_check(name, namespace, record),
                           "VirtualMachineClone %s/%s to be Succeeded" % (namespace, name), self.params["wait_timeout"],
                           names=[name], resource_version=(after.get("metadata") or {}).get("resourceVersion"))
        try:
            progress = wait.run()
        except (WaitTimeout, WaitFailed) as exc:
            exc.details.setdefault("progress", dict(waited_for=wait.description, result="failed"))
            exc.details["progress"]["phases"] = record.get("phases")
            raise
        progress["phases"] = record["phases"]
        self.progress.append(progress)
        return wait.objects.get(name) or after

    def absent(self, name, namespace, current):
        changed, last = writes.absent(self.client, CLONE, name, namespace, self.check_mode, current=current,
                                      have_current=True)
        error = None
        if last is not None and self.params["wait"] and not self.check_mode:
            try:
                self.progress.append(waiter.wait_gone(self.client, CLONE, namespace, [name],
                                                      self.params["wait_timeout"]))
            except WaitTimeout as exc:
                error = exc
        result = dict(changed=changed, method="delete" if changed else "none", clone=None, progress=self.progress)
        if self.diff_mode:
            result["diff"] = diff_of(last if changed else None, None)
        return result, error
