"""The `ds.sweep` accessor: what a collapse-sweep Dataset means beyond its arrays.

    ds = collapse_sweep.open_sweep('out/q.h5')
    ds.sweep.axes            # {'frustration': array, ..., 'seed': array}: grid axes in spec order, seed last
    ds.sweep.results         # the /results variables (loaded): .to_dataframe() gives one row per trajectory
    ds.sweep.progress        # fraction of trajectories run (status != -1)
    ds.sweep.traces('label_distance', frustration=0.1, head_dim=0)   # nearest-value selection
"""
from __future__ import annotations

import tomllib
from collections import OrderedDict

import numpy as np
import xarray as xr

STATUS_NAMES = OrderedDict([(-1, 'not run'), (0, 'stable'), (1, 'collapsed'), (2, 'diverged')])
PARAMETER_DEFAULTS = {'frustration': 0.0, 'head_dim': 0, 'lr': 0.1, 'stop_gradient': False, 'init_scale': 1.0}


def is_log_spaced(values, rtol=1e-6):
    """True when `values` are 3 or more positive numbers with a constant ratio (the engine's rule,
    docs/sweep-file.md): [0.01, 0.1, 1] yes; [0, 0.1, 1] and [0.1, 1] no."""
    v = np.asarray(values, dtype=float).ravel()
    if v.size < 3 or not np.all(np.isfinite(v)) or np.any(v <= 0):
        return False
    ratios = v[1:] / v[:-1]
    if np.any(ratios == 1.0):
        return False
    return bool(np.all(np.abs(ratios / ratios[0] - 1.0) <= rtol))


def parse_spec(text, overrides=''):
    """The sweep spec (TOML) as a dict, with the --set overrides applied; {} if it does not parse."""
    try:
        spec = tomllib.loads(text or '')
    except tomllib.TOMLDecodeError:
        return {}
    for line in (overrides or '').splitlines():
        key, sep, raw = line.partition('=')
        if not sep:
            continue
        try:
            value = tomllib.loads('v = ' + raw.strip())['v']
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        *tables, last = key.strip().split('.')
        node = spec
        for t in tables:
            node = node.setdefault(t, {})
        if isinstance(node, dict):
            node[last] = value
    return spec


def as_bool(value):
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ('true', '1', 'yes', 'on'):
            return True
        if v in ('false', '0', 'no', 'off'):
            return False
        raise ValueError(f'not a boolean: {value!r}')
    return bool(value)


def _fmt(v):
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f'{float(v):.6g}'


def nearest_index(name, values, wanted):
    """Index of `wanted` on an axis: bools by truth, numbers within 1e-6 relative; ValueError otherwise."""
    values = np.asarray(values)
    if values.dtype == bool:
        hits = np.flatnonzero(values == as_bool(wanted))
    else:
        try:
            w = float(wanted)
        except (TypeError, ValueError):
            raise ValueError(f'{name}={wanted!r}: not a number') from None
        distance = np.abs(values.astype(float) - w)
        best = int(np.argmin(distance))
        scale = max(abs(w), float(np.max(np.abs(values))) if values.size else 0.0, 1e-300)
        hits = [best] if distance[best] <= 1e-6 * scale else []
    if len(hits) == 0:
        shown = ', '.join(_fmt(v) for v in values[:12]) + (', ...' if len(values) > 12 else '')
        raise ValueError(f'{name}={wanted!r} is not a value of the axis {name} = [{shown}]')
    return int(hits[0])


@xr.register_dataset_accessor('sweep')
class Sweep:
    """Sweep-level views of a Dataset from open_sweep (available as `ds.sweep`)."""

    def __init__(self, ds):
        self._ds = ds
        self._results = None

    # ------------------------------------------------------------- metadata
    @property
    def path(self):
        return str(self._ds.attrs.get('path', '?'))

    @property
    def attrs(self):
        return self._ds.attrs

    @property
    def opened_with_swmr(self):
        return bool(self._ds.attrs.get('opened_with_swmr', 0))

    @property
    def grid_dims(self):
        dims = self._ds.attrs.get('grid_dims')
        if dims is None:
            dims = list(self._ds['status'].dims)
        return [dims] if isinstance(dims, str) else list(dims)

    @property
    def axes(self):
        """Grid axes in spec order, seed last: name -> numpy values (stop_gradient bool)."""
        return OrderedDict((n, self._ds.coords[n].values) for n in self.grid_dims)

    @property
    def log_spaced(self):
        out = {}
        for n in self.grid_dims:
            flag = self._ds.coords[n].attrs.get('log_spaced')
            out[n] = bool(flag) if flag is not None else is_log_spaced(self._ds.coords[n].values)
        return out

    @property
    def spec(self):
        return parse_spec(self.attrs.get('spec', ''), self.attrs.get('spec_overrides', ''))

    @property
    def threshold(self):
        if 'collapse_threshold' in self.attrs:
            return float(self.attrs['collapse_threshold'])
        return float(self.spec.get('collapse', {}).get('threshold', 0.05))

    @property
    def metric(self):
        if 'collapse_metric' in self.attrs:
            return str(self.attrs['collapse_metric'])
        return str(self.spec.get('collapse', {}).get('metric', 'label'))

    @property
    def max_steps(self):
        return int(self.attrs.get('max_steps', self.spec.get('integrator', {}).get('max_steps', 0)))

    @property
    def kind(self):
        return str(self.attrs.get('kind', self.spec.get('model', {}).get('kind', 'embedding')))

    def parameter(self, name):
        """A trajectory parameter that is not an axis (root attribute, else the spec, else the default)."""
        if name in self.attrs:
            return self.attrs[name]
        for table in ('grid', 'model'):
            value = self.spec.get(table, {}).get(name)
            if value is not None and not isinstance(value, (dict, list)):
                return value
        return PARAMETER_DEFAULTS.get(name)

    # ------------------------------------------------------------- data
    @property
    def result_names(self):
        return [n for n, v in self._ds.data_vars.items() if str(v.attrs.get('hdf5_path', '')).startswith('/results/')]

    @property
    def results(self):
        """The /results variables, loaded; `.to_dataframe()` gives one row per trajectory."""
        if self._results is None:
            names = self.result_names
            ds = self._ds[names].load() if names else xr.Dataset()
            self._results = ds.drop_vars([c for c in ds.coords if c not in ds.dims])
        return self._results

    @property
    def progress(self):
        status = self.results['status'].values
        return float((status != -1).mean()) if status.size else 0.0

    @property
    def status_counts(self):
        values, counts = np.unique(self.results['status'].values, return_counts=True)
        out = OrderedDict((name, 0) for name in STATUS_NAMES.values())
        for v, c in zip(values.tolist(), counts.tolist()):
            out[STATUS_NAMES.get(v, str(v))] = c
        return out

    def index(self, selection):
        """Axis name -> index (int) or indices (list) of the values in `selection` (nearest within 1e-6)."""
        out = {}
        for name, wanted in selection.items():
            if name not in self.grid_dims:
                raise KeyError(f'{name!r} is not an axis of {self.path}; axes: {self.grid_dims}')
            values = self._ds.coords[name].values
            if np.ndim(wanted) == 0:
                out[name] = nearest_index(name, values, wanted)
            else:
                out[name] = [nearest_index(name, values, w) for w in wanted]
        return out

    def isel(self, **selection):
        """The Dataset at axis values picked by nearest value: a scalar drops the dimension, a list keeps it."""
        return self._ds.isel(self.index(selection))

    def traces(self, name='label_distance', **selection):
        """/traces/<name> (a name or a list of names) at the selection, with coordinate t = lr * step."""
        names = [name] if isinstance(name, str) else list(name)
        missing = [n for n in names if n not in self._ds]
        if missing:
            raise KeyError(f'{self.path} has no {missing} in /traces')
        picked = self.isel(**selection)[names]
        picked = picked.drop_vars([c for c in picked.coords if c not in picked[names[0]].dims and c != 't'
                                   and c not in selection])
        return picked[name] if isinstance(name, str) else picked

    def final(self, name='label_embeddings', **selection):
        """/final/<name> at the selection."""
        if name not in self._ds:
            raise KeyError(f'{self.path} has no /final/{name}')
        return self.isel(**selection)[name]
