"""Collapse metrics of a finished (or snapshotted) DCGAN run.

    python -m animeface.evaluate result/compare/mbd [--samples 26000]

For ``mnist`` / ``stacked-mnist`` runs: modes covered, KL(generated modes ||
uniform) and the classifier Inception score of the generated samples, with
the cached MNIST classifier (trained on first use, see
:mod:`gan.mnist_classifier`); for every run: the diversity ratio (mean
pairwise distance of samples / of real images).  Writes RUN/metrics.json.
"""
import argparse
import json
import os
import sys

from gan import metrics
from gan import mnist_classifier

from animeface import analogy
from animeface import data as adata
from animeface import training

DIVERSITY_SAMPLES = 1000


def image_metrics(images, kind, real, classifier=None):
    """Metrics of uint8 images (N, C, S, S) against ``real`` images of the
    same shape (at least two)."""
    m = min(DIVERSITY_SAMPLES, len(images))
    result = {'samples': int(len(images)),
              'diversity': metrics.diversity(images[:m], real)}
    if kind in adata.DIGIT_SETS and classifier is not None:
        result.update(metrics.digit_metrics(classifier, images))
    return result


def reference_metrics(data, n, classifier=None, seed=0):
    """The same numbers for n real images (what a perfect generator gets)."""
    real = data.sample(n, seed=seed)
    other = data.sample(DIVERSITY_SAMPLES, seed=seed + 1)
    return image_metrics(real, data.kind, other, classifier)


def load_classifier(kind, cache=None):
    if kind not in adata.DIGIT_SETS:
        return None, None
    return mnist_classifier.load_or_train(cache)


def evaluate_run(run_dir, data, samples=26000, classifier=None, seed=0):
    """Metrics of the generator in ``run_dir``'s latest snapshot."""
    snapshot = training.latest_snapshot(run_dir)
    if snapshot is None:
        raise training.UsageError('no snapshot in {}'.format(run_dir))
    gen = analogy.load_generator(snapshot)
    fake = metrics.generate(gen, samples, seed=seed)
    real = data.sample(DIVERSITY_SAMPLES, seed=seed + 1)
    result = image_metrics(fake, data.kind, real, classifier)
    result['snapshot'] = os.path.basename(snapshot)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Collapse metrics (modes, KL, Inception score, '
                    'diversity) of a train_dcgan.py run folder.')
    parser.add_argument('run', help='run folder (with options.json and '
                        'snapshots)')
    parser.add_argument('--samples', type=int, default=26000,
                        help='generated samples (default 26,000)')
    parser.add_argument('--cache', help='MNIST classifier cache folder')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.samples < 2:
        parser.error('--samples must be at least 2')
    options = training.read_options(args.run)
    if options is None:
        parser.error('{} has no options.json: not a train_dcgan.py run '
                     'folder'.format(args.run))
    try:
        data = adata.load(options['data'], options['size'],
                          seed=options['seed'])
        classifier, _ = load_classifier(data.kind, args.cache)
        result = evaluate_run(args.run, data, args.samples, classifier,
                              args.seed)
    except (adata.DataError, training.UsageError) as e:
        parser.error(str(e))
    with open(os.path.join(args.run, 'metrics.json'), 'w') as f:
        json.dump(result, f, indent=1)
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == '__main__':
    main()
