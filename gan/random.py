"""Random numbers for the training loop: float32, from a modern generator,
drawn where the model is.

Every draw takes ``where``: the array module ``numpy``, a Chainer device
(``link.device``) or an array (its device).

* On the CPU the numbers come from ``numpy.random.Generator`` (PCG64,
  ziggurat normals), directly in float32.  The module holds two CPU
  generators: the main one, which every draw here uses, and a second one
  that only :mod:`gan.fast.noise` uses (it fills half of a large array in
  a helper thread).
* On a GPU they are made on that GPU (never on whichever GPU happens to be
  current) by a counter-based generator: the k-th 64-bit number of the
  stream is SplitMix64's output for the state ``key + k * 0x9e3779b97f4a7c15``
  (``key`` from the seed), so the whole generator is two integers (key,
  position).  Normals use two numbers each (Box-Muller in float64, then
  the dtype); uniforms in [0, 1) take the top 24 (float32) or 53
  (float64) bits of one.  With CuPy one fused kernel makes a draw; any
  other array module (the stand-in GPU of the tests) computes the same
  numbers with its array functions.

``seed(s)`` makes every draw of a run reproducible.  All three states are
part of a trainer snapshot (see ``gan.extensions.RandomState``), so a
resumed run continues with the same random stream on the CPU and on a
GPU.
"""
import types

import numpy

import chainer

GOLDEN = 0x9E3779B97F4A7C15
MIX1, MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
MASK64 = (1 << 64) - 1


def _second(value):
    return numpy.random.default_rng([int(value), 0x5eed])


def splitmix64(x):
    """SplitMix64's output function of the 64-bit integer ``x`` (Python
    ints: the reference the array code is checked against)."""
    z = x & MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def _gpu_start(value):
    """(key, position) of the GPU stream of seed ``value``."""
    return [splitmix64(int(value) * GOLDEN + 1), 0]


_state = {'rng': numpy.random.default_rng(0), 'rng2': _second(0),
          'gpu': _gpu_start(0)}


def seed(value):
    """Seed the CPU generators and the GPU stream."""
    _state['rng'] = numpy.random.default_rng(value)
    _state['rng2'] = _second(value)
    _state['gpu'] = _gpu_start(value)


def generator():
    """The shared ``numpy.random.Generator`` (the main one)."""
    return _state['rng']


def second_generator():
    """The second CPU generator (see :mod:`gan.fast.noise`)."""
    return _state['rng2']


# --------------------------------------------------------------------------
# Where a draw goes
# --------------------------------------------------------------------------
def device(where):
    """The Chainer device of ``where``: ``numpy`` (the CPU), a Chainer
    device, an array or Variable (its device), or a GPU array module
    (CuPy: its current device; prefer a device or an array)."""
    if isinstance(where, chainer.backend.Device):
        return where
    if where is numpy:
        return chainer.backend.CpuDevice()
    if isinstance(where, types.ModuleType):  # cupy
        return chainer.get_device('@cupy:{}'.format(where.cuda.Device().id))
    array = where.array if isinstance(where, chainer.Variable) else where
    return chainer.backend.get_device_from_array(array)


def array_module(where):
    """The array module of ``where`` (see :func:`device`)."""
    if isinstance(where, types.ModuleType):
        return where
    return device(where).xp


def on_cpu(where):
    return where is numpy or array_module(where) is numpy


def normal(where, shape, dtype=numpy.float32):
    """Standard normal numbers of ``shape`` on the device of ``where``."""
    if on_cpu(where):
        return _state['rng'].standard_normal(shape, dtype=numpy.dtype(dtype))
    return _gpu_draw(device(where), shape, numpy.dtype(dtype), 'normal')


def uniform(where, shape, dtype=numpy.float32):
    """Uniform numbers in [0, 1) of ``shape`` on the device of ``where``."""
    if on_cpu(where):
        return _state['rng'].random(shape, dtype=dtype)
    return _gpu_draw(device(where), shape, numpy.dtype(dtype), 'uniform')


# --------------------------------------------------------------------------
# The GPU stream
# --------------------------------------------------------------------------
def _size(shape):
    shape = (shape,) if numpy.isscalar(shape) else tuple(shape)
    return shape, int(numpy.prod(shape, dtype=numpy.int64))


def _gpu_draw(dev, shape, dtype, kind):
    if dtype not in (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64)):
        raise ValueError('GPU draws are float32 or float64, not {}'.format(
            dtype))
    shape, n = _size(shape)
    key, position = _state['gpu']
    per = 2 if kind == 'normal' else 1
    with chainer.using_device(dev):
        xp = dev.xp
        kernel = _kernel(xp, kind)
        if kernel is not None:
            out = xp.empty(shape, dtype=dtype)
            kernel(numpy.uint64(key), numpy.uint64(position), out)
        else:
            out = _generic(xp, key, position, n, dtype, kind).reshape(shape)
    _state['gpu'][1] = (position + per * n) & MASK64
    return out


def _u64(value):
    return numpy.uint64(value & MASK64)


def _mix(xp, z):
    """SplitMix64's output function, elementwise on uint64 arrays."""
    z = xp.bitwise_xor(z, z >> _u64(30)) * _u64(MIX1)
    z = xp.bitwise_xor(z, z >> _u64(27)) * _u64(MIX2)
    return xp.bitwise_xor(z, z >> _u64(31))


def _bits(xp, key, start, step, n):
    """Numbers ``start, start + step, ...`` (n of them) of the stream."""
    k = xp.arange(n, dtype=numpy.uint64) * _u64(step) + _u64(start)
    return _mix(xp, k * _u64(GOLDEN) + _u64(key))


def _generic(xp, key, position, n, dtype, kind):
    """A draw with array functions only (any array module)."""
    if kind == 'uniform':
        z = _bits(xp, key, position, 1, n)
        if dtype == numpy.float32:
            return (z >> _u64(40)).astype(numpy.float32) * \
                numpy.float32(2.0 ** -24)
        return (z >> _u64(11)).astype(numpy.float64) * 2.0 ** -53
    z1 = _bits(xp, key, position, 2, n)
    z2 = _bits(xp, key, position + 1, 2, n)
    u1 = ((z1 >> _u64(11)).astype(numpy.float64) + 0.5) * 2.0 ** -53
    u2 = (z2 >> _u64(11)).astype(numpy.float64) * 2.0 ** -53
    r = xp.sqrt(-2.0 * xp.log(u1))
    return (r * xp.cos((2.0 * numpy.pi) * u2)).astype(dtype)


_SPLITMIX = (
    'z = key + k * 0x9E3779B97F4A7C15ull; '
    'z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; '
    'z = (z ^ (z >> 27)) * 0x94D049BB133111EBull; '
    'z = z ^ (z >> 31);')
_KERNELS = {
    'normal': (
        'unsigned long long k = position + 2ull * i; unsigned long long z; '
        + _SPLITMIX +
        ' double u1 = ((double)(z >> 11) + 0.5) * 1.1102230246251565e-16;'
        ' k = k + 1ull; ' + _SPLITMIX +
        ' double u2 = (double)(z >> 11) * 1.1102230246251565e-16;'
        ' out = (T)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));'),
    'uniform': (
        'unsigned long long k = position + i; unsigned long long z; '
        + _SPLITMIX +
        ' if (sizeof(T) == 4) {'
        ' out = (T)((double)(z >> 40) * 5.9604644775390625e-08);'
        ' } else {'
        ' out = (T)((double)(z >> 11) * 1.1102230246251565e-16); }'),
}
_kernel_cache = {}


def _kernel(xp, kind):
    """CuPy's fused kernel of a draw (None for another array module)."""
    make = getattr(xp, 'ElementwiseKernel', None)
    if make is None:
        return None
    if kind not in _kernel_cache:
        _kernel_cache[kind] = make(
            'uint64 key, uint64 position', 'T out',
            _KERNELS[kind], 'gan_random_' + kind)
    return _kernel_cache[kind]


# --------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------
def get_state():
    """A JSON-able copy of the CPU generators' states and the GPU
    stream's (key, position)."""
    return {'rng': _state['rng'].bit_generator.state,
            'rng2': _state['rng2'].bit_generator.state,
            'gpu': list(_state['gpu'])}


def _generator(state):
    bg = numpy.random.PCG64()
    bg.state = state
    return numpy.random.Generator(bg)


def set_state(state):
    """Restore :func:`get_state`'s value (a state saved before the GPU
    stream was part of it leaves the GPU stream as it is)."""
    _state['rng'] = _generator(state['rng'])
    _state['rng2'] = _generator(state['rng2'])
    if 'gpu' in state:
        _state['gpu'] = [int(v) & MASK64 for v in state['gpu']]
