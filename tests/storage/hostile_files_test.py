#!/usr/bin/env python3
"""Every command that reads an output file (info, run --resume, merge,
refine, replay where present) meets a damaged or foreign file with exit 1 or 2
and an `error:` message within a few seconds: never a crash, never a hang.

The files are made from a real output: truncated at many lengths, bit-flipped
and zeroed at seeded random places (more of them in the metadata at the
start), the same with the superblock marked as a killed SWMR writer leaves it
(so HDF5 reads it in SWMR mode, where corrupted metadata used to be retried
for minutes), the first object of each global heap collection given a huge
size (HDF5 copied that much and crashed), a run of zeros in each fractal
heap direct block (where a big group's links live), a flipped bit in chunk
index blocks of an unfinished file (there --resume must refuse before it
writes: exit 1, file byte-identical), a file from another tool, another
format_version, a text file, an empty file. Where random damage lands varies
from run to run (the output holds timestamps), so a crash the fixed cases
miss can still show up here: keep the failing file and add a fixed case.

usage: hostile_files_test.py COLLAPSE_SWEEP_BINARY [--cases N]
Exit 0 when every case passes, 1 otherwise.
"""
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

SPEC = """
[model]
classes = 3
samples_per_class = 4
dim = 4
[integrator]
max_steps = {max_steps}
[grid]
frustration = [0.0, 0.5]
lr = [0.2, 0.4]
seeds = {seeds}
[output]
record_points = 16
save_initial = true
"""

# A command on a hostile file must end within this many seconds. Damage that
# HDF5 loops on is cut by the tool's metadata deadline, shortened here.
TIME_BOUND = 10.0
ENVIRONMENT = dict(os.environ, COLLAPSE_HDF5_METADATA_TIMEOUT='2')
CRASH_CODES = {134, 136, 139, -6, -8, -11}


def run(binary, *args, timeout=TIME_BOUND + 5):
    started = time.monotonic()
    try:
        result = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout, env=ENVIRONMENT)
    except subprocess.TimeoutExpired:
        return None, time.monotonic() - started, 'timed out'
    return result.returncode, time.monotonic() - started, result.stderr


def _rotate(x, k):
    return ((x << k) | (x >> (32 - k))) & 0xffffffff


def lookup3(data, initval=0):
    """Bob Jenkins' lookup3 hashlittle, the checksum of HDF5 metadata."""
    m = 0xffffffff
    length = len(data)
    a = b = c = (0xdeadbeef + length + initval) & m
    i = 0
    while length > 12:
        a = (a + int.from_bytes(data[i:i + 4], 'little')) & m
        b = (b + int.from_bytes(data[i + 4:i + 8], 'little')) & m
        c = (c + int.from_bytes(data[i + 8:i + 12], 'little')) & m
        a = (a - c) & m; a ^= _rotate(c, 4); c = (c + b) & m
        b = (b - a) & m; b ^= _rotate(a, 6); a = (a + c) & m
        c = (c - b) & m; c ^= _rotate(b, 8); b = (b + a) & m
        a = (a - c) & m; a ^= _rotate(c, 16); c = (c + b) & m
        b = (b - a) & m; b ^= _rotate(a, 19); a = (a + c) & m
        c = (c - b) & m; c ^= _rotate(b, 4); b = (b + a) & m
        length -= 12
        i += 12
    if length == 0:
        return c
    tail = bytes(data[i:i + length]) + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], 'little')) & m
    b = (b + int.from_bytes(tail[4:8], 'little')) & m
    c = (c + int.from_bytes(tail[8:12], 'little')) & m
    c ^= b; c = (c - _rotate(b, 14)) & m
    a ^= c; a = (a - _rotate(c, 11)) & m
    b ^= a; b = (b - _rotate(a, 25)) & m
    c ^= b; c = (c - _rotate(b, 16)) & m
    a ^= c; a = (a - _rotate(c, 4)) & m
    b ^= a; b = (b - _rotate(a, 14)) & m
    c ^= b; c = (c - _rotate(b, 24)) & m
    return c


def mark_open_for_write(content):
    """The superblock (version 3, 8-byte addresses) of a file whose SWMR
    writer was killed: consistency flags 0x05 (open for write, SWMR write),
    checksum redone. Readers then must use SWMR reading."""
    content = bytearray(content)
    assert content[:8] == b'\x89HDF\r\n\x1a\n' and content[8] == 3 and content[9] == 8
    assert lookup3(content[:44]) == int.from_bytes(content[44:48], 'little'), 'superblock checksum'
    content[11] = 0x05
    content[44:48] = lookup3(content[:44]).to_bytes(4, 'little')
    return bytes(content)


def run_spec(binary, work, name, seeds):
    """Writes SPEC with `seeds` seeds to NAME.toml and runs it to NAME.h5."""
    spec = os.path.join(work, name + '.toml')
    with open(spec, 'w') as f:
        f.write(SPEC.format(max_steps=200, seeds=seeds))
    out = os.path.join(work, name + '.h5')
    code, _, err = run(binary, 'run', spec, '-o', out, '--backend', 'cpu', '--threads', '1', '-q')
    assert code == 0, err
    return spec, out


def make_base_files(binary, work):
    spec, done = run_spec(binary, work, 'done', seeds=3)
    open_copy = os.path.join(work, 'open.h5')
    with open(open_copy, 'wb') as f:
        f.write(mark_open_for_write(open(done, 'rb').read()))
    # The marked copy must still be a good file for the tool (SWMR reading).
    code, _, err = run(binary, 'info', open_copy)
    assert code == 0, err
    return spec, done, open_copy


def make_indexed_base(binary, work):
    """An unfinished output whose datasets span several chunks, so that each
    has a chunk index (fixed or extensible array, B-tree) that --resume
    writes through: 800 trajectories (2 chunks per gridded dataset), 200
    seeds (13 per-seed chunks), the second half of the seeds set back to
    "not run"."""
    spec, partial = run_spec(binary, work, 'indexed', seeds=200)
    with h5py.File(partial, 'r+', libver=('v110', 'v110')) as f:
        status = f['results/status'][()]
        status[..., 100:] = -1
        f['results/status'][...] = status
    with h5py.File(partial, 'r') as f:
        assert f['results/status'].id.get_num_chunks() > 1 and f['graph/primary_label'].id.get_num_chunks() > 1
    return spec, partial


# Signatures of chunk index structures (fixed array, extensible array, v2 and
# v1 B-trees; v2 B-trees also index a large group's links).
CHUNK_INDEX_SIGNATURES = (b'FAHD', b'FADB', b'EAHD', b'EAIB', b'EASB', b'EADB', b'BTHD', b'BTIN', b'BTLF', b'TREE')


def chunk_index_variants(partial, work):
    """Damage in chunk indices: a bit flipped just past the signature and
    version of the first, middle and last block of each kind, in the
    unfinished file and (first block only) in a copy marked as left by a
    killed SWMR writer. --resume used to meet it only while writing a batch,
    after it had changed the file."""
    data = open(partial, 'rb').read()
    open_data = mark_open_for_write(data)
    variants = []
    for signature in CHUNK_INDEX_SIGNATURES:
        found = [m.start() for m in re.finditer(re.escape(signature), data)]
        picks = sorted({found[0], found[len(found) // 2], found[-1]}) if found else []
        for base_name, base, chosen in (('index', data, picks), ('index-open', open_data, picks[:1])):
            for position in chosen:
                content = bytearray(base)
                content[position + 5] ^= 0x40
                name = '%s-%s-%d' % (base_name, signature.decode(), position)
                path = os.path.join(work, name + '.h5')
                with open(path, 'wb') as f:
                    f.write(bytes(content))
                variants.append((name, path, 'indexed'))
    return variants


def corrupt_variants(done, open_copy, work, cases):
    """(name, path, spec_for_resume) of every hostile file."""
    rng = random.Random(20261128)
    variants = []
    data = open(done, 'rb').read()
    open_data = open(open_copy, 'rb').read()

    def write(name, content):
        path = os.path.join(work, name + '.h5')
        with open(path, 'wb') as f:
            f.write(content)
        return path

    for length in (0, 1, 8, 47, 48, 100, 512, 2048, len(data) // 2, len(data) - 1):
        variants.append(('truncated-%d' % length, write('truncated-%d' % length, data[:length]), 'spec'))
    for length in (512, 4096, len(open_data) // 2):
        variants.append(('open-truncated-%d' % length, write('open-truncated-%d' % length, open_data[:length]), 'spec'))
    for i in range(cases):
        for base_name, base, spec in (('done', data, 'spec'), ('open', open_data, 'spec')):
            content = bytearray(base)
            # Half of the damage in the first 4 KiB: superblock, root group, attributes.
            limit = 4096 if i % 2 == 0 else len(content)
            kind = i % 3
            offset = rng.randrange(0, min(limit, len(content)))
            if kind == 0:
                content[offset] ^= 1 << rng.randrange(8)
                name = '%s-bitflip-%d' % (base_name, offset)
            elif kind == 1:
                end = min(len(content), offset + 64)
                content[offset:end] = bytes(end - offset)
                name = '%s-zeroed-%d' % (base_name, offset)
            else:
                for _ in range(16):
                    content[rng.randrange(0, min(limit, len(content)))] = rng.randrange(256)
                name = '%s-scrambled-%d' % (base_name, i)
            variants.append((name, write(name, bytes(content)), spec))

    # Global heap collections have no checksum, and HDF5 1.10 copies as many
    # bytes as an object's size field says (a SIGSEGV in H5HG_read, met in CI
    # through a random bit flip): every collection's first object made huge.
    position = data.find(b'GCOL')
    while position >= 0:
        content = bytearray(data)
        size_field = position + 16 + 8  # collection header, then index, refcount, reserved
        content[size_field:size_field + 8] = (0x7fffffff).to_bytes(8, 'little')
        name = 'heap-object-size-%d' % position
        variants.append((name, write(name, bytes(content)), 'spec'))
        position = data.find(b'GCOL', position + 1)

    # Direct blocks of fractal heaps (the links of groups with many members)
    # carry no checksum either; a zeroed run in one made link iteration free
    # a bad pointer (a SIGSEGV in H5G__link_release_table, met in a local run).
    position = data.find(b'FHDB')
    while position >= 0:
        content = bytearray(data)
        start = position + 35  # past the block header: into the links themselves
        content[start:start + 64] = bytes(64)
        name = 'link-heap-zeroed-%d' % position
        variants.append((name, write(name, bytes(content)), 'spec'))
        position = data.find(b'FHDB', position + 1)

    other = os.path.join(work, 'other-tool.h5')
    with h5py.File(other, 'w') as f:
        f['results/status'] = np.zeros((2, 2), dtype=np.int8)
        f.attrs['format'] = 'something-else'
    variants.append(('other-tool', other, 'spec'))
    no_attrs = os.path.join(work, 'no-attributes.h5')
    with h5py.File(no_attrs, 'w') as f:
        f['x'] = np.arange(10)
    variants.append(('plain-hdf5', no_attrs, 'spec'))
    for version in (0, 2, 99):
        path = os.path.join(work, 'version-%d.h5' % version)
        shutil.copyfile(done, path)
        with h5py.File(path, 'r+') as f:
            f.attrs['format_version'] = np.int32(version)
        variants.append(('format-version-%d' % version, path, 'spec'))
    wrong_type = os.path.join(work, 'version-string.h5')
    shutil.copyfile(done, wrong_type)
    with h5py.File(wrong_type, 'r+') as f:
        del f.attrs['format_version']
        f.attrs['format_version'] = 'one'
        del f['results/status']
        f['results/status'] = np.zeros(3, dtype=np.float32)
    variants.append(('wrong-types', wrong_type, 'spec'))
    variants.append(('text', write('text', b'[model]\nclasses = 3\n'), 'spec'))
    variants.append(('empty', write('empty', b''), 'spec'))
    return variants


def commands(binary, name, path, spec, work, has_replay):
    yield 'info', ['info', path]
    yield 'resume', ['run', spec, '-o', path, '--resume', '--backend', 'cpu', '--threads', '1', '-q']
    yield 'merge', ['merge', os.path.join(work, 'merged-%s.h5' % name), path, '--overwrite']
    yield 'refine', ['refine', path, '--axis', 'frustration', '--backend', 'cpu', '--threads', '1', '-q']
    if has_replay:
        yield 'replay', ['replay', path, '0']


def main():
    binary = sys.argv[1]
    cases = int(sys.argv[sys.argv.index('--cases') + 1]) if '--cases' in sys.argv else 24
    has_replay = 'replay' in subprocess.run([binary, '--help'], capture_output=True, text=True).stdout
    failures = []
    slowest = (0.0, '')
    with tempfile.TemporaryDirectory() as work:
        spec, done, open_copy = make_base_files(binary, work)
        indexed_spec, partial = make_indexed_base(binary, work)
        specs = {'spec': spec, 'indexed': indexed_spec}
        variants = corrupt_variants(done, open_copy, work, cases)
        index_variants = chunk_index_variants(partial, work)
        assert len(index_variants) >= 8, 'too few chunk index blocks found: %d' % len(index_variants)
        variants += index_variants
        total = 0
        for name, path, spec_key in variants:
            for command_name, args in commands(binary, name, path, specs[spec_key], work, has_replay):
                # Each command gets its own copy: --resume and refine may change the file.
                scratch = os.path.join(work, 'scratch.h5')
                if os.path.exists(scratch):
                    os.remove(scratch)
                shutil.copyfile(path, scratch)
                args = [scratch if a == path else a for a in args]
                code, seconds, err = run(binary, *args)
                changed = open(scratch, 'rb').read() != open(path, 'rb').read()
                total += 1
                slowest = max(slowest, (seconds, '%s %s' % (command_name, name)))
                problem = None
                if code is None or seconds > TIME_BOUND:
                    problem = 'took %.1f s' % seconds
                elif code in CRASH_CODES or code < 0:
                    problem = 'crashed with %d' % code
                elif code not in (0, 1, 2):
                    problem = 'exit %d' % code
                elif code != 0 and not err.lstrip().startswith('error:'):
                    problem = 'exit %d without an error: line: %r' % (code, err[-300:])
                elif 'HDF5-DIAG' in err or 'infinite loop' in err:
                    problem = 'HDF5 printed its own error stack or exit-handler complaint'
                elif spec_key == 'indexed' and command_name == 'resume' and (code != 1 or changed):
                    # Damage in a chunk index is found before anything is written.
                    problem = 'exit %d, file %s' % (code, 'changed' if changed else 'unchanged')
                if problem:
                    failures.append('%s on %s: %s\n    %s' % (command_name, name, problem, err.strip()[-400:]))
                    print('FAIL', failures[-1], flush=True)
        print('%d commands on %d hostile files; slowest %.2f s (%s)' % (total, len(variants), *slowest))
    print('%d failures' % len(failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
