"""NIC hot-plug and hot-unplug with the LiveUpdate VM rollout strategy (KubeVirt >= 1.1).

* pkg/network/vmliveupdate/restart.go (IsRestartRequired): which template changes of a running
  VM's interfaces/networks need a restart. Adding an interface does not; removing one without
  the hot-unplug flow (`state: absent`), or changing an existing one (other than its state), does.
* pkg/network/controllers (the VM controller's network synchronizer): interfaces marked absent
  that the VMI status no longer reports leave the VM template and the VMI spec
  (ClearDetachedInterfaces); new bridge/SR-IOV interfaces of the template are added to the VMI
  spec, and `state` changes are copied to it (applyDynamicIfaceRequestOnVMI).
* pkg/network/migration (the evaluator behind the VMI's `MigrationRequired` condition): a
  secondary interface in the VMI spec that the VMI does not report yet (hot-plug), or an absent
  one still reported by Multus only (hot-unplug), needs the VM to move to a new virt-launcher pod:
  SR-IOV at once, bridge after DynamicNetworkControllerGracePeriod (15 s, time for the Multus
  dynamic networks controller, which the lab does not have, to plug it in place).
"""
from .util import deep, dig

ABSENT = "absent"
DYNAMIC_NETWORK_CONTROLLER_GRACE = 15.0
MIGRATION_REQUIRED = "MigrationRequired"
REASON_PENDING = "AutoMigrationPending"
REASON_LIVE_UPDATE = "AutoMigrationDueToLiveUpdate"


def _ifaces(spec):
    return dig(spec, "domain", "devices", "interfaces", default=[]) or []


def _nets(spec):
    return (spec or {}).get("networks") or []


def _by_name(items):
    return {i.get("name"): i for i in items}


def _without_state(iface):
    out = dict(iface or {})
    out.pop("state", None)
    return out


def is_restart_required(vm, vmi):
    """vmliveupdate.IsRestartRequired (NAD reference live update off)."""
    tspec = dig(vm, "spec", "template", "spec", default={}) or {}
    desired_ifaces, current_ifaces = _by_name(_ifaces(tspec)), _by_name(_ifaces(vmi.get("spec")))
    for name, cur in current_ifaces.items():
        if name not in desired_ifaces or _without_state(desired_ifaces[name]) != _without_state(cur):
            return True
    desired_nets, current_nets = _by_name(_nets(tspec)), _by_name(_nets(vmi.get("spec")))
    pod_desired = any(n.get("pod") is not None for n in desired_nets.values())
    pod_current = any(n.get("pod") is not None for n in current_nets.values())
    if pod_desired and not pod_current:
        return True
    for name, cur in current_nets.items():
        if desired_nets.get(name) != cur:
            return True
    return False


def clear_detached(ifaces, nets, status_names):
    """ClearDetachedInterfaces: absent interfaces the status no longer shows go, with their networks."""
    kept = [i for i in ifaces if i.get("state") != ABSENT or i.get("name") in status_names]
    names = {i.get("name") for i in kept}
    return kept, [n for n in nets if n.get("name") in names]


def apply_dynamic(vm_ifaces, vm_nets, vmi_ifaces, vmi_nets):
    """applyDynamicIfaceRequestOnVMI: (interfaces, networks) of the VMI spec after the hot-plug requests."""
    ifaces, nets = deep(vmi_ifaces), deep(vmi_nets)
    current = _by_name(ifaces)
    vm_networks = _by_name(vm_nets)
    for iface in vm_ifaces:
        cur = current.get(iface.get("name"))
        if cur is None:
            if iface.get("state") != ABSENT and (iface.get("bridge") is not None or iface.get("sriov") is not None):
                if iface["name"] in vm_networks:
                    nets.append(deep(vm_networks[iface["name"]]))
                ifaces.append(deep(iface))
        elif iface.get("state") != cur.get("state") and cur.get("state") != ABSENT:
            if iface.get("state") is None:
                cur.pop("state", None)
            else:
                cur["state"] = iface["state"]
    return ifaces, nets


def secondary_interfaces(vmi):
    nets = _by_name(_nets(vmi.get("spec")))
    return [i for i in _ifaces(vmi.get("spec"))
            if dig(nets.get(i.get("name")), "multus") and not dig(nets.get(i.get("name")), "multus", "default")]


def migration_requirement(vmi):
    """None, 'immediate' or 'pending' (shouldVMIBeMarkedForAutoMigration), from the VMI's spec and status."""
    statuses = _by_name(dig(vmi, "status", "interfaces", default=[]) or [])
    for iface in secondary_interfaces(vmi):
        st = statuses.get(iface.get("name"))
        if iface.get("state") != ABSENT and st is None:
            return "immediate" if iface.get("sriov") is not None else "pending"
        if iface.get("state") == ABSENT and st is not None:
            sources = [s.strip() for s in (st.get("infoSource") or "").split(",")]
            if "multus-status" in sources and "domain" not in sources:
                return "pending"
    return None


def same_list(a, b):
    return (a or []) == (b or [])
