#!/usr/bin/env python3
"""Checks that a baseline integrates the engine's model: runs one trajectory
with the engine (tests/baselines/dump_trajectory, the engine's setup and
runner), runs the baseline's own `step` from the same initial state for the
same number of gd steps, and compares final states, loss and accuracy.

    check_against_engine.py --baseline numpy|torch --dump-tool PATH
                            [--precision float64|float32] [--steps 50]

Cases: the plain model, the head with stop-gradient, the head without. Exit
code 0 when all agree, 1 when one does not, 77 (ctest: skipped) when the
baseline's package is not installed.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

CASES = {  # name: dump_trajectory arguments (K = 4, n = 10, f = 0.2, seed 1)
    "plain": ["--head", "0", "--stop-gradient", "0", "--lr", "0.4"],
    "head_stop_gradient": ["--head", "8", "--stop-gradient", "1", "--lr", "0.1"],
    "head": ["--head", "5", "--stop-gradient", "0", "--lr", "0.1"],
}
# Relative agreement of final states and losses after 50 steps. The two sides
# sum in different orders (BLAS or autograd here, register-blocked rows in the
# engine); seen: at most 4e-16 in float64 and 2.1e-7 in float32.
TOLERANCE = {"float64": 1e-10, "float32": 1e-5}


def engine_run(dump_tool, case, precision, steps, dim):
    command = [dump_tool, "--classes", "4", "--per-class", "10", "--dim", str(dim), "--frustration", "0.2",
               "--seed", "1", "--steps", str(steps), "--precision", precision] + CASES[case]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def relative_error(actual, expected):
    scale = np.linalg.norm(expected)
    return float(np.linalg.norm(actual - expected) / (scale if scale > 0 else 1.0))


def run_numpy(dump, dtype):
    import numpy_baseline as baseline
    state, primary, second = initial_state(dump, dtype)
    counts = baseline.pair_counts(primary, second, dump["classes"], dtype)
    first = None
    for _ in range(dump["steps"]):
        seen = baseline.step(state, counts, primary, dtype(dump["lr"]), dump["stop_gradient"])
        first = first or seen
    last = baseline.step({k: v.copy() for k, v in state.items()}, counts, primary, dtype(dump["lr"]), dump["stop_gradient"])
    return state, first, last


def run_torch(dump, dtype):
    import pytorch_baseline as baseline
    import torch
    torch_dtype = torch.float32 if dtype == np.float32 else torch.float64
    state, primary, second = initial_state(dump, dtype)
    tensors = {k: torch.tensor(v, dtype=torch_dtype).requires_grad_() for k, v in state.items()}
    pair_sample, pair_label = baseline.pair_lists(torch.tensor(primary), torch.tensor(second))
    primary_t = torch.tensor(primary)
    first = None
    for _ in range(dump["steps"]):
        seen = baseline.step(tensors, pair_sample, pair_label, primary_t, dump["lr"], dump["stop_gradient"])
        first = first or seen
    last = baseline.step({k: v.detach().clone().requires_grad_() for k, v in tensors.items()}, pair_sample, pair_label,
                         primary_t, dump["lr"], dump["stop_gradient"])
    as_numpy = lambda seen: {k: v.detach().numpy() for k, v in seen.items()}
    return {k: v.detach().numpy() for k, v in tensors.items()}, as_numpy(first), as_numpy(last)


def initial_state(dump, dtype):
    K, N, d, h = dump["classes"], dump["samples"], dump["dim"], dump["head_dim"]
    state = {"X": np.array(dump["initial_X"], dtype=dtype).reshape(1, N, d),
             "Y": np.array(dump["initial_Y"], dtype=dtype).reshape(1, K, d)}
    if h > 0:
        state["A"] = np.array(dump["initial_A"], dtype=dtype).reshape(1, h, d)
        state["B"] = np.array(dump["initial_B"], dtype=dtype).reshape(1, d, h)
    return state, np.array(dump["primary_label"]), np.array(dump["second_label"]).reshape(1, N)


def check_case(args, case, dim):
    dump = engine_run(args.dump_tool, case, args.precision, args.steps, dim)
    dtype = np.float32 if args.precision == "float32" else np.float64
    state, first, last = (run_numpy if args.baseline == "numpy" else run_torch)(dump, dtype)
    tolerance = TOLERANCE[args.precision]
    failures = []
    worst = 0.0
    shapes = {"X": (dump["samples"], dump["dim"]), "Y": (dump["classes"], dump["dim"]),
              "A": (dump["head_dim"], dump["dim"]), "B": (dump["dim"], dump["head_dim"])}
    for name, value in state.items():
        expected = np.array(dump["final_" + name], dtype=np.float64).reshape(shapes[name])
        error = relative_error(np.asarray(value[0], dtype=np.float64), expected)
        worst = max(worst, error)
        if not error <= tolerance:
            failures.append(f"final {name}: relative error {error:.2e} > {tolerance:.0e}")
    for index, seen in ((0, first), (1, last)):
        error = abs(float(seen["loss"][0]) - dump["loss"][index]) / abs(dump["loss"][index])
        worst = max(worst, error)
        if not error <= tolerance:
            failures.append(f"loss at step {index * args.steps}: relative error {error:.2e}")
        # Compared as counts of correct samples: the baselines average in their own precision.
        correct = round(float(seen["accuracy"][0]) * dump["samples"])
        if correct != round(dump["accuracy"][index] * dump["samples"]):
            failures.append(f"accuracy at step {index * args.steps}: {float(seen['accuracy'][0])} vs {dump['accuracy'][index]}")
    verdict = f"ok (largest relative error {worst:.1e})" if not failures else "FAILED: " + "; ".join(failures)
    print(f"{args.baseline} {args.precision} {case} d={dim}: {verdict}")
    return not failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", choices=["numpy", "torch"], required=True)
    parser.add_argument("--dump-tool", required=True)
    parser.add_argument("--precision", choices=["float32", "float64"], default="float64")
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    if args.baseline == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch is not installed here (bench/baselines/README: .venv-bench); skipping")
            return 77
    ok = all([check_case(args, case, dim) for case in CASES for dim in (5, 8)])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
