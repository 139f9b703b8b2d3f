"""A DCGAN run's pieces from its options: networks, optimizers, the
batch iterator, the updater and a Chainer Trainer with its extensions (the
wiring, nothing else; :mod:`animeface.options` declares the options and
:mod:`animeface.train` runs it)."""
import math

import numpy

import chainer
from chainer import training
from chainer.training import extensions, triggers

from gan import dcgan_updater
from gan import extensions as gext
from gan import gpu, health, multinode, nets, runs
from gan import options as gopt
from gan import random as grandom
from gan.iterators import FixedLengthEpochs

from animeface.options import DEFAULT_EPOCHS

SNAPSHOT_PATTERN = 'snapshot_iter_{.updater.iteration}'
GRID_ROWS = GRID_COLS = 10


def epoch_length(o, n_images):
    """Updates per epoch: ``--epoch-updates``, else one pass over the data."""
    if o.epoch_updates:
        return o.epoch_updates
    return max(1, int(math.ceil(n_images / o.batchsize)))


def total_iterations(o, n_images):
    if o.iterations is not None:
        return o.iterations
    epochs = DEFAULT_EPOCHS if o.epochs is None else o.epochs
    return max(1, int(math.ceil(epochs * epoch_length(o, n_images))))


def health_warmup(last):
    """Iterations before the run-health checks start: 1000, or half of a
    shorter run."""
    return min(health.WARMUP, last // 2)


def schedule_points(interval, last):
    """Multiples of ``interval`` up to ``last``, and ``last``."""
    points = list(range(interval, last + 1, interval))
    if not points or points[-1] != last:
        points.append(last)
    return points


def schedule(interval, last):
    """A trigger at :func:`schedule_points`."""
    return triggers.ManualScheduleTrigger(schedule_points(interval, last),
                                          'iteration')


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


def build_generator(o, channels):
    """The generator of options ``o`` for images of ``channels``."""
    if o.net == 'blog':
        return nets.BlogConvGenerator(o.size, o.z_dim, out_ch=channels,
                                      wscale=o.wscale, ch=o.ch, fast=o.fast)
    return nets.DCGANGenerator(o.size, o.ch, o.z_dim, out_ch=channels,
                               wscale=o.wscale, fast=o.fast)


def build_networks(o, channels):
    """(generator, discriminator) of options ``o``."""
    gen = build_generator(o, channels)
    mbd = gopt.mbd_arguments(o, fast=o.fast)
    if o.net == 'blog':
        dis = nets.BlogConvDiscriminator(
            o.size, in_ch=channels, wscale=o.wscale,
            input_noise=o.input_noise, minibatch_discrimination=mbd,
            fast=o.fast)
    else:
        dis = nets.DCGANDiscriminator(
            o.size, o.ch, in_ch=channels, wscale=o.wscale,
            input_noise=o.input_noise, minibatch_discrimination=mbd,
            fast=o.fast, dropout=o.dis_dropout)
    return gen, dis


def build_optimizer(o, net):
    """Adam of options ``o`` set up on ``net``, with the gradient clipping
    of ``--grad-clip``."""
    opt = chainer.optimizers.Adam(alpha=o.lr, beta1=o.beta1)
    opt.setup(net)
    if o.grad_clip:
        opt.add_hook(chainer.optimizer_hooks.GradientClipping(o.grad_clip))
    return opt


def build_updater(o, iterator, opts, device=None, comm=None):
    """The DCGAN updater of options ``o`` (its generator loss and update
    order) over ``iterator`` and the optimizers ``opts``."""
    return dcgan_updater.DCGANUpdater(
        iterator, opts, feature_matching=o.feature_matching,
        fm_weight=o.fm_weight, device=device, comm=comm,
        order=o.update_order, gen_steps=o.gen_steps)


def fixed_latents(o, gen, n=GRID_ROWS * GRID_COLS):
    """The grids' latent batch: from the seed alone, so every variant of a
    comparison draws the same z."""
    return gen.sample_z(numpy.random.default_rng([o.seed, 1]), n)


def build_trainer(o, images, comm=None):
    """A ready Trainer for ``o`` on ``images`` (:class:`ImageData`);
    with a ChainerMN communicator ``comm``, this rank's part of the run
    (see :mod:`gan.multinode`)."""
    device = (runs.parse_device(o.device) if comm is None
              else comm.gan_device)
    gpu.select(device)  # every array and draw of the run on this device
    grandom.seed(o.seed)
    numpy.random.seed(o.seed)  # Chainer's initializers draw from it
    gen, dis = build_networks(o, images.channels)
    multinode.make_global(gen, comm)
    multinode.make_global(dis, comm)
    gen.to_device(device)
    dis.to_device(device)
    opts = {name: multinode.optimizer(build_optimizer(o, net), comm)
            for name, net in (('gen', gen), ('dis', dis))}
    if o.sampling == 'replacement':
        iterator = FixedLengthEpochs(
            ReplacementIterator(images.dataset, o.batchsize),
            epoch_length(o, len(images)))
    else:
        iterator = chainer.iterators.SerialIterator(
            images.dataset, o.batchsize, order_sampler=GeneratorShuffle())
    if comm is not None:  # every rank draws the global batch, keeps its part
        multinode.local_batchsize(o.batchsize, comm)
        iterator = multinode.ShardIterator(iterator, comm)
    updater = build_updater(o, iterator, opts, device, comm)
    last = total_iterations(o, len(images))
    trainer = training.Trainer(updater, (last, 'iteration'), out=o.out)
    trainer.extend(gext.RandomState(), name='random_state')
    multinode.add_rank_count(trainer, comm)
    if not runs.is_root(comm):  # only rank 0 writes the run folder
        return trainer

    keys = ['gen/loss', 'dis/loss']
    if o.feature_matching != 'none':
        keys.append('gen/loss_fm')
    log_every = (min(o.log_interval, last), 'iteration')
    trainer.extend(extensions.LogReport(trigger=log_every))
    trainer.extend(extensions.PrintReport(
        ['epoch', 'iteration'] + keys + ['dis/real', 'dis/fake',
                                         'elapsed_time']))
    trainer.extend(extensions.ProgressBar(update_interval=10))
    if extensions.PlotReport.available():
        trainer.extend(extensions.PlotReport(keys, 'iteration',
                                             trigger=log_every,
                                             file_name='loss.png'))
    z = device.send(fixed_latents(o, gen))
    trainer.extend(gext.FixedLatentGrid(gen, z, GRID_ROWS, GRID_COLS),
                   trigger=schedule(o.grid_interval, last))
    # the warnings of a run going wrong: D's loss in the log, the grid's
    # latent batch at the grids' points against as many real images
    trainer.extend(health.RunHealth(
        gen, z, images.sample(len(z), seed=o.seed),
        schedule_points(o.grid_interval, last), warmup=health_warmup(last)),
        name='health')
    trainer.extend(extensions.snapshot(filename=SNAPSHOT_PATTERN),
                   trigger=schedule(o.snapshot_interval, last))
    return trainer
