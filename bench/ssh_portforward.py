#!/usr/bin/env python3
"""SSH through KubeVirt's port-forward against direct SSH, to the same real guest, in one run.

    LAB_STATE_DIR=... .venv/bin/python bench/ssh_portforward.py [--runs 5] [--mib 50] [--json bench/ssh-portforward.json]

On a running lab (LAB_STATE_DIR, default lab/.state; `make bench` uses its bench lab), one VM with a
real guest (lab/guest under QEMU, the annotation lab.virtops.io/guest: real) is created in the
namespace bench-sshpf. Each run then measures, alternately for the two paths:

- **port-forward**: ssh's ProxyCommand is the collection's plugins/plugin_utils/ssh_proxy.py, the
  way the inventory's `access: portforward` connects: API server -> virt-api -> the guest's port 22;
- **direct**: ssh to the loopback port QEMU forwards to the guest's port 22 (hostfwd; the port is
  read from the guest's QEMU command line), i.e. the same guest with no Kubernetes in the way;

the connection set-up (`ssh -o BatchMode=yes ... true`, a new connection each time, no
ControlMaster), and a copy of --mib MiB each way (`cat > /dev/null` fed with a random file, and
`dd if=/dev/zero` read back), as wall time and as MiB/s with that path's median set-up taken out.
Medians over the runs and the ratios port-forward / direct are printed (and written with --json).
ssh's known hosts go to a temporary folder: nothing is written into ~. The machine is shared and
noisy (2 CPUs, the guest's CPU is emulated): read the ratios. Not part of `make test`.
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

from run import ours_collection_root  # noqa: E402  (bench/run.py, beside this file)

REPO = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("LAB_STATE_DIR", REPO / "lab" / ".state"))
NS = "bench-sshpf"
VM = "sshpf"
USER = "bench"
BOOT_TIMEOUT = 300


def kube():
    from kubernetes import client, config
    config.load_kube_config(str(STATE / "kubeconfig"))
    return client.ApiClient()


def create_vm(api, pub):
    from kubernetes import client
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    try:
        custom.delete_namespaced_custom_object("kubevirt.io", "v1", NS, "virtualmachines", VM)
        wait(lambda: not vmi_of(custom), 120, "the previous run's VMI gone")
    except client.ApiException as exc:
        if exc.status != 404:
            raise
    user_data = "#cloud-config\nuser: %s\nssh_authorized_keys:\n  - %s\n" % (USER, pub)
    custom.create_namespaced_custom_object("kubevirt.io", "v1", NS, "virtualmachines", {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": VM}, "spec": {
            "runStrategy": "Always", "template": {
                "metadata": {"annotations": {"lab.virtops.io/guest": "real"}},
                "spec": {"domain": {"memory": {"guest": "256Mi"}, "devices": {"disks": [
                    {"name": "cloudinit", "disk": {"bus": "virtio"}}]}},
                         "terminationGracePeriodSeconds": 0,
                         "volumes": [{"name": "cloudinit", "cloudInitNoCloud": {"userData": user_data}}]}}}})
    return custom


def vmi_of(custom):
    from kubernetes import client
    try:
        return custom.get_namespaced_custom_object("kubevirt.io", "v1", NS, "virtualmachineinstances", VM)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def wait(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1)
    sys.exit(f"ssh_portforward: timed out after {timeout} s waiting for {what}")


def agent_connected(custom):
    vmi = vmi_of(custom) or {}
    return vmi if any(c.get("type") == "AgentConnected" and c.get("status") == "True"
                      for c in vmi.get("status", {}).get("conditions", [])) else None


def direct_port(uid):
    """The loopback port QEMU forwards to the guest's port 22 (its -netdev hostfwd), from the real
    guest's folder (lab/simulator/realguest.py: <state>/guests/<uid prefix>/qemu.pid)."""
    pid = int((STATE / "guests" / uid[:13] / "qemu.pid").read_text().split()[0])
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    netdev = next(a.decode() for a in argv if b"hostfwd=tcp:127.0.0.1:" in a)
    return int(netdev.split("hostfwd=tcp:127.0.0.1:", 1)[1].split("-", 1)[0])


class Paths:
    """The two ways to the guest's sshd as ssh argument lists."""

    def __init__(self, key, known_hosts, port):
        common = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", str(key),
                  "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={known_hosts}",
                  "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "LogLevel=ERROR"]
        # ssh_proxy.py runs from an ansible_collections tree, as installed (bench/run.py's link to this checkout)
        script = Path(ours_collection_root()) / "ansible_collections/virtops/kubevirt/plugins/plugin_utils/ssh_proxy.py"
        proxy = f"{sys.executable} {script} --kubeconfig {STATE / 'kubeconfig'} vm/{VM}/{NS} %p"
        self.argv = {
            "portforward": common + ["-o", f"ProxyCommand={proxy}", f"{USER}@vm.{VM}.{NS}"],
            "direct": common + ["-p", str(port), f"{USER}@127.0.0.1"],
        }

    def run(self, path, command, stdin=None):
        """Seconds one ssh took; exits with its stderr when it fails."""
        started = time.perf_counter()
        done = subprocess.run(self.argv[path] + [command], stdin=stdin, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=600, check=False)
        took = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"ssh_portforward: {path} ssh {command!r} failed: {done.stderr.decode().strip()}")
        return took


def median(values):
    return round(statistics.median(values), 3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mib", type=int, default=50, help="size of the copy each way")
    parser.add_argument("--json", type=Path, help="also write the samples and medians here")
    parser.add_argument("--keep", action="store_true", help="leave the VM running at the end")
    args = parser.parse_args(argv)
    if not (STATE / "kubeconfig").exists():
        sys.exit(f"ssh_portforward: no lab at {STATE} (start one: lab/labctl up)")
    with tempfile.TemporaryDirectory(prefix="sshpf-bench-") as tmp:
        tmp = Path(tmp)
        key = tmp / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        payload = tmp / "payload"
        payload.write_bytes(os.urandom(args.mib * 2 ** 20))
        api = kube()
        custom = create_vm(api, key.with_suffix(".pub").read_text().strip())
        started = time.monotonic()
        vmi = wait(lambda: agent_connected(custom), BOOT_TIMEOUT, "the real guest's agent")
        paths = Paths(key, tmp / "known_hosts", direct_port(vmi["metadata"]["uid"]))
        wait(lambda: subprocess.run(paths.argv["direct"] + ["true"], capture_output=True, timeout=60,
                                    check=False).returncode == 0, 120, "the guest's sshd")
        print(f"guest up in {time.monotonic() - started:.0f} s; warming up both paths", flush=True)
        for path in paths.argv:
            paths.run(path, "true")
        samples = {path: {"setup_s": [], "upload_s": [], "download_s": []} for path in paths.argv}
        loads = [os.getloadavg()[0]]
        for run in range(args.runs):
            for path in ("direct", "portforward") if run % 2 == 0 else ("portforward", "direct"):
                sample = samples[path]
                sample["setup_s"].append(paths.run(path, "true"))
                with open(payload, "rb") as data:
                    sample["upload_s"].append(paths.run(path, "cat > /dev/null", stdin=data))
                sample["download_s"].append(paths.run(path, f"dd if=/dev/zero bs=1048576 count={args.mib} "
                                                            "2>/dev/null"))
            print(f"run {run + 1}: " + "; ".join(
                f"{p} set-up {s['setup_s'][-1]:.2f} s, up {s['upload_s'][-1]:.2f} s, down {s['download_s'][-1]:.2f} s"
                for p, s in samples.items()), flush=True)
        loads.append(os.getloadavg()[0])
        if not args.keep:
            custom.delete_namespaced_custom_object("kubevirt.io", "v1", NS, "virtualmachines", VM)
    medians = {}
    for path, sample in samples.items():
        setup = statistics.median(sample["setup_s"])
        medians[path] = {k: median(v) for k, v in sample.items()}
        for way in ("upload", "download"):
            net = [t - setup for t in sample[f"{way}_s"]]
            medians[path][f"{way}_mib_s"] = round(args.mib / statistics.median(net), 1) if min(net) > 0 else None
    ratios = {k: round(medians["portforward"][k] / medians["direct"][k], 2)
              for k in medians["direct"] if medians["direct"][k] and medians["portforward"][k]}
    result = {"runs": args.runs, "mib": args.mib, "cpus": os.cpu_count(), "load_avg_1m": [round(x, 2) for x in loads],
              "medians": medians, "ratio_portforward_over_direct": ratios, "samples": samples}
    for path in ("direct", "portforward"):
        m = medians[path]
        print(f"{path:12} set-up {m['setup_s']:.2f} s; {args.mib} MiB up {m['upload_s']:.2f} s "
              f"({m['upload_mib_s']} MiB/s), down {m['download_s']:.2f} s ({m['download_mib_s']} MiB/s)")
    print("port-forward / direct: " + ", ".join(f"{k} {v}" for k, v in ratios.items()))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
