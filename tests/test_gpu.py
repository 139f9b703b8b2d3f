"""GPU checks (CuPy 13 + a CUDA device): ``make test-gpu``, and the first
step of ``make gpu-check``.  Skipped everywhere else; never required by
the CPU suite (whose tests/test_gpu_standin.py runs the same command lines
on the stand-in GPU).  With two GPUs also ``--device 1`` and a 2-rank
``pure_nccl`` run."""
import json
import os
import shutil
import subprocess
import sys

import numpy
import pytest

import chainer

from gan import links, losses, optimizers

cupy = pytest.importorskip(
    'cupy', reason='the GPU checks need CuPy and a CUDA device')
try:
    _gpus = cupy.cuda.runtime.getDeviceCount()
except Exception:  # pragma: no cover
    _gpus = 0
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(_gpus < 1, reason='no CUDA device')]
two_gpus = pytest.mark.skipif(_gpus < 2, reason='needs two GPUs')

import train_dcgan  # noqa: E402
import train_ssl  # noqa: E402
from test_animeface_data import TINY, faces  # noqa: E402,F401 (fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SSL = ['--batchsize', '50', '--lr-decay-epochs', '0', '--no-progress',
       '--labels', '20']


def ssl(idx, out, *extra):
    return train_ssl.main(SSL + ['--data-dir', idx, '--out', str(out)]
                          + [str(a) for a in extra])


def dcgan(faces, out, *extra):
    return train_dcgan.main(['--data', faces, '--out', str(out)] + TINY
                            + [str(a) for a in extra])


def arrays(path, prefix='updater/'):
    with numpy.load(str(path)) as f:
        return {k: f[k] for k in f.files if k.startswith(prefix)}


def assert_equal_runs(a, b):
    assert sorted(a) == sorted(b) and len(a) > 5
    worst = max(float(numpy.abs(a[k].astype(numpy.float64) - b[k]).max())
                for k in a)
    for k in a:
        numpy.testing.assert_array_equal(
            a[k], b[k], err_msg='{} (largest difference of all arrays: '
            '{:.3g})'.format(k, worst))


# --------------------------------------------------------------------------
# Layers, losses, the optimizer, the random stream
# --------------------------------------------------------------------------
def test_weight_norm_linear_and_mbd_match_cpu():
    rng = numpy.random.RandomState(0)
    x = rng.randn(16, 20).astype(numpy.float32)
    for link in (links.WeightNormLinear(20, 7),
                 links.WeightNormLinear(20, 7, fast=True),
                 links.MinibatchDiscrimination(20, 6, 3)):
        cpu = link(x).array
        link.to_device('@cupy:0')
        gpu = cupy.asnumpy(link(cupy.asarray(x)).array)
        numpy.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-5)


def test_virtual_class_losses_on_gpu():
    logits = cupy.asarray(numpy.array([[1e4] * 10, [-1e4] * 10],
                                      dtype=numpy.float32))
    v = chainer.Variable(logits)
    loss = losses.virtual_class_discriminator_loss(v, v)
    loss.backward()
    assert bool(cupy.isfinite(v.grad).all())


def test_adam_eps_in_sqrt_gpu_matches_cpu():
    import chainer.links as L
    cpu = L.Linear(4, 3)
    gpu = cpu.copy(mode='copy')
    gpu.to_device('@cupy:0')
    g = numpy.random.RandomState(1).randn(3, 4).astype(numpy.float32)
    for link, xp in ((cpu, numpy), (gpu, cupy)):
        opt = optimizers.AdamEpsInSqrt(alpha=0.003, beta1=0.5)
        opt.setup(link)
        for _ in range(3):
            link.cleargrads()
            link.W.grad = xp.asarray(g)
            link.b.grad = xp.zeros(3, dtype=numpy.float32)
            opt.update()
    numpy.testing.assert_allclose(cupy.asnumpy(gpu.W.array), cpu.W.array,
                                  rtol=1e-5)


def test_random_kernel_equals_its_array_form_and_reference():
    """The fused CUDA kernel of gan.random against the array code the CPU
    suite checks (and, for uniforms, SplitMix64 in Python)."""
    from gan import random as grandom
    dev = chainer.get_device('@cupy:0')
    for dtype in (numpy.float32, numpy.float64):
        grandom.seed(5)
        key, _ = grandom.get_state()['gpu']
        u = grandom.uniform(dev, (1000,), dtype)
        z = grandom.normal(dev, (1000,), dtype)
        dt = numpy.dtype(dtype)
        u_ref = grandom._generic(cupy, key, 0, 1000, dt, 'uniform')
        z_ref = grandom._generic(cupy, key, 1000, 1000, dt, 'normal')
        numpy.testing.assert_array_equal(cupy.asnumpy(u), cupy.asnumpy(u_ref))
        numpy.testing.assert_allclose(cupy.asnumpy(z), cupy.asnumpy(z_ref),
                                      rtol=1e-6, atol=1e-6)
        assert u.dtype == dt and z.dtype == dt
    grandom.seed(5)
    u = cupy.asnumpy(grandom.uniform(dev, (8,), numpy.float64))
    want = [(grandom.splitmix64((key + k * grandom.GOLDEN)
                                & grandom.MASK64) >> 11) * 2.0 ** -53
            for k in range(8)]
    numpy.testing.assert_array_equal(u, want)


# --------------------------------------------------------------------------
# The command lines on GPU 0
# --------------------------------------------------------------------------
def test_train_ssl_runs_on_gpu(idx, tmp_path):
    out = tmp_path / 'gpu'
    ssl(idx, out, '--device', 0, '--iters-per-epoch', 30, '--epochs', 1)
    result = json.load(open(str(out / 'result.json')))
    assert result['iterations'] == 30
    entry = json.loads(open(str(out / 'machines.jsonl')).readline())
    g = entry['gpu']
    assert g['id'] == 0 and g['name'] and g['cupy'] == cupy.__version__
    assert g['cuda_runtime'] and g['driver_cuda'] and g['nvrtc']
    assert g['cudnn']['use_cudnn'] == 'never'
    print('machine record:', json.dumps(g))


@pytest.mark.parametrize('extra', [[], ['--vat-weight', '1'],
                                   ['--minibatch-discrimination']],
                         ids=['default', 'vat', 'mbd'])
def test_ssl_resume_on_gpu_is_exact(idx, tmp_path, extra):
    flags = ['--device', 0, '--iters-per-epoch', 3] + extra
    ssl(idx, tmp_path / 'straight', *flags, '--epochs', 2)
    ssl(idx, tmp_path / 'first', *flags, '--epochs', 1)
    ssl(idx, tmp_path / 'second', *flags, '--epochs', 2, '--resume',
        tmp_path / 'first' / 'snapshot_iter_3')
    assert_equal_runs(arrays(tmp_path / 'straight' / 'snapshot_iter_6'),
                      arrays(tmp_path / 'second' / 'snapshot_iter_6'))


@pytest.mark.parametrize('extra', [
    [], ['--minibatch-discrimination', '--feature-matching', 'blog'],
    ['--preset', 'blog']], ids=['default', 'mbd-fm', 'blog'])
def test_dcgan_resume_on_gpu_is_exact(faces, tmp_path, extra):
    flags = ['--device', 0] + extra
    dcgan(faces, tmp_path / 'straight', *flags, '--iterations', 4,
          '--snapshot-interval', 2)
    dcgan(faces, tmp_path / 'first', *flags, '--iterations', 2)
    dcgan(faces, tmp_path / 'second', *flags, '--iterations', 4,
          '--snapshot-interval', 2, '--resume',
          tmp_path / 'first' / 'snapshot_iter_2')
    assert_equal_runs(arrays(tmp_path / 'straight' / 'snapshot_iter_4'),
                      arrays(tmp_path / 'second' / 'snapshot_iter_4'))


def test_analogy_evaluate_and_ssl_evaluate_on_gpu(faces, idx, tmp_path):
    """The same pictures and metrics as the CPU computes, to float
    rounding."""
    from PIL import Image
    from animeface import analogy, evaluate
    from mnist_ssl import evaluate as sevaluate
    run = tmp_path / 'dcgan'
    dcgan(faces, run, '--device', 0, '--iterations', 2)
    snap = str(run / 'snapshot_iter_2')
    for device in ('0', '-1'):
        analogy.main([snap, '--device', device, '--out',
                      str(tmp_path / 'a{}.png'.format(device))])
    with Image.open(str(tmp_path / 'a0.png')) as a, \
            Image.open(str(tmp_path / 'a-1.png')) as b:
        diff = numpy.abs(numpy.asarray(a, dtype=int) -
                         numpy.asarray(b, dtype=int))
    assert diff.max() <= 2 and diff.mean() < 0.05
    m_gpu = evaluate.main([str(run), '--samples', '50', '--device', '0'])
    m_cpu = evaluate.main([str(run), '--samples', '50', '--device', '-1'])
    assert m_gpu['diversity'] == pytest.approx(m_cpu['diversity'], rel=1e-2)
    ssl_run = tmp_path / 'ssl'
    ssl(idx, ssl_run, '--device', 0, '--iters-per-epoch', 3, '--epochs', 1)
    e_gpu = sevaluate.main([str(ssl_run), '--device', '0'])
    e_cpu = sevaluate.main([str(ssl_run), '--device', '-1'])
    assert abs(e_gpu['errors_avg'] - e_cpu['errors_avg']) <= 2


# --------------------------------------------------------------------------
# Two GPUs
# --------------------------------------------------------------------------
@two_gpus
def test_device_1_keeps_everything_on_gpu_1(idx, tmp_path):
    from gan import random as grandom
    from mnist_ssl import build as sbuild
    cupy.cuda.Device(0).use()
    parts = sbuild.build(dict(device='1', data_dir=idx, batchsize=50,
                              labels=20, lr_decay_epochs=0, progress=False,
                              out=str(tmp_path / 'b')))
    for net in (parts['dis'], parts['gen']):
        for p in net.params():
            assert p.array.device.id == 1
    parts['updater'].update()
    cupy.cuda.Device(0).use()  # another GPU current: draws still on GPU 1
    assert parts['gen'].make_hidden(4).device.id == 1
    assert grandom.normal(parts['device'], (3,)).device.id == 1
    out = tmp_path / 'run'
    ssl(idx, out, '--device', 1, '--iters-per-epoch', 3, '--epochs', 1)
    assert json.load(open(str(out / 'result.json')))['machine']['gpu'][
        'id'] == 1


def _mpiexec():
    here = os.path.join(os.path.dirname(sys.executable), 'mpiexec')
    return here if os.path.exists(here) else shutil.which('mpiexec')


@two_gpus
def test_two_ranks_pure_nccl(idx, tmp_path):
    pytest.importorskip('mpi4py')
    if _mpiexec() is None:
        pytest.skip('mpiexec is not installed (make install-mn)')
    out = tmp_path / 'ranks'
    flags = SSL + ['--data-dir', idx, '--iters-per-epoch', '3', '--epochs',
                   '1']
    env = dict(os.environ, PYTHONPATH=ROOT)
    # GPU_TEST_PREFIX: the stand-in GPU, when these tests run on it
    prefix = os.environ.get('GPU_TEST_PREFIX', '').split()
    proc = subprocess.run(
        [_mpiexec(), '-n', '2', sys.executable] + prefix + ['train_ssl.py',
         '--multi-node', '--device', '0', '--out', str(out)] + flags,
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.load(open(str(out / 'result.json')))
    assert result['multi_node']['communicator'] == 'pure_nccl'
    assert result['multi_node']['ranks'] == 2
    one = tmp_path / 'one'
    train_ssl.main(flags + ['--device', '0', '--out', str(one)])
    a = arrays(out / 'snapshot_iter_3', 'updater/model')
    b = arrays(one / 'snapshot_iter_3', 'updater/model')
    for k in a:
        numpy.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-4,
                                      err_msg=k)
