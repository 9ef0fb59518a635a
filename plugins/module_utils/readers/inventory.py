# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory plugin's work without Ansible's machinery: read a cluster, build host records.

``collect()`` reads one connection with as few requests as the credentials allow: VMs, VMIs and
Services of all namespaces at once when it may (three lists), else namespace by namespace in
parallel, skipping - with a warning - the namespaces it is not allowed to read.

``host_records()`` turns what was read into JSON-safe records ``{name, groups, vars}`` (what the
plugin caches), with pure functions: host names, groups and ``ansible_host``/``ansible_port``.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import parallel
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.connection import AUTH_ARG_SPEC
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    ApiError,
    InputError,
    KubevirtError,
    describe,
    one_line,
    unknown_name_message,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import access
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import portforward
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import redact
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import owner_vm
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.summary import summarize_vm, summarize_vmi

SERVICE = res.BY_KIND["Service"]
NODE = res.BY_KIND["Node"]

GROUP_BY_CHOICES = ("cluster", "namespace", "label", "node", "status", "os")
# What a connection reads besides its credentials; each is also a top-level option, the default of
# every connections[] entry (and of the one connection when there is no connections list).
CONNECTION_OPTIONS = ("name", "namespaces", "label_selector", "network_name", "use_service", "access")
CONNECTION_ALIASES = {"interface_name": "network_name"}
AUTH_ALIASES = {"verify_ssl": "validate_certs", "ssl_ca_cert": "ca_cert", "cert_file": "client_cert",
                "key_file": "client_key"}

# Options of the reference plugin, kubevirt.core.kubevirt, that this plugin does not have (its other
# options - the connection options, name, namespaces, label_selector, network_name/interface_name,
# use_service, host_format, connections - mean the same here). Each is accepted only with the value
# that asks for what this plugin does anyway; any other value is refused with our equivalent, so a
# file written for kubevirt.core never silently gets something else.
_ANY = object()
REFERENCE_OPTIONS = {
    "api_version": ("kubevirt.io/v1", "this plugin reads kubevirt.io/v1 only; remove api_version"),
    "kube_secondary_dns": (False, "ansible_host is never a kubesecondarydns name here; use network_name for the "
                                  "IP on a secondary network, or compose to build the name (ansible_host: "
                                  "\"'<network>.' ~ kubevirt.name ~ '.' ~ kubevirt.namespace ~ '.vm.<domain>'\")"),
    "base_domain": (None, "host names are never built from a base domain here; remove base_domain (and use "
                          "compose to build ansible_host from one)"),
    "append_base_domain": (False, "NodePort addresses are the node's IP (or its name) here, never with a base "
                                  "domain; remove append_base_domain (and use compose to build ansible_host)"),
    "unset_ansible_port": (False, "ansible_port is set only from a Service (and for WinRM) and never unset here; "
                                  "remove unset_ansible_port (and set ansible_port: null with compose if you need it)"),
    "create_groups": (_ANY, "label groups come from group_by here (label is in it by default; names are lower "
                            "case, KubeVirt's own labels skipped); remove create_groups, and leave label out of "
                            "group_by for no label groups"),
}
HOST_FORMAT_FIELDS = ("namespace", "name", "uid", "cluster", "kind")

# Labels KubeVirt sets itself on VMIs: not worth a group each.
SYSTEM_LABEL_PREFIXES = ("kubevirt.io/nodeName", "kubevirt.io/created-by", "kubevirt.io/migrationTargetNodeName",
                         "kubevirt.io/schedulable", "kubevirt.io/outdatedLauncherImage", "kubevirt.io/vm",
                         "kubevirt.io/migrationJobUID", "vm.kubevirt.io/name", "kubevirt.io/size",
                         "kubevirt.io/install-strategy")
HIDDEN_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
WORKERS = 8


# -- options -------------------------------------------------------------------------------------
def check_reference_option(key, value, where):
    """A kubevirt.core.kubevirt option this plugin does not have: pass when ``value`` asks for what this
    plugin does anyway, else InputError naming our equivalent."""
    accepted, instead = REFERENCE_OPTIONS[key]
    if accepted is not _ANY and (value == accepted or (accepted is None and value in ("", None))):
        return
    shown = str(value).lower() if isinstance(value, bool) else repr(value)
    raise InputError("%s %s: %s (an option of kubevirt.core.kubevirt) is not supported: %s." % (
        where, key, shown, instead))


def check_file_options(config, known, path):
    """The keys of an inventory file: each must be a documented option (``known``: names and aliases) or
    a kubevirt.core option accepted with its value (ansible-core drops unknown keys without a word: a
    file written for kubevirt.core had its namespaces filter ignored and listed every VM)."""
    for key, value in config.items():
        if key in known:
            continue
        if key in REFERENCE_OPTIONS:
            check_reference_option(key, value, "Inventory file %s:" % path)
            continue
        raise InputError("Inventory file %s: %s" % (path, unknown_name_message(
            "option", key, known, see="the options are listed by ansible-doc -t inventory virtops.kubevirt.kubevirt")))


def normalize_connection(index, raw, defaults=None):
    """A connection dict from the inventory file -> (auth params, inventory options); InputError names bad keys.

    ``defaults`` (the file's top-level connection options, by option name) fill what the entry does
    not set.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InputError("connections[%d] must be a mapping (kubeconfig, context, host, api_key, namespaces, ...), "
                         "not %s." % (index, type(raw).__name__))
    auth, opts = {}, {}
    known = set(AUTH_ARG_SPEC) | set(AUTH_ALIASES) | set(CONNECTION_OPTIONS) | set(CONNECTION_ALIASES)
    for key, value in raw.items():
        if key in REFERENCE_OPTIONS:
            check_reference_option(key, value, "connections[%d]:" % index)
            continue
        if key not in known:
            raise InputError("connections[%d]: %s" % (index, unknown_name_message("key", key, known)))
        key = CONNECTION_ALIASES.get(key, key)
        if key in CONNECTION_OPTIONS:
            opts[key] = value
        elif value is not None:
            auth[AUTH_ALIASES.get(key, key)] = value
    for key, value in (defaults or {}).items():
        if value is None or value == [] or value == "":
            continue
        target = opts if key in CONNECTION_OPTIONS else auth
        if target.get(key) is None:
            target[key] = value
    namespaces = opts.get("namespaces")
    if namespaces is not None:
        if isinstance(namespaces, str):
            namespaces = [n.strip() for n in namespaces.split(",") if n.strip()]
        if not isinstance(namespaces, list) or not all(isinstance(n, str) for n in namespaces):
            raise InputError("connections[%d].namespaces must be a list of namespace names." % index)
        opts["namespaces"] = namespaces
    for key in ("name", "label_selector", "network_name"):
        if opts.get(key) is not None and not isinstance(opts[key], str):
            raise InputError("connections[%d].%s must be a string." % (index, key))
    if opts.get("access") is not None and opts["access"] not in access.ACCESS_CHOICES:
        raise InputError("connections[%d].access %r is unknown; use %s." % (
            index, opts["access"], ", ".join(access.ACCESS_CHOICES)))
    if "validate_certs" in auth and isinstance(auth["validate_certs"], str):
        text = auth["validate_certs"].strip().lower()
        if text not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            # A typo must not turn TLS verification off.
            raise InputError("connections[%d].validate_certs %r is not a boolean; use true or false." % (
                index, auth["validate_certs"]))
        auth["validate_certs"] = text in ("1", "true", "yes", "on")
    return auth, opts


def in_cluster(client):
    """Whether the inventory reads the cluster from inside it (its pod network is then reachable)."""
    conn = getattr(client, "conn", None)
    return bool(conn is not None and str(getattr(conn, "source", "")).startswith("in-cluster"))


def proxy_warnings(index, auth, environ=None):
    """What the port-forward's ProxyCommand cannot carry from an inventory file's connection: secrets (a
    command line is visible to every user of the machine) and a kubeconfig given as a dict."""
    import os

    environ = os.environ if environ is None else environ
    out = []
    for option, variable in (("api_key", "K8S_AUTH_API_KEY"), ("password", "K8S_AUTH_PASSWORD")):
        if auth.get(option) and not environ.get(variable):
            out.append("connections[%d]: %s from the inventory file is not handed to the port-forward ProxyCommand "
                       "(a secret on a command line); set %s for ansible-playbook too, or use a kubeconfig, or SSH "
                       "through the port-forward runs with other credentials." % (index, option, variable))
    if isinstance(auth.get("kubeconfig"), dict):
        out.append("connections[%d]: a kubeconfig given as a mapping cannot be handed to the port-forward "
                   "ProxyCommand; give a path, or SSH through the port-forward uses the default credentials."
                   % index)
    return out


def cluster_name(host):
    """'https://api.example.com:6443' -> 'api-example-com_6443' (kubevirt.core's default connection name)."""
    text = re.sub(r"^[a-z]+://", "", host or "")
    return text.rstrip("/").replace(".", "-").replace(":", "_")


def group_name(*parts):
    """A valid Ansible group name: lower case, [a-z0-9_] only."""
    text = "_".join(str(p) for p in parts if p is not None and p != "")
    return re.sub(r"[^a-z0-9_]", "_", text.lower())


def host_name(fmt, namespace, name, uid=None, cluster=None, kind=None):
    try:
        return fmt.format(namespace=namespace, name=name, uid=uid or "", cluster=cluster or "",
                          kind=(kind or "").lower())
    except (KeyError, IndexError, ValueError) as exc:
        raise InputError("host_format %r is invalid (%s); use the fields %s, e.g. '{namespace}-{name}'." % (
            fmt, one_line(exc, 80), ", ".join("{%s}" % f for f in HOST_FORMAT_FIELDS)))


# -- reading a cluster ---------------------------------------------------------------------------
def _meta(obj):
    return (obj or {}).get("metadata") or {}


def _forbidden(exc):
    """403: these credentials may not read that (401 - no valid credentials at all - is an error)."""
    return isinstance(exc, ApiError) and exc.status == 403


def _items(client, resource, namespace=None, label_selector=None):
    return client.list(resource, namespace, label_selector=label_selector).get("items") or []


def _pmap(fn, items):
    items = list(items)
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items))) as pool:
        return list(pool.map(fn, items))


def collect(client, opts, cluster, warn):
    """Read VMs, VMIs, Services (and nodes when a NodePort needs them) for one connection.

    ``warn(text)`` reports skipped namespaces. Returns a dict of lists; raises KubevirtError for
    failures that are not a permission problem of one namespace.
    """
    namespaces = opts.get("namespaces")
    selector = opts.get("label_selector")
    data = {"cluster": cluster, "vms": [], "vmis": [], "standalone_names": None, "services": [], "nodes": {},
            "namespaces": []}
    if not namespaces:
        try:
            got = parallel.gather(client, _reads(client, None, selector))
            data["vms"], data["vmis"] = got["vms"], got["vmis"]
            if selector:
                data["standalone_names"] = got["standalone"]
            data["namespaces"] = None
        except ApiError as exc:
            if not _forbidden(exc):
                raise KubevirtError(describe(exc, "list", "VirtualMachines in all namespaces of %s" % cluster))
            namespaces = _visible_namespaces(client, cluster, warn)
    if namespaces:
        data["namespaces"] = list(namespaces)
        results = _pmap(lambda ns: _read_namespace(client, ns, selector), namespaces)
        for ns, (vms, vmis, standalone, error, what) in zip(namespaces, results):
            if error is not None:
                if not _forbidden(error):
                    raise KubevirtError(describe(error, "list", "%s in namespace %s of %s" % (what, ns, cluster)))
                warn("Skipping namespace %s of %s: the credentials may not list %s there (%s)." % (
                    ns, cluster, what, one_line(error.api_message or error.reason or error.status, 200)))
                continue
            data["vms"].extend(vms)
            data["vmis"].extend(vmis)
            if standalone is not None:
                data["standalone_names"] = (data["standalone_names"] or set()) | standalone
    if opts.get("use_service", True) and (data["vms"] or data["vmis"]):
        data["services"] = _read_services(client, data, cluster, warn)
        if any((s.get("spec") or {}).get("type") in access.SERVICE_TYPES for s in data["services"]):
            data["nodes"] = _read_nodes(client, data)
    return data


def _names(items):
    return {(_meta(i).get("namespace"), _meta(i).get("name")) for i in items}


def _reads(client, namespace, selector):
    """The lists an inventory needs of a namespace (None: all), to be sent at the same time: a
    namespace of 1000 VMs is four pages of VMs and VMIs, one round trip instead of four."""
    reads = {"vms": lambda: _items(client, res.VM, namespace, selector),
             "vmis": lambda: _items(client, res.VMI, namespace)}
    if selector:
        reads["standalone"] = lambda: _names(_items(client, res.VMI, namespace, selector))
    return reads


def _read_namespace(client, namespace, selector):
    """(vms, vmis, standalone names or None, error, what) for one namespace; errors are returned."""
    reads = _reads(client, namespace, selector)
    got = {}
    for key, value, error in parallel.parallel(lambda key: reads[key](), list(reads), workers=len(reads)):
        if error is not None:
            return [], [], None, error, "VirtualMachines" if key == "vms" else "VirtualMachineInstances"
        got[key] = value
    return got["vms"], got["vmis"], got.get("standalone"), None, "VirtualMachines"


def _visible_namespaces(client, cluster, warn):
    try:
        return [_meta(n).get("name") for n in _items(client, res.NAMESPACE)]
    except ApiError as exc:
        if not _forbidden(exc):
            raise KubevirtError(describe(exc, "list", "namespaces of %s" % cluster))
    namespace = client.namespace or "default"
    warn("The credentials for %s may neither list VirtualMachines in all namespaces nor list namespaces; reading only "
         "namespace %s (set namespaces in the connection to choose)." % (cluster, namespace))
    return [namespace]


def _read_services(client, data, cluster, warn):
    namespaces = data["namespaces"]
    try:
        if namespaces is None:
            return _items(client, SERVICE)
    except ApiError as exc:
        warn("Services of %s could not be listed (%s); ansible_host comes from the VM addresses only." % (
            cluster, one_line(exc.api_message or exc.status, 150)))
        return []
    wanted = sorted({_meta(o).get("namespace") for o in data["vms"] + data["vmis"]})

    def read(ns):
        try:
            return _items(client, SERVICE, ns)
        except ApiError:
            return None

    out, denied = [], []
    for ns, items in zip(wanted, _pmap(read, wanted)):
        if items is None:
            denied.append(ns)
        else:
            out.extend(items)
    if denied:
        warn("Services in %s of %s could not be listed; ansible_host comes from the VM addresses there." % (
            ", ".join(denied), cluster))
    return out


def _read_nodes(client, data):
    """Nodes by name, for NodePort addresses; without permission, node names are used as addresses."""
    wanted = {(v.get("status") or {}).get("nodeName") for v in data["vmis"]} - {None}
    if not wanted:
        return {}
    try:
        return {_meta(n).get("name"): n for n in _items(client, NODE) if _meta(n).get("name") in wanted}
    except ApiError:
        return {}


# -- host records (pure) -------------------------------------------------------------------------
def pairs(data, include_stopped=True, include_vmis=True):
    """[(vm or None, vmi or None)] - VMs with their VMI, then stand-alone VMIs."""
    vmis = {(_meta(v).get("namespace"), _meta(v).get("name")): v for v in data.get("vmis") or []}
    out = []
    seen = set()
    for vm in data.get("vms") or []:
        key = (_meta(vm).get("namespace"), _meta(vm).get("name"))
        vmi = vmis.get(key)
        seen.add(key)
        if vmi is None and not include_stopped:
            continue
        out.append((vm, vmi))
    if include_vmis:
        standalone = data.get("standalone_names")
        for key, vmi in vmis.items():
            if key in seen or owner_vm(vmi):
                continue
            if standalone is not None and key not in standalone:
                continue
            out.append((None, vmi))
    return out


def _public_annotations(obj):
    return redact({k: v for k, v in (_meta(obj).get("annotations") or {}).items() if k not in HIDDEN_ANNOTATIONS})


def _ref_name(spec, key):
    ref = (spec or {}).get(key) or {}
    if not ref.get("name"):
        return None
    return {"name": ref.get("name"), "kind": ref.get("kind")}


def summary(vm, vmi, cluster):
    """The compact ``kubevirt`` host variable."""
    if vm is not None:
        full = summarize_vm(vm, vmi)
        obj = vm
    else:
        full = summarize_vmi(vmi)
        obj = vmi
    spec = (obj or {}).get("spec") or {}
    labels = dict(_meta(obj).get("labels") or {})
    return {
        "cluster": cluster,
        "kind": full["kind"],
        "name": full["name"],
        "namespace": full["namespace"],
        "uid": _meta(obj).get("uid"),
        "status": full["status"],
        "ready": full["ready"],
        "phase": full.get("phase"),
        "run_strategy": full.get("run_strategy"),
        "paused": full.get("paused"),
        "restart_required": full.get("restart_required", False),
        "node": full.get("node"),
        "ip_address": full.get("ip_address"),
        "ip_addresses": full.get("ip_addresses") or [],
        "networks": full.get("networks") or {},
        "guest_os": full.get("guest_os"),
        "agent_connected": full.get("agent_connected"),
        "instancetype": _ref_name(spec, "instancetype"),
        "preference": _ref_name(spec, "preference"),
        "labels": labels,
        "annotations": _public_annotations(obj),
        "reason": full.get("reason"),
    }


def os_group(vm, vmi, windows):
    info = (((vmi or {}).get("status") or {}).get("guestOSInfo")) or {}
    if info.get("id"):
        return "windows" if info["id"] == "mswindows" else info["id"]
    return "windows" if windows else None


def groups_for(summ, vm, vmi, windows, group_by):
    groups = []

    def add(name):
        if name and name not in groups:
            groups.append(name)

    if "cluster" in group_by:
        add(group_name("cluster", summ["cluster"]))
    if "namespace" in group_by:
        add(group_name("namespace", summ["namespace"]))
    if "label" in group_by:
        for key, value in sorted(summ["labels"].items()):
            if key.startswith(SYSTEM_LABEL_PREFIXES):
                continue
            add(group_name("label", key, value))
    if "node" in group_by and summ.get("node"):
        add(group_name("node", summ["node"]))
    if "status" in group_by and summ.get("status"):
        add(group_name("status", summ["status"]))
    if "os" in group_by:
        osname = os_group(vm, vmi, windows)
        if osname:
            add(group_name("os", osname))
    return groups


def connection_vars(vm, vmi, services, nodes, opts, proxy=None):
    """ansible_host / ansible_port / ansible_connection (and the ProxyCommand) for one guest, and how it is
    reached: access.choose()'s dict. ``proxy``: (python, ssh_proxy.py, auth) for port-forward hosts."""
    windows = access.is_windows(vm, vmi)
    ports = access.WINRM_PORTS if windows else access.SSH_PORTS
    where = access.choose(vm, vmi, services, nodes, network_name=opts.get("network_name"),
                          use_service=opts.get("use_service", True), wanted_ports=ports,
                          access=opts.get("access") or "auto", pod_reachable=opts.get("pod_reachable", False),
                          windows=windows)
    out = {}
    if where["access"] == "portforward":
        obj = vm or vmi
        target = portforward.Target("vm" if vm is not None else "vmi", _meta(obj).get("name"),
                                    _meta(obj).get("namespace"))
        python, script, auth = proxy or ("python3", "ssh_proxy.py", {})
        where["proxy_command"] = portforward.ssh_args(portforward.proxy_argv(python, script, target, auth))
        # virtctl ssh's host name for it (vm.NAME.NAMESPACE), so known_hosts entries are shared.
        out["ansible_host"] = "%s.%s.%s" % (target.kind, target.name, target.namespace)
        out["ansible_connection"] = "ssh"   # only ssh takes a ProxyCommand; WinRM cannot
        out["ansible_ssh_common_args"] = where["proxy_command"]
        if windows:
            out["ansible_shell_type"] = "powershell"   # Windows' OpenSSH server
        return out, where, windows
    if where["host"]:
        out["ansible_host"] = where["host"]
    if windows:
        guest_port = where["target_port"] or access.WINRM_PORTS[0]
        out["ansible_connection"] = "winrm"
        out["ansible_port"] = where["port"] or guest_port
        out["ansible_winrm_scheme"] = "http" if guest_port == 5985 else "https"
    elif where["port"]:
        out["ansible_port"] = where["port"]
    return out, where, windows


def host_records(data, opts, host_format="{namespace}-{name}", group_by=GROUP_BY_CHOICES, include_stopped=True,
                 include_vmis=True, raw_objects=False, redact=None, proxy=None):
    """JSON-safe host records for one connection's data (``proxy``: see connection_vars)."""
    cluster = data["cluster"]
    records = []
    services = data.get("services") or []
    nodes = data.get("nodes") or {}
    for vm, vmi in pairs(data, include_stopped, include_vmis):
        summ = summary(vm, vmi, cluster)
        conn, where, windows = connection_vars(vm, vmi, services, nodes, opts, proxy)
        summ["address_source"] = where["source"]
        summ["access"] = where["access"]
        summ["proxy_command"] = where.get("proxy_command")
        summ["windows"] = windows
        hostvars = dict(conn)
        hostvars["kubevirt"] = summ
        if raw_objects:
            hostvars["kubevirt_vm"] = redact(vm) if (redact and vm) else vm
            hostvars["kubevirt_vmi"] = redact(vmi) if (redact and vmi) else vmi
        name = host_name(host_format, summ["namespace"], summ["name"], summ["uid"], cluster, summ["kind"])
        records.append({"name": name, "groups": groups_for(summ, vm, vmi, windows, group_by), "vars": hostvars})
    return records
