#!/usr/bin/env python
"""Train a DCGAN on face images (or digits) with the paper's options.

    python train_dcgan.py --data faces/ --size 64                      # DCGAN
    python train_dcgan.py --data faces/ --feature-matching blog        # + FM
    python train_dcgan.py --data faces/ --minibatch-discrimination     # + MD
    python train_dcgan.py --data faces/ --preset blog                  # blog
    python train_dcgan.py --data stacked-mnist --size 32 --ch 64 --iterations 2000
    mpiexec -n 2 .venv/bin/python train_dcgan.py --multi-node --data mnist \
        --size 32 --ch 64 --iterations 20 --out result/dcgan_mn  # ChainerMN

The run folder (--out) gets options.json, log, loss.png, 10x10 grids of a
fixed latent batch, trainer snapshots (continue with --resume auto) and
result.json.  See animeface/training.py for the pieces and the presets.
"""
import argparse
import sys

from gan import cudnn_compat
from gan import runs

cudnn_compat.maybe_install()  # GAN_CUDNN=1: cuDNN with CuPy >= 11

from animeface import training  # noqa: E402
from gan import multinode  # noqa: E402


def main(argv=None):
    parser = training.add_arguments(argparse.ArgumentParser(
        description=__doc__.splitlines()[0]))
    args = training.parse_args(parser, argv)
    try:
        training.check_args(args)
        comm = multinode.from_options(args.multi_node, args.communicator,
                                      args.device)
        if comm is not None:  # options.json records the one chosen
            args.communicator = comm.gan_name
        # under --multi-node rank 0 alone looks at and makes the folder
        snapshot, done = multinode.root_only(comm, lambda: (
            runs.prepare_out(args.out, args.resume),
            runs.finished_result(args.out)))
        root = multinode.is_root(comm)
        if done is not None and args.resume == 'auto':
            if root:
                print('{} finished earlier: {}'.format(
                    args.out, training.summary_line(done)), file=sys.stderr)
            return done
        result = training.run(args, resume_from=snapshot, comm=comm)
    except runs.UsageError as e:
        multinode.error(parser, str(e))
    if result is not None:  # None on the other ranks of a multi-node run
        print('finished: ' + training.summary_line(result), file=sys.stderr)
    return result


if __name__ == '__main__':
    main()
