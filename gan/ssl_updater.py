"""The semi-supervised GAN update (Salimans et al. 2016, section 5).

One iteration:

1. Discriminator: a labeled batch (x_l, y), an unlabeled batch x_u and a
   generated batch x_g = G(z)::

       L_D = CE(l(x_l), y)
             + w * [ -0.5 mean log D(x_u) - 0.5 mean log(1 - D(x_g)) ]
             (+ vat_weight * VAT(x_u))

   with the virtual-class D of :mod:`gan.losses`.
2. Generator, on a fresh z and a second, independent unlabeled batch x_u2:
   feature matching ``|| mean f(x_u2) - mean f(G(z)) ||^2 / A`` (``paper``,
   the paper's form), or the blog's ``-log D(G(z)) + MSE(f(x), f(G(z)))``
   (``blog``), or the plain non-saturating loss (``none``): the names of
   ``--feature-matching`` in both training scripts.

The *fused* path (default) feeds the concatenation of the three D batches
through D once.  That is the same computation as three separate passes
because the discriminator has no batch statistics (weight norm and Gaussian
noise act per example; minibatch discrimination and batch norm do not, so
with either the batches go through D one at a time, as in the blog's
code).  The G batch is generated without building a graph
for the D step, and the real features of the G step are computed without
one, since no gradient flows into them; in the generator step the
discriminator's fast nodes (:mod:`gan.fast.mlp`) take its parameters as
constants (their gradients would be thrown away).
"""
import chainer
import chainer.functions as F
from chainer import training

from gan import links, losses, multinode
from gan.fast import mlp as fast_mlp

FEATURE_MATCHING = losses.FEATURE_MATCHING
FM_TARGETS = ('unlabeled', 'labeled')
VAT_NOISE = ('same', 'independent', 'off')


def sample_std(x):
    """The standard deviation of each value over the batch, averaged over
    the values (a 0-dim array on x's device)."""
    return x.reshape(len(x), -1).std(axis=0).mean()


class SemiSupervisedGANUpdater(training.updaters.StandardUpdater):
    """Iterators: ``main`` (unlabeled, defines the epoch), ``labeled``
    (x, y), ``unlabeled2`` (the generator's target batch).  Optimizers:
    ``dis``, ``gen``.

    Args:
        feature_matching: 'paper' (batch means), 'blog' (-log D(G(z)) plus
            the per-sample MSE) or 'none' (:data:`gan.losses.FEATURE_MATCHING`).
        fm_target: 'unlabeled' (the authors': a second unlabeled batch) or
            'labeled' (the blog: the labeled batch).
        unlabeled_weight (float): w above.
        vat_weight, vat_eps: virtual adversarial training on the unlabeled
            batch, added to L_D (0 disables it); the perturbation norm
            (the VAT paper's: 2.0).
        vat_noise: how VAT treats D's Gaussian noise.  'same' (default):
            the clean and the perturbed passes share one noise draw, so
            the term measures the smoothness of one draw of the network
            that the other losses train.  'independent': each pass draws
            its own (the term is then mostly the noise's effect).  'off':
            VAT on the noise-free D, which no other loss trains.
        vat_xi (float): the power iteration's finite-difference step
            (see :func:`gan.losses.virtual_adversarial_loss`).
        n_fake (int): generated examples per step (default: the unlabeled
            batch size).
        fake_term: 'log-one-minus-d' (D minimises -log(1 - D(G(z))), the
            authors') or 'log-d' (+log D(G(z)), the blog's code of
            2016-12-23) (:data:`gan.losses.FAKE_TERMS`).
        fast (bool): one D pass over the concatenated batches.
    """

    def __init__(self, iterators, optimizers, device=None,
                 feature_matching='paper', fm_target='unlabeled',
                 unlabeled_weight=1.0, vat_weight=0.0, vat_eps=0.1,
                 vat_noise='same', vat_xi=1e-2, n_fake=None, fast=True,
                 comm=None, fake_term='log-one-minus-d'):
        if feature_matching not in FEATURE_MATCHING:
            raise ValueError('feature_matching must be one of {}'.format(
                FEATURE_MATCHING))
        if fm_target not in FM_TARGETS:
            raise ValueError('fm_target must be one of {}'.format(
                FM_TARGETS))
        super().__init__(iterators, optimizers, device=device,
                         converter=lambda batch, device=None: batch)
        self.dis = optimizers['dis'].target
        self.gen = optimizers['gen'].target
        if fake_term not in losses.FAKE_TERMS:
            raise ValueError('fake_term must be one of {}'.format(
                losses.FAKE_TERMS))
        self.fake_term = fake_term
        if fast and (getattr(self.dis, 'mbd', None) is not None
                     or getattr(self.dis, 'batch_statistics', False)):
            fast = False  # minibatch discrimination or batch norm couples
            # the examples of a batch
        self.fast = fast
        self.feature_matching = feature_matching
        self.fm_target = fm_target
        self.unlabeled_weight = float(unlabeled_weight)
        self.vat_weight, self.vat_eps = float(vat_weight), float(vat_eps)
        if vat_noise not in VAT_NOISE:
            raise ValueError('vat_noise must be one of {}'.format(VAT_NOISE))
        self.vat_noise = vat_noise
        self.vat_xi = float(vat_xi)
        self.n_fake = n_fake
        # ChainerMN communicator: the batches are this rank's parts of the
        # global batches (gan.multinode)
        self.comm = comm

    # -- the two halves, kept separate so tests can drive them ------------
    def discriminator_loss(self, x_l, y_l, x_u, x_g):
        dis = self.dis
        n_l, n_u = len(x_l), len(x_u)
        if self.fast:
            xp = dis.xp
            with multinode.noise_segments(dis, (n_l, n_u, len(x_g))):
                logits = dis(xp.concatenate((x_l, x_u, x_g), axis=0))
            l_lab, l_unl, l_gen = F.split_axis(logits, (n_l, n_l + n_u),
                                               axis=0)
        else:
            l_lab, l_unl, l_gen = dis(x_l), dis(x_u), dis(x_g)
        loss_lab = losses.supervised_loss(l_lab, y_l)
        loss_unl = losses.virtual_class_discriminator_loss(
            l_unl, l_gen, fake_term=self.fake_term)
        loss = loss_lab + self.unlabeled_weight * loss_unl
        report = {'loss_lab': loss_lab, 'loss_unl': loss_unl,
                  'train_acc': F.accuracy(l_lab, y_l)}
        if self.vat_weight:
            loss_vat = self.vat_loss(x_u, l_unl)
            loss = loss + self.vat_weight * loss_vat
            report['loss_vat'] = loss_vat
        return loss, report

    def vat_loss(self, x_u, l_unl):
        """The VAT term on the unlabeled batch (see ``vat_noise``)."""
        dis = self.dis
        # under a communicator every rank draws the directions of the
        # global batch and takes its rows (as one process draws them)
        kw = dict(eps=self.vat_eps, xi=self.vat_xi,
                  normal=multinode.global_normal(
                      self.comm, getattr(dis, 'normal', None)))
        if self.vat_noise == 'independent':
            return losses.virtual_adversarial_loss(dis, x_u, logits=l_unl,
                                                   **kw)
        if self.vat_noise == 'off':
            with chainer.using_config('train', False):
                return losses.virtual_adversarial_loss(dis, x_u, **kw)
        with links.frozen_noise(dis.noise_layers()):
            return losses.virtual_adversarial_loss(dis, x_u, **kw)

    def generator_loss(self, x_target, x_g):
        dis = self.dis
        report = {}
        if self.feature_matching == 'none':
            loss = losses.virtual_class_generator_loss(dis(x_g))
        else:
            with chainer.no_backprop_mode():
                f_real = dis.features(x_target)
            if self.feature_matching == 'paper':
                f_fake = dis.features(x_g)
                loss = (losses.feature_matching(f_real, f_fake)
                        if self.comm is None else
                        multinode.feature_matching(self.comm, f_real, f_fake))
            else:  # the blog: adversarial loss + paired MSE
                logits, f_fake = dis(x_g, return_features=True)
                adv = losses.virtual_class_generator_loss(logits)
                fm = losses.feature_matching_paired(f_real, f_fake)
                loss = adv + fm
                report['loss_adv'] = adv
        return loss, report

    def update_core(self):
        x_u, = self.get_iterator('main').next()
        x_l, y_l = self.get_iterator('labeled').next()
        x_u2, = self.get_iterator('unlabeled2').next()
        opt_d, opt_g = self.get_optimizer('dis'), self.get_optimizer('gen')
        n_fake = self.n_fake or len(x_u)

        with chainer.no_backprop_mode():
            x_g = self.gen(self._hidden(n_fake)).array
        loss_d, rep_d = self.discriminator_loss(x_l, y_l, x_u, x_g)
        self.dis.cleargrads()
        loss_d.backward()
        opt_d.update()

        x_g = self.gen(self._hidden(n_fake))
        x_target = x_u2 if self.fm_target == 'unlabeled' else x_l
        if self.feature_matching == 'blog':
            x_target = x_target[:n_fake]
        with fast_mlp.constant_parameters():  # no D gradients needed
            loss_g, rep_g = self.generator_loss(x_target, x_g)
        self.gen.cleargrads()
        loss_g.backward()
        opt_g.update()

        report = {'dis/' + k: v for k, v in rep_d.items()}
        # how much the generated batch varies: about 0 once the generator
        # has collapsed to one output (see gan.extensions.CollapseWarning)
        report['gen/sample_std'] = sample_std(x_g.array)
        report.update({'gen/' + k: v for k, v in rep_g.items()})
        report['dis/loss'] = loss_d
        report['gen/loss'] = loss_g
        chainer.report(multinode.global_report(self.comm, report))

    def _hidden(self, n):
        return multinode.draw_local(self.comm, self.gen.make_hidden, n)
