#!/usr/bin/env bash
# The one command that installs what is missing, builds everything and runs
# every test: format check, host build with gcc (AddressSanitizer +
# UndefinedBehaviorSanitizer) and its tests, a warning-free clang build, the
# Cortex-M4 cross build with its size table, the symbol checks, and a bounded
# libFuzzer run of every harness.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

step() { printf '\n== %s\n' "$*"; }

step "dependencies"
scripts/deps.sh

step "format (clang-format, .clang-format)"
scripts/check-format.sh

step "host build (gcc, ASan + UBSan)"
cmake -S . -B build/gcc -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/gcc -j "$jobs" -- --no-print-directory >/dev/null

step "host build (clang, warnings as errors)"
# Its tests are not run, so the planted-bug programs (the gcc tree's tests) are left out.
cmake -S . -B build/clang -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOTA_MUTANTS=OFF >/dev/null
cmake --build build/clang -j "$jobs" -- --no-print-directory >/dev/null

step "Cortex-M4 build (arm-none-eabi-gcc -Os -mthumb -mcpu=cortex-m4)"
cmake -S . -B build/cortex-m4 -DCMAKE_TOOLCHAIN_FILE="$root/cmake/arm-none-eabi.cmake" \
    -DCMAKE_BUILD_TYPE=MinSizeRel >/dev/null
cmake --build build/cortex-m4 -j "$jobs" -- --no-print-directory >/dev/null
scripts/size-table.sh build/cortex-m4
scripts/check-size-budget.sh build/cortex-m4
cmake --build build/cortex-m4 --target ota_agent_logging -- --no-print-directory >/dev/null
arm-none-eabi-size -t build/cortex-m4/agent/libota_agent_logging.a | tail -1 |
    awk '{printf "agent with logging compiled in (OTA_LOG_LEVEL=3): %d bytes of code\n", $1}'

step "exported symbols carry the ota_ prefix"
scripts/check-symbols.sh build/cortex-m4

step "fuzzing (libFuzzer, ASan + UBSan): on-flash formats 20 s each, the agent's parsers 60 s each"
scripts/fuzz.sh 20 60

step "tests (ctest)"
cd build/gcc
status=0
ctest --output-on-failure -j "$jobs" || status=$?
grep -hE '^conformance:|^power_sweep |^mutant |^agent resume sweep:|^streams load|^streams share|^cancel sweep:|^config sizes:|^scanner vs cJSON:' \
    Testing/Temporary/LastTest.log || true
# The power-loss sweep runs as one test per device on flash, each ending with
# "power-loss sweep: 1 devices, N operations ..., N scenarios (...), N failures";
# one line sums them, in the same words.
grep -hE '^power-loss sweep: [0-9]+ devices' Testing/Temporary/LastTest.log |
    awk '{ line = $0; gsub(/[^0-9]+/, " ", line); n = split(line, v, " ")
           for (i = 1; i <= n; i++) sum[i] += v[i]; fields = n }
         END { if (fields == 8)
                 printf "power-loss sweep: %d devices, %d operations in the lifecycles, %d scenarios (%d with a second cut during recovery, %d read errors at boot, %d progress-store cuts, %d cuts during downloads then resumed), %d failures\n",
                        sum[1], sum[2], sum[3], sum[4], sum[5], sum[6], sum[7], sum[8] }'
# Every security test prints "security: <name>: attacks=N refused=N honest_answered=N
# updates_lost=N"; one line sums them.
grep -hE '^security: [^:]+: attacks=' Testing/Temporary/LastTest.log |
    awk '{ for (i = 3; i <= NF; i++) { split($i, kv, "="); sum[kv[1]] += kv[2] } n++ }
         END { printf "security: %d tests: attacks=%d refused=%d served within the attacker'"'"'s budget=%d honest_answered=%d updates_lost=%d\n",
                      n, sum["attacks"], sum["refused"], sum["within_budget"], sum["honest_answered"], sum["updates_lost"] }'
exit $status
