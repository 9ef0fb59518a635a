#!/usr/bin/env python3
"""The fleet floor: N VMs from nothing to Ready on the lab with no Ansible at all.

The same requests the vm module's bulk path sends (plugins/module_utils/workflows/vm.py): one
server-side apply per VM, sent concurrently, and one watch on the namespace's VMIs until every one
is Ready. The watch is opened first (WatchList: the current state, then changes), so nothing is
read twice and no write waits for it. What is left is what the API server, etcd and the lab's
simulator take for N VMs on this machine: the fleet figures of `make bench` are read as ratios
to it.

    bench/fleet_floor.py --vms 100 [--threads 16] [--namespace bench-floor] [--keep] [--timeout 900]

Prints one JSON object: seconds (first request to the last VMI Ready), requests (sent by this
process), requests_per_vm, vms. Without --keep the VMs are deleted afterwards (one DELETE of the
collection by label, not counted). LAB_STATE_DIR names the lab (its kubeconfig).
"""
import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from run import IMAGE, STATE, ours_collection_root  # noqa: E402  (the harness's lab and VM image)

sys.path.insert(0, ours_collection_root())
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import client as k8s  # noqa: E402
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res  # noqa: E402
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.watch import WatchGone  # noqa: E402

LABEL = "bench-floor"


def vm_object(name, namespace, run_label):
    """What the vm module writes for bench/run.py's ours_vm(name): a containerDisk VM, runStrategy Always."""
    labels = {"bench": "vm", LABEL: run_label}
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"runStrategy": "Always", "template": {"metadata": {"labels": labels}, "spec": {
                "domain": {"devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}}]},
                           "memory": {"guest": "256Mi"}},
                "volumes": [{"name": "root", "containerDisk": {"image": IMAGE}}]}}}}


def ready(vmi):
    status = vmi.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


class Watcher(threading.Thread):
    """One watch on the namespace's VMIs (WatchList), resumed from the last resourceVersion if cut."""

    def __init__(self, client, namespace, names, timeout):
        super().__init__(daemon=True)
        self.client, self.namespace, self.timeout = client, namespace, timeout
        self.waiting = set(names)
        self.synced = threading.Event()   # the initial state has been read: writes may start
        self.done = threading.Event()
        self.error = None

    def run(self):
        deadline = time.monotonic() + self.timeout
        rv, initial = None, True
        try:
            while self.waiting and time.monotonic() < deadline:
                try:
                    events = self.client.watch(res.VMI, self.namespace, resource_version=rv,
                                               timeout=deadline - time.monotonic(), send_initial_events=initial)
                    for etype, obj in events:
                        meta = obj.get("metadata") or {}
                        rv = meta.get("resourceVersion") or rv
                        if etype == "BOOKMARK":
                            if (meta.get("annotations") or {}).get("k8s.io/initial-events-end") == "true":
                                self.synced.set()
                            continue
                        if etype in ("ADDED", "MODIFIED") and ready(obj):
                            self.waiting.discard(meta.get("name"))
                            if not self.waiting:
                                break
                    initial = False
                except WatchGone:
                    rv, initial = None, True
        except Exception as exc:  # reported by main(); the thread must not die silently
            self.error = exc
        finally:
            self.synced.set()
            self.done.set()


def make_fleet(client, namespace, n, threads, timeout, run_label):
    names = ["floor-%s-%04d" % (run_label, k) for k in range(n)]
    start_requests = client.requests
    start = time.monotonic()
    watcher = Watcher(client, namespace, names, timeout)
    watcher.start()
    watcher.synced.wait(timeout)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in pool.map(lambda name: client.apply(res.VM, vm_object(name, namespace, run_label)), names):
            pass
    written = time.monotonic()
    watcher.done.wait(timeout)
    seconds = time.monotonic() - start
    if watcher.error:
        raise SystemExit("fleet_floor: the watch failed: %s" % watcher.error)
    if watcher.waiting:
        raise SystemExit("fleet_floor: %d of %d VMs not Ready after %ds" % (len(watcher.waiting), n, timeout))
    requests = client.requests - start_requests
    return {"vms": n, "seconds": round(seconds, 3), "writes_seconds": round(written - start, 3),
            "requests": requests, "requests_per_vm": round(requests / n, 3), "threads": threads}


def delete_fleet(client, namespace, run_label, timeout):
    """Delete the run's VMs (one DELETE of the collection) and wait until their VMIs are gone."""
    selector = "%s=%s" % (LABEL, run_label)
    client.request("DELETE", res.VM.path(namespace), {"labelSelector": selector, "propagationPolicy": "Foreground"})
    deadline = time.monotonic() + timeout
    query = {"labelSelector": selector, "limit": 1}  # one page: is anything left (client.list reads all pages)
    while time.monotonic() < deadline:
        left = client.request("GET", res.VMI.path(namespace), query).get("items")
        left = left or client.request("GET", res.VM.path(namespace), query).get("items")
        if not left:
            return
        time.sleep(0.5)
    raise SystemExit("fleet_floor: the VMs labelled %s are not gone after %ds" % (selector, timeout))


def ensure_namespace(client, namespace):
    """Server-side apply: creates it, or changes nothing."""
    client.apply(res.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=100)
    parser.add_argument("--threads", type=int, default=16,
                        help="writes in flight at once (default 16; the client pools 32 connections)")
    parser.add_argument("--namespace", default="bench-floor")
    parser.add_argument("--label", default=None, help="the run's label value and name part (default: a timestamp)")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--keep", action="store_true", help="leave the VMs running (e.g. to measure readers on them)")
    args = parser.parse_args(argv)
    client = k8s.connect({"kubeconfig": str(STATE / "kubeconfig")}, environ={})
    ensure_namespace(client, args.namespace)
    label = args.label or time.strftime("%H%M%S")
    result = make_fleet(client, args.namespace, args.vms, args.threads, args.timeout, label)
    result.update(namespace=args.namespace, label=label, kept=args.keep, load_average=[
        round(x, 2) for x in os.getloadavg()])
    if not args.keep:
        delete_fleet(client, args.namespace, label, args.timeout)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
