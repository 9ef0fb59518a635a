"""execution-environment.yml: `ansible-builder create` makes a valid build context (no image build: no container engine).

The galaxy and builder stages are replayed without a container: the collection is installed from the
context's requirements.yml into a temporary path, and the context's own introspect.py reads its
meta/execution-environment.yml, which must yield the Python packages the plugins import.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from awxhelp import REPO

VENV_BIN = os.path.join(REPO, ".venv", "bin")


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    out = tmp_path_factory.mktemp("ee") / "context"
    result = subprocess.run([os.path.join(VENV_BIN, "ansible-builder"), "create", "-f",
                             os.path.join(REPO, "execution-environment.yml"), "-c", str(out),
                             "--output-filename", "Containerfile"],
                            capture_output=True, text=True, check=False, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_definition_is_version_3():
    with open(os.path.join(REPO, "execution-environment.yml")) as handle:
        ee = yaml.safe_load(handle)
    assert ee["version"] == 3
    assert ee["images"]["base_image"]["name"]
    assert ee["dependencies"]["galaxy"]["collections"][0]["type"] == "dir"


def test_containerfile_stages(context):
    text = (context / "Containerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)", text, re.M)
    assert [s[1] for s in stages] == ["base", "galaxy", "builder", "final"]
    assert 'EE_BASE_IMAGE="quay.io/centos/centos:stream10"' in text
    assert "ansible-core>=2.16,<2.22" in text  # the range tests/compat/matrix runs (test_runtime_meta)
    assert "ansible-galaxy collection install" in text and "-r requirements.yml" in text
    assert "introspect.py introspect" in text
    assert "ansible-galaxy collection list virtops.kubevirt" in text  # our smoke check in the final stage
    # every COPY source exists in the context
    for src in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (context / src).exists(), src


def test_context_holds_the_collection(context):
    src = context / "_build" / "src" / "virtops.kubevirt"
    for path in ("galaxy.yml", "README.md", "requirements.txt", "meta/runtime.yml", "meta/execution-environment.yml",
                 "plugins/modules/vm.py", "plugins/filter/health.py", "roles/vm_provision/meta/argument_specs.yml",
                 "roles/vm_monitor/templates/report.html.j2", "playbooks/provision.yml"):
        assert (src / path).is_file(), path
    assert not (src / "lab").exists() and not (src / "tests").exists()
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert requirements == {"collections": [{"name": "/build/src/virtops.kubevirt", "type": "dir"}]}


def test_galaxy_and_builder_stages_without_a_container(context, tmp_path):
    """Install the collection as the galaxy stage would, then introspect it as the builder stage does."""
    requirements = tmp_path / "requirements.yml"
    requirements.write_text(yaml.safe_dump({"collections": [
        {"name": str(context / "_build" / "src" / "virtops.kubevirt"), "type": "dir"}]}))
    collections = tmp_path / "collections"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_GALAXY_DISABLE_GPG_VERIFY="1")
    result = subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", "-r", str(requirements),
                             "--collections-path", str(collections), "--offline"],
                            capture_output=True, text=True, check=False, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    installed = collections / "ansible_collections" / "virtops" / "kubevirt"
    assert (installed / "MANIFEST.json").is_file() and (installed / "roles" / "vm_monitor").is_dir()
    pip_out = tmp_path / "requirements.txt"
    result = subprocess.run([sys.executable, str(context / "_build" / "scripts" / "introspect.py"), "introspect",
                             str(collections), "--write-pip", str(pip_out)],
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    wanted = pip_out.read_text()
    for package in ("kubernetes", "jmespath", "websocket-client"):
        assert re.search(r"^%s\b.*# from collection virtops.kubevirt" % package, wanted, re.M), wanted
    # the installed collection works: its modules document themselves
    doc = subprocess.run([os.path.join(VENV_BIN, "ansible-doc"), "-t", "module", "virtops.kubevirt.vm"],
                         capture_output=True, text=True, check=False, env=dict(env, ANSIBLE_NOCOLOR="1"), timeout=120)
    assert doc.returncode == 0 and str(installed) in doc.stdout  # documented from the installed copy


def test_the_context_is_reproducible(context, tmp_path):
    again = tmp_path / "context"
    subprocess.run([os.path.join(VENV_BIN, "ansible-builder"), "create", "-f",
                    os.path.join(REPO, "execution-environment.yml"), "-c", str(again), "--output-filename",
                    "Containerfile"], check=True, capture_output=True, cwd=REPO, timeout=300)
    assert (again / "Containerfile").read_text() == (context / "Containerfile").read_text()
    shutil.rmtree(again)
