"""Short training learns: test-sized runs through the command lines move
away from their untrained state in the direction of the task.

The thresholds were set from measured runs (given next to them) with a
margin on both sides: far from what a run that learns gives, and far from
what an untrained or broken one gives."""
import json
import os

import numpy
import pytest

import train_ssl
from gan import datasets

from test_mnist_data import write_idx


@pytest.fixture(scope='module')
def mnist_subset(tmp_path_factory):
    """The first 2,000 MNIST training digits and 1,000 test digits as an
    IDX folder (--data-dir): the real task at test size."""
    root = str(tmp_path_factory.mktemp('mnist_subset'))
    x, y = datasets.load_mnist('train')
    xt, yt = datasets.load_mnist('test')
    for name, a in (('train-images-idx3-ubyte', x[:2000]),
                    ('train-labels-idx1-ubyte', y[:2000]),
                    ('t10k-images-idx3-ubyte', xt[:1000]),
                    ('t10k-labels-idx1-ubyte', yt[:1000])):
        write_idx(os.path.join(root, name), a.astype(numpy.uint8))
    return root


SSL_SEED = 1


def test_ssl_short_run_is_far_below_chance(mnist_subset, tmp_path):
    """One epoch of the 2,000-image pool (40 iterations of 50) with 100
    labels, the default model and step, through train_ssl.py.  Chance is
    90 % error.  Measured test errors on the 1,000 digits after 40
    iterations (seeds 1-5): averaged D (rate 0.05) 0.306, 0.384, 0.320,
    0.348, 0.311; raw D 0.314, 0.376, 0.546, 0.327, 0.286 (the last
    iteration's D swings more); seed 1 with the gan.fast networks: 0.285
    and 0.315.  The thresholds, 0.6 for the averaged D
    and 0.75 for the raw one, leave about 0.2 above the worst measured
    value and 0.3 and 0.15 below chance."""
    out = str(tmp_path / 'ssl')
    train_ssl.main(['--data-dir', mnist_subset, '--labels', '100',
                    '--batchsize', '50', '--epochs', '1',
                    '--lr-decay-epochs', '0', '--ema-rate', '0.05',
                    '--seed', str(SSL_SEED), '--data-seed', str(SSL_SEED),
                    '--no-progress', '--out', out])
    result = json.load(open(os.path.join(out, 'result.json')))
    assert result['iterations'] == 40
    assert result['test_error'] < 0.6
    assert result['test_error_raw'] < 0.75


DCGAN_SEED = 0


def pixel_stats(images, real):
    """(mean distance from a generated image to its nearest real image,
    fraction of near-black pixels) of uint8 images (N, ...)."""
    f = images.reshape(len(images), -1).astype(numpy.float64)
    r = real.reshape(len(real), -1).astype(numpy.float64)
    d2 = (f * f).sum(1)[:, None] + (r * r).sum(1)[None] - 2 * f @ r.T
    nearest = numpy.sqrt(numpy.maximum(d2, 0).min(axis=1)).mean()
    return nearest, float((f < 30).mean())


def test_dcgan_short_run_on_mnist_moves_toward_the_digits(tmp_path):
    """200 iterations of a small DCGAN (32 px, --ch 32, batch 32, lr 1e-3)
    on 2,000 digits, through the trainer train_dcgan.py builds.  Against
    the untrained generator (the same seed) the samples move toward the
    data: a generated image's distance to its nearest real digit falls,
    the black background appears, and the samples stay varied (a
    collapsed generator gives diversity about 0).  Measured (seeds 0, 1,
    2): nearest distance 0.57, 0.75, 0.65 of the untrained one's;
    near-black pixels 0.44, 0.27, 0.30 (untrained 0.00, real digits
    0.80); diversity 0.31, 0.33, 0.51 (untrained 0.01).  Thresholds: 0.85,
    0.1 and 0.1, each 0.1 or more inside the measured range and as far
    from the untrained generator."""
    from animeface import analogy
    from animeface import build as abuild
    from animeface import options as aopt
    from animeface import train as atrain
    from gan import runs
    from animeface import data as adata
    from gan import metrics
    x, _ = datasets.load_mnist('train')
    digits = datasets.resize_gray(x[:2500], 32)[:, None]
    images = adata.ImageData(digits[:2000], 1, 'mnist')
    held_out = digits[2000:]
    out = str(tmp_path / 'dcgan')
    args = aopt.parser().parse([
        '--data', 'mnist', '--size', '32', '--ch', '32', '--z-dim', '16',
        '--batchsize', '32', '--lr', '0.001', '--iterations', '200',
        '--seed', str(DCGAN_SEED), '--log-interval', '200',
        '--grid-interval', '200', '--snapshot-interval', '200',
        '--out', out])
    aopt.check(args)
    numpy.random.seed(args.seed)  # as build_trainer does before building
    untrained, _ = abuild.build_networks(args, images.channels)
    atrain.train(args, images)
    trained = analogy.load_generator(runs.latest_snapshot(out))
    before = metrics.generate(untrained, 200, seed=1)
    after = metrics.generate(trained, 200, seed=1)
    near0, dark0 = pixel_stats(before, held_out)
    near1, dark1 = pixel_stats(after, held_out)
    div = metrics.diversity(after, held_out[:200])
    assert near1 < 0.85 * near0
    assert dark1 > 0.1 > dark0
    assert div > 0.1
