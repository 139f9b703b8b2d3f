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
        assert (feat.array >= 0).all()  # after ReLU
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
    assert z.shape == (7, 100) and z.min() >= 0 and z.max() < 1
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
