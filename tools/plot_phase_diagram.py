#!/usr/bin/env python3
"""Draw the phase diagram and example traces of a collapse-sweep output file.

usage: plot_phase_diagram.py OUT.h5 [-o PREFIX] [--x frustration] [--y lr]
                             [--points "frustration=0.1,head_dim=0,lr=0.5;..."]... [--fix NAME=VALUE]...

Writes
  PREFIX_phase.png   heatmaps over x (default frustration) and y (default lr) of
                     the median collapse time (lr·steps, log colour scale) and
                     of the collapsed fraction over seeds; one column per
                     head_dim value and, if stop_gradient is an axis, one pair
                     of rows per stop_gradient value. Any other axis is held at
                     its first value (or --fix NAME=VALUE), as the title says.
  PREFIX_traces.png  label distance (log) and accuracy against t = lr·step (log)
                     at a few grid points (--points; default: the smallest and
                     largest frustration without a head, and the largest head
                     with and without stop-gradient), one thin line per seed,
                     the median over seeds bold, the collapse threshold dashed.
PREFIX defaults to OUT without its .h5 suffix. The paths written are printed.
Exit status: 0 ok, 1 unreadable input, 2 bad usage (options, axis names or values).
"""
import argparse
import os
import sys
import textwrap

import matplotlib

matplotlib.use('Agg')
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import PatchCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullLocator  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collapse_reader import (SweepFileError, collapsed_fraction, is_log_spaced,  # noqa: E402
                             median_collapse_time, open_sweep)
import theory_overlays  # noqa: E402
from plot_common import (LABELS, OutputError, UsageError, axis_value,  # noqa: E402
                         fmt, parse_assignments, save, setting)
from trace_plots import default_points, traces_figure, user_points  # noqa: E402

NO_COLLAPSE, DIVERGED, NOT_RUN = '#d4d4d4', '#3b3b3b', 'white'
TIME_LABEL = 'median collapse time (lr·steps)'
FRACTION_LABEL = 'collapsed fraction (of seeds)'


def cell_edges(values, log):
    """pcolormesh cell edges around `values` (sorted); a length-1 axis gets a cell too."""
    v = np.asarray(values, dtype=float)
    if v.size == 1:
        if log and v[0] > 0:
            return np.array([v[0] / 2.0, v[0] * 2.0])
        half = 0.5 if v[0] == 0 else 0.2 * abs(v[0])
        return np.array([v[0] - half, v[0] + half])
    if log:
        lv = np.log(v)
        mid = (lv[1:] + lv[:-1]) / 2
        return np.exp(np.concatenate([[lv[0] - (mid[0] - lv[0])], mid, [lv[-1] + (lv[-1] - mid[-1])]]))
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


def log_axis(sweep, name):
    return bool(sweep.log_spaced.get(name)) or is_log_spaced(sweep.axes[name])


# --------------------------------------------------------------------------- phase diagram

def phase_figure(sweep, xname, yname, fixed, out_path):
    axes = [n for n in sweep.axes if n != 'seed']
    for n in (xname, yname):
        if n not in axes:
            raise UsageError(f'--x/--y: {n!r} is not a grid axis of {sweep.path}; axes: {", ".join(axes)}')
    if xname == yname:
        raise UsageError('--x and --y must name different axes')
    col = 'head_dim' if 'head_dim' in axes and 'head_dim' not in (xname, yname) else None
    row = 'stop_gradient' if 'stop_gradient' in axes and 'stop_gradient' not in (xname, yname) else None
    for n in list(fixed):
        if n in (xname, yname, col, row):
            raise UsageError(f'--fix {n}: {n} is already drawn as a panel axis')
    held = {}
    notes = []
    for n in axes:
        if n in (xname, yname, col, row):
            continue
        if n in fixed:
            held[n] = fixed[n]
        else:
            held[n] = sweep.axes[n][0]
        if len(sweep.axes[n]) > 1:
            notes.append(f'{setting(n, held[n])}' + ('' if n in fixed else f' (first of {len(sweep.axes[n])} values)'))

    res = sweep.results
    if held:
        res = res.sel({n: v for n, v in held.items()})
    fraction = collapsed_fraction(res)
    median = median_collapse_time(res)
    finished = (res['status'] >= 0).sum('seed')
    n_diverged = (res['status'] == 2).sum('seed')
    diverged_all = (n_diverged == finished) & (finished > 0)
    diverged_some = (n_diverged > 0) & (n_diverged < finished)

    cols = list(sweep.axes[col]) if col else [None]
    rows = list(sweep.axes[row]) if row else [None]
    xs, ys = sweep.axes[xname], sweep.axes[yname]
    xlog, ylog = log_axis(sweep, xname), log_axis(sweep, yname)
    xorder, yorder = np.argsort(xs), np.argsort(ys)
    xedges, yedges = cell_edges(np.asarray(xs)[xorder], xlog), cell_edges(np.asarray(ys)[yorder], ylog)

    finite = median.values[np.isfinite(median.values)]
    if finite.size:
        vmin, vmax = float(finite.min()), float(finite.max())
        if vmin == vmax:
            vmin, vmax = vmin / 2, vmax * 2
    else:
        vmin, vmax = 1.0, 10.0
    time_norm = mcolors.LogNorm(vmin=vmin, vmax=vmax)
    time_cmap = plt.get_cmap('plasma').copy()
    frac_cmap = plt.get_cmap('viridis').copy()
    frac_norm = mcolors.Normalize(0.0, 1.0)
    category_cmap = mcolors.ListedColormap([NO_COLLAPSE, DIVERGED, NOT_RUN])

    nrows, ncols = 2 * len(rows), len(cols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(max(6.0, 1.2 + 3.3 * ncols), 1.1 + 2.6 * nrows),
                             squeeze=False, constrained_layout=True)
    seen = set()
    theory_seen = set()
    boundaries = theory_overlays.read_boundaries(sweep.path)
    time_mappable = frac_mappable = None
    for r, rv in enumerate(rows):
        for c, cv in enumerate(cols):
            sel = {}
            if col:
                sel[col] = cv
            if row:
                sel[row] = rv
            t = median.sel(sel).transpose(yname, xname).values[np.ix_(yorder, xorder)]
            fr = fraction.sel(sel).transpose(yname, xname).values[np.ix_(yorder, xorder)]
            fin = finished.sel(sel).transpose(yname, xname).values[np.ix_(yorder, xorder)]
            div = diverged_all.sel(sel).transpose(yname, xname).values[np.ix_(yorder, xorder)]
            some = diverged_some.sel(sel).transpose(yname, xname).values[np.ix_(yorder, xorder)]
            category = np.where(fin == 0, 2, np.where(div, 1, 0)).astype(float)
            for k, (kind, data) in enumerate((('time', t), ('fraction', fr))):
                ax = grid[2 * r + k, c]
                bg = np.ma.masked_where(np.isfinite(data) & (category != 1), category)
                ax.pcolormesh(xedges, yedges, bg, cmap=category_cmap, vmin=-0.5, vmax=2.5, shading='flat',
                              edgecolors='face', linewidth=0)
                if (fin == 0).any():
                    cells = [Rectangle((xedges[xi], yedges[yi]), xedges[xi + 1] - xedges[xi],
                                       yedges[yi + 1] - yedges[yi]) for yi, xi in zip(*np.nonzero(fin == 0))]
                    ax.add_collection(PatchCollection(cells, hatch='///', facecolor='none', edgecolor='#999999',
                                                      linewidth=0))
                    seen.add('not run')
                if ((category == 0) & ~np.isfinite(t)).any():
                    seen.add('no collapse')
                if (category == 1).any():
                    seen.add('diverged')
                if some.any():  # a marker where some (not all) seeds diverged
                    xc, yc = np.sort(np.asarray(xs, dtype=float)), np.sort(np.asarray(ys, dtype=float))
                    yi, xi = np.nonzero(some)
                    ax.scatter(xc[xi], yc[yi], marker='x', s=22, c='white', linewidths=2.2, zorder=3)
                    ax.scatter(xc[xi], yc[yi], marker='x', s=18, c='black', linewidths=1.0, zorder=4)
                    seen.add('some diverged')
                masked = np.ma.masked_invalid(data)
                if kind == 'time':
                    masked = np.ma.masked_where(category == 1, masked)
                    time_mappable = ax.pcolormesh(xedges, yedges, masked, cmap=time_cmap, norm=time_norm,
                                                  shading='flat')
                else:
                    masked = np.ma.masked_where(category == 1, masked)
                    frac_mappable = ax.pcolormesh(xedges, yedges, masked, cmap=frac_cmap, norm=frac_norm,
                                                  shading='flat')
                if xlog:
                    ax.set_xscale('log')
                if ylog:
                    ax.set_yscale('log')
                ax.set_xlim(xedges[0], xedges[-1])
                ax.set_ylim(yedges[0], yedges[-1])
                panel = {**held, **{n: v for n, v in ((col, cv), (row, rv)) if n}}
                theory_overlays.draw_boundaries(boundaries, ax, xname, yname, panel, theory_seen)
                theory_overlays.draw_critical_lr(res, ax, xname, yname, panel, theory_seen)
                for values, axis in ((xs, ax.xaxis), (ys, ax.yaxis)):
                    if len(values) <= 8:  # few cells: a tick at each value, labelled with it
                        axis.set_ticks(np.sort(np.asarray(values, dtype=float)),
                                       [fmt(v) for v in np.sort(np.asarray(values))])
                        axis.set_minor_locator(NullLocator())
                ax.set_xlabel(LABELS.get(xname, xname))
                ax.set_ylabel(LABELS.get(yname, yname))
                parts = [setting(n, v) for n, v in ((col, cv), (row, rv)) if n]
                what = 'median collapse time' if kind == 'time' else 'collapsed fraction'
                ax.set_title(f'{what}\n' + ', '.join(parts) if parts else what, fontsize=9)
        if time_mappable is not None:
            bar = fig.colorbar(time_mappable, ax=list(grid[2 * r, :]), label=TIME_LABEL, shrink=0.95)
            if vmax / vmin < 10:  # less than a decade: plain numbers on every tick
                plain = FuncFormatter(lambda v, _: f'{v:.3g}')
                bar.ax.yaxis.set_major_formatter(plain)
                bar.ax.yaxis.set_minor_formatter(plain)
        if frac_mappable is not None:
            fig.colorbar(frac_mappable, ax=list(grid[2 * r + 1, :]), label=FRACTION_LABEL, shrink=0.95)

    seeds = len(sweep.axes.get('seed', [1]))
    lines = [f'{os.path.basename(sweep.path)}: collapse over {LABELS.get(xname, xname)} × {LABELS.get(yname, yname)}',
             f'{seeds} seeds per cell; collapse: {sweep.metric} distance < {sweep.threshold:g}']
    if sweep.progress < 1.0:
        lines[-1] += f'; {100 * sweep.progress:.1f}% of trajectories run'
    if notes:
        lines.append('held at ' + ', '.join(notes))
    width = fig.get_size_inches()[0]
    wrapped = [part for line in lines for part in textwrap.wrap(line, width=max(40, int(width * 13)))]
    fig.suptitle('\n'.join(wrapped), fontsize=10)
    handles = [Patch(facecolor=NO_COLLAPSE, edgecolor='#888888', label='no collapse (no seed collapsed)')]
    if 'diverged' in seen:
        handles.append(Patch(facecolor=DIVERGED, edgecolor='#888888', label='diverged (all seeds)'))
    if 'some diverged' in seen:
        handles.append(Line2D([], [], marker='x', ls='none', color='black', label='some seeds diverged'))
    if 'not run' in seen:
        handles.append(Patch(facecolor='white', edgecolor='#999999', hatch='///', label='not run yet'))
    handles += theory_overlays.legend_handles(theory_seen)
    fig.legend(handles=handles, loc='outside lower center', ncol=min(len(handles), 3), fontsize=8, frameon=False)
    save(fig, out_path)
    return out_path


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='plot_phase_diagram.py', description='Phase diagram and trace plots of a collapse-sweep file.',
        epilog='Writes PREFIX_phase.png and PREFIX_traces.png and prints their paths.')
    parser.add_argument('file', metavar='OUT.h5')
    parser.add_argument('-o', '--output', metavar='PREFIX', help='output prefix (default: OUT without .h5)')
    parser.add_argument('--x', default='frustration', help='axis along x (default: frustration)')
    parser.add_argument('--y', default='lr', help='axis along y (default: lr)')
    parser.add_argument('--points', action='append', default=[], metavar='NAME=V,...[;NAME=V,...]',
                        help='grid points for the traces, e.g. "frustration=0.1,head_dim=0,lr=0.5"; '
                             'repeat or separate points with ";"; unnamed axes take the default point\'s values')
    parser.add_argument('--fix', action='append', default=[], metavar='NAME=VALUE',
                        help='hold an axis that is not drawn at this value (default: its first value)')
    args = parser.parse_args(argv)
    prefix = args.output
    if prefix is None:
        prefix = args.file[:-3] if args.file.endswith('.h5') else args.file
    try:
        sweep = open_sweep(args.file)
        fixed = {}
        for text in args.fix:
            for name, raw in parse_assignments(text, '--fix').items():
                fixed[name] = axis_value(sweep, name, raw)
        points = user_points(sweep, args.points) if args.points else default_points(sweep)
        directory = os.path.dirname(prefix)
        if directory:
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as e:
                raise OutputError(f'cannot create the directory {directory}: {e.strerror or e}') from None
        phase = phase_figure(sweep, args.x, args.y, fixed, prefix + '_phase.png')
        print(phase)
        traces, skipped = traces_figure(sweep, points, prefix + '_traces.png')
        if traces:
            print(traces)
        else:
            print(f'warning: no trajectory has run at the chosen points ({"; ".join(skipped)}); '
                  f'{prefix}_traces.png not written', file=sys.stderr)
        theory = theory_overlays.theory_figure(sweep, prefix + '_theory.png', save)
        if theory:
            print(theory)
    except UsageError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except (SweepFileError, OutputError, ValueError, KeyError, OSError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f'error: {msg}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
