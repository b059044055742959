#!/usr/bin/env python3
"""End-to-end tests of `collapse-sweep replay`: a replayed trajectory equals the
sweep's bit for bit (summary, final geometry, the traces at the sweep's record
points), its dense traces and states are where they should be, the file passes
the conformance checker, and bad --at values are clear usage errors.

usage: replay_cli_test.py COLLAPSE_SWEEP_BINARY CHECK_FORMAT_PY
"""
import os
import subprocess
import sys
import unittest

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'support'))
import fixtures  # noqa: E402
from fixtures import SharedScratchTest, run, write_spec  # noqa: E402
from sweep_files import small_spec  # noqa: E402


def bits_equal(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def has_gpu():
    probe = subprocess.run(['sh', '-c', 'nvidia-smi -L'], capture_output=True)
    return probe.returncode == 0


class ReplayTest(SharedScratchTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.spec = write_spec(cls.dir.name, 'spec.toml', max_steps=2000)
        cls.sweep = os.path.join(cls.dir.name, 'sweep.h5')
        result = run('run', cls.spec, '-o', cls.sweep, '--backend', 'cpu', '--quiet')
        assert result.returncode == 0, result.stderr

    def cell(self, f, values):
        """The grid index of `values` (axis name -> value) in sweep file f."""
        index = []
        for name in [d[0].name.split('/')[-1] for d in f['results/status'].dims]:
            coordinate = f['results'][name][()]
            index.append(int(np.flatnonzero(coordinate == values[name])[0]))
        return tuple(index)

    def replay(self, sweep, values, out, *extra):
        at = ','.join(f'{k}={str(v).lower() if isinstance(v, bool) else v}' for k, v in values.items())
        result = run('replay', sweep, '--at', at, '-o', out, *extra)
        self.assertEqual(result.returncode, 0, result.stderr)
        return out

    def check_same_trajectory(self, sweep, values, out, every):
        with h5py.File(sweep, 'r') as s, h5py.File(out, 'r') as r:
            at = self.cell(s, values)
            seed = values['seed']
            rank = len(at)
            mine = (0,) * (rank - 1) + (seed,)
            self.assertEqual(r['results/status'].shape[-1], seed + 1)
            for name in s['results']:
                if s['results'][name].ndim != rank:
                    continue  # a coordinate
                self.assertTrue(bits_equal(s['results'][name][at], r['results'][name][mine]), name)
            for name in s['final']:
                if s['final'][name].ndim > rank:
                    self.assertTrue(bits_equal(s['final'][name][at], r['final'][name][mine]), name)
            # Dense steps 0, K, 2K, ..., max_steps; at the sweep's record
            # points that are on them, the traces agree bit for bit.
            max_steps = int(s.attrs['max_steps'])
            dense = r['traces/step'][()]
            expected = list(range(0, max_steps, every)) + [max_steps]
            self.assertEqual(dense.tolist(), expected)
            shared = [int(t) for t in s['traces/step'][()] if int(t) in set(dense.tolist())]
            self.assertGreater(len(shared), 3)
            for name in ('label_distance', 'projected_distance', 'accuracy', 'loss'):
                sweep_trace = s['traces'][name][at]
                replay_trace = r['traces'][name][mine]
                for step in shared:
                    j = list(s['traces/step'][()]).index(step)
                    k = dense.tolist().index(step)
                    self.assertTrue(bits_equal(sweep_trace[j], replay_trace[k]), f'{name} at step {step}')
            return s['results/final_step'][at]

    def test_replays_every_kind_of_trajectory_bit_for_bit(self):
        points = [
            dict(frustration=0.2, head_dim=3, lr=0.2, stop_gradient=True, seed=3),
            dict(frustration=0.5, head_dim=0, lr=0.2, stop_gradient=False, seed=1),
            dict(frustration=0.0, head_dim=3, lr=0.2, stop_gradient=False, seed=0),
            dict(frustration=0.2, head_dim=3, lr=0.5, stop_gradient=True, seed=2),
        ]
        statuses = set()
        with h5py.File(self.sweep, 'r') as s:
            for values in points:
                statuses.add(int(s['results/status'][self.cell(s, values)]))
        self.assertGreaterEqual(len(statuses), 2, 'the points should cover different statuses')
        for n, values in enumerate(points):
            out = self.replay(self.sweep, values, self.path(f'replay{n}.h5'), '--every', '1')
            self.check_same_trajectory(self.sweep, values, out, 1)
        self.assert_conforms(self.path('replay0.h5'))

    def test_every_k_and_states(self):
        values = dict(frustration=0.2, head_dim=3, lr=0.2, stop_gradient=False, seed=1)
        with h5py.File(self.sweep, 'r') as s:
            at = self.cell(s, values)
            final_step = int(s['results/final_step'][at])
            final_labels = s['final/label_embeddings'][at]
            final_head = s['final/head'][at]
            initial_labels = s['initial/label_embeddings'][1]
            initial_samples = s['initial/sample_embeddings'][1]
        out = self.replay(self.sweep, values, self.path('states.h5'), '--every', '7',
                          '--state-at', f'{final_step},0,{final_step // 2}')
        self.check_same_trajectory(self.sweep, values, out, 7)
        with h5py.File(out, 'r') as r:
            steps = r['states/step'][()].tolist()
            self.assertEqual(steps, sorted({0, final_step // 2, final_step}))
            self.assertTrue(bits_equal(r['states/label_embeddings'][0], initial_labels))
            self.assertTrue(bits_equal(r['states/sample_embeddings'][0], initial_samples))
            last = steps.index(final_step)
            self.assertTrue(bits_equal(r['states/label_embeddings'][last], final_labels))
            w = r['states/head_B'][last] @ r['states/head_A'][last]
            np.testing.assert_allclose(w, final_head, rtol=1e-12, atol=1e-14)
            self.assertEqual(r['states/head_A'].shape[1:], (3, 4))

    def test_state_after_the_stop_is_the_stopping_state(self):
        values = dict(frustration=0.2, head_dim=3, lr=0.2, stop_gradient=False, seed=1)  # collapses early
        with h5py.File(self.sweep, 'r') as s:
            at = self.cell(s, values)
            final_step = int(s['results/final_step'][at])
            final_labels = s['final/label_embeddings'][at]
        self.assertLess(final_step, 2000, 'the test needs a trajectory that stops early')
        out = self.replay(self.sweep, values, self.path('late.h5'), '--every', '50', '--state-at', '2000')
        with h5py.File(out, 'r') as r:
            self.assertEqual(r['states/requested_step'][()].tolist(), [2000])
            self.assertEqual(r['states/step'][()].tolist(), [final_step])
            self.assertTrue(bits_equal(r['states/label_embeddings'][0], final_labels))

    def test_value_formats_and_linspace_values(self):
        spec = self.write('lin.toml', small_spec(max_steps=300).replace('frustration = [0.0, 0.2, 0.5]',
                                                                        'frustration = {linspace = [0.0, 0.1, 5]}'))
        sweep = self.path('lin.h5')
        self.assertEqual(run('run', spec, '-o', sweep, '--quiet', '--backend', 'cpu').returncode, 0)
        # 0.025 finds linspace's value whatever its last bit; 5e-1 finds lr 0.5.
        result = run('replay', sweep, '--at', 'frustration=0.025,head_dim=3,lr=5e-1,stop_gradient=false,seed=0',
                     '-o', self.path('lin-replay.h5'), '--every', '3')
        self.assertEqual(result.returncode, 0, result.stderr)
        with h5py.File(sweep, 'r') as s:
            f = s['results/frustration'][()][1]
        values = dict(frustration=f, head_dim=3, lr=0.5, stop_gradient=False, seed=0)
        self.check_same_trajectory(sweep, values, self.path('lin-replay.h5'), 3)

    def test_bad_at_is_a_usage_error_listing_the_values(self):
        out = self.path('bad.h5')
        for at, message in (
                ('frustration=0.3,head_dim=3,lr=0.2,stop_gradient=true,seed=0',
                 'frustration=0.3 is not on the grid; values: 0, 0.2, 0.5'),
                ('frustration=0.2,head_dim=3,stop_gradient=true,seed=0', 'lr=...; values: 0.2, 0.5'),
                ('frustration=0.2,head_dim=3,lr=0.2,stop_gradient=true,seed=4', 'seeds 0 to 3'),
                ('frustration=0.2,head=3', 'head is not an axis')):
            result = run('replay', self.sweep, '--at', at, '-o', out)
            self.assertEqual(result.returncode, 2, at)
            self.assertIn(message, result.stderr)
        self.assertFalse(os.path.exists(out))
        # Never clobbers.
        with open(out, 'w') as f:
            f.write('keep')
        result = run('replay', self.sweep, '--at', 'frustration=0.2,head_dim=3,lr=0.2,stop_gradient=true,seed=0', '-o', out)
        self.assertEqual(result.returncode, 2)
        with open(out) as f:
            self.assertEqual(f.read(), 'keep')

    def test_cuda_replay_matches_a_cuda_sweep(self):
        if not has_gpu():
            self.skipTest('no GPU on this machine')
        sweep = self.path('gpu.h5')
        result = run('run', self.spec, '-o', sweep, '--backend', 'cuda', '--quiet')
        if result.returncode == 2 and 'CUDA' in result.stderr:
            self.skipTest('binary without a usable CUDA backend: ' + result.stderr.strip())
        self.assertEqual(result.returncode, 0, result.stderr)
        values = dict(frustration=0.2, head_dim=3, lr=0.2, stop_gradient=True, seed=3)
        out = self.replay(sweep, values, self.path('gpu-replay.h5'), '--every', '1')
        self.check_same_trajectory(sweep, values, out, 1)


if __name__ == '__main__':
    fixtures.BINARY, fixtures.CHECK_FORMAT = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1], verbosity=2)
