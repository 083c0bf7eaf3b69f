#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang and runs each for a bounded time
# (default 20 s, or the first argument) on a copy of its committed seed corpus.
# New inputs the fuzzer finds stay in build/fuzz/corpus/, not in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
# Seconds per harness: the first argument for the on-flash formats (default 20),
# the second for the agent's network parsers (default 60).
flash_seconds=${1:-20}
parser_seconds=${2:-60}
cmake -S . -B build/fuzz -DCMAKE_C_COMPILER=clang -DOTA_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
harnesses=(fuzz_boot_record fuzz_image_header fuzz_flash_metadata fuzz_stream_message fuzz_job_document
    fuzz_mqtt_packet fuzz_http_response)
cmake --build build/fuzz -j "$(nproc 2>/dev/null || echo 2)" --target "${harnesses[@]}" -- --no-print-directory >/dev/null
# Runs one harness for its time; its result line goes to build/fuzz/$h.result.
fuzz_one() {
    local h=$1 seconds corpus log bin seeds runs cov
    case $h in
    fuzz_stream_message | fuzz_job_document | fuzz_mqtt_packet | fuzz_http_response) seconds=$parser_seconds ;;
    *) seconds=$flash_seconds ;;
    esac
    corpus=build/fuzz/corpus/$h
    mkdir -p "$corpus"
    log=build/fuzz/$h.log
    rm -f "build/fuzz/$h.result"
    # A harness may come with a dictionary of its format's tokens.
    local dict=()
    if [ "$h" = fuzz_job_document ]; then
        dict=(-dict=tests/fuzz/$h.dict)
    fi
    # The device MQTT and HTTP clients keep their harness and seeds in their folders.
    bin=build/fuzz/tests/fuzz/$h seeds=tests/fuzz/seeds/$h
    if [ "$h" = fuzz_mqtt_packet ]; then
        bin=build/fuzz/mqtt/$h seeds=mqtt/tests/seeds
    elif [ "$h" = fuzz_http_response ]; then
        bin=build/fuzz/http/$h seeds=http/tests/seeds
    fi
    # The working corpus comes first: libFuzzer adds what it finds to the first folder.
    if ! $bin -max_total_time="$seconds" -print_final_stats=1 \
        ${dict[@]+"${dict[@]}"} -artifact_prefix=build/fuzz/ \
        "$corpus" "$seeds" >"$log" 2>&1; then
        {
            tail -40 "$log"
            echo "error: $h found a failing input: build/fuzz/crash-* (log: $log); rerun it with $bin FILE"
        } >"build/fuzz/$h.failed"
        return 1
    fi
    runs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    cov=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | sed -E 's/.*cov: ([0-9]+).*/\1/' | tail -1 || true)
    echo "fuzz: $h ran $runs inputs in ${seconds}s (coverage $cov edges), no failure" >"build/fuzz/$h.result"
}

# The harnesses run side by side, one per core, the longest first: each gets
# its time on a core of its own, and the step takes about half as long on two.
jobs=$(nproc 2>/dev/null || echo 2)
order=(fuzz_stream_message fuzz_job_document fuzz_mqtt_packet fuzz_http_response
    fuzz_boot_record fuzz_image_header fuzz_flash_metadata)
if [ "${#order[@]}" -ne "${#harnesses[@]}" ]; then
    echo "error: scripts/fuzz.sh: the run order does not name every harness" >&2
    exit 1
fi
rm -f build/fuzz/*.failed
running=0
for h in "${order[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    fuzz_one "$h" &
    running=$((running + 1))
done
wait || true
status=0
for h in "${harnesses[@]}"; do
    if [ -f "build/fuzz/$h.failed" ]; then
        cat "build/fuzz/$h.failed" >&2
        status=1
    elif [ -f "build/fuzz/$h.result" ]; then
        cat "build/fuzz/$h.result"
    else
        echo "error: $h did not run" >&2
        status=1
    fi
done
exit $status
