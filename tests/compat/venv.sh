#!/usr/bin/env bash
# tests/compat/venv.sh RELEASE: prints the path of a venv with ansible-core RELEASE (e.g. 2.21) and the
# collection's requirements (tests/compat/requirements-ansible-RELEASE.txt), on a Python that release
# supports, found as on a user's machine: python3.X on PATH, else pyenv's versions. The venv lives in
# .cache/compat/ and is built again only when its requirements or its Python change. A missing Python
# is an error that says which to install.
set -euo pipefail
cd "$(dirname "$0")/../.."
release=${1:?usage: tests/compat/venv.sh RELEASE}
reqs=tests/compat/requirements-ansible-$release.txt
[ -f "$reqs" ] || { echo "compat: no $reqs: ansible-core $release is not in the matrix" >&2; exit 2; }

# The Pythons each ansible-core release supports, preferred first (its setup.cfg python_requires and
# the controller support matrix in ansible-core's porting guides).
# 2.21 prefers 3.12, the Python of execution-environment.yml's base image (CentOS Stream 10); 2.20
# prefers 3.13, so that every Python from 3.11 to 3.13 runs in the matrix.
case $release in
  2.16) pythons="3.11 3.12 3.10" ;;
  2.17 | 2.18) pythons="3.11 3.12 3.13" ;;
  2.19) pythons="3.11 3.12 3.13" ;;
  2.20) pythons="3.13 3.12 3.14" ;;
  2.21) pythons="3.12 3.13 3.14" ;;
  *) echo "compat: tests/compat/venv.sh does not know which Python ansible-core $release runs on" >&2; exit 2 ;;
esac

find_python() {  # find_python 3.X: an interpreter of that version that runs, or nothing
  local v=$1 candidate root
  # PATH as the user's shell has it: not this checkout's own .venv (make test puts it first)
  candidate=$(PATH=$(tr ':' '\n' <<<"$PATH" | grep -vx "$PWD/.venv/bin" | paste -sd:) command -v "python$v" 2>/dev/null || true)
  if [ -n "$candidate" ] && "$candidate" -c 'import venv' >/dev/null 2>&1; then echo "$candidate"; return; fi
  root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  for candidate in "$root"/versions/"$v".*/bin/python"$v"; do
    if [ -x "$candidate" ] && "$candidate" -c 'import venv' >/dev/null 2>&1; then echo "$candidate"; return; fi
  done
}

python=
for v in $pythons; do
  python=$(find_python "$v")
  [ -n "$python" ] && break
done
if [ -z "$python" ]; then
  echo "compat: ansible-core $release needs Python ${pythons// / or }, and none was found on PATH" \
       "(python3.X) or in pyenv ($(pyenv root 2>/dev/null || echo ~/.pyenv)/versions): install one, e.g. pyenv install ${pythons%% *}" >&2
  exit 1
fi

venv=$PWD/.cache/compat/ansible-$release
# Suites that run at the same time (sanity, lint, the matrix) may ask for the same venv: one builds it.
mkdir -p "$(dirname "$venv")"
exec 9> "$venv.lock"
flock 9
stamp=$( (cat "$reqs" requirements.txt; "$python" -VV) | sha256sum | cut -c1-16)
if [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "compat: building $venv with $("$python" -V) ($python)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$reqs" >&2
  echo "$stamp" > "$venv/.stamp"
fi
echo "$venv"
