#!/usr/bin/env python
"""Speed of the minibatch-discrimination layer (forward + backward): the
plain form over the (N, N, B, C) difference tensor against the fused
pairwise-L1 path (:class:`gan.links.PairwiseL1Closeness`), alternating in
one run, at the DCGAN discriminator's feature sizes.

    python benchmarks/mbd_speed.py [--json PATH] [--batchsize 64]
        [--kernels 100] [--dim 5] [--repeats 7]

Cases: 32 px / --ch 64 (A = 64 * 4 * 4 = 1024 features) and 64 px /
--ch 512 (A = 512 * 4 * 4 = 8192), the authors' form.  Prints and writes
the median time of each path and plain / fused (above 1: fused faster).
"""
import argparse
import statistics
import time

import numpy

import chainer

from gan import links, runs

CASES = (('32px_ch64', 64 * 4 * 4), ('64px_ch512', 512 * 4 * 4))


def step_time(link, x, gy, loops):
    """Seconds per forward + backward (parameter and input gradients)."""
    start = time.perf_counter()
    for _ in range(loops):
        link.cleargrads()
        xv = chainer.Variable(x)
        y = link(xv)
        y.grad = gy
        y.backward()
    return (time.perf_counter() - start) / loops


def measure(features, batchsize, kernels, dim, repeats, loops):
    rng = numpy.random.RandomState(0)
    x = rng.randn(batchsize, features).astype(numpy.float32)
    gy = rng.randn(batchsize, features + kernels).astype(numpy.float32)
    paths = {}
    for fused in (False, True):
        link = links.MinibatchDiscrimination(features, kernels, dim,
                                             fast=fused)
        link(x)  # data-dependent init, outside the timing
        paths[fused] = link
    times = {False: [], True: []}
    for fused in (False, True):  # warm-up
        step_time(paths[fused], x, gy, 1)
    for _ in range(repeats):
        for fused in (False, True):
            times[fused].append(step_time(paths[fused], x, gy, loops))
    plain = statistics.median(times[False])
    fused = statistics.median(times[True])
    ratios = [a / b for a, b in zip(times[False], times[True])]
    return {'features': features, 'batchsize': batchsize,
            'kernels': kernels, 'kernel_dim': dim,
            'plain_ms': round(plain * 1e3, 3),
            'fused_ms': round(fused * 1e3, 3),
            'ratio_plain_over_fused': round(statistics.median(ratios), 3)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--json', help='write the numbers here')
    p.add_argument('--batchsize', type=int, default=64,
                   help='(default %(default)s)')
    p.add_argument('--kernels', type=int, default=100,
                   help='B (default %(default)s)')
    p.add_argument('--dim', type=int, default=5,
                   help='C (default %(default)s)')
    p.add_argument('--repeats', type=int, default=7,
                   help='alternating timing blocks (default %(default)s)')
    p.add_argument('--loops', type=int, default=5,
                   help='steps per block (default %(default)s)')
    args = p.parse_args(argv)
    result = {'machine': runs.machine_info(), 'cases': {}}
    for name, features in CASES:
        r = measure(features, args.batchsize, args.kernels, args.dim,
                    args.repeats, args.loops)
        result['cases'][name] = r
        print('{}: A={} N={} B={} C={}: plain {:.2f} ms, fused {:.2f} ms, '
              'plain/fused {:.2f}'.format(
                  name, features, args.batchsize, args.kernels, args.dim,
                  r['plain_ms'], r['fused_ms'],
                  r['ratio_plain_over_fused']))
    if args.json:
        runs.write_json(args.json, result)
        print(args.json)
    return result


if __name__ == '__main__':
    main()
