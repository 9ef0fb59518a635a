#!/usr/bin/env python3
"""Benchmarks: virtops.kubevirt against kubevirt.core 2.2.3 on the same lab, in the same run.

Each scenario runs ours and theirs alternately (ours, theirs, ours, ...) after a warm-up pair,
times single tasks with the bench_timer callback, and reports medians, min-max and the ratio
ours/theirs pair by pair. Machines here are shared and noisy: only ratios measured side by side
mean anything, never one absolute time.

    bench/run.py [--runs 5] [--fleet 100] [--only single,info,...] [--smoke] [--ansible-core 2.21]

--ansible-core runs both collections with that release's venv (tests/compat/venv.sh) and writes
bench/results-<release>.json; without it, .venv's ansible-core and bench/results.json.
"""
import argparse
import calendar
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
STATE = Path(os.environ.get("LAB_STATE_DIR", REPO / "lab" / ".state"))
LAB_PY = REPO / ".venv" / "bin" / "python"  # the lab's tools and the kubernetes client
VENV = REPO / ".venv" / "bin"  # ansible-playbook and the Python Ansible runs on; --ansible-core picks another
WORK = BENCH / ".work"
NS = "bench"
IMAGE = "quay.io/containerdisks/fedora:41"
OURS, THEIRS = "virtops.kubevirt", "kubevirt.core"


def ours_collection_root():
    """A folder whose ansible_collections/virtops/kubevirt is a link to this checkout (also used by soak.py)."""
    root = WORK / "collections"
    ours = root / "ansible_collections" / "virtops" / "kubevirt"
    if not ours.exists():
        ours.parent.mkdir(parents=True, exist_ok=True)
        ours.symlink_to(REPO)
    return str(root)


def collections_path():
    """Ours and the two anchors (kubevirt.core, kubernetes.core)."""
    return f"{ours_collection_root()}:{BENCH / '.anchors'}"


def env_for(timings, rss):
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": collections_path(), "ANSIBLE_CALLBACK_PLUGINS": str(BENCH / "callback_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "bench_timer", 
        "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_FORKS": "20", "BENCH_TIMINGS": str(timings), "BENCH_RSS": str(rss),
        # Ansible's temp and async files in the checkout, not ~/.ansible or ~/.ansible_async
        "ANSIBLE_HOME": str(WORK / "ansible-home"), "ANSIBLE_REMOTE_TMP": str(WORK / "ansible-home" / "remote-tmp"),
        "ANSIBLE_ASYNC_DIR": str(WORK / "ansible-home" / "async"),
        "BENCH_PYTHON": str(VENV / "python"), "KUBECONFIG": str(STATE / "kubeconfig"),
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "PATH": f"{VENV}:{os.environ['PATH']}",
    })
    return env


def play(tasks, vars_=None):
    return [{"name": "bench", "hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": dict({"ansible_python_interpreter": str(BENCH / "rss-python")}, **(vars_ or {})),
             "tasks": tasks}]


def run_play(playbook, label):
    """Run one playbook; returns ({task name: seconds}, [peak RSS KiB per module run])."""
    WORK.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        tmp = Path(tmp)
        (tmp / "play.yml").write_text(json.dumps(playbook))
        timings, rss = tmp / "timings.jsonl", tmp / "rss.txt"
        proc = subprocess.run([str(VENV / "ansible-playbook"), "-i", "localhost,", str(tmp / "play.yml")],
                              env=env_for(timings, rss), capture_output=True, text=True, timeout=3600)
        records = [json.loads(line) for line in timings.read_text().splitlines()] if timings.exists() else []
        failed = [r for r in records if r["status"] == "failed"]
        if proc.returncode or failed:
            raise SystemExit(f"bench: {label} failed (rc {proc.returncode}): {failed or proc.stdout[-2000:] + proc.stderr[-2000:]}")
        per_task = {}
        for rec in records:
            per_task[rec["task"]] = per_task.get(rec["task"], 0.0) + rec["seconds"]
        # The span from the first task's start to the last task's end: a role's or a loop's
        # whole time without ansible-playbook's own start-up.
        per_task["*span*"] = max(r["end"] for r in records) - min(r["start"] for r in records) if records else 0.0
        if os.environ.get("BENCH_TRACE"):
            for rec in records:
                print(f"    {rec['start'] - records[0]['start']:7.2f}s +{rec['seconds']:6.2f}s  {rec['task']}")
        peaks = [int(x) for x in rss.read_text().split() if x.isdigit()] if rss.exists() else []
        return per_task, peaks


# ----------------------------------------------------------------------------- VM definitions

def vm_spec():
    return {"runStrategy": "Always", "template": {"metadata": {"labels": {"bench": "vm"}}, "spec": {
        "domain": {"devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}}]},
                   "memory": {"guest": "256Mi"}},
        "volumes": [{"name": "root", "containerDisk": {"image": IMAGE}}]}}}


def ours_vm(name, **extra):
    return dict({"name": name, "namespace": NS, "memory": "256Mi",
                 "disks": [{"name": "root", "image": IMAGE}], "labels": {"bench": "vm"}}, **extra)


def theirs_vm(name, **extra):
    spec = vm_spec()
    return dict({"name": name, "namespace": NS, "run_strategy": "Always", "labels": {"bench": "vm"},
                 "spec": spec["template"]["spec"]}, **extra)


def delete_task(name):
    return {"name": "cleanup", "virtops.kubevirt.vm": {"name": name, "namespace": NS, "state": "absent",
                                                         "wait": True}}


# ----------------------------------------------------------------------------- scenarios

def slug(variant):
    """A DNS-1123 piece of a variant's name: theirs:wait_sleep=1 -> theirs-ws1."""
    return variant.replace(":wait_sleep=", "-ws").replace(":", "-")


MODULE_PROCESS = {"virtops_kubevirt_in_process": False}  # ours:module - as a module process, like theirs


def scenario_single(variant, i):
    name = f"single-{slug(variant)}-{i}"
    if variant.startswith("ours"):
        task = {"name": "timed", "virtops.kubevirt.vm": ours_vm(name, wait=True)}
        if variant == "ours:module":
            task["vars"] = MODULE_PROCESS
    else:
        sleep = {"theirs": {}, "theirs:wait_sleep=1": {"wait_sleep": 1}}[variant]
        task = {"name": "timed", "kubevirt.core.kubevirt_vm": theirs_vm(name, wait=True, **sleep)}
    times, peaks = run_play(play([task, delete_task(name)]), f"single {variant}")
    return {"seconds": times["timed"], "rss_kib": peaks[0] if peaks else None}


def scenario_info(variant, i):
    module = "virtops.kubevirt.vm_info" if variant.startswith("ours") else "kubevirt.core.kubevirt_vm_info"
    task = {"name": "timed", module: {"name": "info-vm", "namespace": NS}}
    if variant == "ours:module":
        task["vars"] = MODULE_PROCESS
    times, peaks = run_play(play([task]), f"info {variant}")
    return {"seconds": times["timed"], "rss_kib": peaks[0] if peaks else None}


def scenario_floor(variant, i):
    """vm_info against ansible.builtin.ping in the same play: the per-task overhead (both ways of running it)."""
    info = {"virtops.kubevirt.vm_info": {"name": "info-vm", "namespace": NS}}
    tasks = [{"name": "ping", "ansible.builtin.ping": {}}, dict(info, name="timed"),
             dict(info, name="timed-module", vars=MODULE_PROCESS)]
    times, _ = run_play(play(tasks), "floor")
    return {"seconds": times["timed"], "module": times["timed-module"], "ping": times["ping"]}


def fleet_names(n, tag):
    return [f"fleet-{tag}-{k:03d}" for k in range(n)]


def scenario_fleet(variant, i, size):
    tag = f"{variant.split(':')[0][:1]}{i}"
    names = fleet_names(size, tag)
    if variant == "ours":
        tasks = [{"name": "timed", "ansible.builtin.include_role": {"name": "virtops.kubevirt.vm_provision"},
                  "vars": {"vm_provision_vms": [ours_vm(n) for n in names], "vm_provision_namespace": NS}}]
    elif variant == "theirs:loop":
        tasks = [{"name": "timed", "kubevirt.core.kubevirt_vm": theirs_vm("{{ item }}"), "loop": names},
                 {"name": "timed-wait", "kubevirt.core.kubevirt_vm_info": {
                     "name": "{{ item }}", "namespace": NS, "wait": True, "wait_timeout": 600}, "loop": names}]
    else:  # theirs:async — fire all creates, then collect
        tasks = [{"name": "timed", "kubevirt.core.kubevirt_vm": theirs_vm("{{ item }}", wait=True, wait_timeout=600),
                  "loop": names, "async": 900, "poll": 0, "register": "jobs"},
                 {"name": "timed-wait", "ansible.builtin.async_status": {"jid": "{{ item.ansible_job_id }}"},
                  "loop": "{{ jobs.results }}", "register": "done", "until": "done.finished",
                  "retries": 600, "delay": 1}]
    times, _ = run_play(play(tasks), f"fleet {variant}")
    cleanup = [{"name": "cleanup", "virtops.kubevirt.vm": {"namespace": NS, "state": "absent", "wait": True,
                                                             "wait_timeout": 600, "vms": names}}]
    run_play(play(cleanup), "fleet cleanup")
    return {"seconds": times["*span*"]}


USER_AGENTS = {"ours": "virtops.kubevirt/", "theirs": "OpenAPI-Generator/"}  # kubevirt.core: the kubernetes client


def audit_log_size():
    """Where the audit log ends now: audit_requests(..., offset=) reads on from there, not the whole log
    (it grows by hundreds of MiB in a scale run)."""
    path = STATE / "logs" / "audit.log"
    return path.stat().st_size if path.exists() else 0


def audit_requests(since, until, agent, user="virtops-lab-admin", offset=0):
    """API requests made in [since, until] by `user` with a user agent starting with `agent`."""
    path = STATE / "logs" / "audit.log"
    ids = set()
    with open(path, encoding="utf-8") as log:
        log.seek(offset)
        for line in log:
            try:
                ev = json.loads(line)
            except ValueError:  # a line still being written where the offset was taken
                continue
            if ev.get("user", {}).get("username") != user or not ev.get("userAgent", "").startswith(agent):
                continue
            ts = ev.get("requestReceivedTimestamp", "")
            stamp = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + ts[19:26].rstrip("Z"))
            # No slack: the cleanup plays before and after use our module too.
            if since <= stamp <= until:
                ids.add(ev["auditID"])
    return len(ids)


def scenario_requests(variant, i):
    name = f"req-{slug(variant)}-{i}"
    if variant == "ours":
        task = {"name": "timed", "virtops.kubevirt.vm": ours_vm(name, wait=True)}
    else:
        task = {"name": "timed", "kubevirt.core.kubevirt_vm": theirs_vm(name, wait=True, wait_sleep=1)}
    start, offset = time.time(), audit_log_size()
    run_play(play([task]), f"requests {variant}")
    end = time.time()
    count = audit_requests(start, end, USER_AGENTS[variant], offset=offset)
    run_play(play([delete_task(name)]), "requests cleanup")
    return {"requests": count}


# ----------------------------------------------------------------------------- driver

def stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


WARM_UP = True


def alternate(fn, variants, runs, key="seconds", warm_up=True):
    """Warm-up once each, then `runs` rounds of ours, theirs, ...; returns per-variant samples."""
    for variant in variants if WARM_UP and warm_up else ():
        fn(variant, 0)
    samples = {v: [] for v in variants}
    for i in range(1, runs + 1):
        for variant in variants:
            result = fn(variant, i)
            samples[variant].append(result)
            print(f"  {fn.__name__[9:]:<9} {variant:<22} run {i}: {result}", flush=True)
    return samples


def summarize(samples, key, baseline="ours"):
    out = {}
    ours = [s[key] for s in samples[baseline]]
    for variant, runs in samples.items():
        values = [s[key] for s in runs]
        entry = stats(values)
        if variant != baseline:
            ratios = [a / b for a, b in zip(ours, values) if b]
            entry["ratio_ours_over_this"] = stats(ratios)
        rss = [s["rss_kib"] for s in runs if s.get("rss_kib")]
        if rss:
            entry["peak_rss_mib"] = max(rss) / 1024
        out[variant] = entry
    return out


def setup():
    # The single figures are read against the lab's default boot delay; bench/scale.py sets 0.
    subprocess.run([str(LAB_PY), str(REPO / "lab" / "labctl"), "up", "--audit", "--boot-delay", "2"], check=True)
    subprocess.run([str(BENCH / "get-anchors.sh")], check=True)
    ensure_namespace()
    run_play(play([{"name": "info vm", "virtops.kubevirt.vm": ours_vm("info-vm", wait=True)}]), "setup")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fleet", type=int, default=100)
    parser.add_argument("--fleet-runs", type=int, help="counted fleet rounds, no warm-up round (default: --runs, "
                        "after a warm-up); their loop of 100 VMs alone takes minutes a round")
    parser.add_argument("--only", default="single,info,floor,requests,fleet,profile")
    parser.add_argument("--smoke", action="store_true", help="one run, no warm-up, a fleet of 3: checks the harness")
    parser.add_argument("--ansible-core", metavar="RELEASE", help="e.g. 2.21: that release's venv (tests/compat/venv.sh)")
    parser.add_argument("--out", help="default bench/results.json, or bench/results-RELEASE.json")
    parser.add_argument("--merge", action="store_true", help="keep the other scenarios already in --out")
    args = parser.parse_args(argv)
    if args.ansible_core:
        global VENV
        venv = subprocess.run([str(REPO / "tests" / "compat" / "venv.sh"), args.ansible_core],
                              check=True, capture_output=True, text=True).stdout.strip()
        VENV = Path(venv) / "bin"
    args.out = args.out or str(BENCH / ("results-%s.json" % args.ansible_core if args.ansible_core else "results.json"))
    if args.smoke:  # checks the harness and both collections, measures nothing worth keeping
        global WARM_UP
        args.runs, args.fleet, WARM_UP = 1, 3, False
    setup()
    wanted = args.only.split(",")
    load_before = os.getloadavg()
    results = {"machine": machine(), "runs": args.runs, "fleet_size": args.fleet,
               "fleet_runs": args.fleet_runs or args.runs, "scenarios": {}}
    if args.merge and Path(args.out).exists():  # re-run some scenarios, keep the others' figures
        previous = json.loads(Path(args.out).read_text())
        results["scenarios"] = previous["scenarios"]
        results["machine"]["load_average"] = previous["machine"].get("load_average")
    if "single" in wanted:
        s = alternate(scenario_single, ["ours", "theirs", "theirs:wait_sleep=1", "ours:module"], args.runs)
        results["scenarios"]["single"] = summarize(s, "seconds")
    if "info" in wanted:
        results["scenarios"]["info"] = summarize(alternate(scenario_info, ["ours", "theirs", "ours:module"], args.runs), "seconds")
    if "floor" in wanted:
        s = alternate(scenario_floor, ["ours"], args.runs)["ours"]
        results["scenarios"]["floor"] = {"vm_info": stats([r["seconds"] for r in s]),
                                         "vm_info_module": stats([r["module"] for r in s]),
                                         "ping": stats([r["ping"] for r in s]),
                                         "ratio_vm_info_over_ping": stats([r["seconds"] / r["ping"] for r in s]),
                                         "ratio_vm_info_module_over_ping": stats([r["module"] / r["ping"] for r in s])}
    if "requests" in wanted:
        s = alternate(scenario_requests, ["ours", "theirs"], args.runs)
        results["scenarios"]["requests"] = summarize(s, "requests")
    if "profile" in wanted:  # where a module-process task's time goes, layer by layer
        from profile_task import profile
        env = dict(os.environ, PYTHONPATH=collections_path(), KUBECONFIG=str(STATE / "kubeconfig"))
        results["scenarios"]["profile"] = profile(str(VENV / "python"), env, NS, runs=max(3, args.runs))
        print("  profile   " + ", ".join("%s %.0f ms" % (x["layer"], x["seconds"] * 1000)
                                         for x in results["scenarios"]["profile"]["layers"]), flush=True)
    if "fleet" in wanted:
        fn = lambda variant, i: scenario_fleet(variant, i, args.fleet)  # noqa: E731
        fn.__name__ = "scenario_fleet"
        s = alternate(fn, ["ours", "theirs:loop", "theirs:async"], args.fleet_runs or args.runs,
                      warm_up=not args.fleet_runs)
        results["scenarios"]["fleet"] = summarize(s, "seconds")
    if not args.merge:
        results["machine"]["load_average"] = {"start": [round(x, 2) for x in load_before],
                                              "end": [round(x, 2) for x in os.getloadavg()]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"bench: results in {args.out}")
    return 0


def ensure_namespace():
    kubectl_free = [str(LAB_PY), "-c",
                    "import sys;from kubernetes import client,config;"
                    "c=client.CoreV1Api(config.new_client_from_config(sys.argv[1]));"
                    "ns=client.V1Namespace(metadata=client.V1ObjectMeta(name=sys.argv[2]));"
                    "names=[n.metadata.name for n in c.list_namespace().items];"
                    "names.count(sys.argv[2]) or c.create_namespace(ns)",
                    str(STATE / "kubeconfig"), NS]
    subprocess.run(kubectl_free, check=True)


def machine():
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "ansible_core": subprocess.run([str(VENV / "python"), "-c", "import ansible;print(ansible.__version__)"],
                                           capture_output=True, text=True).stdout.strip()}


if __name__ == "__main__":
    sys.exit(main())
