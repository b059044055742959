#!/usr/bin/env python3
"""End-to-end tests of `collapse-sweep refine`: exit codes and messages for
bad options and files, the stored /boundaries group (xarray opens it with
named coordinates), replacement on a re-run, and the theory columns.

usage: refine_cli_test.py COLLAPSE_SWEEP_BINARY CHECK_FORMAT_PY
"""
import os
import subprocess
import sys
import unittest

import h5py
import numpy as np
import xarray as xr

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'support'))
import fixtures  # noqa: E402
from fixtures import SharedScratchTest, run, write_text  # noqa: E402

SPEC = """
[model]
classes = 3
samples_per_class = 6
dim = 4

[integrator]
max_steps = 2000

[grid]
frustration = [0.0, 0.3, 0.6]
head_dim = [0, 3]
lr = [0.2, 0.5]
seeds = 3
seed = 11

[output]
record_points = 16
"""


class RefineCliTest(SharedScratchTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.spec = write_text(cls.dir.name, 'spec.toml', SPEC)
        cls.out = os.path.join(cls.dir.name, 'out.h5')
        done = run('run', cls.spec, '-o', cls.out, '--backend', 'cpu', '--threads', '2', '--quiet')
        assert done.returncode == 0, done.stderr

    def refine(self, *args):
        return run('refine', self.out, '--backend', 'cpu', '--threads', '2', '--quiet', *args)

    def assert_usage_error(self, result, *words):
        self.assertEqual(result.returncode, 2, result.stderr)
        for word in words:
            self.assertIn(word, result.stderr)

    def test_bad_options_exit_2(self):
        self.assert_usage_error(self.refine('--axis', 'head_dim'), '--axis', 'frustration or lr')
        self.assert_usage_error(self.refine('--axis', 'lr', '--quantity', 'loss'), '--quantity', 'diverged_fraction')
        self.assert_usage_error(self.refine('--axis', 'lr', '--level', '1.5'), '--level')
        self.assert_usage_error(self.refine('--axis', 'lr', '--level', '0'), '--level')
        self.assert_usage_error(self.refine('--axis', 'lr', '--tol', '-1'), '--tol')
        self.assert_usage_error(run('refine', self.out), '--axis')  # required
        missing = self.path('missing.h5')
        self.assert_usage_error(run('refine', missing, '--axis', 'lr'), missing, 'no such file')

    def test_single_value_axis_is_a_usage_error(self):
        spec = self.write('one_lr.toml', SPEC.replace('lr = [0.2, 0.5]', 'lr = 0.2'))
        out = self.path('one_lr.h5')
        self.assertEqual(run('run', spec, '-o', out, '--backend', 'cpu', '--quiet').returncode, 0)
        result = run('refine', out, '--axis', 'lr', '--backend', 'cpu', '--quiet')
        self.assert_usage_error(result, 'at least 2')

    def test_not_an_output_file_exit_1(self):
        junk = self.write('junk.h5', 'not hdf5')
        result = run('refine', junk, '--axis', 'lr')
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertTrue(result.stderr.startswith('error: '), result.stderr)

    def test_unclosed_file_exit_1(self):
        # A copy whose superblock still says "open for SWMR writing", as a killed writer leaves it.
        killed = self.path('killed.h5')
        with open(self.out, 'rb') as src, open(killed, 'wb') as dst:
            dst.write(src.read())
        code = ("import h5py,os\nf=h5py.File(%r,'r+',libver='latest')\nf.swmr_mode=True\nf.flush()\nos._exit(0)\n" % killed)
        subprocess.run([sys.executable, '-c', code], check=True)
        result = run('refine', killed, '--axis', 'frustration', '--backend', 'cpu', '--quiet')
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn('resume', result.stderr)

    def test_boundaries_group_opens_in_xarray_and_is_replaced(self):
        for tol, quantity in (('0.01', 'collapsed_fraction'), ('0.05', 'collapsed_fraction')):
            result = self.refine('--axis', 'frustration', '--tol', tol, '--quantity', quantity)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn('/boundaries/frustration', result.stdout)
        ds = xr.open_dataset(self.out, group='boundaries/frustration', engine='h5netcdf')
        self.assertEqual(list(ds.estimate.dims), ['head_dim', 'lr'])
        self.assertEqual(list(ds.probe_value.dims), ['head_dim', 'lr', 'probe'])
        self.assertEqual(list(ds.head_dim.values), [0, 3])
        self.assertEqual(float(ds.attrs['tol']), 0.05)  # the second run replaced the first
        est, low, high = ds.estimate.values, ds.bracket_low.values, ds.bracket_high.values
        found = np.isfinite(est)
        self.assertTrue(found.any())
        self.assertTrue(np.all((low[found] <= est[found]) & (est[found] <= high[found])))
        self.assertTrue(np.all(ds.probes_run.values[~np.isfinite(low)] == 0))
        ds.close()
        result = self.refine('--axis', 'lr', '--quantity', 'diverged_fraction', '--tol', '0.01')
        self.assertEqual(result.returncode, 0, result.stderr)
        with h5py.File(self.out, 'r') as f:
            self.assertEqual(sorted(f['boundaries']), ['frustration', 'lr'])
        self.assert_conforms(self.out)

    def copy_of_output(self, name):
        path = self.path(name)
        with open(self.out, 'rb') as src, open(path, 'wb') as dst:
            dst.write(src.read())
        return path

    def test_non_monotone_quantity_warns_and_records_every_crossing(self):
        # Statuses edited so that at head_dim = 0, lr = 0.2 the collapsed fraction
        # along frustration is 1, 0, 1: two crossings.
        edited = self.copy_of_output('non_monotone.h5')
        with h5py.File(edited, 'r+') as f:
            status = f['results/status']
            status[0, 0, 0, :], status[1, 0, 0, :], status[2, 0, 0, :] = 1, 0, 1
        result = run('refine', edited, '--axis', 'frustration', '--backend', 'cpu', '--threads', '2', '--quiet')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('warning: collapsed_fraction crosses 0.5 more than once along frustration', result.stderr)
        self.assertIn('head_dim=0 lr=0.2: crossings in [', result.stderr)
        self.assertIn('(refined), [0.3, 0.6]', result.stderr)
        ds = xr.open_dataset(edited, group='boundaries/frustration', engine='h5netcdf')
        self.assertEqual(list(ds.crossing_low.dims), ['head_dim', 'lr', 'crossing'])
        picked = ds.sel(head_dim=0, lr=0.2)
        self.assertEqual(int(picked.crossings), 2)
        self.assertEqual(float(picked.crossing_low[0]), float(picked.bracket_low))
        self.assertEqual(float(picked.crossing_high[0]), float(picked.bracket_high))
        self.assertEqual((float(picked.crossing_low[1]), float(picked.crossing_high[1])), (0.3, 0.6))
        self.assertLessEqual(float(picked.estimate), 0.3)  # the first crossing, in axis order
        self.assertEqual(int(ds.attrs['non_monotone_boundaries']), int((ds.crossings > 1).sum()))
        self.assertIn('first crossing', ds.attrs['refined_crossing'])
        ds.close()
        quiet = run('refine', self.out, '--axis', 'frustration', '--backend', 'cpu', '--threads', '2', '--quiet')
        self.assertNotIn('warning', quiet.stderr)  # the unedited sweep is monotone

    def test_diverged_fraction_runs_past_collapse(self):
        out = self.copy_of_output('diverged.h5')
        result = run('refine', out, '--axis', 'lr', '--quantity', 'diverged_fraction', '--tol', '0.05',
                     '--backend', 'cpu', '--threads', '2', '--quiet')
        self.assertEqual(result.returncode, 0, result.stderr)
        with h5py.File(out, 'r') as f:
            attrs = f['boundaries/lr'].attrs
            collapsed = int((f['results/status'][()] == 1).sum())
            self.assertEqual(attrs['probe_stop_on_collapse'], 0)
            self.assertEqual(attrs['grid_trajectories_rerun'], collapsed)  # the sweep stopped at collapse
            self.assertIn('past collapse', attrs['stop_on_collapse_note'].decode()
                          if isinstance(attrs['stop_on_collapse_note'], bytes) else attrs['stop_on_collapse_note'])
        self.assertIn(f'{collapsed} collapsed grid trajectories re-run past collapse', result.stdout)
        loud = run('refine', out, '--axis', 'lr', '--quantity', 'diverged_fraction', '--tol', '0.05',
                   '--backend', 'cpu', '--threads', '2')
        self.assertEqual(loud.returncode, 0, loud.stderr)
        self.assertTrue(loud.stderr.startswith(f're-running {collapsed} collapsed grid trajectories past collapse'),
                        loud.stderr)  # announced before the work, then the rounds
        self.assertIn('round 1:', loud.stderr)

    def test_theory_columns(self):
        res = xr.open_dataset(self.out, group='results', engine='h5netcdf')
        for name in ('theory_slow_rate', 'critical_lr', 'selfconsistency_residual'):
            self.assertEqual(res[name].dims, res.status.dims)
            self.assertEqual(res[name].dtype, np.float64)
        plain = res.sel(head_dim=0)
        self.assertTrue(np.isfinite(plain.critical_lr.values).all())
        self.assertTrue(np.isnan(res.sel(head_dim=3).critical_lr.values).all())
        self.assertTrue(np.all(plain.theory_slow_rate.sel(frustration=0.0).values == 0))
        self.assertTrue(np.isnan(res.selfconsistency_residual.values).all())  # no stop-gradient here
        res.close()


if __name__ == '__main__':
    fixtures.BINARY, fixtures.CHECK_FORMAT = sys.argv[1], sys.argv[2]
    del sys.argv[1:3]
    unittest.main(verbosity=2)
