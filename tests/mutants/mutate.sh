#!/usr/bin/env bash
# Writes SRC with sed edits to OUT; fails if the edits change nothing.
# Usage: mutate.sh NAME SRC OUT SED_EXPRESSION...
set -euo pipefail
name=$1 src=$2 out=$3
shift 3
args=()
for expr in "$@"; do
    args+=(-e "$expr")
done
mkdir -p "$(dirname "$out")"
sed "${args[@]}" "$src" > "$out"
if cmp -s "$src" "$out"; then
    echo "error: mutant $name no longer applies to $src; update tests/mutants/CMakeLists.txt" >&2
    rm -f "$out"
    exit 1
fi
