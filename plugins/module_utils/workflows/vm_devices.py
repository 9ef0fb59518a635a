# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the vm_volume and vm_nic workflows share: the VM they change (read-modify-write of its
template spec, retried on 409), the RestartRequired check after the change, and the result's base.
"""

from __future__ import annotations

import copy

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import writes
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError, KubevirtError
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import operations
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import diff_of, redacted

ABSENT = "absent"


def devices_of(tspec):
    return tspec.setdefault("domain", {}).setdefault("devices", {})


def named(items, name):
    for item in items or []:
        if item.get("name") == name:
            return item
    return None


def put_named(items, item):
    """Replace the entry of ``items`` with the name of ``item``, or append it (a copy)."""
    for n, existing in enumerate(items):
        if existing.get("name") == item["name"]:
            items[n] = copy.deepcopy(item)
            return
    items.append(copy.deepcopy(item))


def subset(want, have):
    """Everything ``want`` says is in ``have`` (server defaults in ``have`` are fine)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(subset(v, have.get(k)) for k, v in want.items())
    return want == have


class DeviceRunner(runner.Runner):
    """What the vm_volume and vm_nic runners share: the VM they change, and how they change it."""

    name = None
    namespace = None
    ref = None

    def setup(self):
        self.name, self.namespace = self.target("vm")
        self.ref = res.VM.ref(self.name, self.namespace)

    def write_spec(self, vm, mutate):
        """Read-modify-write the VM's template spec (retried on 409); returns (before, after) VMs."""
        before = copy.deepcopy(vm)

        def change(current):
            tspec = current.setdefault("spec", {}).setdefault("template", {}).setdefault("spec", {})
            old = copy.deepcopy(tspec)
            mutate(tspec)
            return tspec != old

        try:
            after, written = self.client.update_with_retry(res.VM, self.name, self.namespace, change,
                                                           dry_run=self.check_mode)
        except ApiError as exc:
            raise KubevirtError(writes.explain(exc, "update", self.ref, res.VM))
        return before, after, written

    def restart_check(self, after, active):
        if not active or self.check_mode:
            return False, after
        required, vm, record, note = operations.restart_required_after(
            self.client, after, min(operations.RESTART_CHECK_TIMEOUT, self.params["wait_timeout"]))
        if record:
            self.progress.append(record)
        if note:
            self.warnings.append(note)
        return required, vm

    def base_result(self, changed, method, before, after):
        result = dict(changed=changed, method=method, vm=redacted(after), progress=self.progress)
        if self.diff_mode:
            result["diff"] = diff_of(before, after)
        return result
