"""The blog's last semi-supervised setting (train_ssl.py --preset
blog-2017): its
networks, losses, schedule and wiring, each against a direct numpy
computation or a plain loop."""
import json
import os

import numpy
import pytest

import chainer
import chainer.links as L

import train_ssl
from gan import blog_nets
from gan import options as gopt
from gan import extensions as gext
from gan.iterators import ArrayIterator, FixedLengthEpochs
from mnist_ssl import options as sopt
from mnist_ssl import build as sbuild
from test_mnist_data import make_idx_dir


def softplus(u):
    return numpy.logaddexp(0.0, u)


def logsumexp(a):
    m = a.max(axis=1, keepdims=True)
    return (m + numpy.log(numpy.exp(a - m).sum(axis=1, keepdims=True)))[:, 0]


def dense(layer, x):
    return x.astype(numpy.float64).dot(layer.W.array.T.astype(
        numpy.float64)) + layer.b.array


def numpy_blog_dis(dis, x, noises=None):
    """The blog's D in numpy: noise on the input; per hidden layer dense,
    noise, softplus; dense logits.  Returns (logits, last hidden)."""
    noises = noises or [0.0] * 4
    h = x + 0.3 * noises[0]
    for i, layer in enumerate(dis.hidden):
        h = softplus(dense(layer, h) + 0.5 * noises[i + 1])
    return dense(dis.out, h), h


class Replay:
    """A noise source handing out given arrays in turn."""

    def __init__(self, arrays):
        self.arrays = list(arrays)

    def __call__(self, shape, xp, dtype):
        a = self.arrays.pop(0)
        assert a.shape == tuple(shape)
        return a.astype(dtype)


def test_blog_discriminator_layers_and_init():
    dis = blog_nets.BlogMLPDiscriminator()
    sizes = [(l.W.shape[1], l.W.shape[0]) for l in dis.hidden]
    assert sizes == [(784, 1000), (1000, 500), (500, 250)]
    assert dis.out.W.shape == (10, 250)
    for layer in list(dis.hidden) + [dis.out]:
        assert type(layer) is L.Linear  # no weight norm
        fan_out, fan_in = layer.W.shape
        # Glorot-normal: std sqrt(2 / (fan_in + fan_out)); zero biases
        std = numpy.sqrt(2.0 / (fan_in + fan_out))
        assert layer.W.array.std() == pytest.approx(std, rel=0.05)
        assert not layer.b.array.any()
    assert [n.sigma for n in dis.noise_layers()] == [0.3, 0.5, 0.5, 0.5]
    assert dis.mbd is None


def test_blog_discriminator_forward_noise_before_softplus():
    """Noise on the input and on each pre-activation, then softplus; the
    features are the last hidden output; no noise in test mode."""
    rng = numpy.random.RandomState(0)
    dis = blog_nets.BlogMLPDiscriminator()
    x = rng.uniform(-1, 1, (3, 784)).astype(numpy.float32)
    noises = [rng.randn(3, n) for n in (784, 1000, 500, 250)]
    for layer, e in zip(dis.noise_layers(), noises):
        layer.noise_source = Replay([e, e])
    logits, feat = dis(x, return_features=True)
    want_logits, want_feat = numpy_blog_dis(dis, x, noises)
    numpy.testing.assert_allclose(logits.array, want_logits, rtol=1e-4,
                                  atol=1e-4)
    numpy.testing.assert_allclose(feat.array, want_feat, rtol=1e-4,
                                  atol=1e-5)
    numpy.testing.assert_allclose(dis.features(x).array, want_feat,
                                  rtol=1e-4, atol=1e-5)
    with chainer.using_config('train', False):
        clean = dis(x).array
    numpy.testing.assert_allclose(clean, numpy_blog_dis(dis, x)[0],
                                  rtol=1e-4, atol=1e-4)
    assert not numpy.allclose(clean, want_logits, atol=1e-2)


def test_blog_generator_layers_range_and_forward():
    gen = blog_nets.BlogMLPGenerator()
    assert gen.z_dim == 50
    assert [l.W.shape for l in gen.lins] == [(500, 50), (500, 500)]
    assert gen.out.W.shape == (784, 500)
    assert [b.avg_mean.shape for b in gen.bns] == [(500,), (500,)]
    chainer.global_config  # noqa
    from gan import random as grandom
    grandom.seed(3)
    z = gen.make_hidden(2000)
    assert z.shape == (2000, 50) and z.dtype == numpy.float32
    assert -1 <= z.min() < -0.99 and 0.99 < z.max() < 1
    assert abs(z.mean()) < 0.01
    z = z[:8]
    x = gen(z).array
    # numpy: dense, batch norm on batch statistics (gamma 1, beta 0 at
    # init), ReLU; twice; dense, tanh
    h = z.astype(numpy.float64)
    for lin, bn in zip(gen.lins, gen.bns):
        a = dense(lin, h)
        a = (a - a.mean(0)) / numpy.sqrt(a.var(0) + bn.eps)
        h = numpy.maximum(a * bn.gamma.array + bn.beta.array, 0)
    want = numpy.tanh(dense(gen.out, h))
    numpy.testing.assert_allclose(x, want, rtol=1e-4, atol=1e-5)
    assert x.shape == (8, 784) and -1 < x.min() < 0 < x.max() < 1


@pytest.fixture(scope='module')
def idx_dir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('idx'))
    make_idx_dir(root, n_train=600, n_test=200)
    return root


def hooks(opt):
    return opt._hookable._pre_update_hooks


def blog_options(idx_dir, **kw):
    o = dict(sopt.DEFAULTS, **sopt.PRESETS['blog-2017'])
    # the offline MNIST (--validation needs more than the tiny IDX set)
    o.update(pool_size=600, labels=20, batchsize=10, progress=False)
    o.update(kw)
    return o


def test_blog_preset_builds_the_blog_run(idx_dir):
    o = blog_options(idx_dir)
    parts = sbuild.build(o)
    assert isinstance(parts['dis'], blog_nets.BlogMLPDiscriminator)
    assert isinstance(parts['gen'], blog_nets.BlogMLPGenerator)
    d = parts['data']
    assert d.eval_name == 'validation' and len(d.y_eval) == 10000
    assert len(parts['y_test']) == 10000  # the test set reported alongside
    # real images in the generator's range [-1, 1]
    assert d.x_pool.min() == -1.0 and d.x_pool.max() == 1.0
    assert parts['x_test'].min() == -1.0
    u = parts['updater']
    assert (u.feature_matching, u.fm_target, u.unlabeled_weight) == \
        ('blog', 'labeled', 2.0)
    for opt in parts['optimizers'].values():
        assert type(opt) is chainer.optimizers.Adam
        assert (opt.alpha, opt.beta1, opt.eps) == (1e-3, 0.5, 1e-8)
        assert not hooks(opt)  # no gradient clipping (see docs)
    clipped = sbuild.make_optimizer(sopt.resolve(o, grad_clip=10.0),
                                   L.Linear(2))
    hook, = hooks(clipped).values()
    assert isinstance(hook, chainer.optimizer_hooks.GradientClipping)
    assert hook.threshold == 10.0


def test_blog_losses_against_numpy(idx_dir):
    """The D loss (CE + the full unsupervised terms) and the G loss
    (-log D(G(z)) + per-sample MSE of the last hidden layer against the
    labeled batch) of the preset's updater, against numpy, noise off."""
    parts = sbuild.build(blog_options(idx_dir))
    u, dis = parts['updater'], parts['dis']
    rng = numpy.random.RandomState(1)
    x_l = rng.uniform(-1, 1, (4, 784)).astype(numpy.float32)
    y_l = numpy.array([0, 3, 3, 9], dtype=numpy.int32)
    x_u = rng.uniform(-1, 1, (5, 784)).astype(numpy.float32)
    x_g = rng.uniform(-1, 1, (4, 784)).astype(numpy.float32)
    with chainer.using_config('train', False):
        loss_d, _ = u.discriminator_loss(x_l, y_l, x_u, x_g)
        loss_g, _ = u.generator_loss(x_l, chainer.Variable(x_g))
    l_l, f_l = numpy_blog_dis(dis, x_l)
    l_u, _ = numpy_blog_dis(dis, x_u)
    l_g, f_g = numpy_blog_dis(dis, x_g)
    ce = numpy.mean(logsumexp(l_l) - l_l[numpy.arange(4), y_l])
    # D(x) = Z / (Z + 1), Z = sum exp(logits)
    z_u, z_g = numpy.exp(logsumexp(l_u)), numpy.exp(logsumexp(l_g))
    want_d = ce - numpy.mean(numpy.log(z_u / (z_u + 1))) \
        - numpy.mean(numpy.log(1 / (z_g + 1)))
    assert float(loss_d.array) == pytest.approx(want_d, rel=1e-4)
    want_g = -numpy.mean(numpy.log(z_g / (z_g + 1))) + numpy.mean(
        (f_l - f_g) ** 2)
    assert float(loss_g.array) == pytest.approx(want_g, rel=1e-4)


def test_epoch_steps_follows_the_blogs_schedule():
    """alpha in every iteration of a 60-epoch run of 3 iterations per
    epoch, against the blog's get_learning_rate_for_epoch."""
    def blog_lr(epoch):
        return 1e-3 if epoch < 10 else 3e-4 if epoch < 50 else 1e-4

    data = numpy.arange(20, dtype=numpy.float32).reshape(10, 2)
    it = FixedLengthEpochs(ArrayIterator((data,), 4, seed=0), 3)
    link = L.Linear(2, 1)
    opt = chainer.optimizers.Adam(alpha=5.0)
    opt.setup(link)
    seen = []

    def update():
        batch, = it.next()
        seen.append((it.epoch_detail, opt.alpha))
        link.cleargrads()
        chainer.functions.sum(link(batch)).backward()
        opt.update()

    updater = chainer.training.updaters.StandardUpdater(it, opt)
    updater.update_core = update
    trainer = chainer.training.Trainer(updater, (60, 'epoch'))
    steps = gext.parse_epoch_steps('10:3e-4,50:1e-4')
    trainer.extend(gext.EpochSteps('alpha', 1e-3, steps, opt))
    trainer.run()
    assert len(seen) == 180
    for i, (_, alpha) in enumerate(seen):
        assert alpha == blog_lr(i // 3 + 1), i


@pytest.mark.parametrize('text', ['10', '1:1e-3', '10:0', '10:1e-3,5:1e-4',
                                  'a:b'])
def test_parse_epoch_steps_rejects(text):
    with pytest.raises(ValueError):
        gext.parse_epoch_steps(text)


def test_fixed_length_epochs_counts_and_resumes():
    data = numpy.arange(7, dtype=numpy.float32)
    it = FixedLengthEpochs(ArrayIterator((data,), 3, seed=1), 5)
    batches = [it.next()[0] for _ in range(7)]
    assert (it.epoch, it.epoch_detail, it.is_new_epoch) == (1, 1.4, False)
    assert it.previous_epoch_detail == pytest.approx(1.2)
    saved = {}
    it2 = FixedLengthEpochs(ArrayIterator((data,), 3, seed=1), 5)
    for _ in range(4):
        it2.next()
    assert it2.is_new_epoch is False
    it2.next()
    assert it2.is_new_epoch and it2.epoch == 1
    from chainer.serializers import DictionarySerializer, NpzDeserializer
    s = DictionarySerializer(saved)
    it.serialize(s)
    it3 = FixedLengthEpochs(ArrayIterator((data,), 3, seed=99), 5)
    it3.serialize(NpzDeserializer(saved))
    assert it3.epoch_detail == it.epoch_detail
    numpy.testing.assert_array_equal(it3.next()[0], it.next()[0])
    # the base iterator keeps its own passes over the 7 values
    assert sorted(numpy.concatenate(batches)[:7]) == list(range(7))


# every option of the blog preset, with a flag that moves it off the
# preset's value alone: (flag arguments, the option's new value)
SWITCHES = {
    'dis_net': (['--dis-net', 'paper'], 'paper'),
    'weight_norm': (['--weight-norm'], True),
    'gen_net': (['--gen-net', 'paper'], 'paper'),
    'feature_matching': (['--feature-matching', 'paper'], 'paper'),
    'fm_target': (['--fm-target', 'unlabeled'], 'unlabeled'),
    'unlabeled_weight': (['--unlabeled-weight', '1'], 1.0),
    'adam': (['--adam', 'eps-in-sqrt'], 'eps-in-sqrt'),
    'lr': (['--lr', '0.003'], 0.003),
    'beta1': (['--beta1', '0.9'], 0.9),
    'lr_schedule': (['--lr-schedule', 'linear'], 'linear'),
    'lr_steps': (['--lr-steps', '5:1e-4'], '5:1e-4'),
    'grad_clip': (['--grad-clip', '10'], 10.0),
    'iters_per_epoch': (['--iters-per-epoch', '600'], 600),
    'batchsize': (['--batchsize', '50'], 50),
    'ema_rate': (['--ema-rate', '0.001'], 0.001),
    'validation': (['--no-validation'], False),
}


def parsed(argv):
    return vars(sopt.parser().parse_args(argv))


def test_blog_preset_values_and_each_part_is_a_flag():
    preset = sopt.PRESETS['blog-2017']
    assert set(SWITCHES) == set(preset)
    blog = parsed(['--preset', 'blog-2017'])
    paper = parsed([])
    assert blog['preset'] == 'blog-2017' and paper['preset'] == 'paper'
    for key, value in preset.items():
        assert blog[key] == value, key
        assert paper[key] == sopt.DEFAULTS[key], key
    # the options that are not part of the preset are the paper's defaults
    assert {k: v for k, v in blog.items() if k not in preset
            and k != 'preset'} == {k: v for k, v in paper.items()
                                   if k not in preset and k != 'preset'}
    for key, (flag, value) in SWITCHES.items():
        switched = parsed(['--preset', 'blog-2017'] + flag)
        assert value != preset[key]
        changed = {k for k in blog if switched[k] != blog[k]}
        assert changed == {key}, (flag, changed)
        assert switched[key] == value
    # flags before --preset win as well
    assert parsed(['--grad-clip', '5', '--preset', 'blog-2017'])['grad_clip'] == 5


def resolved(argv):
    return gopt.to_dict(sopt.resolve(parsed(argv)))


def test_each_switch_changes_only_its_resolved_option():
    """The options a run records: one switch moves one of them, but for
    --lr-schedule linear, which brings the default linear decay (a third
    of the run) that the step schedule lacks."""
    blog = resolved(['--preset', 'blog-2017', '--epochs', '7'])
    assert blog['lr_decay_epochs'] == 0
    for key, (flag, value) in SWITCHES.items():
        switched = resolved(['--preset', 'blog-2017', '--epochs', '7'] + flag)
        changed = {k for k in blog if switched[k] != blog[k]}
        want = {key, 'lr_decay_epochs'} if key == 'lr_schedule' else {key}
        assert changed == want, (flag, changed)
        sopt.check(sopt.resolve(switched))
    assert resolved(['--preset', 'blog-2017', '--epochs', '7', '--lr-schedule',
                     'linear'])['lr_decay_epochs'] == 2  # round(7 / 3)


def test_step_schedule_refuses_a_linear_decay(idx_dir, capsys):
    o = sopt.resolve(parsed(['--preset', 'blog-2017', '--lr-decay-epochs', '0']))
    sopt.check(o)  # 0: no decay, as resolved
    o = sopt.resolve(parsed(['--preset', 'blog-2017', '--lr-decay-epochs', '5']))
    with pytest.raises(sopt.OptionError,
                       match='--lr-decay-epochs 5 applies to --lr-schedule '
                       'linear only'):
        sopt.check(o)
    with pytest.raises(SystemExit) as e:
        train_ssl.main(['--preset', 'blog-2017', '--lr-decay-epochs', '5',
                        '--out', '/nonexistent/never'])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('train_ssl.py: error: ')


def test_step_schedule_has_no_linear_decay_extension(idx_dir, tmp_path):
    """Under --lr-schedule steps the trainer holds the step schedule and no
    linear decay, whatever --epochs; under linear the reverse."""
    o = blog_options(idx_dir, epochs=9, out=str(tmp_path / 'x'))
    parts = sbuild.build(o)
    names = set(sbuild.make_trainer(o, parts)._extensions)
    assert {'lr_steps_dis', 'lr_steps_gen'} <= names
    assert not [n for n in names if n.startswith('lr_decay_')]
    names = set(sbuild.make_trainer(
        dict(o, lr_schedule='linear'), parts)._extensions)
    assert {'lr_decay_dis', 'lr_decay_gen'} <= names
    assert not [n for n in names if n.startswith('lr_steps_')]


BLOG_SMALL = ['--preset', 'blog-2017', '--pool-size', '600', '--labels', '20',
              '--batchsize', '10', '--iters-per-epoch', '3', '--lr-steps',
              '2:3e-4', '--no-progress', '--grid-interval', '2']


def test_blog_run_records_resolved_options_and_resumes(tmp_path, capsys):
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    train_ssl.main(BLOG_SMALL + ['--epochs', '2', '--grad-clip', '10',
                                 '--out', a])
    assert 'test:' in capsys.readouterr().out
    o = json.load(open(os.path.join(a, 'options.json')))
    want = dict(sopt.PRESETS['blog-2017'], preset='blog-2017', grad_clip=10.0,
                iters_per_epoch=3, lr_steps='2:3e-4', batchsize=10,
                labels=20, epochs=2, lr_decay_epochs=0,
                feature_matching='blog')
    for key, value in want.items():
        assert o[key] == value, key
    r = json.load(open(os.path.join(a, 'result.json')))
    assert r['iterations'] == 6 and r['evaluated_on'] == 'validation'
    # no parameter average: the 'avg' numbers are the raw D's
    assert r['test_errors'] == r['test_errors_raw']
    assert r['test_set_errors'] == r['test_set_errors_raw']
    log = json.load(open(os.path.join(a, 'log')))
    assert [e['epoch'] for e in log] == [1, 2]
    assert log[-1]['test/errors_raw'] == r['test_set_errors_raw']
    with numpy.load(os.path.join(a, 'snapshot_iter_6')) as f:
        assert not [k for k in f.files if 'parameter_average' in k]
    # one epoch, then resumed for the second (with its lower rate); the
    # finished run goes on from its snapshot (--resume auto reports it)
    train_ssl.main(BLOG_SMALL + ['--epochs', '1', '--grad-clip', '10',
                                 '--eval-interval', '2', '--out', b])
    train_ssl.main(BLOG_SMALL + ['--epochs', '2', '--grad-clip', '10',
                                 '--eval-interval', '2', '--out', b,
                                 '--resume', os.path.join(b,
                                                          'snapshot_iter_3')])
    assert json.load(open(os.path.join(b, 'options.json')))[
        'lr_decay_epochs'] == 0
    with numpy.load(os.path.join(a, 'snapshot_iter_6')) as fa, \
            numpy.load(os.path.join(b, 'snapshot_iter_6')) as fb:
        keys = [k for k in fa.files if k.startswith('updater/model:')]
        assert len(keys) > 10
        for k in keys:
            numpy.testing.assert_allclose(fa[k], fb[k], rtol=1e-6,
                                          atol=1e-7, err_msg=k)
    rb = json.load(open(os.path.join(b, 'result.json')))
    assert rb['test_set_errors'] == r['test_set_errors']
