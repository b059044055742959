#!/usr/bin/env bash
# GPU session kit (docs/cuda-backend.md, "Device calls"): three steps, each
# one device call of at most ~6 minutes, logs under $OUT, a short table last.
#
#   tools/gpu-check.sh tests      (a) build (sm_90 only) + the GPU tests; packs the binaries into $OUT/gpu-bin.tar.gz
#   tools/gpu-check.sh bench      (b) GPU FMA peak, bench_backends (CPU and every CUDA path), PyTorch eager and
#                                     torch.compile, JAX jit+vmap
#   tools/gpu-check.sh profile    (c) Nsight Compute on a short run of one kernel; skips when ncu cannot run
#   tools/gpu-check.sh crossover      the lockstep path against the team kernel around a block's shared memory
#   Several steps run in one call in order: `tools/gpu-check.sh bench profile`.
#   tools/gpu-check.sh --fetch-deps   here, with network: GoogleTest and LAPACK as .debs into .gpu-deps/
#
# (b) and (c) use, in this order: the build directory of (a) (a warm machine
# keeps it), the binaries of (a) carried back in .gpu-bin/, or a build of
# only what they need. The GPU machine has no network and lacks HDF5, toml++,
# CLI11, GoogleTest and LAPACK: the script builds kernels/standalone (the CUDA
# backend, test_backend, test_lockstep, bench_backends, gpu_fma_peak) and
# takes GoogleTest and LAPACK from the carried .gpu-deps.
#
# Environment: OUT (default ./gpu-check-out), JOBS (default nproc), CUDA_ARCH
# (default 90-real), STEP_SECONDS (every step's budget; defaults: tests 300,
# bench 240, profile 100, crossover 300 s; phases that would not fit are
# skipped and said so), BENCH_ARGS, BENCH_BACKENDS (default: cpu and every
# cuda-* backend bench_backends offers but cuda-lockstep and
# cuda-lockstep-nograph (the lockstep path without its CUDA Graph), which run on
# `large` only), TORCH_ARGS, PROFILE (backend:config, default
# cuda-block:medium, the kernel designed for medium states), PROFILE_TRAJECTORIES (1024), NCU_SET (full),
# PROFILE_KERNELS (ncu kernel-name regex, default integrate|fused|warp; the
# lockstep path's are cuBLAS's and Thrust's),
# GPU_TESTS_EXCLUDE (ctest -E regex of the CPU-only suites CI already runs),
# GPU_CHECK_HIDE_SYSTEM_DEPS=1 (rehearsal: CMake ignores /usr, so only the
# carried dependencies are found).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPS_DEBS="$ROOT/.gpu-deps"
CARRIED_BIN="$ROOT/.gpu-bin"
# Runtime libraries and headers the standalone build needs and the GPU image may lack.
DEPS_PACKAGES="libgtest-dev liblapack-dev liblapack3 libblas-dev libblas3 libgfortran5 libquadmath0"

if [[ "${1:-}" == "--fetch-deps" ]]; then
    mkdir -p "$DEPS_DEBS" && cd "$DEPS_DEBS" || exit 1
    apt-get download $DEPS_PACKAGES || { echo "apt-get download failed (run 'apt-get update' first?)"; exit 1; }
    # .gitignore ignores .gpu-deps and .gpu-bin: they travel only when carried.
    du -sh "$DEPS_DEBS"
    echo "now, on the GPU machine, with carry [\".gpu-deps\"]: bash tools/gpu-check.sh tests"
    exit 0
fi

if [[ "${1:-}" == "--judge-skips" ]]; then JUDGE_LOG=${2:?--judge-skips LASTTEST_LOG}; set -- judge; fi
STEPS=("$@")
((${#STEPS[@]} > 0)) || STEPS=(usage)
for step in "${STEPS[@]}"; do
    case $step in
        tests | bench | profile | crossover | judge) ;;
        *) echo "usage: tools/gpu-check.sh tests|bench|profile|crossover... | --fetch-deps (docs/cuda-backend.md)" >&2
           exit 2 ;;
    esac
done

STEP_SECONDS_OVERRIDE=${STEP_SECONDS:-}
OUT=${OUT:-$ROOT/gpu-check-out}
JOBS=${JOBS:-$(nproc)}
CUDA_ARCH=${CUDA_ARCH:-90-real}
# Each step's own budget (docs/cuda-backend.md, "Device calls"); STEP_SECONDS overrides them all.
declare -A BUDGET=([tests]=300 [bench]=240 [profile]=100 [crossover]=300 [judge]=30)
STARTED=$SECONDS
STEP_SECONDS=0
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"

note() { printf '%-10s %-8s %s\n' "$1" "$2" "$3" | tee -a "$SUMMARY"; }
have() { command -v "$1" >/dev/null 2>&1; }
left() { echo $((STEP_SECONDS - (SECONDS - STARTED))); }
# A timeout for a phase that leaves MARGIN seconds of the budget to what follows
# (never 0, which `timeout` reads as no limit).
within() { local t=$(($(left) - $1)); echo $((t > 5 ? t : 5)); }
# fits SECONDS: true when that much of the step's budget is left, else notes the skip.
fits() {
    local need=$1 what=$2
    (($(left) >= need)) && return 0
    note "$what" skip "needs ~${need}s, $(left)s of STEP_SECONDS left"
    return 1
}
gpu_seen() { nvidia-smi -L >/dev/null 2>&1; }

cd "$ROOT" || exit 1
[[ -x /usr/local/cuda/bin/nvcc ]] && export PATH="/usr/local/cuda/bin:$PATH"

# ---- environment and carried dependencies ---------------------------------------------
{
    echo "== steps ${STEPS[*]}, $(date -u +%FT%TZ), commit $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
    echo "== machine"; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
    echo "== tools"; nvcc --version 2>&1 | tail -2; cmake --version 2>&1 | head -1; g++ --version 2>&1 | head -1
    echo "nproc $(nproc)"; have ninja && echo "ninja $(ninja --version)"
} >"$OUT/env.log" 2>&1

if compgen -G "$DEPS_DEBS/*.deb" >/dev/null; then
    # Unpacked beside /, never into it: a foreign package can break the image.
    PREFIX=/tmp/gpu-deps
    mkdir -p "$PREFIX"
    for deb in "$DEPS_DEBS"/*.deb; do
        if have dpkg-deb; then
            dpkg-deb -x "$deb" "$PREFIX"
        else # a .deb is an ar archive whose data.tar.* holds the files
            (cd "$PREFIX" && ar p "$deb" "$(ar t "$deb" | grep -m1 '^data\.tar')" | tar -xJf - 2>/dev/null ||
                ar p "$deb" "$(ar t "$deb" | grep -m1 '^data\.tar')" | tar -xf -)
        fi || echo "could not unpack $deb" >>"$OUT/env.log"
    done
    LIBDIR="$PREFIX/usr/lib/x86_64-linux-gnu"
    export CMAKE_PREFIX_PATH="$PREFIX/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
    export CMAKE_LIBRARY_PATH="$LIBDIR/lapack:$LIBDIR/blas:$LIBDIR${CMAKE_LIBRARY_PATH:+:$CMAKE_LIBRARY_PATH}"
    # Appended, so the image's own libraries win where both exist.
    export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$LIBDIR/lapack:$LIBDIR/blas:$LIBDIR"
    echo "== carried packages unpacked into $PREFIX: $(ls "$DEPS_DEBS" | tr '\n' ' ')" >>"$OUT/env.log"
fi

# ---- build ----------------------------------------------------------------------------
BUILD="$ROOT/build-gpu-core"
GENERATOR=()
have ninja && GENERATOR=(-G Ninja)
CONFIGURE_EXTRA=()
# Rehearsal without a GPU: find only what the carried packages bring.
[[ ${GPU_CHECK_HIDE_SYSTEM_DEPS:-0} == 1 ]] && CONFIGURE_EXTRA+=(-DCMAKE_SYSTEM_IGNORE_PREFIX_PATH=/usr)

# build TARGET...: configures kernels/standalone once, then builds the targets.
build() {
    {
        if [[ ! -f $BUILD/CMakeCache.txt ]]; then
            cmake -S "$ROOT/kernels/standalone" -B "$BUILD" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release \
                -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" "${CONFIGURE_EXTRA[@]}" || return 1
        fi
        local started=$SECONDS
        timeout "$(within 0)" cmake --build "$BUILD" -j "$JOBS" --target "$@" || return 1
        echo "BUILD_SECONDS=$((SECONDS - started)) s for $*"
    } >>"$OUT/build.log" 2>&1
}

# The path of executable NAME: the build directory, else the carried binaries.
binary() {
    local found
    found=$(find "$BUILD" -name "$1" -type f -perm -u+x -print -quit 2>/dev/null)
    [[ -z $found && -x $CARRIED_BIN/$1 ]] && found=$CARRIED_BIN/$1
    echo "$found"
}

# need NAME...: builds them where a build directory exists (ninja only redoes
# what changed, so sources edited since the last call are never run stale),
# else takes them from the carried binaries, else builds them.
need() {
    local missing=() name
    for name in "$@"; do [[ -n $(binary "$name") ]] || missing+=("$name"); done
    [[ ! -f $BUILD/CMakeCache.txt ]] && ((${#missing[@]} == 0)) && return 0
    build "$@"
    local status=$?
    if [[ $status -eq 0 ]]; then
        note build ok "$(sed -n 's/^BUILD_SECONDS=//p' "$OUT/build.log" | tail -1) (warnings: $(grep -c 'warning' "$OUT/build.log"))"
    else
        note build FAIL "see build.log: $(grep -m1 -E 'error|CMake Error|Error [0-9]|Terminated' "$OUT/build.log")"
    fi
    return $status
}

# ---- (a) tests -------------------------------------------------------------------------
# The skip message of every skipped test, from ctest's full log: "name<TAB>message".
skip_reasons() {
    # ctest 3.2x: "N/M Test: <name>", the output ("<file>:<line>: Skipped", then
    # the message), then "Skip regular expression found in output" for a skip.
    awk '
        /^[0-9]+\/[0-9]+ Test: / { name = $3; message = "" }
        /: Skipped$/ && message == "" { getline message }
        /^Skip regular expression found in output/ { print name "\t" message }
    ' "$1" 2>/dev/null
}

# judge_skips LASTTEST_LOG: only a GPU test that skipped for want of a
# device fails, and only where there is one: two tests skip *because* a
# device is present. Writes $OUT/skipped.tsv (name, message).
judge_skips() {
    skip_reasons "$1" >"$OUT/skipped.tsv"
    local skipped no_device
    skipped=$(wc -l <"$OUT/skipped.tsv")
    no_device=$(grep -c $'\tno CUDA device' "$OUT/skipped.tsv")
    if gpu_seen && ((no_device > 0)); then
        note gpu-tests FAIL "$no_device of $skipped skipped tests say 'no CUDA device' although nvidia-smi sees a GPU"
        grep $'\tno CUDA device' "$OUT/skipped.tsv" | head -5 | sed 's/^/           /' | tee -a "$SUMMARY"
        return 1
    fi
    note gpu-tests ok "$skipped skipped ($no_device for no device$(gpu_seen || echo ', and there is none'))"
}

step_tests() {
    need test_backend test_lockstep bench_backends gpu_fma_peak || return 1
    # Registers, stack frame and shared memory of each kernel, for the tuning notes.
    local lib
    lib=$(find "$BUILD" -name libcollapse_cuda.a -print -quit 2>/dev/null)
    [[ -n $lib ]] && have cuobjdump && cuobjdump --dump-resource-usage "$lib" >"$OUT/resources.log" 2>&1
    # The suites that need no device run in CI; here only what touches the GPU.
    local exclude=${GPU_TESTS_EXCLUDE:-HostEmulation|LockstepHost\.|LockstepGemm\.|InitialStateGeneration\.|ParityGrid\.|TeamLaunchPlan\.|DeviceLimits\.|DeviceMemoryTenancy\.|CublasSearch\.}
    fits 60 ctest || return 1
    timeout "$(within 15)" ctest --test-dir "$BUILD" -L backend -E "$exclude" --output-on-failure \
        --timeout 240 -j 4 >"$OUT/ctest.log" 2>&1
    local status=$? line
    line=$(grep -E 'tests passed|tests failed' "$OUT/ctest.log" | tail -1)
    # No summary line means no tests ran (GoogleTest not found?): a failure too.
    [[ -z $line ]] && status=1
    note ctest "$([[ $status -eq 0 ]] && echo ok || echo FAIL)" "${line:-no tests ran (status $status; build.log says whether GoogleTest was found)}"
    grep -A12 'The following tests FAILED' "$OUT/ctest.log" | tail -n +2 | sed 's/^/           /' | tee -a "$SUMMARY"
    judge_skips "$BUILD/Testing/Temporary/LastTest.log" || status=1
    # The binaries, so that (b) and (c) need no build on a fresh machine (carry .gpu-bin).
    local bins=() name
    for name in bench_backends gpu_fma_peak; do [[ -n $(binary "$name") ]] && bins+=("$(binary "$name")"); done
    tar -czf "$OUT/gpu-bin.tar.gz" --transform 's|.*/||' "${bins[@]}" 2>>"$OUT/build.log" &&
        note gpu-bin ok "$(du -h "$OUT/gpu-bin.tar.gz" | cut -f1) (unpack into .gpu-bin/, carry it for bench/profile)"
    return $status
}

# --judge-skips LOG (tests/tools: the skip rule on a recorded LastTest.log).
step_judge() { judge_skips "$JUDGE_LOG"; }

# ---- (b) benchmarks and baselines -----------------------------------------------------
cuda_backends() {
    "$1" --help | grep -o 'cuda-[a-z0-9-]*' | sort -u | grep -v '^cuda-lockstep' | paste -sd, -
}

step_bench() {
    need bench_backends gpu_fma_peak || return 1
    local bench peak=0
    bench=$(binary bench_backends)
    if gpu_seen; then
        timeout 60 "$(binary gpu_fma_peak)" >"$OUT/peak.log" 2>&1
        peak=$(sed -n 's/^RESULT .*"fp32".*"peak_gflops":\([0-9.e+]*\).*/\1/p' "$OUT/peak.log")
        note peak "$([[ -n $peak ]] && echo ok || echo FAIL)" "FP32 FMA peak ${peak:-?} GFLOP/s (peak.log)"
    fi
    local backends=${BENCH_BACKENDS:-cpu,$(cuda_backends "$bench")}
    # Small states need many trajectories to fill the GPU; large ones need the memory.
    if fits 150 bench; then
        # shellcheck disable=SC2086
        {
            timeout "$(within 100)" "$bench" --backends "$backends" --configs small,head,medium \
                --trajectories 8192 --peak-gflops "${peak:-0}" --max-seconds 2 --repeats 2 ${BENCH_ARGS:-}
            timeout "$(within 80)" "$bench" --backends "$backends,cuda-lockstep,cuda-lockstep-nograph" --configs large \
                --trajectories 1024 --peak-gflops "${peak:-0}" --max-seconds 2 --repeats 2 ${BENCH_ARGS:-}
        } >"$OUT/bench.log" 2>&1
        note bench "$([[ $? -eq 0 ]] && echo ok || echo FAIL)" "$(grep -c '^RESULT' "$OUT/bench.log") measurements (bench.log)"
    fi
    if python3 -c 'import torch' 2>/dev/null; then
        if fits 40 pytorch; then
            # shellcheck disable=SC2086
            {
                PYTHONUNBUFFERED=1 python3 bench/baselines/pytorch_baseline.py --check
                PYTHONUNBUFFERED=1 timeout 60 python3 bench/baselines/pytorch_baseline.py --device cuda \
                    --configs small,head,medium,large --steps 50 ${TORCH_ARGS:-}
                ((LEFT_FOR_COMPILE = $(left) - 25)) # JAX after it needs ~20 s
                ((LEFT_FOR_COMPILE > 30)) && PYTHONUNBUFFERED=1 timeout "$LEFT_FOR_COMPILE" python3 \
                    bench/baselines/pytorch_baseline.py --device cuda --compile --configs medium,small,head,large \
                    --steps 50 ${TORCH_ARGS:-}
            } >>"$OUT/baselines.log" 2>&1
            note pytorch "$(grep -q '^RESULT.*pytorch' "$OUT/baselines.log" && echo ok || echo FAIL)" \
                "$(grep -c '^RESULT.*pytorch-cuda"' "$OUT/baselines.log") eager, $(grep -c '^RESULT.*compile' "$OUT/baselines.log") torch.compile (baselines.log)"
        fi
    else
        note pytorch skip "no torch in python3"
    fi
    if python3 -c 'import jax' 2>/dev/null; then
        if fits 20 jax; then
            PYTHONUNBUFFERED=1 timeout "$(within 5)" python3 bench/baselines/jax_baseline.py \
                --configs small,head,medium,large --steps 50 >>"$OUT/baselines.log" 2>&1
            note jax "$(grep -q '^RESULT.*jax' "$OUT/baselines.log" && echo ok || echo FAIL)" "$(grep -c '^RESULT.*jax' "$OUT/baselines.log") measurements (baselines.log)"
        fi
    else
        note jax skip "no jax in python3"
    fi
}

# ---- (c) profile ----------------------------------------------------------------------
find_ncu() {
    local candidate
    for candidate in "$(command -v ncu 2>/dev/null)" /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu; do
        [[ -n $candidate && -x $candidate ]] && { echo "$candidate"; return 0; }
    done
    return 1
}

step_profile() {
    local ncu target=${PROFILE:-cuda-block:medium}
    if ! ncu=$(find_ncu); then note profile skip "no Nsight Compute (ncu) on this machine"; return 0; fi
    if ! gpu_seen; then note profile skip "no GPU: ncu has nothing to profile"; return 0; fi
    need bench_backends || return 1
    local backend=${target%%:*} config=${target#*:}
    fits 60 profile || return 1
    # One launch of the chosen path's kernel on a short run (the 10-step
    # calibration launch of bench_backends), clocks as the card runs them.
    # shellcheck disable=SC2086
    timeout "$(within 20)" "$ncu" --clock-control none --set "${NCU_SET:-full}" --kernel-name "regex:${PROFILE_KERNELS:-integrate|fused|warp}" \
        --launch-count 1 --force-overwrite -o "$OUT/profile" \
        "$(binary bench_backends)" --backends "$backend" --configs "$config" --trajectories "${PROFILE_TRAJECTORIES:-1024}" \
        --steps 10 --max-seconds 1 --repeats 1 >"$OUT/profile.txt" 2>&1
    local status=$?
    local refused='LibraryNotLoaded|ERR_NVGPUCTRPERM|not supported|Failed to initialize'
    if [[ $status -ne 0 ]] || [[ ! -f $OUT/profile.ncu-rep ]]; then
        if grep -qE "$refused" "$OUT/profile.txt"; then
            note profile skip "ncu cannot read the counters here: $(grep -m1 -E "$refused" "$OUT/profile.txt")"
            return 0
        fi
        note profile FAIL "ncu status $status (profile.txt)"
        return 1
    fi
    "$ncu" --import "$OUT/profile.ncu-rep" --page details >>"$OUT/profile.txt" 2>&1
    note profile ok "$target: profile.ncu-rep, details in profile.txt"
    grep -E 'Duration|Compute \(SM\) Throughput|Memory Throughput|Registers Per Thread|Achieved Occupancy|Theoretical Occupancy|Block Limit' \
        "$OUT/profile.txt" | head -12 | sed 's/^ */           /' | tee -a "$SUMMARY"
}

# ---- lockstep crossover (docs/cuda-backend.md, "Large states: lockstep cuBLAS path") ---
step_crossover() {
    need bench_backends || return 1
    local bench precision
    bench=$(binary bench_backends)
    for precision in float32 float64; do
        # shellcheck disable=SC2086
        timeout "$(($(within 0) / 2))" "$bench" --backends cuda-team,cuda-block,cuda-lockstep --precision $precision --trajectories 256 \
            --configs "${CROSSOVER_CONFIGS:-K10n100d32h32,K10n400d32h32,K10n1000d32h32,K10n300d64h64,K10n1000d64h64,K10n3000d64h64,K10n10000d64h64}" \
            --max-seconds 2 --repeats 2 ${BENCH_ARGS:-}
    done >"$OUT/crossover.log" 2>&1
    note crossover "$([[ $? -eq 0 ]] && echo ok || echo FAIL)" "$(grep -c '^RESULT' "$OUT/crossover.log") measurements (crossover.log)"
}

# Each step has its own STEP_SECONDS: `bench profile` in one call takes up to twice that.
for step in "${STEPS[@]}"; do
    STARTED=$SECONDS
    STEP_SECONDS=${STEP_SECONDS_OVERRIDE:-${BUDGET[$step]}}
    "step_$step"
done

# ---- the table ------------------------------------------------------------------------
{
    echo
    echo "== ${STEPS[*]}: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'no GPU seen'), ${SECONDS} s"
    [[ -f "$OUT/peak.log" ]] && grep -E '^fp(32|64) ' "$OUT/peak.log"
    [[ -f "$OUT/bench.log" ]] && grep -E '^(config |small|head|medium|large) ' "$OUT/bench.log"
    [[ -f "$OUT/crossover.log" ]] && grep -E '^(config |K[0-9])' "$OUT/crossover.log"
    [[ -f "$OUT/baselines.log" ]] && grep -E '^(small|head|medium|large) ' "$OUT/baselines.log"
    [[ -f "$OUT/resources.log" ]] && grep -E 'Function|REG' "$OUT/resources.log" | head -24
} | tee -a "$SUMMARY"
echo "full logs: $OUT"
! grep -q ' FAIL ' "$SUMMARY"
