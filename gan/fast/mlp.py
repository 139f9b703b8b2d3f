"""The authors' MNIST networks as single graph nodes (a CPU fast path).

* :func:`fused_mlp_discriminator`, :func:`fused_mlp_generator` -- one pass
  of :class:`gan.nets.MLPDiscriminator` / :class:`gan.nets.MLPGenerator`
  (``fast=True``) as one node each;
* :func:`weight_norm_linear` -- one weight-normalized dense layer
  (:class:`gan.links.WeightNormLinear` with ``fast=True``);
* :func:`constant_parameters` -- the generator step's discriminator without
  parameter gradients.

Composed from links, one pass of :class:`gan.nets.MLPDiscriminator` is about
25 graph nodes (noise, weight-normalized dense, ReLU per layer) and as many
again in the backward pass; on a 2-core CPU their Python overhead and
temporaries cost about as much as the matrix products.
:func:`fused_mlp_discriminator` computes the same thing with the
arithmetic written out::

    h_0 = x + s_in * eps_0                      (noise in training mode)
    a_i = relu((h_{i-1} V_i^T) * g_i / ||V_i|| + b_i),   i = 1..L
    h_i = a_i + s_h * eps_i
    logits = (h_L V_o^T) * g_o / ||V_o|| + b_o

It returns ``(logits, a_L)`` (the features of feature matching are the last
hidden layer after ReLU, before its noise), or ``(a_L,)`` when only the
features are asked for.  The hidden scales ``g_i`` are fixed after the
data-dependent init (the authors' model) and are passed as constants; the
output layer's ``g_o`` is a parameter.  Inputs given as plain arrays get no
gradient (that is how the generator step skips D's parameter gradients).

Backward, per hidden layer, with ``gu = ga * [a > 0]`` and ``s = g/||V||``::

    gb = sum_n gu,   gt = gu * s,   gh_{i-1} = gt V
    gV = gt^T h_{i-1} - (sum_n gu * t) * g / ||V||^3 * V,   t = (u - b) / s

and ``sum_n gu * t = (sum_n gu * a - b * gb) / s`` because ``gu`` vanishes
where ``a = 0``, so ``t`` need not be kept.  The random numbers are drawn in
the same order as the composed network draws them, so both give identical
results for the same seed (``tests/test_fast_mlp.py``).
"""

import contextlib

import chainer
from chainer import backend


@contextlib.contextmanager
def constant_parameters():
    """Within this block the fast nodes of this module take their
    parameters as constants: gradients still flow to their inputs, but none
    are computed for the parameters.  The SSL updater's generator step
    enters it (with ``fast=True``) for the discriminator, whose parameter
    gradients it would throw away.  The composed links ignore it."""
    with chainer.using_config('gan_constant_parameters', True):
        yield


def param(p):
    """``p``, or its array inside :func:`constant_parameters`."""
    if getattr(chainer.config, 'gan_constant_parameters', False) and \
            isinstance(p, chainer.Variable):
        return p.array
    return p


class WeightNormLinearFunction(chainer.function_node.FunctionNode):
    """Fused ``y = (x V^T) * (g / ||V||) + b`` for dense layers.

    The composed version costs about ten graph nodes per layer; on a 2-core
    CPU that Python overhead was a sizeable part of an SSL iteration.  The
    backward pass is written out (first order only)::

        s   = g / ||V||,   t = x V^T,   gt = gy * s
        gx  = gt V
        gs  = sum_n gy * t
        gV  = gt^T x - (gs * g / ||V||^3) V
        gg  = gs / ||V||,  gb = sum_n gy
    """

    def forward(self, inputs):
        x, V, g = inputs[:3]
        xp = chainer.backend.get_array_module(x)
        self.norm = xp.sqrt((V * V).sum(axis=1))
        self.s = g / self.norm
        self.t = x.dot(V.T)
        y = self.t * self.s
        if len(inputs) == 4:
            y += inputs[3]
        self.retain_inputs((0, 1, 2))
        return y,

    def backward(self, indexes, grad_outputs):
        x, V, g = [v.array for v in self.get_retained_inputs()]
        gy = grad_outputs[0].array
        gt = gy * self.s
        out = []
        gs = None
        if 1 in indexes or 2 in indexes:
            gs = (gy * self.t).sum(axis=0)
        for i in indexes:
            if i == 0:
                out.append(gt.dot(V))
            elif i == 1:
                gV = gt.T.dot(x)
                gV -= (gs * g / self.norm ** 3)[:, None] * V
                out.append(gV)
            elif i == 2:
                out.append(gs / self.norm)
            else:
                out.append(gy.sum(axis=0))
        return tuple(chainer.Variable(a) for a in out)


def weight_norm_linear(x, V, g, b=None):
    """The fast form of :class:`gan.links.WeightNormLinear` (x: (N, in))."""
    inputs = (x, V, g) if b is None else (x, V, g, b)
    return WeightNormLinearFunction().apply(inputs)[0]


def _output_layer_backward(gl, inputs, io, want, h, t, norm, grads):
    """Backward of the weight-normalized output layer
    ``l = (h V^T) * g / ||V|| + b`` (``t = h V^T``; V, g, b are inputs
    ``io .. io + 2``): puts the wanted parameter gradients into ``grads``
    and returns the gradient of ``h``."""
    V, g = inputs[io], inputs[io + 1]
    gt = gl * (g / norm)
    if io in want or io + 1 in want:
        gs = (gl * t).sum(axis=0)
        if io in want:
            gV = gt.T.dot(h)
            gV -= (gs * g / norm ** 3)[:, None] * V
            grads[io] = gV
        if io + 1 in want:
            grads[io + 1] = gs / norm
    if io + 2 in want:
        grads[io + 2] = gl.sum(axis=0)
    return gt.dot(V)


class FusedMLPDiscriminator(chainer.function_node.FunctionNode):
    """Inputs: ``x, V_1, b_1, ..., V_L, b_L, V_o, g_o, b_o``.

    Args:
        hidden_g: the fixed scales ``g_i`` of the hidden layers (arrays).
        sigmas: noise std of the input and of each hidden layer
            (``L + 1`` floats); ignored outside training mode.
        draw: ``draw(j, shape, where, dtype)`` -> standard normal numbers
            for noise layer ``j`` (0 = input) on the device of ``where``
            (the input's device).
        features_only (bool): stop after the last hidden layer.
    """

    def __init__(self, hidden_g, sigmas, draw, features_only=False):
        self.hidden_g = hidden_g
        self.sigmas = sigmas
        self.draw = draw
        self.features_only = features_only

    def forward(self, inputs):
        x = inputs[0]
        n_hidden = len(self.hidden_g)
        xp = backend.get_array_module(x)
        device = backend.get_device_from_array(x)
        train = chainer.config.train
        dtype = x.dtype.type
        self.hs, self.acts, self.scales, self.norms = [], [], [], []
        self.retain_inputs(tuple(range(1, len(inputs))))

        def noisy(a, j):
            if not train or not self.sigmas[j]:
                return a
            eps = self.draw(j, a.shape, device, a.dtype)
            eps *= dtype(self.sigmas[j])
            eps += a
            return eps

        h = noisy(x, 0)
        for i in range(n_hidden):
            V, b = inputs[1 + 2 * i], inputs[2 + 2 * i]
            norm = xp.sqrt(xp.einsum('ij,ij->i', V, V))
            s = self.hidden_g[i] / norm
            a = h.dot(V.T)
            a *= s
            a += b
            xp.maximum(a, 0, out=a)
            self.hs.append(h)
            self.acts.append(a)
            self.scales.append(s)
            self.norms.append(norm)
            if self.features_only and i == n_hidden - 1:
                h = None
            else:
                h = noisy(a, i + 1)
        feat = self.acts[-1]
        if self.features_only:
            self.hs.append(None)
            return feat,
        Vo, go, bo = inputs[-3:]
        self.norm_o = xp.sqrt(xp.einsum('ij,ij->i', Vo, Vo))
        self.t_o = h.dot(Vo.T)
        self.hs.append(h)
        logits = self.t_o * (go / self.norm_o) + bo
        return logits, feat

    def backward(self, indexes, grad_outputs):
        # arrays indexed like the inputs (x itself is not retained)
        inputs = [None] + [v.array for v in self.get_retained_inputs()]
        want = set(indexes)
        n_hidden = len(self.hidden_g)
        grads = {}
        if self.features_only:
            g_logits, g_feat = None, grad_outputs[0]
        else:
            g_logits, g_feat = grad_outputs
        g_feat = None if g_feat is None else g_feat.array
        ga = None
        if g_logits is not None:
            gl = g_logits.array
            ga = _output_layer_backward(gl, inputs, 1 + 2 * n_hidden, want,
                                        self.hs[-1], self.t_o, self.norm_o,
                                        grads)
        if g_feat is not None:
            ga = g_feat.copy() if ga is None else ga + g_feat
        if ga is None:  # no gradient reaches D
            return tuple(None for _ in indexes)
        xp = backend.get_array_module(ga)
        lowest = min(indexes)
        for i in reversed(range(n_hidden)):
            iv, ib = 1 + 2 * i, 2 + 2 * i
            a, h, s = self.acts[i], self.hs[i], self.scales[i]
            ga *= a > 0                       # gu
            if iv in want or ib in want:
                gb = ga.sum(axis=0)
                if ib in want:
                    grads[ib] = gb
                if iv in want:
                    gs = (xp.einsum('ij,ij->j', ga, a) - inputs[ib] * gb) / s
            ga *= s                           # gt
            if iv in want:
                gV = ga.T.dot(h)
                gV -= (gs * self.hidden_g[i] / self.norms[i] ** 3)[:, None] \
                    * inputs[iv]
                grads[iv] = gV
            if i == 0 and lowest > 0:
                break
            ga = ga.dot(inputs[iv])
        if 0 in want:
            grads[0] = ga
        return tuple(None if grads.get(i) is None else
                     chainer.Variable(grads[i]) for i in indexes)


def fused_mlp_discriminator(x, hidden, out, hidden_g, sigmas, draw,
                            features_only=False):
    """Apply :class:`FusedMLPDiscriminator`.

    Args:
        x: (N, D) input.
        hidden: ``[(V_i, b_i)]`` of the hidden layers (Variables or arrays).
        out: ``(V_o, g_o, b_o)`` of the output layer.
    Returns:
        ``(logits, features)`` or ``features``.
    """
    inputs = [x]
    for V, b in hidden:
        inputs += [V, b]
    inputs += list(out)
    node = FusedMLPDiscriminator(hidden_g, sigmas, draw, features_only)
    outs = node.apply(inputs)
    return outs[0] if features_only else outs


# --------------------------------------------------------------------------
# The authors' MLP generator
# --------------------------------------------------------------------------
def _sigmoid(xp, x):
    """1 / (1 + e^-x) in the tanh form Chainer's sigmoid uses."""
    y = xp.tanh(x * x.dtype.type(0.5))
    y *= x.dtype.type(0.5)
    y += x.dtype.type(0.5)
    return y


class FusedMLPGenerator(chainer.function_node.FunctionNode):
    """Training-mode pass of :class:`gan.nets.MLPGenerator` as one node::

        t_i = h_{i-1} W_i^T                     (no bias)
        u_i = (t_i - mean_n t_i) / sqrt(var_n t_i + eps) + beta_i
        h_i = softplus(u_i) = max(u_i, 0) + log(1 + e^-|u_i|)
        y   = sigmoid((h_L V_o^T) * g_o / ||V_o|| + b_o)

    Inputs: ``z, W_1, beta_1, ..., W_L, beta_L, V_o, g_o, b_o``.  Batch
    norm uses the batch statistics and updates the running averages given
    as ``stats`` (``[(avg_mean, avg_var)]``) exactly as
    :class:`chainer.links.BatchNormalization` does in training mode
    (``decay``, unbiased variance).  Backward, per hidden layer, with
    ``gu = gh * sigmoid(u)`` and ``x^ = (t - mean) / std``::

        gbeta = sum_n gu
        gt    = (gu - mean_n gu - x^ mean_n(gu x^)) / std
        gW    = gt^T h_{i-1},   gh_{i-1} = gt W
    """

    def __init__(self, stats, eps, decay):
        self.stats = stats
        self.eps = eps
        self.decay = decay

    def forward(self, inputs):
        z = inputs[0]
        xp = backend.get_array_module(z)
        n_hidden = len(self.stats)
        self.retain_inputs(tuple(range(1, len(inputs))))
        self.hs, self.xhats, self.us, self.inv_stds = [z], [], [], []
        h = z
        m = z.shape[0]
        adjust = m / max(m - 1.0, 1.0)
        for i in range(n_hidden):
            W, beta = inputs[1 + 2 * i], inputs[2 + 2 * i]
            t = h.dot(W.T)
            mean = t.mean(axis=0)
            var = t.var(axis=0)
            inv_std = 1 / xp.sqrt(var + t.dtype.type(self.eps))
            avg_mean, avg_var = self.stats[i]
            avg_mean *= self.decay
            avg_mean += (1 - self.decay) * mean
            avg_var *= self.decay
            avg_var += (1 - self.decay) * adjust * var
            t -= mean
            t *= inv_std                       # x^
            u = t + beta
            # log(1 + e) rather than log1p(e): numpy's float32 log1p is
            # not vectorized (5x slower here); for e < 6e-8 the two differ
            # by less than 6e-8 in absolute terms
            e = xp.exp(-xp.abs(u))
            e += 1
            h = xp.log(e)
            h += xp.maximum(u, 0)
            self.xhats.append(t)
            self.us.append(u)
            self.inv_stds.append(inv_std)
            self.hs.append(h)
        Vo, go, bo = inputs[-3:]
        self.norm_o = xp.sqrt(xp.einsum('ij,ij->i', Vo, Vo))
        self.t_o = h.dot(Vo.T)
        y = _sigmoid(xp, self.t_o * (go / self.norm_o) + bo)
        self.retain_outputs((0,))
        return y,

    def backward(self, indexes, grad_outputs):
        inputs = [None] + [v.array for v in self.get_retained_inputs()]
        y = self.get_retained_outputs()[0].array
        want = set(indexes)
        xp = backend.get_array_module(y)
        n_hidden = len(self.stats)
        grads = {}
        gl = grad_outputs[0].array * y * (1 - y)
        gh = _output_layer_backward(gl, inputs, 1 + 2 * n_hidden, want,
                                    self.hs[-1], self.t_o, self.norm_o,
                                    grads)
        for i in reversed(range(n_hidden)):
            iw, ib = 1 + 2 * i, 2 + 2 * i
            gu = gh * _sigmoid(xp, self.us[i])  # softplus' = sigmoid
            gbeta = gu.sum(axis=0)
            if ib in want:
                grads[ib] = gbeta
            xhat = self.xhats[i]
            m = gu.shape[0]
            gxhat_mean = xp.einsum('ij,ij->j', gu, xhat) / m
            gt = gu - gbeta / m
            gt -= xhat * gxhat_mean
            gt *= self.inv_stds[i]
            if iw in want:
                grads[iw] = gt.T.dot(self.hs[i])
            if i == 0:
                if 0 in want:
                    grads[0] = gt.dot(inputs[iw])
                break
            gh = gt.dot(inputs[iw])
        return tuple(None if grads.get(i) is None else
                     chainer.Variable(grads[i]) for i in indexes)


def fused_mlp_generator(z, hidden, out, stats, eps, decay):
    """Apply :class:`FusedMLPGenerator`; ``hidden`` = ``[(W_i, beta_i)]``,
    ``out`` = ``(V_o, g_o, b_o)``."""
    inputs = [z]
    for W, beta in hidden:
        inputs += [W, beta]
    inputs += list(out)
    return FusedMLPGenerator(stats, eps, decay).apply(inputs)[0]
