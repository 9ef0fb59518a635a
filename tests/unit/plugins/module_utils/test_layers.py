"""The layers of module_utils (see ARCHITECTURE.md): a module may import its own layer and the ones
below it, never one above. Imports are read with ast, also the lazy ones inside functions."""
import ast
import os

import pytest

MU = "ansible_collections.virtops.kubevirt.plugins.module_utils"
PLUGINS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins"))

# lowest first; a file's layer is its first path part under module_utils
LAYERS = {"k8s": 0, "kubevirt": 1, "runner": 2, "workflows": 3, "readers": 3}
# layers of the same rank that must not import each other
SIBLINGS = {("workflows", "readers"), ("readers", "workflows")}


def layer_of_module(dotted):
    """'...module_utils.kubevirt.state' -> 'kubevirt'; None for what is not module_utils."""
    if not dotted.startswith(MU + "."):
        return None
    return dotted[len(MU) + 1:].split(".")[0]


def imported_modules(source):
    """Every module_utils module a source imports (from X import y counts X and X.y)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
            out.extend("%s.%s" % (node.module, a.name) for a in node.names)
    return [m for m in out if m.startswith(MU + ".")]


def violations(layer, source):
    """[(imported module, its layer)] that ``layer`` may not import."""
    bad = []
    for mod in imported_modules(source):
        other = layer_of_module(mod)
        if other is None or other == layer:
            continue
        if other not in LAYERS:
            bad.append((mod, other))
        elif LAYERS[other] > LAYERS[layer] or (layer, other) in SIBLINGS:
            bad.append((mod, other))
    return bad


def module_utils_files():
    root = os.path.join(PLUGINS, "module_utils")
    for dirpath, _dirs, files in os.walk(root):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                yield rel, rel.split(os.sep)[0].replace(".py", "")


def test_every_module_utils_file_is_in_a_layer():
    assert sorted({layer for _rel, layer in module_utils_files()}) == sorted(LAYERS)


@pytest.mark.parametrize("rel, layer", list(module_utils_files()))
def test_no_lower_layer_imports_a_higher_one(rel, layer):
    with open(os.path.join(PLUGINS, "module_utils", rel)) as f:
        assert violations(layer, f.read()) == [], rel


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(PLUGINS, "modules"))))
def test_modules_import_only_the_runner_and_their_workflow(name):
    if not name.endswith(".py"):
        return
    with open(os.path.join(PLUGINS, "modules", name)) as f:
        source = f.read()
    mods = imported_modules(source)
    if "An action plugin only" in source:  # documentation of an action plugin: no code to layer
        assert not mods and "def main" not in source and os.path.exists(os.path.join(PLUGINS, "action", name))
        return
    layers = {layer_of_module(m) for m in mods}
    assert layers <= {"runner", "workflows"}, (name, mods)
    workflows = {m.split(".")[len(MU.split(".")) + 1] for m in mods if layer_of_module(m) == "workflows"}
    assert workflows == {name[:-3]}, "module %s runs workflows/%s.py, not %s" % (name, name, workflows)


def test_the_check_sees_a_lower_layer_importing_a_higher_one():
    src = ("def f():\n    from %s.workflows import vm\n" % MU)
    assert violations("kubevirt", src) == [(MU + ".workflows", "workflows"), (MU + ".workflows.vm", "workflows")]
    assert violations("k8s", "from %s.kubevirt.state import run_strategy\n" % MU)
    assert violations("readers", "from %s.workflows import vm\n" % MU)
    assert not violations("workflows", "from %s.k8s import writes\nfrom %s import runner\n" % (MU, MU))
