"""Random numbers for the training loop: float32, from a modern generator.

Noise is drawn directly in float32 from ``numpy.random.Generator`` (PCG64,
ziggurat normals) on the CPU, and from ``cupy.random`` on a GPU.

``seed(s)`` makes every draw of a run reproducible.  The module holds two
CPU generators: the main one, which every draw here uses, and a second one
that only :mod:`gan.fast.noise` uses (it fills half of a large array in a
helper thread).  Both states are part of a trainer snapshot (see
``gan.extensions``), so a resumed run continues with the same random
stream.
"""
import numpy


def _second(value):
    return numpy.random.default_rng([int(value), 0x5eed])


_state = {'rng': numpy.random.default_rng(0), 'rng2': _second(0)}


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


def second_generator():
    """The second CPU generator (see :mod:`gan.fast.noise`)."""
    return _state['rng2']


def normal(xp, shape, dtype=numpy.float32):
    """Standard normal numbers of ``shape`` on the array module ``xp``."""
    if xp is not numpy:
        return xp.random.standard_normal(shape, dtype=dtype)
    return _state['rng'].standard_normal(shape, dtype=numpy.dtype(dtype))


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
    """Restore :func:`get_state`'s value."""
    _state['rng'] = _generator(state['rng'])
    _state['rng2'] = _generator(state['rng2'])
