"""Losses of the paper, numerically stable, as Chainer functions.

Notation: ``l`` are the K logits of a K-class discriminator (N, K); a virtual
(K+1)-th "fake" class has its logit fixed at 0 (Salimans et al. 2016, sec. 5),
so with ``Z(x) = sum_k exp(l_k(x))``::

    D(x)            = Z / (Z + 1)
    log D(x)        = lse(l) - softplus(lse(l))
    log(1 - D(x))   = -softplus(lse(l))

``lse`` is Chainer's log-sum-exp and ``softplus(u) = log(1 + e^u)`` is
evaluated as ``max(u, 0) + log1p(exp(-|u|))``, so both stay finite for logits
of magnitude 1e4.

Binary GAN losses take one logit ``d`` per example (N,) or (N, 1):
``D = sigmoid(d)``, ``-log D = softplus(-d)``, ``-log(1 - D) = softplus(d)``.
"""
import chainer
import chainer.functions as F


def _mean(x):
    return F.sum(x) / x.size


def softplus(u):
    """log(1 + e^u) = max(u, 0) + log1p(e^-|u|); forward and backward stay
    finite and warning-free for |u| up to the float32 range (Chainer's
    softplus overflows in exp in its backward at u ~ 1e4)."""
    return F.relu(u) + F.log1p(F.exp(-F.absolute(u)))


def log_z(logits):
    """lse over classes: (N, K) -> (N,)."""
    return F.logsumexp(logits, axis=1)


def virtual_class_log_d(logits):
    """log D(x) = lse(l) - softplus(lse(l)): (N, K) -> (N,)."""
    lse = log_z(logits)
    return lse - softplus(lse)


def virtual_class_log_one_minus_d(logits):
    """log(1 - D(x)) = -softplus(lse(l)): (N, K) -> (N,)."""
    return -softplus(log_z(logits))


def supervised_loss(logits, labels):
    """Cross entropy over the K real classes (the virtual class cannot be
    the label of a real example, and its zero logit cancels in the softmax
    restricted to real classes): (N, K), (N,) int32 -> scalar."""
    return F.softmax_cross_entropy(logits, labels)


# the fake term of the SSL discriminator loss: log-one-minus-d = D
# minimises -log(1 - D(G(z))) (the authors, and the blog post's text);
# log-d = D minimises +log D(G(z)) (the blog's code on the post's day)
FAKE_TERMS = ('log-one-minus-d', 'log-d')


def virtual_class_discriminator_loss(logits_unlabeled, logits_fake,
                                     fake_term='log-one-minus-d'):
    """The unsupervised part of the SSL discriminator loss, as in the
    authors' code::

        -0.5 mean log D(x_unl) - 0.5 mean log(1 - D(G(z)))
      = -0.5 mean lse(l_unl) + 0.5 mean softplus(lse(l_unl))
        + 0.5 mean softplus(lse(l_fake))

    (N, K), (M, K) -> scalar.  The factor 0.5 makes it the mean over the
    union of the real and fake batch when N = M.  ``fake_term='log-d'``
    replaces the fake term by ``+0.5 mean log D(G(z))`` (the blog's code of
    2016-12-23): also lowest where D(G(z)) is 0, but with the gradient
    vanishing as D(G(z)) goes to 1 instead of to 0.
    """
    if fake_term not in FAKE_TERMS:
        raise ValueError('fake_term must be one of {}'.format(FAKE_TERMS))
    lse_u = log_z(logits_unlabeled)
    real = -0.5 * _mean(lse_u) + 0.5 * _mean(softplus(lse_u))
    if fake_term == 'log-d':
        return real + 0.5 * _mean(virtual_class_log_d(logits_fake))
    return real + 0.5 * _mean(softplus(log_z(logits_fake)))


def virtual_class_generator_loss(logits_fake):
    """Non-saturating generator loss ``-mean log D(G(z))`` for the
    virtual-class discriminator: (M, K) -> scalar."""
    return -_mean(virtual_class_log_d(logits_fake))


def gan_discriminator_loss(d_real, d_fake):
    """Binary GAN discriminator loss in softplus form:
    ``mean softplus(-d_real) + mean softplus(d_fake)``."""
    return _mean(softplus(-d_real)) + _mean(softplus(d_fake))


def gan_generator_loss(d_fake):
    """Non-saturating generator loss ``-mean log D(G(z)) =
    mean softplus(-d_fake)`` (Goodfellow et al. 2014, section 3)."""
    return _mean(softplus(-d_fake))


def _as_target(x):
    return x.array if isinstance(x, chainer.Variable) else x


# the generator losses of both updaters, by the names of --feature-matching:
# none = -log D(G(z)); paper = the distance of the batch means of D's
# features alone (:func:`feature_matching`); blog = -log D(G(z)) plus the
# per-sample squared feature error (:func:`feature_matching_paired`)
FEATURE_MATCHING = ('none', 'paper', 'blog')


def feature_matching(features_real, features_fake):
    """Feature matching, the paper's form (section 3.1)::

        || E_x f(x) - E_z f(G(z)) ||^2 / A

    i.e. the squared difference of the batch means, averaged over the A
    units, as in the authors' MNIST code.  ``features_real`` is a target:
    no gradient flows into it.  (N, A...), (M, A...) -> scalar.
    """
    xp = chainer.backend.get_array_module(features_fake)
    real = _as_target(features_real)
    real = real.reshape(real.shape[0], -1)
    fake = F.reshape(features_fake, (features_fake.shape[0], -1))
    target = xp.mean(real, axis=0)
    diff = F.mean(fake, axis=0) - target
    return _mean(diff * diff)


def feature_matching_paired(features_real, features_fake):
    """Feature matching, the blog's form: the mean squared error between the
    features of paired real and fake examples (sample i against sample i),
    to be added to the adversarial loss.  The real features are a target.
    (N, A...), (N, A...) -> scalar."""
    real = _as_target(features_real)
    fake = features_fake
    if fake.shape != real.shape:
        raise ValueError('paired feature matching needs batches of the same '
                         'shape, got {} and {}'.format(real.shape, fake.shape))
    return F.mean_squared_error(fake, real)


def _kl_from_logits(p_logit, q_logit):
    """mean_n KL(softmax(p) || softmax(q)); p is a constant target."""
    p_log = F.log_softmax(p_logit)
    q_log = F.log_softmax(q_logit)
    p = F.exp(p_log)
    return F.sum(p * (p_log - q_log)) / p_logit.shape[0]


def _l2_normalize(xp, d):
    flat = d.reshape(d.shape[0], -1)
    flat = flat / (xp.abs(flat).max(axis=1, keepdims=True) + 1e-12)
    flat = flat / xp.sqrt((flat ** 2).sum(axis=1, keepdims=True) + 1e-6)
    return flat.reshape(d.shape)


def virtual_adversarial_loss(forward, x, logits=None, eps=2.0, xi=1e-2,
                             power_iterations=1, normal=None):
    """Virtual adversarial training (Miyato et al. 2016), the regularizer
    the blog added to its SSL discriminator::

        r_adv = eps * g / ||g||,  g = grad_r KL(p(.|x) || p(.|x + r)) at r = xi d
        loss  = KL(p(.|x) || p(.|x + r_adv))

    Args:
        forward: callable, (N, ...) -> logits (N, K).
        x: input array (N, ...).
        logits: logits of ``x`` (computed when None); used as a constant.
        eps (float): L2 norm of the adversarial perturbation.
        xi (float): finite-difference step of the power iteration.  The
            VAT paper's 1e-6 is below float32's resolution for MNIST
            pixels: the direction is then partly rounding error (the
            authors' D at its init, on sparse images in [0, 1]: two
            summation orders gave KLs 9 % apart, 11-19 % under the KL at
            1e-3); from 1e-3 to 1e-2 the two agree to 1e-5 and the KL
            moves by 0.2 %.
        normal: ``(where, shape, dtype) -> array`` of standard normal
            numbers on the device of ``where`` (here: ``x``'s) for the
            random start direction (default :func:`gan.random.normal`).
    """
    from gan import random as grandom
    normal = normal or grandom.normal
    xp = chainer.backend.get_array_module(x)
    x = _as_target(x)
    device = chainer.backend.get_device_from_array(x)
    if logits is None:
        with chainer.no_backprop_mode():
            logits = forward(x)
    target = chainer.Variable(_as_target(logits))
    d = _l2_normalize(xp, normal(device, x.shape, x.dtype))
    for _ in range(power_iterations):
        r = chainer.Variable(xi * d)
        kl = _kl_from_logits(target, forward(x + r))
        grad, = chainer.grad([kl], [r])
        d = _l2_normalize(xp, grad.array)
    return _kl_from_logits(target, forward(x + eps * d))
