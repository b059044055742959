"""Read collapse-sweep output files (SPEC §6, docs/format.md) into numpy / xarray.

    from collapse_reader import open_sweep, collapsed_fraction, median_collapse_time

    sweep = open_sweep('out/q.h5')
    sweep.axes            # {'frustration': array([...]), 'head_dim': ..., 'lr': ..., ..., 'seed': ...}
    sweep.results         # xarray.Dataset of /results, one named coordinate per axis
    sweep.progress        # fraction of trajectories that have run (status != -1)
    sweep.status_counts   # {'not run': 0, 'stable': 40, 'collapsed': 36, 'diverged': 4}
    sweep.traces('label_distance', frustration=0.1, head_dim=0)   # DataArray [..., step], coord t = lr*step
    collapsed_fraction(sweep.results)     # over seeds
    median_collapse_time(sweep.results)   # over seeds, NaN where nothing collapsed

Files left by a killed (or still running) engine: the engine writes with SWMR,
and HDF5 refuses a plain open of such a file ("file is already open for
write"). open_sweep then opens it with h5py.File(path, 'r', swmr=True) and builds
the same xarray objects itself; `sweep.opened_with_swmr` tells which happened.
Finished trajectories are valid; the rest have status -1 and NaN / -1 data.

Boolean axes (stop_gradient) are stored as int8 0/1; the reader turns them
into bool coordinates, so sel(stop_gradient=True) works.
"""
from __future__ import annotations

import os
import tomllib
import warnings
from collections import OrderedDict

import h5py
import numpy as np
import xarray as xr

__all__ = ['open_sweep', 'Sweep', 'SweepFileError', 'collapsed_fraction', 'median_collapse_time',
           'is_log_spaced', 'STATUS_NAMES']

STATUS_NAMES = OrderedDict([(-1, 'not run'), (0, 'stable'), (1, 'collapsed'), (2, 'diverged')])
TRACE_NAMES = ('label_distance', 'projected_distance', 'accuracy', 'loss')


class SweepFileError(Exception):
    """The file is missing, not HDF5, or not a collapse-sweep output file."""


# --------------------------------------------------------------------------- helpers

def is_log_spaced(values, rtol=1e-6):
    """True when `values` are 3 or more positive numbers with a constant ratio.

    The same rule as the engine's (docs/sweep-file.md, "Log-spaced axes"):
    [0.01, 0.1, 1] is log-spaced; [0, 0.1, 1] and [0.1, 1] are not. `rtol` is
    the relative tolerance on the ratio. A file's axes also carry the engine's
    own verdict (attribute log_spaced, which also covers a 2-point logspace):
    see Sweep.log_spaced.
    """
    v = np.asarray(values, dtype=float).ravel()
    if v.size < 3 or not np.all(np.isfinite(v)) or np.any(v <= 0):
        return False
    ratios = v[1:] / v[:-1]
    if np.any(ratios == 1.0):
        return False
    return bool(np.all(np.abs(ratios / ratios[0] - 1.0) <= rtol))


def _over(results, over):
    dims = [over] if isinstance(over, str) else list(over)
    missing = [d for d in dims if d not in results.dims]
    if missing:
        raise ValueError(f'no dimension {missing} in {list(results.dims)}')
    return dims


def collapsed_fraction(results, over='seed'):
    """Fraction of finished trajectories (status >= 0) that collapsed (status 1).

    Reduces over the dimension(s) `over`. Diverged trajectories count as not
    collapsed; trajectories not run yet (status -1) are left out; NaN where no
    trajectory of the cell has run.
    """
    status = results['status']
    dims = _over(results, over)
    finished = status >= 0
    collapsed = (status == 1).where(finished)
    count = finished.sum(dims)
    return (collapsed.sum(dims) / count.where(count > 0)).rename('collapsed_fraction')


def median_collapse_time(results, over='seed'):
    """Median over `over` of collapse_time (lr·steps) among collapsed trajectories.

    NaN where none of the cell's trajectories collapsed.
    """
    status = results['status']
    dims = _over(results, over)
    times = results['collapse_time'].where(status == 1)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN cells
        median = times.median(dims, skipna=True)
    return median.rename('median_collapse_time')


def _decode(value):
    if isinstance(value, bytes):
        return value.decode('utf-8', 'replace')
    if isinstance(value, np.ndarray):
        if value.dtype.kind in 'SO':
            return [_decode(v) for v in value.tolist()]
        return value.item() if value.size == 1 and value.ndim == 0 else value
    if isinstance(value, np.generic):
        return value.item()
    return value


def _parse_spec(text, overrides):
    """The sweep spec as a dict (TOML), with the --set overrides applied."""
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


def _open_h5(path):
    """h5py.File for reading; SWMR read when the file was left by a killed or running writer."""
    if not os.path.exists(path):
        raise SweepFileError(f'{path}: no such file')
    if os.path.isdir(path):
        raise SweepFileError(f'{path}: is a directory, not an HDF5 file')
    try:
        if not h5py.is_hdf5(path):
            raise SweepFileError(f'{path}: not an HDF5 file')
    except OSError as e:
        raise SweepFileError(f'{path}: cannot read: {e}') from None
    try:
        return h5py.File(path, 'r'), False
    except OSError as plain:
        try:
            return h5py.File(path, 'r', swmr=True), True
        except OSError:
            raise SweepFileError(f'{path}: HDF5 cannot open it: {plain}') from None


def _scale_name(ds, i):
    dim = ds.dims[i]
    if len(dim) == 0:
        return dim.label or f'dim_{i}'
    return dim[0].name.rsplit('/', 1)[-1]


def _coord_values(scale):
    values = scale[()]
    if values.dtype == np.int8 and 'log_spaced' in scale.attrs:  # a boolean grid axis
        return values.astype(bool)
    return values


# --------------------------------------------------------------------------- the file

class Sweep:
    """One collapse-sweep output file. Use open_sweep(path)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        f, self.opened_with_swmr = _open_h5(self.path)
        with f:
            fmt = _decode(f.attrs.get('format'))
            if 'results' not in f or 'status' not in f['results']:
                what = f' (format = {fmt!r})' if fmt is not None else ''
                raise SweepFileError(f'{self.path}: not a collapse-sweep output file: no /results/status{what}')
            if fmt is not None and fmt != 'collapse-sweep':
                raise SweepFileError(f'{self.path}: not a collapse-sweep output file (format = {fmt!r})')
            self.attrs = OrderedDict((k, _decode(v)) for k, v in f.attrs.items())
            status = f['results/status']
            self.dims = [_scale_name(status, i) for i in range(status.ndim)]
            self.axes = OrderedDict()
            self.log_spaced = {}
            for i, name in enumerate(self.dims):
                if len(status.dims[i]) == 0:
                    values = np.arange(status.shape[i])
                    attr = None
                else:
                    scale = status.dims[i][0]
                    values = _coord_values(scale)
                    attr = scale.attrs.get('log_spaced')
                self.axes[name] = values
                self.log_spaced[name] = bool(attr) if attr is not None else is_log_spaced(values)
            self.step = f['traces/step'][()] if 'traces' in f and 'step' in f['traces'] else None
            self.groups = [g for g in f if isinstance(f[g], h5py.Group)]
        self.results = self._results()
        self.spec = _parse_spec(self.attrs.get('spec', ''), self.attrs.get('spec_overrides', ''))

    # ------------------------------------------------------------- metadata

    def __repr__(self):
        shape = ' x '.join(f'{k}={len(v)}' for k, v in self.axes.items())
        return f'<Sweep {self.path}: {shape}, {100 * self.progress:.1f}% run>'

    @property
    def shape(self):
        return tuple(len(v) for v in self.axes.values())

    @property
    def progress(self):
        """Fraction of trajectories that have run (status != -1)."""
        status = self.results['status'].values
        return float((status != -1).mean()) if status.size else 0.0

    @property
    def status_counts(self):
        """{'not run': n, 'stable': n, 'collapsed': n, 'diverged': n} (other codes by number)."""
        values, counts = np.unique(self.results['status'].values, return_counts=True)
        out = OrderedDict((name, 0) for name in STATUS_NAMES.values())
        for v, c in zip(values.tolist(), counts.tolist()):
            out[STATUS_NAMES.get(v, str(v))] = c
        return out

    @property
    def threshold(self):
        """The collapse threshold (root attribute collapse_threshold; else the spec; else 0.05)."""
        if 'collapse_threshold' in self.attrs:
            return float(self.attrs['collapse_threshold'])
        return float(self.spec.get('collapse', {}).get('threshold', 0.05))

    @property
    def metric(self):
        """'label' or 'projected': which distance the collapse threshold applies to."""
        if 'collapse_metric' in self.attrs:
            return str(self.attrs['collapse_metric'])
        return str(self.spec.get('collapse', {}).get('metric', 'label'))

    def parameter(self, name):
        """A trajectory parameter that is not an axis (root attribute, else spec [grid]/[model])."""
        if name in self.attrs:
            return self.attrs[name]
        for table in ('grid', 'model'):
            value = self.spec.get(table, {}).get(name)
            if value is not None and not isinstance(value, (dict, list)):
                return value
        defaults = {'frustration': 0.0, 'head_dim': 0, 'lr': 0.1, 'stop_gradient': False, 'init_scale': 1.0}
        return defaults.get(name)

    # ------------------------------------------------------------- data

    def _results(self):
        ds = None
        if not self.opened_with_swmr:
            try:
                with xr.open_dataset(self.path, group='results', engine='h5netcdf') as lazy:
                    ds = lazy.load()
            except Exception:  # noqa: BLE001 - anything xarray cannot do, h5py can
                ds = None
        if ds is None:
            ds = self.group('results')
        for name, values in self.axes.items():  # bool axes, and one dtype whatever the path
            if name in ds.coords:
                ds = ds.assign_coords({name: values})
        return ds

    def _index(self, selection):
        """Axis name -> index (int) or indices (list) for the values in `selection`."""
        index = {}
        for name, wanted in selection.items():
            if name not in self.axes:
                raise KeyError(f'{name!r} is not an axis of {self.path}; axes: {list(self.axes)}')
            values = self.axes[name]
            scalar = np.ndim(wanted) == 0
            picks = []
            for w in ([wanted] if scalar else list(wanted)):
                picks.append(_nearest_index(name, values, w))
            index[name] = picks[0] if scalar else picks
        return index

    def _read(self, f, path, index):
        """One dataset as a DataArray with named dims and coordinates, `index` applied."""
        ds = f[path]
        dims = [_scale_name(ds, i) for i in range(ds.ndim)]
        key, out_dims, coords = [], [], {}
        for i, dim in enumerate(dims):
            coord = _coord_values(ds.dims[i][0]) if len(ds.dims[i]) else np.arange(ds.shape[i])
            sel = index.get(dim, slice(None))
            if isinstance(sel, list):
                sel = np.asarray(sel)
                order = np.argsort(sel)  # h5py wants increasing indices
                if np.any(np.diff(sel[order]) == 0):
                    raise ValueError(f'{dim}: the same value twice')
                key.append(sel[order])
                out_dims.append(dim)
                coords[dim] = coord[sel[order]]
            elif isinstance(sel, slice):
                key.append(sel)
                out_dims.append(dim)
                coords[dim] = coord[sel]
            else:
                key.append(int(sel))
                coords[dim] = coord[int(sel)]
        data = _fancy_read(ds, key)
        return xr.DataArray(data, dims=out_dims, coords={k: (k, v) if k in out_dims else v
                                                         for k, v in coords.items()},
                            name=path.rsplit('/', 1)[-1])

    def group(self, group, names=None, **selection):
        """Datasets of one group (/results, /traces, /final, /initial, /graph) as an xarray.Dataset.

        Read with h5py (SWMR read where needed); `selection` picks axis values
        as in traces().
        """
        index = self._index(selection)
        f, _ = _open_h5(self.path)
        with f:
            if group not in f:
                raise KeyError(f'{self.path} has no group /{group}')
            g = f[group]
            scale_names = set()
            for key in g:
                if isinstance(g[key], h5py.Dataset) and g[key].is_scale:
                    scale_names.add(key)
            wanted = [n for n in g if isinstance(g[n], h5py.Dataset) and n not in scale_names]
            if names is not None:
                names = [names] if isinstance(names, str) else list(names)
                unknown = [n for n in names if n not in wanted]
                if unknown:
                    raise KeyError(f'/{group} has no {unknown}; it has {wanted}')
                wanted = names
            arrays = {n: self._read(f, f'{group}/{n}', index) for n in wanted}
        return xr.Dataset(arrays)

    def traces(self, name='label_distance', **selection):
        """/traces/<name> as a DataArray [axes..., step] with coordinate t = lr * step.

        `name` may be one of label_distance, projected_distance, accuracy, loss,
        or a list of them (then an xarray.Dataset). `selection` picks values on
        axes: traces('accuracy', frustration=0.1, head_dim=[0, 8]). A scalar
        drops the dimension, a list keeps it; floats match the nearest axis
        value (an error if none is within 1e-6 relative). Entries after a
        trajectory stopped (collapse, divergence) are NaN.
        """
        ds = self.group('traces', names=name, **selection)
        lr = ds.coords['lr'] if 'lr' in ds.coords else float(self.parameter('lr'))
        t = lr * ds.coords['step']
        ds = ds.assign_coords(t=t)
        ds['t'].attrs.update(long_name='time lr·step', units='lr·steps')
        return ds[name] if isinstance(name, str) else ds

    def final(self, name='label_embeddings', **selection):
        """/final/<name> as a DataArray (label_embeddings, head, sample_embeddings)."""
        return self.group('final', names=name, **selection)[name]


def _nearest_index(name, values, wanted):
    values = np.asarray(values)
    if values.dtype == bool:
        w = _as_bool(wanted)
        hits = np.flatnonzero(values == w)
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


def _as_bool(value):
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


def _fancy_read(ds, key):
    """ds[key] where key may hold several increasing index arrays (h5py takes one at a time)."""
    arrays = [i for i, k in enumerate(key) if isinstance(k, np.ndarray)]
    if len(arrays) <= 1:
        return np.asarray(ds[tuple(key)])
    first_key = [k if i == arrays[0] or not isinstance(k, np.ndarray) else slice(None) for i, k in enumerate(key)]
    data = np.asarray(ds[tuple(first_key)])
    for i in arrays[1:]:
        axis = sum(1 for k in key[:i] if not isinstance(k, (int, np.integer)))
        data = np.take(data, key[i], axis=axis)
    return data


def open_sweep(path):
    """Open a collapse-sweep output file; raises SweepFileError with a readable message."""
    return Sweep(path)
