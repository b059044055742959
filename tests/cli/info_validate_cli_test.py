#!/usr/bin/env python3
"""`info` prints the settings, the /boundaries groups and whether the file is
merged; `validate` times the grid's trajectory kinds within a second and
prints a wall-time estimate.

usage: info_validate_cli_test.py COLLAPSE_SWEEP_BINARY
"""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'support'))
import fixtures  # noqa: E402
from fixtures import SharedScratchTest, run, write_spec  # noqa: E402


class InfoValidateTest(SharedScratchTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.spec = write_spec(cls.dir.name, 'spec.toml', max_steps=800)

    def test_info_settings_boundaries_and_merge(self):
        out = self.path('out.h5')
        self.assertEqual(run('run', self.spec, '-o', out, '--quiet', '--backend', 'cpu').returncode, 0)
        info = run('info', out)
        self.assertEqual(info.returncode, 0, info.stderr)
        self.assertIn('model: embedding, K = 3, n = 6 (N = 18), d = 4, h_max = 3, init_scale = 1', info.stdout)
        self.assertIn('integrator: gd, max_steps 800, float64', info.stdout)
        self.assertIn('collapse: label distance < 0.05, stop on collapse', info.stdout)
        self.assertIn('output: 40 record points, save_samples true, save_initial true, seeds 4', info.stdout)
        self.assertIn('not merged', info.stdout)
        self.assertIn('boundaries: none', info.stdout)
        refine = run('refine', out, '--axis', 'frustration', '--tol', '0.05', '--quiet', '--backend', 'cpu')
        self.assertEqual(refine.returncode, 0, refine.stderr)
        info = run('info', out)
        self.assertRegex(info.stdout, r'frustration: collapsed_fraction = 0\.5, tol 0\.05; \d+ of 8 boundaries found, estimates .*; \d+ trajectories')
        shards = self.run_shards(self.spec, 2, prefix='s')
        self.assertIn('shard 1 of 2 (flat indices 48 to 96)', run('info', shards[1]).stdout)
        merged = self.path('merged.h5')
        self.assertEqual(run('merge', merged, *shards).returncode, 0)
        self.assertIn('merged: a virtual (VDS) file over s0.h5, s1.h5', run('info', merged).stdout)

    def test_validate_times_each_kind_within_a_second(self):
        result = run('validate', self.spec, '--backend', 'cpu')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('FLOP', result.stdout)
        match = re.search(r'time +about ([\d.e+-]+) (s|min|h|days) on cpu .* measured in ([\d.e+-]+) s', result.stdout)
        self.assertIsNotNone(match, result.stdout)
        self.assertGreater(float(match.group(1)), 0)
        self.assertLessEqual(float(match.group(3)), 1.0)
        # Kinds: h = 0 (its stop-gradient twin shares it), h = 3 with and without stop-gradient.
        kinds = re.findall(r'head_dim (\d+) +stop_gradient (\w+)', result.stdout)
        self.assertEqual(kinds, [('0', 'false'), ('3', 'false'), ('3', 'true')])
        self.assertIn('(72 computed: h = 0 twins once)', result.stdout)
        quick = run('validate', self.spec, '--no-timing')
        self.assertEqual(quick.returncode, 0)
        self.assertNotIn('time ', quick.stdout)


if __name__ == '__main__':
    fixtures.BINARY = sys.argv[1]
    unittest.main(argv=sys.argv[:1], verbosity=2)
