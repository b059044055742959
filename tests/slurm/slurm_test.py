#!/usr/bin/env python3
"""The shipped Slurm scripts under a real single-node Slurm: tools/slurm/
array.sbatch (a 3-task array, then its merge job with --dependency) and
tools/slurm/mpi.sbatch (2 ranks through `srun --mpi=pmix`) each give a file
with the same data as a single-process run. The GPU requests are overridden
on the command line (--gres=none, --gpus-per-node=0), as a user without GPUs
would.

munged, slurmctld and slurmd (Debian's, installed by tools/setup.sh) are
started here as root with a private configuration in a temporary folder,
and stopped by PID at the end. Exit 77 (ctest: skipped) with the reason when
Slurm cannot start here; 1 on a failure.

usage: slurm_test.py COLLAPSE_SWEEP_BINARY REPO_ROOT
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'support'))
from sweep_files import datasets, small_spec  # noqa: E402

import numpy as np  # noqa: E402

SKIP = 77


class Skip(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for(what, predicate, seconds, logs):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    tails = ''.join(f'\n--- {path}:\n' + (open(path).read()[-1500:] if os.path.exists(path) else '(none)')
                    for path in logs)
    raise Skip(f'{what} did not come up within {seconds} s{tails}')


def same_data(a, b):
    da, db = datasets(a), datasets(b)
    if sorted(da) != sorted(db):
        return f'datasets differ: {sorted(set(da) ^ set(db))}'
    for name in da:
        if not np.array_equal(da[name], db[name], equal_nan=da[name].dtype.kind == 'f'):
            return f'{name} differs'
    return None


class Cluster:
    """munged + slurmctld + slurmd on this node, in `root`."""

    def __init__(self, root):
        self.root = root
        self.processes = []
        self.env = dict(os.environ)

    def start(self):
        if os.geteuid() != 0:
            raise Skip('Slurm daemons need root here (SlurmUser=root); not root')
        for tool in ('munged', 'slurmctld', 'slurmd', 'sbatch', 'srun', 'sinfo'):
            if shutil.which(tool) is None:
                raise Skip(f'{tool} not installed (tools/setup.sh installs slurmctld, slurmd, slurm-client, munge)')
        r = self.root
        os.chmod(r, 0o755)  # munged wants its socket folder searchable
        for sub in ('state', 'spool', 'log'):
            os.makedirs(os.path.join(r, sub))
        key = os.path.join(r, 'munge.key')
        with open(key, 'wb') as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o600)
        sock = os.path.join(r, 'munge.socket')
        self.spawn('munged', ['munged', '-F', '-f', f'--key-file={key}', f'--socket={sock}',
                              f'--pid-file={r}/munged.pid', f'--log-file={r}/log/munged.log',
                              f'--seed-file={r}/munged.seed'])
        wait_for('munged', lambda: os.path.exists(sock), 15, [f'{r}/log/munged.out'])

        host = socket.gethostname().split('.')[0]
        memory_mb = int(open('/proc/meminfo').read().split()[1]) // 1024
        conf = os.path.join(r, 'slurm.conf')
        with open(conf, 'w') as f:
            f.write(f"""ClusterName=collapsetest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
AuthInfo=socket={sock}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={max(1000, memory_mb - 1000)} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
        self.env['SLURM_CONF'] = conf
        for name in [k for k in self.env if k.startswith('SLURM_') and k != 'SLURM_CONF']:
            del self.env[name]  # not a job of an outer Slurm
        self.spawn('slurmctld', ['slurmctld', '-D', '-f', conf])
        self.spawn('slurmd', ['slurmd', '-D', '-f', conf])

        def idle():
            out = subprocess.run(['sinfo', '-h', '-o', '%T'], capture_output=True, text=True, env=self.env)
            return out.returncode == 0 and out.stdout.strip() == 'idle'
        wait_for('the Slurm node', idle, 40, [f'{r}/log/slurmctld.log', f'{r}/log/slurmd.log',
                                              f'{r}/log/slurmctld.out', f'{r}/log/slurmd.out'])

    def spawn(self, name, command):
        out = open(os.path.join(self.root, 'log', name + '.out'), 'w')
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        self.processes.append((name, process))
        time.sleep(0.2)
        if process.poll() is not None:
            raise Skip(f'{name} exited at once with {process.returncode}: '
                       + open(os.path.join(self.root, 'log', name + '.out')).read()[-1500:])

    def stop(self):
        for name, process in reversed(self.processes):  # by PID: only what this test started
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def sbatch(self, *args, extra_env=None):
        env = {**self.env, **(extra_env or {})}
        result = subprocess.run(['sbatch', '--parsable', *args], capture_output=True, text=True, env=env, timeout=600)
        if result.returncode != 0:
            raise AssertionError(f'sbatch {" ".join(args)}: exit {result.returncode}\n{result.stdout}{result.stderr}')
        return result.stdout.strip().split(';')[0]


def main(binary, repo):
    work = tempfile.mkdtemp(prefix='collapse-slurm-')
    cluster = Cluster(os.path.join(work, 'slurm'))
    os.makedirs(cluster.root)
    failures = []
    try:
        cluster.start()
        spec = os.path.join(work, 'spec.toml')
        with open(spec, 'w') as f:
            f.write(small_spec(max_steps=1500))
        reference = os.path.join(work, 'single.h5')
        plain_env = {k: v for k, v in cluster.env.items() if not k.startswith('SLURM')}
        subprocess.run([binary, 'run', spec, '-o', reference, '--backend', 'cpu', '--quiet'], check=True, env=plain_env)
        scripts = os.path.join(repo, 'tools', 'slurm')
        job_env = {'COLLAPSE_SWEEP': binary,
                   # shared memory between ranks without the CMA mechanism containers forbid
                   'OMPI_MCA_btl': 'self,vader', 'OMPI_MCA_btl_vader_single_copy_mechanism': 'none'}
        common = ['--chdir', work, '--time=20', '--cpus-per-task=1', '--export=ALL']

        # The array job and its merge job, as array.sbatch's header says.
        prefix = os.path.join(work, 'out', 'array')
        array = cluster.sbatch(*common, '--array=0-2', '--gres=none', '--mem=500M',
                               f'--output={work}/array-%A_%a.out', f'{scripts}/array.sbatch', spec, prefix,
                               extra_env=job_env)
        cluster.sbatch(*common, '--wait', f'--dependency=afterok:{array}', '--gres=none', '--mem=500M',
                       f'--output={work}/merge-%j.out', f'{scripts}/array.sbatch', spec, prefix,
                       extra_env={**job_env, 'MERGE': '1'})
        if not os.path.exists(prefix + '.h5'):
            failures.append('array + merge: no merged file; ' + ' '.join(os.listdir(work)))
        else:
            problem = same_data(prefix + '.h5', reference)
            print('array job + merge job:', problem or 'same data as the single-process run')
            if problem:
                failures.append('array + merge: ' + problem)

        # The MPI job: srun --mpi=pmix, one node, two ranks.
        mpi_out = os.path.join(work, 'out', 'mpi.h5')
        try:
            cluster.sbatch(*common, '--wait', '--nodes=1', '--ntasks-per-node=2', '--gpus-per-node=0', '--mem=1G',
                           f'--output={work}/mpi-%j.out', f'{scripts}/mpi.sbatch', spec, mpi_out, extra_env=job_env)
        except AssertionError as error:
            log = ''.join(open(os.path.join(work, n)).read() for n in os.listdir(work) if n.startswith('mpi-'))
            if 'without MPI' in log:
                print('mpi.sbatch: skipped, this build has no MPI:', log[-300:])
            else:
                failures.append(f'mpi.sbatch: {error}\n{log[-2000:]}')
        else:
            problem = same_data(mpi_out, reference)
            print('MPI job (srun --mpi=pmix, 2 ranks):', problem or 'same data as the single-process run')
            if problem:
                failures.append('mpi: ' + problem)
    except Skip as why:
        print('SKIP:', why)
        return SKIP
    except Exception as error:  # noqa: BLE001 - report anything as a failure with the logs' place
        failures.append(f'{type(error).__name__}: {error}')
    finally:
        cluster.stop()
    if failures:
        print('FAILED:\n' + '\n'.join(failures) + f'\n(logs in {work})')
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print('OK')
    return 0


if __name__ == '__main__':
    sys.exit(main(os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])))
