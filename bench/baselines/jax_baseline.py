#!/usr/bin/env python3
"""JAX baseline: the engine's model (SPEC sections 1-3: gd, per-step
observables) written for one trajectory and batched with jax.vmap, the whole
step under jax.jit, as one writes it in JAX.

The loss is the pair form of SPEC section 1 on gathered rows, its gradient
comes from jax.grad (lax.stop_gradient for stop-gradient), and the update is
the same gd step on X, Y, A and B. Each step also evaluates what the engine
evaluates every step: the accuracy (nearest label to W x_i), both minimum
label distances and a divergence flag. Runs on JAX's default device (the GPU
where jax sees one); matmuls at full float32 precision, as the engine.

    python3 bench/baselines/jax_baseline.py [--configs small,head,medium,large] [--trajectories 1024] [--steps 20]
    python3 bench/baselines/jax_baseline.py --check   # jax.grad vs the SPEC section 8 closed form

prints trajectory-steps/s per config and one RESULT line of JSON each.
Compilation happens in the warm-up step and is not timed.
"""
import argparse
import math

import jax
import jax.numpy as jnp
import numpy as np

from baseline_timing import CONFIGS, add_arguments, report, seconds_for


def random_problem(batch, classes, per_class, dim, head, frustration, dtype, rng):
    """Initial states and pair lists [batch, M] of `batch` trajectories (own random numbers: for timing)."""
    samples = classes * per_class
    primary = np.arange(samples) % classes
    frustrated = int(math.floor(frustration * samples + 0.5))
    pair_sample = np.empty((batch, samples + frustrated), dtype=np.int32)
    pair_label = np.empty_like(pair_sample)
    for b in range(batch):
        extra = rng.permutation(samples)[:frustrated]
        pair_sample[b] = np.concatenate([np.arange(samples), extra])
        pair_label[b] = np.concatenate([primary, (primary[extra] + rng.integers(1, classes, frustrated)) % classes])
    state = {"X": rng.standard_normal((batch, samples, dim)), "Y": rng.standard_normal((batch, classes, dim))}
    if head > 0:
        state["A"] = rng.standard_normal((batch, head, dim)) / math.sqrt(dim)
        state["B"] = rng.standard_normal((batch, dim, head)) / math.sqrt(head)
    state = {k: jnp.asarray(v, dtype=dtype) for k, v in state.items()}
    return state, jnp.asarray(pair_sample), jnp.asarray(pair_label), jnp.asarray(primary, dtype=jnp.int32)


def loss_of(state, pair_sample, pair_label, stop_gradient):
    """SPEC section 1 for one trajectory, pair by pair; also W x_i and W y_k."""
    X, Y = state["X"], state["Y"]
    pairs = pair_sample.shape[0]
    if "A" not in state:
        r1 = X[pair_sample] - Y[pair_label]
        return 0.5 / pairs * jnp.sum(r1 * r1), (X, Y)
    W = jnp.matmul(state["B"], state["A"], precision="highest")
    WX = jnp.matmul(X, W.T, precision="highest")
    WY = jnp.matmul(Y, W.T, precision="highest")
    target_y = jax.lax.stop_gradient(Y) if stop_gradient else Y
    target_x = jax.lax.stop_gradient(X) if stop_gradient else X
    r1 = WX[pair_sample] - target_y[pair_label]
    r2 = WY[pair_label] - target_x[pair_sample]
    return 0.5 / pairs * (jnp.sum(r1 * r1) + jnp.sum(r2 * r2)), (WX, WY)


def min_pairwise_distance(vectors):
    difference = vectors[:, None, :] - vectors[None, :, :]
    distances = jnp.sqrt(jnp.sum(difference * difference, axis=-1))
    return jnp.min(distances + jnp.diag(jnp.full(vectors.shape[0], jnp.inf, vectors.dtype)))


def make_step(stop_gradient, lr, has_head):
    def one(state, pair_sample, pair_label, primary):
        (loss, (WX, WY)), grads = jax.value_and_grad(loss_of, has_aux=True)(state, pair_sample, pair_label,
                                                                              stop_gradient)
        Y = state["Y"]
        squared = jnp.sum((WX[:, None, :] - Y[None, :, :]) ** 2, axis=-1)  # nearest label to W x_i
        accuracy = jnp.mean((jnp.argmin(squared, axis=1) == primary).astype(loss.dtype))
        label_distance = min_pairwise_distance(Y)
        projected_distance = min_pairwise_distance(WY) if has_head else label_distance
        new_state = {k: v - lr * grads[k] for k, v in state.items()}
        return new_state, {"loss": loss, "accuracy": accuracy, "label_distance": label_distance,
                           "projected_distance": projected_distance}

    batched = jax.vmap(one, in_axes=(0, 0, 0, None))

    def step(state, diverged, initial_loss, pair_sample, pair_label, primary):
        # The divergence check inside the compiled step, so the timed loop dispatches one call per step.
        state, seen = batched(state, pair_sample, pair_label, primary)
        diverged = diverged | ~jnp.isfinite(seen["loss"]) | ~jnp.isfinite(seen["label_distance"]) | (
            seen["loss"] > 1e12 * initial_loss)
        return state, diverged, seen

    return jax.jit(step, donate_argnums=(0, 1))


def run_config(name, args, dtype):
    classes, per_class, dim, head, stop_gradient = CONFIGS[name]
    rng = np.random.default_rng(12345)
    state, pair_sample, pair_label, primary = random_problem(args.trajectories, classes, per_class, dim, head,
                                                             args.frustration, dtype, rng)
    step = make_step(stop_gradient, args.lr, head > 0)
    initial_loss = jax.vmap(lambda st, ps, pl: loss_of(st, ps, pl, stop_gradient)[0])(state, pair_sample, pair_label)
    carry = {"state": state, "diverged": jnp.zeros(args.trajectories, dtype=bool)}

    def one_step():
        carry["state"], carry["diverged"], _ = step(carry["state"], carry["diverged"], initial_loss, pair_sample,
                                                    pair_label, primary)

    for _ in range(max(1, args.warmup)):  # compilation happens here
        one_step()
    carry["diverged"] = jnp.zeros(args.trajectories, dtype=bool)
    seconds = seconds_for(args.steps, one_step, lambda: jax.block_until_ready((carry["state"], carry["diverged"])))
    device = jax.devices()[0]
    report(name, "jax-" + device.platform, args, seconds, int(carry["diverged"].sum()), 13, device=device.device_kind,
           jax=jax.__version__)


def check_gradients():
    """jax.grad with stop_gradient against the SPEC section 8 aggregated gradient, float64."""
    rng = np.random.default_rng(1)
    state, pair_sample, pair_label, _ = random_problem(2, 3, 5, 4, 2, 0.4, jnp.float64, rng)
    for stop_gradient in (True, False):
        s = 1.0 if stop_gradient else 0.0
        for b in range(2):
            one = {k: v[b] for k, v in state.items()}
            grads = jax.grad(lambda st: loss_of(st, pair_sample[b], pair_label[b], stop_gradient)[0])(one)
            X, Y, A, B = (np.asarray(one[k]) for k in "XYAB")
            W = B @ A
            gX, gY, G = np.zeros_like(X), np.zeros_like(Y), np.zeros_like(W)
            pairs = pair_sample.shape[1]
            for i, k in zip(np.asarray(pair_sample[b]).tolist(), np.asarray(pair_label[b]).tolist()):
                r1, r2 = W @ X[i] - Y[k], W @ Y[k] - X[i]
                gX[i] += W.T @ r1 - (1 - s) * r2
                gY[k] += W.T @ r2 - (1 - s) * r1
                G += np.outer(r1, X[i]) + np.outer(r2, Y[k])
            expected = {"X": gX / pairs, "Y": gY / pairs, "A": B.T @ G / pairs, "B": G @ A.T / pairs}
            for name, want in expected.items():
                error = float(np.linalg.norm(np.asarray(grads[name]) - want) / np.linalg.norm(want))
                assert error < 1e-12, f"d/d{name} (stop_gradient={stop_gradient}) off by {error:.2e}"
    print("gradient check passed: jax.grad with stop_gradient equals SPEC section 8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--check", action="store_true", help="only check jax.grad against the closed form")
    args = parser.parse_args()
    if args.check or args.precision == "float64":
        jax.config.update("jax_enable_x64", True)
    if args.check:
        check_gradients()
        return
    dtype = jnp.float32 if args.precision == "float32" else jnp.float64
    for name in args.configs.split(","):
        try:
            run_config(name, args, dtype)
        except Exception as error:  # out of device memory at a large config: say so and go on
            if "RESOURCE_EXHAUSTED" not in str(error):
                raise
            print(f"{name:7s} out of device memory at {args.trajectories} trajectories (try --trajectories)",
                  flush=True)


if __name__ == "__main__":
    main()
