"""Links for the paper's techniques.

* :class:`MinibatchDiscrimination` -- Salimans et al. (2016), section 3.2;
  its closeness sums by :class:`PairwiseL1Closeness` (one batch, or rows
  against the rows of a larger batch that holds them, at an offset) or
  the broadcast form, over the samples of its ``pairs_source``
  (:class:`BatchPairs`; :func:`gan.multinode.make_global` swaps in the
  global batch of the ranks).
* :class:`WeightNormLinear`, :class:`WeightNormConvolution2D`,
  :class:`WeightNormDeconvolution2D` -- weight normalization (Salimans &
  Kingma, 2016) with the data-dependent initialization used by the authors'
  code; enable it with :func:`data_dependent_init`.
* :class:`GaussianNoise` -- additive noise, active only when
  ``chainer.config.train`` is True.
* :class:`Dropout` -- dropout drawn from :mod:`gan.random` (in the
  snapshots, so a resumed run drops the same units), training mode only.
"""
import contextlib
import functools

import numpy

import chainer
import chainer.functions as F
from chainer import initializers

from gan import random as grandom
from gan.fast import mlp as fast_mlp
from gan.fast import noise as fast_noise


# --------------------------------------------------------------------------
# Gaussian noise
# --------------------------------------------------------------------------
def gaussian_noise(x, sigma, noise=None):
    """``x + sigma * eps`` with ``eps ~ N(0, 1)`` in training mode, else ``x``.

    Args:
        x: array or Variable of any shape.
        sigma (float): standard deviation.
        noise: optional array of ``x.shape`` to use as ``eps`` (tests replay
            the same numbers through different code paths with it).
    """
    if not chainer.config.train or sigma == 0:
        return x
    if noise is None:
        noise = grandom.normal(_device(x), x.shape, numpy.dtype(x.dtype))
    return chainer.as_variable(x) + noise * x.dtype.type(sigma)


class GaussianNoise(chainer.Link):
    """Link form of :func:`gaussian_noise` (no parameters).

    ``noise_source`` may be set to a callable ``(shape, where, dtype) ->
    array`` (``where``: the device of the input, see :mod:`gan.random`)
    to control the numbers drawn (used by the equivalence tests and by
    :func:`frozen_noise`).  It must return a fresh array on every call:
    the fused discriminator scales the noise it gets in place.

    Args:
        sigma (float): standard deviation.
        fast (bool): draw large CPU arrays in two threads
            (:func:`gan.fast.noise.normal`: other numbers, same
            distribution); False: :func:`gan.random.normal`.
    """

    def __init__(self, sigma, fast=False):
        super().__init__()
        self.sigma = float(sigma)
        self.normal = fast_noise.normal if fast else grandom.normal
        self.noise_source = None

    def draw(self, shape, where, dtype):
        """The standard normal numbers of the next pass, on the device of
        ``where`` (see :mod:`gan.random`)."""
        if self.noise_source is not None:
            return self.noise_source(shape, where, dtype)
        return self.normal(where, shape, dtype)

    def forward(self, x):
        noise = None
        if chainer.config.train and self.sigma:
            noise = self.draw(x.shape, _device(x), numpy.dtype(x.dtype))
        return gaussian_noise(x, self.sigma, noise)


class Dropout(chainer.Link):
    """Dropout (no parameters): in training, each value is kept with
    probability ``1 - ratio`` and scaled by ``1 / (1 - ratio)``, else
    zeroed; in test mode the identity.  The mask comes from
    :func:`gan.random.uniform` (Chainer's ``F.dropout`` draws from numpy's
    global generator, which snapshots do not keep)."""

    def __init__(self, ratio):
        super().__init__()
        if not 0 <= ratio < 1:
            raise ValueError('dropout ratio must be in [0, 1), got {}'
                             .format(ratio))
        self.ratio = float(ratio)

    def forward(self, x):
        if not chainer.config.train or not self.ratio:
            return x
        dtype = numpy.dtype(x.dtype)
        u = grandom.uniform(_device(x), x.shape, dtype)
        mask = (u >= self.ratio).astype(dtype) * dtype.type(
            1.0 / (1.0 - self.ratio))
        return chainer.as_variable(x) * mask


class _FrozenNoise:
    """A noise source that draws once (through ``draw``) and returns the
    same numbers to every later call of the same shape, as a fresh copy
    each time (see :class:`GaussianNoise`)."""

    def __init__(self, draw):
        self.draw, self.value = draw, None

    def __call__(self, shape, where, dtype):
        if self.value is None or self.value.shape != tuple(shape):
            self.value = self.draw(shape, where, dtype)
        return self.value.copy()


def _draw_normal(normal, shape, where, dtype):
    return normal(where, shape, dtype)


def _device(x):
    """The device of the array or Variable ``x`` (where its noise is
    drawn)."""
    return chainer.backend.get_device_from_array(
        x.array if isinstance(x, chainer.Variable) else x)


@contextlib.contextmanager
def frozen_noise(layers):
    """Within this block every :class:`GaussianNoise` link in ``layers``
    adds the same noise in every pass over a batch of the same shape: the
    noise of a stochastic network held fixed, so that two passes differ
    only by their inputs (VAT's smoothness of one draw of the network)."""
    layers = list(layers)
    saved = [layer.noise_source for layer in layers]
    for layer, source in zip(layers, saved):
        layer.noise_source = _FrozenNoise(source or functools.partial(
            _draw_normal, layer.normal))
    try:
        yield
    finally:
        for layer, source in zip(layers, saved):
            layer.noise_source = source


# --------------------------------------------------------------------------
# Weight normalization
# --------------------------------------------------------------------------
@contextlib.contextmanager
def data_dependent_init():
    """Within this block, the first forward pass of every weight-normalized
    link that is not yet initialized sets its scale ``g`` and bias ``b`` so
    that each output unit has mean 0 and standard deviation ``init_scale``
    on that batch (Salimans & Kingma 2016, section 2.2).  Layers are
    initialized in the order of the forward pass, each one on the output of
    the already initialized layers before it."""
    with chainer.using_config('weight_norm_init', True):
        yield


class _WeightNorm:
    """Shared code of the weight-normalized links.

    ``W = g * V / ||V||`` with the norm taken over every axis of ``V`` but
    the output-unit axis.  The output is computed as
    ``op(x, V) * (g / ||V||) + b``, so the normalized weight tensor is never
    formed and the norm is computed once per forward pass.
    """

    _out_axis = 0  # axis of V that indexes output units

    def _setup_weight_norm(self, V_shape, out_size, init_scale, train_scale,
                           nobias, initialV):
        self.init_scale = float(init_scale)
        self.train_scale = bool(train_scale)
        with self.init_scope():
            self.V = chainer.Parameter(
                initializers._get_initializer(initialV), V_shape)
            if self.train_scale:
                self.g = chainer.Parameter(initializers.One(), (out_size,))
            if not nobias:
                self.b = chainer.Parameter(initializers.Zero(), (out_size,))
            else:
                self.b = None
        if not self.train_scale:
            self.add_persistent('g', numpy.ones(out_size, dtype=numpy.float32))
        self.add_persistent('initialized', False)

    def _unit_scale(self):
        """g / ||V|| per output unit, as a Variable (or a constant)."""
        V = self.V
        axes = tuple(i for i in range(V.ndim) if i != self._out_axis)
        norm = F.sqrt(F.sum(V * V, axis=axes))
        return self.g / norm

    def _g_array(self):
        return self.g.array if isinstance(self.g, chainer.Variable) else self.g

    def _finish(self, t):
        """t = op(x, V), units on axis 1 -> weight-normalized output."""
        shape = [1] * t.ndim
        shape[1] = t.shape[1]
        if getattr(chainer.config, 'weight_norm_init', False) \
                and not self.initialized:
            self._initialize_from(t, shape)
        scale = F.reshape(self._unit_scale(), shape)
        y = t * F.broadcast_to(scale, t.shape)
        if self.b is not None:
            y = y + F.broadcast_to(F.reshape(self.b, shape), t.shape)
        return y

    def _initialize_from(self, t, shape):
        xp = chainer.backend.get_array_module(t)
        V = self.V.array
        axes = tuple(i for i in range(V.ndim) if i != self._out_axis)
        norm = xp.sqrt((V * V).sum(axis=axes))
        ta = t.array if isinstance(t, chainer.Variable) else t
        # pre-activation with g = current g, b = 0
        u = ta * (self._g_array() / norm).reshape(shape)
        red = tuple(i for i in range(u.ndim) if i != 1)
        mean = u.mean(axis=red)
        std = xp.sqrt(((u - mean.reshape(shape)) ** 2).mean(axis=red) + 1e-8)
        new_g = (self._g_array() * self.init_scale / std).astype(V.dtype)
        if isinstance(self.g, chainer.Variable):
            self.g.array[...] = new_g
        else:
            self.g = new_g
        if self.b is not None:
            self.b.array[...] = (-mean * self.init_scale / std).astype(V.dtype)
        self.initialized = True


def _default_v_init(std):
    return initializers.Normal(std)


class WeightNormLinear(chainer.Link, _WeightNorm):
    """Weight-normalized fully connected layer.

    ``y = x W^T + b`` with ``W[k] = g[k] * V[k] / ||V[k]||``.

    Args:
        in_size (int or None): A (None: inferred at the first call is not
            supported; give the size).
        out_size (int): number of output units.
        init_scale (float): target std of the data-dependent init.
        train_scale (bool): learn ``g`` (True) or keep it fixed after the
            data-dependent init (False, the authors' hidden layers).
        initialV: initializer of ``V`` (default N(0, 0.1^2) as in the authors'
            MNIST code).
        fast (bool): one graph node for the layer
            (:func:`gan.fast.mlp.weight_norm_linear`, same results);
            False: composed from Chainer's functions.

    Shapes: x (N, in_size) (higher ranks are flattened) -> y (N, out_size).
    """

    def __init__(self, in_size, out_size, init_scale=1.0, train_scale=True,
                 nobias=False, initialV=None, fast=False):
        super().__init__()
        self.in_size, self.out_size = in_size, out_size
        self.fast = bool(fast)
        self._setup_weight_norm((out_size, in_size), out_size, init_scale,
                                train_scale, nobias,
                                initialV or _default_v_init(0.1))

    def forward(self, x):
        if x.ndim > 2:
            x = F.reshape(x, (x.shape[0], -1))
        if not self.fast or (
                getattr(chainer.config, 'weight_norm_init', False)
                and not self.initialized):
            return self._finish(F.linear(x, self.V))
        p = fast_mlp.param
        g = p(self.g) if self.train_scale else self.g
        b = None if self.b is None else p(self.b)
        return fast_mlp.weight_norm_linear(x, p(self.V), g, b)


class WeightNormConvolution2D(chainer.Link, _WeightNorm):
    """Weight-normalized 2-D convolution; V (out, in, kh, kw), norm over
    (in, kh, kw).  x (N, in, H, W) -> y (N, out, H', W')."""

    def __init__(self, in_channels, out_channels, ksize, stride=1, pad=0,
                 init_scale=1.0, train_scale=True, nobias=False,
                 initialV=None):
        super().__init__()
        self.stride, self.pad = stride, pad
        k = (ksize, ksize) if isinstance(ksize, int) else tuple(ksize)
        self._setup_weight_norm((out_channels, in_channels) + k, out_channels,
                                init_scale, train_scale, nobias,
                                initialV or _default_v_init(0.05))

    def forward(self, x):
        return self._finish(F.convolution_2d(x, self.V, stride=self.stride,
                                             pad=self.pad))


class WeightNormDeconvolution2D(chainer.Link, _WeightNorm):
    """Weight-normalized 2-D transposed convolution; V (in, out, kh, kw) as
    in Chainer, norm over (in, kh, kw) per output channel.
    x (N, in, H, W) -> y (N, out, H', W')."""

    _out_axis = 1

    def __init__(self, in_channels, out_channels, ksize, stride=1, pad=0,
                 init_scale=1.0, train_scale=True, nobias=False,
                 initialV=None, outsize=None):
        super().__init__()
        self.stride, self.pad, self.outsize = stride, pad, outsize
        k = (ksize, ksize) if isinstance(ksize, int) else tuple(ksize)
        self._setup_weight_norm((in_channels, out_channels) + k, out_channels,
                                init_scale, train_scale, nobias,
                                initialV or _default_v_init(0.05))

    def forward(self, x):
        return self._finish(F.deconvolution_2d(
            x, self.V, stride=self.stride, pad=self.pad,
            outsize=self.outsize))


# --------------------------------------------------------------------------
# Minibatch discrimination
# --------------------------------------------------------------------------
MBD_FORMS = ('authors', 'raw', 'blog')


class PairwiseL1Closeness(chainer.function_node.FunctionNode):
    """``o[i, b] = sum_{j != offset + i} exp(-sum_c |M[i, b, c] - A[j, b,
    c]|)`` for rows M (n, B, C) against rows A (N, B, C) whose rows
    ``offset .. offset + n`` are M itself (the self pairs, left out).
    Given M alone, A is M and the offset 0: one batch compared within
    itself.  The distances are summed one kernel dimension c at a time
    into (n, N, B), without the (n, N, B, C) difference tensor, and the
    backward pass is written out (first order only)::

        E[i, j, b]    = exp(-d[i, j, b])  (0 where j = offset + i)
        S[i, j, b, c] = G[i, j, b] sign(M[i, b, c] - A[j, b, c])
        gM[i, b, c]   = -sum_j S[i, j, b, c]
        gA[j, b, c]   = +sum_i S[i, j, b, c]

    with ``G[i, j, b] = go[i, b] E[i, j, b]`` given A.  Given M alone, d
    is symmetric and o[j] depends on M[i] through the same pair, so the
    two terms are one: ``G[i, j, b] = (go[i, b] + go[j, b]) E[i, j, b]``
    and no gA.  Given A, the gradient of A goes back to its rows (in
    :mod:`gan.multinode`, through the all-gather, whose backward sums the
    ranks' parts: the row of M at global index g then gets the
    one-batch gradient ``-sum_j (go[g] + go[j]) E[g, j] sign(...)``).

    Args:
        offset (int): where M's rows are in A (0 without A).
    """

    def __init__(self, offset=0):
        self.offset = int(offset)

    def forward(self, inputs):
        M, A = inputs[0], inputs[-1]
        if len(inputs) == 1 and self.offset:
            raise ValueError('an offset needs the rows A')
        xp = chainer.backend.get_array_module(M)
        n, N = M.shape[0], A.shape[0]
        mc = _columns(xp, M)  # (C, n, B)
        ac = mc if len(inputs) == 1 else _columns(xp, A)  # (C, N, B)
        d = xp.zeros((n, N, M.shape[1]), dtype=M.dtype)
        buf = xp.empty_like(d)
        for m, a in zip(mc, ac):
            xp.subtract(m[:, None, :], a[None, :, :], out=buf)
            xp.abs(buf, out=buf)
            d += buf
        E = xp.exp(-d, out=d)
        idx = xp.arange(n)
        E[idx, idx + self.offset, :] = 0
        self.E = E
        self.retain_inputs(tuple(range(len(inputs))))
        return E.sum(axis=1),

    def backward(self, indexes, grad_outputs):
        arrays = [v.array for v in self.get_retained_inputs()]
        M, A = arrays[0], arrays[-1]
        one = len(arrays) == 1
        xp = chainer.backend.get_array_module(M)
        go = grad_outputs[0].array
        if one:
            G = (go[:, None, :] + go[None, :, :]) * self.E  # (n, n, B)
        else:
            G = go[:, None, :] * self.E  # (n, N, B)
        mc = _columns(xp, M)
        ac = mc if one else _columns(xp, A)
        gM = xp.empty_like(mc)
        gA = None if one else xp.empty_like(ac)
        buf = xp.empty_like(G)
        for c in range(len(mc)):
            xp.subtract(mc[c][:, None, :], ac[c][None, :, :], out=buf)
            xp.sign(buf, out=buf)
            buf *= G
            gM[c] = -buf.sum(axis=1)
            if gA is not None:
                gA[c] = buf.sum(axis=0)
        grads = (gM,) if one else (gM, gA)
        return tuple(chainer.Variable(g.transpose(1, 2, 0)) for g in grads)


def _columns(xp, M):
    """M (n, B, C) as C contiguous (n, B) slices."""
    return xp.ascontiguousarray(M.transpose(2, 0, 1))


def pairwise_l1_closeness(M, A=None, offset=0):
    """:class:`PairwiseL1Closeness` of M (n, B, C) against A (N, B, C)
    (default: M itself) -> (n, B)."""
    if A is None:
        return PairwiseL1Closeness(offset).apply((M,))[0]
    return PairwiseL1Closeness(offset).apply((M, A))[0]


def pairwise_l1_closeness_broadcast(M, A=None, offset=0):
    """The same numbers composed from stock functions over the
    (n, N, B, C) difference tensor (the plain form)."""
    if A is None:
        if offset:
            raise ValueError('an offset needs the rows A')
        A = M
    n, B, C = M.shape
    N = A.shape[0]
    diff = F.broadcast_to(F.expand_dims(M, 1), (n, N, B, C)) - \
        F.broadcast_to(F.expand_dims(A, 0), (n, N, B, C))
    dist = F.sum(F.absolute(diff), axis=3)
    xp = chainer.backend.get_array_module(M)
    others = xp.ones((n, N), dtype=M.dtype)  # 0 at the self pairs
    others[xp.arange(n), xp.arange(n) + offset] = 0
    return F.sum(F.exp(-dist) * F.broadcast_to(others[:, :, None],
                                                dist.shape), axis=1)


class BatchPairs:
    """The samples that :class:`MinibatchDiscrimination` compares each
    sample with: those of the batch it is given.  The layer's
    ``pairs_source``; :func:`gan.multinode.make_global` swaps in one that
    compares with the samples of every rank (``GlobalPairs``), as it
    swaps the ``noise_source`` of :class:`GaussianNoise`.  Every method
    takes this process's rows."""

    def closeness(self, M, kernel):
        """o (n, B) of M (n, B, C) with ``kernel(M, A=None, offset=0)``
        (:func:`pairwise_l1_closeness` or its broadcast form)."""
        return kernel(M)

    def rows(self, M):
        """The rows (N, B, C) compared with, for the array M (n, B, C)
        (no graph): the data-dependent init's nearest neighbours."""
        return M

    def mean(self, o):
        """The mean over the compared samples of the array o (n, B)."""
        return o.mean(axis=0)


class MinibatchDiscrimination(chainer.Link):
    """Minibatch discrimination (Salimans et al. 2016, section 3.2).

    For features ``f(x_i)`` in R^A and a tensor ``W`` in R^{A x B x C}::

        M_i        = f(x_i) W                       (B x C)
        c_b(i, j)  = exp(-|| M_{i,b} - M_{j,b} ||_1)
        o(x_i)_b   = sum_{j != i} c_b(i, j) + bias_b
        output_i   = [f(x_i), o(x_i)]               (A + B)

    The self term (j = i, which would add exactly 1) is left out, so a
    batch of one gives ``o = bias``.  ``form`` chooses how W is made:

    * ``'authors'`` (the authors' ``MinibatchLayer``): ``W[:, b, c] =
      exp(s[b, c]) T[:, b, c] / ||T[:, b, c]||`` with T ~ N(0, 0.05^2), a
      learned log-scale s and a learned bias (-1 at first).  The first
      forward pass in training mode is a data-dependent init: s is lowered
      per kernel so that the mean L1 distance of each sample to its nearest
      other sample is 2, and the bias is set so that o has mean 0 over that
      batch.  The flag ``initialized`` is saved with the link, so a resumed
      run does not initialize again.
    * ``'raw'``: ``W = T`` ~ N(0, 0.05^2), learned, no bias.
    * ``'blog'``: ``W = T`` ~ N(0, 0.001^2), learned, no bias (the blog's
      plain linear layer; its bias cancels in the differences).

    The samples j are those of ``pairs_source`` (:class:`BatchPairs`, the
    batch given; :func:`gan.multinode.make_global` swaps in the samples
    of every rank, in training mode, for the sums and the init alike).

    Args:
        in_size (int): A (input of shape (N, C, H, W) is flattened).
        num_kernels (int): B (the authors': 100; the blog's: 50).
        kernel_dim (int): C (5 in both).
        form (str): one of :data:`MBD_FORMS`.
        learn_T (bool): learn T (and the log-scale) by backprop, or keep
            them at their initial values (the blog's open question; the
            authors' form still sets the scale once by its init).
        initialT: initializer of T (default by ``form``).
        fast (bool): compute the pairwise distances with
            :class:`PairwiseL1Closeness`, which never holds the
            (N, N, B, C) difference tensor (same numbers; first-order
            gradients only), and take the parameters as constants inside
            :func:`gan.fast.mlp.constant_parameters`; False: stock Chainer
            functions.

    Shapes: x (N, A) -> y (N, A + B).
    """

    def __init__(self, in_size, num_kernels=100, kernel_dim=5,
                 form='authors', learn_T=True, initialT=None, fast=False):
        super().__init__()
        if form not in MBD_FORMS:
            raise ValueError('form must be one of {}, got {!r}'.format(
                MBD_FORMS, form))
        self.in_size = in_size
        self.num_kernels = num_kernels
        self.kernel_dim = kernel_dim
        self.form = form
        self.learn_T = bool(learn_T)
        self.fast = bool(fast)
        std = 0.001 if form == 'blog' else 0.05
        init = initializers._get_initializer(
            initialT or initializers.Normal(std))
        shape = (in_size, num_kernels * kernel_dim)
        scale_shape = (num_kernels, kernel_dim)
        if self.learn_T:
            with self.init_scope():
                self.T = chainer.Parameter(init, shape)
                if form == 'authors':
                    self.log_scale = chainer.Parameter(
                        initializers.Zero(), scale_shape)
        else:
            T = numpy.empty(shape, dtype=numpy.float32)
            init(T)
            self.add_persistent('T', T)
            if form == 'authors':
                self.add_persistent(
                    'log_scale', numpy.zeros(scale_shape, numpy.float32))
        if form == 'authors':
            with self.init_scope():
                self.b = chainer.Parameter(
                    initializers.Constant(-1.0), (num_kernels,))
            self.add_persistent('initialized', False)
        else:
            self.b = None
            self.initialized = True
        # which samples each sample is compared with (not serialized):
        # gan.multinode.make_global swaps in the samples of every rank
        self.pairs_source = BatchPairs()

    def _param(self, p):
        # the fused form takes the parameters as constants inside
        # gan.fast.mlp.constant_parameters (the generator step)
        return fast_mlp.param(p) if self.fast else p

    def weight(self):
        """W (A, B * C) as a Variable (or a constant for a fixed T)."""
        T = self._param(self.T)
        if self.form != 'authors':
            return T
        B, C = self.num_kernels, self.kernel_dim
        norm = F.sqrt(F.sum(T * T, axis=0))  # (B * C,)
        scale = F.exp(F.reshape(self._param(self.log_scale), (B * C,))) / norm
        return T * F.broadcast_to(scale, T.shape)

    def closeness(self, x):
        """o without the bias, (N, B), for x (N, A)."""
        n = x.shape[0]
        M = F.reshape(F.matmul(x, self.weight()),
                      (n, self.num_kernels, self.kernel_dim))
        kernel = pairwise_l1_closeness if self.fast else \
            pairwise_l1_closeness_broadcast
        return self.pairs_source.closeness(M, kernel)

    def forward(self, x):
        n = x.shape[0]
        if x.ndim > 2:
            x = F.reshape(x, (n, -1))
        if not self.initialized and chainer.config.train:
            o = self._data_dependent_init(x)
        else:
            o = self.closeness(x)
            if self.b is not None:
                o = o + F.broadcast_to(self._param(self.b), o.shape)
        return F.concat((x, o), axis=1)

    def _data_dependent_init(self, x):
        """The authors' init on the batch x, its statistics taken over the
        samples of ``pairs_source`` (the global batch after
        :func:`gan.multinode.make_global`: the same numbers on every
        rank); returns the initialized o."""
        xp = chainer.backend.get_array_module(x)
        B, C = self.num_kernels, self.kernel_dim
        n_local = x.shape[0]
        with chainer.no_backprop_mode():
            xa = chainer.as_array(x)
            M = xa.dot(chainer.as_array(self.weight())).reshape(
                n_local, B, C)
            M = self.pairs_source.rows(M)
            n = M.shape[0]
            d = xp.abs(M[:, None] - M[None, :]).sum(axis=3)  # (N, N, B)
            idx = xp.arange(n)
            d[idx, idx, :] = xp.inf
            if n > 1:
                half_mean_min = 0.5 * d.min(axis=1).mean(axis=0)  # (B,)
                half_mean_min = xp.maximum(half_mean_min, 1e-12)
            else:
                half_mean_min = xp.ones(B, dtype=M.dtype)
        log_scale = self.log_scale.array if isinstance(
            self.log_scale, chainer.Variable) else self.log_scale
        log_scale -= xp.log(half_mean_min)[:, None].astype(log_scale.dtype)
        o = self.closeness(x)
        mean = self.pairs_source.mean(o.array)
        self.b.array[...] = -mean
        self.initialized = True
        return o - F.broadcast_to(xp.asarray(mean), o.shape)
