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
result.json.  The options are declared in animeface/options.py, the wiring
is animeface/build.py.
"""
import sys

from gan import runs
from animeface import options, train


def main(argv=None):
    parser = options.parser(prog='train_dcgan.py',
                            description=__doc__.splitlines()[0])
    o = parser.parse(argv)
    try:
        result, trained = train.run(o, log=sys.stderr)
    except runs.UsageError as e:  # one line, on rank 0
        parser.fail(str(e))
    if result is not None:  # None on the other ranks of a multi-node run
        print('{}: {}'.format('finished' if trained else
                              o.out + ' finished earlier',
                              train.summary_line(result)), file=sys.stderr)
    return result


if __name__ == '__main__':
    main()
