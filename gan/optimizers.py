"""Adam as in the authors' code: epsilon inside the square root.

The authors' Theano Adam updates ``p -= lr * m_hat / sqrt(v_hat + 1e-8)``,
which floors the denominator at 1e-4; Chainer's (and PyTorch's) Adam use
``sqrt(v_hat) + eps``.  With otherwise identical settings the standard form
stalled at 15-21 % test error in semi-supervised MNIST where this one kept
improving, so this is the default of ``train_ssl.py``.
"""
import math

from chainer import backend, optimizers
from chainer.optimizers import adam


class AdamEpsInSqrtRule(adam.AdamRule):

    def update_core(self, param):
        grad = param.grad
        if grad is None:
            return
        hp = self.hyperparam
        m, v = self.state['m'], self.state['v']
        xp = backend.get_array_module(m)
        # one scratch array per parameter, kept between steps (not part of
        # the optimizer state): no temporaries of parameter size per step
        tmp = getattr(self, '_scratch', None)
        if tmp is None or tmp.shape != m.shape or \
                backend.get_array_module(tmp) is not xp:
            tmp = self._scratch = xp.empty_like(m)
        xp.subtract(grad, m, out=tmp)              # m += (1-b1)(g - m)
        tmp *= 1 - hp.beta1
        m += tmp
        xp.multiply(grad, grad, out=tmp)           # v += (1-b2)(g^2 - v)
        tmp -= v
        tmp *= 1 - hp.beta2
        v += tmp
        t = self.t
        fix1 = 1.0 - math.pow(hp.beta1, t)
        fix2 = 1.0 - math.pow(hp.beta2, t)
        # m_hat / sqrt(v_hat + eps) = m sqrt(fix2) / (fix1 sqrt(v + eps fix2))
        step = hp.alpha * hp.eta * math.sqrt(fix2) / fix1
        xp.add(v, hp.eps * fix2, out=tmp)
        xp.sqrt(tmp, out=tmp)
        xp.divide(m, tmp, out=tmp)
        tmp *= step
        param.array[...] -= tmp


class AdamEpsInSqrt(optimizers.Adam):
    """Adam with ``eps`` inside the square root (the authors' form).

    ``alpha``, ``beta1``, ``beta2`` and ``eps`` mean what they mean for
    :class:`chainer.optimizers.Adam`; weight decay, AMSGrad and AdaBound are
    not supported.
    """

    def __init__(self, alpha=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(alpha=alpha, beta1=beta1, beta2=beta2, eps=eps)

    def create_update_rule(self):
        return AdamEpsInSqrtRule(self.hyperparam)
