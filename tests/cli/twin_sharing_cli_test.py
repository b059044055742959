#!/usr/bin/env python3
"""h = 0 stop-gradient twins are computed once (docs/cli.md): every way of
running a sweep gives the same data, dataset for dataset, as a run with
sharing off (COLLAPSE_SHARE_TWINS=0), and an all-h = 0 grid computes half
its cells.

usage: twin_sharing_cli_test.py COLLAPSE_SWEEP_BINARY
"""
import os
import shutil
import sys
import unittest

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'support'))
import fixtures  # noqa: E402
from fixtures import SharedScratchTest, mpirun, write_spec  # noqa: E402
from sweep_files import assert_same_data  # noqa: E402


def sharing(share):
    return {'COLLAPSE_SHARE_TWINS': '1' if share else '0'}


def run(*args, share=True):
    return fixtures.run(*args, env=sharing(share))


class TwinSharingTest(SharedScratchTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.spec = write_spec(cls.dir.name, 'spec.toml', max_steps=1500)
        cls.reference = os.path.join(cls.dir.name, 'unshared.h5')
        result = run('run', cls.spec, '-o', cls.reference, '--backend', 'cpu', share=False)
        assert result.returncode == 0, result.stderr
        assert 'computed for' not in result.stderr, result.stderr

    def test_plain_and_devices_runs_equal_the_unshared_one(self):
        for name, extra in (('plain', []), ('devices', ['--devices', '0,1']), ('batch3', ['--batch-size', '3'])):
            out = self.path(name + '.h5')
            result = run('run', self.spec, '-o', out, '--backend', 'cpu', *extra)
            self.assertEqual(result.returncode, 0, result.stderr)
            # 96 cells, 48 at h = 0: 24 of them are twins of the other 24.
            self.assertIn('72 trajectories computed for 96 cells', result.stderr)
            assert_same_data(self, out, self.reference)

    def test_an_all_plain_grid_computes_half_its_cells(self):
        out = self.path('plain-grid.h5')
        result = run('run', self.spec, '-o', out, '--backend', 'cpu', '--set', 'grid.head_dim=0')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('24 trajectories computed for 48 cells', result.stderr)
        reference = self.path('plain-grid-unshared.h5')
        self.assertEqual(run('run', self.spec, '-o', reference, '--backend', 'cpu', '--quiet',
                             '--set', 'grid.head_dim=0', share=False).returncode, 0)
        assert_same_data(self, out, reference)
        with h5py.File(out, 'r') as f:  # and the twins really are equal
            loss = f['traces/loss'][()]
            self.assertTrue(np.array_equal(loss[..., 0, :, :], loss[..., 1, :, :], equal_nan=True))

    def test_shards_merged_equal_the_unshared_run(self):
        shards = self.run_shards(self.spec, 3, '--backend', 'cpu', env=sharing(True))
        merged = self.path('merged.h5')
        self.assertEqual(run('merge', merged, *shards).returncode, 0)
        assert_same_data(self, merged, self.reference)

    def test_resume_with_one_twin_missing_equals_the_unshared_run(self):
        out = self.path('resumed.h5')
        shutil.copy(self.reference, out)
        with h5py.File(out, 'r+') as f:
            status = f['results/status']
            # stop_gradient is the last grid axis: twins are [..., 0, s] and [..., 1, s].
            status[0, 0, 0, 1, :] = -1     # one twin missing
            status[1, 0, 1, :, :] = -1     # both twins missing (8 cells, 4 computed)
            status[2, 1, 0, 0, 2] = -1     # a head trajectory
        result = run('run', self.spec, '-o', out, '--resume', '--backend', 'cpu')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('9 trajectories computed for 13 cells', result.stderr)
        assert_same_data(self, out, self.reference)

    def test_refine_boundaries_equal_the_unshared_ones(self):
        files = {}
        for share in (False, True):
            out = self.path(f'refine-{share}.h5')
            shutil.copy(self.reference, out)
            result = run('refine', out, '--axis', 'frustration', '--tol', '0.02', '--backend', 'cpu', '--quiet',
                         share=share)
            self.assertEqual(result.returncode, 0, result.stderr)
            files[share] = out
        with h5py.File(files[False], 'r') as a, h5py.File(files[True], 'r') as b:
            names = []
            a['boundaries'].visit(names.append)
            self.assertTrue(any(isinstance(a['boundaries'][n], h5py.Dataset) for n in names))
            for name in names:
                if isinstance(a['boundaries'][name], h5py.Dataset):
                    self.assertTrue(np.array_equal(a['boundaries'][name][()], b['boundaries'][name][()],
                                                   equal_nan=a['boundaries'][name].dtype.kind == 'f'), name)

    def test_mpi_equals_the_unshared_run(self):
        if shutil.which('mpirun') is None:
            self.skipTest('no mpirun')
        out = self.path('mpi.h5')
        result = mpirun(2, 'run', self.spec, '-o', out, '--backend', 'cpu', '--threads', '1', '--quiet')
        if result.returncode != 0 and 'without MPI' in result.stderr:
            self.skipTest('built without MPI')
        self.assertEqual(result.returncode, 0, result.stderr)
        assert_same_data(self, out, self.reference)

    def test_a_bad_switch_value_is_named(self):
        result = fixtures.run('run', self.spec, '-o', self.path('bad.h5'), env={'COLLAPSE_SHARE_TWINS': 'yes'})
        self.assertNotEqual(result.returncode, 0)
        self.assertIn('COLLAPSE_SHARE_TWINS', result.stderr)
        self.assertFalse(os.path.exists(self.path('bad.h5')))


if __name__ == '__main__':
    fixtures.BINARY = sys.argv[1]
    unittest.main(argv=sys.argv[:1], verbosity=2)
