#!/usr/bin/env bash
# Fuzzes the sweep-file and --set parser with libFuzzer (clang,
# -fsanitize=fuzzer,address,undefined) for a bounded time; toml++ is compiled
# in (header-only mode) so that its code is instrumented too. A crash, a
# sanitizer report, a leak, an exception other than SpecError or a slow input
# fails the script and leaves the input in $FUZZ_DIR/crash-* (make it a
# regression test in tests/sweep). NDEBUG as in the shipped build: toml++
# 3.3 asserts on a control character where a table header's key should be
# (parser.inl:3037) and, with the assertion off as in Debian's library,
# reports the malformed TOML correctly (tests/sweep/test_spec_limits.cpp).
#   FUZZ_SECONDS  total fuzzing time (default 40)
#   FUZZ_DIR      build and work directory (default build-fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-40}
dir=${FUZZ_DIR:-build-fuzz}
compiler=$(command -v clang++-14 || command -v clang++ || true)
if [ -z "$compiler" ]; then
    echo "fuzz: no clang++ (tools/setup.sh installs clang-14 and libclang-rt-14-dev)" >&2
    exit 1
fi
mkdir -p "$dir/corpus"
# The collapse_sweep library's sources, read from its CMakeLists.txt so the
# two lists cannot drift apart (a new source once broke the fuzz link).
mapfile -t library_sources < <(sed -n '/^add_library(collapse_sweep STATIC/,/)/p' src/sweep/CMakeLists.txt |
                               grep -o '[A-Za-z0-9_]*\.cpp' | sed 's|^|src/sweep/|')
sources=("${library_sources[@]}" tests/fuzz/fuzz_spec_parser.cpp)
binary="$dir/fuzz_spec_parser"
newest_source=$(ls -t "${sources[@]}" include/collapse/sweep/*.hpp src/sweep/*.hpp tools/fuzz.sh | head -1)
if [ ! -x "$binary" ] || [ "$newest_source" -nt "$binary" ]; then
    echo "fuzz: building $binary"
    ${CCACHE:-$(command -v ccache || true)} "$compiler" -std=c++20 -O1 -g -fno-omit-frame-pointer \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -DNDEBUG -DTOML_HEADER_ONLY=1 -DTOML_EXCEPTIONS=1 -Iinclude -Isrc/sweep "${sources[@]}" -o "$binary"
fi
cp -n tests/fuzz/corpus/* "$dir/corpus/" 2>/dev/null || true
echo "fuzz: running for ${seconds} s"
cd "$dir"
ASAN_OPTIONS=allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ./fuzz_spec_parser corpus -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1 -close_fd_mask=1 2>&1 | tail -25
