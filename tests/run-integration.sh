#!/usr/bin/env bash
# Integration playbooks against the lab. Each target in tests/integration/targets/<name>/ is a role
# run by a small generated playbook in a namespace of its own (created with a Multus NAD br1-net,
# deleted afterwards). The lab must be up (`lab/labctl up`); LAB_STATE_DIR selects another lab.
#
#   tests/run-integration.sh                 every target, then the AWX-credential variant
#   tests/run-integration.sh vm_lifecycle    only these targets
#   AWX_VARIANT=0 tests/run-integration.sh   skip the AWX-credential variant
#
# vm_errors also runs with virtops_kubevirt_in_process: false (modules in module processes).
#
# The AWX variant runs vm_lifecycle with only K8S_AUTH_HOST, K8S_AUTH_API_KEY (a ServiceAccount
# token from TokenRequest) and K8S_AUTH_SSL_CA_CERT set, as AWX's Kubernetes credential does.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. tests/common.sh
export KUBECONFIG=$STATE/kubeconfig
PY=$REPO/.venv/bin/python
# ANSIBLE_PLAYBOOK_DIR: another ansible-core's bin/ (tests/run-compat.sh); LABEL_SUFFIX keeps its logs apart.
export PATH="${ANSIBLE_PLAYBOOK_DIR:-$REPO/.venv/bin}:$PATH"
SUFFIX=${LABEL_SUFFIX:-}
lab_is_up || exit 1
export ANSIBLE_ROLES_PATH=$REPO/tests/integration/targets
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
export ANSIBLE_STDOUT_CALLBACK=${ANSIBLE_STDOUT_CALLBACK:-default} ANSIBLE_NOCOLOR=1

WORK=$REPO/.cache/integration
mkdir -p "$WORK"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for d in tests/integration/targets/*/; do targets+=("$(basename "$d")"); done
fi

API_HOST=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["apiserver"]["url"])' "$STATE/lab.json")
failed=()
passed=0

run_target() {  # run_target TARGET LABEL [env assignments...]
  local target=$1 label=$2; shift 2
  local ns="it-${target//_/-}-$RANDOM"
  ns=${ns:0:63}
  rm -f "$WORK/$label.status"
  "$PY" tests/integration/labkube.py ns-create "$ns" || { echo failed > "$WORK/$label.status"; return; }
  cat > "$WORK/$label.yml" <<PLAY
- name: integration target $target
  hosts: localhost
  gather_facts: false
  vars:
    ns: $ns
    secret_pw: "Int3gration-$RANDOM-secret"
    api_host: "$API_HOST"
    wrong_ca: "$STATE/pki/front-proxy-ca.crt"
    lab_ca: "$STATE/pki/ca.crt"
    virtops_kubevirt_in_process: ${IN_PROCESS:-true}
  roles:
    - $target
PLAY
  echo "=== $label (namespace $ns)"
  local t0=$SECONDS
  if env "$@" ansible-playbook "$WORK/$label.yml" > "$WORK/$label.log" 2>&1; then
    echo ok > "$WORK/$label.status"
    echo "=== $label: ok ($((SECONDS - t0))s, $(grep -c '^ok:\|^changed:' "$WORK/$label.log") tasks)"
  else
    echo failed > "$WORK/$label.status"
    echo "=== $label: FAILED ($((SECONDS - t0))s); log $WORK/$label.log:"
    grep -E -A12 "^\[ERROR\]|^fatal:" "$WORK/$label.log" | grep -v "^\.\.\.ignoring" | tail -30
  fi
  # Best-effort cleanup of what a failed run left behind, then the namespace.
  env "$@" ansible-playbook /dev/stdin > /dev/null 2>&1 <<CLEAN || true
- hosts: localhost
  gather_facts: false
  tasks:
    - virtops.kubevirt.vm_info: {namespace: $ns, summary: false}
      register: left
    - virtops.kubevirt.vm: {namespace: $ns, vms: "{{ left.resources | map(attribute='metadata.name') | list }}", state: absent, wait: true, wait_timeout: 60}
      when: left.resources | length > 0
CLEAN
  "$PY" tests/integration/labkube.py ns-delete "$ns" || true
}

# Targets run a few at a time, each in its own namespace: most of their time is spent waiting
# for VMs to boot, not on the CPU. INTEGRATION_JOBS=1 runs them one by one.
jobs_max=${INTEGRATION_JOBS:-3}
for target in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n; done
  run_target "$target" "$target$SUFFIX" &
done
# vm_errors once more with the modules in module processes instead of Ansible's worker
# (plugins/plugin_utils/in_process.py): the error paths must read the same either way.
if [[ " ${targets[*]} " == *" vm_errors "* && -z "$SUFFIX" ]]; then
  IN_PROCESS=false run_target vm_errors vm_errors-module-process &
fi
wait

if [ "${AWX_VARIANT:-1}" = 1 ] && [[ " ${targets[*]} " == *" vm_lifecycle "* ]]; then
  sa_ns=virtops-it-awx
  "$PY" tests/integration/labkube.py ns-create "$sa_ns" >/dev/null
  token=$("$PY" tests/integration/labkube.py sa-token awx "$sa_ns")
  run_target vm_lifecycle vm_lifecycle-awx -u KUBECONFIG K8S_AUTH_HOST="$API_HOST" K8S_AUTH_API_KEY="$token" \
    K8S_AUTH_SSL_CA_CERT="$STATE/pki/ca.crt" K8S_AUTH_VERIFY_SSL=True
  "$PY" tests/integration/labkube.py sa-delete awx "$sa_ns" || true
  "$PY" tests/integration/labkube.py ns-delete "$sa_ns" || true
fi

labels=()
for target in "${targets[@]}"; do labels+=("$target$SUFFIX"); done
[[ " ${targets[*]} " == *" vm_errors "* && -z "$SUFFIX" ]] && labels+=(vm_errors-module-process)
[[ " ${targets[*]} " == *" vm_lifecycle "* && "${AWX_VARIANT:-1}" = 1 ]] && labels+=(vm_lifecycle-awx)
for label in "${labels[@]}"; do
  if [ "$(cat "$WORK/$label.status" 2>/dev/null)" = ok ]; then passed=$((passed + 1)); else failed+=("$label"); fi
done
# The failures again at the end, where a CI log's tail shows them: each failed target's first failed
# task and its message.
for label in "${failed[@]}"; do
  echo "=== $label: first failure:"
  grep -m1 -B3 -E "^fatal:|^\[ERROR\]" "$WORK/$label.log" 2>/dev/null | grep -E "^TASK|^fatal:|^\[ERROR\]" | cut -c1-1500
done
echo "integration: $passed passed, ${#failed[@]} failed${failed:+: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
