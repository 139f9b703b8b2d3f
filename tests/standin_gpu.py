"""A stand-in GPU: the project's CUDA code paths on a CPU, with the
mistakes a real GPU punishes turned into test failures.

``install(gpus=2)`` (a context manager; the ``standin`` fixture of
``tests/conftest.py`` uses it) makes ``chainer.get_device('@cupy:N')`` --
and so ``--device N`` of every command line -- return a
:class:`StandInDevice`.  Its arrays are :class:`DeviceArray`: numpy arrays
(so Chainer's own functions compute on them with their CPU kernels, bit
for bit as on the CPU) that carry the id of the stand-in GPU holding them,
and its array module (``device.xp``, ``link.xp``,
``chainer.backend.get_array_module`` as the project sees them) is
:data:`xp`, a module that is not numpy, so every ``xp is numpy`` test of
the project takes its GPU branch.  Chainer's internals are shown numpy
(their CPU code runs); only the project, the tests and other libraries
see the GPU.

What fails (raises :class:`StandInError`, an AssertionError), as on CuPy
or worse:

* a numpy function applied to a device array (``numpy.asarray(x)``,
  ``numpy.concatenate``, ``numpy.exp``...) outside Chainer: CuPy refuses
  implicit transfers (``.get()`` or ``chainer.backend.CpuDevice().send``
  bring an array to the host);
* host and device arrays mixed in one operation (``x_dev + x_host``,
  ``x_dev[...] = x_host``, ``xp.concatenate([x_dev, x_host])``);
* a device array handed to PIL (``__array_interface__``) or to
  matplotlib (which calls numpy on it);
* a host array fed to a model on the device (Chainer's "incompatible
  array types" check, as with CuPy);
* an operation on an array of GPU N while GPU M is current, arrays of two
  GPUs in one operation (CuPy without peer access), and a collective of
  the stand-in NCCL communicator on another GPU than its rank's.

What it cannot see: anything CUDA itself does (kernels, cuBLAS, NCCL,
memory, speed, float rounding of GPU kernels), Chainer's own GPU branches
(Chainer computes with its CPU code here), numpy calls that Chainer makes
on device arrays, and CuPy functions that numpy lacks or that behave
differently from numpy's.  ``tests/test_gpu.py`` checks those on a real
GPU (``make gpu-check``).

``python tests/standin_gpu.py SCRIPT|-m MODULE ARGS...`` runs a command
line under the stand-in (for ``mpiexec``: every rank gets its own two
stand-in GPUs, like a node with two GPUs).
"""
import contextlib
import functools
import os
import runpy
import sys
import threading
import types
import weakref

import numpy

import chainer
import chainer.backends._cpu
import chainer.backends.cuda
import chainer.function_node
import chainer.initializers
from chainer.functions.array.copy import Copy as _Copy

# the numpy functions as they are before install() wraps them: the
# stand-in itself computes with these
_np = types.SimpleNamespace(**{k: getattr(numpy, k) for k in dir(numpy)
                               if not k.startswith('__')})
_np_linalg = types.SimpleNamespace(**{k: getattr(numpy.linalg, k)
                                      for k in dir(numpy.linalg)
                                      if not k.startswith('__')})

# frames of these modules see numpy (Chainer's internals run their CPU code)
LIBRARIES = ('chainer', 'chainermn', 'chainerx', 'mpi4py')
# numpy functions that never read an array's values
HARMLESS = {'isscalar', 'ndim', 'shape', 'size', 'result_type', 'dtype',
            'issubdtype', 'iterable', 'can_cast', 'promote_types',
            'may_share_memory', 'shares_memory', 'min_scalar_type',
            'errstate', 'seterr', 'geterr', 'set_printoptions',
            'get_printoptions', 'printoptions', 'format_float_positional',
            'format_float_scientific', 'isfortran', 'array_repr',
            'array_str', 'array2string'}
# CuPy functions that take host arrays (transfers to the current device)
TRANSFERS = {'asarray', 'array', 'ascontiguousarray', 'asanyarray',
             'asfortranarray'}
# numpy functions that make an array from nothing: when Chainer calls
# them through the ``xp`` of a device (numpy here, CuPy on a GPU), the
# array stands for a device array (see _library_made)
CREATION = {'zeros', 'ones', 'empty', 'full', 'arange', 'eye', 'identity',
            'linspace'}


class StandInError(AssertionError):
    """What a real GPU would refuse (or silently get wrong)."""


# --------------------------------------------------------------------------
# The current device (per thread, as in CUDA)
# --------------------------------------------------------------------------
_local = threading.local()
_state = {'gpus': 0, 'installed': False, 'log': None}


def current():
    """The id of the current stand-in GPU of this thread."""
    return getattr(_local, 'gpu', 0)


def _set_current(gpu):
    _local.gpu = int(gpu)


@contextlib.contextmanager
def _using(gpu):
    saved = current()
    _set_current(gpu)
    try:
        yield
    finally:
        _set_current(saved)


def _record(kind, gpu):
    """Log (kind, gpu) when a test asked for it (:func:`recording`)."""
    log = _state['log']
    if log is not None:
        log.append((kind, gpu))


@contextlib.contextmanager
def recording():
    """Within the block, every stand-in GPU allocation through :data:`xp`
    is logged: yields the list of ``(function name, gpu)``."""
    saved, _state['log'] = _state['log'], []
    try:
        yield _state['log']
    finally:
        _state['log'] = saved


# --------------------------------------------------------------------------
# Who is calling
# --------------------------------------------------------------------------
def _module(frame):
    return frame.f_globals.get('__name__') or ''


def _is_numpy(name):
    return name == 'numpy' or name.startswith('numpy.')


def _is_library(name):
    return name.split('.')[0] in LIBRARIES


def _caller(depth=2):
    """The first frame above ``depth`` outside numpy and this module."""
    frame = sys._getframe(depth)
    while frame is not None:
        name = _module(frame)
        if not (_is_numpy(name) or name == __name__):
            return frame
        frame = frame.f_back
    return None


def _library_caller(depth=2):
    """Whether the code asking is Chainer's (or ChainerMN's); Chainer's
    ``xp`` properties pass the question on to their own caller."""
    frame = _caller(depth + 1)
    while frame is not None and _is_library(_module(frame)) and \
            frame.f_code.co_name in ('xp', 'get_array_module'):
        frame = frame.f_back
    return frame is not None and _is_library(_module(frame))


_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _where(frame):
    """file:line of the project's (or a test's) code nearest to ``frame``
    (a library's frame names the project line that called it)."""
    first = frame
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if path.startswith(_ROOT + os.sep) and os.sep + '.venv' + os.sep \
                not in path and path != os.path.abspath(__file__):
            break
        frame = frame.f_back
    frame = frame or first
    if frame is None:
        return '?'
    return '{}:{}'.format(os.path.relpath(frame.f_code.co_filename, _ROOT),
                          frame.f_lineno)


def _fail(message, depth=3):
    raise StandInError('{} (at {})'.format(message, _where(_caller(depth))))


# --------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------
def _is_host(a):
    """A host array that counts: a plain numpy array of one or more
    dimensions (0-dim arrays and numpy scalars pass as scalars, as in
    CuPy)."""
    return type(a) is numpy.ndarray and a.ndim > 0


def _arrays(args, kwargs):
    """The arrays among the arguments (and one level of lists/tuples)."""
    found = []
    for v in list(args) + list(kwargs.values()):
        if isinstance(v, (list, tuple)):
            found.extend(x for x in v if isinstance(x, numpy.ndarray))
        elif isinstance(v, numpy.ndarray):
            found.append(v)
    return found


def _plain(v):
    """Device arrays (also inside lists and tuples) as plain numpy views."""
    if isinstance(v, DeviceArray):
        return v.view(numpy.ndarray)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, tuple):
        return tuple(_plain(x) for x in v)
    return v


def _on(a, gpu):
    """``a`` (a numpy array or scalar) as a device array of ``gpu``,
    without a copy."""
    if isinstance(a, numpy.generic):
        a = _np.asarray(a)
    if isinstance(a, DeviceArray):
        a.gpu = gpu
        return a
    if isinstance(a, numpy.ndarray):
        d = a.view(DeviceArray)
        d.gpu = gpu
        return d
    if isinstance(a, tuple):
        return tuple(_on(x, gpu) for x in a)
    if isinstance(a, list):
        return [_on(x, gpu) for x in a]
    return a


def _check_gpus(devs, what):
    """The one GPU of the device arrays ``devs``, which must be current."""
    gpus = sorted({a.gpu for a in devs})
    if len(gpus) > 1:
        _fail('{}: arrays of stand-in GPUs {} in one operation'.format(
            what, gpus), 4)
    if gpus and gpus[0] != current():
        _fail('{}: an array of stand-in GPU {} while GPU {} is current '
              '(select the array\'s device first)'.format(
                  what, gpus[0], current()), 4)
    return gpus[0] if gpus else current()


class DeviceArray(numpy.ndarray):
    """An array in the memory of stand-in GPU ``gpu``."""

    gpu = 0

    def __array_finalize__(self, obj):
        self.gpu = obj.gpu if isinstance(obj, DeviceArray) else current()

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get('out', ())
        arrays = [a for a in inputs + tuple(out)
                  if isinstance(a, numpy.ndarray)]
        devs = [a for a in arrays if isinstance(a, DeviceArray)]
        frame = _caller()
        if frame is None or not _is_library(_module(frame)):
            hosts = [a for a in arrays if _is_host(a)]
            if hosts:
                _fail('{}.{}: host and device arrays mixed (send the host '
                      'array to the device first)'.format(
                          ufunc.__name__, method))
        gpu = _check_gpus(devs, ufunc.__name__)
        plain = [_plain(a) for a in inputs]
        if out:
            kwargs['out'] = tuple(_plain(a) for a in out)
        result = getattr(ufunc, method)(*plain, **kwargs)
        if out:
            return out[0] if len(out) == 1 else tuple(out)
        if method == 'at':
            return None
        return _on(result, gpu)

    def __getitem__(self, key):
        if _is_fancy(key):
            _check_gpus([self] + [k for k in _keys(key)
                                  if isinstance(k, DeviceArray)],
                        'indexing')
        result = numpy.ndarray.__getitem__(self.view(numpy.ndarray),
                                           _plain(key))
        return _on(result, self.gpu)

    def __setitem__(self, key, value):
        if _is_host(value):
            frame = _caller()
            if frame is None or not _is_library(_module(frame)):
                _fail('setitem: a host array written into a device array '
                      '(send it to the device first)')
        devs = [self] + ([value] if isinstance(value, DeviceArray) else [])
        _check_gpus(devs, 'setitem')
        numpy.ndarray.__setitem__(self.view(numpy.ndarray), _plain(key),
                                  _plain(value))

    def dot(self, b, out=None):
        if _is_host(b):
            _fail('dot: host and device arrays mixed')
        gpu = _check_gpus([self] + ([b] if isinstance(b, DeviceArray)
                                    else []), 'dot')
        return _on(_np.dot(self.view(numpy.ndarray), _plain(b)), gpu)

    @property
    def __array_interface__(self):
        frame = _caller()
        if frame is None or not _is_library(_module(frame)):
            _fail('a device array read as host memory (PIL, ctypes, '
                  'buffers): bring it to the host first (.get() or '
                  'chainer.backend.CpuDevice().send)')
        return self.view(numpy.ndarray).__array_interface__

    # CuPy's own methods
    def get(self, stream=None):
        """A host copy (``cupy.ndarray.get``)."""
        return _np.array(self.view(numpy.ndarray))

    def set(self, arr, stream=None):
        """Copy the host array ``arr`` in (``cupy.ndarray.set``)."""
        numpy.ndarray.__setitem__(self.view(numpy.ndarray), Ellipsis, arr)

    @property
    def device(self):
        return CudaDevice(self.gpu)

    def __repr__(self):
        return 'standin({}, gpu={})'.format(
            repr(self.view(numpy.ndarray)), self.gpu)


def _keys(key):
    return key if isinstance(key, tuple) else (key,)


def _is_fancy(key):
    return any(isinstance(k, (numpy.ndarray, list)) for k in _keys(key))


# --------------------------------------------------------------------------
# The array module (stand-in CuPy)
# --------------------------------------------------------------------------
def _device_function(name, func, namespace='cupy'):
    """``func`` of numpy as the stand-in's: device arrays in (on the
    current GPU), device arrays out (on the current GPU)."""

    @functools.wraps(func)
    def call(*args, **kwargs):
        arrays = _arrays(args, kwargs)
        if name not in TRANSFERS:
            hosts = [a for a in arrays if _is_host(a)]
            if hosts:
                _fail('{}.{}: got a host array (send it to the device '
                      'first)'.format(namespace, name))
            gpu = _check_gpus([a for a in arrays
                               if isinstance(a, DeviceArray)],
                              '{}.{}'.format(namespace, name))
        else:  # a copy onto the current GPU
            gpu = current()
        out = kwargs.get('out')
        result = func(*_plain(args), **{k: _plain(v)
                                        for k, v in kwargs.items()})
        _record(name, gpu)
        if out is not None:
            return out
        if name in TRANSFERS and result is not None and any(
                isinstance(a, DeviceArray) and a.gpu != gpu for a in arrays):
            result = _np.array(result)  # a copy between GPUs
        return _on(result, gpu)

    return call


def _wraps_values(obj):
    return isinstance(obj, numpy.ufunc) or type(obj).__name__ in (
        'function', 'builtin_function_or_method', '_ArrayFunctionDispatcher')


class _Namespace(types.ModuleType):
    """numpy's names, the functions as :func:`_device_function`."""

    _source = _np
    _prefix = 'cupy'

    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)
        obj = getattr(self._source, name)
        if _wraps_values(obj):
            obj = _device_function(name, obj, self._prefix)
        setattr(self, name, obj)
        return obj


class _Linalg(_Namespace):
    _source = _np_linalg
    _prefix = 'cupy.linalg'


class _Random(types.ModuleType):
    """``cupy.random``'s global draws: on the current GPU, from a
    generator per GPU."""

    def __init__(self, name):
        super().__init__(name)
        self._rngs = {}

    def _rng(self):
        return self._rngs.setdefault(current(), numpy.random.RandomState(0))

    def seed(self, seed=None):
        self._rngs[current()] = numpy.random.RandomState(seed)

    def _out(self, a, dtype):
        _record('random', current())
        return _on(_np.asarray(a, dtype=dtype), current())

    def standard_normal(self, size=None, dtype=float):
        return self._out(self._rng().standard_normal(size), dtype)

    def random_sample(self, size=None, dtype=float):
        return self._out(self._rng().random_sample(size), dtype)

    random = random_sample

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=float):
        return self._out(self._rng().normal(loc, scale, size), dtype)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        return self._out(self._rng().uniform(low, high, size), dtype)

    def rand(self, *size, dtype=float):
        return self.random_sample(size, dtype)

    def randn(self, *size, dtype=float):
        return self.standard_normal(size, dtype)


class CudaDevice:
    """What ``cupy.cuda.Device`` offers the project: an id, ``use`` and a
    ``with`` block that makes it current."""

    def __init__(self, gpu=None):
        self.id = current() if gpu is None else int(gpu)
        self._saved = []

    def use(self):
        _set_current(self.id)

    def __enter__(self):
        self._saved.append(current())
        _set_current(self.id)
        return self

    def __exit__(self, *exc):
        _set_current(self._saved.pop())

    def __eq__(self, other):
        return isinstance(other, CudaDevice) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __int__(self):
        return self.id

    def synchronize(self):
        pass

    @property
    def compute_capability(self):
        return '90'

    def __repr__(self):
        return '<stand-in CUDA Device {}>'.format(self.id)


class _Runtime:
    """The parts of ``cupy.cuda.runtime`` the project reads."""

    @staticmethod
    def getDeviceCount():
        return _state['gpus']

    @staticmethod
    def getDevice():
        return current()

    @staticmethod
    def setDevice(gpu):
        _set_current(gpu)

    @staticmethod
    def getDeviceProperties(gpu):
        if not 0 <= gpu < _state['gpus']:
            raise RuntimeError('cudaErrorInvalidDevice: invalid device '
                               'ordinal')
        return {'name': b'stand-in GPU', 'totalGlobalMem': 2 ** 30,
                'major': 9, 'minor': 0, 'multiProcessorCount': 1}

    @staticmethod
    def runtimeGetVersion():
        return 12040

    @staticmethod
    def driverGetVersion():
        return 12040

    @staticmethod
    def memGetInfo():
        return 2 ** 30, 2 ** 30


class _Nccl:
    available = True

    @staticmethod
    def get_version():
        return 22105


class _Nvrtc:
    @staticmethod
    def getVersion():
        return 12, 4


def _make_xp():
    xp = _Namespace('standin_cupy')
    xp.__doc__ = 'The array module of the stand-in GPU (numpy inside).'
    xp.ndarray = DeviceArray
    xp.linalg = _Linalg('standin_cupy.linalg')
    xp.random = _Random('standin_cupy.random')
    xp.__version__ = 'stand-in'
    cuda = types.ModuleType('standin_cupy.cuda')
    cuda.Device = CudaDevice
    cuda.runtime = _Runtime()
    cuda.nccl = _Nccl()
    cuda.nvrtc = _Nvrtc()
    xp.cuda = cuda

    def asnumpy(a, stream=None):
        if isinstance(a, DeviceArray):
            return a.get()
        return _np.asarray(a)

    def get_array_module(*args):
        for a in args:
            if isinstance(getattr(a, 'array', a), DeviceArray):
                return xp
        return numpy

    xp.asnumpy = asnumpy
    xp.get_array_module = get_array_module
    return xp


xp = _make_xp()


# --------------------------------------------------------------------------
# The Chainer device
# --------------------------------------------------------------------------
class StandInDevice(chainer.backend.Device):
    """Stand-in GPU ``gpu`` as a Chainer device (``str()``: ``@cupy:N``)."""

    supported_array_types = (DeviceArray,)

    def __init__(self, gpu):
        self.gpu = int(gpu)
        self.device = CudaDevice(self.gpu)

    @property
    def name(self):
        return '@cupy:{}'.format(self.gpu)

    @property
    def xp(self):
        return numpy if _library_caller() else xp

    def __eq__(self, other):
        return isinstance(other, StandInDevice) and other.gpu == self.gpu

    __hash__ = chainer.backend.Device.__hash__

    def __repr__(self):
        return '<StandInDevice (stand-in GPU {})>'.format(self.gpu)

    def create_context(self):
        return _using(self.gpu)

    def use(self):
        _set_current(self.gpu)

    def send_array(self, array):
        if array is None:
            return None
        if isinstance(array, DeviceArray):
            if array.gpu == self.gpu:
                return array
            return _on(_np.array(array.view(numpy.ndarray)), self.gpu)
        if isinstance(array, (numpy.ndarray, numpy.generic)) or \
                numpy.isscalar(array):
            _record('send', self.gpu)
            return _on(_np.array(array), self.gpu)
        raise TypeError('cannot send {} to {}'.format(type(array), self))

    def is_array_supported(self, array):
        return isinstance(array, DeviceArray) and array.gpu == self.gpu

    @staticmethod
    def from_array(array):
        if isinstance(array, DeviceArray):
            return StandInDevice(array.gpu)
        return None


def on_device(a):
    """The stand-in GPU id of ``a`` (an array or Variable), or None for a
    host array."""
    a = getattr(a, 'array', a)
    return a.gpu if isinstance(a, DeviceArray) else None


# --------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------
# arrays that Chainer's code made from nothing with numpy (id -> array):
# on a GPU its ``xp`` would have made them on the device, so a function
# that gets one beside device arrays takes it as a device array
_library_made = weakref.WeakValueDictionary()


def _police(name, func, namespace='numpy'):
    """numpy's ``func``, refusing device arrays from outside Chainer."""
    creation = name in CREATION

    @functools.wraps(func)
    def call(*args, **kwargs):
        for a in _arrays(args, kwargs):
            if isinstance(a, DeviceArray):
                frame = _caller()
                if frame is None or not _is_library(_module(frame)):
                    _fail('{}.{} applied to a device array (use the '
                          'device\'s array module, or bring the array to '
                          'the host first)'.format(namespace, name))
                break
        result = func(*args, **kwargs)
        if creation and type(result) is numpy.ndarray:
            frame = _caller()
            if frame is not None and _is_library(_module(frame)):
                _library_made[id(result)] = result
        return result

    call.__wrapped_by_standin__ = True
    return call


class _PolicedUfunc:
    """A numpy ufunc that refuses device arrays from outside Chainer when
    called by name (``numpy.exp(x)``); operators, methods and numpy's own
    uses (``ufunc.reduce``) pass."""

    __wrapped_by_standin__ = True

    def __init__(self, name, ufunc, namespace):
        self._ufunc = ufunc
        self._call = _police(name, ufunc, namespace)

    def __call__(self, *args, **kwargs):
        return self._call(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._ufunc, name)

    def __repr__(self):
        return repr(self._ufunc)


def _patched_from_device_id(device_id):
    if not 0 <= int(device_id) < _state['gpus']:
        raise RuntimeError('CUDA error: cudaErrorInvalidDevice: invalid '
                           'device ordinal (stand-in: {} GPUs)'.format(
                               _state['gpus']))
    return StandInDevice(device_id)


def _compatible(original):
    def is_arrays_compatible(arrays):
        arrays = [a for a in arrays if a is not None]
        devs = [a for a in arrays if isinstance(a, DeviceArray)]
        if not devs:
            return original(arrays)
        if any(isinstance(a, numpy.ndarray) and not isinstance(
                a, DeviceArray) for a in arrays):
            return False  # Chainer raises "incompatible array types"
        if len({a.gpu for a in devs}) > 1:
            raise StandInError('arrays of stand-in GPUs {} given to one '
                               'function'.format(sorted({a.gpu
                                                         for a in devs})))
        return True
    return is_arrays_compatible


def _gpu_of_inputs(inputs):
    for x in inputs:
        a = getattr(x, 'array', x)
        if isinstance(a, DeviceArray):
            return a.gpu
    return None


def _to_device_variables(values, gpu):
    for v in values:
        a = getattr(v, 'array', None)
        if type(a) is numpy.ndarray:
            v.array = _on(a, gpu)
    return values


def _made_by_library(a):
    return type(a) is numpy.ndarray and _library_made.get(id(a)) is a


def _patched_apply(original):
    def apply(self, inputs):
        gpu = _gpu_of_inputs(inputs)
        if gpu is None or isinstance(self, _Copy):  # F.copy to the host
            return original(self, inputs)
        inputs = list(inputs)
        for i, x in enumerate(inputs):
            a = getattr(x, 'array', x)
            if _made_by_library(a):
                if isinstance(x, chainer.Variable):
                    x.array = _on(a, gpu)
                else:
                    inputs[i] = _on(a, gpu)
        forward = self.forward
        backward = self.backward

        def forward_on_device(in_data):
            # Chainer's CPU kernels may make new host arrays: they are the
            # GPU kernel's output here
            return tuple(o if o is None else _on(o, gpu)
                         for o in forward(in_data))

        def backward_on_device(indexes, grad_outputs):
            out = backward(indexes, grad_outputs)
            with _using(gpu):
                return _to_device_variables(out, gpu)

        self.forward = forward_on_device
        self.backward = backward_on_device
        try:
            return original(self, inputs)
        finally:
            del self.forward
    return apply


def _patched_get_array_module(original):
    def get_array_module(*args):
        for a in args:
            if isinstance(getattr(a, 'array', a), DeviceArray):
                return numpy if _library_caller() else xp
        return original(*args)
    return get_array_module


def _patched_array_to_cpu(original):
    def array_to_cpu(array, *rest):
        if isinstance(array, DeviceArray):
            return array.get()
        return original(array, *rest)
    return array_to_cpu


def _patched_from_array(original):
    def from_array(array):
        if isinstance(array, DeviceArray):
            return StandInDevice(array.gpu)
        return original(array)
    return from_array


def _patched_generate_array(original):
    def generate_array(initializer, shape, xp_, dtype=None, device=None):
        array = original(initializer, shape, xp_, dtype=dtype, device=device)
        if device is not None:
            device = chainer.get_device(device)
            if isinstance(device, StandInDevice):
                return device.send(array)
        return array
    return generate_array


class _Patches:
    def __init__(self):
        self.undo = []

    def set(self, owner, name, value):
        self.undo.append((owner, name, owner.__dict__.get(name, _MISSING)
                          if isinstance(owner, type) else
                          getattr(owner, name, _MISSING)))
        setattr(owner, name, value)

    def restore(self):
        for owner, name, old in reversed(self.undo):
            if old is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, old)
        self.undo = []


_MISSING = object()


def _police_numpy(patches):
    for namespace, module in (('numpy', numpy), ('numpy.linalg',
                                                 numpy.linalg)):
        for name in dir(module):
            if name.startswith('_') or name in HARMLESS:
                continue
            obj = getattr(module, name)
            if getattr(obj, '__wrapped_by_standin__', False):
                continue
            if isinstance(obj, numpy.ufunc):
                patches.set(module, name, _PolicedUfunc(name, obj,
                                                        namespace))
            elif _wraps_values(obj):
                patches.set(module, name, _police(name, obj, namespace))


@contextlib.contextmanager
def install(gpus=2):
    """Stand-in GPUs ``0 .. gpus-1`` for the duration of the block."""
    if _state['installed']:
        raise RuntimeError('the stand-in GPU is installed already')
    cuda = chainer.backends.cuda
    patches = _Patches()
    _state.update(gpus=int(gpus), installed=True)
    _set_current(0)
    try:
        patches.set(cuda.GpuDevice, 'from_device_id',
                    staticmethod(_patched_from_device_id))
        patches.set(cuda.GpuDevice, 'from_array', staticmethod(
            _patched_from_array(cuda.GpuDevice.__dict__['from_array']
                                .__func__)))
        cpu = chainer.backends._cpu
        patches.set(cpu.CpuDevice, 'from_array', staticmethod(
            lambda a: None if isinstance(a, DeviceArray) else
            cpu.CpuDevice() if isinstance(a, numpy.ndarray) else None))
        patches.set(cpu.CpuDevice, 'is_array_supported',
                    lambda self, a: isinstance(a, numpy.ndarray) and
                    not isinstance(a, DeviceArray))
        patches.set(cpu, '_array_to_cpu',
                    _patched_array_to_cpu(cpu._array_to_cpu))
        patches.set(cuda, '_array_to_cpu',
                    _patched_array_to_cpu(cuda._array_to_cpu))
        patches.set(chainer.backend, 'get_array_module',
                    _patched_get_array_module(
                        chainer.backend.get_array_module))
        patches.set(cuda, 'get_array_module',
                    _patched_get_array_module(cuda.get_array_module))
        patches.set(chainer, 'is_arrays_compatible',
                    _compatible(chainer.is_arrays_compatible))
        fn = chainer.function_node.FunctionNode
        patches.set(fn, 'apply', _patched_apply(fn.apply))
        patches.set(chainer.initializers, 'generate_array',
                    _patched_generate_array(
                        chainer.initializers.generate_array))
        _patch_chainermn(patches)
        _police_numpy(patches)
        yield xp
    finally:
        patches.restore()
        _state.update(gpus=0, installed=False)
        _set_current(0)


# --------------------------------------------------------------------------
# A stand-in for NCCL (ChainerMN's pure_nccl communicator)
# --------------------------------------------------------------------------
NCCL_COMMUNICATORS = ('pure_nccl', 'single_node', 'non_cuda_aware')


def _patch_chainermn(patches):
    try:
        import chainermn
        import mpi4py.MPI  # noqa: F401
    except Exception:  # no MPI: nothing to stand in for
        return
    original = chainermn.create_communicator

    def create_communicator(communicator_name='pure_nccl', mpi_comm=None,
                            **kwargs):
        if communicator_name in NCCL_COMMUNICATORS:
            return _nccl_communicator(mpi_comm)
        return original(communicator_name, mpi_comm, **kwargs)

    patches.set(chainermn, 'create_communicator', create_communicator)


def _nccl_communicator(mpi_comm=None):
    """A ChainerMN communicator that stands in for ``pure_nccl``: the
    collectives on parameters and gradients run over MPI on host copies
    (the stand-in GPUs share the host's memory), after checking what
    NCCL needs: the first collective binds the communicator to the
    current GPU, which must be this rank's (its index on the node), and
    every array must be on it."""
    from chainermn.communicators import naive_communicator
    from mpi4py import MPI

    class StandInNcclCommunicator(naive_communicator.NaiveCommunicator):
        bound_gpu = None

        def _check(self, arrays=(), what='NCCL'):
            want = self.intra_rank
            if self.bound_gpu is None:
                self.bound_gpu = current()
            if self.bound_gpu != want:
                raise StandInError(
                    'rank {}: its NCCL communicator was set up on stand-in '
                    'GPU {}, not on the rank\'s GPU {} (select the rank\'s '
                    'device before the first NCCL call)'.format(
                        self.rank, self.bound_gpu, want))
            if current() != want:
                raise StandInError('rank {}: {} while GPU {} is current, '
                                   'not the rank\'s GPU {}'.format(
                                       self.rank, what, current(), want))
            for a in arrays:
                if a is not None and on_device(a) != want:
                    raise StandInError(
                        'rank {}: {} on an array of {} (not on the rank\'s '
                        'GPU {})'.format(self.rank, what, 'the host' if
                                         on_device(a) is None else
                                         'GPU {}'.format(on_device(a)), want))

        def _params(self, model):
            return [p for _, p in sorted(model.namedparams())]

        def bcast_data(self, model):
            self._check([p.array for p in self._params(model)],
                        'bcast_data')
            super().bcast_data(model)

        def multi_node_mean_grad(self, model, zero_fill=False):
            self._check([p.grad for p in self._params(model)],
                        'multi_node_mean_grad')
            super().multi_node_mean_grad(model, zero_fill)

        def allreduce_grad(self, model, zero_fill=False):
            self.multi_node_mean_grad(model, zero_fill)

    return StandInNcclCommunicator(mpi_comm or MPI.COMM_WORLD)


# --------------------------------------------------------------------------
# Command lines under the stand-in
# --------------------------------------------------------------------------
def main(argv):
    """``[--as-cupy] SCRIPT ARGS`` or ``[--as-cupy] -m MODULE ARGS`` under
    the stand-in.  ``--as-cupy`` also makes ``import cupy`` give the
    stand-in's array module, and the child command lines of the tests
    (``GPU_TEST_PREFIX``) run under the stand-in too: ``python
    tests/standin_gpu.py --as-cupy -m pytest -m gpu tests/test_gpu.py``
    runs the real GPU's tests here (a check of those tests, not of a
    GPU)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:
        sys.path.insert(0, root)
    as_cupy = argv[:1] == ['--as-cupy']
    if as_cupy:
        argv = argv[1:]
        os.environ['GPU_TEST_PREFIX'] = '{} --as-cupy'.format(
            os.path.abspath(__file__))
    with install(gpus=int(os.environ.get('STANDIN_GPUS', '2'))):
        if as_cupy:
            sys.modules['cupy'] = xp
        try:
            if argv[0] == '-m':
                sys.argv = [argv[1]] + argv[2:]
                runpy.run_module(argv[1], run_name='__main__',
                                 alter_sys=True)
            else:
                sys.argv = list(argv)
                runpy.run_path(argv[0], run_name='__main__')
        finally:
            if as_cupy:
                del sys.modules['cupy']


if __name__ == '__main__':  # as the module standin_gpu, not __main__
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import standin_gpu
    standin_gpu.main(sys.argv[1:])
