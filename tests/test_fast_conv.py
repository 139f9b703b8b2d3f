import numpy
import pytest

import chainer
import chainer.functions as F
from chainer import gradient_check

from gan.fast import conv as fast_conv


@pytest.mark.parametrize('k, s, p, h', [(4, 2, 1, 8), (3, 1, 1, 5),
                                        (4, 2, 1, 6), (5, 2, 2, 7),
                                        (4, 2, 0, 8)])
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
                                        (4, 2, 1, 3), (5, 2, 2, 4),
                                        # unpadded: the blog generator's
                                        # first deconvolution (3 -> 8 px)
                                        (4, 2, 0, 3), (4, 2, 0, 5)])
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


@pytest.mark.parametrize('layout', ['phases', 'channels_last'])
@pytest.mark.parametrize('c, h, k, s, p', [(3, 6, 4, 2, 1), (12, 3, 4, 2, 1),
                                           (5, 4, 3, 1, 1), (3, 5, 4, 2, 0),
                                           (2, 4, 5, 3, 1), (4, 3, 2, 2, 0)])
def test_both_scatter_layouts_equal_the_col2im_of_the_product(layout, c, h,
                                                              k, s, p):
    """Whichever layout the shape selects, both compute col2im(a W_mat)
    (Chainer's own col2im of the product as the reference), for strides
    that divide the kernel and strides that do not."""
    rng = numpy.random.RandomState(4)
    n, o = 2, 7
    W = rng.randn(o, c, k, k)
    a = rng.randn(n, o, h, h + 1)  # NCHW, not square
    H, Wd = s * (h - 1) + k - 2 * p, s * h + k - 2 * p
    a_mat = fast_conv._to_mat(a)
    col = a_mat.dot(fast_conv._w_mat(W)).reshape(n, h, h + 1, k, k, c)
    ref = chainer.utils.conv.col2im_cpu(
        numpy.ascontiguousarray(col.transpose(0, 5, 3, 4, 1, 2)), s, s, p,
        p, H, Wd)
    if layout == 'phases':
        got = fast_conv._scatter_taps_phases(a, W, H, Wd, s, s, p, p)
    else:
        got = fast_conv._scatter_taps_channels_last(
            a_mat, W, n, h, h + 1, H, Wd, s, s, p, p)
    numpy.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_deconvolution_with_many_channels_matches_chainer():
    """12 output channels on a 3 x 3 input: the channels-last layout."""
    rng = numpy.random.RandomState(5)
    x = rng.randn(2, 6, 3, 3)
    W, b = rng.randn(6, 12, 4, 4), rng.randn(12)
    ref = F.deconvolution_2d(x, W, b, stride=2, pad=1).array
    got = fast_conv.deconvolution_2d(x, W, b, stride=2, pad=1).array
    numpy.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
    gradient_check.check_backward(
        lambda x, W, b: fast_conv.deconvolution_2d(x, W, b, 2, 1), (x, W, b),
        rng.randn(*ref.shape), dtype=numpy.float64, atol=1e-5, rtol=1e-4)
