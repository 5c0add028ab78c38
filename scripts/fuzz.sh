#!/usr/bin/env bash
# Runs every Fuzz* target in the module for the given time each (default 5s).
# `go test -fuzz` takes one target in one package at a time, hence the loop.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-5s}
n=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for t in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz: $pkg $t ($fuzztime)"
    go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" "$pkg" > /tmp/gatehouse-fuzz.log 2>&1 || { cat /tmp/gatehouse-fuzz.log; exit 1; }
    n=$((n+1))
  done
done
echo "fuzz: $n targets ran for $fuzztime each, no failures"
