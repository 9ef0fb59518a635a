#!/usr/bin/env bash
# Prints the go.mod replace block for k8s.io/kubernetes@$1: every staging module that
# k8s.io/kubernetes replaces with ./staging/src/... is pinned to the published v0.MINOR.PATCH.
# Usage: lab/controlplane/gen-replace.sh v1.36.3
set -euo pipefail
ver=$1
staging="v0.${ver#v1.}"
mod=$(go mod download -json "k8s.io/kubernetes@$ver" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
echo "replace ("
sed -n '/^replace (/,/^)/p' "$mod" | awk -v v="$staging" '/=> \.\/staging/ {printf "\t%s => %s %s\n", $1, $1, v}'
echo ")"
