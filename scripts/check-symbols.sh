#!/usr/bin/env bash
# Fails if a device library exports a symbol without the ota_/OTA_ prefix.
# Usage: scripts/check-symbols.sh CROSS_BUILD_DIR
set -euo pipefail
build=${1:?usage: check-symbols.sh BUILD_DIR}
mapfile -t libs < <(find "$build" -name 'libota_*.a' | sort)
[ ${#libs[@]} -gt 0 ] || { echo "error: no device libraries under $build" >&2; exit 1; }
bad=$(arm-none-eabi-nm -g --defined-only "${libs[@]}" | awk 'NF == 3 {print $3}' | grep -vE '^(ota_|OTA_)' || true)
if [ -n "$bad" ]; then
    echo "error: exported symbols without the ota_ prefix:" >&2
    echo "$bad" >&2
    exit 1
fi
echo "checked ${#libs[@]} libraries: every exported symbol starts with ota_"

# Device code keeps no state in static RAM: everything lives in caller-owned
# structs, so nothing but the flash can survive a reset.
ram=$(arm-none-eabi-nm --defined-only "${libs[@]}" | awk 'NF == 3 && $2 ~ /^[BbDdCc]$/ {print $3}' || true)
if [ -n "$ram" ]; then
    echo "error: device libraries keep state in static RAM:" >&2
    echo "$ram" >&2
    exit 1
fi
echo "no device library keeps state in static RAM (.data/.bss symbols: none)"
