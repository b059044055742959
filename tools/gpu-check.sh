#!/usr/bin/env bash
# GPU session kit: one call on a lent GPU machine builds the project for sm_90,
# runs every test (the GPU ones included), runs the benchmarks, writes full
# logs under $OUT and prints a short table last. See docs/cuda-backend.md,
# "Checking on a GPU".
#
#   tools/gpu-check.sh [all | build | test | bench | crossover]...   on the GPU machine (default: all;
#                                                    crossover, the lockstep path's size rule, only when named)
#   tools/gpu-check.sh --fetch-deps                      here, with network: .debs into .gpu-deps/
#
# The GPU machine has no network. When it lacks the storage/CLI dependencies
# (HDF5, toml++, CLI11) the full project cannot configure, and the script
# builds kernels/standalone instead: the CUDA backend, test_core,
# test_backend and bench_backends. GoogleTest and LAPACK, which those tests
# need, can travel as Debian packages: run --fetch-deps here, then carry
# .gpu-deps (listed in .git/info/exclude) with the run.
#
# Environment: OUT (logs; default ./gpu-check-out), JOBS (default nproc),
# CUDA_ARCH (default 90), PEAK_GFLOPS (FP32 peak for %peak; default 67000,
# the H100 SXM datasheet figure), BENCH_ARGS (extra bench_backends flags),
# TORCH_ARGS (extra bench/baselines/pytorch_baseline.py flags), GPU_CHECK_BUILD=core (skip the
# full project even where it would configure).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPS_DEBS="$ROOT/.gpu-deps"
# Runtime libraries and headers the standalone build needs and the GPU image may lack.
DEPS_PACKAGES="libgtest-dev liblapack-dev liblapack3 libblas-dev libblas3 libgfortran5 libquadmath0"

if [[ "${1:-}" == "--fetch-deps" ]]; then
    mkdir -p "$DEPS_DEBS" && cd "$DEPS_DEBS" || exit 1
    apt-get download $DEPS_PACKAGES || { echo "apt-get download failed (run 'apt-get update' first?)"; exit 1; }
    grep -qx '/.gpu-deps/' "$ROOT/.git/info/exclude" 2>/dev/null || echo '/.gpu-deps/' >>"$ROOT/.git/info/exclude"
    du -sh "$DEPS_DEBS"
    echo "now run on the GPU machine with carry [\".gpu-deps\"]: bash tools/gpu-check.sh"
    exit 0
fi

OUT=${OUT:-$ROOT/gpu-check-out}
JOBS=${JOBS:-$(nproc)}
CUDA_ARCH=${CUDA_ARCH:-90}
PEAK_GFLOPS=${PEAK_GFLOPS:-67000}
STAGES=("$@")
[[ ${#STAGES[@]} -eq 0 ]] && STAGES=(all)
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
# At most 8 files come back from $OUT: env, build, resources, ctest, bench, pytorch, summary (+ crossover).

wants() { local s; for s in "${STAGES[@]}"; do [[ $s == all || $s == "$1" ]] && return 0; done; return 1; }
note() { printf '%-10s %-8s %s\n' "$1" "$2" "$3" | tee -a "$SUMMARY"; }
have() { command -v "$1" >/dev/null 2>&1; }

cd "$ROOT" || exit 1
[[ -x /usr/local/cuda/bin/nvcc ]] && export PATH="/usr/local/cuda/bin:$PATH"

# ---- environment and dependencies --------------------------------------------------
{
    echo "== machine"; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
    echo "== tools"; nvcc --version 2>&1 | tail -2; cmake --version 2>&1 | head -1; g++ --version 2>&1 | head -1
    echo "nproc $(nproc)"; have ninja && echo "ninja $(ninja --version)"
} >"$OUT/env.log" 2>&1

if compgen -G "$DEPS_DEBS/*.deb" >/dev/null; then
    # Unpacked beside /, never into it: a foreign package can break the image.
    PREFIX=/tmp/gpu-deps
    mkdir -p "$PREFIX"
    for deb in "$DEPS_DEBS"/*.deb; do dpkg-deb -x "$deb" "$PREFIX" || echo "could not unpack $deb" >>"$OUT/env.log"; done
    LIBDIR="$PREFIX/usr/lib/x86_64-linux-gnu"
    export CMAKE_PREFIX_PATH="$PREFIX/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
    export CMAKE_LIBRARY_PATH="$LIBDIR/lapack:$LIBDIR/blas:$LIBDIR${CMAKE_LIBRARY_PATH:+:$CMAKE_LIBRARY_PATH}"
    # Appended, so the image's own libraries win where both exist.
    export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$LIBDIR/lapack:$LIBDIR/blas:$LIBDIR"
    echo "== carried packages unpacked into $PREFIX: $(ls "$DEPS_DEBS" | tr '\n' ' ')" >>"$OUT/env.log"
fi

# name | found? | what needs it. Checked the way CMake will look, roughly; the
# configure step below is the final word.
probe() {
    local name=$1 found=$2 needed_by=$3
    printf '%-12s %-8s %s\n' "$name" "$found" "$needed_by" >>"$OUT/env.log"
    [[ $found == yes ]]
}
find_file_in() { local pattern=$1; shift; find "$@" -maxdepth 6 -path "$pattern" -print -quit 2>/dev/null | grep -q .; }
# Where CMake looks by default, plus the carried packages; not /opt (Python envs CMake would not use).
SEARCH_DIRS=(/usr/include /usr/local/include /usr/lib /usr/local/lib /usr/share ${CMAKE_PREFIX_PATH//:/ })
echo "== dependencies" >>"$OUT/env.log"
probe nvcc "$(have nvcc && echo yes || echo MISSING)" "everything CUDA"
probe cmake "$(have cmake && echo yes || echo MISSING)" "everything"
probe openmp "$(echo 'int main(){}' | g++ -fopenmp -x c++ - -o /dev/null 2>/dev/null && echo yes || echo MISSING)" "CPU backend"
FULL=1
probe hdf5 "$(find_file_in '*/hdf5.h' "${SEARCH_DIRS[@]}" && echo yes || echo MISSING)" "storage, CLI (full build)" || FULL=0
probe toml++ "$(find_file_in '*/toml++/toml.h*' "${SEARCH_DIRS[@]}" && echo yes || echo MISSING)" "spec parser (full build)" || FULL=0
probe CLI11 "$(find_file_in '*/CLI/CLI.hpp' "${SEARCH_DIRS[@]}" && echo yes || echo MISSING)" "CLI (full build)" || FULL=0
probe gtest "$(find_file_in '*/GTestConfig.cmake' "${SEARCH_DIRS[@]}" && echo yes || echo MISSING)" "all tests" \
    || echo "   -> carry GoogleTest: run 'tools/gpu-check.sh --fetch-deps' where there is network" >>"$OUT/env.log"
probe lapack "$(find_file_in '*/liblapack.so*' "${SEARCH_DIRS[@]}" && echo yes || echo MISSING)" "test_core" || true
probe torch "$(python3 -c 'import torch' 2>/dev/null && echo yes || echo MISSING)" "bench/baselines/pytorch_baseline.py" || true
grep -A20 '== dependencies' "$OUT/env.log" | grep -q MISSING && note deps warn "missing: $(grep MISSING "$OUT/env.log" | awk '{print $1}' | tr '\n' ' ')(see env.log)" || note deps ok "all found"

# ---- build ------------------------------------------------------------------------
GENERATOR=()
have ninja && GENERATOR=(-G Ninja)
BUILD="$ROOT/build-gpu"
BUILD_MARKER=/tmp/gpu-check-build-dir # which build the later stages use; lives as long as the machine
configure_full() {
    cmake -S "$ROOT" -B "$BUILD" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release -DCOLLAPSE_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" -DCOLLAPSE_TESTS=ON -DCOLLAPSE_BENCH=ON
}
configure_core() {
    BUILD="$ROOT/build-gpu-core"
    cmake -S "$ROOT/kernels/standalone" -B "$BUILD" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH"
}
if wants build || [[ ! -f $BUILD_MARKER ]]; then
    {
        BUILT=""
        if [[ ${GPU_CHECK_BUILD:-auto} != core && $FULL == 1 ]] && configure_full; then
            BUILT=full
        else
            echo "== full project does not configure here; building kernels/standalone"
            configure_core && BUILT=core
        fi
        echo "BUILT=$BUILT BUILD=$BUILD"
        [[ -n $BUILT ]] && cmake --build "$BUILD" -j "$JOBS"
    } >"$OUT/build.log" 2>&1
    status=$?
    BUILD=$(sed -n 's/^BUILT=[a-z]* BUILD=//p' "$OUT/build.log" | tail -1)
    kind=$(sed -n 's/^BUILT=\([a-z]*\) .*/\1/p' "$OUT/build.log" | tail -1)
    echo "$BUILD" >"$BUILD_MARKER"
    if [[ $status -eq 0 && -n $kind ]]; then
        note build ok "$kind build in ${BUILD#$ROOT/} (warnings: $(grep -c 'warning:' "$OUT/build.log"))"
    else
        note build FAIL "see build.log: $(grep -m1 -E 'error:|CMake Error|Error [0-9]' "$OUT/build.log")"
    fi
    # Registers, stack frame and shared memory of each kernel, for the tuning notes.
    lib=$(find "$BUILD" -name libcollapse_cuda.a -print -quit 2>/dev/null)
    if [[ -n $lib ]] && have cuobjdump; then
        cuobjdump --dump-resource-usage "$lib" >"$OUT/resources.log" 2>&1
    fi
else
    BUILD=$(cat "$BUILD_MARKER")
fi

# ---- tests ------------------------------------------------------------------------
if wants test; then
    if [[ -f "$BUILD/CTestTestfile.cmake" ]]; then
        timeout 420 ctest --test-dir "$BUILD" --output-on-failure --timeout 300 -j 4 >"$OUT/ctest.log" 2>&1
        status=$?
        line=$(grep -E 'tests passed|tests failed' "$OUT/ctest.log" | tail -1)
        note ctest "$([[ $status -eq 0 ]] && echo ok || echo FAIL)" "${line:-no summary (status $status)}"
        grep -A12 'The following tests FAILED' "$OUT/ctest.log" | tail -n +2 | sed 's/^/           /' | tee -a "$SUMMARY"
        # A GPU machine must not skip the GPU tests (gtest_discover_tests marks GTEST_SKIP as Skipped).
        skipped=$(grep -c '(Skipped)' "$OUT/ctest.log")
        if nvidia-smi -L >/dev/null 2>&1 && [[ $skipped -gt 0 ]]; then
            note gpu-tests FAIL "$skipped tests skipped although nvidia-smi sees a GPU (ctest.log)"
        else
            note gpu-tests ok "$skipped tests skipped"
        fi
    else
        note ctest FAIL "no tests built (GoogleTest missing? see env.log)"
    fi
fi

# ---- benchmarks -------------------------------------------------------------------
if wants bench; then
    bench=$(find "$BUILD" -name bench_backends -type f -perm -u+x -print -quit 2>/dev/null)
    if [[ -n $bench ]]; then
        # shellcheck disable=SC2086
        timeout 420 "$bench" --backends cpu,cuda-thread,cuda-team --peak-gflops "$PEAK_GFLOPS" --max-seconds 5 --repeats 3 ${BENCH_ARGS:-} >"$OUT/bench.log" 2>&1
        note bench "$([[ $? -eq 0 ]] && echo ok || echo FAIL)" "$(grep -c '^RESULT' "$OUT/bench.log") measurements (bench.log)"
    else
        note bench FAIL "bench_backends not built"
    fi
    if python3 -c 'import torch' 2>/dev/null; then
        {
            PYTHONUNBUFFERED=1 python3 bench/baselines/pytorch_baseline.py --check
            # shellcheck disable=SC2086
            PYTHONUNBUFFERED=1 timeout 240 python3 bench/baselines/pytorch_baseline.py --device cuda \
                --configs small,head,medium,large --steps 100 ${TORCH_ARGS:-}
        } >"$OUT/pytorch.log" 2>&1
        note pytorch "$([[ $? -eq 0 ]] && echo ok || echo FAIL)" "$(grep -c '^RESULT' "$OUT/pytorch.log") measurements (pytorch.log)"
    else
        note pytorch skip "no torch in python3"
    fi
fi

# ---- lockstep crossover (docs/cuda-backend.md, "Large states: lockstep cuBLAS path") ----
# Team kernel against the lockstep cuBLAS path on shapes around a block's
# shared memory, both precisions. Not part of `all` (about 8 minutes): name it.
if [[ " ${STAGES[*]} " == *" crossover "* ]]; then
    bench=$(find "$BUILD" -name bench_backends -type f -perm -u+x -print -quit 2>/dev/null)
    if [[ -n $bench ]]; then
        for precision in float32 float64; do
            # shellcheck disable=SC2086
            timeout 240 "$bench" --backends cuda-team,cuda-lockstep --precision $precision --trajectories 256 \
                --configs "${CROSSOVER_CONFIGS:-K10n100d32h32,K10n400d32h32,K10n1000d32h32,K10n300d64h64,K10n1000d64h64,K10n3000d64h64,K10n10000d64h64}" \
                --max-seconds 3 --repeats 2 ${BENCH_ARGS:-}
        done >"$OUT/crossover.log" 2>&1
        note crossover "$([[ $? -eq 0 ]] && echo ok || echo FAIL)" "$(grep -c '^RESULT' "$OUT/crossover.log") measurements (crossover.log)"
    else
        note crossover FAIL "bench_backends not built"
    fi
fi

# ---- the table --------------------------------------------------------------------
{
    echo
    echo "== $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'no GPU seen')"
    [[ -f "$OUT/bench.log" ]] && sed -n '/^config /,$p' "$OUT/bench.log"
    [[ -f "$OUT/crossover.log" ]] && grep -E '^(config |K[0-9])' "$OUT/crossover.log"
    [[ -f "$OUT/pytorch.log" ]] && grep -E '^(small|head|medium|large) ' "$OUT/pytorch.log"
    [[ -f "$OUT/resources.log" ]] && grep -E 'Function|REG' "$OUT/resources.log" | head -24
} | tee -a "$SUMMARY"
echo "full logs: $OUT"
! grep -q ' FAIL ' "$SUMMARY"
