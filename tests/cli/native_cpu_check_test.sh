#!/bin/sh
# usage: native_cpu_check_test.sh COLLAPSE_SWEEP FEATURE (empty: built without COLLAPSE_NATIVE -> skip)
binary=$1
feature=$2
if [ -z "$feature" ]; then echo "built without COLLAPSE_NATIVE: no start-up check to test"; exit 77; fi
"$binary" --version > /dev/null || { echo "FAIL: the binary does not start on its own CPU"; exit 1; }
out=$(COLLAPSE_TEST_MISSING_CPU_FEATURE="$feature" "$binary" run /nonexistent.toml -o /tmp/never.h5 2>&1)
code=$?
[ "$code" -eq 1 ] || { echo "FAIL: exit $code, want 1: $out"; exit 1; }
echo "$out" | grep -q "this CPU lacks $feature" || { echo "FAIL: message does not name $feature: $out"; exit 1; }
echo "$out" | grep -q -- "-DCOLLAPSE_NATIVE=OFF" || { echo "FAIL: message does not name the option: $out"; exit 1; }
# It stops before anything runs: not even the usage error for the missing spec.
echo "$out" | grep -q "sweep file" && { echo "FAIL: the command ran: $out"; exit 1; }
[ -e /tmp/never.h5 ] && { echo "FAIL: wrote output"; exit 1; }
echo "OK: $out"
