"""The phase-diagram figure: heatmaps over two axes of the Kaplan-Meier median
collapse time (censored cells hatched) and of the collapsed fraction (k/n in
each cell), one column per head width and one pair of rows per stop-gradient
value when those axes vary (docs/analysis.md, "The plot tool")."""
import os
import textwrap

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import PatchCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, NullLocator

from ..stats import collapse_time, fractions
from ..sweep import is_log_spaced
from . import theory
from .common import LABELS, UsageError, fixed_settings, fmt, save, setting, varied_axes

CENSORED, DIVERGED, NOT_RUN = '#d4d4d4', '#3b3b3b', 'white'
TIME_LABEL = 'median collapse time (lr·steps)\n(Kaplan–Meier over seeds)'
FRACTION_LABEL = 'collapsed fraction\n(cells: k of n seeds)'


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


def default_xy(sweep, x=None, y=None):
    """x and y: as given, else frustration and lr where they vary, else the varied axes in order."""
    grid = [n for n in sweep.axes if n != 'seed']
    varied = varied_axes(sweep)
    pool = [n for n in ('frustration', 'lr') if n in varied] + [n for n in varied if n not in ('frustration', 'lr')]
    pool += [n for n in ('frustration', 'lr') if n in grid and n not in pool] + [n for n in grid if n not in pool]
    if x is None:
        x = next(n for n in pool if n != y)
    if y is None:
        y = next((n for n in pool if n != x), None)
    return x, y


def _hatch(ax, xedges, yedges, mask, hatch, colour):
    cells = [Rectangle((xedges[xi], yedges[yi]), xedges[xi + 1] - xedges[xi], yedges[yi + 1] - yedges[yi])
             for yi, xi in zip(*np.nonzero(mask))]
    ax.add_collection(PatchCollection(cells, hatch=hatch, facecolor='none', edgecolor=colour, linewidth=0, zorder=2))


def phase_figure(sweep, xname, yname, fixed, out_path):
    axes = [n for n in sweep.axes if n != 'seed']
    for n in (xname, yname):
        if n not in axes:
            raise UsageError(f'--x/--y: {n!r} is not a grid axis of {sweep.path}; axes: {", ".join(axes)}')
    if xname == yname:
        raise UsageError('--x and --y must name different axes')
    varied = varied_axes(sweep)
    col = 'head_dim' if 'head_dim' in varied and 'head_dim' not in (xname, yname) else None
    row = 'stop_gradient' if 'stop_gradient' in varied and 'stop_gradient' not in (xname, yname) else None
    for n in list(fixed):
        if n in (xname, yname, col, row):
            raise UsageError(f'--fix {n}: {n} is already drawn as a panel axis')
    held, notes = {}, []
    for n in axes:
        if n in (xname, yname, col, row):
            continue
        held[n] = fixed[n] if n in fixed else sweep.axes[n][0]
        if len(sweep.axes[n]) > 1:
            notes.append(setting(n, held[n]) + ('' if n in fixed else f' (first of {len(sweep.axes[n])} values)'))

    res = sweep.results
    if held:
        res = res.isel(sweep.index(held))
    frac = fractions(res)
    km = collapse_time(res, sweep.max_steps)
    finished, n_diverged = frac['n_finished'], frac['n_diverged']
    diverged_all = (n_diverged == finished) & (finished > 0)
    diverged_some = (n_diverged > 0) & (n_diverged < finished)

    cols = list(sweep.axes[col]) if col else [None]
    rows = list(sweep.axes[row]) if row else [None]
    xs, ys = np.asarray(sweep.axes[xname]), np.asarray(sweep.axes[yname])
    xlog, ylog = log_axis(sweep, xname), log_axis(sweep, yname)
    xorder, yorder = np.argsort(xs), np.argsort(ys)
    xedges, yedges = cell_edges(xs[xorder], xlog), cell_edges(ys[yorder], ylog)
    xc, yc = xs[xorder].astype(float), ys[yorder].astype(float)
    annotate = len(xs) * len(ys) <= 64

    finite = km['median'].values[np.isfinite(km['median'].values)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (1.0, 10.0)
    if vmin == vmax:
        vmin, vmax = vmin / 2, vmax * 2
    time_norm = mcolors.LogNorm(vmin=vmin, vmax=vmax)
    frac_norm = mcolors.Normalize(0.0, 1.0)
    category_cmap = mcolors.ListedColormap([CENSORED, DIVERGED, NOT_RUN])
    # h = 0 panels are identical for stop-gradient on and off (SPEC §1): drawn once, in the first row pair
    shared_plain = row is not None and col is not None and 0 in [int(v) for v in cols]

    nrows, ncols = 2 * len(rows), len(cols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(max(6.5, 1.8 + 3.5 * ncols), 1.6 + 2.7 * nrows),
                             squeeze=False, constrained_layout=True)
    seen, theory_seen = set(), set()
    boundaries = theory.read_boundaries(sweep.path)
    time_mappable = frac_mappable = None

    def panel_values(data, sel):
        return data.sel(sel).transpose(yname, xname).values[np.ix_(yorder, xorder)]

    for r, rv in enumerate(rows):
        for c, cv in enumerate(cols):
            if shared_plain and r > 0 and int(cv) == 0:
                for k in range(2):
                    ax = grid[2 * r + k, c]
                    ax.axis('off')
                    if k == 0:
                        ax.text(0.5, 0.5, 'h = 0: identical to the panels above\n(stop-gradient has no effect '
                                'without a head)', ha='center', va='center', fontsize=8, transform=ax.transAxes)
                continue
            sel = {n: v for n, v in ((col, cv), (row, rv)) if n}
            t = panel_values(km['median'], sel)
            censored = panel_values(km['censored'], sel)
            fr = panel_values(frac['collapsed_fraction'], sel)
            fin = panel_values(finished, sel)
            k_coll = panel_values(frac['n_collapsed'], sel)
            div = panel_values(diverged_all, sel)
            some = panel_values(diverged_some, sel)
            category = np.where(fin == 0, 2, np.where(div, 1, 0)).astype(float)
            for k, (kind, data) in enumerate((('time', t), ('fraction', fr))):
                ax = grid[2 * r + k, c]
                bg = np.ma.masked_where(np.isfinite(data) & (category != 1), category)
                ax.pcolormesh(xedges, yedges, bg, cmap=category_cmap, vmin=-0.5, vmax=2.5, shading='flat',
                              edgecolors='face', linewidth=0)
                if (fin == 0).any():
                    _hatch(ax, xedges, yedges, fin == 0, '///', '#999999')
                    seen.add('not run')
                if (category == 1).any():
                    seen.add('diverged')
                if kind == 'time' and (censored & (category == 0)).any():
                    _hatch(ax, xedges, yedges, censored & (category == 0), '\\\\\\', '#7a7a7a')
                    seen.add('censored')
                masked = np.ma.masked_where(category == 1, np.ma.masked_invalid(data))
                if kind == 'time':
                    time_mappable = ax.pcolormesh(xedges, yedges, masked, cmap='plasma', norm=time_norm,
                                                  shading='flat')
                else:
                    frac_mappable = ax.pcolormesh(xedges, yedges, masked, cmap='viridis', norm=frac_norm,
                                                  shading='flat')
                    if annotate:
                        for yi, xi in zip(*np.nonzero(fin > 0)):
                            light = category[yi, xi] == 1 or (np.isfinite(fr[yi, xi]) and fr[yi, xi] < 0.6)
                            ax.text(xc[xi], yc[yi], f'{int(k_coll[yi, xi])}/{int(fin[yi, xi])}', ha='center',
                                    va='center', fontsize=6.5, color='white' if light else 'black', zorder=5)
                if some.any() and kind == 'time':  # a marker where some (not all) seeds diverged
                    yi, xi = np.nonzero(some)
                    ax.scatter(xc[xi], yc[yi], marker='x', s=22, c='white', linewidths=2.2, zorder=3)
                    ax.scatter(xc[xi], yc[yi], marker='x', s=18, c='black', linewidths=1.0, zorder=4)
                    seen.add('some diverged')
                if xlog:
                    ax.set_xscale('log')
                if ylog:
                    ax.set_yscale('log')
                ax.set_xlim(xedges[0], xedges[-1])
                ax.set_ylim(yedges[0], yedges[-1])
                panel = {**held, **sel}
                theory.draw_boundaries(boundaries, ax, xname, yname, panel, theory_seen)
                theory.draw_critical_lr(res, ax, xname, yname, panel, theory_seen)
                for values, axis in ((xs, ax.xaxis), (ys, ax.yaxis)):
                    if len(values) <= 8:  # few cells: a tick at each value, labelled with it
                        axis.set_ticks(np.sort(values.astype(float)), [fmt(v) for v in np.sort(values)])
                        axis.set_minor_locator(NullLocator())
                ax.set_xlabel(LABELS.get(xname, xname))
                ax.set_ylabel(LABELS.get(yname, yname))
                parts = [setting(n, v) for n, v in sel.items() if not (shared_plain and n == row and int(cv) == 0)]
                if shared_plain and int(cv) == 0:
                    parts.append('any stop-gradient')
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
             '; '.join(fixed_settings(sweep)),
             f'{seeds} seed{"s" if seeds != 1 else ""} per cell; collapse: {sweep.metric} distance < {sweep.threshold:g}']
    if sweep.progress < 1.0:
        lines[-1] += f'; {100 * sweep.progress:.1f}% of trajectories run'
    if notes:
        lines.append('held at ' + ', '.join(notes))
    width = fig.get_size_inches()[0]
    wrapped = [part for line in lines for part in textwrap.wrap(line, width=max(40, int(width * 13)))]
    fig.suptitle('\n'.join(wrapped), fontsize=9.5)
    handles = []
    if 'censored' in seen:
        handles.append(Patch(facecolor=CENSORED, edgecolor='#7a7a7a', hatch='\\\\\\',
                             label='median > t_max = lr·max_steps (fewer than half of the seeds collapsed)'))
    if 'diverged' in seen:
        handles.append(Patch(facecolor=DIVERGED, edgecolor='#888888', label='diverged (all seeds)'))
    if 'some diverged' in seen:
        handles.append(Line2D([], [], marker='x', ls='none', color='black',
                              label='some seeds diverged (counted as not collapsed by t_max)'))
    if 'not run' in seen:
        handles.append(Patch(facecolor='white', edgecolor='#999999', hatch='///', label='not run yet'))
    handles += theory.legend_handles(theory_seen)
    if handles:
        fig.legend(handles=handles, loc='outside lower center', ncol=1 if len(handles) > 2 else len(handles),
                   fontsize=8, frameon=False)
    save(fig, out_path)
    return out_path
