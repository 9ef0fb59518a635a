"""The built collection ships the plugins, roles and docs, and none of the lab, benchmarks or caches."""
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_build_ignores_lab_bench_and_caches(tmp_path):
    galaxy = Path(sys.executable).with_name("ansible-galaxy")
    subprocess.run([str(galaxy), "collection", "build", "--output-path", str(tmp_path), str(REPO)],
                   check=True, capture_output=True, text=True)
    (artifact,) = tmp_path.glob("virtops-kubevirt-*.tar.gz")
    with tarfile.open(artifact) as tar:
        tops = {name.split("/")[0] for name in tar.getnames()}
        names = set(tar.getnames())
    assert {"plugins", "roles", "meta", "docs", "README.md", "MANIFEST.json"} <= tops
    assert not tops & {"lab", "bench", ".venv", ".cache", ".ansible", "reports", "Makefile", ".ci"}
    assert "plugins/modules/vm.py" in names and "meta/runtime.yml" in names
    assert not any(n.startswith("tests/lab") for n in names)
