#!/usr/bin/env bash
# ansible-lint, production profile, over the roles, the playbooks and the molecule scenarios.
# Extra arguments go to ansible-lint. ANSIBLE_CORE=2.21 runs it with that release's venv (tests/compat/venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/common.sh
VENV=$(ansible_venv)
paths=(roles playbooks)
[ -d extensions/molecule ] && paths+=(extensions/molecule)
echo "ansible-lint $("$VENV/bin/ansible-lint" --version 2>/dev/null | head -1 | cut -d' ' -f2) on $("$VENV/bin/ansible" --version | head -1)"
exec "$VENV/bin/ansible-lint" --offline --profile production --nocolor "$@" "${paths[@]}"
