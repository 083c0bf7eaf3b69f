#!/usr/bin/env bash
# CTest demo_script: runs scripts/demo.sh on binaries already built (no
# packages, no build), with stdout not a terminal, and checks that it exits 0,
# that its summary names 1.1.0 SUCCEEDED and 1.2.0 FAILED with a reason, and
# that the broker, the service and the device it started are gone.
#
#   tests/demo/check_demo.sh [--web] BIN_DIR...   (the folders of otter,
#                     otter-service, otter-device and the otter-fw-* images, and
#                     with --web of otter-web: the demo also starts the console)
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 BIN_DIR..." >&2; exit 2; }
args=()
web=0
if [ "${1:-}" = --web ]; then
    web=1
    args+=(--web)
    shift
fi
for d in "$@"; do
    args+=(--bin-dir "$d")
done

work=$(mktemp -d "${TMPDIR:-/tmp}/otter-demo-test-XXXXXX")
out=$work/output.txt
rc=0
"$root/scripts/demo.sh" "${args[@]}" --dir "$work/run" </dev/null >"$out" 2>&1 || rc=$?
cat "$out"

problems=()
[ "$rc" -eq 0 ] || problems+=("scripts/demo.sh exited with $rc")
grep -qE '^    1\.1\.0 +SUCCEEDED +[0-9]+ ' "$out" || problems+=("no summary row: 1.1.0 SUCCEEDED")
grep -qE '^    1\.2\.0 +FAILED +[0-9]+ ' "$out" || problems+=("no summary row: 1.2.0 FAILED")
grep -qE '^    1\.1\.0 SUCCEEDED: reason "[^"]+"' "$out" || problems+=("no reason for 1.1.0")
grep -qE '^    1\.2\.0 FAILED: reason "[^"]+"' "$out" || problems+=("no reason for 1.2.0")
grep -qE '^==> booting the device on 1\.0\.0' "$out" || problems+=("no step line for the boot")
if grep -q $'\033' "$out"; then
    problems+=("terminal escapes in output that is not a terminal")
fi
# Every process it started has ended.
while read -r pid; do
    if kill -0 "$pid" 2>/dev/null; then
        problems+=("process $pid it started still runs: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)")
    fi
done < <(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' "$out")
# The firmware the device ran last (its pid is in the status file) has ended too.
fw_pid=$(sed -n 's/^pid=\([0-9]*\)$/\1/p' "$work/run/dev1.flash.status" 2>/dev/null)
if [ -n "$fw_pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$fw_pid/cmdline" | grep -q 'firmware-[AB] '; then
    problems+=("the firmware (pid $fw_pid) still runs")
fi
[ "$(grep -c '(pid [0-9]*)' "$out")" -eq $((3 + web)) ] ||
    problems+=("expected the pids of the broker, service, device (and otter-web with --web)")
if [ "$web" = 1 ]; then
    grep -qE 'web console at http://127\.0\.0\.1:[0-9]+/$' "$out" || problems+=("no web console address")
    grep -qE 'log in as admin, password [A-Za-z0-9]{8,}' "$out" || problems+=("no console password")
    [ -s "$work/run/logs/web.log" ] || problems+=("no logs/web.log")
fi
for f in broker.log service.log device.log cli.log; do
    [ -s "$work/run/logs/$f" ] || problems+=("no logs/$f")
done

if [ ${#problems[@]} -gt 0 ]; then
    printf 'demo_script: %s\n' "${problems[@]}" >&2
    echo "demo_script: kept $work" >&2
    exit 1
fi
rm -rf "$work"
echo "demo_script: passed"
