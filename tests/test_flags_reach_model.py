"""Every flag that picks a technique or a form reaches the networks and
optimizers that the command lines train: flags are parsed by the scripts'
own parsers and go through the builders they use
(``mnist_ssl.experiment.build``, ``animeface.training.build_trainer``,
``animeface.compare``'s variants).  A technique shows in the built model
(the layer is there and in the forward pass) or in what one update does
(a flag of G's loss moves G and leaves D's step alone, ...), never in
options.json alone."""
import numpy
import pytest

import chainer
import chainer.links as L

import train_ssl
from animeface import compare, evaluate, training
from animeface import data as adata
from gan import links, optimizers
from gan import ssl_updater
from mnist_ssl import experiment

from test_animeface_data import TINY, faces  # noqa: F401 (fixture)
from test_mnist_data import make_idx_dir

_FORMS = ssl_updater.FEATURE_MATCHING
SSL_MEANS = 'mean' if 'mean' in _FORMS else 'paper'
SSL_PAIRED = 'paired' if 'paired' in _FORMS else 'blog'


# -- helpers ---------------------------------------------------------------
def params(link):
    return {k: p.array.copy() for k, p in link.namedparams()}


def same(a, b):
    return a.keys() == b.keys() and all(
        numpy.array_equal(a[k], b[k]) for k in a)


def couples_examples(dis, x):
    """Whether D's output for x[0] depends on the rest of the batch (noise
    off): true only with minibatch discrimination in the forward pass."""
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        a = dis(x).array[0]
        b = dis(numpy.concatenate([x[:1], x[1:][::-1] * 0.5])).array[0]
    return not numpy.allclose(a, b, rtol=1e-6, atol=1e-7)


def layers(link):
    return [l for l in link.links()]


# -- train_ssl.py ------------------------------------------------------------
@pytest.fixture(scope='module')
def idx_dir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('idx'))
    make_idx_dir(root, n_train=300, n_test=20)
    return root


def ssl_build(idx_dir, *flags):
    argv = ['--data-dir', idx_dir, '--labels', '20', '--batchsize', '30',
            '--lr-decay-epochs', '0'] + list(flags)
    o = dict(experiment.DEFAULTS, **vars(train_ssl.parser().parse_args(argv)))
    return experiment.build(o)


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
    dis, up = parts['dis'], parts['updater']
    assert all(isinstance(l, links.WeightNormLinear)
               for l in list(dis.hidden) + [dis.out])
    assert not any(isinstance(l, links.MinibatchDiscrimination)
                   for l in layers(dis))
    assert not couples_examples(dis, parts['x_eval'][:6])
    for opt in parts['optimizers'].values():
        assert isinstance(opt, optimizers.AdamEpsInSqrt)
    assert up.fused
    # the differences below are the flags', not chance
    _, d2, g2 = ssl_step(idx_dir)
    assert same(d, d2) and same(g, g2)


@pytest.mark.parametrize('flags', [['--feature-matching', SSL_PAIRED],
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
    assert not parts['updater'].fused  # its batches must not be fused


def test_ssl_no_weight_norm_gives_plain_dense_layers(idx_dir):
    dis = ssl_build(idx_dir, '--no-weight-norm')['dis']
    dense = list(dis.hidden) + [dis.out]
    assert all(type(l) is L.Linear for l in dense)
    assert not any(isinstance(l, links.WeightNormLinear)
                   for l in layers(dis))


# -- train_dcgan.py ----------------------------------------------------------
def dcgan_images(n=8, seed=0):
    rng = numpy.random.default_rng(seed)
    return adata.ImageData(
        list(rng.integers(0, 256, (n, 3, 32, 32)).astype(numpy.uint8)), 3,
        'folder')


def dcgan_trainer(tmp_path, *flags):
    args = training.parser('test').parse_args(
        ['--data', 'unused', '--out', str(tmp_path / 'run')] + TINY +
        [str(f) for f in flags])
    training.check_args(args)
    return training.build_trainer(args, dcgan_images())


def dcgan_step(tmp_path, *flags):
    up = dcgan_trainer(tmp_path, *flags).updater
    up.update()
    return (up, params(up.get_optimizer('dis').target),
            params(up.get_optimizer('gen').target))


def test_dcgan_default_has_no_technique(tmp_path):
    up = dcgan_trainer(tmp_path).updater
    dis = up.get_optimizer('dis').target
    assert dis.mbd is None and not couples_examples_dcgan(dis)
    _, d, g = dcgan_step(tmp_path)
    _, d2, g2 = dcgan_step(tmp_path)
    assert same(d, d2) and same(g, g2)


def couples_examples_dcgan(dis):
    x = numpy.random.default_rng(3).uniform(
        -1, 1, (5, 3, 32, 32)).astype(numpy.float32)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        a = dis(x).array[0]
        b = dis(numpy.concatenate([x[:1], -x[1:]])).array[0]
    return not numpy.allclose(a, b, rtol=1e-6, atol=1e-7)


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


@pytest.mark.parametrize('fixed', [False, True])
def test_dcgan_minibatch_discrimination_is_in_the_discriminator(tmp_path,
                                                                fixed):
    flags = ['--minibatch-discrimination', '--mbd-kernels', '6',
             '--mbd-dim', '2'] + (['--mbd-fixed-t'] if fixed else [])
    up = dcgan_trainer(tmp_path, *flags).updater
    dis = up.get_optimizer('dis').target
    assert (dis.mbd.num_kernels, dis.mbd.kernel_dim) == (6, 2)
    assert dis.out.W.shape == (1, dis.feature_size + 6)
    assert couples_examples_dcgan(dis)
    names = {k for k, _ in dis.namedparams()}
    assert ('/mbd/T' in names) == (not fixed)  # the optimizer trains T
    T0 = dis.mbd.T.array.copy() if not fixed else dis.mbd.T.copy()
    up.update()
    T1 = dis.mbd.T.array if not fixed else dis.mbd.T
    assert numpy.array_equal(T0, T1) == fixed


def test_dcgan_adam_settings_reach_both_optimizers(tmp_path):
    up = dcgan_trainer(tmp_path, '--lr', '0.001', '--beta1', '0.7').updater
    for name in ('gen', 'dis'):
        opt = up.get_optimizer(name)
        assert (opt.alpha, opt.beta1) == (0.001, 0.7)


# -- python -m animeface.compare ----------------------------------------------
class _Stop(Exception):
    pass


def compare_variants(faces, tmp_path, monkeypatch, *flags):  # noqa: F811
    """The variants' arguments as compare.main makes them (their training
    replaced by a record; the run stops before the metrics)."""
    made = []
    monkeypatch.setattr(compare, 'train_variant',
                        lambda vargs, images, log=None: made.append(vargs))

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
    variants = compare_variants(faces, tmp_path, monkeypatch, '--fm-form',
                                form, '--mbd-kernels', '6', '--mbd-dim', '2')
    assert sorted(variants) == sorted(v[0] for v in compare.VARIANTS)
    images = dcgan_images()
    for name, vargs in variants.items():
        up = training.build_trainer(vargs, images).updater
        dis = up.get_optimizer('dis').target
        has_mbd = 'mbd' in name
        assert (dis.mbd is not None) == has_mbd, name
        assert couples_examples_dcgan(dis) == has_mbd, name
        if has_mbd:
            assert (dis.mbd.num_kernels, dis.mbd.kernel_dim) == (6, 2)
        assert up.feature_matching == (form if 'fm' in name else 'none'), \
            name
