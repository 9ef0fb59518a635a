"""CPU and memory hot-plug with the LiveUpdate VM rollout strategy (KubeVirt v1.8), the pure rules.

* pkg/defaults/defaults.go (SetDefaultVirtualMachineInstance): a new VMI gets a default CPU topology
  (sockets from the CPU limit/request, else 1), `domain.memory.guest` from the memory request,
  `maxSockets` (sockets x maxHotplugRatio, at most 512 vCPUs) and `maxGuest` (guest x maxHotplugRatio,
  unless the memory configuration cannot hot-plug), `status.currentCPUTopology` and `status.memory`
  (guestAtBoot / guestCurrent / guestRequested).
* pkg/liveupdate/memory/memory.go ValidateLiveUpdateMemory: which memory configurations can hot-plug.
* pkg/virt-controller/watch/vm/vm.go handleCPUChangeRequest / VMICPUsPatch and handleMemoryHotplugRequest:
  a running VM's new sockets / guest memory go into the VMI spec (with the requests and limits moved by
  the same delta), or RestartRequired with KubeVirt's message when that cannot be done live.
* pkg/virt-controller/watch/vmi/lifecycle.go requireCPUHotplug / requireMemoryHotplug: the VMI conditions
  HotVCPUChange / HotMemoryChange (status True, no reason) while spec and status differ.
* pkg/virt-controller/watch/workload-updater: a VMI with one of them gets a migration
  `kubevirt-workload-update-xxxxx` (annotation kubevirt.io/workloadUpdateMigration).
* pkg/virt-handler/migration-target.go hotplugCPU / hotplugMemory: at the migration target the new
  topology and memory land in the status and the conditions go.
"""
from .util import dig, format_bytes, format_millicpu, parse_quantity

MAX_HOTPLUG_RATIO = 4          # liveUpdateConfiguration.maxHotplugRatio default
MAX_VCPUS = 512
BLOCK_ALIGNMENT = 0x200000     # HotplugBlockAlignmentBytes (2Mi); 1Gi with 1Gi hugepages
HUGE_1G_ALIGNMENT = 0x40000000
MIN_GUEST = 0x40000000         # requiredMinGuestMemory: 1Gi
VCPU_CHANGE = "HotVCPUChange"
MEMORY_CHANGE = "HotMemoryChange"
WORKLOAD_UPDATE_ANNOTATION = "kubevirt.io/workloadUpdateMigration"
WORKLOAD_UPDATE_PREFIX = "kubevirt-workload-update-"

MSG_CPU_ABOVE_MAX = "CPU sockets updated in template spec to a value higher than what's available"
MSG_CPU_REDUCED = "Reduction of CPU socket count requires a restart"
MSG_MEM_FAILED = "memory updated in template spec. Memory-hotplug failed and is not available for this VM configuration"
MSG_MEM_NOT_MIGRATABLE = "memory updated in template spec. Memory-hotplug is only available for migratable VMs"
MSG_MEM_NO_MAX = "memory updated in template spec. Memory-hotplug is not available for this VM configuration"
MSG_MEM_LOWER = "memory updated in template spec to a value lower than what the VM started with"
MSG_MEM_ABOVE_MAX = "memory updated in template spec to a value higher than what's available"


def vcpus(cpu):
    """hardware.GetNumberOfVCPUs: sockets x cores x threads, a missing one counting 1."""
    cpu = cpu or {}
    return max(int(cpu.get("sockets") or 1), 1) * max(int(cpu.get("cores") or 1), 1) * \
        max(int(cpu.get("threads") or 1), 1)


def validate_memory(spec, max_guest):
    """ValidateLiveUpdateMemory: None when the memory can hot-plug, else KubeVirt's sentence."""
    domain = spec.get("domain") or {}
    cpu = domain.get("cpu") or {}
    if cpu.get("realtime") is not None:
        return "Memory hotplug is not compatible with realtime VMs"
    if dig(cpu, "numa", "guestMappingPassthrough") is not None:
        return "Memory hotplug is not compatible with guest mapping passthrough"
    if domain.get("launchSecurity") is not None:
        return "Memory hotplug is not compatible with encrypted VMs"
    alignment = HUGE_1G_ALIGNMENT if dig(domain, "memory", "hugepages", "pageSize") == "1Gi" else BLOCK_ALIGNMENT
    guest = dig(domain, "memory", "guest")
    if not guest:
        return "Guest memory must be configured when memory hotplug is enabled"
    if max_guest is None:
        return "Max guest memory must be configured when memory hotplug is enabled"
    if parse_quantity(guest) > parse_quantity(max_guest):
        return "Guest memory is greater than the configured maxGuest memory"
    if int(parse_quantity(guest)) % alignment:
        return f"Guest memory must be {format_bytes(alignment)} aligned"
    if int(parse_quantity(max_guest)) % alignment:
        return f"MaxGuest must be {format_bytes(alignment)} aligned"
    if (spec.get("architecture") or "amd64") != "amd64":
        return "Memory hotplug is only available for x86_64 VMs"
    if parse_quantity(guest) < MIN_GUEST:
        return "Memory hotplug is only available for VMs with at least 1Gi of guest memory"
    return None


def set_vmi_defaults(spec, status):
    """SetDefaultVirtualMachineInstance's CPU/memory part, for a new VMI (mutates spec and status)."""
    domain = spec.setdefault("domain", {})
    resources = domain.get("resources") or {}
    if not dig(domain, "memory", "guest"):
        request = dig(resources, "requests", "memory") or dig(resources, "limits", "memory")
        if request:
            domain.setdefault("memory", {})["guest"] = request
    cpu = domain.setdefault("cpu", {})
    if not any(cpu.get(k) for k in ("sockets", "cores", "threads")):
        # SetDefaultGuestCPUTopology: only a topology with none of the three is filled in
        sockets = dig(resources, "limits", "cpu") or dig(resources, "requests", "cpu") or 1
        cpu.update(sockets=max(int(parse_quantity(sockets)), 1), cores=1, threads=1)
    topology = {k: int(cpu[k]) for k in ("sockets", "cores", "threads") if cpu.get(k)}
    if dig(domain, "memory", "guest"):
        guest = domain["memory"]["guest"]
        status.setdefault("memory", {"guestAtBoot": guest, "guestCurrent": guest, "guestRequested": guest})
    status.setdefault("currentCPUTopology", topology)
    if spec.get("architecture", "amd64") != "amd64":
        return      # no hot-plug on ARM
    if not cpu.get("maxSockets") and topology.get("sockets"):
        # sockets x ratio; a topology without sockets gets 0, i.e. no CPU hot-plug (as KubeVirt's uint32 maths)
        per_socket = topology.get("cores", 0) * topology.get("threads", 0)
        cpu["maxSockets"] = topology["sockets"] * MAX_HOTPLUG_RATIO
        if per_socket and cpu["maxSockets"] * per_socket > MAX_VCPUS:
            cpu["maxSockets"] = max(MAX_VCPUS // per_socket, topology["sockets"])
    memory = domain.get("memory") or {}
    if memory.get("maxGuest") is None and memory.get("guest"):
        max_guest = format_bytes(parse_quantity(memory["guest"]) * MAX_HOTPLUG_RATIO)
        if validate_memory(spec, max_guest) is None:
            memory["maxGuest"] = max_guest


def _with_delta(quantity, delta, fmt):
    return fmt(parse_quantity(quantity) + delta)


def cpu_change(tspec, vmi, migrating):
    """handleCPUChangeRequest: ('patch', json patch) | ('restart', message) | ('error', text) | None."""
    want = dig(tspec, "domain", "cpu")
    have = dig(vmi, "spec", "domain", "cpu")
    if not want or not have or int(want.get("sockets") or 0) == int(have.get("sockets") or 0):
        return None
    sockets, current = int(want.get("sockets") or 0), int(have.get("sockets") or 0)
    if any(c.get("type") == VCPU_CHANGE and c.get("status") == "True"
           for c in dig(vmi, "status", "conditions", default=[]) or []):
        return "error", "another CPU hotplug is in progress"
    if migrating:
        return "error", "CPU hotplug is not allowed while VMI is migrating"
    if sockets > int(have.get("maxSockets") or 0):
        return "restart", MSG_CPU_ABOVE_MAX
    if sockets < current:
        return "restart", MSG_CPU_REDUCED
    if (tspec.get("architecture") or "amd64") == "arm64":
        return "restart", "ARM doesn't support CPU hotplug"
    ops = [{"op": "test", "path": "/spec/domain/cpu/sockets", "value": have.get("sockets")},
           {"op": "replace", "path": "/spec/domain/cpu/sockets", "value": sockets}]
    delta = vcpus(want) - vcpus(have)     # CPU allocation ratio 10: 100m per vCPU
    vmi_res = dig(vmi, "spec", "domain", "resources", default={}) or {}
    for kind in ("requests", "limits"):
        if dig(tspec, "domain", "resources", kind, "cpu"):
            old = dig(vmi_res, kind, "cpu") or "0"
            ops += [{"op": "test", "path": f"/spec/domain/resources/{kind}/cpu", "value": old},
                    {"op": "replace", "path": f"/spec/domain/resources/{kind}/cpu",
                     "value": _with_delta(old, delta * 0.1, format_millicpu)}]
    return "patch", ops


def memory_change(tspec, vmi, migrating, migratable):
    """handleMemoryHotplugRequest: ('patch', json patch) | ('restart', message) | ('error', text) | None."""
    want = dig(tspec, "domain", "memory", "guest")
    have = dig(vmi, "spec", "domain", "memory", "guest")
    current = dig(vmi, "status", "memory", "guestCurrent")
    if not want or not have or not current:
        return None
    change = next((c for c in dig(vmi, "status", "conditions", default=[]) or [] if c.get("type") == MEMORY_CHANGE),
                  None)
    if change is not None and change.get("status") == "False":
        return "restart", MSG_MEM_FAILED
    if parse_quantity(want) == parse_quantity(have):
        return None
    max_guest = dig(vmi, "spec", "domain", "memory", "maxGuest")
    if not migratable:
        return "restart", MSG_MEM_NOT_MIGRATABLE
    if max_guest is None:
        return "restart", MSG_MEM_NO_MAX
    if change is not None and change.get("status") == "True":
        return "error", "another memory hotplug is in progress"
    if migrating:
        return "error", "memory hotplug is not allowed while VMI is migrating"
    err = validate_memory(tspec, max_guest)
    if err:
        return "restart", f"memory hotplug not supported, {err}"
    at_boot = dig(vmi, "status", "memory", "guestAtBoot")
    if at_boot and parse_quantity(want) < parse_quantity(at_boot):
        return "restart", MSG_MEM_LOWER
    if parse_quantity(want) > parse_quantity(max_guest):
        return "restart", MSG_MEM_ABOVE_MAX
    ops = [{"op": "test", "path": "/spec/domain/memory/guest", "value": have},
           {"op": "replace", "path": "/spec/domain/memory/guest", "value": want}]
    delta = parse_quantity(want) - parse_quantity(current)
    vmi_res = dig(vmi, "spec", "domain", "resources", default={}) or {}
    request = dig(vmi_res, "requests", "memory")
    if request:
        new_request = parse_quantity(request) + delta
        if new_request < parse_quantity(want):
            new_request = parse_quantity(want)
            delta = parse_quantity(want) - new_request
        ops += [{"op": "test", "path": "/spec/domain/resources/requests/memory", "value": request},
                {"op": "replace", "path": "/spec/domain/resources/requests/memory", "value": format_bytes(new_request)}]
    if dig(tspec, "domain", "resources", "limits", "memory"):
        limit = dig(vmi_res, "limits", "memory") or "0"
        ops += [{"op": "test", "path": "/spec/domain/resources/limits/memory", "value": limit},
                {"op": "replace", "path": "/spec/domain/resources/limits/memory",
                 "value": _with_delta(limit, delta, format_bytes)}]
    return "patch", ops


def hotplug_conditions(vmi):
    """requireCPUHotplug / requireMemoryHotplug: the hot-plug condition types the VMI needs now."""
    spec_cpu = dig(vmi, "spec", "domain", "cpu") or {}
    topo = dig(vmi, "status", "currentCPUTopology")
    need = []
    if topo and spec_cpu.get("maxSockets") and vcpus(spec_cpu) != vcpus(topo):
        need.append(VCPU_CHANGE)
    mem = dig(vmi, "spec", "domain", "memory") or {}
    requested = dig(vmi, "status", "memory", "guestRequested")
    if requested and mem.get("guest") and mem.get("maxGuest") and \
            parse_quantity(mem["guest"]) != parse_quantity(requested):
        need.append(MEMORY_CHANGE)
    return need


def needs_workload_update(vmi):
    """isHotplugInProgress for CPU and memory (HotVCPUChange present, HotMemoryChange True)."""
    return any((c.get("type") == VCPU_CHANGE) or (c.get("type") == MEMORY_CHANGE and c.get("status") == "True")
               for c in dig(vmi, "status", "conditions", default=[]) or [])


def apply_at_target(vmi_status, vmi_spec):
    """hotplugCPU / hotplugMemory at the migration target: the status takes the spec's topology and
    memory, the hot-plug conditions go. Mutates vmi_status."""
    conds = vmi_status.get("conditions") or []
    types = {c.get("type") for c in conds}
    cpu = dig(vmi_spec, "domain", "cpu") or {}
    if VCPU_CHANGE in types:
        vmi_status["currentCPUTopology"] = {k: int(cpu.get(k) or 1) for k in ("sockets", "cores", "threads")}
    if MEMORY_CHANGE in types and dig(vmi_spec, "domain", "memory", "guest"):
        guest = vmi_spec["domain"]["memory"]["guest"]
        memory = vmi_status.setdefault("memory", {})
        memory["guestRequested"] = guest
        memory["guestCurrent"] = guest      # virt-handler reads the domain's currentMemory
    vmi_status["conditions"] = [c for c in conds if c.get("type") not in (VCPU_CHANGE, MEMORY_CHANGE)]
