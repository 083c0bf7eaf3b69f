#!/usr/bin/env bash
# otter benchmark, table 4: CPU per KiB on the device, in instructions counted
# by valgrind's callgrind (exact and repeatable, unlike time on a busy machine).
#
# Usage: bench/cpu.sh BUILD_DIR
#   BUILD_DIR is a build without sanitizers, e.g.
#     cmake -S . -B build/cpu-rel -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOTA_SANITIZE=OFF
#   (with clang, add -DCMAKE_C_FLAGS=-gdwarf-4 if valgrind cannot read DWARF 5).
#   The script builds the bench_cpu target there first.
#   BENCH_KEEP=DIR keeps the callgrind files in DIR (for callgrind_annotate).
#
# For each block size (1, 4 and 16 KiB) it runs bench_cpu (bench/bench_cpu.c)
# under callgrind three times, counting only inside one function each time:
#   agent: bench_cpu_measured_download, the download of a 1 MiB signed image
#          through the agent on the simulated flash port, up to the verified
#          file (the table);
#          bench_cpu_measured_start, the agent's start and job document (a
#          note under the table);
#   floor: bench_cpu_measured_floor, memcpy + SHA-256 of the same bytes.
# Each callgrind file is split by the source file of every function:
#   agent            agent/ and the benchmark's MQTT stand-in (bench/)
#   port + flash sim ports/flash/, flashsim/, boot/
#   SHA-256          mbedtls_sha256* and the hashing loop of verify/
#   signature check  the rest of verify/ and mbed TLS: certificate parsing,
#                    key id, ECDSA P-256 verify (a fixed cost per image)
# Functions of libc and common/ (memcpy, memset, memcmp, CRC-32) and mbed
# TLS's mbedtls_platform_zeroize count for the part that called them. The
# parts must add up to callgrind's total.
# Prints a Markdown section; exits non-zero with a message on any failure.
set -euo pipefail

build=${1:?usage: bench/cpu.sh BUILD_DIR}
block_sizes=(1024 4096 16384)
image_kib=1024

die() {
    echo "error: $*" >&2
    exit 1
}

for tool in valgrind callgrind_annotate cmake awk; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
[ -f "$build/CMakeCache.txt" ] || die "$build is not a CMake build folder"
if grep -q '^OTA_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
    die "$build is built with sanitizers; configure with -DOTA_SANITIZE=OFF"
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
case "$build_type" in
RelWithDebInfo) flags=$(sed -n 's/^CMAKE_C_FLAGS_RELWITHDEBINFO:[A-Z]*=//p' "$build/CMakeCache.txt") ;;
Release) flags=$(sed -n 's/^CMAKE_C_FLAGS_RELEASE:[A-Z]*=//p' "$build/CMakeCache.txt") ;;
*) die "$build is a '$build_type' build; configure with -DCMAKE_BUILD_TYPE=RelWithDebInfo" ;;
esac
extra_flags=$(sed -n 's/^CMAKE_C_FLAGS:[A-Z]*=//p' "$build/CMakeCache.txt")
flags="${extra_flags:+$extra_flags }$flags"

cmake --build "$build" --target bench_cpu >"$build/bench_cpu.build.log" 2>&1 ||
    die "building bench_cpu failed; see $build/bench_cpu.build.log"
bin="$build/bench/bench_cpu"
[ -x "$bin" ] || die "$bin was not built"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# callgrind MODE BLOCK FUNCTION: one run counting inside FUNCTION only.
callgrind() {
    local mode=$1 bs=$2 fn=$3
    local out="$work/$mode-$bs-$fn.out" log="$work/$mode-$bs-$fn.log"
    # Bind every symbol at start-up, so no lazy binding is counted.
    if ! LD_BIND_NOW=1 valgrind --tool=callgrind --collect-atstart=no --toggle-collect="$fn" \
        --callgrind-out-file="$out" "$bin" "$mode" "$bs" >"$log" 2>&1; then
        tail -20 "$log" >&2
        if grep -q 'dwarf' "$log"; then
            die "valgrind cannot read the debug information; configure with -DCMAKE_C_FLAGS=-gdwarf-4"
        fi
        die "bench_cpu $mode $bs failed under callgrind"
    fi
    grep -q "^bench_cpu $mode: " "$log" || die "bench_cpu $mode $bs printed no result"
    if [ -n "${BENCH_KEEP:-}" ]; then
        mkdir -p "$BENCH_KEEP"
        cp "$out" "$log" "$BENCH_KEEP/"
    fi
}

# cg_split FILE: prints "total agent bench port sha sig" instructions.
# A shared function's cost (libc, common/) goes to the part of its callers;
# when it calls back into a part (a PLT stub into mbed TLS), that cost is
# taken off its callers' part again, since the callee counts it already.
# Calls above the measured function (main and its callers) cost nothing.
cg_split() {
    awk '
    function category(ob, fl, fn) {
        if (ob ~ /libmbed/) {
            if (fn ~ /^mbedtls_platform_zeroize/) return "shared"
            return fn ~ /^mbedtls_(internal_)?sha256/ ? "sha" : "sig"
        }
        if (fl ~ /\/agent\//) return "agent"
        if (fl ~ /\/bench\//) return "bench"
        if (fl ~ /\/ports\/flash\// || fl ~ /\/flashsim\// || fl ~ /\/boot\// ||
            fl ~ /\/conformance\//) return "port"
        if (fl ~ /\/verify\//) {
            return (fn == "ota_verify_sha256_ecdsa" || fn == "hash_file") ? "sha" : "sig"
        }
        return "shared"
    }
    # "(id) name" defines a compressed name, "(id)" uses it.
    function name(s, table,    id) {
        if (s !~ /^\(/) return s
        id = substr(s, 2, index(s, ")") - 2)
        if (index(s, ") ") > 0) table[id] = substr(s, index(s, ") ") + 2)
        return table[id]
    }
    # The parts that reach shared function k through its callers ("" above main).
    function owner(k,    i, o, c) {
        if (k in owned) return owned[k]
        owned[k] = ""
        o = ""
        for (i = 1; i <= edges; i++) {
            if (eto[i] != k) continue
            c = cat[efrom[i]] != "shared" ? cat[efrom[i]] : owner(efrom[i])
            if (c != "" && index(" " o " ", " " c " ") == 0) o = o == "" ? c : o " " c
        }
        owned[k] = o
        return o
    }
    /^summary:/ || /^totals:/ { total = $2; next }
    /^ob=/ { ob = name(substr($0, 4), obs); next }
    /^fl=/ { fl = name(substr($0, 4), files); next }
    /^(fi|fe)=/ { name(substr($0, 4), files); next }
    /^fn=/ {
        fn = name(substr($0, 4), fns)
        key = ob "|" fn
        c = category(ob, fl, fn)
        if ((key in cat) && cat[key] != c && (cat[key] == "shared" || c == "shared")) {
            printf "function %s is both %s and %s\n", key, cat[key], c > "/dev/stderr"
            bad = 1
        }
        cat[key] = c
        next
    }
    /^cob=/ { cob = name(substr($0, 5), obs); next }
    /^(cfi|cfl)=/ { name(substr($0, 5), files); next }
    /^cfn=/ { cfn = name(substr($0, 5), fns); next }
    /^calls=/ { incall = 1; next }
    /^[0-9+*-]/ {
        cost = NF >= 2 ? $2 : 0
        if (incall) {
            edges++
            efrom[edges] = key
            eto[edges] = (cob != "" ? cob : ob) "|" cfn
            ecost[edges] = cost
            incall = 0; cob = ""; cfn = ""
        } else {
            part[cat[key]] += cost
        }
        next
    }
    END {
        for (i = 1; i <= edges; i++) {
            from = cat[efrom[i]]
            to = (eto[i] in cat) ? cat[eto[i]] : "shared"
            if (from != "shared" && to == "shared") {
                part[from] += ecost[i]
            } else if (from == "shared" && to != "shared" && ecost[i] > 0) {
                o = owner(efrom[i])
                if (o ~ / /) {
                    printf "%s is called from %s and calls %s\n", efrom[i], o, eto[i] > "/dev/stderr"
                    bad = 1
                } else if (o != "") {
                    part[o] -= ecost[i]
                }
            }
        }
        sum = part["agent"] + part["bench"] + part["port"] + part["sha"] + part["sig"]
        if (bad || total == 0 || sum != total) {
            printf "cannot split: total %.0f, parts %.0f\n", total, sum > "/dev/stderr"
            exit 1
        }
        printf "%.0f %.0f %.0f %.0f %.0f %.0f\n", total, part["agent"], part["bench"], \
            part["port"], part["sha"], part["sig"]
    }' "$1"
}

per_kib() { awk -v n="$1" -v k="$image_kib" 'BEGIN { printf "%.0f", n / k }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
millions() { awk -v n="$1" 'BEGIN { printf "%.2f M", n / 1e6 }'; }

rows=()
starts=()
for bs in "${block_sizes[@]}"; do
    callgrind agent "$bs" bench_cpu_measured_download
    callgrind agent "$bs" bench_cpu_measured_start
    callgrind floor "$bs" bench_cpu_measured_floor
    read -r total agent bench port sha sig < <(cg_split "$work/agent-$bs-bench_cpu_measured_download.out") ||
        die "cannot split the agent run at $bs B blocks"
    read -r start _ < <(cg_split "$work/agent-$bs-bench_cpu_measured_start.out") ||
        die "cannot split the start at $bs B blocks"
    read -r floor _ < <(cg_split "$work/floor-$bs-bench_cpu_measured_floor.out") ||
        die "cannot split the floor run at $bs B blocks"
    own=$((agent + bench + port))
    rows+=("$(printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |' "$((bs / 1024)) KiB" \
        "$(per_kib $((agent + bench)))" "$(per_kib "$port")" "$(per_kib "$sha")" \
        "$(millions "$sig")" "$(per_kib "$total")" "$(per_kib "$floor")" \
        "$(ratio "$total" "$floor")" "$(ratio "$own" "$floor")")")
    starts+=("$((bs / 1024)) KiB blocks $(millions "$start")")
    if [ "$bench" -gt $((total / 100)) ]; then
        die "the benchmark's own code is more than 1% of the agent run at $bs B blocks"
    fi
done

mbedtls=$(sed -n 's/.*mbed TLS \([0-9.]*\).*/\1/p' "$work/floor-4096-bench_cpu_measured_floor.log")
echo "## 4. CPU per KiB on the device (valgrind callgrind, instructions)"
echo
compiler=$("$cc" --version | head -1)
cc_info=$(find "$build/CMakeFiles" -maxdepth 2 -name CMakeCCompiler.cmake | head -1)
if [ -n "$cc_info" ]; then
    cc_id=$(sed -n 's/^set(CMAKE_C_COMPILER_ID "\(.*\)")$/\1/p' "$cc_info")
    cc_version=$(sed -n 's/^set(CMAKE_C_COMPILER_VERSION "\(.*\)")$/\1/p' "$cc_info")
    case "$cc_id" in
    GNU) compiler="gcc $cc_version" ;;
    Clang) compiler="clang $cc_version" ;;
    esac
fi
echo "$(valgrind --version), $compiler, $build_type ($flags), mbed TLS ${mbedtls:-?} (SHA-256 and ECDSA P-256)."
echo
echo "| Block | Agent | Port + flash sim | SHA-256 | Signature check (per image) | Total | Floor: memcpy + SHA-256 | Total / floor | (Agent + port) / floor |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
echo "- Instructions per KiB received (instructions / 1024 for the 1 MiB image), counted only inside"
echo "  bench_cpu_measured_download(): the pre-encoded CBOR block messages handed to ota_agent_handle_message()"
echo "  until the port has verified the file (SHA-256 of each block as written, read back from flash; ECDSA P-256) and the agent activates."
echo "  Default window, a checkpoint after every block, flash of 4 KiB sectors with write unit 8."
echo "- Agent = agent/ (parse, bookkeeping, requests, status, checkpoint records) and the benchmark's MQTT stand-in;"
echo "  port + flash sim = ports/flash/, flashsim/, boot/ (block writes, progress log, read-back for the hash);"
echo "  SHA-256 = mbedtls_sha256* over the file; signature check = certificate parsing (once), key id and the"
echo "  ECDSA verify with G's multiples from ROM (verify/ota_p256_comb.c), a fixed cost per image (in instructions,"
echo "  included in Total). memcpy, memset, memcmp and CRC-32 count for their caller. Floor = memcpy of each block"
echo "  into a 1 MiB buffer + mbedtls_sha256_update() on it."
echo "- Not in the table: the start (ota_agent_start() and the job document: parse, create the file, which erases"
start_list=$(printf '%s, ' "${starts[@]}")
echo "  the slot, first checkpoint and request), per image: ${start_list%, }."
