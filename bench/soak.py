#!/usr/bin/env python3
"""Soak: provision a fleet through the fault proxy, check that exactly the fleet exists, run it again.

On a private lab (its own state folder and ports, so it never touches another lab) with the fault
proxy at RATE (seeded), the vm_provision role (playbooks/provision.yml) provisions N VMs, each with
a small DataVolume of its own, through kubeconfig-faults. Then, read directly (not through the
proxy): exactly N VMs, N VMIs Running and Ready (each owned by its VM), one virt-launcher pod per
VM, N DataVolumes and N PVCs with the expected names, nothing else. A second run of the same
playbook (through the faults too) must report changed=0. Figures: wall times, requests and faults
by kind from /faultproxy/stats. The lab is taken down at the end (--keep-lab keeps it).

    bench/soak.py [--vms 100] [--rate 0.1] [--seed 42] [--volumes 100] [--keep-lab] [--json FILE]

Exit status 0 when every check passed.
"""
import argparse
import json
import os
import re
import ssl
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

from run import ours_collection_root  # bench/run.py, beside this file

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV = REPO / ".venv" / "bin"
PY = str(VENV / "python")
WORK = BENCH / ".work" / "soak"
NS = "soak"
IMAGE = "quay.io/containerdisks/fedora:41"


def say(msg):
    print("soak: %s" % msg, flush=True)


def lab_env(state, port_base):
    return dict(os.environ, LAB_STATE_DIR=str(state), LAB_PORT_BASE=str(port_base))


def labctl(state, port_base, *args):
    return subprocess.run([PY, str(REPO / "lab" / "labctl")] + list(args), env=lab_env(state, port_base),
                          check=False, text=True, capture_output=True)


def fleet(n, volumes):
    names = ["soak-%03d" % i for i in range(1, n + 1)]
    items = []
    for i, name in enumerate(names):
        item = {"name": name}
        if i < volumes:
            item["volumes"] = [{"name": "%s-data" % name, "size": "64Mi"}]
            item["disks"] = [{"name": "root", "image": IMAGE}, {"name": "data", "data_volume": "%s-data" % name}]
        items.append(item)
    return names, items


def provision_vars(items, timeout):
    return {
        "vm_provision_namespace": NS,
        "vm_provision_defaults": {"memory": "128Mi", "disks": [{"name": "root", "image": IMAGE}],
                                  "networks": [{"name": "default", "type": "pod"}],
                                  "labels": {"app": "soak"}},
        "vm_provision_vms": items,
        "vm_provision_wait_timeout": timeout,
        "vm_provision_progress_interval": 10,
    }


def run_provision(kubeconfig, vars_file, log):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("K8S_AUTH_", "ANSIBLE_"))}
    env.update(KUBECONFIG=str(kubeconfig), ANSIBLE_COLLECTIONS_PATH=ours_collection_root(),
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_NOCOLOR="1",
               ANSIBLE_PYTHON_INTERPRETER=PY, PATH="%s:%s" % (VENV, os.environ.get("PATH", "")),
               # Ansible's temp and async files under bench/.work, not ~/.ansible or ~/.ansible_async
               ANSIBLE_HOME=str(WORK / "ansible-home"), ANSIBLE_REMOTE_TMP=str(WORK / "ansible-home" / "remote-tmp"),
               ANSIBLE_ASYNC_DIR=str(WORK / "ansible-home" / "async"))
    t0 = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.run([str(VENV / "ansible-playbook"), str(REPO / "playbooks" / "provision.yml"),
                               "-e", "@%s" % vars_file], env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    seconds = time.monotonic() - t0
    text = Path(log).read_text()
    recap = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", text)
    changed_tasks = re.findall(r"^changed: \[localhost\]|^TASK \[(.*?)\]", text, re.M)
    return {"rc": proc.returncode, "seconds": round(seconds, 1),
            "ok": int(recap.group(1)) if recap else None, "changed": int(recap.group(2)) if recap else None,
            "failed": int(recap.group(4)) if recap else None, "log": str(log),
            "changed_tasks": _changed_tasks(changed_tasks)}


def _changed_tasks(matches):
    out, task = [], None
    for match in matches:
        if match:
            task = match
        elif task and task not in out:
            out.append(task)
    return out


def proxy_stats(info, pki):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    with urllib.request.urlopen(info["faultproxy"]["url"] + "/faultproxy/stats", context=ctx, timeout=10) as resp:
        return json.loads(resp.read())


def stats_delta(after, before):
    faults = Counter(after.get("faults") or {})
    faults.subtract(before.get("faults") or {})
    methods = {}
    for method, entry in (after.get("methods") or {}).items():
        prev = (before.get("methods") or {}).get(method) or {}
        mf = Counter(entry.get("faults") or {})
        mf.subtract(prev.get("faults") or {})
        methods[method] = {"requests": entry.get("requests", 0) - prev.get("requests", 0),
                           "faults": {k: v for k, v in mf.items() if v}}
    return {"requests": after.get("requests", 0) - before.get("requests", 0),
            "faults_total": after.get("faults_total", 0) - before.get("faults_total", 0),
            "faults": {k: v for k, v in sorted(faults.items()) if v}, "methods": methods}


def inventory(kubeconfig):
    """What exists in the namespace, read directly."""
    from kubernetes import client, config
    api = config.new_client_from_config(config_file=str(kubeconfig))
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)

    def crs(group, version, plural):
        return custom.list_namespaced_custom_object(group, version, NS, plural)["items"]

    return {
        "vms": crs("kubevirt.io", "v1", "virtualmachines"),
        "vmis": crs("kubevirt.io", "v1", "virtualmachineinstances"),
        "dvs": crs("cdi.kubevirt.io", "v1beta1", "datavolumes"),
        "pvcs": [api.sanitize_for_serialization(p) for p in core.list_namespaced_persistent_volume_claim(NS).items],
        "pods": [api.sanitize_for_serialization(p)
                 for p in core.list_namespaced_pod(NS, label_selector="kubevirt.io=virt-launcher").items],
    }


def check(inv, names, volumes):
    """[(check, ok, detail)] for the fleet ``names`` whose first ``volumes`` have a DataVolume."""
    want = set(names)
    want_dv = {"%s-data" % n for n in names[:volumes]}
    out = []

    def add(what, ok, detail=""):
        out.append((what, bool(ok), detail))

    vm_names = [v["metadata"]["name"] for v in inv["vms"]]
    add("exactly %d VMs, the fleet's names" % len(want), sorted(vm_names) == sorted(want),
        "%d VMs, extra %s, missing %s" % (len(vm_names), sorted(set(vm_names) - want)[:5],
                                          sorted(want - set(vm_names))[:5]))
    uids = {v["metadata"]["name"]: v["metadata"]["uid"] for v in inv["vms"]}
    vmis = [v for v in inv["vmis"] if not v["metadata"].get("deletionTimestamp")]
    vmi_names = [v["metadata"]["name"] for v in vmis]
    add("exactly one VMI per VM", sorted(vmi_names) == sorted(want), "%d VMIs" % len(vmi_names))
    running = [v for v in vmis if (v.get("status") or {}).get("phase") == "Running" and any(
        c.get("type") == "Ready" and str(c.get("status")) == "True" for c in (v.get("status") or {}).get("conditions")
        or [])]
    add("every VMI Running and Ready", len(running) == len(want), "%d Running and Ready" % len(running))
    owned = [v for v in vmis if any(r.get("uid") == uids.get(v["metadata"]["name"])
                                    for r in v["metadata"].get("ownerReferences") or [])]
    add("every VMI owned by its VM", len(owned) == len(vmis), "%d owned" % len(owned))
    pods = [p for p in inv["pods"] if not p["metadata"].get("deletionTimestamp")]
    per_vm = Counter((p["metadata"].get("labels") or {}).get("vm.kubevirt.io/name") for p in pods)
    add("exactly one virt-launcher pod per VM", set(per_vm) == want and set(per_vm.values()) == {1},
        "%d pods, %s" % (len(pods), {k: v for k, v in per_vm.items() if v != 1 or k not in want}))
    dv_names = [d["metadata"]["name"] for d in inv["dvs"]]
    add("exactly the %d DataVolumes asked for" % len(want_dv), sorted(dv_names) == sorted(want_dv),
        "%d DataVolumes" % len(dv_names))
    dv_ok = [d for d in inv["dvs"] if (d.get("status") or {}).get("phase") == "Succeeded"]
    add("every DataVolume Succeeded", len(dv_ok) == len(want_dv), "%d Succeeded" % len(dv_ok))
    pvc_names = [p["metadata"]["name"] for p in inv["pvcs"]]
    add("exactly one PVC per DataVolume, no other PVC", sorted(pvc_names) == sorted(want_dv),
        "%d PVCs, extra %s" % (len(pvc_names), sorted(set(pvc_names) - want_dv)[:5]))
    bound = [p for p in inv["pvcs"] if (p.get("status") or {}).get("phase") == "Bound"]
    add("every PVC Bound", len(bound) == len(want_dv), "%d Bound" % len(bound))
    return out


def ensure_namespace(kubeconfig):
    from kubernetes import client, config
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    try:
        core.create_namespace({"metadata": {"name": NS}})
    except client.ApiException as exc:
        if exc.status != 409:
            raise


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vms", type=int, default=100)
    parser.add_argument("--volumes", type=int, default=None, help="how many VMs get a DataVolume (default all)")
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timeout", type=int, default=1200, help="the role's wait timeout (seconds)")
    parser.add_argument("--state-dir", default=str(REPO / "lab" / ".state-soak"))
    parser.add_argument("--port-base", type=int, default=21443)
    parser.add_argument("--keep-lab", action="store_true", help="leave the soak lab up at the end")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    volumes = args.vms if args.volumes is None else min(args.volumes, args.vms)
    state = Path(args.state_dir)
    WORK.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()

    say("lab up in %s (port base %d) with %.0f%% faults, seed %d" % (state, args.port_base, args.rate * 100,
                                                                        args.seed))
    up = labctl(state, args.port_base, "up", "--faults", str(args.rate), "--fault-seed", str(args.seed))
    if up.returncode != 0:
        say("the lab did not come up:\n%s%s" % (up.stdout, up.stderr))
        return 2
    figures = {"vms": args.vms, "volumes": volumes, "rate": args.rate, "seed": args.seed}
    passed = False
    try:
        info = json.loads((state / "lab.json").read_text())
        pki = state / "pki"
        direct, faulty = state / "kubeconfig", state / "kubeconfig-faults"
        ensure_namespace(direct)
        names, items = fleet(args.vms, volumes)
        vars_file = WORK / "vars.json"
        vars_file.write_text(json.dumps(provision_vars(items, args.timeout)))

        s0 = proxy_stats(info, pki)
        say("provisioning %d VMs (%d with a DataVolume) with the vm_provision role through the fault proxy" % (
            args.vms, volumes))
        first = run_provision(faulty, vars_file, WORK / "provision-1.log")
        s1 = proxy_stats(info, pki)
        say("first run: rc %s in %.1fs, %s" % (first["rc"], first["seconds"], stats_line(stats_delta(s1, s0))))
        results = check(inventory(direct), names, volumes)
        say("second run (the same playbook, through the faults too)")
        second = run_provision(faulty, vars_file, WORK / "provision-2.log")
        s2 = proxy_stats(info, pki)
        say("second run: rc %s in %.1fs, changed=%s, %s" % (second["rc"], second["seconds"], second["changed"],
                                                              stats_line(stats_delta(s2, s1))))
        results.append(("first run succeeded", first["rc"] == 0 and first["failed"] == 0,
                        "rc %s, log %s" % (first["rc"], first["log"])))
        results.append(("second run succeeded with changed=0", second["rc"] == 0 and second["changed"] == 0,
                        "rc %s, changed %s %s" % (second["rc"], second["changed"], second["changed_tasks"])))
        results.extend(("after the second run: " + what, ok, detail)
                       for what, ok, detail in check(inventory(direct), names, volumes))
        figures.update(first_run=dict(first, proxy=stats_delta(s1, s0)),
                       second_run=dict(second, proxy=stats_delta(s2, s1)),
                       checks=[{"check": w, "ok": ok, "detail": d} for w, ok, d in results])
        for what, ok, detail in results:
            print("  %s %s%s" % ("ok  " if ok else "FAIL", what, "" if ok else " (%s)" % detail))
        passed = all(ok for _w, ok, _d in results)
    finally:
        figures["wall_seconds"] = round(time.monotonic() - t_start, 1)
        if args.keep_lab:
            say("the soak lab is still up: LAB_STATE_DIR=%s LAB_PORT_BASE=%d lab/labctl down" % (state, args.port_base))
        else:
            labctl(state, args.port_base, "down")
    print_figures(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    say("PASSED" if passed else "FAILED")
    return 0 if passed else 1


def stats_line(delta):
    return "%d requests, %d faults %s" % (delta["requests"], delta["faults_total"], json.dumps(delta["faults"]))


def print_figures(fig):
    print("soak figures:")
    print("  fleet: %d VMs, %d DataVolumes; faults %.0f%% (seed %d)" % (fig["vms"], fig["volumes"],
                                                                        fig["rate"] * 100, fig["seed"]))
    for key, label in (("first_run", "provision"), ("second_run", "rerun")):
        run = fig.get(key)
        if not run:
            continue
        proxy = run["proxy"]
        print("  %-9s %7.1fs  rc %s  changed=%s  requests %d  faults %d %s" % (
            label, run["seconds"], run["rc"], run["changed"], proxy["requests"], proxy["faults_total"],
            json.dumps(proxy["faults"])))
        for method, entry in sorted(proxy["methods"].items()):
            print("            %-6s requests %5d  faults %s" % (method, entry["requests"], json.dumps(entry["faults"])))
    print("  wall time (lab up to down): %.1fs" % fig["wall_seconds"])


if __name__ == "__main__":
    sys.exit(main())
