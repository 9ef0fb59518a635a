#!/usr/bin/env bash
# The collection on every ansible-core release it supports (tests/compat/matrix), against the lab.
# Each release has a venv of its own (tests/compat/venv.sh: a Python that release supports, from
# PATH or pyenv) and checks, with that release: which way the modules run (-vvv), its integration
# targets, and the roles as AWX job templates through ansible-runner. All of it goes into one queue
# that COMPAT_JOBS (default 5) workers take from: every target and job template runs in a namespace
# of its own, and on 2 cores more at once only slows each down. Logs in .cache/compat/jobs/; one
# summary line a release in .cache/compat/summary-<release>.txt.
#
#   tests/run-compat.sh              every release of the matrix
#   tests/run-compat.sh 2.16 2.21    these releases
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. tests/common.sh
lab_is_up || exit 1
OUT=$REPO/.cache/compat
JOBS=$OUT/jobs

if [ "${1:-}" = --job ]; then  # one unit of the queue: --job RELEASE awx | --job RELEASE TARGET worker|module-process
  release=$2 what=$3 how=${4:-}
  venv=$OUT/ansible-$release
  if [ "$what" = awx ]; then
    label=awx-$release
    AWX_ANSIBLE_BIN=$venv/bin tests/run-awx.sh tests/awx/test_job_templates.py -k "end_to_end or sliced" > "$JOBS/$label.log" 2>&1
  else
    suffix=-$release in_process=true
    [ "$how" = module-process ] && suffix=-$release-module-process in_process=false
    label=$what$suffix
    IN_PROCESS=$in_process ANSIBLE_PLAYBOOK_DIR=$venv/bin AWX_VARIANT=0 LABEL_SUFFIX=$suffix \
      tests/run-integration.sh "$what" > "$JOBS/$label.log" 2>&1
  fi
  status=$?
  result=ok
  [ $status = 0 ] || result=FAILED
  echo "$result" > "$JOBS/$label.status"
  echo "=== compat $label: $result"
  exit $status
fi

releases=("$@")
[ ${#releases[@]} -gt 0 ] || mapfile -t releases < <(grep -v '^#' tests/compat/matrix | awk 'NF {print $1}')
ALL_TARGETS=()
for d in tests/integration/targets/*/; do ALL_TARGETS+=("$(basename "$d")"); done
rm -rf "$JOBS" && mkdir -p "$JOBS"

# 1. The venvs (built at the same time), then on each release which way the modules run, said by -vvv.
for release in "${releases[@]}"; do
  grep -q "^$release " tests/compat/matrix || { echo "compat: $release is not in tests/compat/matrix"; exit 2; }
  tests/compat/venv.sh "$release" > /dev/null &
done
wait
failed=()
queue=()
for release in "${releases[@]}"; do
  venv=$OUT/ansible-$release
  [ -x "$venv/bin/ansible" ] || { echo "compat $release: no venv (tests/compat/venv.sh $release failed)"; failed+=("$release"); continue; }
  want="running in Ansible's worker"
  "$venv/bin/python" -c 'import sys; from ansible.release import __version__ as v; sys.exit(tuple(map(int, v.split(".")[:2])) < (2, 19))' ||
    want="running as a module process (ansible-core older than 2.19)"
  out=$(KUBECONFIG=$STATE/kubeconfig ANSIBLE_LOCALHOST_WARNING=false \
        "$venv/bin/ansible" localhost -vvv -m virtops.kubevirt.vm_info -a "namespace=default summary=false" 2>&1)
  if grep -q "virtops.kubevirt.vm_info: $want" <<<"$out" && grep -q SUCCESS <<<"$out"; then
    echo "compat $release: vm_info is $want"
  else
    echo "compat $release: vm_info was not $want:"; tail -20 <<<"$out"; failed+=("$release")
  fi
  queue+=("$release awx")
done

# 2. The queue: the job templates first (the longest), then every target of every release. An "all" leg
# runs every target in the worker, and as module processes those that no release older than 2.19 (whose
# modules always run as module processes) runs already.
module_process_elsewhere=" $(grep -v '^#' tests/compat/matrix | awk 'NF {split($1, v, "."); if (v[1] == 2 && v[2] < 19) {$1 = ""; print}}' | tr '\n' ' ') "
declare -A expected
for release in "${releases[@]}"; do
  read -r -a targets < <(awk -v r="$release" '$1 == r {$1 = ""; print}' tests/compat/matrix)
  expected[$release]=1  # the job templates
  if [ "${targets[0]}" = all ]; then
    for target in "${ALL_TARGETS[@]}"; do
      queue+=("$release $target worker")
      [[ "$module_process_elsewhere" == *" $target "* ]] || queue+=("$release $target module-process")
    done
  else
    for target in "${targets[@]}"; do queue+=("$release $target worker"); done
  fi
  expected[$release]=$((1 + $(printf '%s\n' "${queue[@]}" | grep -c "^$release [^ ]* ")))
done
printf '%s\n' "${queue[@]}" | xargs -P "${COMPAT_JOBS:-5}" -L1 tests/run-compat.sh --job

# 3. One line a release: what it ran and whether all of it passed.
for release in "${releases[@]}"; do
  venv=$OUT/ansible-$release
  version=$("$venv/bin/python" -c 'from ansible.release import __version__; print(__version__)' 2>/dev/null || echo "$release")
  read -r -a targets < <(awk -v r="$release" '$1 == r {$1 = ""; print}' tests/compat/matrix)
  if [ "${targets[0]}" = all ]; then
    ran="all ${#ALL_TARGETS[@]} integration targets in the worker, $((expected[$release] - 1 - ${#ALL_TARGETS[@]})) again as module processes (those no older release runs)"
  else
    ran="${targets[*]}"
  fi
  bad=$(grep -l "^FAILED" "$JOBS"/*-"$release"*.status 2>/dev/null | xargs -r -n1 basename | sed 's/\.status$//' | tr '\n' ' ')
  jobs_run=$(find "$JOBS" -name "*-$release*.status" | wc -l)
  result=passed
  if [ -n "$bad" ] || [ "$jobs_run" != "${expected[$release]}" ] || [[ " ${failed[*]} " == *" $release "* ]]; then
    result=FAILED
    [[ " ${failed[*]} " == *" $release "* ]] || failed+=("$release")
    for label in $bad; do echo "=== compat $label FAILED; the end of $JOBS/$label.log:"; tail -30 "$JOBS/$label.log"; done
  fi
  echo "ansible-core $version ($("$venv/bin/python" -V 2>&1)): $result: $ran + the four playbooks as AWX job templates via ansible-runner ($jobs_run of ${expected[$release]} jobs ran)" \
    | tee "$OUT/summary-$release.txt"
done
echo "compat: $(( ${#releases[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed${failed:+: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
