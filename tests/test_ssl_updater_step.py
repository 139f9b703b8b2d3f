"""One update of the semi-supervised GAN updater against a step computed
by hand.

The expected step is written with stock Chainer functions only (F.linear,
F.relu, F.batch_normalization, F.logsumexp, F.log_softmax, ...) from the
same batches, latents and noise: neither the fast MLP nodes of gan.fast,
the weight norm links nor gan.losses take part.  With SGD at learning rate 1 a
parameter moves by minus its gradient, so comparing parameters after one
``update()`` compares the gradients of both steps, and shows that both
optimizers stepped, that G's step saw the D that had just been updated,
which real batch feature matching aimed at and that G drew fresh latents.
"""
import numpy
import pytest

import chainer
import chainer.functions as F

from gan import links, nets
from gan import random as grandom
from gan import ssl_updater
from gan.fast import mlp as fast_mlp
from gan.iterators import ArrayIterator

HIDDEN = (30, 20, 10)
SIGMAS = (0.3, 0.5, 0.5, 0.5)   # input noise, then after each hidden layer
Z_DIM, G_HIDDEN = 8, (16, 16)
N_L, N_U, N_FAKE = 12, 12, 10   # N_FAKE < N_U: paired FM cuts the target
UNLABELED_WEIGHT = 0.7
VAT_WEIGHT, VAT_EPS, VAT_XI = 0.5, 0.3, 1.0
SEED = 11

# the generator-loss forms: batch means (paper), -log D + paired MSE (blog)
MEANS, PAIRED, NONE = 'paper', 'blog', 'none'
assert set(ssl_updater.FEATURE_MATCHING) == {MEANS, PAIRED, NONE}
# fast: the networks' gan.fast nodes and one fused D pass (train_ssl.py's
# default); fused: plain Chainer networks, one fused D pass; separate:
# plain networks and three D passes (train_ssl.py --no-fast)
PATHS = ('fast', 'fused', 'separate')


class Tape:
    """Noise source handing out consecutive rows of a fixed table."""

    def __init__(self, table):
        self.table, self.pos = table, 0

    def __call__(self, shape, xp, dtype):
        rows = self.table[self.pos:self.pos + shape[0]]
        self.pos += shape[0]
        assert rows.shape == tuple(shape), 'noise table too short'
        return rows.astype(dtype)


class Rows:
    """The expected computation's view of the same tables: each pass over
    a batch of n takes the next n rows of every noise layer it goes
    through (a features-only pass stops before the last layer's noise)."""

    def __init__(self, tables):
        self.tables, self.pos = tables, [0] * len(tables)

    def take(self, j, n):
        rows = self.tables[j][self.pos[j]:self.pos[j] + n]
        self.pos[j] += n
        return rows.astype(numpy.float32)

    def pass_noise(self, n, features_only=False):
        layers = len(self.tables) - (1 if features_only else 0)
        return [self.take(j, n) for j in range(layers)]


def weight_normalized(V, g):
    norm = F.sqrt(F.sum(V * V, axis=1))
    scale = F.broadcast_to(F.expand_dims(g / norm, 1), V.shape)
    return scale * V


def d_forward(P, g_hidden, x, noise, features_only=False):
    """The MLP discriminator by hand: (logits, features) or features."""
    h = x + SIGMAS[0] * noise[0]
    for i in range(len(HIDDEN)):
        W = weight_normalized(P['/hidden/{}/V'.format(i)], g_hidden[i])
        feat = F.relu(F.linear(h, W, P['/hidden/{}/b'.format(i)]))
        if features_only and i == len(HIDDEN) - 1:
            return feat
        h = feat + SIGMAS[i + 1] * noise[i + 1]
    W = weight_normalized(P['/out/V'], P['/out/g'])
    return F.linear(h, W, P['/out/b']), feat


def g_forward(Q, z, eps):
    """The MLP generator by hand (batch statistics, no BN scale)."""
    h = z
    for i in range(len(G_HIDDEN)):
        h = F.linear(h, Q['/lins/{}/W'.format(i)])
        beta = Q['/bns/{}/beta'.format(i)]
        gamma = numpy.ones(beta.shape, dtype=numpy.float32)
        h = F.softplus(F.batch_normalization(h, gamma, beta, eps=eps))
    W = weight_normalized(Q['/out/V'], Q['/out/g'])
    return F.sigmoid(F.linear(h, W, Q['/out/b']))


def log_d(logits):
    """log D(x) of the virtual-class discriminator, D = Z / (Z + 1)."""
    lse = F.logsumexp(logits, axis=1)
    return lse - F.softplus(lse)


def log_one_minus_d(logits):
    return -F.softplus(F.logsumexp(logits, axis=1))


def kl(p_logits, q_logits):
    p_log = F.log_softmax(p_logits)
    return F.sum(F.exp(p_log) * (p_log - F.log_softmax(q_logits))) / len(
        p_logits.array)


def unit_rows(a):
    a = a.astype(numpy.float64)
    return (a / numpy.sqrt((a * a).sum(axis=1, keepdims=True))).astype(
        numpy.float32)


def variables(link):
    return {name: chainer.Variable(p.array.copy())
            for name, p in link.namedparams()}


def expected_step(dis0, gen0, batches, tables, fm, target, vat):
    """New parameters of D and G after one SGD(lr=1) step, by hand."""
    x_l, y_l, x_u, x_u2 = batches
    rows = Rows(tables)
    g_hidden = [layer.g for layer in dis0.hidden]
    eps = gen0.bns[0].eps
    P, Q = variables(dis0), variables(gen0)
    grandom.seed(SEED)

    # discriminator: labeled CE + w * unsupervised + VAT on x_u
    z_d = grandom.uniform(numpy, (N_FAKE, Z_DIM))
    with chainer.no_backprop_mode():
        x_g = g_forward(Q, z_d, eps).array
    l_lab, _ = d_forward(P, g_hidden, x_l, rows.pass_noise(N_L))
    l_unl, _ = d_forward(P, g_hidden, x_u, rows.pass_noise(N_U))
    l_gen, _ = d_forward(P, g_hidden, x_g, rows.pass_noise(N_FAKE))
    loss_d = F.softmax_cross_entropy(l_lab, y_l) + UNLABELED_WEIGHT * (
        -0.5 * F.mean(log_d(l_unl)) - 0.5 * F.mean(log_one_minus_d(l_gen)))
    if vat:  # one noise draw shared by the clean and the perturbed passes
        fixed = rows.pass_noise(N_U)
        start = grandom.normal(numpy, x_u.shape)
        with chainer.no_backprop_mode():
            clean, _ = d_forward(P, g_hidden, x_u, fixed)
        clean = chainer.Variable(clean.array)
        r = chainer.Variable(VAT_XI * unit_rows(start))
        probe, _ = d_forward(P, g_hidden, x_u + r, fixed)
        grad_r, = chainer.grad([kl(clean, probe)], [r])
        r_adv = VAT_EPS * unit_rows(grad_r.array)
        perturbed, _ = d_forward(P, g_hidden, x_u + r_adv, fixed)
        loss_d = loss_d + VAT_WEIGHT * kl(clean, perturbed)
    names_d = sorted(P)
    grads = chainer.grad([loss_d], [P[k] for k in names_d])
    new_d = {k: P[k].array - g.array for k, g in zip(names_d, grads)}

    # generator: fresh latents, against the updated D (a constant)
    P1 = {k: chainer.Variable(v) for k, v in new_d.items()}
    z_g = grandom.uniform(numpy, (N_FAKE, Z_DIM))
    x_fake = g_forward(Q, z_g, eps)
    x_t = x_u2 if target == 'unlabeled' else x_l
    if fm == NONE:
        logits, _ = d_forward(P1, g_hidden, x_fake, rows.pass_noise(N_FAKE))
        loss_g = -F.mean(log_d(logits))
    else:
        if fm == PAIRED:
            x_t = x_t[:N_FAKE]
        f_real = d_forward(P1, g_hidden, x_t, rows.pass_noise(
            len(x_t), features_only=True), features_only=True).array
        if fm == MEANS:
            f_fake = d_forward(P1, g_hidden, x_fake, rows.pass_noise(
                N_FAKE, features_only=True), features_only=True)
            diff = F.mean(f_fake, axis=0) - f_real.mean(axis=0)
            loss_g = F.mean(diff * diff)
        else:
            logits, f_fake = d_forward(P1, g_hidden, x_fake,
                                       rows.pass_noise(N_FAKE))
            loss_g = -F.mean(log_d(logits)) + F.mean(
                (f_fake - f_real) * (f_fake - f_real))
    names_g = sorted(Q)
    grads = chainer.grad([loss_g], [Q[k] for k in names_g])
    new_g = {k: Q[k].array - g.array for k, g in zip(names_g, grads)}
    return new_d, new_g


def tiny_models(seed=0, fast=False):
    numpy.random.seed(seed)  # Chainer's initializers
    grandom.seed(seed)  # D's noise during the data-dependent init
    rng = numpy.random.RandomState(seed)
    dis = nets.MLPDiscriminator(hidden=HIDDEN, fast=fast)
    with links.data_dependent_init():
        dis(rng.rand(60, 784).astype(numpy.float32))
    gen = nets.MLPGenerator(z_dim=Z_DIM, hidden=G_HIDDEN, fast=fast)
    return dis, gen


def tiny_data(seed=1):
    rng = numpy.random.RandomState(seed)
    x = rng.rand(N_L + 2 * N_U, 784).astype(numpy.float32)
    y = rng.randint(0, 10, N_L).astype(numpy.int32)
    return x[:N_L], y, x[N_L:N_L + N_U], x[N_L + N_U:]


def noise_tables(seed=2):
    rng = numpy.random.RandomState(seed)
    return [rng.randn(200, n) for n in (784,) + HIDDEN]


def make_updater(dis, gen, batches, fm, target, vat, fast, lr=1.0,
                 n_fake=N_FAKE):
    x_l, y_l, x_u, x_u2 = batches
    iterators = {
        'main': ArrayIterator((x_u,), len(x_u), shuffle=False),
        'labeled': ArrayIterator((x_l, y_l), len(x_l), shuffle=False),
        'unlabeled2': ArrayIterator((x_u2,), len(x_u2), shuffle=False)}
    opts = {}
    for name, link in (('dis', dis), ('gen', gen)):
        opts[name] = chainer.optimizers.SGD(lr=lr)
        opts[name].setup(link)
    return ssl_updater.SemiSupervisedGANUpdater(
        iterators, opts, feature_matching=fm, fm_target=target,
        unlabeled_weight=UNLABELED_WEIGHT,
        vat_weight=VAT_WEIGHT if vat else 0.0, vat_eps=VAT_EPS,
        vat_xi=VAT_XI, vat_noise='same', n_fake=n_fake, fast=fast)


def actual_step(dis, gen, batches, tables, fm, target, vat, path):
    for layer, table in zip(dis.noise_layers(), tables):
        layer.noise_source = Tape(table)
    up = make_updater(dis, gen, batches, fm, target, vat,
                      fast=path != 'separate')
    grandom.seed(SEED)
    up.update()
    return up


CASES = [(path, fm, target, vat)
         for path in PATHS for fm in (MEANS, PAIRED, NONE)
         for target in ('unlabeled', 'labeled') for vat in (False, True)
         if not (fm == NONE and target == 'labeled')]  # NONE has no target


@pytest.mark.parametrize('path,fm,target,vat', CASES)
def test_one_update_equals_the_step_by_hand(path, fm, target, vat):
    dis, gen = tiny_models(fast=path == 'fast')
    dis0, gen0 = dis.copy(mode='copy'), gen.copy(mode='copy')
    batches, tables = tiny_data(), noise_tables()
    # the path under test is the one taken: one fused node per network
    # pass on the fast path only, one D pass per batch on the separate one
    assert dis._fusable() == gen._fusable() == (path == 'fast')
    up = actual_step(dis, gen, batches, tables, fm, target, vat, path)
    assert up.fast == (path != 'separate')
    new_d, new_g = expected_step(dis0, gen0, batches, tables, fm, target,
                                 vat)
    # float32 against float32 in another order: the steps agree to 5e-5
    # of their size (VAT included: its xi of 1 keeps the probe's
    # direction clear of rounding); a wrong batch, latent, sign or
    # missing step is off by the order of the step itself
    for label, net, old, new in (('D', dis, dis0, new_d),
                                 ('G', gen, gen0, new_g)):
        now = dict(net.namedparams())
        for name, p0 in old.namedparams():
            step = numpy.linalg.norm(new[name] - p0.array)
            assert step > 1e-4 * numpy.linalg.norm(p0.array) + 1e-7, name
            err = numpy.linalg.norm(now[name].array - new[name])
            assert err <= 1e-3 * step, '{} {}: off by {:.2g} of the ' \
                'step'.format(label, name, err / step)


# -- the trainer's own step descends ---------------------------------------
@pytest.fixture(scope='module')
def idx_dir(tmp_path_factory):
    from test_mnist_data import make_idx_dir
    root = str(tmp_path_factory.mktemp('idx'))
    make_idx_dir(root, n_train=600, n_test=20)
    return root


def record(owner, name, calls):
    """Replace the method ``name`` of ``owner`` by one that records its
    arguments in ``calls`` and calls through."""
    method = getattr(owner, name)

    def recorded(*args):
        calls.append(args)
        return method(*args)
    setattr(owner, name, recorded)


def _loss_with(up, dis, make, tables):
    """A loss of the updater ``up`` computed with ``dis`` in place of its
    discriminator, with fixed noise and a fixed VAT direction."""
    saved = up.dis
    up.dis = dis
    try:
        for layer, table in zip(dis.noise_layers(), tables):
            layer.noise_source = Tape(table)
        grandom.seed(SEED)
        return float(make().array)
    finally:
        up.dis = saved
        for layer in dis.noise_layers():
            layer.noise_source = None


@pytest.mark.parametrize('fm,vat', [(MEANS, False), (PAIRED, False),
                                    (NONE, False), (MEANS, True)])
def test_each_step_of_the_built_trainer_lowers_its_own_loss(idx_dir, fm,
                                                            vat):
    """One iteration of the updater that ``mnist_ssl.sbuild.build``
    wires (the full networks, the authors' Adam): on the batch of that
    iteration, with the noise held fixed, D's loss is lower after D's step
    than before it, and G's loss (against the updated D) is lower after
    G's step."""
    from mnist_ssl import options as sopt
    from mnist_ssl import build as sbuild
    o = dict(sopt.DEFAULTS, data_dir=idx_dir, labels=20, batchsize=50,
             feature_matching=fm, vat_weight=1.0 if vat else 0.0, seed=4,
             lr_decay_epochs=0)
    parts = sbuild.build(o)
    up, dis, gen = parts['updater'], parts['dis'], parts['gen']
    assert up.feature_matching == fm
    dis0, gen0 = dis.copy(mode='copy'), gen.copy(mode='copy')
    d_calls, g_calls, latents = [], [], []
    record(up, 'discriminator_loss', d_calls)
    record(up, 'generator_loss', g_calls)
    make_hidden = gen.make_hidden
    gen.make_hidden = lambda n: latents.append(make_hidden(n)) or latents[-1]
    up.update()
    assert len(d_calls) == len(g_calls) == 1 and len(latents) == 2
    (x_l, y_l, x_u, x_g), (x_target, _) = d_calls[0], g_calls[0]
    tables = [numpy.random.RandomState(5).randn(len(x_u) * 6, n)
              for n in (784, 1000, 500, 250, 250, 250)]

    def d_loss():
        return up.discriminator_loss(x_l, y_l, x_u, x_g)[0]
    z = latents[1]

    def g_loss(g):
        def make():
            with fast_mlp.constant_parameters():
                return up.generator_loss(x_target, g(z))[0]
        return make
    # a hundredth of the way along each step (Adam's first step is about
    # lr * sign(gradient), and its full length overshoots the small
    # feature-matching loss: 0.0172 -> 0.049); measured decreases there:
    # D 0.15 %, G 0.1-0.7 %; a reversed step raises the loss as much
    d_before = _loss_with(up, dis0, d_loss, tables)
    d_near = _loss_with(up, along(dis0, dis, 0.01), d_loss, tables)
    assert d_near < d_before * (1 - 2e-4)
    # D's whole step lowers its loss too (measured by 7.7 %)
    assert _loss_with(up, dis, d_loss, tables) < d_before * 0.98
    g_before = _loss_with(up, dis, g_loss(gen0), tables)
    g_near = _loss_with(up, dis, g_loss(along(gen0, gen, 0.01)), tables)
    assert g_near < g_before * (1 - 2e-4)


def along(old, new, t):
    """old + t (new - old): a point on the step from old to new."""
    out = old.copy(mode='copy')
    now = dict(new.namedparams())
    for name, p in out.namedparams():
        p.array[...] += t * (now[name].array - p.array)
    return out
