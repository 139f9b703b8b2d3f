#!/usr/bin/env python
"""Semi-supervised MNIST with a feature-matching GAN (Salimans et al. 2016).

Defaults (--preset paper) reproduce the authors' permutation-invariant
setting with 100 labels; --preset blog is the blog's code on the day of
its post (epochs of 500 updates, validation accuracy), --preset blog-2017
its last version.  Every part of a preset is a flag, and explicit flags
override the preset.
Examples::

    python train_ssl.py                              # 100 labels, defaults
    python train_ssl.py --epochs 1 --out result/ssl_try   # a quick look
    python train_ssl.py --labels 20 --seed 2 --data-seed 2
    python train_ssl.py --preset blog --patience 10  # the post's code
    python train_ssl.py --preset blog --fake-term log-one-minus-d  # its text
    python train_ssl.py --out result/ssl --resume auto   # continue a run

Writes OUT/options.json, log, accuracy.png, loss.png,
samples_epochNNN.png, snapshot_iter_N and, at the end, result.json.  An
existing OUT is refused unless resuming; --resume auto on a finished run
prints its result without training again.  The options are declared in
mnist_ssl/options.py, the wiring is mnist_ssl/build.py.
"""
import sys

from gan import runs
from mnist_ssl import options, report, train


def main(argv=None):
    parser = options.parser(description=__doc__)
    o = parser.parse(argv)
    try:
        result = train.run(o)
    except runs.UsageError as e:  # one line, on rank 0
        parser.fail(str(e))
    if result is None:  # a rank other than 0 of a multi-node run
        return 0
    if result.get('reported'):
        latest = runs.latest_snapshot(o.out)
        print('{} holds a run finished at epoch {:g}, not trained again{}. '
              'Its result:'.format(
                  o.out, result['epochs'], '' if latest is None else
                  ' (to train on: --resume {})'.format(latest)))
    print(report.summary(result, o.out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
