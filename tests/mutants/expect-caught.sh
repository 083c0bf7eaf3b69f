#!/usr/bin/env bash
# Runs a power-loss sweep built with a planted bug and succeeds only if the
# sweep catches it: exit status 1 with at least one FAIL line (a crash or a
# set-up error does not count as caught).
# Usage: expect-caught.sh NAME SWEEP_BINARY GEOMETRY
set -uo pipefail
name=$1 sweep=$2 geometry=$3
out=$("$sweep" "$geometry" 2>&1)
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
