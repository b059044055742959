#!/usr/bin/env python3
"""Tests of collapse_sweep's statistics and figures on synthetic files, and of
the worked example in docs/analysis.md.

usage: test_plots.py [TestClass ...]   (with the project venv; PYTHONPATH=python for this tree)
"""
import os
import re
import subprocess
import sys
import unittest
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.figure  # noqa: E402
import numpy as np  # noqa: E402

import collapse_sweep as cs  # noqa: E402
from collapse_sweep.plots import cli, common, traces  # noqa: E402
from test_tools import TempDirTest  # noqa: E402  (a class-wide scratch folder, self.dir)

ROOT = Path(__file__).resolve().parents[2]
MAKE = ROOT / 'tools' / 'make_synthetic_output.py'


def make(path, *options):
    r = subprocess.run([sys.executable, str(MAKE), str(path), *map(str, options)], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f'make_synthetic_output.py {options} failed:\n{r.stdout}\n{r.stderr}')
    return str(path)


class Recorder:
    """Patches Figure.savefig to remember each figure's title and legend texts by file name."""

    def __enter__(self):
        self.figures = {}
        self.original = matplotlib.figure.Figure.savefig
        recorder = self

        def savefig(fig, path, *args, **kwargs):
            texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
            texts += [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
            recorder.figures[os.path.basename(str(path))] = {
                'title': fig._suptitle.get_text() if fig._suptitle else '',
                'legend': texts, 'axes_titles': [ax.get_title() for ax in fig.axes],
                'panels': sum(1 for ax in fig.axes if ax.get_visible() and ax.axison and ax.get_label() != '<colorbar>')}
            return recorder.original(fig, path, *args, **kwargs)

        matplotlib.figure.Figure.savefig = savefig
        return self

    def __exit__(self, *exc):
        matplotlib.figure.Figure.savefig = self.original


class PlotTestCase(TempDirTest):
    def plot(self, path, **kwargs):
        prefix = str(Path(path).with_suffix(''))
        with Recorder() as rec:
            written = cli.plot_sweep(path, prefix, log=lambda *_: None, **kwargs)
        for png in written:
            self.assertGreater(os.path.getsize(png), 20_000, png)
        return written, rec.figures


class StatsTest(unittest.TestCase):
    """Wilson intervals and Kaplan-Meier medians against hand-computed values."""

    def test_wilson(self):
        # 1 of 4: p = 0.25, z^2/n = 0.9604: centre 0.37246, half-width 0.32688
        low, high = cs.wilson_interval(1, 4)
        self.assertAlmostEqual(float(low), 0.045587, places=5)
        self.assertAlmostEqual(float(high), 0.699358, places=5)
        low, high = cs.wilson_interval(5, 10)
        self.assertAlmostEqual(float(low), 0.236593, places=5)
        self.assertAlmostEqual(float(high), 0.763407, places=5)
        low, high = cs.wilson_interval(0, 4)  # 0 of n: [0, z^2/(n + z^2)]
        self.assertEqual(float(low), 0.0)
        self.assertAlmostEqual(float(high), 3.841459 / (4 + 3.841459), places=5)
        self.assertTrue(np.all(np.isnan(cs.wilson_interval(0, 0))))

    def test_kaplan_meier_with_censoring(self):
        # times 1, 2(censored), 2, 3, 4(censored): S = 4/5, then 4/5 * 3/4 = 0.6 (4 at risk at t = 2,
        # the censored one included), then 0.6 * 1/2 = 0.3; Greenwood at t = 3: 1/20 + 1/12 + 1/2
        t, s, n_eff = cs.kaplan_meier([1, 2, 2, 3, 4], [True, False, True, True, False])
        self.assertEqual(t.tolist(), [1.0, 2.0, 3.0])
        self.assertTrue(np.allclose(s, [0.8, 0.6, 0.3]))
        self.assertAlmostEqual(n_eff[2], 0.3 * 0.7 / (0.09 * (1 / 20 + 1 / 12 + 1 / 2)))
        self.assertAlmostEqual(n_eff[0], 5.0)  # nothing censored before t: the plain count
        median, low, high, censored = cs.km_median([1, 2, 2, 3, 4], [True, False, True, True, False])
        self.assertEqual((median, censored), (3.0, False))

    def test_km_median_interval(self):
        # 8 collapses at 1..8: median inf{t: S <= 1/2} = 4; Wilson upper bound of F(2) = 2/8 is 0.591 >= 1/2
        # (F(1): 0.471 < 1/2) and lower bound of F(7) = 7/8 is 0.529 >= 1/2 (F(6): 0.409): interval [2, 7]
        self.assertEqual(cs.km_median(np.arange(1.0, 9.0), [True] * 8), (4.0, 2.0, 7.0, False))
        # 3 of 5 collapse, 2 censored at the horizon 10: median 3, the upper bound lies beyond the data
        median, low, high, censored = cs.km_median([1, 2, 3, 10, 10], [True, True, True, False, False])
        self.assertEqual((median, low, high, censored), (3.0, 1.0, np.inf, False))
        # 2 of 5: fewer than half, the median is censored (beyond the horizon)
        median, low, high, censored = cs.km_median([1, 2, 10, 10, 10], [True, True, False, False, False])
        self.assertTrue(np.isnan(median) and censored and np.isinf(high))
        self.assertEqual(low, 1.0)
        self.assertTrue(np.isnan(cs.km_median([np.nan, np.nan], [False, False])[0]))

    def test_cell_statistics_count_diverged_as_not_collapsed(self):
        import xarray as xr
        # one cell, 6 seeds: 2 collapsed (t = 5, 7), 1 diverged, 1 stable, 2 not run; lr = 0.5, max_steps = 100
        status = xr.DataArray([[1, 1, 2, 0, -1, -1]], dims=('lr', 'seed'), coords={'lr': [0.5]})
        ctime = xr.DataArray([[5.0, 7.0, np.nan, np.nan, np.nan, np.nan]], dims=('lr', 'seed'))
        res = xr.Dataset({'status': status, 'collapse_time': ctime})
        frac = cs.fractions(res).isel(lr=0)
        self.assertEqual(int(frac['n_finished']), 4)
        self.assertAlmostEqual(float(frac['collapsed_fraction']), 0.5)
        self.assertAlmostEqual(float(frac['diverged_fraction']), 0.25)
        low, high = cs.wilson_interval(2, 4)
        self.assertAlmostEqual(float(frac['collapsed_low']), float(low))
        km = cs.collapse_time(res, 100).isel(lr=0)
        # F = 1/4 at 5, 2/4 at 7: the median is 7 (the diverged seed is not collapsed by t_max = 50)
        self.assertEqual(float(km['median']), 7.0)
        self.assertFalse(bool(km['censored']))
        self.assertEqual(float(km['horizon']), 50.0)


class PlotAxesTest(PlotTestCase):
    """Every entry point on one-valued, two-valued and missing stop_gradient, head_dim and lr axes."""

    CASES = {
        'stop_gradient': (['true'], ['false', 'true'], None),
        'head_dim': (['8'], ['0', '8'], None),
        'lr': (['0.5'], ['0.1', '1'], None),
    }

    def test_axis_variants(self):
        for axis, variants in self.CASES.items():
            for values in variants:
                with self.subTest(axis=axis, values=values):
                    name = f'{axis}-{"none" if values is None else len(values)}'
                    option = f'{axis}=' + ('' if values is None else ','.join(values))
                    path = make(self.dir / f'{name}.h5', '--axis', option, '--theory')
                    written, figures = self.plot(path)
                    self.assertEqual(len(written), 3, written)  # phase, traces, theory
                    phase = figures[f'{name}_phase.png']['title']
                    self.assertIn('embedding: K = 4, n = 50, d = 8', phase)
                    with cs.open_sweep(path) as ds:
                        sweep = ds.sweep
                        self.assertEqual(axis in sweep.axes, values is not None)
                        fixed = '; '.join(common.fixed_settings(sweep))
                    if values is not None and len(values) == 1:
                        shown = {'stop_gradient': 'stop-gradient on', 'head_dim': 'h = 8', 'lr': 'lr = 0.5'}[axis]
                        self.assertIn(shown, phase)
                        self.assertIn(shown, figures[f'{name}_traces.png']['title'])
                    if axis == 'stop_gradient' and values is None:
                        self.assertIn('stop-gradient off', fixed)  # a [model]-level setting, heads present
                    if axis == 'lr' and values is None:
                        self.assertIn('lr = 0.01', fixed)  # the value the file holds as a root attribute

    def test_identical_plain_panels_drawn_once(self):
        path = make(self.dir / 'both.h5')
        _, figures = self.plot(path)
        titles = figures['both_phase.png']['axes_titles']
        plain = [t for t in titles if 'h = 0' in t]
        self.assertEqual(len(plain), 2, titles)  # one time and one fraction panel, not two of each
        self.assertTrue(all('any stop-gradient' in t for t in plain), plain)

    def test_teacher_student_title_names_p(self):
        path = make(self.dir / 'ts.h5')
        with cs.open_sweep(path) as ds:
            ds.attrs.update(kind='teacher_student', input_dim=12)
            self.assertIn('teacher_student: K = 4, n = 50, d = 8, p = 12', common.fixed_settings(ds.sweep)[0])

    def test_replay_file_draws(self):
        path = make(self.dir / 'replay.h5', '--grid', 'replay', '--theory')
        written, figures = self.plot(path)
        self.assertTrue(any(p.endswith('_traces.png') for p in written))
        legend = figures['replay_traces.png']['legend']
        self.assertTrue(any('1/1 collapsed' in t for t in legend), legend)
        self.assertTrue(any('exact theory' in t for t in legend), legend)


class DefaultPointsTest(PlotTestCase):
    def test_avoids_all_diverged_cells(self):
        # gd diverges at lr >= 1 with a head, f = 0.4, no stop-gradient: the middle lr of [0.5, 1, 2]
        path = make(self.dir / 'div.h5', '--axis', 'lr=0.5,1,2')
        with cs.open_sweep(path) as ds:
            points = traces.default_points(ds.sweep)
            status = ds.sweep.results['status']
            head = [p for p in points if p['head_dim'] == 8 and not p['stop_gradient']]
            self.assertEqual(len(head), 1)
            self.assertEqual(float(head[0]['lr']), 0.5)
            self.assertTrue(bool((status.sel({**head[0], 'lr': 1.0}) == 2).all()))  # the cell it avoided
            for p in points:
                s = status.sel(p).values
                self.assertFalse(bool(np.all(s == 2)), p)

    def test_one_valued_stop_gradient(self):
        # the crash of issue 12: stop_gradient = [true] made default_points ask for False
        path = make(self.dir / 'sg.h5', '--axis', 'stop_gradient=true')
        with cs.open_sweep(path) as ds:
            points = traces.default_points(ds.sweep)
            self.assertTrue(all(bool(p['stop_gradient']) for p in points))
            for p in points:
                ds.sweep.results['status'].sel(p)  # every point exists


class TheoryFigureTest(PlotTestCase):
    def test_window_rate_is_the_comparison(self):
        path = make(self.dir / 'th.h5', '--theory')
        _, figures = self.plot(path)
        fig = figures['th_theory.png']
        panel = fig['axes_titles'][0]
        self.assertIn('same window', panel)
        match = re.search(r'(\d+) of (\d+) within 5%', panel)
        self.assertIsNotNone(match, panel)
        with cs.open_sweep(path) as ds:
            res = ds.sweep.results
            rated = (res['theory_window_rate'] > 0) & (res['slow_rate'] > 0)
            at_zero = rated & (res['frustration'] == 0)  # no slow phase: left out, and said so
            ok = rated & ~at_zero
            ratio = (res['slow_rate'] / res['theory_window_rate']).where(ok)
            self.assertEqual(int(match.group(2)), int(ok.sum()))
            self.assertEqual(int(match.group(1)), int((abs(ratio - 1) <= 0.05).sum()))
            self.assertGreater(int(at_zero.sum()), 0)
            self.assertIn(f'({int(at_zero.sum())} at f = 0 left out: no slow phase)', panel)
        self.assertTrue(any('stopped at the threshold' in t for t in fig['legend']), fig['legend'])
        self.assertTrue(any('asymptote' in t for t in fig['legend']), fig['legend'])

    def test_ran_on_legend_and_no_window_rate(self):
        path = make(self.dir / 'ro.h5', '--theory', '--ran-on')
        _, figures = self.plot(path)
        self.assertTrue(any('went on' in t for t in figures['ro_theory.png']['legend']))
        self.assertTrue(any('went on' in t for t in figures['ro_traces.png']['legend']))
        import h5py
        with h5py.File(path, 'a') as f:  # a file from before theory_window_rate existed
            del f['results/theory_window_rate']
        _, figures = self.plot(path)
        panel = figures['ro_theory.png']['axes_titles'][0]
        self.assertIn('NOT comparable', panel)
        self.assertNotIn('identity', figures['ro_theory.png']['legend'])


def add_boundary(path, axis, quantity, estimate_of):
    """A /boundaries/<axis> group as `collapse-sweep refine` writes it (src/storage/boundary_writer.cpp)."""
    import h5py
    with h5py.File(path, 'a') as f:
        status = f['results/status']
        dims = [d[0].name.rsplit('/', 1)[-1] for d in status.dims][:-1]
        others = [d for d in dims if d != axis]
        g = f.require_group('boundaries').create_group(axis)
        scales = []
        for name in others:
            s = g.create_dataset(name, data=f['results/' + name][()])
            s.make_scale(name)
            s.attrs['log_spaced'] = f['results/' + name].attrs['log_spaced']
            scales.append(s)
        shape = tuple(len(s) for s in scales)
        grids = np.meshgrid(*[s[()] for s in scales], indexing='ij')
        values = {'estimate': estimate_of(dict(zip(others, grids))), 'standard_error': np.full(shape, 0.01)}
        for name, data in values.items():
            ds = g.create_dataset(name, data=np.broadcast_to(data, shape).astype(float))
            for i, scale in enumerate(scales):
                ds.dims[i].attach_scale(scale)
        g.attrs.update(axis=axis, quantity=quantity, level=0.5)


class BoundaryTest(PlotTestCase):
    def test_boundaries_labelled_by_axis_and_quantity(self):
        path = make(self.dir / 'b.h5')
        add_boundary(path, 'frustration', 'collapsed_fraction', lambda c: 0.15 + 0.0 * c['lr'])
        add_boundary(path, 'lr', 'diverged_fraction', lambda c: 0.5 + 0.5 * c['frustration'])
        _, figures = self.plot(path)
        legend = figures['b_phase.png']['legend']
        self.assertIn('refined along frustration: collapsed_fraction = 0.5 (± bootstrap SE)', legend)
        self.assertIn('refined along lr: diverged_fraction = 0.5 (± bootstrap SE)', legend)
        from collapse_sweep.plots import theory
        self.assertNotEqual(theory.BOUNDARY_COLOURS[('frustration', 'collapsed_fraction')],
                            theory.BOUNDARY_COLOURS[('lr', 'diverged_fraction')])


class WorkedExampleTest(PlotTestCase):
    """The Python blocks of docs/analysis.md's "Worked example" run as written on a synthetic file."""

    def test_worked_example_runs(self):
        text = (ROOT / 'docs' / 'analysis.md').read_text()
        section = text.split('## Worked example', 1)[1].split('\n## ', 1)[0]
        blocks = re.findall(r'```python\n(.*?)```', section, re.S)
        self.assertGreaterEqual(len(blocks), 1)
        (self.dir / 'out').mkdir()
        make(self.dir / 'out' / 'q.h5', '--theory')
        code = '\n'.join(blocks)
        r = subprocess.run([sys.executable, '-c', code], cwd=self.dir, capture_output=True, text=True, timeout=300,
                           env={**os.environ, 'MPLBACKEND': 'Agg'})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        pngs = list((self.dir / 'out').glob('*.png'))
        self.assertTrue(pngs, 'the example draws a figure')
        for png in pngs:
            self.assertGreater(png.stat().st_size, 10_000, png)


if __name__ == '__main__':
    unittest.main(verbosity=2)
