"""Every role has a README.md (Galaxy's importer requires one) that lists each variable of its argument
spec with the spec's default, and points to docs/roles.md."""
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists())


def test_there_are_roles():
    assert ROLES == ["vm_backup", "vm_decommission", "vm_monitor", "vm_provision"]


@pytest.mark.parametrize("role", ROLES)
def test_readme_lists_the_argument_spec(role):
    readme = (REPO / "roles" / role / "README.md").read_text()
    spec = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    rows = dict(re.findall(r"^\| `(%s_[a-z_]+)` \| ([^|]*) \|" % role, readme, re.M))
    assert set(rows) == set(options), "README variables differ from meta/argument_specs.yml"
    for name, option in options.items():
        assert rows[name].startswith(option.get("type", "str")), name
        default = option.get("default")
        if isinstance(default, (str, int)) and not isinstance(default, bool) and default != "":
            line = next(line for line in readme.splitlines() if line.startswith("| `%s` |" % name))
            assert "`%s`" % default in line, "%s: default %r not in the README" % (name, default)
    assert "# virtops.kubevirt.%s" % role in readme
    assert "(../../docs/roles.md#%s)" % role in readme
    for heading in ("## Requirements", "## Role variables", "## Example playbook", "## License", "## Author"):
        assert heading in readme
    assert "role: virtops.kubevirt.%s" % role in readme


def test_docs_link_the_readmes():
    roles_md = (REPO / "docs" / "roles.md").read_text()
    for role in ROLES:
        assert "../roles/%s/README.md" % role in roles_md
