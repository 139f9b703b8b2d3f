#!/usr/bin/env python
"""Runs at a time: training throughput of the whole machine with one
semi-supervised run using every core against N runs sharing the cores
(what ``--jobs N`` of ssl_table.py and ssl_ablation.py does).

Each configuration starts its training processes (the default model on the
real data), lets them build and warm up, then starts them on the same
signal and times ``--iters`` iterations in each.  The configurations
alternate for ``--rounds`` rounds, so the machine's drift affects both.

    python benchmarks/ssl_jobs.py [--jobs 2] [--rounds 3] [--iters 60] \\
        [--json PATH]

Run it on a quiet machine: other processes take cores from both sides.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from gan import runs
from gan import jobs

ITERATIONS_PER_EPOCH = 600


def worker(iters, warmup=5):
    """Build the default experiment, say 'ready', wait for a line on stdin,
    time ``iters`` iterations and print their seconds as JSON."""
    from mnist_ssl import build
    from mnist_ssl import options as sopt
    parts = build.build(sopt.resolve(progress=False))
    updater = parts['updater']
    for _ in range(warmup):
        updater.update()
    print('ready', flush=True)
    sys.stdin.readline()
    t = time.perf_counter()
    for _ in range(iters):
        updater.update()
    print(json.dumps({'seconds': time.perf_counter() - t}), flush=True)


def measure(processes, threads, iters):
    """Iterations per second of ``processes`` workers started together."""
    env = dict(os.environ, **{k: str(threads) for k in jobs.THREAD_VARS})
    procs = [subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), '--worker', str(iters)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        universal_newlines=True) for _ in range(processes)]
    for p in procs:
        line = p.stdout.readline()
        if line.strip() != 'ready':
            raise SystemExit('a worker failed before it was ready: {!r}'
                             .format(line))
    for p in procs:
        p.stdin.write('go\n')
        p.stdin.flush()
    seconds = [json.loads(p.stdout.readline())['seconds'] for p in procs]
    for p in procs:
        p.wait()
    return {'iterations_per_second': sum(iters / s for s in seconds),
            'seconds_per_epoch_each': [round(s / iters * ITERATIONS_PER_EPOCH,
                                             1) for s in seconds]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--jobs', type=int, default=2,
                   help='processes sharing the cores (default %(default)s)')
    p.add_argument('--rounds', type=int, default=3,
                   help='alternating rounds (default %(default)s)')
    p.add_argument('--iters', type=int, default=60,
                   help='timed iterations per process (default %(default)s)')
    p.add_argument('--cores', type=int, default=os.cpu_count(),
                   help='cores to share (default: all, %(default)s)')
    p.add_argument('--json', default=None, help='write the numbers here')
    p.add_argument('--worker', type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    # the cores shared out, whatever the environment says (the comparison)
    shared = jobs.threads_per_job(args.jobs, args.cores, environ={})
    one, many = [], []
    for r in range(args.rounds):
        one.append(measure(1, args.cores, args.iters))
        many.append(measure(args.jobs, shared, args.iters))
        print('round {}: 1 run x {} threads: {:.2f} it/s; {} runs x {} '
              'thread(s): {:.2f} it/s'.format(
                  r + 1, args.cores, one[-1]['iterations_per_second'],
                  args.jobs, shared, many[-1]['iterations_per_second']),
              flush=True)
    ips_one = statistics.median(m['iterations_per_second'] for m in one)
    ips_many = statistics.median(m['iterations_per_second'] for m in many)
    result = {
        'machine': runs.machine_info(),
        'cores': args.cores, 'jobs': args.jobs,
        'threads_per_job': shared, 'iters': args.iters,
        'rounds': args.rounds,
        'one_run_iterations_per_second': round(ips_one, 3),
        'shared_iterations_per_second_total': round(ips_many, 3),
        'throughput_ratio': round(ips_many / ips_one, 3),
        'one_run_seconds_per_epoch': round(ITERATIONS_PER_EPOCH / ips_one, 1),
        'shared_seconds_per_epoch_each': round(
            ITERATIONS_PER_EPOCH * args.jobs / ips_many, 1),
        'samples_one': one, 'samples_shared': many,
    }
    for k, v in result.items():
        if not k.startswith('samples'):
            print('{:38s} {}'.format(k, v))
    if args.json:
        runs.write_json(args.json, result)
    return result


if __name__ == '__main__':
    main()
