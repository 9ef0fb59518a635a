# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network module: Multus NetworkAttachmentDefinitions for KubeVirt secondary networks.

Pure builders for Linux-bridge and SR-IOV CNI configs with their IPAM, a validator for raw CNI
configs, and a comparison on the parsed config (key order and whitespace don't count).
"""

from __future__ import annotations

import copy
import ipaddress
import json

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import parallel, writes
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    ApiError,
    InputError,
    KubevirtError,
    one_line,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import spec as vmspec
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import diff_of

API_VERSION = "k8s.cni.cncf.io/v1"
RESOURCE_ANNOTATION = "k8s.v1.cni.cncf.io/resourceName"
BRIDGE_RESOURCE_PREFIX = "bridge.network.kubevirt.io/"
BRIDGE_TYPES = ("bridge", "cnv-bridge")
IPAM_TYPES = ["none", "host-local", "whereabouts", "static", "dhcp"]
TYPED_OPTIONS = ("type", "bridge", "cni_type", "cni_name", "vlan", "mtu", "macspoofchk",
                 "disable_container_interface", "ipam")

ROUTE_SPEC = dict(dst=dict(type="str", required=True), gw=dict(type="str"))
ADDRESS_SPEC = dict(address=dict(type="str", required=True), gateway=dict(type="str"))
IPAM_SPEC = dict(
    type=dict(type="str", choices=IPAM_TYPES, default="none"),
    subnet=dict(type="str"),
    range=dict(type="str"),
    range_start=dict(type="str"),
    range_end=dict(type="str"),
    exclude=dict(type="list", elements="str"),
    gateway=dict(type="str"),
    routes=dict(type="list", elements="dict", options=ROUTE_SPEC),
    addresses=dict(type="list", elements="dict", options=ADDRESS_SPEC),
)


def argument_spec():
    spec = dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        type=dict(type="str", choices=["bridge", "sriov"]),
        bridge=dict(type="str"),
        cni_type=dict(type="str"),
        cni_name=dict(type="str"),
        cni_version=dict(type="str", default="0.3.1"),
        vlan=dict(type="int"),
        mtu=dict(type="int"),
        macspoofchk=dict(type="bool"),
        disable_container_interface=dict(type="bool"),
        resource_name=dict(type="str"),
        ipam=dict(type="dict", options=IPAM_SPEC),
        config=dict(type="raw"),
        labels=dict(type="dict"),
        annotations=dict(type="dict"),
    )
    spec.update(runner.auth_spec())
    return spec


MUTUALLY_EXCLUSIVE = [("config", key) for key in TYPED_OPTIONS]


# -- IPAM ---------------------------------------------------------------------------------------------
def _network(value, what):
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        raise InputError("%s %r is not a CIDR such as 192.168.10.0/24." % (what, value))


def _address(value, what):
    try:
        return ipaddress.ip_address(str(value))
    except ValueError:
        raise InputError("%s %r is not an IP address." % (what, value))


def _interface(value, what):
    try:
        if "/" not in str(value):
            raise ValueError("no prefix")
        return ipaddress.ip_interface(str(value))
    except ValueError:
        raise InputError("%s %r is not an address with a prefix such as 192.168.10.5/24." % (what, value))


def _routes(routes):
    out = []
    for n, route in enumerate(routes or []):
        _network(route.get("dst"), "ipam.routes[%d].dst" % n)
        entry = {"dst": route["dst"]}
        if route.get("gw"):
            _address(route["gw"], "ipam.routes[%d].gw" % n)
            entry["gw"] = route["gw"]
        out.append(entry)
    return out


def _in(net, value, what):
    addr = _address(value, what)
    if addr not in net:
        raise InputError("%s %s is outside %s." % (what, value, net))
    return addr


def build_ipam(ipam):
    """The ipam option -> the CNI ipam section (None for type none)."""
    if not ipam:
        return None
    kind = ipam.get("type") or "none"
    given = sorted(k for k, v in ipam.items() if k != "type" and v not in (None, []))
    allowed = {
        "none": set(),
        "dhcp": set(),
        "host-local": {"subnet", "range_start", "range_end", "gateway", "routes"},
        "whereabouts": {"range", "subnet", "range_start", "range_end", "exclude", "gateway", "routes"},
        "static": {"addresses", "routes"},
    }[kind]
    extra = [k for k in given if k not in allowed]
    if extra:
        raise InputError("ipam.%s does not apply to ipam type %s%s." % (
            extra[0], kind, " (it takes %s)" % ", ".join("ipam.%s" % a for a in sorted(allowed)) if allowed else ""))
    if kind == "none":
        return None
    out = {"type": kind}
    if kind == "host-local":
        if not ipam.get("subnet"):
            raise InputError("ipam type host-local needs ipam.subnet, for example 192.168.10.0/24.")
        net = _network(ipam["subnet"], "ipam.subnet")
        out["subnet"] = ipam["subnet"]
        if ipam.get("range_start"):
            _in(net, ipam["range_start"], "ipam.range_start")
            out["rangeStart"] = ipam["range_start"]
        if ipam.get("range_end"):
            _in(net, ipam["range_end"], "ipam.range_end")
            out["rangeEnd"] = ipam["range_end"]
        if ipam.get("gateway"):
            _in(net, ipam["gateway"], "ipam.gateway")
            out["gateway"] = ipam["gateway"]
    elif kind == "whereabouts":
        rng = ipam.get("range") or ipam.get("subnet")
        if not rng:
            raise InputError("ipam type whereabouts needs ipam.range, for example 192.168.10.0/24.")
        if ipam.get("range") and ipam.get("subnet"):
            raise InputError("ipam type whereabouts takes ipam.range; drop ipam.subnet.")
        net = _network(rng, "ipam.range")
        out["range"] = rng
        for key in ("range_start", "range_end"):
            if ipam.get(key):
                _in(net, ipam[key], "ipam.%s" % key)
                out[key] = ipam[key]
        if ipam.get("exclude"):
            for n, item in enumerate(ipam["exclude"]):
                _network(item, "ipam.exclude[%d]" % n)
            out["exclude"] = list(ipam["exclude"])
        if ipam.get("gateway"):
            _in(net, ipam["gateway"], "ipam.gateway")
            out["gateway"] = ipam["gateway"]
    elif kind == "static":
        if not ipam.get("addresses"):
            raise InputError("ipam type static needs ipam.addresses, for example [{address: 192.168.10.5/24}].")
        addresses = []
        for n, item in enumerate(ipam["addresses"]):
            iface = _interface(item.get("address"), "ipam.addresses[%d].address" % n)
            entry = {"address": item["address"]}
            if item.get("gateway"):
                _in(iface.network, item["gateway"], "ipam.addresses[%d].gateway" % n)
                entry["gateway"] = item["gateway"]
            addresses.append(entry)
        out["addresses"] = addresses
    if ipam.get("routes"):
        out["routes"] = _routes(ipam["routes"])
    return out


# -- configs ------------------------------------------------------------------------------------------
def build_config(params, name):
    """Typed options -> (config dict, resource name)."""
    ntype = params.get("type") or "bridge"
    config = {"cniVersion": params.get("cni_version") or "0.3.1", "name": params.get("cni_name") or name}
    vlan = params.get("vlan")
    if vlan is not None and not 0 <= vlan <= 4094:
        raise InputError("vlan must be 0-4094, got %d." % vlan)
    if ntype == "bridge":
        bridge = params.get("bridge")
        if not bridge:
            raise InputError("type bridge needs bridge, the Linux bridge on the nodes (for example br1).")
        if len(bridge) > 15 or any(c.isspace() or c == "/" for c in bridge):
            raise InputError("bridge %r is not a Linux interface name (at most 15 characters, no spaces or '/')." %
                             bridge)
        config["type"] = params.get("cni_type") or "bridge"
        config["bridge"] = bridge
        if vlan is not None:
            config["vlan"] = vlan
        if params.get("mtu") is not None:
            if not 576 <= params["mtu"] <= 65535:
                raise InputError("mtu must be 576-65535, got %d." % params["mtu"])
            config["mtu"] = params["mtu"]
        if params.get("macspoofchk") is not None:
            config["macspoofchk"] = bool(params["macspoofchk"])
        if params.get("disable_container_interface") is not None:
            config["disableContainerInterface"] = bool(params["disable_container_interface"])
        resource = params.get("resource_name") or BRIDGE_RESOURCE_PREFIX + bridge
    else:
        for key in ("bridge", "mtu", "disable_container_interface"):
            if params.get(key) is not None:
                raise InputError("%s applies to type bridge only (an SR-IOV VF takes its settings from the "
                                 "SriovNetworkNodePolicy)." % key)
        if not params.get("resource_name"):
            raise InputError("type sriov needs resource_name, the SR-IOV device plugin resource (for example "
                             "intel.com/sriov_net or openshift.io/mlxnics).")
        config["type"] = params.get("cni_type") or "sriov"
        if vlan is not None:
            config["vlan"] = vlan
        if params.get("macspoofchk") is not None:
            config["spoofchk"] = "on" if params["macspoofchk"] else "off"
        resource = params["resource_name"]
    ipam = build_ipam(params.get("ipam"))
    if ipam:
        config["ipam"] = ipam
    return config, resource


def parse_config(value, what="config"):
    """A CNI config given as a dict or a JSON string -> a checked dict."""
    if isinstance(value, str):
        try:
            config = json.loads(value)
        except ValueError as exc:
            raise InputError("%s is not valid JSON (%s); give the CNI config as a dict or a JSON string." % (
                what, one_line(exc, 150)))
    else:
        config = copy.deepcopy(value)
    if not isinstance(config, dict):
        raise InputError("%s must be a JSON object (a CNI config), got %s." % (what, type(config).__name__))
    if not isinstance(config.get("cniVersion"), str) or not config.get("cniVersion"):
        raise InputError("%s has no cniVersion; a CNI config needs cniVersion (for example \"0.3.1\") and type." % what)
    if "plugins" in config:
        plugins = config["plugins"]
        if not isinstance(plugins, list) or not plugins:
            raise InputError("%s.plugins must be a non-empty list of CNI plugin configs." % what)
        for n, plugin in enumerate(plugins):
            if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str) or not plugin.get("type"):
                raise InputError("%s.plugins[%d] has no type; every CNI plugin config needs a type." % (what, n))
    elif not isinstance(config.get("type"), str) or not config.get("type"):
        raise InputError("%s has no type; a CNI config needs cniVersion and type (for example \"bridge\")." % what)
    return config


def main_plugin(config):
    return (config.get("plugins") or [config])[0]


def resource_for_raw(config, resource_name):
    """The resourceName annotation for a raw config."""
    if resource_name:
        return resource_name
    plugin = main_plugin(config)
    if plugin.get("type") in BRIDGE_TYPES and plugin.get("bridge"):
        return BRIDGE_RESOURCE_PREFIX + str(plugin["bridge"])
    if plugin.get("type") == "sriov":
        raise InputError("config is an SR-IOV config; give resource_name, the SR-IOV device plugin resource (for "
                         "example intel.com/sriov_net), so that the pod gets a VF.")
    return None


def current_config(nad):
    """The parsed config of an existing NAD, or None when it does not parse."""
    text = ((nad or {}).get("spec") or {}).get("config")
    if not text:
        return None
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def build_nad(params, name, namespace):
    """(NAD object, config dict, resource name) for the options."""
    if params.get("config") is not None:
        config = parse_config(params["config"])
        resource = resource_for_raw(config, params.get("resource_name"))
    else:
        config, resource = build_config(params, name)
    meta = {"name": name, "namespace": namespace}
    labels = vmspec.p_labels(params)
    if labels:
        meta["labels"] = labels
    annotations = vmspec.p_annotations(params) or {}
    if resource:
        if annotations.get(RESOURCE_ANNOTATION) not in (None, resource):
            raise InputError("annotations sets %s to %r, but the network needs %r; drop it or use resource_name." % (
                RESOURCE_ANNOTATION, annotations[RESOURCE_ANNOTATION], resource))
        annotations[RESOURCE_ANNOTATION] = resource
    if annotations:
        meta["annotations"] = annotations
    nad = {"apiVersion": API_VERSION, "kind": "NetworkAttachmentDefinition", "metadata": meta,
           "spec": {"config": json.dumps(config, separators=(",", ":"))}}
    return nad, config, resource


def metadata_subset(want, have):
    want_meta, have_meta = want.get("metadata") or {}, (have or {}).get("metadata") or {}
    for key in ("labels", "annotations"):
        have_map = have_meta.get(key) or {}
        for k, v in (want_meta.get(key) or {}).items():
            if have_map.get(k) != v:
                return False
    return True


def readable(nad):
    """A NAD with its config parsed, for diffs."""
    if not nad:
        return nad
    out = copy.deepcopy(nad)
    parsed = current_config(out)
    if parsed is not None:
        out["spec"]["config"] = parsed
    return out


# -- the module ---------------------------------------------------------------------------------------
class NetworkRunner(runner.Runner):
    reports_progress = False

    def run(self):
        p = self.params
        name, namespace = self.target(max_len=253)
        ref = res.NAD.ref(name, namespace)
        if p["state"] == "absent":
            return self.absent(name, namespace, ref)
        if p.get("config") is not None and p.get("type"):
            raise InputError("config and type are mutually exclusive: config is a whole CNI config.")
        desired, config, resource = build_nad(p, name, namespace)
        try:
            current = self.client.get_or_none(res.NAD, name, namespace)
        except ApiError as exc:
            raise KubevirtError(writes.explain(exc, "read", ref, res.NAD))
        current = waiter.present_unless_going(self.client, res.NAD, current, waiter.GONE_BEFORE_CREATE_TIMEOUT,
                                              self.check_mode, self.progress)
        same_config = current is not None and current_config(current) == config
        if same_config:
            # Keep the stored string: an equal config written differently is no change.
            desired["spec"]["config"] = current["spec"]["config"]
            if metadata_subset(desired, current):
                outcome = writes.Outcome(False, current, current, "none")
            else:
                outcome = writes.present(self.client, res.NAD, desired, self.check_mode, current=current,
                                         have_current=True)
        else:
            outcome = writes.present(self.client, res.NAD, desired, self.check_mode, current=current,
                                     have_current=True)
        after = outcome.after
        result = dict(changed=outcome.changed, method=outcome.method, network=after,
                      config=current_config(after) or config, resource_name=resource)
        if self.diff_mode:
            result["diff"] = diff_of(readable(outcome.before), readable(after))
        return result, None

    def absent(self, name, namespace, ref):
        users = self.users(name, namespace)
        changed, last = writes.absent(self.client, res.NAD, name, namespace, self.check_mode)
        if changed and users:
            self.warnings.append("%s is still used by VM%s %s: running VMIs keep their interface, but they can't "
                                 "start again while the network is missing." % (
                                     ref, "s" if len(users) > 1 else "", ", ".join(users)))
        result = dict(changed=changed, method="delete" if changed else "none", network=None)
        if self.diff_mode:
            result["diff"] = diff_of(readable(last) if changed else None, None)
        return result, None

    def users(self, name, namespace):
        listing = parallel.read_quiet(lambda: self.client.list(res.VM, namespace), {}) or {}
        names = (name, "%s/%s" % (namespace, name))
        out = []
        for vm in listing.get("items") or []:
            tspec = (((vm.get("spec") or {}).get("template") or {}).get("spec") or {})
            for net in tspec.get("networks") or []:
                if (net.get("multus") or {}).get("networkName") in names:
                    out.append(vm["metadata"]["name"])
                    break
        return out
