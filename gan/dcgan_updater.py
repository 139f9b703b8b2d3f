"""The DCGAN updater with the paper's generator-side options.

One step, top to bottom: draw z, generate a fake batch, run the
discriminator on the real and the fake batch (minibatch discrimination, if
the discriminator has it, sees each batch on its own), then

* generator loss, by ``feature_matching``:

  - ``'none'``:  ``-mean log D(G(z))`` (non-saturating GAN loss);
  - ``'paper'``: ``fm_weight * || E f(x) - E f(G(z)) ||^2 / A`` -- the paper's
    feature matching *replaces* the adversarial objective (section 3.1);
  - ``'blog'``:  ``-mean log D(G(z)) + fm_weight * mean_i ||f(x_i) -
    f(G(z_i))||^2 / A`` -- the blog adds a per-sample MSE between paired
    real and fake features to the adversarial loss;

  with ``f`` the discriminator's last hidden layer (before minibatch
  discrimination).  What reaches G: with ``none`` and ``blog`` G gets the
  gradient of D's output, so minibatch discrimination shapes it (``blog``
  adds the feature term); with ``paper`` G gets only the feature term,
  taken before minibatch discrimination, so that layer never reaches G;
* discriminator loss: ``-mean log D(x) - mean log(1 - D(G(z)))``.

The first discriminator pass of a run (on the real batch) is also the
data-dependent init of the authors' minibatch discrimination
(:class:`gan.links.MinibatchDiscrimination`).

The order of the two updates (``order``):

* ``'g-then-d'`` (default): both losses use the same forward pass, so the
  generator is updated against the discriminator that scored this batch;
  the fake batch is then cut from the generator's graph and the
  discriminator is updated on it.  Two D passes and one G pass a step.
* ``'d-then-g'`` (the blog's): the discriminator is updated on the real
  batch and a generated one; the generator is then updated on a fresh
  batch against the updated discriminator, with the real features of the
  discriminator's pass (before its update) as the feature-matching target.
  Three D passes and two G passes a step.

``gen_steps`` > 1 (the authors' CIFAR-10 code trains G three times per D
update): after the step above, G is updated ``gen_steps - 1`` more times,
each on a fresh latent batch against the current D, with the real
features of the step's D pass as the feature-matching target.
``gen/loss`` (and ``gen/loss_fm``) report the mean over the G updates.
"""
import chainer
from chainer import training

from gan import datasets
from gan import losses
from gan import multinode

FEATURE_MATCHING = losses.FEATURE_MATCHING
ORDERS = ('g-then-d', 'd-then-g')


class DCGANUpdater(training.updaters.StandardUpdater):
    """Updates ``optimizer['gen']`` and ``optimizer['dis']`` once per batch.

    Args:
        iterator: yields batches of uint8 images (C, H, W); they are turned
            into float32 in [-1, 1] by ``converter``.
        optimizer: dict with ``'gen'`` (a generator with ``make_hidden(n)``
            and ``forward(z)``) and ``'dis'`` (a discriminator whose
            ``forward(x, return_features=True)`` gives logits (N,) and
            features (N, A)).
        feature_matching: one of :data:`FEATURE_MATCHING`.
        fm_weight (float): weight of the feature-matching term.
        order: one of :data:`ORDERS` (see the module's text).
        gen_steps (int): G updates per D update (see the module's text).

    Reports ``gen/loss``, ``dis/loss`` and, with feature matching,
    ``gen/loss_fm``; also ``dis/real`` and ``dis/fake``, the mean of
    D(x) and D(G(z)) (a quick sign of which side is winning).
    """

    def __init__(self, iterator, optimizer, feature_matching='none',
                 fm_weight=1.0, device=None,
                 converter=datasets.uint8_converter, comm=None,
                 order='g-then-d', gen_steps=1):
        if int(gen_steps) < 1:
            raise ValueError('gen_steps must be at least 1, got {}'.format(
                gen_steps))
        self.gen_steps = int(gen_steps)
        if order not in ORDERS:
            raise ValueError('order must be one of {}, got {!r}'.format(
                ORDERS, order))
        self.order = order
        if feature_matching not in FEATURE_MATCHING:
            raise ValueError('feature_matching must be one of {}, got '
                             '{!r}'.format(FEATURE_MATCHING, feature_matching))
        super().__init__(iterator, optimizer, converter=converter,
                         device=device)
        self.feature_matching = feature_matching
        self.fm_weight = float(fm_weight)
        # ChainerMN communicator: the batch is this rank's part of the
        # global batch (gan.multinode)
        self.comm = comm

    def generator_loss(self, d_fake, f_real, f_fake):
        """(loss, feature-matching term or None) for the chosen form."""
        if self.feature_matching == 'paper':
            fm = (multinode.feature_matching(self.comm, f_real, f_fake)
                  if self.comm is not None else losses.feature_matching(f_real, f_fake))
            return self.fm_weight * fm, fm
        adversarial = losses.gan_generator_loss(d_fake)
        if self.feature_matching == 'blog':
            fm = losses.feature_matching_paired(f_real, f_fake)
            return adversarial + self.fm_weight * fm, fm
        return adversarial, None

    def update_core(self):
        gen_opt = self.get_optimizer('gen')
        dis_opt = self.get_optimizer('dis')
        gen, dis = gen_opt.target, dis_opt.target

        batch = self.get_iterator('main').next()
        x_real = self.converter(batch, self.device)
        n = x_real.shape[0]
        if self.order == 'd-then-g':
            d_real, d_fake, loss_dis, f_real = self._update_dis_first(
                gen, dis, dis_opt, x_real, n)
            x_fake = gen(self._hidden(gen, n))
            d_fake_g, f_fake = dis(x_fake, return_features=True)
            loss_gen, fm = self._update_gen(gen, gen_opt, d_fake_g,
                                            f_real, f_fake)
        else:
            x_fake = gen(self._hidden(gen, n))
            d_real, f_real = dis(x_real, return_features=True)
            d_fake, f_fake = dis(x_fake, return_features=True)
            loss_gen, fm = self._update_gen(gen, gen_opt, d_fake, f_real,
                                            f_fake)
            # The generator's gradient also reached D's parameters: drop
            # it, and stop D's loss at the fake images so G is not touched
            # again.
            x_fake.unchain_backward()
            loss_dis = losses.gan_discriminator_loss(d_real, d_fake)
            dis.cleargrads()
            loss_dis.backward()
            dis_opt.update()
            f_real = f_real.array
        if self.gen_steps > 1:
            loss_gen, fm = self._more_gen_steps(gen, dis, gen_opt, f_real,
                                                n, loss_gen, fm)

        xp = chainer.backend.get_array_module(d_real.array)
        report = {'gen/loss': loss_gen, 'dis/loss': loss_dis,
                  'dis/real': xp.mean(_sigmoid(xp, d_real.array)),
                  'dis/fake': xp.mean(_sigmoid(xp, d_fake.array))}
        if fm is not None:
            report['gen/loss_fm'] = fm
        chainer.report(multinode.global_report(self.comm, report))

    def _more_gen_steps(self, gen, dis, gen_opt, f_real, n, loss_gen, fm):
        """The G updates after the first: (mean G loss, mean feature
        term or None) over all of them."""
        xp = chainer.backend.get_array_module(f_real)
        total = loss_gen.array.copy()
        total_fm = None if fm is None else fm.array.copy()
        for _ in range(self.gen_steps - 1):
            x_fake = gen(self._hidden(gen, n))
            d_fake, f_fake = dis(x_fake, return_features=True)
            loss, term = self._update_gen(gen, gen_opt, d_fake, f_real,
                                          f_fake)
            total = total + loss.array
            if term is not None:
                total_fm = total_fm + term.array
        k = xp.float32(self.gen_steps)
        return total / k, (None if total_fm is None else total_fm / k)

    def _hidden(self, gen, n):
        return multinode.draw_local(self.comm, gen.make_hidden, n)

    def _update_gen(self, gen, gen_opt, d_fake, f_real, f_fake):
        loss_gen, fm = self.generator_loss(d_fake, f_real, f_fake)
        gen.cleargrads()
        loss_gen.backward()
        gen_opt.update()
        return loss_gen, fm

    def _update_dis_first(self, gen, dis, dis_opt, x_real, n):
        """D's update of the blog's order, on the real batch and a
        generated one (no graph into G): (D(x), D(G(z)), loss, the real
        features as a target array)."""
        with chainer.no_backprop_mode():
            x_fake = gen(self._hidden(gen, n)).array
        d_real, f_real = dis(x_real, return_features=True)
        d_fake = dis(x_fake)
        loss_dis = losses.gan_discriminator_loss(d_real, d_fake)
        dis.cleargrads()
        loss_dis.backward()
        dis_opt.update()
        return d_real, d_fake, loss_dis, f_real.array


def _sigmoid(xp, a):
    return 1.0 / (1.0 + xp.exp(-a))
