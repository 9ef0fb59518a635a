# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How to reach a guest from outside the cluster: its address, a Service in front of it, its OS.

Pure functions, shared by the inventory plugin (``ansible_host``/``ansible_port``) and the
console module (RDP connection details).

Address order (``reach()``):
  1. a chosen network (``network_name``): the VMI's IP on it, or nothing;
  2. a Service of type LoadBalancer (ingress IP/hostname, ``port``) or NodePort (the address of
     the VMI's node, ``nodePort``) whose selector matches the VMI's labels and whose
     ``targetPort`` is one of the wanted ports (22 for SSH; 5986/5985 for WinRM; 3389 for RDP);
  3. the VMI's address on its first network (the pod network for most VMs).

How the inventory reaches a host (``choose()``, option ``access``): ``network`` (an address only),
``service`` (a Service only), ``portforward`` (ssh through KubeVirt's port-forward, resolved when ssh
connects) or ``auto``: a network address the controller can reach (``network_name``'s, a Service's,
a secondary network's; the pod network's only from inside the cluster), else the port-forward. WinRM
cannot use a ProxyCommand, so ``auto`` never picks the port-forward for Windows guests (``reach()``'s
order instead).
"""

from __future__ import annotations

SSH_PORTS = (22,)
WINRM_PORTS = (5986, 5985)
RDP_PORTS = (3389,)
SERVICE_TYPES = ("LoadBalancer", "NodePort")
ACCESS_CHOICES = ("auto", "network", "service", "portforward")

WINDOWS_ANNOTATIONS = ("vm.kubevirt.io/os", "kubevirt.io/preference-name", "kubevirt.io/cluster-preference-name",
                       "instancetype.kubevirt.io/preference", "instancetype.kubevirt.io/cluster-preference")


def _meta(obj):
    return (obj or {}).get("metadata") or {}


def selector_matches(selector, labels):
    """A Service's equality selector against labels; an empty selector selects nothing."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def guest_labels(vm, vmi):
    """The labels a Service selects the guest by: the VMI's, else the VM template's."""
    if vmi:
        return dict(_meta(vmi).get("labels") or {})
    template = ((vm or {}).get("spec") or {}).get("template") or {}
    return dict((template.get("metadata") or {}).get("labels") or {})


def node_address(node, name=None):
    """A node's reachable address: ExternalIP, then InternalIP, then Hostname, then its name."""
    if not node:
        return name
    addresses = ((node.get("status") or {}).get("addresses")) or []
    for kind in ("ExternalIP", "InternalIP", "Hostname", "ExternalDNS", "InternalDNS"):
        for entry in addresses:
            if entry.get("type") == kind and entry.get("address"):
                return entry["address"]
    return _meta(node).get("name") or name


def _target_matches(port, wanted, container_ports=None):
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, str) and not target.isdigit():
        target = (container_ports or {}).get(target, target)
    try:
        return int(target) in wanted
    except (TypeError, ValueError):
        return False


def service_endpoint(services, labels, wanted_ports, node=None, node_name=None, namespace=None):
    """The first usable LoadBalancer/NodePort Service endpoint for a guest, or None.

    Returns {host, port, target_port, service, type}. ``services`` are Service objects (any
    namespace: only those in ``namespace`` are considered when it is given); ``wanted_ports``
    are target ports in order of preference.
    """
    best = None
    for service in services or []:
        meta = _meta(service)
        if namespace and meta.get("namespace") not in (None, namespace):
            continue
        spec = service.get("spec") or {}
        stype = spec.get("type")
        if stype not in SERVICE_TYPES or not selector_matches(spec.get("selector"), labels):
            continue
        for port in spec.get("ports") or []:
            if port.get("protocol", "TCP") != "TCP":
                continue
            for rank, wanted in enumerate(wanted_ports):
                if not _target_matches(port, (wanted,)):
                    continue
                endpoint = _endpoint(service, stype, port, node, node_name)
                if endpoint is None:
                    continue
                endpoint["target_port"] = wanted
                key = (rank, 0 if endpoint["type"] == "LoadBalancer" else 1, endpoint["service"])
                if best is None or key < best[0]:
                    best = (key, endpoint)
    return best[1] if best else None


def _endpoint(service, stype, port, node, node_name):
    meta = _meta(service)
    ref = "%s/%s" % (meta.get("namespace"), meta.get("name"))
    if stype == "LoadBalancer":
        for ingress in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            host = ingress.get("ip") or ingress.get("hostname")
            if host:
                return {"host": host, "port": port.get("port"), "service": ref, "type": "LoadBalancer"}
    # NodePort, or a LoadBalancer without an address yet (it has node ports too).
    if port.get("nodePort") and (node or node_name):
        return {"host": node_address(node, node_name), "port": port["nodePort"], "service": ref, "type": "NodePort"}
    return None


def _lower(value):
    return str(value or "").lower()


def is_windows(vm=None, vmi=None):
    """Whether the guest runs Windows: the agent's OS id/name, else preferences and annotations."""
    info = (((vmi or {}).get("status") or {}).get("guestOSInfo")) or {}
    if info.get("id") or info.get("name"):
        return _lower(info.get("id")) == "mswindows" or "windows" in _lower(info.get("name"))
    for obj in (vm, vmi):
        meta = _meta(obj)
        annotations = meta.get("annotations") or {}
        for key in WINDOWS_ANNOTATIONS:
            if _lower(annotations.get(key)).startswith("win"):
                return True
        labels = meta.get("labels") or {}
        if any(k.startswith("os.template.kubevirt.io/win") for k in labels):
            return True
        preference = ((obj or {}).get("spec") or {}).get("preference") or {}
        if _lower(preference.get("name")).startswith("win"):
            return True
    template_meta = ((((vm or {}).get("spec") or {}).get("template") or {}).get("metadata")) or {}
    if _lower((template_meta.get("annotations") or {}).get("vm.kubevirt.io/os")).startswith("win"):
        return True
    return False


def network_ip(vmi, network):
    """The IP of ``vmi`` on the network named ``network`` (None when it has none)."""
    for iface in ((vmi or {}).get("status") or {}).get("interfaces") or []:
        if iface.get("name") == network:
            ips = iface.get("ipAddresses") or []
            return iface.get("ipAddress") or (ips[0] if ips else None)
    return None


def default_ip(vmi):
    """The IP on the first network of the spec, else on the first interface that has one."""
    status_ifaces = ((vmi or {}).get("status") or {}).get("interfaces") or []
    networks = [n.get("name") for n in ((vmi or {}).get("spec") or {}).get("networks") or []]
    if networks:
        ip = network_ip(vmi, networks[0])
        if ip:
            return ip, networks[0]
    for iface in status_ifaces:
        ips = iface.get("ipAddresses") or []
        ip = iface.get("ipAddress") or (ips[0] if ips else None)
        if ip:
            return ip, iface.get("name")
    return None, None


def reach(vm, vmi, services=None, nodes=None, network_name=None, use_service=True, wanted_ports=SSH_PORTS):
    """How to reach the guest: {host, port, target_port, source}; host is None when nothing is known.

    ``source`` says where the address came from: ``network:<name>`` or ``service:<ns>/<name>``;
    ``port`` is set only for a Service (the guest's own port is ``target_port`` then).
    """
    none = {"host": None, "port": None, "target_port": None, "source": None}
    if network_name:
        ip = network_ip(vmi, network_name)
        return dict(none, host=ip, source="network:%s" % network_name) if ip else none
    if use_service and services:
        node_name = ((vmi or {}).get("status") or {}).get("nodeName")
        running = bool(vmi) and ((vmi.get("status") or {}).get("phase") == "Running")
        endpoint = service_endpoint(services, guest_labels(vm, vmi), wanted_ports,
                                    node=(nodes or {}).get(node_name), node_name=node_name,
                                    namespace=_meta(vm or vmi).get("namespace"))
        if endpoint and (endpoint["type"] == "LoadBalancer" or running):
            return {"host": endpoint["host"], "port": endpoint["port"], "target_port": endpoint["target_port"],
                    "source": "service:%s" % endpoint["service"]}
    ip, network = default_ip(vmi)
    if ip:
        return dict(none, host=ip, source="network:%s" % (network or "default"))
    return none


def on_pod_network(vmi, network, vm=None):
    """Whether ``network`` (a name in spec.networks) is the pod network; a spec without networks has
    only the pod network (KubeVirt adds it)."""
    spec = ((vmi or {}).get("spec")) or (((vm or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    networks = spec.get("networks")
    if not networks:
        return True
    for entry in networks:
        if entry.get("name") == network:
            return "pod" in entry
    return False


def choose(vm, vmi, services=None, nodes=None, network_name=None, use_service=True, wanted_ports=SSH_PORTS,
           access="auto", pod_reachable=False, windows=False):
    """How the inventory reaches a guest: reach()'s dict plus ``access`` (network, service, portforward or
    None when nothing does). ``pod_reachable``: the controller is inside the cluster network."""
    none = {"host": None, "port": None, "target_port": None, "source": None, "access": None}
    if access == "portforward":
        return dict(none, source="portforward", access="portforward")
    if access == "network":
        if network_name:
            ip = network_ip(vmi, network_name)
            return dict(none, host=ip, source="network:%s" % network_name, access="network") if ip else none
        ip, network = default_ip(vmi)
        return dict(none, host=ip, source="network:%s" % (network or "default"), access="network") if ip else none
    if access == "service":
        where = reach(vm, vmi, services, nodes, use_service=True, wanted_ports=wanted_ports)
        return dict(where, access="service") if (where["source"] or "").startswith("service:") else none
    if windows:
        where = reach(vm, vmi, services, nodes, network_name, use_service, wanted_ports)
        return dict(where, access=(where["source"] or "").split(":")[0] or None)
    if network_name and network_ip(vmi, network_name):
        return dict(none, host=network_ip(vmi, network_name), source="network:%s" % network_name, access="network")
    where = reach(vm, vmi, services, nodes, use_service=use_service, wanted_ports=wanted_ports)
    if (where["source"] or "").startswith("service:"):
        return dict(where, access="service")
    ip, network = default_ip(vmi)
    if ip and (pod_reachable or not on_pod_network(vmi, network, vm)):
        return dict(none, host=ip, source="network:%s" % (network or "default"), access="network")
    return dict(none, source="portforward", access="portforward")
