"""gan.cuda_libs: the CUDA libraries of the pip wheels are found in
site-packages/nvidia/*/lib and loaded at the first import of CuPy, by the
hook that make install-gpu's .pth file arms."""
import ctypes.util
import importlib.util
import os
import shutil
import sys

import pytest

from gan import cuda_libs


def a_shared_library():
    """A real shared library of this system to stand for a CUDA one."""
    name = ctypes.util.find_library('m')
    for d in ('/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64',
              '/usr/lib64', '/lib', '/usr/lib'):
        if name and os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    pytest.skip('no libm to copy')


@pytest.fixture
def wheels(tmp_path, monkeypatch):
    """A site-packages folder with a 'cuBLAS' and an 'NCCL' wheel (copies
    of libm), first on sys.path; nothing loaded yet."""
    lib = a_shared_library()
    for folder, name in (('cublas', 'libcublasLt.so.12'),
                         ('cublas', 'libcublas.so.12'),
                         ('nccl', 'libnccl.so.2')):
        os.makedirs(str(tmp_path / 'nvidia' / folder / 'lib'), exist_ok=True)
        shutil.copy(lib, str(tmp_path / 'nvidia' / folder / 'lib' / name))
    monkeypatch.setattr(sys, 'path', [str(tmp_path)] + sys.path)
    monkeypatch.setattr(cuda_libs, '_loaded', {})
    monkeypatch.setattr(sys, 'meta_path', list(sys.meta_path))
    return tmp_path


def test_preload_loads_what_the_wheels_hold(wheels):
    got = cuda_libs.preload()
    assert got['libcublas.so.12'] == str(
        wheels / 'nvidia' / 'cublas' / 'lib' / 'libcublas.so.12')
    assert got['libnccl.so.2'].startswith(str(wheels))
    # a wheel that is not installed is named, not an error
    assert got['libcurand.so.10'] == 'not installed'
    assert set(got) == {name for _, name in cuda_libs.LIBRARIES}


def test_the_hook_loads_at_the_first_import_of_cupy_then_leaves(
        wheels, monkeypatch):
    monkeypatch.setenv('CHAINER_CUDNN', '')
    monkeypatch.delenv('CHAINER_CUDNN')  # restored to what it was after
    cuda_libs.install_hook()
    cuda_libs.install_hook()  # once
    hooks = [f for f in sys.meta_path
             if isinstance(f, cuda_libs._LoadBeforeCupy)]
    assert len(hooks) == 1 and sys.meta_path[0] is hooks[0]
    assert os.environ['CHAINER_CUDNN'] == '0'  # cuDNN off, said once
    assert cuda_libs._loaded == {}  # nothing before CuPy is wanted
    importlib.util.find_spec('json.decoder')  # another import: nothing
    assert cuda_libs._loaded == {}
    if 'cupy' not in sys.modules:
        importlib.util.find_spec('cupy')  # absent or not, the hook runs
    else:
        hooks[0].find_spec('cupy')
    assert cuda_libs._loaded['libcublas.so.12'].startswith(str(wheels))
    assert not any(isinstance(f, cuda_libs._LoadBeforeCupy)
                   for f in sys.meta_path)


def test_the_pth_file_arms_the_hook(tmp_path, monkeypatch, capsys):
    path = str(tmp_path / cuda_libs.PTH_NAME)
    monkeypatch.setattr(cuda_libs, 'pth_path', lambda: path)
    cuda_libs.main(['--write-pth'])
    line = open(path).read()
    assert line == cuda_libs.PTH_LINE and line.startswith('import ')
    cuda_libs.main(['--remove-pth'])
    assert not os.path.exists(path)
