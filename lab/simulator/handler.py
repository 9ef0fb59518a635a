"""virt-handler's view of a running guest: interfaces, volumes, guest agent data, migratability."""
import json

from . import guest
from .launcher import LAUNCHER_IMAGE, claim_names, guest_memory, pod_iface_name
from .network import mac_for
from .util import dig, format_bytes, stable_uuid

NOT_SHARED = ("cannot migrate VMI: PVC {} is not shared, live migration requires that all PVCs must be "
              "shared (using ReadWriteMany access mode)")
BRIDGE_ON_POD = ("cannot migrate VMI which does not use masquerade, bridge with "
                 "kubevirt.io/allow-pod-bridge-network-live-migration VM annotation or a migratable plugin "
                 "to connect to the pod network")


def datavolumes_of(sim, vmi):
    ns = vmi["metadata"]["namespace"]
    out = []
    for vol in dig(vmi, "spec", "volumes", default=[]):
        name = dig(vol, "dataVolume", "name")
        if name:
            dv = sim.cache.dvs.get_ns(ns, name)
            if dv:
                out.append(dv)
    return out


def interfaces(sim, vmi, pod, agent):
    """status.interfaces as virt-handler/virt-controller report them: the pod network's interface,
    and a secondary interface only once the launcher pod has it (Multus network-status): one
    hot-plugged into a running VM appears after a migration to a pod that has it. An interface
    marked `state: absent` is detached from the domain at once and reported by Multus only
    until the pod loses it."""
    networks = {n["name"]: n for n in dig(vmi, "spec", "networks", default=[])}
    net_status = json.loads(dig(pod, "metadata", "annotations", "k8s.v1.cni.cncf.io/network-status") or "[]")
    by_iface = {n.get("interface"): n for n in net_status}
    pod_ip = dig(pod, "status", "podIP")
    out = []
    guest_index = 0
    for iface in dig(vmi, "spec", "domain", "devices", "interfaces", default=[]):
        net = networks.get(iface["name"], {})
        absent = iface.get("state") == "absent"
        mac = iface.get("macAddress") or mac_for(vmi["metadata"]["uid"] + iface["name"])
        entry = {"name": iface["name"], "mac": mac, "queueCount": 1, "linkState": "up"}
        if net.get("pod") is not None or dig(net, "multus", "default"):
            if absent:
                continue
            ips = [pod_ip] if pod_ip else []
            entry["infoSource"] = "domain, guest-agent" if agent else "domain"
            entry["podInterfaceName"] = "eth0"
            if ips and (agent or iface.get("masquerade") is not None):
                entry["ipAddress"], entry["ipAddresses"] = ips[0], ips
        elif net.get("multus"):
            pname = pod_iface_name(iface["name"])
            status = by_iface.get(pname)
            if status is None:
                continue   # not in this pod (hot-plugged after it started)
            if absent:
                out.append({"name": iface["name"], "podInterfaceName": pname, "infoSource": "multus-status"})
                continue
            entry["podInterfaceName"] = pname
            entry["infoSource"] = "domain, guest-agent, multus-status" if agent else "domain, multus-status"
            ips = status.get("ips") or []
            if agent and ips:
                entry["ipAddress"], entry["ipAddresses"] = ips[0], ips
        else:
            if absent:
                continue
            entry["infoSource"] = "domain"
        if agent:
            entry["interfaceName"] = f"eth{guest_index}"
        guest_index += 1
        out.append(entry)
    return out


def _targets(vmi):
    counters = {"virtio": 0, "sata": 0, "scsi": 0, "usb": 0}
    prefixes = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd"}
    out = {}
    for disk in dig(vmi, "spec", "domain", "devices", "disks", default=[]):
        dev = disk.get("disk") or disk.get("lun") or disk.get("cdrom") or {}
        bus = dev.get("bus") or ("sata" if "cdrom" in disk else "virtio")
        key = "sata" if bus in ("sata", "scsi", "usb") else "virtio"
        out[disk["name"]] = prefixes.get(bus, "vd") + chr(ord("a") + counters[key])
        counters[key] += 1
    return out


def targets(vmi):
    return _targets(vmi)


def pvc_infos(sim, vmi):
    """persistentVolumeClaimInfo by volume name, for the volumes whose claim exists."""
    ns = vmi["metadata"]["namespace"]
    out = {}
    for volname, claim in claim_names(vmi["spec"]).items():
        pvc = sim.cache.pvcs.get_ns(ns, claim)
        if pvc:
            cap = dig(pvc, "status", "capacity", "storage") or dig(pvc, "spec", "resources", "requests", "storage")
            out[volname] = {
                "claimName": claim,
                "accessModes": dig(pvc, "spec", "accessModes", default=["ReadWriteOnce"]),
                "volumeMode": dig(pvc, "spec", "volumeMode", default="Filesystem"),
                "capacity": {"storage": cap} if cap else {},
                "requests": {"storage": dig(pvc, "spec", "resources", "requests", "storage")},
                "filesystemOverhead": "0.055"}
    return out


def volume_status(sim, vmi, hotplug_entries=None):
    """status.volumeStatus: the spec's volumes in order, hot-plugged ones as hotplug.py reports
    them, then hot-plugged volumes still being detached."""
    hotplug_entries = dict(hotplug_entries or {})
    tgts = _targets(vmi)
    infos = pvc_infos(sim, vmi)
    out = []
    for vol in dig(vmi, "spec", "volumes", default=[]):
        if dig(vol, "persistentVolumeClaim", "hotpluggable") or dig(vol, "dataVolume", "hotpluggable"):
            entry = hotplug_entries.pop(vol["name"], None)
            if entry is not None:
                out.append(entry)
            continue
        entry = {"name": vol["name"], "target": tgts.get(vol["name"], "")}
        if vol["name"] in infos:
            entry["persistentVolumeClaimInfo"] = infos[vol["name"]]
        elif vol.get("containerDisk"):
            entry["containerDiskVolume"] = {"checksum": int(stable_uuid(vol["containerDisk"].get("image", ""))[:8], 16)}
        out.append(entry)
    out.extend(hotplug_entries.values())
    return out


def live_migratable(sim, vmi):
    """(status, reason, message) of the LiveMigratable condition."""
    ns = vmi["metadata"]["namespace"]
    networks = {n["name"]: n for n in dig(vmi, "spec", "networks", default=[])}
    annotations = dig(vmi, "metadata", "annotations", default={}) or {}
    for iface in dig(vmi, "spec", "domain", "devices", "interfaces", default=[]):
        net = networks.get(iface["name"], {})
        if iface.get("bridge") is not None and net.get("pod") is not None and \
                annotations.get("kubevirt.io/allow-pod-bridge-network-live-migration") is None:
            return "False", "InterfaceNotLiveMigratable", BRIDGE_ON_POD
    for vol in dig(vmi, "spec", "volumes", default=[]):
        if vol.get("hostDisk") is not None and not dig(vol, "hostDisk", "shared"):
            return "False", "DisksNotLiveMigratable", "cannot migrate VMI with non-shared HostDisk"
    for volname, claim in claim_names(vmi["spec"]).items():
        pvc = sim.cache.pvcs.get_ns(ns, claim)
        if pvc is None:
            return "False", "DisksNotLiveMigratable", (
                f"cannot migrate VMI: Unable to determine if PVC {claim} is shared, live migration requires "
                "that all PVCs must be shared (using ReadWriteMany access mode)")
        if "ReadWriteMany" not in (dig(pvc, "spec", "accessModes", default=[]) or []):
            return "False", "DisksNotLiveMigratable", NOT_SHARED.format(claim)
    return "True", "", ""


def running_details(sim, vmi, pod, st, agent, dvs, hotplug_entries=None):
    spec = vmi["spec"]
    cpu = dig(spec, "domain", "cpu", default={}) or {}
    mem = format_bytes(guest_memory(spec)) if guest_memory(spec) else "0"
    # what the guest has: set at creation (defaults) and changed only by a hot-plug at a migration target
    st.setdefault("currentCPUTopology", {"cores": int(cpu.get("cores") or 1), "sockets": int(cpu.get("sockets") or 1),
                                         "threads": int(cpu.get("threads") or 1)})
    st.setdefault("memory", {"guestAtBoot": mem, "guestCurrent": mem, "guestRequested": mem})
    st["machine"] = {"type": dig(spec, "domain", "machine", "type") or "pc-q35-rhel9.6.0"}
    st["interfaces"] = interfaces(sim, vmi, pod, agent)
    st["volumeStatus"] = volume_status(sim, vmi, hotplug_entries)
    if isinstance(agent, dict):     # a real guest's agent (realguest.Guests.agent_info)
        st["guestOSInfo"] = {k: v for k, v in agent["os"].items() if v}
    else:
        st["guestOSInfo"] = {k: v for k, v in guest.os_info(vmi, dvs).items()} if agent else {}
    st["launcherContainerImageVersion"] = LAUNCHER_IMAGE
    st["qosClass"] = dig(pod, "status", "qosClass") or "Burstable"
    st["migrationMethod"] = "BlockMigration" if any(v.get("containerDisk") for v in spec.get("volumes") or []) \
        else "LiveMigration"
    st["migrationTransport"] = "Unix"
    st["selinuxContext"] = "none"
    st["runtimeUser"] = 107
    return st

