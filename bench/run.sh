#!/usr/bin/env bash
# The engine's CPU backend against the NumPy and PyTorch baselines on the same
# configurations, in one table: trajectory-steps/s, the engine's ratio to each
# baseline, its GFLOP/s (FLOP count of docs/performance.md) and the fraction of
# the FP32 FMA peak of the cores it used, measured here by bench/fma_peak.
#
#   bench/run.sh [--quick] [--trajectories N] [--steps S] [--baseline-steps S]
#                [--threads T] [--repeats R] [--configs small,head,medium]
#
#   configs  small  K=4  n=50  d=8  h=0  (plain model)
#            head   K=4  n=50  d=8  h=8  stop-gradient
#            medium K=10 n=100 d=32 h=32 stop-gradient
#   all: gd, float32, f = 0.1, lr = 0.05, no early stop; 1024 trajectories.
#
# The engine runs N trajectories x S steps (default 1024 x 2000). The
# baselines do the same fixed work every step, so they run N trajectories for
# --baseline-steps steps (default 20, after 2 warm-up steps): a full 2000-step
# NumPy run of `medium` would take half an hour. --quick: N = 128, S = 400,
# baseline steps 10. Each measurement is repeated R times (default 3); the
# table shows the best, RESULT lines keep all. PyTorch runs where
# .venv-bench/bin/python can import torch (bench/baselines/README.md), also on
# CUDA when a GPU is visible; otherwise its columns say "-".
#
# Environment: BUILD_DIR (default build; needs bench_backends and fma_peak),
# NUMPY_PYTHON (default .venv/bin/python), TORCH_PYTHON (default
# .venv-bench/bin/python). Raw output goes to $BUILD_DIR/bench-run.log.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
NUMPY_PYTHON=${NUMPY_PYTHON:-$ROOT/.venv/bin/python}
TORCH_PYTHON=${TORCH_PYTHON:-$ROOT/.venv-bench/bin/python}

trajectories=1024 steps=2000 baseline_steps=20 threads=$(nproc) repeats=3 configs=small,head,medium
while [[ $# -gt 0 ]]; do
    case $1 in
    --quick) trajectories=128 steps=400 baseline_steps=10; shift ;;
    --trajectories) trajectories=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --baseline-steps) baseline_steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    -h | --help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

bench=$BUILD_DIR/bench/bench_backends peak=$BUILD_DIR/bench/fma_peak
for tool in "$bench" "$peak"; do
    [[ -x $tool ]] || { echo "run.sh: $tool not built (cmake --build $BUILD_DIR)" >&2; exit 1; }
done
log=$BUILD_DIR/bench-run.log
: >"$log"
say() { echo "$*" | tee -a "$log" >&2; }

say "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, threads $threads"
say "== load before: $(cut -d' ' -f1-3 /proc/loadavg)"

say "-- FP32 FMA peak (bench/fma_peak)"
"$peak" --threads "$threads" --seconds 0.5 --repeats 5 | tee -a "$log" >&2

say "-- engine: bench_backends, $trajectories trajectories x $steps steps, $repeats repeats"
"$bench" --backends cpu --configs "$configs" --trajectories "$trajectories" --steps 50 --full 1 \
    --threads "$threads" --repeats 1 --max-seconds 1e9 >/dev/null # warm-up: page-in, frequency
for ((r = 0; r < repeats; ++r)); do
    "$bench" --backends cpu --configs "$configs" --trajectories "$trajectories" --steps "$steps" --full 1 \
        --threads "$threads" --repeats 1 --max-seconds 1e9 | grep '^RESULT' | tee -a "$log" >&2
done

# The OpenBLAS tuning variables some images set slow current NumPy down; the
# benchmark runs NumPy as it runs out of the box (tests and CI keep them).
say "-- numpy baseline, $trajectories trajectories x $baseline_steps steps"
if [[ -x $NUMPY_PYTHON ]]; then
    for ((r = 0; r < repeats; ++r)); do
        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" \
            "$NUMPY_PYTHON" "$ROOT/bench/baselines/numpy_baseline.py" --configs "$configs" \
            --trajectories "$trajectories" --steps "$baseline_steps" | grep '^RESULT' | tee -a "$log" >&2
    done
else
    say "no $NUMPY_PYTHON: numpy skipped (tools/setup.sh makes it)"
fi

say "-- pytorch baseline, $trajectories trajectories x $baseline_steps steps"
if [[ -x $TORCH_PYTHON ]] && "$TORCH_PYTHON" -c 'import torch' 2>/dev/null; then
    devices=cpu
    "$TORCH_PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' && devices="cpu cuda"
    for device in $devices; do
        for ((r = 0; r < repeats; ++r)); do
            "$TORCH_PYTHON" "$ROOT/bench/baselines/pytorch_baseline.py" --device "$device" --threads "$threads" \
                --configs "$configs" --trajectories "$trajectories" --steps "$baseline_steps" |
                grep '^RESULT' | tee -a "$log" >&2
        done
    done
else
    say "no torch in $TORCH_PYTHON: pytorch skipped (bench/baselines/README.md)"
fi
say "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# One table from the RESULT lines: best of the repeats per (config, backend).
python3 - "$log" "$threads" <<'PY'
import json, sys
log, threads = sys.argv[1], int(sys.argv[2])
rows, peak = {}, None
for line in open(log):
    if not line.startswith("RESULT "):
        continue
    r = json.loads(line[7:])
    if "isa" in r:  # fma_peak
        if r["precision"] == "float32" and r["threads"] == threads:
            peak = r["best_gflops"]
        continue
    key = (r["config"], r["backend"])
    if key not in rows or r["trajectory_steps_per_s"] > rows[key]["trajectory_steps_per_s"]:
        rows[key] = r
configs = list(dict.fromkeys(c for c, _ in rows))
fmt = lambda v, f: "-" if v is None else format(v, f)
print(f"\nFP32 FMA peak, {threads} threads: {fmt(peak, '.1f')} GFLOP/s (bench/fma_peak, best of 5)")
head = ["config", "engine traj-steps/s", "numpy", "pytorch-cpu", "pytorch-cuda", "x numpy", "x pytorch-cpu",
        "engine GFLOP/s", "% FP32 peak", "6Nd2 GF/s"]
print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
for config in configs:
    engine = rows.get((config, "cpu"))
    rate = lambda b: rows[(config, b)]["trajectory_steps_per_s"] if (config, b) in rows else None
    e, n, t, g = rate("cpu"), rate("numpy"), rate("pytorch-cpu"), rate("pytorch-cuda")
    ratio = lambda base: None if e is None or base is None else e / base
    gflops = engine["gflops"] if engine else None
    share = None if gflops is None or not peak else 100 * gflops / peak
    cells = [config, fmt(e, ".4g"), fmt(n, ".4g"), fmt(t, ".4g"), fmt(g, ".4g"), fmt(ratio(n), ".1f"),
             fmt(ratio(t), ".1f"), fmt(gflops, ".1f"), fmt(share, ".1f"),
             fmt(engine["gflops_6nd2"] if engine and engine["gflops_6nd2"] > 0 else None, ".1f")]
    print("| " + " | ".join(cells) + " |")
steps = {b: r["steps"] for (c, b), r in rows.items()}
print("\nsteps timed: " + ", ".join(f"{b} {s}" for b, s in sorted(steps.items())) +
      f"; trajectories: {next(iter(rows.values()))['trajectories'] if rows else '-'}")
PY
