"""Multi-node training (gan.multinode) against one process with the whole
batch.

The MPI tests launch this file under ``mpiexec -n 2`` (see ``worker``):
each rank trains a tiny configuration for a few iterations and saves its
parameters; the test process trains the same configuration in one process
and compares.  They are skipped only where mpi4py or mpiexec is missing.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# float32 rounding over a few steps; the negative control differs by about
# the learning rate
TOLERANCE = 1e-5
ITERATIONS = 3
DCGAN_CASES = {
    'dcgan-fm': ['--feature-matching', 'paper'],
    'dcgan-fm-blog': ['--feature-matching', 'blog'],
    # the authors' form (the default): data-dependent init on the first
    # batch, fused pairwise distances
    'dcgan-mbd': ['--minibatch-discrimination'],
    'dcgan-mbd-raw': ['--minibatch-discrimination', '--mbd-form', 'raw'],
    'dcgan-blog-mbd': ['--feature-matching', 'blog',
                       '--minibatch-discrimination', '--mbd-form', 'blog'],
    # the blog's networks (input noise, batch norm everywhere), batches
    # drawn with replacement, gradient clipping
    'dcgan-preset-blog': ['--preset', 'blog', '--minibatch-discrimination',
                          '--mbd-form', 'authors', '--grad-clip', '1'],
}
SSL_CASES = {
    'ssl': {},  # the fused discriminator pass, weight norm, dd-init
    'ssl-mbd': {'minibatch_discrimination': True},  # three D passes
    # MD's own init on the first training batch, composed (unfused) form
    'ssl-mbd-noinit': {'minibatch_discrimination': True, 'dd_init': False},
    # VAT: random directions of the global batch, D's noise held for the
    # passes.  Its finite difference at the default xi (1e-2) turns float32
    # rounding of another batch split into differences of about 1e-5
    # after a step (also with the noise off); at xi = 1 they are rounding.
    'ssl-vat': {'vat_weight': 1.0, 'vat_xi': 1.0},
    'ssl-blog-2017': {'preset': 'blog-2017', 'vat_weight': 1.0,
                      'vat_xi': 1.0},
    # the post's day: batch norm in D (statistics of the global batch).
    # Chainer's Adam (epsilon outside the root) turns rounding-level
    # differences of near-zero gradients into steps of about lr; the
    # authors' Adam does not
    'ssl-blog': {'preset': 'blog', 'adam': 'eps-in-sqrt'},
}
# batch norm's sums over the global batch round differently from one
# process's: 1.6e-5 after the steps here
CASE_TOLERANCE = {'ssl-blog': 5}
# the authors' minibatch discrimination init alone (one D pass)
MBD_INIT = 'mbd-init'
NEGATIVE = 'dcgan-fm-unwrapped'  # plain optimizers: local gradients


def mpiexec():
    """mpiexec beside this Python (the mpich wheel's), else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), 'mpiexec')
    return here if os.path.exists(here) else shutil.which('mpiexec')


def skip_reason():
    if importlib.util.find_spec('mpi4py') is None:
        return 'mpi4py is not installed (make install-mn)'
    if mpiexec() is None:
        return 'mpiexec is not installed (make install-mn)'
    return None


needs_mpi = pytest.mark.skipif(skip_reason() is not None,
                               reason=skip_reason() or '')


def env():
    e = dict(os.environ, OPENBLAS_NUM_THREADS='1', OMP_NUM_THREADS='1')
    e['PYTHONPATH'] = ROOT + os.pathsep + e.get('PYTHONPATH', '')
    return e


def launch(args, n=2, timeout=600, cwd=ROOT):
    return subprocess.run([mpiexec(), '-n', str(n), sys.executable] + args,
                          cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=timeout)


# --------------------------------------------------------------------------
# The configurations, run by the ranks and by the test process alike
# --------------------------------------------------------------------------
def tiny_images(channels=1, n=40, size=32):
    from animeface import data as adata
    rng = numpy.random.default_rng(5)
    x = rng.integers(0, 256, (n, channels, size, size), dtype=numpy.uint8)
    return adata.ImageData(x, channels, 'mnist')


def state(**links):
    """Every parameter and persistent value of the links, by name."""
    import chainer
    out = {}
    for prefix, link in links.items():
        s = chainer.serializers.DictionarySerializer()
        s.save(link)
        out.update({prefix + '/' + k: numpy.array(v)
                    for k, v in s.target.items()})
    return out


def dcgan_case(case, comm, out):
    flags = DCGAN_CASES[case.replace('-unwrapped', '')]
    trainer = dcgan_trainer(flags, comm, out)
    updater = trainer.updater
    gen = updater.get_optimizer('gen').target
    dis = updater.get_optimizer('dis').target
    # A bias that feeds batch normalization has a zero gradient in exact
    # arithmetic, so Adam leaves it at 0; in float32 Adam turns the rounding
    # noise of that zero into steps of up to the learning rate, which any
    # change of summation order (here: of batch split) changes.  Held at 0.
    from gan import nets
    convs = list(dis.convs)
    if isinstance(dis, nets.DCGANDiscriminator):
        convs = convs[1:]  # the first has no batch norm
    for link in [gen.l0] + list(gen.ups)[:-1] + convs:
        link.b.update_rule.enabled = False
    if case.endswith('-unwrapped'):
        for name, opt in updater.get_all_optimizers().items():
            updater._optimizers[name] = getattr(opt, 'actual_optimizer', opt)
    for _ in range(ITERATIONS):
        updater.update()
    return state(gen=gen, dis=dis)


def dcgan_trainer(flags, comm, out):
    from animeface import build as abuild
    from animeface import options as aopt
    args = aopt.parser().parse([
        '--data', 'mnist', '--size', '32', '--ch', '8', '--z-dim', '8',
        '--batchsize', '8', '--iterations', str(ITERATIONS), '--out', out,
        '--mbd-kernels', '4', '--mbd-dim', '3'] + flags)
    return abuild.build_trainer(args, tiny_images(), comm)


def mbd_init_case(comm, out):
    """MD's data-dependent init on the first real batch: the log-scale and
    bias it sets, and this rank's part of the batch."""
    trainer = dcgan_trainer(['--minibatch-discrimination'], comm, out)
    updater = trainer.updater
    dis = updater.get_optimizer('dis').target
    x = updater.converter(updater.get_iterator('main').next(),
                          updater.device)
    assert not dis.mbd.initialized
    dis(x)
    return {'log_scale': numpy.array(dis.mbd.log_scale.array),
            'b': numpy.array(dis.mbd.b.array), 'x': numpy.array(x)}


def ssl_case(case, comm, out):
    from mnist_ssl import build as sbuild
    o = dict(pool_size=200, labels=20, batchsize=10, init_size=100,
             mbd_kernels=6, mbd_dim=3, out=out, progress=False,
             **SSL_CASES[case])
    parts = sbuild.build(o, comm)
    for _ in range(ITERATIONS):
        parts['updater'].update()
    st = state(dis=parts['dis'], gen=parts['gen'])
    st['labeled_index'] = numpy.asarray(parts['labeled_index'])
    return st


def run_case(case, comm, out):
    if case == MBD_INIT:
        return mbd_init_case(comm, out)
    if case.startswith('ssl'):
        return ssl_case(case, comm, out)
    return dcgan_case(case, comm, out)


def worker(folder, cases):
    """One rank (``mpiexec -n 2 python tests/test_multinode.py DIR CASE...``):
    writes DIR/CASE.rankR.npz."""
    from gan import multinode
    comm = multinode.create('naive', '-1')
    for case in cases:
        st = run_case(case, comm, os.path.join(folder, 'run_' + case))
        numpy.savez(os.path.join(folder, '{}.rank{}.npz'.format(
            case, comm.rank)), **st)


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def ranks_output(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('multinode'))
    cases = list(DCGAN_CASES) + list(SSL_CASES) + [NEGATIVE, MBD_INIT]
    proc = launch([os.path.abspath(__file__), folder] + cases)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder


def load(folder, case, rank):
    with numpy.load(os.path.join(folder, '{}.rank{}.npz'.format(
            case, rank))) as f:
        return {k: f[k] for k in f.files}


def max_difference(a, b):
    assert sorted(a) == sorted(b)
    return max(float(numpy.abs(a[k].astype(numpy.float64) - b[k]).max())
               for k in a)


def reference(case, tmp_path):
    from gan import random as grandom
    st = run_case(case, None, str(tmp_path / 'one'))
    grandom.seed(0)
    return st


@needs_mpi
@pytest.mark.parametrize('case', list(DCGAN_CASES) + list(SSL_CASES))
def test_ranks_equal_one_process(ranks_output, case, tmp_path):
    r0, r1 = load(ranks_output, case, 0), load(ranks_output, case, 1)
    # (a) the ranks hold the same parameters, bit for bit
    assert max_difference(r0, r1) == 0
    # (b) and those of one process with the whole batch
    one = reference(case, tmp_path)
    diff = max_difference(r0, one)
    print('{}: max |multi-node - one process| = {:.3g}'.format(case, diff))
    assert diff <= TOLERANCE * CASE_TOLERANCE.get(case, 1)
    # the training moved the parameters far more than that
    start = reference_start(case, tmp_path)
    assert max_difference(one, start) > 100 * TOLERANCE


def reference_start(case, tmp_path):
    """The parameters before training (0 iterations)."""
    global ITERATIONS
    saved, ITERATIONS = ITERATIONS, 0
    try:
        return run_case(case, None, str(tmp_path / 'start'))
    finally:
        ITERATIONS = saved


@needs_mpi
def test_mbd_init_over_the_global_batch(ranks_output, tmp_path):
    """The authors' init takes its statistics (nearest-neighbour distance,
    mean closeness) over the global batch: every rank gets the log-scale
    and bias of one process's init on the whole batch, not those of its
    own half."""
    r0, r1 = load(ranks_output, MBD_INIT, 0), load(ranks_output, MBD_INIT, 1)
    for key in ('log_scale', 'b'):
        assert numpy.array_equal(r0[key], r1[key])
    one = run_case(MBD_INIT, None, str(tmp_path / 'one'))
    numpy.testing.assert_array_equal(
        numpy.concatenate([r0['x'], r1['x']]), one['x'])
    for key in ('log_scale', 'b'):
        diff = float(numpy.abs(r0[key] - one[key]).max())
        print('mbd init {}: max |2 ranks - one process| = {:.3g}'.format(
            key, diff))
        assert diff <= TOLERANCE * max(1.0, float(numpy.abs(one[key]).max()))
    # the init on rank 0's half alone gives other numbers
    from gan import random as grandom
    grandom.seed(0)
    trainer = dcgan_trainer(['--minibatch-discrimination'], None,
                            str(tmp_path / 'half'))
    dis = trainer.updater.get_optimizer('dis').target
    dis(trainer.updater.device.send(r0['x']))
    assert float(numpy.abs(dis.mbd.b.array - one['b']).max()) > 1e-3


@needs_mpi
def test_unwrapped_optimizer_fails_the_check(ranks_output, tmp_path):
    """Negative control: without the multi-node optimizer each rank
    steps on its own half batch's gradient; the comparison catches it."""
    r0, r1 = load(ranks_output, NEGATIVE, 0), load(ranks_output, NEGATIVE, 1)
    one = reference(NEGATIVE.replace('-unwrapped', ''), tmp_path)
    assert max_difference(r0, r1) > 10 * TOLERANCE
    assert max_difference(r0, one) > 10 * TOLERANCE


@needs_mpi
def test_labeled_subset_same_on_every_rank(ranks_output):
    for case in SSL_CASES:
        a = load(ranks_output, case, 0)['labeled_index']
        b = load(ranks_output, case, 1)['labeled_index']
        assert len(a) == 20 and (a == b).all()


def write_images(folder, n=16):
    from PIL import Image
    os.makedirs(folder)
    rng = numpy.random.default_rng(3)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=numpy.uint8)
                        ).save(os.path.join(folder, '{}.png'.format(i)))


DCGAN_FLAGS = ['--size', '32', '--ch', '8', '--z-dim', '8', '--batchsize',
               '4', '--iterations', '2', '--snapshot-interval', '2',
               '--grid-interval', '2', '--log-interval', '1']


@needs_mpi
def test_train_dcgan_cli_rank0_writes_and_resume_checks_ranks(tmp_path):
    data, out = str(tmp_path / 'faces'), str(tmp_path / 'run')
    write_images(data)
    proc = launch(['train_dcgan.py', '--multi-node', '--data', data,
                   '--out', out] + DCGAN_FLAGS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(os.path.join(out, 'result.json')) as f:
        result = json.load(f)
    assert result['multi_node']['ranks'] == 2
    assert result['multi_node']['communicator'] == 'naive'
    with open(os.path.join(out, 'machines.jsonl')) as f:
        assert len(f.readlines()) == 1  # one process wrote the folder
    assert os.path.isfile(os.path.join(out, 'snapshot_iter_2'))
    # a different number of ranks is refused in one line
    proc = subprocess.run(
        [sys.executable, 'train_dcgan.py', '--data', data, '--out', out,
         '--resume', os.path.join(out, 'snapshot_iter_2')] + DCGAN_FLAGS,
        cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert 'written by 2 ranks' in lines[-1] and 'mpiexec -n 2' in lines[-1]
    # the same number continues (to 4 iterations)
    proc = launch(['train_dcgan.py', '--multi-node', '--data', data,
                   '--out', out, '--resume',
                   os.path.join(out, 'snapshot_iter_2')]
                  + DCGAN_FLAGS[:-7] + ['4'] + DCGAN_FLAGS[-6:])
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(os.path.join(out, 'result.json')) as f:
        assert json.load(f)['iterations'] == 4


@needs_mpi
def test_batch_not_divisible_is_one_line(tmp_path):
    data = str(tmp_path / 'faces')
    write_images(data)
    proc = launch(['train_dcgan.py', '--multi-node', '--data', data,
                   '--out', str(tmp_path / 'run')] + DCGAN_FLAGS[:4]
                  + ['--batchsize', '5', '--iterations', '1'])
    assert proc.returncode == 2
    errors = [l for l in proc.stderr.splitlines() if 'error:' in l]
    assert len(errors) == 1, proc.stderr  # rank 0 says it, once
    assert 'not divisible by the 2 ranks' in errors[0]
    assert errors[0] == proc.stderr.strip().splitlines()[-1]


# --------------------------------------------------------------------------
# Without MPI: the slicing of batches and random numbers
# --------------------------------------------------------------------------
class FakeComm:
    def __init__(self, rank, size):
        self.rank, self.size = rank, size


def test_global_noise_rows_match_one_draw():
    """Three ranks' noise for a concatenated batch (parts of 2, 1 and 3
    rows each) put together equals one process's draw for the global
    parts, part by part."""
    from gan import multinode
    from gan import random as grandom
    grandom.seed(11)
    one = grandom.normal(numpy, (18, 5))
    parts = [one[:6], one[6:9], one[9:]]
    for rank in range(3):
        grandom.seed(11)
        src = multinode.GlobalNoise(FakeComm(rank, 3))
        src.segments = (2, 1, 3)
        got = src((6, 5), numpy, numpy.float32)
        want = numpy.concatenate([parts[0][2 * rank:2 * rank + 2],
                                  parts[1][rank:rank + 1],
                                  parts[2][3 * rank:3 * rank + 3]])
        numpy.testing.assert_array_equal(got, want)


def test_shard_iterator_splits_the_global_batch():
    from gan import multinode
    from gan.iterators import ArrayIterator
    x = numpy.arange(30)
    one = ArrayIterator((x,), 6, seed=4)
    shards = [multinode.ShardIterator(ArrayIterator((x,), 6, seed=4),
                                      FakeComm(r, 3)) for r in range(3)]
    for _ in range(7):  # across epoch boundaries
        whole, = one.next()
        got = numpy.concatenate([s.next()[0] for s in shards])
        numpy.testing.assert_array_equal(got, whole)
        assert shards[0].epoch_detail == one.epoch_detail


def test_local_batchsize_refuses_a_remainder():
    from gan import multinode, runs
    assert multinode.local_batchsize(64, FakeComm(0, 4)) == 16
    with pytest.raises(runs.UsageError, match='not divisible by the 3'):
        multinode.local_batchsize(64, FakeComm(0, 3))


def test_snapshot_ranks_of_a_single_process_snapshot(tmp_path):
    from gan import runs
    path = str(tmp_path / 'snapshot_iter_1')
    numpy.savez(path, **{'updater/iteration': numpy.array(1)})
    os.rename(path + '.npz', path)
    assert runs.snapshot_ranks(path) == 1
    runs.check_resume(path, None)
    with pytest.raises(runs.UsageError, match='written by 1 rank'):
        runs.check_resume(path, FakeComm(0, 2))


@pytest.mark.parametrize('fast', [True, False])
def test_closeness_over_ranks_equals_one_batch(fast):
    """Three 'ranks' that each compare their rows with the gathered batch
    at their offset (the gather as a concatenation, whose backward sums
    the ranks' gradients as ChainerMN's all-gather does; what
    :class:`gan.multinode.GlobalPairs` does) give one process's values
    and gradients of minibatch discrimination."""
    import chainer
    import chainer.functions as F
    from gan import links
    rng = numpy.random.default_rng(4)
    full = rng.standard_normal((9, 5, 3)).astype(numpy.float32)
    go = rng.standard_normal((9, 5)).astype(numpy.float32)
    one = chainer.Variable(full.copy())
    o_one = links.pairwise_l1_closeness_broadcast(one)
    F.sum(o_one * go).backward()
    parts = [chainer.Variable(full[3 * r:3 * r + 3].copy()) for r in range(3)]
    everyone = F.concat(parts, axis=0)
    fn = links.pairwise_l1_closeness if fast else \
        links.pairwise_l1_closeness_broadcast
    outs = [fn(p, everyone, 3 * r) for r, p in enumerate(parts)]
    F.sum(F.concat(outs, axis=0) * go).backward()
    numpy.testing.assert_allclose(
        numpy.concatenate([o.array for o in outs]), o_one.array, rtol=1e-6)
    numpy.testing.assert_allclose(
        numpy.concatenate([p.grad for p in parts]), one.grad, rtol=1e-5,
        atol=1e-6)


class PartsComm(FakeComm):
    """One rank of ``len(parts)`` whose collectives stand for the others:
    the other ranks hold ``parts`` (this rank's own is what it sends)."""

    def __init__(self, rank, parts):
        super().__init__(rank, len(parts))
        self.parts = parts

    def _with_own(self, x):
        return [x if r == self.rank else p for r, p in enumerate(self.parts)]

    def allgather(self, x):
        return self._with_own(x)

    def allreduce(self, x):
        return sum(self._with_own(x))


def test_global_pairs_rows_and_mean_over_the_ranks():
    """The init's statistics: the rows of every rank in rank order and
    the mean over all of them; in test mode the rank's own."""
    import chainer
    from gan import multinode
    rng = numpy.random.default_rng(6)
    M = rng.standard_normal((3, 4, 5, 2)).astype(numpy.float32)
    o = rng.standard_normal((3, 4, 5)).astype(numpy.float32)
    for rank in range(3):
        rows = multinode.GlobalPairs(PartsComm(rank, list(M)))
        numpy.testing.assert_array_equal(rows.rows(M[rank]),
                                         M.reshape(12, 5, 2))
        sums = multinode.GlobalPairs(PartsComm(
            rank, [p.sum(axis=0) for p in o]))
        mean = sums.mean(o[rank])
        assert mean.dtype == numpy.float32
        numpy.testing.assert_allclose(mean, o.reshape(12, 5).mean(axis=0),
                                      rtol=1e-5, atol=1e-6)
        with chainer.using_config('train', False):
            local = multinode.GlobalPairs(FakeComm(rank, 3))  # no calls
            mine = M[rank]
            assert local.rows(mine) is mine
            numpy.testing.assert_array_equal(local.mean(o[rank]),
                                             o[rank].mean(axis=0))
            calls = []
            local.closeness(M[rank], lambda *a: calls.append(a))
            assert len(calls) == 1 and len(calls[0]) == 1  # M alone


def test_make_global_finds_the_layers_by_their_sources():
    """make_global gives every link with a ``pairs_source`` a GlobalPairs
    and every link with a ``noise_source`` a GlobalNoise of its own draw
    (by the attributes, not the classes); the saved names stay those of
    one process."""
    import chainer
    from gan import links, multinode
    from gan.fast import noise as fast_noise

    class OwnPairs(chainer.Link):  # not a gan.links class
        def __init__(self):
            super().__init__()
            self.pairs_source = None

    def build():
        net = chainer.Chain()
        with net.init_scope():
            net.mbd = links.MinibatchDiscrimination(4, 3, 2)
            net.noise = links.GaussianNoise(0.1, fast=True)
            net.own = OwnPairs()
            net.rest = chainer.ChainList(links.GaussianNoise(0.2),
                                         links.WeightNormLinear(4, 2))
        return net

    def saved(net):
        s = chainer.serializers.DictionarySerializer()
        s.save(net)
        return sorted(s.target)

    net, comm = build(), FakeComm(1, 2)
    assert multinode.make_global(net, comm) is net
    for layer in (net.mbd, net.own):
        assert isinstance(layer.pairs_source, multinode.GlobalPairs)
        assert layer.pairs_source.comm is comm
    assert net.noise.noise_source.normal is fast_noise.normal
    assert isinstance(net.rest[0].noise_source, multinode.GlobalNoise)
    assert net.rest[0].noise_source.comm is comm
    assert not hasattr(net.rest[1], 'pairs_source')
    assert saved(net) == saved(build())
    plain = build()
    assert multinode.make_global(plain, None) is plain
    assert isinstance(plain.mbd.pairs_source, links.BatchPairs)
    assert plain.noise.noise_source is None


def _imports(path):
    """The modules a source file imports, anywhere in it (``from a import
    b`` counts as a.b and a)."""
    import ast
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = '.' * node.level + (node.module or '')
            names.add(base)
            names.update(base.rstrip('.') + '.' + a.name
                         if node.module else base + a.name
                         for a in node.names)
    return names


@pytest.mark.parametrize('module,other', [('links', 'multinode'),
                                          ('multinode', 'links')])
def test_links_and_multinode_do_not_import_each_other(module, other):
    names = _imports(os.path.join(ROOT, 'gan', module + '.py'))
    assert names  # the parse found the imports
    bad = {'gan.' + other, '.' + other}
    assert not names & bad, names & bad
    # nor through another module, at import time
    code = ('import sys; import gan.{}; '
            'print("gan.{}" in sys.modules)'.format(module, other))
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ['False']


if __name__ == '__main__':
    worker(sys.argv[1], sys.argv[2:])
