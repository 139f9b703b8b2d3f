"""Images per second of DCGAN training under ``mpiexec -n N`` (ChainerMN,
``--multi-node``), and the share of a step spent in communication.

    python benchmarks/multinode_speed.py --ranks 1 2 --json result/bench/multinode_speed.json

For each N it launches ``mpiexec -n N`` on this script with ``--worker``:
every rank builds the DCGAN trainer of ``train_dcgan.py --multi-node``
(32 px, ``--ch 64``, global batch 64, on random images: the speed does not
depend on their content), runs ``--warmup`` steps, then times ``--iters``
steps.  Each call of the communicator (gradient all-reduce, batch-norm
statistics, minibatch-discrimination all-gather, feature-matching means,
the report) is timed too; that time includes waiting for the slower rank.
Also printed: the number of values each kind of call sends per step
(gradients, batch-norm statistics, the minibatch-discrimination gather
and its backward, the rest), from which the time on other interconnects
can be estimated.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TIMED = ('multi_node_mean_grad', '_multi_node_mean', 'allreduce',
         'allgather', 'alltoall', 'bcast_data')


def _values(name, args):
    """The number of values one outer call of ``name`` sends."""
    if name in ('multi_node_mean_grad', 'bcast_data'):
        return sum(p.size for _, p in args[0].namedparams())
    if name == '_multi_node_mean':  # batch norm's statistics
        return args[1].size
    if name == 'alltoall':
        return sum(x.size for x in args[0])
    return numpy.asarray(args[0]).size


KINDS = {'multi_node_mean_grad': 'gradients', 'bcast_data': 'broadcast',
         '_multi_node_mean': 'batch_norm', 'allgather': 'mbd_allgather',
         'alltoall': 'mbd_backward', 'allreduce': 'other_allreduce'}


def time_communicator(comm):
    """Wrap the communicator's methods to add up their wall time and the
    values they send (outer calls only: a gradient all-reduce calls the
    per-array one)."""
    comm.gan_comm_seconds = 0.0
    comm.gan_values = {}
    depth = [0]

    def wrap(name, fn):
        def timed(*a, **k):
            depth[0] += 1
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                depth[0] -= 1
                if not depth[0]:
                    comm.gan_comm_seconds += time.perf_counter() - t
                    kind = KINDS[name]
                    comm.gan_values[kind] = (comm.gan_values.get(kind, 0)
                                             + _values(name, a))
        return timed
    for name in TIMED:
        setattr(comm, name, wrap(name, getattr(comm, name)))


def worker(a):
    from animeface import data as adata
    from animeface import build, options
    from gan import multinode
    comm = multinode.create('naive', '-1')
    args = options.parse(
        ['--data', 'random', '--size', str(a.size), '--ch', str(a.ch),
         '--batchsize', str(a.batchsize), '--iterations', '1000',
         '--out', '/nonexistent', '--feature-matching', a.feature_matching]
        + (['--minibatch-discrimination'] if a.mbd else []))
    rng = numpy.random.default_rng(0)
    images = adata.ImageData(rng.integers(
        0, 256, (max(1024, a.batchsize), 3, a.size, a.size),
        dtype=numpy.uint8), 3, 'folder')
    trainer = build.build_trainer(args, images, comm)
    updater = trainer.updater
    grad_values = sum(
        p.size for opt in updater.get_all_optimizers().values()
        for _, p in opt.target.namedparams())
    for _ in range(a.warmup):
        updater.update()
    time_communicator(comm)
    comm.mpi_comm.Barrier()
    t = time.perf_counter()
    for _ in range(a.iters):
        updater.update()
    comm.mpi_comm.Barrier()
    wall = time.perf_counter() - t
    rows = comm.gather_obj({'rank': comm.rank, 'wall': wall,
                            'comm_seconds': comm.gan_comm_seconds})
    if comm.rank == 0:
        print(json.dumps({
            'ranks': comm.size, 'iters': a.iters, 'batchsize': a.batchsize,
            'seconds_per_step': wall / a.iters,
            'images_per_second': a.iters * a.batchsize / wall,
            'communication_share': max(r['comm_seconds'] for r in rows)
            / wall,
            'communication_share_per_rank': [r['comm_seconds'] / wall
                                             for r in rows],
            'gradient_values_allreduced_per_step': int(grad_values),
            'values_sent_per_step': {
                k: v // a.iters for k, v in sorted(comm.gan_values.items())},
        }))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--ranks', type=int, nargs='+', default=[1, 2])
    p.add_argument('--size', type=int, default=32)
    p.add_argument('--ch', type=int, default=64)
    p.add_argument('--batchsize', type=int, default=64)
    p.add_argument('--feature-matching', default='none')
    p.add_argument('--mbd', action='store_true')
    p.add_argument('--iters', type=int, default=20)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--json', help='also write the results here')
    p.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        return worker(a)
    mpiexec = os.path.join(os.path.dirname(sys.executable), 'mpiexec')
    env = dict(os.environ, OPENBLAS_NUM_THREADS=os.environ.get(
        'OPENBLAS_NUM_THREADS', '1'))
    results = []
    for n in a.ranks:
        proc = subprocess.run(
            [mpiexec, '-n', str(n), sys.executable, os.path.abspath(__file__),
             '--worker', '--size', str(a.size), '--ch', str(a.ch),
             '--batchsize', str(a.batchsize), '--feature-matching',
             a.feature_matching, '--iters', str(a.iters), '--warmup',
             str(a.warmup)] + (['--mbd'] if a.mbd else []),
            capture_output=True, text=True, env=env, cwd=ROOT)
        if proc.returncode:
            sys.exit(proc.stderr[-2000:])
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        print('-n {}: {:.1f} images/s ({:.3f} s a step of {} images), '
              'communication {:.0%} of a step (per rank {})'.format(
                  n, r['images_per_second'], r['seconds_per_step'],
                  a.batchsize, r['communication_share'],
                  ', '.join('{:.0%}'.format(s)
                            for s in r['communication_share_per_rank'])))
    print('gradient values all-reduced per step (G + D): {:,}'.format(
        results[0]['gradient_values_allreduced_per_step']))
    for r in results:
        if r['ranks'] > 1:
            print('-n {}: values per step and rank by kind: {}'.format(
                r['ranks'], ', '.join('{} {:,}'.format(k, v) for k, v in
                                      r['values_sent_per_step'].items())))
    if a.json:
        from gan import runs
        runs.write_json(a.json, {'options': vars(a), 'results': results,
                                 'machine': runs.machine_info()})
    return results


if __name__ == '__main__':
    main()
