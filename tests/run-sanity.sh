#!/usr/bin/env bash
# ansible-test sanity for the collection, locally with a venv (no containers): .venv's ansible-core,
# or with ANSIBLE_CORE=2.21 that release's venv (tests/compat/venv.sh), as each core brings new rules.
# ansible-test needs the collection at .../ansible_collections/virtops/kubevirt: a copy of the
# shipped files is made in .cache/sanity-<release> (ignored by git). Extra arguments go to
# ansible-test, e.g. tests/run-sanity.sh --test validate-modules
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/common.sh
VENV=$(ansible_venv)
RELEASE=$("$VENV/bin/python" -c 'from ansible.release import __version__ as v; print(".".join(v.split(".")[:2]))')
PYVER=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
DEST=$REPO/.cache/sanity-$RELEASE/ansible_collections/virtops/kubevirt
export PATH="$VENV/bin:$PATH"
# ansible-test keeps its sanity venvs and pip bootstrap in ~/.ansible/test: a home in the checkout
# keeps them out of the user's (and caches them between runs).
export HOME=$REPO/.cache/sanity-home
# ansible-test bootstraps pip in its venvs from ci-files.testing.ansible.com; where only PyPI is
# reachable, our shim installs pip from PyPI with the venv's pip instead.
PIP_SITE=$("$VENV/bin/python" -c 'import os, pip; print(os.path.dirname(os.path.dirname(pip.__file__)))')
for version in 23.1.2 24.2 24.3 25.0 25.1 25.2 25.3 26.0; do
  cache=$HOME/.ansible/test/cache/get_pip_${version//./_}.py
  if [ ! -s "$cache" ] || grep -q VIRTOPS_PIP_SITE "$cache"; then
    mkdir -p "$(dirname "$cache")" && sed "s|@PIP_SITE@|$PIP_SITE|" tests/sanity/get_pip_shim.py > "$cache"
  fi
done
echo "sanity: ansible-core $("$VENV/bin/python" -c 'import ansible.release; print(ansible.release.__version__)'), Python $PYVER"
rm -rf "$DEST"
mkdir -p "$DEST"
# What galaxy.yml ships (lab, bench, caches are build_ignore'd), plus tests/.
for item in galaxy.yml README.md meta plugins roles playbooks docs changelogs extensions tests \
            requirements.txt execution-environment.yml meta; do
  [ -e "$item" ] && cp -r "$item" "$DEST/"
done
# The lab is not part of the collection (build_ignore): neither are its tests.
rm -rf "$DEST/tests/output" "$DEST/tests/lab" "$DEST/tests/unit/lab"
find "$DEST" -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null || true
cd "$DEST"
# ansible-test lists files with git; the copy lives inside the (ignoring) main repo, so give it its own.
git init -q . && git add -A && git -c user.name=sanity -c user.email=sanity@localhost commit -qm sanity
exec ansible-test sanity --python "$PYVER" --color no "$@"
