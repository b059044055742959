"""The traces figure: label distance and accuracy against t = lr·step at a few
grid points, one thin line per seed, the median over seeds bold, and (plain
model, when the file has it) the exact theoretical trace dashed."""
import os
import textwrap
import warnings

import matplotlib.pyplot as plt
import numpy as np

from ..stats import wilson_interval
from .common import UsageError, axis_value, fixed_settings, parse_assignments, save, setting


def _all_diverged(status):
    finished = status >= 0
    return finished.any() and bool(np.all(status[finished] == 2))


def _has_run(sweep, point):
    return bool((sweep.results['status'].sel(point).values >= 0).any())


def default_points(sweep):
    """The smallest and largest frustration without a head, the largest head with and without
    stop-gradient; lr at a middle value that not every seed diverged at; other axes at their first
    value. Each axis is used only with the values it has (a one-valued axis stays at its value)."""
    ax = sweep.axes
    base = {}
    for n, values in ax.items():
        if n == 'seed':
            continue
        if n == 'lr':
            base[n] = values[(len(values) - 1) // 2]
        elif n == 'stop_gradient':
            base[n] = False if False in list(values) else values[0]
        else:
            base[n] = values[0]
    heads = ax.get('head_dim')
    fr = ax.get('frustration')
    points = []
    plain = dict(base)
    if heads is not None:
        plain['head_dim'] = 0 if 0 in list(heads) else min(heads)
    if fr is not None:
        points += [{**plain, 'frustration': min(fr)}, {**plain, 'frustration': max(fr)}]
    else:
        points.append(plain)
    if heads is not None and max(heads) > 0 and max(heads) != plain['head_dim']:
        head = {**base, 'head_dim': max(heads)}
        if fr is not None:
            head['frustration'] = max(fr)
        if 'stop_gradient' in ax:
            points += [{**head, 'stop_gradient': v} for v in ax['stop_gradient']]
        else:
            points.append(head)
    status = sweep.results['status']
    for p in points:
        # In a partly run file, move along frustration (towards the other end) to a value that has run.
        if fr is not None and not _has_run(sweep, p):
            for f in sorted(fr, reverse=bool(p['frustration'] == max(fr))):
                if _has_run(sweep, {**p, 'frustration': f}):
                    p['frustration'] = f
                    break
        # Where every finished seed diverged there is nothing to see: the nearest lr (smaller first) that is not.
        if 'lr' in ax and _all_diverged(status.sel(p).values):
            lrs = list(ax['lr'])
            here = lrs.index(p['lr'])
            for j in sorted(range(len(lrs)), key=lambda j: (abs(j - here), j > here)):
                s = status.sel({**p, 'lr': lrs[j]}).values
                if (s >= 0).any() and not _all_diverged(s):
                    p['lr'] = lrs[j]
                    break
    unique = []
    for p in points:
        if p not in unique:
            unique.append(p)
    return unique


def user_points(sweep, specs):
    base = default_points(sweep)[0]
    points = []
    for spec in specs:
        for text in spec.split(';'):
            if not text.strip():
                continue
            point = dict(base)
            for name, raw in parse_assignments(text, '--points').items():
                if name == 'seed':
                    raise UsageError('--points: seed is not a point coordinate (every seed is drawn)')
                point[name] = axis_value(sweep, name, raw)
            points.append(point)
    return points


def point_label(sweep, point):
    names = [n for n in point if len(sweep.axes[n]) > 1]
    if 'head_dim' in point and int(point['head_dim']) == 0:  # stop-gradient changes nothing without a head
        names = [n for n in names if n != 'stop_gradient']
    return ', '.join(setting(n, point[n]) for n in names) or 'the one grid point'


def distance_median(d, status):
    """Median over seeds (rows) of a distance trace, a stopped seed counted as
    beyond the threshold: below everything after a collapse, above everything
    after a divergence. It then crosses the threshold near the median collapse
    time, and ends once half the seeds have collapsed or diverged."""
    d = np.array(d, dtype=float)
    for row, code in zip(d, status):
        finite = np.flatnonzero(np.isfinite(row))
        after = slice(finite[-1] + 1 if finite.size else 0, None)
        row[after] = -np.inf if code == 1 else np.inf if code == 2 else np.nan
    med = np.median(d, axis=0)
    return np.where(np.isfinite(med) & (med > 0), med, np.nan)


def running_median(y):
    """Median over the seeds (rows) still running, while more than half run."""
    running = np.isfinite(y).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        med = np.nanmedian(y, axis=0)
    return np.where(2 * running > y.shape[0], med, np.nan)


def _count_label(status):
    n = int((status >= 0).sum())
    k = int((status == 1).sum())
    low, high = wilson_interval(k, n)
    text = f'{k}/{n} collapsed'
    if n:
        text += f' (95% CI {float(low):.2f}–{float(high):.2f})'
    n_div = int((status == 2).sum())
    return text + (f', {n_div} diverged' if n_div else '')


def traces_figure(sweep, points, out_path):
    metric = 'projected_distance' if sweep.metric == 'projected' else 'label_distance'
    theory_name = 'theory_label_distance' if metric == 'label_distance' else None
    has_theory = theory_name is not None and theory_name in sweep._ds
    stopped = bool(int(sweep.attrs.get('stop_on_collapse', 1)))
    fig, (ax_d, ax_a) = plt.subplots(2, 1, figsize=(8.0, 8.8), sharex=True, constrained_layout=True)
    colours = plt.get_cmap('tab10').colors
    drawn, skipped, theory_drawn = 0, [], False
    tmin, tmax, dmin, dmax = np.inf, 0.0, np.inf, 0.0
    for point in points:
        dist = sweep.traces(metric, **point)
        acc = sweep.traces('accuracy', **point)
        picked = sweep.index(point)
        status = sweep.results['status'].isel(picked).values
        ctime = sweep.results['collapse_time'].isel(picked).values
        if not np.isfinite(dist.values).any():
            skipped.append(point_label(sweep, point))
            continue
        colour = colours[drawn % len(colours)]
        t = np.asarray(dist['t'].values, dtype=float)
        keep = t > 0  # log time axis: drop step 0
        t = t[keep]
        dv = dist.values[..., keep].reshape(-1, keep.sum())
        av = acc.values[..., keep].reshape(-1, keep.sum())
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)
            for y, ax in ((dv, ax_d), (av, ax_a)):
                for row in y:
                    ax.plot(t, row, color=colour, lw=0.7, alpha=0.45)
            ax_d.plot(t, distance_median(dv, status.ravel()), color=colour, lw=2.2)
            ax_a.plot(t, running_median(av), color=colour, lw=2.2)
        if has_theory:
            theory = sweep.traces(theory_name, **point).values[..., keep].reshape(-1, keep.sum())
            for row in theory:
                if np.isfinite(row).any():
                    ax_d.plot(t, row, color='black', lw=0.9, ls=(0, (4, 3)), alpha=0.8, zorder=4)
                    theory_drawn = True
        ax_d.plot([], [], color=colour, lw=2.2, label=f'{point_label(sweep, point)}  [{_count_label(status)}]')
        hits = ctime[np.isfinite(ctime)]
        if hits.size:
            ax_d.plot(hits, np.full(hits.size, sweep.threshold), 'o' if stopped else 'v', ms=4.5, color=colour,
                      mec='black', mew=0.5, zorder=5)
        drawn += 1
        good = dv[np.isfinite(dv) & (dv > 0)]
        if good.size:
            dmin, dmax = min(dmin, good.min()), max(dmax, good.max())
        ok_t = np.concatenate([t[np.isfinite(dv).any(axis=0)], hits[hits > 0]])
        if ok_t.size:
            tmin, tmax = min(tmin, ok_t.min()), max(tmax, ok_t.max())
    if drawn == 0:
        plt.close(fig)
        return None, skipped
    ax_d.axhline(sweep.threshold, color='black', ls='--', lw=1.0, label=f'collapse threshold {sweep.threshold:g}')
    ax_d.plot([], [], color='grey', lw=0.7, alpha=0.6, label='thin: each seed; bold: median over seeds')
    if stopped:
        ax_d.plot([], [], 'o', ms=4.5, color='grey', mec='black', mew=0.5,
                  label='collapse: crossed the threshold, run stopped there')
    else:
        ax_d.plot([], [], 'v', ms=4.5, color='grey', mec='black', mew=0.5,
                  label='collapse: crossed the threshold, run went on (stop_on_collapse = false)')
    if theory_drawn:
        ax_d.plot([], [], color='black', lw=0.9, ls=(0, (4, 3)), label='dashed black: exact theory (plain model), per seed')
    ax_d.set_xscale('log')
    ax_d.set_yscale('log')
    ax_d.set_ylim(max(min(dmin, sweep.threshold) / 3.0, 1e-16), min(max(dmax, 1.0) * 2.0, 1e4))
    if tmax > tmin:
        ax_d.set_xlim(tmin, tmax)
    ax_d.set_ylabel('projected distance' if metric == 'projected_distance' else 'label distance D/D_ref')
    fig.legend(*ax_d.get_legend_handles_labels(), loc='outside lower center', ncol=1, fontsize=7.5, frameon=False)
    ax_d.grid(True, which='major', alpha=0.3)
    ax_a.set_ylim(0.0, 1.05)
    ax_a.set_ylabel('accuracy (nearest label)')
    ax_a.set_xlabel('time t = lr·step (lr·steps)')
    ax_a.grid(True, which='major', alpha=0.3)
    chance = 1.0 / max(int(sweep.attrs.get('classes', 4) or 4), 1)
    ax_a.axhline(chance, color='grey', ls=':', lw=1.0)
    ax_a.text(tmax, chance, 'chance ', ha='right', va='bottom', fontsize=7.5, color='grey')
    lines = [f'{os.path.basename(sweep.path)}: trajectories', '; '.join(fixed_settings(sweep))]
    if sweep.progress < 1.0:
        lines[0] += f' ({100 * sweep.progress:.1f}% of the sweep run)'
    if skipped:
        lines += textwrap.wrap(f'not run yet, left out: {"; ".join(skipped)}', width=110)
    fig.suptitle('\n'.join(lines), fontsize=9.5)
    save(fig, out_path)
    return out_path, skipped
