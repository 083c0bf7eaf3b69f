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
    fuzz_mqtt_packet)
cmake --build build/fuzz -j "$(nproc 2>/dev/null || echo 2)" --target "${harnesses[@]}" -- --no-print-directory >/dev/null
for h in "${harnesses[@]}"; do
    case $h in
    fuzz_stream_message | fuzz_job_document | fuzz_mqtt_packet) seconds=$parser_seconds ;;
    *) seconds=$flash_seconds ;;
    esac
    corpus=build/fuzz/corpus/$h
    mkdir -p "$corpus"
    log=build/fuzz/$h.log
    # A harness may come with a dictionary of its format's tokens.
    dict=()
    if [ "$h" = fuzz_job_document ]; then
        dict=(-dict=tests/fuzz/$h.dict)
    fi
    # The device MQTT client keeps its harness and seeds in its own folder.
    bin=build/fuzz/tests/fuzz/$h seeds=tests/fuzz/seeds/$h
    if [ "$h" = fuzz_mqtt_packet ]; then
        bin=build/fuzz/mqtt/$h seeds=mqtt/tests/seeds
    fi
    # The working corpus comes first: libFuzzer adds what it finds to the first folder.
    if ! $bin -max_total_time="$seconds" -print_final_stats=1 \
        ${dict[@]+"${dict[@]}"} -artifact_prefix=build/fuzz/ \
        "$corpus" "$seeds" >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "error: $h found a failing input: build/fuzz/crash-* (log: $log); rerun it with $bin FILE" >&2
        exit 1
    fi
    runs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    cov=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | sed -E 's/.*cov: ([0-9]+).*/\1/' | tail -1 || true)
    echo "fuzz: $h ran $runs inputs in ${seconds}s (coverage $cov edges), no failure"
done
