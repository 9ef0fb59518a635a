# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checks made before a module's first write, for every module that writes.

A VM, VMI, DataVolume or PVC can name objects the task does not create: PersistentVolumeClaims,
DataVolumes, NetworkAttachmentDefinitions, StorageClasses, instancetypes and preferences, network
binding plugins, Secrets (cloud-init's, accessCredentials'). KubeVirt and CDI accept such an object
and leave it unable to start or to bind, so ``references()`` lists what an object names and
``check()`` reads each of them once, concurrently, before anything is written. ``wait_network_problem()`` says when ``wait_for: ip:NAME`` names a
network the VM does not have (the wait could only time out).

One policy for every module:

- a missing object fails the task (or that VM of a ``vms`` list) with one sentence naming the option;
  in check mode it is a warning, since an earlier task of the same check-mode run may be the one
  that creates it;
- a forbidden read of a namespaced object is a warning ("Could not check that ... exists");
- a forbidden read of a cluster-wide one (StorageClass, cluster instancetype or preference, the
  KubeVirt CR) skips that check quietly: roles bound in one namespace can't read them, and they are
  optional reads (docs/rbac.md, docs/rbac/cluster-reader.yml);
- any other read error skips the check: the write itself reports it.
"""

from __future__ import annotations

import difflib
from collections import namedtuple

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import parallel
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError, InputError, KubevirtError
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.spec import BINDINGS_BUILTIN

# One thing an object names: ``resource`` is a k8s Resource, or BINDING for a network binding plugin
# (registered by name in the KubeVirt CR); ``where`` says which part of the object names it.
Ref = namedtuple("Ref", "resource namespace name where")
BINDING = "binding plugin"

STORAGE_CLASS = res.BY_KIND["StorageClass"]
KUBEVIRT = res.BY_KIND["KubeVirt"]
INSTANCETYPE_KINDS = {
    "instancetype": (res.BY_KIND["VirtualMachineClusterInstancetype"], res.BY_KIND["VirtualMachineInstancetype"]),
    "preference": (res.BY_KIND["VirtualMachineClusterPreference"], res.BY_KIND["VirtualMachinePreference"]),
}
SPEC_MATCHERS = tuple(r for pair in INSTANCETYPE_KINDS.values() for r in pair)

HINTS = {
    "PersistentVolumeClaim": "create it first (virtops.kubevirt.volume with kind: pvc) or check the disk's pvc",
    "DataVolume": "create it first (virtops.kubevirt.volume) or check the disk's data_volume",
    "NetworkAttachmentDefinition": "create it first (virtops.kubevirt.network) or check the network's network_name",
    "VirtualMachineClusterInstancetype": "check the name (kubectl get virtualmachineclusterinstancetypes), or set "
                                         "kind: VirtualMachineInstancetype for one of the VM's namespace",
    "VirtualMachineInstancetype": "create it in the VM's namespace first, or check the name and kind",
    "VirtualMachineClusterPreference": "check the name (kubectl get virtualmachineclusterpreferences), or set "
                                       "kind: VirtualMachinePreference for one of the VM's namespace",
    "VirtualMachinePreference": "create it in the VM's namespace first, or check the name and kind",
    "Secret": "create it in the VM's namespace first (KubeVirt reads it when the VM starts), or check the name",
}


def _mapping(value):
    return value if isinstance(value, dict) else {}


def _items(value):
    return [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []


def template_spec(obj):
    """The VMI spec of a VM (its template's) or of a VMI."""
    spec = _mapping(obj.get("spec"))
    if obj.get("kind") == "VirtualMachine":
        return _mapping(_mapping(spec.get("template")).get("spec"))
    return spec


def references(obj):
    """[Ref] of what a VirtualMachine, VirtualMachineInstance, DataVolume or PersistentVolumeClaim object
    names. DataVolumes of a VM's own dataVolumeTemplates are left out (KubeVirt creates them)."""
    kind = obj.get("kind")
    namespace = _mapping(obj.get("metadata")).get("namespace")
    spec = _mapping(obj.get("spec"))
    if kind in ("DataVolume", "PersistentVolumeClaim"):
        target = spec if kind == "PersistentVolumeClaim" else _mapping(spec.get("storage") or spec.get("pvc"))
        name = target.get("storageClassName")
        return [Ref(STORAGE_CLASS, None, name, "storage_class")] if name else []
    tspec = template_spec(obj)
    out = []
    templates = {}
    if kind == "VirtualMachine":
        for option, (cluster_kind, namespaced_kind) in INSTANCETYPE_KINDS.items():
            matcher = _mapping(spec.get(option))
            # inferFromVolume names no object; a revisionName is a ControllerRevision KubeVirt keeps.
            if matcher.get("name") and not matcher.get("inferFromVolume") and not matcher.get("revisionName"):
                resource = namespaced_kind if matcher.get("kind") == namespaced_kind.kind else cluster_kind
                out.append(Ref(resource, namespace if resource.namespaced else None, matcher["name"], option))
        for tpl in _items(spec.get("dataVolumeTemplates")):
            templates[_mapping(tpl.get("metadata")).get("name")] = tpl
    for volume in _items(tspec.get("volumes")):
        where = "volume %r" % volume.get("name")
        pvc = _mapping(volume.get("persistentVolumeClaim"))
        if pvc.get("claimName"):
            out.append(Ref(res.PVC, namespace, pvc["claimName"], where))
        dv_name = _mapping(volume.get("dataVolume")).get("name")
        if dv_name and dv_name in templates:
            tspec_ = _mapping(templates.pop(dv_name).get("spec"))
            target = _mapping(tspec_.get("storage") or tspec_.get("pvc"))
            if target.get("storageClassName"):
                out.append(Ref(STORAGE_CLASS, None, target["storageClassName"], "storage class of " + where))
        elif dv_name:
            out.append(Ref(res.DATAVOLUME, namespace, dv_name, where))
        for source in (_mapping(volume.get("cloudInitNoCloud")), _mapping(volume.get("cloudInitConfigDrive"))):
            for field in ("secretRef", "networkDataSecretRef"):
                secret = _mapping(source.get(field)).get("name")
                if secret:
                    out.append(Ref(res.SECRET, namespace, secret, where))
    for name, tpl in templates.items():  # templates no volume uses (KubeVirt refuses those, but say it first)
        target = _mapping(_mapping(tpl.get("spec")).get("storage") or _mapping(tpl.get("spec")).get("pvc"))
        if target.get("storageClassName"):
            out.append(Ref(STORAGE_CLASS, None, target["storageClassName"], "storage class of DataVolume template "
                           "%r" % name))
    for network in _items(tspec.get("networks")):
        multus = _mapping(network.get("multus"))
        if multus.get("networkName"):
            text = str(multus["networkName"])
            ns, name = text.split("/", 1) if "/" in text else (namespace, text)
            out.append(Ref(res.NAD, ns, name, "network %r" % network.get("name")))
    for iface in _items(_mapping(_mapping(tspec.get("domain")).get("devices")).get("interfaces")):
        plugin = _mapping(iface.get("binding")).get("name")
        if plugin:
            out.append(Ref(BINDING, None, plugin, "network %r" % iface.get("name")))
    for idx, credential in enumerate(_items(tspec.get("accessCredentials"))):
        for field, option in (("sshPublicKey", "ssh_public_key"), ("userPassword", "user_password")):
            secret = _mapping(_mapping(_mapping(credential.get(field)).get("source")).get("secret")).get("secretName")
            if secret:
                out.append(Ref(res.SECRET, namespace, secret, "access_credentials[%d].%s" % (idx, option)))
    return out


def describe(ref):
    """'PersistentVolumeClaim demo/x', "StorageClass 'fast'", "binding plugin 'passt'"."""
    if ref.resource is BINDING:
        return "binding plugin %r" % ref.name
    if ref.resource.namespaced:
        return "%s %s/%s" % (ref.resource.kind, ref.namespace, ref.name)
    return "%s %r" % (ref.resource.kind, ref.name)


def registered_bindings(client):
    """The network binding plugins registered in the cluster's KubeVirt CR (spec.configuration.network.
    binding), or None when that can't be read (no permission, no KubeVirt CRD, no KubeVirt CR)."""
    try:
        items = client.list(KUBEVIRT).get("items") or []
    except ApiError:
        return None
    if not items:
        return None
    names = set()
    for kubevirt in items:
        config = _mapping(_mapping(kubevirt.get("spec")).get("configuration"))
        names.update(_mapping(_mapping(config.get("network")).get("binding")))
    return names


def _exists(client, key):
    """(True / False / None when unknown, a warning or None) for one (resource, namespace, name)."""
    resource, namespace, name = key
    try:
        found = client.get_or_none(resource, name, namespace)
        if found is None and resource is res.DATAVOLUME:
            # CDI may have garbage-collected a completed DataVolume; KubeVirt then uses its PVC.
            found = client.get_or_none(res.PVC, name, namespace)
    except ApiError as exc:
        if exc.status == 403 and resource.namespaced:
            return None, "Could not check that %s exists (%s)." % (
                describe(Ref(resource, namespace, name, None)), exc.api_message or exc.reason)
        return None, None
    return found is not None, None


def _storage_classes(client):
    listing = parallel.read_quiet(lambda: client.list(STORAGE_CLASS), {}) or {}
    return sorted(_mapping(i.get("metadata")).get("name") for i in listing.get("items") or [])


def _problem(client, ref, owner, bindings=None):
    """The sentence for a missing ``ref`` of ``owner`` (e.g. 'VirtualMachine demo/web1')."""
    text = "%s (%s of %s)" % (describe(ref), ref.where, owner)
    if ref.resource is BINDING:
        known = sorted(set(BINDINGS_BUILTIN) | bindings)
        close = difflib.get_close_matches(ref.name, known, n=1)
        return "%s is not registered in the cluster's KubeVirt CR (spec.configuration.network.binding has %s); " \
               "%suse one of %s as the network's binding, or register the plugin first." % (
                   text, ", ".join(sorted(bindings)) or "none", "did you mean %s? " % close[0] if close else "",
                   ", ".join(known))
    if ref.resource is STORAGE_CLASS:
        known = _storage_classes(client)
        option = "storage_class" if ref.where == "storage_class" else "the disk's data_volume_template.storage_class"
        return "%s does not exist; %sor leave %s out for the cluster's default storage class." % (
            text, "use one of %s, " % ", ".join(known) if known else "check the name, ", option)
    return "%s does not exist; %s." % (text, HINTS[ref.resource.kind])


def check(client, wanted, check_mode, warnings):
    """Read what ``wanted`` ({Ref: [owner, ...]}) names; -> {owner: the first problem's sentence}.

    Owners are the objects that name them, as the messages say them ('VirtualMachine demo/web1').
    In check mode the problems are warnings and the result is empty. Forbidden reads add to
    ``warnings`` (see the module docstring).
    """
    if not wanted:
        return {}
    keys = sorted({(r.resource, r.namespace, r.name) for r in wanted if r.resource is not BINDING},
                  key=lambda k: (k[0].kind, k[1] or "", k[2]))
    has_bindings = any(r.resource is BINDING for r in wanted)
    jobs = [("binding", None)] * has_bindings + [("object", k) for k in keys]

    def read(job):
        what, key = job
        return registered_bindings(client) if what == "binding" else _exists(client, key)

    found, bindings = {}, None
    for (what, key), result, _error in parallel.parallel(read, jobs):
        if what == "binding":
            bindings = result
            continue
        exists, warning = result if result is not None else (None, None)
        found[key] = exists
        if warning:
            warnings.append(warning)
    problems = {}
    for ref, owners in wanted.items():
        if ref.resource is BINDING:
            if bindings is None or ref.name in bindings or ref.name in BINDINGS_BUILTIN:
                continue
        elif found.get((ref.resource, ref.namespace, ref.name)) is not False:
            continue
        for owner in owners:
            text = _problem(client, ref, owner, bindings)
            if check_mode:
                warnings.append(text)
            else:
                problems.setdefault(owner, text)
    return problems


def network_names(obj):
    """The network names of a VM (its template) or VMI; KubeVirt's own pod network 'default' when the
    spec has neither networks nor interfaces (KubeVirt attaches it then)."""
    tspec = template_spec(obj)
    devices = _mapping(_mapping(tspec.get("domain")).get("devices"))
    names = [n.get("name") for n in _items(tspec.get("networks"))]
    if not names and devices.get("interfaces") is None and devices.get("autoattachPodInterface") is not False:
        names = ["default"]
    return names


def wait_network_problem(conditions, obj, owner):
    """The sentence when a ``wait_for`` condition ip:NAME names a network ``obj`` does not have, else None."""
    names = network_names(obj)
    for condition in conditions:
        base, _sep, network = condition.partition(":")
        if base == "ip" and network and network not in names:
            return ("wait_for %r names no network of %s (its networks: %s); use ip:%s or plain ip (the first "
                    "network)." % (condition, owner, ", ".join(names) or "none", names[0] if names else "NAME"))
    return None


def require_wait_networks(conditions, obj, owner):
    """wait_network_problem() as an InputError, for a module that waits for one object."""
    problem = wait_network_problem(conditions, obj, owner)
    if problem:
        raise InputError(problem)


def require(client, refs, owner, check_mode, warnings):
    """check() for one object's [Ref]: raises KubevirtError with the first problem."""
    problems = check(client, {ref: [owner] for ref in refs}, check_mode, warnings)
    if problems:
        raise KubevirtError(problems[owner])


def template_references(namespace, tspec):
    """references() of a piece of a VMI spec (the disk of vm_volume, the interface of vm_nic)."""
    return references({"kind": "VirtualMachineInstance", "metadata": {"namespace": namespace}, "spec": tspec})
