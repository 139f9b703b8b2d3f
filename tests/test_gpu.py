"""GPU checks (CuPy 13.x + a CUDA device): `make test-gpu`.  Skipped
everywhere else; never required by the CPU suite."""
import numpy
import pytest

import chainer

from gan import links, losses, optimizers

cupy = pytest.importorskip(
    'cupy', reason='the GPU checks need CuPy and a CUDA device')
try:
    _has_gpu = cupy.cuda.runtime.getDeviceCount() > 0
except Exception:  # pragma: no cover
    _has_gpu = False
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not _has_gpu, reason='no CUDA device')]


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


def test_train_ssl_runs_on_gpu(tmp_path):
    import train_ssl
    train_ssl.main(['--device', '0', '--max-iterations', '30',
                    '--pool-size', '3000', '--lr-decay-epochs', '0',
                    '--no-progress', '--out', str(tmp_path / 'gpu')])
    assert (tmp_path / 'gpu' / 'result.json').exists()
