#!/usr/bin/env bash
# Fetches the reference collections for the benchmarks: kubevirt.core and kubernetes.core as
# shipped in the `ansible` package on PyPI (pinned), extracted into bench/.anchors/ (ignored,
# never committed). Only those two collections are kept.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=${ANSIBLE_PACKAGE_VERSION:-12.3.0}
dest=$here/.anchors
pip=${PIP:-$here/../.venv/bin/pip}
py=${PY:-$here/../.venv/bin/python}
if [ -f "$dest/.stamp-$version" ]; then exit 0; fi
rm -rf "$dest" && mkdir -p "$dest/dl"
echo "fetching ansible==$version from PyPI for kubevirt.core and kubernetes.core"
"$pip" download -q --no-deps --only-binary=:all: -d "$dest/dl" "ansible==$version"
"$py" - "$dest" <<'PY'
import sys, zipfile, glob, json, pathlib
dest = pathlib.Path(sys.argv[1])
wheel = glob.glob(str(dest / "dl" / "ansible-*.whl"))[0]
with zipfile.ZipFile(wheel) as zf:
    for name in zf.namelist():
        if name.startswith(("ansible_collections/kubevirt/core/", "ansible_collections/kubernetes/core/")):
            zf.extract(name, dest)
for coll in ("kubevirt/core", "kubernetes/core"):
    manifest = json.loads((dest / "ansible_collections" / coll / "MANIFEST.json").read_text())
    print(f"  {coll.replace('/', '.')} {manifest['collection_info']['version']}")
PY
rm -rf "$dest/dl"
touch "$dest/.stamp-$version"
