"""The vm_monitor role changes nothing it looks at: every task either runs a module that only reads or
decides (assert, set_fact, debug, set_stats, fail, vm_info, vmi_info), or says changed_when: false - so
the first run, which creates the report directory, reports changed=0 as documented (issue 14: the
directory task lacked it). tests/lab/test_monitor.py checks the same on a real run."""
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
READ_ONLY = {"ansible.builtin.assert", "ansible.builtin.set_fact", "ansible.builtin.debug", "ansible.builtin.set_stats",
             "ansible.builtin.fail", "virtops.kubevirt.vm_info", "virtops.kubevirt.vmi_info"}
KEYWORDS = {"name", "when", "vars", "loop", "loop_control", "register", "no_log", "changed_when", "failed_when",
            "module_defaults", "block", "tags"}


def tasks(items):
    for task in items or []:
        yield task
        yield from tasks(task.get("block"))


def test_every_task_reads_or_says_it_changes_nothing():
    main = yaml.safe_load((REPO / "roles" / "vm_monitor" / "tasks" / "main.yml").read_text())
    seen = []
    for task in tasks(main):
        if "block" in task:
            continue
        modules = [k for k in task if k not in KEYWORDS]
        assert len(modules) == 1, task
        seen.append(modules[0])
        if modules[0] not in READ_ONLY:
            assert task.get("changed_when") is False, "%s (%s) may report a change" % (task["name"], modules[0])
    assert {"virtops.kubevirt.vm_monitor_report", "ansible.builtin.uri"} <= set(seen)


def test_the_playbook_only_runs_the_role():
    plays = yaml.safe_load((REPO / "playbooks" / "monitor.yml").read_text())
    assert [sorted(k for k in play if k in ("tasks", "pre_tasks", "post_tasks", "handlers")) for play in plays] == [[]]
    assert [r["role"] for r in plays[0]["roles"]] == ["virtops.kubevirt.vm_monitor"]
