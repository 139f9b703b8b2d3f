"""The blog's animeface networks on the CPU fast path (``fast=True``: the
convolutions of :mod:`gan.fast.conv`) against the same networks built from
Chainer's stock links: the same parameters (a snapshot of either loads into
the other), and in training mode the same outputs, the same batch-norm
statistics and the same gradients."""
import numpy
import pytest

import chainer
import chainer.functions as F
import chainer.links as L
from chainer import serializers

from gan import nets
from gan.fast import conv as fast_conv

BATCH = 4


def generator(fast, size, seed=0):
    numpy.random.seed(seed)  # Chainer's initializers draw from it
    return nets.BlogConvGenerator(size=size, z_dim=50, ch=32, fast=fast)


def discriminator(fast, size, seed=0):
    numpy.random.seed(seed)
    return nets.BlogConvDiscriminator(size=size, input_noise=0.3, fast=fast)


def fast_and_plain(build, size, layers, link, tmp_path):
    """(fast, plain) networks of ``build``: the plain one with Chainer's
    stock links, the fast one (its own initial weights) with those of
    gan.fast.conv, loaded from a snapshot of the plain one.  ``layers``:
    the name of their list of convolutions, ``link``: their class name."""
    plain = build(False, size)
    fast = build(True, size, seed=1)
    for net, module in ((plain, L), (fast, fast_conv)):
        assert all(type(c) is getattr(module, link)
                   for c in getattr(net, layers))
    assert not same_arrays(params(fast), params(plain))
    path = str(tmp_path / 'plain.npz')
    serializers.save_npz(path, plain)
    serializers.load_npz(path, fast)
    assert same_arrays(params(fast), params(plain))
    return fast, plain


def params(link):
    return {k: p.array.copy() for k, p in link.namedparams()}


def same_arrays(a, b):
    return a.keys() == b.keys() and all(numpy.array_equal(a[k], b[k])
                                        for k in a)


def run(net, x, noise=None):
    """One training-mode pass on ``x`` and a backward pass of a random
    projection of the output: (output, gradient of x, parameter gradients,
    batch norm's running averages)."""
    if noise is not None:
        net.noise.noise_source = lambda shape, where, dtype: noise.copy()
    net.cleargrads()
    v = chainer.Variable(x.copy())
    with chainer.using_config('train', True):
        y = net(v)
    c = numpy.random.default_rng(2).standard_normal(y.shape).astype(
        numpy.float32)
    F.sum(y * c).backward()
    return (y.array, v.grad, {k: p.grad.copy() for k, p in net.namedparams()},
            {name + '/' + k: getattr(link, k).copy()
             for name, link in net.namedlinks()
             if isinstance(link, L.BatchNormalization)
             for k in ('avg_mean', 'avg_var')})


def check_same(fast_run, plain_run, biases_into_batchnorm):
    (yf, xf, gf, sf), (yp, xp, gp, sp) = fast_run, plain_run
    assert yf.shape == yp.shape
    numpy.testing.assert_allclose(yf, yp, rtol=1e-5,
                                  atol=1e-5 * numpy.abs(yp).max())
    assert rel_err(xf, xp) <= 1e-5
    assert gf.keys() == gp.keys()
    for k in gp:
        if k in biases_into_batchnorm:
            # batch norm removes the bias: its gradient is 0 up to
            # rounding, in both (next to its layer's weight gradient)
            w = numpy.linalg.norm(gp[k[:-1] + 'W'])
            assert numpy.linalg.norm(gp[k]) <= 1e-5 * w
            assert numpy.linalg.norm(gf[k]) <= 1e-5 * w
        else:
            assert rel_err(gf[k], gp[k]) <= 1e-5, k
    assert sf.keys() == sp.keys()
    for k in sp:  # batch norm's running averages
        numpy.testing.assert_allclose(sf[k], sp[k], rtol=1e-5,
                                      atol=1e-5 * numpy.abs(sp[k]).max())


def rel_err(a, b):
    norm = numpy.linalg.norm(b)
    assert norm > 0
    return numpy.linalg.norm(a - b) / norm


@pytest.mark.parametrize('size', [32, 48])
def test_fast_blog_generator_matches_the_stock_links(size, tmp_path):
    fast, plain = fast_and_plain(generator, size, 'ups',
                                 'Deconvolution2D', tmp_path)
    # the unpadded first deconvolution and the padded ones after it
    assert [u.pad for u in fast.ups] == [(0, 0), (1, 1), (1, 1)]
    z = numpy.random.default_rng(1).uniform(-1, 1, (BATCH, 50)).astype(
        numpy.float32)
    fast_run = run(fast, z)
    assert fast_run[0].shape == (BATCH, 3, size, size)
    check_same(fast_run, run(plain, z), {'/ups/0/b', '/ups/1/b'})


@pytest.mark.parametrize('size', [32, 48])
def test_fast_blog_discriminator_matches_the_stock_links(size, tmp_path):
    fast, plain = fast_and_plain(discriminator, size, 'convs',
                                 'Convolution2D', tmp_path)
    rng = numpy.random.default_rng(1)
    x = rng.uniform(-1, 1, (BATCH, 3, size, size)).astype(numpy.float32)
    noise = rng.standard_normal(x.shape).astype(numpy.float32)  # the same
    fast_run = run(fast, x, noise)  # noise for both
    assert fast_run[0].shape == (BATCH,)
    check_same(fast_run, run(plain, x, noise),
               {'/convs/{}/b'.format(i) for i in range(4)})
