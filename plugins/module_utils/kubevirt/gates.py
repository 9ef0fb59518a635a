# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KubeVirt's feature gates, as its admission webhooks report one that is off.

Exports need the VMExport gate, snapshots, restores and clones the Snapshot gate (both Beta, off unless listed
in the KubeVirt CR's spec.configuration.developerConfiguration.featureGates). The webhook's refusal is turned
into one sentence that names the gate and where to turn it on. Used by vm_export, vm_snapshot, vm_restore and
vm_clone.
"""

from __future__ import annotations

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import writes
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import KubevirtError

# What KubeVirt v1.8.4's admitters say when the gate is off (vmexport, vmsnapshot, vmrestore, vmclone admitters).
REFUSALS = {
    "VMExport": ("vm export feature gate not enabled",),
    "Snapshot": ("snapshot feature gate is not enabled", "snapshot feature gate not enabled",
                 "Snapshot/Restore feature gate not enabled"),
}


def gate_off(exc, ref, gate, needed_by=""):
    """The one sentence for ``exc`` when it is KubeVirt's refusal for ``gate`` being off, else ``exc``."""
    said = next((words for words in REFUSALS[gate] if words in str(exc)), None)
    if said is None:
        return exc
    return KubevirtError("Creating %s failed: KubeVirt's %s feature gate is off%s (its webhook: %s); enable the %s "
                         "feature gate in the KubeVirt CR (spec.configuration.developerConfiguration.featureGates) "
                         "or ask the cluster administrator to." % (ref, gate, needed_by, said, gate))


def create_gated(client, resource, desired, check_mode, ref, gate, needed_by=""):
    """writes.present of a new object whose kind ``gate`` guards; a refusal for the gate is one sentence."""
    try:
        return writes.present(client, resource, desired, check_mode, current=None, have_current=True)
    except KubevirtError as exc:
        raise gate_off(exc, ref, gate, needed_by) from None
