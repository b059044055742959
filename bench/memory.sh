#!/usr/bin/env bash
# Peak resident memory of `collapse-sweep run` against the grid size and the
# batch size (issue 6: it must be bounded by the batch, not the grid).
#
#   bench/memory.sh [--quick]        BUILD_DIR (default build), GRIDS, BATCHES
#
# A tiny sweep (K = 2, n = 2, d = 2, h = 0, 20 gd steps, 4 record points,
# float64, compressed HDF5 output with the theory diagnostics) over `seeds`
# only, so the grid size is the trajectory count. Each point is one run under
# /usr/bin/time (peak RSS = its %M, the kernel's ru_maxrss); the output file
# goes to a scratch directory and is deleted. Prints a Markdown table.
#   GRIDS   trajectory counts      (default 100000 300000 1000000 3000000; --quick: 100000 1000000)
#   BATCHES --batch-size values    (default 4096 32768)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
exe=$BUILD_DIR/collapse-sweep
[[ -x $exe ]] || { echo "memory.sh: $exe not built" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "memory.sh: needs GNU time (/usr/bin/time)" >&2; exit 1; }
grids=${GRIDS:-100000 300000 1000000 3000000}
[[ ${1:-} == --quick ]] && grids=${GRIDS:-100000 1000000}
batches=${BATCHES:-4096 32768}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/collapse-memory.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
cat >"$scratch/tiny.toml" <<'EOF'
[model]
kind = "embedding"
classes = 2
samples_per_class = 2
dim = 2

[integrator]
method = "gd"
max_steps = 20
precision = "float64"

[grid]
frustration = [0.0]
head_dim = [0]
lr = [0.1]
seeds = 1000
seed = 0

[collapse]
metric = "label"
threshold = 0.05

[output]
record_points = 4
EOF

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
echo "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?'), $exe"
echo
echo "| trajectories | batch | peak RSS (MiB) | wall (s) | file (MB) |"
echo "| ---: | ---: | ---: | ---: | ---: |"
for batch in $batches; do
    for grid in $grids; do
        out=$scratch/t.h5
        rm -f "$out"
        /usr/bin/time -o "$scratch/time" -f '%M %e' \
            "$exe" run "$scratch/tiny.toml" -o "$out" --quiet --backend cpu --batch-size "$batch" \
            --set "grid.seeds=$grid" >"$scratch/log" 2>&1 || { cat "$scratch/log" >&2; exit 1; }
        read -r kib wall <"$scratch/time"
        bytes=$(stat -c %s "$out")
        awk -v g="$grid" -v b="$batch" -v k="$kib" -v w="$wall" -v f="$bytes" \
            'BEGIN { printf "| %d | %d | %.1f | %.1f | %.0f |\n", g, b, k / 1024, w, f / 1e6 }'
    done
done
