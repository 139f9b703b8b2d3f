"""The fast SSL path against the composed Chainer one on the real data,
iteration by iteration, with the same random numbers.

    python -m experiments.ssl_paths [--iterations 30] [--out result/bench] \
        [--device 0]

Both runs build the default experiment (100 labels, seed 1) and take the
same draws: the fused discriminator and generator nodes draw their noise
in the order the composed links do.  The composed run has the same
networks with the fast nodes of gan.fast.mlp switched off.  Per iteration
it prints both runs' discriminator and generator losses and their
relative difference,
and writes OUT/ssl_paths.json.  The two agree to float32 rounding at
first; how fast that rounding grows shows how chaotic the training is,
which is why two runs (or two code versions) can only be compared by
their statistics, not their trajectories.
"""
import argparse
import json
import os

import chainer

from gan import options as gopt
from gan import runs
from mnist_ssl import build
from mnist_ssl import options as sopt

KEYS = ('dis/loss', 'gen/loss')


def trajectory(iterations, composed, device='-1'):
    parts = build.build(sopt.resolve(progress=False, device=device))
    if composed:
        # the same networks, initialization and draws (one D pass over the
        # three batches, noise split over two threads), computed by the
        # composed links instead of the fast nodes
        for net in (parts['dis'], parts['gen']):
            for link in net.links():
                if hasattr(link, 'fast'):
                    link.fast = False
    updater = parts['updater']
    rows = []
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
    gopt.add_device(p)
    args = p.parse_args(argv)
    with gopt.one_line_errors(p):
        runs.parse_device(args.device)
    fast = trajectory(args.iterations, composed=False, device=args.device)
    slow = trajectory(args.iterations, composed=True, device=args.device)
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
