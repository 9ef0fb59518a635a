#!/usr/bin/env bash
# ansible-test sanity for the collection, locally with the venv (no containers).
# ansible-test needs the collection at .../ansible_collections/virtops/kubevirt: a copy of the
# shipped files is made in .cache/sanity (ignored by git). Extra arguments go to ansible-test,
# e.g. tests/run-sanity.sh --test validate-modules
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DEST=$REPO/.cache/sanity/ansible_collections/virtops/kubevirt
export PATH="$REPO/.venv/bin:$PATH"
# ansible-test bootstraps pip in its venvs from ci-files.testing.ansible.com; where only PyPI is
# reachable, our shim installs pip from PyPI with the project venv's pip instead.
PIP_SITE=$("$REPO/.venv/bin/python" -c 'import os, pip; print(os.path.dirname(os.path.dirname(pip.__file__)))')
for version in 24.2 24.3 25.0 25.1 25.2; do
  cache=~/.ansible/test/cache/get_pip_${version//./_}.py
  if [ ! -s "$cache" ] || grep -q VIRTOPS_PIP_SITE "$cache"; then
    mkdir -p "$(dirname "$cache")" && sed "s|@PIP_SITE@|$PIP_SITE|" tests/sanity/get_pip_shim.py > "$cache"
  fi
done
rm -rf "$DEST"
mkdir -p "$DEST"
# What galaxy.yml ships (lab, bench, caches are build_ignore'd), plus tests/.
for item in galaxy.yml README.md meta plugins roles playbooks docs changelogs extensions tests \
            requirements.txt execution-environment.yml meta; do
  [ -e "$item" ] && cp -r "$item" "$DEST/"
done
# The lab is not part of the collection (build_ignore): neither are its tests.
rm -rf "$DEST/tests/output" "$DEST/tests/lab" "$DEST/tests/unit/lab" "$DEST/tests/unit/test_lab_crds.py"
find "$DEST" -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null || true
cd "$DEST"
# ansible-test lists files with git; the copy lives inside the (ignoring) main repo, so give it its own.
git init -q . && git add -A && git -c user.name=sanity -c user.email=sanity@localhost commit -qm sanity
exec ansible-test sanity --python 3.11 --color no "$@"
