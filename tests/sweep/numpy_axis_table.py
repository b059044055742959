#!/usr/bin/env python3
"""NumPy's linspace/logspace for a table of arguments, the reference the sweep
parser's {linspace = [a, b, n]} and {logspace = [a, b, n]} match bit for bit
(test SweepSpecAxes.RangesMatchNumPyTable, docs/sweep-file.md).

    numpy_axis_table.py OUT.txt        write the table (done once; the file is committed)
    numpy_axis_table.py --check TXT    recompute it with this NumPy and compare (exit 1 on a difference)

One row per case: `kind a b n` then the n values as hex floats (exact).
a and b are written as Python's repr, which TOML reads back to the same double.

NumPy's own power is not one function: its AVX-512 build (SVML) rounds
10**y differently from the C library's pow in the last bit for about 5% of
exponents, one of the nine of logspace(-2, 0, 9) among them. The table is
NumPy's portable path (the C library's pow, what NumPy uses on every machine
without AVX-512), so the AVX-512 loops are switched off before NumPy loads,
and every logspace value is checked against math.pow.
"""
import math
import os
import platform
import sys

if platform.machine().lower() in ('x86_64', 'amd64') and 'NPY_DISABLE_CPU_FEATURES' not in os.environ:
    os.environ['NPY_DISABLE_CPU_FEATURES'] = 'X86_V4 AVX512_ICL AVX512_SPR'
import warnings  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    import numpy as np  # noqa: E402

# Shipped sweeps, the docs' examples, round decimals, descending ranges, one
# point, long ranges, and steps that are not exact in binary.
CASES = [
    ('linspace', 0.0, 0.5, 26), ('linspace', 0.0, 0.3, 4), ('linspace', 0.0, 0.1, 5), ('linspace', 1.0, 0.5, 3),
    ('linspace', 0.3, 0.9, 1), ('linspace', 0.0, 1.0, 3), ('linspace', 0.05, 0.95, 19), ('linspace', 0.1, 0.7, 7),
    ('linspace', 0.001, 0.999, 101), ('linspace', 0.0, 0.45, 10), ('linspace', 0.7, 0.1, 13),
    ('linspace', 0.013, 0.029, 17), ('linspace', 0.0, 16.0, 5), ('linspace', 2.5, 7.75, 22),
    ('linspace', 0.0, 1.0, 1001), ('linspace', 1e-9, 3e-9, 7), ('linspace', 0.123456789, 0.987654321, 33),
    ('logspace', -2.0, 0.0, 9), ('logspace', -2.0, 0.0, 3), ('logspace', -1.3, 0.9, 5), ('logspace', -3.0, 1.0, 13),
    ('logspace', -1.3010299956639813, -0.3010299956639812, 3), ('logspace', -4.0, 0.0, 17),
    ('logspace', -3.0, -1.0, 21), ('logspace', -1.0, 3.0, 1), ('logspace', 0.0, 3.0, 4), ('logspace', 1.0, -2.0, 7),
    ('logspace', -2.5, 0.5, 31), ('logspace', -5.0, 2.0, 57), ('logspace', -0.7, 0.3, 11),
]


def values(kind, a, b, n):
    if kind == 'linspace':
        return np.linspace(a, b, n)
    out = np.logspace(a, b, n)
    portable = [math.pow(10.0, y) for y in np.linspace(a, b, n)]
    if list(out) != portable:
        sys.exit('numpy.logspace%r differs from the C library pow: NumPy is using its SIMD power '
                 '(set NPY_DISABLE_CPU_FEATURES to its AVX-512 targets)' % ((a, b, n),))
    return out


def table():
    return ''.join(f'{kind} {a!r} {b!r} {n} ' + ' '.join(float(v).hex() for v in values(kind, a, b, n)) + '\n'
                   for kind, a, b, n in CASES)


def main(argv):
    if len(argv) == 3 and argv[1] == '--check':
        with open(argv[2]) as f:
            stored = f.read()
        now = table()
        if stored != now:
            for old, new in zip(stored.splitlines(), now.splitlines()):
                if old != new:
                    print(f'stored: {old}\nnumpy {np.__version__}: {new}')
            print(f'{argv[2]} is not what NumPy {np.__version__} computes')
            return 1
        print(f'{argv[2]}: {len(CASES)} cases equal NumPy {np.__version__} bit for bit')
        return 0
    if len(argv) == 2:
        with open(argv[1], 'w') as f:
            f.write(table())
        return 0
    print(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
