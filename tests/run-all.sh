#!/usr/bin/env bash
# Everything CI checks, in order; `make test` runs this with a test lab of its own
# (LAB_STATE_DIR/LAB_PORT_BASE), brings that lab up first and always takes it down.
# ansible-core: .venv's (2.19) runs every suite but sanity and lint (the integration targets of each
# module family); the oldest (2.16) and the newest (2.21) run ansible-test sanity and ansible-lint,
# and tests/run-compat.sh runs the whole matrix (tests/compat/matrix). Nothing may change ~/.ansible.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. tests/common.sh
PY=.venv/bin/python
export PATH="$PWD/.venv/bin:$PATH"
NEWEST=$(grep -v '^#' tests/compat/matrix | awk 'NF {print $1}' | sort -V | tail -1)
OLDEST=$(grep -v '^#' tests/compat/matrix | awk 'NF {print $1}' | sort -V | head -1)
failed=()

step() {  # step NAME COMMAND...: run one suite, remember failures, keep going
  local name=$1; shift
  echo "=== $name"
  local t0=$SECONDS
  if "$@"; then echo "=== $name: ok ($((SECONDS - t0))s)"; else echo "=== $name: FAILED ($((SECONDS - t0))s)"; failed+=("$name"); fi
}

# On 2 cores the wall time is the CPU time of everything over two, as long as something keeps both
# busy: the suites that need no lab run one after another from the start; once the lab is up and the
# tests that change the whole lab are done (the simulator's kill -9 and restart, the feature gates), the other
# lab tests run, then the integration targets and the compatibility matrix beside molecule, the AWX job
# templates and the bench smoke (which mostly wait on VMs). Each suite that runs beside others is
# logged to .cache/suites/NAME.log with its result in NAME.status, counted at the end.
SUITES=$PWD/.cache/suites
logged() {  # logged NAME COMMAND...
  local name=$1 t0=$SECONDS; shift
  if "$@" > "$SUITES/$name.log" 2>&1; then echo "ok ($((SECONDS - t0))s)"; else echo "FAILED ($((SECONDS - t0))s)"; fi \
    > "$SUITES/$name.status"
}
lab_free_suites() {
  logged galaxy-importer tests/run-galaxy-importer.sh
  for release in "$OLDEST" "$NEWEST"; do
    logged "sanity (ansible-core $release)" env ANSIBLE_CORE="$release" tests/run-sanity.sh
    logged "ansible-lint (ansible-core $release)" env ANSIBLE_CORE="$release" tests/run-lint.sh
  done
}

# What the user's ~/.ansible (collections, roles, temp files...), ~/.ansible_async (async jobs) and
# ~/.ssh (known hosts of the SSH tests) hold: the same after the run.
user_ansible() { find ~/.ansible ~/.ansible_async ~/.ssh -printf '%y %p %s %T@\n' 2>/dev/null | sort; }
before=$(user_ansible)

cleanup() { $PY lab/labctl down >/dev/null 2>&1 || true; }
trap cleanup EXIT

step "unit tests" $PY -m pytest -q -p no:cacheprovider tests/unit
rm -rf "$SUITES" && mkdir -p "$SUITES"
lab_free_suites &
lab_free_pid=$!
# --audit: the bench smoke counts requests in the audit log; were the lab up without it, the bench's
# `labctl up --audit` would restart the apiserver under the suites running beside it.
if $PY lab/labctl up --prometheus --audit; then
  # Alone: one kills the simulator and restarts it, the other turns the KubeVirt CR's feature gates off; either
  # would fail whatever ran beside it.
  alone=(tests/lab/test_sim_scale.py tests/lab/test_cluster_gates.py)
  step "lab tests that change the whole lab" $PY -m pytest -q -p no:cacheprovider "${alone[@]}"
  # Two pytest workers (a file each at a time: its tests share module fixtures): one sequence of
  # tests leaves a core idle whenever it waits on a VM or a guest. Only the suites that need no lab
  # run beside: the lab tests time what the simulator and real guests do, and with the matrix beside
  # them too (ten busy processes on 2 cores) a different few of those bounds failed in each run.
  step "lab tests" $PY -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --durations=30 tests/lab \
    "${alone[@]/#/--deselect=}"
  # Every integration target and compatibility job runs in a namespace of its own.
  # .venv's 2.19 runs the family targets and the AWX-credential variant; 2.21 (the matrix) runs every
  # target in the worker and as module processes: running all of them on 2.19 too only cost minutes.
  read -r -a family < <(awk '$1 == "2.16" {$1 = ""; print}' tests/compat/matrix)
  logged "integration (ansible-core 2.19)" tests/run-integration.sh "${family[@]}" &
  beside_pids=($!)
  logged "compatibility matrix" env COMPAT_JOBS=4 tests/run-compat.sh &
  beside_pids+=($!)
  # The rest mostly waits on VMs: at once, beside the matrix. The molecule
  # scenarios run at once too. A one-iteration smoke of `make bench`: the harness and both collections
  # work on the lab, and the scale curves' harness (floor, role, reference, inventory, report, vm_info)
  # at N = 3.
  logged "molecule" env MOLECULE_PARALLEL=1 tests/run-molecule.sh &
  beside_pids+=($!)
  logged "AWX job templates" tests/run-awx.sh &
  beside_pids+=($!)
  bench_smokes() {
    logged "bench smoke" $PY bench/run.py --smoke --out "$PWD/.cache/bench-smoke.json"
    logged "bench smoke: scale" $PY bench/scale.py --smoke --out "$PWD/.cache/scale-smoke.json"
  }
  bench_smokes &
  beside_pids+=($!)
  wait "${beside_pids[@]}"
else
  echo "=== the lab did not come up: lab logs follow"; $PY lab/labctl logs -n 30 || true
  failed+=("lab up")
fi

echo "=== suites run beside others (logs in .cache/suites/)"
wait "$lab_free_pid"
grep -E "^(=== compat|compat|ansible-core)" "$SUITES/compatibility matrix.log" 2>/dev/null
for status in "$SUITES"/*.status; do
  name=$(basename "$status" .status)
  echo "=== $name: $(cat "$status")"
  grep -q '^ok' "$status" || { failed+=("$name"); tail -40 "$SUITES/$name.log"; }
done

echo "=== ~/.ansible, ~/.ansible_async and ~/.ssh"
if [ "$(user_ansible)" = "$before" ]; then
  echo "=== ~/.ansible, ~/.ansible_async and ~/.ssh: unchanged"
else
  echo "=== ~/.ansible, ~/.ansible_async or ~/.ssh: CHANGED by the run:"; diff <(echo "$before") <(user_ansible) | head -20
  failed+=("the user's Ansible home changed")
fi

echo "=== ansible-core releases tested"
echo "ansible-core $($PY -c 'import ansible.release as r; print(r.__version__)') ($($PY -V)): every suite above (integration: ${family[*]:-not run} + the AWX credential)"
mapfile -t releases < <(grep -v '^#' tests/compat/matrix | awk 'NF {print $1}')
for release in "${releases[@]}"; do
  cat ".cache/compat/summary-$release.txt" 2>/dev/null || echo "ansible-core $release: not run"
done
if [ ${#failed[@]} -gt 0 ]; then
  # Last, where the tail of a CI log shows it: what failed in each suite run beside others (pytest's
  # FAILED lines, an integration target's first failed task), in a few lines.
  for name in "${failed[@]}"; do
    [ -f "$SUITES/$name.log" ] || continue
    echo "=== $name failed at:"
    grep -E "^FAILED |^TASK \[|^fatal:|^\[ERROR\]" "$SUITES/$name.log" | tail -8 | cut -c1-400
  done
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all suites passed"
