#!/usr/bin/env bash
# Builds lab/.bin/kubelab (etcd + kube-apiserver + kube-controller-manager) from Go modules,
# printing progress while it compiles: a cold build takes minutes, a warm one seconds.
# Go's module and build caches stay in their default places, so later builds reuse them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../.bin/kubelab}
go=${GO:-go}
k8s=$(sed -n 's/^\tk8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$here/go.mod")
minor=$(echo "$k8s" | cut -d. -f2)
ld="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ld="$ld -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  ld="$ld -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
mkdir -p "$(dirname "$out")"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "building kubelab (Kubernetes $k8s, $("$go" version | cut -d' ' -f3)) into ${out#"$PWD"/}"
start=$(date +%s)
( cd "$here" && "$go" build -v -trimpath -ldflags "$ld" -o "$out.tmp" . ) >"$log" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  sleep 15
  kill -0 "$pid" 2>/dev/null && echo "  ... still compiling: $(( $(date +%s) - start ))s, $(grep -c . "$log") packages so far"
done
if ! wait "$pid"; then
  echo "kubelab build failed:" >&2
  grep -v '^[a-z0-9./_-]*$' "$log" | tail -40 >&2
  exit 1
fi
mv "$out.tmp" "$out"
echo "built kubelab in $(( $(date +%s) - start ))s: $("$out" kube-apiserver --version)"
