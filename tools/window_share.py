#!/usr/bin/env python3
"""Share of a run's wall time with the output file marked "open for writing"
(the superblock's consistency flags, byte 11 of a version-3 superblock),
polled every millisecond: the chance that a SIGKILL at a random moment
leaves a file that plain HDF5 readers refuse (docs/performance.md, "Disk
use and write windows").

usage: window_share.py COLLAPSE_SWEEP SPEC OUT.h5 [run options...]
e.g.   window_share.py build/collapse-sweep sweeps/quickstart.toml /tmp/q.h5 --batch-size 8 --threads 1
add --write-interval 1 to the run options to coalesce windows (docs/format.md).
"""
import os
import subprocess
import sys
import time


def main():
    binary, spec, out, *options = sys.argv[1:]
    if os.path.exists(out):
        os.remove(out)
    started = time.monotonic()
    process = subprocess.Popen([binary, 'run', spec, '-o', out, '-q', *options])
    while not os.path.exists(out) and process.poll() is None:
        time.sleep(0.0005)
    samples = marked = 0
    descriptor = os.open(out, os.O_RDONLY)
    while process.poll() is None:
        marked += os.pread(descriptor, 1, 11) != b'\x00'
        samples += 1
        time.sleep(0.001)
    os.close(descriptor)
    print(f'wall {time.monotonic() - started:.2f} s, exit {process.returncode}, {samples} samples, '
          f'marked open {100.0 * marked / max(samples, 1):.2f}%')
    return process.returncode


if __name__ == '__main__':
    sys.exit(main())
