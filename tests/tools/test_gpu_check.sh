#!/usr/bin/env bash
# tools/gpu-check.sh's skip rule (docs/cuda-backend.md, "Checking on a GPU"),
# on a recorded ctest LastTest.log, with a stub nvidia-smi that does or does
# not see a GPU: only a skip saying "no CUDA device" fails, and only where a
# GPU is seen. Also runs the script with CMAKE_PREFIX_PATH unset (the old kit
# aborted on it under set -u). No build, no GPU needed.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failures=0
expect() { # expect STATUS DESCRIPTION: compares with the last run's status
    if [[ $1 != "$last" ]]; then echo "FAIL: $2 (exit $last, wanted $1)"; failures=$((failures + 1)); else echo "ok: $2"; fi
}

# One block per test as ctest 3.25 writes them (Testing/Temporary/LastTest.log).
block() { # block NAME [SKIP_MESSAGE]
    printf '1/3 Testing: %s\n1/3 Test: %s\nOutput:\n------\n[ RUN      ] %s\n' "$1" "$1" "$1"
    if [[ $# -gt 1 ]]; then
        printf '/src/tests/backend/x.cpp:10: Skipped\n%s\n[  SKIPPED ] %s (0 ms)\n<end of output>\n' "$2" "$1"
        printf 'Test time =   0.01 sec\n------\nTest Pass Reason:\nSkip regular expression found in output. Regex=[\\[  SKIPPED \\]]\n'
    else
        printf '[       OK ] %s (0 ms)\n<end of output>\nTest time =   0.01 sec\n------\nTest Passed.\n' "$1"
    fi
}
{
    block CudaParity.Float64MatchesTheCpuBackend "no CUDA device: no usable CUDA device: cudaGetDeviceCount failed"
    block BackendSelection.ExplicitCudaFailsWithAReadableReason "a CUDA device is usable here"
    block CudaErrors.SuccessPassesSilently
} >"$WORK/no-device.log"
{
    block LockstepCublasErrors.WithoutADeviceTheHandleFailsReadably "a CUDA device is present"
    block BackendSelection.ExplicitCudaFailsWithAReadableReason "a CUDA device is usable here"
    block CudaParity.Float64MatchesTheCpuBackend
} >"$WORK/device.log"

mkdir -p "$WORK/gpu" "$WORK/nogpu"
printf '#!/bin/sh\necho "GPU 0: NVIDIA H200 (UUID: GPU-0)"\n' >"$WORK/gpu/nvidia-smi"
printf '#!/bin/sh\necho "NVIDIA-SMI has failed" >&2\nexit 9\n' >"$WORK/nogpu/nvidia-smi"
chmod +x "$WORK/gpu/nvidia-smi" "$WORK/nogpu/nvidia-smi"

judge() { # judge GPU|NOGPU LOG
    local stub=$WORK/gpu
    [[ $1 == NOGPU ]] && stub=$WORK/nogpu
    rm -rf "$WORK/out" && mkdir -p "$WORK/out"
    env -u CMAKE_PREFIX_PATH -u CMAKE_LIBRARY_PATH PATH="$stub:$PATH" OUT="$WORK/out" \
        bash "$ROOT/tools/gpu-check.sh" --judge-skips "$2" >"$WORK/console.log" 2>&1
    last=$?
}

judge NOGPU "$WORK/no-device.log"
expect 0 "no GPU: skips for no device are expected"
grep -q $'^CudaParity.Float64MatchesTheCpuBackend\tno CUDA device' "$WORK/out/skipped.tsv" && last=0 || last=1
expect 0 "skipped.tsv names the test and its message"
[[ $(wc -l <"$WORK/out/skipped.tsv") -eq 2 ]] && last=0 || last=1
expect 0 "two skips found, the passing test not counted"
judge GPU "$WORK/no-device.log"
expect 1 "a GPU seen and a test skipped for no device: failure"
grep -q 'gpu-tests  FAIL     1 of 2' "$WORK/out/summary.txt" && last=0 || last=1
expect 0 "the summary counts the one no-device skip of two"
judge GPU "$WORK/device.log"
expect 0 "a GPU seen, only the tests that skip because a device is present: no failure"
grep -q 'unbound variable' "$WORK/console.log" && last=1 || last=0
expect 0 "no unbound variable with CMAKE_PREFIX_PATH unset"

((failures == 0))
