import json
import os

import numpy
import pytest

import chainer

import train_ssl
from gan import links, losses, nets
from gan import options as gopt
from gan.fast import mlp as fast_mlp
from gan.ssl_updater import SemiSupervisedGANUpdater
from mnist_ssl import options as sopt
from mnist_ssl import build as sbuild
from test_mnist_data import make_idx_dir

BASE = ['--batchsize', '50', '--lr-decay-epochs', '0', '--no-progress',
        '--labels', '20']
SMALL = list(BASE)


@pytest.fixture(scope='module', autouse=True)
def tiny_mnist(tmp_path_factory):
    """600 training and 200 test images in IDX form, for fast runs."""
    root = str(tmp_path_factory.mktemp('idx'))
    make_idx_dir(root, n_train=600, n_test=200)
    SMALL[:] = BASE + ['--data-dir', root]
    yield root


def run_cli(args):
    return train_ssl.main(args)


def test_short_run_writes_every_output(tmp_path):
    """On the real (offline) MNIST, a pool of 600 images."""
    out = str(tmp_path / 'run')
    run_cli(BASE + ['--pool-size', '600', '--epochs', '1', '--out', out])
    for name in ('options.json', 'log', 'accuracy.png', 'loss.png',
                 'samples_epoch001.png', 'snapshot_iter_12', 'result.json',
                 'labeled.png'):
        assert os.path.exists(os.path.join(out, name)), name
    # 20 labels: a row of 2 digits per class (28 px, 2 px apart)
    from PIL import Image
    assert Image.open(os.path.join(out, 'labeled.png')).size == (58, 298)
    result = json.load(open(os.path.join(out, 'result.json')))
    for key in ('test_error', 'test_errors', 'labels', 'seed', 'data_seed',
                'epochs', 'wall_seconds', 'options'):
        assert key in result
    assert result['labels'] == 20 and result['iterations'] == 12
    assert result['evaluated_on'] == 'test'
    assert result['test_error'] == pytest.approx(result['test_errors'] / 1e4)
    cm = numpy.array(result['confusion_avg'])
    assert cm.shape == (10, 10) and cm.sum() == 10000
    assert cm.sum() - numpy.trace(cm) == result['test_errors']
    log = json.load(open(os.path.join(out, 'log')))
    for key in ('dis/loss_lab', 'dis/loss_unl', 'gen/loss'):
        assert numpy.isfinite(log[-1][key])
    # the generated batch varies as a healthy generator's does (0.044
    # here); a collapsed one gives under 0.006
    assert 0.01 < log[-1]['gen/sample_std'] < 0.5
    assert result['generator_collapse_epoch'] is None  # not checked yet
    assert result['generator_recovered'] is None
    # the same --out again without --resume is refused, not overwritten
    with pytest.raises(SystemExit) as e:
        run_cli(SMALL + ['--epochs', '1', '--out', out])
    assert e.value.code == 2


def test_collapse_is_warned_and_recorded(tmp_path, capsys):
    """With a threshold above any spread every epoch from the second on
    counts as collapsed: the warning comes once, at epoch 2, and
    result.json records epoch 2."""
    out = str(tmp_path / 'run')
    run_cli(BASE + ['--pool-size', '600', '--epochs', '3',
                    '--collapse-threshold', '1', '--out', out])
    captured = capsys.readouterr()
    assert captured.err.count('the generator has collapsed') == 1
    assert 'warning: epoch 2:' in captured.err
    assert 'the generator collapsed at epoch 2, not recovered' in \
        captured.out
    result = json.load(open(os.path.join(out, 'result.json')))
    assert result['generator_collapse_epoch'] == 2
    assert result['generator_recovered'] is False


@pytest.mark.parametrize('args, message', [
    (['--labels', '15'], 'positive multiple of 10'),
    (['--labels', '700'], 'exceeds the pool'),
    (['--device', 'bogus'], '--device'),
    (['--resume', '/nonexistent/snap'], 'no such snapshot'),
    (['--data-dir', '/nonexistent/mnist'], 'no such folder'),
    (['--lr-decay-epochs', '5', '--epochs', '2'], 'lr-decay-epochs'),
    (['--keep-every', '-2'], '--keep-every must be 0 (none) or positive'),
    (['--vat-weight', '-1'], '--vat-weight must be 0 (no VAT) or positive'),
    (['--vat-weight', '1', '--vat-eps', '0'], '--vat-eps must be positive'),
    (['--vat-xi', '-0.1'], '--vat-xi must be positive'),
    (['--out', '/dev/null/run'], 'cannot create the folder'),
    (['--feature-matching', 'mean'], "invalid choice: 'mean'"),
    (['--feature-matching', 'paired'], "invalid choice: 'paired'"),
    (['--preset', 'nope'], "invalid choice: 'nope'"),
    (['--mbd-form', 'nope'], "invalid choice: 'nope'"),
    (['--epochs', '0'], 'must be positive'),
])
def test_bad_options_give_one_line_errors(tmp_path, capsys, args, message):
    base = [a for a in SMALL]
    if '--data-dir' in args:
        i = base.index('--data-dir')
        del base[i:i + 2]
    if '--labels' in args:
        i = base.index('--labels')
        del base[i:i + 2]
    if '--lr-decay-epochs' in args:
        i = base.index('--lr-decay-epochs')
        del base[i:i + 2]
    if '--out' not in args:
        args = args + ['--out', str(tmp_path / 'x')]
    with pytest.raises(SystemExit) as e:
        run_cli(base + args)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
    if 'invalid choice' not in message and 'positive' not in message:
        # ours: one line; argparse's own add its usage first
        assert err == ['train_ssl.py: error: ' + err[-1].split(
            'error: ', 1)[1]]
    assert 'Traceback' not in '\n'.join(err)
    assert not os.path.exists(str(tmp_path / 'x', )) or not os.listdir(
        str(tmp_path / 'x'))  # nothing of a run written


def test_argparse_rejects_unknown_choice(capsys):
    with pytest.raises(SystemExit):
        run_cli(['--feature-matching', 'bogus'])
    assert 'invalid choice' in capsys.readouterr().err


def _dis_params(out, snapshot):
    with numpy.load(os.path.join(out, snapshot)) as f:
        return {k: f[k] for k in f.files if k.startswith('updater/model:dis')
                or k.startswith('updater/model:gen')}


def test_resume_continues_exactly(tmp_path):
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    run_cli(SMALL + ['--epochs', '2', '--out', a])
    run_cli(SMALL + ['--epochs', '1', '--out', b])
    # a finished run goes on from its snapshot (--resume auto would
    # report it); kept snapshots switched on when resuming: the snapshot
    # has no state of that extension, and it does not change the run
    run_cli(SMALL + ['--epochs', '2', '--out', b, '--resume',
                     os.path.join(b, 'snapshot_iter_12'), '--keep-every',
                     '2'])
    ra = json.load(open(os.path.join(a, 'result.json')))
    rb = json.load(open(os.path.join(b, 'result.json')))
    assert ra['iterations'] == rb['iterations'] == 24
    assert os.path.exists(os.path.join(b, 'snapshot_epoch_002'))
    assert not os.path.exists(os.path.join(a, 'snapshot_epoch_002'))
    pa, pb = _dis_params(a, 'snapshot_iter_24'), _dis_params(b,
                                                              'snapshot_iter_24')
    assert pa.keys() == pb.keys() and len(pa) > 10
    for k in pa:
        numpy.testing.assert_allclose(pa[k], pb[k], rtol=1e-6, atol=1e-7,
                                      err_msg=k)
    assert ra['test_errors'] == rb['test_errors']
    # an unfinished run (stopped after its epoch-1 snapshot, no
    # result.json) is continued by --resume auto
    c = str(tmp_path / 'c')
    run_cli(SMALL + ['--epochs', '2', '--max-iterations', '12', '--out', c])
    os.remove(os.path.join(c, 'result.json'))
    run_cli(SMALL + ['--epochs', '2', '--out', c, '--resume', 'auto'])
    rc = json.load(open(os.path.join(c, 'result.json')))
    assert rc['iterations'] == 24
    assert json.load(open(os.path.join(c, 'options.json')))[
        'resumed_from'] == os.path.join(c, 'snapshot_iter_12')
    pc = _dis_params(c, 'snapshot_iter_24')
    for k in pa:
        numpy.testing.assert_allclose(pa[k], pc[k], rtol=1e-6, atol=1e-7,
                                      err_msg=k)
    # one machines.jsonl line per process that trained the run, with the
    # iteration it started from
    lines = [json.loads(l) for l in
             open(os.path.join(b, 'machines.jsonl')).read().splitlines()]
    assert [m['iteration'] for m in lines] == [0, 12]
    assert [json.loads(l)['iteration'] for l in open(
        os.path.join(a, 'machines.jsonl')).read().splitlines()] == [0]
    for m in lines + [rb['machine']]:
        assert m['cpu_count'] == os.cpu_count()
        assert m['numpy'] == numpy.__version__
        assert m['chainer'] == chainer.__version__
        assert m['OPENBLAS_NUM_THREADS'] == os.environ.get(
            'OPENBLAS_NUM_THREADS')


def test_cpu_model_and_machine_line(tmp_path):
    import platform
    from gan import runs
    info = tmp_path / 'cpuinfo'
    info.write_text('processor\t: 0\nvendor_id\t: AuthenticAMD\n'
                    'model name\t: AMD EPYC 7B13 64-Core Processor\n\n'
                    'processor\t: 1\nmodel name\t: something else\n')
    assert runs.cpu_model(str(info)) == 'AMD EPYC 7B13 64-Core Processor'
    info.write_text('processor\t: 0\nflags\t: fpu sse2\n')
    fallback = platform.processor() or None
    assert runs.cpu_model(str(info)) == fallback
    assert runs.cpu_model(str(tmp_path / 'missing')) == fallback
    m = {'platform': 'Linux-6.1-x86_64', 'cpu': 'AMD EPYC', 'cpu_count': 2,
         'numpy': '1.26.4', 'chainer': '7.8.1',
         'blas': [{'library': 'openblas', 'version': '0.3.23',
                   'architecture': 'Zen', 'threads': 1}]}
    assert runs.machine_text(m) == (
        'Linux-6.1-x86_64; AMD EPYC; 2 CPUs; openblas 0.3.23 (Zen kernels); '
        'numpy 1.26.4, Chainer 7.8.1')
    assert runs.machine_text(dict(m, cpu=None, blas=[])) == (
        'Linux-6.1-x86_64; 2 CPUs; numpy 1.26.4, Chainer 7.8.1')


def test_branch_with_a_decay_equals_a_run_with_it_from_the_start(tmp_path):
    """A constant-rate run continued from its epoch-1 snapshot in a new
    folder, with the rate decayed over the last 2 of 3 epochs, computes
    what a run with that schedule computes from the start (epoch 1 is at
    the full rate in both)."""
    a, c, br = (str(tmp_path / n) for n in ('a', 'c', 'branch'))
    decay = ['--epochs', '3', '--lr-decay-epochs', '2']
    run_cli(SMALL + decay + ['--out', a])
    # constant rate; epoch 1's snapshot kept
    run_cli(SMALL + ['--epochs', '2', '--out', c, '--keep-every', '1'])
    assert os.path.exists(os.path.join(c, 'snapshot_epoch_002'))
    run_cli(SMALL + decay + ['--out', br, '--resume',
                             os.path.join(c, 'snapshot_epoch_001')])
    ra = json.load(open(os.path.join(a, 'result.json')))
    rb = json.load(open(os.path.join(br, 'result.json')))
    assert ra['iterations'] == rb['iterations'] == 36
    pa = _dis_params(a, 'snapshot_iter_36')
    pb = _dis_params(br, 'snapshot_iter_36')
    assert pa.keys() == pb.keys() and len(pa) > 10
    for k in pa:
        numpy.testing.assert_allclose(pa[k], pb[k], rtol=1e-6, atol=1e-7,
                                      err_msg=k)
    assert (ra['test_errors'], ra['test_errors_raw']) == (
        rb['test_errors'], rb['test_errors_raw'])
    # the branch's log starts with the source run's epoch 1
    log_b = json.load(open(os.path.join(br, 'log')))
    log_c = json.load(open(os.path.join(c, 'log')))
    assert [e['epoch'] for e in log_b] == [1, 2, 3]
    assert log_b[0] == log_c[0]
    with numpy.load(os.path.join(br, 'snapshot_iter_36')) as f:
        assert int(f['extensions/lr_decay_dis/_t']) == 36
        assert float(f['extensions/lr_decay_gen/_last_value']) == 0.0


def test_evaluate_snapshot_reproduces_the_runs_final_numbers(tmp_path,
                                                             capsys):
    from mnist_ssl import evaluate
    a = str(tmp_path / 'a')
    run_cli(SMALL + ['--epochs', '1', '--out', a])
    ra = json.load(open(os.path.join(a, 'result.json')))
    grid = str(tmp_path / 'errors.png')
    r = evaluate.main([a, '--json', str(tmp_path / 'e.json'),
                       '--errors-grid', grid, '--grid-rows', '2'])
    # parameters and average rebuilt from the snapshot, in a fresh model
    assert r['errors_raw'] == ra['test_errors_raw']
    assert r['errors_avg'] == ra['test_errors']
    assert r['confusion_avg'] == ra['confusion_avg']
    if r['errors_avg']:  # a row per confusion pair: 2 x 30 px high
        from PIL import Image
        assert Image.open(grid).size[1] == min(
            2, sum(1 for i, row in enumerate(r['confusion_avg'])
                   for j, c in enumerate(row) if i != j and c)) * 30 - 2
    assert json.load(open(str(tmp_path / 'e.json')))['errors_avg'] == \
        ra['test_errors']
    with pytest.raises(SystemExit) as e:
        evaluate.main([str(tmp_path)])
    assert e.value.code == 2
    assert 'not a train_ssl.py run folder' in capsys.readouterr().err
    broken = tmp_path / 'broken_snapshot'
    broken.write_bytes(b'PK\x03\x04 truncated')
    with pytest.raises(SystemExit) as e:
        evaluate.main([a, '--snapshot', str(broken)])
    assert e.value.code == 2
    assert 'cannot be read' in capsys.readouterr().err


def test_snapshot_from_another_model_is_refused(tmp_path, capsys):
    a = str(tmp_path / 'a')
    run_cli(SMALL + ['--epochs', '1', '--out', a])
    with pytest.raises(SystemExit) as e:
        run_cli(SMALL + ['--epochs', '2', '--out', str(tmp_path / 'c'),
                         '--minibatch-discrimination', '--resume',
                         os.path.join(a, 'snapshot_iter_12')])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'does not match this model' in err[0]
    assert '(its run has --minibatch-discrimination False (asked: True))' \
        in err[0]
    broken = tmp_path / 'snapshot_iter_5'
    broken.write_bytes(b'PK\x03\x04 truncated')
    with pytest.raises(SystemExit) as e:
        run_cli(SMALL + ['--epochs', '2', '--out', str(tmp_path / 'd'),
                         '--resume', str(broken)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'cannot be read' in err[0]


class Replay:
    """Noise source that hands out consecutive rows of a fixed table."""

    def __init__(self, table):
        self.table, self.pos = table, 0

    def __call__(self, shape, xp, dtype):
        rows = self.table[self.pos:self.pos + shape[0]]
        self.pos += shape[0]
        return rows.astype(dtype)


def _copy(net, fast):
    """A copy of a network built with ``fast=True``, computing with the
    fast nodes or the composed links."""
    net = net.copy(mode='copy')
    for link in net.links():
        if hasattr(link, 'fast'):
            link.fast = fast
    return net


def _updater(fused, dis, gen):
    it = {k: None for k in ('main', 'labeled', 'unlabeled2')}

    class Dummy:
        def __init__(self):
            self.epoch, self.epoch_detail, self.is_new_epoch = 0, 0., False
    it = {k: Dummy() for k in it}
    opts = {}
    for name, link in (('dis', dis), ('gen', gen)):
        o = chainer.optimizers.SGD()
        o.setup(link)
        opts[name] = o
    return SemiSupervisedGANUpdater(it, opts, fast=fused)


@pytest.mark.parametrize('fm', ['paper', 'blog', 'none'])
def test_fast_path_equals_straightforward(fm):
    """Fused D pass, fused nodes, constant parameters in the G step
    against three separate passes of the composed Chainer version, with
    the same noise replayed: same losses, same gradients."""
    rng = numpy.random.RandomState(0)
    dis = nets.MLPDiscriminator(hidden=(30, 20, 10), fast=True)
    x = rng.rand(120, 784).astype(numpy.float32)
    with links.data_dependent_init():
        dis(x[:60])
    gen = nets.MLPGenerator(z_dim=8, hidden=(16, 16), fast=True)
    x_l, y_l = x[:30], rng.randint(0, 10, 30).astype(numpy.int32)
    x_u, x_u2 = x[30:60], x[60:90]
    z_d, z_g = rng.rand(30, 8).astype('f'), rng.rand(30, 8).astype('f')
    tables = [rng.randn(300, n) for n in (784, 30, 20, 10)]
    results = []
    for fast in (True, False):
        d, g = _copy(dis, fast), _copy(gen, fast)
        for layer, table in zip(d.noise_layers(), tables):
            layer.noise_source = Replay(table)
        up = _updater(fast, d, g)
        up.feature_matching = fm
        with chainer.no_backprop_mode():
            x_g = g(z_d).array
        loss_d, rep = up.discriminator_loss(x_l, y_l, x_u, x_g)
        d.cleargrads()
        loss_d.backward()
        grads_d = {k: p.grad.copy() for k, p in d.namedparams()}
        x_g = g(z_g)
        with fast_mlp.constant_parameters():  # as update_core does
            loss_g, _ = up.generator_loss(x_u2, x_g)
        g.cleargrads()
        loss_g.backward()
        grads_g = {k: p.grad.copy() for k, p in g.namedparams()}
        results.append((float(loss_d.array), float(rep['loss_lab'].array),
                        float(loss_g.array), grads_d, grads_g))
    (ld1, la1, lg1, gd1, gg1), (ld2, la2, lg2, gd2, gg2) = results
    assert ld1 == pytest.approx(ld2, rel=1e-5)
    assert la1 == pytest.approx(la2, rel=1e-5)
    assert lg1 == pytest.approx(lg2, rel=1e-5, abs=1e-8)
    for k in gd1:
        numpy.testing.assert_allclose(gd1[k], gd2[k], rtol=1e-3, atol=1e-6,
                                      err_msg=k)
    for k in gg1:
        numpy.testing.assert_allclose(gg1[k], gg2[k], rtol=1e-3, atol=1e-6,
                                      err_msg=k)


@pytest.mark.parametrize('noise', ['same', 'independent', 'off'])
def test_vat_fast_path_equals_straightforward_and_its_noise(noise):
    """The D loss with VAT: the fused pass and the composed links give the
    same VAT term and gradients (same random start, same noise replayed).
    The noise: 'off' is independent of the noise tables; 'same' shares
    one draw between the clean and the perturbed passes, so a tiny
    perturbation gives a tiny KL, where 'independent' keeps the noise's
    own divergence."""
    from gan import random as grandom
    numpy.random.seed(2)  # Chainer's initializers draw from numpy.random
    rng = numpy.random.RandomState(1)
    dis = nets.MLPDiscriminator(hidden=(30, 20, 10), fast=True)
    x = rng.rand(120, 784).astype(numpy.float32)
    with links.data_dependent_init():
        dis(x[:60])
    x_l, y_l = x[:30], rng.randint(0, 10, 30).astype(numpy.int32)
    x_u, x_g = x[30:60], x[60:90]

    def vat_term(fast, tables, eps=2.0):
        d = _copy(dis, fast)
        for layer, table in zip(d.noise_layers(), tables):
            layer.noise_source = Replay(table)
        up = _updater(fast, d, nets.MLPGenerator(z_dim=8, hidden=(16, 16)))
        up.vat_weight, up.vat_noise, up.vat_eps = 1.0, noise, eps
        grandom.seed(5)
        loss, rep = up.discriminator_loss(x_l, y_l, x_u, x_g)
        d.cleargrads()
        rep['loss_vat'].backward()
        assert all(isinstance(layer.noise_source, Replay)
                   for layer in d.noise_layers())  # restored
        return (float(rep['loss_vat'].array),
                {k: p.grad.copy() for k, p in d.namedparams()})

    tables = [rng.randn(300, n) for n in (784, 30, 20, 10)]
    other = [rng.randn(300, n) for n in (784, 30, 20, 10)]
    v_fast, g_fast = vat_term(True, tables)
    v_slow, g_slow = vat_term(False, tables)
    assert v_fast > 0
    # float32: the power iteration's direction carries the rounding of the
    # two summation orders (about 1e-4 per element), which moves the KL by
    # up to 3e-4 and can flip a ReLU of the perturbed pass for an example
    # (a few per cent of one layer's gradient in this small net); the
    # fused node's own gradients are checked exactly in test_fast_mlp
    assert v_fast == pytest.approx(v_slow, rel=2e-3)
    for k in g_slow:
        err = numpy.linalg.norm(g_fast[k] - g_slow[k])
        assert err <= 0.1 * numpy.linalg.norm(g_slow[k]) + 1e-8, k
    v_other, _ = vat_term(True, other)
    if noise == 'off':
        assert v_other == pytest.approx(v_fast, rel=1e-5)
    else:
        assert abs(v_other - v_fast) > 1e-3 * v_fast
    v_tiny, _ = vat_term(True, tables, eps=1e-4)
    if noise == 'independent':
        assert v_tiny > 1e-3
    else:  # KL ~ eps^2: nothing but the perturbation differs
        assert v_tiny < 1e-6 * v_fast


def test_one_epoch_with_the_default_schedule(tmp_path, capsys):
    """--epochs 1 without --lr-decay-epochs: the default decay (a third of
    the run, at least an epoch) fits any run length; options.json records
    the resolved value and the preset."""
    out = str(tmp_path / 'run')
    args = [a for a in SMALL if a not in ('--lr-decay-epochs', '0')]
    assert '--lr-decay-epochs' not in args
    assert train_ssl.main(args + ['--epochs', '1', '--out', out]) == 0
    o = json.load(open(os.path.join(out, 'options.json')))
    assert (o['preset'], o['lr_decay_epochs'], o['epochs']) == ('paper', 1, 1)
    assert (o['feature_matching'], o['mbd_kernels'], o['mbd_dim'],
            o['mbd_form']) == ('paper', 100, 5, 'authors')
    with numpy.load(os.path.join(out, 'snapshot_iter_12')) as f:
        # the rate fell linearly from 0.003 to 0 over the 12 iterations
        assert int(f['extensions/lr_decay_dis/_t']) == 12
        assert float(f['extensions/lr_decay_dis/_last_value']) == 0.0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith('test: ') and last.endswith(
        out + '/result.json')


@pytest.mark.parametrize('epochs, decay', [
    (1, 1), (2, 1), (3, 1), (4, 1), (5, 2), (6, 2), (10, 3), (60, 20),
    (61, 20), (62, 21), (300, 100)])
def test_default_lr_decay_is_a_third_of_the_run(epochs, decay):
    assert sopt.default_lr_decay_epochs(epochs) == decay
    o = sopt.parser().parse(['--epochs', str(epochs)])
    assert o.lr_decay_epochs is None  # filled in by the run
    assert sopt.resolve(o).lr_decay_epochs == decay
    o = sopt.parser().parse(['--epochs', str(epochs),
                             '--lr-decay-epochs', '0'])
    assert sopt.resolve(o).lr_decay_epochs == 0


def test_resume_auto_reports_a_finished_run_without_training(tmp_path,
                                                             capsys):
    out = str(tmp_path / 'run')
    run_cli(SMALL + ['--epochs', '1', '--out', out])
    first = capsys.readouterr().out.strip().splitlines()[-1]
    files = sorted(os.listdir(out))
    stamps = {n: os.path.getmtime(os.path.join(out, n)) for n in files}
    for extra in ([], ['--epochs', '3']):  # what was asked does not matter
        assert run_cli(SMALL + ['--epochs', '1', '--out', out,
                                '--resume', 'auto'] + extra) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert lines == [
            '{0} holds a run finished at epoch 1, not trained again (to '
            'train on: --resume {0}/snapshot_iter_12). Its result:'.format(
                out), first]
        assert sorted(os.listdir(out)) == files
        assert {n: os.path.getmtime(os.path.join(out, n))
                for n in files} == stamps
    # without --resume the folder is refused, with one line
    with pytest.raises(SystemExit) as e:
        run_cli(SMALL + ['--epochs', '1', '--out', out])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['train_ssl.py: error: {} already holds a run: continue it '
                   'with --resume auto (or a snapshot path), or choose '
                   'another --out'.format(out)]


def test_resume_auto_in_an_empty_or_new_folder_starts_fresh(tmp_path):
    out = str(tmp_path / 'new')
    run_cli(SMALL + ['--epochs', '1', '--max-iterations', '2', '--out', out,
                     '--resume', 'auto'])
    o = json.load(open(os.path.join(out, 'options.json')))
    assert o['resumed_from'] is None
    assert os.path.exists(os.path.join(out, 'result.json'))


@pytest.mark.parametrize('form', ['paper', 'blog', 'none'])
def test_feature_matching_values_give_the_losses_of_gan_losses(tmp_path,
                                                               form):
    """The updater that a run builds for each --feature-matching value
    computes the generator loss of gan.losses: paper = the distance of
    the batch means of D's features, blog = -log D(G(z)) + the
    per-sample MSE of the features, none = -log D(G(z))."""
    o = vars(sopt.parser().parse_args(
        SMALL + ['--feature-matching', form, '--out', str(tmp_path)]))
    parts = sbuild.build(sopt.resolve(o))
    up, dis, gen = parts['updater'], parts['dis'], parts['gen']
    rng = numpy.random.RandomState(3)
    x_target = rng.rand(50, 784).astype(numpy.float32)
    z = rng.uniform(size=(50, 100)).astype(numpy.float32)
    with chainer.using_config('train', False):  # no noise: deterministic
        x_g = gen(z)
        with fast_mlp.constant_parameters():
            loss, report = up.generator_loss(x_target, x_g)
        f_real = dis.features(x_target).array
        f_fake = dis.features(x_g)
        adv = losses.virtual_class_generator_loss(dis(x_g))
        fm_mean = losses.feature_matching(f_real, f_fake)
        fm_paired = losses.feature_matching_paired(f_real, f_fake)
    want = {'paper': fm_mean, 'blog': adv + fm_paired, 'none': adv}[form]
    assert float(loss.array) == pytest.approx(float(want.array), rel=1e-5)
    # and against plain numpy for the paper's form
    ff, fr = f_fake.array, f_real
    assert float(fm_mean.array) == pytest.approx(
        float(((ff.mean(0) - fr.mean(0)) ** 2).mean()), rel=1e-5)
    # the three values give three different losses
    assert float(fm_mean.array) != pytest.approx(float(adv.array))


def test_minibatch_discrimination_flags_shape_the_model(tmp_path):
    out = str(tmp_path / 'md')
    run_cli(SMALL + ['--epochs', '1', '--out', out,
                     '--minibatch-discrimination', '--mbd-kernels', '6',
                     '--mbd-dim', '3', '--mbd-form', 'authors'])
    with numpy.load(os.path.join(out, 'snapshot_iter_12')) as f:
        assert f['updater/model:dis/mbd/T'].shape == (250, 18)
    o = json.load(open(os.path.join(out, 'options.json')))
    assert (o['mbd_kernels'], o['mbd_dim'], o['mbd_form'],
            o['mbd_fixed_t']) == (6, 3, 'authors', False)
    assert gopt.mbd_arguments(sopt.from_saved(o)) == {
        'num_kernels': 6, 'kernel_dim': 3, 'form': 'authors', 'learn_T': True}
    for form in ('raw', 'blog'):
        dis, _ = sbuild.build_models(sopt.from_saved(dict(o, mbd_form=form)))
        assert dis.mbd.form == form
    assert gopt.mbd_arguments(sopt.from_saved(
        dict(o, minibatch_discrimination=False))) is None
    dis, _ = sbuild.build_models(sopt.from_saved(dict(o, mbd_fixed_t=True)))
    assert 'mbd/T' not in dict(dis.namedparams()) and \
        dis.mbd.T.shape == (250, 18)


def test_a_preset_sets_defaults_and_is_recorded(monkeypatch, tmp_path):
    """Adding a preset is one dict entry: its values become the defaults,
    explicit flags override them, and the run records both."""
    monkeypatch.setitem(sopt.PRESETS, 'tiny', {
        'labels': 20, 'feature_matching': 'blog', 'fm_target': 'labeled',
        'weight_norm': False, 'mbd_kernels': 50})
    p = sopt.parser()
    o = vars(p.parse_args(['--preset', 'tiny', '--fm-target', 'unlabeled']))
    assert (o['preset'], o['labels'], o['feature_matching'], o['fm_target'],
            o['weight_norm'], o['mbd_kernels'], o['lr']) == (
        'tiny', 20, 'blog', 'unlabeled', False, 50, 0.003)
    # the options a run records are the same without the parser
    r = gopt.to_dict(sopt.resolve({'preset': 'tiny',
                                   'fm_target': 'unlabeled'}))
    for k in o:
        assert r[k] == (o[k] if k != 'lr_decay_epochs' else 20), k
    assert set(o) <= set(sopt.DEFAULTS)
    out = str(tmp_path / 'run')
    run_cli([a for a in SMALL if a not in ('--labels', '20')]
            + ['--preset', 'tiny', '--epochs', '1', '--max-iterations', '2',
               '--out', out])
    saved = json.load(open(os.path.join(out, 'options.json')))
    assert (saved['preset'], saved['labels'], saved['feature_matching'],
            saved['weight_norm']) == ('tiny', 20, 'blog', False)


def test_paper_2016_06_preset_is_the_authors_early_schedule(tmp_path):
    """--preset paper-2016-06: the authors' code before 2016-06-14, lr =
    0.001 * min(3 - epoch / 100, 1) over 300 epochs, the raw D tested:
    the trainer's rate at the start of each epoch against that formula
    (with an epoch of one iteration, so the two schedules meet at the
    epoch boundaries)."""
    argv = list(SMALL)
    i = argv.index('--lr-decay-epochs')
    del argv[i:i + 2]  # the preset's decay, not the tests' constant rate
    o = sopt.parse(argv + ['--preset', 'paper-2016-06',
                            '--iters-per-epoch', '1',
                            '--out', str(tmp_path / 'run')])
    assert (o.epochs, o.lr, o.lr_decay_epochs, o.ema_rate) == (
        300, 0.001, 100, 0.0)
    parts = sbuild.build(o)
    trainer = sbuild.make_trainer(o, parts)
    assert parts['average'] is None  # 'avg' in the log is the raw D
    for name in ('dis', 'gen'):
        shift = trainer.get_extension('lr_decay_' + name)
        for epoch in (0, 100, 199, 200, 250, 290, 299):
            shift._t = epoch  # iteration = epoch here
            want = 0.001 * min(3.0 - epoch / 100.0, 1.0)
            assert shift._compute_next_value() == pytest.approx(want,
                                                               abs=1e-12)
