"""Collapse and memorisation metrics of a finished (or snapshotted) DCGAN
run, each with the value real images get beside it.

    python -m animeface.evaluate result/compare/mbd [--samples 26000] \
        [--iteration N] [--device 0]

For every run (on 1000 samples, and 1000 real images not in the pool for
the real-data value):

* ``diversity`` -- mean pairwise distance of samples / of real images;
* ``near_duplicate_share`` -- share of sample pairs whose RMS pixel
  difference is under ``--duplicate-threshold`` (0-255 units);
* ``nearest_train_median`` / ``_mean`` -- RMS pixel distance of each sample
  to its nearest image in a pool of up to ``--pool`` training images
  (memorisation shows as values far below the real images');

for image folders with labels.json (made by :mod:`animeface.emoji`) also
``frechet``, the Fréchet distance of the first 1000 samples to the real
images in the features of a classifier of the folder's labels
(:mod:`animeface.quality`, trained on first use and cached); for
``mnist`` / ``stacked-mnist`` runs also modes covered, KL(generated
modes || uniform) and the classifier Inception score of all samples, with
the cached MNIST classifier (trained on first use, see
:mod:`gan.mnist_classifier`).  Writes RUN/metrics.json, or with
``--iteration N`` the metrics of the snapshot of iteration N (to see a
collapse early in training) to RUN/metrics_iterN.json.
"""
import argparse
import glob
import os

import numpy

from gan import gpu
from gan import metrics
from gan import mnist_classifier
from gan import options as gopt
from gan import runs

from animeface import analogy
from animeface import data as adata
from animeface import quality

DIVERSITY_SAMPLES = 1000
POOL = 10000
DUPLICATE_THRESHOLD = 8.0


def split_real(data, seed=0, m=DIVERSITY_SAMPLES, pool=POOL):
    """(real images, training pool): disjoint seeded draws of at most m and
    ``pool`` training images (the real images at most half the data)."""
    n = len(data)
    m = min(m, n // 2)
    perm = numpy.random.default_rng([seed, 2]).permutation(n)
    take = lambda idx: numpy.stack([data.dataset[int(i)] for i in idx])  # noqa
    return take(perm[:m]), take(perm[m:m + pool])


def image_metrics(images, kind, real, pool, classifier=None,
                  threshold=DUPLICATE_THRESHOLD, features=None):
    """Metrics of uint8 images (N, C, S, S) against ``real`` images (at
    least two, not in ``pool``) and the training ``pool``; with the
    ``features`` classifier of :mod:`animeface.quality`, also the Fréchet
    distance of the images to ``real``."""
    m = min(DIVERSITY_SAMPLES, len(images))
    head = images[:m]
    nearest = metrics.nearest_distances(head, pool)
    result = {'samples': int(len(images)),
              'diversity': metrics.diversity(head, real),
              'near_duplicate_share': metrics.near_duplicate_share(
                  head, threshold),
              'duplicate_threshold': threshold,
              'nearest_train_median': float(numpy.median(nearest)),
              'nearest_train_mean': float(nearest.mean()),
              'pool': int(len(pool))}
    if kind in adata.DIGIT_SETS and classifier is not None:
        result.update(metrics.digit_metrics(classifier, images))
    if features is not None:
        result['frechet'] = quality.frechet(features, head, real)
    return result


def reference_metrics(data, n, classifier=None, seed=0,
                      threshold=DUPLICATE_THRESHOLD, features=None):
    """The same numbers for real images (what a perfect generator gets):
    n real images for the digit metrics; the real images of
    :func:`split_real` against an independent draw for the diversity."""
    real, pool = split_real(data, seed)
    other = data.sample(DIVERSITY_SAMPLES, seed=seed + 1)
    result = image_metrics(real, data.kind, other, pool, None, threshold,
                           features)
    if data.kind in adata.DIGIT_SETS and classifier is not None:
        result.update(metrics.digit_metrics(classifier,
                                            data.sample(n, seed=seed)))
    result['samples'] = int(len(real))
    return result


def load_features(data_path, kind, cache=None, device=None):
    """The quality metric's classifier (:mod:`animeface.quality`) of an
    image folder with labels.json (trained on first use), on ``device``
    when given; None for other data."""
    if kind != 'folder':
        return None
    model, _ = quality.load_or_train(data_path, cache)
    if model is not None and device is not None:
        model.to_device(gpu.select(device))
    return model


def load_classifier(kind, cache=None, device=None):
    """The MNIST classifier for digit data (trained on first use, on the
    CPU) and its info, on ``device`` when given; (None, None) for other
    data."""
    if kind not in adata.DIGIT_SETS:
        return None, None
    model, info = mnist_classifier.load_or_train(cache)
    if device is not None:
        model.to_device(gpu.select(device))
    return model, info


def metrics_name(iteration=None):
    """The file a run's metrics go to: metrics.json for the latest
    snapshot, metrics_iterN.json for the snapshot of iteration N."""
    return 'metrics.json' if iteration is None else \
        'metrics_iter{}.json'.format(iteration)


def find_snapshot(run_dir, iteration=None):
    """``run_dir``'s latest snapshot, or that of ``iteration``; raises
    UsageError naming the snapshots there when it is missing."""
    if iteration is None:
        snapshot = runs.latest_snapshot(run_dir)
        if snapshot is None:
            raise runs.UsageError('no snapshot in {}: train it first'.format(
                run_dir))
        return snapshot
    snapshot = os.path.join(run_dir, 'snapshot_iter_{}'.format(iteration))
    if not os.path.isfile(snapshot):
        have = sorted(runs.snapshot_iteration(p) for p in glob.glob(
            os.path.join(run_dir, 'snapshot_iter_*')))
        raise runs.UsageError(
            'no snapshot of iteration {} in {}: give one of the iterations '
            'it has ({})'.format(iteration, run_dir,
                                 ', '.join(map(str, have)) or 'none'))
    return snapshot


def evaluate_run(run_dir, data, samples=26000, classifier=None, seed=0,
                 threshold=DUPLICATE_THRESHOLD, iteration=None, device=None,
                 features=None):
    """Metrics of the generator in ``run_dir``'s latest snapshot (or in its
    snapshot of ``iteration``), which generates on ``device`` (default:
    the CPU)."""
    snapshot = find_snapshot(run_dir, iteration)
    gen = analogy.load_generator(snapshot, device=device)
    fake = metrics.generate(gen, samples, seed=seed)
    real = data.sample(DIVERSITY_SAMPLES, seed=seed + 1)
    _, pool = split_real(data, seed)
    result = image_metrics(fake, data.kind, real, pool, classifier,
                           threshold, features)
    result['snapshot'] = os.path.basename(snapshot)
    result['iteration'] = runs.snapshot_iteration(snapshot)
    return result


def metrics_line(row, reference=None):
    """A row of metrics as one line (with the real-data value in brackets
    when ``reference`` is given)."""
    def pick(key, fmt):
        if row.get(key) is None:
            return None
        text = fmt.format(row[key])
        if reference and reference.get(key) is not None:
            text += ' (real {})'.format(fmt.format(reference[key]))
        return text
    parts = [('modes', pick('modes', '{}')), ('KL', pick('kl', '{:.2f}')),
             ('diversity', pick('diversity', '{:.3f}')),
             ('near-duplicate pairs', pick('near_duplicate_share',
                                           '{:.4f}')),
             ('nearest training image (median RMS)',
              pick('nearest_train_median', '{:.1f}')),
             ('Fréchet distance', pick('frechet', '{:.1f}'))]
    return ', '.join('{} {}'.format(k, v) for k, v in parts if v is not None)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Collapse and memorisation metrics of a train_dcgan.py '
                    'run folder, beside the values of real images.')
    parser.add_argument('run', help='run folder (with options.json and '
                        'snapshots)')
    parser.add_argument('--samples', type=int, default=26000,
                        help='generated samples (default %(default)s)')
    parser.add_argument('--duplicate-threshold', type=float,
                        default=DUPLICATE_THRESHOLD,
                        help='RMS pixel difference (0-255) under which two '
                             'images count as near duplicates (default '
                             '%(default)s)')
    parser.add_argument('--cache', help='cache folder of the MNIST '
                        'classifier and of the quality metric\'s')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the samples (default %(default)s)')
    parser.add_argument('--iteration', type=int,
                        help='evaluate the snapshot of this iteration into '
                             'metrics_iterN.json (default: the latest '
                             'snapshot, into metrics.json)')
    gopt.add_device(parser, help='where the generator and the classifier '
                    'run: ' + gopt.DEVICE_HELP)
    args = parser.parse_args(argv)
    try:
        if args.samples < 2:
            raise runs.UsageError('--samples must be at least 2')
        device = runs.parse_device(args.device)
        options = runs.read_options(args.run)
        if options is None:
            raise runs.UsageError('{} has no options.json: give a '
                                  'train_dcgan.py run folder'.format(args.run))
        find_snapshot(args.run, args.iteration)  # before data and classifier
        data = adata.load(options['data'], options['size'],
                          seed=options['seed'])
        classifier, _ = load_classifier(data.kind, args.cache, device)
        features = load_features(options['data'], data.kind, args.cache,
                                 device)
        result = evaluate_run(args.run, data, args.samples, classifier,
                              args.seed, args.duplicate_threshold,
                              args.iteration, device, features)
        result['real'] = reference_metrics(data, args.samples, classifier,
                                           args.seed,
                                           args.duplicate_threshold,
                                           features)
    except runs.UsageError as e:
        gopt.fail(parser, str(e))  # one line, no usage
    runs.write_json(os.path.join(args.run, metrics_name(args.iteration)),
                    result)
    print(metrics_line(result, result['real']))
    return result


if __name__ == '__main__':
    main()
