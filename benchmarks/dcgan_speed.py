#!/usr/bin/env python
"""Speed of one DCGAN step (D update + G update) at 32 and 64 px: the
project's updater against the same networks run the naive way, alternating
in one run, plus a profile of where the time goes.

Naive = the same networks built from Chainer's stock convolution links,
stepped the way Chainer's DCGAN example does: float64 noise cast to
float32, D and G losses both backpropagated through the whole graph (the D
loss into the generator, the G loss into D's parameters).  Ours = the
project's updater (one G forward, the D loss stopped at the fake images)
and the faster CPU convolutions of gan/fast/conv.py.

    python benchmarks/dcgan_speed.py [--json PATH] [--sizes 32 64] [--ch 128]
        [--batchsize 64] [--profile]
"""
import argparse
import cProfile
import io
import json
import pstats
import statistics
import time

import numpy

import chainer
import chainer.functions as F

from gan import nets, runs
from gan.dcgan_updater import DCGANUpdater


class _Batches(chainer.dataset.Iterator):
    """A stand-in iterator that returns the same uint8 batch forever."""

    def __init__(self, batch):
        self.batch = batch
        self.epoch, self.epoch_detail, self.is_new_epoch = 0, 0.0, False

    def next(self):
        return self.batch

    __next__ = next

    def serialize(self, s):
        pass


def build(size, ch, batchsize, mbd, fast=True):
    rng = numpy.random.RandomState(0)
    gen = nets.DCGANGenerator(size=size, ch=ch, z_dim=100, fast=fast)
    dis = nets.DCGANDiscriminator(
        size=size, ch=ch, fast=fast, minibatch_discrimination=(
            {'num_kernels': 50, 'kernel_dim': 5} if mbd else None))
    opts = {}
    for name, link in (('gen', gen), ('dis', dis)):
        o = chainer.optimizers.Adam(alpha=2e-4, beta1=0.5)
        o.setup(link)
        opts[name] = o
    images = rng.randint(0, 256, (batchsize, 3, size, size)).astype(
        numpy.uint8)
    updater = DCGANUpdater(_Batches(list(images)), opts)
    return gen, dis, opts, images, updater


def naive_step(gen, dis, opts, images):
    """Chainer-example style step."""
    x_real = images.astype(numpy.float32) / 127.5 - 1.0
    n = len(x_real)
    z = numpy.random.randn(n, gen.z_dim).astype(numpy.float32)
    y_real = dis(x_real)
    x_fake = gen(z)
    y_fake = dis(x_fake)
    loss_dis = F.sum(F.softplus(-y_real)) / n + F.sum(F.softplus(y_fake)) / n
    dis.cleargrads()
    gen.cleargrads()
    loss_dis.backward()
    opts['dis'].update()
    loss_gen = F.sum(F.softplus(-y_fake)) / n
    gen.cleargrads()
    dis.cleargrads()
    loss_gen.backward()
    opts['gen'].update()


def measure(size, ch, batchsize, blocks, iters, mbd):
    gen, dis, opts, images, updater = build(size, ch, batchsize, mbd)
    gen2, dis2, opts2, _, _ = build(size, ch, batchsize, mbd, fast=False)
    ours = lambda: updater.update()  # noqa: E731
    naive = lambda: naive_step(gen2, dis2, opts2, images)  # noqa: E731
    ours()
    naive()
    t_ours, t_naive = [], []
    for _ in range(blocks):
        for fn, acc in ((ours, t_ours), (naive, t_naive)):
            for _ in range(iters):
                t = time.perf_counter()
                fn()
                acc.append(time.perf_counter() - t)
    mo, mn = statistics.median(t_ours), statistics.median(t_naive)
    return {'size': size, 'ch': ch, 'batchsize': batchsize,
            'minibatch_discrimination': mbd,
            'ms_per_step_median': round(mo * 1e3, 1),
            'images_per_second': round(batchsize / mo, 1),
            'naive_ms_per_step_median': round(mn * 1e3, 1),
            'naive_images_per_second': round(batchsize / mn, 1),
            'speedup_vs_naive': round(mn / mo, 2),
            'steps_measured': len(t_ours)}, updater


def profile(updater, steps=5, top=15):
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(steps):
        updater.update()
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats('tottime').print_stats(top)
    return s.getvalue()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--json', default=None)
    p.add_argument('--sizes', type=int, nargs='+', default=[32, 64])
    p.add_argument('--ch', type=int, default=128)
    p.add_argument('--batchsize', type=int, default=64)
    p.add_argument('--blocks', type=int, default=3)
    p.add_argument('--iters', type=int, default=3)
    p.add_argument('--mbd', action='store_true',
                   help='with minibatch discrimination')
    p.add_argument('--profile', action='store_true',
                   help='print a cProfile of our step')
    args = p.parse_args(argv)
    rows = []
    for size in args.sizes:
        row, updater = measure(size, args.ch, args.batchsize, args.blocks,
                               args.iters, args.mbd)
        print(json.dumps(row))
        if args.profile:
            text = profile(updater)
            print(text)
            row['profile_top'] = text
        rows.append(row)
    if args.json:
        runs.write_json(args.json, rows)
    return rows


if __name__ == '__main__':
    main()
