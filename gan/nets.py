"""Networks: the DCGAN pair for square images and the MLP pair of the
authors' permutation-invariant MNIST experiment.

Images are float32 in [-1, 1] for the DCGAN pair (tanh output) and in
[0, 1] for the MLP pair (sigmoid output), NCHW / (N, 784).
"""
import math

import numpy

import chainer
import chainer.functions as F
import chainer.links as L
from chainer import initializers

from gan import random as grandom
from gan.fast import bn as fast_bn
from gan.fast import conv as fast_conv
from gan.fast import mlp as fast_mlp
from gan.links import (Dropout, GaussianNoise, MinibatchDiscrimination,
                       WeightNormLinear)

DCGAN_SIZES = (32, 64, 96)


def _dcgan_layout(size, ch):
    """(bottom resolution, number of stride-2 stages) of a square DCGAN."""
    if size not in DCGAN_SIZES:
        raise ValueError('image size must be one of {}, got {}'.format(
            DCGAN_SIZES, size))
    bottom = 6 if size == 96 else 4
    stages = int(round(math.log2(size // bottom)))
    if ch % (2 ** (stages - 1)):
        raise ValueError('--ch {} must be divisible by {} for {} px '
                         'images'.format(ch, 2 ** (stages - 1), size))
    return bottom, stages


def _upsample(gen, h):
    """A generator's dense output h (N, ch * bottom^2) as an image: reshape,
    the deconvolutions ``gen.ups`` with batch norm and ReLU between them
    (``gen.bns``), tanh."""
    h = F.reshape(h, (h.shape[0], gen.ch, gen.bottom, gen.bottom))
    for i, up in enumerate(gen.ups):
        h = up(h)
        if i < len(gen.bns):
            h = fast_bn.batch_norm_act(gen.bns[i], h, 'relu', fast=gen.fast)
    return F.tanh(h)


class DCGANGenerator(chainer.Chain):
    """DCGAN generator (Radford et al. 2016).

    z (N, z_dim) ~ N(0, 1) -> linear -> (N, ch, b, b) -> stride-2
    deconvolutions halving the channels, batch norm + ReLU -> tanh image
    (N, out_ch, size, size) in [-1, 1].  b = 4 for 32 and 64 px, 6 for 96.
    ``fast``: the faster CPU deconvolutions of :mod:`gan.fast.conv` (same
    results); False: Chainer's links.
    """

    def __init__(self, size=64, ch=512, z_dim=100, out_ch=3, wscale=0.02,
                 fast=False):
        super().__init__()
        Deconv = fast_conv.Deconvolution2D if fast else L.Deconvolution2D
        self.size, self.ch, self.z_dim, self.out_ch = size, ch, z_dim, out_ch
        self.fast = bool(fast)
        self.bottom, stages = _dcgan_layout(size, ch)
        w = initializers.Normal(wscale)
        with self.init_scope():
            self.l0 = L.Linear(z_dim, self.bottom ** 2 * ch, initialW=w)
            self.bn0 = L.BatchNormalization(self.bottom ** 2 * ch)
            self.ups = chainer.ChainList()
            self.bns = chainer.ChainList()
            c = ch
            for i in range(stages):
                last = i == stages - 1
                c_out = out_ch if last else c // 2
                self.ups.add_link(Deconv(c, c_out, 4, 2, 1,
                                                    initialW=w))
                if not last:
                    self.bns.add_link(L.BatchNormalization(c_out))
                c = c_out

    def make_hidden(self, n):
        return grandom.normal(self.device, (n, self.z_dim))

    def sample_z(self, rng, n):
        """n latents (numpy float32) from the numpy Generator ``rng``, from
        the same distribution as :meth:`make_hidden` (grids, metrics)."""
        return rng.standard_normal((n, self.z_dim), dtype=numpy.float32)

    def forward(self, z):
        return _upsample(self, fast_bn.batch_norm_act(
            self.bn0, self.l0(z), 'relu', fast=self.fast))


class _ConvDiscriminatorHead(chainer.Chain):
    """What both convolutional discriminators put after ``features()``:
    optional minibatch discrimination, then one logit."""

    def _add_head(self, minibatch_discrimination, initialW):
        """Call inside ``init_scope`` once ``self.feature_size`` is set."""
        n_in = self.feature_size
        if minibatch_discrimination:
            self.mbd = MinibatchDiscrimination(self.feature_size,
                                               **minibatch_discrimination)
            n_in += self.mbd.num_kernels
        else:
            self.mbd = None
        self.out = L.Linear(n_in, 1, initialW=initialW)

    def forward(self, x, return_features=False):
        f = self.features(x)
        h = self.mbd(f) if self.mbd is not None else f
        logit = F.reshape(self.out(h), (-1,))
        return (logit, f) if return_features else logit


class DCGANDiscriminator(_ConvDiscriminatorHead):
    """DCGAN discriminator with optional minibatch discrimination.

    x (N, in_ch, size, size) -> stride-2 convolutions (leaky ReLU 0.2, batch
    norm after the first) -> features f (N, ch*b*b) -> [minibatch
    discrimination: (N, ch*b*b + B)] -> one logit (N,).

    Args:
        minibatch_discrimination: None, or a dict of
            :class:`~gan.links.MinibatchDiscrimination` keyword arguments
            (``num_kernels``, ``kernel_dim``, ``form``, ``learn_T``,
            ``fused``).
        use_batchnorm (bool): batch norm in the hidden layers.
        input_noise (float): standard deviation of Gaussian noise added to
            the input in training (0: none).
        dropout (float): dropout ratio after every hidden convolution but
            the last (the features stay whole), in training (0: none); the
            authors' CIFAR-10 discriminator drops 0.5 twice.
        fast (bool): the faster CPU convolutions of :mod:`gan.fast.conv`
            (same results); False: Chainer's links.
    """

    def __init__(self, size=64, ch=512, in_ch=3, wscale=0.02,
                 minibatch_discrimination=None, use_batchnorm=True,
                 fast=False, input_noise=0.0, dropout=0.0):
        super().__init__()
        Conv = fast_conv.Convolution2D if fast else L.Convolution2D
        self.size, self.ch = size, ch
        self.bottom, stages = _dcgan_layout(size, ch)
        self.use_batchnorm = use_batchnorm
        self.fast = bool(fast)
        self._leaky = fast_conv.leaky_relu if fast else F.leaky_relu
        w = initializers.Normal(wscale)
        chans = [ch // 2 ** (stages - 1 - i) for i in range(stages)]
        self.feature_size = ch * self.bottom ** 2
        with self.init_scope():
            self.noise = GaussianNoise(input_noise, fast=fast)
            self.dropout = Dropout(dropout)
            self.convs = chainer.ChainList()
            self.bns = chainer.ChainList()
            c_in = in_ch
            for i, c in enumerate(chans):
                self.convs.add_link(Conv(c_in, c, 4, 2, 1,
                                                    initialW=w))
                if i > 0 and use_batchnorm:
                    self.bns.add_link(L.BatchNormalization(c))
                c_in = c
            self._add_head(minibatch_discrimination, w)

    def features(self, x):
        """The last hidden layer, flattened: (N, ch * b * b)."""
        h = self.noise(x)
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if i > 0 and self.use_batchnorm:
                h = fast_bn.batch_norm_act(self.bns[i - 1], h, 'leaky_relu',
                                           0.2, fast=self.fast)
            else:
                h = self._leaky(h, 0.2)
            if i < len(self.convs) - 1:
                h = self.dropout(h)
        return F.reshape(h, (h.shape[0], -1))



# --------------------------------------------------------------------------
# The blog's networks (its train_animeface/model.py)
# --------------------------------------------------------------------------
def blog_generator_layout(size):
    """(bottom resolution, padding of each of the three deconvolutions) of
    the blog's generator: the bottom is ``size / 8 - 1`` and the first
    deconvolution is unpadded, so 4 x 4 kernels of stride 2 give exactly
    ``size`` (96 px: 11 -> 24 -> 48 -> 96)."""
    if size % 8 or size < 16:
        raise ValueError('the blog networks need an image size divisible '
                         'by 8 (at least 16), got {}'.format(size))
    return size // 8 - 1, (0, 1, 1)


class BlogConvGenerator(chainer.Chain):
    """The blog's animeface generator.

    z (N, z_dim) ~ U(-1, 1) -> dense (512 x b x b) -> ReLU -> batch norm ->
    (N, 512, b, b) -> deconvolutions 512-256-128 (4 x 4, stride 2), each
    followed by batch norm and ReLU -> deconvolution to ``out_ch`` -> tanh.
    b = size / 8 - 1 (11 at 96 px); every weight starts N(0, wscale^2).
    ``fast``: the faster CPU deconvolutions of :mod:`gan.fast.conv` (same
    results, same parameters); False: Chainer's links.
    """

    def __init__(self, size=96, z_dim=50, out_ch=3, wscale=0.001, ch=512,
                 fast=False):
        super().__init__()
        Deconv = fast_conv.Deconvolution2D if fast else L.Deconvolution2D
        self.size, self.z_dim, self.out_ch, self.ch = size, z_dim, out_ch, ch
        self.fast = bool(fast)
        self.bottom, pads = blog_generator_layout(size)
        w = initializers.Normal(wscale)
        chans = (ch, ch // 2, ch // 4, out_ch)
        with self.init_scope():
            self.l0 = L.Linear(z_dim, ch * self.bottom ** 2, initialW=w)
            self.bn0 = L.BatchNormalization(ch * self.bottom ** 2)
            self.ups = chainer.ChainList(*[
                Deconv(a, b, 4, 2, p, initialW=w)
                for a, b, p in zip(chans[:-1], chans[1:], pads)])
            self.bns = chainer.ChainList(*[
                L.BatchNormalization(c) for c in chans[1:-1]])

    def make_hidden(self, n):
        return grandom.uniform(self.device, (n, self.z_dim)) * 2 - 1

    def sample_z(self, rng, n):
        """n latents (numpy float32) ~ U(-1, 1) from ``rng``."""
        return rng.uniform(-1, 1, (n, self.z_dim)).astype(numpy.float32)

    def forward(self, z):
        return _upsample(self, self.bn0(F.relu(self.l0(z))))


class BlogConvDiscriminator(_ConvDiscriminatorHead):
    """The blog's animeface discriminator.

    x (N, in_ch, size, size) -> Gaussian noise (``input_noise``, training
    only) -> convolutions 32-64-128-256 (4 x 4, stride 2, pad 1), each
    followed by batch norm and ELU -> features f (N, 256 (size/16)^2) ->
    [minibatch discrimination] -> dense -> one logit (N,).  Every weight
    starts N(0, wscale^2); ``minibatch_discrimination`` as in
    :class:`DCGANDiscriminator`.  ``fast``: the faster CPU convolutions of
    :mod:`gan.fast.conv` (same results, same parameters); False: Chainer's
    links.
    """

    CHANNELS = (32, 64, 128, 256)

    def __init__(self, size=96, in_ch=3, wscale=0.001, input_noise=0.3,
                 minibatch_discrimination=None, fast=False):
        super().__init__()
        Conv = fast_conv.Convolution2D if fast else L.Convolution2D
        if size % 16:
            raise ValueError('the blog networks need an image size divisible '
                             'by 16, got {}'.format(size))
        self.size, self.fast = size, bool(fast)
        w = initializers.Normal(wscale)
        self.feature_size = self.CHANNELS[-1] * (size // 16) ** 2
        with self.init_scope():
            self.noise = GaussianNoise(input_noise)
            chans = (in_ch,) + self.CHANNELS
            self.convs = chainer.ChainList(*[
                Conv(a, b, 4, 2, 1, initialW=w)
                for a, b in zip(chans[:-1], chans[1:])])
            self.bns = chainer.ChainList(*[
                L.BatchNormalization(c) for c in self.CHANNELS])
            mbd = minibatch_discrimination
            if mbd and mbd.get('form', 'blog') == 'blog':
                mbd = dict(mbd)
                mbd.setdefault('initialT', initializers.Normal(wscale))
            self._add_head(mbd, w)

    def features(self, x):
        """The last ELU, flattened: (N, 256 (size/16)^2)."""
        h = self.noise(x)
        for conv, bn in zip(self.convs, self.bns):
            h = fast_bn.batch_norm_act(bn, conv(h), 'elu', fast=self.fast)
        return F.reshape(h, (h.shape[0], -1))



class MLPDiscriminator(chainer.Chain):
    """The authors' permutation-invariant MNIST discriminator / classifier.

    x (N, 784) in [0, 1] -> Gaussian noise (0.3) -> dense 1000-500-250-250-250
    with ReLU and Gaussian noise (0.5) after each -> dense K logits.

    With ``weight_norm`` (default) every dense layer is weight-normalized;
    the hidden layers keep their scale fixed after the data-dependent init
    and the output layer learns it, as in the authors' code.  Without it,
    plain :class:`chainer.links.Linear` layers (the blog's choice).
    The features used by feature matching are the last hidden layer
    (after ReLU, before its noise): (N, 250).

    With ``fast`` (and weight norm, without minibatch discrimination) a
    pass is one graph node (:func:`gan.fast.mlp.fused_mlp_discriminator`,
    same results for the same noise) and large noise draws are split over
    two threads (:mod:`gan.fast.noise`).
    """

    def __init__(self, in_size=784, hidden=(1000, 500, 250, 250, 250),
                 n_classes=10, input_noise=0.3, hidden_noise=0.5,
                 weight_norm=True, minibatch_discrimination=None,
                 fast=False):
        super().__init__()
        self.weight_norm = weight_norm
        self.fast = bool(fast)
        self._about = dict(hidden=list(hidden), activation='relu',
                           batch_norm=0, input_noise=input_noise,
                           hidden_noise=hidden_noise,
                           noise_at='after the activation',
                           init='weight norm, V ~ N(0, 0.1^2), data-'
                           'dependent scale' if weight_norm
                           else 'lecun-normal', weight_norm=weight_norm,
                           minibatch_discrimination=minibatch_discrimination
                           or None)
        sizes = (in_size,) + tuple(hidden)
        with self.init_scope():
            self.noise_in = GaussianNoise(input_noise, fast=fast)
            self.hidden = chainer.ChainList()
            self.noises = chainer.ChainList()
            for a, b in zip(sizes[:-1], sizes[1:]):
                self.hidden.add_link(
                    WeightNormLinear(a, b, train_scale=False, fast=fast)
                    if weight_norm else L.Linear(a, b))
                self.noises.add_link(GaussianNoise(hidden_noise, fast=fast))
            n = sizes[-1]
            if minibatch_discrimination:
                self.mbd = MinibatchDiscrimination(
                    n, **minibatch_discrimination)
                n += self.mbd.num_kernels
            else:
                self.mbd = None
            self.out = (WeightNormLinear(n, n_classes, train_scale=True,
                                         fast=fast)
                        if weight_norm else L.Linear(n, n_classes))

    def describe(self):
        """The resolved network as a dict (for options.json)."""
        return dict(self._about)

    def noise_layers(self):
        return [self.noise_in] + list(self.noises)

    def normal(self, where, shape, dtype):
        """Standard normal numbers drawn the way this network's noise is."""
        return self.noise_in.normal(where, shape, dtype)

    def _fusable(self):
        return (self.fast and self.weight_norm and self.mbd is None
                and not getattr(chainer.config, 'weight_norm_init', False))

    def _draw(self, j, shape, where, dtype):
        return self.noise_layers()[j].draw(shape, where, dtype)

    def _forward_fused(self, x, features_only):
        p = fast_mlp.param
        if x.ndim > 2:
            x = F.reshape(x, (x.shape[0], -1))
        hidden = [(p(l.V), p(l.b)) for l in self.hidden]
        out = (p(self.out.V), p(self.out.g), p(self.out.b))
        sigmas = [n.sigma for n in self.noise_layers()]
        return fast_mlp.fused_mlp_discriminator(
            x, hidden, out, [l.g for l in self.hidden], sigmas, self._draw,
            features_only=features_only)

    def forward(self, x, return_features=False, features_only=False):
        if self._fusable():
            res = self._forward_fused(x, features_only)
            if features_only:
                return res
            return res if return_features else res[0]
        h = self.noise_in(x)
        feat = None
        last = len(self.hidden) - 1
        for i, (layer, noise) in enumerate(zip(self.hidden, self.noises)):
            feat = F.relu(layer(h))
            if features_only and i == last:
                return feat  # the last noise would be thrown away
            h = noise(feat)
        if self.mbd is not None:
            h = self.mbd(h)
        logits = self.out(h)
        return (logits, feat) if return_features else logits

    def features(self, x):
        return self.forward(x, features_only=True)


def _dense_init(init, fan_in, fan_out):
    """The initializer of a generator dense layer's weights by name."""
    if init == 'glorot':
        return initializers.GlorotUniform()
    if init == 'pytorch':
        return initializers.Uniform(1 / math.sqrt(fan_in))
    return None  # Chainer's default, LeCun-normal


def _direction_init(init):
    """The initializer of the weight-normalized output layer's V by name."""
    return {'glorot': initializers.GlorotUniform(),
            'lecun': initializers.Normal(0.05),
            'pytorch': initializers.Normal(0.1)}[init]


class MLPGenerator(chainer.Chain):
    """The authors' MNIST generator.

    z (N, 100) ~ U(0, 1) -> dense 500 + batch norm (no scale) + softplus ->
    dense 500 + batch norm + softplus -> weight-normalized dense 784 +
    sigmoid: (N, 784) in (0, 1).  Batch norm eps is Chainer's default 2e-5:
    the authors' 1e-6 is below cuDNN's minimum (1e-5), and either is
    negligible next to the variances it is added to.

    With ``fast``, a training-mode pass is one graph node
    (:func:`gan.fast.mlp.fused_mlp_generator`, same results).
    """

    INITS = ('glorot', 'lecun', 'pytorch')

    def __init__(self, z_dim=100, hidden=(500, 500), out_size=784,
                 init='glorot', fast=False):
        super().__init__()
        if init not in self.INITS:
            raise ValueError('init must be one of {}'.format(self.INITS))
        self.z_dim = z_dim
        self.fast = bool(fast)
        self._about = dict(z_dim=z_dim, z='U(0, 1)', hidden=list(hidden),
                           activation='softplus', batch_norm=len(hidden),
                           output='weight-normed dense, sigmoid', init=init)
        sizes = (z_dim,) + tuple(hidden)
        # 'glorot': Glorot-uniform weights, Lasagne's default in the authors'
        # code.  'lecun': Chainer's LeCun-normal, and N(0, 0.05^2) for the
        # output directions.  'pytorch': PyTorch's Linear default, U(+-1 /
        # sqrt(fan_in)), and N(0, 0.1^2) for the output directions.  Batch
        # norm (or weight norm) makes the outputs independent of the
        # weights' scale, but Adam's relative step is lr / |W|: LeCun's
        # first layer is 1.7x larger than Glorot's and learns slower,
        # PyTorch's second layer 1.7x smaller and learns faster.
        with self.init_scope():
            self.lins = chainer.ChainList(*[
                L.Linear(a, b, nobias=True, initialW=_dense_init(init, a, b))
                for a, b in zip(sizes[:-1], sizes[1:])])
            self.bns = chainer.ChainList(*[
                L.BatchNormalization(b, use_gamma=False) for b in hidden])
            self.out = WeightNormLinear(
                sizes[-1], out_size, train_scale=True,
                initialV=_direction_init(init), fast=fast)

    def describe(self):
        """The resolved network as a dict (for options.json)."""
        return dict(self._about)

    def make_hidden(self, n):
        return grandom.uniform(self.device, (n, self.z_dim))

    def _fusable(self):
        return (self.fast and chainer.config.train
                and not chainer.config.in_recomputing
                and not getattr(chainer.config, 'weight_norm_init', False)
                and len({(b.eps, b.decay) for b in self.bns}) == 1
                and all(isinstance(b, L.BatchNormalization)  # not multi-node
                        for b in self.bns))

    def forward(self, z):
        if self._fusable():  # one graph node (gan/fast/mlp.py)
            p = fast_mlp.param
            bn = self.bns[0]
            hidden = [(p(lin.W), p(b.beta))
                      for lin, b in zip(self.lins, self.bns)]
            out = (p(self.out.V), p(self.out.g), p(self.out.b))
            stats = [(b.avg_mean, b.avg_var) for b in self.bns]
            return fast_mlp.fused_mlp_generator(z, hidden, out, stats,
                                                bn.eps, bn.decay)
        h = z
        for lin, bn in zip(self.lins, self.bns):
            h = F.softplus(bn(lin(h)))
        return F.sigmoid(self.out(h))


def as_numpy(x):
    x = x.array if isinstance(x, chainer.Variable) else x
    return chainer.backend.CpuDevice().send(x)
