#!/usr/bin/env bash
# Runs the conformance suite built with a planted contract break and succeeds
# only if at least one case fails (a FAIL line naming the case; a crash or a
# set-up error does not count as caught).
# Usage: expect-failed-case.sh NAME SUITE_BINARY PORT
set -uo pipefail
name=$1 suite=$2 port=$3
out=$("$suite" "$port" 2>&1)
status=$?
fails=$(printf '%s\n' "$out" | grep -c '^FAIL conformance ' || true)
summary=$(printf '%s\n' "$out" | grep '^conformance:' || true)
if [ "$status" -eq 1 ] && [ "$fails" -gt 0 ]; then
    echo "mutant $name: caught by $fails of the suite's cases on $port (${summary#conformance: })"
    printf '%s\n' "$out" | grep -m1 '^FAIL conformance '
    exit 0
fi
echo "mutant $name: NOT caught (exit $status, $fails failed cases)"
printf '%s\n' "$out" | tail -5
exit 1
