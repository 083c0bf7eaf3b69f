#!/usr/bin/env bash
# Fails if any C file differs from what clang-format makes of it.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
[ ${#files[@]} -gt 0 ] || exit 0
if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/otter-format.$$; then
    head -40 /tmp/otter-format.$$ >&2
    rm -f /tmp/otter-format.$$
    echo "error: files are not formatted; run: clang-format -i \$(git ls-files '*.c' '*.h')" >&2
    exit 1
fi
rm -f /tmp/otter-format.$$
echo "formatted: ${#files[@]} files"
