#!/usr/bin/env python3
"""Tests of the Python analysis package on synthetic files (no C++ engine needed):
tools/make_synthetic_output.py, collapse_sweep.open_sweep (python/), tools/plot_phase_diagram.py.
tests/tools/test_plots.py covers the figures and the statistics.

usage: test_tools.py [TestClass ...] [unittest options]
       (run with the project venv: .venv/bin/python tests/tools/test_tools.py)
Exit 0 when every selected test passes, 1 otherwise.
The SPEC conformance check runs when ../shared/conformance/check_format.py
exists beside the project (or COLLAPSE_CHECK_FORMAT names it); it is skipped otherwise.
"""
import os
import struct
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import h5py
import numpy as np

import collapse_sweep as cs

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / 'tools'

MAKE = TOOLS / 'make_synthetic_output.py'
PLOT = TOOLS / 'plot_phase_diagram.py'
CHECK_FORMAT = Path(os.environ.get('COLLAPSE_CHECK_FORMAT', ROOT.parent / 'shared' / 'conformance' / 'check_format.py'))


def run(*args):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=300)


def make(path, *options):
    r = run(MAKE, path, *options)
    if r.returncode != 0:
        raise AssertionError(f'make_synthetic_output.py {options} failed:\n{r.stdout}\n{r.stderr}')
    return path


def png_size(path):
    with open(path, 'rb') as f:
        head = f.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n', f'{path} is not a PNG'
    return struct.unpack('>II', head[16:24])


class TempDirTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._dir = tempfile.TemporaryDirectory(prefix='collapse-tools-')
        cls.dir = Path(cls._dir.name)

    @classmethod
    def tearDownClass(cls):
        cls._dir.cleanup()


class SyntheticTest(TempDirTest):
    """The synthetic files follow SPEC §6."""

    def test_conformance(self):
        if not CHECK_FORMAT.exists():
            self.skipTest(f'{CHECK_FORMAT} not found')
        for grid in ('default', 'quickstart', 'extra-axis'):
            path = make(self.dir / f'{grid}.h5', '--grid', grid)
            r = run(CHECK_FORMAT, path)
            self.assertEqual(r.returncode, 0, f'{grid}: {r.stdout}{r.stderr}')
            self.assertIn('conformance: OK', r.stdout)
        path = make(self.dir / 'partial.h5', '--partial', '0.3')
        r = run(CHECK_FORMAT, path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_layout(self):
        path = make(self.dir / 'a.h5')
        with h5py.File(path, 'r') as f:
            self.assertEqual(f.attrs['format'], 'collapse-sweep')
            self.assertEqual(int(f.attrs['format_version']), 1)
            st = f['results/status']
            self.assertEqual(st.shape, (5, 2, 3, 2, 4))
            self.assertEqual([d[0].name for d in st.dims],
                             ['/results/frustration', '/results/head_dim', '/results/lr',
                              '/results/stop_gradient', '/results/seed'])
            self.assertEqual(st.dtype, np.int8)
            self.assertTrue(np.allclose(f['results/lr'][()], [0.01, 0.1, 1.0]))
            self.assertEqual(int(f['results/lr'].attrs['log_spaced']), 1)
            self.assertEqual(f['traces/label_distance'].dims[5][0].name, '/traces/step')
            self.assertEqual(f['traces/step'][0], 0)
            self.assertEqual(f['traces/step'][-1], 20000)
            s = st[()]
            ct = f['results/collapse_time'][()]
            # the made-up physics: nothing collapses at f = 0 without a head or with head + stop-gradient
            self.assertFalse((s[0, 0] == 1).any())
            self.assertFalse((s[:, 1, :, 1] == 1).any())
            self.assertTrue((s[1:, 0, 2] == 1).all())
            # collapse time ~ 1/f along frustration (h = 0, lr = 1)
            t = np.median(ct[1:, 0, 2, 0], axis=-1)
            self.assertTrue(np.all(np.diff(t) < 0))
            f_values = f['results/frustration'][1:]
            self.assertLess(np.std(t * f_values) / np.mean(t * f_values), 0.25)


class ReaderTest(TempDirTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.path = make(cls.dir / 'a.h5')
        cls.ds = cs.open_sweep(cls.path)
        cls.sweep = cls.ds.sweep
        with h5py.File(cls.path, 'r') as f:
            cls.status = f['results/status'][()]
            cls.ctime = f['results/collapse_time'][()]
            cls.ld = f['traces/label_distance'][()]
            cls.step = f['traces/step'][()]
            cls.lr = f['results/lr'][()]
            cls.scales = {n: f['results/' + n][()] for n in ('frustration', 'head_dim', 'lr', 'stop_gradient', 'seed')}

    def test_axes(self):
        s = self.sweep
        self.assertEqual(list(s.axes), ['frustration', 'head_dim', 'lr', 'stop_gradient', 'seed'])
        for name, values in self.scales.items():
            got = np.asarray(s.axes[name], dtype=float)
            # float axes read as the decimals the spec wrote: linspace(0, 0.4, 5)[3] = 0.30000000000000004 -> 0.3
            self.assertTrue(np.array_equal(got, cs.round_trip_safe(values.astype(float))), name)
            self.assertTrue(np.allclose(got, values.astype(float), rtol=1e-15, atol=0), name)
        self.assertEqual(s.axes['stop_gradient'].dtype, bool)
        self.assertEqual(self.ds['status'].shape, self.status.shape)
        self.assertTrue(s.log_spaced['lr'])
        self.assertFalse(s.log_spaced['frustration'])
        self.assertFalse(s.opened_with_swmr)

    def test_results_dataset(self):
        r = self.sweep.results
        self.assertEqual(list(r['status'].dims), list(self.sweep.axes))
        for name in self.sweep.axes:
            self.assertIn(name, r.coords)
        self.assertTrue(np.array_equal(r['status'].values, self.status))
        self.assertTrue(np.array_equal(r['collapse_time'].values, self.ctime, equal_nan=True))
        # bool coordinate: select by True/False
        self.assertTrue(np.array_equal(r['status'].sel(stop_gradient=True).values, self.status[:, :, :, 1]))
        # plain xarray selection: bool axis, float axes as written in the spec
        ds = self.ds
        self.assertTrue(np.array_equal(ds['status'].sel(stop_gradient=True, frustration=0.1, lr=0.01).values,
                                       self.status[1, :, 0, 1]))
        frame = self.sweep.results.to_dataframe()
        self.assertEqual(len(frame), self.status.size)
        self.assertEqual(list(frame.index.names), list(self.sweep.axes))
        self.assertTrue(np.array_equal(frame['status'].values, self.status.ravel()))

    def test_units_and_settings(self):
        ds = self.ds
        for name in list(ds.data_vars) + list(ds.coords):
            self.assertTrue(ds[name].attrs.get('units'), name)
            self.assertTrue(ds[name].attrs.get('long_name'), name)
        self.assertEqual(ds['collapse_time'].attrs['units'], 'lr-steps')
        self.assertEqual(ds['collapse_step'].attrs['units'], 'steps')
        self.assertEqual(ds['t'].attrs['units'], 'lr-steps')
        self.assertEqual(ds['step'].attrs['units'], 'steps')
        self.assertEqual(ds.attrs['max_steps'], 20000)
        self.assertEqual(ds.attrs['collapse_threshold'], 0.05)
        self.assertEqual(ds['label_embeddings'].dims[-2:], ('class', 'component'))

    def test_units_of_files_without_them(self):
        # files written before the engine wrote units get them from the package's catalogue
        path = make(self.dir / 'old.h5')
        with h5py.File(path, 'a') as f:
            for group in ('results', 'traces', 'final'):
                for obj in f[group].values():
                    for key in ('units', 'long_name'):
                        if key in obj.attrs:
                            del obj.attrs[key]
        with cs.open_sweep(path) as ds:
            self.assertEqual(ds['collapse_time'].attrs['units'], 'lr-steps')
            self.assertEqual(ds['frustration'].attrs['long_name'], 'frustration f')

    def test_round_trip_safe_axis_values(self):
        # the case: a linspace computed as 0.024999999999999998, one ulp from the 0.025 written
        off = 0.024999999999999998
        self.assertEqual(np.nextafter(0.025, 0.0), off)
        path = make(self.dir / 'lin.h5', '--axis', f'frustration=0.0,{off!r},0.05,{0.1 * 3!r}')
        with h5py.File(path, 'r') as f:
            self.assertEqual(f['results/frustration'][1], off)
        with cs.open_sweep(path) as ds:
            self.assertEqual(ds['frustration'].values.tolist(), [0.0, 0.025, 0.05, 0.3])
            self.assertEqual(int(ds['status'].sel(frustration=0.3).count()), int(ds['status'][0].size))
            self.assertEqual(int(ds['status'].sel(frustration=0.025).count()), int(ds['status'][0].size))
        # distinct values within a few ulp are kept as they are
        close = np.array([0.1, np.nextafter(0.1, 1.0)])
        self.assertTrue(np.array_equal(cs.round_trip_safe(close), close))
        self.assertEqual(cs.round_trip_safe(np.array([0.30000000000000004]))[0], 0.3)
        self.assertEqual(cs.round_trip_safe(np.array([1 / 3]))[0], 1 / 3)  # 15 digits would move it by >4 ulp

    def test_attrs_progress_counts(self):
        s = self.sweep
        self.assertIsInstance(s.attrs['format'], str)
        self.assertIsInstance(s.attrs['spec'], str)
        self.assertEqual(s.attrs['format_version'], 1)
        self.assertEqual(s.progress, 1.0)
        counts = s.status_counts
        self.assertEqual(list(counts), ['not run', 'stable', 'collapsed', 'diverged'])
        for code, name in ((-1, 'not run'), (0, 'stable'), (1, 'collapsed'), (2, 'diverged')):
            self.assertEqual(counts[name], int((self.status == code).sum()))
        self.assertGreater(counts['diverged'], 0)
        self.assertAlmostEqual(s.threshold, 0.05)
        self.assertEqual(s.metric, 'label')
        self.assertEqual(s.spec['grid']['seeds'], 4)

    def test_collapsed_fraction_by_hand(self):
        got = cs.collapsed_fraction(self.sweep.results)
        self.assertEqual(list(got.dims), ['frustration', 'head_dim', 'lr', 'stop_gradient'])
        want = (self.status == 1).sum(-1) / (self.status >= 0).sum(-1)
        self.assertTrue(np.allclose(got.values, want))
        self.assertTrue(((want > 0) & (want < 1)).any(), 'the synthetic file should have partly collapsed cells')
        over_two = cs.collapsed_fraction(self.sweep.results, over=['seed', 'stop_gradient'])
        want2 = (self.status == 1).sum((-1, -2)) / (self.status >= 0).sum((-1, -2))
        self.assertTrue(np.allclose(over_two.transpose('frustration', 'head_dim', 'lr').values, want2))

    def test_kaplan_meier_median_by_hand(self):
        # engine files censor only at the horizon: the KM median is the lower middle order statistic
        # of collapse times with non-collapsed seeds counted as +inf (inf{t: F(t) >= 1/2})
        got = cs.collapse_time(self.sweep.results, self.sweep.max_steps)
        want = np.full(self.status.shape[:-1], np.nan)
        for index in np.ndindex(*want.shape):
            finished = self.status[index] >= 0
            times = np.sort(np.where(self.status[index] == 1, self.ctime[index], np.inf)[finished])
            middle = times[(times.size + 1) // 2 - 1]
            want[index] = middle if np.isfinite(middle) else np.nan
        median = got['median'].values
        self.assertTrue(np.array_equal(np.isnan(median), np.isnan(want)))
        self.assertTrue(np.array_equal(got['censored'].values, np.isnan(want)))
        self.assertTrue(np.allclose(median[~np.isnan(want)], want[~np.isnan(want)]))
        self.assertTrue(np.isnan(want).any() and (~np.isnan(want)).any())

    def test_traces(self):
        tr = self.sweep.traces('label_distance', frustration=0.1, head_dim=0, stop_gradient=False)
        self.assertEqual(list(tr.dims), ['lr', 'seed', 'step'])
        self.assertTrue(np.array_equal(tr.values, self.ld[1, 0, :, 0], equal_nan=True))
        self.assertTrue(np.array_equal(tr['step'].values, self.step))
        self.assertEqual(tr['t'].dims, ('lr', 'step'))
        self.assertTrue(np.allclose(tr['t'].values, self.lr[:, None] * self.step[None, :]))
        one = self.sweep.traces('accuracy', frustration=0.4, head_dim=8, lr=1, stop_gradient=True, seed=2)
        self.assertEqual(one.dims, ('step',))
        self.assertTrue(np.allclose(one['t'].values, 1.0 * self.step))
        several = self.sweep.traces(['label_distance', 'loss'], head_dim=[0, 8], lr=[0.01, 1])
        self.assertEqual(several['loss'].shape, (5, 2, 2, 2, 4, len(self.step)))
        self.assertTrue(np.array_equal(several['label_distance'].values, self.ld[:, :, [0, 2]], equal_nan=True))
        with self.assertRaises(ValueError):
            self.sweep.traces('label_distance', frustration=0.15)
        with self.assertRaises(KeyError):
            self.sweep.traces('label_distance', classes=4)

    def test_final(self):
        head = self.sweep.final('head', frustration=0, head_dim=0)
        self.assertEqual(head.dims, ('lr', 'stop_gradient', 'seed', 'component_out', 'component_in'))
        self.assertTrue(np.all(head.values == 0))
        self.assertTrue(np.array_equal(self.ds['head'].sel(frustration=0, head_dim=0).values, head.values))

    def test_is_log_spaced(self):
        self.assertTrue(cs.is_log_spaced(np.logspace(-2, 0, 9)))
        self.assertTrue(cs.is_log_spaced([0.01, 0.1, 1]))
        self.assertTrue(cs.is_log_spaced([1, 0.1, 0.01]))
        self.assertFalse(cs.is_log_spaced([0, 0.1, 1]))
        self.assertFalse(cs.is_log_spaced([0.1, 1]))
        self.assertFalse(cs.is_log_spaced([0.5]))
        self.assertFalse(cs.is_log_spaced(np.linspace(0.1, 0.5, 5)))
        self.assertFalse(cs.is_log_spaced([0.01, 0.03, 0.1, 0.3, 1]))


class PartialAndKilledTest(TempDirTest):
    def test_partial(self):
        path = make(self.dir / 'p.h5', '--partial', '0.3')
        s = cs.open_sweep(path).sweep
        with h5py.File(path, 'r') as f:
            status = f['results/status'][()]
        self.assertAlmostEqual(s.progress, float((status != -1).mean()))
        self.assertAlmostEqual(s.progress, 0.3, places=2)
        self.assertEqual(s.status_counts['not run'], int((status == -1).sum()))
        frac = cs.collapsed_fraction(s.results).values
        run_any = (status >= 0).any(-1)
        self.assertTrue(np.all(np.isnan(frac[~run_any])))
        self.assertFalse(np.isnan(frac[run_any]).any())

    def test_killed_writer(self):
        path = make(self.dir / 'k.h5', '--killed-writer')
        with self.assertRaises(OSError):  # HDF5 refuses a plain open: the superblock says "being written"
            h5py.File(path, 'r')
        s = cs.open_sweep(path).sweep
        self.assertTrue(s.opened_with_swmr)
        with h5py.File(path, 'r', swmr=True) as f:
            status = f['results/status'][()]
            ctime = f['results/collapse_time'][()]
            ld = f['traces/label_distance'][()]
        self.assertAlmostEqual(s.progress, 0.5)
        self.assertTrue(np.array_equal(s.results['status'].values, status))
        self.assertTrue(np.array_equal(s.results['collapse_time'].values, ctime, equal_nan=True))
        self.assertEqual(list(s.results['status'].dims), list(s.axes))
        tr = s.traces('label_distance', head_dim=0)
        self.assertTrue(np.array_equal(tr.values, ld[:, 0], equal_nan=True))
        self.assertIn('t', tr.coords)

    def test_replay_file(self):
        # `collapse-sweep replay` writes one trajectory: length-1 axes, one seed (its own index), dense steps
        path = make(self.dir / 'r.h5', '--grid', 'replay', '--theory')
        with cs.open_sweep(path) as ds:
            self.assertEqual(dict(ds['status'].sizes), {'frustration': 1, 'head_dim': 1, 'lr': 1, 'seed': 1})
            self.assertEqual(ds['seed'].values.tolist(), [3])
            steps = ds['step'].values
            self.assertEqual(steps.size, 801)
            self.assertTrue(np.all(np.diff(steps) == 25))
            tr = ds.sweep.traces('label_distance', seed=3)
            self.assertEqual(tr.dims, ('frustration', 'head_dim', 'lr', 'step'))
            self.assertTrue(np.allclose(ds['t'].values, 0.5 * steps))
            self.assertIn('theory_label_distance', ds)

    def test_other_grids(self):
        q = cs.open_sweep(make(self.dir / 'q.h5', '--grid', 'quickstart')).sweep
        self.assertEqual(list(q.axes), ['frustration', 'head_dim', 'stop_gradient', 'lr', 'seed'])
        self.assertEqual(len(q.axes['lr']), 1)
        tr = q.traces('label_distance', frustration=0.1, head_dim=0, stop_gradient=False, seed=0)
        self.assertTrue(np.allclose(tr['t'].values, 0.5 * tr['step'].values))
        e = cs.open_sweep(make(self.dir / 'e.h5', '--grid', 'extra-axis')).sweep
        self.assertIn('init_scale', e.axes)
        self.assertNotIn('stop_gradient', e.axes)
        self.assertEqual(e.parameter('stop_gradient'), 0)


class PlotTest(TempDirTest):
    def check_pngs(self, r, prefix):
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn('Traceback', r.stderr)
        for kind in ('phase', 'traces'):
            png = Path(f'{prefix}_{kind}.png')
            self.assertIn(str(png), r.stdout)
            self.assertTrue(png.exists(), png)
            self.assertGreater(png.stat().st_size, 20_000, png)
            width, height = png_size(png)
            self.assertTrue(400 <= width <= 4000 and 400 <= height <= 4000, (png, width, height))

    def test_default_grid(self):
        path = make(self.dir / 'a.h5')
        prefix = self.dir / 'plots' / 'a'  # the directory does not exist yet
        self.check_pngs(run(PLOT, path, '-o', prefix), prefix)
        w, h = png_size(f'{prefix}_phase.png')
        self.assertGreater(h, w)  # 2 head_dim columns, 2 x 2 rows (stop_gradient x {time, fraction})

    def test_default_prefix(self):
        path = make(self.dir / 'b.h5')
        self.check_pngs(run(PLOT, path), self.dir / 'b')

    def test_length_one_axis_and_points(self):
        path = make(self.dir / 'q.h5', '--grid', 'quickstart')
        prefix = self.dir / 'q'
        self.check_pngs(run(PLOT, path, '-o', prefix, '--points',
                            'frustration=0.1,head_dim=0,lr=0.5;frustration=0.3,head_dim=8,stop_gradient=true'),
                        prefix)

    def test_extra_axis_and_swapped_axes(self):
        path = make(self.dir / 'e.h5', '--grid', 'extra-axis')
        prefix = self.dir / 'e'
        self.check_pngs(run(PLOT, path, '-o', prefix, '--fix', 'init_scale=2'), prefix)
        self.check_pngs(run(PLOT, path, '-o', prefix, '--x', 'lr', '--y', 'init_scale'), prefix)

    def test_killed_writer_file(self):
        path = make(self.dir / 'k.h5', '--killed-writer', '--partial', '0.4')
        prefix = self.dir / 'k'
        self.check_pngs(run(PLOT, path, '-o', prefix), prefix)


class TraceMedianTest(unittest.TestCase):
    def test_distance_median_counts_stopped_seeds(self):
        from collapse_sweep.plots import traces as trace_plots
        nan = np.nan
        d = np.array([[1.0, 0.5, 0.1, nan, nan],     # collapsed after index 2
                      [1.0, 0.6, 0.3, 0.2, 0.1],     # stable
                      [1.0, 0.7, 0.4, 0.3, nan]])    # collapsed after index 3
        med = trace_plots.distance_median(d, np.array([1, 0, 1]))
        self.assertTrue(np.allclose(med[:4], [1.0, 0.6, 0.3, 0.2]))  # index 3: one seed counted as collapsed
        self.assertTrue(np.isnan(med[4]))  # 2 of 3 seeds collapsed: the median is beyond the threshold
        d[0, 3:] = [0.1, 0.05]
        med = trace_plots.distance_median(d, np.array([0, 0, 2]))          # the third diverged
        self.assertTrue(np.allclose(med, [1.0, 0.6, 0.3, 0.2, 0.1]))  # last: [0.05, 0.1, +inf]
        acc = np.array([[0.5, 0.6, nan], [0.4, 0.5, 0.6], [0.3, nan, nan]])
        self.assertTrue(np.allclose(trace_plots.running_median(acc)[:2], [0.4, 0.55]))
        self.assertTrue(np.isnan(trace_plots.running_median(acc)[2]))


class ErrorTest(TempDirTest):
    def expect_error(self, *args, code=None):
        r = run(PLOT, *args, '-o', self.dir / 'never')
        self.assertNotEqual(r.returncode, 0)
        if code is not None:
            self.assertEqual(r.returncode, code)
        self.assertTrue(r.stderr.startswith('error: '), r.stderr)
        self.assertNotIn('Traceback', r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertFalse((self.dir / 'never_phase.png').exists())
        return r.stderr

    def test_missing_file(self):
        msg = self.expect_error(self.dir / 'missing.h5', code=1)
        self.assertIn('no such file', msg)
        with self.assertRaises(cs.SweepFileError):
            cs.open_sweep(self.dir / 'missing.h5')

    def test_not_hdf5(self):
        path = self.dir / 'text.h5'
        path.write_text('this is not HDF5\n')
        msg = self.expect_error(path, code=1)
        self.assertIn('not an HDF5 file', msg)
        with self.assertRaises(cs.SweepFileError):
            cs.open_sweep(path)

    def test_other_hdf5(self):
        path = self.dir / 'other.h5'
        with h5py.File(path, 'w') as f:
            f['x'] = np.arange(3)
        msg = self.expect_error(path, code=1)
        self.assertIn('not a collapse-sweep output file', msg)

    def test_bad_selection(self):
        path = make(self.dir / 'a.h5')
        self.assertIn('not a grid axis', self.expect_error(path, '--x', 'bogus', code=2))
        self.assertIn('not a value of the axis frustration', self.expect_error(path, '--points', 'frustration=0.15', code=2))
        self.assertIn('not an axis', self.expect_error(path, '--points', 'classes=4', code=2))
        self.assertIn('NAME=VALUE', self.expect_error(path, '--points', 'frustration', code=2))


if __name__ == '__main__':
    unittest.main(verbosity=2)
