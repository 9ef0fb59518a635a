"""virt-launcher Pod manifests, as virt-controller's template service renders them."""
import json

from .util import dig, format_bytes, format_millicpu, parse_quantity, short_hash

LAUNCHER_IMAGE = "quay.io/kubevirt/virt-launcher:v1.6.0"
VERSION = "v1.6.0"
CPU_ALLOCATION_RATIO = 10
EPHEMERAL_ANNOTATION = "kubevirt.io/ephemeral-provisioning"


def vcpus(spec):
    cpu = dig(spec, "domain", "cpu", default={}) or {}
    return max(1, int(cpu.get("cores") or 1) * int(cpu.get("sockets") or 1) * int(cpu.get("threads") or 1))


def guest_memory(spec):
    """Bytes of guest memory (domain.memory.guest, else resources.requests.memory)."""
    guest = dig(spec, "domain", "memory", "guest")
    if guest:
        return parse_quantity(guest)
    return parse_quantity(dig(spec, "domain", "resources", "requests", "memory"))


def memory_overhead(spec):
    # virt-launcher, virtqemud, virtlogd, qemu (see virt-controller services/renderresources.go),
    # plus page tables and a per-vCPU share.
    return 220 * 2 ** 20 + guest_memory(spec) / 512 + vcpus(spec) * 8 * 2 ** 20


def compute_resources(spec):
    res = dig(spec, "domain", "resources", default={}) or {}
    req, lim = dict(res.get("requests") or {}), dict(res.get("limits") or {})
    mem_req = parse_quantity(req.get("memory")) or guest_memory(spec)
    requests = {"memory": format_bytes(mem_req + memory_overhead(spec))}
    if req.get("cpu"):
        requests["cpu"] = req["cpu"]
    elif dig(spec, "domain", "cpu", "dedicatedCpuPlacement"):
        requests["cpu"] = str(vcpus(spec))
    else:
        requests["cpu"] = format_millicpu(vcpus(spec) / CPU_ALLOCATION_RATIO)
    requests["ephemeral-storage"] = "50M"
    limits = {}
    if lim.get("memory"):
        limits["memory"] = format_bytes(parse_quantity(lim["memory"]) + memory_overhead(spec))
    if lim.get("cpu"):
        limits["cpu"] = lim["cpu"]
    out = {"requests": requests}
    if limits:
        out["limits"] = limits
    return out


def claim_names(spec, hotplug=True):
    """PVC names the VMI uses (persistentVolumeClaim and dataVolume volumes), by volume name.
    hotplug=False leaves out hotpluggable volumes (they live in the attachment pod, not the launcher)."""
    out = {}
    for vol in spec.get("volumes") or []:
        if not hotplug and (dig(vol, "persistentVolumeClaim", "hotpluggable") or
                            dig(vol, "dataVolume", "hotpluggable")):
            continue
        if vol.get("persistentVolumeClaim"):
            out[vol["name"]] = vol["persistentVolumeClaim"].get("claimName")
        elif vol.get("dataVolume"):
            out[vol["name"]] = vol["dataVolume"].get("name")
    return out


def multus_networks(vmi, status_interfaces=None):
    """The secondary Multus networks the launcher pod carries: those of interfaces not marked
    `state: absent`; with status_interfaces (an annotation update on a running pod), SR-IOV
    interfaces only once the VMI reports them (CalculateInterfacesAndNetworksForMultusAnnotationUpdate)."""
    ifaces = {i.get("name"): i for i in dig(vmi, "spec", "domain", "devices", "interfaces", default=[]) or []}
    reported = {i.get("name") for i in status_interfaces or []}
    out = []
    for n in dig(vmi, "spec", "networks", default=[]):
        if not n.get("multus") or n["multus"].get("default"):
            continue
        iface = ifaces.get(n["name"], {})
        if iface.get("state") == "absent":
            continue
        if status_interfaces is not None and iface.get("sriov") is not None and n["name"] not in reported:
            continue
        out.append(n)
    return out


def networks_annotation(vmi, status_interfaces=None):
    """The k8s.v1.cni.cncf.io/networks list of the launcher pod."""
    out = []
    for net in multus_networks(vmi, status_interfaces):
        ns, nad_name = nad_ref(vmi["metadata"]["namespace"], net["multus"]["networkName"])
        out.append({"name": nad_name, "namespace": ns, "interface": pod_iface_name(net["name"])})
    return out


def nad_ref(namespace, network_name):
    if "/" in network_name:
        ns, name = network_name.split("/", 1)
        return ns, name
    return namespace, network_name


def pod_iface_name(network_name):
    return "pod" + short_hash(network_name, 11)


def render(vmi, nads, node=None, ephemeral=False):
    """The launcher Pod for a VMI. nads: {network name: NAD object} for its Multus networks."""
    meta, spec = vmi["metadata"], vmi["spec"]
    name = meta["name"]
    labels = dict(meta.get("labels") or {})
    labels.pop("kubevirt.io/nodeName", None)
    labels.update({"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": meta["uid"],
                   "vm.kubevirt.io/name": name})
    annotations = {"kubevirt.io/domain": name, "kubectl.kubernetes.io/default-container": "compute",
                   "post.hook.backup.velero.io/command": '["/usr/bin/virt-freezer", "--unfreeze", "--name", '
                   f'"{name}", "--namespace", "{meta["namespace"]}"]'}
    if ephemeral:
        annotations[EPHEMERAL_ANNOTATION] = "true"
    networks = networks_annotation(vmi)
    if networks:
        annotations["k8s.v1.cni.cncf.io/networks"] = json.dumps(networks)
    volumes = [{"name": "private", "emptyDir": {}}, {"name": "public", "emptyDir": {}},
               {"name": "sockets", "emptyDir": {}}]
    containers = [{
        "name": "compute", "image": LAUNCHER_IMAGE, "imagePullPolicy": "IfNotPresent",
        "command": ["/usr/bin/virt-launcher-monitor", "--qemu-timeout", "300s", "--name", name,
                    "--uid", meta["uid"], "--namespace", meta["namespace"]],
        "resources": {} if ephemeral else compute_resources(spec),
        "volumeMounts": [{"name": "private", "mountPath": "/var/run/kubevirt-private"},
                         {"name": "public", "mountPath": "/var/run/kubevirt"},
                         {"name": "sockets", "mountPath": "/var/run/kubevirt/sockets"}],
    }]
    for volname, claim in claim_names(spec, hotplug=False).items():
        volumes.append({"name": volname, "persistentVolumeClaim": {"claimName": claim}})
        containers[0]["volumeMounts"].append({"name": volname, "mountPath": f"/var/run/kubevirt-private/vmi-disks/{volname}"})
    if not ephemeral:
        for vol in spec.get("volumes") or []:
            cd = vol.get("containerDisk")
            if cd:
                containers.append({
                    "name": f"volume{vol['name']}", "image": cd.get("image", ""),
                    "imagePullPolicy": cd.get("imagePullPolicy", "IfNotPresent"),
                    "command": ["/usr/bin/container-disk"],
                    "args": ["--copy-path", f"/var/run/kubevirt-ephemeral-disks/container-disk-data/{meta['uid']}/disk_{vol['name']}"],
                    "resources": {"requests": {"cpu": "10m", "memory": "1M", "ephemeral-storage": "50M"},
                                  "limits": {"cpu": "10m", "memory": "40M"}},
                })
    node_selector = dict(spec.get("nodeSelector") or {})
    node_selector["kubevirt.io/schedulable"] = "true"
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": f"virt-launcher-{name}-", "namespace": meta["namespace"],
                     "labels": labels, "annotations": annotations,
                     "ownerReferences": [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                                          "name": name, "uid": meta["uid"], "controller": True,
                                          "blockOwnerDeletion": True}]},
        "spec": {"containers": containers, "volumes": volumes, "nodeSelector": node_selector,
                 "restartPolicy": "Never", "automountServiceAccountToken": False,
                 "terminationGracePeriodSeconds": int(spec.get("terminationGracePeriodSeconds", 30)) + 15,
                 "hostname": spec.get("hostname") or name, "dnsPolicy": "ClusterFirst",
                 "enableServiceLinks": False, "priorityClassName": spec.get("priorityClassName")},
    }
    if spec.get("subdomain"):
        pod["spec"]["subdomain"] = spec["subdomain"]
    for k in ("tolerations", "affinity", "schedulerName"):
        if spec.get(k):
            pod["spec"][k] = spec[k]
    if not pod["spec"]["priorityClassName"]:
        pod["spec"].pop("priorityClassName")
    if node:
        pod["spec"]["nodeName"] = node
    return pod


def network_status(pod, pod_ip, multus_ips):
    """The Multus network-status annotation for a running launcher pod."""
    mac = "0a:58:" + ":".join(f"{int(o):02x}" for o in pod_ip.split(".")) if pod_ip else ""
    out = [{"name": "ovn-kubernetes", "interface": "eth0", "ips": [pod_ip] if pod_ip else [],
            "mac": mac, "default": True, "dns": {}}]
    for entry in json.loads(dig(pod, "metadata", "annotations", "k8s.v1.cni.cncf.io/networks") or "[]"):
        key = f"{entry['namespace']}/{entry['name']}"
        item = {"name": key, "interface": entry["interface"], "mac": "", "dns": {}}
        if multus_ips.get(key):
            item["ips"] = multus_ips[key]
        out.append(item)
    return out
