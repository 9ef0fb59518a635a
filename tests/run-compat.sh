#!/usr/bin/env bash
# The collection on every ansible-core release it supports (tests/compat/matrix), against the lab.
# Each leg has a venv of its own (tests/compat/venv.sh: a Python that release supports, from PATH or
# pyenv) and checks, with that release: which way the modules run (-vvv), its integration targets,
# and the roles as AWX job templates through ansible-runner. Legs run at the same time: every target
# and job template runs in a namespace of its own. Logs in .cache/compat/<release>.log; one summary
# line a release in .cache/compat/summary-<release>.txt.
#
#   tests/run-compat.sh              every leg
#   tests/run-compat.sh 2.16 2.21    these legs
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. tests/common.sh
lab_is_up || exit 1
OUT=$REPO/.cache/compat
mkdir -p "$OUT"
ALL_TARGETS=()
for d in tests/integration/targets/*/; do ALL_TARGETS+=("$(basename "$d")"); done

leg() {  # leg RELEASE TARGET...: everything one release runs; the exit status says whether it passed
  local release=$1; shift
  local targets=("$@") venv version out ok=0 ran=()
  venv=$(tests/compat/venv.sh "$release") || return 1
  version=$("$venv/bin/python" -c 'from ansible.release import __version__; print(__version__)')
  echo "compat $release: ansible-core $version, $("$venv/bin/python" -V)"
  [ "${targets[0]}" = all ] && targets=("${ALL_TARGETS[@]}") && ran+=("all ${#targets[@]} integration targets")

  # 1. Which way the modules run on this release, said by -vvv.
  out=$(KUBECONFIG=$STATE/kubeconfig ANSIBLE_LOCALHOST_WARNING=false \
        "$venv/bin/ansible" localhost -vvv -m virtops.kubevirt.vm_info -a "namespace=default summary=false" 2>&1)
  local want="running in Ansible's worker"
  "$venv/bin/python" -c 'import sys; from ansible.release import __version__ as v; sys.exit(tuple(map(int, v.split(".")[:2])) < (2, 19))' ||
    want="running as a module process (ansible-core older than 2.19)"
  if grep -q "virtops.kubevirt.vm_info: $want" <<<"$out" && grep -q SUCCESS <<<"$out"; then
    echo "compat $release: vm_info is $want"
  else
    echo "compat $release: vm_info was not $want:"; tail -20 <<<"$out"; ok=1
  fi

  # 2. Integration targets (in the worker where the release allows it), and for "all" once more as
  #    module processes. 3. The roles through ansible-runner, as AWX runs a job template.
  local pids=() pid
  ANSIBLE_PLAYBOOK_DIR=$venv/bin AWX_VARIANT=0 LABEL_SUFFIX=-$release tests/run-integration.sh "${targets[@]}" &
  pids+=($!)
  if [ ${#ran[@]} -gt 0 ]; then
    IN_PROCESS=false ANSIBLE_PLAYBOOK_DIR=$venv/bin AWX_VARIANT=0 LABEL_SUFFIX=-$release-module-process \
      tests/run-integration.sh "${targets[@]}" &
    pids+=($!)
  fi
  AWX_ANSIBLE_BIN=$venv/bin tests/run-awx.sh tests/awx/test_job_templates.py -k end_to_end &
  pids+=($!)
  for pid in "${pids[@]}"; do wait "$pid" || ok=1; done
  if [ ${#ran[@]} -gt 0 ]; then ran+=("in the worker and as module processes"); else ran+=("${targets[*]}"); fi
  ran+=("+ provision/monitor/lifecycle/decommission job templates via ansible-runner")
  echo "ansible-core $version ($("$venv/bin/python" -V)): $([ $ok = 0 ] && echo passed || echo FAILED): ${ran[*]}" \
    > "$OUT/summary-$release.txt"
  return $ok
}

releases=("$@")
[ ${#releases[@]} -gt 0 ] || mapfile -t releases < <(grep -v '^#' tests/compat/matrix | awk 'NF {print $1}')
for release in "${releases[@]}"; do
  read -r -a targets < <(awk -v r="$release" '$1 == r {$1 = ""; print}' tests/compat/matrix)
  [ ${#targets[@]} -gt 0 ] || { echo "compat: $release is not in tests/compat/matrix"; exit 2; }
  rm -f "$OUT/summary-$release.txt"
  leg "$release" "${targets[@]}" > "$OUT/$release.log" 2>&1 &
done
wait
failed=()
for release in "${releases[@]}"; do
  if grep -q ": passed:" "$OUT/summary-$release.txt" 2>/dev/null; then
    grep -E "^compat $release|^integration:|[0-9]+ passed" "$OUT/$release.log" | sed "s/^/  /"
  else
    failed+=("$release")
    echo "=== compat $release FAILED; the end of $OUT/$release.log:"; tail -40 "$OUT/$release.log"
  fi
done
for release in "${releases[@]}"; do cat "$OUT/summary-$release.txt" 2>/dev/null; done
echo "compat: $(( ${#releases[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed${failed:+: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
