#!/usr/bin/env python3
"""Scale curves: how the cost of our fleet, inventory, report and info paths grows with N VMs.

For each N (default 10 and 100; 1000 with --sizes 10,100,1000, as `make bench-scale` does):

- provision: the vm_provision role creating N VMs and waiting (ours), against the floor
  (bench/fleet_floor.py's N VMs to Ready with no Ansible: the physical floor on this lab) and
  kubevirt.core's loop and async fleet (bench/run.py's theirs:loop and theirs:async) up to
  --reference-max VMs; API requests per VM from the audit log;
- inventory: `ansible-inventory --list` (the whole process) over a namespace of N VMs, ours against
  kubevirt.core's inventory plugin at every N;
- monitor: the vm_monitor role's report (JSON, Markdown and HTML) over the N VMs;
- vm_info: one vm_info task over the namespace.

The readers' N VMs are made by the floor script (fast, and no figure depends on how). Each figure
is a median of --runs alternated runs (ours, theirs, ours, ...), with the peak RSS of the whole
controller process tree (GNU time around ansible-playbook / ansible-inventory: the largest
process, i.e. the controller or one of its workers). The lab should run with --boot-delay 0 and
room for the largest N (`make bench-scale` starts it so). Raw figures go to bench/scale.json
(--merge keeps the sizes and parts not re-run); bench/report.py plots them.

    bench/scale.py [--sizes 10,100] [--runs 3] [--only provision,inventory,monitor,vm_info]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import run  # noqa: E402  (the harness: lab, anchors, collections path, audit log)
import fleet_floor  # noqa: E402

NS = "bench-scale"
OUT = BENCH / "scale.json"
PARTS = ("provision", "inventory", "monitor", "vm_info")


def timed(argv, env, cwd=None, timeout=7200):
    """Run a command under GNU time: (wall seconds, peak RSS MiB of its largest process, stdout)."""
    with tempfile.NamedTemporaryFile(dir=run.WORK, suffix=".rss") as rss:
        start = time.monotonic()
        proc = subprocess.run(["/usr/bin/time", "-o", rss.name, "-f", "%M"] + argv, env=env, cwd=cwd,
                              capture_output=True, text=True, timeout=timeout)
        seconds = time.monotonic() - start
        if proc.returncode:
            raise SystemExit("scale: %s failed (rc %d): %s%s" % (" ".join(argv[:2]), proc.returncode,
                                                                  proc.stdout[-2000:], proc.stderr[-2000:]))
        peak = [int(x) for x in Path(rss.name).read_text().split() if x.isdigit()]
    return seconds, (peak[-1] / 1024 if peak else None), proc.stdout


def playbook(tasks, label):
    """One play on localhost, under GNU time; returns (span of the timed tasks, controller peak RSS MiB)."""
    run.WORK.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=run.WORK) as tmp:
        tmp = Path(tmp)
        (tmp / "play.yml").write_text(json.dumps(run.play(tasks)))
        timings = tmp / "timings.jsonl"
        _wall, peak, _out = timed([str(run.VENV / "ansible-playbook"), "-i", "localhost,", str(tmp / "play.yml")],
                                  run.env_for(timings, tmp / "module-rss.txt"))
        records = [json.loads(line) for line in timings.read_text().splitlines()]
        failed = [r for r in records if r["status"] == "failed"]
        if failed:
            raise SystemExit("scale: %s failed: %s" % (label, failed[:3]))
        counted = [r for r in records if r["task"] != "cleanup"]
        span = max(r["end"] for r in counted) - min(r["start"] for r in counted)
        return span, peak


def stats(values):
    values = [v for v in values if v is not None]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values} \
        if values else None


WARM_UP = True  # --smoke: none


def alternate(fns, runs, warm_up=False):
    """fns: {variant: fn() -> dict}; `runs` rounds of each in turn (after one uncounted round with
    warm_up); {variant: {key: stats}}."""
    for fn in fns.values() if warm_up and WARM_UP else ():
        fn()
    samples = {v: [] for v in fns}
    for i in range(runs):
        for variant, fn in fns.items():
            result = fn()
            samples[variant].append(result)
            print("    %-22s run %d: %s" % (variant, i + 1, json.dumps(result)), flush=True)
    out = {}
    for variant, results in samples.items():
        out[variant] = {key: stats([r.get(key) for r in results]) for key in results[0]}
    first = next(iter(fns))
    for variant in list(fns)[1:]:  # ours over this, pair by pair
        pairs = [a["seconds"] / b["seconds"] for a, b in zip(samples[first], samples[variant]) if b["seconds"]]
        out[variant]["ratio_ours_over_this"] = stats(pairs)
    return out


# ----------------------------------------------------------------------------- parts

def provision_part(client, n, runs, reference_max):
    names_of = lambda tag: ["s%s-%04d" % (tag, k) for k in range(n)]  # noqa: E731
    counter = iter(range(10 ** 6))

    def floor():
        label = "f%d-%d" % (n, next(counter))
        result = fleet_floor.make_fleet(client, NS, n, 16, 1800, label)
        fleet_floor.delete_fleet(client, NS, label, 1800)
        return {"seconds": result["seconds"], "requests_per_vm": result["requests_per_vm"]}

    def cleanup(names):
        run.run_play(run.play([{"name": "cleanup", "virtops.kubevirt.vm": {
            "namespace": NS, "state": "absent", "wait": True, "wait_timeout": 1800, "vms": names}}]), "cleanup")

    def ours():
        names = names_of("o%d" % next(counter))
        tasks = [{"name": "timed", "ansible.builtin.include_role": {"name": "virtops.kubevirt.vm_provision"},
                  "vars": {"vm_provision_vms": [dict(run.ours_vm(x), namespace=NS) for x in names],
                           "vm_provision_namespace": NS, "vm_provision_wait_timeout": 1800}}]
        start, offset = time.time(), run.audit_log_size()
        seconds, peak = playbook(tasks, "provision ours")
        requests = run.audit_requests(start, time.time(), run.USER_AGENTS["ours"], offset=offset)
        cleanup(names)
        return {"seconds": seconds, "controller_rss_mib": peak, "requests_per_vm": requests / n}

    def theirs(variant):
        def go():
            names = names_of("t%d" % next(counter))
            vm = dict(run.theirs_vm("{{ item }}"), namespace=NS)
            if variant == "loop":
                tasks = [{"name": "timed", "kubevirt.core.kubevirt_vm": vm, "loop": names},
                         {"name": "timed-wait", "kubevirt.core.kubevirt_vm_info": {
                             "name": "{{ item }}", "namespace": NS, "wait": True, "wait_timeout": 1800},
                          "loop": names}]
            else:
                tasks = [{"name": "timed", "kubevirt.core.kubevirt_vm": dict(vm, wait=True, wait_timeout=1800),
                          "loop": names, "async": 1800, "poll": 0, "register": "jobs"},
                         {"name": "timed-wait", "ansible.builtin.async_status": {"jid": "{{ item.ansible_job_id }}"},
                          "loop": "{{ jobs.results }}", "register": "done", "until": "done.finished",
                          "retries": 1800, "delay": 1}]
            start, offset = time.time(), run.audit_log_size()
            seconds, peak = playbook(tasks, "provision theirs:" + variant)
            requests = run.audit_requests(start, time.time(), run.USER_AGENTS["theirs"], offset=offset)
            cleanup(names)
            return {"seconds": seconds, "controller_rss_mib": peak, "requests_per_vm": requests / n}
        return go

    # The floor alternates with ours too: the ratio to it is taken round by round, as the reference's is.
    fns = {"ours": ours, "floor": floor}
    if n <= reference_max:
        fns.update({"theirs:loop": theirs("loop"), "theirs:async": theirs("async")})
    return alternate(fns, runs)


def inventory_part(n, runs):
    run.WORK.mkdir(exist_ok=True)
    env = run.env_for(os.devnull, os.devnull)
    files = {}
    for variant, plugin in (("ours", "virtops.kubevirt.kubevirt"), ("theirs", "kubevirt.core.kubevirt")):
        path = run.WORK / ("scale-%s.kubevirt.yml" % variant)
        path.write_text("plugin: %s\nnamespaces: [%s]\n" % (plugin, NS))
        files[variant] = path

    def go(variant):
        def inner():
            seconds, peak, out = timed([str(run.VENV / "ansible-inventory"), "-i", str(files[variant]), "--list"],
                                       env)
            hosts = len(json.loads(out).get("_meta", {}).get("hostvars", {}))
            if hosts != n:
                raise SystemExit("scale: the %s inventory has %d hosts, not %d" % (variant, hosts, n))
            return {"seconds": seconds, "controller_rss_mib": peak}
        return inner
    return alternate({"ours": go("ours"), "theirs": go("theirs")}, runs, warm_up=True)


def monitor_part(n, runs):
    def go():
        with tempfile.TemporaryDirectory(dir=run.WORK) as tmp:
            tasks = [{"name": "timed", "ansible.builtin.include_role": {"name": "virtops.kubevirt.vm_monitor"},
                      "vars": {"vm_monitor_namespace": NS, "vm_monitor_report_dir": tmp,
                               "vm_monitor_report_formats": ["json", "markdown", "html"]}}]
            seconds, peak = playbook(tasks, "monitor")
            report = json.loads((Path(tmp) / "vm-health.json").read_text()) \
                if (Path(tmp) / "vm-health.json").exists() else None
            vms = (report or {}).get("totals", {}).get("vms")
            if vms is not None and vms != n:
                raise SystemExit("scale: the report has %s VMs, not %d" % (vms, n))
        return {"seconds": seconds, "controller_rss_mib": peak}
    return alternate({"ours": go}, runs, warm_up=True)


def vm_info_part(n, runs):
    def go():
        tasks = [{"name": "timed", "virtops.kubevirt.vm_info": {"namespace": NS}, "register": "info"},
                 {"name": "cleanup", "ansible.builtin.assert": {"that": ["info.summaries | length == %d" % n]}}]
        seconds, peak = playbook(tasks, "vm_info")
        return {"seconds": seconds, "controller_rss_mib": peak}
    return alternate({"ours": go}, runs, warm_up=True)


# ----------------------------------------------------------------------------- driver

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default=",".join(PARTS))
    parser.add_argument("--reference-max", type=int, default=100,
                        help="largest N at which kubevirt.core's loop and async fleet run (default 100)")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--merge", action="store_true", help="keep the sizes and parts already in --out")
    parser.add_argument("--no-setup", action="store_true", help="the lab is up, the anchors are there")
    parser.add_argument("--smoke", action="store_true",
                        help="N = 3, one run, no warm-up, the lab as it is (its boot delay and nodes): checks the "
                             "harness, measures nothing worth keeping")
    args = parser.parse_args(argv)
    if args.smoke:
        global WARM_UP
        WARM_UP = False
        args.sizes, args.runs, args.merge = "3", 1, False
        args.out = args.out if args.out != str(OUT) else str(run.WORK / "scale-smoke.json")
    wanted = args.only.split(",")
    unknown = set(wanted) - set(PARTS)
    if unknown:
        parser.error("unknown parts %s; choose from %s" % (", ".join(sorted(unknown)), ", ".join(PARTS)))
    sizes = [int(x) for x in args.sizes.split(",")]
    if args.smoke and not args.no_setup:  # a restart for other options would fail whatever runs beside
        subprocess.run([str(run.LAB_PY), str(run.REPO / "lab" / "labctl"), "up", "--audit"], check=True)
        subprocess.run([str(BENCH / "get-anchors.sh")], check=True)
    elif not args.no_setup:
        # Boot delay 0 (the floor and the fleets measure the API and the tools, not a simulated boot) and
        # nodes enough for the largest N with a fifth to spare (110 pods a node, a kubelet's default; one
        # launcher pod a VM). bench/run.py sets its own boot delay again.
        nodes = max(3, -(-12 * max(sizes) // 1100))
        subprocess.run([str(run.LAB_PY), str(run.REPO / "lab" / "labctl"), "up", "--audit", "--boot-delay", "0",
                        "--nodes", str(nodes)], check=True)
        subprocess.run([str(BENCH / "get-anchors.sh")], check=True)
    client = fleet_floor.k8s.connect({"kubeconfig": str(run.STATE / "kubeconfig")}, environ={})
    fleet_floor.ensure_namespace(client, NS)
    results = {"machine": run.machine(), "runs": args.runs, "sizes": {}}
    if args.merge and Path(args.out).exists():
        results["sizes"] = json.loads(Path(args.out).read_text()).get("sizes", {})
    load_before = os.getloadavg()
    for n in sizes:
        print("scale: N = %d" % n, flush=True)
        entry = results["sizes"].setdefault(str(n), {})
        if "provision" in wanted:
            entry.pop("floor", None)  # an older layout: the floor on its own
            entry["provision"] = provision_part(client, n, args.runs, args.reference_max)
            entry.setdefault("measured", {})["provision"] = time.strftime("%Y-%m-%d")
        readers = [p for p in ("inventory", "monitor", "vm_info") if p in wanted]
        if readers:
            # A namespace that holds exactly N VMs already (bench/fleet_floor.py --keep) is read as it is.
            present = len(client.list(fleet_floor.res.VM, NS).get("items") or [])
            label = None if present == n else "r%d" % n
            if label:
                if present:
                    raise SystemExit("scale: namespace %s holds %d VMs, not 0 or %d" % (NS, present, n))
                fleet_floor.make_fleet(client, NS, n, 16, 1800, label)
            try:
                for part in readers:
                    entry[part] = globals()[part + "_part"](n, args.runs)
                    entry.setdefault("measured", {})[part] = time.strftime("%Y-%m-%d")
            finally:
                if label:
                    fleet_floor.delete_fleet(client, NS, label, 1800)
    results["machine"]["load_average"] = {"start": [round(x, 2) for x in load_before],
                                          "end": [round(x, 2) for x in os.getloadavg()]}
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print("scale: results in %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
