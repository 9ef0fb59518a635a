"""Simulator: 200 VMs at once, and `kill -9` during boot followed by a restart.

Both tests measure the simulator process (the one labctl started, lab/.state/pids/simulator.pid)
and write their figures to lab/.state/logs/simulator-figures.json.
"""
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sim_helpers import dv_manifest, lab, vm_manifest, wait_for  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
CLK = os.sysconf("SC_CLK_TCK")


def sim_pid(lab_state):
    path = lab_state / "pids" / "simulator.pid"
    if not path.exists():
        pytest.fail(f"{path} is missing: the lab's simulator is not managed by labctl")
    return int(path.read_text().split()[0])


def proc_figures(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "peak_rss_mb": int(fields["VmHWM"].split()[0]) / 1024,
            "cpu_s": (int(stat[11]) + int(stat[12])) / CLK}


def record(lab_state, key, figures):
    path = lab_state / "logs" / "simulator-figures.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = figures
    path.write_text(json.dumps(data, indent=2) + "\n")


def running_count(lab):
    items = lab.custom.list_namespaced_custom_object("kubevirt.io", "v1", lab.ns, "virtualmachineinstances")["items"]
    return sum(1 for v in items if v.get("status", {}).get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in v["status"].get("conditions", [])))


@pytest.mark.slow
def test_200_vms_created_at_once_all_reach_running(lab, lab_state):
    n = 200
    pid = sim_pid(lab_state)
    before = proc_figures(pid)
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: lab.create_vm(vm_manifest(f"scale-{i:03d}", memory="64Mi")), range(n)))
    created = time.monotonic() - t0
    samples = []

    def all_running():
        samples.append(proc_figures(pid)["rss_mb"])
        return running_count(lab) == n
    wait_for(all_running, 240, interval=1.0, what=f"{n} VMIs Running")
    took = time.monotonic() - t0
    after = proc_figures(pid)
    vms = lab.custom.list_namespaced_custom_object("kubevirt.io", "v1", lab.ns, "virtualmachines")["items"]
    wait_for(lambda: sum(1 for v in lab.custom.list_namespaced_custom_object(
        "kubevirt.io", "v1", lab.ns, "virtualmachines")["items"]
        if v.get("status", {}).get("printableStatus") == "Running") == n, 60, interval=1.0, what="VMs Running")
    figures = {"vms": n, "create_s": round(created, 1), "all_running_s": round(took, 1),
               "sim_cpu_s": round(after["cpu_s"] - before["cpu_s"], 1),
               "sim_peak_rss_mb": round(after["peak_rss_mb"], 1), "sim_rss_mb": round(max(samples), 1)}
    record(lab_state, "200_vms", figures)
    print("\n200 VMs:", figures, file=sys.stderr)
    assert len(vms) == n
    assert after["peak_rss_mb"] < 300, figures
    nodes = {v["status"]["nodeName"] for v in lab.custom.list_namespaced_custom_object(
        "kubevirt.io", "v1", lab.ns, "virtualmachineinstances")["items"]}
    assert len(nodes) == 3, "spread over the nodes"
    # leave the lab as we found it (and measure the teardown)
    t1 = time.monotonic()
    lab.custom.delete_collection_namespaced_custom_object("kubevirt.io", "v1", lab.ns, "virtualmachines")
    wait_for(lambda: not lab.custom.list_namespaced_custom_object("kubevirt.io", "v1", lab.ns,
                                                                   "virtualmachineinstances")["items"],
             240, interval=1.0, what="all VMIs deleted")
    record(lab_state, "200_vms", {**figures, "delete_all_s": round(time.monotonic() - t1, 1),
                                  "sim_peak_rss_mb_after_delete": round(proc_figures(pid)["peak_rss_mb"], 1)})


def test_kill_9_during_boot_then_restart_converges(lab, lab_state):
    n = 8
    for i in range(n):
        lab.create_vm(vm_manifest(f"k9-{i}"))
    lab.create_dv(dv_manifest("k9-dv", {"http": {"url": "https://images.example.com/k9.qcow2"}}))
    # mid-boot: some VMIs exist, none can be Running yet (boot delay 2 s)
    wait_for(lambda: len(lab.custom.list_namespaced_custom_object(
        "kubevirt.io", "v1", lab.ns, "virtualmachineinstances")["items"]) >= 1, 10, interval=0.05, what="a VMI")
    assert running_count(lab) < n
    os.kill(sim_pid(lab_state), signal.SIGKILL)
    time.sleep(1.5)
    t0 = time.monotonic()
    subprocess.run([sys.executable, str(REPO / "lab" / "labctl"), "restart", "simulator"], check=True,
                   capture_output=True, timeout=120)
    wait_for(lambda: running_count(lab) == n, 60, interval=0.5, what=f"{n} VMIs Running after the restart")
    record(lab_state, "kill9_restart", {"vms": n, "converged_s": round(time.monotonic() - t0, 1)})
    for i in range(n):
        vm = lab.wait_printable(f"k9-{i}", "Running")
        assert vm["status"]["ready"] is True
        pods = [p for p in lab.pods(f"k9-{i}") if not p.metadata.deletion_timestamp]
        assert len(pods) == 1, f"k9-{i}: exactly one launcher pod, got {[p.metadata.name for p in pods]}"
        vmi = lab.vmi(f"k9-{i}")
        assert list(vmi["status"]["activePods"]) == [pods[0].metadata.uid]
        assert vmi["status"]["interfaces"][0]["ipAddress"] == pods[0].status.pod_ip
    wait_for(lambda: lab.dv("k9-dv").get("status", {}).get("phase") == "Succeeded", 30, what="DataVolume Succeeded")
    # and it still serves virt-api and the webhooks
    status, _ = lab.vm_sub("k9-0", "stop", {})
    assert status == 202
    lab.wait_vmi_gone("k9-0")
