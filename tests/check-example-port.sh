#!/bin/sh
# Build the example port in examples/port-ramflash as a board's own repository
# would: configured from outside otter's tree with only OTTER_ROOT pointing at
# it, then run its conformance suite and power-loss sweep through CTest.
# Usage: check-example-port.sh OTTER_ROOT BUILD_DIR C_COMPILER
set -eu
root=$1
build=$2
cc=$3
cmake -S "$root/examples/port-ramflash" -B "$build" -DOTTER_ROOT="$root" \
      -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.configure.log" 2>&1 ||
    { cat "$build.configure.log"; exit 1; }
cmake --build "$build" -j2
# Both programs must have registered the port, and pass.
ctest --test-dir "$build" -N | grep -q 'conformance\.ramflash$'
ctest --test-dir "$build" -N | grep -q 'power_sweep\.ramflash$'
ctest --test-dir "$build" --output-on-failure
