"""The MLP pair of the blog's semi-supervised MNIST code (musyoku,
improved-gan, ``train_mnist/model.py``, version of 2017-01-29).

Images are float32 (N, 784) in [-1, 1]: the generator ends in tanh and the
real images are scaled to match (``BlogMLPGenerator.value_range``).

Both networks use Glorot-normal weights (scale 1) and zero biases, as the
blog's ``Sequential(weight_initializer="GlorotNormal", weight_init_std=1)``.
"""
import chainer
import chainer.functions as F
import chainer.links as L
from chainer import initializers

from gan import random as grandom
from gan.fast import mlp as fast_mlp
from gan.links import GaussianNoise, WeightNormLinear


def _linear(layer, x):
    """``layer(x)`` for a plain :class:`chainer.links.Linear`, with its
    parameters as constants inside
    :func:`gan.fast.mlp.constant_parameters` (the generator step needs no
    gradient for the discriminator's)."""
    p = fast_mlp.param
    b = None if layer.b is None else p(layer.b)
    return F.linear(x, p(layer.W), b)


class BlogMLPDiscriminator(chainer.Chain):
    """The blog's discriminator / classifier.

    x (N, 784) -> Gaussian noise (0.3) -> for each of the dense layers 1000,
    500, 250: dense, Gaussian noise (0.5), softplus -> dense K logits.  The
    noise is added to the pre-activations (before the nonlinearity), unlike
    the authors' network (:class:`gan.nets.MLPDiscriminator`), which adds it
    after the ReLU.  Noise acts only in training mode.

    The features of feature matching are the last hidden layer's output
    (after its noise and softplus), the blog's ``activations[-1]``: (N, 250).

    Args:
        weight_norm (bool): weight-normalized dense layers (hidden layers
            with the scale fixed after the data-dependent init, the output
            layer learning it, as the authors' network does).  The blog has
            none (default).
    """

    def __init__(self, in_size=784, hidden=(1000, 500, 250), n_classes=10,
                 input_noise=0.3, hidden_noise=0.5, weight_norm=False):
        super().__init__()
        self.weight_norm = weight_norm
        self.mbd = None  # no minibatch discrimination in the blog's SSL net
        sizes = (in_size,) + tuple(hidden)

        def dense(a, b, hidden_layer):
            if weight_norm:
                return WeightNormLinear(a, b, train_scale=not hidden_layer,
                                        initialV=initializers.GlorotNormal())
            return L.Linear(a, b, initialW=initializers.GlorotNormal())

        with self.init_scope():
            self.noise_in = GaussianNoise(input_noise)
            self.hidden = chainer.ChainList(*[
                dense(a, b, True) for a, b in zip(sizes[:-1], sizes[1:])])
            self.noises = chainer.ChainList(*[
                GaussianNoise(hidden_noise) for _ in hidden])
            self.out = dense(sizes[-1], n_classes, False)

    def noise_layers(self):
        return [self.noise_in] + list(self.noises)

    def _dense(self, layer, x):
        return layer(x) if self.weight_norm else _linear(layer, x)

    def forward(self, x, return_features=False, features_only=False):
        if x.ndim > 2:
            x = F.reshape(x, (x.shape[0], -1))
        h = self.noise_in(x)
        for layer, noise in zip(self.hidden, self.noises):
            h = F.softplus(noise(self._dense(layer, h)))
        if features_only:
            return h
        logits = self._dense(self.out, h)
        return (logits, h) if return_features else logits

    def features(self, x):
        return self.forward(x, features_only=True)


class BlogMLPGenerator(chainer.Chain):
    """The blog's generator.

    z (N, 50) ~ U(-1, 1) -> dense 500, batch norm, ReLU -> dense 500, batch
    norm, ReLU -> dense 784, tanh: (N, 784) in (-1, 1).  The dense layers
    keep their biases and batch norm has both scale and shift (Chainer's
    defaults, as in the blog).
    """

    value_range = (-1.0, 1.0)

    def __init__(self, z_dim=50, hidden=(500, 500), out_size=784):
        super().__init__()
        self.z_dim = z_dim
        sizes = (z_dim,) + tuple(hidden)
        glorot = initializers.GlorotNormal
        with self.init_scope():
            self.lins = chainer.ChainList(*[
                L.Linear(a, b, initialW=glorot())
                for a, b in zip(sizes[:-1], sizes[1:])])
            self.bns = chainer.ChainList(*[
                L.BatchNormalization(b) for b in hidden])
            self.out = L.Linear(sizes[-1], out_size, initialW=glorot())

    def make_hidden(self, n):
        return 2 * grandom.uniform(self.device, (n, self.z_dim)) - 1

    def forward(self, z):
        h = z
        for lin, bn in zip(self.lins, self.bns):
            h = F.relu(bn(lin(h)))
        return F.tanh(self.out(h))
