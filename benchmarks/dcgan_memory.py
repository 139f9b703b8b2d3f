#!/usr/bin/env python
"""Peak resident memory of a 64 px DCGAN run on a folder of 45,000 images.

Real anime faces are not on this machine, so the images are generated for
the purpose (smooth random colour fields, 80 x 80 PNG, so that the loader
also crops and resizes) into ``--folder`` once and reused.  Each variant
then trains for a few iterations in a child process, and the child's peak
resident set size is read from the kernel (``getrusage``).  What dominates
is the data set held as uint8 (45,000 x 3 x 64 x 64 = 553 MB) plus the
networks and their Adam states.

    python benchmarks/dcgan_memory.py [--images 45000] [--iterations 3]
        [--variant both] [--json PATH]
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy
from PIL import Image

from gan import runs

from animeface import variants as V

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_images(folder, n, size=80, seed=0):
    """n smooth random RGB images in folder (kept if already complete)."""
    os.makedirs(folder, exist_ok=True)
    have = len([f for f in os.listdir(folder) if f.endswith('.png')])
    if have >= n:
        return
    rng = numpy.random.default_rng(seed)
    for i in range(have, n):
        low = rng.integers(0, 256, (5, 5, 3), dtype=numpy.uint8)
        im = Image.fromarray(low).resize((size, size), Image.BICUBIC)
        im.save(os.path.join(folder, 'img{:05d}.png'.format(i)))


def child_peak_rss_mb(cmd):
    """Run cmd (the only child of this process): its peak RSS (MB) and
    wall seconds."""
    t = time.time()
    subprocess.run(cmd, check=True, cwd=ROOT)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return rss / 1024.0, time.time() - t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--images', type=int, default=45000)
    p.add_argument('--folder', default=os.path.join(
        ROOT, 'result', 'bench', 'faces45k'))
    p.add_argument('--size', type=int, default=64)
    p.add_argument('--ch', type=int, default=512)
    p.add_argument('--batchsize', type=int, default=64)
    p.add_argument('--iterations', type=int, default=3)
    p.add_argument('--variant', default='fm_mbd', choices=V.names(),
                   help='DCGAN variant (animeface/variants.py; default: '
                   'fm_mbd, the largest)')
    p.add_argument('--feature-matching', default='paper',
                   choices=('paper', 'blog'),
                   help='the form of the feature-matching variants '
                   '(default %(default)s)')
    p.add_argument('--json', default=None)
    args = p.parse_args(argv)

    t = time.time()
    make_images(args.folder, args.images)
    print('images: {} in {} ({:.0f} s)'.format(args.images, args.folder,
                                               time.time() - t))
    name = args.variant
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, os.path.join(ROOT, 'train_dcgan.py'),
               '--data', args.folder, '--size', str(args.size),
               '--ch', str(args.ch), '--batchsize', str(args.batchsize),
               '--iterations', str(args.iterations),
               '--snapshot-interval', str(args.iterations),
               '--grid-interval', str(args.iterations),
               '--out', os.path.join(out, name)] + V.get(name).flags(
                   args.feature_matching)
        rss, wall = child_peak_rss_mb(cmd)
    dataset_mb = args.images * 3 * args.size ** 2 / 2 ** 20
    result = {'variant': name, 'images': args.images, 'size': args.size,
              'ch': args.ch, 'batchsize': args.batchsize,
              'iterations': args.iterations,
              'peak_rss_mb': round(rss, 1),
              'dataset_uint8_mb': round(dataset_mb, 1),
              'wall_seconds': round(wall, 1)}
    for k, v in result.items():
        print('{:20s} {}'.format(k, v))
    if args.json:
        runs.write_json(args.json, result)
    return result


if __name__ == '__main__':
    main()
