#!/usr/bin/env bash
# Molecule scenarios (extensions/molecule/<scenario>: create, converge, idempotence, verify,
# cleanup, destroy) against the lab: KUBECONFIG from the lab's state (LAB_STATE_DIR selects
# another lab), Prometheus from lab.json when the lab runs it.
#   tests/run-molecule.sh                  every scenario
#   tests/run-molecule.sh monitor          only these scenarios
#   MOLECULE_PARALLEL=1 tests/run-molecule.sh   the scenarios at once (make test does)
# Against another cluster: KUBECONFIG=... molecule test -s provision (see docs/roles.md).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. tests/common.sh
export PATH="$REPO/.venv/bin:$PATH"
export KUBECONFIG=${MOLECULE_KUBECONFIG:-$STATE/kubeconfig}
[ -f "$KUBECONFIG" ] || { echo "the lab is not up: $KUBECONFIG is missing; run lab/labctl up"; exit 1; }
export ANSIBLE_NOCOLOR=1 NO_COLOR=1 ANSIBLE_FORCE_COLOR=0
if [ -z "${MOLECULE_PROMETHEUS_URL:-}" ] && [ -f "$STATE/lab.json" ]; then
  MOLECULE_PROMETHEUS_URL=$(.venv/bin/python -c \
    'import json,sys; print((json.load(open(sys.argv[1])).get("prometheus") or {}).get("url", ""))' "$STATE/lab.json")
  export MOLECULE_PROMETHEUS_URL
fi
LOGS=$REPO/.cache/molecule-logs
mkdir -p "$LOGS"
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(provision monitor lifecycle backup)
# MOLECULE_PARALLEL=1: the scenarios at once (each has its own namespaces; they mostly wait on VMs).
# Each then gets an Ansible home of its own: molecule installs the collection there before a run, and
# two installs into one folder at once fail.
run_scenario() {  # run_scenario NAME: its log, and its result line in $LOGS/NAME.status
  local s=$1 t0=$SECONDS home=$ANSIBLE_HOME
  [ "${MOLECULE_PARALLEL:-0}" = 1 ] && home=$ANSIBLE_HOME/molecule-$s
  if ANSIBLE_HOME=$home ANSIBLE_REMOTE_TMP=$home/remote-tmp ANSIBLE_ASYNC_DIR=$home/async \
       molecule test -s "$s" > "$LOGS/$s.log" 2>&1; then
    echo "ok ($((SECONDS - t0))s)" > "$LOGS/$s.status"
  else
    echo "FAILED ($((SECONDS - t0))s)" > "$LOGS/$s.status"
  fi
}
rm -f "$LOGS"/*.status
for s in "${scenarios[@]}"; do
  if [ "${MOLECULE_PARALLEL:-0}" = 1 ]; then run_scenario "$s" & else run_scenario "$s"; fi
done
wait
failed=()
for s in "${scenarios[@]}"; do
  status=$(cat "$LOGS/$s.status" 2>/dev/null || echo "FAILED (no result)")
  if [[ $status == ok* ]]; then
    echo "=== molecule $s: $status"
  else
    failed+=("$s")
    echo "=== molecule $s: $status; log $LOGS/$s.log:"
    grep -E -B2 -A12 "fatal:|\[ERROR\]" "$LOGS/$s.log" | tail -40
  fi
done
echo "molecule: $(( ${#scenarios[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed${failed:+: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
