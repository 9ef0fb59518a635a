"""Prometheus metrics in KubeVirt's names (docs/observability/metrics.md), per running VMI.

Counters grow with the time a VMI has been running at a per-VMI rate, so they are plausible,
monotonic and survive a simulator restart (they derive from the API's timestamps)."""
import time

from aiohttp import web

from . import guest
from .handler import datavolumes_of
from .launcher import guest_memory, vcpus
from .util import age, dig, seeded

SERIES = [
    ("kubevirt_vmi_cpu_usage_seconds_total", "counter", "Total CPU time spent in all modes (sum of both vcpu and hypervisor usage)."),
    ("kubevirt_vmi_vcpu_seconds_total", "counter", "Total amount of time spent in each state by each vcpu (cpu_time excluding hypervisor time)."),
    ("kubevirt_vmi_memory_available_bytes", "gauge", "Amount of usable memory as seen by the domain."),
    ("kubevirt_vmi_memory_usable_bytes", "gauge", "The amount of memory which can be reclaimed by balloon without pushing the guest system to swap."),
    ("kubevirt_vmi_memory_resident_bytes", "gauge", "Resident set size of the process running the domain."),
    ("kubevirt_vmi_memory_domain_bytes", "gauge", "The amount of memory in bytes allocated to the domain."),
    ("kubevirt_vmi_network_receive_bytes_total", "counter", "Total network traffic received in bytes."),
    ("kubevirt_vmi_network_transmit_bytes_total", "counter", "Total network traffic transmitted in bytes."),
    ("kubevirt_vmi_network_receive_packets_total", "counter", "Total network traffic received packets."),
    ("kubevirt_vmi_network_transmit_packets_total", "counter", "Total network traffic transmitted packets."),
    ("kubevirt_vmi_storage_read_traffic_bytes_total", "counter", "Total number of bytes read from storage."),
    ("kubevirt_vmi_storage_write_traffic_bytes_total", "counter", "Total number of written bytes."),
    ("kubevirt_vmi_storage_iops_read_total", "counter", "Total number of I/O read operations."),
    ("kubevirt_vmi_storage_iops_write_total", "counter", "Total number of I/O write operations."),
    ("kubevirt_vmi_info", "gauge", "Information about VirtualMachineInstances."),
    ("kubevirt_vmi_phase_count", "gauge", "Sum of VMIs per phase and node."),
    ("kubevirt_vm_info", "gauge", "Information about Virtual Machines."),
]


def _esc(v):
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**kw):
    return "{" + ",".join(f'{k}="{_esc(v)}"' for k, v in kw.items()) + "}"


def _fmt(v):
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


def render(sim):
    out = {name: [] for name, _, _ in SERIES}
    phase_count = {}
    now = time.time()
    for vmi in sim.cache.vmis.store.values():
        meta, st = vmi["metadata"], vmi.get("status") or {}
        phase = (st.get("phase") or "").lower()
        node = st.get("nodeName", "")
        key = (node, phase or "pending")
        phase_count[key] = phase_count.get(key, 0) + 1
        dvs = datavolumes_of(sim, vmi)
        osi = guest.os_info(vmi, dvs) if guest.has_agent(vmi, dvs) else {}
        ann = meta.get("annotations") or {}
        out["kubevirt_vmi_info"].append((_labels(
            node=node, namespace=meta["namespace"], name=meta["name"], phase=phase or "pending",
            os=ann.get("vm.kubevirt.io/os", "<none>"), workload=ann.get("vm.kubevirt.io/workload", "<none>"),
            flavor=ann.get("vm.kubevirt.io/flavor", "<none>"),
            instance_type=ann.get("kubevirt.io/cluster-instancetype-name", ann.get("kubevirt.io/instancetype-name", "<none>")),
            preference=ann.get("kubevirt.io/cluster-preference-name", ann.get("kubevirt.io/preference-name", "<none>")),
            guest_os_kernel_release=osi.get("kernelRelease", "<none>"), guest_os_machine=osi.get("machine", "<none>"),
            guest_os_name=osi.get("name", "<none>"), guest_os_version_id=osi.get("versionId", "<none>"),
            evictable="false", outdated="false"), 1))
        if st.get("phase") != "Running":
            continue
        since = next((s["phaseTransitionTimestamp"] for s in st.get("phaseTransitionTimestamps") or []
                      if s.get("phase") == "Running"), None)
        up = max(0.0, age(since)) if since else 0.0
        seed = seeded(meta["uid"])
        paused = any(c.get("type") == "Paused" and c.get("status") == "True" for c in st.get("conditions") or [])
        base = dict(node=node, namespace=meta["namespace"], name=meta["name"])
        cpus = vcpus(vmi.get("spec") or {})
        load = 0.05 + 0.25 * seed
        wobble = 0.5 + 0.5 * abs(((now / 30.0 + seed * 7) % 2) - 1)   # a slow triangle wave, 0.5..1
        cpu_total = up * cpus * load * (0.2 if paused else 1.0)
        out["kubevirt_vmi_cpu_usage_seconds_total"].append((_labels(**base), cpu_total))
        for i in range(cpus):
            out["kubevirt_vmi_vcpu_seconds_total"].append((_labels(**base, id=str(i), state="running"),
                                                           cpu_total / cpus * 0.9))
        mem = guest_memory(vmi.get("spec") or {}) or 2 ** 30
        used = mem * (0.25 + 0.35 * seed) * wobble
        out["kubevirt_vmi_memory_available_bytes"].append((_labels(**base), mem))
        out["kubevirt_vmi_memory_usable_bytes"].append((_labels(**base), max(0, mem - used)))
        out["kubevirt_vmi_memory_resident_bytes"].append((_labels(**base), used + 180 * 2 ** 20))
        out["kubevirt_vmi_memory_domain_bytes"].append((_labels(**base), mem))
        for iface in st.get("interfaces") or []:
            lbl = _labels(**base, interface=iface.get("interfaceName") or iface.get("name", "default"))
            rx = up * (20000 + 200000 * seed)
            tx = up * (8000 + 90000 * seed)
            out["kubevirt_vmi_network_receive_bytes_total"].append((lbl, int(rx)))
            out["kubevirt_vmi_network_transmit_bytes_total"].append((lbl, int(tx)))
            out["kubevirt_vmi_network_receive_packets_total"].append((lbl, int(rx / 900)))
            out["kubevirt_vmi_network_transmit_packets_total"].append((lbl, int(tx / 700)))
        for vs in st.get("volumeStatus") or []:
            drive = vs.get("target") or vs.get("name")
            lbl = _labels(**base, drive=drive)
            rd = up * (50000 + 400000 * seed) + 300 * 2 ** 20
            wr = up * (20000 + 150000 * seed)
            out["kubevirt_vmi_storage_read_traffic_bytes_total"].append((lbl, int(rd)))
            out["kubevirt_vmi_storage_write_traffic_bytes_total"].append((lbl, int(wr)))
            out["kubevirt_vmi_storage_iops_read_total"].append((lbl, int(rd / 4096)))
            out["kubevirt_vmi_storage_iops_write_total"].append((lbl, int(wr / 4096)))
    for (node, phase), n in sorted(phase_count.items()):
        out["kubevirt_vmi_phase_count"].append((_labels(node=node, phase=phase, os="<none>", workload="<none>",
                                                        flavor="<none>", instance_type="<none>", preference="<none>"), n))
    for vm in sim.cache.vms.store.values():
        meta = vm["metadata"]
        out["kubevirt_vm_info"].append((_labels(name=meta["name"], namespace=meta["namespace"],
                                                status=dig(vm, "status", "printableStatus", default="").lower(),
                                                status_group="running" if dig(vm, "status", "printableStatus") == "Running"
                                                else "non_running"), 1))
    lines = []
    for name, mtype, help_text in SERIES:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {mtype}")
        for labels, value in out[name]:
            lines.append(f"{name}{labels} {_fmt(value)}")
    lines.append("# HELP kubevirt_simulator_api_requests_total Requests the simulator sent to the kube-apiserver.")
    lines.append("# TYPE kubevirt_simulator_api_requests_total counter")
    lines.append(f"kubevirt_simulator_api_requests_total {sim.kube.requests}")
    lines.append("# HELP process_resident_memory_peak_bytes Peak resident set size of the simulator.")
    lines.append("# TYPE process_resident_memory_peak_bytes gauge")
    lines.append(f"process_resident_memory_peak_bytes {int(sim.rss_mb() * 2 ** 20)}")
    return "\n".join(lines) + "\n"


async def handle(request):
    sim = request.app["sim"]
    return web.Response(body=render(sim).encode(),
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
