import numpy
import pytest

import chainer

from gan import links, nets


@pytest.mark.parametrize('size', [32, 64, 96])
@pytest.mark.parametrize('mbd', [None, {'num_kernels': 6, 'kernel_dim': 3}])
def test_dcgan_shapes_and_ranges(size, mbd):
    G = nets.DCGANGenerator(size=size, ch=32, z_dim=8, out_ch=3)
    D = nets.DCGANDiscriminator(size=size, ch=32, in_ch=3,
                                minibatch_discrimination=mbd)
    z = G.make_hidden(4)
    assert z.shape == (4, 8) and z.dtype == numpy.float32
    x = G(z)
    assert x.shape == (4, 3, size, size)
    assert x.array.min() >= -1 and x.array.max() <= 1
    # the output layer's tanh: pre-activations made large saturate at +-1
    # (without the tanh they would reach about 1000 times the above)
    big = G.copy(mode='copy')
    big.ups[-1].W.array *= 1000
    xb = big(z).array
    assert numpy.abs(xb).max() <= 1 and (numpy.abs(xb) > 0.999).mean() > 0.5
    logit, feat = D(x, return_features=True)
    assert logit.shape == (4,)
    bottom = 6 if size == 96 else 4
    assert feat.shape == (4, 32 * bottom * bottom) == (4, D.feature_size)
    numpy.testing.assert_allclose(D.features(x).array, feat.array)
    assert numpy.isfinite(logit.array).all()


def test_dcgan_grayscale_and_bad_sizes():
    G = nets.DCGANGenerator(size=32, ch=16, z_dim=4, out_ch=1)
    assert G(G.make_hidden(2)).shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match='image size'):
        nets.DCGANGenerator(size=48)
    with pytest.raises(ValueError, match='divisible'):
        nets.DCGANDiscriminator(size=64, ch=12)


@pytest.mark.parametrize('weight_norm', [True, False])
@pytest.mark.parametrize('mbd', [None, {'num_kernels': 5, 'kernel_dim': 2}])
def test_mlp_discriminator(weight_norm, mbd):
    D = nets.MLPDiscriminator(weight_norm=weight_norm,
                              minibatch_discrimination=mbd)
    x = numpy.random.RandomState(0).rand(12, 784).astype(numpy.float32)
    with chainer.using_config('train', False):
        logits, feat = D(x, return_features=True)
        assert logits.shape == (12, 10) and feat.shape == (12, 250)
        # after ReLU: never negative, and zero where the unit is off
        assert (feat.array >= 0).all() and (feat.array == 0).mean() > 0.1
        numpy.testing.assert_allclose(D.features(x).array, feat.array)
        numpy.testing.assert_allclose(D(x).array, logits.array)
    with chainer.using_config('train', True):
        assert not numpy.allclose(D(x).array, logits.array)  # noise is on


def test_mlp_discriminator_data_dependent_init_every_layer():
    D = nets.MLPDiscriminator()
    x = numpy.random.RandomState(1).rand(200, 784).astype(numpy.float32)
    with chainer.using_config('train', False), links.data_dependent_init():
        D(x)
    h = x
    with chainer.using_config('train', False):
        for layer in list(D.hidden) + [D.out]:
            pre = layer(h).array
            numpy.testing.assert_allclose(pre.mean(0), 0, atol=1e-4)
            numpy.testing.assert_allclose(pre.std(0), 1, atol=1e-3)
            h = numpy.maximum(pre, 0)
    # hidden scales are fixed, the output scale is learned
    names = {n for n, _ in D.namedparams()}
    assert '/out/g' in names and '/hidden/0/g' not in names


def test_mlp_generator_range_and_latent():
    G = nets.MLPGenerator()
    z = G.make_hidden(7)
    assert z.shape == (7, 100)
    zz = G.make_hidden(2000)  # U(0, 1), the authors' latent
    assert zz.min() >= 0 and zz.min() < 1e-3 and zz.max() > 0.999
    assert zz.max() < 1 and abs(zz.mean() - 0.5) < 0.01
    x = G(z).array
    assert x.shape == (7, 784) and x.min() > 0 and x.max() < 1


def test_mlp_generator_weights_are_glorot_uniform():
    # Lasagne's default in the authors' code: U(-a, a), a = sqrt(6 / (in +
    # out)), so std a / sqrt(3).  Chainer's default (LeCun normal) has std
    # 1 / sqrt(in): 0.1 instead of 0.058 for the first layer.
    G = nets.MLPGenerator()
    weights = [lin.W.array for lin in G.lins] + [G.out.V.array]
    for W in weights:
        n_out, n_in = W.shape
        a = numpy.sqrt(6.0 / (n_in + n_out))
        assert numpy.abs(W).max() <= a
        numpy.testing.assert_allclose(W.std(), a / numpy.sqrt(3), rtol=0.03)


def test_mlp_generator_lecun_init_and_bad_init():
    G = nets.MLPGenerator(init='lecun')
    for lin in G.lins:
        W = lin.W.array
        numpy.testing.assert_allclose(W.std(), 1 / numpy.sqrt(W.shape[1]),
                                      rtol=0.03)
    numpy.testing.assert_allclose(G.out.V.array.std(), 0.05, rtol=0.03)
    with pytest.raises(ValueError):
        nets.MLPGenerator(init='he')


def test_mlp_generator_pytorch_init():
    """PyTorch's Linear default, U(+-1/sqrt(fan_in)) (std bound/sqrt(3)),
    and the output directions N(0, 0.1^2)."""
    G = nets.MLPGenerator(init='pytorch')
    for lin in G.lins:
        W = lin.W.array
        bound = 1 / numpy.sqrt(W.shape[1])
        assert numpy.abs(W).max() <= bound
        numpy.testing.assert_allclose(W.std(), bound / numpy.sqrt(3),
                                      rtol=0.03)
    numpy.testing.assert_allclose(G.out.V.array.std(), 0.1, rtol=0.03)


@pytest.mark.parametrize('size,bottom', [(96, 11), (64, 7), (32, 3)])
def test_blog_generator_shapes_and_layers(size, bottom):
    G = nets.BlogConvGenerator(size=size, z_dim=50, ch=16)
    assert G.bottom == bottom
    assert [u.pad for u in G.ups] == [(0, 0), (1, 1), (1, 1)]
    assert [u.W.shape[:2] for u in G.ups] == [(16, 8), (8, 4), (4, 3)]
    z = G.make_hidden(3)
    assert z.shape == (3, 50)
    zz = G.make_hidden(2000)  # U(-1, 1)
    assert -1 <= zz.min() < -0.99 and 0.99 < zz.max() <= 1
    assert abs(zz.mean()) < 0.02
    x = G(z)
    assert x.shape == (3, 3, size, size)
    assert (numpy.abs(x.array) <= 1).all()
    # the tanh at the end: large pre-activations saturate at +-1
    big = G.copy(mode='copy')
    big.ups[-1].W.array *= 1e5
    xb = big(z).array
    assert numpy.abs(xb).max() <= 1 and (numpy.abs(xb) > 0.999).mean() > 0.5
    z2 = G.sample_z(numpy.random.default_rng(0), 2000)
    assert z2.min() < -0.99 and z2.max() > 0.99 and abs(z2.mean()) < 0.02
    assert abs(G.l0.W.array.std() / 0.001 - 1) < 0.05
    # the dense layer: ReLU, then batch norm (its input is never negative)
    seen = []
    bn0 = G.bn0.forward
    G.bn0.forward = lambda h, **k: seen.append(chainer.as_array(h)) or \
        bn0(h, **k)
    G(z)
    assert seen[0].min() >= 0 and (seen[0] == 0).any()


def test_blog_discriminator_layers_noise_and_mbd():
    D = nets.BlogConvDiscriminator(size=32, wscale=0.001, input_noise=0.3,
                               minibatch_discrimination=dict(
                                   num_kernels=50, kernel_dim=5,
                                   form='blog'))
    assert [c.W.shape[0] for c in D.convs] == [32, 64, 128, 256]
    assert len(D.bns) == 4 and D.feature_size == 256 * 2 * 2
    assert D.mbd.form == 'blog' and D.mbd.num_kernels == 50
    assert abs(D.mbd.T.array.std() / 0.001 - 1) < 0.05
    assert D.out.W.shape == (1, 1024 + 50)
    x = numpy.random.RandomState(0).uniform(
        -1, 1, (4, 3, 32, 32)).astype(numpy.float32)
    # noise on the input in training only: the first convolution sees
    # x + 0.3 eps
    seen = []
    conv0 = D.convs[0].forward
    D.convs[0].forward = lambda h: seen.append(chainer.as_array(h)) or \
        conv0(h)
    logit, f = D(x, return_features=True)
    assert logit.shape == (4,) and f.shape == (4, 1024)
    assert abs((seen[-1] - x).std() - 0.3) < 0.02
    with chainer.using_config('train', False):
        D(x)
    numpy.testing.assert_array_equal(seen[-1], x)
    # features: the last ELU (values above -1, some negative)
    assert f.array.min() > -1 and (f.array < 0).any()


def test_dcgan_discriminator_input_noise_defaults_off():
    D = nets.DCGANDiscriminator(size=32, ch=16)
    x = numpy.zeros((2, 3, 32, 32), dtype=numpy.float32)
    assert D.noise.sigma == 0
    numpy.testing.assert_array_equal(D.features(x).array,
                                     D.features(x).array)


def _distinct_images(n, size, seed=0):
    """n smooth, distinct colour images in [-1, 1]: random low-frequency
    patterns."""
    rng = numpy.random.RandomState(seed)
    small = rng.uniform(-1, 1, (n, 3, 4, 4)).astype(numpy.float32)
    return numpy.repeat(numpy.repeat(small, size // 4, 2), size // 4, 3)


@pytest.mark.parametrize('size,ch', [(32, 64), (64, 512)])
def test_authors_mbd_after_init_is_inside_its_range(size, ch):
    """At both scales the pre-bias minibatch features of distinct images
    lie well inside (0, N - 1) after the data-dependent init; the raw
    N(0, 0.05) tensor is near 0 at 64 px / --ch 512."""
    n = 64
    x = _distinct_images(n, size)
    D = nets.DCGANDiscriminator(size=size, ch=ch, minibatch_discrimination=(
        dict(num_kernels=100, kernel_dim=5, form='authors', fast=True)))
    with chainer.no_backprop_mode():
        f = D.features(x)
        D.mbd(f)  # the init, on this batch
        o = D.mbd.closeness(f).array
    assert D.mbd.initialized
    # every kernel's mean is away from both ends; Jensen gives >= e^-2
    means = o.mean(axis=0)
    assert means.min() > numpy.exp(-2) - 1e-3
    assert means.max() < 0.25 * (n - 1)
    if ch == 512:
        raw = links.MinibatchDiscrimination(D.feature_size, 100, 5,
                                            form='raw')
        with chainer.no_backprop_mode():
            assert raw.closeness(f).array.mean() < 0.1
