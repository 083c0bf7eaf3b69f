#!/usr/bin/env bash
# otter benchmark, table 3: footprint of the device code on Cortex-M4
# (arm-none-eabi-gcc -Os -mthumb -mcpu=cortex-m4, MinSizeRel with
# cmake/arm-none-eabi.cmake). Prints a Markdown section to stdout:
#   1. code and static data per object file of the agent, the bootloader and
#      verification without mbed TLS (arm-none-eabi-size);
#   2. verification with mbed TLS as a device links it: a firmware of
#      ota_verify.c, mbed TLS and newlib-nano (bench/footprint/verify_main.c)
#      linked with --gc-sections, the bytes kept per input file read from the
#      map file; and, for context, all of otter's device code in one image
#      (bench/footprint/device_main.c);
#   3. RAM: the caller-allocated structs (bench/footprint/ram.c, sizes from
#      arm-none-eabi-nm -S) and the deepest stack paths, added up over the
#      call graph that gcc writes with -fstack-usage -fcallgraph-info=su.
#
# Usage: bench/footprint.sh BUILD_ROOT
#   e.g. bench/footprint.sh build/bench-footprint
#   It creates, beneath BUILD_ROOT:
#     cortex-m4/           the repository's Cortex-M4 build (as scripts/test.sh
#                          makes it, plus the stack-usage dumps);
#     mbedtls-src/         Debian's mbed TLS source package, of the version of
#                          the installed libmbedtls-dev, and its unpacked tree;
#     mbedtls-cortex-m4/   the firmware project bench/footprint/ with mbed TLS
#                          configured by bench/footprint/mbedtls_device_config.h.
#   The first run downloads the source package with apt-get, through deb-src
#   lists of its own (the system's apt configuration is left alone) and checks
#   it against its .dsc; later runs reuse it and need no network. The builds
#   are incremental.
# Needs the packages of scripts/deps.sh. Exits non-zero with a message on
# stderr when anything fails.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 1 ] || {
    echo "usage: bench/footprint.sh BUILD_ROOT" >&2
    exit 2
}
jobs=$(nproc 2>/dev/null || echo 2)

die() {
    echo "error: $*" >&2
    exit 1
}

# Runs a command with its output in a log; on failure shows the log's end.
logged() {
    local log=$1
    shift
    if ! "$@" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "'$*' failed; see $log"
    fi
}

for tool in arm-none-eabi-gcc arm-none-eabi-size arm-none-eabi-nm arm-none-eabi-readelf cmake \
    dpkg-query apt-get tar sha256sum awk sed sort; do
    command -v "$tool" >/dev/null || die "$tool not found (run scripts/deps.sh)"
done
[ -f "$(arm-none-eabi-gcc -mthumb -mcpu=cortex-m4 --specs=nano.specs -print-file-name=libc_nano.a)" ] ||
    die "newlib-nano for arm-none-eabi not found (run scripts/deps.sh)"
[ -f /usr/include/jsmn.h ] || die "jsmn.h not found (run scripts/deps.sh)"

mkdir -p "$1"
out=$(cd "$1" && pwd)
toolchain="$root/cmake/arm-none-eabi.cmake"
# Stack usage and the call graph: dumps only, the code is the same.
stack_flags="-fstack-usage -fcallgraph-info=su"

# Configures and builds a Cortex-M4 project. CFLAGS sets the flags only when
# a build folder is new, so a folder configured without them starts anew.
cross_build() {
    local src=$1 dir=$2
    shift 2
    if [ -f "$dir/CMakeCache.txt" ] && ! grep -q -- "-fcallgraph-info=su" "$dir/CMakeCache.txt"; then
        rm -rf "$dir"
    fi
    CFLAGS="$stack_flags" logged "$out/$(basename "$dir").configure.log" \
        cmake -S "$src" -B "$dir" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
        -DCMAKE_BUILD_TYPE=MinSizeRel "$@"
    logged "$out/$(basename "$dir").build.log" \
        cmake --build "$dir" -j "$jobs" -- --no-print-directory
}

# ---- mbed TLS source: Debian's source package of the installed headers.
tree=$("$root/scripts/mbedtls-source.sh" "$out/mbedtls-src")
mbedtls_version=$(dpkg-query -W -f='${Version}' libmbedtls-dev)
src_version=$(sed -n 's/^#define MBEDTLS_VERSION_STRING *"\(.*\)"/\1/p' "$tree/include/mbedtls/version.h")

# ---- Builds.
cm4="$out/cortex-m4"
fw="$out/mbedtls-cortex-m4"
cross_build "$root" "$cm4"
cross_build "$root/bench/footprint" "$fw" -DOTA_MBEDTLS_SOURCE_DIR="$tree"

# ---- Formatting.
num() { echo "$1" | sed -E ':a; s/^(-?[0-9]+)([0-9]{3})/\1,\2/; ta'; }
row() { printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$(num "$3")" "$(num "$4")" "$(num "$5")"; }
table_head() {
    echo "| part | file | code | data | bss |"
    echo "|---|---|---:|---:|---:|"
}

# ---- 1. Object files.
# Prints "text data bss" of one object file of the Cortex-M4 build.
obj_size() {
    local obj="$cm4/$1"
    [ -f "$obj" ] || die "$obj was not built"
    arm-none-eabi-size "$obj" | awk 'NR == 2 { print $1, $2, $3 }'
}

# Prints the rows of one part and its subtotal: part then "source object" pairs.
object_rows() {
    local part=$1 st=0 sd=0 sb=0 n=0 t d b
    shift
    while [ $# -gt 0 ]; do
        read -r t d b < <(obj_size "$2")
        row "$part" "$1" "$t" "$d" "$b"
        st=$((st + t)) sd=$((sd + d)) sb=$((sb + b)) n=$((n + 1))
        shift 2
    done
    [ "$n" -eq 1 ] || row "$part" "**subtotal**" "$st" "$sd" "$sb"
}

# The agent's modules, each compiled alone (ota_agent_parts), from its file list (common's
# files are counted with their parts); the agent as built is one unit that includes them
# (agent/ota_agent_unit.c, the "src" file of the list).
agent_objs=()
agent_unit=()
agent_http_unit=()
while read -r kind path; do
    [[ $path == agent/* ]] || continue
    case "$kind" in
    part) agent_objs+=("$path" "agent/CMakeFiles/ota_agent_parts.dir/${path#agent/}.obj") ;;
    src)
        agent_unit+=("$path" "agent/CMakeFiles/ota_agent.dir/${path#agent/}.obj")
        # The agent with the HTTP data plane (OTA_HTTP_PLANE 1, ota_agent_http).
        agent_http_unit+=("$path" "agent/CMakeFiles/ota_agent_http.dir/${path#agent/}.obj")
        ;;
    esac
done <"$root/agent/otter_agent_files.txt"
[ ${#agent_unit[@]} -eq 2 ] || die "agent/otter_agent_files.txt names no single agent unit"
http_objs=()
for f in ota_http_url ota_http_response ota_http_client; do
    http_objs+=("http/$f.c" "http/CMakeFiles/ota_http_client.dir/$f.c.obj")
done
boot_objs=()
for f in ota_boot ota_boot_record ota_image_header; do
    boot_objs+=("boot/$f.c" "boot/CMakeFiles/ota_boot.dir/$f.c.obj")
done
boot_objs+=("common/ota_crc32.c" "common/CMakeFiles/ota_common.dir/ota_crc32.c.obj")

# ---- 2. Linked firmware.
# Prints "class<TAB>file<TAB>bytes" for every input section the link kept,
# class being code (.text, .rodata, .ARM.exidx), data or bss after the output
# section it went to; "*fill*" is the linker's alignment padding.
map_bytes() {
    local elf=$1 classes
    classes=$(arm-none-eabi-readelf -SW "$elf" | sed -E -n 's/^ *\[ *[0-9]+\] //p' |
        awk '$7 ~ /A/ { printf "%s=%s ", $1, ($2 == "NOBITS") ? "bss" : ($7 ~ /W/ ? "data" : "code") }')
    awk -v classes="$classes" '
        function hex(s,    i, v) {
            s = tolower(s); sub(/^0x/, "", s); v = 0
            for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
            return v
        }
        function add(size, file) {
            if (!(outsec in cls) || size == 0) return
            sub(/^.*\//, "", file)
            bytes[cls[outsec] "\t" file] += size
        }
        BEGIN {
            n = split(classes, c, " ")
            for (i = 1; i <= n; i++) { split(c[i], kv, "="); cls[kv[1]] = kv[2] }
        }
        /^Linker script and memory map/ { inmap = 1; next }
        !inmap { next }
        /^[^ ]/ { outsec = $1; pending = 0; next }
        /^ \*fill\*/ { add(hex($3), "*fill*"); pending = 0; next }
        /^ [^ *]/ {
            pending = 0
            if (NF >= 4 && $2 ~ /^0x/ && $3 ~ /^0x/) add(hex($3), $4)
            else if (NF == 1) pending = 1
            next
        }
        pending && NF >= 3 && $1 ~ /^0x/ && $2 ~ /^0x/ { add(hex($2), $3) }
        { pending = 0 }
        END { for (k in bytes) printf "%s\t%d\n", k, bytes[k] }
    ' "${elf%.elf}.map"
}

# Groups map_bytes by a mapping of file names to rows ("file<TAB>row" lines
# from an awk program given as $2) and prints "row code data bss" lines;
# the ELF's totals less the map's sums become the row "linker" (merged
# strings), so that every row together is exactly the image.
group_bytes() {
    local elf=$1 mapping=$2 totals
    totals=$(arm-none-eabi-size "$elf" | awk 'NR == 2 { print $1, $2, $3 }')
    map_bytes "$elf" | awk -F'\t' "$mapping" | awk -F'\t' -v totals="$totals" '
        { v[$2, $1] += $3; rows[$2] = 1; sum[$1] += $3 }
        END {
            split(totals, t, " ")
            v["linker", "code"] += t[1] - sum["code"]
            v["linker", "data"] += t[2] - sum["data"]
            v["linker", "bss"] += t[3] - sum["bss"]
            rows["linker"] = 1
            for (r in rows) printf "%s\t%d\t%d\t%d\n", r, v[r, "code"], v[r, "data"], v[r, "bss"]
        }'
}

# Row names for the input files of the firmware images (an awk program).
# shellcheck disable=SC2016
file_rows='{
    f = $2; r = f
    if (f ~ /^libota_bench_mbedtls\.a\(/) { sub(/^[^(]*\(/, "", r); sub(/\.obj\)$/, "", r); r = "mbedtls:" r }
    else if (f ~ /^libota_bench_verify\.a\(/) r = "verification"
    else if (f ~ /^libota_bench_agent\.a\(/) r = "agent"
    else if (f ~ /^libota_bench_port\.a\(/) r = "flash port"
    else if (f ~ /^libota_bench_boot\.a\(/) r = "bootloader"
    else if (f ~ /^libota_bench_common\.a\(/) r = "common"
    else if (f ~ /^(libc_nano|libc|libgcc|libnosys|libm)\.a\(/) r = "newlib"
    else if (f ~ /_main\.c\.obj$/) r = "harness"
    else if (f == "*fill*") r = "linker"
    printf "%s\t%s\t%s\n", $1, r, $3
}'

# Looks up one row of group_bytes output: prints "code data bss" (zeros if absent).
pick() { awk -F'\t' -v r="$2" '$1 == r { c = $2; d = $3; b = $4 } END { print c + 0, d + 0, b + 0 }' <<<"$1"; }

verify_elf="$fw/verify_firmware.elf"
device_elf="$fw/device_firmware.elf"
for f in "$verify_elf" "$device_elf"; do
    [ -f "$f" ] || die "$f was not built"
    [ -f "${f%.elf}.map" ] || die "${f%.elf}.map was not written"
done
verify_rows=$(group_bytes "$verify_elf" "$file_rows")
device_rows=$(group_bytes "$device_elf" "$file_rows")

# ---- 3. Stack: the deepest path over gcc's call graph (.ci files).
# Usage: stack_paths ENTRIES EXTRA DIR...; ENTRIES are function names, EXTRA
# "caller callee" pairs of names that follow calls through pointers, and the
# .ci files are those under the DIRs. Prints "entry<TAB>bytes<TAB>path" for
# each entry. Calls that leave the graph (the C library, calls through
# pointers) count 0.
stack_paths() {
    local entries=$1 extra=$2
    shift 2
    find "$@" -name '*.ci' ! -path '*/CompilerId*' -print0 | sort -z | xargs -0 cat |
        awk -v entries="$entries" -v extra="$extra" '
        function short(t) { sub(/^.*:/, "", t); return t }
        function link(s, d) {
            if (index(SUBSEP edges[s] SUBSEP, SUBSEP d SUBSEP) == 0) edges[s] = edges[s] SUBSEP d
        }
        function worst(n,    e, k, i, w, best, bp) {
            if (n in memo) return memo[n]
            if (n in onstack) { cycle = cycle " " short(n); return 0 }
            onstack[n] = 1
            best = 0; bp = ""
            k = split(edges[n], e, SUBSEP)
            for (i = 1; i <= k; i++) {
                if (e[i] == "") continue
                w = worst(e[i])
                if (w > best || bp == "") { best = w; bp = e[i] }
            }
            delete onstack[n]
            memo[n] = frame[n] + best
            nxt[n] = bp
            return memo[n]
        }
        /^node: / {
            t = $0; sub(/^node: \{ title: "/, "", t); sub(/".*/, "", t)
            l = $0; sub(/^.* label: "/, "", l); sub(/".*$/, "", l)
            if (match(l, /[0-9]+ bytes \([a-z,]+\)/)) {
                s = substr(l, RSTART, RLENGTH); split(s, p, " ")
                frame[t] = p[1] + 0; defined[t] = 1; byname[short(t)] = t
                if (s !~ /static/) dynamic = dynamic " " short(t)
            }
            next
        }
        /^edge: / {
            s = $0; sub(/^edge: \{ sourcename: "/, "", s); sub(/".*/, "", s)
            d = $0; sub(/^.* targetname: "/, "", d); sub(/".*/, "", d)
            link(s, d)
            next
        }
        END {
            if (dynamic != "") { print "error: frames of dynamic size:" dynamic > "/dev/stderr"; exit 1 }
            n = split(extra, x, " ")
            for (i = 1; i + 1 <= n; i += 2) {
                if (!(x[i] in byname) || !(x[i + 1] in byname)) {
                    print "error: no function " x[i] " or " x[i + 1] > "/dev/stderr"; exit 1
                }
                link(byname[x[i]], byname[x[i + 1]])
            }
            n = split(entries, en, " ")
            for (i = 1; i <= n; i++) {
                if (!(en[i] in defined)) { print "error: no function " en[i] > "/dev/stderr"; exit 1 }
                w = worst(en[i]); path = ""; k = 0; rest = 0
                for (y = en[i]; y != ""; y = nxt[y]) {
                    if (!(y in defined)) continue
                    if (++k <= 5) path = path (k == 1 ? "" : " → ") short(y) " " frame[y]
                    else rest += frame[y]
                }
                if (k > 5) path = path sprintf(" → %d more (%d)", k - 5, rest)
                printf "%s\t%d\t%s\n", en[i], w, path
            }
            if (cycle != "") { print "error: recursion through" cycle > "/dev/stderr"; exit 1 }
        }'
}

agent_entries=(ota_agent_init_sized ota_agent_start ota_agent_stop ota_agent_suspend ota_agent_resume
    ota_agent_check_for_update ota_agent_reconnected ota_agent_self_test_result
    ota_agent_handle_message ota_agent_poll)
agent_stack=$(stack_paths "${agent_entries[*]}" "" "$cm4/agent/CMakeFiles/ota_agent.dir" \
    "$cm4/common/CMakeFiles/ota_common.dir" | sort -t$'\t' -k2,2nr | head -n 1) ||
    die "stack analysis of the agent failed"
# mbed TLS verifies through the key's function table: an EC key's verify.
pk_edges="mbedtls_pk_verify_restartable eckey_verify_wrap"
verify_stack=$(stack_paths "ota_verify_sha256_ecdsa" "$pk_edges" "$fw/CMakeFiles") ||
    die "stack analysis of verification failed"
boot_stack=$(stack_paths "ota_boot_decide" "$pk_edges" "$fw/CMakeFiles") ||
    die "stack analysis of the bootloader failed"

ram_obj="$fw/CMakeFiles/ota_bench_ram.dir/ram.c.obj"
[ -f "$ram_obj" ] || die "$ram_obj was not built"
ram_size() {
    arm-none-eabi-nm -S -t d "$ram_obj" | awk -v s="$1" '$4 == s { print $2 + 0 }'
}

# ---- Output.
gcc_version=$(arm-none-eabi-gcc --version | head -n 1)
newlib_version=$(dpkg-query -W -f='${Version}' libnewlib-arm-none-eabi 2>/dev/null || echo unknown)
cflags=$(sed -n 's/^set(CMAKE_C_FLAGS_INIT "\(.*\)")$/\1/p' "$toolchain")
pem_max=$(sed -n 's/^#define OTA_VERIFY_MAX_PEM_LEN \([0-9]*\)u*$/\1/p' "$root/include/otter/ota_config_defaults.h")

# A note under a table: one bullet, wrapped.
note() {
    fmt -w 98 <<<"$*" | sed '1s/^/- /; 2,$s/^/  /'
}

echo "## 3. Footprint (Cortex-M4, arm-none-eabi-gcc -Os)"
echo
echo "Compiler: $gcc_version, \`$cflags\` (MinSizeRel); newlib-nano" \
    "(libnewlib-arm-none-eabi $newlib_version); mbed TLS $src_version (Debian source package" \
    "$mbedtls_version)."
echo
echo "### Code and static data per file (bytes, object files before linking)"
echo
table_head
object_rows "agent" "${agent_objs[@]}"
read -r t d b < <(obj_size "${agent_unit[1]}")
row "agent" "**as built: one unit** (${agent_unit[0]})" "$t" "$d" "$b"
read -r t d b < <(obj_size "${agent_http_unit[1]}")
row "agent with the HTTP plane" "**as built: one unit** (${agent_http_unit[0]})" "$t" "$d" "$b"
object_rows "HTTP range client" "${http_objs[@]}"
object_rows "bootloader" "${boot_objs[@]}"
object_rows "verification without mbed TLS" \
    "verify/ota_verify.c" "verify/CMakeFiles/ota_verify.dir/ota_verify.c.obj"
read -r err_t _ < <(obj_size common/CMakeFiles/ota_common.dir/ota_err.c.obj)
echo
note "Code is .text + .rodata (arm-none-eabi-size's text) of each object file, compiled with" \
    "-ffunction-sections -fdata-sections; a link with --gc-sections keeps only what is called" \
    "(below). The agent also calls into common/: ota_crc32.c (counted under the bootloader) and" \
    "ota_err_pal_code in ota_err.c ($(num "$err_t") bytes as an object)."
sum_text() { # the code of the objects of "source object" pairs
    local sum=0 t
    while [ $# -gt 0 ]; do
        read -r t _ < <(obj_size "$2")
        sum=$((sum + t))
        shift 2
    done
    echo "$sum"
}
mqtt_only=$(sum_text "${agent_unit[@]}")
with_http=$(sum_text "${agent_http_unit[@]}")
parts_alone=$(sum_text "${agent_objs[@]}")
note "The agent is compiled as one unit (agent/ota_agent_unit.c includes every module's" \
    "file; agent/ota_module.h): calls between modules are calls inside a file, and only the" \
    "public API is exported. That unit is what a board builds and what the size budget" \
    "checks: $(num "$mqtt_only") bytes, against $(num "$parts_alone") for the modules" \
    "compiled one at a time (the rows above it, which show where the bytes are)."
http_client=$(sum_text "${http_objs[@]}")
note "The HTTP data plane (docs/AGENT.md): the same agent sources built with OTA_HTTP_PLANE 1" \
    "(ota_agent_http) are $(num "$with_http") bytes, $(num $((with_http - mqtt_only))) more than" \
    "the agent without it, plus the HTTP range client (ota_http_client, $(num "$http_client")" \
    "bytes)."
echo
echo "### Verification with mbed TLS, as a device links it (bytes kept by --gc-sections)"
echo
table_head
mt=0 md=0 mb=0
while IFS=$'\t' read -r r c d b; do
    row "mbed TLS" "library/${r#mbedtls:}" "$c" "$d" "$b"
    mt=$((mt + c)) md=$((md + d)) mb=$((mb + b))
done < <(grep '^mbedtls:' <<<"$verify_rows" | sort -t$'\t' -k2,2nr -k1,1)
row "mbed TLS" "**subtotal**" "$mt" "$md" "$mb"
read -r vc vd vb < <(pick "$verify_rows" verification)
row "verification" "verify/ota_verify.c" "$vc" "$vd" "$vb"
read -r nc nd nb < <(pick "$verify_rows" newlib)
row "C library" "newlib (libc/libgcc)" "$nc" "$nd" "$nb"
read -r lc ld lb < <(pick "$verify_rows" linker)
row "linker" "alignment, merged strings" "$lc" "$ld" "$lb"
row "" "**total**" "$((mt + vc + nc + lc))" "$((md + vd + nd + ld))" "$((mb + vb + nb + lb))"
read -r hc _ _ < <(pick "$verify_rows" harness)
echo
note "Firmware: bench/footprint/verify_main.c calls ota_verify_find_signer, ota_verify_key_id and" \
    "ota_verify_sha256_ecdsa (the calls of the flash port and the bootloader); it has no vector" \
    "table or C start-up, and its own $(num "$hc") bytes (entry point, file reader) are not" \
    "counted. Linked with \`--specs=nano.specs --specs=nosys.specs -nostartfiles" \
    "-Wl,--gc-sections\`; bytes per input file from the map file, code = .text + .rodata +" \
    ".ARM.exidx."
note "mbed TLS configuration: bench/footprint/mbedtls_device_config.h: SHA-256, MD, bignum with" \
    "Thumb-2 assembly, ECP with secp256r1 only and NIST reduction, ECDSA, PK and X.509" \
    "certificate parsing, PEM, base64, ASN.1, OID, platform with calloc/free; no threading, file" \
    "system, network, clock, entropy or DRBG (MBEDTLS_ECP_NO_INTERNAL_RNG). mbed TLS's heap" \
    "(calloc while parsing the certificate and verifying) is not static data and is not in the" \
    "table."
echo
echo "### All of otter's device code in one image, as linked (bytes kept by --gc-sections)"
echo
echo "| part | code | data | bss |"
echo "|---|---:|---:|---:|"
dt=0 dd=0 db=0 own=0
for r in agent "flash port" bootloader common verification "mbed TLS" newlib linker; do
    if [ "$r" = "mbed TLS" ]; then
        read -r c d b < <(grep '^mbedtls:' <<<"$device_rows" |
            awk -F'\t' '{ c += $2; d += $3; b += $4 } END { print c + 0, d + 0, b + 0 }')
    else
        read -r c d b < <(pick "$device_rows" "$r")
    fi
    case "$r" in
    common) label="common (errors, CRC-32)" ;;
    verification) label="verification (ota_verify.c)" ;;
    newlib) label="C library (newlib, libgcc)" ;;
    linker) label="linker (alignment, merged strings)" ;;
    *) label=$r ;;
    esac
    printf '| %s | %s | %s | %s |\n' "$label" "$(num "$c")" "$(num "$d")" "$(num "$b")"
    dt=$((dt + c)) dd=$((dd + d)) db=$((db + b))
    case "$r" in agent | "flash port" | bootloader | common | verification) own=$((own + d + b)) ;; esac
done
printf '| **total** | %s | %s | %s |\n' "$(num "$dt")" "$(num "$dd")" "$(num "$db")"
read -r hc _ hb < <(pick "$device_rows" harness)
echo
note "Firmware: bench/footprint/device_main.c runs the bootloader's decision, then the flash port" \
    "and every public call of the agent. Its flash driver and MQTT client are stubs; with its own" \
    "state they are not counted ($(num "$hc") bytes of code, $(num "$hb") of bss). Static data" \
    "of otter's own code: $(num "$own") bytes. On a device the bootloader is an image of its own," \
    "with its own copy of verification and mbed TLS."
echo
echo "### RAM (default configuration)"
echo
echo "| what | bytes | where |"
echo "|---|---:|---|"
ram_row() { printf '| %s | %s | %s |\n' "$1" "$(num "$2")" "$3"; }
bc=$(ram_size ota_bench_boot_config) bl=$(ram_size ota_bench_boot_layout)
br=$(ram_size ota_bench_boot_result)
ram_row "\`ota_agent_t\`" "$(ram_size ota_bench_agent)" "all of the agent's RAM, allocated by the caller"
ram_row "\`ota_port_flash_t\`" "$(ram_size ota_bench_port)" "the flash port instance beside it"
ram_row "\`ota_boot_config_t\` + \`ota_boot_layout_t\` + \`ota_boot_result_t\`" \
    "$((bc + bl + br))" "the bootloader's caller ($bc + $bl + $br), plus a scratch buffer of at least 32 bytes"
IFS=$'\t' read -r _ as ap <<<"$agent_stack"
IFS=$'\t' read -r _ vs vp <<<"$verify_stack"
IFS=$'\t' read -r _ bs bp <<<"$boot_stack"
ram_row "stack: agent, deepest public call" "$as" "$ap"
ram_row "stack: \`ota_verify_sha256_ecdsa\`" "$vs" "$vp"
ram_row "stack: \`ota_boot_decide\`" "$bs" "$bp"
echo
note "Stack: the deepest path through gcc's call graph (\`-fstack-usage -fcallgraph-info=su\`)," \
    "frame bytes per function. Calls through pointers (the port, the MQTT client, callbacks, the" \
    "file reader) and into the C library (memcpy, calloc, ...) are not included; inside mbed TLS" \
    "the call through the key's function table is followed (\`mbedtls_pk_verify\` to the EC" \
    "key's verify). Verification's stack is mostly key_parse's copy of the signer's PEM" \
    "(OTA_VERIFY_MAX_PEM_LEN, $(num "$pem_max") bytes)."
