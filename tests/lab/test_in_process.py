"""Where the modules run, on the lab: in Ansible's worker for local tasks (no AnsiballZ, no second
Python), in an ordinary module process otherwise - and the same results either way.

The module process is used for another connection (a test connection plugin, `testlocal`, that is
the local one under another name), become (su, as root), async and `virtops_kubevirt_in_process:
false`; `-vvv` says which path each task took and why.
"""
import json
import re
import time

import pytest

from ansible_run import ansible_env, run_playbook

TESTLOCAL = '''
from ansible.plugins.connection.local import Connection as LocalConnection

DOCUMENTATION = """
name: testlocal
short_description: the local connection under another name (tests only)
description: [Runs tasks on the controller, like ansible.builtin.local.]
extends_documentation_fragment: [connection_pipelining]
author: virtops.kubevirt tests
"""


class Connection(LocalConnection):
    transport = "testlocal"
'''


def _tasks_by_name(stdout):
    """{task name: its -vvv output}."""
    parts = re.split(r"^TASK \[(.+?)\] \*+$", stdout, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_where_each_task_runs(tmp_path, kubeconfig, namespace):
    (tmp_path / "connection_plugins").mkdir()
    (tmp_path / "connection_plugins" / "testlocal.py").write_text(TESTLOCAL)
    info = {"virtops.kubevirt.vm_info": {"namespace": namespace}}
    tasks = [
        dict(name="in the worker", **info),
        dict(name="switched off", vars={"virtops_kubevirt_in_process": False}, **info),
        dict(name="become", become=True, become_method="ansible.builtin.su", **info),
        dict(name="async", **{"async": 60, "poll": 1}, **info),
        dict(name="another connection", connection="testlocal", **info),
    ]
    proc = run_playbook(tmp_path, [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                        env=ansible_env(kubeconfig), args=["-vvv"])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    out = _tasks_by_name(proc.stdout)
    assert "ok: [localhost]" in out["in the worker"]
    assert "running as a module process" not in out["in the worker"]
    assert "Using module file" not in out["in the worker"]  # no AnsiballZ built
    expected = {"switched off": "virtops_kubevirt_in_process is false", "become": "become", "async": "async",
                "another connection": "connection testlocal"}
    for task, reason in expected.items():
        assert "virtops.kubevirt.vm_info: running as a module process (%s)" % reason in out[task], task
        assert "Using module file" in out[task], task
        assert "failed=0" in proc.stdout


SAVE = "{{ results | to_nice_json }}"


def _lifecycle(namespace, prefix, out):
    """A VM's life through the modules, every result registered and saved."""
    vm = {"name": "%s-vm" % prefix, "namespace": namespace, "memory": "256Mi",
          "disks": [{"name": "root", "image": "quay.io/containerdisks/fedora:41"}],
          "cloud_init": {"user": "fedora", "password": "Pw-%s-hidden" % prefix}}
    steps = [
        ("check", {"virtops.kubevirt.vm": dict(vm), "check_mode": True, "diff": True}),
        ("create", {"virtops.kubevirt.vm": dict(vm, wait=True), "diff": True}),
        ("again", {"virtops.kubevirt.vm": dict(vm, wait=True)}),
        ("info", {"virtops.kubevirt.vm_info": {"name": vm["name"], "namespace": namespace}}),
        ("bad", {"virtops.kubevirt.vm": dict(vm, memory="lots"), "ignore_errors": True}),
        ("unknown", {"virtops.kubevirt.vm_power": {"name": vm["name"], "namespace": namespace, "state": "asleep"},
                     "ignore_errors": True}),
        ("stop", {"virtops.kubevirt.vm_power": {"name": vm["name"], "namespace": namespace, "state": "stopped",
                                                 "wait": True}}),
        ("delete", {"virtops.kubevirt.vm": {"name": vm["name"], "namespace": namespace, "state": "absent",
                                            "wait": True}}),
    ]
    tasks = []
    for name, task in steps:
        tasks.append(dict(task, name=name, register="r_" + name))
        tasks.append({"name": "keep " + name, "ansible.builtin.set_fact": {
            "results": "{{ results | default({}) | combine({'%s': r_%s}) }}" % (name, name)}})
    tasks.append({"name": "save", "ansible.builtin.copy": {"content": SAVE, "dest": str(out)}})
    return tasks


def _shape(result, prefix):
    """What must be the same on both paths: outcome, message, keys, and the diff with names replaced."""
    text = json.dumps(result, sort_keys=True).replace(prefix, "P")
    diff = json.loads(text).get("diff")
    return {"changed": result.get("changed"), "failed": result.get("failed", False),
            "msg": (result.get("msg") or "").replace(prefix, "P"), "keys": sorted(result),
            "diff": diff and {k: v for k, v in diff.items() if k in ("before", "after")}}


def _scrub(obj):
    """Drop the values that differ between any two VMs (uids, times, versions, addresses)."""
    if isinstance(obj, dict):
        return {k: _scrub(v) for k, v in obj.items()
                if k not in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")}
    if isinstance(obj, list):
        return [_scrub(v) for v in obj]
    return obj


@pytest.fixture(scope="module")
def both_ways(tmp_path_factory, kubeconfig, core):
    import uuid
    from kubernetes import client

    ns = "t-inproc-%s" % uuid.uuid4().hex[:8]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    try:
        runs = {}
        for mode, prefix in (("worker", "w%s" % ns[-4:]), ("module", "m%s" % ns[-4:])):
            work = tmp_path_factory.mktemp(mode)
            out = work / "results.json"
            play = [{"hosts": "localhost", "gather_facts": False,
                     "vars": {"virtops_kubevirt_in_process": mode == "worker"},
                     "tasks": _lifecycle(ns, prefix, out)}]
            proc = run_playbook(work, play, env=ansible_env(kubeconfig), args=["--diff"])
            assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
            runs[mode] = {"prefix": prefix, "proc": proc, "results": json.loads(out.read_text())}
        yield runs
    finally:
        core.delete_namespace(ns)


@pytest.mark.parametrize("step", ["check", "create", "again", "info", "bad", "unknown", "stop", "delete"])
def test_same_result_in_the_worker_and_in_a_module_process(both_ways, step):
    worker, module = both_ways["worker"], both_ways["module"]
    a = _shape(worker["results"][step], worker["prefix"])
    b = _shape(module["results"][step], module["prefix"])
    assert _scrub(a) == _scrub(b)


def test_the_lifecycle_did_what_it_should(both_ways):
    for run in both_ways.values():
        r = run["results"]
        assert r["check"]["changed"] and r["create"]["changed"] and not r["again"]["changed"]
        assert r["create"]["ready"] is True and r["info"]["summaries"][0]["status"] == "Running"
        assert r["bad"]["failed"] and "memory" in r["bad"]["msg"]
        assert r["unknown"]["failed"] and "asleep" in r["unknown"]["msg"]
        assert r["stop"]["changed"] and r["delete"]["changed"]
        secret = "Pw-%s-hidden" % run["prefix"]
        assert secret not in run["proc"].stdout and secret not in json.dumps(r)


def test_task_environment_and_module_defaults_reach_the_worker(tmp_path, kubeconfig, namespace):
    """KUBECONFIG points nowhere; the task's `environment:` and the play's module_defaults give the real one."""
    tasks = [
        {"name": "environment", "virtops.kubevirt.vm_info": {"namespace": namespace},
         "environment": {"K8S_AUTH_KUBECONFIG": str(kubeconfig)}},
        {"name": "module defaults", "virtops.kubevirt.vm_info": {"namespace": namespace},
         "module_defaults": {"group/virtops.kubevirt.kubevirt": {"kubeconfig": str(kubeconfig)}}},
        {"name": "neither", "virtops.kubevirt.vm_info": {"namespace": namespace}, "register": "neither",
         "ignore_errors": True},
        {"ansible.builtin.assert": {"that": ["neither is failed", "'nowhere' in neither.msg"]}},
    ]
    proc = run_playbook(tmp_path, [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                        env=ansible_env(tmp_path / "nowhere"))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "ok=4" in proc.stdout and "ignored=1" in proc.stdout


def test_task_timeout_keyword_stops_a_module_in_the_worker(tmp_path, kubeconfig, namespace):
    """`timeout:` interrupts a wait running in the worker just as it kills a module process."""
    wait = {"virtops.kubevirt.vm_info": {"name": "never-created", "namespace": namespace, "wait": True,
                                         "wait_timeout": 120}, "timeout": 3, "ignore_errors": True}
    tasks = [dict(wait, name="in the worker", register="worker"),
             dict(wait, name="as a module process", register="module",
                  vars={"virtops_kubevirt_in_process": False}),
             {"ansible.builtin.assert": {"that": [
                 "worker is failed", "module is failed", "worker.timedout.period == 3", "module.timedout.period == 3"]}}]
    started = time.monotonic()
    proc = run_playbook(tmp_path, [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                        env=ansible_env(kubeconfig), args=["-v"])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert time.monotonic() - started < 60  # not the 120 s wait_timeout
    assert proc.stdout.count('"msg": "Task failed: Timed out after 3 second(s)."') == 2, proc.stdout[-3000:]


@pytest.mark.parametrize("in_process", [True, False], ids=["worker", "module-process"])
def test_long_waits_show_progress_while_they_run(tmp_path, kubeconfig, namespace, in_process):
    """A wait says every 10 s what it waits on: read from the wait in the worker, or from the file a module
    process publishes it to (module_utils/kubevirt/progress.py)."""
    tasks = [{"name": "wait", "vars": {"virtops_kubevirt_in_process": in_process}, "virtops.kubevirt.vm_info": {
        "name": "late-vm", "namespace": namespace, "wait": True, "wait_timeout": 13}, "ignore_errors": True,
        "register": "waited"},
        {"ansible.builtin.assert": {"that": ["waited is failed",  # 13 s asked; a loaded machine says a bit more
                                             "waited.msg is search('Timed out after 1[3-5]s')"]}}]
    proc = run_playbook(tmp_path, [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                        env=ansible_env(kubeconfig))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    line = "[localhost] virtops.kubevirt.vm_info: waiting for VirtualMachine %s/late-vm" % namespace
    progress = [x for x in proc.stdout.splitlines() if x.startswith(line)]
    # One line every 10 s of the task: one in a task of 13-19 s; a second when a loaded machine starts the
    # module process so late that the task outlasts 20 s (seen in CI: 4 s and 13 s of the wait).
    assert 1 <= len(progress) <= 2, proc.stdout[-3000:]
    assert all(re.search(r": \d+s of 13s, last seen: late-vm does not exist$", x) for x in progress), progress
    # 10 s after the task started; a module process starts its wait a few seconds later (its own Python)
    elapsed = "(9|10|11)" if in_process else "[1-9]|10|11"
    assert re.search(r": (%s)s of 13s, last seen: late-vm does not exist$" % elapsed, progress[0]), progress[0]


def test_loop_items_each_count_their_own_requests(tmp_path, kubeconfig, namespace):
    """A loop runs in one worker, which keeps one client (and its connections) for every item."""
    tasks = [{"name": "loop", "virtops.kubevirt.vm_info": {"name": "{{ item }}", "namespace": namespace},
              "loop": ["a", "b", "c"], "register": "looped"},
             {"ansible.builtin.assert": {"that": ["looped.results | map(attribute='api_requests') | list == [4, 4, 4]"]}}]
    proc = run_playbook(tmp_path, [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                        env=ansible_env(kubeconfig))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
