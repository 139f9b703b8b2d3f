"""Flags -> networks, optimizers, updater and a Chainer Trainer for one
DCGAN run.  Shared by ``train_dcgan.py`` and ``animeface.compare``.

A run folder holds ``options.json``, ``log`` (LogReport), ``loss.png``,
``samples_<iteration>.png`` grids of a fixed latent batch (and
``samples_latest.png``), ``snapshot_iter_<iteration>`` trainer snapshots,
``machines.jsonl`` (a line per process that trained it: CPU, BLAS,
versions, start iteration) and, once finished, ``result.json``.
"""
import argparse
import json
import math
import os

import numpy

import chainer
from chainer import training
from chainer.training import extensions, triggers

from gan import dcgan_updater
from gan import extensions as gext
from gan import nets
from gan import random as grandom
from gan import runs

from animeface import data as adata

# Options that fix the shapes of the networks' parameters.
MODEL_OPTIONS = ('data', 'size', 'ch', 'z_dim', 'minibatch_discrimination',
                 'mbd_kernels', 'mbd_dim', 'mbd_fixed_t')
SNAPSHOT_PATTERN = 'snapshot_iter_{.updater.iteration}'
GRID_ROWS = GRID_COLS = 10


class UsageError(ValueError):
    """A bad combination of options; the message is one line."""


def add_arguments(parser, variants=True):
    """The data, network, budget and output flags (``variants=False`` leaves
    out the feature-matching / minibatch-discrimination switches, which
    ``compare`` sets itself)."""
    g = parser.add_argument_group('data and network')
    g.add_argument('--data', required=True,
                   help='a folder of images (face crops, any size: centre '
                        'crop and resize), or "mnist" or "stacked-mnist"')
    g.add_argument('--size', type=int, default=64, choices=nets.DCGAN_SIZES,
                   help='image size in pixels (default 64)')
    g.add_argument('--ch', type=int, default=512,
                   help='channels of the widest layer (default 512)')
    g.add_argument('--z-dim', type=int, default=100,
                   help='latent dimension (default 100)')
    if variants:
        g.add_argument('--feature-matching', default='none',
                       choices=dcgan_updater.FEATURE_MATCHING,
                       help='generator loss: none (-log D(G(z))), paper '
                            '(feature matching of batch means instead of the '
                            'GAN loss) or blog (GAN loss + paired MSE)')
        g.add_argument('--minibatch-discrimination', action='store_true',
                       help='add minibatch discrimination before D\'s output')
    g.add_argument('--fm-weight', type=float, default=1.0,
                   help='weight of the feature-matching term (default 1)')
    g.add_argument('--mbd-kernels', type=int, default=100,
                   help='minibatch discrimination: number of kernels B '
                        '(default 100 as in the authors\' code; blog 50)')
    g.add_argument('--mbd-dim', type=int, default=5,
                   help='minibatch discrimination: kernel dimension C '
                        '(default 5)')
    g.add_argument('--mbd-fixed-t', action='store_true',
                   help='keep the tensor T at its random initial value '
                        '(the blog\'s open question) instead of learning it')
    g = parser.add_argument_group('training budget')
    g.add_argument('--batchsize', type=int, default=64,
                   help='minibatch size (default 64)')
    budget = g.add_mutually_exclusive_group()
    budget.add_argument('--epochs', type=float,
                        help='training length in epochs (default 375, the '
                             'blog\'s)')
    budget.add_argument('--iterations', type=int,
                        help='training length in iterations')
    g.add_argument('--lr', type=float, default=2e-4,
                   help='Adam step size (default 0.0002)')
    g.add_argument('--beta1', type=float, default=0.5,
                   help='Adam beta1 (default 0.5)')
    g.add_argument('--seed', type=int, default=0,
                   help='seed of weights, data order, latents (default 0)')
    g.add_argument('--device', default='@numpy',
                   help='CPU by default; a GPU id (0) or a Chainer device '
                        'specifier (@cupy:0)')
    g = parser.add_argument_group('output')
    g.add_argument('--out', default='result/dcgan',
                   help='output folder (default result/dcgan; compare: '
                        'result/compare)')
    g.add_argument('--snapshot-interval', type=int, default=1000,
                   help='iterations between trainer snapshots (and at the '
                        'end; default 1000)')
    g.add_argument('--grid-interval', type=int, default=500,
                   help='iterations between 10x10 sample grids (and at the '
                        'end; default 500)')
    g.add_argument('--log-interval', type=int, default=100,
                   help='iterations between log lines (default 100)')
    return parser


def check_args(args):
    """Raise UsageError for values argparse cannot check on its own."""
    positive = ['ch', 'z_dim', 'batchsize', 'snapshot_interval',
                'grid_interval', 'log_interval', 'mbd_kernels', 'mbd_dim']
    for name in positive:
        if getattr(args, name) < 1:
            raise UsageError('--{} must be at least 1, got {}'.format(
                name.replace('_', '-'), getattr(args, name)))
    if args.iterations is not None and args.iterations < 1:
        raise UsageError('--iterations must be at least 1')
    if args.epochs is not None and args.epochs <= 0:
        raise UsageError('--epochs must be positive')
    if args.lr <= 0 or not 0 <= args.beta1 < 1:
        raise UsageError('--lr must be positive and --beta1 in [0, 1)')
    try:
        nets._dcgan_layout(args.size, args.ch)
    except ValueError as e:
        raise UsageError(str(e)) from None
    get_device(args.device)


def get_device(spec):
    """The Chainer device of ``--device`` (see :func:`gan.runs.parse_device`);
    UsageError when it cannot be used."""
    try:
        return runs.parse_device(spec)
    except ValueError as e:
        raise UsageError(str(e)) from None


def total_iterations(args, n_images):
    if args.iterations is not None:
        return args.iterations
    epochs = 375 if args.epochs is None else args.epochs
    return max(1, int(math.ceil(epochs * n_images / args.batchsize)))


def schedule(interval, last):
    """Multiples of ``interval`` up to ``last``, and ``last``."""
    points = list(range(interval, last + 1, interval))
    if not points or points[-1] != last:
        points.append(last)
    return triggers.ManualScheduleTrigger(points, 'iteration')


class GeneratorShuffle:
    """Iterator order sampler drawing from :mod:`gan.random`, whose state is
    in the snapshots, so a resumed run visits the data in the same order."""

    def __call__(self, current_order, current_position):
        return grandom.generator().permutation(len(current_order))


def build_networks(args, channels):
    gen = nets.DCGANGenerator(args.size, args.ch, args.z_dim, out_ch=channels)
    mbd = None
    if args.minibatch_discrimination:
        mbd = dict(num_kernels=args.mbd_kernels, kernel_dim=args.mbd_dim,
                   learn_T=not args.mbd_fixed_t)
    dis = nets.DCGANDiscriminator(args.size, args.ch, in_ch=channels,
                                  minibatch_discrimination=mbd)
    return gen, dis


def fixed_latents(args, n=GRID_ROWS * GRID_COLS):
    """The grids' latent batch: from the seed alone, so every variant of a
    comparison draws the same z."""
    rng = numpy.random.default_rng([args.seed, 1])
    return rng.standard_normal((n, args.z_dim), dtype=numpy.float32)


def build_trainer(args, images):
    """A ready Trainer for ``args`` on ``images`` (:class:`ImageData`)."""
    device = get_device(args.device)
    device.use()
    grandom.seed(args.seed)
    numpy.random.seed(args.seed)  # Chainer's initializers draw from it
    gen, dis = build_networks(args, images.channels)
    gen.to_device(device)
    dis.to_device(device)
    opts = {}
    for name, net in (('gen', gen), ('dis', dis)):
        opts[name] = chainer.optimizers.Adam(alpha=args.lr, beta1=args.beta1)
        opts[name].setup(net)
    iterator = chainer.iterators.SerialIterator(
        images.dataset, args.batchsize, order_sampler=GeneratorShuffle())
    updater = dcgan_updater.DCGANUpdater(
        iterator, opts, feature_matching=args.feature_matching,
        fm_weight=args.fm_weight, device=device)
    last = total_iterations(args, len(images))
    trainer = training.Trainer(updater, (last, 'iteration'), out=args.out)

    keys = ['gen/loss', 'dis/loss']
    if args.feature_matching != 'none':
        keys.append('gen/loss_fm')
    log_every = (min(args.log_interval, last), 'iteration')
    trainer.extend(extensions.LogReport(trigger=log_every))
    trainer.extend(extensions.PrintReport(
        ['epoch', 'iteration'] + keys + ['dis/real', 'dis/fake',
                                         'elapsed_time']))
    trainer.extend(extensions.ProgressBar(update_interval=10))
    if extensions.PlotReport.available():
        trainer.extend(extensions.PlotReport(keys, 'iteration',
                                             trigger=log_every,
                                             file_name='loss.png'))
    z = device.send(fixed_latents(args))
    trainer.extend(gext.FixedLatentGrid(gen, z, GRID_ROWS, GRID_COLS),
                   trigger=schedule(args.grid_interval, last))
    trainer.extend(extensions.snapshot(filename=SNAPSHOT_PATTERN),
                   trigger=schedule(args.snapshot_interval, last))
    trainer.extend(gext.RandomState(), name='random_state')
    return trainer


snapshot_iteration = runs.snapshot_iteration
latest_snapshot = runs.latest_snapshot


def read_json(folder, name):
    """The content of ``folder/name``, or None when it is not there."""
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def read_options(folder):
    return read_json(folder, 'options.json')


def mismatch_message(path, args):
    """The one-line explanation for a snapshot that does not fit: the
    differing model options when the run folder's options.json is there."""
    written = read_options(os.path.dirname(os.path.abspath(path))) or {}
    diffs = ['--{} {} (here {})'.format(k.replace('_', '-'), written[k],
                                        getattr(args, k, None))
             for k in MODEL_OPTIONS
             if k in written and written[k] != getattr(args, k, None)]
    detail = '; it was written with ' + ', '.join(diffs) if diffs else ''
    return ('snapshot {} does not match this model{}; use the same {} as '
            'the run that wrote it').format(
                path, detail, '/'.join('--' + k.replace('_', '-')
                                       for k in MODEL_OPTIONS))


def resume(trainer, path, args):
    if not os.path.isfile(path):
        raise UsageError('snapshot {} does not exist'.format(path))
    try:
        chainer.serializers.load_npz(path, trainer)
    except (KeyError, ValueError) as e:
        raise UsageError(mismatch_message(path, args) + ' ({})'.format(
            str(e).splitlines()[0][:120])) from None


def save_options(args, images):
    os.makedirs(args.out, exist_ok=True)
    options = dict(vars(args))
    options['images'] = len(images)
    options['channels'] = images.channels
    options['data_kind'] = images.kind
    with open(os.path.join(args.out, 'options.json'), 'w') as f:
        json.dump(options, f, indent=1, sort_keys=True)


def read_result(out):
    return read_json(out, 'result.json')


def write_result(trainer, args):
    """``result.json``: iterations done, time, images per second."""
    it = trainer.updater.iteration
    elapsed = trainer.elapsed_time
    result = {'iterations': it, 'epoch': trainer.updater.epoch_detail,
              'elapsed_seconds': round(elapsed, 2),
              'images_per_second': round(it * args.batchsize / elapsed, 2)
              if elapsed > 0 else None,
              'machine': runs.machine_info()}
    with open(os.path.join(args.out, 'result.json'), 'w') as f:
        json.dump(result, f, indent=1)
    return result


def run(args, images=None, resume_from=None):
    """Train one run to its end; returns result.json's content."""
    if images is None:
        images = adata.load(args.data, args.size, seed=args.seed)
    save_options(args, images)
    trainer = build_trainer(args, images)
    if resume_from:
        resume(trainer, resume_from, args)
    runs.record_machine(args.out, trainer.updater.iteration)
    trainer.run()
    return write_result(trainer, args)


def parser(description):
    return add_arguments(argparse.ArgumentParser(description=description))
