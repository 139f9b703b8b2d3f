"""One semi-supervised MNIST run: options -> data -> networks -> Trainer.

The defaults (the ``paper`` preset) are the authors' settings:
weight-normalized MLP discriminator with data-dependent init and Gaussian
noise, feature matching of batch means against a second unlabeled batch,
Adam (lr 0.003, beta1 0.5, epsilon inside the square root), batches of
100 labeled + 100 unlabeled + 100 generated, a bias-corrected parameter
average for evaluation.  The schedule is shorter than theirs: 60 epochs,
the rate decayed linearly to 0 over the last third, average rate 1e-3.
"""
import functools
import json
import os
import time

import numpy

import chainer
from chainer import training
from chainer.training import extensions as E

from gan import extensions as gext
from gan import blog_nets, image, links, multinode, nets, optimizers, runs
from gan import random as grandom
from gan.iterators import ArrayIterator, FixedLengthEpochs
from gan.ssl_updater import SemiSupervisedGANUpdater
from mnist_ssl import data as mdata

# every option of a run; lr_decay_epochs None: a third of the epochs
# (see resolve_options)
DEFAULTS = dict(
    preset='paper',
    labels=100, seed=1, data_seed=1, epochs=60, batchsize=100, lr=0.003,
    beta1=0.5, adam='eps-in-sqrt', lr_decay_epochs=None, device='-1',
    out='result/ssl', resume=None, data_dir=None, validation=False,
    feature_matching='paper', fm_target='unlabeled', weight_norm=True,
    dd_init=True, init_size=500, gen_init='glorot',
    minibatch_discrimination=False, mbd_kernels=100, mbd_dim=5,
    mbd_form='authors', mbd_fixed_t=False,
    vat_weight=0.0, vat_eps=0.1, vat_xi=1e-2,
    vat_noise='same', unlabeled_weight=1.0, ema_rate=1e-3, fused=True,
    grid_interval=1,
    collapse_threshold=0.01,
    snapshot_interval=1, keep_snapshots=2, keep_every=0, max_iterations=None,
    pool_size=None, progress=True, eval_interval=1,
    dis_net='paper', gen_net='paper', lr_schedule='linear', lr_steps='',
    grad_clip=0.0, iters_per_epoch=None,
    multi_node=False, communicator=None,
)

# the networks of --dis-net / --gen-net
DIS_NETS = ('paper', 'blog')
GEN_NETS = ('paper', 'blog')
# --lr-schedule: linear = constant, then a linear decay to 0 over
# --lr-decay-epochs; steps = the rates of --lr-steps from given epochs on,
# without the linear decay (--lr-decay-epochs resolves to 0 and may only
# be given as 0)
LR_SCHEDULES = ('linear', 'steps')

# The blog's own setting (musyoku/improved-gan, train_mnist, 2017-01-29):
# every entry is also a flag of train_ssl.py.  Its step schedule has no
# linear decay: lr_decay_epochs resolves to 0 (resolve_options).
BLOG_PRESET = dict(
    dis_net='blog', weight_norm=False, gen_net='blog',
    feature_matching='blog', fm_target='labeled', unlabeled_weight=2.0,
    adam='chainer', lr=1e-3, beta1=0.5, lr_schedule='steps',
    lr_steps='10:3e-4,50:1e-4', grad_clip=0.0,
    iters_per_epoch=500, batchsize=100, ema_rate=0.0, validation=True,
)

# --preset NAME: option values applied over DEFAULTS (as the command
# line's defaults: explicit flags win).  Adding a preset is adding an
# entry here.
PRESETS = {
    'paper': {},  # DEFAULTS are the authors' settings
    'blog': BLOG_PRESET,
}

# --feature-matching -> the generator loss of SemiSupervisedGANUpdater:
# paper = distance of batch means of D's features only; blog = -log D(G(z))
# plus the per-sample mean squared feature error; none = -log D(G(z))
FEATURE_MATCHING = {'paper': 'mean', 'blog': 'paired', 'none': 'none'}

# the forms of minibatch discrimination (--mbd-form)
MBD_FORMS = links.MBD_FORMS


# the extension that keeps every --keep-every'th epoch's snapshot
KEEP_SNAPSHOT = 'keep_snapshot'


class OptionError(runs.UsageError):
    """A bad option value with a message that names the fix."""


def default_lr_decay_epochs(epochs, lr_schedule='linear'):
    """The default of --lr-decay-epochs: under --lr-schedule linear a third
    of the run, rounded, at least 1 (within [1, epochs] for any positive
    ``epochs``); under --lr-schedule steps 0, no linear decay."""
    if lr_schedule == 'steps':
        return 0
    return min(epochs, max(1, int(round(epochs / 3.0))))


def resolve_options(o):
    """``o`` over the preset's values over DEFAULTS, with the defaults
    that depend on other options filled in: the options a run records."""
    preset = o.get('preset', DEFAULTS['preset'])
    if preset not in PRESETS:
        raise OptionError('--preset {}: unknown; choose one of {}'.format(
            preset, ', '.join(sorted(PRESETS))))
    given = o
    o = dict(DEFAULTS, **PRESETS[preset])
    o.update(given)
    if o['lr_decay_epochs'] is None and isinstance(o['epochs'], int):
        o['lr_decay_epochs'] = default_lr_decay_epochs(o['epochs'],
                                                       o['lr_schedule'])
    return o


def check_options(o):
    if o['labels'] <= 0 or o['labels'] % 10:
        raise OptionError('--labels {}: must be a positive multiple of 10 '
                          '(balanced over the 10 classes)'.format(o['labels']))
    for key in ('epochs', 'batchsize', 'init_size', 'grid_interval',
                'snapshot_interval', 'eval_interval'):
        if o[key] is not None and o[key] <= 0:
            raise OptionError('--{} must be positive, got {}'.format(
                key.replace('_', '-'), o[key]))
    if o['lr'] <= 0:
        raise OptionError('--lr must be positive, got {}'.format(o['lr']))
    if o['keep_every'] < 0:
        raise OptionError('--keep-every must be 0 (none) or positive, got '
                          '{}'.format(o['keep_every']))
    if o['vat_weight'] < 0:
        raise OptionError('--vat-weight must be 0 (no VAT) or positive, got '
                          '{}'.format(o['vat_weight']))
    for key in ('vat_eps', 'vat_xi'):
        if o[key] <= 0:
            raise OptionError('--{} must be positive, got {}'.format(
                key.replace('_', '-'), o[key]))
    for key, choices in (('feature_matching', FEATURE_MATCHING),
                         ('mbd_form', MBD_FORMS)):
        if o[key] not in choices:
            raise OptionError('--{} {}: choose one of {}'.format(
                key.replace('_', '-'), o[key], ', '.join(choices)))
    if o['dis_net'] not in DIS_NETS or o['gen_net'] not in GEN_NETS:
        raise OptionError('--dis-net and --gen-net must be one of {}, got '
                          '{} and {}'.format(DIS_NETS, o['dis_net'],
                                             o['gen_net']))
    if o['lr_schedule'] not in LR_SCHEDULES:
        raise OptionError('--lr-schedule must be one of {}, got {}'.format(
            LR_SCHEDULES, o['lr_schedule']))
    try:
        steps = gext.parse_epoch_steps(o['lr_steps'])
    except ValueError as e:
        raise OptionError('--lr-steps: {}'.format(e))
    if o['lr_schedule'] == 'steps' and not steps:
        raise OptionError('--lr-schedule steps needs --lr-steps '
                          '(e.g. 10:3e-4,50:1e-4)')
    if o['grad_clip'] < 0:
        raise OptionError('--grad-clip must be 0 (none) or positive, got '
                          '{}'.format(o['grad_clip']))
    if not 0 <= o['ema_rate'] <= 1:
        raise OptionError('--ema-rate must be in [0, 1] (0: no average), got '
                          '{}'.format(o['ema_rate']))
    if o['iters_per_epoch'] is not None and o['iters_per_epoch'] <= 0:
        raise OptionError('--iters-per-epoch must be positive, got {}'.format(
            o['iters_per_epoch']))
    if o['lr_schedule'] == 'steps':
        if o['lr_decay_epochs']:
            raise OptionError(
                '--lr-decay-epochs {} applies to --lr-schedule linear only; '
                'drop it, or give --lr-schedule linear'.format(
                    o['lr_decay_epochs']))
        return
    if not 0 <= o['lr_decay_epochs'] <= o['epochs']:
        raise OptionError('--lr-decay-epochs must be between 0 and --epochs '
                          '({}), got {}'.format(o['epochs'],
                                                o['lr_decay_epochs']))


def mbd_arguments(o):
    """The keyword arguments of :class:`gan.links.MinibatchDiscrimination`
    for options ``o``, or None without minibatch discrimination."""
    if not o['minibatch_discrimination']:
        return None
    return {'num_kernels': o['mbd_kernels'], 'kernel_dim': o['mbd_dim'],
            'form': o['mbd_form'], 'learn_T': not o['mbd_fixed_t']}


def build_models(o):
    mbd = mbd_arguments(o)
    if o['dis_net'] == 'blog':
        if mbd:
            raise OptionError('--minibatch-discrimination needs --dis-net '
                              'paper (the blog\'s SSL network has none)')
        dis = blog_nets.BlogDiscriminator(weight_norm=o['weight_norm'])
    else:
        # o['fused']: the CPU fast paths of gan.fast (False: plain Chainer)
        dis = nets.MLPDiscriminator(weight_norm=o['weight_norm'],
                                    minibatch_discrimination=mbd,
                                    fast=o['fused'])
    if o['gen_net'] == 'blog':
        gen = blog_nets.BlogGenerator()
    else:
        gen = nets.MLPGenerator(init=o['gen_init'], fast=o['fused'])
    return dis, gen


def value_range(o):
    """The pixel range of the run's images: its generator's output range
    ([-1, 1] for the blog's tanh generator, else [0, 1])."""
    return (-1.0, 1.0) if o.get('gen_net') == 'blog' else (0.0, 1.0)


def scale_images(o, x):
    """Images in [0, 1] mapped to the run's :func:`value_range` (a new
    array when the range differs, else ``x`` itself)."""
    lo, hi = value_range(o)
    if (lo, hi) == (0.0, 1.0):
        return x
    return (x * numpy.float32(hi - lo) + numpy.float32(lo)).astype(x.dtype)


def make_optimizer(o, link, comm=None):
    if o['adam'] == 'eps-in-sqrt':
        opt = optimizers.AdamEpsInSqrt(alpha=o['lr'], beta1=o['beta1'])
    else:
        opt = chainer.optimizers.Adam(alpha=o['lr'], beta1=o['beta1'])
    opt.setup(link)
    if o.get('grad_clip'):
        opt.add_hook(chainer.optimizer_hooks.GradientClipping(
            o['grad_clip']))
    return multinode.optimizer(opt, comm)


find_latest_snapshot = runs.latest_snapshot


def labeled_index(o, d):
    """Indices into ``d.x_pool`` of the run's labeled subset (within the
    first ``--pool-size`` images when given)."""
    y_pool = d.y_pool[:o['pool_size']] if o['pool_size'] else d.y_pool
    return mdata.labeled_subset(y_pool, o['labels'], o['data_seed'],
                                n_classes=10)


def check_multi_node(o, comm):
    """The options a multi-node run (``comm``) cannot take."""
    multinode.local_batchsize(o['batchsize'], comm)
    if (o['vat_weight'] and o['vat_noise'] == 'off'
            and o['minibatch_discrimination']):
        raise OptionError('--vat-noise off with --minibatch-discrimination '
                          'is not supported with --multi-node (the test-mode '
                          'pass compares within each rank\'s part): use '
                          '--vat-noise same or one process')


def build(o, comm=None):
    """Everything of a run but the Trainer's extensions: a dict.  With a
    ChainerMN communicator ``comm``, this rank's part of the run (see
    :mod:`gan.multinode`)."""
    o = resolve_options(o)
    check_options(o)
    if comm is None:
        device = runs.parse_device(o['device'])
    else:
        check_multi_node(o, comm)
        device = comm.gan_device
    grandom.seed(o['seed'])
    numpy.random.seed(o['seed'])
    d = multinode.root_only(comm, lambda: mdata.load(
        o['data_dir'], validation=o['validation']))
    d = d._replace(x_pool=scale_images(o, d.x_pool),
                   x_eval=scale_images(o, d.x_eval))
    x_pool, y_pool = d.x_pool, d.y_pool
    if o['pool_size']:
        x_pool, y_pool = x_pool[:o['pool_size']], y_pool[:o['pool_size']]
    lab = labeled_index(o, d)
    dis, gen = build_models(o)
    if o['weight_norm'] and o['dd_init']:
        init_idx = numpy.random.RandomState(o['data_seed']).permutation(
            len(x_pool))[:o['init_size']]
        with links.data_dependent_init():
            dis(x_pool[init_idx])  # every rank: the whole init batch
    multinode.make_global(dis, comm)
    multinode.make_global(gen, comm)
    dis.to_device(device)
    gen.to_device(device)
    send = device.send
    x_lab, y_lab = send(x_pool[lab]), send(y_pool[lab])
    x_unl = send(x_pool)
    bs = o['batchsize']
    main = ArrayIterator((x_unl,), bs, seed=o['seed'] + 1)
    if o['iters_per_epoch']:
        main = FixedLengthEpochs(main, o['iters_per_epoch'])
    iterators = {
        'main': main,
        'labeled': ArrayIterator((x_lab, y_lab), bs, seed=o['seed'] + 2),
        'unlabeled2': ArrayIterator((x_unl,), bs, seed=o['seed'] + 3),
    }
    if comm is not None:  # every rank draws the global batches, keeps its part
        iterators = {k: multinode.ShardIterator(it, comm)
                     for k, it in iterators.items()}
    opts = {'dis': make_optimizer(o, dis, comm),
            'gen': make_optimizer(o, gen, comm)}
    updater = SemiSupervisedGANUpdater(
        iterators, opts, device=device,
        feature_matching=FEATURE_MATCHING[o['feature_matching']],
        fm_target=o['fm_target'],
        unlabeled_weight=o['unlabeled_weight'], vat_weight=o['vat_weight'],
        vat_eps=o['vat_eps'], vat_noise=o['vat_noise'],
        vat_xi=o['vat_xi'], fused=o['fused'], comm=comm)
    parts = dict(device=device, data=d, labeled_index=lab, dis=dis, gen=gen,
                 updater=updater, optimizers=opts,
                 x_eval=send(d.x_eval), y_eval=send(d.y_eval))
    if o['validation'] and multinode.is_root(comm):  # the test error too
        t = mdata.load(o['data_dir'], validation=False)
        parts['x_test'] = send(scale_images(o, t.x_eval))
        parts['y_test'] = send(t.y_eval)
    return parts


def iters_per_epoch(o, updater):
    """Iterations per epoch: --iters-per-epoch, or one pass over the
    unlabeled pool."""
    if o['iters_per_epoch']:
        return o['iters_per_epoch']
    return -(-len(updater.get_iterator('main').arrays[0]) // o['batchsize'])


def make_trainer(o, parts, comm=None):
    """The Trainer of a run; with a communicator ``comm`` rank 0 alone
    evaluates and writes (the other ranks only train)."""
    o = resolve_options(o)
    updater = parts['updater']
    ipe = iters_per_epoch(o, updater)
    stop = ((o['max_iterations'], 'iteration') if o['max_iterations']
            else (o['epochs'], 'epoch'))
    trainer = training.Trainer(updater, stop, out=o['out'])
    trainer.extend(gext.RandomState(), name='random_state')
    multinode.add_rank_count(trainer, comm)
    if o['lr_schedule'] == 'steps':
        steps = gext.parse_epoch_steps(o['lr_steps'])
        for name, opt in parts['optimizers'].items():
            trainer.extend(gext.EpochSteps('alpha', o['lr'], steps, opt),
                           name='lr_steps_' + name)
    elif o['lr_decay_epochs']:
        end = o['epochs'] * ipe
        start = end - o['lr_decay_epochs'] * ipe
        for name, opt in parts['optimizers'].items():
            trainer.extend(E.LinearShift('alpha', (o['lr'], 0.0),
                                         (start, end), opt),
                           name='lr_decay_' + name)
    z = parts['gen'].make_hidden(100)  # every rank: the same random stream
    if not multinode.is_root(comm):
        return trainer
    if o['ema_rate']:
        avg = gext.ParameterAverage(parts['dis'], rate=o['ema_rate'])
        trainer.extend(avg, name='parameter_average')
        averaged = avg.averaged
    else:  # no average: 'avg' reports the raw discriminator
        avg, averaged = None, parts['dis']
    models = {'raw': parts['dis'], 'avg': averaged}
    evaluator = gext.ClassificationError(
        parts['x_eval'], parts['y_eval'], models,
        prefix=parts['data'].eval_name)
    eval_trigger = (o['eval_interval'], 'epoch')
    trainer.extend(evaluator, trigger=eval_trigger, name='evaluator')
    if 'x_test' in parts:
        parts['test_evaluator'] = gext.ClassificationError(
            parts['x_test'], parts['y_test'], models, prefix='test')
        trainer.extend(parts['test_evaluator'], trigger=eval_trigger,
                       name='test_evaluator')
    log_trigger = eval_trigger if not o['max_iterations'] else (
        min(o['max_iterations'], ipe), 'iteration')
    trainer.extend(gext.CollapseWarning('gen/sample_std',
                                        o['collapse_threshold']),
                   name='collapse_warning')
    trainer.extend(E.LogReport(trigger=log_trigger))
    ev = parts['data'].eval_name
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
        value_range=value_range(o), image_shape=(1, 28, 28)),
        trigger=(o['grid_interval'], 'epoch'))
    # uncompressed: compressing ~30 MB of parameters and Adam moments
    # takes seconds per snapshot
    save = functools.partial(chainer.serializers.save_npz, compression=False)
    trainer.extend(E.snapshot(filename='snapshot_iter_{.updater.iteration}',
                              n_retains=o['keep_snapshots'], savefun=save),
                   trigger=(o['snapshot_interval'], 'epoch'))
    if o['keep_every']:  # never deleted: starting points of branches
        trainer.extend(E.snapshot(
            filename='snapshot_epoch_{.updater.epoch:03d}', savefun=save),
            trigger=(o['keep_every'], 'epoch'), name=KEEP_SNAPSHOT)
    if o['progress']:
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


# options that change the parameters a snapshot holds
MODEL_OPTIONS = ('weight_norm', 'minibatch_discrimination', 'mbd_kernels',
                 'mbd_dim', 'mbd_fixed_t')


def _differing_options(path, o):
    """' (its options.json has key=value, ...)' for the model options in
    which ``o`` differs from the run that wrote snapshot ``path``, else
    ''."""
    source = os.path.join(os.path.dirname(path), 'options.json')
    try:
        with open(source) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return ''
    diff = ['{}={}'.format(k, saved[k])
            for k in MODEL_OPTIONS if k in saved and saved[k] != o[k]]
    return ' (its options.json has {})'.format(', '.join(diff)) if diff \
        else ''


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
                       hint=_differing_options(path, o))
    for name in trainer.updater.get_all_optimizers():
        try:
            shift = trainer.get_extension('lr_decay_' + name)
        except ValueError:  # a constant rate
            continue
        shift._t = trainer.updater.iteration
        shift._last_value = None
    return path


# test errors whose first crossing time_to_error reports (result.json keys
# '0.02', ...)
ERROR_MILESTONES = (0.02, 0.015, 0.01)


def milestone_key(th):
    """The key of a threshold in time_to_error's dict ('0.02', ...)."""
    return '{:g}'.format(th)


def milestone_minutes(to_error):
    """A time_to_error dict as a list in ERROR_MILESTONES order (None: not
    reached, or not recorded)."""
    return [to_error.get(milestone_key(th)) for th in ERROR_MILESTONES]


def time_to_error(log, key, thresholds=ERROR_MILESTONES):
    """Minutes of training until ``key`` first drops to each threshold."""
    out = {}
    for th in thresholds:
        hit = [e for e in log if e.get(key) is not None and e[key] <= th]
        out[milestone_key(th)] = (round(hit[0]['elapsed_time'] / 60.0, 2)
                                  if hit else None)
    return out


def collapse_text(result):
    """'' when the run's generator never collapsed, else e.g. 'collapsed
    at epoch 9, recovered'."""
    epoch = result['generator_collapse_epoch']
    if epoch is None:
        return ''
    return 'collapsed at epoch {}, {}'.format(
        epoch, 'recovered' if result.get('generator_recovered')
        else 'not recovered')


def labeled_grid(path, x, y, index, n_classes=10, max_cols=20):
    """The labeled examples ``x[index]`` as a PNG, one row per class (its
    first ``max_cols`` examples in ``index`` order; white where a class
    has fewer).  Next to ``mnist_ssl.evaluate --errors-grid`` it shows
    which writing styles the labels cover."""
    index = numpy.asarray(index)
    per_class = [index[numpy.asarray(y)[index] == c] for c in range(n_classes)]
    cols = min(max_cols, max(1, max(len(i) for i in per_class)))
    return image.save_index_rows(path, x, per_class, cols)


def largest_confusions(counts, n=3):
    """The ``n`` largest off-diagonal cells of a confusion matrix (rows:
    true class), largest first, as (true, predicted, count); empty cells
    are left out.  With few labels a run's errors above the hard test
    digits that every run misses sit in a few such cells: a writing style
    of one digit given to another class."""
    k = len(counts)
    cells = [(-counts[i][j], i, j) for i in range(k) for j in range(k)
             if i != j and counts[i][j] > 0]
    return [(i, j, -c) for c, i, j in sorted(cells)[:n]]


def confusion_errors(counts):
    """The off-diagonal total of a confusion matrix: its errors."""
    return sum(map(sum, counts)) - sum(row[i] for i, row in enumerate(counts))


def confusion_text(counts):
    """The confusion matrix as printed at the end of a run, with each
    class's errors: whole classes taken by another one (the failure mode of
    runs with few labels) show as a large off-diagonal count."""
    k = len(counts)
    lines = ['confusion of the averaged D (rows: true class, columns: '
             'predicted)', 'true ' + ''.join('{:>6d}'.format(j)
                                            for j in range(k)) + '  errors']
    for i, row in enumerate(counts):
        lines.append('{:>4d} '.format(i) + ''.join(
            '{:>6d}'.format(c) for c in row) + '{:>8d}'.format(
                sum(row) - row[i]))
    top = largest_confusions(counts)
    if top:
        errors = confusion_errors(counts)
        lines.append('largest confusions (true as predicted): {} ({} of {} '
                     'errors)'.format(', '.join('{} as {}: {}'.format(*c)
                                                for c in top),
                                      sum(c[2] for c in top), errors))
    return '\n'.join(lines)


def peak_rss_mb():
    """Peak resident memory of this process so far, in MiB."""
    import resource
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.,
                 1)


def run(o):
    """Train with options ``o`` (:func:`resolve_options`) and write
    OUT/result.json; returns it.

    ``--out`` and ``--resume`` follow :func:`gan.runs.prepare_out`, checked
    before any data is read: a folder holding a run is refused unless
    resuming; ``resume='auto'`` continues the latest snapshot, or returns
    the result of a finished run (``result['reported'] = True``) without
    training again.  Under ``--multi-node`` rank 0 alone looks at and
    writes the folder (the other ranks return None), and a snapshot
    written by another number of ranks is refused."""
    o = resolve_options(o)
    check_options(o)
    runs.parse_device(o['device'])
    out = o['out']
    comm = multinode.from_options(o['multi_node'], o['communicator'],
                                  o['device'])
    if comm is not None:  # options.json records the one chosen
        check_multi_node(o, comm)
        o = dict(o, communicator=comm.gan_name)
    root = multinode.is_root(comm)

    def decide():
        if o['resume'] == 'auto':
            done = runs.finished_result(out)
            if done is not None:
                return None, done
        snapshot = runs.prepare_out(out, o['resume'])
        multinode.check_resume(snapshot, comm)
        return snapshot, None
    snapshot, done = multinode.root_only(comm, decide)
    if done is not None:
        return dict(done, reported=True) if root else None
    parts = build(o, comm)
    trainer = make_trainer(o, parts, comm)
    resumed = resume(trainer, snapshot, o) if snapshot else None
    if not root:  # rank 0 writes the run folder
        trainer.run()
        return None
    runs.write_json(os.path.join(out, 'options.json'),
                    dict(o, data_source=parts['data'].source,
                         resumed_from=resumed), sort_keys=True)
    runs.record_machine(out, trainer.updater.iteration)
    labeled_grid(os.path.join(out, 'labeled.png'), parts['data'].x_pool,
                 parts['data'].y_pool, parts['labeled_index'])
    t0 = time.time()
    trainer.run()
    final = parts['evaluator'].evaluate()
    ev = parts['data'].eval_name
    log_path = os.path.join(out, 'log')
    log = json.load(open(log_path)) if os.path.exists(log_path) else []
    collapse = gext.first_epoch_below(log, 'gen/sample_std',
                                      o['collapse_threshold'], start_epoch=2)
    result = {
        'test_error': final[ev + '/error_avg'],
        'test_errors': final[ev + '/errors_avg'],
        'test_error_raw': final[ev + '/error_raw'],
        'test_errors_raw': final[ev + '/errors_raw'],
        'evaluated_on': ev,
        'labels': o['labels'], 'seed': o['seed'],
        'data_seed': o['data_seed'], 'epochs': trainer.updater.epoch_detail,
        'iterations': trainer.updater.iteration,
        'wall_seconds': round(trainer.elapsed_time, 1),
        'wall_seconds_this_process': round(time.time() - t0, 1),
        'minutes_to_error_avg': time_to_error(log, ev + '/error_avg'),
        'minutes_to_error_raw': time_to_error(log, ev + '/error_raw'),
        'peak_rss_mb': peak_rss_mb(),
        'machine': runs.machine_info(),  # every process's: machines.jsonl
        'multi_node': multinode.describe(comm),
        # first epoch whose samples were all alike (None: no collapse),
        # and whether they differ again at the end
        'generator_collapse_epoch': collapse,
        'generator_recovered': None if collapse is None else bool(
            log[-1].get('gen/sample_std', 0) >= o['collapse_threshold']),
        # rows: true class, columns: predicted class (averaged D)
        'confusion_avg': parts['evaluator'].confusion('avg', 10),
        'options': o,
    }
    if 'test_evaluator' in parts:  # --validation: the test set as well
        test = parts['test_evaluator'].evaluate()
        for key in ('error_avg', 'errors_avg', 'error_raw', 'errors_raw'):
            name = key.replace('_avg', '')
            result['test_set_' + name] = test['test/' + key]
    print(confusion_text(result['confusion_avg']))
    # whole or not at all: batch tables of other processes read it
    runs.write_json(os.path.join(out, 'result.json'), result, sort_keys=True)
    return result
