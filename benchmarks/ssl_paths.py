#!/usr/bin/env python
"""The fast SSL path against the composed Chainer one on the real data,
iteration by iteration, with the same random numbers.

    python benchmarks/ssl_paths.py [--iterations 30] [--out result/bench]

Both runs build the default experiment (100 labels, seed 1) and take the
same draws: the fused discriminator and generator nodes draw their noise
in the order the composed links do.  The composed run has the fused nodes
and "parameters as constants" switched off.  Per iteration it prints both
runs' discriminator and generator losses and their relative difference,
and writes OUT/ssl_paths.json.  The two agree to float32 rounding at
first; how fast that rounding grows shows how chaotic the training is,
which is why two runs (or two code versions) can only be compared by
their statistics, not their trajectories.
"""
import argparse
import contextlib
import json
import os
import sys
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import chainer  # noqa: E402

from gan import links, nets  # noqa: E402
from mnist_ssl import experiment  # noqa: E402

KEYS = ('dis/loss', 'gen/loss')


def trajectory(iterations, composed):
    patches = contextlib.ExitStack()
    if composed:
        for cls in (nets.MLPDiscriminator, nets.MLPGenerator):
            patches.enter_context(mock.patch.object(
                cls, '_fusable', lambda self: False))
        patches.enter_context(mock.patch.object(
            links, 'parameters_as_constants', contextlib.nullcontext))
    rows = []
    with patches:
        o = dict(experiment.DEFAULTS, progress=False)
        updater = experiment.build(o)['updater']
        for _ in range(iterations):
            obs = {}
            with chainer.Reporter().scope(obs):
                updater.update()
            rows.append({k: float(getattr(obs[k], 'array', obs[k]))
                         for k in KEYS})
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--iterations', type=int, default=30)
    p.add_argument('--out', default='result/bench')
    args = p.parse_args(argv)
    fast = trajectory(args.iterations, composed=False)
    slow = trajectory(args.iterations, composed=True)
    print('iter  D loss fast / composed      G loss fast / composed   '
          'max rel. diff')
    out = []
    for i, (a, b) in enumerate(zip(fast, slow)):
        rel = max(abs(a[k] - b[k]) / max(abs(b[k]), 1e-12) for k in KEYS)
        out.append({'iteration': i + 1, 'fast': a, 'composed': b,
                    'max_rel_diff': rel})
        print('{:>4d}  {:>11.7f} / {:<11.7f}  {:>11.7f} / {:<11.7f}  {:.1e}'
              .format(i + 1, a['dis/loss'], b['dis/loss'], a['gen/loss'],
                      b['gen/loss'], rel))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'ssl_paths.json'), 'w') as f:
        json.dump(out, f, indent=1)


if __name__ == '__main__':
    main()
