#!/usr/bin/env bash
# ansible-lint, production profile, over the roles, the playbooks and the molecule scenarios.
# Extra arguments go to ansible-lint.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
COLL=$REPO/.cache/collections
mkdir -p "$COLL/ansible_collections/virtops"
[ -e "$COLL/ansible_collections/virtops/kubevirt" ] || ln -s "$REPO" "$COLL/ansible_collections/virtops/kubevirt"
export ANSIBLE_COLLECTIONS_PATH=$COLL
paths=(roles playbooks)
[ -d extensions/molecule ] && paths+=(extensions/molecule)
exec "$REPO/.venv/bin/ansible-lint" --offline --profile production --nocolor "$@" "${paths[@]}"
