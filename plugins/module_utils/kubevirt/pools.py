# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KubeVirt's VirtualMachinePool rules (pkg/virt-controller/watch/pool/pool.go, v1.8.4), no module plumbing:
which pools KubeVirt acts on, how it names their VMs, what it reports, when it restarts their VMIs.
"""

from __future__ import annotations

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.selectors import (
    labels_match,
    requirements_text,
    structured_requirements,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import condition_true, vmi_ready

POOL = res.get("VirtualMachinePool")
API_VERSION = "%s/%s" % (POOL.group, POOL.version)
# Run strategies whose VMs do not start by themselves: a wait counts them, it does not wait for Ready.
NOT_STARTED = ("Halted", "Manual")
# pool.go labels each VM and its template (so its VMI) with the ControllerRevision <pool>-<generation>
# of the pool spec it was made from.
REVISION_LABEL = "kubevirt.io/vm-pool-revision-name"


def check_selector_matches(selector, labels, namespace, name):
    """pool.go leaves a pool whose selector does not select its template's labels alone: refuse it."""
    if not labels_match(labels, structured_requirements(selector, "selector")):
        raise InputError("VirtualMachinePool %s/%s: selector %s does not match the VM template's labels %s, so "
                         "KubeVirt would never create its VMs; add the selector's labels to labels." % (
                             namespace, name, requirements_text(structured_requirements(selector)),
                             labels or "(none)"))


def check_vm_names(name, replicas):
    """The VMs are named <pool>-<index>; the last one must still be a valid VM name."""
    last = "%s-%d" % (name, max(replicas - 1, 0))
    if len(last) > 63:
        raise InputError("name %r is too long for a pool of %d: its VM %s would be longer than 63 characters."
                         % (name, replicas, last))


def replicas_of(pool):
    spec = (pool or {}).get("spec") or {}
    return spec.get("replicas", 1)


def pool_check(name, replicas, ready_needed, paused):
    """Wait check: a paused pool has ReplicaPaused=True; otherwise it has ``replicas`` VMs (deleting ones
    count, as in status.replicas) and, when they start by themselves, as many are Ready."""
    def check(objects):
        pool = objects.get(name)
        if pool is None:
            return False
        if paused:
            return condition_true(pool, "ReplicaPaused")
        status = pool.get("status") or {}
        if status.get("replicas", 0) != replicas:
            return False
        return not ready_needed or status.get("readyReplicas", 0) == replicas
    return check


def revision_name(pool):
    """getRevisionName: the ControllerRevision (and VM/VMI label) of the pool's current spec."""
    return "%s-%s" % (pool["metadata"]["name"], pool["metadata"].get("generation"))


def template_of(pool):
    return ((pool or {}).get("spec") or {}).get("virtualMachineTemplate")


def restarts_vmis(before, after):
    """Does KubeVirt restart the running VMIs after this write? pool.go's proactive update (the default,
    unless spec.updateStrategy is opportunistic or unmanaged) deletes every VMI made from an older template."""
    if before is None or template_of(before) == template_of(after):
        return False
    strategy = ((after.get("spec") or {}).get("updateStrategy")) or {}
    return "opportunistic" not in strategy and "unmanaged" not in strategy


def revision_check(revision, replicas):
    """Wait check over a pool's VMIs: ``replicas`` of them made from ``revision`` are ready."""
    def check(objects):
        fresh = [vmi for vmi in objects.values() if not (vmi.get("metadata") or {}).get("deletionTimestamp")
                 and ((vmi.get("metadata") or {}).get("labels") or {}).get(REVISION_LABEL) == revision]
        return sum(1 for vmi in fresh if vmi_ready(vmi)) >= replicas
    return check


def controlled_by(obj, uid):
    """Is the object with uid ``uid`` the controller of ``obj`` (its ownerReference with controller: true)?"""
    return any(ref.get("controller") and ref.get("uid") == uid
               for ref in ((obj.get("metadata") or {}).get("ownerReferences") or []))


def counts(pool):
    status = (pool or {}).get("status") or {}
    return "%d VMs, %d ready" % (status.get("replicas", 0), status.get("readyReplicas", 0))
