#!/usr/bin/env bash
# How the CPU backend's cost grows with N, d, h and the trajectory count,
# against the FLOP count of docs/performance.md. Head configs use
# stop-gradient; gd, float32, f = 0.1. Each point is bench_backends' median of
# 3 runs of about 1 s (one thread for the N, d, h series).
#
#   bench/scaling.sh [--series N,d,h,trajectories]      BUILD_DIR (default build)
#
# The table gives, per series, the time per trajectory-step relative to the
# series' first point, next to the ratio the FLOP count predicts.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
bench=$BUILD_DIR/bench/bench_backends
[[ -x $bench ]] || { echo "scaling.sh: $bench not built" >&2; exit 1; }
series=N,d,h,trajectories
[[ ${1:-} == --series ]] && series=$2
log=$BUILD_DIR/bench-scaling.log
: >"$log"

point() { # series, config, threads, extra bench flags...
    local name=$1 config=$2 threads=$3
    shift 3
    "$bench" --backends cpu --configs "$config" --threads "$threads" --max-seconds 1 --repeats 3 "$@" |
        sed -n "s/^RESULT /RESULT $name /p" | tee -a "$log" >&2
}

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$log" >&2
if [[ $series == *N* ]]; then
    for n in 10 25 50 100 200 400 1000 2000; do point N "K10n${n}d32h32" 1; done
fi
if [[ $series == *d* ]]; then
    for d in 8 16 24 32 48 64; do point d "K10n100d${d}h${d}" 1; done
fi
if [[ $series == *h* ]]; then
    for h in 0 1 4 8 16 32 64; do point h "K10n100d32h${h}" 1; done
fi
if [[ $series == *trajectories* ]]; then
    for t in 1 2 4 8 64 512; do point trajectories head "$(nproc)" --trajectories "$t" --full 1 --steps 20000; done
fi

python3 - "$log" <<'PY'
import json, sys
series = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT "):
        _, name, payload = line.split(" ", 2)
        series.setdefault(name, []).append(json.loads(payload))
for name, rows in series.items():
    print(f"\n{name} series")
    print("| config | trajectories x steps | traj-steps/s | us per step | GFLOP/s | time ratio | FLOP ratio |")
    print("|---|---|---|---|---|---|---|")
    first = rows[0]
    flop = lambda r: r["gflops"] / r["trajectory_steps_per_s"]  # GFLOP per step (per evaluation, close enough)
    for r in rows:
        time_ratio = first["trajectory_steps_per_s"] / r["trajectory_steps_per_s"]
        print(f"| {r['config']} | {r['trajectories']} x {r['steps']} | {r['trajectory_steps_per_s']:.4g} | "
              f"{1e6 / r['trajectory_steps_per_s']:.3g} | {r['gflops']:.1f} | {time_ratio:.2f} | {flop(r) / flop(first):.2f} |")
PY
