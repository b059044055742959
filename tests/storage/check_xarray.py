#!/usr/bin/env python3
"""xarray / h5py view of the sample files written by write_sample_file.

usage: check_xarray.py DIR   (DIR holds the .h5 files and expected.json)

Checks what SPEC §6 promises a Python user: every group opens with
xarray.open_dataset(path, group=G, engine="h5netcdf") and has named
coordinates with the spec's axis values and dtypes; integer data are not
masked; root attributes decode to str/int; a file left by a killed writer
opens with h5py swmr=True. Exit 1 on any problem.
"""
import json
import sys

import h5py
import numpy as np
import xarray as xr

problems = []

AXIS_DTYPES = {'head_dim': np.int32, 'stop_gradient': np.int8, 'seed': np.int64}
GEOMETRY_DIMS = {
    ('final', 'label_embeddings'): ('class', 'component'),
    ('final', 'head'): ('component_out', 'component_in'),
    ('final', 'sample_embeddings'): ('sample', 'component'),
    ('initial', 'head_A'): ('head_unit', 'component'),
    ('initial', 'head_B'): ('component', 'head_unit'),
    ('initial', 'label_embeddings'): ('seed', 'class', 'component'),
    ('initial', 'encoder'): ('seed', 'component', 'input'),
    ('graph', 'primary_label'): ('seed', 'sample'),
}


def bad(where, message):
    problems.append(f'{where}: {message}')
    print('PROBLEM:', problems[-1])


def check_root_attributes(path, f):
    if f.attrs['format'] != 'collapse-sweep' or not isinstance(f.attrs['spec'], str):
        bad(path, 'string attributes do not decode to str')
    version = f.attrs['format_version']
    if not np.issubdtype(type(version), np.integer) or version != 1:
        bad(path, f'format_version is {version!r}')


def check_group(path, group, expected):
    axes = [name for name, _ in expected['axes']]
    values = dict((name, np.array(v)) for name, v in expected['axes'])
    ds = xr.open_dataset(path, group=group, engine='h5netcdf')
    # Gridded datasets declare their first dimension unlimited only to get a
    # growing chunk index (docs/format.md); netCDF must not see an unlimited
    # dimension (the dimension scales themselves are fixed).
    if ds.encoding.get('unlimited_dims'):
        bad(f'{path}:/{group}', f'unlimited dimensions {ds.encoding["unlimited_dims"]}')
    grid_names = axes if group in ('results', 'traces', 'final') or 'head_A' in ds else ['seed']
    for name in grid_names:
        if name not in ds.coords:
            bad(f'{path}:/{group}', f'no coordinate {name}')
            continue
        coordinate = ds.coords[name].values
        if not np.array_equal(coordinate, values[name].astype(coordinate.dtype)) or \
                not np.allclose(coordinate, values[name], rtol=0, atol=0):
            bad(f'{path}:/{group}', f'coordinate {name} = {coordinate}, expected {values[name]}')
        if coordinate.dtype != AXIS_DTYPES.get(name, np.float64):
            bad(f'{path}:/{group}', f'coordinate {name} has dtype {coordinate.dtype}')
    if group == 'results':
        for variable in ds.data_vars:
            if ds[variable].dims != tuple(axes):
                bad(f'{path}:/results/{variable}', f'dims {ds[variable].dims}')
        status = ds['status']
        if status.dtype != np.int8:
            bad(f'{path}:/results/status', f'dtype {status.dtype}: -1 must not be masked to NaN')
        not_run = int((status == -1).sum())
        size = int(np.prod(status.shape))
        want = {'complete': 0, 'partial': size - size // 2}.get(expected['status'])
        if want is not None and not_run != want:
            bad(f'{path}:/results/status', f'{not_run} entries -1, expected {want}')
    if group == 'traces':
        if not np.array_equal(ds.coords['step'].values, np.array(expected['steps'], dtype=np.int64)):
            bad(f'{path}:/traces', 'step coordinate differs from the record steps')
        for variable in ds.data_vars:
            if ds[variable].dims != tuple(axes) + ('step',):
                bad(f'{path}:/traces/{variable}', f'dims {ds[variable].dims}')
    for (g, name), tail in GEOMETRY_DIMS.items():
        if g == group and name in ds:
            want = tail if tail[0] == 'seed' else tuple(axes) + tail
            if ds[name].dims != want:
                bad(f'{path}:/{group}/{name}', f'dims {ds[name].dims}, expected {want}')
    ds.close()


def check_killed(path, expected):
    try:
        h5py.File(path, 'r').close()
        plain = 'opens'
    except OSError:
        plain = 'refused'
    print(f'{path}: plain h5py.File(path, "r") {plain}; swmr=True is the documented way')
    with h5py.File(path, 'r', swmr=True) as f:
        check_root_attributes(path, f)
        status = f['results/status'][()]
        if int((status >= 0).sum()) != 5:
            bad(path, f'{int((status >= 0).sum())} finished trajectories, expected 5')
        # xarray takes an already open h5py file, so swmr reading reaches it too.
        ds = xr.open_dataset(xr.backends.H5NetCDFStore(h5netcdf_file(f), group='results'))
        if 'frustration' not in ds.coords:
            bad(path, 'xarray over an swmr h5py file has no frustration coordinate')
        ds.close()


def check_merged_equals_single(merged_path, single_path):
    # The merged file's virtual datasets must resolve to the shards (their
    # names are relative to the merged file) and give the single file's data.
    with h5py.File(merged_path, 'r') as merged, h5py.File(single_path, 'r') as single:
        names = []
        single.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        for name in names:
            if name not in merged:
                bad(merged_path, f'{name} missing')
            elif not merged[name].is_virtual and merged[name].ndim > 1:
                bad(merged_path, f'{name} is not a virtual dataset')
            elif not np.array_equal(merged[name][()], single[name][()], equal_nan=merged[name].dtype.kind == 'f'):
                bad(merged_path, f'{name} differs from {single_path}')


def check_units_and_open_sweep(path, expected):
    """The engine's units/long_name equal python/collapse_sweep/units.py (one catalogue), every
    dataset and group is described, and collapse_sweep.open_sweep reads the file (finished,
    partial, shard, merged or killed) with bool and exact axes and a per-trajectory DataFrame."""
    try:
        import collapse_sweep
        from collapse_sweep import units as catalogue
    except ImportError as error:
        bad(path, f'collapse_sweep does not import ({error}); PYTHONPATH should name python/')
        return
    opener = {'swmr': True} if expected['status'] == 'killed' else {}
    with h5py.File(path, 'r', **opener) as f:
        def visit(name, obj):
            base = name.rsplit('/', 1)[-1]
            if isinstance(obj, h5py.Dataset):
                got = (obj.attrs.get('units'), obj.attrs.get('long_name'))
                if got != catalogue.describe(base):
                    bad(f'{path}:/{name}', f'units/long_name {got} differ from the catalogue {catalogue.describe(base)}')
            elif 'collapse_threshold' not in obj.attrs or 'max_steps' not in obj.attrs:
                bad(f'{path}:/{name}', 'group without its settings (collapse_threshold, max_steps)')
        f.visititems(visit)
        status = f['results/status'][()]
    with collapse_sweep.open_sweep(path) as ds:
        # A killed writer leaves the file closed between batches (or marked
        # open inside one, then SWMR reading is the fallback); a finished file
        # always opens plainly.
        if expected['status'] != 'killed' and bool(ds.attrs['opened_with_swmr']):
            bad(path, f'opened_with_swmr = {ds.attrs["opened_with_swmr"]}')
        if not np.array_equal(ds['status'].values, status):
            bad(path, 'open_sweep status differs from h5py')
        for name, values in expected['axes']:
            coord = ds.coords[name].values
            if name == 'stop_gradient' and coord.dtype != bool:
                bad(path, f'stop_gradient coordinate is {coord.dtype}, not bool')
            if not np.array_equal(coord.astype(float), np.asarray(values, dtype=float)):
                bad(path, f'open_sweep coordinate {name} = {coord}, expected {values}')
        for name in list(ds.data_vars) + list(ds.coords):
            if not ds[name].attrs.get('units') or not ds[name].attrs.get('long_name'):
                bad(path, f'open_sweep: {name} has no units/long_name')
        frame = ds.sweep.results.to_dataframe()
        if len(frame) != status.size or 'collapse_time' not in frame.columns:
            bad(path, f'results DataFrame has {len(frame)} rows, expected {status.size}')


def h5netcdf_file(h5py_file):
    import h5netcdf
    return h5netcdf.File(h5py_file, 'r')


def main(directory):
    with open(f'{directory}/expected.json') as handle:
        expected_files = json.load(handle)
    for name, expected in expected_files.items():
        path = f'{directory}/{name}'
        try:
            check_units_and_open_sweep(path, expected)
            if expected['status'] == 'killed':
                check_killed(path, expected)
                continue
            with h5py.File(path, 'r') as f:
                check_root_attributes(path, f)
                groups = [g for g in ('results', 'traces', 'final', 'initial', 'graph') if g in f]
            for group in groups:
                check_group(path, group, expected)
        except Exception as error:  # noqa: BLE001 - report and go on
            bad(path, repr(error))
    if 'merged.h5' in expected_files and 'full_embedding.h5' in expected_files:
        check_merged_equals_single(f'{directory}/merged.h5', f'{directory}/full_embedding.h5')
    print('xarray check:', 'OK' if not problems else f'{len(problems)} problems')
    return 1 if problems else 0


if __name__ == '__main__':
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
