"""Per-cell statistics over seeds, with uncertainty (docs/analysis.md, "Statistics").

* fractions(results): collapsed and diverged fractions of the finished seeds
  with Wilson score 95% intervals;
* collapse_time(results, max_steps): the Kaplan-Meier median collapse time
  with a 95% interval. A seed that did not collapse is censored at the run's
  horizon t_max = lr * max_steps, not dropped: a stable seed ran to max_steps
  without collapsing, and a diverged seed stopped for good (the engine ends a
  diverged trajectory), so it too is counted as "not collapsed by t_max"
  rather than censored at its divergence step, which would pretend it might
  still have collapsed later. The collapsed fraction and the median then
  agree: the median is finite exactly when at least half the finished seeds
  collapsed. Seeds not run yet (status -1) are left out.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(k, n, z=Z95):
    """Wilson score interval (low, high) for k successes in n trials; NaN where n == 0. Arrays broadcast."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid='ignore', divide='ignore'):
        p = k / n
        z2 = z * z
        centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        half = z / (1 + z2 / n) * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
        low, high = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def _dims(results, over):
    dims = [over] if isinstance(over, str) else list(over)
    missing = [d for d in dims if d not in results.dims]
    if missing:
        raise ValueError(f'no dimension {missing} in {list(results.dims)}')
    return dims


def fractions(results, over='seed', z=Z95):
    """Dataset per cell: n_finished, n_collapsed, n_diverged, collapsed_fraction (+ _low, _high),
    diverged_fraction (+ _low, _high). Fractions are of the finished seeds (status >= 0); NaN where
    none finished."""
    status = results['status']
    dims = _dims(results, over)
    n = (status >= 0).sum(dims)
    out = xr.Dataset({'n_finished': n})
    out['n_finished'].attrs.update(units='1', long_name='finished seeds')
    for code, what in ((1, 'collapsed'), (2, 'diverged')):
        k = (status == code).sum(dims)
        low, high = wilson_interval(k.values, n.values, z)
        out[f'n_{what}'] = k
        out[f'{what}_fraction'] = (k / n.where(n > 0))
        out[f'{what}_low'] = (k.dims, low)
        out[f'{what}_high'] = (k.dims, high)
        out[f'n_{what}'].attrs.update(units='1', long_name=f'{what} seeds')
        out[f'{what}_fraction'].attrs.update(units='1', long_name=f'{what} fraction of finished seeds')
        out[f'{what}_low'].attrs.update(units='1', long_name=f'{what} fraction: Wilson 95% lower bound')
        out[f'{what}_high'].attrs.update(units='1', long_name=f'{what} fraction: Wilson 95% upper bound')
    return out


def collapsed_fraction(results, over='seed'):
    """Fraction of finished seeds (status >= 0) that collapsed; NaN where none finished."""
    return fractions(results, over)['collapsed_fraction'].rename('collapsed_fraction')


def kaplan_meier(times, events):
    """Kaplan-Meier estimate: (event times t_j, S(t_j), n_eff(t_j)).

    `events` is True where the seed collapsed at `times`, False where it was
    censored there. n_eff = S(1-S)/Var_Greenwood is the effective number of
    seeds behind S(t_j) (the plain count when nothing was censored before t_j;
    the number at risk at the start where S is 0 or 1).
    """
    t = np.asarray(times, dtype=float)
    e = np.asarray(events, dtype=bool)
    keep = np.isfinite(t)
    t, e = t[keep], e[keep]
    event_times = np.unique(t[e])
    s, greenwood, out_s, out_n = 1.0, 0.0, [], []
    for tj in event_times:
        at_risk = np.count_nonzero(t >= tj)
        d = np.count_nonzero((t == tj) & e)
        s *= 1.0 - d / at_risk
        if at_risk > d:
            greenwood += d / (at_risk * (at_risk - d))
        var = s * s * greenwood
        out_s.append(s)
        out_n.append(s * (1 - s) / var if var > 0 and 0 < s < 1 else float(t.size))
    return event_times, np.array(out_s), np.array(out_n)


def km_median(times, events, z=Z95):
    """(median, low, high, censored) of a Kaplan-Meier curve.

    median = inf{t : S(t) <= 1/2}; NaN with censored=True when S stays above
    1/2 (fewer than half collapsed by the horizon). The interval inverts the
    Wilson interval of F = 1 - S at each event time (n = n_eff):
    low = the first t whose upper bound on F reaches 1/2, high = the first t
    whose lower bound does; +inf when that never happens within the data
    (the median may lie beyond the horizon). NaN everywhere with no data.
    """
    t_events, s, n_eff = kaplan_meier(times, events)
    if np.count_nonzero(np.isfinite(np.asarray(times, dtype=float))) == 0:
        return np.nan, np.nan, np.nan, False
    f = 1.0 - s
    lo_f, hi_f = wilson_interval(f * n_eff, n_eff, z)

    def first(mask):
        hits = np.flatnonzero(mask)
        return float(t_events[hits[0]]) if hits.size else np.inf

    median = first(s <= 0.5 + 1e-12)
    low = first(hi_f >= 0.5 - 1e-12)
    high = first(lo_f >= 0.5 - 1e-12)
    censored = not np.isfinite(median)
    return (np.nan if censored else median), low, high, censored


def collapse_time(results, max_steps, over='seed', z=Z95):
    """Kaplan-Meier median collapse time per cell (lr-steps) with its 95% interval.

    Returns a Dataset: median (NaN where censored), low, high (+inf when
    unbounded within the horizon), censored (bool: fewer than half collapsed
    by t_max), horizon (t_max = lr * max_steps). See the module docstring for
    how stable and diverged seeds enter.
    """
    status = results['status']
    dims = _dims(results, over)
    lr = results['lr'] if 'lr' in results.coords else xr.DataArray(float(results.attrs.get('lr', np.nan)))
    horizon = (lr * float(max_steps)).broadcast_like(status)
    times = xr.where(status == 1, results['collapse_time'], horizon).where(status >= 0)
    events = status == 1
    cells = [d for d in status.dims if d not in dims]
    t = times.transpose(*cells, *dims).values.reshape(-1, int(np.prod([status.sizes[d] for d in dims])))
    e = events.transpose(*cells, *dims).values.reshape(t.shape)
    stats = np.array([km_median(t[i], e[i], z) for i in range(t.shape[0])], dtype=float).reshape(
        [status.sizes[d] for d in cells] + [4])
    coords = {c: status.coords[c] for c in cells if c in status.coords}
    out = xr.Dataset({name: (cells, stats[..., i]) for i, name in enumerate(('median', 'low', 'high'))},
                     coords=coords)
    out['censored'] = (cells, stats[..., 3].astype(bool))
    out['horizon'] = horizon.max(dims) if dims else horizon
    for name, text in (('median', 'Kaplan-Meier median collapse time'), ('low', 'its 95% lower bound'),
                       ('high', 'its 95% upper bound (inf: beyond the horizon)'),
                       ('horizon', 'horizon t_max = lr * max_steps')):
        out[name].attrs.update(units='lr-steps', long_name=text)
    out['censored'].attrs.update(units='1', long_name='median beyond t_max (fewer than half collapsed)')
    return out
