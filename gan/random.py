"""Random numbers for the training loop: float32, from a modern generator.

``numpy.random.randn`` draws float64 numbers that then have to be cast; on a
2-core CPU that alone took a large part of an SSL iteration.  Here noise is
drawn directly in float32 from ``numpy.random.Generator`` (PCG64, ziggurat
normals) on the CPU and from ``cupy.random`` on a GPU.

``seed(s)`` makes every draw of a run reproducible; the generator state is
part of a trainer snapshot (see :class:`RandomStateSerializer`), so a resumed
run continues with the same random stream.
"""
import numpy

_state = {'rng': numpy.random.default_rng(0)}


def seed(value):
    """Seed the CPU generator (and CuPy's, when available)."""
    _state['rng'] = numpy.random.default_rng(value)
    try:  # pragma: no cover - GPU only
        import cupy
        cupy.random.seed(value)
    except Exception:
        pass


def generator():
    """The shared ``numpy.random.Generator``."""
    return _state['rng']


def normal(xp, shape, dtype=numpy.float32):
    """Standard normal numbers of ``shape`` on the array module ``xp``."""
    if xp is numpy:
        return _state['rng'].standard_normal(shape, dtype=dtype)
    return xp.random.standard_normal(shape, dtype=dtype)


def uniform(xp, shape, dtype=numpy.float32):
    """Uniform numbers in [0, 1) of ``shape`` on ``xp``."""
    if xp is numpy:
        return _state['rng'].random(shape, dtype=dtype)
    return xp.random.random_sample(shape, dtype=dtype)


def get_state():
    """A JSON-able copy of the CPU generator's state."""
    return _state['rng'].bit_generator.state


def set_state(state):
    bg = numpy.random.PCG64()
    bg.state = state
    _state['rng'] = numpy.random.Generator(bg)
