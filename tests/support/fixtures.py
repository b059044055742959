"""Fixtures the end-to-end Python tests of the command share: the binary run
with its output captured, scratch folders (one per test or one per test
class) with spec files written into them, and the environment mpirun needs
here. Each test script sets fixtures.BINARY from its command line before
unittest runs."""
import os
import subprocess
import sys
import tempfile
import unittest

from sweep_files import small_spec

BINARY = None  # the collapse-sweep binary under test
CHECK_FORMAT = None  # shared/conformance/check_format.py, for the scripts given it

# Flags that work as root in a container with loopback only (here and in CI):
# shared-memory transport without the single-copy (CMA) mechanism containers
# often forbid, oversubscription for more ranks than cores, no core binding.
MPI_ENV = {
    'OMPI_ALLOW_RUN_AS_ROOT': '1',
    'OMPI_ALLOW_RUN_AS_ROOT_CONFIRM': '1',
    'OMPI_MCA_btl': 'self,vader',
    'OMPI_MCA_btl_vader_single_copy_mechanism': 'none',
    'OMPI_MCA_rmaps_base_oversubscribe': '1',
    'OMPI_MCA_hwloc_base_binding_policy': 'none',
}


def run(*args, env=None, timeout=300, **kwargs):
    """The command with `args` to its end, stdout and stderr captured as text;
    `env` adds to this process's environment. The timeout turns a hang into
    an error long before ctest's limit."""
    return subprocess.run([BINARY, *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=timeout, **kwargs)


def start(*args, env=None, **kwargs):
    """The command with `args` started in the background (output discarded
    unless stdout or stderr say otherwise)."""
    kwargs.setdefault('stdout', subprocess.DEVNULL)
    kwargs.setdefault('stderr', subprocess.DEVNULL)
    return subprocess.Popen([BINARY, *args], env={**os.environ, **(env or {})}, text=True, **kwargs)


def mpirun_command(ranks, *args):
    return ['mpirun', '-n', str(ranks), BINARY, *args]


def mpirun(ranks, *args):
    """The command with `args` on `ranks` MPI ranks, as run() does."""
    return subprocess.run(mpirun_command(ranks, *args), capture_output=True, text=True, timeout=300,
                          env={**os.environ, **MPI_ENV})


def write_text(folder, name, text):
    """Writes `text` to folder/name; returns the path."""
    path = os.path.join(folder, name)
    with open(path, 'w') as f:
        f.write(text)
    return path


def write_spec(folder, name, **fields):
    """sweep_files.small_spec(**fields) as folder/name; returns the path."""
    return write_text(folder, name, small_spec(**fields))


class ScratchFolder:
    """What a TestCase with a scratch folder `dir` (a TemporaryDirectory) does in it."""

    def path(self, name):
        return os.path.join(self.dir.name, name)

    def write(self, name, text):
        return write_text(self.dir.name, name, text)

    def write_spec(self, name, **fields):
        return write_spec(self.dir.name, name, **fields)

    def run_shards(self, spec, count, *extra, prefix='shard', env=None):
        """Runs shards 0/count .. count-1/count of `spec` into <prefix><i>.h5,
        each to exit 0; returns their paths."""
        shards = []
        for index in range(count):
            shard = self.path(f'{prefix}{index}.h5')
            result = run('run', spec, '--shard', f'{index}/{count}', '-o', shard, '--quiet', *extra, env=env)
            self.assertEqual(result.returncode, 0, result.stderr)
            shards.append(shard)
        return shards


    def assert_conforms(self, path):
        """check_format.py (SPEC section 6) passes the file."""
        check = subprocess.run([sys.executable, CHECK_FORMAT, path], capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)


class ScratchTest(ScratchFolder, unittest.TestCase):
    """A fresh scratch folder for every test."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()


class SharedScratchTest(ScratchFolder, unittest.TestCase):
    """One scratch folder for the whole class, for tests that share what
    setUpClass made (a subclass's setUpClass calls this one first)."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()
