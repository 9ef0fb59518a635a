#!/usr/bin/env bash
# galaxy-importer on the built collection: the checker Galaxy and Automation Hub run on every upload
# (ansible-doc on every plugin, role READMEs, ansible-lint, the changelog, galaxy.yml).
#
# galaxy-importer pins its own ansible-core and ansible-lint, so it lives in a venv of its own,
# .cache/galaxy-importer, built from tests/galaxy/requirements.txt (and rebuilt when that file
# changes). The collection is built with that venv's ansible-galaxy into a temporary directory, which
# is also HOME, ANSIBLE_HOME and the temp dir of everything this runs: nothing is written outside the
# checkout and that directory (no ~/.ansible, no ~/.cache), and it is removed at the end.
# No containers: ansible-test (which galaxy-importer would run in Docker/podman) is off.
#
# Fails when the importer fails or reports an ERROR; warnings are shown and counted.
# Environment: GALAXY_IMPORTER_PYTHON (default python3) builds the venv; KEEP_GALAXY_IMPORTER_WORK=1
# keeps the temporary directory (its path is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
REQUIREMENTS=$REPO/tests/galaxy/requirements.txt
VENV=$REPO/.cache/galaxy-importer
PYTHON=${GALAXY_IMPORTER_PYTHON:-python3}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/virtops-galaxy-importer.XXXXXX")
if [ "${KEEP_GALAXY_IMPORTER_WORK:-0}" = 1 ]; then
  echo "galaxy-importer: work directory $WORK (kept)"
else
  trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK/home" "$WORK/tmp" "$WORK/build" "$WORK/run"
# Everything below (pip, ansible-galaxy, ansible-doc, ansible-lint) writes only here.
export HOME=$WORK/home ANSIBLE_HOME=$WORK/home/.ansible ANSIBLE_LOCAL_TEMP=$WORK/tmp TMPDIR=$WORK/tmp \
  XDG_CACHE_HOME=$WORK/home/.cache XDG_CONFIG_HOME=$WORK/home/.config XDG_DATA_HOME=$WORK/home/.local/share \
  PIP_CACHE_DIR=$WORK/home/.cache/pip PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 \
  ANSIBLE_NOCOLOR=1 NO_COLOR=1
# Nothing from the caller's Ansible set-up: the importer points ansible-doc at its own copy.
unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS ANSIBLE_ROLES_PATH VIRTUAL_ENV

# ------------------------------------------------------------------ the importer's venv
want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  echo "galaxy-importer: installing $(grep -i '^galaxy[-_]importer==' "$REQUIREMENTS") into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q -r "$REQUIREMENTS"
  echo "$want" > "$VENV/.requirements.sha256"
fi
export PATH="$VENV/bin:$PATH"  # the importer runs ansible-doc and ansible-lint from PATH: its own

# ------------------------------------------------------------------ build
cd "$WORK/run"  # no ansible.cfg from the caller's directory; importer_result.json lands here
ansible-galaxy collection build --output-path "$WORK/build" "$REPO" >/dev/null
tarball=$(ls "$WORK"/build/*.tar.gz)
echo "galaxy-importer: built $(basename "$tarball")"

# ------------------------------------------------------------------ import
cat > "$WORK/galaxy-importer.cfg" <<EOF
[galaxy-importer]
run_ansible_test = False
ansible_test_local_image = False
local_image_docker = False
run_ansible_doc = True
run_ansible_lint = True
offline_ansible_lint = True
check_changelog = True
log_level_main = INFO
ansible_local_tmp = $WORK/tmp
tmp_root_dir = $WORK/tmp
EOF
rc=0
GALAXY_IMPORTER_CONFIG=$WORK/galaxy-importer.cfg python -m galaxy_importer.main "$tarball" >"$WORK/importer.log" 2>&1 || rc=$?
cat "$WORK/importer.log"
errors=$(grep -c '^ERROR' "$WORK/importer.log" || true)
warnings=$(grep -c '^WARNING' "$WORK/importer.log" || true)
echo "galaxy-importer: exit status $rc, $errors error(s), $warnings warning(s)"
if [ "$rc" -ne 0 ] || [ "$errors" -gt 0 ] || ! grep -q '^Importer processing completed successfully' "$WORK/importer.log"; then
  echo "galaxy-importer: FAILED"
  exit 1
fi
echo "galaxy-importer: ok"
