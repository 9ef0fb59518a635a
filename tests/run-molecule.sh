#!/usr/bin/env bash
# Molecule scenarios (extensions/molecule/<scenario>: create, converge, idempotence, verify,
# cleanup, destroy) against the lab: KUBECONFIG from the lab's state (LAB_STATE_DIR selects
# another lab), Prometheus from lab.json when the lab runs it.
#   tests/run-molecule.sh                  every scenario
#   tests/run-molecule.sh monitor          only these scenarios
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
failed=()
for s in "${scenarios[@]}"; do
  t0=$SECONDS
  if molecule test -s "$s" > "$LOGS/$s.log" 2>&1; then
    echo "=== molecule $s: ok ($((SECONDS - t0))s)"
  else
    failed+=("$s")
    echo "=== molecule $s: FAILED ($((SECONDS - t0))s); log $LOGS/$s.log:"
    grep -E -B2 -A12 "fatal:|\[ERROR\]" "$LOGS/$s.log" | tail -40
  fi
done
echo "molecule: $(( ${#scenarios[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed${failed:+: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
