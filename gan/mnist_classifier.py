"""A small MNIST convnet, trained once offline and cached, for the digit
metrics (modes covered, KL to uniform, classifier Inception score).

The weights are never committed: :func:`load_or_train` looks in the cache
folder (``--cache``, else ``$IMPROVED_GAN_CACHE``, else
``$XDG_CACHE_HOME/improved-gan-chainer`` or ``~/.cache/improved-gan-chainer``)
and trains the network there when it is missing (4 epochs, about 15 minutes
on one core of a 2-core CPU; the run is checked for >= 99 % test accuracy).

``python -m gan.mnist_classifier [--cache DIR]`` trains it ahead of time.

A quick stand-in for demos (:func:`load_quick_or_train`, ``--quick``): the
same layers, narrower (8 and 16 filters, 64 hidden units), trained for one
pass over the first 20,000 training digits (10-15 s on one core) to
about 96 % test accuracy; cached under its own name
(``mnist_classifier_quick_v1``), so it never replaces the accurate one.
Counts made with it are approximate.  :func:`load_for_demo` takes the
accurate classifier when it is cached and the quick one otherwise.
"""
import argparse
import json
import os
import sys
import time

import numpy

import chainer
import chainer.functions as F
import chainer.links as L

from gan import datasets

VERSION = 1
REQUIRED_ACCURACY = 0.99
QUICK_VERSION = 1
QUICK_WIDTHS = (8, 16, 64)  # filters of the two convolutions, hidden units
QUICK_EXAMPLES = 20000
QUICK_LR = 3e-3


class MNISTClassifier(chainer.Chain):
    """x (N, 1, 28, 28) in [0, 1] -> 10 logits.

    conv 3x3 32 - batch norm - ReLU - max pool 2 - conv 3x3 64 - batch
    norm - ReLU - max pool 2 - dense 256 - ReLU - dropout 0.5 - dense 10
    (``widths`` = (32, 64, 256); the quick classifier's are
    :data:`QUICK_WIDTHS`)."""

    def __init__(self, widths=(32, 64, 256)):
        super().__init__()
        c1, c2, hidden = widths
        with self.init_scope():
            self.c1 = L.Convolution2D(1, c1, 3, pad=1, nobias=True)
            self.b1 = L.BatchNormalization(c1)
            self.c2 = L.Convolution2D(c1, c2, 3, pad=1, nobias=True)
            self.b2 = L.BatchNormalization(c2)
            self.l1 = L.Linear(c2 * 7 * 7, hidden)
            self.l2 = L.Linear(hidden, 10)

    def forward(self, x):
        h = F.max_pooling_2d(F.relu(self.b1(self.c1(x))), 2)
        h = F.max_pooling_2d(F.relu(self.b2(self.c2(h))), 2)
        h = F.dropout(F.relu(self.l1(h)), 0.5)
        return self.l2(h)

    def predict_proba(self, digits, batchsize=1000):
        """uint8 (N, 28, 28) -> class probabilities float32 (N, 10)."""
        out = []
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            for i in range(0, len(digits), batchsize):
                x = _to_input(self.xp, digits[i:i + batchsize])
                p = F.softmax(self.forward(x)).array
                out.append(chainer.backend.CpuDevice().send(p))
        if not out:
            return numpy.zeros((0, 10), dtype=numpy.float32)
        return numpy.concatenate(out)


def _to_input(xp, digits):
    x = xp.asarray(digits, dtype=numpy.float32) / numpy.float32(255.0)
    return x.reshape(-1, 1, 28, 28)


def cache_dir(path=None):
    if path:
        return path
    if os.environ.get('IMPROVED_GAN_CACHE'):
        return os.environ['IMPROVED_GAN_CACHE']
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(
        os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'improved-gan-chainer')


def cache_paths(path=None):
    """(weights .npz, info .json) in the cache folder."""
    stem = os.path.join(cache_dir(path), 'mnist_classifier_v{}'.format(
        VERSION))
    return stem + '.npz', stem + '.json'


def quick_cache_paths(path=None):
    """(weights .npz, info .json) of the quick classifier: names of its
    own beside the accurate classifier's."""
    stem = os.path.join(cache_dir(path), 'mnist_classifier_quick_v{}'.format(
        QUICK_VERSION))
    return stem + '.npz', stem + '.json'


def accuracy(model, digits, labels):
    pred = model.predict_proba(digits).argmax(axis=1)
    return float((pred == labels).mean())


def train(epochs=4, batchsize=100, lr=1e-3, seed=0, limit=None,
          log=sys.stderr):
    """Train on the 60,000 train + valid digits, test on the 10,000 test
    digits, with Adam whose step size falls to 0.3x and 0.1x for the last
    two epochs.  ``limit`` caps the training and test examples (tests).

    Returns (model, info dict with test_accuracy, epochs, seconds)."""
    start = time.time()
    numpy.random.seed(seed)
    x, y = datasets.load_mnist('train')
    xt, yt = datasets.load_mnist('test')
    if limit:
        x, y, xt, yt = x[:limit], y[:limit], xt[:limit], yt[:limit]
    model = MNISTClassifier()
    opt = chainer.optimizers.Adam(alpha=lr)
    opt.setup(model)
    rng = numpy.random.default_rng(seed)
    for epoch in range(epochs):
        opt.alpha = lr * {1: 0.1, 2: 0.3}.get(epochs - epoch, 1.0)
        _fit_pass(model, opt, x, y, rng.permutation(len(x)), batchsize)
        acc = accuracy(model, xt, yt)
        if log is not None:
            print('mnist classifier: epoch {} test accuracy {:.4f} '
                  '({:.0f} s)'.format(epoch + 1, acc, time.time() - start),
                  file=log)
    info = {'version': VERSION, 'test_accuracy': acc, 'epochs': epochs,
            'train_examples': int(len(x)), 'test_examples': int(len(xt)),
            'seconds': round(time.time() - start, 1)}
    return model, info


def _fit_pass(model, opt, x, y, order, batchsize, alpha=None):
    """One pass of ``opt`` over the digits ``x`` (uint8) with labels ``y``
    in ``order``, batches of ``batchsize``; ``alpha(step)``, when given,
    sets Adam's step size of each batch."""
    for step, i in enumerate(range(0, len(x), batchsize)):
        if alpha is not None:
            opt.alpha = alpha(step)
        idx = order[i:i + batchsize]
        loss = F.softmax_cross_entropy(model(_to_input(numpy, x[idx])),
                                       y[idx])
        model.cleargrads()
        loss.backward()
        opt.update()


def train_quick(examples=QUICK_EXAMPLES, batchsize=100, lr=QUICK_LR,
                seed=0, test_limit=None, log=sys.stderr):
    """The quick classifier: :data:`QUICK_WIDTHS`, one pass over the first
    ``examples`` training digits with Adam whose step size falls linearly
    from ``lr`` to 0.1 ``lr``; tested on the test digits (the first
    ``test_limit``).  Returns (model, info dict with ``quick`` True)."""
    start = time.time()
    numpy.random.seed(seed)
    x, y = datasets.load_mnist('train')
    xt, yt = datasets.load_mnist('test')
    x, y = x[:examples], y[:examples]
    if test_limit:
        xt, yt = xt[:test_limit], yt[:test_limit]
    model = MNISTClassifier(QUICK_WIDTHS)
    opt = chainer.optimizers.Adam(alpha=lr)
    opt.setup(model)
    steps = -(-len(x) // batchsize)
    _fit_pass(model, opt, x, y,
              numpy.random.default_rng(seed).permutation(len(x)), batchsize,
              alpha=lambda step: lr * (1.0 - 0.9 * step / max(1, steps - 1)))
    acc = accuracy(model, xt, yt)
    info = {'version': QUICK_VERSION, 'quick': True,
            'widths': list(QUICK_WIDTHS), 'test_accuracy': acc, 'epochs': 1,
            'train_examples': int(len(x)), 'test_examples': int(len(xt)),
            'seconds': round(time.time() - start, 1)}
    if log is not None:
        print('quick mnist classifier: test accuracy {:.4f} ({:.0f} s)'
              .format(acc, info['seconds']), file=log)
    return model, info


def load_cached(model, weights, info_path, log):
    """(model, info) from the cache files, or None when they are missing
    or unreadable."""
    if not (os.path.exists(weights) and os.path.exists(info_path)):
        return None
    try:
        chainer.serializers.load_npz(weights, model)
        with open(info_path) as f:
            return model, json.load(f)
    except (KeyError, ValueError, OSError) as e:
        if log is not None:
            print('cannot use the cached classifier {} ({})'.format(
                weights, e), file=log)
        return None


def save_cached(model, info, weights, info_path):
    os.makedirs(os.path.dirname(weights), exist_ok=True)
    chainer.serializers.save_npz(weights, model)
    with open(info_path, 'w') as f:
        json.dump(info, f, indent=1)


def load_quick_or_train(path=None, log=sys.stderr, **train_kwargs):
    """The cached quick classifier and its info, training and caching it
    (under :func:`quick_cache_paths`) first when it is missing."""
    weights, info_path = quick_cache_paths(path)
    cached = load_cached(MNISTClassifier(QUICK_WIDTHS), weights, info_path,
                          log)
    if cached is not None:
        return cached
    if log is not None:
        print('training the quick MNIST classifier (counts made with it are '
              'approximate); it is cached in {}'.format(
                  os.path.dirname(weights)), file=log)
    model, info = train_quick(log=log, **train_kwargs)
    save_cached(model, info, weights, info_path)
    return model, info


def load_for_demo(path=None, log=sys.stderr, **quick_kwargs):
    """The accurate classifier when it is cached (never trained here),
    else the quick one (:func:`load_quick_or_train`).  Returns (model,
    info); ``info.get('quick')`` says which."""
    weights, info_path = cache_paths(path)
    cached = load_cached(MNISTClassifier(), weights, info_path, log)
    if cached is not None:
        return cached
    return load_quick_or_train(path, log=log, **quick_kwargs)


def load_or_train(path=None, log=sys.stderr, **train_kwargs):
    """The cached classifier and its info, training and caching it first
    when it is missing or unreadable."""
    weights, info_path = cache_paths(path)
    cached = load_cached(MNISTClassifier(), weights, info_path, log)
    if cached is not None:
        return cached
    if log is not None:
        print('training the MNIST classifier for the metrics; it is cached '
              'in {}'.format(os.path.dirname(weights)), file=log)
    model, info = train(log=log, **train_kwargs)
    if info['test_accuracy'] < REQUIRED_ACCURACY and log is not None:
        print('warning: MNIST classifier test accuracy {:.4f} is below '
              '{}'.format(info['test_accuracy'], REQUIRED_ACCURACY), file=log)
    save_cached(model, info, weights, info_path)
    return model, info


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Train and cache the MNIST classifier used by the digit '
                    'metrics (modes, KL, Inception score).')
    parser.add_argument('--cache', help='cache folder (default: '
                        '~/.cache/improved-gan-chainer)')
    parser.add_argument('--epochs', type=int, default=4)
    parser.add_argument('--force', action='store_true',
                        help='retrain even when a cached classifier exists')
    parser.add_argument('--quick', action='store_true',
                        help='the quick, approximate classifier of the demo '
                             '(its own cache file; --epochs is ignored)')
    args = parser.parse_args(argv)
    paths = quick_cache_paths if args.quick else cache_paths
    if args.force:
        for p in paths(args.cache):
            if os.path.exists(p):
                os.remove(p)
    if args.quick:
        _, info = load_quick_or_train(args.cache)
    else:
        _, info = load_or_train(args.cache, epochs=args.epochs)
    print(json.dumps(info))


if __name__ == '__main__':
    main()
