"""The CUDA 12 libraries of the ``nvidia-*-cu12`` wheels, loaded before
CuPy needs them.

CuPy's extension modules link ``libcublas.so.12``, ``libnvrtc.so.12``,
``libcurand.so.10`` ... by name, and the wheels that ``make install-gpu``
puts into the virtual environment keep them in
``site-packages/nvidia/<name>/lib``, where the dynamic linker does not
look.  Loading each library once by its full path (``RTLD_GLOBAL``)
before the first ``import cupy`` makes the later lookups by name find it,
with no ``LD_LIBRARY_PATH``.  ``make install-gpu`` writes
``site-packages/improved_gan_cuda.pth``, whose one line runs
:func:`install_hook` at every interpreter start: a ``sys.meta_path``
entry that loads the libraries when something first imports ``cupy``
(Chainer does, on ``import chainer``) and then removes itself, so a
process that never imports CuPy loads nothing.  It also sets
``CHAINER_CUDNN=0`` when the environment has no value for it (cuDNN is
off, see :mod:`gan.gpu`), which spares every GPU run Chainer's and CuPy's
warnings about the missing cuDNN.

This module imports nothing heavy (no numpy, no Chainer): it runs at
interpreter start.  ``python -m gan.cuda_libs --write-pth`` writes the
``.pth`` file; ``--remove-pth`` removes it.
"""
import ctypes
import importlib.abc
import os
import sys
import sysconfig
import warnings

# (wheel folder under site-packages/nvidia, library): in load order (a
# library before those that need it)
LIBRARIES = (
    ('cublas', 'libcublasLt.so.12'),
    ('cublas', 'libcublas.so.12'),
    ('cuda_nvrtc', 'libnvrtc.so.12'),
    ('curand', 'libcurand.so.10'),
    ('nccl', 'libnccl.so.2'),
)
PTH_NAME = 'improved_gan_cuda.pth'
PTH_LINE = 'import gan.cuda_libs; gan.cuda_libs.install_hook()\n'

_loaded = {}  # library -> path (or the error text)


def nvidia_dirs():
    """The ``nvidia`` folders of the wheels, on sys.path order."""
    found = []
    for base in sys.path:
        d = os.path.join(base or '.', 'nvidia')
        if os.path.isdir(d) and d not in found:
            found.append(d)
    return found


def find(folder, library):
    """The path of ``library`` in the wheel ``folder``, or None."""
    for d in nvidia_dirs():
        path = os.path.join(d, folder, 'lib', library)
        if os.path.isfile(path):
            return path
    return None


def preload():
    """Load every library of :data:`LIBRARIES` that a wheel provides.
    Returns ``{library: path or 'not installed' or error}``."""
    for folder, library in LIBRARIES:
        if library in _loaded:
            continue
        path = find(folder, library)
        if path is None:
            _loaded[library] = 'not installed'
            continue
        try:
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            _loaded[library] = path
        except OSError as e:
            _loaded[library] = 'cannot load: {}'.format(e)
    return dict(_loaded)


class _LoadBeforeCupy(importlib.abc.MetaPathFinder):
    """Loads the libraries at the first import of CuPy, then leaves."""

    def find_spec(self, name, path=None, target=None):
        if name == 'cupy' or name.startswith(('cupy.', 'cupy_backends')):
            remove_hook()
            try:
                preload()
            except Exception:  # never break an import
                pass
            if os.environ.get('CHAINER_CUDNN') == '0':
                # Chainer imports cupy.cudnn even with cuDNN switched off;
                # CuPy then warns that libcudnn.so.8 is missing, and
                # suggests installing it: off on purpose here
                warnings.filterwarnings(
                    'ignore', message=r'\s*cudnn library could not be loaded',
                    category=UserWarning)
        return None  # the normal finders import it


def install_hook():
    """Put the loader in front of ``sys.meta_path`` (once), and keep
    Chainer from loading cuDNN (``CHAINER_CUDNN=0`` unless the environment
    says otherwise; :mod:`gan.gpu` says why it is off)."""
    os.environ.setdefault('CHAINER_CUDNN', '0')
    if 'cupy' in sys.modules:
        preload()
        return
    if not any(isinstance(f, _LoadBeforeCupy) for f in sys.meta_path):
        sys.meta_path.insert(0, _LoadBeforeCupy())


def remove_hook():
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not isinstance(f, _LoadBeforeCupy)]


def pth_path():
    return os.path.join(sysconfig.get_paths()['purelib'], PTH_NAME)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv == ['--write-pth']:
        with open(pth_path(), 'w') as f:
            f.write(PTH_LINE)
        print('wrote {}'.format(pth_path()))
    elif argv == ['--remove-pth']:
        if os.path.exists(pth_path()):
            os.remove(pth_path())
    else:
        for library, where in sorted(preload().items()):
            print('{:20s} {}'.format(library, where))
    return 0


if __name__ == '__main__':
    sys.exit(main())
