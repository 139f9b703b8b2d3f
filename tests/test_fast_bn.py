"""The fused batch norm + activation node against Chainer's link and
activation functions: values, gradients, running statistics."""
import copy

import numpy
import pytest

import chainer
import chainer.functions as F
import chainer.links as L
from chainer import gradient_check

from gan import nets
from gan.fast import bn as fast_bn
from gan.fast import conv as fast_conv

ACT = {'identity': lambda h: h, 'relu': F.relu,
       'leaky_relu': lambda h: F.leaky_relu(h, 0.2), 'elu': F.elu}


def _pair(shape, seed):
    rng = numpy.random.RandomState(seed)
    link = L.BatchNormalization(shape[1])
    link.gamma.array[...] = rng.randn(shape[1])
    link.beta.array[...] = rng.randn(shape[1])
    link.avg_mean[...] = rng.randn(shape[1])
    link.avg_var[...] = rng.rand(shape[1]) + 0.5
    x = (rng.randn(*shape) * 2 + 1).astype(numpy.float32)
    gy = rng.randn(*shape).astype(numpy.float32)
    return link, copy.deepcopy(link), x, gy


@pytest.mark.parametrize('act', fast_bn.ACTIVATIONS)
@pytest.mark.parametrize('shape', [(6, 5, 3, 4), (16, 7), (4, 3, 1, 1)])
def test_fused_node_equals_link_then_activation(act, shape):
    ref, fused, x, gy = _pair(shape, 0)
    xr, xf = chainer.Variable(x.copy()), chainer.Variable(x.copy())
    yr = ACT[act](ref(xr))
    yf = fast_bn.batch_norm_act(fused, xf, act)
    assert yf.creator.label == 'BatchNormActCPU'
    for link in (ref, fused):
        link.cleargrads()
    yr.grad, yf.grad = gy, gy.copy()
    yr.backward()
    yf.backward()
    close = dict(rtol=1e-5, atol=1e-5)
    numpy.testing.assert_allclose(yf.array, yr.array, **close)
    numpy.testing.assert_allclose(xf.grad, xr.grad, **close)
    numpy.testing.assert_allclose(fused.gamma.grad, ref.gamma.grad, **close)
    numpy.testing.assert_allclose(fused.beta.grad, ref.beta.grad, **close)
    numpy.testing.assert_allclose(fused.avg_mean, ref.avg_mean, **close)
    numpy.testing.assert_allclose(fused.avg_var, ref.avg_var, **close)
    assert yf.dtype == xf.grad.dtype == numpy.float32


@pytest.mark.parametrize('act', fast_bn.ACTIVATIONS)
def test_fused_node_gradients_by_finite_differences(act):
    rng = numpy.random.RandomState(1)
    x = rng.randn(5, 3, 2, 2).astype(numpy.float32)
    x[numpy.abs(x) < 0.1] = 0.5
    gamma = (rng.rand(3) + 0.5).astype(numpy.float32)
    beta = (rng.randn(3) * 0.1).astype(numpy.float32)

    def fn(x, gamma, beta):
        node = fast_bn.BatchNormActCPU(act, 0.2, 2e-5, None, None, 0.9)
        return node.apply((x, gamma, beta))[0]

    gradient_check.check_backward(
        fn, (x, gamma, beta), rng.randn(5, 3, 2, 2).astype(numpy.float32),
        eps=1e-2, atol=2e-2, rtol=2e-2)


def test_falls_back_to_the_link_in_test_mode_and_float64():
    link, _, x, _ = _pair((4, 3, 2, 2), 2)
    with chainer.using_config('train', False):
        y = fast_bn.batch_norm_act(link, x, 'relu')
        assert not fast_bn.fusable(link, x)
        numpy.testing.assert_allclose(y.array, F.relu(link(x)).array)
    assert not fast_bn.fusable(link, x.astype(numpy.float64))
    with pytest.raises(ValueError, match='act must be one of'):
        fast_bn.batch_norm_act(link, x, 'tanh')


def test_rectifier_grad_matches_where():
    rng = numpy.random.RandomState(3)
    y, gy = rng.randn(50).astype(numpy.float32), rng.randn(50)
    gy = gy.astype(numpy.float32)
    for slope in (0, 0.2):
        numpy.testing.assert_allclose(
            fast_conv.rectifier_grad(gy, y, slope),
            numpy.where(y > 0, gy, gy * slope), rtol=1e-6)


NETS = {
    'gen': (lambda fast: nets.DCGANGenerator(size=32, ch=32, fast=fast),
            (6, 100)),
    'dis': (lambda fast: nets.DCGANDiscriminator(size=32, ch=32, fast=fast),
            (6, 3, 32, 32)),
    'blog_gen': (lambda fast: nets.BlogConvGenerator(size=32, ch=32,
                                                     fast=fast), (6, 50)),
    'blog_dis': (lambda fast: nets.BlogConvDiscriminator(
        size=32, input_noise=0, fast=fast), (6, 3, 32, 32)),
}


@pytest.mark.parametrize('net', sorted(NETS))
def test_fast_conv_nets_equal_the_plain_ones_in_training(net):
    """The fast networks (fused batch norm) against the plain ones with the
    same parameters: outputs, parameter gradients and BN statistics."""
    rng = numpy.random.RandomState(4)
    make, shape = NETS[net]
    x = rng.uniform(-1, 1, shape).astype(numpy.float32)
    plain, fast = make(False), make(True)
    fast.copyparams(plain)
    y_plain, y_fast = plain(x), fast(x)
    numpy.testing.assert_allclose(y_fast.array, y_plain.array, rtol=1e-4,
                                  atol=1e-5)
    F.sum(y_plain * y_plain).backward()
    F.sum(y_fast * y_fast).backward()
    for (name, p), (_, q) in zip(sorted(plain.namedparams()),
                                 sorted(fast.namedparams())):
        numpy.testing.assert_allclose(q.grad, p.grad, rtol=1e-3, atol=1e-4,
                                      err_msg=name)
    for p, q in zip(plain.bns, fast.bns):
        numpy.testing.assert_allclose(q.avg_var, p.avg_var, rtol=1e-5)
