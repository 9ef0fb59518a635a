#!/usr/bin/env bash
# ansible-lint, production profile, over the roles, the playbooks and the molecule scenarios.
# Extra arguments go to ansible-lint. ANSIBLE_CORE=2.21 runs it with that release's venv (tests/compat/venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/common.sh
VENV=$(ansible_venv)
paths=(roles playbooks)
[ -d extensions/molecule ] && paths+=(extensions/molecule)
"$VENV/bin/python" -c 'import ansible.release, importlib.metadata as m; print("ansible-lint %s on ansible-core %s" % (m.version("ansible-lint"), ansible.release.__version__))'
exec "$VENV/bin/ansible-lint" --offline --profile production --nocolor "$@" "${paths[@]}"
