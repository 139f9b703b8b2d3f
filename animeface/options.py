"""The options of one DCGAN run, declared once, its presets and the checks
that turn bad values into one-line errors.

Two presets set the defaults (any flag given overrides them):

* ``dcgan`` -- Radford et al.'s DCGAN: 64 px, z of 100 from N(0, 1),
  weights N(0, 0.02^2), Adam 2e-4 (beta1 0.5), batches of 64 in shuffled
  epochs over the data;
* ``blog`` -- the blog author's own animeface code: 96 px, z of 50 from
  U(-1, 1), Gaussian noise 0.3 on D's input, D convolutions 32-64-128-256
  each with batch norm and ELU, G dense -> ReLU -> batch norm and
  deconvolutions with batch norm and ReLU, weights N(0, 0.001^2), minibatch
  discrimination (when on) with 50 kernels of 5 in the blog's plain form,
  Adam 1e-4 (beta1 0.5), no gradient clipping, D updated first and G then
  on a fresh batch, batches of 128 drawn with replacement, an epoch of 500
  updates.  The blog's configuration says to clip gradients at 10, but its
  code never hands the value to its optimizers, so its runs were unclipped;
  ``--grad-clip 10`` applies it.
"""
import dataclasses
from dataclasses import dataclass

from gan import dcgan_updater, nets
from gan import options as gopt
from gan.options import option
from gan.runs import UsageError, parse_device

NETS = ('dcgan', 'blog')
SAMPLING = ('shuffle', 'replacement')
DEFAULT_EPOCHS = 375


@dataclass
class Options:
    """Every option of a run (``options.json`` holds them)."""
    preset: str = option('dcgan', 'the preset the run started from',
                         cli=False)
    # data and network
    data: str = option(None, 'a folder of images (any size: centre crop and '
                       'resize), or "mnist" or "stacked-mnist"',
                       group='data and network', type=str, required=True)
    net: str = option('dcgan', 'network pair: dcgan or blog (default '
                      '%(default)s)', group='data and network', choices=NETS)
    size: int = option(64, 'image size in pixels: 32, 64 or 96 for dcgan, a '
                       'multiple of 16 for blog (default %(default)s)',
                       group='data and network')
    ch: int = option(512, 'channels of the widest generator layer (dcgan: '
                     'also of D) (default %(default)s)',
                     group='data and network', type=int)
    z_dim: int = option(100, 'latent dimension (default %(default)s)',
                        group='data and network', type=int)
    wscale: float = option(0.02, 'standard deviation of the initial weights '
                           '(default %(default)s)', group='data and network')
    input_noise: float = option(0.0, 'standard deviation of the Gaussian '
                                'noise added to D\'s input in training '
                                '(default %(default)s)',
                                group='data and network')
    dis_dropout: float = option(0.0, 'dropout ratio after each of D\'s '
                                'hidden convolutions but the last, in '
                                'training (dcgan network; the authors\' '
                                'CIFAR-10 D: 0.5) (default %(default)s)',
                                group='data and network')
    feature_matching: str = gopt.feature_matching('none')
    fm_weight: float = option(1.0, 'weight of the feature-matching term '
                              '(default %(default)s)', group='model')
    minibatch_discrimination: bool = gopt.minibatch_discrimination()
    mbd_kernels: int = gopt.mbd_kernels()
    mbd_dim: int = gopt.mbd_dim()
    mbd_form: str = gopt.mbd_form()
    mbd_fixed_t: bool = gopt.mbd_fixed_t()
    # training budget
    batchsize: int = option(64, 'minibatch size (default %(default)s)',
                            group='training budget', type=int)
    sampling: str = option('shuffle', 'batches from shuffled passes over the '
                           'data, or drawn with replacement (default '
                           '%(default)s)', group='training budget',
                           choices=SAMPLING)
    epoch_updates: int = option(None, 'updates that make an epoch (default: '
                                'one pass over the data; blog preset 500)',
                                group='training budget', type=int)
    epochs: float = option(None, 'training length in epochs (default {}; '
                           'not with --iterations)'.format(DEFAULT_EPOCHS),
                           group='training budget', type=float)
    iterations: int = option(None, 'training length in iterations (not with '
                             '--epochs)', group='training budget',
                             type=int)
    lr: float = option(2e-4, 'Adam step size (default %(default)s)',
                       group='training budget')
    beta1: float = option(0.5, 'Adam beta1 (default %(default)s)',
                          group='training budget')
    grad_clip: float = option(0.0, 'clip the gradient norm of each network '
                              'at this value; 0: no clipping (default '
                              '%(default)s)', group='training budget')
    update_order: str = option('g-then-d', 'g-then-d: G and then D updated '
                               'on one generated batch (G against the D '
                               'that scored it); d-then-g: D first, then G '
                               'on a fresh batch against the updated D (the '
                               'blog\'s) (default %(default)s)',
                               group='training budget',
                               choices=dcgan_updater.ORDERS)
    gen_steps: int = option(1, 'G updates per D update, each after the '
                            'first on a fresh latent batch (the authors\' '
                            'CIFAR-10 code: 3) (default %(default)s)',
                            group='training budget', type=int)
    seed: int = gopt.seed(0)
    fast: bool = gopt.fast()
    device: str = gopt.device()
    # output
    out: str = gopt.out('result/dcgan')
    resume: str = gopt.resume()
    snapshot_interval: int = option(1000, 'iterations between trainer '
                                    'snapshots (and at the end) (default '
                                    '%(default)s)', group='run',
                                    type=int)
    grid_interval: int = option(500, 'iterations between 10x10 sample grids '
                                '(and at the end) (default %(default)s)',
                                group='run', type=int)
    log_interval: int = option(100, 'iterations between log lines (default '
                               '%(default)s)', group='run', type=int)
    multi_node: bool = gopt.multi_node()
    communicator: str = gopt.communicator()


PRESETS = {
    'dcgan': {},  # the defaults are Radford et al.'s DCGAN
    'blog': dict(net='blog', size=96, ch=512, z_dim=50, wscale=0.001,
                 input_noise=0.3, dis_dropout=0.0, mbd_kernels=50, mbd_dim=5,
                 mbd_form='blog',
                 lr=1e-4, beta1=0.5, grad_clip=0.0, batchsize=128,
                 update_order='d-then-g', sampling='replacement',
                 epoch_updates=500),
}
DEFAULT_PRESET = 'dcgan'
PRESET_HELP = ('defaults of the flags below: dcgan (Radford et al.) or blog '
               '(the blog author\'s code); any flag given overrides them')

# options that fix the shapes of the networks' parameters
MODEL_OPTIONS = ('net', 'data', 'size', 'ch', 'z_dim',
                 'minibatch_discrimination', 'mbd_kernels', 'mbd_dim',
                 'mbd_form', 'mbd_fixed_t')
# options that may differ when a run (or a comparison) is continued
FREE_OPTIONS = ('out', 'resume', 'device', 'log_interval', 'fast')


def parser(**kwargs):
    """The command line of :class:`Options` (``train_dcgan.py``'s)."""
    return gopt.Parser(Options, PRESETS, DEFAULT_PRESET, PRESET_HELP,
                       **kwargs)


def resolve(o=None, **changes):
    """:class:`Options` from an instance or a dict of values (over the
    preset named in it, over the defaults) with ``changes``."""
    if isinstance(o, Options):
        return dataclasses.replace(o, **changes)
    return gopt.resolve(Options, dict(o or {}, **changes), PRESETS,
                        DEFAULT_PRESET)


def parse(argv=None):
    """Flags -> :class:`Options`, checked (UsageError)."""
    o = parser().parse(argv)
    check(o)
    return o


def from_saved(saved):
    """A run's options.json as :class:`Options`."""
    return gopt.from_saved(Options, saved)


def check(o):
    """Raise UsageError for values the flags' types cannot refuse."""
    for name in ('ch', 'z_dim', 'batchsize', 'snapshot_interval',
                 'grid_interval', 'log_interval', 'mbd_kernels', 'mbd_dim',
                 'gen_steps'):
        if getattr(o, name) < 1:
            raise UsageError('--{} must be at least 1, got {}'.format(
                name.replace('_', '-'), getattr(o, name)))
    if o.iterations is not None and o.epochs is not None:
        raise UsageError('--epochs and --iterations both set the training '
                         'length: give one of them')
    if o.iterations is not None and o.iterations < 1:
        raise UsageError('--iterations must be at least 1')
    if o.epochs is not None and o.epochs <= 0:
        raise UsageError('--epochs must be positive')
    if o.epoch_updates is not None and o.epoch_updates < 1:
        raise UsageError('--epoch-updates must be at least 1')
    if o.lr <= 0 or not 0 <= o.beta1 < 1:
        raise UsageError('--lr must be positive and --beta1 in [0, 1)')
    if o.wscale <= 0 or o.input_noise < 0 or o.grad_clip < 0:
        raise UsageError('--wscale must be positive, --input-noise and '
                         '--grad-clip at least 0')
    if not 0 <= o.dis_dropout < 1:
        raise UsageError('--dis-dropout must be in [0, 1), got {}'.format(
            o.dis_dropout))
    if o.dis_dropout and o.net != 'dcgan':
        raise UsageError('--dis-dropout is an option of the dcgan network; '
                         'the blog network has no dropout (use --net dcgan '
                         'or leave it out)')
    gopt.check_choices(o)
    try:
        if o.net == 'dcgan':
            if o.size not in nets.DCGAN_SIZES:
                raise ValueError(
                    '--size {}: the dcgan network takes {} px (--net blog: '
                    'any multiple of 16)'.format(o.size, ', '.join(
                        map(str, nets.DCGAN_SIZES))))
            nets._dcgan_layout(o.size, o.ch)
        elif o.size % 16 or o.size < 16 or o.ch % 4:
            raise ValueError(
                '--net blog needs a --size divisible by 16 and a --ch '
                'divisible by 4, got --size {} --ch {}'.format(o.size, o.ch))
    except ValueError as e:
        raise UsageError(str(e)) from None
    parse_device(o.device)
