"""Random numbers for the training loop: float32, from a modern generator.

``numpy.random.randn`` draws float64 numbers that then have to be cast; on a
2-core CPU that alone took a large part of an SSL iteration.  Here noise is
drawn directly in float32 from ``numpy.random.Generator`` (PCG64, ziggurat
normals) on the CPU and from ``cupy.random`` on a GPU.

Large CPU draws of normals (``SPLIT_SIZE`` numbers or more) are filled in
two halves at the same time: the first half by the main generator in this
thread, the second by a second generator in a helper thread (numpy releases
the GIL while it fills an array).  On a 2-core machine that halves the cost
of the discriminator's Gaussian noise.  Which number lands where depends
only on the seed and the sequence of shapes, never on thread timing.

``seed(s)`` makes every draw of a run reproducible; both generators' states
are part of a trainer snapshot (see ``gan.extensions``), so a resumed run
continues with the same random stream.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy

SPLIT_SIZE = 1 << 16


def _second(value):
    return numpy.random.default_rng([int(value), 0x5eed])


_state = {'rng': numpy.random.default_rng(0), 'rng2': _second(0),
          'pool': None}


def seed(value):
    """Seed the CPU generators (and CuPy's, when available)."""
    _state['rng'] = numpy.random.default_rng(value)
    _state['rng2'] = _second(value)
    try:  # pragma: no cover - GPU only
        import cupy
        cupy.random.seed(value)
    except Exception:
        pass


def generator():
    """The shared ``numpy.random.Generator`` (the main one)."""
    return _state['rng']


def _pool():
    if _state['pool'] is None:
        _state['pool'] = ThreadPoolExecutor(1, thread_name_prefix='gan-rng')
    return _state['pool']


def normal(xp, shape, dtype=numpy.float32):
    """Standard normal numbers of ``shape`` on the array module ``xp``."""
    if xp is not numpy:
        return xp.random.standard_normal(shape, dtype=dtype)
    dtype = numpy.dtype(dtype)
    out = numpy.empty(shape, dtype=dtype)
    flat = out.reshape(-1)
    if flat.size < SPLIT_SIZE:
        _state['rng'].standard_normal(dtype=dtype, out=flat)
        return out
    half = flat.size // 2
    job = _pool().submit(_state['rng2'].standard_normal, dtype=dtype,
                         out=flat[half:])
    _state['rng'].standard_normal(dtype=dtype, out=flat[:half])
    job.result()
    return out


def uniform(xp, shape, dtype=numpy.float32):
    """Uniform numbers in [0, 1) of ``shape`` on ``xp``."""
    if xp is numpy:
        return _state['rng'].random(shape, dtype=dtype)
    return xp.random.random_sample(shape, dtype=dtype)


def get_state():
    """A JSON-able copy of both CPU generators' states."""
    return {'rng': _state['rng'].bit_generator.state,
            'rng2': _state['rng2'].bit_generator.state}


def _generator(state):
    bg = numpy.random.PCG64()
    bg.state = state
    return numpy.random.Generator(bg)


def set_state(state):
    """Restore :func:`get_state`'s value (or a single generator's state, the
    form of older snapshots; the second generator then continues as is)."""
    if 'rng' in state:
        _state['rng'] = _generator(state['rng'])
        _state['rng2'] = _generator(state['rng2'])
    else:
        _state['rng'] = _generator(state)
