"""open_sweep: a collapse-sweep output file (SPEC §6, docs/format.md) as one xarray.Dataset.

The file is opened with h5netcdf and each group handed to xarray, so data stay
lazy (read on first use) and the file stays open until the Dataset is closed.
A file left by a killed or running writer refuses a plain open; it is then
opened for SWMR reading (attribute `opened_with_swmr` = 1). Shard files and
merged (virtual-dataset) files read like any other.
"""
from __future__ import annotations

import os

import h5netcdf
import h5py
import numpy as np
import xarray as xr

from . import units as catalogue

__all__ = ['open_sweep', 'SweepFileError', 'DEFAULT_GROUPS', 'round_trip_safe']

DEFAULT_GROUPS = ('results', 'traces', 'final')
# Attributes HDF5's dimension-scale API and netCDF keep for themselves.
_INTERNAL_ATTRS = {'CLASS', 'NAME', 'REFERENCE_LIST', 'DIMENSION_LIST', '_Netcdf4Dimid', '_Netcdf4Coordinates'}


class SweepFileError(Exception):
    """The file is missing, not HDF5, or not a collapse-sweep output file."""


def decode(value):
    """An HDF5 attribute as a plain Python value (str, int, float, list)."""
    if isinstance(value, bytes):
        return value.decode('utf-8', 'replace')
    if isinstance(value, np.ndarray):
        if value.dtype.kind in 'SO':
            return [decode(v) for v in value.tolist()]
        return value.item() if value.ndim == 0 or value.size == 1 else value
    if isinstance(value, np.generic):
        return value.item()
    return value


def round_trip_safe(values):
    """Float axis values as the decimals a user wrote, where that is a last-bits change.

    Each value is replaced by its shortest decimal of at most 15 significant
    digits when that decimal lies within 4 ulp of it (0.024999999999999998 ->
    0.025), so `sel(frustration=0.025)` finds it. Values stay distinct and in
    order; otherwise the axis is returned unchanged.
    """
    v = np.asarray(values)
    if v.dtype.kind != 'f' or v.size == 0:
        return v
    out = np.array([float(f'{x:.15g}') if np.isfinite(x) else x for x in v.tolist()], dtype=v.dtype)
    close = np.abs(out - v) <= 4 * np.spacing(np.abs(v))
    out = np.where(close, out, v)
    if np.unique(out).size != np.unique(v).size or not np.array_equal(np.argsort(out, kind='stable'),
                                                                      np.argsort(v, kind='stable')):
        return v
    return out


def _check_path(path):
    if not os.path.exists(path):
        raise SweepFileError(f'{path}: no such file')
    if os.path.isdir(path):
        raise SweepFileError(f'{path}: is a directory, not an HDF5 file')
    try:
        if not h5py.is_hdf5(path):
            raise SweepFileError(f'{path}: not an HDF5 file')
    except OSError as e:
        raise SweepFileError(f'{path}: cannot read: {e}') from None


def _open(path):
    """(h5netcdf.File, opened_with_swmr)."""
    _check_path(path)
    try:
        return h5netcdf.File(path, 'r'), False
    except OSError as plain:
        try:
            return h5netcdf.File(path, 'r', swmr=True), True
        except OSError:
            raise SweepFileError(f'{path}: HDF5 cannot open it: {plain}') from None


def _grid_dims(h5file):
    status = h5file['results/status']
    names = []
    for i, dim in enumerate(status.dims):
        names.append(dim[0].name.rsplit('/', 1)[-1] if len(dim) else f'dim_{i}')
    return names


def _fix_coordinates(ds, grid_dims):
    """Bool axes, round-trip-safe float axes, units on every coordinate."""
    new = {}
    for name in ds.coords:
        coord = ds.coords[name]
        if coord.ndim != 1 or name != coord.dims[0]:
            continue
        values = coord.values
        if name in grid_dims and values.dtype == np.int8 and 'log_spaced' in coord.attrs:
            values = values.astype(bool)  # a boolean grid axis: sel(stop_gradient=True)
        elif values.dtype.kind == 'f':
            values = round_trip_safe(values)
        attrs = {k: decode(v) for k, v in coord.attrs.items() if k not in _INTERNAL_ATTRS}
        known = catalogue.describe(name)
        if known:
            attrs.setdefault('units', known[0])
            attrs.setdefault('long_name', known[1])
        new[name] = xr.Variable((name,), values, attrs)
    return ds.assign_coords(new)


def _describe_variables(ds, group):
    for name, var in ds.data_vars.items():
        attrs = {k: decode(v) for k, v in var.attrs.items() if k not in _INTERNAL_ATTRS}
        known = catalogue.describe(name)
        if known:
            attrs.setdefault('units', known[0])
            attrs.setdefault('long_name', known[1])
        attrs['hdf5_path'] = f'/{group}/{name}'
        var.attrs = attrs
    return ds


def open_sweep(path, groups=DEFAULT_GROUPS):
    """Open a collapse-sweep output file as one xarray.Dataset.

    Variables of /results, /traces and /final (or the `groups` named) with
    named coordinates: the grid axes in spec order, then seed, step, class,
    component, ... . `stop_gradient` is bool; float axes hold the decimals
    written in the spec; `t` = lr * step is a coordinate (lr-steps) when
    /traces is read. Every variable has `units`, `long_name` and `hdf5_path`;
    the file's root attributes (settings, provenance) are the Dataset's attrs,
    plus `path` and `opened_with_swmr`. Data are read lazily; `.load()` reads
    them, `.close()` closes the file. `ds.sweep` (collapse_sweep.Sweep) adds
    selections by nearest value, progress and the results subset:
    `ds.sweep.results.to_dataframe()`.

    Raises SweepFileError with a one-line message for a missing, non-HDF5 or
    foreign file.
    """
    path = os.fspath(path)
    groups = [groups] if isinstance(groups, str) else list(groups)
    f, swmr = _open(path)
    try:
        h5 = f._h5file
        fmt = decode(h5.attrs.get('format'))
        if 'results' not in h5 or 'status' not in h5['results']:
            what = f' (format = {fmt!r})' if fmt is not None else ''
            raise SweepFileError(f'{path}: not a collapse-sweep output file: no /results/status{what}')
        if fmt is not None and fmt != 'collapse-sweep':
            raise SweepFileError(f'{path}: not a collapse-sweep output file (format = {fmt!r})')
        grid_dims = _grid_dims(h5)
        parts = []
        for group in groups:
            if group not in h5:
                if group in DEFAULT_GROUPS:
                    continue
                raise SweepFileError(f'{path} has no group /{group}')
            part = xr.open_dataset(xr.backends.H5NetCDFStore(f, group=group), mask_and_scale=False,
                                   decode_times=False, decode_timedelta=False)
            parts.append(_describe_variables(part, group))
        ds = xr.merge(parts, join='exact', compat='override', combine_attrs='override') if parts else xr.Dataset()
        ds = _fix_coordinates(ds, grid_dims)
        ds.attrs = {k: decode(v) for k, v in h5.attrs.items()}
        ds.attrs.update(path=path, opened_with_swmr=int(swmr), grid_dims=list(grid_dims))
        if 'step' in ds.coords:
            lr = ds.coords['lr'] if 'lr' in ds.coords else float(ds.attrs.get('lr', np.nan))
            ds = ds.assign_coords(t=lr * ds.coords['step'])
            ds['t'].attrs = {'units': catalogue.TIME, 'long_name': 'time t = lr * step'}
    except Exception:
        f.close()
        raise
    ds.set_close(f.close)
    return ds
