#!/usr/bin/env python3
"""Limits checked before anything is written, and errors that used to abort
(issue 14 items 2, 7 and 8): each case is a regression test of a reported
failure (bad_alloc abort, libgomp SIGSEGV, silent clamping, /dev/zero read
whole, std::terminate in a worker thread).

usage: limits_test.py COLLAPSE_SWEEP_BINARY
"""
import os
import resource
import signal
import subprocess
import sys
import time
import unittest

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'support'))
import fixtures  # noqa: E402
from fixtures import ScratchTest, run  # noqa: E402

TINY = """
[grid]
seeds = 2
[integrator]
max_steps = 10
"""

# N * d = 2^31 * 128: a 2 TiB state that no machine holds.
HUGE = """
[model]
classes = 32768
samples_per_class = 65535
dim = 128
"""


class LimitsTest(ScratchTest):
    def assert_refused_without_files(self, result, *parts):
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertTrue(result.stderr.startswith('error: '), result.stderr)
        for part in parts:
            self.assertIn(part, result.stderr)
        self.assertEqual(sorted(f for f in os.listdir(self.dir.name) if not f.endswith('.toml')), [])

    # The classes=1000, samples_per_class=100000, dim=64 left a 40 KB
    # file and exit 134; this one is larger than any machine.
    def test_state_larger_than_memory_is_refused_before_any_file(self):
        spec = self.write('huge.toml', HUGE)
        result = run('run', spec, '-o', self.path('out.h5'), '--backend', 'cpu', '-q')
        self.assert_refused_without_files(result, 'not enough host memory', 'is available', 'model.classes = 32768',
                                          'model.samples_per_class = 65535', 'model.dim = 128',
                                          'One trajectory needs')
        validate = run('validate', spec)
        self.assertEqual(validate.returncode, 2, validate.stderr)
        self.assertIn('not enough host memory', validate.stderr)

    # classes = 2, samples_per_class = 1073741823 was std::terminate (exit 134).
    def test_largest_sample_count_is_refused_not_aborted(self):
        spec = self.write('n.toml', '[model]\nclasses = 2\nsamples_per_class = 1073741823\n')
        result = run('run', spec, '-o', self.path('out.h5'), '--backend', 'cpu', '-q')
        self.assert_refused_without_files(result, 'not enough host memory', 'model.samples_per_class = 1073741823')

    def test_validate_reports_the_working_set(self):
        result = run('validate', self.write('tiny.toml', TINY))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('per trajectory in flight (state ', result.stdout)
        self.assertIn('available (', result.stdout)

    # A batch whose output buffers do not fit: an explicit --batch-size is an
    # error that says what fits.
    def test_batch_too_large_for_memory_names_a_size_that_fits(self):
        spec = self.write('traces.toml', '[integrator]\nmax_steps = 10000000\n[output]\nrecord_points = 1000000\n'
                                         '[grid]\nseeds = 1000000\n')
        result = run('run', spec, '-o', self.path('out.h5'), '--backend', 'cpu', '--threads', '1',
                     '--batch-size', '1000000', '-q')
        self.assert_refused_without_files(result, 'not enough host memory', 'output buffers for batches of 1000000',
                                          'output.record_points', 'Use --batch-size ')

    # --threads 1000000 was a SIGSEGV in libgomp, after the file was made.
    def test_thread_count_is_bounded(self):
        spec = self.write('tiny.toml', TINY)
        result = run('run', spec, '-o', self.path('out.h5'), '--threads', '1000000')
        self.assert_refused_without_files(result, "--threads: value '1000000' is not an integer from 0 to")
        refine = run('refine', self.path('none.h5'), '--axis', 'lr', '--threads', '1000000')
        self.assertEqual(refine.returncode, 2)
        self.assertIn('--threads', refine.stderr)

    # 99999999999999999999999 was clamped to 2^63-1 without a word.
    def test_batch_size_out_of_range_is_an_error(self):
        spec = self.write('tiny.toml', TINY)
        for value in ('99999999999999999999999', '1e20', '0', '-3', '2.5'):
            result = run('run', spec, '-o', self.path('out.h5'), '--batch-size', value)
            self.assert_refused_without_files(result, "--batch-size: value '%s' is not an integer from 1 to "
                                                      "9223372036854775807" % value)

    # `validate /dev/zero` read 2.1 GB before it failed; a FIFO would block.
    def test_special_files_are_refused_at_once(self):
        fifo = self.path('pipe.toml')
        os.mkfifo(fifo)
        for path, kind in (('/dev/zero', 'a character device'), (fifo, 'a FIFO'), (self.dir.name, 'a directory')):
            started = time.monotonic()
            result = run('validate', path, timeout=30)
            self.assertLess(time.monotonic() - started, 5)
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertIn("cannot read sweep file '%s': %s" % (path, kind), result.stderr)

    def test_grid_too_large_for_its_bookkeeping_is_refused_at_once(self):
        spec = self.write('seeds.toml', '[grid]\nseeds = 1000000000000\n')
        started = time.monotonic()
        result = run('run', spec, '-o', self.path('out.h5'), '-q', timeout=60)
        self.assertLess(time.monotonic() - started, 5)
        self.assert_refused_without_files(result, 'grid.seeds: value 1000000000000 outside [1, 1000000000]')

    # A grid of 7 x 10^7 seeds (issue 14): its file appears at once (the seed
    # coordinate took 24-79 s to compress at 10^8), starts at a few MB and
    # grows with the batches written, not by the grid's chunk index (~55 MB
    # with HDF5's fixed-array index); `info` shows the seed range exactly (it
    # printed "..., 7e+07" after reading every seed value); `--resume` over
    # >= 2^26 trajectories says that it reads the status first.
    def test_a_big_seed_grid_starts_small_and_says_what_takes_time(self):
        spec = self.write('big.toml', '[grid]\nseeds = 70000000\n[integrator]\nmax_steps = 10\n'
                                      '[output]\nrecord_points = 4\nsave_initial = false\n')
        out = self.path('big.h5')
        writer = subprocess.Popen([fixtures.BINARY, 'run', spec, '-o', out, '--threads', '1', '-q', '--backend', 'cpu'])
        deadline = time.monotonic() + 120
        while not os.path.exists(out) and writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        created = os.path.getsize(out)
        while os.path.getsize(out) == created and writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        writer.send_signal(signal.SIGINT)
        self.assertEqual(writer.wait(timeout=60), 3)
        self.assertLess(created, 8_000_000)  # three copies of the seed coordinate: 5.3 MB
        with h5py.File(out, 'r') as f:
            self.assertEqual(f['results/status'].shape[-1], 70000000)
            finished = int((f['results/status'][..., :1_000_000] >= 0).sum())
            for group in ('results', 'traces', 'final'):
                self.assertEqual(f[group + '/seed'][-3:].tolist(), [69999997, 69999998, 69999999])
        self.assertGreater(finished, 0)
        # ~1 KB of float64 per trajectory before compression (measured 400 B
        # stored); the fixed-array index alone added ~55 MB with the first batch.
        self.assertLess(os.path.getsize(out) - created, 1_000_000 + 800 * finished,
                        '%d B at creation, %d B after %d trajectories' % (created, os.path.getsize(out), finished))
        info = run('info', out, timeout=120)
        self.assertEqual(info.returncode, 0, info.stderr)
        self.assertRegex(info.stdout, r'seed\s+70000000\s+\[0, 1, 2, \.\.\., 69999999\]')

        resumed = subprocess.Popen([fixtures.BINARY, 'run', spec, '-o', out, '--threads', '1', '--resume', '--backend', 'cpu'],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        lines = []
        for line in resumed.stderr:
            lines.append(line)
            if 'trajectories to run' in line:
                break
        resumed.send_signal(signal.SIGINT)
        lines += resumed.communicate(timeout=60)[1].splitlines(keepends=True)
        self.assertEqual(resumed.returncode, 3, ''.join(lines))
        notice = [i for i, line in enumerate(lines) if line.startswith(
            'collapse-sweep: reading the status of 70000000 trajectories in %s to find those not run yet' % out)]
        started = [i for i, line in enumerate(lines) if 'trajectories to run' in line]
        self.assertTrue(notice and started and notice[0] < started[0], ''.join(lines))

    # An allocation that fails mid-run (here: an address-space cap the
    # memory check cannot see) is exit 1 with what is safe and the exact
    # command that continues, --set included; following it completes the file.
    def test_allocation_failure_mid_run_is_exit_1_with_a_resume_hint(self):
        spec = self.write('mid.toml', '[model]\nclasses = 2\nsamples_per_class = 2097152\ndim = 1\n'
                                      '[integrator]\nmax_steps = 5\n[grid]\nseeds = 2\n')
        out = self.path('mid.h5')
        cap = 200 << 20

        def limit_address_space():
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

        result = run('run', spec, '-o', out, '--backend', 'cpu', '--threads', '1', '-q',
                     '--set', 'integrator.max_steps=1', preexec_fn=limit_address_space)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertNotIn('terminate called', result.stderr)
        hint = 'continue with: collapse-sweep run %s -o %s --resume --set integrator.max_steps=1' % (spec, out)
        self.assertIn('error: out of memory (std::bad_alloc); 0 of 2 trajectories are safe in %s' % out,
                      result.stderr)
        self.assertIn(hint, result.stderr)
        command = result.stderr.split('continue with: ')[1].split()
        self.assertEqual(command[0], 'collapse-sweep')
        resumed = run(*command[1:], '--backend', 'cpu', '--threads', '1', '-q')
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        with h5py.File(out, 'r') as f:
            self.assertTrue(np.all(f['results/status'][()] >= 0))


if __name__ == '__main__':
    fixtures.BINARY = sys.argv[1]
    unittest.main(argv=sys.argv[:1], verbosity=2)
