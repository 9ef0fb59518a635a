"""meta/runtime.yml: every module is in the `kubevirt` action group, so module_defaults sets auth once."""
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_every_module_is_in_the_action_group():
    """Every module with connection settings; not one without (module_defaults would give it unknown options)."""
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    modules = {p.stem for p in (REPO / "plugins" / "modules").glob("*.py")
               if p.stem != "__init__" and "virtops.kubevirt.auth" in p.read_text()}
    assert "vm_monitor_report" not in modules
    assert set(runtime["action_groups"]["kubevirt"]) == modules


def supported_range_from_matrix():
    """The oldest and newest ansible-core release of the compatibility matrix (tests/compat/matrix)."""
    lines = (REPO / "tests" / "compat" / "matrix").read_text().splitlines()
    releases = sorted(tuple(int(n) for n in line.split()[0].split(".")) for line in lines
                      if line.strip() and not line.startswith("#"))
    return releases[0], releases[-1]


def test_requires_ansible_is_the_tested_range():
    (major, oldest), (_major, newest) = supported_range_from_matrix()
    assert yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())["requires_ansible"] == \
        ">=%d.%d.0,<%d.%d.0" % (major, oldest, major, newest + 1)


def test_the_execution_environment_installs_a_tested_release():
    (major, oldest), (_major, newest) = supported_range_from_matrix()
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert ee["dependencies"]["ansible_core"]["package_pip"] == \
        "ansible-core>=%d.%d,<%d.%d" % (major, oldest, major, newest + 1)
