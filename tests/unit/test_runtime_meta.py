"""meta/runtime.yml: every module is in the `kubevirt` action group, so module_defaults sets auth once."""
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_every_module_is_in_the_action_group():
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    modules = {p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__"}
    assert set(runtime["action_groups"]["kubevirt"]) == modules


def test_requires_ansible():
    assert yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())["requires_ansible"] == ">=2.16.0"
