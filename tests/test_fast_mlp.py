"""The fast MLP nodes (gan.fast.mlp) against the composed networks and
against numerical gradients."""
import numpy
import pytest

import chainer
import chainer.functions as F
from chainer import gradient_check

from gan import links, nets
from gan.fast import mlp as fast_mlp
from gan import random as grandom


def plain_copy(net):
    """A copy of a network built with ``fast=True`` that computes with the
    composed links (its noise layers still draw the same numbers)."""
    net = net.copy(mode='copy')
    for link in net.links():
        if hasattr(link, 'fast'):
            link.fast = False
    return net


def _initialized_dis(seed=0, n=64):
    numpy.random.seed(seed)
    dis = nets.MLPDiscriminator(in_size=30, hidden=(20, 16, 12),
                                n_classes=4, fast=True)
    x = numpy.random.RandomState(seed).rand(n, 30).astype(numpy.float32)
    with links.data_dependent_init():
        dis(x)
    return dis, x


def _run(dis, x, mode):
    grandom.seed(7)
    dis.cleargrads()
    xv = chainer.Variable(x.copy())
    if mode == 'features':
        loss = F.sum(dis.features(xv) ** 2)
    elif mode == 'both':
        logits, feat = dis(xv, return_features=True)
        loss = F.sum(logits ** 2) + F.sum(feat * 0.3)
    elif mode == 'constants':
        with fast_mlp.constant_parameters():
            loss = F.sum(dis(xv) ** 2)
    else:
        loss = F.sum(dis(xv) ** 2)
    loss.backward()
    grads = {k: None if p.grad is None else p.grad.copy()
             for k, p in dis.namedparams()}
    return float(loss.array), xv.grad.copy(), grads


@pytest.mark.parametrize('mode', ['logits', 'features', 'both', 'constants'])
def test_fused_equals_composed_for_the_same_seed(mode):
    dis, x = _initialized_dis()
    plain = plain_copy(dis)
    assert dis._fusable() and not plain._fusable()
    lf, gxf, gpf = _run(dis, x, mode)
    lc, gxc, gpc = _run(plain, x, mode)
    numpy.testing.assert_allclose(lf, lc, rtol=1e-5)
    numpy.testing.assert_allclose(gxf, gxc, rtol=1e-4, atol=2e-5)
    if mode == 'constants':  # the composed links ignore the block
        assert all(g is None for g in gpf.values())
        assert all(g is not None for g in gpc.values())
        return
    for k in gpc:
        if gpc[k] is None:
            assert gpf[k] is None, k
        else:
            assert gpf[k] is not None, k
            scale = float(numpy.abs(gpc[k]).max())
            numpy.testing.assert_allclose(gpf[k], gpc[k], rtol=1e-4,
                                          atol=1e-5 * scale, err_msg=k)


def test_fused_eval_mode_has_no_noise_and_matches():
    dis, x = _initialized_dis()
    with chainer.using_config('train', False):
        a = dis(x).array
        b = plain_copy(dis)(x).array
        c = dis(x).array
    numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_array_equal(a, c)  # deterministic without noise


def _random_mlp_params(rng, sizes, bias_scale):
    """[W_1, b_1, ...] of the hidden layers and [V_o, g_o, b_o]."""
    hidden = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        hidden += [rng.randn(b, a), rng.randn(b) * bias_scale]
    out = [rng.randn(sizes[-1], sizes[-2]), rng.rand(sizes[-1]) + 0.5,
           rng.randn(sizes[-1]) * 0.1]
    return hidden, out


def _pairs(flat):
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def test_fused_function_gradient_check():
    rng = numpy.random.RandomState(3)
    sizes = (6, 5, 4, 3)
    n = 5
    x = rng.randn(n, sizes[0])
    hidden, out = _random_mlp_params(rng, sizes, bias_scale=0.1)
    hidden_g = [rng.rand(b) + 0.5 for b in sizes[1:-1]]
    noise = [rng.randn(n, s) for s in sizes[:-1]]
    sigmas = [0.3] + [0.5] * (len(sizes) - 2)

    def draw(j, shape, xp, dtype):
        return noise[j].astype(dtype).copy()

    def f(x, *params):
        h = _pairs(params[:-3])
        logits, feat = fast_mlp.fused_mlp_discriminator(
            x, h, params[-3:], hidden_g, sigmas, draw)
        return logits, feat

    inputs = [x] + hidden + out
    gy = [rng.randn(n, sizes[-1]), rng.randn(n, sizes[-2])]
    gradient_check.check_backward(f, inputs, gy, eps=1e-4, atol=1e-4,
                                  rtol=1e-4, dtype=numpy.float64)

    def f_feat(x, *params):
        h = _pairs(params[:-3])
        return fast_mlp.fused_mlp_discriminator(
            x, h, params[-3:], hidden_g, sigmas, draw, features_only=True)

    gradient_check.check_backward(
        f_feat, inputs, rng.randn(n, sizes[-2]), eps=1e-4, atol=1e-4,
        rtol=1e-4, dtype=numpy.float64, no_grads=[False] * (
            len(inputs) - 3) + [True] * 3)


def _gen_pass(gen, z, backprop=True):
    gen.cleargrads()
    if not backprop:
        with chainer.no_backprop_mode():
            return gen(z).array.copy(), None
    y = gen(z)
    w = numpy.linspace(-1, 1, y.size).reshape(y.shape).astype(y.dtype)
    F.sum(y * w).backward()
    return y.array.copy(), {k: p.grad.copy() for k, p in gen.namedparams()}


@pytest.mark.parametrize('backprop', [True, False])
def test_fused_generator_equals_composed(backprop):
    """Output, every parameter gradient and the batch-norm running
    averages after two training-mode passes."""
    numpy.random.seed(0)
    gen = nets.MLPGenerator(z_dim=6, hidden=(9, 7), out_size=11, fast=True)
    gen.out.g.array[...] = numpy.linspace(0.5, 2, 11)
    gen.out.b.array[...] = numpy.linspace(-1, 1, 11)
    for bn in gen.bns:
        bn.beta.array[...] = numpy.random.randn(*bn.beta.shape)
    z = numpy.random.rand(2, 13, 6).astype(numpy.float32)
    copies = [gen.copy(mode='copy'), plain_copy(gen)]
    assert copies[0]._fusable() and not copies[1]._fusable()
    runs = []
    for g in copies:
        outs = [_gen_pass(g, z[i], backprop)
                for i in range(2)]
        stats = [(b.avg_mean.copy(), b.avg_var.copy()) for b in g.bns]
        runs.append((outs, stats))
    (outs_f, stats_f), (outs_c, stats_c) = runs
    for (yf, gf), (yc, gc) in zip(outs_f, outs_c):
        numpy.testing.assert_allclose(yf, yc, rtol=1e-5, atol=1e-6)
        if backprop:
            for k in gc:
                scale = float(numpy.abs(gc[k]).max())
                numpy.testing.assert_allclose(gf[k], gc[k], rtol=1e-4,
                                              atol=1e-5 * scale, err_msg=k)
    for (mf, vf), (mc, vc) in zip(stats_f, stats_c):
        numpy.testing.assert_allclose(mf, mc, rtol=1e-5, atol=1e-6)
        numpy.testing.assert_allclose(vf, vc, rtol=1e-5, atol=1e-6)
    assert not numpy.allclose(stats_f[0][0], 0)  # the averages did move


def test_fused_generator_gradient_check():
    rng = numpy.random.RandomState(6)
    n, sizes = 7, (4, 5, 3, 6)
    z = rng.rand(n, sizes[0])
    hidden, out = _random_mlp_params(rng, sizes, bias_scale=0.5)

    def f(*params):
        stats = [(numpy.zeros(b), numpy.zeros(b)) for b in sizes[1:-1]]
        h = _pairs(params[:-3])
        return fast_mlp.fused_mlp_generator(z, h, params[-3:], stats,
                                             2e-5, 0.9)

    gradient_check.check_backward(f, hidden + out, rng.randn(n, sizes[-1]),
                                  eps=1e-4, atol=1e-4, rtol=1e-4,
                                  dtype=numpy.float64)
