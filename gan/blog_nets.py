"""The MLP pair of the blog's semi-supervised MNIST code (musyoku,
improved-gan, ``train_mnist/model.py``), in the two versions the presets
name:

* the post's day (commit 43eca16, 2016-12-23): D dense 1000-500-500-250,
  ELU, batch norm after the first three activations, no noise; G z 10 ~
  U(-1, 1); every weight N(0, 0.05^2);
* 2017-01-29: D dense 1000-500-250, Gaussian noise (0.3 on the input, 0.5
  before each softplus); G z 50; Glorot-normal weights.

Images are float32 (N, 784) in [-1, 1]: the generator ends in tanh and the
real images are scaled to match (``BlogMLPGenerator.value_range``).
Biases start at zero.
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


# the initial weights of the blog's networks: glorot-normal = Chainer's
# GlorotNormal (scale 1, the 2017 code); normal-S = N(0, S^2) (0.05 on the
# post's day, 0.035 from 2016-12-25)
INITS = ('glorot-normal', 'normal-0.05', 'normal-0.035')
# where the blog's discriminator adds its hidden noise: before the
# activation (2017) or after it (2016-12-24 and 25, and the authors)
NOISE_AT = ('before', 'after')
# the hidden nonlinearity of the blog's discriminator
ACTIVATIONS = {'softplus': F.softplus, 'elu': F.elu}


def initializer(name):
    """The Chainer initializer of an :data:`INITS` name."""
    if name not in INITS:
        raise ValueError('init must be one of {}'.format(INITS))
    if name == 'glorot-normal':
        return initializers.GlorotNormal()
    return initializers.Normal(float(name.split('-')[1]))


class BlogMLPDiscriminator(chainer.Chain):
    """The blog's discriminator / classifier.

    x (N, 784) -> Gaussian noise (``input_noise``) -> for each dense layer
    of ``hidden``: dense, Gaussian noise (``hidden_noise``), ``activation``,
    and batch norm for the first ``batch_norm`` layers -> dense K logits.
    With ``noise_at='before'`` (default) the noise is added to the
    pre-activations, as in the 2017 code; with ``'after'`` to the
    activations, as on 2016-12-25 and in the authors' network
    (:class:`gan.nets.MLPDiscriminator`).  Noise acts only in training
    mode.

    The defaults are the 2017 code; the post's day is ``hidden=(1000, 500,
    500, 250), activation='elu', batch_norm=3, input_noise=0,
    hidden_noise=0, init='normal-0.05'``; on 2016-12-25 (6a042a2) it is
    ``activation='elu', noise_at='after', init='normal-0.035'`` with the
    default widths and noise.

    The features of feature matching are the last hidden layer's output
    (after its noise, activation and batch norm, if any), the blog's
    ``activations[-1]``.

    Args:
        weight_norm (bool): weight-normalized dense layers (hidden layers
            with the scale fixed after the data-dependent init, the output
            layer learning it, as the authors' network does).  The blog has
            none (default).
    """

    def __init__(self, in_size=784, hidden=(1000, 500, 250), n_classes=10,
                 input_noise=0.3, hidden_noise=0.5, weight_norm=False,
                 activation='softplus', batch_norm=0, init='glorot-normal',
                 noise_at='before'):
        super().__init__()
        if noise_at not in NOISE_AT:
            raise ValueError('noise_at must be one of {}'.format(NOISE_AT))
        self.noise_after = noise_at == 'after'
        if activation not in ACTIVATIONS:
            raise ValueError('activation must be one of {}'.format(
                tuple(ACTIVATIONS)))
        if not 0 <= batch_norm <= len(hidden):
            raise ValueError('batch_norm must be between 0 and the number of '
                             'hidden layers ({})'.format(len(hidden)))
        initializer(init)
        self.weight_norm = weight_norm
        self.activation = ACTIVATIONS[activation]
        self._about = dict(hidden=list(hidden), activation=activation,
                           batch_norm=batch_norm, input_noise=input_noise,
                           hidden_noise=hidden_noise,
                           noise_at=noise_at + ' the activation', init=init,
                           weight_norm=weight_norm)
        self.mbd = None  # no minibatch discrimination in the blog's SSL net
        sizes = (in_size,) + tuple(hidden)

        def dense(a, b, hidden_layer):
            if weight_norm:
                return WeightNormLinear(a, b, train_scale=not hidden_layer,
                                        initialV=initializer(init))
            return L.Linear(a, b, initialW=initializer(init))

        with self.init_scope():
            self.noise_in = GaussianNoise(input_noise)
            self.hidden = chainer.ChainList(*[
                dense(a, b, True) for a, b in zip(sizes[:-1], sizes[1:])])
            self.noises = chainer.ChainList(*[
                GaussianNoise(hidden_noise) for _ in hidden])
            self.bns = chainer.ChainList(*[
                L.BatchNormalization(b) for b in hidden[:batch_norm]])
            self.out = dense(sizes[-1], n_classes, False)

    def describe(self):
        """The resolved network as a dict (for options.json)."""
        return dict(self._about)

    @property
    def batch_statistics(self):
        """True when a pass normalizes with its batch's statistics: the
        examples of a batch are then coupled, and batches must be passed
        through one at a time."""
        return len(self.bns) > 0

    def noise_layers(self):
        return [self.noise_in] + list(self.noises)

    def _dense(self, layer, x):
        return layer(x) if self.weight_norm else _linear(layer, x)

    def forward(self, x, return_features=False, features_only=False):
        if x.ndim > 2:
            x = F.reshape(x, (x.shape[0], -1))
        h = self.noise_in(x)
        for i, (layer, noise) in enumerate(zip(self.hidden, self.noises)):
            if self.noise_after:
                h = noise(self.activation(self._dense(layer, h)))
            else:
                h = self.activation(noise(self._dense(layer, h)))
            if i < len(self.bns):
                h = self.bns[i](h)
        if features_only:
            return h
        logits = self._dense(self.out, h)
        return (logits, h) if return_features else logits

    def features(self, x):
        return self.forward(x, features_only=True)


class BlogMLPGenerator(chainer.Chain):
    """The blog's generator.

    z (N, ``z_dim``) ~ U(-1, 1) -> dense 500, batch norm, ReLU -> dense 500,
    batch norm, ReLU -> dense 784, tanh: (N, 784) in (-1, 1).  The dense
    layers keep their biases and batch norm has both scale and shift
    (Chainer's defaults, as in the blog).  The defaults are the 2017 code;
    the post's day is ``z_dim=10, init='normal-0.05'``, 2016-12-25
    ``init='normal-0.035'``.
    """

    value_range = (-1.0, 1.0)

    def __init__(self, z_dim=50, hidden=(500, 500), out_size=784,
                 init='glorot-normal'):
        super().__init__()
        self.z_dim = z_dim
        self._about = dict(z_dim=z_dim, z='U(-1, 1)', hidden=list(hidden),
                           activation='relu', batch_norm=len(hidden),
                           output='tanh', init=init)
        sizes = (z_dim,) + tuple(hidden)
        with self.init_scope():
            self.lins = chainer.ChainList(*[
                L.Linear(a, b, initialW=initializer(init))
                for a, b in zip(sizes[:-1], sizes[1:])])
            self.bns = chainer.ChainList(*[
                L.BatchNormalization(b) for b in hidden])
            self.out = L.Linear(sizes[-1], out_size,
                                initialW=initializer(init))

    def describe(self):
        """The resolved network as a dict (for options.json)."""
        return dict(self._about)

    def make_hidden(self, n):
        return 2 * grandom.uniform(self.device, (n, self.z_dim)) - 1

    def forward(self, z):
        h = z
        for lin, bn in zip(self.lins, self.bns):
            h = F.relu(bn(lin(h)))
        return F.tanh(self.out(h))
