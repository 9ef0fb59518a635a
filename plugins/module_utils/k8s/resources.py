# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The API resources the collection uses: one static table, no discovery calls.

Every REST path in the collection is built here, so a module never spells a URL itself.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class Resource:
    """One API resource: where it lives and how it is named."""

    __slots__ = ("kind", "group", "version", "plural", "namespaced", "short")

    def __init__(self, kind, group, version, plural, namespaced=True, short=None):
        self.kind = kind
        self.group = group
        self.version = version
        self.plural = plural
        self.namespaced = namespaced
        self.short = short or kind

    @property
    def api_version(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    def path(self, namespace=None, name=None, subresource=None):
        """The REST path: collection, object or subresource."""
        base = "/apis/%s/%s" % (self.group, self.version) if self.group else "/api/%s" % self.version
        if self.namespaced and namespace:
            base += "/namespaces/%s" % quote(namespace, safe="")
        base += "/" + self.plural
        if name:
            base += "/" + quote(name, safe="")
            if subresource:
                base += "/" + subresource
        return base

    def ref(self, name, namespace=None):
        """'VirtualMachine ns/name' for messages."""
        if self.namespaced and namespace:
            return "%s %s/%s" % (self.kind, namespace, name)
        return "%s %s" % (self.kind, name)

    def __repr__(self):
        return "Resource(%s)" % self.kind


KUBEVIRT = "kubevirt.io"
SUBRESOURCES = "subresources.kubevirt.io"
CDI = "cdi.kubevirt.io"
INSTANCETYPES = "instancetype.kubevirt.io"
SNAPSHOTS = "snapshot.kubevirt.io"

_TABLE = [
    Resource("VirtualMachine", KUBEVIRT, "v1", "virtualmachines", short="VM"),
    Resource("VirtualMachineInstance", KUBEVIRT, "v1", "virtualmachineinstances", short="VMI"),
    Resource("VirtualMachineInstanceMigration", KUBEVIRT, "v1", "virtualmachineinstancemigrations"),
    Resource("KubeVirt", KUBEVIRT, "v1", "kubevirts"),
    Resource("VirtualMachineInstancetype", INSTANCETYPES, "v1beta1", "virtualmachineinstancetypes"),
    Resource("VirtualMachineClusterInstancetype", INSTANCETYPES, "v1beta1",
             "virtualmachineclusterinstancetypes", namespaced=False),
    Resource("VirtualMachinePreference", INSTANCETYPES, "v1beta1", "virtualmachinepreferences"),
    Resource("VirtualMachineClusterPreference", INSTANCETYPES, "v1beta1",
             "virtualmachineclusterpreferences", namespaced=False),
    Resource("VirtualMachineSnapshot", SNAPSHOTS, "v1beta1", "virtualmachinesnapshots"),
    Resource("VirtualMachineSnapshotContent", SNAPSHOTS, "v1beta1", "virtualmachinesnapshotcontents"),
    Resource("VirtualMachineRestore", SNAPSHOTS, "v1beta1", "virtualmachinerestores"),
    Resource("VirtualMachineClone", "clone.kubevirt.io", "v1beta1", "virtualmachineclones"),
    Resource("VirtualMachineExport", "export.kubevirt.io", "v1beta1", "virtualmachineexports"),
    Resource("VirtualMachinePool", "pool.kubevirt.io", "v1beta1", "virtualmachinepools"),
    Resource("DataVolume", CDI, "v1beta1", "datavolumes", short="DataVolume"),
    Resource("DataSource", CDI, "v1beta1", "datasources"),
    Resource("NetworkAttachmentDefinition", "k8s.cni.cncf.io", "v1", "network-attachment-definitions"),
    Resource("Pod", "", "v1", "pods"),
    Resource("Event", "", "v1", "events"),
    Resource("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims", short="PVC"),
    Resource("Secret", "", "v1", "secrets"),
    Resource("ConfigMap", "", "v1", "configmaps"),
    Resource("Service", "", "v1", "services"),
    Resource("Namespace", "", "v1", "namespaces", namespaced=False),
    Resource("Node", "", "v1", "nodes", namespaced=False),
    Resource("ServiceAccount", "", "v1", "serviceaccounts"),
    Resource("StorageClass", "storage.k8s.io", "v1", "storageclasses", namespaced=False),
    Resource("VolumeSnapshot", "snapshot.storage.k8s.io", "v1", "volumesnapshots"),
    Resource("VolumeSnapshotClass", "snapshot.storage.k8s.io", "v1", "volumesnapshotclasses", namespaced=False),
    Resource("VolumeSnapshotContent", "snapshot.storage.k8s.io", "v1", "volumesnapshotcontents",
             namespaced=False),
    Resource("ControllerRevision", "apps", "v1", "controllerrevisions"),
]

BY_KIND = {r.kind: r for r in _TABLE}

VM = BY_KIND["VirtualMachine"]
VMI = BY_KIND["VirtualMachineInstance"]
MIGRATION = BY_KIND["VirtualMachineInstanceMigration"]
DATAVOLUME = BY_KIND["DataVolume"]
POD = BY_KIND["Pod"]
EVENT = BY_KIND["Event"]
PVC = BY_KIND["PersistentVolumeClaim"]
NAMESPACE = BY_KIND["Namespace"]
NAD = BY_KIND["NetworkAttachmentDefinition"]
SECRET = BY_KIND["Secret"]
CONTROLLER_REVISION = BY_KIND["ControllerRevision"]


def subresource_path(resource, namespace, name, verb):
    """A subresources.kubevirt.io path, e.g. .../virtualmachines/NAME/start."""
    return "/apis/%s/v1/namespaces/%s/%s/%s/%s" % (
        SUBRESOURCES, quote(namespace, safe=""), resource.plural, quote(name, safe=""), verb)


def get(kind):
    """The Resource for a kind; KeyError names the kinds we know."""
    try:
        return BY_KIND[kind]
    except KeyError:
        raise KeyError("unknown kind %r; known kinds: %s" % (kind, ", ".join(sorted(BY_KIND))))


# -- names ------------------------------------------------------------------------------------------
def suggest_name(name):
    text = re.sub(r"[^a-z0-9-]+", "-", str(name).lower()).strip("-")
    return text[:63].rstrip("-") or "vm"


def check_name(name, what="name", max_len=63):
    """A DNS-1123 label (what KubeVirt needs for VM, disk and network names)."""
    if name is None or name == "":
        raise InputError("%s is required." % what)
    if not isinstance(name, str) or len(name) > max_len or not _DNS_LABEL.match(name):
        raise InputError(
            "%s %r is invalid: use at most %d lowercase letters, digits and '-', starting and ending with a "
            "letter or digit (RFC 1123 label), e.g. %r." % (what, name, max_len, suggest_name(name)))
    return name


def check_namespace(namespace):
    return check_name(namespace, "namespace")
