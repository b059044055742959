"""collapse_sweep: read collapse-sweep output files into xarray, summarise them with
uncertainty, and draw the phase diagram, trace and theory figures.

    import collapse_sweep as cs
    ds = cs.open_sweep('out/q.h5')               # xarray.Dataset, lazy
    ds.status.sel(frustration=0.1, stop_gradient=True)
    cs.fractions(ds.sweep.results)               # collapsed / diverged fractions, Wilson 95%
    cs.collapse_time(ds.sweep.results, ds.sweep.max_steps)   # Kaplan-Meier median, 95% interval
    ds.sweep.results.to_dataframe()              # one row per trajectory

See docs/analysis.md.
"""
from .io import DEFAULT_GROUPS, SweepFileError, open_sweep, round_trip_safe
from .stats import collapse_time, collapsed_fraction, fractions, km_median, kaplan_meier, wilson_interval
from .sweep import STATUS_NAMES, Sweep, is_log_spaced

__all__ = ['open_sweep', 'SweepFileError', 'Sweep', 'DEFAULT_GROUPS', 'round_trip_safe', 'STATUS_NAMES',
           'is_log_spaced', 'fractions', 'collapsed_fraction', 'collapse_time', 'km_median', 'kaplan_meier',
           'wilson_interval']
