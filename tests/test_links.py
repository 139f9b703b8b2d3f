import numpy
import pytest

import chainer
from chainer import gradient_check

from gan import links

RTOL = dict(atol=1e-3, rtol=1e-3)


def naive_minibatch_discrimination(x, T, B, C):
    """Double loop over the batch, straight from the paper's equations."""
    n, A = x.shape
    M = (x @ T).reshape(n, B, C)
    o = numpy.zeros((n, B), dtype=numpy.float64)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            for b in range(B):
                o[i, b] += numpy.exp(-numpy.abs(M[i, b] - M[j, b]).sum())
    return numpy.concatenate([x, o], axis=1)


@pytest.mark.parametrize('learn_T', [True, False])
def test_minibatch_discrimination_equals_double_loop(learn_T):
    rng = numpy.random.RandomState(0)
    A, B, C, n = 7, 4, 3, 6
    link = links.MinibatchDiscrimination(A, B, C, learn_T=learn_T,
                                         initialT=chainer.initializers.Normal(0.3))
    x = rng.randn(n, A).astype(numpy.float32)
    y = link(x).array
    T = link.T.array if learn_T else link.T
    expected = naive_minibatch_discrimination(x.astype(numpy.float64),
                                              T.astype(numpy.float64), B, C)
    assert y.shape == (n, A + B)
    numpy.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    # the self term is excluded: every o is strictly less than n - 1
    assert (y[:, A:] < n - 1).all()


def test_minibatch_discrimination_flattens_images_and_batch_of_one():
    link = links.MinibatchDiscrimination(2 * 3 * 3, 5, 2)
    x = numpy.random.RandomState(1).randn(1, 2, 3, 3).astype(numpy.float32)
    y = link(x).array
    assert y.shape == (1, 18 + 5)
    numpy.testing.assert_array_equal(y[:, 18:], 0)
    numpy.testing.assert_allclose(y[:, :18], x.reshape(1, -1))


def test_minibatch_discrimination_identical_samples_give_n_minus_one():
    link = links.MinibatchDiscrimination(4, 3, 2)
    x = numpy.tile(numpy.arange(4, dtype=numpy.float32), (5, 1))
    numpy.testing.assert_allclose(link(x).array[:, 4:], 4.0)


def test_minibatch_discrimination_fixed_T_is_not_a_parameter():
    link = links.MinibatchDiscrimination(4, 3, 2, learn_T=False)
    assert len(list(link.params())) == 0
    assert len(list(links.MinibatchDiscrimination(4, 3, 2).params())) == 1


def test_minibatch_discrimination_backward():
    rng = numpy.random.RandomState(2)
    A, B, C, n = 5, 3, 2, 4
    link = links.MinibatchDiscrimination(A, B, C)
    link.T.array[...] = rng.randn(A, B * C) * 0.5
    x = rng.randn(n, A)
    link.to_device(chainer.get_device('@numpy'))
    link = link.copy()
    x64 = x.astype(numpy.float64)
    link.T.array = link.T.array.astype(numpy.float64)
    gy = rng.randn(n, A + B)
    gradient_check.check_backward(link, x64, gy, link.T, eps=1e-4,
                                  atol=1e-4, rtol=1e-3, dtype=numpy.float64)


def _to_f64(link):
    for p in link.params():
        p.array = p.array.astype(numpy.float64)
    return link


@pytest.mark.parametrize('train_scale', [True, False])
def test_weight_norm_linear_forward_and_backward(train_scale):
    rng = numpy.random.RandomState(3)
    link = _to_f64(links.WeightNormLinear(6, 4, train_scale=train_scale))
    link.b.array[...] = rng.randn(4)
    if train_scale:
        link.g.array[...] = rng.rand(4) + 0.5
    x = rng.randn(5, 6)
    V = link.V.array
    g = link.g.array if train_scale else link.g
    W = g[:, None] * V / numpy.linalg.norm(V, axis=1, keepdims=True)
    numpy.testing.assert_allclose(link(x).array, x @ W.T + link.b.array,
                                  rtol=1e-10)
    params = [p for p in link.params()]
    gradient_check.check_backward(link, x, rng.randn(5, 4), params,
                                  eps=1e-5, atol=1e-6, rtol=1e-5,
                                  dtype=numpy.float64)


def test_weight_norm_convolution_and_deconvolution_match_explicit_weight():
    rng = numpy.random.RandomState(4)
    x = rng.randn(2, 3, 6, 6)
    conv = _to_f64(links.WeightNormConvolution2D(3, 5, 3, stride=1, pad=1))
    conv.g.array[...] = rng.rand(5) + 0.5
    V = conv.V.array
    W = conv.g.array[:, None, None, None] * V / numpy.sqrt(
        (V ** 2).sum(axis=(1, 2, 3), keepdims=True))
    ref = chainer.functions.convolution_2d(x, W, conv.b.array, pad=1).array
    numpy.testing.assert_allclose(conv(x).array, ref, rtol=1e-10)
    gradient_check.check_backward(conv, x, rng.randn(2, 5, 6, 6),
                                  list(conv.params()), eps=1e-5, atol=1e-5,
                                  rtol=1e-4, dtype=numpy.float64)

    dec = _to_f64(links.WeightNormDeconvolution2D(3, 4, 4, stride=2, pad=1))
    dec.g.array[...] = rng.rand(4) + 0.5
    V = dec.V.array  # (in, out, kh, kw), one norm per output channel
    W = dec.g.array[None, :, None, None] * V / numpy.sqrt(
        (V ** 2).sum(axis=(0, 2, 3), keepdims=True))
    ref = chainer.functions.deconvolution_2d(x, W, dec.b.array, stride=2,
                                             pad=1).array
    y = dec(x).array
    assert y.shape == (2, 4, 12, 12)
    numpy.testing.assert_allclose(y, ref, rtol=1e-10)
    gradient_check.check_backward(dec, x, rng.randn(2, 4, 12, 12),
                                  list(dec.params()), eps=1e-5, atol=1e-5,
                                  rtol=1e-4, dtype=numpy.float64)


@pytest.mark.parametrize('make', [
    lambda: links.WeightNormLinear(20, 7, train_scale=False),
    lambda: links.WeightNormLinear(20, 7, train_scale=True),
    lambda: links.WeightNormConvolution2D(2, 6, 3, pad=1),
    lambda: links.WeightNormDeconvolution2D(2, 6, 4, stride=2, pad=1),
])
def test_data_dependent_init_standardizes_each_unit(make):
    rng = numpy.random.RandomState(5)
    link = make()
    x = (rng.randn(64, 20) * 3 + 1.5).astype(numpy.float32)
    if not isinstance(link, links.WeightNormLinear):
        x = (rng.randn(16, 2, 5, 5) * 3 + 1.5).astype(numpy.float32)
    before = link(x).array
    axes = (0,) if before.ndim == 2 else (0, 2, 3)
    # not standardized before the init
    assert numpy.abs(before.std(axis=axes) - 1).max() > 0.05
    with links.data_dependent_init():
        during = link(x).array
    after = link(x).array
    assert link.initialized
    numpy.testing.assert_allclose(during, after, rtol=1e-5, atol=1e-5)
    numpy.testing.assert_allclose(after.mean(axis=axes), 0, atol=1e-4)
    numpy.testing.assert_allclose(after.std(axis=axes), 1, atol=1e-3)
    # a second init block does not re-initialize
    with links.data_dependent_init():
        numpy.testing.assert_allclose(link(x * 2).array, link(x * 2).array)
        assert not numpy.allclose(link(x * 2).array.std(axis=axes), 1,
                                  atol=1e-2)


def test_gaussian_noise_only_in_training_mode():
    x = numpy.zeros((2000, 50), dtype=numpy.float32)
    noise = links.GaussianNoise(0.5)
    with chainer.using_config('train', False):
        numpy.testing.assert_array_equal(chainer.as_array(noise(x)), x)
    with chainer.using_config('train', True):
        y = noise(x).array
    assert y.dtype == numpy.float32
    assert abs(y.std() - 0.5) < 0.01 and abs(y.mean()) < 0.01


def test_gaussian_noise_replays_given_numbers_and_passes_gradient():
    noise = links.GaussianNoise(0.3)
    eps = numpy.random.RandomState(0).randn(4, 3)
    noise.noise_source = lambda shape, xp, dtype: eps.astype(dtype)
    x = numpy.random.RandomState(1).randn(4, 3)
    numpy.testing.assert_allclose(noise(x).array, x + 0.3 * eps)
    gradient_check.check_backward(noise, x, numpy.ones((4, 3)),
                                  dtype=numpy.float64)


def test_fused_weight_norm_linear_matches_composed_and_gradients():
    rng = numpy.random.RandomState(7)
    x, V = rng.randn(6, 5), rng.randn(4, 5)
    g, b = rng.rand(4) + 0.5, rng.randn(4)
    W = g[:, None] * V / numpy.linalg.norm(V, axis=1, keepdims=True)
    numpy.testing.assert_allclose(
        links.weight_norm_linear(x, V, g, b).array, x @ W.T + b, rtol=1e-12)
    gradient_check.check_backward(links.weight_norm_linear, (x, V, g, b),
                                  rng.randn(6, 4), dtype=numpy.float64,
                                  atol=1e-6, rtol=1e-5)
    gradient_check.check_backward(
        lambda x, V, g: links.weight_norm_linear(x, V, g), (x, V, g),
        rng.randn(6, 4), dtype=numpy.float64, atol=1e-6, rtol=1e-5)


def test_parameters_as_constants_skips_parameter_gradients_only():
    rng = numpy.random.RandomState(8)
    link = links.WeightNormLinear(5, 3)
    x = chainer.Variable(rng.randn(4, 5).astype(numpy.float32))
    y = chainer.functions.sum(link(x) ** 2)
    y.backward()
    gx_ref = x.grad.copy()
    link.cleargrads()
    x.cleargrad()
    with links.parameters_as_constants():
        y = chainer.functions.sum(link(x) ** 2)
    y.backward()
    numpy.testing.assert_allclose(x.grad, gx_ref, rtol=1e-6)
    assert link.V.grad is None and link.g.grad is None and link.b.grad is None
