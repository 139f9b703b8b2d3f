"""Every flag that picks a technique or a form reaches the networks and
optimizers that the command lines train: flags are parsed by the scripts'
own parsers and go through the builders they use
(``mnist_ssl.build.build``, ``animeface.build.build_trainer``,
``animeface.compare``'s variants).  A technique shows in the built model
(the layer is there and in the forward pass) or in what one update does
(a flag of G's loss moves G and leaves D's step alone, ...), never in
options.json alone."""
import types

import numpy
import pytest

import chainer
import chainer.functions as F
import chainer.links as L

from animeface import build as abuild
from animeface import compare, evaluate
from animeface import options as aopt
from animeface import variants as V
from animeface import data as adata
from gan import blog_nets, links, nets, optimizers
from gan import extensions as gext
from gan.fast import conv as fast_conv
from gan.iterators import FixedLengthEpochs
from mnist_ssl import options as sopt
from mnist_ssl import build as sbuild
from test_animeface_data import TINY, faces  # noqa: F401 (fixture)
from test_mnist_data import make_idx_dir
from test_ssl_updater_step import Tape


# -- helpers ---------------------------------------------------------------
def params(link):
    return {k: p.array.copy() for k, p in link.namedparams()}


def same(a, b):
    return a.keys() == b.keys() and all(
        numpy.array_equal(a[k], b[k]) for k in a)


def shared(a, b, skip='/mbd/'):
    """The entries of a and b outside the minibatch-discrimination layer
    (the parameters every form has)."""
    return ({k: v for k, v in a.items() if skip not in k},
            {k: v for k, v in b.items() if skip not in k})


def couples_examples(dis, x):
    """Whether D's output for x[0] depends on the rest of the batch (noise
    off): true only with minibatch discrimination in the forward pass."""
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        a = dis(x).array[0]
        b = dis(numpy.concatenate([x[:1], x[1:][::-1] * 0.5])).array[0]
    return not numpy.allclose(a, b, rtol=1e-6, atol=1e-7)


def layers(link):
    return [l for l in link.links()]


def hooks(opt):
    return list(opt._hookable._pre_update_hooks.values())


def check_mbd_form(mbd, form, std, T):
    """The layer has the parts of its form: the authors' a log-scale and
    a bias (set by the data-dependent init); raw and blog neither, with
    their T (as built) drawn at their scale."""
    assert mbd.form == form
    if form == 'authors':
        assert mbd.log_scale.shape == (mbd.num_kernels, mbd.kernel_dim)
        assert mbd.b.shape == (mbd.num_kernels,)
    else:
        assert getattr(mbd, 'log_scale', None) is None and mbd.b is None
        assert mbd.initialized  # nothing to initialize from data
        assert 0.85 * std < T.std() < 1.15 * std


def check_mbd_initialized(mbd):
    """The authors' data-dependent init ran: the log-scale left 0 and the
    bias left its constant -1."""
    assert mbd.initialized
    s = mbd.log_scale
    s = s.array if isinstance(s, chainer.Variable) else s
    assert numpy.abs(s).min() > 1e-3
    assert not numpy.allclose(mbd.b.array, -1.0)


# -- train_ssl.py ------------------------------------------------------------
@pytest.fixture(scope='module')
def idx_dir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('idx'))
    make_idx_dir(root, n_train=300, n_test=20)
    return root


def ssl_options(idx_dir, *flags, **extra):
    """train_ssl.py's options for ``flags`` (its parser, its preset)."""
    argv = ['--data-dir', idx_dir, '--labels', '20', '--batchsize', '30',
            '--no-progress'] + list(flags)
    if '--preset' not in flags:
        argv += ['--lr-decay-epochs', '0']
    return sopt.resolve(sopt.parser().parse(argv), **extra)


def ssl_build(idx_dir, *flags, **extra):
    return sbuild.build(ssl_options(idx_dir, *flags, **extra))


def ssl_step(idx_dir, *flags):
    """D's and G's parameters after one update of the built trainer."""
    parts = ssl_build(idx_dir, *flags)
    parts['updater'].update()
    return parts, params(parts['dis']), params(parts['gen'])


@pytest.fixture(scope='module')
def ssl_default(idx_dir):
    return ssl_step(idx_dir)


def test_ssl_default_build_and_its_step_is_reproducible(idx_dir,
                                                        ssl_default):
    parts, d, g = ssl_default
    dis, gen, up = parts['dis'], parts['gen'], parts['updater']
    assert type(dis) is nets.MLPDiscriminator
    assert type(gen) is nets.MLPGenerator
    assert all(isinstance(l, links.WeightNormLinear)
               for l in list(dis.hidden) + [dis.out])
    assert not any(isinstance(l, links.MinibatchDiscrimination)
                   for l in layers(dis))
    assert not couples_examples(dis, parts['x_eval'][:6])
    for opt in parts['optimizers'].values():
        assert isinstance(opt, optimizers.AdamEpsInSqrt)
    # the CPU fast paths: one node per network pass, one fused D pass
    assert dis._fusable() and gen._fusable() and up.fast
    # the differences below are the flags', not chance
    _, d2, g2 = ssl_step(idx_dir)
    assert same(d, d2) and same(g, g2)


def test_ssl_no_fast_builds_plain_networks_with_the_same_step(
        idx_dir):
    """--no-fast: the composed Chainer networks and three D passes,
    and the same first update as the fast default from the same start
    (init on 60 images, so that no noise draw is split over threads; D's
    noise replayed from one table per layer)."""
    steps = {}
    for flags in ((), ('--no-fast',)):
        parts = ssl_build(idx_dir, *flags, init_size=60)
        dis, gen, up = parts['dis'], parts['gen'], parts['updater']
        fast = not flags
        assert dis.fast == gen.fast == up.fast == fast
        assert dis._fusable() == gen._fusable() == fast
        assert all(l.fast == fast for l in layers(dis) + layers(gen)
                   if isinstance(l, links.WeightNormLinear))
        start = (params(dis), params(gen))
        rng = numpy.random.RandomState(7)
        widths = (784, 1000, 500, 250, 250, 250)
        for layer, w in zip(dis.noise_layers(), widths):
            layer.noise_source = Tape(rng.randn(200, w))
        up.update()
        steps[fast] = start, params(dis), params(gen)
    (d0f, g0f), d1f, g1f = steps[True]
    (d0p, g0p), d1p, g1p = steps[False]
    assert same(d0f, d0p) and same(g0f, g0p)  # the same start
    # float32 rounding in another order: measured at most 1e-5 of each
    # parameter's step; another noise row, latent or batch would be off
    # by the order of the step
    for label, new_f, new_p, old in (('D', d1f, d1p, d0f),
                                     ('G', g1f, g1p, g0f)):
        for k in old:
            step = numpy.linalg.norm(new_f[k] - old[k])
            assert step > 0, (label, k)
            err = numpy.linalg.norm(new_f[k] - new_p[k])
            assert err <= 1e-4 * step, '{} {}: {:.2g} of the step'.format(
                label, k, err / step)


@pytest.mark.parametrize('flags', [['--feature-matching', 'blog'],
                                   ['--feature-matching', 'none'],
                                   ['--fm-target', 'labeled']])
def test_ssl_generator_loss_flags_change_g_step_only(idx_dir, ssl_default,
                                                     flags):
    """G's loss is computed after D's step: a flag of G's loss leaves D's
    step as it was and changes G's."""
    _, d0, g0 = ssl_default
    parts, d, g = ssl_step(idx_dir, *flags)
    assert same(d, d0)
    assert not same(g, g0)


@pytest.mark.parametrize('flags', [['--vat-weight', '1'],
                                   ['--unlabeled-weight', '0.5']])
def test_ssl_discriminator_loss_flags_change_d_step(idx_dir, ssl_default,
                                                    flags):
    _, d0, g0 = ssl_default
    parts, d, g = ssl_step(idx_dir, *flags)
    assert not same(d, d0)


def test_ssl_vat_weight_scales_the_vat_term(idx_dir):
    """--vat-weight 2 moves D by another step than --vat-weight 1."""
    _, d1, _ = ssl_step(idx_dir, '--vat-weight', '1')
    _, d2, _ = ssl_step(idx_dir, '--vat-weight', '2')
    assert not same(d1, d2)


def test_ssl_adam_variant_reaches_both_optimizers(idx_dir, ssl_default):
    _, d0, g0 = ssl_default
    parts, d, g = ssl_step(idx_dir, '--adam', 'chainer')
    for opt in parts['optimizers'].values():
        assert type(opt) is chainer.optimizers.Adam
    assert not same(d, d0) and not same(g, g0)


def test_ssl_minibatch_discrimination_is_in_the_discriminator(idx_dir):
    parts = ssl_build(idx_dir, '--minibatch-discrimination',
                      '--mbd-kernels', '7', '--mbd-dim', '3')
    dis = parts['dis']
    mbd = [l for l in layers(dis)
           if isinstance(l, links.MinibatchDiscrimination)]
    assert len(mbd) == 1
    assert (mbd[0].num_kernels, mbd[0].kernel_dim) == (7, 3)
    assert dis.out.V.shape == (10, 250 + 7)
    assert couples_examples(dis, parts['x_eval'][:6])
    assert not parts['updater'].fast  # its batches must not be fused


@pytest.fixture(scope='module')
def ssl_mbd_steps(idx_dir):
    """form -> (parts, T as built, D after one update, G after it)."""
    out = {}
    for form in ('authors', 'raw', 'blog'):
        parts = ssl_build(idx_dir, '--minibatch-discrimination',
                          '--mbd-kernels', '7', '--mbd-dim', '3',
                          '--mbd-form', form)
        T0 = parts['dis'].mbd.T.array.copy()
        parts['updater'].update()
        out[form] = (parts, T0, params(parts['dis']), params(parts['gen']))
    return out


@pytest.mark.parametrize('form,std', [('authors', None), ('raw', 0.05),
                                      ('blog', 0.001)])
def test_ssl_mbd_form_builds_its_layer(ssl_mbd_steps, form, std):
    parts, T0, _, _ = ssl_mbd_steps[form]
    mbd = parts['dis'].mbd
    check_mbd_form(mbd, form, std, T0)
    if form == 'authors':  # initialized with weight norm, at build time
        check_mbd_initialized(mbd)
    assert couples_examples(parts['dis'], parts['x_eval'][:6])


def test_ssl_mbd_forms_update_differently(ssl_mbd_steps):
    """The same start elsewhere, another D and G step with each form."""
    for a, b in (('authors', 'raw'), ('authors', 'blog'), ('raw', 'blog')):
        d_a, d_b = shared(ssl_mbd_steps[a][2], ssl_mbd_steps[b][2])
        assert not same(d_a, d_b), (a, b)
        assert not same(ssl_mbd_steps[a][3], ssl_mbd_steps[b][3]), (a, b)


@pytest.mark.parametrize('fixed', [False, True])
def test_ssl_mbd_fixed_t_keeps_t_and_scale(idx_dir, fixed):
    """--mbd-fixed-t (the authors' form): T and its log-scale are not
    trained (not parameters, unchanged by an update) while the bias is;
    without it all three move."""
    parts = ssl_build(idx_dir, '--minibatch-discrimination', '--mbd-kernels',
                      '7', '--mbd-dim', '3',
                      *(['--mbd-fixed-t'] if fixed else []))
    mbd = parts['dis'].mbd
    check_mbd_initialized(mbd)
    names = {k for k, _ in parts['dis'].namedparams()}
    assert ('/mbd/T' in names) == ('/mbd/log_scale' in names) == (not fixed)

    def arr(p):
        return (p.array if isinstance(p, chainer.Variable) else p).copy()
    before = [arr(mbd.T), arr(mbd.log_scale), arr(mbd.b)]
    parts['updater'].update()
    after = [arr(mbd.T), arr(mbd.log_scale), arr(mbd.b)]
    moved = [not numpy.array_equal(x, y) for x, y in zip(before, after)]
    assert moved == [not fixed, not fixed, True]


def test_ssl_no_weight_norm_gives_plain_dense_layers(idx_dir):
    dis = ssl_build(idx_dir, '--no-weight-norm')['dis']
    dense = list(dis.hidden) + [dis.out]
    assert all(type(l) is L.Linear for l in dense)
    assert not any(isinstance(l, links.WeightNormLinear)
                   for l in layers(dis))


def test_ssl_preset_blog_2017_builds_the_blogs_run(idx_dir, tmp_path):
    """--preset blog-2017: the blog's last networks (dense 1000-500-250 with noise
    before softplus; a ReLU/tanh generator of z ~ U(-1, 1)), Chainer's
    Adam at 1e-3, the step schedule, 500-iteration epochs and the blog's
    generator loss, in the trainer that train_ssl.py runs."""
    o = ssl_options(idx_dir, '--preset', 'blog-2017', '--no-validation',
                    out=str(tmp_path / 'blog'))
    parts = sbuild.build(o)
    dis, gen, up = parts['dis'], parts['gen'], parts['updater']
    assert type(dis) is blog_nets.BlogMLPDiscriminator
    assert type(gen) is blog_nets.BlogMLPGenerator
    assert [l.W.shape for l in list(dis.hidden) + [dis.out]] == [
        (1000, 784), (500, 1000), (250, 500), (10, 250)]
    assert all(type(l) is L.Linear for l in list(dis.hidden) + [dis.out])
    assert [n.sigma for n in dis.noise_layers()] == [0.3, 0.5, 0.5, 0.5]
    # the forward pass by hand, noise off: softplus after each dense layer
    x = parts['x_eval'][:5]
    h = x
    for l in dis.hidden:
        h = F.softplus(F.linear(h, l.W, l.b))
    want = F.linear(h, dis.out.W, dis.out.b).array
    with chainer.using_config('train', False):
        numpy.testing.assert_allclose(dis(x).array, want, rtol=1e-5,
                                      atol=1e-6)
        # and the noise acts in training only
        assert numpy.array_equal(dis(x).array, dis(x).array)
    assert not numpy.allclose(dis(x).array, dis(x).array)
    assert x.min() == -1.0  # the real images in the generator's range
    z = gen.make_hidden(200)
    assert z.shape == (200, 50) and z.min() < -0.9 and z.max() > 0.9
    for opt in parts['optimizers'].values():
        assert type(opt) is chainer.optimizers.Adam
        assert (opt.alpha, opt.beta1) == (1e-3, 0.5)
    assert (up.feature_matching, up.fm_target, up.unlabeled_weight) == (
        'blog', 'labeled', 2.0)
    main = up.get_iterator('main')
    assert isinstance(main, FixedLengthEpochs)
    assert main.iters_per_epoch == 500
    # the step schedule drives both optimizers' rate
    trainer = sbuild.make_trainer(o, parts)
    names = set(trainer._extensions)
    assert {'lr_steps_dis', 'lr_steps_gen'} <= names
    assert not any(n.startswith('lr_decay_') for n in names)
    for name, opt in parts['optimizers'].items():
        ext = trainer.get_extension('lr_steps_' + name)
        assert isinstance(ext, gext.EpochSteps) and ext.optimizer is opt
        for epoch_detail, alpha in ((0, 1e-3), (8.9, 1e-3), (9, 3e-4),
                                    (48.5, 3e-4), (49, 1e-4)):
            ext(types.SimpleNamespace(updater=types.SimpleNamespace(
                epoch_detail=epoch_detail)))
            assert opt.alpha == alpha, (name, epoch_detail)


# -- train_dcgan.py ----------------------------------------------------------
def dcgan_images(n=8, seed=0):
    rng = numpy.random.default_rng(seed)
    return adata.ImageData(
        list(rng.integers(0, 256, (n, 3, 32, 32)).astype(numpy.uint8)), 3,
        'folder')


def dcgan_args(tmp_path, *flags):
    """train_dcgan.py's options for ``flags`` (its parser and presets)."""
    args = aopt.parser().parse(['--data', 'unused', '--out', str(tmp_path / 'run')] + TINY +
        [str(f) for f in flags])
    aopt.check(args)
    return args


def dcgan_trainer(tmp_path, *flags):
    return abuild.build_trainer(dcgan_args(tmp_path, *flags),
                                  dcgan_images())


def dcgan_step(tmp_path, *flags):
    up = dcgan_trainer(tmp_path, *flags).updater
    up.update()
    return (up, params(up.get_optimizer('dis').target),
            params(up.get_optimizer('gen').target))


def couples_examples_dcgan(dis):
    x = numpy.random.default_rng(3).uniform(
        -1, 1, (5, 3, 32, 32)).astype(numpy.float32)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        a = dis(x).array[0]
        b = dis(numpy.concatenate([x[:1], -x[1:]])).array[0]
    return not numpy.allclose(a, b, rtol=1e-6, atol=1e-7)


def test_dcgan_default_has_no_technique(tmp_path):
    up = dcgan_trainer(tmp_path).updater
    dis = up.get_optimizer('dis').target
    gen = up.get_optimizer('gen').target
    assert type(dis) is nets.DCGANDiscriminator
    assert type(gen) is nets.DCGANGenerator
    assert dis.mbd is None and not couples_examples_dcgan(dis)
    assert dis.noise.sigma == 0 and up.feature_matching == 'none'
    # the CPU fast convolutions
    assert all(type(c) is fast_conv.Convolution2D for c in dis.convs)
    for name in ('gen', 'dis'):
        assert not hooks(up.get_optimizer(name))  # no gradient clipping
    assert type(up.get_iterator('main')) is chainer.iterators.SerialIterator
    _, d, g = dcgan_step(tmp_path)
    _, d2, g2 = dcgan_step(tmp_path)
    assert same(d, d2) and same(g, g2)


def first_step(up):
    """(parameters, gradients of the first update) of D and G; the update
    draws from the random stream the trainer's build has just seeded."""
    pair = [up.get_optimizer(n).target for n in ('dis', 'gen')]
    start = [params(n) for n in pair]
    up.update()  # the gradients stay on the parameters
    return start, [{k: p.grad.copy() for k, p in n.namedparams()}
                   for n in pair]


def check_same_first_step(step_a, step_b, tol=1e-5):
    """Two trainers' :func:`first_step` from the same start to gradients
    within ``tol`` of each net's largest gradient norm.  Gradients, not
    Adam's steps: a bias in front of batch norm has a gradient of 0 up to
    rounding, which Adam's first step turns into a full step of either
    sign (another batch, latent or a missing term is off by the order of
    the gradient)."""
    (start_a, grads_a), (start_b, grads_b) = step_a, step_b
    for old, start, ga, gb in zip(start_a, start_b, grads_a, grads_b):
        assert same(old, start) and ga.keys() == gb.keys()
        scale = max(numpy.linalg.norm(g) for g in ga.values())
        assert scale > 0
        for k in ga:
            err = numpy.linalg.norm(ga[k] - gb[k])
            assert err <= tol * scale, '{}: {:.2g} of the largest ' \
                'gradient'.format(k, err / scale)


def test_dcgan_fast_networks_take_the_plain_networks_step(tmp_path,
                                                          monkeypatch):
    """The trainer with its fast networks (gan.fast convolutions, the
    fused minibatch-discrimination distances) against the same trainer
    with the plain Chainer links: same start, same first update."""
    flags = ('--minibatch-discrimination', '--mbd-kernels', '6',
             '--mbd-dim', '2')
    fast = dcgan_trainer(tmp_path, *flags).updater
    dis = fast.get_optimizer('dis').target
    assert all(type(c) is fast_conv.Convolution2D for c in dis.convs)
    assert dis.mbd.fast
    step_fast = first_step(fast)
    for name in ('DCGANDiscriminator', 'DCGANGenerator'):
        def plain(*a, _real=getattr(nets, name), **k):
            k['fast'] = False
            if k.get('minibatch_discrimination'):
                k['minibatch_discrimination'] = dict(
                    k['minibatch_discrimination'], fast=False)
            return _real(*a, **k)
        monkeypatch.setattr(abuild.nets, name, plain)
    plain = dcgan_trainer(tmp_path, *flags).updater
    dis = plain.get_optimizer('dis').target
    assert all(type(c) is L.Convolution2D for c in dis.convs)
    assert not dis.mbd.fast
    # measured: at most 2.3e-6 of the net's largest gradient norm
    check_same_first_step(step_fast, first_step(plain))


@pytest.mark.parametrize('flags', [['--feature-matching', 'paper'],
                                   ['--feature-matching', 'blog'],
                                   ['--feature-matching', 'blog',
                                    '--fm-weight', '3']])
def test_dcgan_feature_matching_changes_g_step_only(tmp_path, flags):
    """The DCGAN updater scores one forward pass for both losses, so G's
    loss form leaves D's step as it was."""
    _, d0, g0 = dcgan_step(tmp_path)
    _, d, g = dcgan_step(tmp_path, *flags)
    assert same(d, d0) and not same(g, g0)
    if '--fm-weight' in flags:
        _, _, g1 = dcgan_step(tmp_path, '--feature-matching', 'blog')
        assert not same(g, g1)


def test_dcgan_dis_dropout_drops_hidden_units_in_training_only(tmp_path,
                                                           monkeypatch):
    up = dcgan_trainer(tmp_path, '--dis-dropout', '0.5').updater
    dis = up.get_optimizer('dis').target
    assert dis.dropout.ratio == 0.5
    seen = []
    real_forward = links.Dropout.forward

    def spy(self, x):
        y = real_forward(self, x)
        seen.append((x.shape, chainer.config.train,
                     float((chainer.as_array(y) == 0).mean())))
        return y
    monkeypatch.setattr(links.Dropout, 'forward', spy)
    x = numpy.random.default_rng(0).uniform(
        -1, 1, (4, 3, 32, 32)).astype(numpy.float32)
    with chainer.using_config('train', False):
        a = dis(x).array
    # after every hidden convolution but the last (32 px: 16 and 8 px
    # maps), nothing dropped in test mode, the same output as without it
    assert [s[0][2:] for s in seen] == [(16, 16), (8, 8)]
    assert all(not t and z < 0.5 for _, t, z in seen)
    plain = dcgan_trainer(tmp_path).updater.get_optimizer('dis').target
    with chainer.using_config('train', False):
        numpy.testing.assert_allclose(plain(x).array, a, rtol=1e-6)
    del seen[:]
    with chainer.using_config('train', True):
        dis(x)
    assert all(t and 0.4 < z < 0.65 for _, t, z in seen)  # leaky ReLU > 0
    # it changes D's step (and so, through D, the rest of the run)
    _, d0, _ = dcgan_step(tmp_path)
    _, d, _ = dcgan_step(tmp_path, '--dis-dropout', '0.5')
    assert not same(d, d0)


def test_dcgan_gen_steps_updates_g_more_often(tmp_path, monkeypatch):
    up = dcgan_trainer(tmp_path, '--gen-steps', '3').updater
    assert up.gen_steps == 3
    calls = []
    gen_opt, dis_opt = up.get_optimizer('gen'), up.get_optimizer('dis')
    for name, opt in (('gen', gen_opt), ('dis', dis_opt)):
        real = opt.update
        monkeypatch.setattr(opt, 'update', lambda *a, _r=real, _n=name, **k:
                            (calls.append(_n), _r(*a, **k))[1])
    up.update()
    assert calls == ['gen', 'dis', 'gen', 'gen']


def mbd_flags(*extra):
    return ['--minibatch-discrimination', '--mbd-kernels', '6',
            '--mbd-dim', '2'] + list(extra)


@pytest.mark.parametrize('fixed', [False, True])
def test_dcgan_minibatch_discrimination_is_in_the_discriminator(tmp_path,
                                                                fixed):
    """The layer is in D's forward pass; the authors' form (the default)
    initializes from the first batch; --mbd-fixed-t keeps T and its
    log-scale where the init left them while the bias trains."""
    up = dcgan_trainer(tmp_path, *mbd_flags(
        *(['--mbd-fixed-t'] if fixed else []))).updater
    dis = up.get_optimizer('dis').target
    mbd = dis.mbd
    assert (mbd.num_kernels, mbd.kernel_dim) == (6, 2)
    assert dis.out.W.shape == (1, dis.feature_size + 6)
    assert couples_examples_dcgan(dis)
    names = {k for k, _ in dis.namedparams()}
    assert ('/mbd/T' in names) == ('/mbd/log_scale' in names) == (not fixed)
    assert not mbd.initialized

    def arr(p):
        return (p.array if isinstance(p, chainer.Variable) else p).copy()
    up.update()  # the first pass initializes the layer
    check_mbd_initialized(mbd)
    before = [arr(mbd.T), arr(mbd.log_scale), arr(mbd.b)]
    up.update()
    after = [arr(mbd.T), arr(mbd.log_scale), arr(mbd.b)]
    moved = [not numpy.array_equal(x, y) for x, y in zip(before, after)]
    assert moved == [not fixed, not fixed, True]


@pytest.fixture(scope='module')
def dcgan_mbd_steps(tmp_path_factory):
    """form -> (D, T as built, D after one update, G after it)."""
    tmp = tmp_path_factory.mktemp('mbd_forms')
    out = {}
    for form in ('authors', 'raw', 'blog'):
        up = dcgan_trainer(tmp, *mbd_flags('--mbd-form', form)).updater
        dis, gen = (up.get_optimizer(n).target for n in ('dis', 'gen'))
        T0 = dis.mbd.T.array.copy()
        up.update()
        out[form] = (dis, T0, params(dis), params(gen))
    return out


@pytest.mark.parametrize('form,std', [('authors', None), ('raw', 0.05),
                                      ('blog', 0.001)])
def test_dcgan_mbd_form_builds_its_layer(dcgan_mbd_steps, form, std):
    dis, T0, _, _ = dcgan_mbd_steps[form]
    check_mbd_form(dis.mbd, form, std, T0)
    if form == 'authors':  # initialized by the first update
        check_mbd_initialized(dis.mbd)
    assert couples_examples_dcgan(dis)


def test_dcgan_mbd_forms_update_differently(dcgan_mbd_steps):
    for a, b in (('authors', 'raw'), ('authors', 'blog'), ('raw', 'blog')):
        d_a, d_b = shared(dcgan_mbd_steps[a][2], dcgan_mbd_steps[b][2])
        assert not same(d_a, d_b), (a, b)
        assert not same(dcgan_mbd_steps[a][3], dcgan_mbd_steps[b][3]), (a, b)


def test_dcgan_adam_settings_reach_both_optimizers(tmp_path):
    up = dcgan_trainer(tmp_path, '--lr', '0.001', '--beta1', '0.7').updater
    for name in ('gen', 'dis'):
        opt = up.get_optimizer(name)
        assert (opt.alpha, opt.beta1) == (0.001, 0.7)


def draws_with_replacement(it, n_images, batches=20):
    """Whether some batch of ``it`` holds an image twice (random images:
    equal content is the same image).  Shuffled passes over 8 images in
    batches of 4 never do; 20 batches drawn with replacement all without
    a repeat have probability 0.41^20."""
    for _ in range(batches):
        batch = it.next()
        keys = {bytes(x) for x in batch}
        if len(keys) < len(batch):
            return True
    return False


def check_blog_trainer(up, clip=0.0):
    """The pieces of --preset blog in a built DCGAN updater (``clip``: the
    gradient clipping asked for; the blog's runs had none)."""
    dis, gen = (up.get_optimizer(n).target for n in ('dis', 'gen'))
    assert type(dis) is nets.BlogConvDiscriminator
    assert type(gen) is nets.BlogConvGenerator
    assert [c.W.shape[0] for c in dis.convs] == [32, 64, 128, 256]
    z = gen.make_hidden(200)
    assert z.min() < -0.9 and z.max() > 0.9  # U(-1, 1)
    # Gaussian noise 0.3 on D's input, in training only
    assert dis.noise.sigma == 0.3
    x = numpy.random.default_rng(4).uniform(
        -1, 1, (4, 3, 32, 32)).astype(numpy.float32)
    with chainer.no_backprop_mode():
        f1, f2 = dis.features(x).array, dis.features(x).array
        with chainer.using_config('train', False):
            f3, f4 = dis.features(x).array, dis.features(x).array
    assert not numpy.allclose(f1, f2) and numpy.array_equal(f3, f4)
    for name in ('gen', 'dis'):
        opt = up.get_optimizer(name)
        assert type(opt) is chainer.optimizers.Adam
        assert (opt.alpha, opt.beta1) == (1e-4, 0.5)
        if not clip:
            assert not hooks(opt)
            continue
        hook, = hooks(opt)
        assert isinstance(hook, chainer.optimizer_hooks.GradientClipping)
        assert hook.threshold == clip
    assert up.order == 'd-then-g'  # D first, then G on a fresh batch
    it = up.get_iterator('main')
    assert isinstance(it, FixedLengthEpochs)
    assert isinstance(it.base, abuild.ReplacementIterator)
    assert it.iters_per_epoch == 500
    assert draws_with_replacement(it, 8)


def test_dcgan_preset_blog_builds_the_blogs_trainer(tmp_path):
    check_blog_trainer(dcgan_trainer(tmp_path, '--preset', 'blog').updater)
    check_blog_trainer(dcgan_trainer(tmp_path / 'c', '--preset', 'blog',
                                     '--grad-clip', '10').updater, clip=10.0)


def test_dcgan_default_iterator_makes_shuffled_passes(tmp_path):
    """The contrast of the replacement check above: the dcgan preset's
    batches never repeat an image."""
    up = dcgan_trainer(tmp_path).updater
    assert not draws_with_replacement(up.get_iterator('main'), 8)


def test_dcgan_net_blog_alone_builds_the_blog_networks(tmp_path):
    """--net blog under the dcgan preset: the blog's networks with the
    dcgan preset's training settings (no clipping, shuffled passes)."""
    up = dcgan_trainer(tmp_path, '--net', 'blog').updater
    assert type(up.get_optimizer('dis').target) is nets.BlogConvDiscriminator
    assert type(up.get_optimizer('gen').target) is nets.BlogConvGenerator
    assert not hooks(up.get_optimizer('dis'))


@pytest.mark.parametrize('flags', [['--net', 'blog'], ['--preset', 'blog']])
def test_dcgan_blog_networks_fast_by_default_stock_with_no_fast(tmp_path,
                                                                flags):
    """The blog's networks take the CPU fast path (gan.fast convolutions)
    by default and Chainer's stock links under --no-fast, from the same
    start to the same first update (--preset blog: D first, then G)."""
    steps = []
    for fast in (True, False):
        up = dcgan_trainer(tmp_path / str(fast), *flags,
                           *([] if fast else ['--no-fast'])).updater
        dis, gen = (up.get_optimizer(n).target for n in ('dis', 'gen'))
        assert type(dis) is nets.BlogConvDiscriminator
        assert type(gen) is nets.BlogConvGenerator
        conv, deconv = ((fast_conv.Convolution2D, fast_conv.Deconvolution2D)
                        if fast else (L.Convolution2D, L.Deconvolution2D))
        assert all(type(c) is conv for c in dis.convs)
        assert all(type(u) is deconv for u in gen.ups)
        steps.append(first_step(up))
    # measured: at most 1.1e-6 of the net's largest gradient norm with
    # --net blog, 5.2e-6 with --preset blog, whose G pass follows D's first
    # Adam step (elements of gradient ~0 step by +-lr either way)
    check_same_first_step(*steps, tol=2e-5)


# -- python -m animeface.compare ----------------------------------------------
class _Stop(Exception):
    pass


def compare_variants(faces, tmp_path, monkeypatch, *flags):  # noqa: F811
    """The variants' arguments as compare.main makes them (their training
    replaced by a record; the run stops before the metrics)."""
    made = []
    monkeypatch.setattr(compare, 'train_variant',
                        lambda vargs, images, log=None, comm=None:
                        made.append(vargs))

    def stop(*a, **k):
        raise _Stop
    monkeypatch.setattr(evaluate, 'load_classifier', stop)
    with pytest.raises(_Stop):
        compare.main(['--data', faces, '--out', str(tmp_path / 'cmp')] +
                     TINY + list(flags))
    return {v.out.split('/')[-1]: v for v in made}


@pytest.mark.parametrize('form', ['paper', 'blog'])
def test_compare_variants_build_their_techniques(faces, tmp_path,  # noqa: F811
                                                 monkeypatch, form):
    variants = compare_variants(faces, tmp_path, monkeypatch,
                                '--feature-matching', form, '--mbd-kernels',
                                '6', '--mbd-dim', '2')
    assert sorted(variants) == sorted(V.names())
    images = dcgan_images()
    for name, vargs in variants.items():
        up = abuild.build_trainer(vargs, images).updater
        dis = up.get_optimizer('dis').target
        has_mbd = 'mbd' in name
        assert (dis.mbd is not None) == has_mbd, name
        assert couples_examples_dcgan(dis) == has_mbd, name
        if has_mbd:
            assert (dis.mbd.num_kernels, dis.mbd.kernel_dim) == (6, 2)
            assert dis.mbd.form == 'authors'
        assert up.feature_matching == (form if 'fm' in name else 'none'), \
            name


def test_compare_default_feature_matching_is_the_blogs(faces, tmp_path,  # noqa: F811,E501
                                                       monkeypatch):
    variants = compare_variants(faces, tmp_path, monkeypatch)
    images = dcgan_images()
    for name in ('fm', 'fm_mbd'):
        up = abuild.build_trainer(variants[name], images).updater
        assert up.feature_matching == 'blog'


@pytest.mark.parametrize('form,std', [('raw', 0.05), ('blog', 0.001)])
def test_compare_mbd_form_reaches_the_mbd_variants(faces, tmp_path,  # noqa: F811,E501
                                                   monkeypatch, form, std):
    variants = compare_variants(faces, tmp_path, monkeypatch, '--mbd-form',
                                form, '--mbd-kernels', '6', '--mbd-dim', '2',
                                '--mbd-fixed-t')
    images = dcgan_images()
    for name in ('mbd', 'fm_mbd'):
        dis = abuild.build_trainer(variants[name], images).updater \
            .get_optimizer('dis').target
        check_mbd_form(dis.mbd, form, std, dis.mbd.T)
        assert not dis.mbd.learn_T
        assert '/mbd/T' not in {k for k, _ in dis.namedparams()}


def test_compare_preset_blog_reaches_every_variant(faces, tmp_path,  # noqa: F811,E501
                                                   monkeypatch):
    variants = compare_variants(faces, tmp_path, monkeypatch, '--preset',
                                'blog', '--mbd-kernels', '6')
    assert sorted(variants) == sorted(V.names())
    images = dcgan_images()
    for name, vargs in variants.items():
        up = abuild.build_trainer(vargs, images).updater
        check_blog_trainer(up)
        dis = up.get_optimizer('dis').target
        if 'mbd' in name:  # the blog's form, T ~ N(0, wscale^2)
            check_mbd_form(dis.mbd, 'blog', 0.001, dis.mbd.T.array)
