#!/usr/bin/env python3
"""Straightforward batched PyTorch version of the benchmarked model, as a baseline.

The same work per step as bench_backends (see docs/performance.md): the
shared-head loss of SPEC section 1 with stop-gradient, its gradient by
autograd, a gd update of X, Y, A and B, and the per-step observables the
engine evaluates every step (loss, accuracy, label and projected minimum
distances, a divergence flag). Random numbers differ from the engine's; the
amount of arithmetic does not. Prints trajectory-steps/s per config and one
RESULT line of JSON each, like bench_backends.

    python3 bench/pytorch_baseline.py [--device cuda] [--trajectories 1024] [--steps 200]
    python3 bench/pytorch_baseline.py --check   # autograd vs the SPEC section 8 closed form
"""
import argparse
import json
import math
import time

import torch

CONFIGS = {  # name: (K, n, d, h), as in bench_backends.cpp
    "small": (4, 50, 8, 8),
    "medium": (10, 100, 32, 32),
    "large": (10, 1000, 64, 64),
}


def make_problem(batch, classes, per_class, dim, head, frustration, dtype, device, generator):
    """Initial state and pair list of `batch` independent trajectories."""
    samples = classes * per_class
    primary = torch.arange(samples, device=device) % classes
    frustrated = int(math.floor(frustration * samples + 0.5))
    # Per trajectory: the first `frustrated` samples of a permutation get a
    # second label drawn from the other K-1 classes.
    order = torch.argsort(torch.rand(batch, samples, generator=generator, device=device), dim=1)[:, :frustrated]
    shift = torch.randint(1, classes, (batch, frustrated), generator=generator, device=device)
    second = (primary[order] + shift) % classes
    pair_sample = torch.cat([torch.arange(samples, device=device).expand(batch, samples), order], dim=1)
    pair_label = torch.cat([primary.expand(batch, samples), second], dim=1)

    def normal(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=generator, device=device, dtype=dtype)).requires_grad_()

    state = {
        "X": normal(batch, samples, dim),
        "Y": normal(batch, classes, dim),
        "A": normal(batch, head, dim, scale=1 / math.sqrt(dim)),
        "B": normal(batch, dim, head, scale=1 / math.sqrt(head)),
    }
    return state, pair_sample, pair_label, primary


def gather_rows(tensor, index):
    """tensor [b, rows, d], index [b, m] -> [b, m, d]."""
    return torch.gather(tensor, 1, index.unsqueeze(-1).expand(-1, -1, tensor.shape[-1]))


def loss_per_trajectory(state, pair_sample, pair_label, stop_gradient):
    X, Y, A, B = state["X"], state["Y"], state["A"], state["B"]
    W = B @ A                               # [b, d, d]
    WX = X @ W.transpose(1, 2)              # W x_i: 2 N d^2, backward 4 N d^2
    WY = Y @ W.transpose(1, 2)              # W y_k
    target_y = Y.detach() if stop_gradient else Y
    target_x = X.detach() if stop_gradient else X
    r1 = gather_rows(WX, pair_sample) - gather_rows(target_y, pair_label)
    r2 = gather_rows(WY, pair_label) - gather_rows(target_x, pair_sample)
    pairs = pair_sample.shape[1]
    return 0.5 / pairs * ((r1 * r1).sum(dim=(1, 2)) + (r2 * r2).sum(dim=(1, 2))), WX, WY


def min_pairwise_distance(vectors):
    classes = vectors.shape[1]
    distances = torch.cdist(vectors, vectors)
    distances = distances + torch.diag(torch.full((classes,), float("inf"), device=vectors.device, dtype=vectors.dtype))
    return distances.flatten(1).min(dim=1).values


def step(state, pair_sample, pair_label, primary, lr, stop_gradient, diverged, initial_loss):
    loss, WX, WY = loss_per_trajectory(state, pair_sample, pair_label, stop_gradient)
    loss.sum().backward()  # trajectories are independent: each gets its own gradient
    with torch.no_grad():
        Y = state["Y"]
        nearest = torch.cdist(WX, Y).argmin(dim=2)                 # accuracy, as the engine does every step
        accuracy = (nearest == primary).to(loss.dtype).mean(dim=1)
        label_distance = min_pairwise_distance(Y)
        projected_distance = min_pairwise_distance(WY)
        diverged |= ~torch.isfinite(loss) | ~torch.isfinite(label_distance) | (loss > 1e12 * initial_loss)
        for tensor in state.values():
            tensor -= lr * tensor.grad
            tensor.grad = None
    return loss.detach(), accuracy, projected_distance


def run_config(name, args, dtype, device):
    classes, per_class, dim, head = CONFIGS[name]
    generator = torch.Generator(device=device).manual_seed(12345)
    state, pair_sample, pair_label, primary = make_problem(
        args.trajectories, classes, per_class, dim, head, args.frustration, dtype, device, generator)
    diverged = torch.zeros(args.trajectories, dtype=torch.bool, device=device)
    with torch.no_grad():
        initial_loss = loss_per_trajectory(state, pair_sample, pair_label, True)[0]

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step(state, pair_sample, pair_label, primary, args.lr, True, diverged, initial_loss)
    synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step(state, pair_sample, pair_label, primary, args.lr, True, diverged, initial_loss)
    synchronize()
    seconds = time.perf_counter() - start
    rate = args.trajectories * args.steps / seconds
    result = {"config": name, "backend": "pytorch-" + device.type, "device": device_name(device),
              "precision": args.precision, "trajectories": args.trajectories, "steps": args.steps,
              "seconds": seconds, "trajectory_steps_per_s": rate, "diverged": int(diverged.sum())}
    print(f"{name:7s} {result['backend']:13s} {args.trajectories:6d} traj x {args.steps:5d} steps "
          f"{seconds:9.3f} s {rate:12.4g} traj-steps/s")
    print("RESULT " + json.dumps(result), flush=True)


def device_name(device):
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def check_gradients():
    """Autograd with detach() against the SPEC section 8 aggregated gradient, float64."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    state, pair_sample, pair_label, _ = make_problem(2, 3, 5, 4, 2, 0.4, torch.float64, torch.device("cpu"), generator)
    for stop_gradient in (True, False):
        loss, _, _ = loss_per_trajectory(state, pair_sample, pair_label, stop_gradient)
        grads = torch.autograd.grad(loss.sum(), [state[k] for k in "XYAB"])
        X, Y, A, B = (state[k].detach() for k in "XYAB")
        s = 1.0 if stop_gradient else 0.0
        for b in range(X.shape[0]):
            W = B[b] @ A[b]
            gX, gY, G = torch.zeros_like(X[b]), torch.zeros_like(Y[b]), torch.zeros_like(W)
            pairs = pair_sample.shape[1]
            for i, k in zip(pair_sample[b].tolist(), pair_label[b].tolist()):
                r1, r2 = W @ X[b, i] - Y[b, k], W @ Y[b, k] - X[b, i]
                gX[i] += W.T @ r1 - (1 - s) * r2
                gY[k] += W.T @ r2 - (1 - s) * r1
                G += torch.outer(r1, X[b, i]) + torch.outer(r2, Y[b, k])
            expected = [gX / pairs, gY / pairs, B[b].T @ G / pairs, G @ A[b].T / pairs]
            for name, got, want in zip("XYAB", grads, expected):
                error = float((got[b] - want).norm() / want.norm())
                assert error < 1e-12, f"d/d{name} (stop_gradient={stop_gradient}) off by {error:.2e}"
    print("gradient check passed: autograd with detach() equals SPEC section 8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--configs", default="small,medium,large")
    parser.add_argument("--trajectories", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--precision", choices=["float32", "float64"], default="float32")
    parser.add_argument("--frustration", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--check", action="store_true", help="only check autograd against the closed form")
    args = parser.parse_args()
    if args.check:
        check_gradients()
        return
    device = torch.device(args.device)
    dtype = torch.float32 if args.precision == "float32" else torch.float64
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # full float32, as the engine
    for name in args.configs.split(","):
        try:
            run_config(name, args, dtype, device)
        except torch.cuda.OutOfMemoryError:
            # The pair-gather form holds several [trajectories, M, d] tensors; say so and go on.
            print(f"{name:7s} out of GPU memory at {args.trajectories} trajectories (try --trajectories)", flush=True)
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
