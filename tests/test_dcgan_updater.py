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


@pytest.mark.parametrize('fm', ['none', 'blog', 'paper'])
def test_blog_order_updates_d_then_g_on_a_fresh_batch(fm):
    """order='d-then-g' (SGD, lr 1): D moves by the gradient of its loss
    on the real batch and G(z1); G then moves by the gradient of its loss
    on a fresh G(z2) through the *updated* D, with the real features of
    D's pass before its update as the feature-matching target."""
    rng = numpy.random.default_rng(3)
    images = list(rng.integers(0, 256, (4, 3, 32, 32)).astype(numpy.uint8))
    gen, dis = tiny_pair()
    gen0, dis0 = copy.deepcopy(gen), copy.deepcopy(dis)
    up = make_updater(gen, dis, images, fm=fm, weight=0.5)
    up.order = 'd-then-g'
    grandom.seed(7)
    up.update()

    grandom.seed(7)
    x_real = numpy.stack(images).astype(numpy.float32) / 127.5 - 1.0
    x_fake1 = gen0(gen0.make_hidden(4)).array
    d_real, f_real = dis0(x_real, return_features=True)
    loss_d = F.mean(F.softplus(-d_real)) + F.mean(F.softplus(dis0(x_fake1)))
    d_grads = chainer.grad([loss_d], list(dis0.params()))
    dis1 = copy.deepcopy(dis0)
    for p, g in zip(dis1.params(), d_grads):
        p.array -= g.array
    x_fake2 = gen0(gen0.make_hidden(4))
    d_fake2, f_fake2 = dis1(x_fake2, return_features=True)
    fm_paired = F.mean_squared_error(f_fake2, f_real.array)
    fm_means = F.mean((F.mean(f_fake2, axis=0) - f_real.array.mean(0)) ** 2)
    loss_g = {'none': F.mean(F.softplus(-d_fake2)),
              'blog': F.mean(F.softplus(-d_fake2)) + 0.5 * fm_paired,
              'paper': 0.5 * fm_means}[fm]
    g_grads = chainer.grad([loss_g], list(gen0.params()))

    for p0, g, p in zip(gen0.params(), g_grads, gen.params()):
        numpy.testing.assert_allclose(p.array, p0.array - g.array,
                                      rtol=1e-4, atol=2e-5)
    for p1, p in zip(dis1.params(), dis.params()):
        numpy.testing.assert_allclose(p.array, p1.array, rtol=1e-4,
                                      atol=2e-5)
    # the G order of the default differs: not the same parameters
    gen_b, dis_b = tiny_pair()
    up_b = make_updater(gen_b, dis_b, images, fm=fm, weight=0.5)
    grandom.seed(7)
    up_b.update()
    assert not all(numpy.allclose(a.array, b.array, atol=1e-6)
                   for a, b in zip(gen.params(), gen_b.params()))


def test_unknown_order_is_refused():
    gen, dis = tiny_pair()
    opts = {'gen': chainer.optimizers.SGD(), 'dis': chainer.optimizers.SGD()}
    opts['gen'].setup(gen)
    opts['dis'].setup(dis)
    it = chainer.iterators.SerialIterator([numpy.zeros((3, 32, 32),
                                                       numpy.uint8)], 1)
    with pytest.raises(ValueError, match='order'):
        dcgan_updater.DCGANUpdater(it, opts, order='both')


def sgd_step(link, loss):
    """A copy of ``link`` moved by the gradient of ``loss`` (SGD, lr 1)
    with respect to ``link``'s own parameters."""
    grads = chainer.grad([loss], list(link.params()))
    moved = copy.deepcopy(link)
    for p, g in zip(moved.params(), grads):
        p.array -= g.array
    return moved


@pytest.mark.parametrize('order', ['g-then-d', 'd-then-g'])
def test_more_gen_steps_update_g_again_on_fresh_batches(order):
    """gen_steps=3 (SGD, lr 1): the step of ``order``, then two more G
    updates, each on a fresh G(z) through the updated D, with the real
    features of the step's D pass as the feature target (blog form)."""
    rng = numpy.random.default_rng(4)
    images = list(rng.integers(0, 256, (4, 3, 32, 32)).astype(numpy.uint8))
    gen, dis = tiny_pair()
    g, d = copy.deepcopy(gen), copy.deepcopy(dis)
    up = make_updater(gen, dis, images, fm='blog', weight=0.5)
    up.order, up.gen_steps = order, 3
    grandom.seed(9)
    seen = {}
    with chainer.Reporter().scope(seen):
        up.update()

    def loss_g(g, d, f_real):
        d_fake, f_fake = d(g(g.make_hidden(4)), return_features=True)
        return (F.mean(F.softplus(-d_fake)) +
                0.5 * F.mean_squared_error(f_fake, f_real))

    grandom.seed(9)
    x_real = numpy.stack(images).astype(numpy.float32) / 127.5 - 1.0
    losses = []
    if order == 'd-then-g':
        x_fake = g(g.make_hidden(4)).array
        d_real, f_real = d(x_real, return_features=True)
        d = sgd_step(d, F.mean(F.softplus(-d_real)) +
                     F.mean(F.softplus(d(x_fake))))
        f_real = f_real.array
    else:
        x_fake = g(g.make_hidden(4))
        d_real, f_real = d(x_real, return_features=True)
        d_fake, f_fake = d(x_fake, return_features=True)
        first = (F.mean(F.softplus(-d_fake)) +
                 0.5 * F.mean_squared_error(f_fake, f_real.array))
        losses.append(float(first.array))
        g_next = sgd_step(g, first)
        d = sgd_step(d, F.mean(F.softplus(-d_real)) +
                     F.mean(F.softplus(d(x_fake.array))))
        g, f_real = g_next, f_real.array
    while len(losses) < 3:
        loss = loss_g(g, d, f_real)
        losses.append(float(loss.array))
        g = sgd_step(g, loss)

    for p1, p in zip(g.params(), gen.params()):
        numpy.testing.assert_allclose(p.array, p1.array, rtol=1e-4,
                                      atol=2e-5)
    for p1, p in zip(d.params(), dis.params()):  # D moved once
        numpy.testing.assert_allclose(p.array, p1.array, rtol=1e-4,
                                      atol=2e-5)
    assert float(seen['gen/loss']) == pytest.approx(numpy.mean(losses),
                                                    rel=1e-4)
