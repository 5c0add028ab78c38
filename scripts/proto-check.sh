#!/usr/bin/env bash
# Regenerates the admin API's Go code into a temporary directory and fails if
# it differs from what is committed (a .proto edited without `make proto`).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go tool buf generate --output "$tmp"
status=0
while IFS= read -r f; do
  rel=${f#"$tmp"/}
  if ! cmp -s "$f" "$rel"; then
    echo "stale generated code: $rel (run 'make proto' and commit)"
    diff -u "$rel" "$f" | head -20 || true
    status=1
  fi
done < <(find "$tmp" -name '*.go')
committed=$(git ls-files 'proto/*.pb.go' 2>/dev/null | wc -l)
generated=$(find "$tmp" -name '*.go' | wc -l)
if [ "$committed" -ne "$generated" ] && [ "$committed" -ne 0 ]; then
  echo "generated $generated files but $committed are committed"; status=1
fi
[ $status -eq 0 ] && echo "proto: generated code is up to date"
exit $status
