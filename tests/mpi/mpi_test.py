#!/usr/bin/env python3
"""MPI mode and --devices end to end (docs/scaling.md): `mpirun -n 2|3` gives
the single-process result bit for bit, a SIGKILLed rank loses nothing after
--resume, resume with another rank count is refused, and several CPU
backends in one process (--devices) match one backend.

usage: mpi_test.py COLLAPSE_SWEEP_BINARY
Exit 0 when every test passes, 1 otherwise, 77 without mpirun.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'support'))
import fixtures  # noqa: E402
from fixtures import MPI_ENV, ScratchTest, mpirun, mpirun_command, run  # noqa: E402
from sweep_files import assert_same_data, datasets  # noqa: E402


def finished_count(path):
    try:
        with h5py.File(path, 'r', swmr=True) as f:
            return int((f['results/status'][()] >= 0).sum())
    except (OSError, KeyError):
        return 0


class MpiTest(ScratchTest):
    def spec(self, name='spec.toml', **fields):
        return self.write_spec(name, **fields)

    def single(self, spec, name='single.h5'):
        out = self.path(name)
        result = run('run', spec, '-o', out, '--backend', 'cpu', '--threads', '1', '--quiet')
        self.assertEqual(result.returncode, 0, result.stderr)
        return out

    def assert_same_data(self, a, b):
        assert_same_data(self, a, b)

    def test_ranks_give_the_single_process_result_bit_for_bit(self):
        spec = self.spec()
        reference = self.single(spec)
        for ranks in (2, 3):
            out = self.path(f'mpi{ranks}.h5')
            result = mpirun(ranks, 'run', spec, '-o', out, '--backend', 'cpu', '--threads', '1', '--batch-size', '5')
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assert_same_data(out, reference)
            owned = [finished_count(self.path(f'mpi{ranks}.rank-{r}-of-{ranks}.h5')) for r in range(ranks)]
            self.assertEqual(sum(owned), 96, owned)  # each trajectory finished in exactly one rank file
            info = run('info', out)
            self.assertEqual(info.returncode, 0, info.stderr)

    def test_existing_output_is_not_clobbered_and_one_rank_runs_plainly(self):
        spec = self.spec()
        out = self.path('out.h5')
        self.assertEqual(mpirun(2, 'run', spec, '-o', out, '--backend', 'cpu', '--threads', '1').returncode, 0)
        again = mpirun(2, 'run', spec, '-o', out, '--backend', 'cpu', '--threads', '1')
        self.assertEqual(again.returncode, 2, again.stderr)
        self.assertIn('exists', again.stderr)
        single = self.path('one.h5')
        self.assertEqual(mpirun(1, 'run', spec, '-o', single, '--backend', 'cpu', '--quiet').returncode, 0)
        self.assertFalse(os.path.exists(self.path('one.rank-0-of-1.h5')))
        self.assert_same_data(single, out)

    def test_resume_with_another_rank_count_is_refused(self):
        spec = self.spec()
        out = self.path('out.h5')
        self.assertEqual(mpirun(2, 'run', spec, '-o', out, '--backend', 'cpu', '--threads', '1').returncode, 0)
        result = mpirun(3, 'run', spec, '-o', out, '--backend', 'cpu', '--threads', '1', '--resume')
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn('mpirun -n 2', result.stderr)

    def test_killed_rank_loses_nothing_after_resume(self):
        spec = self.spec(max_steps=60000, stop_on_collapse='false')
        reference = self.single(spec)
        out = self.path('killed.h5')
        launcher = subprocess.Popen(
            mpirun_command(2, 'run', spec, '-o', out, '--backend', 'cpu', '--threads', '1', '--batch-size', '2',
                           '--quiet'),
            env={**os.environ, **MPI_ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        victim_file = self.path('killed.rank-1-of-2.h5')
        deadline = time.time() + 60
        while finished_count(victim_file) < 4 and time.time() < deadline and launcher.poll() is None:
            time.sleep(0.05)
        victim = rank_process(launcher.pid, rank=1)
        self.assertIsNotNone(victim, 'rank 1 not found among the launcher\'s children')
        os.kill(victim, signal.SIGKILL)
        _, stderr = launcher.communicate(timeout=120)
        self.assertNotEqual(launcher.returncode, 0, 'mpirun finished despite a killed rank: nothing tested')
        finished = sum(finished_count(self.path(f'killed.rank-{r}-of-2.h5')) for r in range(2))
        self.assertLess(finished, 96, 'every trajectory finished before the kill: nothing tested')
        self.assertGreater(finished, 0)
        result = mpirun(2, 'run', spec, '-o', out, '--backend', 'cpu', '--threads', '1', '--resume', '--batch-size',
                        '5')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(f'{96 - finished} trajectories to run', result.stderr)
        self.assert_same_data(out, reference)

    # Issue 14: the memory check of a plain run (docs/cli.md, "Limits") did
    # not run in MPI mode; each rank created its file, then died of bad_alloc.
    def assert_refused_on_every_rank_without_files(self, result, *parts):
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertTrue(result.stderr.startswith('error: '), result.stderr)
        for part in parts:
            self.assertIn(part, result.stderr)
        self.assertNotIn('Traceback', result.stderr)
        self.assertEqual(sorted(f for f in os.listdir(self.dir.name) if not f.endswith('.toml')), [])

    def test_state_larger_than_memory_is_refused_before_any_rank_file(self):
        spec = self.path('huge.toml')
        with open(spec, 'w') as f:
            f.write('[model]\nclasses = 32768\nsamples_per_class = 65535\ndim = 128\n')
        result = mpirun(2, 'run', spec, '-o', self.path('out.h5'), '--backend', 'cpu', '--threads', '1')
        self.assert_refused_on_every_rank_without_files(
            result, 'not enough host memory', 'is available', 'model.classes = 32768',
            'model.samples_per_class = 65535', 'model.dim = 128', 'One trajectory needs')

    def test_batch_too_large_for_memory_is_refused_before_any_rank_file(self):
        spec = self.path('traces.toml')
        with open(spec, 'w') as f:
            f.write('[integrator]\nmax_steps = 10000000\n[output]\nrecord_points = 1000000\n'
                    '[grid]\nseeds = 1000000\n')
        result = mpirun(2, 'run', spec, '-o', self.path('out.h5'), '--backend', 'cpu', '--threads', '1',
                        '--batch-size', '1000000')
        self.assert_refused_on_every_rank_without_files(
            result, 'not enough host memory', 'output buffers for batches of 1000000', 'output.record_points',
            'Use --batch-size ')

    def test_devices_with_cpu_backends_match_one_backend(self):
        spec = self.spec()
        reference = self.single(spec)
        out = self.path('devices.h5')
        result = run('run', spec, '-o', out, '--backend', 'cpu', '--devices', '0,1,2', '--threads', '1',
                     '--batch-size', '3', '--quiet')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assert_same_data(out, reference)
        self.assertEqual(run('run', spec, '-o', self.path('x.h5'), '--backend', 'cpu', '--devices', '0,0').returncode,
                         2)
        self.assertEqual(run('run', spec, '-o', self.path('x.h5'), '--backend', 'cpu', '--devices', 'a').returncode, 2)


def rank_process(launcher_pid, rank):
    """The pid of MPI rank `rank` under `launcher_pid`, from /proc environments."""
    pending = [launcher_pid]
    while pending:
        pid = pending.pop()
        try:
            with open(f'/proc/{pid}/task/{pid}/children') as f:
                children = [int(c) for c in f.read().split()]
        except OSError:
            continue
        for child in children:
            try:
                with open(f'/proc/{child}/environ', 'rb') as f:
                    env = dict(item.split(b'=', 1) for item in f.read().split(b'\0') if b'=' in item)
            except OSError:
                continue
            if env.get(b'OMPI_COMM_WORLD_RANK') == str(rank).encode():
                return child
            pending.append(child)
    return None


if __name__ == '__main__':
    fixtures.BINARY = os.path.abspath(sys.argv.pop(1))
    if shutil.which('mpirun') is None:
        print('no mpirun: skipped')
        sys.exit(77)
    program = unittest.main(exit=False, verbosity=2)
    sys.exit(0 if program.result.wasSuccessful() else 1)
