import numpy
import pytest

import chainer.links as L

from gan import extensions, image, optimizers, ssl_updater
from gan import random as grandom
from gan.fast import noise as fast_noise


def test_adam_eps_in_sqrt_matches_reference_formula():
    rng = numpy.random.RandomState(0)
    link = L.Linear(3, 2)
    opt = optimizers.AdamEpsInSqrt(alpha=0.003, beta1=0.5)
    opt.setup(link)
    p = link.W.array.copy().astype(numpy.float64)
    m = numpy.zeros_like(p)
    v = numpy.zeros_like(p)
    for t in range(1, 6):
        g = rng.randn(2, 3) * 1e-6  # tiny grads: eps placement matters
        link.cleargrads()
        link.W.grad = g.astype(numpy.float32)
        link.b.grad = numpy.zeros(2, dtype=numpy.float32)
        opt.update()
        m = 0.5 * m + 0.5 * g
        v = 0.999 * v + 0.001 * g * g
        mh, vh = m / (1 - 0.5 ** t), v / (1 - 0.999 ** t)
        p = p - 0.003 * mh / numpy.sqrt(vh + 1e-8)
        numpy.testing.assert_allclose(link.W.array, p, rtol=1e-5, atol=1e-7)
    # with tiny gradients the floor sqrt(1e-8) = 1e-4 dominates the step,
    # while eps outside the root (Chainer's Adam) would not floor it
    step_ours = 0.003 * mh / numpy.sqrt(vh + 1e-8)
    step_chainer = 0.003 * mh / (numpy.sqrt(vh) + 1e-8)
    assert numpy.abs(step_chainer).max() > 10 * numpy.abs(step_ours).max()


def test_sample_std_against_a_loop():
    rng = numpy.random.RandomState(0)
    x = rng.rand(8, 1, 3, 4).astype(numpy.float32)
    # naive: per value, the population std over the 8 samples; then mean
    flat = x.reshape(8, -1).astype(numpy.float64)
    stds = []
    for j in range(flat.shape[1]):
        col = flat[:, j]
        mu = sum(col) / len(col)
        stds.append((sum((c - mu) ** 2 for c in col) / len(col)) ** 0.5)
    assert float(ssl_updater.sample_std(x)) == pytest.approx(
        sum(stds) / len(stds), rel=1e-5)
    same = numpy.repeat(x[:1], 8, axis=0)
    assert float(ssl_updater.sample_std(same)) == pytest.approx(0, abs=1e-6)


def test_collapse_warning_once_and_first_epoch_below(capsys):
    class Trainer:
        class updater:
            epoch = 7
        observation = {'gen/sample_std': numpy.float32(0.15)}
    warn = extensions.CollapseWarning('gen/sample_std', 0.02)
    warn(Trainer)
    assert capsys.readouterr().err == ''
    Trainer.observation = {'gen/sample_std': numpy.float32(0.0003)}
    Trainer.updater.epoch = 1  # not checked in the first epoch
    warn(Trainer)
    assert capsys.readouterr().err == ''
    Trainer.updater.epoch = 7
    warn(Trainer)
    warn(Trainer)
    err = capsys.readouterr().err
    assert err.count('warning: epoch 7: the generator has collapsed') == 1
    assert len(err.strip().splitlines()) == 1
    # recovered, then collapsed again: a second warning
    Trainer.observation = {'gen/sample_std': numpy.float32(0.1)}
    warn(Trainer)
    Trainer.observation = {'gen/sample_std': numpy.float32(0.001)}
    Trainer.updater.epoch = 9
    warn(Trainer)
    assert 'warning: epoch 9:' in capsys.readouterr().err
    log = [{'epoch': 1, 'gen/sample_std': 0.2}, {'epoch': 2},
           {'epoch': 3, 'gen/sample_std': 0.01},
           {'epoch': 4, 'gen/sample_std': 0.001}]
    assert extensions.first_epoch_below(log, 'gen/sample_std', 0.02) == 3
    assert extensions.first_epoch_below(log, 'gen/sample_std', 0.001) is None
    assert extensions.first_epoch_below(log, 'gen/sample_std', 0.5,
                                        start_epoch=2) == 3


def test_parameter_average_is_bias_corrected_weighted_mean():
    link = L.Linear(2, 2)
    avg = extensions.ParameterAverage(link, rate=0.1)
    seen = []
    for t in range(1, 8):
        link.W.array[...] = t
        seen.append(float(t))
        avg()
        w = numpy.array([0.1 * 0.9 ** (t - k) for k in range(1, t + 1)])
        expected = (w * numpy.array(seen)).sum() / w.sum()
        numpy.testing.assert_allclose(avg.averaged().W.array, expected,
                                      rtol=1e-5)
    # first step: exactly the current parameters
    avg2 = extensions.ParameterAverage(link, rate=1e-4)
    avg2()
    numpy.testing.assert_allclose(avg2.averaged().W.array, link.W.array,
                                  rtol=1e-4)


def test_parameter_average_stays_a_weighted_mean_when_the_rate_changes():
    """Rates 0.5, 0.5, 0.1, 0.1, 0.1: parameter k gets weight
    r_k * prod_{j > k} (1 - r_j); the average divides by their sum."""
    link = L.Linear(2, 2)
    avg = extensions.ParameterAverage(link, rate=0.5)
    rates, seen = [0.5, 0.5, 0.1, 0.1, 0.1], []
    for k, r in enumerate(rates):
        avg.rate = r
        link.W.array[...] = k + 1.0
        seen.append(k + 1.0)
        avg()
    w = numpy.array([r * numpy.prod([1 - q for q in rates[k + 1:]])
                     for k, r in enumerate(rates)])
    numpy.testing.assert_allclose(avg.averaged().W.array,
                                  (w * seen).sum() / w.sum(), rtol=1e-6)
    assert avg.mass == pytest.approx(w.sum())


def test_parameter_average_and_random_state_serialize(tmp_path):
    link = L.Linear(2, 2)
    avg = extensions.ParameterAverage(link, rate=0.5)
    for t in range(3):
        link.W.array[...] = t
        avg()
    grandom.seed(7)
    grandom.normal(numpy, (3,))
    path = str(tmp_path / 's.npz')
    rs = extensions.RandomState()
    from chainer.serializers import DictionarySerializer, NpzDeserializer
    s = DictionarySerializer()
    avg.serialize(s['avg'])
    rs.serialize(s['rng'])
    numpy.savez(path, **s.target)
    expected_next = grandom.normal(numpy, (4,))
    grandom.seed(123)
    link2 = L.Linear(2, 2)
    avg2 = extensions.ParameterAverage(link2, rate=0.5)
    with numpy.load(path) as f:
        d = NpzDeserializer(f)
        avg2.serialize(d['avg'])
        extensions.RandomState().serialize(d['rng'])
    assert avg2.t == 3
    numpy.testing.assert_allclose(avg2._shadow['/W'], avg._shadow['/W'])
    numpy.testing.assert_array_equal(grandom.normal(numpy, (4,)),
                                     expected_next)


def test_tile_and_save_grid(tmp_path):
    imgs = numpy.arange(6 * 3 * 2 * 2).reshape(6, 3, 2, 2).astype(numpy.uint8)
    g = image.tile(imgs, 2, 4, pad_value=0)
    assert g.shape == (4, 8, 3)
    numpy.testing.assert_array_equal(g[2:4, 2:4], imgs[5].transpose(1, 2, 0))
    numpy.testing.assert_array_equal(g[2:4, 4:], 0)
    x = numpy.linspace(-1, 1, 4 * 16).reshape(4, 16).astype(numpy.float32)
    path = image.save_grid(str(tmp_path / 'g.png'), x, 2, 2,
                           image_shape=(1, 4, 4))
    from PIL import Image
    arr = numpy.asarray(Image.open(path))
    assert arr.shape == (8, 8) and arr.min() == 0 and arr.max() == 255


def test_plain_normal_draws_are_the_seeded_generators_stream():
    grandom.seed(11)
    a = grandom.normal(numpy, (3, 50000))
    ref = numpy.random.default_rng(11).standard_normal(
        150000, dtype=numpy.float32)
    numpy.testing.assert_array_equal(a.reshape(-1), ref)


def test_large_fast_normal_draws_are_split_over_two_seeded_generators():
    n = fast_noise.SPLIT_SIZE * 2 + 3
    grandom.seed(11)
    a = fast_noise.normal(numpy, (n,))
    first = numpy.random.default_rng(11).standard_normal(
        n // 2, dtype=numpy.float32)
    numpy.testing.assert_array_equal(a[:n // 2], first)
    assert a.dtype == numpy.float32
    assert abs(float(a.mean())) < 0.02 and abs(float(a.std()) - 1) < 0.02
    # the second half is a different stream, not a copy of the first
    assert not numpy.array_equal(a[n // 2:n // 2 + 100], first[:100])
    # small draws are the main generator's, as in gan.random
    grandom.seed(11)
    small = fast_noise.normal(numpy, (7, 9))
    grandom.seed(11)
    numpy.testing.assert_array_equal(small, grandom.normal(numpy, (7, 9)))
    # reproducible from the seed, and from a saved state
    grandom.seed(11)
    numpy.testing.assert_array_equal(fast_noise.normal(numpy, (n,)), a)
    state = grandom.get_state()
    b = fast_noise.normal(numpy, (3, n // 3))
    grandom.seed(0)
    grandom.set_state(state)
    numpy.testing.assert_array_equal(fast_noise.normal(numpy, (3, n // 3)),
                                     b)


def test_classification_error_and_confusion_against_a_loop():
    rng = numpy.random.RandomState(0)
    x = rng.randn(57, 6).astype(numpy.float32)
    y = rng.randint(0, 4, size=57).astype(numpy.int32)
    model = L.Linear(6, 4)
    ev = extensions.ClassificationError(x, y, {'m': model}, batchsize=10)
    logits = x.dot(model.W.array.T) + model.b.array
    pred = [int(numpy.argmax(row)) for row in logits]
    wrong = sum(p != t for p, t in zip(pred, y))
    out = ev.evaluate()
    assert out['test/errors_m'] == wrong
    assert out['test/error_m'] == pytest.approx(wrong / 57.0)
    expected = [[0] * 4 for _ in range(4)]
    for p, t in zip(pred, y):
        expected[t][p] += 1
    assert ev.confusion('m', 4) == expected
