"""Image folders, digit sets and the face-crop geometry of animeface."""
import os

import numpy
import pytest
from PIL import Image

from animeface import data as adata
from gan import datasets


def make_folder(root, n_good=12, seed=0):
    """n_good images of varied sizes and modes, plus a truncated PNG, a
    file of random bytes named .jpg, a text file and a nested folder."""
    rng = numpy.random.default_rng(seed)
    os.makedirs(os.path.join(root, 'sub'), exist_ok=True)
    for i in range(n_good):
        w, h = (int(v) for v in rng.integers(10, 90, 2))
        arr = rng.integers(0, 256, (h, w, 3)).astype(numpy.uint8)
        im = Image.fromarray(arr)
        if i % 3 == 1:
            im = im.convert('L')
        elif i % 3 == 2:
            im = im.convert('RGBA')
        folder = root if i % 2 else os.path.join(root, 'sub')
        im.save(os.path.join(folder, 'img{:02d}.png'.format(i)))
    with open(os.path.join(root, 'sub', 'img00.png'), 'rb') as f:
        blob = f.read()
    with open(os.path.join(root, 'truncated.png'), 'wb') as f:
        f.write(blob[:len(blob) // 2])
    with open(os.path.join(root, 'noise.jpg'), 'wb') as f:
        f.write(rng.bytes(500))
    with open(os.path.join(root, 'notes.txt'), 'w') as f:
        f.write('not an image\n')


# Flags of a tiny DCGAN run for the training tests (32 px, 16 channels).
TINY = ['--size', '32', '--ch', '16', '--z-dim', '8', '--batchsize', '4',
        '--log-interval', '1']


@pytest.fixture(scope='module')
def faces(tmp_path_factory):
    """A folder of 10 readable images and 3 unreadable files."""
    root = str(tmp_path_factory.mktemp('faces'))
    make_folder(root, n_good=10)
    return root


def test_folder_loads_readable_images_and_skips_the_rest(tmp_path):
    make_folder(str(tmp_path))
    images, skipped = adata.load_image_folder(str(tmp_path), 32, log=None)
    assert images.shape == (12, 3, 32, 32)
    assert images.dtype == numpy.uint8
    assert sorted(os.path.basename(p) for p in skipped) == \
        ['noise.jpg', 'notes.txt', 'truncated.png']


def test_folder_errors_are_one_line(tmp_path):
    with pytest.raises(adata.DataError, match='does not exist'):
        adata.load(str(tmp_path / 'missing'), 32)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(adata.DataError, match='is empty'):
        adata.load(str(tmp_path / 'empty'), 32)
    junk = tmp_path / 'junk'
    junk.mkdir()
    (junk / 'a.png').write_bytes(b'\x89PNG not really')
    (junk / 'b.txt').write_text('hello')
    with pytest.raises(adata.DataError, match='none of the 2 files'):
        adata.load(str(junk), 32)
    f = tmp_path / 'file.png'
    f.write_bytes(b'x')
    with pytest.raises(adata.DataError, match='is not a folder'):
        adata.load(str(f), 32)


def test_square_resize_crops_the_given_box():
    # A 100x60 picture, grey, with a red 30x30 square at (55, 20).
    arr = numpy.full((60, 100, 3), 128, numpy.uint8)
    arr[20:50, 55:85] = (255, 0, 0)
    out = adata.square_resize(Image.fromarray(arr), 16, box=(55, 20, 30, 30))
    assert out.shape == (3, 16, 16)
    assert (out[0] == 255).all() and (out[1:] == 0).all()


def test_square_resize_takes_the_centre_square():
    # 90 wide, 30 high: left and right thirds blue, centre third green.
    arr = numpy.zeros((30, 90, 3), numpy.uint8)
    arr[:, :30] = arr[:, 60:] = (0, 0, 255)
    arr[:, 30:60] = (0, 255, 0)
    out = adata.square_resize(Image.fromarray(arr), 8)
    assert (out[1] == 255).all() and (out[0] == 0).all() and \
        (out[2] == 0).all()


def test_stacked_mnist_stacks_three_digits_and_names_the_mode():
    digits = numpy.arange(20, dtype=numpy.uint8)[:, None, None] * \
        numpy.ones((1, 4, 4), numpy.uint8)
    labels = numpy.arange(20) % 10
    ds = adata.StackedMNIST(digits, labels, seed=3)
    assert len(ds) == 20
    modes = ds.modes()
    for i in range(len(ds)):
        x = ds[i]
        assert x.shape == (3, 4, 4)
        # each channel is one whole digit image; read its id from a pixel
        ids = [int(x[c, 0, 0]) for c in range(3)]
        assert modes[i] == 100 * labels[ids[0]] + 10 * labels[ids[1]] + \
            labels[ids[2]]
    # every digit appears exactly once per channel
    for c in range(3):
        assert sorted(int(ds[i][c, 0, 0]) for i in range(20)) == \
            list(range(20))


def test_uint8_converter_maps_to_minus_one_one():
    batch = [numpy.array([[[0, 255]]], numpy.uint8),
             numpy.array([[[51, 204]]], numpy.uint8)]
    x = datasets.uint8_converter(batch)
    assert x.dtype == numpy.float32 and x.shape == (2, 1, 1, 2)
    numpy.testing.assert_allclose(x.ravel(), [-1, 1, -0.6, 0.6], atol=1e-6)


def test_mnist_loader_gives_uint8_digits():
    x, y = datasets.load_mnist('test')
    assert x.shape == (10000, 28, 28) and x.dtype == numpy.uint8
    assert y.shape == (10000,) and set(numpy.unique(y)) == set(range(10))
    assert x.max() == 255


@pytest.mark.parametrize('src,dst', [(28, 32), (32, 28), (28, 64), (96, 28)])
def test_resize_gray_matches_pil_per_image(src, dst):
    rng = numpy.random.default_rng(src + dst)
    images = rng.integers(0, 256, (6, src, src)).astype(numpy.uint8)
    images[:, :src // 2] //= 4  # some structure besides noise
    out = datasets.resize_gray(images, dst)
    ref = numpy.stack([numpy.asarray(Image.fromarray(im).resize(
        (dst, dst), Image.BILINEAR)) for im in images])
    assert out.shape == ref.shape and out.dtype == numpy.uint8
    # PIL's 8-bit path rounds in fixed point: at most one level apart
    assert numpy.abs(out.astype(int) - ref).max() <= 1
