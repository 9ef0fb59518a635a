"""Every filter the collection exports has its documentation (plugins/filter/<name>.yml), as ansible-doc
reads it, and the documented options are the filter's arguments."""
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.virtops.kubevirt.plugins.filter import backup, charts, health, monitor, provision

REPO = Path(__file__).resolve().parents[4]
FILTER_DIR = REPO / "plugins" / "filter"
MODULES = (backup, charts, health, monitor, provision)
FILTERS = {name: func for module in MODULES for name, func in module.FilterModule().filters().items()}


def test_filter_names_are_unique_across_files():
    names = [name for module in MODULES for name in module.FilterModule().filters()]
    assert len(names) == len(set(names))


def test_every_doc_file_is_a_filter():
    docs = {p.stem for p in FILTER_DIR.glob("*.yml")}
    assert docs == set(FILTERS), "doc files without a filter: %s; filters without a doc file: %s" % (
        sorted(docs - set(FILTERS)), sorted(set(FILTERS) - docs))


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_doc_file_matches_the_function(name):
    doc = yaml.safe_load((FILTER_DIR / ("%s.yml" % name)).read_text())
    assert set(doc) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    documentation = doc["DOCUMENTATION"]
    assert documentation["name"] == name
    assert documentation["short_description"] and documentation["description"]
    assert "virtops.kubevirt.%s" % name in doc["EXAMPLES"]
    yaml.safe_load(doc["EXAMPLES"])  # the examples are YAML (a list of tasks)
    assert "_value" in doc["RETURN"]
    options = documentation["options"]
    assert options["_input"]["required"] is True
    params = list(inspect.signature(FILTERS[name]).parameters.values())
    named = [p.name for p in params[1:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    assert sorted(set(options) - {"_input"}) == sorted(named), "options documented vs. the function's arguments"
    positional = [p.strip() for p in documentation.get("positional", "").split(",") if p.strip()]
    assert positional[0] == "_input" and positional[1:] == named[:len(positional) - 1]
    for option in named:  # documented defaults are the function's defaults
        default = next(p.default for p in params if p.name == option)
        if "default" in options[option]:
            assert options[option]["default"] == default, option
        elif default not in (None, inspect.Parameter.empty):
            pytest.fail("%s: option %s has the default %r, undocumented" % (name, option, default))


def test_ansible_doc_documents_every_filter(tmp_path):
    """What galaxy-importer and users see: ansible-doc --json for every exported filter."""
    root = tmp_path / "collections"
    link = root / "ansible_collections" / "virtops" / "kubevirt"
    link.parent.mkdir(parents=True)
    link.symlink_to(REPO)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(root), ANSIBLE_HOME=str(tmp_path / "home"),
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_NOCOLOR="1", PYTHONWARNINGS="ignore")
    ansible_doc = str(Path(sys.executable).with_name("ansible-doc"))
    listed = subprocess.run([ansible_doc, "-t", "filter", "--list", "--json", "virtops.kubevirt"], env=env,
                            check=True, capture_output=True, text=True)
    fqcns = ["virtops.kubevirt.%s" % name for name in sorted(FILTERS)]
    assert sorted(json.loads(listed.stdout)) == fqcns
    shown = subprocess.run([ansible_doc, "-t", "filter", "--json"] + fqcns, env=env, check=True,
                           capture_output=True, text=True)
    docs = json.loads(shown.stdout)
    undocumented = [fqcn for fqcn in fqcns if not (docs.get(fqcn) or {}).get("doc")]
    assert not undocumented, "no documentation: %s\n%s" % (undocumented, shown.stderr)
    for fqcn in fqcns:
        assert docs[fqcn]["examples"] and docs[fqcn]["return"], fqcn
    assert "Missing documentation" not in shown.stderr and "UNDOCUMENTED" not in listed.stdout
