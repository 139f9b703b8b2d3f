"""CPU fast paths: the computations of the plain Chainer links and
networks of :mod:`gan`, rewritten as fewer and larger numpy operations.
Each one gives the same results as its plain form (the noise draws: the
same distribution) and is checked against it by the tests.

* :mod:`gan.fast.mlp` -- the authors' MNIST discriminator and generator as
  one graph node each, a weight-normalized dense layer as one node, and
  the generator step's discriminator without parameter gradients;
* :mod:`gan.fast.conv` -- convolution and transposed convolution with the
  columns gathered directly in matrix layout, their input-gradient sums
  added in phases of the stride;
* :mod:`gan.fast.bn` -- batch norm in training fused with the ReLU or
  leaky ReLU after it (the DCGAN networks);
* :mod:`gan.fast.noise` -- large normal draws split over two threads.

They are chosen where the networks are built, by the constructor flag
``fast=True`` of :class:`gan.nets.MLPDiscriminator`,
:class:`gan.nets.MLPGenerator`, :class:`gan.nets.DCGANGenerator`,
:class:`gan.nets.DCGANDiscriminator`, :class:`gan.links.WeightNormLinear`
and :class:`gan.links.GaussianNoise`, and by ``fast=True`` of
:class:`gan.ssl_updater.SemiSupervisedGANUpdater`.  The library's default
is the plain form; the command lines choose the fast one (``train_ssl.py
--straightforward`` runs the plain one).
"""
