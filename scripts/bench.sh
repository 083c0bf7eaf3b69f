#!/usr/bin/env bash
# The benchmark command: installs what is missing, builds without sanitizers
# (RelWithDebInfo) into build/bench, runs the five benchmarks and writes their
# tables, with a description of this machine, to docs/BENCHMARKS.md (or the
# file given with --out). Every comparison in a table is a ratio measured in
# the same run, so the tables stay meaningful on a shared, noisy machine.
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
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: scripts/bench.sh [--out FILE] [--only 1,2,3,4,5,6,7]" >&2; exit 2 ;;
    esac
done
wants() { [[ ",$only," == *",$1,"* ]]; }

step() { printf '\n== %s\n' "$*" >&2; }

step "dependencies"
scripts/deps.sh >&2

step "build (RelWithDebInfo, no sanitizers) into build/bench"
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOTA_SANITIZE=OFF >/dev/null
cmake --build build/bench -j "$(nproc)" -- --no-print-directory >/dev/null
if ! grep -q '^OTA_SANITIZE:BOOL=OFF' build/bench/CMakeCache.txt; then
    echo "error: build/bench has sanitizers on; remove build/bench and run again" >&2
    exit 1
fi

sections=build/bench/report
mkdir -p "$sections"
run() { # NUMBER COMMAND...: one section, kept in build/bench/report/N.md
    local n=$1
    shift
    step "benchmark $n: $*"
    local start=$SECONDS
    "$@" >"$sections/$n.md.new"
    mv "$sections/$n.md.new" "$sections/$n.md"
    cat "$sections/$n.md" >&2
    echo "(benchmark $n took $((SECONDS - start)) s)" >&2
}
wants 1 && run 1 build/bench/bench/bench_transfer --reps 9
wants 2 && run 2 build/bench/bench/bench_fleet
wants 3 && run 3 bench/footprint.sh build/bench
wants 4 && run 4 bench/cpu.sh build/bench
# 5: one run per cell (the one-block configuration takes minutes at 300 ms);
# the link emulator's thread runs real-time, so the links keep their shape on
# a busy machine, but the device, broker and service share the cores.
wants 5 && run 5 build/bench/bench/bench_link
# 6: medians of 3 runs per plane and row, the planes alternating.
wants 6 && run 6 build/bench/bench/bench_http
# 7: the federation (two brokers, both here) with 1, 2 and 3 instances, beside 2's one broker.
wants 7 && run 7 build/bench/bench/bench_fleet --federate --devices 100 --instances 1,2,3

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
        "\`$(git describe --always --dirty 2>/dev/null || echo unknown)\`. Every ratio compares" \
        "two things measured in the same run on the same machine."
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
        [ -f "$sections/$n.md" ] && sed -n 's/^headline: /- /p' "$sections/$n.md"
    done
    for n in 1 2 3 4 5 6 7; do
        if [ -f "$sections/$n.md" ]; then
            echo
            grep -v '^headline: ' "$sections/$n.md"
        fi
    done
} >"$out.new"
mv "$out.new" "$out"
echo "wrote $out" >&2
