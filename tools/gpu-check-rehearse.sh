#!/usr/bin/env bash
# Rehearses the device calls of tools/gpu-check.sh here, without a GPU
# (docs/cuda-backend.md, "Device calls"): a copy of what travels (tracked and
# untracked-not-ignored files, plus the carried .gpu-deps), CMAKE_PREFIX_PATH
# unset, CMake blind to /usr so only the carried GoogleTest and LAPACK are
# found, and each step run with its own fake $OUT. Checks every step's exit
# status and that what it leaves under $OUT would come back (at most 8 files,
# 16 MiB each, 64 MiB in all, two folders deep, plain names), and that the
# tree and the carried paths stay under 64 MiB. Then step (b) once more on a
# "fresh machine": no build directory, the binaries of (a) carried in .gpu-bin.
# The calls are those of docs/cuda-backend.md: `tests`, then `bench profile`.
#
#   bash tools/gpu-check-rehearse.sh [WORKDIR=/tmp/gpu-rehearsal]    (~20 min on 2 busy cores)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${1:-/tmp/gpu-rehearsal}
LIMIT=$((64 * 1024 * 1024))
failures=0
fail() { echo "REHEARSAL FAIL: $*"; failures=$((failures + 1)); }

[[ -d $ROOT/.gpu-deps ]] || bash "$ROOT/tools/gpu-check.sh" --fetch-deps || exit 1

rm -rf "$WORK" && mkdir -p "$WORK/tree" || exit 1
# What a device call sends: tracked and untracked-not-ignored files, then the carried paths.
(cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 tar -cf - 2>/dev/null) | tar -xf - -C "$WORK/tree"
tree_bytes=$(du -sb "$WORK/tree" | cut -f1)
cp -r "$ROOT/.gpu-deps" "$WORK/tree/.gpu-deps"
carried_bytes=$(du -sb "$WORK/tree/.gpu-deps" | cut -f1)
echo "travels: tree $((tree_bytes / 1024)) KiB + .gpu-deps $((carried_bytes / 1024)) KiB"
((tree_bytes + carried_bytes < LIMIT)) || fail "tree + .gpu-deps over 64 MiB"

# check_out DIR: what the device tool would bring back from $OUT.
check_out() {
    local dir=$1 files total
    files=$(find "$dir" -type f | wc -l)
    total=$(du -sb "$dir" | cut -f1)
    echo "  \$OUT: $files files, $((total / 1024)) KiB: $(cd "$dir" && find . -type f -printf '%P(%sB) ' )"
    ((files <= 8)) || fail "$dir: $files files (at most 8 come back)"
    ((total <= LIMIT)) || fail "$dir: $total bytes (at most 64 MiB come back)"
    find "$dir" -type f -size +16M | grep -q . && fail "$dir: a file over 16 MiB"
    find "$dir" -mindepth 3 -type f | grep -q . && fail "$dir: a file more than two folders down"
    find "$dir" -mindepth 1 | sed "s|^$dir/||" | grep -vE '^[A-Za-z0-9._/-]+$' | grep -q . && fail "$dir: odd names"
}

# call LABEL STEP...: runs `tools/gpu-check.sh STEP...` as one device call would.
call() {
    local label=$1 out="$WORK/out-$1" started=$SECONDS
    shift
    mkdir -p "$out"
    echo "== call $label: tools/gpu-check.sh $*"
    (cd "$WORK/tree" && env -u CMAKE_PREFIX_PATH -u CMAKE_LIBRARY_PATH OUT="$out" GPU_CHECK_HIDE_SYSTEM_DEPS=1 \
        STEP_SECONDS="${REHEARSAL_STEP_SECONDS:-3600}" bash tools/gpu-check.sh "$@") >"$WORK/console-$label.log" 2>&1
    local status=$?
    tail -n 25 "$WORK/console-$label.log" | sed 's/^/  | /'
    echo "  exit $status after $((SECONDS - started)) s"
    ((status == 0)) || fail "call $label exited $status"
    check_out "$out"
}

# Compiler caches, where this machine has them, only to spare its cores; the device has none.
if command -v ccache >/dev/null; then
    export CMAKE_CXX_COMPILER_LAUNCHER=ccache CMAKE_CUDA_COMPILER_LAUNCHER=ccache CCACHE_BASEDIR=${CCACHE_BASEDIR:-/work}
fi

call tests tests
grep -q 'Could NOT find GTest\|GoogleTest not found' "$WORK/out-tests/build.log" && fail "GoogleTest not found from .gpu-deps"
grep -q 'ctest  *ok' "$WORK/out-tests/summary.txt" || fail "the GPU tests did not pass (console-tests.log)"
call bench-profile bench profile
# A fresh machine for (b)+(c): no build directory, the binaries of (a) carried back.
rm -rf "$WORK/tree/build-gpu-core" && mkdir -p "$WORK/tree/.gpu-bin"
tar -xzf "$WORK/out-tests/gpu-bin.tar.gz" -C "$WORK/tree/.gpu-bin" || fail "gpu-bin.tar.gz does not unpack"
bin_bytes=$(du -sb "$WORK/tree/.gpu-bin" | cut -f1)
echo "carried .gpu-bin: $((bin_bytes / 1024)) KiB"
((tree_bytes + carried_bytes + bin_bytes < LIMIT)) || fail "tree + .gpu-deps + .gpu-bin over 64 MiB"
call bench-profile-fresh bench profile
grep -q '^build ' "$WORK/out-bench-profile-fresh/summary.txt" && fail "bench rebuilt although .gpu-bin was carried"

echo "rehearsal: $failures failures (logs in $WORK)"
((failures == 0))
