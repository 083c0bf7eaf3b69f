#!/usr/bin/env bash
# See otter work, end to end, in one command: a Mosquitto broker with otter's
# passwords and ACL, otter-service, and a simulated device that is updated
# from 1.0.0 to 1.1.0 (the self-test passes, the image is committed), then
# offered 1.2.0, whose self-test fails: the device reverts to 1.1.0 and the
# job ends FAILED with the reason. With --board the device is otter's
# firmware on an emulated Cortex-M4 board (QEMU's mps2-an386, docs/BOARD.md).
#
#   scripts/demo.sh                  install what is missing, build into
#                                    build/demo, run the demo
#   scripts/demo.sh --bin-dir DIR    use binaries already built (skips the
#                                    packages and the build); DIR may be a
#                                    build folder or a folder of binaries, and
#                                    may be given more than once
#   scripts/demo.sh --dir DIR        keep the logs and state in DIR (new or
#                                    empty) instead of a fresh folder in /tmp
#   scripts/demo.sh --board          the device is the emulated board: its
#                                    bootloader and application images run
#                                    under qemu-system-arm
#   scripts/demo.sh --web            also start the web console (otter-web) with
#                                    an operator account, print its address and
#                                    password; on a terminal it stays up after
#                                    the updates until Enter is pressed
#
# Exit code 0 only if both updates ended as described. Every process it
# starts is stopped at the end, on Ctrl-C and on any failure.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
thing=dev1

usage() {
    sed -n '2,26s/^# \{0,1\}//p' "$0"
}

bin_dirs=()
run_dir=""
board=0
web=0
while [ $# -gt 0 ]; do
    case "$1" in
    --bin-dir)
        [ $# -ge 2 ] || { echo "demo: --bin-dir needs a folder" >&2; exit 2; }
        bin_dirs+=("$2")
        shift 2
        ;;
    --dir)
        [ $# -ge 2 ] || { echo "demo: --dir needs a folder" >&2; exit 2; }
        run_dir=$2
        shift 2
        ;;
    --board)
        board=1
        shift
        ;;
    --web)
        web=1
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "demo: unknown argument '$1'; see scripts/demo.sh --help" >&2
        exit 2
        ;;
    esac
done

# ---------------------------------------------------------------- output --

if [ -t 1 ]; then
    bold=$'\033[1m' red=$'\033[31m' green=$'\033[32m' off=$'\033[0m'
else
    bold="" red="" green="" off=""
fi
current_step="starting"
step() {
    current_step=$*
    printf '%s==> %s%s\n' "$bold" "$*" "$off"
}
note() { printf '    %s\n' "$*"; }
fail() {
    printf '%sdemo: %s%s\n' "$red" "$*" "$off" >&2
    exit 1
}

# Microseconds since the epoch, and a duration in seconds with two decimals.
now_us() { echo "${EPOCHREALTIME/./}"; }
secs_since() { awk -v a="$1" -v b="$(now_us)" 'BEGIN { printf "%.2f", (b - a) / 1e6 }'; }

# ------------------------------------------------------------- run folder --

if [ -n "$run_dir" ]; then
    mkdir -p "$run_dir"
    [ -z "$(ls -A "$run_dir")" ] || fail "$run_dir is not empty; give a new or empty folder"
    run_dir=$(cd "$run_dir" && pwd)
else
    run_dir=$(mktemp -d "${TMPDIR:-/tmp}/otter-demo-XXXXXX")
fi
logs=$run_dir/logs
mkdir -p "$logs"
cli_log=$logs/cli.log
dev_log=$logs/device.log

# --------------------------------------------------------------- cleanup --

broker_pid="" service_pid="" device_pid="" watch_pid="" web_pid=""
t_start=$(now_us)

# Whether a process started here still runs (a zombie does not).
alive() {
    local state=""
    [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
    read -r _ _ state _ <"/proc/$1/stat" 2>/dev/null || return 1
    [ "$state" != Z ]
}

# Ends one process started here: SIGTERM, then SIGKILL after 5 s.
stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

stop_all() {
    stop_pid "$watch_pid"
    watch_pid=""
    stop_pid "$web_pid"
    web_pid=""
    stop_pid "$device_pid"
    device_pid=""
    stop_pid "$service_pid"
    service_pid=""
    stop_pid "$broker_pid"
    broker_pid=""
}

on_exit() {
    local rc=$?
    trap - EXIT
    trap '' INT TERM # a second Ctrl-C must not cut the cleanup short
    stop_all
    if [ "$rc" -ne 0 ]; then
        printf '%sdemo failed at "%s" (exit code %d)%s\n' "$red" "$current_step" "$rc" "$off" >&2
        printf 'everything it started is stopped; logs in %s\n' "$logs" >&2
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'echo; echo "demo: interrupted" >&2; exit 130' INT
trap 'echo "demo: terminated" >&2; exit 143' TERM

printf '%sotter demo%s: logs and state in %s\n' "$bold" "$off" "$run_dir"

# ------------------------------------------------------- packages, build --

find_bin() {
    local name=$1 d sub
    for d in "${bin_dirs[@]}"; do
        for sub in "" cli service/daemon service/web device targets/mps2-an386/host targets/mps2-an386/host/firmware; do
            if [ -x "$d/$sub/$name" ] && [ -f "$d/$sub/$name" ]; then
                echo "$d/$sub/$name"
                return 0
            fi
        done
    done
    fail "cannot find $name in ${bin_dirs[*]}"
}

if [ ${#bin_dirs[@]} -eq 0 ]; then
    step "checking the Debian packages (scripts/deps.sh installs the missing ones)"
    "$root/scripts/deps.sh"
    build=$root/build/demo
    targets=(otter otter-service otter-device otter-firmware)
    what="otter-device and the firmware images"
    if [ "$board" = 1 ]; then
        targets=(otter otter-service otter-board-flash board_firmware)
        what="the board's flash tool and its firmware (Cortex-M4, mbed TLS from Debian's source)"
    fi
    [ "$web" = 0 ] || targets+=(otter-web)
    step "building otter, otter-service, $what (log: logs/build.log)"
    t_build=$(now_us)
    if ! {
        cmake -S "$root" -B "$build" -DOTA_SANITIZE=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
            cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target "${targets[@]}"
    } >"$logs/build.log" 2>&1; then
        echo "---- last lines of $logs/build.log ----" >&2
        tail -n 25 "$logs/build.log" >&2
        fail "the build failed; the whole log is $logs/build.log"
    fi
    note "built in $(secs_since "$t_build") s into ${build#"$root"/}"
    bin_dirs=("$build")
fi

otter=$(find_bin otter)
otter_service=$(find_bin otter-service)
[ "$web" = 0 ] || otter_web=$(find_bin otter-web)
# The image of a version: a firmware executable, or the board's application.
fw_image() {
    if [ "$board" = 1 ]; then
        case "$1" in
        1.2.0) echo "$fw_dir/otter-app-1.2.0-selftest-fails.bin" ;;
        *) echo "$fw_dir/otter-app-$1.bin" ;;
        esac
    else
        echo "$fw_dir/otter-fw-$1"
    fi
}
if [ "$board" = 1 ]; then
    board_flash=$(find_bin otter-board-flash)
    fw_dir=$(dirname "$board_flash")/firmware
    qemu=$(command -v qemu-system-arm) || fail "qemu-system-arm is not installed; run scripts/deps.sh"
    [ -f "$fw_dir/otter-boot.elf" ] || fail "cannot find the board's firmware in $fw_dir"
else
    otter_device=$(find_bin otter-device)
    fw_dir=$(dirname "$(find_bin otter-fw-1.0.0)")
fi
for v in 1.0.0 1.1.0 1.2.0; do
    [ -f "$(fw_image $v)" ] || fail "cannot find $(fw_image $v)"
done
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] ||
    fail "mosquitto is not installed; run scripts/deps.sh"
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)

t_demo=$(now_us)
export OTTER_DATA_DIR=$run_dir/data

# Runs the otter CLI with its output appended to cli.log.
cli() {
    echo "\$ otter $*" >>"$cli_log"
    "$otter" "$@" >>"$cli_log" 2>&1
}

# Waits until a file contains a fixed string (from a byte offset); 1 on timeout.
wait_for_text() {
    local file=$1 from=$2 text=$3 timeout_s=$4 pid=${5:-} i
    for ((i = 0; i < timeout_s * 10; i++)); do
        if [ -f "$file" ] && tail -c +"$((from + 1))" "$file" | grep -qF -- "$text"; then
            return 0
        fi
        if [ -n "$pid" ] && ! alive "$pid"; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}

file_size() { if [ -f "$1" ]; then wc -c <"$1" | tr -d ' '; else echo 0; fi; }

# True if something accepts connections on 127.0.0.1:port.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# -------------------------------------------------------- broker, service --

step "starting Mosquitto on a free 127.0.0.1 port, with the configuration 'otter broker init' writes"
port=""
for attempt in 1 2 3 4 5; do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    port_busy "$p" && continue
    rm -rf "$OTTER_DATA_DIR"
    cli broker init --port "$p" || fail "otter broker init failed; see $cli_log"
    "$mosquitto" -c "$OTTER_DATA_DIR/broker/mosquitto.conf" >>"$logs/broker.log" 2>&1 &
    broker_pid=$!
    if wait_for_text "$logs/broker.log" 0 "listen socket on port $p" 5 "$broker_pid" &&
        sleep 0.1 && alive "$broker_pid"; then
        port=$p
        break
    fi
    # Most likely another program took the port first: try another one.
    stop_pid "$broker_pid"
    broker_pid=""
    echo "---- attempt $attempt on port $p failed ----" >>"$logs/broker.log"
done
[ -n "$port" ] || fail "Mosquitto did not start; see $logs/broker.log"
note "mosquitto (pid $broker_pid) on 127.0.0.1:$port: logins that bind each device to its own client id and topics"

step "starting otter-service"
# It finds the broker and its login in the data folder ('otter broker init' wrote them).
"$otter_service" --data-dir "$OTTER_DATA_DIR" --share-group none >>"$logs/service.log" 2>&1 &
service_pid=$!
wait_for_text "$logs/service.log" 0 "INFO ready:" 10 "$service_pid" ||
    fail "otter-service did not get ready; see $logs/service.log"
note "otter-service (pid $service_pid) serves the Jobs and streams APIs through the broker"

step "creating thing $thing and a code-signing key"
cli thing create "$thing" || fail "otter thing create failed; see $cli_log"
cli keygen --out "$run_dir/keys" || fail "otter keygen failed; see $cli_log"
note "$thing: MQTT login in data/things/$thing.json; keys/codesign.key signs, keys/codesign.crt is on the device"

if [ "$web" = 1 ]; then
    step "starting the web console (otter-web) with an operator account"
    web_password=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
    printf '%s\n' "$web_password" | cli user add admin --role operator ||
        fail "otter user add failed; see $cli_log"
    "$otter_web" --data-dir "$OTTER_DATA_DIR" --port 0 --static "$root/web/static" \
        >>"$logs/web.log" 2>&1 &
    web_pid=$!
    wait_for_text "$logs/web.log" 0 "INFO ready:" 10 "$web_pid" ||
        fail "otter-web did not get ready; see $logs/web.log"
    web_url=$(sed -n 's/.*INFO ready: \(http[^ ]*\) .*/\1/p' "$logs/web.log" | head -n 1)
    note "otter-web (pid $web_pid): web console at ${bold}${web_url}${off}"
    note "log in as admin, password $web_password (docs/WEB.md)"
fi

# ------------------------------------------------------------------ device --

flash=$run_dir/$thing.flash
status_file=$flash.status
cat >"$run_dir/$thing.conf" <<EOF
# simulated device $thing
thing_file = data/things/$thing.json
codesign_cert = keys/codesign.crt
broker_port = $port
# A slow link (60 ms a block) and a progress report per block, so the
# download can be watched; the tests run the device at full speed.
block_delay_ms = 60
status_every_blocks = 1
EOF

# The device console lines worth showing, from a byte offset, shortened.
show_console() {
    if [ "$board" = 1 ]; then
        tail -c +"$(($1 + 1))" "$dev_log" |
            grep -E 'boot: slot|otter-app .* booted|job accepted|file verified|activated; resetting|self-test: |SUCCEEDED|FAILED|new image committed|agent started|\] stack: |board: ' |
            sed -E -e 's/ job [A-Za-z0-9_-]+$//' -e 's/^/    /' | cut -c 1-150
        return
    fi
    tail -c +"$(($1 + 1))" "$dev_log" |
        grep -E 'device (factory|boot):|firmware (reset|crashed)|job accepted|downloading: |file verified|activated; resetting|self-test: |rejected|SUCCEEDED|FAILED|committed in slot|agent started' |
        sed -E -e "s/ $thing v([0-9.]+) INFO / v\\1  /" -e "s/ $thing v([0-9.]+) (WARN|ERROR) / v\\1  \\2 /" \
            -e 's/ device / device  /' -e 's/ \(stream AFR_OTA-[^)]*\)//' -e 's/ job ([A-Za-z0-9_-]+)$//' \
            -e 's|factory: [^ ]*/(otter-fw-[^ ]*) programmed into slot A as version|factory: \1 into slot A as version|' \
            -e 's/^/    /' |
        cut -c 1-150
}

# key=value from the firmware's status file; the board's from its console:
# the last boot's version, slot and state, committed once it says so.
status_value() {
    if [ "$board" = 1 ]; then
        awk -v key="$1" '
            match($0, /otter-app [0-9.]+ booted from slot [AB] /) {
                split(substr($0, RSTART, RLENGTH), w, " ")
                v = w[2]; s = w[6]; img = ($0 ~ /pending commit/) ? "pending" : "committed"
            }
            /new image committed/ { img = "committed" }
            END { print (key == "version") ? v : (key == "slot") ? s : img }' "$dev_log" 2>/dev/null
        return
    fi
    sed -n "s/^$1=//p" "$status_file" 2>/dev/null | head -n 1
}

# The board's power supply: QEMU again after every reset (status 0), until
# it ends otherwise or this is stopped (then QEMU is killed: power off).
board_power() {
    local qpid="" rc
    trap '[ -z "$qpid" ] || kill -KILL "$qpid" 2>/dev/null; exit 0' TERM INT
    while :; do
        "$qemu" -M mps2-an386 -nographic -monitor none -no-reboot \
            -semihosting-config "enable=on,target=native,arg=otter,arg=$flash" \
            -kernel "$fw_dir/otter-boot.elf" \
            -chardev "socket,id=mq,host=127.0.0.1,port=$port,server=off,nodelay=on" \
            -serial chardev:mq </dev/null >>"$dev_log" 2>&1 &
        qpid=$!
        rc=0
        wait "$qpid" || rc=$?
        qpid=""
        if [ "$rc" -ne 0 ]; then
            echo "board: QEMU ended with status $rc" >>"$dev_log"
            exit "$rc"
        fi
    done
}

# Waits until the status file names version, slot and image state.
wait_running() {
    local version=$1 slot=$2 image=$3 i
    for ((i = 0; i < 150; i++)); do
        if [ "$(status_value version)" = "$version" ] && [ "$(status_value slot)" = "$slot" ] &&
            [ "$(status_value image)" = "$image" ]; then
            return 0
        fi
        alive "$device_pid" || return 1
        sleep 0.1
    done
    return 1
}

if [ "$board" = 1 ]; then
    step "making the board's flash ($thing.flash: 1.0.0 in slot A, the thing's identity) and powering it on"
    "$board_flash" --out "$flash" --factory "$(fw_image 1.0.0)" --version 1.0.0 \
        --thing "$OTTER_DATA_DIR/things/$thing.json" --cert "$run_dir/keys/codesign.crt" \
        >>"$cli_log" 2>&1 || fail "otter-board-flash failed; see $cli_log"
    board_power &
    device_pid=$!
    started="agent started"
else
    step "booting the device on 1.0.0 (flash in $thing.flash, console in logs/device.log)"
    "$otter_device" --flash "$flash" --factory "$fw_dir/otter-fw-1.0.0" --factory-version 1.0.0 \
        --config "$run_dir/$thing.conf" >>"$dev_log" 2>&1 &
    device_pid=$!
    started="INFO agent started"
fi
wait_for_text "$dev_log" 0 "$started" 10 "$device_pid" || {
    tail -n 20 "$dev_log" >&2
    fail "the device did not start its agent; see $dev_log"
}
wait_running 1.0.0 A committed || fail "the device does not report 1.0.0 in slot A; see $dev_log"
if [ "$board" = 1 ]; then
    note "qemu-system-arm (mps2-an386, Cortex-M4) runs otter-boot.elf, which copies the selected slot's image and jumps to it; UART0 is the MQTT connection:"
else
    note "otter-device (pid $device_pid) runs the bootloader, then the firmware of the slot it selects:"
fi
show_console 0
note "${green}running 1.0.0 from slot A (committed)${off}"

# ----------------------------------------------------------------- updates --

# Results, one per update, for the summary.
declare -A result bytes blocks took download reason after

# Runs otter watch in the background (so that Ctrl-C and the traps are never
# held up by it): on a terminal it draws its progress bars there; otherwise
# its lines are copied, indented, as they come. Its exit code in follow_rc.
follow_rc=0
follow_watch() {
    local out=$logs/watch-$1.txt shown=0 n
    follow_rc=0
    if [ -t 1 ]; then
        "$otter" watch "$1" --timeout 60 &
        watch_pid=$!
        wait "$watch_pid" || follow_rc=$?
        watch_pid=""
        return 0
    fi
    : >"$out"
    "$otter" watch "$1" --timeout 60 >>"$out" 2>&1 &
    watch_pid=$!
    while :; do
        alive "$watch_pid" || break
        n=$(wc -l <"$out")
        if [ "$n" -gt "$shown" ]; then
            sed -n "$((shown + 1)),${n}s/^/    /p" "$out"
            shown=$n
        fi
        sleep 0.1
    done
    wait "$watch_pid" || follow_rc=$?
    watch_pid=""
    sed -n "$((shown + 1)),\$s/^/    /p" "$out"
    cat "$out" >>"$cli_log"
}

# Creates the job for a version, follows it with otter watch, shows what
# the device did and checks the outcome. Args: version, job id, expected
# status, then the version, slot and image state expected to run after.
update() {
    local version=$1 job=$2 expect=$3 run_version=$4 run_slot=$5 run_image=$6
    local from t0 watch_rc line st details why detail accepted
    step "signing $(basename "$(fw_image "$version")") as $version and creating job $job for $thing"
    from=$(file_size "$dev_log")
    t0=$(now_us)
    cli job create --file "$(fw_image "$version")" --version "$version" --targets "$thing" \
        --key "$run_dir/keys/codesign.key" --job-id "$job" || fail "otter job create failed; see $cli_log"

    step "the device downloads, verifies, activates and self-tests it (otter watch $job)"
    echo "\$ otter watch $job --timeout 60" >>"$cli_log"
    follow_watch "$job"
    watch_rc=$follow_rc
    echo "(exit code $watch_rc)" >>"$cli_log"

    # The job's final word, from the service's store.
    echo "\$ otter job show $job" >>"$cli_log"
    "$otter" job show "$job" >"$logs/job-$job.txt" 2>&1 || fail "otter job show $job failed; see $logs/job-$job.txt"
    cat "$logs/job-$job.txt" >>"$cli_log"
    line=$(awk -v t="$thing" '$1 == t' "$logs/job-$job.txt")
    st=$(awk '{print $2}' <<<"$line")
    details=${line#*\{}
    why=$(sed -n 's/.*"reason":"\([^"]*\)".*/\1/p' <<<"$details")
    detail=$(sed -n 's/.*"detail":"\([^"]*\)".*/\1/p' <<<"$details")

    # The device settles: reboots into the new image, or reverts.
    wait_running "$run_version" "$run_slot" "$run_image" || true
    took[$version]=$(secs_since "$t0")
    echo "    device console:"
    show_console "$from"

    accepted=$(tail -c +"$((from + 1))" "$dev_log" | sed -n 's/.*job accepted: [^,]*, \([0-9]*\) bytes in \([0-9]*\) blocks.*/\1 \2/p' | head -n 1)
    download[$version]=$(tail -c +"$((from + 1))" "$dev_log" | awk '
        /job accepted: / && a == "" { a = substr($2, 1, length($2) - 1) }
        /file verified/ && a != "" { printf "%.2f", substr($2, 1, length($2) - 1) - a; exit }')
    bytes[$version]=${accepted% *}
    blocks[$version]=${accepted#* }
    result[$version]=$st
    reason[$version]="\"$why\"${detail:+ ($detail)}"
    after[$version]="$(status_value version) in slot $(status_value slot), $(status_value image)"

    if [ "$expect" = SUCCEEDED ]; then
        [ "$watch_rc" -eq 0 ] || fail "otter watch $job ended with $watch_rc, expected 0 (SUCCEEDED)"
    else
        [ "$watch_rc" -ne 0 ] || fail "otter watch $job ended with 0, expected a failure"
    fi
    [ "$st" = "$expect" ] || fail "job $job ended ${st:-unknown}, expected $expect; see $cli_log"
    [ -n "$why" ] || fail "job $job has no reason in its statusDetails; see $cli_log"
    if [ "${after[$version]}" != "$run_version in slot $run_slot, $run_image" ]; then
        fail "the device runs ${after[$version]}, expected $run_version in slot $run_slot, $run_image; see $dev_log"
    fi
    if [ "$expect" = SUCCEEDED ]; then
        note "${green}job $job SUCCEEDED, reason \"$why\"; the device runs ${after[$version]}${off}"
    else
        note "${green}job $job FAILED as it should, reason \"$why\"; the device reverted to ${after[$version]}${off}"
    fi
}

trial_line="otter-fw 1.1.0 booted from slot B (pending commit)"
revert_line="boot: slot B, version 1.1.0, committed (new image reverted)"
if [ "$board" = 1 ]; then
    trial_line="otter-app 1.1.0 booted from slot B (pending commit)"
    revert_line="otter-app 1.1.0 booted from slot B (committed)"
fi
update 1.1.0 update-1 SUCCEEDED 1.1.0 B committed
grep -qF "$trial_line" "$dev_log" || fail "the console does not show 1.1.0 booting as a trial; see $dev_log"

update 1.2.0 update-2 FAILED 1.1.0 B committed
grep -qF "self-test: failed" "$dev_log" || fail "the console does not show 1.2.0's self-test failing"
grep -qF "$revert_line" "$dev_log" || fail "the console does not show the revert to 1.1.0; see $dev_log"

# ----------------------------------------------------------------- summary --

if [ "$web" = 1 ] && [ -t 0 ]; then
    step "the web console stays up at $web_url (user admin, password $web_password)"
    read -r -p "    press Enter to stop everything " _ || true
fi
step "powering the device off and stopping otter-service and Mosquitto"
stop_all
demo_s=$(secs_since "$t_demo")

step "summary"
printf '    %-7s %-10s %7s %7s %9s %7s   %s\n' update result bytes blocks download total "then running"
for v in 1.1.0 1.2.0; do
    printf '    %-7s %-10s %7s %7s %7s s %5s s   %s\n' "$v" "${result[$v]}" "${bytes[$v]}" \
        "${blocks[$v]}" "${download[$v]:-?}" "${took[$v]}" "${after[$v]}"
done
note "1.1.0 SUCCEEDED: reason ${reason[1.1.0]}"
note "1.2.0 FAILED: reason ${reason[1.2.0]}"
note "download: from the job's acceptance to the verified file (device clock); total: from"
note "'otter job create' to the device running its final image, committed"
note "demo ${demo_s} s (after the build), ${green}all as expected${off}; $(secs_since "$t_start") s in all"
note "logs (broker.log, service.log, device.log, cli.log) in $logs"
