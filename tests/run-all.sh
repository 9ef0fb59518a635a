#!/usr/bin/env bash
# Everything CI checks, in order; `make test` runs this with a test lab of its own
# (LAB_STATE_DIR/LAB_PORT_BASE), brings that lab up first and always takes it down.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PY=.venv/bin/python
export PATH="$PWD/.venv/bin:$PATH"
failed=()

step() {  # step NAME COMMAND...: run one suite, remember failures, keep going
  local name=$1; shift
  echo "=== $name"
  local t0=$SECONDS
  if "$@"; then echo "=== $name: ok ($((SECONDS - t0))s)"; else echo "=== $name: FAILED ($((SECONDS - t0))s)"; failed+=("$name"); fi
}

cleanup() { $PY lab/labctl down >/dev/null 2>&1 || true; }
trap cleanup EXIT

step "unit tests" $PY -m pytest -q -p no:cacheprovider tests/unit
if $PY lab/labctl up --prometheus; then
  step "lab tests" $PY -m pytest -q -p no:cacheprovider tests/lab
  for suite in tests/run-sanity.sh tests/run-lint.sh tests/run-integration.sh tests/run-compat.sh tests/run-molecule.sh tests/run-awx.sh; do
    if [ -x "$suite" ]; then step "$suite" "$suite"; fi
  done
  # A one-iteration smoke of `make bench`: the harness and both collections work on the lab.
  step "bench smoke" $PY bench/run.py --smoke --out "$PWD/.cache/bench-smoke.json"
else
  echo "=== the lab did not come up: lab logs follow"; $PY lab/labctl logs -n 30 || true
  failed+=("lab up")
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all suites passed"
