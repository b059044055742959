#!/usr/bin/env python3
"""End-to-end tests of issue 14 (files every reader opens after a crash, disk
full, atomic writes and honoured locks, signals), through the command.

usage: crash_files_test.py COLLAPSE_SWEEP_BINARY
Test hooks used (test-only, docs/cli.md): COLLAPSE_TEST_PAUSE_<POINT>.
"""
import os
import random
import resource
import shlex
import shutil
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

BINARY = None


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def file_bytes(path):
    with open(path, 'rb') as f:
        return f.read()


def opens_plainly(path):
    try:
        with h5py.File(path, 'r') as f:
            f['results/status'][()]
        return True
    except OSError:
        return False


def opens_in_xarray(path):
    import xarray as xr
    try:
        with xr.open_dataset(path, group='results', engine='h5netcdf') as results:
            results.status.values
        return True
    except Exception:  # noqa: BLE001 - any failure to open counts
        return False


def opens_in_h5dump(path):
    return subprocess.run(['h5dump', '-H', path], capture_output=True).returncode == 0


def finished_count(path):
    with h5py.File(path, 'r', swmr=True) as f:
        return int((f['results/status'][()] >= 0).sum())


def userns_available():
    return subprocess.run(['unshare', '-r', '-m', 'true'], capture_output=True).returncode == 0


class CrashFilesTest(ScratchTest):
    def setUp(self):
        super().setUp()
        # A few seconds of work on one thread, in 24 batches of 8.
        self.spec = self.write_spec('long.toml', max_steps=6000, seeds=8, stop_on_collapse='false')

    def reference(self, spec=None, *extra):
        spec = spec or self.spec
        out = self.path('reference-' + os.path.basename(spec) + '.h5')
        if not os.path.exists(out):
            started = time.monotonic()
            result = run('run', spec, '-o', out, '--threads', '1', '--quiet', *extra)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.reference_seconds = time.monotonic() - started
        return out

    def run_args(self, out, *extra, batch=8):
        return ('run', self.spec, '-o', out, '--threads', '1', '--batch-size', str(batch), '--quiet', *extra)

    def kill_at_random_moments(self, name, trials, seed, batch, extra=(), resume_every=8):
        """Starts `run` `trials` times, SIGKILLs each at a random moment and
        checks every killed file: `info` opens it, every finished trajectory
        equals the reference, the rest have status -1, and every
        `resume_every`-th file resumes to the reference bit for bit. Returns
        how many files plain h5py, xarray and `h5dump -H` opened, and how many
        were left partly finished."""
        reference_path = self.reference()
        reference = datasets(reference_path)
        rng = random.Random(seed)
        counts = dict(plain=0, xarray=0, dump=0, partial=0)
        for trial in range(trials):
            out = self.path(f'{name}{trial}.h5')
            process = start(*self.run_args(out, *extra, batch=batch))
            self.assertTrue(wait_for(lambda: os.path.exists(out)), 'the run never created its file')
            time.sleep(rng.uniform(0.0, 0.9 * self.reference_seconds))
            process.kill()
            process.wait()
            counts['plain'] += opens_plainly(out)
            counts['xarray'] += opens_in_xarray(out)
            counts['dump'] += opens_in_h5dump(out)
            info = run('info', out)
            self.assertEqual(info.returncode, 0, f'trial {trial}: info cannot open the killed file: {info.stderr}')
            killed = datasets(out)
            done = killed['results/status'] >= 0
            counts['partial'] += bool(done.any() and not done.all())
            for dataset in killed:
                if killed[dataset].shape[:4] == done.shape:
                    self.assertTrue(np.array_equal(killed[dataset][done], reference[dataset][done], equal_nan=True),
                                    f'trial {trial}: {dataset} of a finished trajectory differs')
            self.assertTrue((killed['results/status'][~done] == -1).all())
            if trial % resume_every == 0:
                result = run(*self.run_args(out, '--resume', *extra))
                self.assertEqual(result.returncode, 0, result.stderr)
                assert_same_data(self, out, reference_path)
        print(f'\n[ kills ] {trials} kills, batches of {batch} {" ".join(extra)}: plain h5py opened '
              f'{counts["plain"]}, xarray {counts["xarray"]}, h5dump -H {counts["dump"]}, '
              f'{counts["partial"]} left partial results', file=sys.stderr)
        return counts

    # Item 1: every reader opens the file after a SIGKILL at a random moment.
    def test_random_kills_leave_files_every_reader_opens(self):
        # Batches of 64, the CPU default for one thread: 3 windows per run.
        trials = 40
        counts = self.kill_at_random_moments('killed', trials, seed=14, batch=64)
        self.assertGreaterEqual(counts['plain'], 0.95 * trials)
        self.assertGreaterEqual(counts['xarray'], 0.95 * trials)
        self.assertGreaterEqual(counts['dump'], 0.95 * trials)
        # The first of 3 batches ends at ~1/3 of the run and kills fall in
        # [0, 0.9] of it: ~63% land mid-run, 25 of 40 on average (sd 3). Half
        # (20) failed about one run in twenty, more under load; a quarter
        # still proves the kills hit running sweeps.
        self.assertGreaterEqual(counts['partial'], trials // 4, 'too few kills landed mid-run')

    # --write-interval: batches of 8 (24 per run) stored together at most
    # every 0.25 s. A kill loses at most that much finished work, never a
    # finished trajectory that is in the file; the file opens plainly (with a
    # window per batch of 8, 37-38 of 40 did on a loaded machine) and resumes
    # bit-identically.
    def test_random_kills_with_coalesced_windows(self):
        trials = 16
        counts = self.kill_at_random_moments('coalesced', trials, seed=15, batch=8,
                                             extra=('--write-interval', '0.25'), resume_every=4)
        self.assertGreaterEqual(counts['plain'], trials - 1)
        self.assertGreaterEqual(counts['partial'], trials // 4, 'too few kills landed mid-run')

    # Item 1: while a sweep runs, plain readers and `info` see the progress so far.
    def test_live_file_shows_progress(self):
        out = self.path('live.h5')
        process = start(*self.run_args(out))
        self.assertTrue(wait_for(lambda: os.path.exists(out)))
        self.assertTrue(wait_for(lambda: finished_count(out) > 0))
        seen = []
        while process.poll() is None:
            info = run('info', out)
            self.assertEqual(info.returncode, 0, info.stderr)
            with h5py.File(out, 'r', swmr=True) as f:  # a live view: swmr=True, as docs/format.md says
                seen.append(int((f['results/status'][()] >= 0).sum()))
            time.sleep(0.2)
        self.assertEqual(process.returncode, 0)
        self.assertEqual(seen, sorted(seen))
        self.assertTrue(opens_plainly(out))

    # Item 3: a file-size limit (and a real full disk) mid-run.
    def check_out_of_space(self, out, result, cause):
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertNotIn('creating-', result.stderr)
        self.assertNotIn('Segmentation', result.stderr)
        safe = finished_count(out)
        self.assertIn(f'{cause} writing {out} ({safe} of 192 trajectories are safe in the file; ', result.stderr)
        self.assertEqual(run('info', out).returncode, 0)

    def test_file_size_limit_is_a_clear_resumable_error(self):
        reference_path = self.reference()
        size = os.path.getsize(reference_path)
        out = self.path('limited.h5')

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # the tool must ignore it itself
            resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2))

        result = subprocess.run([BINARY, *self.run_args(out)], capture_output=True, text=True, preexec_fn=limit)
        self.check_out_of_space(out, result, 'file size limit reached')
        self.assertIn('raise the limit (ulimit -f) and run again with --resume)', result.stderr)
        resumed = run(*self.run_args(out, '--resume'))
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        assert_same_data(self, out, reference_path)

    def test_disk_full_is_a_clear_resumable_error(self):
        if not userns_available():
            self.skipTest('no unprivileged user namespaces to mount a small tmpfs')
        reference_path = self.reference()
        size = os.path.getsize(reference_path)
        mount = self.path('small')
        os.mkdir(mount)
        out = os.path.join(mount, 'out.h5')
        script = (f'mount -t tmpfs -o size={size // 2 // 1024}k none {shlex.quote(mount)} && '
                  f'{shlex.quote(BINARY)} {" ".join(map(shlex.quote, self.run_args(out)))}; rc=$?; '
                  f'cp {shlex.quote(out)} {shlex.quote(self.path("full.h5"))}; exit $rc')
        result = subprocess.run(['unshare', '-r', '-m', 'sh', '-c', script], capture_output=True, text=True)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn(f'disk full writing {out} (', result.stderr)
        self.assertIn('trajectories are safe in the file; free space and run again with --resume)', result.stderr)
        copy = self.path('full.h5')
        self.assertIn(f'({finished_count(copy)} of 192 trajectories are safe', result.stderr)
        resumed = run('run', self.spec, '-o', copy, '--threads', '1', '--quiet', '--resume')
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        assert_same_data(self, copy, reference_path)

    def test_read_only_filesystem_names_the_output(self):
        if not userns_available():
            self.skipTest('no unprivileged user namespaces to mount a read-only tmpfs')
        mount = self.path('ro')
        os.mkdir(mount)
        out = os.path.join(mount, 'out.h5')
        script = (f'mount -t tmpfs -o ro none {shlex.quote(mount)} && '
                  f'{shlex.quote(BINARY)} {" ".join(map(shlex.quote, self.run_args(out)))}')
        result = subprocess.run(['unshare', '-r', '-m', 'sh', '-c', script], capture_output=True, text=True)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn(f'cannot create {out}: Read-only file system', result.stderr)
        self.assertNotIn('creating-', result.stderr)

    # Item 6: SIGPIPE, SIGHUP, signals during set-up and the resume window.
    def test_closed_pipe_does_not_end_the_run(self):
        out = self.path('pipe.h5')
        process = start('run', self.spec, '-o', out, '--threads', '1', '--batch-size', '8', stderr=subprocess.PIPE)
        process.stderr.close()  # like `2>&1 | head -1` once head has exited
        self.assertEqual(process.wait(timeout=300), 0)
        assert_same_data(self, out, self.reference())
        self.assertTrue(opens_plainly(out))

    def test_sighup_is_handled_like_sigterm_and_the_hint_resumes(self):
        spec = self.spec
        out = self.path('hup.h5')
        override = 'collapse.threshold=0.05'
        process = start('run', spec, '-o', out, '--threads', '1', '--batch-size', '8', '--set', override,
                        stderr=subprocess.PIPE)
        self.assertTrue(wait_for(lambda: os.path.exists(out) and finished_count(out) > 0))
        process.send_signal(signal.SIGHUP)
        _, err = process.communicate(timeout=120)
        self.assertEqual(process.returncode, 3, err)
        self.assertTrue(opens_plainly(out))
        hint = err.split('continue with: ')[1].strip()
        self.assertIn(f'--set {override}', hint)
        words = shlex.split(hint)
        self.assertEqual(words[0], 'collapse-sweep')
        result = run(*words[1:], '--quiet')
        self.assertEqual(result.returncode, 0, result.stderr)
        reference = self.reference(spec, '--set', override)
        assert_same_data(self, out, reference)

    def test_signal_during_set_up_exits_3_with_a_readable_file(self):
        out = self.path('setup.h5')
        process = start(*self.run_args(out), env={'COLLAPSE_TEST_PAUSE_SEED_DATA': '0.3'}, stderr=subprocess.PIPE)
        # While the file is still being built (the per-seed arrays go in before it is renamed into place).
        self.assertTrue(wait_for(lambda: any('.creating-' in name for name in os.listdir(self.dir.name))))
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        self.assertEqual(process.returncode, 3, err)
        self.assertTrue(opens_plainly(out))
        result = run(*self.run_args(out, '--resume'))
        self.assertEqual(result.returncode, 0, result.stderr)
        assert_same_data(self, out, self.reference())

    def test_resume_open_window_survives_kill_and_signal(self):
        out = self.path('window.h5')
        process = start(*self.run_args(out))
        self.assertTrue(wait_for(lambda: os.path.exists(out) and finished_count(out) > 20))
        process.kill()
        process.wait()
        # SIGKILL inside the resume's opening window: info and SWMR readers open it.
        process = start(*self.run_args(out, '--resume'), env={'COLLAPSE_TEST_PAUSE_RESUME_OPEN': '30'})
        time.sleep(1.0)
        process.kill()
        process.wait()
        self.assertEqual(run('info', out).returncode, 0)
        finished_count(out)
        # SIGINT inside it: exit 3 and a file that opens everywhere.
        process = start(*self.run_args(out, '--resume'), env={'COLLAPSE_TEST_PAUSE_RESUME_OPEN': '1'},
                        stderr=subprocess.PIPE)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        self.assertEqual(process.returncode, 3, err)
        self.assertTrue(opens_plainly(out))
        result = run(*self.run_args(out, '--resume'))
        self.assertEqual(result.returncode, 0, result.stderr)
        assert_same_data(self, out, self.reference())

    # Item 6: every refusal leaves the file byte-identical.
    def test_refused_commands_change_nothing(self):
        killed = self.path('killed.h5')
        process = start(*self.run_args(killed))
        self.assertTrue(wait_for(lambda: os.path.exists(killed) and finished_count(killed) > 20))
        process.kill()
        process.wait()
        shard = self.path('shard0.h5')
        self.assertEqual(run('run', self.spec, '-o', shard, '--shard', '0/4', '--quiet').returncode, 0)
        empty = self.path('empty.h5')
        open(empty, 'wb').close()
        merged = self.path('merged.h5')
        shards = []
        for index in range(2):
            shards.append(self.path(f'half{index}.h5'))
            self.assertEqual(run('run', self.spec, '-o', shards[-1], '--shard', f'{index}/2', '--quiet').returncode, 0)
        self.assertEqual(run('merge', merged, *shards).returncode, 0)
        refusals = [
            (killed, ('run', self.spec, '-o', killed, '--resume', '--set', 'grid.seeds=31', '--backend', 'cpu')),
            (killed, ('run', self.spec, '-o', killed, '--backend', 'cpu')),
            (shard, ('run', self.spec, '-o', shard, '--resume', '--shard', '1/4', '--backend', 'cpu')),
            (empty, ('run', self.spec, '-o', empty, '--resume', '--backend', 'cpu')),
            (merged, ('merge', merged, *shards)),
            (merged, ('run', self.spec, '-o', merged, '--resume', '--backend', 'cpu')),
        ]
        for target, args in refusals:
            before = file_bytes(target)
            listing = sorted(os.listdir(self.dir.name))
            result = run(*args)
            self.assertIn(result.returncode, (1, 2), f'{args}: {result.stderr}')
            self.assertTrue(result.stderr.startswith('error: '), result.stderr)
            self.assertEqual(file_bytes(target), before, f'refused {args} changed {target}')
            self.assertEqual(sorted(os.listdir(self.dir.name)), listing, f'refused {args} left files behind')
        result = run('run', self.spec, '-o', killed, '--resume', '--quiet')
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_resume_while_a_reader_holds_the_file(self):
        out = self.path('held.h5')
        process = start(*self.run_args(out))
        self.assertTrue(wait_for(lambda: os.path.exists(out) and finished_count(out) > 20))
        process.send_signal(signal.SIGINT)
        process.wait()
        with h5py.File(out, 'r'):  # holds HDF5's shared file lock
            result = run(*self.run_args(out, '--resume'))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn('errno', result.stderr)
        assert_same_data(self, out, self.reference())

    # Item 6: writer locks are honoured across the final rename.
    def test_merge_overwrite_refuses_a_live_runs_file(self):
        shards = []
        for index in range(2):
            shards.append(self.path(f'half{index}.h5'))
            self.assertEqual(run('run', self.spec, '-o', shards[-1], '--shard', f'{index}/2', '--quiet').returncode, 0)
        live = self.path('live.h5')
        process = start(*self.run_args(live))
        self.assertTrue(wait_for(lambda: os.path.exists(live)))
        result = run('merge', live, *shards, '--overwrite')
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn('being written by another process', result.stderr)
        self.assertEqual(process.wait(timeout=300), 0)
        assert_same_data(self, live, self.reference())
        self.assertEqual([n for n in os.listdir(self.dir.name) if 'merging' in n], [])

    def test_overwrite_rename_race_never_replaces_a_live_run(self):
        out = self.path('race.h5')
        first = start(*self.run_args(out, '--overwrite'), env={'COLLAPSE_TEST_PAUSE_BEFORE_PUBLISH': '2'},
                      stderr=subprocess.PIPE)
        time.sleep(0.5)
        # publishes first and holds the writer lock while the first one tries to publish
        second = start(*self.run_args(out), env={'COLLAPSE_TEST_PAUSE_AFTER_PUBLISH': '4'})
        self.assertTrue(wait_for(lambda: os.path.exists(out)))
        _, err = first.communicate(timeout=60)
        self.assertEqual(first.returncode, 1, err)
        self.assertIn('being written by another process', err)
        self.assertEqual(second.wait(timeout=300), 0)
        assert_same_data(self, out, self.reference())

    def test_killed_merge_leaves_the_previous_file(self):
        shards = []
        for index in range(2):
            shards.append(self.path(f'half{index}.h5'))
            self.assertEqual(run('run', self.spec, '-o', shards[-1], '--shard', f'{index}/2', '--quiet').returncode, 0)
        merged = self.path('merged.h5')
        self.assertEqual(run('merge', merged, *shards).returncode, 0)
        before = file_bytes(merged)
        process = start('merge', merged, *shards, '--overwrite', env={'COLLAPSE_TEST_PAUSE_BEFORE_PUBLISH': '30'})
        time.sleep(1.0)
        process.kill()
        process.wait()
        self.assertEqual(file_bytes(merged), before)
        fresh = self.path('fresh.h5')
        process = start('merge', fresh, *shards, env={'COLLAPSE_TEST_PAUSE_BEFORE_PUBLISH': '30'})
        time.sleep(1.0)
        process.kill()
        process.wait()
        self.assertFalse(os.path.exists(fresh))
        result = run('merge', merged, *shards, '--overwrite')
        self.assertEqual(result.returncode, 0, result.stderr)
        assert_same_data(self, merged, self.reference())


if __name__ == '__main__':
    BINARY = fixtures.BINARY = sys.argv[1]
    unittest.main(argv=sys.argv[:1], verbosity=2)
