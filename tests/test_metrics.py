"""Collapse metrics against constructed samples with known answers, and the
MNIST classifier's cache."""
import itertools
import json
import math
import os

import numpy
import pytest

from gan import datasets
from gan import metrics
from gan import mnist_classifier


def test_count_modes_and_kl_on_constructed_samples():
    rng = numpy.random.default_rng(0)
    covered = rng.choice(1000, size=37, replace=False)
    modes = rng.choice(covered, size=26000)
    modes[:37] = covered  # every chosen mode at least once
    assert metrics.count_modes(modes, 1000) == 37
    # KL against a plain loop over the distinct modes
    counts = {}
    for m in modes.tolist():
        counts[m] = counts.get(m, 0) + 1
    kl = sum(c / 26000 * math.log(c / 26000 * 1000) for c in counts.values())
    assert metrics.kl_to_uniform(modes, 1000) == pytest.approx(kl, rel=1e-9)


def test_kl_closed_forms():
    assert metrics.kl_to_uniform(numpy.arange(1000), 1000) == \
        pytest.approx(0.0, abs=1e-12)
    assert metrics.kl_to_uniform(numpy.full(50, 7), 1000) == \
        pytest.approx(math.log(1000))
    # half the mass on mode 0, half spread over 9 others, of 10
    modes = numpy.array([0] * 9 + list(range(1, 10)))
    expected = 0.5 * math.log(0.5 * 10) + 9 * (0.5 / 9) * math.log(
        0.5 / 9 * 10)
    assert metrics.kl_to_uniform(modes, 10) == pytest.approx(expected)
    with pytest.raises(ValueError):
        metrics.count_modes([0, 10], 10)


def test_inception_score_extremes_and_a_hand_case():
    k = 10
    confident_spread = numpy.eye(k)[numpy.arange(1000) % k]
    assert metrics.inception_score(confident_spread)[0] == pytest.approx(k)
    collapsed = numpy.tile(numpy.eye(k)[3], (1000, 1))
    assert metrics.inception_score(collapsed)[0] == pytest.approx(1.0)
    # two examples, one split: p = [[.9,.1],[.2,.8]], p(y) = [.55,.45]
    p = numpy.array([[0.9, 0.1], [0.2, 0.8]])
    py = p.mean(0)
    kl = [sum(a * math.log(a / b) for a, b in zip(row, py)) for row in p]
    assert metrics.inception_score(p, splits=1)[0] == pytest.approx(
        math.exp(sum(kl) / 2))


class IntensityClassifier:
    """A stand-in classifier: a 28x28 digit of constant intensity
    20 * k + 10 is digit k (one-hot)."""

    def predict_proba(self, digits):
        assert digits.shape[1:] == (28, 28)
        k = (digits.reshape(len(digits), -1).mean(1) // 20).astype(int)
        return numpy.eye(10, dtype=numpy.float32)[k]


def test_digit_modes_read_channels_as_r_g_b_digits():
    triples = list(itertools.product(range(10), repeat=3))[::7]
    images = numpy.empty((len(triples), 3, 32, 32), numpy.uint8)
    for i, t in enumerate(triples):
        for c in range(3):
            images[i, c] = 20 * t[c] + 10
    modes, joint = metrics.digit_modes(IntensityClassifier(), images)
    assert modes.tolist() == [100 * a + 10 * b + c for a, b, c in triples]
    assert joint.shape == (len(triples), 1000)
    assert (joint.argmax(1) == modes).all()
    result = metrics.digit_metrics(IntensityClassifier(), images, splits=1)
    assert result['modes'] == len(triples) and result['n_modes'] == 1000
    assert result['kl'] == pytest.approx(math.log(1000 / len(triples)))
    assert result['inception_score'] == pytest.approx(len(triples))


def test_mean_pairwise_distance_against_a_double_loop():
    rng = numpy.random.default_rng(1)
    x = rng.integers(0, 256, (9, 3, 4, 4)).astype(numpy.uint8)
    flat = x.reshape(9, -1).astype(numpy.float64)
    d = [numpy.linalg.norm(flat[i] - flat[j])
         for i in range(9) for j in range(i + 1, 9)]
    assert metrics.mean_pairwise_distance(x) == pytest.approx(numpy.mean(d))
    collapsed = numpy.repeat(x[:1], 9, axis=0)
    assert metrics.diversity(collapsed, x) == 0.0
    assert metrics.diversity(x, x) == pytest.approx(1.0)


def test_classifier_is_trained_once_then_read_from_the_cache(tmp_path,
                                                             monkeypatch):
    model, info = mnist_classifier.load_or_train(
        str(tmp_path), log=None, epochs=1, limit=300)
    weights, info_path = mnist_classifier.cache_paths(str(tmp_path))
    assert os.path.exists(weights) and json.load(open(info_path)) == info
    assert info['train_examples'] == 300
    # the recorded accuracy is the model's on the first 300 test digits,
    # counted here one digit at a time
    xt, yt = datasets.load_mnist('test')
    hits = [int(model.predict_proba(xt[i:i + 1])[0].argmax() == yt[i])
            for i in range(300)]
    assert info['test_accuracy'] == pytest.approx(sum(hits) / 300.0)

    def no_training(**kwargs):
        raise AssertionError('should have used the cache')
    monkeypatch.setattr(mnist_classifier, 'train', no_training)
    again, info2 = mnist_classifier.load_or_train(str(tmp_path), log=None)
    assert info2 == info
    for (name, p), q in zip(model.namedparams(), again.params()):
        numpy.testing.assert_array_equal(p.array, q.array, err_msg=name)
    digits = numpy.zeros((3, 28, 28), numpy.uint8)
    p = again.predict_proba(digits)
    assert p.shape == (3, 10)
    numpy.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv('IMPROVED_GAN_CACHE', str(tmp_path / 'c'))
    assert mnist_classifier.cache_dir() == str(tmp_path / 'c')
    assert mnist_classifier.cache_dir('/x') == '/x'
    monkeypatch.delenv('IMPROVED_GAN_CACHE')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    assert mnist_classifier.cache_dir() == str(
        tmp_path / 'xdg' / 'improved-gan-chainer')


def _naive_rms(a, b):
    a, b = numpy.asarray(a, float).ravel(), numpy.asarray(b, float).ravel()
    return numpy.sqrt(((a - b) ** 2).mean())


def test_near_duplicate_share_against_a_double_loop():
    rng = numpy.random.RandomState(0)
    base = rng.randint(0, 256, (6, 3, 8, 8))
    # copies with small and large changes
    imgs = numpy.concatenate([base, base[:3] + rng.randint(-3, 4, (3, 3, 8,
                                                                    8)),
                              base[:2] + 40]).clip(0, 255).astype(numpy.uint8)
    n = len(imgs)
    for threshold in (5.0, 30.0, 45.0):
        close = sum(_naive_rms(imgs[i], imgs[j]) < threshold
                    for i in range(n) for j in range(i + 1, n))
        got = metrics.near_duplicate_share(imgs, threshold, chunk=4)
        assert got == pytest.approx(close / (n * (n - 1) / 2))
    # the default chunk size gives the same count (the 3 small-change
    # copies: 3 of the 55 pairs)
    assert metrics.near_duplicate_share(imgs, 5.0) == pytest.approx(3 / 55.)


def test_nearest_distances_against_a_double_loop():
    rng = numpy.random.RandomState(1)
    train = rng.randint(0, 256, (13, 3, 6, 6)).astype(numpy.uint8)
    samples = numpy.concatenate([train[[2, 7]],
                                 rng.randint(0, 256, (5, 3, 6, 6))]
                                ).astype(numpy.uint8)
    got = metrics.nearest_distances(samples, train, chunk=3)
    expected = [min(_naive_rms(s, t) for t in train) for s in samples]
    numpy.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-6)
    assert got[0] < 1e-6 and got[1] < 1e-6 and (got[2:] > 10).all()
