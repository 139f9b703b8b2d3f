"""Crop anime faces from illustrations into a training folder of PNGs.

    python -m animeface.build_dataset illustrations/ faces/ --size 64

Every file under SRC is tried as an image; the offline detector of the PyPI
package ``animeface`` (see :mod:`animeface.detector`) finds the faces; each
face box is widened by ``--margin`` on every side, made square around its
centre (shifted, then shrunk if needed, to stay inside the picture), cropped
and resized to ``--size``.  Faces narrower than ``--min-size`` pixels or
less likely than ``--min-likelihood`` are left out.  Output:
``DST/<source name>_<k>.png``.
"""
import argparse
import os
import sys

from PIL import Image

from animeface import data as adata
from animeface import detector


def square_box(box, margin, width, height):
    """(x, y, w, h) -> a square (x, y, s, s) inside a width x height image:
    the box widened by ``margin * max(w, h)`` on each side, centred on the
    box, shifted to fit, and shrunk to the image's shorter side when it
    is larger."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin)
    side = int(round(min(side, width, height)))
    cx, cy = x + w / 2.0, y + h / 2.0
    left = int(round(cx - side / 2.0))
    top = int(round(cy - side / 2.0))
    left = min(max(left, 0), width - side)
    top = min(max(top, 0), height - side)
    return left, top, side, side


def face_boxes(faces, min_size=0, min_likelihood=0.0):
    """(kept boxes, number rejected) from the detector's faces."""
    kept, rejected = [], 0
    for f in faces:
        p = f.face.pos
        if p.width < min_size or f.likelihood < min_likelihood:
            rejected += 1
        else:
            kept.append((p.x, p.y, p.width, p.height))
    return kept, rejected


class Summary:
    def __init__(self):
        self.files = self.images = self.unreadable = 0
        self.no_face = self.rejected = self.written = 0

    def __str__(self):
        return ('{} files: {} images read, {} unreadable skipped, {} without '
                'a face, {} faces too small or unlikely, {} faces '
                'written').format(self.files, self.images, self.unreadable,
                                  self.no_face, self.rejected, self.written)


def build(src, dst, size=64, margin=0.0, min_size=0, min_likelihood=0.0,
          detect=None, log=sys.stderr):
    """Crop every face of every image under ``src`` into ``dst``.

    ``detect`` (PIL image -> faces) defaults to the PyPI detector.
    Returns a :class:`Summary`."""
    files = adata.check_folder(src)
    if detect is None:
        detect = detector.load().detect
    os.makedirs(dst, exist_ok=True)
    summary = Summary()
    summary.files = len(files)
    for i, path in enumerate(files):
        if log is not None:
            print('\r{}/{} files, {} faces'.format(
                i + 1, len(files), summary.written), end='', file=log,
                flush=True)
        image = adata.open_image(path)
        if image is None:
            summary.unreadable += 1
            continue
        image = image.convert('RGB')
        summary.images += 1
        boxes, rejected = face_boxes(detect(image), min_size, min_likelihood)
        summary.rejected += rejected
        if not boxes and not rejected:
            summary.no_face += 1
        stem = os.path.splitext(os.path.relpath(path, src))[0]
        stem = stem.replace(os.sep, '_')
        for k, box in enumerate(boxes):
            square = square_box(box, margin, *image.size)
            crop = adata.square_resize(image, size, square)
            Image.fromarray(crop.transpose(1, 2, 0)).save(
                os.path.join(dst, '{}_{}.png'.format(stem, k)))
            summary.written += 1
    if log is not None:
        print('\n' + str(summary), file=log)
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Crop anime faces (PyPI detector "animeface") from the '
                    'images under SRC into PNGs in DST.')
    parser.add_argument('src', help='folder of illustrations (searched '
                        'recursively)')
    parser.add_argument('dst', help='output folder')
    parser.add_argument('--size', type=int, default=64,
                        help='output size in pixels (default 64)')
    parser.add_argument('--margin', type=float, default=0.0,
                        help='widen each face box by this fraction of its '
                             'size on every side (default 0)')
    parser.add_argument('--min-size', type=int, default=0,
                        help='skip faces narrower than this (pixels)')
    parser.add_argument('--min-likelihood', type=float, default=0.0,
                        help='skip faces the detector is less sure of')
    args = parser.parse_args(argv)
    if args.size < 1 or args.margin < 0:
        parser.error('--size must be positive and --margin not negative')
    try:
        summary = build(args.src, args.dst, args.size, args.margin,
                        args.min_size, args.min_likelihood, log=sys.stderr)
    except (adata.DataError, detector.DetectorMissing) as e:
        parser.error(str(e))
    if summary.written == 0:
        print('warning: no face was written', file=sys.stderr)


if __name__ == '__main__':
    main()
