# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""High-level module options -> VirtualMachine / VirtualMachineInstance objects.

Pure functions: no I/O, no Ansible. Every check that can be made before talking to the API is made
here and raises InputError with one sentence naming the option and the value.
"""

from __future__ import annotations

import copy
import json
import re

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.resources import check_name

API_VERSION = "kubevirt.io/v1"
CLOUD_INIT_MAX = 2048
CLOUD_INIT_VOLUME = "cloudinit"

RUN_STRATEGIES = ["Always", "Halted", "Manual", "RerunOnFailure", "Once"]
DISK_SOURCES = ("image", "pvc", "data_volume", "data_volume_template", "empty_disk")
DV_SOURCES = ("http", "registry", "pvc", "data_source", "blank")
NETWORK_TYPES = ["pod", "multus", "sriov"]
BINDINGS_BUILTIN = ("masquerade", "bridge", "sriov")

# -- argument specs shared by the vm and vmi modules (documented in doc_fragments/vmspec.py) --
PORT_SPEC = dict(
    name=dict(type="str"),
    port=dict(type="int", required=True),
    protocol=dict(type="str", choices=["TCP", "UDP"], default="TCP"),
)

NETWORK_SPEC = dict(
    name=dict(type="str", required=True),
    type=dict(type="str", choices=NETWORK_TYPES),
    network_name=dict(type="str"),
    binding=dict(type="str"),
    default=dict(type="bool", default=False),
    mac=dict(type="str"),
    model=dict(type="str"),
    ports=dict(type="list", elements="dict", options=PORT_SPEC),
)

DV_TEMPLATE_SPEC = dict(
    name=dict(type="str"),
    size=dict(type="str", required=True),
    storage_class=dict(type="str"),
    access_modes=dict(type="list", elements="str"),
    volume_mode=dict(type="str", choices=["Filesystem", "Block"]),
    http=dict(type="str"),
    registry=dict(type="str"),
    pvc=dict(type="str"),
    data_source=dict(type="str"),
    blank=dict(type="bool", default=False),
)

DISK_SPEC = dict(
    name=dict(type="str", required=True),
    type=dict(type="str", choices=["disk", "cdrom", "lun"], default="disk"),
    bus=dict(type="str", choices=["virtio", "sata", "scsi", "usb"]),
    boot_order=dict(type="int"),
    readonly=dict(type="bool"),
    serial=dict(type="str"),
    cache=dict(type="str", choices=["none", "writethrough", "writeback"]),
    image=dict(type="str"),
    image_pull_policy=dict(type="str", choices=["Always", "IfNotPresent", "Never"]),
    pvc=dict(type="str"),
    data_volume=dict(type="str"),
    data_volume_template=dict(type="dict", options=DV_TEMPLATE_SPEC),
    empty_disk=dict(type="str"),
    hotpluggable=dict(type="bool"),
)

CLOUD_INIT_SPEC = dict(
    type=dict(type="str", choices=["nocloud", "configdrive"], default="nocloud"),
    user=dict(type="str"),
    password=dict(type="str", no_log=True),
    ssh_authorized_keys=dict(type="list", elements="str", no_log=False),
    hostname=dict(type="str"),
    user_data=dict(type="str", no_log=True),
    network_data=dict(type="str"),
    secret=dict(type="str", no_log=False),
    network_data_secret=dict(type="str", no_log=False),
)

ACCESS_PROPAGATIONS = {"qemu_guest_agent": "qemuGuestAgent", "nocloud": "noCloud", "configdrive": "configDrive"}
SSH_PUBLIC_KEY_SPEC = dict(
    secret=dict(type="str", required=True, no_log=False),
    propagation=dict(type="str", choices=list(ACCESS_PROPAGATIONS), default="qemu_guest_agent"),
    users=dict(type="list", elements="str"),
)
USER_PASSWORD_SPEC = dict(
    secret=dict(type="str", required=True, no_log=False),
)
ACCESS_CREDENTIAL_SPEC = dict(
    ssh_public_key=dict(type="dict", options=SSH_PUBLIC_KEY_SPEC),
    user_password=dict(type="dict", options=USER_PASSWORD_SPEC, no_log=False),
)
ACCESS_CREDENTIALS_MAX = 256   # the CRD's maxItems

CPU_SPEC = dict(
    cores=dict(type="int"),
    sockets=dict(type="int"),
    threads=dict(type="int"),
    max_sockets=dict(type="int"),
    model=dict(type="str"),
)
MEMORY_KEYS = ("guest", "max_guest")

FIRMWARE_SPEC = dict(
    bootloader=dict(type="str", choices=["bios", "efi"], default="bios"),
    secure_boot=dict(type="bool", default=False),
)

SPEC_ARG_SPEC = dict(
    labels=dict(type="dict"),
    annotations=dict(type="dict"),
    instancetype=dict(type="raw"),
    preference=dict(type="raw"),
    cpu=dict(type="dict", options=CPU_SPEC),
    memory=dict(type="raw"),
    machine_type=dict(type="str"),
    firmware=dict(type="dict", options=FIRMWARE_SPEC),
    disks=dict(type="list", elements="dict", options=DISK_SPEC),
    cloud_init=dict(type="dict", options=CLOUD_INIT_SPEC, no_log=False),
    access_credentials=dict(type="list", elements="dict", options=ACCESS_CREDENTIAL_SPEC, no_log=False),
    networks=dict(type="list", elements="dict", options=NETWORK_SPEC),
    node_selector=dict(type="dict"),
    tolerations=dict(type="list", elements="dict"),
    affinity=dict(type="dict"),
    eviction_strategy=dict(type="str", choices=["LiveMigrate", "LiveMigrateIfPossible", "External", "None"]),
    termination_grace_period=dict(type="int"),
    hostname=dict(type="str"),
    spec=dict(type="dict"),
)

# Options that describe the template spec; without any of them a task on an existing VM touches
# only labels, annotations and the run strategy.
TEMPLATE_OPTIONS = ("instancetype", "preference", "cpu", "memory", "machine_type", "firmware", "disks",
                    "cloud_init", "access_credentials", "networks", "node_selector", "tolerations", "affinity", "eviction_strategy",
                    "termination_grace_period", "hostname", "spec")

# -- validation helpers ----------------------------------------------------------------------------
_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
_DURATION = re.compile(r"^((\d+(\.\d+)?)(h|m|s|ms))+$")
_BINARY = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
_DECIMAL = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_UNIT_FIX = {"k": "Ki", "kb": "Ki", "kib": "Ki", "ki": "Ki", "m": "Mi", "mb": "Mi", "mib": "Mi", "mi": "Mi",
             "g": "Gi", "gb": "Gi", "gib": "Gi", "gi": "Gi", "t": "Ti", "tb": "Ti", "tib": "Ti", "ti": "Ti"}


def is_mac(text):
    """A MAC address as KubeVirt takes it (02:00:00:00:00:01 or 02-00-...)."""
    return bool(_MAC.match(str(text)))


def check_duration(value, option, examples="5m, 1h30m or 90s"):
    """A metav1.Duration option (a Go duration: 5m, 1h30m, 90s): the text; InputError naming the option else."""
    text = str(value).strip()
    if not _DURATION.match(text):
        raise InputError("%s %r is not a duration; use for example %s." % (option, value, examples))
    return text


def suggest_quantity(value):
    text = str(value).strip().replace(" ", "")
    match = re.match(r"^(\d+(?:\.\d+)?)([A-Za-z]+)$", text)
    if match and match.group(2).lower() in _UNIT_FIX:
        return match.group(1) + _UNIT_FIX[match.group(2).lower()]
    return None


def check_quantity(value, what, min_bytes=None):
    """A Kubernetes quantity such as 2Gi; returns it as a string."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _QUANTITY.match(value.strip()):
        hint = suggest_quantity(value)
        raise InputError("%s %r is not a Kubernetes quantity; %s" % (
            what, value, "did you mean %r?" % hint if hint else
            "write it as a number with a binary suffix such as 2Gi, 512Mi or 20Gi."))
    value = value.strip()
    if min_bytes and quantity_bytes(value) < min_bytes:
        raise InputError("%s %r is only %d bytes; did you mean %r?" % (
            what, value, quantity_bytes(value), value + "Mi" if re.match(r"^\d+$", value) else "1Gi"))
    return value


def quantity_bytes(value):
    """A quantity as a number (bytes for sizes)."""
    value = str(value).strip()
    for suffix, factor in _BINARY.items():
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    match = re.match(r"^(.*?)([eE][+-]?\d+)$", value)
    if match and match.group(1):
        return float(match.group(1)) * 10 ** int(match.group(2)[1:])
    if value and value[-1] in _DECIMAL:
        return float(value[:-1]) * _DECIMAL[value[-1]]
    return float(value)


def split_ns_name(value, what, default_ns=None):
    """'ns/name' or 'name' -> (ns, name)."""
    text = str(value or "")
    if text.count("/") > 1 or text.startswith("/") or text.endswith("/") or not text:
        raise InputError("%s %r must be 'name' or 'namespace/name'." % (what, value))
    if "/" in text:
        ns, name = text.split("/", 1)
        return ns, name
    return default_ns, text


def _clean(obj):
    """Drop None values and empty dicts created by optional options (keep explicit {})."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def deep_merge(base, over):
    """Merge ``over`` into a copy of ``base``: dicts recursively, lists of named dicts by name."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(over, list) and _named_list(base) and _named_list(over):
        out = [copy.deepcopy(i) for i in base]
        index = {item["name"]: n for n, item in enumerate(out)}
        for item in over:
            if item["name"] in index:
                out[index[item["name"]]] = deep_merge(out[index[item["name"]]], item)
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(over)


def _named_list(items):
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


# -- pieces ----------------------------------------------------------------------------------------
INFER_POLICIES = ("Reject", "Ignore")    # v1.InferFromVolumeFailurePolicy values
MATCHER_KEYS = ("name", "kind", "revision_name", "revisionName", "infer_from_volume",
                "infer_from_volume_failure_policy")


def matcher(value, what):
    """instancetype / preference: 'name', {name, kind} or {infer_from_volume, infer_from_volume_failure_policy}
    -> the VM matcher (KubeVirt's VM mutator fills name and kind in from the volume's labels at creation)."""
    if value is None:
        return None
    if isinstance(value, str):
        return {"name": value}
    if not isinstance(value, dict):
        raise InputError("%s must be a name or a dict with name and optional kind (or infer_from_volume), got %r." % (
            what, value))
    unknown = set(value) - set(MATCHER_KEYS)
    if unknown:
        raise InputError("%s has unknown keys %s; use name and kind, or infer_from_volume and "
                         "infer_from_volume_failure_policy." % (what, ", ".join(sorted(unknown))))
    policy = value.get("infer_from_volume_failure_policy")
    if value.get("infer_from_volume"):
        given = [k for k in ("name", "kind") if value.get(k)]
        if given:
            raise InputError("%s.%s can't be set together with %s.infer_from_volume: KubeVirt infers the %s from the "
                             "volume's labels; drop one." % (what, given[0], what, what))
        out = {"inferFromVolume": value["infer_from_volume"]}
        if policy:
            if policy not in INFER_POLICIES:
                raise InputError("%s.infer_from_volume_failure_policy %r is unknown; use Reject (the default: KubeVirt "
                                 "refuses the VM when it can't infer) or Ignore (the VM is created without %s)." % (
                                     what, policy, what))
            out["inferFromVolumeFailurePolicy"] = policy
        return out
    if policy:
        raise InputError("%s.infer_from_volume_failure_policy needs %s.infer_from_volume." % (what, what))
    if not value.get("name"):
        raise InputError("%s must be a name or a dict with name and optional kind (or infer_from_volume), got %r." % (
            what, value))
    out = {"name": value["name"]}
    kind = value.get("kind")
    if kind:
        base = "Instancetype" if what == "instancetype" else "Preference"
        kinds = {"namespaced": "VirtualMachine" + base, "cluster": "VirtualMachineCluster" + base,
                 ("virtualmachine%s" % base).lower(): "VirtualMachine" + base,
                 ("virtualmachinecluster%s" % base).lower(): "VirtualMachineCluster" + base}
        if kind.lower() not in kinds:
            raise InputError("%s kind %r is unknown; use VirtualMachine%s or VirtualMachineCluster%s." % (
                what, kind, base, base))
        out["kind"] = kinds[kind.lower()]
    if value.get("revision_name") or value.get("revisionName"):
        out["revisionName"] = value.get("revision_name") or value.get("revisionName")
    return out


def matcher_label(m):
    """How a matcher is named in messages: its name, or the volume it is inferred from."""
    return repr(m["name"]) if m.get("name") else "inferred from volume %r" % m.get("inferFromVolume")


def check_infer_volumes(spec):
    """An inferFromVolume must name a volume of the template (KubeVirt: 'unable to find volume X to infer
    defaults')."""
    volumes = [v.get("name") for v in ((spec.get("template") or {}).get("spec") or {}).get("volumes") or []
               if isinstance(v, dict)]
    for what in ("instancetype", "preference"):
        volume = (spec.get(what) or {}).get("inferFromVolume")
        if volume and volume not in volumes:
            raise InputError("%s.infer_from_volume %r is not a volume of the VM (%s); name the disk whose PVC, "
                             "DataVolume or DataSource carries the instancetype.kubevirt.io/default-%s label." % (
                                 what, volume, ", ".join(volumes) or "it has none", what))


def build_cpu(cpu):
    if not cpu:
        return None
    out = {}
    for key, field in (("cores", "cores"), ("sockets", "sockets"), ("threads", "threads"),
                       ("max_sockets", "maxSockets")):
        if cpu.get(key) is not None:
            if not isinstance(cpu[key], int) or isinstance(cpu[key], bool) or cpu[key] < 1:
                raise InputError("cpu.%s must be a positive integer, got %r." % (key, cpu[key]))
            out[field] = cpu[key]
    if out.get("maxSockets") and out.get("sockets", 1) > out["maxSockets"]:
        # KubeVirt's VM webhook refuses it; say so before writing
        raise InputError("cpu.sockets %d is more than cpu.max_sockets %d; raise max_sockets (the most sockets the "
                         "VM can have without a restart) or lower sockets." % (out.get("sockets", 1),
                                                                               out["maxSockets"]))
    if cpu.get("model"):
        out["model"] = cpu["model"]
    return out or None


def build_memory(memory):
    """memory: '2Gi' or {guest, max_guest} -> domain.memory (guest, maxGuest)."""
    if memory is None or memory == "":
        return None
    if isinstance(memory, (list, bool)):
        raise InputError("memory must be a quantity such as 2Gi or a dict with guest and max_guest, not %s %r."
                         % ("a list" if isinstance(memory, list) else "a boolean", memory))
    if not isinstance(memory, dict):
        return {"guest": check_quantity(memory, "memory", min_bytes=2 ** 20)}
    unknown = sorted(set(memory) - set(MEMORY_KEYS))
    if unknown:
        raise InputError("memory has unknown keys %s; use guest and max_guest (or a quantity such as 2Gi)." %
                         ", ".join(unknown))
    out = {}
    if memory.get("guest") is not None:
        out["guest"] = check_quantity(memory["guest"], "memory.guest", min_bytes=2 ** 20)
    if memory.get("max_guest") is not None:
        out["maxGuest"] = check_quantity(memory["max_guest"], "memory.max_guest", min_bytes=2 ** 20)
    if out.get("guest") and out.get("maxGuest") and quantity_bytes(out["guest"]) > quantity_bytes(out["maxGuest"]):
        raise InputError("memory.guest %s is more than memory.max_guest %s; raise max_guest (the most memory the VM "
                         "can have without a restart) or lower guest." % (out["guest"], out["maxGuest"]))
    return out or None


def build_firmware(firmware):
    if not firmware:
        return None, None
    bootloader = firmware.get("bootloader") or "bios"
    secure = bool(firmware.get("secure_boot"))
    if secure and bootloader != "efi":
        raise InputError("firmware.secure_boot needs firmware.bootloader efi.")
    if bootloader == "efi":
        return {"bootloader": {"efi": {"secureBoot": secure}}}, ({"smm": {"enabled": True}} if secure else None)
    return {"bootloader": {"bios": {}}}, None


def _dv_template(disk, vm_name):
    tpl = disk["data_volume_template"]
    name = tpl.get("name") or "%s-%s" % (vm_name, disk["name"])
    check_name(name, "disk %r data_volume_template.name" % disk["name"], max_len=253 if tpl.get("name") else 63)
    size = check_quantity(tpl.get("size"), "disk %r data_volume_template.size" % disk["name"], min_bytes=2 ** 20)
    given = [k for k in DV_SOURCES if tpl.get(k)]
    if len(given) > 1:
        raise InputError("disk %r data_volume_template has %d sources (%s); give exactly one of %s." % (
            disk["name"], len(given), ", ".join(given), ", ".join(DV_SOURCES)))
    spec = {}
    source = given[0] if given else "blank"
    if source == "http":
        spec["source"] = {"http": {"url": tpl["http"]}}
    elif source == "registry":
        url = tpl["registry"]
        if "://" not in url:
            url = "docker://" + url
        spec["source"] = {"registry": {"url": url}}
    elif source == "pvc":
        ns, pvc = split_ns_name(tpl["pvc"], "disk %r data_volume_template.pvc" % disk["name"])
        spec["source"] = {"pvc": _clean({"namespace": ns, "name": pvc})}
    elif source == "data_source":
        ns, ds = split_ns_name(tpl["data_source"], "disk %r data_volume_template.data_source" % disk["name"])
        spec["sourceRef"] = _clean({"kind": "DataSource", "name": ds, "namespace": ns})
    else:
        spec["source"] = {"blank": {}}
    storage = {"resources": {"requests": {"storage": size}}}
    if tpl.get("storage_class"):
        storage["storageClassName"] = tpl["storage_class"]
    if tpl.get("access_modes"):
        storage["accessModes"] = list(tpl["access_modes"])
    if tpl.get("volume_mode"):
        storage["volumeMode"] = tpl["volume_mode"]
    spec["storage"] = storage
    return {"metadata": {"name": name}, "spec": spec}


def build_disks(disks, vm_name, allow_templates=True):
    """disks option -> (disks, volumes, dataVolumeTemplates)."""
    out_disks, volumes, templates = [], [], []
    seen = set()
    for disk in disks or []:
        name = disk.get("name")
        check_name(name, "disk name")
        if name in seen:
            raise InputError("disk name %r is used twice; disk names must be unique." % name)
        seen.add(name)
        if name == CLOUD_INIT_VOLUME:
            raise InputError("disk name %r is reserved for cloud_init; choose another name." % name)
        given = [k for k in DISK_SOURCES if disk.get(k)]
        if len(given) > 1:
            raise InputError("disk %r has %d sources (%s); give exactly one of %s." % (
                name, len(given), ", ".join(given), ", ".join(DISK_SOURCES)))
        if not given:
            raise InputError("disk %r has no source; give one of %s." % (name, ", ".join(DISK_SOURCES)))
        source = given[0]
        dtype = disk.get("type") or "disk"
        target = {}
        if disk.get("bus"):
            if dtype == "cdrom" and disk["bus"] == "virtio":
                raise InputError("disk %r is a cdrom, which can't use bus virtio; use sata or scsi." % name)
            target["bus"] = disk["bus"]
        if disk.get("readonly") is not None:
            if dtype == "cdrom":
                raise InputError("disk %r is a cdrom, which is always read-only; drop readonly." % name)
            target["readonly"] = bool(disk["readonly"])
        entry = {"name": name, dtype: target}
        if disk.get("boot_order") is not None:
            if disk["boot_order"] < 1:
                raise InputError("disk %r boot_order must be 1 or more, got %r." % (name, disk["boot_order"]))
            entry["bootOrder"] = disk["boot_order"]
        if disk.get("serial"):
            entry["serial"] = disk["serial"]
        if disk.get("cache"):
            entry["cache"] = disk["cache"]
        volume = {"name": name}
        if disk.get("image_pull_policy") and source != "image":
            raise InputError("disk %r: image_pull_policy applies to image disks only." % name)
        if disk.get("hotpluggable") and source not in ("pvc", "data_volume"):
            raise InputError("disk %r: hotpluggable applies to pvc and data_volume disks only." % name)
        if source == "image":
            volume["containerDisk"] = _clean({"image": disk["image"], "imagePullPolicy": disk.get("image_pull_policy")})
        elif source == "pvc":
            volume["persistentVolumeClaim"] = _clean({"claimName": disk["pvc"],
                                                      "hotpluggable": disk.get("hotpluggable") or None})
        elif source == "data_volume":
            volume["dataVolume"] = _clean({"name": disk["data_volume"], "hotpluggable": disk.get("hotpluggable") or None})
        elif source == "data_volume_template":
            if not allow_templates:
                raise InputError("disk %r: data_volume_template needs a VirtualMachine; a stand-alone VMI can use an "
                                 "existing data_volume or pvc." % name)
            tpl = _dv_template(disk, vm_name)
            templates.append(tpl)
            volume["dataVolume"] = {"name": tpl["metadata"]["name"]}
        else:
            volume["emptyDisk"] = {"capacity": check_quantity(disk["empty_disk"], "disk %r empty_disk" % name,
                                                              min_bytes=2 ** 20)}
        out_disks.append(entry)
        volumes.append(volume)
    return out_disks, volumes, templates


def _yaml_str(value):
    return json.dumps(str(value))


def cloud_config(cloud_init):
    """user/password/ssh_authorized_keys/hostname -> '#cloud-config' text (deterministic)."""
    lines = ["#cloud-config"]
    if cloud_init.get("hostname"):
        lines.append("hostname: %s" % _yaml_str(cloud_init["hostname"]))
    if cloud_init.get("user"):
        lines.append("user: %s" % _yaml_str(cloud_init["user"]))
    if cloud_init.get("password"):
        lines.append("password: %s" % _yaml_str(cloud_init["password"]))
        lines.append("chpasswd:")
        lines.append("  expire: false")
        lines.append("ssh_pwauth: true")
    keys = cloud_init.get("ssh_authorized_keys") or []
    if keys:
        lines.append("ssh_authorized_keys:")
        for key in keys:
            lines.append("  - %s" % _yaml_str(key.strip()))
    return "\n".join(lines) + "\n"


def build_cloud_init(cloud_init):
    """cloud_init option -> (disk, volume) or (None, None)."""
    if not cloud_init:
        return None, None
    generated = [k for k in ("user", "password", "ssh_authorized_keys", "hostname") if cloud_init.get(k)]
    if cloud_init.get("user_data") and generated:
        raise InputError("cloud_init.user_data can't be combined with %s; put them in user_data or drop user_data."
                         % ", ".join("cloud_init.%s" % k for k in generated))
    if cloud_init.get("secret") and (generated or cloud_init.get("user_data")):
        raise InputError("cloud_init.secret can't be combined with %s; the Secret holds the user data."
                         % ", ".join("cloud_init.%s" % k for k in (generated or ["user_data"])))
    if cloud_init.get("network_data") and cloud_init.get("network_data_secret"):
        raise InputError("cloud_init.network_data and cloud_init.network_data_secret are mutually exclusive.")
    source = {}
    if cloud_init.get("secret"):
        source["secretRef"] = {"name": cloud_init["secret"]}
    else:
        user_data = cloud_init.get("user_data") or (cloud_config(cloud_init) if generated else None)
        if user_data is None and not (cloud_init.get("network_data") or cloud_init.get("network_data_secret")):
            raise InputError("cloud_init needs user_data, secret, or at least one of user, password, "
                             "ssh_authorized_keys, hostname.")
        if user_data is not None:
            if len(user_data.encode("utf-8")) > CLOUD_INIT_MAX:
                raise InputError("cloud_init user data is %d bytes, over KubeVirt's %d-byte limit for inline data; "
                                 "store it in a Secret (key 'userdata') and set cloud_init.secret." % (
                                     len(user_data.encode("utf-8")), CLOUD_INIT_MAX))
            source["userData"] = user_data
    if cloud_init.get("network_data"):
        if len(cloud_init["network_data"].encode("utf-8")) > CLOUD_INIT_MAX:
            raise InputError("cloud_init.network_data is over KubeVirt's %d-byte limit for inline data; store it "
                             "in a Secret (key 'networkdata') and set cloud_init.network_data_secret." % CLOUD_INIT_MAX)
        source["networkData"] = cloud_init["network_data"]
    if cloud_init.get("network_data_secret"):
        source["networkDataSecretRef"] = {"name": cloud_init["network_data_secret"]}
    key = "cloudInitConfigDrive" if cloud_init.get("type") == "configdrive" else "cloudInitNoCloud"
    disk = {"name": CLOUD_INIT_VOLUME, "disk": {"bus": "virtio"}}
    return disk, {"name": CLOUD_INIT_VOLUME, key: source}


def _access_secret(entry, where):
    secret = entry.get("secret")
    if not isinstance(secret, str) or not secret:
        raise InputError("%s.secret is required: the name of a Secret in the VM's namespace." % where)
    check_name(secret, "%s.secret" % where)
    return {"secret": {"secretName": secret}}


def build_access_credentials(credentials):
    """access_credentials option -> spec.accessCredentials, with KubeVirt's validateAccessCredentials
    rules checked before the write: one kind per entry, users for the guest agent
    (check_access_volumes: the cloud-init volume nocloud / configdrive need)."""
    if not credentials:
        return None
    if not isinstance(credentials, list):
        raise InputError("access_credentials must be a list.")
    if len(credentials) > ACCESS_CREDENTIALS_MAX:
        raise InputError("access_credentials has %d entries; KubeVirt allows %d at most."
                         % (len(credentials), ACCESS_CREDENTIALS_MAX))
    out = []
    for idx, entry in enumerate(credentials):
        where = "access_credentials[%d]" % idx
        if not isinstance(entry, dict):
            raise InputError("%s must be a dict with ssh_public_key or user_password." % where)
        unknown = sorted(set(entry) - set(ACCESS_CREDENTIAL_SPEC))
        kinds = [k for k in ACCESS_CREDENTIAL_SPEC if entry.get(k) is not None]
        if unknown or len(kinds) != 1:
            raise InputError("%s must have exactly one of ssh_public_key or user_password%s." % (
                where, " (unknown: %s)" % ", ".join(unknown) if unknown else ", not %s" % " and ".join(kinds)
                if kinds else ""))
        kind = kinds[0]
        where = "%s.%s" % (where, kind)
        value = entry[kind]
        allowed = SSH_PUBLIC_KEY_SPEC if kind == "ssh_public_key" else USER_PASSWORD_SPEC
        unknown = sorted(set(value) - set(allowed)) if isinstance(value, dict) else None
        if unknown is None or unknown:
            raise InputError("%s must be a dict with %s%s." % (
                where, ", ".join(allowed), "; unknown: %s" % ", ".join(unknown) if unknown else ""))
        source = _access_secret(value, where)
        if kind == "user_password":
            out.append({"userPassword": {"source": source, "propagationMethod": {"qemuGuestAgent": {}}}})
            continue
        propagation = value.get("propagation") or "qemu_guest_agent"
        if propagation not in ACCESS_PROPAGATIONS:
            raise InputError("%s.propagation must be one of %s, not %r." % (
                where, ", ".join(ACCESS_PROPAGATIONS), propagation))
        users = value.get("users") or []
        if propagation == "qemu_guest_agent":
            if not users or not all(isinstance(u, str) and u for u in users):
                raise InputError("%s.users must name at least one guest user: the guest agent writes the keys "
                                 "into each one's ~/.ssh/authorized_keys." % where)
            method = {"qemuGuestAgent": {"users": list(dict.fromkeys(users))}}
        else:
            if users:
                raise InputError("%s.users applies to propagation qemu_guest_agent only; with %s cloud-init gives "
                                 "the keys to the guest's default user." % (where, propagation))
            method = {ACCESS_PROPAGATIONS[propagation]: {}}
        out.append({"sshPublicKey": {"source": source, "propagationMethod": method}})
    return out


def check_access_volumes(spec):
    """KubeVirt refuses an SSH key propagated by cloud-init without a cloud-init volume of that type:
    say so before the write, naming the option."""
    volumes = [v for v in spec.get("volumes") or [] if isinstance(v, dict)]
    for idx, entry in enumerate(spec.get("accessCredentials") or []):
        method = _mapping_of(_mapping_of(_mapping_of(entry).get("sshPublicKey")).get("propagationMethod"))
        for field, (option, volume_key) in (("noCloud", ("nocloud", "cloudInitNoCloud")),
                                            ("configDrive", ("configdrive", "cloudInitConfigDrive"))):
            if field in method and not any(volume_key in v for v in volumes):
                raise InputError("access_credentials[%d].ssh_public_key.propagation %s needs a cloud-init volume "
                                 "of that type (cloud_init with type: %s): the keys go into its meta-data."
                                 % (idx, option, option))


def _mapping_of(value):
    return value if isinstance(value, dict) else {}


def build_networks(networks, default_ns=None):
    """networks option -> (interfaces, networks). None -> one pod network with masquerade."""
    if networks is None:
        return [{"name": "default", "masquerade": {}}], [{"name": "default", "pod": {}}]
    interfaces, nets = [], []
    seen = set()
    pods = []
    for net in networks:
        name = net.get("name")
        check_name(name, "network name")
        if name in seen:
            raise InputError("network name %r is used twice; network names must be unique." % name)
        seen.add(name)
        ntype = net.get("type") or ("multus" if net.get("network_name") else "pod")
        if ntype not in NETWORK_TYPES:
            raise InputError("network %r has unknown type %r; use one of %s." % (name, ntype, ", ".join(NETWORK_TYPES)))
        binding = net.get("binding") or {"pod": "masquerade", "multus": "bridge", "sriov": "sriov"}[ntype]
        if binding == "masquerade" and ntype != "pod":
            raise InputError("network %r: masquerade binding works only with the pod network (KubeVirt rejects it "
                             "on %s); use bridge." % (name, ntype))
        if binding == "sriov" and ntype != "sriov":
            raise InputError("network %r: sriov binding needs type sriov." % name)
        if ntype == "sriov" and binding != "sriov":
            raise InputError("network %r: type sriov needs binding sriov." % name)
        if ntype == "pod":
            if net.get("network_name"):
                raise InputError("network %r is a pod network, which takes no network_name; for a "
                                 "NetworkAttachmentDefinition use type multus." % name)
            pods.append(name)
            network = {"name": name, "pod": {}}
        else:
            if not net.get("network_name"):
                raise InputError("network %r of type %s needs network_name, the NetworkAttachmentDefinition "
                                 "('name' or 'namespace/name')." % (name, ntype))
            split_ns_name(net["network_name"], "network %r network_name" % name)
            multus = {"networkName": net["network_name"]}
            if net.get("default"):
                multus["default"] = True
            network = {"name": name, "multus": multus}
        if net.get("default") and ntype == "pod":
            raise InputError("network %r: default applies to multus networks (replacing the pod network)." % name)
        iface = {"name": name}
        if binding in BINDINGS_BUILTIN:
            iface[binding] = {}
        else:
            iface["binding"] = {"name": binding}
        if net.get("mac"):
            if not is_mac(net["mac"]):
                raise InputError("network %r mac %r is not a MAC address such as 02:00:00:00:00:01." % (name, net["mac"]))
            iface["macAddress"] = net["mac"].replace("-", ":").lower()
        if net.get("model"):
            iface["model"] = net["model"]
        if net.get("ports"):
            ports = []
            for port in net["ports"]:
                if not 1 <= int(port["port"]) <= 65535:
                    raise InputError("network %r port %r is out of range 1-65535." % (name, port["port"]))
                ports.append(_clean({"name": port.get("name"), "port": int(port["port"]),
                                     "protocol": port.get("protocol") or "TCP"}))
            iface["ports"] = ports
        interfaces.append(iface)
        nets.append(network)
    if len(pods) > 1:
        raise InputError("networks %s are all pod networks; a VM can have one pod network at most." % ", ".join(pods))
    return interfaces, nets


def template_spec(params, name, allow_templates=True):
    """The options -> (template spec, dataVolumeTemplates)."""
    p = params
    domain = {"devices": {}}
    instancetype = matcher(p.get("instancetype"), "instancetype")
    if instancetype:
        conflicts = [k for k in ("cpu", "memory") if p.get(k)]
        if conflicts:
            raise InputError("%s can't be set together with instancetype %s (KubeVirt rejects fields that conflict "
                             "with the instance type); drop %s or the instancetype." % (
                                 " and ".join(conflicts), matcher_label(instancetype), " and ".join(conflicts)))
    cpu = build_cpu(p.get("cpu"))
    if cpu:
        domain["cpu"] = cpu
    memory = build_memory(p.get("memory"))
    if memory:
        domain["memory"] = memory
    if p.get("machine_type"):
        domain["machine"] = {"type": p["machine_type"]}
    firmware, features = build_firmware(p.get("firmware"))
    if firmware:
        domain["firmware"] = firmware
    if features:
        domain["features"] = features
    disks, volumes, dv_templates = build_disks(p.get("disks"), name, allow_templates)
    ci_disk, ci_volume = build_cloud_init(p.get("cloud_init"))
    if ci_disk:
        disks.append(ci_disk)
        volumes.append(ci_volume)
    raw = p.get("spec") or {}
    if not isinstance(raw, dict):
        raise InputError("spec must be a dict (a VirtualMachineInstance spec).")
    raw_domain = _typed(raw.get("domain"), "dict", "spec.domain")
    raw_devices = _typed(raw_domain.get("devices"), "dict", "spec.domain.devices")
    if p.get("networks") is None and (raw.get("networks") is not None or raw_devices.get("interfaces") is not None):
        interfaces, networks = None, None
    else:
        interfaces, networks = build_networks(p.get("networks"))
    if disks:
        domain["devices"]["disks"] = disks
    if interfaces is not None:
        domain["devices"]["interfaces"] = interfaces
    spec = {"domain": domain}
    if networks is not None:
        spec["networks"] = networks
    if volumes:
        spec["volumes"] = volumes
    if p.get("node_selector"):
        spec["nodeSelector"] = string_map(p["node_selector"], "node_selector")
    if p.get("tolerations"):
        spec["tolerations"] = list(p["tolerations"])
    if p.get("affinity"):
        spec["affinity"] = p["affinity"]
    if p.get("eviction_strategy"):
        spec["evictionStrategy"] = p["eviction_strategy"]
    access = build_access_credentials(p.get("access_credentials"))
    if access:
        spec["accessCredentials"] = access
    if p.get("termination_grace_period") is not None:
        if p["termination_grace_period"] < 0:
            raise InputError("termination_grace_period must be 0 or more seconds.")
        spec["terminationGracePeriodSeconds"] = p["termination_grace_period"]
    if p.get("hostname"):
        check_name(p["hostname"], "hostname")
        spec["hostname"] = p["hostname"]
    if raw:
        spec = deep_merge(spec, raw)
    _check_pairs(spec)
    check_access_volumes(spec)
    return spec, dv_templates


def _typed(value, kind, path):
    """``value`` if it is a ``kind`` (dict or list; a list of dicts for 'items'), else InputError naming ``path``."""
    if value is None:
        return {} if kind == "dict" else []
    want = dict if kind == "dict" else list
    if not isinstance(value, want):
        raise InputError("%s must be a %s, got %s %r." % (
            path, "mapping" if kind == "dict" else "list", type(value).__name__, value))
    if kind == "items":
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise InputError("%s[%d] must be a mapping, got %s %r." % (path, index, type(item).__name__, item))
    return value


def _check_pairs(spec):
    """Every disk has a volume, every interface a network (KubeVirt's own rules, said earlier)."""
    domain = _typed(spec.get("domain"), "dict", "spec.domain")
    devices = _typed(domain.get("devices"), "dict", "spec.domain.devices")
    disks = _typed(devices.get("disks"), "items", "spec.domain.devices.disks")
    interfaces = _typed(devices.get("interfaces"), "items", "spec.domain.devices.interfaces")
    volumes = {v.get("name") for v in _typed(spec.get("volumes"), "items", "spec.volumes")}
    for disk in disks:
        if disk.get("name") not in volumes:
            raise InputError("disk %r has no volume of the same name in spec.volumes; add one." % disk.get("name"))
    nets = {n.get("name") for n in _typed(spec.get("networks"), "items", "spec.networks")}
    ifaces = {i.get("name") for i in interfaces}
    missing = sorted(ifaces - nets)
    if missing:
        raise InputError("interface %r has no network of the same name in spec.networks; add one." % missing[0])
    missing = sorted(nets - ifaces)
    if missing and devices.get("interfaces") is not None:
        raise InputError("network %r has no interface of the same name in spec.domain.devices.interfaces; add one."
                         % missing[0])


def _metadata(params, name, namespace):
    meta = {"name": name, "namespace": namespace}
    if p_labels(params):
        meta["labels"] = p_labels(params)
    if p_annotations(params):
        meta["annotations"] = p_annotations(params)
    return meta


def string_value(value, what):
    """One value of a map[string]string field as the text the user wrote. YAML turns an unquoted true
    into a bool and 3 into an int before the module sees them: a bool becomes "true"/"false" (never
    Python's "True"), a number its decimal text; a string is kept as it is."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    raise InputError("%s must be a string, got %s %r." % (what, type(value).__name__, value))


def string_map(mapping, option):
    """A dict option (labels, annotations, node_selector) -> a map[string]string, or None when unset."""
    if not mapping:
        return None
    out = {}
    for key, value in mapping.items():
        key = string_value(key, "%s key" % option)
        out[key] = string_value(value, "%s.%s" % (option, key))
    return out


def p_labels(params):
    return string_map(params.get("labels"), "labels")


def p_annotations(params):
    return string_map(params.get("annotations"), "annotations")


def build_vm(params, name, namespace, run_strategy=None):
    """The VirtualMachine to apply. ``run_strategy`` None leaves spec.runStrategy out."""
    check_name(name, "name")
    spec_body, dv_templates = template_spec(params, name)
    template = {"spec": spec_body}
    labels = p_labels(params)
    if labels:
        template["metadata"] = {"labels": dict(labels)}
    spec = {}
    if run_strategy:
        if run_strategy not in RUN_STRATEGIES:
            raise InputError("run_strategy %r is unknown; use one of %s." % (run_strategy, ", ".join(RUN_STRATEGIES)))
        spec["runStrategy"] = run_strategy
    instancetype = matcher(params.get("instancetype"), "instancetype")
    if instancetype:
        spec["instancetype"] = instancetype
    preference = matcher(params.get("preference"), "preference")
    if preference:
        spec["preference"] = preference
    if dv_templates:
        spec["dataVolumeTemplates"] = dv_templates
    spec["template"] = template
    check_infer_volumes(spec)
    return {"apiVersion": API_VERSION, "kind": "VirtualMachine", "metadata": _metadata(params, name, namespace),
            "spec": spec}


def build_vmi(params, name, namespace):
    """A stand-alone VirtualMachineInstance (no instancetype, no DataVolume templates)."""
    check_name(name, "name")
    for key in ("instancetype", "preference"):
        if params.get(key):
            raise InputError("%s needs a VirtualMachine; a stand-alone VMI takes cpu and memory instead." % key)
    spec_body = template_spec(params, name, allow_templates=False)[0]
    return {"apiVersion": API_VERSION, "kind": "VirtualMachineInstance",
            "metadata": _metadata(params, name, namespace), "spec": spec_body}


def from_definition(definition, kind, name=None, namespace=None):
    """A raw object from the definition option, checked and completed with name/namespace."""
    if not isinstance(definition, dict):
        raise InputError("definition must be a dict (a whole %s)." % kind)
    obj = copy.deepcopy(definition)
    if obj.get("kind", kind) != kind:
        raise InputError("definition is a %s; this module manages %s objects." % (obj.get("kind"), kind))
    obj["kind"] = kind
    obj.setdefault("apiVersion", API_VERSION)
    meta = obj.setdefault("metadata", {})
    if name:
        meta["name"] = name
    if namespace and not meta.get("namespace"):
        meta["namespace"] = namespace
    check_name(meta.get("name"), "definition metadata.name")
    if not isinstance(obj.get("spec"), dict):
        raise InputError("definition has no spec; give the whole %s (apiVersion, kind, metadata, spec)." % kind)
    for key in ("status",):
        obj.pop(key, None)
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink"):
        meta.pop(key, None)
    return obj


def memory_defined(obj):
    """Does a VM/VMI object say how much memory (or an instancetype) it has?"""
    spec = obj.get("spec") or {}
    if spec.get("instancetype"):
        return True
    tspec = (spec.get("template") or {}).get("spec") if obj.get("kind") == "VirtualMachine" else spec
    domain = (tspec or {}).get("domain") or {}
    resources = domain.get("resources") or {}
    return bool((domain.get("memory") or {}).get("guest") or (resources.get("requests") or {}).get("memory")
                or (resources.get("limits") or {}).get("memory"))
