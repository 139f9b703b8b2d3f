"""Shared fixtures.  ``standin``: two stand-in GPUs (tests/standin_gpu.py)
for the duration of a test; ``--device 0`` and ``--device 1`` of every
command line then reach them.  ``idx``: a small MNIST in IDX form (600
training and 200 test images) for the GPU modules' runs."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for path in (ROOT, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)


@pytest.fixture
def standin():
    import chainer
    import standin_gpu
    saved = chainer.global_config.use_cudnn
    try:
        with standin_gpu.install(gpus=2):
            yield standin_gpu
    finally:
        chainer.global_config.use_cudnn = saved


@pytest.fixture(scope='module')
def idx(tmp_path_factory):
    """600 training and 200 test images in IDX form."""
    from test_mnist_data import make_idx_dir
    root = str(tmp_path_factory.mktemp('idx'))
    make_idx_dir(root, n_train=600, n_test=200)
    return root
