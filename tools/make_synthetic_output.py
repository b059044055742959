#!/usr/bin/env python3
"""Write a small collapse-sweep output file with made-up but plausible values.

usage: make_synthetic_output.py OUT.h5 [--seed S] [--partial FRACTION] [--killed-writer]
                                [--grid default|quickstart|extra-axis]

The file follows SPEC §6 (format_version 1) exactly as the engine writes it
(src/storage/layout.cpp): every group carries its own dimension scales,
attached to its datasets, so check_format.py passes and
xarray.open_dataset(OUT.h5, group=G, engine="h5netcdf") gives named
coordinates. It lets the analysis tools and their tests run without the C++
engine. Nothing in it is a simulation: the numbers only have the right shape.

Grid (spec order, seed last):
    frustration    [0, 0.1, 0.2, 0.3, 0.4]
    head_dim       [0, 8]
    lr             logspace(-2, 0, 3) = [0.01, 0.1, 1]   (log_spaced)
    stop_gradient  [false, true]                          (int8 0/1)
    seed           [0, 1, 2, 3]
K = 4 classes, d = 8, max_steps = 20000, 128 record points, float64.

Made-up physics (the paper's qualitative picture):
    plain (h = 0):          label distance -> 1, then decays at a rate ~ f;
                            collapse time ~ 1/f, none at f = 0;
    head, no stop-gradient: the head shrinks, collapse within a few hundred
                            steps at any f; gd diverges at lr = 1 for f >= 0.4;
    head + stop-gradient:   finite separation, never collapses.
Small learning rates do not reach the collapse time within max_steps (stable).

--grid NAME        the default grid above; 'quickstart' (the axes of
                   sweeps/quickstart.toml: lr a length-1 axis after stop_gradient);
                   'extra-axis' (an init_scale axis, one head_dim, no stop_gradient)
--axis NAME=V,...  replace an axis's values (V as the spec writes them: 0.5, 8,
                   true); --axis NAME= removes the axis (its value, the first
                   one, becomes a root attribute as the engine writes it).
--theory           add the theory columns of SPEC §6 (theory_slow_rate,
                   theory_window_rate, critical_lr, selfconsistency_residual,
                   slow_rate_first_step, slow_rate_last_step and
                   /traces/theory_label_distance); the made-up "exact" trace
                   is the plain model's curve, so measured and window rates agree.
--ran-on           stop_on_collapse = false: trajectories run on past the threshold.
--partial F        mark all but the first F of the trajectories (flat order)
                   as not run yet (status -1, NaN / -1 data), as a killed run leaves.
--killed-writer    write the file with SWMR (libver v110, swmr_mode) and end the
                   process with os._exit() before closing it, after the first
                   half of the trajectories (or --partial F) is written and
                   flushed: the superblock then still says a writer has the
                   file, as after `kill -9` of the engine. Such a file opens only
                   with h5py.File(path, "r", swmr=True).
"""
import argparse
import hashlib
import os
import sys

import h5py
import numpy as np
from collapse_sweep import units as catalogue

K, D, MAX_STEPS, RECORD_POINTS, THRESHOLD = 4, 8, 20000, 128, 0.05
SPEC_HEAD = """# synthetic: written by tools/make_synthetic_output.py, not by the engine
[model]
kind = "embedding"
classes = 4
samples_per_class = 50
dim = 8

[integrator]
method = "gd"
max_steps = 20000
precision = "float64"

[grid]
"""
SPEC_TAIL = """seeds = 4
seed = 1        # --seed changes the made-up values, not this text

[collapse]
metric = "label"
threshold = 0.05
stop_on_collapse = true

[output]
record_points = 128
"""

# name, values, HDF5 type, log_spaced, how the spec writes it
SEEDS = ('seed', np.arange(4), '<i8', False, None)
GRIDS = {
    # the default: the shape of sweeps/phase_diagram.toml, small
    'default': [
        ('frustration', np.linspace(0.0, 0.4, 5), '<f8', False, '{ linspace = [0.0, 0.4, 5] }'),
        ('head_dim', np.array([0, 8]), '<i4', False, '[0, 8]'),
        ('lr', np.logspace(-2, 0, 3), '<f8', True, '{ logspace = [-2, 0, 3] }'),
        ('stop_gradient', np.array([0, 1]), 'i1', False, '[false, true]'),
        SEEDS],
    # sweeps/quickstart.toml: a length-1 lr axis after stop_gradient, uneven frustration
    'quickstart': [
        ('frustration', np.array([0.0, 0.05, 0.1, 0.2, 0.3]), '<f8', False, '[0.0, 0.05, 0.1, 0.2, 0.3]'),
        ('head_dim', np.array([0, 8]), '<i4', False, '[0, 8]'),
        ('stop_gradient', np.array([0, 1]), 'i1', False, '[false, true]'),
        ('lr', np.array([0.5]), '<f8', False, '0.5'),
        SEEDS],
    # an extra axis (init_scale) and no stop_gradient axis
    'extra-axis': [
        ('frustration', np.array([0.1, 0.3]), '<f8', False, '[0.1, 0.3]'),
        ('head_dim', np.array([0]), '<i4', False, '0'),
        ('lr', np.logspace(-1, 0, 4), '<f8', True, '{ logspace = [-1, 0, 4] }'),
        ('init_scale', np.array([1.0, 2.0]), '<f8', False, '[1.0, 2.0]'),
        SEEDS],
    # a one-trajectory file as `collapse-sweep replay` writes it: length-1 axes, one seed, dense steps
    'replay': [
        ('frustration', np.array([0.3]), '<f8', False, '0.3'),
        ('head_dim', np.array([0]), '<i4', False, '0'),
        ('lr', np.array([0.5]), '<f8', False, '0.5'),
        ('seed', np.array([3]), '<i8', False, None)],
}
DENSE_EVERY = {'replay': 25}  # record every K steps instead of log-spaced record points
AXES = GRIDS['default']


def spec_text(axes):
    lines = [f'{name} = {written}' for name, _, _, _, written in axes if written is not None]
    return SPEC_HEAD + '\n'.join(lines) + '\n' + SPEC_TAIL


RESULTS = [('status', 'i1'), ('collapse_step', '<i8'), ('collapse_time', '<f8'), ('final_step', '<i8'),
           ('peak_accuracy', '<f8'), ('peak_accuracy_step', '<i8'), ('final_accuracy', '<f8'),
           ('final_loss', '<f8'), ('final_label_distance', '<f8'), ('final_projected_distance', '<f8'),
           ('slow_rate', '<f8'), ('initial_label_distance', '<f8'), ('reference_distance', '<f8')]
TRACES = ('label_distance', 'projected_distance', 'accuracy', 'loss')


def record_steps(max_steps, record_points):
    """The engine's record points (include/collapse/record_steps.hpp)."""
    n = record_points - 1
    frac = np.arange(n) / (n - 1) if n > 1 else np.ones(1)
    steps = np.clip(np.rint(np.exp(frac * np.log(max_steps))).astype(np.int64), 1, max_steps)
    steps = np.unique(np.concatenate([[0], steps]))
    steps[-1] = max_steps
    return steps


def curves(steps, f, h, lr, sg, d0, wobble):
    """Made-up label distance, projected distance, accuracy and loss at `steps`."""
    t = lr * steps
    fast = np.exp(-np.minimum(lr, 0.5) * steps / 15.0)  # the fast phase, ~100 steps
    if h == 0:
        ld = (1.0 + (d0 - 1.0) * fast) * np.exp(-0.006 * f * wobble * t)
        pd = ld
    elif sg:
        floor = 1.0 - 0.6 * f
        ld = floor + (d0 - floor) * fast
        pd = 0.8 * ld
    else:
        ld = d0 * np.exp(-np.minimum(lr, 0.5) * steps / (35.0 * wobble))
        if lr >= 1.0 and f >= 0.4:  # gd unstable: grows instead
            ld = d0 * np.exp(np.minimum(steps / 60.0 - 1.0, 700.0))
        pd = 0.7 * ld
    gain = 1.0 - np.exp(-np.minimum(lr, 0.5) * steps / 10.0)
    peak = 1.0 - 0.5 * f
    acc = 0.25 + (peak - 0.25) * gain * np.minimum(1.0, ld) ** 0.15
    loss = 0.5 * D * (0.05 + f) * (1.0 + ld ** 2)
    return ld, pd, acc, loss


def make_trajectory(f, h, lr, sg, scale, rng, steps, ran_on=False):
    d0 = rng.uniform(5.0, 8.0)
    dref = rng.uniform(0.8, 1.4)
    wobble = float(np.exp(rng.normal(0.0, 0.35))) * np.sqrt(scale)
    dense = np.arange(MAX_STEPS + 1)
    ld, pd, acc, loss = curves(dense, f, h, lr, sg, d0, wobble)
    below = np.flatnonzero(ld < THRESHOLD)
    bad = np.flatnonzero(~np.isfinite(ld) | (loss > 1e12 * loss[0]) | (ld > 1e6))
    out = {'initial_label_distance': d0, 'reference_distance': dref,
           'collapse_step': -1, 'collapse_time': np.nan}
    if bad.size and (not below.size or bad[0] < below[0]):
        status, final = 2, int(bad[0])
    elif below.size:
        status, final = 1, int(below[0])
        a, b = final - 1, final  # interpolate in log distance between the bracketing steps
        la, lb, lt = np.log(ld[a]), np.log(ld[b]), np.log(THRESHOLD)
        out['collapse_step'] = final
        out['collapse_time'] = lr * (a + (la - lt) / (la - lb))
        if ran_on:
            final = MAX_STEPS
    else:
        status, final = 0, MAX_STEPS
    out['status'] = status
    out['final_step'] = final
    run = slice(0, final + 1)
    out['peak_accuracy'] = float(acc[run].max())
    out['peak_accuracy_step'] = int(np.argmax(acc[run]))
    out['final_accuracy'] = float(acc[final])
    out['final_loss'] = float(loss[final])
    out['final_label_distance'] = float(ld[final])
    out['final_projected_distance'] = float(pd[final])
    rec = np.array([x[steps] for x in (ld, pd, acc, loss)])
    rec[:, steps > final] = np.nan  # stop_on_collapse: NaN after the stopping step
    half = (steps >= final / 2.0) & (steps <= final)
    fit = half.sum() >= 3 and status != 2
    out['slow_rate'] = -np.polyfit(lr * steps[half], np.log(ld[steps[half]]), 1)[0] if fit else np.nan
    out['slow_rate_first_step'] = int(steps[half][0]) if fit else -1
    out['slow_rate_last_step'] = int(steps[half][-1]) if fit else -1
    # theory columns: the "exact" plain-model trace is the made-up curve itself (within 0.1%)
    exact = ld[steps] * (1.0 + 1e-3 * np.sin(steps)) if h == 0 else np.full(steps.size, np.nan)
    out['theory_trace'] = exact
    out['theory_slow_rate'] = 0.006 * f * wobble if h == 0 and f > 0 else np.nan
    out['theory_window_rate'] = (-np.polyfit(lr * steps[half], np.log(exact[half]), 1)[0]
                                 if fit and h == 0 else np.nan)
    out['critical_lr'] = 1.5 / (0.5 + f) if h == 0 else np.nan
    out['selfconsistency_residual'] = 0.01 * (1.0 + f) if h > 0 and sg and status == 0 else np.nan
    out['traces'] = rec
    y = rng.normal(size=(K, D))
    out['label_embeddings'] = y / np.linalg.norm(y[0] - y[1]) * ld[final] * dref
    out['head'] = rng.normal(scale=0.3, size=(D, D)) if h > 0 else np.zeros((D, D))
    return out


THEORY_RESULTS = [('theory_slow_rate', '<f8'), ('theory_window_rate', '<f8'), ('critical_lr', '<f8'),
                  ('selfconsistency_residual', '<f8'), ('slow_rate_first_step', '<i8'), ('slow_rate_last_step', '<i8')]
AXIS_TYPES = {'head_dim': ('<i4', int), 'stop_gradient': ('i1', lambda v: int(v.strip().lower() == 'true'))}


def override_axes(axes, overrides):
    """--axis NAME=V,... replaces an axis's values; NAME= drops the axis (its first value becomes the default)."""
    axes = list(axes)
    dropped = {}
    for text in overrides:
        name, _, raw = text.partition('=')
        position = next((i for i, a in enumerate(axes) if a[0] == name), None)
        dtype, parse = AXIS_TYPES.get(name, ('<f8', float))
        if not raw.strip():
            if position is not None:
                dropped[name] = axes.pop(position)[1][0]
            continue
        values = np.array([parse(v) for v in raw.split(',')])
        entry = (name, values, dtype, False, '[' + raw + ']' if ',' in raw else raw)
        if position is None:
            axes.insert(len(axes) - 1, entry)
        else:
            axes[position] = entry
    return axes, dropped


def build(path, seed=1, done_fraction=1.0, killed_writer=False, grid='default', axis_overrides=(),
          theory=False, ran_on=False):
    axes, dropped = override_axes(GRIDS[grid], axis_overrides)
    names = [a[0] for a in axes]
    shape = tuple(len(a[1]) for a in axes)
    spec = spec_text(axes)
    if ran_on:
        spec = spec.replace('stop_on_collapse = true', 'stop_on_collapse = false')
    steps = (np.arange(0, MAX_STEPS + 1, DENSE_EVERY[grid]) if grid in DENSE_EVERY
             else record_steps(MAX_STEPS, RECORD_POINTS))
    results = RESULTS + (THEORY_RESULTS if theory else [])
    traces = TRACES + (('theory_label_distance',) if theory else ())
    n_total = int(np.prod(shape))
    n_done = int(round(done_fraction * n_total))

    kwargs = {'libver': ('v110', 'v110')} if killed_writer else {}
    fh = h5py.File(path, 'w', **kwargs)
    # the root attributes the engine writes (src/storage/writer_setup.cpp)
    text = {'format': 'collapse-sweep', 'tool_version': 'synthetic', 'git_sha': 'synthetic',
            'command_line': ' '.join(['make_synthetic_output.py'] + (sys.argv[1:] if sys.argv else [])),
            'spec': spec, 'spec_overrides': '',
            'spec_sha256': hashlib.sha256((spec + '\n').encode()).hexdigest(),
            'spec_path': 'synthetic.toml', 'backend': 'synthetic', 'device_name': 'none (made-up values)',
            'precision': 'float64', 'creation_time': '2026-01-01T00:00:00Z', 'kind': 'embedding',
            'method': 'gd', 'collapse_metric': 'label'}
    numbers = {'format_version': np.int32(1), 'classes': np.int32(K), 'samples_per_class': np.int32(50),
               'samples': np.int32(50 * K), 'dim': np.int32(D), 'input_dim': np.int32(0),
               'max_head_dim': np.int32(8), 'max_steps': np.int64(MAX_STEPS),
               'record_points': np.int32(len(steps) if grid in DENSE_EVERY else RECORD_POINTS), 'collapse_threshold': np.float64(THRESHOLD),
               'stop_on_collapse': np.int8(0 if ran_on else 1), 'save_samples': np.int8(0), 'save_initial': np.int8(0),
               'compression': np.int32(4), 'master_seed': np.uint64(seed), 'seeds': np.int64(len(axes[-1][1])),
               'shard_index': np.int64(0), 'shard_count': np.int64(1),
               'shard_begin': np.int64(0), 'shard_end': np.int64(n_total)}
    for key, value in text.items():
        fh.attrs[key] = value
    # trajectory parameters that are not axes: one value for the whole sweep
    defaults = {'frustration': np.float64(0.0), 'head_dim': np.int32(0), 'lr': np.float64(0.1),
                'stop_gradient': np.int8(0), 'init_scale': np.float64(1.0)}
    numbers.update({k: v for k, v in defaults.items() if k not in names})
    numbers.update({k: np.asarray(v).astype(defaults[k].dtype)[()] for k, v in dropped.items() if k in defaults})
    for key, value in numbers.items():
        fh.attrs[key] = value

    other = {'step': (steps, '<i8'), 'class': (np.arange(K), '<i4'), 'component': (np.arange(D), '<i4'),
             'component_out': (np.arange(D), '<i4'), 'component_in': (np.arange(D), '<i4')}
    group_tails = {'results': {n: [] for n, _ in results},
                   'traces': {n: ['step'] for n in traces},
                   'final': {'label_embeddings': ['class', 'component'], 'head': ['component_out', 'component_in']}}
    dsets = {}
    for gname, members in group_tails.items():
        g = fh.create_group(gname)
        for key in ('collapse_threshold', 'collapse_metric', 'stop_on_collapse', 'max_steps', 'record_points',
                    'method', 'precision', 'kind'):  # the settings on each group, as the engine writes them
            g.attrs[key] = numbers[key] if key in numbers else text[key]
        scales = {}
        for name, values, dtype, log_spaced, _ in axes:
            s = g.create_dataset(name, data=np.asarray(values).astype(dtype))
            s.make_scale(name)
            s.attrs['units'], s.attrs['long_name'] = catalogue.describe(name)
            if name != 'seed':
                s.attrs['log_spaced'] = np.int8(log_spaced)
            scales[name] = s
        for tail in {t for tails in members.values() for t in tails}:
            values, dtype = other[tail]
            s = g.create_dataset(tail, data=values.astype(dtype))
            s.make_scale(tail)
            s.attrs['units'], s.attrs['long_name'] = catalogue.describe(tail)
            scales[tail] = s
        types = dict(results)
        for dname, tail in members.items():
            dims = names + tail
            full = shape + tuple(len(scales[t]) for t in tail)
            dtype = types.get(dname, '<f8')
            fill = -1 if np.dtype(dtype).kind == 'i' else np.nan
            ds = g.create_dataset(dname, shape=full, dtype=dtype, chunks=full, shuffle=True,
                                  compression='gzip', compression_opts=4, fillvalue=fill)
            for i, dim in enumerate(dims):
                ds.dims[i].attach_scale(scales[dim])
            ds.attrs['units'], ds.attrs['long_name'] = catalogue.describe(dname)
            dsets[f'{gname}/{dname}'] = ds

    if killed_writer:
        fh.swmr_mode = True

    data = {k: np.full(v.shape, -1 if v.dtype.kind == 'i' else np.nan, dtype=v.dtype) for k, v in dsets.items()}
    per_seed = {int(s): np.random.default_rng([seed, int(s)]) for s in axes[-1][1]}
    for flat, index in enumerate(np.ndindex(*shape)):
        if flat >= n_done:
            break
        p = {name: axes[i][1][j] for i, (name, j) in enumerate(zip(names, index))}
        f, h, lr, sg, s = (p.get(k, dropped.get(k, default)) for k, default in
                           (('frustration', 0.0), ('head_dim', 0), ('lr', 0.1), ('stop_gradient', 0), ('seed', 0)))
        scale = float(p.get('init_scale', 1.0))
        # common random numbers: the seed's draws do not depend on f, h, lr
        state = per_seed[s].bit_generator.state
        out = make_trajectory(float(f), int(h), float(lr), bool(sg), scale, per_seed[s], steps, ran_on)
        per_seed[s].bit_generator.state = state
        for name, _ in results:
            data['results/' + name][index] = out[name]
        for i, name in enumerate(TRACES):
            data['traces/' + name][index] = out['traces'][i]
        if theory:
            data['traces/theory_label_distance'][index] = out['theory_trace']
        data['final/label_embeddings'][index] = out['label_embeddings']
        data['final/head'][index] = out['head']
    # data first, status last (as the engine does), then flush
    for key, ds in dsets.items():
        if key != 'results/status':
            ds[...] = data[key]
    fh.flush()
    dsets['results/status'][...] = data['results/status']
    fh.flush()
    if killed_writer:
        print(path)
        sys.stdout.flush()
        os._exit(0)  # no close: the file keeps its "being written" superblock flags
    fh.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out', metavar='OUT.h5')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--partial', type=float, default=None, metavar='FRACTION',
                        help='fraction of trajectories (flat order) that are finished; the rest are status -1')
    parser.add_argument('--killed-writer', action='store_true',
                        help='write with SWMR and exit without closing the file (as after kill -9)')
    parser.add_argument('--grid', choices=sorted(GRIDS), default='default',
                        help='which made-up grid (default: the one described above)')
    parser.add_argument('--axis', action='append', default=[], metavar='NAME=V,...',
                        help='replace an axis\'s values; NAME= removes the axis')
    parser.add_argument('--theory', action='store_true', help='add the theory columns of SPEC §6')
    parser.add_argument('--ran-on', action='store_true', help='stop_on_collapse = false')
    args = parser.parse_args(argv)
    fraction = args.partial if args.partial is not None else (0.5 if args.killed_writer else 1.0)
    if not 0.0 <= fraction <= 1.0:
        parser.error('--partial must lie in [0, 1]')
    try:
        build(args.out, seed=args.seed, done_fraction=fraction, killed_writer=args.killed_writer, grid=args.grid,
              axis_overrides=args.axis, theory=args.theory, ran_on=args.ran_on)
    except OSError as e:
        print(f'error: cannot write {args.out}: {e}', file=sys.stderr)
        return 1
    print(args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
