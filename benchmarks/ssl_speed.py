#!/usr/bin/env python
"""Speed of the semi-supervised MNIST iteration against this machine's own
float32 matrix-product throughput, and the fast path (gan.fast, the
default of train_ssl.py) against the plain Chainer one (--no-fast).

One iteration = one D update on 100 labeled + 100 unlabeled + 100 generated
examples and one G update with feature matching (the default model).  The
machine's speed drifts, so everything is measured as ratios inside one run:
blocks of the fast and the plain iteration alternate, and the
matrix-product throughput is measured between blocks.

    python benchmarks/ssl_speed.py [--json PATH] [--blocks 6] [--iters 10]

``--against DIR`` instead times the default iteration of this code against
that of another copy of it in DIR (for instance an earlier commit:
``git archive REV | tar -x -C DIR``).  Each copy runs in its own process,
built and warmed up first; then their blocks alternate (ABBA), one process
working at a time, and the ratios of the median iteration times (wall
clock and CPU time) are printed and written to the JSON.  The first warm-up iterations' losses of the two
copies are compared too: the same seed gives the same numbers when both
compute the same thing.

    python benchmarks/ssl_speed.py --against DIR [--json PATH]

The DCGAN step is measured by benchmarks/dcgan_speed.py.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy

from gan import runs
from gan.fast import noise as fast_noise
from mnist_ssl import build
from mnist_ssl import options as sopt

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def matmul_gflops(n=1024, repeats=5):
    """Best-of float32 (n x n) @ (n x n) throughput, GFLOP/s."""
    rng = numpy.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=numpy.float32)
    b = rng.standard_normal((n, n), dtype=numpy.float32)
    a.dot(b)
    best = float('inf')
    for _ in range(repeats):
        t = time.perf_counter()
        a.dot(b)
        best = min(best, time.perf_counter() - t)
    return 2.0 * n ** 3 / best / 1e9


def layer_sizes(dis, gen):
    d = [(l.V.shape[1], l.V.shape[0]) if hasattr(l, 'V') else
         (l.W.shape[1], l.W.shape[0]) for l in dis.hidden]
    out = dis.out
    d_out = (out.V.shape[1], out.V.shape[0]) if hasattr(out, 'V') else (
        out.W.shape[1], out.W.shape[0])
    g = [(l.W.shape[1], l.W.shape[0]) for l in gen.lins]
    g.append((gen.out.V.shape[1], gen.out.V.shape[0]))
    return d, d_out, g


def products_per_iteration(dis, gen, n=100, fast=True):
    """The matrix products of one iteration as (m, a, b) = (m x a) @ (a x b),
    from the layer shapes.

    A dense layer (a -> b) on m examples costs one (m, a, b) product
    forward, one (m, b, a) for the input gradient and one (b, m, a) for
    the weight gradient.  The fast path skips the discriminator's weight
    gradients in the generator step.
    """
    d_hidden, d_out, g_layers = layer_sizes(dis, gen)
    d_all = d_hidden + [d_out]
    fwd = lambda m, layers: [(m, a, b) for a, b in layers]  # noqa: E731
    gin = lambda m, layers: [(m, b, a) for a, b in layers]  # noqa: E731
    gw = lambda m, layers: [(b, m, a) for a, b in layers]  # noqa: E731
    shapes = []
    shapes += fwd(n, g_layers)               # G forward for the D step
    shapes += fwd(3 * n, d_all)              # D step on 3n examples
    shapes += gw(3 * n, d_all)
    shapes += gin(3 * n, d_all[1:])
    shapes += fwd(n, g_layers)               # G step: G forward,
    shapes += fwd(n, d_hidden) * 2           # D features, real and fake,
    shapes += gin(n, d_hidden)               # back to the images,
    if not fast:                             # (D weight grads thrown away)
        shapes += gw(n, d_hidden)
    shapes += gw(n, g_layers)                # G backward
    shapes += gin(n, g_layers[1:])
    return shapes


def flops_per_iteration(dis, gen, n=100, fast=True):
    """Matrix-product FLOPs of one iteration (see products_per_iteration)."""
    return sum(2.0 * m * a * b
               for m, a, b in products_per_iteration(dis, gen, n, fast))


def products_floor_ms(shapes, repeats=5):
    """Best-of time of the iteration's matrix products alone (float32,
    contiguous operands): what the iteration would cost with nothing else
    in it."""
    rng = numpy.random.default_rng(0)
    pairs = [(rng.standard_normal((m, a), dtype=numpy.float32),
              rng.standard_normal((a, b), dtype=numpy.float32))
             for m, a, b in shapes]
    best = float('inf')
    for _ in range(repeats):
        t = time.perf_counter()
        for x, y in pairs:
            x.dot(y)
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def noise_floor_ms(dis, gen, n=100, repeats=5):
    """Best-of time of the Gaussian noise one iteration draws (the same
    shapes, through gan.fast.noise)."""
    d_hidden = layer_sizes(dis, gen)[0]
    widths = [d_hidden[0][0]] + [b for a, b in d_hidden]
    shapes = [(3 * n, w) for w in widths]          # D step
    shapes += [(n, w) for w in widths[:-1]] * 2    # G step: real, fake
    best = float('inf')
    for _ in range(repeats):
        t = time.perf_counter()
        for shape in shapes:
            fast_noise.normal(numpy, shape)
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def time_block(updater, iters):
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        updater.update()
        times.append(time.perf_counter() - t)
    return times


# A process timing the default iteration of the code in its working folder
# (the same text runs in both copies, so it may use only what both have):
# it builds and warms up, prints its warm-up losses, then for every line N
# on stdin times N iterations and prints their seconds (wall clock and
# the process's CPU time, which other processes on the machine disturb
# less).
WORKER = r"""
import json, sys, time
import chainer
import gan
try:  # this layout, or the one before mnist_ssl/build.py
    from mnist_ssl import build, options
    parts = build.build(options.resolve(progress=False))
except ImportError:
    from mnist_ssl import experiment
    parts = experiment.build(dict(experiment.DEFAULTS, progress=False))
up = parts['updater']
losses = []
for _ in range(int(sys.argv[1])):
    obs = {}
    with chainer.Reporter().scope(obs):
        up.update()
    losses.append([float(getattr(obs[k], 'array', obs[k]))
                   for k in ('dis/loss', 'gen/loss')])
print(json.dumps({'code': gan.__file__, 'losses': losses}), flush=True)
for line in sys.stdin:
    times = []
    for _ in range(int(line)):
        t, c = time.perf_counter(), time.process_time()
        up.update()
        times.append((time.perf_counter() - t, time.process_time() - c))
    print(json.dumps(times), flush=True)
"""


class Worker:
    def __init__(self, folder, warmup):
        self.proc = subprocess.Popen(
            [sys.executable, '-c', WORKER, str(warmup)], cwd=folder,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONPATH=folder))
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit('the worker in {} failed (see above)'.format(
                folder))
        self.ready = json.loads(line)

    def block(self, iters):
        self.proc.stdin.write('{}\n'.format(iters))
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def against(args):
    """This code's default iteration against the one of the code in
    ``args.against``: the same-run ratio of the median iteration times."""
    other = os.path.abspath(args.against)
    if not any(os.path.isfile(os.path.join(other, 'mnist_ssl', name))
               for name in ('build.py', 'experiment.py')):
        raise SystemExit('--against {}: not a copy of this code (no '
                         'mnist_ssl/build.py)'.format(args.against))
    warmup = 5
    this, that = Worker(HERE, warmup), Worker(other, warmup)
    times = {'this': [], 'other': []}
    try:
        for b in range(args.blocks):  # ABBA: drift affects both alike
            order = (('this', this), ('other', that))
            for name, w in (order if b % 2 == 0 else order[::-1]):
                times[name] += w.block(args.iters)
    finally:
        this.close()
        that.close()
    q = lambda ts, f: sorted(ts)[int(f * (len(ts) - 1))] * 1e3  # noqa: E731
    result = {
        'machine': runs.machine_info(),
        'this_code': this.ready['code'],
        'other_code': that.ready['code'],
        'iterations_measured_each': len(times['this']),
    }
    for i, clock in enumerate(('wall', 'cpu')):
        t = {k: [row[i] for row in v] for k, v in times.items()}
        med = {k: statistics.median(v) for k, v in t.items()}
        for k in ('this', 'other'):
            result['{}_ms_per_iter_median_{}'.format(clock, k)] = round(
                med[k] * 1e3, 2)
            result['{}_ms_per_iter_p10_p90_{}'.format(clock, k)] = [
                round(q(t[k], 0.1), 2), round(q(t[k], 0.9), 2)]
        # < 1: this code is faster
        result['{}_ratio_this_over_other'.format(clock)] = round(
            med['this'] / med['other'], 3)
    result.update({
        'warmup_losses_this': this.ready['losses'],
        'warmup_losses_other': that.ready['losses'],
        'same_warmup_losses': this.ready['losses'] == that.ready['losses'],
    })
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument('--json', default=None, help='write the numbers here')
    p.add_argument('--blocks', type=int, default=6,
                   help='alternating blocks per variant (default %(default)s)')
    p.add_argument('--iters', type=int, default=10,
                   help='iterations per block (default %(default)s)')
    p.add_argument('--device', default='-1')
    p.add_argument('--against', metavar='DIR', default=None,
                   help='time the default iteration against the code in DIR '
                   '(see above)')
    args = p.parse_args(argv)
    if args.against:
        result = against(args)
        for k, v in result.items():
            print('{:40s} {}'.format(k, v))
        if args.json:
            runs.write_json(args.json, result)
        return result

    base = sopt.resolve(device=args.device, progress=False)
    fast = build.build(sopt.resolve(base, fast=True))
    slow = build.build(sopt.resolve(base, fast=False))
    for parts in (fast, slow):  # warm up
        time_block(parts['updater'], 3)
    t_fast, t_slow, gflops = [], [], []
    for _ in range(args.blocks):
        gflops.append(matmul_gflops())
        t_fast += time_block(fast['updater'], args.iters)
        t_slow += time_block(slow['updater'], args.iters)
    gflops.append(matmul_gflops())
    floor_products = products_floor_ms(
        products_per_iteration(fast['dis'], fast['gen']))
    floor_noise = noise_floor_ms(fast['dis'], fast['gen'])

    flops = flops_per_iteration(fast['dis'], fast['gen'], fast=True)
    flops_slow = flops_per_iteration(slow['dis'], slow['gen'], fast=False)
    med_fast = statistics.median(t_fast)
    med_slow = statistics.median(t_slow)
    peak = statistics.median(gflops)
    q = lambda ts, f: sorted(ts)[int(f * (len(ts) - 1))] * 1e3  # noqa: E731
    result = {
        'machine': runs.machine_info(),
        'matmul_gflops_median': round(peak, 1),
        'matmul_gflops_samples': [round(g, 1) for g in gflops],
        'ms_per_iter_median': round(med_fast * 1e3, 2),
        'ms_per_iter_p10_p90': [round(q(t_fast, 0.1), 2),
                                round(q(t_fast, 0.9), 2)],
        'straightforward_ms_per_iter_median': round(med_slow * 1e3, 2),
        'straightforward_ms_per_iter_p10_p90': [round(q(t_slow, 0.1), 2),
                                                round(q(t_slow, 0.9), 2)],
        'speedup_vs_straightforward': round(med_slow / med_fast, 2),
        'gflop_per_iter': round(flops / 1e9, 3),
        'gflop_per_iter_straightforward': round(flops_slow / 1e9, 3),
        'achieved_gflops': round(flops / med_fast / 1e9, 1),
        'fraction_of_matmul_peak': round(flops / med_fast / 1e9 / peak, 3),
        # the same work credited at the straightforward FLOP count
        'fraction_of_matmul_peak_nominal': round(
            flops_slow / med_fast / 1e9 / peak, 3),
        # what the arithmetic alone costs, measured in the same run
        'products_alone_ms': round(floor_products, 2),
        'products_alone_fraction_of_peak': round(
            flops / (floor_products / 1e3) / 1e9 / peak, 3),
        'noise_alone_ms': round(floor_noise, 2),
        'iterations_measured': len(t_fast),
    }
    for k, v in result.items():
        print('{:40s} {}'.format(k, v))
    if args.json:
        runs.write_json(args.json, result)
    return result


if __name__ == '__main__':
    main()
