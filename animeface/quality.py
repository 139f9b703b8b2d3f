"""A quality number for colour images: the Fréchet distance between the
features of generated and real images, in a small classifier trained on
the data set's own labels.

The Fréchet Inception distance (Heusel et al. 2017) fits a Gaussian to
the Inception-v3 features of each image set and reports

    ||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)).

Inception's weights cannot be downloaded here, and ImageNet features say
little about 32 px emoji, so the features are those of a small convnet
trained on the folder's ``labels.json`` (written by
:mod:`animeface.emoji`: 32 subcategories of the face and people emoji,
such as "face-smiling" or "person-role"): the 128 channels of its last
convolution, averaged over the image, at 32 px (other sizes are resized
with a bilinear filter).  Its numbers compare runs on the same data and
classifier; they are not FID values and do not compare with published
ones.  Lower is better; real images against other real images give the
floor that the evaluation reports beside it.

The classifier trains on first use (10 epochs of Adam, about 2 minutes on
one core for the 4,860 emoji) and is cached (``--cache``, else the MNIST
classifier's cache folder) under a name made from the labels, so another
folder gets its own.  Emoji are held out by emoji, not by image, so the
skin-tone variants of a held-out emoji are all held out; its held-out
accuracy is printed and kept in the info file.

    python -m animeface.quality data/emoji [--cache DIR]   # train it ahead
    python -m animeface.quality data/emoji --grids RUN/samples_*.png \\
        [--size 32] [--out scores.json]      # score a run's sample grids
"""
import argparse
import hashlib
import json
import os
import sys
import time

import numpy

import chainer
import chainer.functions as F
import chainer.links as L

from gan import datasets
from gan import health
from gan import metrics
from gan import mnist_classifier
from gan import runs

from animeface import data as adata
from animeface import emoji

VERSION = 1
SIZE = 32
EPOCHS = 10
HOLD_OUT = 0.15


class FeatureNet(chainer.Chain):
    """uint8-scaled images (N, 3, 32, 32) in [0, 1] -> class logits.

    Three stages of conv 3x3 - batch norm - ReLU - max pool 2 (32, 64,
    128 channels), a global average (the features), dense to the
    classes."""

    def __init__(self, n_classes, widths=(32, 64, 128)):
        super().__init__()
        self.widths = widths
        with self.init_scope():
            self.convs = chainer.ChainList(*[
                L.Convolution2D(None, w, 3, 1, 1, nobias=True)
                for w in widths])
            self.bns = chainer.ChainList(*[
                L.BatchNormalization(w) for w in widths])
            self.out = L.Linear(widths[-1], n_classes)

    def features(self, x):
        h = x
        for conv, bn in zip(self.convs, self.bns):
            h = F.max_pooling_2d(F.relu(bn(conv(h))), 2)
        return F.mean(h, axis=(2, 3))

    def forward(self, x):
        return self.out(self.features(x))


def to_input(images, size=SIZE):
    """uint8 (N, 3, S, S) -> float32 (N, 3, size, size) in [0, 1]."""
    images = numpy.asarray(images)
    n, c, h, w = images.shape
    if c != 3:
        raise ValueError('the quality metric takes colour images, got {} '
                         'channels'.format(c))
    x = datasets.resize_gray(images.reshape(n * c, h, w), size)
    return (x.reshape(n, c, size, size).astype(numpy.float32) /
            numpy.float32(255))


def read_labels(folder):
    """{file name: labels} of ``folder``'s labels.json; UsageError when
    there is none."""
    path = os.path.join(folder, emoji.LABELS)
    if not os.path.isfile(path):
        raise runs.UsageError(
            '{} has no {}: build the folder with python -m animeface.emoji '
            '(it writes the labels the quality metric learns)'.format(
                folder, emoji.LABELS))
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def labeled_images(folder, labels, key='subcategory'):
    """(uint8 images (N, 3, 32, 32), class ids (N,), class names, groups
    (N,)): the readable labeled images of ``folder``; images of one
    ``emoji`` share a group."""
    names = sorted(labels)
    classes = sorted({labels[n][key] for n in names})
    images, ys, groups = [], [], []
    for name in names:
        im = adata.open_image(os.path.join(folder, name))
        if im is None:
            continue
        images.append(adata.square_resize(im, SIZE))
        ys.append(classes.index(labels[name][key]))
        groups.append(labels[name].get('emoji', name))
    if not images:
        raise runs.UsageError('{}: none of the images in {} can be read'
                              .format(folder, emoji.LABELS))
    return (numpy.stack(images), numpy.asarray(ys, dtype=numpy.int32),
            classes, groups)


def split_groups(groups, hold_out=HOLD_OUT, seed=0):
    """Boolean mask of the held-out images: a seeded share of the groups,
    every image of a chosen group."""
    unique = sorted(set(groups))
    rng = numpy.random.default_rng([seed, 3])
    chosen = set(rng.permutation(unique)[:int(round(hold_out *
                                                    len(unique)))])
    return numpy.array([g in chosen for g in groups])


def train(images, ys, n_classes, held_out, epochs=EPOCHS, batchsize=64,
          lr=1e-3, seed=0, log=sys.stderr):
    """A :class:`FeatureNet` trained on the images not ``held_out``
    (random horizontal flips); returns (model, info)."""
    numpy.random.seed(seed)  # the initializers
    model = FeatureNet(n_classes)
    opt = chainer.optimizers.Adam(alpha=lr)
    opt.setup(model)
    x_all = to_input(images)
    x, y = x_all[~held_out], ys[~held_out]
    rng = numpy.random.default_rng([seed, 4])
    start = time.time()
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), batchsize):
            idx = order[i:i + batchsize]
            xb = x[idx].copy()
            flip = rng.random(len(idx)) < 0.5
            xb[flip] = xb[flip][..., ::-1]
            loss = F.softmax_cross_entropy(model(xb), y[idx])
            model.cleargrads()
            loss.backward()
            opt.update()
        if log is not None:
            print('quality classifier: epoch {}/{}, loss {:.3f}'.format(
                epoch + 1, epochs, float(loss.array)), file=log)
    info = {'version': VERSION, 'classes': int(n_classes),
            'train_images': int(len(x)),
            'held_out_images': int(held_out.sum()),
            'train_accuracy': accuracy(model, x, y),
            'held_out_accuracy': accuracy(model, x_all[held_out],
                                          ys[held_out]) if held_out.any()
            else None,
            'epochs': epochs, 'seconds': round(time.time() - start, 1)}
    return model, info


def _predict(model, x, fn, batchsize=500):
    out = []
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for i in range(0, len(x), batchsize):
            xb = model.xp.asarray(x[i:i + batchsize])
            out.append(chainer.backend.CpuDevice().send(fn(xb).array))
    return numpy.concatenate(out)


def accuracy(model, x, y):
    return float((_predict(model, x, model.forward).argmax(axis=1) ==
                  y).mean())


def features(model, images):
    """The features (N, 128), float64, of uint8 colour images."""
    return _predict(model, to_input(images), model.features).astype(
        numpy.float64)


def cache_paths(labels, cache=None):
    """(weights, info) for the classifier of ``labels``."""
    digest = hashlib.sha1(json.dumps(labels, sort_keys=True).encode(
        'utf-8')).hexdigest()[:12]
    stem = os.path.join(mnist_classifier.cache_dir(cache),
                        'quality_features_v{}_{}'.format(VERSION, digest))
    return stem + '.npz', stem + '.json'


def load_or_train(folder, cache=None, log=sys.stderr):
    """The feature classifier of image folder ``folder`` and its info,
    trained and cached first when it is missing; (None, None) for a
    folder without labels.json."""
    if not os.path.isfile(os.path.join(folder, emoji.LABELS)):
        return None, None
    labels = read_labels(folder)
    weights, info_path = cache_paths(labels, cache)
    n_classes = len({v['subcategory'] for v in labels.values()})
    cached = mnist_classifier.load_cached(FeatureNet(n_classes), weights,
                                          info_path, log)
    if cached is not None:
        return cached
    images, ys, classes, groups = labeled_images(folder, labels)
    if log is not None:
        print('training the quality metric\'s classifier on {} images of '
              '{} classes; it is cached in {}'.format(
                  len(images), len(classes), os.path.dirname(weights)),
              file=log)
    model, info = train(images, ys, len(classes), split_groups(groups),
                        log=log)
    info['classes_names'] = classes
    info['folder'] = os.path.abspath(folder)
    mnist_classifier.save_cached(model, info, weights, info_path)
    if log is not None:
        print('quality classifier: held-out accuracy {:.3f} ({} classes)'
              .format(info['held_out_accuracy'] or 0, len(classes)),
              file=log)
    return model, info


def frechet(model, images, real):
    """Fréchet distance between the features of uint8 ``images`` and
    ``real``."""
    return metrics.frechet_distance(features(model, images),
                                    features(model, real))


def grid_tiles(path, size):
    """The uint8 tiles (N, 3, size, size) of a sample grid PNG (rows and
    columns of ``size`` px images without padding, as the runs write)."""
    im = adata.open_image(path)
    if im is None:
        raise runs.UsageError('{} is not a readable image'.format(path))
    a = numpy.asarray(im.convert('RGB'))
    h, w = a.shape[0] // size, a.shape[1] // size
    if not h or not w or a.shape[0] % size or a.shape[1] % size:
        raise runs.UsageError('{} is {}x{} px, not a grid of {} px tiles: '
                              'give the --size of its run'.format(
                                  path, a.shape[1], a.shape[0], size))
    return (a[:h * size, :w * size].reshape(h, size, w, size, 3)
            .transpose(0, 2, 4, 1, 3).reshape(h * w, 3, size, size))


def score_grids(model, folder, paths, size, n_real=1000, seed=0):
    """{path: {'frechet': Fréchet distance of its tiles to ``n_real`` real
    images (at most half the folder), 'high_frequency_ratio': that of
    :mod:`gan.health`}}, with 'real data': the same for as many other
    real images as a grid has tiles (or the rest of the folder)."""
    data = adata.load(folder, size, seed=seed, log=None)
    order = numpy.random.default_rng([seed, 5]).permutation(len(data))
    take = lambda idx: numpy.stack([data.dataset[int(i)] for i in idx])  # noqa
    n_real = min(n_real, len(data) // 2)
    real = take(order[:n_real])
    sets = {p: grid_tiles(p, size) for p in paths}
    n = max(len(t) for t in sets.values())
    sets['real data'] = take(order[n_real:n_real + n])
    return {p: {'frechet': frechet(model, t, real),
                'high_frequency_ratio': health.high_frequency_ratio(t)}
            for p, t in sets.items()}


def main(argv=None):
    p = argparse.ArgumentParser(
        description='Train (and cache) the classifier whose features the '
                    'quality metric compares, on a labeled image folder; '
                    'with --grids, score sample grids with it.')
    p.add_argument('folder', help='a folder made by python -m animeface.'
                   'emoji (with labels.json)')
    p.add_argument('--cache', help='cache folder (default: '
                   '$IMPROVED_GAN_CACHE or ~/.cache/improved-gan-chainer)')
    p.add_argument('--grids', nargs='+', default=(), metavar='PNG',
                   help='sample grids (samples_*.png of runs on this '
                   'folder) to score against 1000 real images, beside as '
                   'many real images as a grid holds (also the high-'
                   'frequency ratio of the run-health checks)')
    p.add_argument('--size', type=int, default=32,
                   help='tile size of the grids (default %(default)s)')
    p.add_argument('--out', help='write the scores to this JSON file')
    args = p.parse_args(argv)
    try:
        read_labels(args.folder)
        model, info = load_or_train(args.folder, args.cache)
        scores = score_grids(model, args.folder, args.grids, args.size) \
            if args.grids else None
    except runs.UsageError as e:
        p.error(str(e))
    info = {k: v for k, v in info.items()
            if k not in ('classes_names', 'folder')}
    if scores is None:
        print(json.dumps(info, indent=1))
        return info
    print('Fréchet distance, high-frequency ratio, grid')
    for path, v in scores.items():
        print('{:8.1f} {:8.3f}  {}'.format(v['frechet'],
                                           v['high_frequency_ratio'], path))
    if args.out:
        runs.write_json(args.out, {'classifier': info, 'size': args.size,
                                   'scores': scores})
    return scores


if __name__ == '__main__':
    main()
