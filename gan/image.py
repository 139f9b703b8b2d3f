"""Image tiling: batches of images -> one grid PNG."""
import os

import numpy
from PIL import Image


def to_uint8(images, value_range=(-1.0, 1.0)):
    """Float images in ``value_range`` -> uint8 in [0, 255], same shape."""
    lo, hi = value_range
    x = (numpy.asarray(images, dtype=numpy.float32) - lo) / (hi - lo)
    return numpy.clip(numpy.rint(x * 255.0), 0, 255).astype(numpy.uint8)


def tile(images, rows, cols, pad=0, pad_value=255):
    """Tile (N, C, H, W) or (N, H, W) uint8 images row-major into one
    (rows*H, cols*W[, C]) image; missing cells stay ``pad_value``.

    Raises ValueError when N > rows * cols.
    """
    images = numpy.asarray(images)
    if images.ndim == 3:
        images = images[:, None]
    n, c, h, w = images.shape
    if n > rows * cols:
        raise ValueError('{} images do not fit a {}x{} grid'.format(
            n, rows, cols))
    out = numpy.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c),
                     pad_value, dtype=images.dtype)
    for k in range(n):
        r, q = divmod(k, cols)
        y, x = r * (h + pad), q * (w + pad)
        out[y:y + h, x:x + w] = images[k].transpose(1, 2, 0)
    return out[:, :, 0] if c == 1 else out


def save_grid(path, images, rows, cols, value_range=(-1.0, 1.0), pad=0,
              image_shape=None):
    """Write float images as a rows x cols PNG grid.

    Args:
        images: (N, C, H, W), or (N, D) with ``image_shape`` = (C, H, W).
    """
    images = numpy.asarray(images)
    if image_shape is not None:
        images = images.reshape((images.shape[0],) + tuple(image_shape))
    grid = tile(to_uint8(images, value_range), rows, cols, pad=pad)
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    Image.fromarray(grid).save(path)
    return path


def save_index_rows(path, x, index_rows, cols, value_range=(0.0, 1.0),
                    pad=2):
    """Write a grid with one row per list of indices into ``x`` (flat
    square grey images, (N, side*side)): row r holds ``x[index_rows[r]]``,
    at most ``cols`` of them; cells a row has no image for are white."""
    x = numpy.asarray(x, dtype=numpy.float32).reshape(len(x), -1)
    cells = numpy.full((len(index_rows) * cols, x.shape[1]), value_range[1],
                       dtype=numpy.float32)
    for r, idx in enumerate(index_rows):
        idx = numpy.asarray(idx, dtype=numpy.int64)[:cols]
        cells[r * cols:r * cols + len(idx)] = x[idx]
    side = int(round(x.shape[1] ** 0.5))
    return save_grid(path, cells, len(index_rows), cols,
                     value_range=value_range, pad=pad,
                     image_shape=(1, side, side))
