"""Theory and refinement overlays for plot_phase_diagram.py.

* refined boundaries (/boundaries/<axis>, written by `collapse-sweep refine`)
  drawn on the phase-diagram panels, with the seed-bootstrap standard error;
* the plain model's gd stability limit lr_c (median of /results/critical_lr
  over seeds) as a line on the lr axis;
* PREFIX_theory.png: measured slow_rate against theory_slow_rate (identity
  line) and the stop-gradient self-consistency residual.

Kept apart from plot_phase_diagram.py so that file stays about drawing the
measured phase diagram; every function here is a no-op on files without the
datasets it needs (older files, no refinement run).
"""
import h5py
import matplotlib.pyplot as plt
import numpy as np

BOUNDARY_STYLE = dict(marker='o', markersize=3.5, linewidth=1.6, capsize=2.5, markeredgecolor='black',
                      markeredgewidth=0.5, zorder=6)
# one colour per (refined axis, quantity), so boundaries refined along f and along lr are told apart
BOUNDARY_COLOURS = {('frustration', 'collapsed_fraction'): '#00e5ff', ('lr', 'collapsed_fraction'): '#ff4fd8',
                    ('frustration', 'diverged_fraction'): '#7CFC00', ('lr', 'diverged_fraction'): '#ffa500'}
CRITICAL_STYLE = dict(color='white', linestyle=(0, (3, 2)), linewidth=1.2, zorder=7)


def boundary_label(axis, attrs):
    quantity = attrs.get('quantity', '?')
    level = float(attrs.get('level', 0.5))
    return f'refined along {axis}: {quantity} = {level:g} (± bootstrap SE)'


def read_boundaries(path):
    """{axis: {'coords': {name: values}, 'dims': [...], 'estimate': array, 'standard_error': array, 'attrs': {...}}}."""
    out = {}
    try:
        with h5py.File(path, 'r') as f:
            if 'boundaries' not in f:
                return out
            for axis, group in f['boundaries'].items():
                est = group['estimate']
                dims = [d[0].name.split('/')[-1] for d in est.dims]
                out[axis] = {'dims': dims,
                             'coords': {n: group[n][()] for n in dims},
                             'estimate': est[()],
                             'standard_error': group['standard_error'][()],
                             'attrs': {k: (v.decode() if isinstance(v, bytes) else v) for k, v in group.attrs.items()}}
    except (OSError, KeyError):
        return {}
    return out


def _select(boundary, fixed, free):
    """Estimate and SE along `free` with every other dimension at fixed[name] (nearest value)."""
    est, se = boundary['estimate'], boundary['standard_error']
    index = []
    for name in boundary['dims']:
        if name == free:
            index.append(slice(None))
            continue
        if name not in fixed:
            return None
        values = np.asarray(boundary['coords'][name], dtype=float)
        index.append(int(np.argmin(np.abs(values - float(fixed[name])))))
    return np.asarray(boundary['coords'][free], dtype=float), est[tuple(index)], se[tuple(index)]


def draw_boundaries(boundaries, ax, xname, yname, fixed, legend_seen):
    """Refined boundaries whose axis is x or y of this panel, at the panel's other axis values."""
    for axis, boundary in boundaries.items():
        if axis not in (xname, yname):
            continue
        free = yname if axis == xname else xname
        picked = _select(boundary, fixed, free)
        if picked is None:
            continue
        along, est, se = picked
        ok = np.isfinite(est)
        if not ok.any():
            continue
        key = (axis, boundary['attrs'].get('quantity', '?'))
        label = boundary_label(axis, boundary['attrs'])
        style = dict(BOUNDARY_STYLE, color=BOUNDARY_COLOURS.get(key, '#ffffff'))
        err = np.where(np.isfinite(se[ok]), se[ok], 0.0)
        if axis == xname:
            ax.errorbar(est[ok], along[ok], xerr=err, label=label, **style)
        else:
            ax.errorbar(along[ok], est[ok], yerr=err, label=label, **style)
        legend_seen.add(('boundary', key, label))


def draw_critical_lr(results, ax, xname, yname, fixed, legend_seen):
    """Median over seeds of critical_lr against the other panel axis, where lr is x or y."""
    if 'critical_lr' not in results or 'lr' not in (xname, yname):
        return
    other = yname if xname == 'lr' else xname
    crit = results['critical_lr']
    sel = {n: v for n, v in fixed.items() if n in crit.dims and n not in ('lr', other)}
    crit = crit.sel(sel) if sel else crit  # panel values come from the axes themselves
    # critical_lr does not depend on lr; take the first lr value, then the median over seeds.
    crit = crit.isel(lr=0).median('seed', skipna=True)
    values = crit.values
    if crit.dims != (other,) or not np.isfinite(values).any():
        return
    along = np.asarray(crit[other].values, dtype=float)
    ok = np.isfinite(values)
    lo, hi = sorted(ax.get_xlim() if xname == 'lr' else ax.get_ylim())
    if not ((values[ok] >= lo) & (values[ok] <= hi)).any():
        return  # lr_c beyond the lr range of the sweep: nothing to draw
    limits = ax.get_xlim(), ax.get_ylim()
    if xname == 'lr':
        ax.plot(values[ok], along[ok], label='lr_c = 2/λmax (plain model, median over seeds)', **CRITICAL_STYLE)
    else:
        ax.plot(along[ok], values[ok], label='lr_c = 2/λmax (plain model, median over seeds)', **CRITICAL_STYLE)
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    legend_seen.add('critical_lr')


def legend_handles(legend_seen):
    from matplotlib.lines import Line2D
    handles = []
    for entry in sorted(e for e in legend_seen if isinstance(e, tuple)):
        _, key, label = entry
        style = {k: v for k, v in BOUNDARY_STYLE.items() if k != 'capsize'}
        handles.append(Line2D([], [], label=label, color=BOUNDARY_COLOURS.get(key, '#ffffff'), **style))
    if 'critical_lr' in legend_seen:
        handles.append(Line2D([], [], label='theory: gd limit lr_c = 2/λmax (h = 0)', color='black', linestyle='--'))
    return handles


def _flat(res, name):
    return res[name].values.ravel() if name in res else None


def _status_groups(stopped):
    """(status code, legend text, marker) for the scatter: what each marker is."""
    collapsed = ('collapsed (run stopped at the threshold)' if stopped else
                 'crossed the threshold, run went on to max_steps')
    return ((1, collapsed, 'o'), (0, 'stable (never crossed, ran to max_steps)', 's'))


def theory_figure(sweep, out_path, save):
    """Measured slow_rate against theory; None when the file has no theory columns with values.

    With /results/theory_window_rate (the same fit applied to the exact trace over the same
    window) the two are comparable, and the figure shows how many agree within 5%; the
    asymptote theory_slow_rate is marked apart. Without it the measured rate is shown against
    the asymptote in a panel that says they are not comparable (the fit window ends before
    the asymptote), with no identity line.
    """
    res = sweep.results
    if 'theory_slow_rate' not in res:
        return None
    measured = _flat(res, 'slow_rate')
    asymptote = _flat(res, 'theory_slow_rate')
    window = _flat(res, 'theory_window_rate')
    status = res['status'].values.ravel()
    frustration = (res['frustration'].broadcast_like(res['status']).values.ravel()
                   if 'frustration' in res['status'].dims else np.full(status.size, float(sweep.parameter('frustration'))))
    comparable = window is not None and np.isfinite(window).any()
    reference = window if comparable else asymptote
    ok = np.isfinite(reference) & np.isfinite(measured) & (reference > 0) & (measured > 0)
    # At f = 0 each class is its own component: the label distance settles at
    # D_ref and there is no slow phase. Its fitted "rate" is round-off (1e-10
    # and below), and plotting it would stretch the axes over ten decades and
    # count trivial agreements.
    no_slow_phase = ok & (frustration == 0)
    ok &= ~no_slow_phase
    residual = res['selfconsistency_residual'].values if 'selfconsistency_residual' in res else None
    has_residual = residual is not None and np.isfinite(residual).any()
    if not ok.any() and not has_residual:
        return None
    stopped = bool(int(sweep.attrs.get('stop_on_collapse', 1)))
    panels = 1 + int(has_residual)
    fig, axes = plt.subplots(1, panels, figsize=(6.2 * panels, 5.4), squeeze=False, constrained_layout=True)
    ax = axes[0, 0]
    if ok.any():
        f_ok = frustration[ok]
        norm = dict(cmap='viridis', vmin=np.nanmin(f_ok), vmax=max(np.nanmax(f_ok), np.nanmin(f_ok) + 1e-12))
        sc = None
        for code, name, marker in _status_groups(stopped):
            pick = ok & (status == code)
            if pick.any():
                sc = ax.scatter(reference[pick], measured[pick], c=frustration[pick], marker=marker, s=22,
                                edgecolors='black', linewidths=0.3, label=name, zorder=3, **norm)
        values = np.concatenate([reference[ok], measured[ok]])
        lo, hi = values.min() / 1.5, values.max() * 1.5
        if comparable:
            within = np.abs(measured[ok] / reference[ok] - 1.0) <= 0.05
            if (~within).any():  # disagreements stay visible: ringed in red
                ax.scatter(reference[ok][~within], measured[ok][~within], s=90, facecolors='none',
                           edgecolors='#d62728', linewidths=1.2, zorder=4, label='off by more than 5%')
            ax.plot([lo, hi], [lo, hi], color='#444444', linestyle='--', linewidth=1, label='identity')
            ax.fill_between([lo, hi], [lo * 0.95, hi * 0.95], [lo * 1.05, hi * 1.05], color='#999999', alpha=0.25,
                            lw=0, label='±5%')
            pick = ok & np.isfinite(asymptote) & (asymptote > 0)
            if pick.any():
                ax.scatter(reference[pick], asymptote[pick], marker='_', s=60, color='#ff7f0e', linewidths=1.4,
                           zorder=5, label='theory_slow_rate: the asymptote (not a fit), same point')
            ax.set_xlabel('theory_window_rate: the same fit on the exact trace, same window (1/lr·steps)')
            ax.set_ylabel('measured slow_rate (1/lr·steps)')
            ax.set_title(f'plain model: measured vs theory over the same window\n'
                         f'{int(within.sum())} of {int(ok.sum())} within 5%'
                         + (f' ({int(no_slow_phase.sum())} at f = 0 left out: no slow phase)'
                            if no_slow_phase.any() else ''), fontsize=10)
        else:
            ax.set_xlabel('theory_slow_rate: the asymptotic rate (1/lr·steps)')
            ax.set_ylabel('measured slow_rate (1/lr·steps)')
            ax.set_title('plain model: measured rate and asymptote — NOT comparable\n'
                         '(the fit window ends before the asymptote; no theory_window_rate in this file)',
                         fontsize=9.5)
        ax.set_xscale('log')
        ax.set_yscale('log')
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_minor_formatter(plt.NullFormatter())
        if sc is not None:
            fig.colorbar(sc, ax=ax, label='frustration f')
        ax.legend(fontsize=7.5, loc='upper left')
    else:
        ax.text(0.5, 0.5, 'no plain-model trajectory\nwith a positive rate', ha='center', va='center',
                transform=ax.transAxes)
    if has_residual:
        ax2 = axes[0, 1]
        r = res['selfconsistency_residual']
        stacked = r.stack(point=list(r.dims))
        f_values = stacked['frustration'].values if 'frustration' in r.dims else np.zeros(stacked.size)
        vals = stacked.values
        good = np.isfinite(vals)
        ax2.scatter(f_values[good], vals[good], s=18, color='#d95f02', edgecolors='black', linewidths=0.3)
        ax2.axhline(0.05, color='#444444', linestyle=':', linewidth=1, label='5%')
        ax2.set_yscale('log')
        ax2.set_xlabel('frustration f')
        ax2.set_ylabel('‖W²Yᵀ − YᵀPᵀ‖ / ‖YᵀPᵀ‖ (final state)')
        ax2.set_title('head + stop-gradient, not collapsed:\nfixed-point residual', fontsize=10)
        ax2.legend(fontsize=8)
    from .common import fixed_settings
    fig.suptitle(f'{sweep.path.split("/")[-1]}: theory diagnostics\n' + '; '.join(fixed_settings(sweep)),
                 fontsize=9.5)
    save(fig, out_path)
    return out_path
