#!/usr/bin/env python3
"""End-to-end tests of the collapse-sweep command: exit codes, no clobbering,
interruption and resume, SIGKILL crash consistency, shards and merge.

usage: cli_test.py COLLAPSE_SWEEP_BINARY CHECK_FORMAT_PY
Exit 0 when every test passes, 1 otherwise.
"""
import os
import random
import signal
import subprocess
import sys
import time
import unittest

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'support'))
import fixtures  # noqa: E402
from fixtures import ScratchTest, run, start  # noqa: E402
from sweep_files import assert_same_data, datasets  # noqa: E402


class CliTest(ScratchTest):
    def setUp(self):
        super().setUp()
        self.spec = self.write_spec('spec.toml', max_steps=3000, stop_on_collapse='true')

    def reference(self, spec):
        out = self.path('reference.h5')
        if not os.path.exists(out):
            result = run('run', spec, '-o', out, '--backend', 'cpu', '--quiet')
            self.assertEqual(result.returncode, 0, result.stderr)
        return out

    def test_version_and_usage(self):
        self.assertEqual(run('--version').returncode, 0)
        self.assertIn('collapse-sweep', run('--version').stdout)
        self.assertEqual(run().returncode, 2)
        self.assertEqual(run('frobnicate').returncode, 2)
        self.assertEqual(run('run', self.spec, '--backend', 'tpu').returncode, 2)
        self.assertEqual(run('run', self.spec, '--shard', '3/3', '-o', self.path('x.h5')).returncode, 2)
        self.assertFalse(os.path.exists(self.path('x.h5')))

    def test_bad_spec_writes_nothing(self):
        bad = self.path('bad.toml')
        with open(bad, 'w') as f:
            f.write('[grid]\nfrustration = [0.1, 1.5]\n')
        result = run('run', bad, '-o', self.path('bad.h5'))
        self.assertEqual(result.returncode, 2)
        self.assertIn('bad.toml:2', result.stderr)
        self.assertIn('frustration', result.stderr)
        self.assertFalse(os.path.exists(self.path('bad.h5')))
        result = run('run', self.spec, '--set', 'grid.lr=-1', '-o', self.path('bad.h5'))
        self.assertEqual(result.returncode, 2)
        self.assertFalse(os.path.exists(self.path('bad.h5')))
        self.assertNotEqual(run('info', self.path('missing.h5')).returncode, 0)

    def test_run_info_validate_and_format(self):
        out = self.reference(self.spec)
        self.assert_conforms(out)
        info = run('info', out)
        self.assertEqual(info.returncode, 0, info.stderr)
        self.assertIn('96 / 96', info.stdout)
        validate = run('validate', self.spec)
        self.assertEqual(validate.returncode, 0, validate.stderr)
        self.assertIn('96', validate.stdout)
        with h5py.File(out, 'r') as f:  # a cleanly closed file opens without swmr
            self.assertTrue((f['results/status'][()] >= 0).all())

    def test_theory_and_fit_window_columns(self):
        out = self.reference(self.spec)
        with h5py.File(out, 'r') as f:
            res, traces = f['results'], f['traces']
            for name in ('slow_rate_first_step', 'slow_rate_last_step', 'theory_window_rate'):
                self.assertIn('units', res[name].attrs, name)
                self.assertIn('long_name', res[name].attrs, name)
                self.assertIn('floor_ulps', res[name].attrs, name)
            self.assertIn('description', res['slow_rate_first_step'].attrs)
            exact = traces['theory_label_distance']
            self.assertEqual(exact.dtype, np.float64)
            self.assertEqual(exact.attrs['units'], '1')
            self.assertIn('long_name', exact.attrs)
            self.assertEqual(exact.dims[exact.ndim - 1][0].name, '/traces/step')
            exact = exact[()]
            head = f['results/head_dim'][()]  # axes: frustration, head_dim, lr, stop_gradient, seed
            plain, with_head = exact[:, head == 0], exact[:, head > 0]
            self.assertTrue(np.isfinite(plain).all())
            self.assertTrue(np.isnan(with_head).all())
            first, last = res['slow_rate_first_step'][()], res['slow_rate_last_step'][()]
            rate, window_rate = res['slow_rate'][()], res['theory_window_rate'][()]
            final = res['final_step'][()]
        fitted = np.isfinite(rate)
        self.assertTrue(fitted.any())
        self.assertTrue(((first >= 0) == fitted).all())
        self.assertTrue((2 * first[fitted] >= last[fitted]).all())
        self.assertTrue((last[fitted] <= final[fitted]).all())
        # Same window, same trajectory: the engine and the closed form agree.
        both = fitted[:, head == 0] & np.isfinite(window_rate[:, head == 0])
        self.assertTrue(both.any())
        measured, exact_rate = rate[:, head == 0][both], window_rate[:, head == 0][both]
        self.assertTrue(np.allclose(measured, exact_rate, rtol=1e-3, atol=1e-9), (measured, exact_rate))
        self.assertTrue(np.isnan(window_rate[:, head > 0]).all())

    def test_never_clobbers(self):
        out = self.reference(self.spec)
        with open(out, 'rb') as f:
            before = f.read()
        result = run('run', self.spec, '-o', out, '--quiet')
        self.assertEqual(result.returncode, 2)
        self.assertIn('--overwrite', result.stderr)
        with open(out, 'rb') as f:
            self.assertEqual(f.read(), before)
        self.assertEqual(run('run', self.spec, '-o', self.path('new.h5'), '--resume').returncode, 2)

    def test_resume_with_a_changed_spec_is_a_spec_error(self):
        # Regression: this exited 1 (runtime error); a spec problem is exit 2 (docs/cli.md).
        out = self.reference(self.spec)
        before = datasets(out)
        changed = self.write_spec('changed.toml', max_steps=2999, stop_on_collapse='true')
        for args in (('run', changed, '-o', out, '--resume', '--quiet'),
                     ('run', self.spec, '-o', out, '--resume', '--quiet', '--set', 'integrator.max_steps=2999')):
            result = run(*args)
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertIn('different spec', result.stderr)
            self.assertTrue(result.stderr.startswith('error: '), result.stderr)
        after = datasets(out)
        self.assertEqual(sorted(before), sorted(after))
        for name in before:
            self.assertTrue(np.array_equal(before[name], after[name], equal_nan=True), name)

    def test_sigint_then_resume_is_bit_identical(self):
        spec = self.write_spec('long.toml', max_steps=100000, stop_on_collapse='false')
        out = self.path('interrupted.h5')
        process = start('run', spec, '-o', out, '--threads', '1', '--batch-size', '4', stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
        self.assertEqual(process.returncode, 3, err)
        with h5py.File(out, 'r') as f:  # closed cleanly: opens without swmr
            status = f['results/status'][()]
        self.assertTrue((status == -1).any(), 'interrupted too late to test anything')
        result = run('run', spec, '-o', out, '--resume', '--quiet')
        self.assertEqual(result.returncode, 0, result.stderr)
        assert_same_data(self, out, self.reference(spec))

    def test_sigkill_leaves_finished_trajectories_intact(self):
        spec = self.write_spec('long.toml', max_steps=100000, stop_on_collapse='false')
        reference = datasets(self.reference(spec))
        rng = random.Random(5)
        for trial in range(3):
            out = self.path(f'killed{trial}.h5')
            process = start('run', spec, '-o', out, '--threads', '1', '--batch-size', '2', '--quiet')
            time.sleep(rng.uniform(0.2, 1.5))
            process.kill()
            process.wait()
            killed = datasets(out)
            done = killed['results/status'] >= 0
            self.assertTrue((~done).any(), 'killed after the run had finished: nothing tested')
            for name in ('results/final_loss', 'results/collapse_step', 'traces/label_distance', 'final/head'):
                self.assertTrue(np.array_equal(killed[name][done], reference[name][done], equal_nan=True), name)
            self.assertTrue((killed['results/status'][~done] == -1).all())
            result = run('run', spec, '-o', out, '--resume', '--quiet')
            self.assertEqual(result.returncode, 0, result.stderr)
            assert_same_data(self, out, self.path('reference.h5'))

    def test_shards_merge_to_the_single_run(self):
        shards = self.run_shards(self.spec, 3, '--batch-size', '5')
        merged = self.path('merged.h5')
        result = run('merge', merged, *shards)
        self.assertEqual(result.returncode, 0, result.stderr)
        assert_same_data(self, merged, self.reference(self.spec))
        self.assert_conforms(merged)

    def test_cuda_backend_without_gpu_is_a_clear_usage_error(self):
        if subprocess.run(['sh', '-c', 'command -v nvidia-smi && nvidia-smi -L'], capture_output=True).returncode == 0:
            self.skipTest('a GPU is present')
        result = run('run', self.spec, '--backend', 'cuda', '-o', self.path('gpu.h5'))
        self.assertEqual(result.returncode, 2)
        self.assertIn('CUDA', result.stderr)
        self.assertFalse(os.path.exists(self.path('gpu.h5')))
        auto = run('run', self.spec, '--backend', 'auto', '-o', self.path('auto.h5'))
        self.assertEqual(auto.returncode, 0, auto.stderr)
        self.assertIn('using the CPU backend', auto.stderr)


if __name__ == '__main__':
    fixtures.BINARY, fixtures.CHECK_FORMAT = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1], verbosity=2)
