#!/usr/bin/env python3
"""NumPy baseline: the engine's model (SPEC sections 1-3: gd, per-step observables),
batched over trajectories, written as a researcher would write it in NumPy.

Every tensor has a leading trajectory axis and every product is one batched
matmul (SPEC section 8's aggregated form): the pair set is a dense count
matrix C [batch, N, K] (C[b, i, k] = number of pairs (i, k)), so the sums over
a sample's labels and over a label's samples are C @ Y and C^T @ X. Each step
evaluates what the engine evaluates every step: the loss, the gradient, the
accuracy (nearest label to W x_i), both minimum label distances and a
divergence flag; then z <- z - lr * dL/dz.

    python3 bench/baselines/numpy_baseline.py [--configs small,head,medium] [--trajectories 1024]
                                              [--steps 20] [--precision float32]

prints trajectory-steps/s per config and one RESULT line of JSON each.
`check_against_engine.py` runs the same `step` from the engine's initial
state and compares the final states.
"""
import argparse
import math

import numpy as np

from baseline_timing import CONFIGS, add_arguments, report, seconds_for


def pair_counts(primary, second, classes, dtype):
    """C [batch, N, K]: 1 for (i, c_i), plus 1 for (i, c'_i) where second >= 0."""
    batch, samples = second.shape
    counts = np.zeros((batch, samples, classes), dtype=dtype)
    counts[:, np.arange(samples), primary] = 1
    rows, cols = np.nonzero(second >= 0)
    counts[rows, cols, second[rows, cols]] += 1
    return counts


def random_problem(batch, classes, per_class, dim, head, frustration, dtype, rng):
    """Initial states and pairs of `batch` trajectories (own random numbers: for timing)."""
    samples = classes * per_class
    primary = np.arange(samples) % classes
    frustrated = int(math.floor(frustration * samples + 0.5))
    second = np.full((batch, samples), -1)
    order = np.argsort(rng.random((batch, samples)), axis=1)[:, :frustrated]
    shift = rng.integers(1, classes, size=(batch, frustrated))
    np.put_along_axis(second, order, (primary[order] + shift) % classes, axis=1)
    state = {
        "X": rng.standard_normal((batch, samples, dim)).astype(dtype),
        "Y": rng.standard_normal((batch, classes, dim)).astype(dtype),
    }
    if head > 0:
        state["A"] = (rng.standard_normal((batch, head, dim)) / math.sqrt(dim)).astype(dtype)
        state["B"] = (rng.standard_normal((batch, dim, head)) / math.sqrt(head)).astype(dtype)
    return state, primary, pair_counts(primary, second, classes, dtype)


def min_pairwise_distance(vectors):
    """min over k != l of ||v_k - v_l|| for [batch, K, d]."""
    squared = np.sum(vectors * vectors, axis=2)
    gram = vectors @ vectors.transpose(0, 2, 1)
    distances = squared[:, :, None] + squared[:, None, :] - 2 * gram
    classes = vectors.shape[1]
    distances[:, np.arange(classes), np.arange(classes)] = np.inf
    return np.sqrt(np.maximum(distances.reshape(len(vectors), -1).min(axis=1), 0))


def squared_distances(points, centres):
    """||p_i - c_k||^2 for [batch, N, d] and [batch, K, d] -> [batch, N, K]."""
    return (np.sum(points * points, axis=2)[:, :, None] + np.sum(centres * centres, axis=2)[:, None, :]
            - 2 * points @ centres.transpose(0, 2, 1))


def step(state, counts, primary, lr, stop_gradient):
    """One gd step in place; returns the observables at the state before it."""
    X, Y = state["X"], state["Y"]
    sample_degree = counts.sum(axis=2)[:, :, None]  # m_i
    label_degree = counts.sum(axis=1)[:, :, None]   # |S_k|
    scale = 1.0 / counts.sum(axis=(1, 2))[:, None, None]  # 1/M
    counts_t = counts.transpose(0, 2, 1)
    if "A" not in state:  # plain model: W = I
        loss = 0.5 * scale[:, 0, 0] * np.sum(counts * squared_distances(X, Y), axis=(1, 2))
        nearest = np.argmin(squared_distances(X, Y), axis=2)
        gradients = {"X": scale * (sample_degree * X - counts @ Y),
                     "Y": scale * (label_degree * Y - counts_t @ X)}
        projected_distance = None
    else:
        A, B = state["A"], state["B"]
        W = B @ A
        WX = X @ W.transpose(0, 2, 1)  # W x_i
        WY = Y @ W.transpose(0, 2, 1)  # W y_k
        to_labels = squared_distances(WX, Y)  # ||W x_i - y_k||^2
        loss = 0.5 * scale[:, 0, 0] * np.sum(counts * (to_labels + squared_distances(X, WY)), axis=(1, 2))
        nearest = np.argmin(to_labels, axis=2)
        pull = 0.0 if stop_gradient else 1.0
        R1 = sample_degree * WX - counts @ Y   # sum over labels of i of (W x_i - y_k)
        Q = counts @ WY - sample_degree * X    # sum over labels of i of (W y_k - x_i)
        R2 = label_degree * WY - counts_t @ X  # sum over samples of k of (W y_k - x_i)
        P = counts_t @ WX - label_degree * Y   # sum over samples of k of (W x_i - y_k)
        G = scale * (R1.transpose(0, 2, 1) @ X + R2.transpose(0, 2, 1) @ Y)
        gradients = {"X": scale * (R1 @ W - pull * Q), "Y": scale * (R2 @ W - pull * P),
                     "A": B.transpose(0, 2, 1) @ G, "B": G @ A.transpose(0, 2, 1)}
        projected_distance = min_pairwise_distance(WY)
    accuracy = np.mean(nearest == primary, axis=1)
    label_distance = min_pairwise_distance(Y)
    for name, gradient in gradients.items():
        state[name] -= lr * gradient
    return {"loss": loss, "accuracy": accuracy, "label_distance": label_distance,
            "projected_distance": label_distance if projected_distance is None else projected_distance}


def run_config(name, args, dtype):
    classes, per_class, dim, head, stop_gradient = CONFIGS[name]
    rng = np.random.default_rng(12345)
    state, primary, counts = random_problem(args.trajectories, classes, per_class, dim, head, args.frustration, dtype, rng)
    lr = dtype(args.lr)
    initial_loss = step({k: v.copy() for k, v in state.items()}, counts, primary, lr, stop_gradient)["loss"]
    diverged = np.zeros(args.trajectories, dtype=bool)
    for _ in range(args.warmup):
        step(state, counts, primary, lr, stop_gradient)

    def timed_step():
        nonlocal diverged
        seen = step(state, counts, primary, lr, stop_gradient)
        diverged |= ~np.isfinite(seen["loss"]) | ~np.isfinite(seen["label_distance"]) | (seen["loss"] > 1e12 * initial_loss)

    seconds = seconds_for(args.steps, timed_step)
    report(name, "numpy", args, seconds, int(diverged.sum()), 0, numpy=np.__version__)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args()
    dtype = np.float32 if args.precision == "float32" else np.float64
    for name in args.configs.split(","):
        run_config(name, args, dtype)


if __name__ == "__main__":
    main()
