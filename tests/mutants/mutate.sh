#!/usr/bin/env bash
# Writes SRC with one sed edit to OUT; fails if the edit changes nothing.
# Usage: mutate.sh NAME SED_EXPRESSION SRC OUT
set -euo pipefail
name=$1 expr=$2 src=$3 out=$4
mkdir -p "$(dirname "$out")"
sed -e "$expr" "$src" > "$out"
if cmp -s "$src" "$out"; then
    echo "error: mutant $name no longer applies to $src; update tests/mutants/CMakeLists.txt" >&2
    rm -f "$out"
    exit 1
fi
