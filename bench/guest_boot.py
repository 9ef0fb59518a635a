#!/usr/bin/env python3
"""Boot figures of the lab's real guest (lab/guest/qemu.py), medians of several runs.

    .venv/bin/python bench/guest_boot.py [--runs 5] [--parallel 1] [--idle 10] [--json out.json]

Each run starts QEMU with a NoCloud cidata disk (hostname, password, an SSH key: what a VMI's
cloudInitNoCloud volume gives) and measures, from QEMU's start: the serial console's login prompt,
the SSH banner on the forwarded port, the agent's first answer; then, once booted, QEMU's RSS and its
CPU use while the guest idles. --parallel N boots N guests at once per run (the issue's "8 at once").
The machine's load average is printed beside the figures: other work on the 2 cores changes them.
Not part of `make test`.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))
from guest import qemu  # noqa: E402

USER_DATA = """#cloud-config
hostname: bench-vm
password: bench-password
chpasswd: { expire: False }
ssh_authorized_keys:
  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJvjWNdTE0Kq6tfVT8m5EjcgMO3fUhx1kXO2OYCEuvQ5 bench@lab
"""


def boot(index, idle, accel):
    with tempfile.TemporaryDirectory(prefix="guestbench-") as folder:
        guest = qemu.Guest(folder, user_data=USER_DATA, meta_data=f"instance-id: bench-{index}\n",
                           name=f"bench-{index}", accel=accel)
        guest.start()
        try:
            sample = {"login_prompt_s": guest.wait_for_login_prompt(120), "ssh_banner_s": guest.wait_for_ssh(120),
                      "agent_s": guest.wait_for_agent(120), "accel": guest.accel}
            # CPU time QEMU used to boot: unlike the wall-clock figures, other work on the machine
            # barely changes it.
            sample["boot_cpu_s"] = guest.cpu_seconds()
            time.sleep(3)  # let the boot's last work (runcmd, key making) finish
            cpu0, t0 = guest.cpu_seconds(), time.monotonic()
            time.sleep(idle)
            sample["idle_cpu_pct"] = 100 * (guest.cpu_seconds() - cpu0) / (time.monotonic() - t0)
            sample["rss_mib"] = guest.rss_bytes() / 2 ** 20
            return sample
        finally:
            guest.kill()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measurement")
    parser.add_argument("--accel", default="tcg", choices=["tcg", "kvm", "auto"])
    parser.add_argument("--json", type=Path, help="also write the samples and medians here")
    args = parser.parse_args(argv)
    try:
        build = qemu.manifest()
    except qemu.GuestError as exc:
        sys.exit(f"guest_boot: {exc}")
    samples, loads = [], []
    for run in range(args.runs):
        loads.append(os.getloadavg()[0])
        with ThreadPoolExecutor(args.parallel) as pool:
            batch = list(pool.map(lambda i: boot(run * args.parallel + i, args.idle, args.accel), range(args.parallel)))
        samples += batch
        print(f"run {run + 1}: " + "; ".join(
            f"login {s['login_prompt_s']:.2f} s, ssh {s['ssh_banner_s']:.2f} s, agent {s['agent_s']:.2f} s, "
            f"boot CPU {s['boot_cpu_s']:.2f} s, "
            f"rss {s['rss_mib']:.0f} MiB, idle cpu {s['idle_cpu_pct']:.1f} %" for s in batch), flush=True)
    keys = ["login_prompt_s", "ssh_banner_s", "agent_s", "boot_cpu_s", "rss_mib", "idle_cpu_pct"]
    medians = {k: round(statistics.median(s[k] for s in samples), 2) for k in keys}
    result = {"guest": build["key"], "kernel": build["kernel_release"], "accel": samples[0]["accel"],
              "runs": args.runs, "parallel": args.parallel, "load_avg_1m": [round(x, 2) for x in loads],
              "cpus": os.cpu_count(), "medians": medians, "samples": samples}
    print(f"medians over {len(samples)} boots ({args.parallel} at once, {result['accel']}, load average "
          f"{statistics.median(loads):.1f} on {os.cpu_count()} CPUs): QEMU start -> login prompt "
          f"{medians['login_prompt_s']} s, -> SSH banner {medians['ssh_banner_s']} s, -> agent {medians['agent_s']} s "
          f"(QEMU CPU {medians['boot_cpu_s']} s); "
          f"RSS {medians['rss_mib']} MiB; idle CPU {medians['idle_cpu_pct']} %")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
