#!/usr/bin/env python
"""Train a DCGAN on anime faces (or digits) with the paper's options.

    python train_dcgan.py --data faces/ --size 64                      # DCGAN
    python train_dcgan.py --data faces/ --feature-matching paper       # + FM
    python train_dcgan.py --data faces/ --minibatch-discrimination     # + MBD
    python train_dcgan.py --data stacked-mnist --size 32 --ch 64 --iterations 2000

The run folder (--out) gets options.json, log, loss.png, 10x10 grids of a
fixed latent batch, trainer snapshots (continue with --resume) and
result.json.  See animeface/training.py for the pieces.
"""
import sys

from gan import cudnn_compat

cudnn_compat.maybe_install()  # GAN_CUDNN=1: cuDNN with CuPy >= 11

from animeface import data as adata  # noqa: E402
from animeface import training  # noqa: E402


def main(argv=None):
    parser = training.parser(__doc__.splitlines()[0])
    parser.add_argument('--resume', metavar='SNAPSHOT',
                        help='continue from a trainer snapshot '
                             '(OUT/snapshot_iter_N)')
    args = parser.parse_args(argv)
    try:
        training.check_args(args)
        result = training.run(args, resume_from=args.resume)
    except (adata.DataError, training.UsageError) as e:
        parser.error(str(e))
    print('finished: {}'.format(result), file=sys.stderr)


if __name__ == '__main__':
    main()
