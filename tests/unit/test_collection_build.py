"""The built collection ships the plugins, roles and docs, and none of the lab, benchmarks or caches."""
import os
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_build_ignores_lab_bench_and_caches(tmp_path):
    galaxy = Path(sys.executable).with_name("ansible-galaxy")
    env = dict(os.environ, ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    subprocess.run([str(galaxy), "collection", "build", "--output-path", str(tmp_path), str(REPO)],
                   check=True, capture_output=True, text=True, env=env)
    (artifact,) = tmp_path.glob("virtops-kubevirt-*.tar.gz")
    with tarfile.open(artifact) as tar:
        tops = {name.split("/")[0] for name in tar.getnames()}
        names = set(tar.getnames())
    assert {"plugins", "roles", "meta", "docs", "README.md", "MANIFEST.json"} <= tops
    assert not tops & {"lab", "bench", ".venv", ".cache", ".ansible", "reports", "Makefile", ".ci"}
    assert "plugins/modules/vm.py" in names and "meta/runtime.yml" in names
    assert not any(n.startswith("tests/lab") for n in names)
    assert not any(n.startswith("tests/unit/lab/") for n in names)  # the lab and its tests are not shipped
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    # what Galaxy's importer looks for: a README per role, documentation per filter, a changelog
    assert {"roles/%s/README.md" % r for r in ("vm_provision", "vm_monitor", "vm_decommission")} <= names
    assert "plugins/filter/vm_health.yml" in names and "changelogs/changelog.yaml" in names
