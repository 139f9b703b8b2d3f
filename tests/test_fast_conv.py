import numpy
import pytest

import chainer.functions as F
from chainer import gradient_check

from gan import fast_conv


@pytest.mark.parametrize('k, s, p, h', [(4, 2, 1, 8), (3, 1, 1, 5),
                                        (4, 2, 1, 6), (5, 2, 2, 7)])
def test_convolution_matches_chainer_and_gradients(k, s, p, h):
    rng = numpy.random.RandomState(0)
    x = rng.randn(2, 3, h, h)
    W, b = rng.randn(4, 3, k, k), rng.randn(4)
    ref = F.convolution_2d(x, W, b, stride=s, pad=p).array
    got = fast_conv.convolution_2d(x, W, b, stride=s, pad=p).array
    numpy.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
    gradient_check.check_backward(
        lambda x, W, b: fast_conv.convolution_2d(x, W, b, s, p), (x, W, b),
        rng.randn(*ref.shape), dtype=numpy.float64, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('k, s, p, h', [(4, 2, 1, 4), (3, 1, 1, 5),
                                        (4, 2, 1, 3), (5, 2, 2, 4)])
def test_deconvolution_matches_chainer_and_gradients(k, s, p, h):
    rng = numpy.random.RandomState(1)
    x = rng.randn(2, 3, h, h)
    W, b = rng.randn(3, 4, k, k), rng.randn(4)
    ref = F.deconvolution_2d(x, W, b, stride=s, pad=p).array
    got = fast_conv.deconvolution_2d(x, W, b, stride=s, pad=p).array
    assert got.shape == ref.shape
    numpy.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
    gradient_check.check_backward(
        lambda x, W, b: fast_conv.deconvolution_2d(x, W, b, s, p), (x, W, b),
        rng.randn(*ref.shape), dtype=numpy.float64, atol=1e-5, rtol=1e-4)


def test_links_without_bias_match_stock_links():
    import chainer.links as L
    rng = numpy.random.RandomState(2)
    x = rng.randn(2, 3, 8, 8).astype(numpy.float32)
    for fast, stock in ((fast_conv.Convolution2D(3, 5, 4, 2, 1, nobias=True),
                         L.Convolution2D(3, 5, 4, 2, 1, nobias=True)),
                        (fast_conv.Deconvolution2D(3, 5, 4, 2, 1, nobias=True),
                         L.Deconvolution2D(3, 5, 4, 2, 1, nobias=True))):
        stock.W.array[...] = fast.W.array
        numpy.testing.assert_allclose(fast(x).array, stock(x).array,
                                      rtol=1e-5, atol=1e-5)


def test_leaky_relu_matches_chainer_and_gradient():
    rng = numpy.random.RandomState(3)
    x = rng.randn(3, 4, 5)
    x[numpy.abs(x) < 0.05] = 0.5  # keep away from the kink
    numpy.testing.assert_allclose(fast_conv.leaky_relu(x, 0.2).array,
                                  F.leaky_relu(x, 0.2).array)
    gradient_check.check_backward(lambda v: fast_conv.leaky_relu(v, 0.2), x,
                                  rng.randn(3, 4, 5), dtype=numpy.float64)
