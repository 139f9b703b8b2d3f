import numpy
import pytest

import chainer
import chainer.functions as F
from chainer import gradient_check

from gan import losses


def explicit_k_plus_one(logits):
    """log p(real) and log p(fake) from an explicit (K+1)-way softmax with a
    zero logit for the fake class, computed in float64 with a max shift."""
    full = numpy.concatenate([logits, numpy.zeros((len(logits), 1))], axis=1)
    m = full.max(axis=1, keepdims=True)
    log_norm = m[:, 0] + numpy.log(numpy.exp(full - m).sum(axis=1))
    log_p = full - log_norm[:, None]
    log_fake = log_p[:, -1]
    # log sum_{k<K} p_k, shifted
    real = log_p[:, :-1]
    mr = real.max(axis=1, keepdims=True)
    log_real = mr[:, 0] + numpy.log(numpy.exp(real - mr).sum(axis=1))
    return log_real, log_fake


@pytest.mark.parametrize('scale', [1.0, 30.0, 1e4])
def test_virtual_class_equals_explicit_softmax(scale):
    rng = numpy.random.RandomState(0)
    logits = (rng.randn(8, 10) * scale).astype(numpy.float64)
    logits[0] = 1e4
    logits[1] = -1e4
    log_real, log_fake = explicit_k_plus_one(logits)
    log_d = losses.virtual_class_log_d(logits).array
    log_1md = losses.virtual_class_log_one_minus_d(logits).array
    assert numpy.isfinite(log_d).all() and numpy.isfinite(log_1md).all()
    numpy.testing.assert_allclose(log_d, log_real, rtol=1e-7, atol=1e-7)
    numpy.testing.assert_allclose(log_1md, log_fake, rtol=1e-7, atol=1e-7)


def test_virtual_class_losses_finite_in_float32_at_1e4():
    logits = numpy.array([[1e4] * 10, [-1e4] * 10, [1e4] + [-1e4] * 9],
                         dtype=numpy.float32)
    v = chainer.Variable(logits)
    loss = (losses.virtual_class_discriminator_loss(v, v)
            + losses.virtual_class_generator_loss(v))
    loss.backward()
    assert numpy.isfinite(loss.array)
    assert numpy.isfinite(v.grad).all()


def test_discriminator_loss_matches_formula():
    rng = numpy.random.RandomState(1)
    lu, lf = rng.randn(6, 10) * 3, rng.randn(4, 10) * 3
    log_real_u, _ = explicit_k_plus_one(lu)
    _, log_fake_f = explicit_k_plus_one(lf)
    expected = -0.5 * log_real_u.mean() - 0.5 * log_fake_f.mean()
    got = losses.virtual_class_discriminator_loss(lu, lf).array
    numpy.testing.assert_allclose(got, expected, rtol=1e-10)
    log_real_f, _ = explicit_k_plus_one(lf)
    numpy.testing.assert_allclose(
        losses.virtual_class_generator_loss(lf).array, -log_real_f.mean(),
        rtol=1e-10)


def test_supervised_loss_is_cross_entropy():
    rng = numpy.random.RandomState(2)
    logits = rng.randn(5, 10)
    labels = rng.randint(0, 10, 5).astype(numpy.int32)
    logp = logits - numpy.log(numpy.exp(logits).sum(1, keepdims=True))
    numpy.testing.assert_allclose(
        losses.supervised_loss(logits, labels).array,
        -logp[numpy.arange(5), labels].mean(), rtol=1e-10)


def test_virtual_class_gradients():
    rng = numpy.random.RandomState(3)
    lu, lf = rng.randn(5, 4), rng.randn(3, 4)

    def f(a, b):
        return losses.virtual_class_discriminator_loss(a, b)
    gradient_check.check_backward(f, (lu, lf), None, dtype=numpy.float64)
    gradient_check.check_backward(losses.virtual_class_generator_loss, lf,
                                  None, dtype=numpy.float64)
    gradient_check.check_backward(losses.virtual_class_log_d, lu,
                                  rng.randn(5), dtype=numpy.float64)
    gradient_check.check_backward(losses.virtual_class_log_one_minus_d, lu,
                                  rng.randn(5), dtype=numpy.float64)


def test_binary_gan_losses_match_sigmoid_form_and_gradients():
    rng = numpy.random.RandomState(4)
    dr, df = rng.randn(7) * 2, rng.randn(7) * 2
    sig = lambda u: 1 / (1 + numpy.exp(-u))  # noqa: E731
    numpy.testing.assert_allclose(
        losses.gan_discriminator_loss(dr, df).array,
        -numpy.log(sig(dr)).mean() - numpy.log(1 - sig(df)).mean(),
        rtol=1e-10)
    numpy.testing.assert_allclose(losses.gan_generator_loss(df).array,
                                  -numpy.log(sig(df)).mean(), rtol=1e-10)
    big = numpy.array([1e4, -1e4], dtype=numpy.float32)
    assert numpy.isfinite(losses.gan_discriminator_loss(big, big).array)
    gradient_check.check_backward(losses.gan_discriminator_loss, (dr, df),
                                  None, dtype=numpy.float64)
    gradient_check.check_backward(losses.gan_generator_loss, df, None,
                                  dtype=numpy.float64)


def test_feature_matching_forms():
    rng = numpy.random.RandomState(5)
    real, fake = rng.randn(8, 6), rng.randn(8, 6)
    expected = ((real.mean(0) - fake.mean(0)) ** 2).mean()
    numpy.testing.assert_allclose(
        losses.feature_matching(real, fake).array, expected, rtol=1e-10)
    numpy.testing.assert_allclose(
        losses.feature_matching_paired(real, fake).array,
        ((real - fake) ** 2).mean(), rtol=1e-10)
    # batch sizes may differ for the paper's form, images are flattened
    r4, f4 = rng.randn(5, 2, 2, 2), rng.randn(3, 2, 2, 2)
    numpy.testing.assert_allclose(
        losses.feature_matching(r4, f4).array,
        ((r4.reshape(5, -1).mean(0) - f4.reshape(3, -1).mean(0)) ** 2).mean())
    with pytest.raises(ValueError):
        losses.feature_matching_paired(r4, f4)
    # gradients w.r.t. the fake features; the real ones are a target
    gradient_check.check_backward(
        lambda f: losses.feature_matching(real, f), fake, None,
        dtype=numpy.float64)
    gradient_check.check_backward(
        lambda f: losses.feature_matching_paired(real, f), fake, None,
        dtype=numpy.float64)
    rv = chainer.Variable(real)
    losses.feature_matching(rv, chainer.Variable(fake)).backward()
    assert rv.grad is None


def test_virtual_adversarial_loss_is_zero_for_constant_classifier_and_positive_otherwise():
    rng = numpy.random.RandomState(6)
    x = rng.rand(6, 5).astype(numpy.float32)
    W = rng.randn(5, 3).astype(numpy.float32)

    def const(v):
        return F.broadcast_to(F.reshape(chainer.Variable(
            numpy.array([1., 2., 3.], dtype=numpy.float32)), (1, 3)),
            (v.shape[0], 3)) + 0 * F.sum(v)

    assert abs(float(losses.virtual_adversarial_loss(const, x).array)) < 1e-6
    lin = lambda v: F.matmul(v, W) * 3.0  # noqa: E731
    loss = losses.virtual_adversarial_loss(lin, x, eps=1.0, xi=1e-2)
    assert float(loss.array) > 0
    # the adversarial direction beats a random one of the same norm
    d = rng.randn(*x.shape).astype(numpy.float32)
    d /= numpy.linalg.norm(d, axis=1, keepdims=True)
    rand = losses._kl_from_logits(chainer.Variable(lin(x).array),
                                  lin(x + d))
    assert float(loss.array) > float(rand.array)


def test_virtual_adversarial_loss_finds_the_top_eigenvector():
    """For a linear softmax model, logits = x W, the KL divergence to a
    perturbed input is 1/2 r^T H r + O(|r|^3) with H = W (diag p - p p^T)
    W^T per example.  Many power iterations should find H's top
    eigenvector, so the loss at a small eps is 1/2 eps^2 lambda_max,
    averaged over the batch (numpy's eigvalsh, independent of the code)."""
    from gan import random as grandom
    rng = numpy.random.RandomState(11)
    n, dim, k = 4, 6, 5
    x = rng.randn(n, dim)
    W = rng.randn(dim, k)
    lin = lambda v: F.matmul(v, W)  # noqa: E731
    eps = 1e-3
    grandom.seed(3)
    loss = losses.virtual_adversarial_loss(lin, x, eps=eps, xi=1e-6,
                                           power_iterations=60)
    expected = []
    for xi in x:
        logit = xi @ W
        p = numpy.exp(logit - logit.max())
        p /= p.sum()
        H = W @ (numpy.diag(p) - numpy.outer(p, p)) @ W.T
        expected.append(0.5 * eps ** 2 * numpy.linalg.eigvalsh(H)[-1])
    assert float(loss.array) == pytest.approx(numpy.mean(expected), rel=1e-2)
    # a random direction (no power iteration) falls well short of it
    grandom.seed(3)
    one = losses.virtual_adversarial_loss(lin, x, eps=eps, xi=1e-6,
                                          power_iterations=0)
    assert float(one.array) < 0.9 * numpy.mean(expected)
