"""Instance types and preferences as KubeVirt v1.8 applies them (pkg/instancetype): finding the spec a VM
refers to (its ControllerRevision first), expanding it into a VMI spec (apply/ and preference/apply/),
the conflicts and preference requirements the VM admission webhook reports, and the ControllerRevisions
and status refs of the VM controller (revision/). Pure functions except the finders (API reads)."""
from .kube import CLUSTER_INSTANCETYPE, CLUSTER_PREFERENCE, CR, INSTANCETYPE, PREFERENCE, ApiError
from .util import deep, dig, format_bytes, owner_ref, parse_quantity

CONFLICT_FMT = "VM field(s) {} conflicts with selected instance type"
# matcher field -> (namespaced resource, cluster resource, namespaced annotation, cluster annotation)
MATCHERS = {
    "instancetype": (INSTANCETYPE, CLUSTER_INSTANCETYPE, "kubevirt.io/instancetype-name",
                     "kubevirt.io/cluster-instancetype-name"),
    "preference": (PREFERENCE, CLUSTER_PREFERENCE, "kubevirt.io/preference-name",
                   "kubevirt.io/cluster-preference-name"),
}


class FindError(Exception):
    """What pkg/instancetype/find returns: the client-go error text, or an unexpected kind."""


def resource_for(field, matcher):
    """The resource a matcher names (find/spec.go: kind '' means the cluster-wide one), or None for a bad kind."""
    ns_res, cluster_res = MATCHERS[field][:2]
    kind = (matcher.get("kind") or "").lower()
    if kind in ("", cluster_res.kind.lower(), cluster_res.plural):
        return cluster_res
    if kind in (ns_res.kind.lower(), ns_res.plural):
        return ns_res
    return None


def annotation_for(field, matcher):
    """annotations.Set / preference annotations.Set: the VMI annotation naming the matcher's object."""
    res = resource_for(field, matcher)
    if res is None:
        return None
    return MATCHERS[field][3] if not res.namespaced else MATCHERS[field][2]


async def find_spec(kube, vm, field):
    """find.SpecFinder.Find / FindPreference: the spec from the VM's ControllerRevision when it has one,
    else from the object itself. None when the VM has no such matcher; FindError when it cannot be found."""
    matcher = dig(vm, "spec", field)
    if not matcher:
        return None
    ns = vm["metadata"].get("namespace")
    revision = matcher.get("revisionName") or dig(vm, "status", f"{field}Ref", "controllerRevisionRef", "name")
    if revision:
        try:
            cr = await kube.get(CR, revision, ns)
        except ApiError as exc:
            raise FindError(_client_error(exc, "controllerrevisions.apps", revision)) from None
        return dig(cr, "data", "spec") or {}
    res = resource_for(field, matcher)
    if res is None:
        label = "InstancetypeMatcher" if field == "instancetype" else "PreferenceMatcher"
        raise FindError(f"got unexpected kind in {label}: {matcher.get('kind')}")
    return (await get_object(kube, res, matcher.get("name"), ns)).get("spec") or {}


async def get_object(kube, res, name, ns):
    try:
        return await kube.get(res, name, ns if res.namespaced else None)
    except ApiError as exc:
        raise FindError(_client_error(exc, f"{res.plural}.{res.group}", name)) from None


def _client_error(exc, resource, name):
    """client-go's error text: `virtualmachineclusterinstancetypes.instancetype.kubevirt.io "x" not found`."""
    if exc.status == 404:
        return f'{resource} "{name}" not found'
    return exc.body.get("message") or str(exc)


# ------------------------------------------------------------------------------ apply (pkg/instancetype/apply)
def apply_to_vmi(base, it_spec, pref_spec, vmi_spec, vmi_meta):
    """apply.vmiApplier.ApplyToVMI: mutates vmi_spec/vmi_meta; returns the conflicts (field paths under
    `base`, e.g. 'spec.template.spec.domain.cpu.sockets'); preferences are applied only without conflicts."""
    if it_spec is None and pref_spec is None:
        return []
    if it_spec is not None:
        conflicts = []
        for step in (_node_selector, _scheduler_name, _cpu, _memory, _iothreads, _iothreads_policy,
                     _launch_security, _gpus, _host_devices):
            conflicts += [f"{base}.{path}" for path in step(it_spec, pref_spec, vmi_spec)]
        conflicts += _instancetype_annotations(it_spec.get("annotations") or {}, vmi_meta)
        if conflicts:
            return conflicts
    apply_preference(pref_spec, vmi_spec, vmi_meta)
    return []


def conflict_causes(conflicts):
    """conflict.Conflicts.StatusCauses: one FieldValueInvalid cause per conflict."""
    return [{"type": "FieldValueInvalid", "message": CONFLICT_FMT.format(path), "field": path} for path in conflicts]


def _domain(vmi_spec):
    return vmi_spec.setdefault("domain", {})


def _node_selector(it_spec, _pref, vmi_spec):
    if it_spec.get("nodeSelector") is None:
        return []
    if vmi_spec.get("nodeSelector") is not None:
        return ["nodeSelector"]
    vmi_spec["nodeSelector"] = dict(it_spec["nodeSelector"])
    return []


def _scheduler_name(it_spec, _pref, vmi_spec):
    if not it_spec.get("schedulerName"):
        return []
    if vmi_spec.get("schedulerName"):
        return ["schedulerName"]
    vmi_spec["schedulerName"] = it_spec["schedulerName"]
    return []


def _cpu(it_spec, pref_spec, vmi_spec):
    domain = _domain(vmi_spec)
    cpu = domain.get("cpu")
    if cpu is None:
        cpu = domain["cpu"] = {}
    it_cpu = it_spec.get("cpu") or {}
    resources = domain.get("resources") or {}
    conflicts = []
    if "cpu" in (resources.get("requests") or {}):
        conflicts.append("domain.resources.requests.cpu")
    if "cpu" in (resources.get("limits") or {}):
        conflicts.append("domain.resources.limits.cpu")
    conflicts += [f"domain.cpu.{k}" for k in ("sockets", "cores", "threads") if cpu.get(k)]
    for key, path in (("model", "model"), ("dedicatedCPUPlacement", "dedicatedCPUPlacement"),
                      ("isolateEmulatorThread", "isolateEmulatorThread"), ("numa", "numa"),
                      ("realtime", "realtime")):
        vmi_key = "dedicatedCpuPlacement" if key == "dedicatedCPUPlacement" else key
        if cpu.get(vmi_key) and it_cpu.get(key) is not None:
            conflicts.append(f"domain.cpu.{path}")
    if conflicts:
        return conflicts
    for key in ("model", "isolateEmulatorThread", "maxSockets"):
        if it_cpu.get(key) is not None:
            cpu[key] = it_cpu[key]
    if it_cpu.get("dedicatedCPUPlacement") is not None:
        cpu["dedicatedCpuPlacement"] = it_cpu["dedicatedCPUPlacement"]
    for key in ("numa", "realtime"):
        if it_cpu.get(key) is not None:
            cpu[key] = deep(it_cpu[key])
    cpu.update(guest_topology(int(it_cpu.get("guest") or 0), pref_spec))
    return []


def preferred_topology(pref_spec):
    """preference/apply GetPreferredTopology: 'sockets' unless the preference says otherwise."""
    return dig(pref_spec, "cpu", "preferredCPUTopology") or "sockets"


def spread_options(pref_spec):
    ratio = (pref_spec or {}).get("preferSpreadSocketToCoreRatio") or 2
    across = "SocketsCores"
    opts = dig(pref_spec, "cpu", "spreadOptions") or {}
    return opts.get("ratio") or ratio, opts.get("across") or across


def guest_topology(vcpus, pref_spec):
    """apply/cpu.go applyGuestCPUTopology."""
    topo = {"cores": 1, "sockets": 1, "threads": 1}
    if vcpus == 1:
        return topo
    pref = preferred_topology(pref_spec)
    if pref in ("preferCores", "cores"):
        topo["cores"] = vcpus
    elif pref in ("preferSockets", "preferAny", "sockets", "any"):
        topo["sockets"] = vcpus
    elif pref in ("preferThreads", "threads"):
        topo["threads"] = vcpus
    elif pref in ("preferSpread", "spread"):
        ratio, across = spread_options(pref_spec)
        if across == "SocketsCores":
            topo.update(cores=ratio, sockets=vcpus // ratio)
        elif across == "CoresThreads":
            topo.update(threads=ratio, cores=vcpus // ratio)
        elif across == "SocketsCoresThreads":
            topo.update(threads=2, cores=ratio, sockets=vcpus // 2 // ratio)
    return topo


def _memory(it_spec, _pref, vmi_spec):
    domain = _domain(vmi_spec)
    memory = domain.get("memory")
    if memory is None:
        memory = domain["memory"] = {}
    it_mem = it_spec.get("memory") or {}
    resources = domain.get("resources") or {}
    if memory.get("guest") is not None:
        return ["domain.memory.guest"]
    if memory.get("hugepages") is not None and it_mem.get("hugepages") is not None:
        return ["domain.memory.hugepages"]
    if memory.get("maxGuest") is not None and it_mem.get("maxGuest") is not None:
        return ["domain.memory.maxGuest"]
    if "memory" in (resources.get("requests") or {}):
        return ["domain.resources.requests.memory"]
    if "memory" in (resources.get("limits") or {}):
        return ["domain.resources.limits.memory"]
    memory["guest"] = it_mem.get("guest")
    overcommit = it_mem.get("overcommitPercent") or 0
    if overcommit > 0:
        request = int(parse_quantity(it_mem.get("guest")) * (1 - overcommit / 100))
        domain.setdefault("resources", {}).setdefault("requests", {})["memory"] = str(request)
    if it_mem.get("hugepages") is not None:
        memory["hugepages"] = deep(it_mem["hugepages"])
    if it_mem.get("maxGuest") is not None:
        memory["maxGuest"] = it_mem["maxGuest"]
    return []


def _iothreads(it_spec, _pref, vmi_spec):
    count = dig(it_spec, "ioThreads", "supplementalPoolThreadCount")
    if count is None:
        return []
    domain = _domain(vmi_spec)
    if dig(domain, "ioThreads", "supplementalPoolThreadCount") is not None:
        return ["domain.ioThreads.supplementalPoolThreadCount"]
    domain.setdefault("ioThreads", {})["supplementalPoolThreadCount"] = count
    return []


def _iothreads_policy(it_spec, _pref, vmi_spec):
    if it_spec.get("ioThreadsPolicy") is None:
        return []
    domain = _domain(vmi_spec)
    if domain.get("ioThreadsPolicy") is not None:
        return ["domain.ioThreadsPolicy"]
    domain["ioThreadsPolicy"] = it_spec["ioThreadsPolicy"]
    return []


def _launch_security(it_spec, _pref, vmi_spec):
    if it_spec.get("launchSecurity") is None:
        return []
    domain = _domain(vmi_spec)
    if domain.get("launchSecurity") is not None:
        return ["domain.launchSecurity"]
    domain["launchSecurity"] = deep(it_spec["launchSecurity"])
    return []


def _device_list(key, path):
    def step(it_spec, _pref, vmi_spec):
        if not it_spec.get(key):
            return []
        devices = _domain(vmi_spec).setdefault("devices", {})
        if devices.get(key):
            return [path]
        devices[key] = deep(it_spec[key])
        return []
    return step


_gpus = _device_list("gpus", "domain.devices.gpus")
_host_devices = _device_list("hostDevices", "domain.devices.hostDevices")


def _instancetype_annotations(annotations, meta):
    target = meta.setdefault("annotations", {})
    conflicts = []
    for key, value in annotations.items():
        if key in target:
            if target[key] != value:
                conflicts.append(f"annotations.{key}")
            continue
        target[key] = value
    return conflicts


# ------------------------------------------------------------------------------ preferences (preference/apply)
def apply_preference(pref, vmi_spec, vmi_meta):
    """preference/apply vmiApplier.Apply: a preferred value fills only what the VMI spec leaves unset."""
    if pref is None:
        return
    domain = _domain(vmi_spec)
    features = dig(pref, "cpu", "preferredCPUFeatures") or []
    if features:
        cpu = domain.setdefault("cpu", {})
        have = {f.get("name") for f in cpu.get("features") or []}
        cpu["features"] = (cpu.get("features") or []) + [deep(f) for f in features if f.get("name") not in have]
    apply_device_preferences(pref, vmi_spec)
    _features(pref, domain)
    _firmware(pref, domain)
    machine = dig(pref, "machine", "preferredMachineType")
    if machine and not dig(domain, "machine", "type"):
        domain.setdefault("machine", {})["type"] = machine
    _clock(pref, domain)
    if not vmi_spec.get("subdomain") and pref.get("preferredSubdomain") is not None:
        vmi_spec["subdomain"] = pref["preferredSubdomain"]
    if pref.get("preferredTerminationGracePeriodSeconds") is not None and \
            vmi_spec.get("terminationGracePeriodSeconds") is None:
        vmi_spec["terminationGracePeriodSeconds"] = pref["preferredTerminationGracePeriodSeconds"]
    if pref.get("preferredArchitecture") and not vmi_spec.get("architecture"):
        vmi_spec["architecture"] = pref["preferredArchitecture"]
    target = vmi_meta.setdefault("annotations", {})
    for key, value in (pref.get("annotations") or {}).items():
        target.setdefault(key, value)


AUTOATTACH = (("preferredAutoattachGraphicsDevice", "autoattachGraphicsDevice"),
              ("preferredAutoattachMemBalloon", "autoattachMemBalloon"),
              ("preferredAutoattachPodInterface", "autoattachPodInterface"),
              ("preferredAutoattachSerialConsole", "autoattachSerialConsole"),
              ("preferredAutoattachInputDevice", "autoattachInputDevice"))


def apply_autoattach_preferences(pref, vmi_spec):
    """preference/apply ApplyAutoAttachPreferences (the VM controller runs it before the default NIC and input)."""
    prefs = (pref or {}).get("devices")
    if not prefs:
        return
    devices = _domain(vmi_spec).setdefault("devices", {})
    for pkey, vkey in AUTOATTACH:
        if prefs.get(pkey) is not None and devices.get(vkey) is None:
            devices[vkey] = prefs[pkey]


def apply_device_preferences(pref, vmi_spec):
    """preference/apply ApplyDevicePreferences (device.go, disk.go, interface.go)."""
    prefs = pref.get("devices")
    if not prefs:
        return
    devices = _domain(vmi_spec).setdefault("devices", {})
    for pkey, vkey in (("preferredUseVirtioTransitional", "useVirtioTransitional"),
                       ("preferredBlockMultiQueue", "blockMultiQueue"),
                       ("preferredNetworkInterfaceMultiQueue", "networkInterfaceMultiQueue")):
        if prefs.get(pkey) is not None and devices.get(vkey) is None:
            devices[vkey] = prefs[pkey]
    if prefs.get("preferredDisableHotplug") is not None:
        devices["disableHotplug"] = prefs["preferredDisableHotplug"]
    if prefs.get("preferredSoundModel") and devices.get("sound") is not None and not devices["sound"].get("model"):
        devices["sound"]["model"] = prefs["preferredSoundModel"]
    for pkey, vkey in (("preferredRng", "rng"), ("preferredTPM", "tpm")):
        if prefs.get(pkey) is not None and devices.get(vkey) is None:
            devices[vkey] = deep(prefs[pkey])
    apply_autoattach_preferences(pref, vmi_spec)
    for disk in devices.get("disks") or []:
        _disk_preferences(prefs, disk)
    pod_networks = {n.get("name") for n in vmi_spec.get("networks") or [] if n.get("pod") is not None}
    for iface in devices.get("interfaces") or []:
        if prefs.get("preferredInterfaceModel") and not iface.get("model"):
            iface["model"] = prefs["preferredInterfaceModel"]
        if prefs.get("preferredInterfaceMasquerade") is not None and iface.get("name") in pod_networks and \
                not any(k in iface for k in ("bridge", "masquerade", "sriov", "passt", "slirp", "macvtap", "binding")):
            iface["masquerade"] = deep(prefs["preferredInterfaceMasquerade"])
    for inp in devices.get("inputs") or []:
        if prefs.get("preferredInputBus") and not inp.get("bus"):
            inp["bus"] = prefs["preferredInputBus"]
        if prefs.get("preferredInputType") and not inp.get("type"):
            inp["type"] = prefs["preferredInputType"]
    if prefs.get("preferredPanicDeviceModel") is not None:
        for panic in devices.get("panicDevices") or []:
            if panic.get("model") is None:
                panic["model"] = prefs["preferredPanicDeviceModel"]


def _disk_preferences(prefs, disk):
    if "disk" not in disk and "cdrom" not in disk and "lun" not in disk:
        disk["disk"] = {}
    if "disk" in disk:
        target = disk["disk"] if disk["disk"] is not None else disk.setdefault("disk", {})
        if prefs.get("preferredDiskBus") and not target.get("bus"):
            target["bus"] = prefs["preferredDiskBus"]
        if prefs.get("preferredDiskBlockSize") is not None and disk.get("blockSize") is None:
            disk["blockSize"] = deep(prefs["preferredDiskBlockSize"])
        for pkey, vkey in (("preferredDiskCache", "cache"), ("preferredDiskIO", "io")):
            if prefs.get(pkey) and not disk.get(vkey):
                disk[vkey] = prefs[pkey]
        if prefs.get("preferredDiskDedicatedIoThread") is not None and disk.get("dedicatedIOThread") is None and \
                target.get("bus") == "virtio":
            disk["dedicatedIOThread"] = prefs["preferredDiskDedicatedIoThread"]
    elif "cdrom" in disk:
        if prefs.get("preferredCdromBus") and not (disk["cdrom"] or {}).get("bus"):
            disk["cdrom"] = {**(disk["cdrom"] or {}), "bus": prefs["preferredCdromBus"]}
    elif prefs.get("preferredLunBus") and not (disk["lun"] or {}).get("bus"):
        disk["lun"] = {**(disk["lun"] or {}), "bus": prefs["preferredLunBus"]}


HYPERV = ("evmcs", "frequencies", "ipi", "reenlightenment", "relaxed", "reset", "runtime", "spinlocks", "synic",
          "synictimer", "tlbflush", "vapic", "vpindex", "vendorid")


def _features(pref, domain):
    prefs = pref.get("features")
    if not prefs:
        return
    features = domain.setdefault("features", {})
    if prefs.get("preferredAcpi") is not None:
        features["acpi"] = deep(prefs["preferredAcpi"])
    for pkey, vkey in (("preferredApic", "apic"), ("preferredKvm", "kvm"), ("preferredPvspinlock", "pvspinlock"),
                       ("preferredSmm", "smm")):
        if prefs.get(pkey) is not None and features.get(vkey) is None:
            features[vkey] = deep(prefs[pkey])
    hyperv = prefs.get("preferredHyperv")
    if hyperv is not None:
        target = features.setdefault("hyperv", {})
        for key in HYPERV:
            if hyperv.get(key) is not None and target.get(key) is None:
                target[key] = deep(hyperv[key])


def _firmware(pref, domain):
    prefs = pref.get("firmware")
    if not prefs:
        return
    boot = domain.setdefault("firmware", {}).setdefault("bootloader", {})
    if prefs.get("preferredUseBios") and boot.get("bios") is None and boot.get("efi") is None:
        boot["bios"] = {}
    if prefs.get("preferredUseBiosSerial") is not None and boot.get("bios") is not None and \
            boot["bios"].get("useSerial") is None:
        boot["bios"]["useSerial"] = prefs["preferredUseBiosSerial"]
    if boot.get("efi") is None and boot.get("bios") is None and prefs.get("preferredEfi") is not None:
        boot["efi"] = deep(prefs["preferredEfi"])
        return
    if prefs.get("preferredUseEfi") and boot.get("efi") is None and boot.get("bios") is None:
        boot["efi"] = {}
    if prefs.get("preferredUseSecureBoot") is not None and boot.get("efi") is not None and \
            boot["efi"].get("secureBoot") is None:
        boot["efi"]["secureBoot"] = prefs["preferredUseSecureBoot"]


def _clock(pref, domain):
    prefs = pref.get("clock")
    if not prefs:
        return
    clock = domain.setdefault("clock", {})
    if prefs.get("preferredClockOffset") is not None and clock.get("utc") is None and clock.get("timezone") is None:
        clock.update(deep(prefs["preferredClockOffset"]))
    if prefs.get("preferredTimer") is not None and clock.get("timer") is None:
        clock["timer"] = deep(prefs["preferredTimer"])


# ------------------------------------------------------------------------------ requirements (preference/requirements)
def check_requirements(it_spec, pref_spec, vmi_spec):
    """requirements.checker.Check: (conflict paths, message) or None."""
    req = (pref_spec or {}).get("requirements")
    if not req:
        return None
    need = dig(req, "cpu", "guest")
    if need is not None:
        found = _check_cpu(it_spec, pref_spec, vmi_spec, int(need))
        if found:
            return found
    need_mem = dig(req, "memory", "guest")
    if need_mem is not None:
        where, fmt = ["spec.template.spec.domain.memory"], "insufficient Memory resources of {} provided by " \
                                                             "VirtualMachine, preference requires {}"
        provided = "0Mi"
        if it_spec is not None:
            where = ["spec.instancetype"]
            fmt = "insufficient Memory resources of {} provided by instance type, preference requires {}"
            provided = dig(it_spec, "memory", "guest") or "0"
        provided = dig(vmi_spec, "domain", "memory", "guest") or provided
        if parse_quantity(provided) < parse_quantity(need_mem):
            return where, fmt.format(canonical(provided), canonical(need_mem))
    return None


def canonical(quantity):
    """resource.Quantity.String() for the quantities preferences use: '1.5Gi' -> '1536Mi', '0Mi' -> '0'."""
    text = str(quantity)
    if text.endswith("i") or parse_quantity(text) == 0:
        return format_bytes(parse_quantity(text))
    return text


def set_vmi_defaults(spec):
    """The parts of defaults.SetDefaultVirtualMachineInstanceSpec the requirement checks look at:
    setGuestMemory and SetDefaultGuestCPUTopology (with the default CPU request)."""
    domain = _domain(spec)
    memory = domain.setdefault("memory", {})
    resources = domain.get("resources") or {}
    if memory.get("guest") is None:
        guest = dig(resources, "requests", "memory") or dig(resources, "limits", "memory") or \
            dig(memory, "hugepages", "pageSize")
        if guest:
            memory["guest"] = guest
    cpu = domain.setdefault("cpu", {})
    if not cpu.get("cores") and not cpu.get("sockets") and not cpu.get("threads"):
        sockets = dig(resources, "limits", "cpu") or dig(resources, "requests", "cpu") or 1
        cpu.update(sockets=max(int(parse_quantity(sockets)), 0), cores=1, threads=1)


def _check_cpu(it_spec, pref_spec, vmi_spec, need):
    if it_spec is not None:
        have = int(dig(it_spec, "cpu", "guest") or 0)
        if have < need:
            return ["spec.instancetype"], (f"insufficient CPU resources of {have} vCPU provided by instance type, "
                                           f"preference requires {need} vCPU")
        return None
    cpu = dig(vmi_spec, "domain", "cpu")
    base = "spec.template.spec.domain.cpu"
    if cpu is None:
        return [base], f"no CPU resources provided by VirtualMachine, preference requires {need} vCPU"
    s, c, t = (int(cpu.get(k) or 0) for k in ("sockets", "cores", "threads"))
    pref = preferred_topology(pref_spec)
    checks = {"threads": (t, ["threads"], "threads"), "preferThreads": (t, ["threads"], "threads"),
              "cores": (c, ["cores"], "cores"), "preferCores": (c, ["cores"], "cores"),
              "sockets": (s, ["sockets"], "sockets"), "preferSockets": (s, ["sockets"], "sockets"),
              "any": (c * s * t, ["cores", "sockets", "threads"], "cores, sockets and threads"),
              "preferAny": (c * s * t, ["cores", "sockets", "threads"], "cores, sockets and threads")}
    if pref in ("spread", "preferSpread"):
        across = spread_options(pref_spec)[1]
        parts = {"SocketsCores": ["sockets", "cores"], "CoresThreads": ["cores", "threads"],
                 "SocketsCoresThreads": ["sockets", "cores", "threads"]}[across]
        have = 1
        for p in parts:
            have *= {"sockets": s, "cores": c, "threads": t}[p]
        checks[pref] = (have, parts, across)
    have, parts, label = checks.get(pref, (need, [], ""))
    if have < need:
        return [f"{base}.{p}" for p in parts], (f"insufficient CPU resources of {have} vCPU provided by "
                                                f"VirtualMachine, preference requires {need} vCPU provided as {label}")
    return None


# ------------------------------------------------------------------------------ revisions (pkg/instancetype/revision)
def revision_for(vm, obj):
    """revision.CreateControllerRevision: the object without labels, annotations, finalizers, owners and
    managedFields, named <vm>-<object>-<version>-<uid>-<generation>, owned by the VM."""
    meta = obj["metadata"]
    version = obj["apiVersion"].split("/")[-1]
    data = deep(obj)
    for key in ("labels", "annotations", "finalizers", "ownerReferences", "managedFields"):
        data["metadata"].pop(key, None)
    gen = meta.get("generation", 1)
    name = f"{vm['metadata']['name']}-{meta['name']}-{version}-{meta['uid']}-{gen}"
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": name, "namespace": vm["metadata"]["namespace"], "ownerReferences": [owner_ref(vm)],
                         "labels": {"instancetype.kubevirt.io/object-generation": str(gen),
                                    "instancetype.kubevirt.io/object-kind": obj["kind"],
                                    "instancetype.kubevirt.io/object-name": meta["name"],
                                    "instancetype.kubevirt.io/object-uid": meta["uid"],
                                    "instancetype.kubevirt.io/object-version": version}},
            "data": data, "revision": 0}


def status_ref(matcher, current):
    """revision.syncStatusWithMatcher without the revision creation: the new status ref, and whether it still
    needs a ControllerRevision."""
    ref = deep(current or {})
    clear = False
    for key in ("name", "kind", "inferFromVolume"):
        if matcher.get(key) and matcher[key] != ref.get(key):
            ref[key] = matcher[key]
            clear = True
    if clear:
        ref.pop("controllerRevisionRef", None)
    if matcher.get("inferFromVolumeFailurePolicy"):
        ref["inferFromVolumeFailurePolicy"] = matcher["inferFromVolumeFailurePolicy"]
    if matcher.get("revisionName") and dig(ref, "controllerRevisionRef", "name") != matcher["revisionName"]:
        ref["controllerRevisionRef"] = {"name": matcher["revisionName"]}
    return ref, not dig(ref, "controllerRevisionRef", "name")
