"""The DCGAN updater: its losses and one update against an independent
step-by-step computation."""
import copy

import numpy
import pytest

import chainer
import chainer.functions as F

from gan import dcgan_updater
from gan import nets
from gan import random as grandom


def softplus(a):
    return numpy.logaddexp(0.0, a)


def tiny_pair(mbd=False):
    numpy.random.seed(1)
    gen = nets.DCGANGenerator(32, 16, 8, out_ch=3)
    dis = nets.DCGANDiscriminator(
        32, 16, in_ch=3,
        minibatch_discrimination=dict(num_kernels=4, kernel_dim=3)
        if mbd else None)
    return gen, dis


def make_updater(gen, dis, images, fm='none', weight=1.0, lr=1.0):
    opts = {}
    for name, net in (('gen', gen), ('dis', dis)):
        opts[name] = chainer.optimizers.SGD(lr=lr)
        opts[name].setup(net)
    it = chainer.iterators.SerialIterator(images, len(images), shuffle=False)
    return dcgan_updater.DCGANUpdater(it, opts, feature_matching=fm,
                                      fm_weight=weight)


@pytest.mark.parametrize('form', ['none', 'paper', 'blog'])
def test_generator_loss_forms(form):
    rng = numpy.random.default_rng(0)
    d_fake = rng.standard_normal(6).astype(numpy.float32)
    f_real = rng.standard_normal((6, 5)).astype(numpy.float32)
    f_fake = rng.standard_normal((6, 5)).astype(numpy.float32)
    gen, dis = tiny_pair()
    up = make_updater(gen, dis, [numpy.zeros((3, 32, 32), numpy.uint8)] * 2,
                      fm=form, weight=0.3)
    loss, fm = up.generator_loss(chainer.Variable(d_fake), f_real,
                                 chainer.Variable(f_fake))
    adversarial = softplus(-d_fake.astype(numpy.float64)).mean()
    paper = ((f_real.mean(0) - f_fake.mean(0)) ** 2).mean()
    blog = ((f_real - f_fake) ** 2).mean()
    expected = {'none': adversarial, 'paper': 0.3 * paper,
                'blog': adversarial + 0.3 * blog}[form]
    numpy.testing.assert_allclose(float(loss.array), expected, rtol=1e-5)
    if form == 'none':
        assert fm is None
    else:
        numpy.testing.assert_allclose(
            float(fm.array), paper if form == 'paper' else blog, rtol=1e-5)


def test_unknown_feature_matching_is_refused():
    gen, dis = tiny_pair()
    with pytest.raises(ValueError, match='feature_matching'):
        make_updater(gen, dis, [numpy.zeros((3, 32, 32), numpy.uint8)],
                     fm='both')


@pytest.mark.parametrize('mbd,fm', [(False, 'none'), (True, 'blog')])
def test_one_update_matches_separate_gradients(mbd, fm):
    """With SGD (lr 1) a parameter moves by minus its gradient, so the
    update must equal: G moved by grad of its loss through the old D, and D
    moved by grad of the discriminator loss alone (no trace of G's loss)."""
    rng = numpy.random.default_rng(2)
    images = list(rng.integers(0, 256, (4, 3, 32, 32)).astype(numpy.uint8))
    gen, dis = tiny_pair(mbd)
    gen0, dis0 = copy.deepcopy(gen), copy.deepcopy(dis)
    up = make_updater(gen, dis, images, fm=fm, weight=0.5)
    grandom.seed(5)
    up.update()

    grandom.seed(5)
    x_real = numpy.stack(images).astype(numpy.float32) / 127.5 - 1.0
    x_fake = gen0(gen0.make_hidden(4))
    d_real, f_real = dis0(x_real, return_features=True)
    d_fake, f_fake = dis0(x_fake, return_features=True)
    loss_g = F.mean(F.softplus(-d_fake))
    if fm == 'blog':
        loss_g += 0.5 * F.mean_squared_error(f_fake, f_real.array)
    gen0.cleargrads()
    g_grads = chainer.grad([loss_g], list(gen0.params()))
    d_fake2 = dis0(chainer.Variable(x_fake.array))  # D's loss sees no G
    loss_d = F.mean(F.softplus(-d_real)) + F.mean(F.softplus(d_fake2))
    d_grads = chainer.grad([loss_d], list(dis0.params()))

    for p0, g, p in zip(gen0.params(), g_grads, gen.params()):
        numpy.testing.assert_allclose(p.array, p0.array - g.array,
                                      rtol=1e-4, atol=2e-5)
    for p0, g, p in zip(dis0.params(), d_grads, dis.params()):
        numpy.testing.assert_allclose(p.array, p0.array - g.array,
                                      rtol=1e-4, atol=2e-5)
