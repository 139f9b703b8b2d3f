"""The blog's "analogy" grid: each row walks from one random latent to
another, so a row shows how the generator morphs one face into another.

    python -m animeface.analogy result/dcgan/snapshot_iter_10000
    python -m animeface.analogy result/dcgan/snapshot_iter_10000 --slerp
    python -m animeface.analogy RUN/snapshot_iter_10000 --device 0  # on GPU 0

The generator's shape is read from ``options.json`` beside the snapshot
(a trainer snapshot of ``train_dcgan.py``).
"""
import argparse
import os
import sys

import numpy

import chainer

from gan import gpu
from gan import image as gimage
from gan import options as gopt
from gan import runs

from animeface import build
from animeface import options as aopt


def interpolate(z0, z1, steps, spherical=False):
    """``steps`` points from z0 to z1 (both ends included): (steps, D).

    Linear: ``(1 - t) z0 + t z1``.  Spherical (slerp, for Gaussian latents
    whose mass lies near a sphere): ``sin((1 - t) w) / sin w z0 +
    sin(t w) / sin w z1`` with ``w`` the angle between z0 and z1 (linear
    when they are parallel)."""
    z0 = numpy.asarray(z0, dtype=numpy.float64)
    z1 = numpy.asarray(z1, dtype=numpy.float64)
    t = numpy.linspace(0.0, 1.0, steps)[:, None]
    cos = numpy.dot(z0, z1) / (numpy.linalg.norm(z0) * numpy.linalg.norm(z1))
    omega = numpy.arccos(numpy.clip(cos, -1.0, 1.0))
    if not spherical or numpy.sin(omega) < 1e-6:
        z = (1.0 - t) * z0 + t * z1
    else:
        z = (numpy.sin((1.0 - t) * omega) * z0 +
             numpy.sin(t * omega) * z1) / numpy.sin(omega)
    return z.astype(numpy.float32)


def analogy_latents(gen, rows, cols, seed=0, spherical=False):
    """(rows * cols, z_dim): row r interpolates between two random latents
    of its own, drawn from the generator's latent distribution."""
    rng = numpy.random.default_rng(seed)
    ends = gen.sample_z(rng, 2 * rows).reshape(rows, 2, gen.z_dim)
    return numpy.concatenate([interpolate(a, b, cols, spherical)
                              for a, b in ends])


def load_generator(snapshot, options=None, device=None):
    """The generator of a trainer snapshot, shaped by ``options`` (default:
    the run folder's options.json), on ``device`` (a Chainer device, made
    current; default the CPU).  Raises UsageError when either is missing
    or they do not fit."""
    if not os.path.isfile(snapshot):
        raise runs.UsageError('snapshot {} does not exist'.format(
            snapshot))
    if options is None:
        options = runs.read_options(
            os.path.dirname(os.path.abspath(snapshot)))
        if options is None:
            raise runs.UsageError(
                'no options.json beside {}: give a snapshot from a '
                'train_dcgan.py run folder'.format(snapshot))
    gen = build.build_generator(aopt.from_saved(options),
                                options.get('channels', 3))
    try:
        chainer.serializers.load_npz(snapshot, gen,
                                     path='updater/model:gen/')
    except (KeyError, ValueError) as e:
        raise runs.UsageError(
            'snapshot {} does not hold a generator of size {} ch {} z-dim {}'
            ' ({})'.format(snapshot, options['size'], options['ch'],
                           options['z_dim'], str(e).splitlines()[0][:120]))
    if device is not None:
        gen.to_device(gpu.select(device))
    return gen


def write_analogy(gen, path, rows=10, cols=10, seed=0, spherical=False):
    z = analogy_latents(gen, rows, cols, seed, spherical)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        x = gen(gen.device.send(z)).array
    return gimage.save_grid(path, chainer.backend.CpuDevice().send(x),
                            rows, cols)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Write an analogy grid (rows interpolate between two '
                    'random latents) from a train_dcgan.py snapshot.')
    parser.add_argument('snapshot', help='OUT/snapshot_iter_N')
    parser.add_argument('--slerp', action='store_true',
                        help='spherical instead of linear interpolation')
    parser.add_argument('--rows', type=int, default=10)
    parser.add_argument('--cols', type=int, default=10,
                        help='points per row, both ends included')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the row end points')
    parser.add_argument('--out', help='PNG to write (default: '
                        'analogy[_slerp]_N.png beside the snapshot)')
    gopt.add_device(parser)
    args = parser.parse_args(argv)
    if args.rows < 1 or args.cols < 2:
        parser.error('--rows must be at least 1 and --cols at least 2')
    try:
        gen = load_generator(args.snapshot,
                             device=runs.parse_device(args.device))
    except runs.UsageError as e:
        gopt.fail(parser, str(e))  # one line, no usage
    out = args.out or os.path.join(
        os.path.dirname(os.path.abspath(args.snapshot)),
        'analogy{}_{}.png'.format('_slerp' if args.slerp else '',
                                  runs.snapshot_iteration(args.snapshot)))
    write_analogy(gen, out, args.rows, args.cols, args.seed, args.slerp)
    print(out, file=sys.stderr)


if __name__ == '__main__':
    main()
