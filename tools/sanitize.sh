#!/usr/bin/env bash
# The unit tests of the input-facing modules (sweep parser, scheduler,
# storage) built with AddressSanitizer and UndefinedBehaviorSanitizer, then
# the libFuzzer pass over the spec parser (tools/fuzz.sh). Run by
# tools/test.sh after ctest. test_core is left out: its per-dimension model
# instantiations take many minutes to compile with the sanitizers on 2 cores.
#   SANITIZE_BUILD_DIR  build directory (default build-sanitize)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${SANITIZE_BUILD_DIR:-build-sanitize}
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOLLAPSE_CUDA=OFF -DCOLLAPSE_BENCH=OFF \
      -DCOLLAPSE_NATIVE=OFF "${launcher[@]}" -DCMAKE_CXX_FLAGS="$flags" \
      -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build "$dir" -j"$(nproc)" --target test_sweep_parser test_scheduler test_storage
# Leak checking is off: HDF5 and OpenMP keep global
# state until exit by design.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$dir/tests/sweep/test_sweep_parser" --gtest_brief=1
# Peak-RSS tests measure the allocator, which ASan replaces (its quarantine alone holds 256 MiB).
no_rss="--gtest_filter=-*MemoryIsBounded*"
"$dir/tests/scheduler/test_scheduler" --gtest_brief=1 "$no_rss"
"$dir/tests/storage/test_storage" --gtest_brief=1 "$no_rss"
bash tools/fuzz.sh
