#!/usr/bin/env bash
# The benchmark command: installs what is missing, builds the benchmark
# programs without sanitizers (RelWithDebInfo) into build/bench, runs the seven
# benchmarks and writes their tables, with a description of this machine, the
# commit, the load and each section's duration, to docs/BENCHMARKS.md (or the
# file given with --out). Every comparison in a table is a ratio measured in
# the same run, so the tables stay meaningful on a shared, noisy machine; every
# target the project sets is stated met or missed (by the program, or here
# from its table for sections 2, 3 and 4).
#
#   1. one device, one 1 MiB update, against the broker's own limit (bench_transfer)
#   2. a fleet of 100, 500 and 1000 devices, one and two service instances (bench_fleet)
#   3. footprint on Cortex-M4 (bench/footprint.sh)
#   4. instructions per KiB on the device, valgrind callgrind (bench/cpu.sh)
#   5. one 1 MiB update over emulated links (RTT x rate, a lossy row), otter's
#      defaults beside one 4 KiB block per round trip (bench_link, link_emu)
#   6. one 1 MiB update over the HTTP data plane beside MQTT streams, on loopback
#      and over emulated links (bench_http)
#   7. a fleet of 100 devices on a federation of two brokers, one, two and three
#      service instances (bench_fleet --federate)
#
# Usage: scripts/bench.sh [--out FILE] [--only 1,2,3,4,5,6,7]
# With --only, the other sections come from their last run in build/bench/report.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/docs/BENCHMARKS.md"
only="1,2,3,4,5,6,7"
while [ $# -gt 0 ]; do
    case "$1" in
    --out) out=$(realpath -m "${2:?--out takes a file}"); shift 2 ;;
    --only) only=${2:?--only takes a list such as 1,3}; shift 2 ;;
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: scripts/bench.sh [--out FILE] [--only 1,2,3,4,5,6,7]" >&2; exit 2 ;;
    esac
done
wants() { [[ ",$only," == *",$1,"* ]]; }

step() { printf '\n== %s\n' "$*" >&2; }

step "dependencies"
scripts/deps.sh >&2

step "build (RelWithDebInfo, no sanitizers) into build/bench"
total_start=$SECONDS
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOTA_SANITIZE=OFF >/dev/null
# Only what the benchmarks run (with the otter CLI, otter-service and otter-http
# they depend on); bench/cpu.sh and bench/footprint.sh build their own.
cmake --build build/bench -j "$(nproc)" --target bench_transfer bench_fleet bench_link bench_http \
    -- --no-print-directory >/dev/null
build_s=$((SECONDS - total_start))
if ! grep -q '^OTA_SANITIZE:BOOL=OFF' build/bench/CMakeCache.txt; then
    echo "error: build/bench has sanitizers on; remove build/bench and run again" >&2
    exit 1
fi

sections=build/bench/report
mkdir -p "$sections"
commit=$(git describe --always --dirty 2>/dev/null || echo unknown)
load() { cut -d' ' -f1 /proc/loadavg; }
# run NUMBER COMMAND...: one section, kept in build/bench/report/N.md, with
# N.meta: the commit, the date, the load average before it and its duration.
run() {
    local n=$1
    shift
    step "benchmark $n: $*"
    local start=$SECONDS before
    before=$(load)
    "$@" >"$sections/$n.md.new"
    mv "$sections/$n.md.new" "$sections/$n.md"
    printf '%s %s %s %s\n' "$commit" "$(date -u +%Y-%m-%dT%H:%MZ)" "$before" \
        "$((SECONDS - start))" >"$sections/$n.meta"
    cat "$sections/$n.md" >&2
    echo "(benchmark $n took $((SECONDS - start)) s)" >&2
}
wants 1 && run 1 build/bench/bench/bench_transfer --reps 9
wants 2 && run 2 build/bench/bench/bench_fleet
# 3 and 4 count bytes and instructions, which do not depend on what else runs,
# so they run side by side; no timed benchmark runs meanwhile.
if wants 3 && wants 4; then
    trap wait EXIT # never leave it running, also when 4 fails
    run 3 bench/footprint.sh build/bench &
    footprint=$!
    run 4 bench/cpu.sh build/bench
    wait "$footprint"
else
    wants 3 && run 3 bench/footprint.sh build/bench
    wants 4 && run 4 bench/cpu.sh build/bench
fi
# 5: one run per cell; the one-block cells run side by side (bench_link says
# how busy the cores were and compares one cell run alone). The link
# emulator's thread runs real-time, so the links keep their shape on a busy
# machine, but the device, broker and service share the cores.
wants 5 && run 5 build/bench/bench/bench_link
# 6: medians of 3 runs per plane and row, the planes alternating.
wants 6 && run 6 build/bench/bench/bench_http
# 7: the federation (two brokers, both here) with 1, 2 and 3 instances, beside 2's one broker.
wants 7 && run 7 build/bench/bench/bench_fleet --federate --devices 100 --instances 1,2,3
total_s=$((SECONDS - total_start))

# Targets the project sets, for sections whose program does not state them:
# met or missed, computed from the section's own table, and where the time goes.
targets() { # NUMBER: headline lines
    local f="$sections/$1.md"
    case "$1" in
    2)
        grep -q '^headline:.*1000.*\(met\|missed\)' "$f" && return 0
        local note
        note=$(grep -m1 '^- 1000 devices, 1 instance:' "$f" || true)
        if [ -z "$note" ]; then
            echo "headline: fleet of 1000 devices from one instance: not in this run (target 0 timeouts and 0 duplicate blocks)"
            return 0
        fi
        local t d kib
        kib=$(sed -n 's/^## 2\..* \([0-9]*\) KiB image.*/\1/p' "$f")
        t=$(sed -n 's/.*; \([0-9]*\) timeouts, .*/\1/p' <<<"$note")
        d=$(sed -n 's/.* timeouts, \([0-9]*\) duplicate blocks.*/\1/p' <<<"$note")
        if [ "$t" = 0 ] && [ "$d" = 0 ]; then
            echo "headline: fleet of 1000 devices x ${kib:-?} KiB from one instance: $t timeouts, $d duplicate blocks (target 0 and 0: met)"
        else
            echo "headline: fleet of 1000 devices x ${kib:-?} KiB from one instance: $t timeouts, $d duplicate blocks (target 0 and 0: missed; where the time goes:" \
                "$(sed -n 's/.*\(medians: [^;]*\);.*/\1/p' <<<"$note");" \
                "$(sed -n "s/.*\(the devices' [0-9]* loops\{0,1\} spent [^;]*; longest busy turn [^;]*; [0-9]* timeouts with bytes unread in the device's socket\);.*/\\1/p" <<<"$note"))"
        fi
        ;;
    3)
        grep -q '^headline:.*\(met\|missed\)' "$f" && return 0
        awk -F'|' 'function n(x) { gsub(/[ ,]/, "", x); return x + 0 }
        $2 ~ /^ *agent *$/ && $3 !~ /subtotal|as built/ { file[++k] = $3; size[k] = n($4) + n($5) }
        $2 ~ /^ *agent *$/ && $3 ~ /as built/ { total = n($4) + n($5) }
        END {
            if (total == 0) { print "headline: agent size: no agent as built in this run (goal 8,192 bytes)"; exit }
            printf "headline: the agent on Cortex-M4 (-Os, code and data): %d bytes (goal 8,192: %s", total, (total <= 8192 ? "met" : "missed")
            if (total > 8192) {
                printf "; where the bytes are:"
                for (j = 1; j <= 3; j++) {
                    b = 0
                    for (i = 1; i <= k; i++) if (size[i] > size[b]) b = i
                    if (b == 0) break
                    f = file[b]; gsub(/^ +| +$/, "", f)
                    printf "%s %s %d", (j > 1 ? "," : ""), f, size[b]; size[b] = -1
                }
            }
            printf ")\n"
        }' "$f"
        ;;
    4)
        grep -q '^headline:.*\(met\|missed\)' "$f" && return 0
        awk -F'|' '$2 ~ /^ *4 KiB *$/ {
            agent = $3; port = $4; sha = $5; sig = $6; total = $7; floor = $8; r = $9
            sub(/ *M */, "", sig); sig = sig * 1e6 / 1024
            printf "headline: device CPU at 4 KiB blocks: %.2fx memcpy + SHA-256 of the same bytes (target 1.25x: %s", r, (r + 0 <= 1.25 ? "met" : "missed")
            if (r + 0 > 1.25)
                printf "; where it goes, per KiB against the floor: SHA-256 %.2fx, the signature check %.2fx, the agent %.2fx, the port and flash simulation %.2fx", sha / floor, sig / floor, agent / floor, port / floor
            printf ")\n"; found = 1
        } END { if (!found) print "headline: device CPU: no 4 KiB row in this run (target 1.25x)" }' "$f"
        ;;
    esac
}
for n in 2 3 4; do
    if [ -f "$sections/$n.md" ]; then
        targets "$n" >"$sections/$n.targets"
    fi
done

step "report: $out"
cpu=$( (lscpu 2>/dev/null || true) | sed -n 's/^Model name: *//p' | head -1)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
os=$(. /etc/os-release && echo "$PRETTY_NAME")
mosq=$(dpkg-query -W -f='${Version}' mosquitto 2>/dev/null || echo unknown)
mbed=$(dpkg-query -W -f='${Version}' libmbedtls-dev 2>/dev/null || echo unknown)
{
    echo "# otter benchmarks"
    echo
    echo "Produced by \`scripts/bench.sh\` on $(date -u +%Y-%m-%d) at commit" \
        "\`$commit\` (each section's own run below). Every ratio compares two things measured" \
        "in the same run on the same machine."
    echo
    echo "| section | commit | started (UTC) | load average before | took |"
    echo "|---|---|---|---:|---:|"
    for n in 1 2 3 4 5 6 7; do
        if [ -f "$sections/$n.meta" ]; then
            read -r c d l t <"$sections/$n.meta"
            echo "| $n | \`$c\` | $d | $l | $((t / 60)) min $((t % 60)) s |"
        fi
    done
    if [ "$only" = "1,2,3,4,5,6,7" ]; then
        echo
        echo "All seven in one run of $((total_s / 60)) min $((total_s % 60)) s, of which the build" \
            "took $((build_s / 60)) min $((build_s % 60)) s (3 and 4, counts of bytes and" \
            "instructions, ran side by side)."
    fi
    echo
    echo "## The machine"
    echo
    echo "- CPU: ${cpu:-unknown}, $(nproc) cores available; memory $mem"
    echo "- OS: $os, kernel $(uname -r)"
    echo "- Compilers: $(gcc --version | head -1); $(arm-none-eabi-gcc --version | head -1)"
    echo "- Mosquitto $mosq (broker and client library), mbed TLS $mbed," \
        "$(valgrind --version 2>/dev/null || echo 'valgrind not installed')"
    echo "- The broker, the service, and the simulated devices all run on this one machine" \
        "and share its cores; network traffic is loopback only."
    echo
    echo "## Headlines"
    echo
    for n in 1 2 3 4 5 6 7; do
        if [ -f "$sections/$n.md" ]; then
            sed -n 's/^headline: /- /p' "$sections/$n.md"
            if [ -f "$sections/$n.targets" ]; then
                sed -n 's/^headline: /- /p' "$sections/$n.targets"
            fi
        fi
    done
    for n in 1 2 3 4 5 6 7; do
        if [ -f "$sections/$n.md" ]; then
            echo
            grep -v '^headline: ' "$sections/$n.md"
            if [ -s "$sections/$n.targets" ]; then
                echo
                sed 's/^headline: /- Target (stated by scripts\/bench.sh from the table above): /' \
                    "$sections/$n.targets"
            fi
        fi
    done
} >"$out.new"
mv "$out.new" "$out"
echo "wrote $out" >&2
