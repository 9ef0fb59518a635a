"""The vm_monitor role keeps the VMs it read out of facts of their own (issue 19: a report over 1000 VMs).

A task's result crosses from Ansible's worker to the controller, which copies and converts it for each
callback: seconds per MiB. The role once set three facts from the read (summaries, resources and the
missing names, the read itself templated three times): about 2 MiB for 1000 VMs, 10 s of a 45 s run.
Now only the selected names (and the report itself, the role's documented output) are facts."""
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
SMALL_FACTS = {"_vm_monitor_namespaces", "_vm_monitor_t0", "_vm_monitor_selected", "vm_monitor_report_files"}
REPORT = "vm_monitor_report"


def tasks(items):
    for task in items or []:
        yield task
        yield from tasks(task.get("block"))


def test_set_fact_tasks_set_only_small_facts_and_the_report():
    main = yaml.safe_load((REPO / "roles" / "vm_monitor" / "tasks" / "main.yml").read_text())
    facts = {}
    for task in tasks(main):
        for name, value in (task.get("ansible.builtin.set_fact") or {}).items():
            facts[name] = value
    assert set(facts) == SMALL_FACTS | {REPORT}
    # The read's summaries and objects reach the report in the same template, never through a fact.
    assert "vm_monitor_read" in facts[REPORT]
    assert "map(attribute='name')" in facts["_vm_monitor_selected"]
