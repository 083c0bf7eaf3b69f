#!/usr/bin/env bash
# Prints text/data/bss per object file and totals for the Cortex-M4 build.
# Usage: scripts/size-table.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: size-table.sh BUILD_DIR}
mapfile -t objs < <(find "$build" -name '*.c.obj' -o -name '*.c.o' | sort)
[ ${#objs[@]} -gt 0 ] || { echo "error: no object files under $build" >&2; exit 1; }
printf '%-28s %-24s %8s %6s %6s\n' "part" "file" "text" "data" "bss"
arm-none-eabi-size "${objs[@]}" | tail -n +2 | while read -r text data bss _dec _hex file; do
    part=$(echo "$file" | sed -E 's#.*/CMakeFiles/([^/]+)\.dir/.*#\1#')
    printf '%-28s %-24s %8d %6d %6d\n' "$part" "$(basename "$file" | sed -E 's/\.(obj|o)$//')" "$text" "$data" "$bss"
done
arm-none-eabi-size -t "${objs[@]}" | tail -1 | awk '{printf "%-28s %-24s %8d %6d %6d\n", "total", "", $1, $2, $3}'
