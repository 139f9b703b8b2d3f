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

``--net blog``: the blog's animeface pair (gan.nets.BlogConvGenerator and
BlogConvDiscriminator) stepped as the trainer does under ``--preset blog``
(its options, optimizers and updater, from animeface/build.py; update
order d-then-g), with the fast CPU path against the same step with
``--no-fast`` (Chainer's stock links): ``plain_*`` in the JSON.  ``--ch``
defaults to the preset's (512) there.

``--floor`` also records every matrix product of one step (those of
gan/fast/conv.py and of the dense layers) and replays them alone with the
same shapes and memory orders: ``products_alone_ms`` is the part of the
step that no rewrite of the rest can remove with these products.

    python benchmarks/dcgan_speed.py [--json PATH] [--sizes 32 64] [--ch 128]
        [--batchsize 64] [--profile] [--floor] [--net dcgan|blog]
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

from animeface import build as abuild
from animeface import options as aopt
from gan import nets, runs
from gan.dcgan_updater import DCGANUpdater
from gan.fast import conv as fast_conv

NETS = ('dcgan', 'blog')
DCGAN_CH = 128


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


def random_images(batchsize, size):
    rng = numpy.random.RandomState(0)
    return rng.randint(0, 256, (batchsize, 3, size, size)).astype(
        numpy.uint8)


def build(size, ch, batchsize, mbd, fast=True):
    gen = nets.DCGANGenerator(size=size, ch=ch, z_dim=100, fast=fast)
    dis = nets.DCGANDiscriminator(
        size=size, ch=ch, fast=fast, minibatch_discrimination=(
            {'num_kernels': 50, 'kernel_dim': 5} if mbd else None))
    opts = {}
    for name, link in (('gen', gen), ('dis', dis)):
        o = chainer.optimizers.Adam(alpha=2e-4, beta1=0.5)
        o.setup(link)
        opts[name] = o
    images = random_images(batchsize, size)
    updater = DCGANUpdater(_Batches(list(images)), opts)
    return gen, dis, opts, images, updater


def blog_options(size, ch, batchsize, mbd, fast=True):
    """train_dcgan.py's options under ``--preset blog`` with these
    overrides (``ch`` None: the preset's)."""
    values = dict(preset='blog', data='unused', size=size,
                  batchsize=batchsize, minibatch_discrimination=mbd,
                  fast=fast)
    if ch is not None:
        values['ch'] = ch
    o = aopt.resolve(values)
    aopt.check(o)
    return o


def build_blog(size, ch, batchsize, mbd, fast=True):
    """The updater the trainer builds under ``--preset blog`` (its
    networks, optimizers, loss and update order), over one fixed batch."""
    o = blog_options(size, ch, batchsize, mbd, fast)
    numpy.random.seed(0)  # Chainer's initializers draw from it
    gen, dis = abuild.build_networks(o, 3)
    opts = {'gen': abuild.build_optimizer(o, gen),
            'dis': abuild.build_optimizer(o, dis)}
    images = random_images(batchsize, size)
    return o, abuild.build_updater(o, _Batches(list(images)), opts)


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


def time_steps(ours, other, blocks, iters):
    """Median seconds of a step of ``ours`` and of ``other`` (after one
    warm-up step each), in alternating blocks of ``iters`` steps, and the
    steps measured of each."""
    ours()
    other()
    t_ours, t_other = [], []
    for _ in range(blocks):
        for fn, acc in ((ours, t_ours), (other, t_other)):
            for _ in range(iters):
                t = time.perf_counter()
                fn()
                acc.append(time.perf_counter() - t)
    return (statistics.median(t_ours), statistics.median(t_other),
            len(t_ours))


def speed_row(net, order, size, ch, batchsize, mbd, mo, mb, steps,
              baseline):
    """The JSON row of one size: ours (``mo`` seconds a step) against
    ``baseline`` (``mb``)."""
    return {'net': net, 'order': order, 'size': size, 'ch': ch,
            'batchsize': batchsize, 'minibatch_discrimination': mbd,
            'ms_per_step_median': round(mo * 1e3, 1),
            'images_per_second': round(batchsize / mo, 1),
            baseline + '_ms_per_step_median': round(mb * 1e3, 1),
            baseline + '_images_per_second': round(batchsize / mb, 1),
            'speedup_vs_' + baseline: round(mb / mo, 2),
            'steps_measured': steps}


def measure(size, ch, batchsize, blocks, iters, mbd):
    ch = DCGAN_CH if ch is None else ch
    gen, dis, opts, images, updater = build(size, ch, batchsize, mbd)
    gen2, dis2, opts2, _, _ = build(size, ch, batchsize, mbd, fast=False)
    mo, mn, steps = time_steps(
        updater.update, lambda: naive_step(gen2, dis2, opts2, images),
        blocks, iters)
    return speed_row('dcgan', updater.order, size, ch, batchsize, mbd, mo,
                     mn, steps, 'naive'), updater


def measure_blog(size, ch, batchsize, blocks, iters, mbd):
    """The blog pair's step (``--preset blog``) on the fast CPU path
    against the same step with ``--no-fast``."""
    o, updater = build_blog(size, ch, batchsize, mbd)
    _, plain = build_blog(size, ch, batchsize, mbd, fast=False)
    mo, mp, steps = time_steps(updater.update, plain.update, blocks, iters)
    return speed_row('blog', updater.order, size, o.ch, batchsize, mbd, mo,
                     mp, steps, 'plain'), updater


def _layout(a):
    return 'F' if a.flags.f_contiguous and not a.flags.c_contiguous else 'C'


class _LinearProducts(chainer.FunctionHook):
    """Records the products of Chainer's dense layers (forward, input
    gradient, weight gradient) as ((shape, order), (shape, order))."""
    name = 'LinearProducts'

    def __init__(self, out):
        self.out = out

    def forward_preprocess(self, function, in_data):
        label = function.label
        if label == 'LinearFunction':
            x, W = in_data[:2]
            self.out.append(((x.shape, 'C'), (W.shape[::-1], 'F')))
        elif label == 'LinearGradData':
            W, gy = in_data
            self.out.append(((gy.shape, 'C'), (W.shape, 'C')))
        elif label == 'LinearGradWeight':
            x, gy = in_data
            self.out.append(((gy.shape[::-1], 'F'), (x.shape, 'C')))


def record_products(updater):
    """The matrix products of one step of ``updater``: those of the fast
    convolutions (gan.fast.conv._dot) and of the dense layers, each as
    ((shape, memory order), (shape, memory order))."""
    products = []
    dot = fast_conv._dot

    def recording(a, b):
        products.append(((a.shape, _layout(a)), (b.shape, _layout(b))))
        return dot(a, b)

    fast_conv._dot = recording
    try:
        with _LinearProducts(products):
            updater.update()
    finally:
        fast_conv._dot = dot
    return products


def products_alone(products, repeats=5):
    """(best-of-``repeats`` milliseconds, GFLOP) of the recorded products
    replayed alone: float32 operands of the same shapes and memory
    orders, one numpy.matmul each (a stack where an operand has three
    axes)."""
    rng = numpy.random.default_rng(0)

    def operand(shape, order):
        a = rng.standard_normal(shape, dtype=numpy.float32)
        return numpy.asfortranarray(a) if order == 'F' else a

    pairs = [(operand(*a), operand(*b)) for a, b in products]
    gflop = sum(2.0 * numpy.prod(numpy.broadcast_shapes(
        a.shape[:-2], b.shape[:-2])) * a.shape[-2] * a.shape[-1] *
        b.shape[-1] for a, b in pairs) / 1e9
    best = float('inf')
    for _ in range(repeats + 1):  # the first is a warm-up
        t = time.perf_counter()
        for a, b in pairs:
            numpy.matmul(a, b)
        best = min(best, time.perf_counter() - t)
    return best * 1e3, gflop


def floor_fields(updater, row):
    """The step's matrix products alone, beside the step (``--floor``)."""
    products = record_products(updater)
    ms, gflop = products_alone(products)
    return {'products_per_step': len(products),
            'product_gflop_per_step': round(gflop, 3),
            'products_alone_ms': round(ms, 1),
            'products_alone_gflops': round(gflop / ms * 1e3, 1),
            'products_share_of_step': round(
                ms / row['ms_per_step_median'], 3)}


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
    p.add_argument('--net', choices=NETS, default='dcgan',
                   help='dcgan: the DCGAN pair against the naive step; '
                   'blog: the blog pair\'s --preset blog step against '
                   '--no-fast (default %(default)s)')
    p.add_argument('--ch', type=int, default=None,
                   help='generator width (default {} for dcgan, the blog '
                   'preset\'s for blog)'.format(DCGAN_CH))
    p.add_argument('--batchsize', type=int, default=64)
    p.add_argument('--blocks', type=int, default=3)
    p.add_argument('--iters', type=int, default=3)
    p.add_argument('--mbd', action='store_true',
                   help='with minibatch discrimination')
    p.add_argument('--profile', action='store_true',
                   help='print a cProfile of our step')
    p.add_argument('--floor', action='store_true',
                   help='also time the step\'s matrix products alone '
                   '(same shapes and memory orders): the part of the step '
                   'no rewrite of the rest can remove')
    args = p.parse_args(argv)
    rows = []
    run = measure_blog if args.net == 'blog' else measure
    for size in args.sizes:
        row, updater = run(size, args.ch, args.batchsize, args.blocks,
                           args.iters, args.mbd)
        if args.floor:
            row.update(floor_fields(updater, row))
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
