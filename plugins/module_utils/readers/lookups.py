# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The work of the ``vm`` and ``vmi_address`` lookup plugins, without Ansible's plugin machinery.

Errors are KubevirtError with one sentence; the plugins turn them into AnsibleError.
"""

from __future__ import annotations

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.connection import AUTH_ARG_SPEC
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.selectors import labels_match, parse_label_selector
from ansible_collections.virtops.kubevirt.plugins.module_utils.runner import check_timeout
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    ApiError,
    InputError,
    KubevirtError,
    describe,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.summary import (
    ip_address,
    networks,
    primary_network,
    summaries_for,
)

KINDS = {"vm": res.VM, "vmi": res.VMI}


def auth_params(get_option):
    """The connection options of a plugin, as module params (unset ones left out, so K8S_AUTH_* apply)."""
    params = {}
    for key in AUTH_ARG_SPEC:
        try:
            value = get_option(key)
        except KeyError:
            continue
        if value is not None and value != "" and value != []:
            params[key] = value
    return params


def compile_query(text):
    """A compiled JMESPath expression, or None; InputError names the bad query."""
    if not text:
        return None
    try:
        import jmespath
    except ImportError:
        raise InputError("query needs the jmespath Python package; install it (pip install jmespath).")
    try:
        return jmespath.compile(text)
    except jmespath.exceptions.JMESPathError as exc:
        raise InputError("query %r is not a valid JMESPath expression: %s." % (text, " ".join(str(exc).split())))


def names_from_terms(terms):
    """Lookup terms -> names: strings, lists of strings, or comma-separated strings."""
    names = []
    for term in terms or []:
        items = term if isinstance(term, (list, tuple)) else str(term).split(",")
        for item in items:
            item = str(item).strip()
            if item and item not in names:
                names.append(item)
    return names


def _check_name(name, what):
    res.check_name(name, what)


def find(client, resource, names, namespace, label_selector=None, allow_missing=False):
    """Objects by name (in the order given; None for a missing one when allowed), or by selector."""
    where = "namespace %s" % namespace if namespace else "all namespaces"
    if label_selector:
        requirements = parse_label_selector(label_selector, "label_selector")  # one sentence before any request
    if not names:
        try:
            return client.list(resource, namespace, label_selector=label_selector).get("items") or []
        except ApiError as exc:
            raise KubevirtError(describe(exc, "list", "%ss in %s" % (resource.kind, where)))
    out = []
    for name in names:
        _check_name(name, "name")
        try:
            obj = client.get_or_none(resource, name, namespace)
        except ApiError as exc:
            raise KubevirtError(describe(exc, "read", resource.ref(name, namespace)))
        if obj is None and not allow_missing:
            raise KubevirtError("%s does not exist; check the name and namespace (or set allow_missing=true)." %
                                resource.ref(name, namespace))
        if obj is not None and label_selector and not _labels_match(obj, requirements):
            obj = None
        out.append(obj)
    return out


def _labels_match(obj, selector):
    """Whether a named object matches the label selector, with Kubernetes' semantics (k8s/selectors.py)."""
    return labels_match((obj.get("metadata") or {}).get("labels"), selector, "label_selector")


def vm_lookup(client, names, namespace=None, kind="vm", label_selector=None, query=None, summary=False,
              allow_missing=False):
    """What lookup('virtops.kubevirt.vm', ...) returns: a list, one entry per object."""
    resource = KINDS.get(kind)
    if resource is None:
        raise InputError("kind %r is unknown; use vm or vmi." % kind)
    if names and not namespace:
        namespace = client.namespace
    if namespace:
        _check_name(namespace, "namespace")
    expression = compile_query(query)
    objects = find(client, resource, names, namespace, label_selector, allow_missing)
    present = [o for o in objects if o is not None]
    if summary and present:
        summaries, _got = summaries_for(client, resource.kind, namespace, present,
                                        name=names[0] if len(names) == 1 else None)
        by_key = {(s["namespace"], s["name"]): s for s in summaries}
        values = [by_key.get(_key(o)) if o is not None else None for o in objects]
    else:
        values = [clean_object(o) if o is not None else None for o in objects]
    if expression is not None:
        values = [expression.search(v) if v is not None else None for v in values]
    return values


def _key(obj):
    meta = obj.get("metadata") or {}
    return meta.get("namespace"), meta.get("name")


def clean_object(obj):
    """An object for users (lookups, inventory host variables): the collection's one redaction
    (redact: cloud-init data and other secrets, also in kubectl's last-applied copy), no managedFields."""
    from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import redacted

    return redacted(obj) if obj else obj


# -- vmi_address ---------------------------------------------------------------------------------
def address_of(vmi, network=None, all_addresses=False):
    """The IP (or every IP) of a VMI on ``network`` (default: its first network); None when none."""
    nets = networks(vmi)
    if network:
        data = nets.get(network)
        if data is None:
            return None
        return list(data["ip_addresses"]) if all_addresses else data["ip_address"]
    if all_addresses:
        name = primary_network(vmi)
        if name in nets:
            return list(nets[name]["ip_addresses"])
        for data in nets.values():
            if data["ip_addresses"]:
                return list(data["ip_addresses"])
        return []
    return ip_address(vmi, None)


def _no_address_message(vmi, name, namespace, network):
    nets = networks(vmi)
    known = ", ".join("%s (%s)" % (k, v["ip_address"] or "no IP yet") for k, v in sorted(nets.items())) or "none"
    where = "network %s" % network if network else "its first network"
    return ("VMI %s/%s has no IP address on %s; its interfaces: %s. Use wait=true to wait for one%s." % (
        namespace, name, where, known, "" if network else ", or network= to choose another network"))


def vmi_addresses(client, names, namespace=None, network=None, wait=False, timeout=120, all_addresses=False):
    """What lookup('virtops.kubevirt.vmi_address', ...) returns: one address (or list) per name."""
    from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
    from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import WaitFailed, WaitTimeout

    if not names:
        raise InputError("vmi_address needs at least one VM or VMI name.")
    check_timeout(timeout, "timeout")
    namespace = namespace or client.namespace
    _check_name(namespace, "namespace")
    for name in names:
        _check_name(name, "name")
    vmis = {}
    if wait:
        condition = "ip:%s" % network if network else "ip"
        try:
            vmis, _progress = waiter.wait_vmis(client, namespace, names, [condition], timeout, what="VMI")
        except (WaitTimeout, WaitFailed) as exc:
            raise KubevirtError(str(exc))
        except ApiError as exc:
            raise KubevirtError(describe(exc, "watch", "VirtualMachineInstances in namespace %s" % namespace))
    out = []
    for name in names:
        vmi = vmis.get(name)
        if vmi is None:
            try:
                vmi = client.get_or_none(res.VMI, name, namespace)
            except ApiError as exc:
                raise KubevirtError(describe(exc, "read", res.VMI.ref(name, namespace)))
        if vmi is None:
            raise KubevirtError("VMI %s/%s does not exist: the VM is not running (start it with "
                                "virtops.kubevirt.vm_power), or check the name; wait=true waits for it." % (
                                    namespace, name))
        address = address_of(vmi, network, all_addresses)
        if not address:
            raise KubevirtError(_no_address_message(vmi, name, namespace, network))
        out.append(address)
    return out
