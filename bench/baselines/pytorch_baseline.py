#!/usr/bin/env python3
"""PyTorch baseline: the engine's model (SPEC sections 1-3: gd, per-step
observables), batched over trajectories, written as one writes it in PyTorch.

The loss is the pair form of SPEC section 1 on gathered rows, its gradient
comes from autograd (detach() for stop-gradient), and the update is the same
gd step on X, Y, A and B. Each step also evaluates what the engine evaluates
every step: the accuracy (nearest label to W x_i), both minimum label
distances and a divergence flag. CPU by default, CUDA when asked for (TF32
off, as the engine computes in full float32).

    python3 bench/baselines/pytorch_baseline.py [--device cpu|cuda] [--configs small,head,medium]
                                                [--trajectories 1024] [--steps 20] [--threads T] [--compile]
    python3 bench/baselines/pytorch_baseline.py --check   # autograd vs the SPEC section 8 closed form

prints trajectory-steps/s per config and one RESULT line of JSON each.
--compile runs the loss and the observables through torch.compile (the
backward pass through AOTAutograd); compilation happens in the warm-up steps
and is not timed.
`check_against_engine.py --baseline torch` runs `step` from the engine's
initial state and compares the final states.
"""
import argparse
import math

import torch

from baseline_timing import CONFIGS, add_arguments, report, seconds_for


def pair_lists(primary, second):
    """primary [N], second [batch, N] (-1 = not frustrated) -> pair_sample, pair_label [batch, M].

    Every trajectory of a batch has the same number of frustrated samples (f is
    shared), so M is the same for all of them."""
    batch, samples = second.shape
    rows, cols = torch.nonzero(second >= 0, as_tuple=True)
    frustrated = cols.numel() // batch
    extra_sample = cols.reshape(batch, frustrated)
    extra_label = second[rows, cols].reshape(batch, frustrated)
    pair_sample = torch.cat([torch.arange(samples).expand(batch, samples), extra_sample], dim=1)
    pair_label = torch.cat([primary.expand(batch, samples), extra_label], dim=1)
    return pair_sample, pair_label


def random_problem(batch, classes, per_class, dim, head, frustration, dtype, device, generator):
    """Initial state and pairs of `batch` trajectories (own random numbers: for timing)."""
    samples = classes * per_class
    primary = torch.arange(samples) % classes
    frustrated = int(math.floor(frustration * samples + 0.5))
    order = torch.argsort(torch.rand(batch, samples, generator=generator), dim=1)[:, :frustrated]
    shift = torch.randint(1, classes, (batch, frustrated), generator=generator)
    second = torch.full((batch, samples), -1, dtype=torch.long)
    second.scatter_(1, order, (primary[order] + shift) % classes)
    pair_sample, pair_label = pair_lists(primary, second)

    def normal(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=generator, dtype=dtype)).to(device).requires_grad_()

    state = {"X": normal(batch, samples, dim), "Y": normal(batch, classes, dim)}
    if head > 0:
        state["A"] = normal(batch, head, dim, scale=1 / math.sqrt(dim))
        state["B"] = normal(batch, dim, head, scale=1 / math.sqrt(head))
    return state, pair_sample.to(device), pair_label.to(device), primary.to(device)


def gather_rows(tensor, index):
    """tensor [b, rows, d], index [b, m] -> [b, m, d]."""
    return torch.gather(tensor, 1, index.unsqueeze(-1).expand(-1, -1, tensor.shape[-1]))


def loss_per_trajectory(state, pair_sample, pair_label, stop_gradient):
    """SPEC section 1, pair by pair; also W x_i and W y_k (x_i, y_k without a head)."""
    X, Y = state["X"], state["Y"]
    pairs = pair_sample.shape[1]
    if "A" not in state:  # plain model
        r1 = gather_rows(X, pair_sample) - gather_rows(Y, pair_label)
        return 0.5 / pairs * (r1 * r1).sum(dim=(1, 2)), X, Y
    W = state["B"] @ state["A"]           # [b, d, d]
    WX = X @ W.transpose(1, 2)            # W x_i
    WY = Y @ W.transpose(1, 2)            # W y_k
    target_y = Y.detach() if stop_gradient else Y
    target_x = X.detach() if stop_gradient else X
    r1 = gather_rows(WX, pair_sample) - gather_rows(target_y, pair_label)
    r2 = gather_rows(WY, pair_label) - gather_rows(target_x, pair_sample)
    return 0.5 / pairs * ((r1 * r1).sum(dim=(1, 2)) + (r2 * r2).sum(dim=(1, 2))), WX, WY


def min_pairwise_distance(vectors):
    classes = vectors.shape[1]
    distances = torch.cdist(vectors, vectors)
    distances = distances + torch.diag(torch.full((classes,), float("inf"), device=vectors.device, dtype=vectors.dtype))
    return distances.flatten(1).min(dim=1).values


def observables(WX, WY, Y, primary, has_head):
    """Accuracy (nearest label to W x_i) and both minimum label distances, as the engine does every step."""
    nearest = torch.cdist(WX, Y).argmin(dim=2)
    accuracy = (nearest == primary).to(WX.dtype).mean(dim=1)
    label_distance = min_pairwise_distance(Y)
    projected_distance = min_pairwise_distance(WY) if has_head else label_distance
    return accuracy, label_distance, projected_distance


# The functions a step calls; --compile swaps in their torch.compile'd forms.
KERNELS = {"loss": loss_per_trajectory, "observables": observables}


def step(state, pair_sample, pair_label, primary, lr, stop_gradient):
    """One gd step in place; returns the observables at the state before it."""
    loss, WX, WY = KERNELS["loss"](state, pair_sample, pair_label, stop_gradient)
    loss.sum().backward()  # trajectories are independent: each gets its own gradient
    with torch.no_grad():
        accuracy, label_distance, projected_distance = KERNELS["observables"](
            WX.detach(), WY.detach(), state["Y"].detach(), primary, "A" in state)
        for tensor in state.values():
            tensor -= lr * tensor.grad
            tensor.grad = None
    return {"loss": loss.detach(), "accuracy": accuracy, "label_distance": label_distance,
            "projected_distance": projected_distance}


def run_config(name, args, dtype, device):
    classes, per_class, dim, head, stop_gradient = CONFIGS[name]
    generator = torch.Generator().manual_seed(12345)
    state, pair_sample, pair_label, primary = random_problem(
        args.trajectories, classes, per_class, dim, head, args.frustration, dtype, device, generator)
    diverged = torch.zeros(args.trajectories, dtype=torch.bool, device=device)
    with torch.no_grad():
        initial_loss = loss_per_trajectory(state, pair_sample, pair_label, stop_gradient)[0]

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step(state, pair_sample, pair_label, primary, args.lr, stop_gradient)

    def timed_step():
        nonlocal diverged
        seen = step(state, pair_sample, pair_label, primary, args.lr, stop_gradient)
        diverged |= ~torch.isfinite(seen["loss"]) | ~torch.isfinite(seen["label_distance"]) | (seen["loss"] > 1e12 * initial_loss)

    seconds = seconds_for(args.steps, timed_step, synchronize)
    backend = "pytorch-" + device.type + ("-compile" if args.compile else "")
    report(name, backend, args, seconds, int(diverged.sum()), 21, device=device_name(device), torch=torch.__version__,
           threads=torch.get_num_threads())


def device_name(device):
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def check_gradients():
    """Autograd with detach() against the SPEC section 8 aggregated gradient, float64."""
    generator = torch.Generator().manual_seed(1)
    state, pair_sample, pair_label, _ = random_problem(2, 3, 5, 4, 2, 0.4, torch.float64, torch.device("cpu"), generator)
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
    parser.add_argument("--device", default="cpu")
    add_arguments(parser)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default, all cores)")
    parser.add_argument("--check", action="store_true", help="only check autograd against the closed form")
    parser.add_argument("--compile", action="store_true", help="torch.compile the loss and the observables")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.check:
        check_gradients()
        return
    device = torch.device(args.device)
    dtype = torch.float32 if args.precision == "float32" else torch.float64
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # full float32, as the engine
    if args.compile:
        KERNELS["loss"] = torch.compile(loss_per_trajectory)
        KERNELS["observables"] = torch.compile(observables)
        args.warmup = max(args.warmup, 3)  # compilation (and a recompile for the grad-mode change) stays untimed
    for name in args.configs.split(","):
        try:
            run_config(name, args, dtype, device)
        except torch.cuda.OutOfMemoryError:
            # The pair-gather form holds several [trajectories, M, d] tensors; say so and go on.
            print(f"{name:7s} out of GPU memory at {args.trajectories} trajectories (try --trajectories)", flush=True)
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
