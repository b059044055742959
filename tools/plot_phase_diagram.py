#!/usr/bin/env python3
"""Draw the phase diagram, trace and theory figures of a collapse-sweep file.

The same as the `collapse-sweep-plot` command of the collapse_sweep package
(python/, installed into .venv by tools/setup.sh); see docs/analysis.md.
"""
import sys

from collapse_sweep.plots.cli import main

if __name__ == '__main__':
    sys.exit(main())
