"""The GPU side of the command lines: what ``--device N`` needs and says
when it is missing, which GPU a process computes on, and what a run
records about it.

Install (``make install-gpu``, ``requirements-gpu.txt``): CuPy 13 for
CUDA 12 and, from PyPI, the CUDA 12 libraries that CuPy and Chainer load
(cuBLAS, NVRTC, cuRAND, the CUDA runtime's headers for NVRTC, NCCL);
:mod:`gan.cuda_libs` loads them from the virtual environment.  The one
thing pip cannot bring is the NVIDIA driver: a driver for CUDA 12
(:data:`DRIVER`).  ``python -m gan.gpu`` reports what is there.

cuDNN is off.  Chainer 7.8.1 reaches it through CuPy's ``cupy.cudnn``,
which in CuPy 13 needs cuDNN 8 (``libcudnn.so.8``; the current
``nvidia-cudnn-cu12`` wheels are cuDNN 9, which it does not load; the last
cuDNN 8 wheel, 8.9.7.29, is about 700 MB), and the cuDNN calls of Chainer
7.8.1 (written for CuPy 7) have not been run against CuPy 13.  Without it
Chainer computes convolutions, batch normalization and pooling with its
own kernels (im2col + cuBLAS): the same results, slower, and
deterministic, so a resumed run repeats the uninterrupted one.  So
``make install-gpu`` installs no cuDNN, its ``.pth`` file sets
``CHAINER_CUDNN=0`` (Chainer then does not even look for it; see
:mod:`gan.cuda_libs`) and :func:`select` sets ``chainer.config.use_cudnn =
'never'``.  To try cuDNN anyway (unchecked): install
``nvidia-cudnn-cu12==8.9.7.29`` and run with ``CHAINER_CUDNN=1``.
"""
import importlib
import os
import re
import sys

import numpy

import chainer

INSTALL = 'make install-gpu'
DRIVER = ('an NVIDIA driver for CUDA 12 (on Linux 525.60.13 or newer; '
          'nvidia-smi shows its version)')


# --------------------------------------------------------------------------
# What is missing
# --------------------------------------------------------------------------
def import_problem(error):
    """Why CuPy (and with it Chainer's CUDA backend) did not import: one
    line that names what is missing and how to get it."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, ModuleNotFoundError) and (
            getattr(error, 'name', '') or '').split('.')[0] == 'cupy':
        return ('CuPy is not installed: install it and the CUDA 12 '
                'libraries with {} (or use --device -1 for the CPU)'.format(
                    INSTALL))
    if 'libcuda.so' in text:
        return 'no NVIDIA driver ({}): install {}'.format(text, DRIVER)
    lib = re.search(r'(lib[\w+-]+\.so[.\d]*)', text)
    if lib:
        return ('the CUDA library {} cannot be loaded ({}): install it with '
                '{}'.format(lib.group(1), text, INSTALL))
    return 'CuPy cannot be imported ({}: {}): reinstall it with {}'.format(
        type(error).__name__, text, INSTALL)


def runtime_problem(error):
    """Why CUDA cannot reach a GPU (an error of the CUDA runtime)."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if 'InsufficientDriver' in text or 'libcuda' in text or \
            'NoDriver' in text:
        return 'no usable NVIDIA driver ({}): install {}'.format(text, DRIVER)
    if 'NoDevice' in text:
        return 'no CUDA GPU on this machine ({})'.format(text)
    return 'CUDA cannot use the GPU ({})'.format(text)


def explain(error, spec):
    """One line for a device specifier ``spec`` that Chainer refused with
    ``error``."""
    cuda = chainer.backends.cuda
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if 'invalid device ordinal' in text:
        return '{}: no such GPU here (use -1 for the CPU)'.format(text)
    if spec.startswith('@cupy') and not cuda.available:
        return import_problem(getattr(cuda, '_resolution_error', error))
    return '{} (use -1 for the CPU, or a GPU id such as 0)'.format(text)


def is_gpu(device):
    """Whether the Chainer ``device`` is a CUDA GPU."""
    xp = device.xp
    return xp is not numpy and hasattr(xp, 'cuda')


def _part(xp, path):
    """``xp.<path>``, importing submodules that CuPy loads lazily."""
    obj = xp
    for name in path.split('.'):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            obj = importlib.import_module(obj.__name__ + '.' + name)
    return obj


def unusable(device):
    """Why the GPU ``device`` cannot be used (one line), or None (also
    for the CPU)."""
    if not is_gpu(device):
        return None
    runtime = _part(device.xp, 'cuda.runtime')
    try:
        count = runtime.getDeviceCount()
    except Exception as e:  # no driver, no GPU
        return runtime_problem(e)
    gpu = device.device.id
    if count == 0:
        return 'no CUDA GPU on this machine'
    if not 0 <= gpu < count:
        return ('GPU {} does not exist: this machine has {} GPU{} (ids 0 to '
                '{}; -1 for the CPU)'.format(gpu, count,
                                             's' if count > 1 else '',
                                             count - 1))
    return None


def nccl_problem(device):
    """Why NCCL cannot be used on the GPU ``device`` (one line), or
    None."""
    try:
        nccl = _part(device.xp, 'cuda.nccl')
    except Exception as e:
        return 'cupy.cuda.nccl cannot be imported ({})'.format(e)
    if not getattr(nccl, 'available', False):
        return 'libnccl.so.2 cannot be loaded'
    return None


# --------------------------------------------------------------------------
# Which GPU computes
# --------------------------------------------------------------------------
def select(device):
    """Make ``device`` current in this thread (on a GPU: every CuPy
    allocation, random draw and NCCL call of the process then lands on
    it) and apply the cuDNN rule of this module.  Returns ``device``."""
    device.use()
    if is_gpu(device) and os.environ.get('CHAINER_CUDNN') != '1':
        chainer.global_config.use_cudnn = 'never'
    return device


def cudnn_status():
    """What Chainer does about cuDNN here: a dict."""
    cuda = chainer.backends.cuda
    version = getattr(cuda, '_cudnn_version', -1)
    return {'loaded': bool(getattr(cuda, 'cudnn_enabled', False)),
            'version': version if version and version > 0 else None,
            'use_cudnn': chainer.config.use_cudnn}


def _cuda_version(v):
    """12040 -> '12.4'."""
    return '{}.{}'.format(v // 1000, (v % 1000) // 10) if v else None


def _try(fn, default=None):
    try:
        return fn()
    except Exception:
        return default


def describe(device):
    """The GPU ``device`` and the library versions it runs with (a dict
    for ``machines.jsonl`` and ``result.json``), or None for the CPU."""
    if not is_gpu(device):
        return None
    xp = device.xp
    runtime = _part(xp, 'cuda.runtime')
    gpu = device.device.id
    props = _try(lambda: runtime.getDeviceProperties(gpu), {})
    name = props.get('name', b'')
    info = {
        'id': gpu,
        'name': name.decode() if isinstance(name, bytes) else name,
        'memory_gib': round(props['totalGlobalMem'] / 2 ** 30, 1)
        if 'totalGlobalMem' in props else None,
        'compute_capability': '{}.{}'.format(props['major'], props['minor'])
        if 'major' in props else None,
        'gpus': _try(runtime.getDeviceCount),
        'driver_cuda': _cuda_version(_try(runtime.driverGetVersion)),
        'cuda_runtime': _cuda_version(_try(runtime.runtimeGetVersion)),
        'cupy': getattr(xp, '__version__', None),
        'nvrtc': _try(lambda: '.'.join(
            map(str, _part(xp, 'cuda.nvrtc').getVersion()))),
        'cudnn': cudnn_status(),
        'nccl': _try(lambda: _part(xp, 'cuda.nccl').get_version()
                     if _part(xp, 'cuda.nccl').available else None),
    }
    return info


# --------------------------------------------------------------------------
# python -m gan.gpu: what the GPU install left missing
# --------------------------------------------------------------------------
def report(spec='@cupy:0'):
    """What ``make install-gpu`` brought and what still keeps ``--device``
    (``spec``) from a GPU: ``(lines, problem or None, status)``, status 0
    (ready), 1 (only the driver or the GPU missing: what pip cannot
    install) or 2 (a library missing: the install is incomplete)."""
    lines = []
    cuda = chainer.backends.cuda
    from gan import cuda_libs
    missing = []
    for library, where in sorted(cuda_libs.preload().items()):
        lines.append('{:20s} {}'.format(library, where))
        if not where.startswith(os.sep):
            missing.append(library)
    if not cuda.available:
        problem = import_problem(cuda._resolution_error)
        lines.append('Chainer CUDA backend: unavailable')
        return lines, problem, 1 if 'NVIDIA driver' in problem else 2
    import cupy
    lines.append('Chainer CUDA backend: available (CuPy {})'.format(
        cupy.__version__))
    nccl = _try(lambda: importlib.import_module('cupy.cuda.nccl'))
    if nccl is not None and nccl.available:
        lines.append('NCCL: version {}'.format(nccl.get_version()))
    else:
        lines.append('NCCL: missing (libnccl.so.2 cannot be loaded)')
        missing.append('libnccl.so.2')
    status = cudnn_status()
    lines.append('cuDNN: {}; off (see gan/gpu.py)'.format(
        'libcudnn {} loadable'.format(status['version'])
        if status['loaded'] else 'not installed'))
    if missing:
        return lines, ('{} missing: install with {}'.format(
            ', '.join(missing), INSTALL)), 2
    try:
        device = chainer.get_device(spec)
    except Exception as e:
        return lines, explain(e, spec), 1
    problem = unusable(device)
    return lines, problem, 1 if problem else 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    spec = argv[0] if argv else '@cupy:0'
    lines, problem, status = report(spec)
    for line in lines:
        print(line)
    if problem:
        print('left for --device {}: {}'.format(spec, problem))
    else:
        print('--device {} is ready'.format(spec))
    return status


if __name__ == '__main__':
    sys.exit(main())
