#!/usr/bin/env python3
"""The numbers the docs and the sweep files' own comments quote about the
shipped sweeps (sweeps/*.toml) are the files' numbers: trajectory counts and
their factors, step counts, and for docs/refinement-example.md the output
of running the example and the boundaries it reports.

usage: docs_numbers_test.py COLLAPSE_SWEEP_BINARY
"""
import math
import os
import re
import statistics
import sys
import tomllib
import unittest

import h5py
import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'support'))
import fixtures  # noqa: E402
from fixtures import SharedScratchTest, run  # noqa: E402

SWEEPS = sorted(f for f in os.listdir(os.path.join(ROOT, 'sweeps')) if f.endswith('.toml'))
AXES = ('frustration', 'head_dim', 'lr', 'stop_gradient', 'init_scale')


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def shape_of(name):
    """(axis lengths in file order, seeds, max_steps), straight from the TOML (defaults: docs/sweep-file.md)."""
    spec = tomllib.loads(read('sweeps', name))
    grid = spec.get('grid', {})
    lengths = {}
    for key, value in grid.items():
        if key not in AXES:
            continue
        if isinstance(value, list):
            lengths[key] = len(value)
        elif isinstance(value, dict):
            (kind, (a, b, n)), = value.items()
            lengths[key] = n
        else:
            lengths[key] = 1
    return lengths, grid.get('seeds', 1), spec.get('integrator', {}).get('max_steps', 20000)


def trajectories(name):
    lengths, seeds, _ = shape_of(name)
    return math.prod(lengths.values()) * seeds


def comment_of(name):
    return '\n'.join(line for line in read('sweeps', name).splitlines() if line.lstrip().startswith('#'))


class ShippedSweepNumbers(unittest.TestCase):
    def test_validate_agrees_with_the_toml(self):
        for name in SWEEPS:
            out = run('validate', os.path.join(ROOT, 'sweeps', name))
            self.assertEqual(out.returncode, 0, out.stderr)
            count = re.search(r'^trajectories\s+(\d+)', out.stdout, re.M)
            self.assertIsNotNone(count, out.stdout)
            self.assertEqual(int(count.group(1)), trajectories(name), name)
            self.assertIn(f'max_steps {shape_of(name)[2]}', out.stdout, name)

    def test_sweep_file_table(self):
        table = read('docs', 'sweep-file.md')
        rows = {m.group(1): (m.group(2), m.group(3))
                for m in re.finditer(r'^\| `(\w+\.toml)` \| ([^|]*) \| ([^|]*) \|$', table, re.M)}
        self.assertEqual(sorted(rows), SWEEPS, 'every shipped sweep has a row, and only those')
        for name, (what, size) in rows.items():
            self.assertIn(f'{trajectories(name)} trajectories, {shape_of(name)[2]} steps', size, name)
            lengths, seeds, _ = shape_of(name)
            # Axis lengths the description quotes: "26 f", "5 h", "9 lr", "32 seeds".
            for count, axis in re.findall(r'\b(\d+) (f|h|lr)\b', what):
                key = {'f': 'frustration', 'h': 'head_dim', 'lr': 'lr'}[axis]
                self.assertEqual(int(count), lengths[key], f'{name}: {count} {axis}')
            for count in re.findall(r'\b(\d+) seeds', what):
                self.assertEqual(int(count), seeds, name)

    def test_comments_in_the_files(self):
        for name in SWEEPS:
            comment = comment_of(name)
            lengths, seeds, steps = shape_of(name)
            for product in re.finditer(r'((?:\d+ x )+\d+) = (\d+) trajectories', comment):
                factors = [int(x) for x in product.group(1).split(' x ')]
                self.assertEqual(factors, list(lengths.values()) + [seeds], name)
                self.assertEqual(int(product.group(2)), trajectories(name), name)
            for count in re.findall(r'(\d+) trajectories', comment):
                self.assertEqual(int(count), trajectories(name), name)
            for count in re.findall(r'(?:at most|up to) (\d+)\s+(?:#\s*)?steps', comment):
                self.assertEqual(int(count), steps, name)
            self.assertNotRegex(comment, r'\b(minute|seconds?)\b', f'{name}: times belong in docs/performance.md')


class RefinementExample(SharedScratchTest):
    """Runs docs/refinement-example.md's commands and checks what it quotes."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.doc = read('docs', 'refinement-example.md')
        cls.out = os.path.join(cls.dir.name, 'ex.h5')
        commands = re.findall(r'^\$B/collapse-sweep (.*?)(?:\s+#.*)?$', cls.doc, re.M)
        cls.stdout = []
        for command in commands:
            args = command.replace('out/ex.h5', cls.out).replace('sweeps/', os.path.join(ROOT, 'sweeps') + '/').split()
            done = run(*args, '--quiet')
            assert done.returncode == 0, done.stderr
            cls.stdout.append(done.stdout)
        cls.commands = commands

    def test_the_commands_are_the_example(self):
        self.assertEqual(len(self.commands), 3)
        self.assertTrue(self.commands[0].startswith('run sweeps/refinement_example.toml'))

    def test_sweep_numbers(self):
        lengths, seeds, steps = shape_of('refinement_example.toml')
        self.assertIn(f'{lengths["frustration"]} frustrations × {lengths["lr"]} log-spaced learning rates', self.doc)
        self.assertIn(f'× {seeds} seeds', self.doc)
        self.assertIn(f'{steps} gd steps. That is {trajectories("refinement_example.toml")} trajectories', self.doc)
        self.assertIn(f'collapsed within {steps} steps', self.doc)

    def test_printed_lines(self):
        quoted = re.findall(r'^    (/boundaries/.*)$', self.doc, re.M)
        self.assertEqual(len(quoted), 2)
        printed = [line.split(': ', 1)[1] for text in self.stdout[1:] for line in text.splitlines()]
        self.assertEqual(quoted, printed)

    def test_quoted_boundaries(self):
        with h5py.File(self.out, 'r') as f:
            lr = f['boundaries/lr']
            plain = dict(frustration=0, head_dim=0, stop_gradient=0)
            refined = self.pick(lr, 'estimate', plain)
            critical = f['results/critical_lr'][()]
            res_axes = [d[0].name.split('/')[-1] for d in f['results/critical_lr'].dims]
            index = tuple(0 if a in ('frustration', 'head_dim', 'stop_gradient') else slice(None) for a in res_axes)
            lr_c = statistics.median(np.asarray(critical[index])[0])  # median over seeds (any lr)
            self.assertIn(f'at f = 0 the refined value is {refined:.3f} and\n  the median lr_c is {lr_c:.3f}',
                          self.doc)
            head = self.pick(lr, 'estimate', dict(frustration=0, head_dim=8, stop_gradient=0))
            self.assertIn(f'(lr ≈ {head:.2f})', self.doc)
            probes = int(lr['probes_run'][()].max())
            dense = int(lr.attrs['dense_grid_trajectories'] / (lr['estimate'].size * lr.attrs['seeds']))
            self.assertIn(f'{probes} probes per boundary against {dense} dense points (ratio ≈ {dense // probes})',
                          self.doc)
            fr = f['boundaries/frustration']
            self.assertEqual(int(fr['probes_run'][()].max()), 3)
            self.assertIn('at most 3 probes per boundary', self.doc)
            samples = f.attrs['samples']
            one_sample = 0.5 / samples
            self.assertIn(f'(f = {one_sample:g} = 0.5/N)', self.doc)
            lrs = fr['lr'][()]
            plain_f = [self.pick(fr, 'estimate', dict(head_dim=0, stop_gradient=0, lr=v)) for v in lrs]
            shown = [f'{v:.2f}' for v in lrs if 0.5 < v < 5]
            self.assertEqual(shown, ['0.63', '2.24'])
            self.assertTrue(all(e == one_sample for v, e in zip(lrs, plain_f) if 0.5 < v < 5), plain_f)
            self.assertIn(f'for lr = {shown[0]} and {shown[1]}', self.doc)
            at_018 = plain_f[list(np.round(lrs, 2)).index(0.18)]
            self.assertIn(f'near f = {at_018:.2f} at\n  lr = 0.18', self.doc)
            # At the top lr every plain-model trajectory diverged: nothing to refine there.
            status = f['results/status'][()]
            dims = [d[0].name.split('/')[-1] for d in f['results/status'].dims]
            top = tuple({'head_dim': 0, 'lr': len(lrs) - 1}.get(d, slice(None)) for d in dims)
            self.assertTrue((status[top] == 2).all())
            self.assertTrue(np.isnan(plain_f[-1]))
            self.assertIn(f'At lr = {lrs[-1]:.1f} every plain-model seed diverges', self.doc)

    @staticmethod
    def pick(group, name, at):
        dims = [d[0].name.split('/')[-1] for d in group[name].dims]
        index = tuple(int(np.argmin(np.abs(group[d][()] - at[d]))) for d in dims)
        return float(group[name][index])


if __name__ == '__main__':
    fixtures.BINARY = sys.argv[1]
    del sys.argv[1]
    unittest.main(verbosity=2)
