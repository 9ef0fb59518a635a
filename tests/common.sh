# shellcheck shell=bash
# Sourced by the tests/run-*.sh scripts: one place for where the suites find things and put things.
# Nothing a suite runs writes outside the checkout: Ansible's home (local temp files, galaxy and
# molecule caches, collections molecule installs), the module processes' temp folder and the async
# jobs' status files are under .cache/ansible-home, not ~/.ansible and ~/.ansible_async.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${LAB_STATE_DIR:-$REPO/lab/.state}
export ANSIBLE_HOME=$REPO/.cache/ansible-home
export ANSIBLE_REMOTE_TMP=$ANSIBLE_HOME/remote-tmp ANSIBLE_ASYNC_DIR=$ANSIBLE_HOME/async
# The checkout, where Ansible looks for collections: .cache/collections/ansible_collections/virtops/kubevirt.
COLL=$REPO/.cache/collections
mkdir -p "$COLL/ansible_collections/virtops" "$ANSIBLE_HOME"
ln -sfn "$REPO" "$COLL/ansible_collections/virtops/kubevirt"
export ANSIBLE_COLLECTIONS_PATH=$COLL

lab_is_up() {  # the lab's kubeconfig exists, or a message saying how to start it
  [ -f "$STATE/kubeconfig" ] || { echo "the lab is not up: $STATE/kubeconfig is missing; run lab/labctl up"; return 1; }
}

ansible_venv() {  # ansible_venv: the venv whose ansible-core runs the suite: .venv, or ANSIBLE_CORE's (tests/compat/venv.sh)
  if [ -n "${ANSIBLE_CORE:-}" ]; then "$REPO/tests/compat/venv.sh" "$ANSIBLE_CORE"; else echo "$REPO/.venv"; fi
}
