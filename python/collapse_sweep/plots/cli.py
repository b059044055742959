"""collapse-sweep-plot (and tools/plot_phase_diagram.py): draw the figures of a collapse-sweep file.

usage: collapse-sweep-plot OUT.h5 [-o PREFIX] [--x AXIS] [--y AXIS]
                           [--points "frustration=0.1,head_dim=0,lr=0.5;..."]... [--fix NAME=VALUE]...

Writes PREFIX_phase.png, PREFIX_traces.png and, when the file has theory
columns with values, PREFIX_theory.png, and prints their paths. PREFIX
defaults to OUT without .h5. Exit status: 0 ok, 1 unreadable input or
unwritable output, 2 bad usage (options, axis names or values).
"""
import argparse
import os
import sys

import matplotlib

from ..io import SweepFileError, open_sweep
from .common import OutputError, UsageError, axis_value, parse_assignments, save, varied_axes


def plot_sweep(path, prefix=None, x=None, y=None, points=(), fix=(), log=print):
    """Draw the figures of one file; returns the paths written. Raises UsageError, OutputError,
    SweepFileError."""
    matplotlib.use('Agg')
    from .phase import default_xy, phase_figure
    from .theory import theory_figure
    from .traces import default_points, traces_figure, user_points
    prefix = prefix or (path[:-3] if str(path).endswith('.h5') else str(path))
    written = []
    with open_sweep(path) as ds:
        sweep = ds.sweep
        fixed = {}
        for text in fix:
            for name, raw in parse_assignments(text, '--fix').items():
                fixed[name] = axis_value(sweep, name, raw)
        chosen = user_points(sweep, points) if points else default_points(sweep)
        directory = os.path.dirname(prefix)
        if directory:
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as e:
                raise OutputError(f'cannot create the directory {directory}: {e.strerror or e}') from None
        xname, yname = default_xy(sweep, x, y)
        if yname is None:
            raise UsageError(f'{path} has a single grid axis; a phase diagram needs two')
        if varied_axes(sweep) or x or y:
            written.append(phase_figure(sweep, xname, yname, fixed, f'{prefix}_phase.png'))
            log(written[-1])
        else:  # one grid point (a replay file): a one-cell heatmap says nothing the traces do not
            print(f'note: {path} holds a single grid point; {prefix}_phase.png not written', file=sys.stderr)
        traces, skipped = traces_figure(sweep, chosen, f'{prefix}_traces.png')
        if traces:
            written.append(traces)
            log(traces)
        else:
            print(f'warning: no trajectory has run at the chosen points ({"; ".join(skipped)}); '
                  f'{prefix}_traces.png not written', file=sys.stderr)
        theory = theory_figure(sweep, f'{prefix}_theory.png', save)
        if theory:
            written.append(theory)
            log(theory)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='collapse-sweep-plot', description='Phase diagram, trace and theory figures of a collapse-sweep file.',
        epilog='Writes PREFIX_phase.png, PREFIX_traces.png (and PREFIX_theory.png) and prints their paths.')
    parser.add_argument('file', metavar='OUT.h5')
    parser.add_argument('-o', '--output', metavar='PREFIX', help='output prefix (default: OUT without .h5)')
    parser.add_argument('--x', default=None, help='axis along x (default: frustration)')
    parser.add_argument('--y', default=None, help='axis along y (default: lr)')
    parser.add_argument('--points', action='append', default=[], metavar='NAME=V,...[;NAME=V,...]',
                        help='grid points for the traces, e.g. "frustration=0.1,head_dim=0,lr=0.5"; '
                             'repeat or separate points with ";"; unnamed axes take the default point\'s values')
    parser.add_argument('--fix', action='append', default=[], metavar='NAME=VALUE',
                        help='hold an axis that is not drawn at this value (default: its first value)')
    args = parser.parse_args(argv)
    try:
        plot_sweep(args.file, args.output, args.x, args.y, args.points, args.fix)
    except UsageError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except (SweepFileError, OutputError, ValueError, KeyError, OSError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f'error: {msg}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
