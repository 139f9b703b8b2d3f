"""Let Chainer 7 find cuDNN through CuPy >= 11 (opt-in, unverified here).

Chainer 7 looks for ``cupy.cudnn`` and ``cupy.cuda.cudnn`` when it is first
imported; CuPy 11 moved them to ``cupyx.cudnn`` and
``cupy_backends.cuda.libs.cudnn``, so with CuPy 13 Chainer silently runs
convolutions without cuDNN.  :func:`install_aliases` registers the new
modules under the old names.  It must run before ``import chainer``; the
training scripts call it first thing when the environment variable
``GAN_CUDNN=1`` is set (cuDNN itself must be installed, e.g.
``pip install nvidia-cudnn-cu12``).  Check with
``python -c "import gan.cudnn_compat as c; c.install_aliases();
import chainer; print(chainer.backends.cuda.cudnn_enabled)"``.

Not yet checked on a GPU with cuDNN.
"""
import os
import sys


def install_aliases():
    """True when ``cupy.cudnn`` is importable afterwards."""
    try:
        import cupy
    except Exception:
        return False
    try:
        import cupy.cudnn  # noqa: F401  (CuPy < 11: nothing to do)
        return True
    except Exception:
        pass
    try:
        import cupyx.cudnn as high
        from cupy_backends.cuda.libs import cudnn as low
    except Exception:
        return False  # no cuDNN library for this CuPy
    sys.modules['cupy.cudnn'] = high
    sys.modules['cupy.cuda.cudnn'] = low
    cupy.cudnn = high
    cupy.cuda.cudnn = low
    return True


def maybe_install():
    if os.environ.get('GAN_CUDNN') == '1':
        if 'chainer' in sys.modules:
            raise RuntimeError('gan.cudnn_compat must run before chainer is '
                               'imported')
        return install_aliases()
    return False
