#!/usr/bin/env bash
# Runs a power-loss sweep built with a planted bug and succeeds only if the
# sweep catches it: exit status 1 with at least one FAIL line (a crash or a
# set-up error does not count as caught). The sweep stops at its first failure:
# one is enough to catch the bug. FAMILY, the family of scenarios expected to
# catch it (lifecycle, progress, resume/1024, resume/1536, resume/1001), runs first; the others run after it.
# Usage: expect-caught.sh NAME SWEEP_BINARY GEOMETRY FAMILY
set -uo pipefail
name=$1 sweep=$2 geometry=$3 family=$4
out=$("$sweep" --first-failure="$family" "$geometry" 2>&1)
status=$?
fails=$(printf '%s\n' "$out" | grep -c '^FAIL ' || true)
summary=$(printf '%s\n' "$out" | grep '^power-loss sweep:' || true)
if [ "$status" -eq 1 ] && [ "$fails" -gt 0 ]; then
    echo "mutant $name: caught by the sweep on $geometry (${summary#power-loss sweep: })"
    printf '%s\n' "$out" | grep -m1 '^FAIL '
    exit 0
fi
echo "mutant $name: NOT caught (exit $status, $fails FAIL lines)"
printf '%s\n' "$out" | tail -5
exit 1
