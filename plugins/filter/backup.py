# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the vm_backup role: which VMs to snapshot, which of the role's snapshots to prune, which to
restore. They read vm_info's summaries with ``snapshots: true`` (each VM's snapshots, newest first)."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from ansible.errors import AnsibleFilterError

from ansible_collections.virtops.kubevirt.plugins.filter.health import plain

# The label the role puts on its snapshots; its value is the backup set (vm_backup_set). Only snapshots
# with this label and value are ever pruned or restored by VM name.
SET_LABEL = "virtops.kubevirt/backup-set"
STAMP = re.compile(r"^\d{14}$")
# A snapshot name is <vm>-<stamp>: the VM name cut so that it stays a 63-character DNS label.
VM_PART = 63 - 15
# Phases of a snapshot that is still being made (it is neither pruned nor counted as a backup).
IN_PROGRESS = ("", "Pending", "InProgress")


def _summaries(summaries, what):
    summaries = plain(summaries)
    if not isinstance(summaries, list):
        raise AnsibleFilterError("%s: expected vm_info's summaries (a list), got %r" % (what, type(summaries).__name__))
    for summary in summaries:
        if not isinstance(summary, dict) or "snapshots" not in summary:
            raise AnsibleFilterError("%s: a summary without snapshots; read the VMs with virtops.kubevirt.vm_info "
                                     "summary: true, snapshots: true" % what)
        for snap in summary["snapshots"] or []:
            if "labels" not in snap:
                raise AnsibleFilterError(
                    "%s: vm_info lists snapshot %s without its labels, so the role cannot tell its own snapshots "
                    "from others; this needs a vm_info whose snapshots carry labels" % (what, snap.get("name")))
    return summaries


def _ours(summary, backup_set):
    """The summary's snapshots the role made for ``backup_set``, newest first (vm_info's order)."""
    return [s for s in summary.get("snapshots") or [] if (s.get("labels") or {}).get(SET_LABEL) == backup_set]


def _parse(stamp):
    if not stamp:
        return None
    try:
        return datetime.strptime(str(stamp).replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


def snapshot_name(vm, stamp):
    """<vm>-<stamp>, the VM part cut (and its trailing dashes dropped) so the name is a DNS label."""
    if not STAMP.match(str(stamp)):
        raise AnsibleFilterError("vm_backup_plan: stamp must be 14 digits (YYYYmmddHHMMSS), got %r" % (stamp,))
    return "%s-%s" % (vm[:VM_PART].rstrip("-"), stamp)


def vm_backup_plan(summaries, backup_set, stamp, min_interval=0, now=None):
    """{create: [{namespace, vm, name}], recent: [{namespace, vm, snapshot, creation_time}]}: a snapshot for
    each VM, except those whose newest snapshot of the set is younger than ``min_interval`` seconds (or still
    being made)."""
    summaries = _summaries(summaries, "vm_backup_plan")
    now = now if now is not None else datetime.now(timezone.utc)
    if isinstance(now, str):
        now = _parse(now)
    min_interval = int(min_interval or 0)
    create, recent = [], []
    for summary in summaries:
        ours = [s for s in _ours(summary, backup_set) if s.get("phase") != "Failed"]
        newest = ours[0] if ours else None
        if newest is not None and min_interval > 0:
            made = _parse(newest.get("creation_time"))
            if made is None or (now - made).total_seconds() < min_interval:
                recent.append({"namespace": summary["namespace"], "vm": summary["name"], "snapshot": newest["name"],
                               "creation_time": newest.get("creation_time")})
                continue
        create.append({"namespace": summary["namespace"], "vm": summary["name"],
                       "name": snapshot_name(summary["name"], stamp)})
    return {"create": create, "recent": recent}


def vm_backup_prune(summaries, backup_set, keep, made=None):
    """{delete: [{namespace, vm, name}], kept: [{namespace, vm, name}]}: of each VM's snapshots of the set
    (plus ``made``, the ones this run made, newest), the newest ``keep`` ready ones stay; the others go,
    except those still being made."""
    summaries = _summaries(summaries, "vm_backup_prune")
    keep = int(keep)
    if keep < 1:
        raise AnsibleFilterError("vm_backup_prune: keep must be 1 or more, got %d" % keep)
    made_by_vm = {}
    for item in plain(made or []):
        made_by_vm.setdefault((item["namespace"], item["vm"]), []).append(item["name"])
    delete, kept = [], []
    for summary in summaries:
        key = (summary["namespace"], summary["name"])
        ours = _ours(summary, backup_set)
        listed = {s["name"] for s in ours}
        # What this run made and the listing does not show yet (check mode) counts as the newest, ready.
        fresh = [{"name": n, "phase": "Succeeded", "ready_to_use": True} for n in made_by_vm.get(key, [])
                 if n not in listed]
        ready = 0
        for snap in fresh + ours:
            entry = {"namespace": key[0], "vm": key[1], "name": snap["name"]}
            if snap.get("ready_to_use") and ready < keep:
                ready += 1
                kept.append(entry)
            elif (snap.get("phase") or "") in IN_PROGRESS:
                kept.append(entry)
            else:
                delete.append(entry)
    return {"delete": delete, "kept": kept}


def vm_backup_latest(summaries, backup_set, vm, namespace=None):
    """The name of the newest ready snapshot of the set of VM ``vm``; an error when it has none."""
    summaries = _summaries(summaries, "vm_backup_latest")
    for summary in summaries:
        if summary["name"] == vm and (namespace is None or summary["namespace"] == namespace):
            for snap in _ours(summary, backup_set):
                if snap.get("ready_to_use"):
                    return snap["name"]
            raise AnsibleFilterError("VM %s/%s has no ready snapshot of backup set %s to restore" % (
                summary["namespace"], vm, backup_set))
    raise AnsibleFilterError("no VM %s%s to restore" % ("%s/" % namespace if namespace else "", vm))


class FilterModule(object):
    """The public filters (one documentation file each: plugins/filter/<name>.yml)."""

    def filters(self):
        return {
            "vm_backup_plan": vm_backup_plan,
            "vm_backup_prune": vm_backup_prune,
            "vm_backup_latest": vm_backup_latest,
        }
