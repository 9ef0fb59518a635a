"""Where a `vm_info` task's time goes: each layer of a module process timed on its own.

Every step is a fresh Python process that goes one layer further than the step before (start the
interpreter; import ansible.module_utils.basic; import our module with its module_utils and
urllib3; run main() against the lab), run `runs` times; the difference of medians is that layer's
cost. What a module-process task costs beyond their sum is Ansible's own per-task work (forking
the worker, building and writing the AnsiballZ zip, reading the result). cProfile of main() names
the functions its own time goes to. kubevirt.core's extra import (the kubernetes client) is timed
the same way for comparison.
"""
import statistics
import subprocess
import time

RUN_MAIN = r"""
import contextlib, io, json, sys
from ansible.module_utils import basic
from ansible_collections.virtops.kubevirt.plugins.modules import vm_info
basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": {"name": "info-vm", "namespace": sys.argv[1],
                                  "_ansible_no_log": False}}).encode()
basic._ANSIBLE_PROFILE = "legacy"
out = io.StringIO()
profile = len(sys.argv) > 2
if profile:
    import cProfile, pstats
    prof = cProfile.Profile()
    prof.enable()
with contextlib.redirect_stdout(out):
    try:
        vm_info.main()
    except SystemExit:
        pass
if profile:
    prof.disable()
    stats = pstats.Stats(prof)
    rows = []
    for (path, line, func), (cc, nc, tt, ct, callers) in stats.stats.items():
        if not path.startswith(("<", "~")):  # the import machinery and builtins say nothing here
            rows.append((ct, "%s:%s" % (path.rsplit("/", 1)[-1], func)))
    print(json.dumps(sorted(rows, reverse=True)[:8]))
result = json.loads(out.getvalue())
assert result.get("api_requests") == 4, result
"""

STEPS = [
    ("Python interpreter start", "pass"),
    ("import ansible.module_utils.basic", "import ansible.module_utils.basic"),
    ("import our vm_info module, its module_utils and urllib3",
     "import ansible.module_utils.basic, urllib3\n"
     "from ansible_collections.virtops.kubevirt.plugins.modules import vm_info\n"
     "from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import client, parallel\n"
     "from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows import vm_info as flow"),
]


def _median_run(python, argv, env, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([python] + argv, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def profile(python, env, namespace, runs=7):
    """{'layers': [{'layer', 'seconds'}], 'kubernetes_import': s, 'main_top': [[seconds, function]]}."""
    medians = [_median_run(python, ["-c", code], env, runs) for _, code in STEPS]
    medians.append(_median_run(python, ["-c", RUN_MAIN, namespace], env, runs))
    names = [name for name, _ in STEPS] + ["main(): four API reads at once and the summary"]
    layers = [{"layer": names[0], "seconds": medians[0]}]
    for i in range(1, len(medians)):
        layers.append({"layer": names[i], "seconds": max(0.0, medians[i] - medians[i - 1])})
    kube = _median_run(python, ["-c", "import ansible.module_utils.basic, kubernetes.dynamic"], env, runs)
    top = subprocess.run([python, "-c", RUN_MAIN, namespace, "profile"], env=env, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    import json
    return {"layers": layers, "module_process_total": medians[-1],
            "kubernetes_import": max(0.0, kube - medians[1]), "main_top": json.loads(top)}
