"""The stand-in GPU itself (tests/standin_gpu.py): it catches what a real
GPU punishes -- each kind by itself, then the same mistakes injected into
the project's code and run through its command lines -- and the GPU
random stream and device checks of gan.random and gan.gpu under it."""
import json
import math

import numpy
import pytest

import chainer
import chainer.links as L

import standin_gpu
import train_dcgan
import train_ssl
from gan import random as grandom
from test_animeface_data import TINY, faces  # noqa: F401 (fixture)
from test_mnist_data import make_idx_dir

StandInError = standin_gpu.StandInError


@pytest.fixture(scope='module')
def idx(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('idx'))
    make_idx_dir(root, n_train=300, n_test=100)
    return root


def gpu(n):
    return chainer.get_device('@cupy:{}'.format(n))


def host(*shape):
    return numpy.arange(numpy.prod(shape), dtype=numpy.float32).reshape(
        shape) / 10


# --------------------------------------------------------------------------
# Each kind of mistake, by itself
# --------------------------------------------------------------------------
@pytest.mark.parametrize('call', [
    lambda a: numpy.asarray(a), lambda a: numpy.array(a),
    lambda a: numpy.exp(a), lambda a: numpy.sum(a),
    lambda a: numpy.concatenate([a, a]), lambda a: numpy.clip(a, 0, 1),
    lambda a: numpy.einsum('ij->i', a), lambda a: numpy.linalg.norm(a),
    lambda a: numpy.maximum(a, 0)],
    ids=['asarray', 'array', 'exp', 'sum', 'concatenate', 'clip', 'einsum',
         'linalg.norm', 'maximum'])
def test_a_numpy_function_on_a_device_array_fails(standin, call):
    a = gpu(0).send(host(3, 4))
    with pytest.raises(StandInError, match='applied to a device array'):
        call(a)
    call(host(3, 4))  # on a host array: fine


def test_the_device_array_module_and_methods_work(standin):
    a = gpu(0).send(host(3, 4))
    xp = chainer.backend.get_array_module(a)
    assert xp is not numpy and gpu(0).xp is xp
    assert standin.on_device(xp.exp(a)) == 0
    assert standin.on_device(a.sum()) == 0
    assert standin.on_device(a + 1) == 0
    assert standin.on_device(a[numpy.array([2, 0])]) == 0  # host indices
    assert float(a.sum()) == pytest.approx(float(host(3, 4).sum()))
    back = chainer.backend.CpuDevice().send(a)
    assert type(back) is numpy.ndarray
    numpy.testing.assert_array_equal(back, host(3, 4))


@pytest.mark.parametrize('mix', [
    lambda d, h: d + h, lambda d, h: h * d, lambda d, h: d == h,
    lambda d, h: d.__setitem__(Ellipsis, h), lambda d, h: d.dot(h.T),
    lambda d, h: chainer.backend.get_array_module(d).concatenate([d, h])],
    ids=['add', 'multiply', 'equal', 'setitem', 'dot', 'xp.concatenate'])
def test_host_and_device_arrays_mixed_fail(standin, mix):
    d, h = gpu(0).send(host(3, 4)), host(3, 4)
    with pytest.raises(StandInError):
        mix(d, h)
    mix(gpu(0).send(h), d)  # both on the device: fine


def test_a_device_array_to_pil_or_matplotlib_fails(standin, tmp_path):
    from PIL import Image
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    d = gpu(0).send(numpy.zeros((4, 4), dtype=numpy.uint8))
    with pytest.raises(StandInError):
        Image.fromarray(d)
    with pytest.raises(StandInError):
        plt.plot(gpu(0).send(host(5)))
    plt.close('all')
    Image.fromarray(chainer.backend.CpuDevice().send(d))  # the host copy


def test_a_host_array_fed_to_a_model_on_the_device_fails(standin):
    link = L.Linear(4, 2)
    link.to_device(gpu(0))
    with pytest.raises(TypeError, match='incompatible array types'):
        link(host(3, 4))
    y = link(gpu(0).send(host(3, 4)))
    assert standin.on_device(y) == 0


def test_arrays_of_another_gpu_than_the_current_fail(standin):
    a, b = gpu(0).send(host(2, 2)), gpu(1).send(host(2, 2))
    with pytest.raises(StandInError, match='GPU 1 while GPU 0 is current'):
        b + 1
    with chainer.using_device(gpu(1)):
        assert standin.on_device(b + 1) == 1
        with pytest.raises(StandInError, match=r'GPUs \[0, 1\]'):
            a + b
    with pytest.raises(RuntimeError, match='invalid device ordinal'):
        chainer.get_device('@cupy:2')  # two stand-in GPUs


# --------------------------------------------------------------------------
# The same mistakes injected into the project and run through its command
# lines (each run passes without the injection: tests/test_gpu_standin.py)
# --------------------------------------------------------------------------
SSL = ['--batchsize', '30', '--lr-decay-epochs', '0', '--no-progress',
       '--labels', '20', '--iters-per-epoch', '2', '--epochs', '1']


def ssl(idx, out, *extra):
    return train_ssl.main(SSL + ['--data-dir', idx, '--out', str(out)]
                          + list(extra))


def dcgan(faces, out, *extra):
    return train_dcgan.main(['--data', faces, '--out', str(out),
                             '--iterations', '1'] + TINY + list(extra))


def test_injected_numpy_call_on_a_device_array(standin, faces, tmp_path,
                                               monkeypatch):
    from gan import dcgan_updater
    monkeypatch.setattr(dcgan_updater, '_sigmoid',
                        lambda xp, a: 1 / (1 + numpy.exp(-a)))
    with pytest.raises(StandInError, match='numpy.exp'):
        dcgan(faces, tmp_path / 'run', '--device', '0')


def test_injected_host_labels_beside_device_predictions(standin, idx,
                                                        tmp_path,
                                                        monkeypatch):
    from gan import extensions as gext
    init = gext.ClassificationError.__init__

    def host_labels(self, x, y, *args, **kwargs):
        init(self, x, chainer.backend.CpuDevice().send(y), *args, **kwargs)
    monkeypatch.setattr(gext.ClassificationError, '__init__', host_labels)
    with pytest.raises(StandInError, match='host and device arrays mixed'):
        ssl(idx, tmp_path / 'run', '--device', '0')


def test_injected_device_images_to_the_picture_writer(standin, faces,
                                                      tmp_path, monkeypatch):
    from gan import extensions as gext
    from gan import image as gimage

    def render(self, path):  # forgets to bring the images to the host
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            x = self.generator(self.z).array
        return gimage.save_grid(path, x, self.rows, self.cols)
    monkeypatch.setattr(gext.FixedLatentGrid, 'render', render)
    with pytest.raises(StandInError, match='device array'):
        dcgan(faces, tmp_path / 'run', '--device', '0')


def test_injected_host_latents_fed_to_the_generator(standin, faces, tmp_path,
                                                    monkeypatch):
    from gan import nets
    monkeypatch.setattr(nets.DCGANGenerator, 'make_hidden',
                        lambda self, n: grandom.normal(numpy,
                                                       (n, self.z_dim)))
    with pytest.raises(TypeError, match='incompatible array types'):
        dcgan(faces, tmp_path / 'run', '--device', '0')


@pytest.mark.parametrize('command', ['ssl', 'dcgan'])
def test_injected_missing_device_selection(standin, idx, faces, tmp_path,
                                           monkeypatch, command):
    """--device 1 without making GPU 1 current (the multi-GPU bug of the
    SSL command line): the first array operation on GPU 1 fails."""
    from gan import gpu as ggpu
    monkeypatch.setattr(ggpu, 'select', lambda device: device)
    with pytest.raises(StandInError, match='GPU 1 while GPU 0 is current'):
        if command == 'ssl':
            ssl(idx, tmp_path / 'run', '--device', '1')
        else:
            dcgan(faces, tmp_path / 'run', '--device', '1')


# --------------------------------------------------------------------------
# gan.random on a GPU
# --------------------------------------------------------------------------
def reference_bits(key, start, step, n):
    return [grandom.splitmix64((key + (start + step * i) * grandom.GOLDEN)
                               & grandom.MASK64) for i in range(n)]


def test_gpu_stream_is_splitmix64(standin):
    grandom.seed(7)
    key, position = grandom.get_state()['gpu']
    assert position == 0
    u64 = grandom.uniform(gpu(0), (3, 5), dtype=numpy.float64)
    u32 = grandom.uniform(gpu(0), (4,))
    z = grandom.normal(gpu(0), (2, 3), dtype=numpy.float64)
    assert grandom.get_state()['gpu'] == [key, 15 + 4 + 2 * 6]
    bits = reference_bits(key, 0, 1, 15)
    numpy.testing.assert_array_equal(
        chainer.backend.CpuDevice().send(u64).ravel(),
        [(b >> 11) * 2.0 ** -53 for b in bits])
    bits = reference_bits(key, 15, 1, 4)
    numpy.testing.assert_array_equal(
        chainer.backend.CpuDevice().send(u32), numpy.array(
            [(b >> 40) * 2.0 ** -24 for b in bits], dtype=numpy.float32))
    b1, b2 = (reference_bits(key, 19, 2, 6), reference_bits(key, 20, 2, 6))
    want = [math.sqrt(-2 * math.log(((p >> 11) + 0.5) * 2.0 ** -53)) *
            math.cos(2 * math.pi * (q >> 11) * 2.0 ** -53)
            for p, q in zip(b1, b2)]
    numpy.testing.assert_allclose(
        chainer.backend.CpuDevice().send(z).ravel(), want, rtol=1e-12)
    assert u32.dtype == numpy.float32 and z.shape == (2, 3)


def test_gpu_draws_land_on_the_device_asked_for(standin):
    """On GPU 1 while GPU 0 is current (what cupy.random got wrong)."""
    assert standin.current() == 0
    z = grandom.normal(gpu(1), (4, 3))
    assert standin.on_device(z) == 1 and standin.current() == 0
    assert standin.on_device(grandom.uniform(z, (2,))) == 1  # z's device
    net = L.Linear(3, 2)
    net.to_device(gpu(1))
    from gan import nets
    g = nets.DCGANGenerator(32, 16, 4)
    g.to_device(gpu(1))
    assert standin.on_device(g.make_hidden(2)) == 1
    # the stream does not depend on the GPU
    grandom.seed(3)
    a = chainer.backend.CpuDevice().send(grandom.normal(gpu(0), (50,)))
    grandom.seed(3)
    b = chainer.backend.CpuDevice().send(grandom.normal(gpu(1), (50,)))
    numpy.testing.assert_array_equal(a, b)


def test_gpu_stream_statistics_and_state(standin):
    grandom.seed(11)
    state = grandom.get_state()
    z = chainer.backend.CpuDevice().send(grandom.normal(gpu(0), (200000,)))
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs((z > 1.96).mean() - 0.025) < 0.002
    u = chainer.backend.CpuDevice().send(grandom.uniform(gpu(0), (100000,)))
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.005
    grandom.set_state(json.loads(json.dumps(state)))
    again = chainer.backend.CpuDevice().send(grandom.normal(gpu(0), (200000,)))
    numpy.testing.assert_array_equal(z, again)
    # the CPU generators are untouched by GPU draws
    grandom.seed(11)
    cpu = grandom.normal(numpy, (5,))
    grandom.seed(11)
    grandom.normal(gpu(0), (5,))
    numpy.testing.assert_array_equal(grandom.normal(numpy, (5,)), cpu)


# --------------------------------------------------------------------------
# What --device and --communicator say when something is missing
# --------------------------------------------------------------------------
def test_no_such_gpu_is_one_line(standin, idx, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        ssl(idx, tmp_path / 'run', '--device', '2')
    assert e.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert '--device @cupy:2' in line and 'no such GPU' in line


def test_machines_record_names_the_gpu_and_libraries(standin, idx,
                                                     tmp_path):
    out = tmp_path / 'run'
    ssl(idx, out, '--device', '1')
    entry = json.loads(open(str(out / 'machines.jsonl')).readline())
    g = entry['gpu']
    assert (g['id'], g['name'], g['gpus']) == (1, 'stand-in GPU', 2)
    assert g['cuda_runtime'] == g['driver_cuda'] == '12.4'
    assert g['nccl'] == 22105 and g['cupy'] == 'stand-in'
    assert g['cudnn']['use_cudnn'] == 'never' and not g['cudnn']['loaded']


def test_nccl_missing_and_cuda_aware_communicators_are_one_line(
        standin, monkeypatch):
    pytest.importorskip('mpi4py')
    from gan import multinode, runs
    with pytest.raises(runs.UsageError, match='hands GPU memory to MPI'):
        multinode.create('naive', '0')
    monkeypatch.setattr(standin.xp.cuda.nccl, 'available', False)
    with pytest.raises(runs.UsageError) as e:
        multinode.create('pure_nccl', '0')
    assert 'needs NCCL (libnccl.so.2 cannot be loaded)' in str(e.value)
    assert 'make install-gpu' in str(e.value)


@pytest.mark.parametrize('error, words', [
    (ModuleNotFoundError("No module named 'cupy'", name='cupy'),
     ['CuPy is not installed', 'make install-gpu']),
    (ImportError('libcublas.so.12: cannot open shared object file: No such '
                 'file or directory'),
     ['the CUDA library libcublas.so.12 cannot be loaded',
      'make install-gpu']),
    (ImportError('libcuda.so.1: cannot open shared object file'),
     ['no NVIDIA driver', 'an NVIDIA driver for CUDA 12', '525.60.13'])],
    ids=['no-cupy', 'no-cublas', 'no-driver'])
def test_import_problems_name_what_is_missing(error, words):
    from gan import gpu
    text = gpu.import_problem(error)
    assert '\n' not in text
    for w in words:
        assert w in text


def test_runtime_problems_name_what_is_missing():
    from gan import gpu
    assert 'no usable NVIDIA driver' in gpu.runtime_problem(RuntimeError(
        'cudaErrorInsufficientDriver: CUDA driver version is insufficient '
        'for CUDA runtime version'))
    assert 'no CUDA GPU' in gpu.runtime_problem(RuntimeError(
        'cudaErrorNoDevice: no CUDA-capable device is detected'))


def test_device_0_on_this_machine_is_one_line(tmp_path, capsys):
    """Without CuPy, or without a driver or GPU: one line that names what is
    missing and how to install it (skipped where a GPU works)."""
    from gan import gpu, runs
    try:
        runs.parse_device('0')
    except runs.UsageError:
        pass
    else:
        pytest.skip('this machine has a usable GPU')
    with pytest.raises(SystemExit) as e:
        train_ssl.main(['--device', '0', '--out', str(tmp_path / 'run')])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('train_ssl.py: error: '
                                               '--device @cupy:0: ')
    assert gpu.INSTALL in err[0] or 'NVIDIA driver' in err[0] or \
        'no CUDA GPU' in err[0]
    assert not (tmp_path / 'run').exists()  # refused before anything
