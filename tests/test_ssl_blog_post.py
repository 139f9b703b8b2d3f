"""The blog's semi-supervised code on the day of the post (train_ssl.py
--preset blog, commit 43eca16 of musyoku/improved-gan): its networks, the
fake term of its D loss, its preset and what a run records, each against a
numpy computation, a closed form or a plain run; and --patience."""
import json
import os

import numpy
import pytest

import chainer.links as L
from chainer import gradient_check

import train_ssl
from gan import blog_nets, losses
from gan import options as gopt
from mnist_ssl import build as sbuild
from mnist_ssl import options as sopt
from test_ssl_blog import Replay


def elu(a):
    return numpy.where(a > 0, a, numpy.expm1(numpy.minimum(a, 0)))


def batch_norm(a, bn):
    """Chainer's batch norm in training mode, on the batch's statistics."""
    a = (a - a.mean(0)) / numpy.sqrt(a.var(0) + bn.eps)
    return a * bn.gamma.array + bn.beta.array


def dense(layer, x):
    return x.dot(layer.W.array.T.astype(numpy.float64)) + layer.b.array


def post_dis():
    return blog_nets.BlogMLPDiscriminator(**sbuild.BLOG_DIS['blog'])


def test_post_discriminator_layers_init_and_forward():
    """1000-500-500-250, ELU, batch norm after the first three activations,
    no noise, N(0, 0.05^2) weights; a training pass against numpy."""
    numpy.random.seed(0)
    dis = post_dis()
    assert [l.W.shape for l in list(dis.hidden) + [dis.out]] == [
        (1000, 784), (500, 1000), (500, 500), (250, 500), (10, 250)]
    for layer in list(dis.hidden) + [dis.out]:
        assert type(layer) is L.Linear
        assert layer.W.array.std() == pytest.approx(0.05, rel=0.05)
        assert not layer.b.array.any()
    assert [b.avg_mean.shape for b in dis.bns] == [(1000,), (500,), (500,)]
    assert [n.sigma for n in dis.noise_layers()] == [0.0] * 5
    assert dis.batch_statistics
    assert not blog_nets.BlogMLPDiscriminator().batch_statistics
    x = numpy.random.RandomState(1).uniform(-1, 1, (6, 784)).astype(
        numpy.float32)
    logits, feat = dis(x, return_features=True)
    h = x.astype(numpy.float64)
    for i, layer in enumerate(dis.hidden):
        h = elu(dense(layer, h))
        if i < 3:
            h = batch_norm(h, dis.bns[i])
    numpy.testing.assert_allclose(feat.array, h, rtol=1e-4, atol=1e-5)
    numpy.testing.assert_allclose(logits.array, dense(dis.out, h),
                                  rtol=1e-4, atol=1e-5)
    assert dis.describe() == dict(
        hidden=[1000, 500, 500, 250], activation='elu', batch_norm=3,
        input_noise=0.0, hidden_noise=0.0, noise_at='before the activation',
        init='normal-0.05', weight_norm=False)


def test_post_generator_z10_and_init():
    numpy.random.seed(0)
    gen = blog_nets.BlogMLPGenerator(**sbuild.BLOG_GEN['blog'])
    assert gen.z_dim == 10 and gen.make_hidden(4).shape == (4, 10)
    assert [l.W.shape for l in gen.lins] == [(500, 10), (500, 500)]
    for layer in list(gen.lins) + [gen.out]:
        assert layer.W.array.std() == pytest.approx(0.05, rel=0.05)
    assert gen.describe()['z_dim'] == 10


def test_bad_blog_network_arguments_are_refused():
    with pytest.raises(ValueError, match='activation'):
        blog_nets.BlogMLPDiscriminator(activation='tanh')
    with pytest.raises(ValueError, match='batch_norm'):
        blog_nets.BlogMLPDiscriminator(batch_norm=4)
    with pytest.raises(ValueError, match='init'):
        blog_nets.BlogMLPGenerator(init='he')


def test_log_d_fake_term_closed_form_and_gradient():
    """'log-d': -0.5 mean log D(x_u) + 0.5 mean log D(G(z)), with D = Z /
    (Z + 1); the default keeps -0.5 mean log(1 - D(G(z)))."""
    rng = numpy.random.RandomState(3)
    lu = rng.randn(5, 10) * 3
    lf = rng.randn(4, 10) * 3
    zu, zf = numpy.exp(lu).sum(1), numpy.exp(lf).sum(1)
    real = -0.5 * numpy.log(zu / (zu + 1)).mean()
    got = losses.virtual_class_discriminator_loss(lu, lf, fake_term='log-d')
    assert float(got.array) == pytest.approx(
        real + 0.5 * numpy.log(zf / (zf + 1)).mean(), rel=1e-10)
    got = losses.virtual_class_discriminator_loss(lu, lf)
    assert float(got.array) == pytest.approx(
        real - 0.5 * numpy.log(1 / (zf + 1)).mean(), rel=1e-10)
    gradient_check.check_backward(
        lambda a, b: losses.virtual_class_discriminator_loss(
            a, b, fake_term='log-d'), (lu, lf), numpy.ones(()), eps=1e-3,
        atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match='fake_term'):
        losses.virtual_class_discriminator_loss(lu, lf, fake_term='log')


def parsed(argv):
    return sopt.resolve(sopt.parser().parse(argv))


def test_preset_blog_is_the_posts_code_and_blog_2017_the_last():
    o = parsed(['--preset', 'blog'])
    want = dict(dis_net='blog', gen_net='blog', fake_term='log-d',
                weight_norm=False, feature_matching='blog',
                fm_target='labeled', unlabeled_weight=2.0, adam='chainer',
                lr=2e-4, beta1=0.5, lr_schedule='linear', lr_decay_epochs=0,
                grad_clip=0.0, iters_per_epoch=500, batchsize=100,
                ema_rate=0.0, validation=True, epochs=100)
    assert {k: getattr(o, k) for k in want} == want
    old = parsed(['--preset', 'blog-2017'])
    assert (old.dis_net, old.gen_net, old.fake_term, old.lr,
            old.lr_schedule) == ('blog-2017', 'blog-2017', 'log-one-minus-d',
                                 1e-3, 'steps')
    # the post's text: one flag away
    assert parsed(['--preset', 'blog', '--fake-term',
                   'log-one-minus-d']).fake_term == 'log-one-minus-d'


def test_runs_saved_before_the_posts_preset_read_as_blog_2017():
    saved = gopt.to_dict(parsed(['--preset', 'blog-2017']))
    saved.update(preset='blog', dis_net='blog', gen_net='blog')
    del saved['fake_term']
    o = sopt.from_saved(saved)
    assert (o.preset, o.dis_net, o.gen_net) == ('blog-2017',) * 3
    # a run written now keeps its names
    now = gopt.to_dict(parsed(['--preset', 'blog']))
    assert sopt.from_saved(now) == parsed(['--preset', 'blog'])


def test_batch_norm_in_d_sends_each_batch_through_alone(idx):
    """With batch norm D's batches are coupled: the updater passes the
    labeled, unlabeled and generated batch one at a time (each normalized
    by its own statistics), as the blog's code does."""
    o = parsed(['--preset', 'blog', '--data-dir', idx, '--no-validation',
                '--labels', '20', '--batchsize', '10', '--no-progress'])
    parts = sbuild.build(o)
    up, dis = parts['updater'], parts['dis']
    assert not up.fast
    rng = numpy.random.RandomState(2)
    x_l, x_u, x_g = (rng.uniform(-1, 1, (n, 784)).astype(numpy.float32)
                     for n in (4, 5, 6))
    y_l = numpy.array([0, 1, 2, 3], numpy.int32)
    loss, _ = up.discriminator_loss(x_l, y_l, x_u, x_g)
    want = (losses.supervised_loss(dis(x_l), y_l) + 2.0 *
            losses.virtual_class_discriminator_loss(dis(x_u), dis(x_g),
                                                    fake_term='log-d'))
    assert float(loss.array) == pytest.approx(float(want.array), rel=1e-5)
    joint = dis(numpy.concatenate((x_l, x_u, x_g)))
    assert not numpy.allclose(joint.array[:4], dis(x_l).array, atol=1e-3)


def test_posts_run_records_its_networks(idx, tmp_path, capsys):
    out = str(tmp_path / 'post')
    train_ssl.main(['--preset', 'blog', '--data-dir', idx,
                    '--no-validation', '--labels', '20', '--batchsize', '10',
                    '--iters-per-epoch', '2', '--epochs', '1',
                    '--no-progress', '--out', out])
    saved = json.load(open(os.path.join(out, 'options.json')))
    assert saved['preset'] == 'blog' and saved['lr'] == 2e-4
    assert saved['networks']['dis'] == post_dis().describe()
    assert saved['networks']['gen']['z_dim'] == 10
    assert saved['networks']['gen']['init'] == 'normal-0.05'
    assert sopt.from_saved(saved).dis_net == 'blog'


def test_patience_stops_once_the_error_stops_improving(idx, tmp_path):
    """A D that cannot learn (lr 1e-12, no average, no batch norm in D)
    keeps one error: the first evaluation is the best, and the run stops
    PATIENCE evaluations later instead of running all --epochs."""
    out = str(tmp_path / 'flat')
    train_ssl.main(['--data-dir', idx, '--no-validation', '--labels', '20',
                    '--batchsize', '10', '--iters-per-epoch', '2',
                    '--epochs', '9', '--lr', '1e-12', '--ema-rate', '0',
                    '--lr-decay-epochs', '0', '--patience', '2',
                    '--no-progress', '--out', out])
    log = json.load(open(os.path.join(out, 'log')))
    errors = [e['test/error_avg'] for e in log]
    assert len(set(errors)) == 1
    assert [e['epoch'] for e in log] == [1, 2, 3]
    r = json.load(open(os.path.join(out, 'result.json')))
    assert r['epochs'] == 3


def test_patience_is_checked(idx, capsys):
    with pytest.raises(SystemExit):
        train_ssl.main(['--patience', '-1', '--data-dir', idx])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and '--patience' in err[0]


def test_discriminator_of_2016_12_25_adds_noise_after_the_elu():
    """6a042a2: noise 0.3 on the input, dense 1000-500-250 with ELU and
    noise 0.5 after it, N(0, 0.035^2) weights; against numpy."""
    numpy.random.seed(0)
    dis = blog_nets.BlogMLPDiscriminator(**sbuild.BLOG_DIS['blog-2016-12-25'])
    assert dis.hidden[0].W.array.std() == pytest.approx(0.035, rel=0.05)
    assert not dis.batch_statistics
    rng = numpy.random.RandomState(4)
    x = rng.uniform(-1, 1, (3, 784)).astype(numpy.float32)
    noises = [rng.randn(3, n) for n in (784, 1000, 500, 250)]
    for layer, e in zip(dis.noise_layers(), noises):
        layer.noise_source = Replay([e])
    logits, feat = dis(x, return_features=True)
    h = x + 0.3 * noises[0]
    for layer, e in zip(dis.hidden, noises[1:]):
        h = elu(dense(layer, h)) + 0.5 * e
    numpy.testing.assert_allclose(feat.array, h, rtol=1e-4, atol=1e-4)
    numpy.testing.assert_allclose(logits.array, dense(dis.out, h),
                                  rtol=1e-4, atol=1e-4)
    o = parsed(['--preset', 'blog-2016-12-25'])
    assert (o.dis_net, o.gen_net, o.fake_term, o.lr) == (
        'blog-2016-12-25', 'blog-2016-12-25', 'log-one-minus-d', 2e-4)
    with pytest.raises(ValueError, match='noise_at'):
        blog_nets.BlogMLPDiscriminator(noise_at='inside')
