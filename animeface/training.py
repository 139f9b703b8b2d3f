"""Flags -> networks, optimizers, updater and a Chainer Trainer for one
DCGAN run.  Shared by ``train_dcgan.py`` and ``animeface.compare``.

Two presets set the defaults of the flags (any flag given overrides them):

* ``dcgan`` -- Radford et al.'s DCGAN: 64 px, z of 100 from N(0, 1),
  weights N(0, 0.02^2), Adam 2e-4 (beta1 0.5), batches of 64 in shuffled
  epochs over the data;
* ``blog`` -- the blog author's own animeface code: 96 px, z of 50 from
  U(-1, 1), Gaussian noise 0.3 on D's input, D convolutions 32-64-128-256
  each with batch norm and ELU, G dense -> ReLU -> batch norm and
  deconvolutions with batch norm and ReLU, weights N(0, 0.001^2), minibatch
  discrimination (when on) with 50 kernels of 5 in the blog's plain form,
  Adam 1e-4 (beta1 0.5), gradient norm clipped at 10, batches of 128 drawn
  with replacement, an epoch of 500 updates.

A run folder holds ``options.json`` (the resolved flags and the preset),
``log`` (LogReport), ``loss.png``, ``samples_<iteration>.png`` grids of a
fixed latent batch (and ``samples_latest.png``), ``snapshot_iter_<iteration>``
trainer snapshots, ``machines.jsonl`` (a line per process that trained it)
and, once finished, ``result.json``.
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
from gan.iterators import FixedLengthEpochs
from gan import links
from gan import multinode
from gan import nets
from gan import random as grandom
from gan import runs

from animeface import data as adata

UsageError = runs.UsageError

PRESETS = {
    'dcgan': dict(net='dcgan', size=64, ch=512, z_dim=100, wscale=0.02,
                  input_noise=0.0, mbd_kernels=100, mbd_dim=5,
                  mbd_form='authors', lr=2e-4, beta1=0.5, grad_clip=0.0,
                  batchsize=64, sampling='shuffle', epoch_updates=None),
    'blog': dict(net='blog', size=96, ch=512, z_dim=50, wscale=0.001,
                 input_noise=0.3, mbd_kernels=50, mbd_dim=5, mbd_form='blog',
                 lr=1e-4, beta1=0.5, grad_clip=10.0, batchsize=128,
                 sampling='replacement', epoch_updates=500),
}
NETS = ('dcgan', 'blog')
SAMPLING = ('shuffle', 'replacement')
# Options that fix the shapes of the networks' parameters.
MODEL_OPTIONS = ('net', 'data', 'size', 'ch', 'z_dim',
                 'minibatch_discrimination', 'mbd_kernels', 'mbd_dim',
                 'mbd_form', 'mbd_fixed_t')
SNAPSHOT_PATTERN = 'snapshot_iter_{.updater.iteration}'
GRID_ROWS = GRID_COLS = 10
DEFAULT_EPOCHS = 375


def add_arguments(parser, variants=True):
    """The preset, data, network, budget and output flags
    (``variants=False`` leaves out the feature-matching and
    minibatch-discrimination switches, which ``compare`` sets itself).
    Parse with :func:`parse_args` so that the preset's values become the
    defaults."""
    parser.add_argument('--preset', default='dcgan', choices=sorted(PRESETS),
                        help='defaults of the flags below: dcgan (Radford '
                             'et al.) or blog (the blog author\'s code); any '
                             'flag given overrides them (default '
                             '%(default)s)')
    g = parser.add_argument_group('data and network')
    g.add_argument('--data', required=True,
                   help='a folder of images (any size: centre crop and '
                        'resize), or "mnist" or "stacked-mnist"')
    g.add_argument('--net', choices=NETS,
                   help='network pair: dcgan or blog (default %(default)s)')
    g.add_argument('--size', type=int,
                   help='image size in pixels: 32, 64 or 96 for dcgan, a '
                        'multiple of 16 for blog (default %(default)s)')
    g.add_argument('--ch', type=int,
                   help='channels of the widest generator layer (dcgan: '
                        'also of D) (default %(default)s)')
    g.add_argument('--z-dim', type=int,
                   help='latent dimension (default %(default)s)')
    g.add_argument('--wscale', type=float,
                   help='standard deviation of the initial weights '
                        '(default %(default)s)')
    g.add_argument('--input-noise', type=float,
                   help='standard deviation of the Gaussian noise added to '
                        'D\'s input in training (default %(default)s)')
    if variants:
        g.add_argument('--feature-matching', default='none',
                       choices=dcgan_updater.FEATURE_MATCHING,
                       help='generator loss: none (-log D(G(z))), paper '
                            '(distance of batch means of D\'s features '
                            'only) or blog (-log D(G(z)) + per-sample mean '
                            'squared feature error) (default %(default)s)')
        g.add_argument('--minibatch-discrimination', action='store_true',
                       help='add minibatch discrimination before D\'s output')
    g.add_argument('--fm-weight', type=float, default=1.0,
                   help='weight of the feature-matching term '
                        '(default %(default)s)')
    g.add_argument('--mbd-kernels', type=int,
                   help='minibatch discrimination: number of kernels B '
                        '(default %(default)s)')
    g.add_argument('--mbd-dim', type=int,
                   help='minibatch discrimination: kernel dimension C '
                        '(default %(default)s)')
    g.add_argument('--mbd-form', choices=links.MBD_FORMS,
                   help='minibatch discrimination: authors (normalised T, '
                        'learned log-scale and bias, data-dependent init), '
                        'raw (T ~ N(0, 0.05^2)) or blog (T ~ N(0, '
                        '0.001^2)) (default %(default)s)')
    g.add_argument('--mbd-fixed-t', action='store_true',
                   help='keep T at its initial value instead of learning it')
    g = parser.add_argument_group('training budget')
    g.add_argument('--batchsize', type=int,
                   help='minibatch size (default %(default)s)')
    g.add_argument('--sampling', choices=SAMPLING,
                   help='batches from shuffled passes over the data, or '
                        'drawn with replacement (default %(default)s)')
    g.add_argument('--epoch-updates', type=int,
                   help='updates that make an epoch (default: one pass '
                        'over the data; blog preset 500)')
    budget = g.add_mutually_exclusive_group()
    budget.add_argument('--epochs', type=float,
                        help='training length in epochs (default {})'.format(
                            DEFAULT_EPOCHS))
    budget.add_argument('--iterations', type=int,
                        help='training length in iterations')
    g.add_argument('--lr', type=float, help='Adam step size (default '
                   '%(default)s)')
    g.add_argument('--beta1', type=float,
                   help='Adam beta1 (default %(default)s)')
    g.add_argument('--grad-clip', type=float,
                   help='clip the gradient norm of each network at this '
                        'value; 0: no clipping (default %(default)s)')
    g.add_argument('--seed', type=int, default=0,
                   help='seed of weights, data order, latents (default '
                        '%(default)s)')
    g.add_argument('--device', default='-1',
                   help='-1 for the CPU, a GPU id (0) or a Chainer device '
                        'specifier (@cupy:0) (default %(default)s)')
    g = parser.add_argument_group('output')
    g.add_argument('--out', default='result/dcgan',
                   help='output folder; one that holds a run is refused '
                        'unless resuming (default %(default)s)')
    g.add_argument('--resume', metavar='auto|SNAPSHOT',
                   help='auto: continue the latest snapshot in --out (or '
                        'start); or a snapshot_iter_N file')
    g.add_argument('--snapshot-interval', type=int, default=1000,
                   help='iterations between trainer snapshots (and at the '
                        'end) (default %(default)s)')
    g.add_argument('--grid-interval', type=int, default=500,
                   help='iterations between 10x10 sample grids (and at the '
                        'end) (default %(default)s)')
    g.add_argument('--log-interval', type=int, default=100,
                   help='iterations between log lines (default %(default)s)')
    multinode.add_arguments(parser)
    return parser


def parse_args(parser, argv=None):
    """Parse ``argv`` with the chosen preset's values as the defaults."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument('--preset', default='dcgan', choices=sorted(PRESETS))
    known, _ = pre.parse_known_args(argv)
    parser.set_defaults(**PRESETS[known.preset])
    return parser.parse_args(argv)


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
    if args.epoch_updates is not None and args.epoch_updates < 1:
        raise UsageError('--epoch-updates must be at least 1')
    if args.lr <= 0 or not 0 <= args.beta1 < 1:
        raise UsageError('--lr must be positive and --beta1 in [0, 1)')
    if args.wscale <= 0 or args.input_noise < 0 or args.grad_clip < 0:
        raise UsageError('--wscale must be positive, --input-noise and '
                         '--grad-clip at least 0')
    try:
        if args.net == 'dcgan':
            if args.size not in nets.DCGAN_SIZES:
                raise ValueError(
                    '--size {}: the dcgan network takes {} px (--net blog: '
                    'any multiple of 16)'.format(args.size, ', '.join(
                        map(str, nets.DCGAN_SIZES))))
            nets._dcgan_layout(args.size, args.ch)
        elif args.size % 16 or args.size < 16 or args.ch % 4:
            raise ValueError(
                '--net blog needs a --size divisible by 16 and a --ch '
                'divisible by 4, got --size {} --ch {}'.format(
                    args.size, args.ch))
    except ValueError as e:
        raise UsageError(str(e)) from None
    runs.parse_device(args.device)


def epoch_length(args, n_images):
    """Updates per epoch: ``--epoch-updates``, else one pass over the data."""
    if args.epoch_updates:
        return args.epoch_updates
    return max(1, int(math.ceil(n_images / args.batchsize)))


def total_iterations(args, n_images):
    if args.iterations is not None:
        return args.iterations
    epochs = DEFAULT_EPOCHS if args.epochs is None else args.epochs
    return max(1, int(math.ceil(epochs * epoch_length(args, n_images))))


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


class ReplacementIterator(chainer.dataset.Iterator):
    """Endless batches of ``batch_size`` examples drawn uniformly with
    replacement (from :mod:`gan.random`, whose state is in the snapshots).
    Wrap it in :class:`gan.iterators.FixedLengthEpochs` for epochs."""

    def __init__(self, dataset, batch_size):
        self.dataset, self.batch_size = dataset, batch_size

    def __next__(self):
        idx = grandom.generator().integers(0, len(self.dataset),
                                           self.batch_size)
        return [self.dataset[int(i)] for i in idx]

    next = __next__

    def reset(self):
        pass


def mbd_options(args):
    """Keyword arguments of the minibatch-discrimination layer, or None."""
    if not args.minibatch_discrimination:
        return None
    return dict(num_kernels=args.mbd_kernels, kernel_dim=args.mbd_dim,
                form=args.mbd_form, learn_T=not args.mbd_fixed_t, fused=True)


def build_generator(options, channels):
    """The generator for a dict of options (``vars(args)`` or a run's
    options.json)."""
    if options.get('net', 'dcgan') == 'blog':
        return nets.BlogGenerator(options['size'], options['z_dim'],
                                  out_ch=channels, wscale=options['wscale'],
                                  ch=options['ch'])
    return nets.DCGANGenerator(options['size'], options['ch'],
                               options['z_dim'], out_ch=channels,
                               wscale=options.get('wscale', 0.02), fast=True)


def build_networks(args, channels):
    gen = build_generator(vars(args), channels)
    if args.net == 'blog':
        dis = nets.BlogDiscriminator(
            args.size, in_ch=channels, wscale=args.wscale,
            input_noise=args.input_noise,
            minibatch_discrimination=mbd_options(args))
    else:
        dis = nets.DCGANDiscriminator(
            args.size, args.ch, in_ch=channels, wscale=args.wscale,
            input_noise=args.input_noise,
            minibatch_discrimination=mbd_options(args), fast=True)
    return gen, dis


def fixed_latents(args, gen, n=GRID_ROWS * GRID_COLS):
    """The grids' latent batch: from the seed alone, so every variant of a
    comparison draws the same z."""
    return gen.sample_z(numpy.random.default_rng([args.seed, 1]), n)


def build_trainer(args, images, comm=None):
    """A ready Trainer for ``args`` on ``images`` (:class:`ImageData`);
    with a ChainerMN communicator ``comm``, this rank's part of the run
    (see :mod:`gan.multinode`)."""
    device = (runs.parse_device(args.device) if comm is None
              else comm.gan_device)
    device.use()
    grandom.seed(args.seed)
    numpy.random.seed(args.seed)  # Chainer's initializers draw from it
    gen, dis = build_networks(args, images.channels)
    multinode.make_global(gen, comm)
    multinode.make_global(dis, comm)
    gen.to_device(device)
    dis.to_device(device)
    opts = {}
    for name, net in (('gen', gen), ('dis', dis)):
        opts[name] = chainer.optimizers.Adam(alpha=args.lr, beta1=args.beta1)
        opts[name].setup(net)
        if args.grad_clip:
            opts[name].add_hook(
                chainer.optimizer_hooks.GradientClipping(args.grad_clip))
        opts[name] = multinode.optimizer(opts[name], comm)
    if args.sampling == 'replacement':
        iterator = FixedLengthEpochs(
            ReplacementIterator(images.dataset, args.batchsize),
            epoch_length(args, len(images)))
    else:
        iterator = chainer.iterators.SerialIterator(
            images.dataset, args.batchsize, order_sampler=GeneratorShuffle())
    if comm is not None:  # every rank draws the global batch, keeps its part
        multinode.local_batchsize(args.batchsize, comm)
        iterator = multinode.ShardIterator(iterator, comm)
    updater = dcgan_updater.DCGANUpdater(
        iterator, opts, feature_matching=args.feature_matching,
        fm_weight=args.fm_weight, device=device, comm=comm)
    last = total_iterations(args, len(images))
    trainer = training.Trainer(updater, (last, 'iteration'), out=args.out)
    trainer.extend(gext.RandomState(), name='random_state')
    multinode.add_rank_count(trainer, comm)
    if not multinode.is_root(comm):  # only rank 0 writes the run folder
        return trainer

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
    z = device.send(fixed_latents(args, gen))
    trainer.extend(gext.FixedLatentGrid(gen, z, GRID_ROWS, GRID_COLS),
                   trigger=schedule(args.grid_interval, last))
    trainer.extend(extensions.snapshot(filename=SNAPSHOT_PATTERN),
                   trigger=schedule(args.snapshot_interval, last))
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


def mismatch_hint(path, args):
    """Which model options differ from the run folder that wrote ``path``
    (its options.json), as text for :func:`gan.runs.load_snapshot`."""
    written = read_options(os.path.dirname(os.path.abspath(path))) or {}
    diffs = ['--{} {} (here {})'.format(k.replace('_', '-'), written[k],
                                        getattr(args, k, None))
             for k in MODEL_OPTIONS
             if k in written and written[k] != getattr(args, k, None)]
    return '; it was written with ' + ', '.join(diffs) if diffs else ''


def save_options(args, images):
    options = dict(vars(args))
    options['images'] = len(images)
    options['channels'] = images.channels
    options['data_kind'] = images.kind
    runs.write_json(os.path.join(args.out, 'options.json'), options,
                    sort_keys=True)


def read_result(out):
    return runs.finished_result(out)


def write_result(trainer, args, comm=None):
    """``result.json``: iterations done, time, images per second."""
    it = trainer.updater.iteration
    elapsed = trainer.elapsed_time
    result = {'iterations': it, 'epoch': trainer.updater.epoch_detail,
              'elapsed_seconds': round(elapsed, 2),
              'images_per_second': round(it * args.batchsize / elapsed, 2)
              if elapsed > 0 else None,
              'out': args.out, 'machine': runs.machine_info(),
              'multi_node': multinode.describe(comm)}
    runs.write_json(os.path.join(args.out, 'result.json'), result)
    return result


def summary_line(result):
    """result.json's content as one line for people."""
    ips = result.get('images_per_second')
    return ('{} iterations (epoch {:.2f}) in {:.1f} s{}; grids, log and '
            'snapshots in {}'.format(
                result['iterations'], result['epoch'],
                result['elapsed_seconds'],
                ', {:.1f} images/s'.format(ips) if ips else '',
                result.get('out', '?')))


def run(args, images=None, resume_from=None, log=None, comm=None):
    """Train one run to its end; returns result.json's content (None on
    the ranks other than 0 of a multi-node run, ``comm``).
    ``resume_from``: a snapshot to continue (see :func:`gan.runs.
    prepare_out`)."""
    if images is None:  # under --multi-node rank 0 loads, all get them
        images = multinode.root_only(comm, lambda: adata.load(
            args.data, args.size, seed=args.seed, log=log))
    root = multinode.is_root(comm)

    def write_options():
        os.makedirs(args.out, exist_ok=True)
        save_options(args, images)
    multinode.root_only(comm, write_options)
    trainer = build_trainer(args, images, comm)
    if resume_from:
        multinode.root_only(
            comm, lambda: multinode.check_resume(resume_from, comm))
        runs.load_snapshot(trainer, resume_from,
                           hint=mismatch_hint(resume_from, args))
    if root:
        runs.record_machine(args.out, trainer.updater.iteration)
    trainer.run()
    return write_result(trainer, args, comm) if root else None
