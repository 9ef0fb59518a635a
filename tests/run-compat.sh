#!/usr/bin/env bash
# The collection on the oldest ansible-core it claims to support (meta/runtime.yml: >=2.16.0).
# A venv of its own in .cache/ (from tests/compat/requirements-ansible-2.16.txt, rebuilt when that
# file changes) runs integration targets against the lab. There the modules run as module processes
# (the in-worker runner needs ansible-core 2.19); -vvv output must say so.
#
#   tests/run-compat.sh                      vm_lifecycle and vm_errors
#   tests/run-compat.sh vm_bulk              only these targets
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
REPO=$PWD
REQS=tests/compat/requirements-ansible-2.16.txt
VENV=$REPO/.cache/compat-ansible-2.16
stamp=$(sha256sum "$REQS" requirements.txt | sha256sum | cut -c1-16)
if [ "$(cat "$VENV/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "compat: building $VENV"
  rm -rf "$VENV"
  "$REPO/.venv/bin/python" -m venv "$VENV" && "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQS" || exit 1
  echo "$stamp" > "$VENV/.stamp"
fi
echo "compat: $("$VENV/bin/ansible" --version | head -1)"

STATE=${LAB_STATE_DIR:-$REPO/lab/.state}
export KUBECONFIG=$STATE/kubeconfig
COLL=$REPO/.cache/collections
mkdir -p "$COLL/ansible_collections/virtops"
ln -sfn "$REPO" "$COLL/ansible_collections/virtops/kubevirt"

# Which way the modules run on this ansible-core, said by -vvv.
out=$(ANSIBLE_COLLECTIONS_PATH=$COLL ANSIBLE_LOCALHOST_WARNING=false "$VENV/bin/ansible" localhost -vvv \
  -m virtops.kubevirt.vm_info -a "namespace=default summary=false" 2>&1)
if ! grep -q "virtops.kubevirt.vm_info: running as a module process (ansible-core older than 2.19)" <<<"$out" ||
   ! grep -q "SUCCESS" <<<"$out"; then
  echo "compat: vm_info did not run as a module process on ansible-core 2.16:"; tail -20 <<<"$out"; exit 1
fi

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(vm_lifecycle vm_errors)
ANSIBLE_PLAYBOOK_DIR=$VENV/bin AWX_VARIANT=0 LABEL_SUFFIX=-ansible-2.16 tests/run-integration.sh "${targets[@]}"
