#!/usr/bin/env bash
# Checks the Cortex-M4 code size (.text + .rodata, logging off) of each device
# library against its budget in scripts/size-budget.txt; fails when one is over.
# A change that raises a budget says why in that file.
# Usage: scripts/check-size-budget.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: check-size-budget.sh BUILD_DIR}
budget_file="$(dirname "$0")/size-budget.txt"
status=0
while read -r lib budget _why; do
    case "$lib" in ''|'#'*) continue ;; esac
    # The library archive holds exactly its current objects (a build folder may
    # keep objects of files since removed).
    archive=$(find "$build" -name "lib$lib.a" | head -1)
    [ -n "$archive" ] || { echo "size budget: no lib$lib.a under $build" >&2; exit 1; }
    size=$(arm-none-eabi-size -t "$archive" | tail -1 | awk '{print $1}')
    if [ "$size" -gt "$budget" ]; then
        echo "size budget: $lib is $size bytes, over its budget of $budget (scripts/size-budget.txt)"
        status=1
    else
        echo "size budget: $lib $size of $budget bytes"
    fi
done < "$budget_file"
exit $status
