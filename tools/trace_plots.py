"""The traces figure of plot_phase_diagram.py: label distance and accuracy
against t = lr·step at a few grid points, one thin line per seed, the median
over seeds bold."""
import os
import textwrap
import warnings

import matplotlib.pyplot as plt
import numpy as np

from plot_common import UsageError, axis_value, parse_assignments, save, setting


def default_points(sweep):
    ax = sweep.axes
    base = {}
    for n, values in ax.items():
        if n == 'seed':
            continue
        if n == 'lr':
            base[n] = values[(len(values) - 1) // 2]  # a middle learning rate
        elif n == 'stop_gradient':
            base[n] = False if False in list(values) else values[0]
        else:
            base[n] = values[0]
    heads = ax.get('head_dim', np.array([0]))
    no_head = 0 if 0 in list(heads) else min(heads)
    fr = ax.get('frustration', np.array([0.0]))
    points = []
    if 'frustration' in ax:
        points.append({**base, 'frustration': min(fr), 'head_dim': no_head} if 'head_dim' in ax else
                      {**base, 'frustration': min(fr)})
        points.append({**base, 'frustration': max(fr), 'head_dim': no_head} if 'head_dim' in ax else
                      {**base, 'frustration': max(fr)})
    else:
        points.append(dict(base))
    if 'head_dim' in ax and max(heads) > 0:
        head = {**base, 'head_dim': max(heads)}
        if 'frustration' in ax:
            head['frustration'] = max(fr)
        if 'stop_gradient' in ax:
            points.append({**head, 'stop_gradient': False})
            points.append({**head, 'stop_gradient': True})
        else:
            points.append(head)
    # In a partly run file, move each point along frustration (towards the
    # other end) to the nearest value with finished trajectories.
    status = sweep.results['status']
    for p in points:
        if 'frustration' not in ax or (status.sel(p) >= 0).any():
            continue
        order = sorted(fr, reverse=bool(p['frustration'] == max(fr)))
        for f in order:
            if (status.sel({**p, 'frustration': f}) >= 0).any():
                p['frustration'] = f
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
    names = [n for n in point if n in ('frustration', 'head_dim', 'lr') or len(sweep.axes[n]) > 1]
    return ', '.join(setting(n, point[n]) for n in names)


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


def traces_figure(sweep, points, out_path):
    metric = 'projected_distance' if sweep.metric == 'projected' else 'label_distance'
    fig, (ax_d, ax_a) = plt.subplots(2, 1, figsize=(8.0, 8.4), sharex=True, constrained_layout=True)
    colours = plt.get_cmap('tab10').colors
    drawn, skipped = 0, []
    tmin, tmax, dmin, dmax = np.inf, 0.0, np.inf, 0.0
    for i, point in enumerate(points):
        sel = {n: v for n, v in point.items()}
        dist = sweep.traces(metric, **sel)
        acc = sweep.traces('accuracy', **sel)
        status = sweep.results['status'].sel(sel).values
        ctime = sweep.results['collapse_time'].sel(sel).values
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
        n_done = int((status >= 0).sum())
        n_coll = int((status == 1).sum())
        n_div = int((status == 2).sum())
        label = f'{point_label(sweep, point)}  [{n_coll}/{n_done} collapsed' + \
                (f', {n_div} diverged' if n_div else '') + ']'
        ax_d.plot([], [], color=colour, lw=2.2, label=label)
        hits = ctime[np.isfinite(ctime)]
        if hits.size:
            ax_d.plot(hits, np.full(hits.size, sweep.threshold), 'o', ms=4, color=colour, mec='black', mew=0.5)
        drawn += 1
        good = dv[np.isfinite(dv) & (dv > 0)]
        if good.size:
            dmin, dmax = min(dmin, good.min()), max(dmax, good.max())
        ok_t = t[np.isfinite(dv).any(axis=0)]
        if ok_t.size:
            tmin, tmax = min(tmin, ok_t.min()), max(tmax, ok_t.max())
    if drawn == 0:
        plt.close(fig)
        return None, skipped
    ax_d.axhline(sweep.threshold, color='black', ls='--', lw=1.0,
                 label=f'collapse threshold {sweep.threshold:g}')
    ax_d.plot([], [], color='grey', lw=0.7, alpha=0.6, label='thin: each seed; bold: median over seeds')
    ax_d.plot([], [], 'o', ms=4, color='grey', mec='black', mew=0.5, label='collapse events')
    ax_d.set_xscale('log')
    ax_d.set_yscale('log')
    low = max(min(dmin, sweep.threshold) / 3.0, 1e-8)
    high = min(max(dmax, 1.0) * 2.0, 1e4)  # diverging traces run off the top
    ax_d.set_ylim(low, high)
    ax_d.set_xlim(tmin, tmax)
    ylabel = 'projected distance' if metric == 'projected_distance' else 'label distance D/D_ref'
    ax_d.set_ylabel(ylabel)
    fig.legend(*ax_d.get_legend_handles_labels(), loc='outside lower center', ncol=2, fontsize=7.5,
               frameon=False)
    ax_d.grid(True, which='major', alpha=0.3)
    ax_a.set_ylim(0.0, 1.05)
    ax_a.set_ylabel('accuracy (nearest label)')
    ax_a.set_xlabel('time t = lr·step (lr·steps)')
    ax_a.grid(True, which='major', alpha=0.3)
    chance = 1.0 / max(int(sweep.attrs.get('classes', 4) or 4), 1)
    ax_a.axhline(chance, color='grey', ls=':', lw=1.0)
    ax_a.text(tmax, chance, 'chance ', ha='right', va='bottom', fontsize=7.5, color='grey')
    title = f'{os.path.basename(sweep.path)}: trajectories'
    if sweep.progress < 1.0:
        title += f' ({100 * sweep.progress:.1f}% of the sweep run)'
    if skipped:
        title += '\n' + '\n'.join(textwrap.wrap(f'not run yet, left out: {"; ".join(skipped)}', width=110))
    fig.suptitle(title, fontsize=10)
    save(fig, out_path)
    return out_path, skipped


# --------------------------------------------------------------------------- main
