"""What the baselines share: their configurations, their command-line
options, and how a configuration's steps are timed and reported (one line
for people, one RESULT line of JSON for bench/run.sh)."""
import json
import time

CONFIGS = {  # name: (K, n, d, h, stop_gradient), as in bench/run.sh
    "small": (4, 50, 8, 0, False),
    "head": (4, 50, 8, 8, True),
    "medium": (10, 100, 32, 32, True),
    "large": (10, 1000, 64, 64, True),
}


def add_arguments(parser):
    """The options every baseline takes."""
    parser.add_argument("--configs", default="small,head,medium")
    parser.add_argument("--trajectories", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precision", choices=["float32", "float64"], default="float32")
    parser.add_argument("--frustration", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=0.05)


def seconds_for(steps, step, synchronize=lambda: None):
    """Wall seconds of `steps` calls of step(); synchronize() (an
    asynchronous device's wait) runs before the clock starts and before it stops."""
    synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize()
    return time.perf_counter() - start


def report(name, backend, args, seconds, diverged, backend_width, device=None, **versions):
    """Prints the configuration's line and its RESULT line."""
    rate = args.trajectories * args.steps / seconds
    result = {"config": name, "backend": backend, **({"device": device} if device is not None else {}),
              "precision": args.precision, "trajectories": args.trajectories, "steps": args.steps,
              "seconds": seconds, "trajectory_steps_per_s": rate, "diverged": diverged, **versions}
    print(f"{name:7s} {backend.ljust(backend_width)} {args.trajectories:6d} traj x {args.steps:5d} steps "
          f"{seconds:9.3f} s {rate:12.4g} traj-steps/s")
    print("RESULT " + json.dumps(result), flush=True)
