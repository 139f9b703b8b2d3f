"""A semi-supervised MNIST run's pieces from its options: data, networks,
optimizers, iterators, updater and the Trainer with its extensions (the
wiring, nothing else; :mod:`mnist_ssl.options` declares the options and
:mod:`mnist_ssl.train` runs it)."""
import functools

import numpy

import chainer
from chainer import training
from chainer.training import extensions as E

from gan import extensions as gext
from gan import blog_nets, gpu, links, multinode, nets, optimizers, runs
from gan import options as gopt
from gan import random as grandom
from gan.iterators import ArrayIterator, FixedLengthEpochs
from gan.ssl_updater import SemiSupervisedGANUpdater
from mnist_ssl import data as mdata
from mnist_ssl.options import (BLOG_NETS, IMAGE_SHAPE, MODEL_OPTIONS,
                               N_CLASSES, OptionError, check, resolve,
                               value_range)

# the extension that keeps every --keep-every'th epoch's snapshot
KEEP_SNAPSHOT = 'keep_snapshot'

# the blog's networks by --dis-net / --gen-net: the post's day (commit
# 43eca16, train_mnist/model.py), 2016-12-25 (6a042a2) and the 2017 code
# (the classes' defaults)
BLOG_DIS = {
    'blog': dict(hidden=(1000, 500, 500, 250), activation='elu',
                 batch_norm=3, input_noise=0.0, hidden_noise=0.0,
                 init='normal-0.05'),
    'blog-2016-12-25': dict(activation='elu', noise_at='after',
                            init='normal-0.035'),
    'blog-2017': {},
}
BLOG_GEN = {'blog': dict(z_dim=10, init='normal-0.05'),
            'blog-2016-12-25': dict(init='normal-0.035'),
            'blog-2017': {}}


def build_models(o):
    """The discriminator and generator of options ``o``."""
    o = resolve(o)
    check(o)
    mbd = gopt.mbd_arguments(o)
    if o.dis_net in BLOG_NETS:
        dis = blog_nets.BlogMLPDiscriminator(weight_norm=o.weight_norm,
                                             **BLOG_DIS[o.dis_net])
    else:
        # o.fast: the CPU fast paths of gan.fast (False: plain Chainer)
        dis = nets.MLPDiscriminator(weight_norm=o.weight_norm,
                                    minibatch_discrimination=mbd,
                                    fast=o.fast)
    if o.gen_net in BLOG_NETS:
        gen = blog_nets.BlogMLPGenerator(**BLOG_GEN[o.gen_net])
    else:
        gen = nets.MLPGenerator(init=o.gen_init, fast=o.fast)
    return dis, gen


def scale_images(o, x):
    """Images in [0, 1] mapped to the run's :func:`value_range` (a new
    array when the range differs, else ``x`` itself)."""
    lo, hi = value_range(o)
    if (lo, hi) == (0.0, 1.0):
        return x
    return (x * numpy.float32(hi - lo) + numpy.float32(lo)).astype(x.dtype)


def make_optimizer(o, link, comm=None):
    """Adam of ``--adam`` for ``link``, with ``--grad-clip`` (and the
    ranks' mean gradient under a communicator ``comm``)."""
    if o.adam == 'eps-in-sqrt':
        opt = optimizers.AdamEpsInSqrt(alpha=o.lr, beta1=o.beta1)
    else:
        opt = chainer.optimizers.Adam(alpha=o.lr, beta1=o.beta1)
    opt.setup(link)
    if o.grad_clip:
        opt.add_hook(chainer.optimizer_hooks.GradientClipping(
            o.grad_clip))
    return multinode.optimizer(opt, comm)


def labeled_index(o, d):
    """Indices into ``d.x_pool`` of the run's labeled subset (within the
    first ``--pool-size`` images when given)."""
    y_pool = d.y_pool[:o.pool_size] if o.pool_size else d.y_pool
    return mdata.labeled_subset(y_pool, o.labels, o.data_seed,
                                n_classes=N_CLASSES)


def check_multi_node(o, comm):
    """The options a multi-node run (``comm``) cannot take."""
    multinode.local_batchsize(o.batchsize, comm)
    if (o.vat_weight and o.vat_noise == 'off'
            and o.minibatch_discrimination):
        raise OptionError('--vat-noise off with --minibatch-discrimination '
                          'is not supported with --multi-node (the test-mode '
                          'pass compares within each rank\'s part): use '
                          '--vat-noise same or one process')


def build(o, comm=None):
    """Everything of a run but the Trainer's extensions: a dict.  With a
    ChainerMN communicator ``comm``, this rank's part of the run (see
    :mod:`gan.multinode`)."""
    o = resolve(o)
    check(o)
    if comm is None:
        device = runs.parse_device(o.device)
    else:
        check_multi_node(o, comm)
        device = comm.gan_device
    gpu.select(device)  # every array and draw of the run on this device
    grandom.seed(o.seed)
    numpy.random.seed(o.seed)
    d = runs.root_only(comm, lambda: mdata.load(
        o.data_dir, validation=o.validation))
    d = d._replace(x_pool=scale_images(o, d.x_pool),
                   x_eval=scale_images(o, d.x_eval))
    x_pool, y_pool = d.x_pool, d.y_pool
    if o.pool_size:
        x_pool, y_pool = x_pool[:o.pool_size], y_pool[:o.pool_size]
    lab = labeled_index(o, d)
    dis, gen = build_models(o)
    if o.weight_norm and o.dd_init:
        init_idx = numpy.random.RandomState(o.data_seed).permutation(
            len(x_pool))[:o.init_size]
        with links.data_dependent_init():
            dis(x_pool[init_idx])  # every rank: the whole init batch
    multinode.make_global(dis, comm)
    multinode.make_global(gen, comm)
    dis.to_device(device)
    gen.to_device(device)
    send = device.send
    x_lab, y_lab = send(x_pool[lab]), send(y_pool[lab])
    x_unl = send(x_pool)
    bs = o.batchsize
    main = ArrayIterator((x_unl,), bs, seed=o.seed + 1)
    if o.iters_per_epoch:
        main = FixedLengthEpochs(main, o.iters_per_epoch)
    iterators = {
        'main': main,
        'labeled': ArrayIterator((x_lab, y_lab), bs, seed=o.seed + 2),
        'unlabeled2': ArrayIterator((x_unl,), bs, seed=o.seed + 3),
    }
    if comm is not None:  # every rank draws the global batches, keeps its part
        iterators = {k: multinode.ShardIterator(it, comm)
                     for k, it in iterators.items()}
    opts = {'dis': make_optimizer(o, dis, comm),
            'gen': make_optimizer(o, gen, comm)}
    updater = SemiSupervisedGANUpdater(
        iterators, opts, device=device,
        feature_matching=o.feature_matching,
        fm_target=o.fm_target,
        unlabeled_weight=o.unlabeled_weight, vat_weight=o.vat_weight,
        vat_eps=o.vat_eps, vat_noise=o.vat_noise,
        vat_xi=o.vat_xi, fast=o.fast, comm=comm, fake_term=o.fake_term)
    parts = dict(device=device, data=d, labeled_index=lab, dis=dis, gen=gen,
                 updater=updater, optimizers=opts,
                 x_eval=send(d.x_eval), y_eval=send(d.y_eval))
    if o.validation and runs.is_root(comm):  # the test error too
        t = mdata.load(o.data_dir, validation=False)
        parts['x_test'] = send(scale_images(o, t.x_eval))
        parts['y_test'] = send(t.y_eval)
    return parts


def iters_per_epoch(o, updater):
    """Iterations per epoch: --iters-per-epoch, or one pass over the
    unlabeled pool."""
    if o.iters_per_epoch:
        return o.iters_per_epoch
    return -(-len(updater.get_iterator('main').arrays[0]) // o.batchsize)


def make_trainer(o, parts, comm=None):
    """The Trainer of a run; with a communicator ``comm`` rank 0 alone
    evaluates and writes (the other ranks only train)."""
    o = resolve(o)
    updater = parts['updater']
    ipe = iters_per_epoch(o, updater)
    stop = ((o.max_iterations, 'iteration') if o.max_iterations
            else (o.epochs, 'epoch'))
    ev = parts['data'].eval_name
    if o.patience:  # Chainer's early stopping on the evaluated error
        stop = training.triggers.EarlyStoppingTrigger(
            check_trigger=(o.eval_interval, 'epoch'),
            monitor=ev + '/error_avg', patience=o.patience, mode='min',
            max_trigger=stop)
    trainer = training.Trainer(updater, stop, out=o.out)
    trainer.extend(gext.RandomState(), name='random_state')
    multinode.add_rank_count(trainer, comm)
    if o.lr_schedule == 'steps':
        steps = gext.parse_epoch_steps(o.lr_steps)
        for name, opt in parts['optimizers'].items():
            trainer.extend(gext.EpochSteps('alpha', o.lr, steps, opt),
                           name='lr_steps_' + name)
    elif o.lr_decay_epochs:
        end = o.epochs * ipe
        start = end - o.lr_decay_epochs * ipe
        for name, opt in parts['optimizers'].items():
            trainer.extend(E.LinearShift('alpha', (o.lr, 0.0),
                                         (start, end), opt),
                           name='lr_decay_' + name)
    z = parts['gen'].make_hidden(100)  # every rank: the same random stream
    if not runs.is_root(comm):
        return trainer
    if o.ema_rate:
        avg = gext.ParameterAverage(parts['dis'], rate=o.ema_rate)
        trainer.extend(avg, name='parameter_average')
        averaged = avg.averaged
    else:  # no average: 'avg' reports the raw discriminator
        avg, averaged = None, parts['dis']
    models = {'raw': parts['dis'], 'avg': averaged}
    evaluator = gext.ClassificationError(
        parts['x_eval'], parts['y_eval'], models,
        prefix=parts['data'].eval_name)
    eval_trigger = (o.eval_interval, 'epoch')
    trainer.extend(evaluator, trigger=eval_trigger, name='evaluator')
    if 'x_test' in parts:
        parts['test_evaluator'] = gext.ClassificationError(
            parts['x_test'], parts['y_test'], models, prefix='test')
        trainer.extend(parts['test_evaluator'], trigger=eval_trigger,
                       name='test_evaluator')
    log_trigger = eval_trigger if not o.max_iterations else (
        min(o.max_iterations, ipe), 'iteration')
    trainer.extend(gext.CollapseWarning('gen/sample_std',
                                        o.collapse_threshold),
                   name='collapse_warning')
    trainer.extend(E.LogReport(trigger=log_trigger))
    trainer.extend(E.PrintReport([
        'epoch', 'iteration', 'dis/loss_lab', 'dis/loss_unl', 'gen/loss',
        'dis/train_acc', ev + '/error_raw', ev + '/error_avg',
        'gen/sample_std', 'elapsed_time']), trigger=log_trigger)
    if E.PlotReport.available():
        trainer.extend(E.PlotReport(
            [ev + '/accuracy_raw', ev + '/accuracy_avg'], 'epoch',
            file_name='accuracy.png', trigger=eval_trigger))
        trainer.extend(E.PlotReport(
            ['dis/loss_lab', 'dis/loss_unl', 'gen/loss'], 'epoch',
            file_name='loss.png', trigger=eval_trigger))
    z = chainer.backend.get_array_module(z).asarray(z)
    trainer.extend(gext.FixedLatentGrid(
        parts['gen'], z, 10, 10, filename='samples_epoch{epoch:03d}.png',
        value_range=value_range(o), image_shape=IMAGE_SHAPE),
        trigger=(o.grid_interval, 'epoch'))
    # uncompressed: compressing ~30 MB of parameters and Adam moments
    # takes seconds per snapshot
    save = functools.partial(chainer.serializers.save_npz, compression=False)
    trainer.extend(E.snapshot(filename='snapshot_iter_{.updater.iteration}',
                              n_retains=o.keep_snapshots, savefun=save),
                   trigger=(o.snapshot_interval, 'epoch'))
    if o.keep_every:  # never deleted: starting points of branches
        trainer.extend(E.snapshot(
            filename='snapshot_epoch_{.updater.epoch:03d}', savefun=save),
            trigger=(o.keep_every, 'epoch'), name=KEEP_SNAPSHOT)
    if o.progress:
        trainer.extend(E.ProgressBar(update_interval=20))
    parts['evaluator'] = evaluator
    parts['average'] = avg
    return trainer


# extensions a run may add or drop between snapshot and resume
OPTIONAL_EXTENSIONS = ('lr_decay_', 'lr_steps_', KEEP_SNAPSHOT)


def _optional_state(key, saved):
    """True for a key of an optional extension (its state or its
    trigger's, ``extensions/NAME/...``, ``extension_triggers/NAME/...``)
    that the snapshot does not hold: the run that wrote it did not have
    that extension."""
    parts = key.split('/')
    return (len(parts) > 2 and parts[0] in ('extensions', 'extension_triggers')
            and parts[1].startswith(OPTIONAL_EXTENSIONS) and key not in saved)


def resume(trainer, path, o):
    """Load snapshot ``path`` into ``trainer`` (:func:`gan.runs.
    load_snapshot`).

    The snapshot may come from another folder and the schedule may differ
    (a branch: ``--resume OTHER/snapshot_iter_N --out NEW --epochs E
    --lr-decay-epochs D --ema-rate R``): the learning-rate decay follows
    the new options from the snapshot's iteration on, also when the
    snapshot's run had none, and the parameter average keeps its weights
    and continues at the new rate."""
    try:
        with numpy.load(path) as npz:
            saved = set(npz.files)
    except Exception:  # load_snapshot names the problem
        saved = set()
    runs.load_snapshot(trainer, path,
                       ignore_names=lambda key: _optional_state(key, saved),
                       hint=runs.snapshot_hint(path, gopt.to_dict(o),
                                                MODEL_OPTIONS))
    for name in trainer.updater.get_all_optimizers():
        try:
            shift = trainer.get_extension('lr_decay_' + name)
        except ValueError:  # a constant rate
            continue
        shift._t = trainer.updater.iteration
        shift._last_value = None
    return path


