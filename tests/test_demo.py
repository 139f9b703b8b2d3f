"""experiments.demo (the counting, the picture, the readers) and the quick
MNIST classifier, each against an independent computation."""
import collections
import json
import math
import os
import subprocess
import sys

import numpy
import pytest
from PIL import Image

from experiments import demo
from gan import mnist_classifier

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class BrightnessClassifier:
    """A stand-in classifier: a digit image of constant brightness
    20 k + 10 is read as class k (one-hot probabilities)."""

    def __init__(self):
        self.seen = 0

    def predict_proba(self, digits, batchsize=None):
        digits = numpy.asarray(digits, dtype=numpy.float64)
        assert digits.shape[1:] == (28, 28)
        self.seen += len(digits)
        k = numpy.clip(numpy.rint((digits.mean(axis=(1, 2)) - 10) / 20),
                       0, 9).astype(int)
        return numpy.eye(10, dtype=numpy.float32)[k]


def stacked_constant_images(triples, size=32):
    """uint8 (N, 3, size, size): channel j of image i is constant
    20 * triples[i][j] + 10."""
    t = numpy.asarray(triples)
    values = (20 * t + 10).astype(numpy.uint8)
    return numpy.broadcast_to(values[:, :, None, None],
                              t.shape + (size, size)).copy()


def test_modes_and_kl_of_images_with_known_digits():
    rng = numpy.random.default_rng(0)
    # few distinct triples, unevenly often
    pool = rng.integers(0, 10, (17, 3))
    triples = pool[rng.integers(0, 17, 500) % rng.integers(1, 18, 500)]
    images = stacked_constant_images(triples)
    clf = BrightnessClassifier()
    stats, modes = demo.mode_stats(clf, images)
    assert clf.seen == 3 * len(images)  # every channel classified
    counts = collections.Counter(tuple(t) for t in triples.tolist())
    assert stats['modes'] == len(counts)
    assert stats['n_modes'] == 1000 and stats['samples'] == 500
    kl = sum(c / 500 * math.log(c / 500 * 1000) for c in counts.values())
    assert stats['kl'] == pytest.approx(kl)
    assert modes.tolist() == [100 * a + 10 * b + c for a, b, c in triples]


def test_a_collapsed_and_a_uniform_set():
    clf = BrightnessClassifier()
    one, _ = demo.mode_stats(clf, stacked_constant_images([[3, 1, 4]] * 50))
    assert one['modes'] == 1 and one['kl'] == pytest.approx(math.log(1000))
    every = [[a, b, c] for a in range(10) for b in range(10)
             for c in range(10)]
    full, _ = demo.mode_stats(clf, stacked_constant_images(every))
    assert full['modes'] == 1000 and full['kl'] == pytest.approx(0, abs=1e-12)


def test_small_batches_give_the_probabilities_of_one_batch():
    rng = numpy.random.default_rng(0)
    digits = rng.integers(0, 256, (23, 28, 28)).astype(numpy.uint8)
    model = mnist_classifier.MNISTClassifier(mnist_classifier.QUICK_WIDTHS)
    whole = model.predict_proba(digits, batchsize=len(digits))
    small = demo.SmallBatches(model, batchsize=5).predict_proba(digits)
    numpy.testing.assert_allclose(small, whole, rtol=1e-5, atol=1e-6)


def test_expected_modes_matches_a_simulation():
    rng = numpy.random.default_rng(0)
    draws = [len(numpy.unique(rng.integers(0, 1000, 2000)))
             for _ in range(300)]
    assert demo.expected_modes(2000) == pytest.approx(numpy.mean(draws),
                                                      abs=1.5)
    assert demo.expected_modes(1) == pytest.approx(1.0)


def test_spread_keeps_the_ends_and_spaces_evenly():
    items = list(range(0, 1000, 100))  # 10 items
    assert demo.spread(items, 20) == items
    assert demo.spread(items, 1) == [900]
    for n in (2, 3, 4, 5):
        picked = demo.spread(items, n)
        assert len(picked) == n and picked[0] == 0 and picked[-1] == 900
        assert picked == sorted(set(picked))
        gaps = numpy.diff(picked)
        assert gaps.max() - gaps.min() <= 100


def test_snapshots_are_sorted_by_iteration(tmp_path):
    for name in ('snapshot_iter_1000', 'snapshot_iter_20',
                 'snapshot_iter_300', 'samples_00000020.png', 'log',
                 'snapshot_iter_5.tmp'):
        (tmp_path / name).write_bytes(b'')
    got = demo.snapshots(str(tmp_path))
    assert [i for i, _ in got] == [20, 300, 1000]
    assert [os.path.basename(p) for _, p in got] == [
        'snapshot_iter_20', 'snapshot_iter_300', 'snapshot_iter_1000']


def colour(r, c, k):
    """A colour per (row, column, image) that is neither white, dark nor
    grey (the text is black, its anti-aliased edges grey)."""
    return (200 - 40 * r, 60 + 15 * c, 100 + 5 * k)


def test_picture_puts_each_point_in_its_row_and_column():
    size, cells, columns = 4, 3, (3, 2)
    rows = []
    for r, n_cols in enumerate(columns):
        entries = []
        for c in range(n_cols):
            images = numpy.zeros((cells * cells + 2, 3, size, size),
                                 numpy.uint8)
            for k in range(len(images)):
                images[k] = numpy.array(colour(r, c, k))[:, None, None]
            entries.append({'images': images, 'iteration': 100 * (c + 1),
                            'modes': 7 * (c + 1), 'kl': 1.5})
        rows.append(('variant {}'.format(r), entries))
    pic = numpy.asarray(demo.demo_picture(rows, cells))
    origins = {}
    for r, n_cols in enumerate(columns):
        for c in range(n_cols):
            for k in range(cells * cells + 2):
                ys, xs = numpy.nonzero(numpy.all(pic == colour(r, c, k),
                                                 axis=2))
                if k >= cells * cells:  # only cells x cells are shown
                    assert len(ys) == 0
                    continue
                # a whole size x size square, row-major within the cell
                assert len(ys) == size * size
                assert ys.max() - ys.min() == xs.max() - xs.min() == size - 1
                if k == 0:
                    origins[r, c] = (xs.min(), ys.min())
                ox, oy = origins[r, c]
                assert (xs.min() - ox, ys.min() - oy) == (
                    size * (k % cells), size * (k // cells))
    cell = size * cells
    # same row: same top, left to right without overlap; rows top to bottom
    for r, n_cols in enumerate(columns):
        xs = [origins[r, c][0] for c in range(n_cols)]
        assert len({origins[r, c][1] for c in range(n_cols)}) == 1
        assert all(b - a >= cell for a, b in zip(xs, xs[1:]))
    assert origins[1, 0][1] - origins[0, 0][1] >= cell
    assert origins[0, 0][0] == origins[1, 0][0]
    # a caption (dark text) under every cell, none inside the cells
    for (r, c), (x, y) in origins.items():
        below = pic[y + cell:y + cell + demo.CAPTION, x:x + cell]
        assert (below.max(axis=2) < 100).any()
        inside = pic[y:y + cell, x:x + cell]
        assert not (inside.max(axis=2) < 50).any()
    # the picture holds every cell and its caption
    assert pic.shape[0] >= max(y for _, y in origins.values()) + cell + \
        demo.CAPTION
    assert pic.shape[1] >= max(x for x, _ in origins.values()) + cell


def test_ssl_curve_reads_percent_and_skips_unevaluated_entries(tmp_path):
    log = [{'epoch': 1, 'iteration': 100, 'test/error_avg': 0.5,
            'test/error_raw': 0.6},
           {'epoch': 1, 'iteration': 150},
           {'epoch': 2, 'iteration': 200, 'test/error_avg': 0.125,
            'test/error_raw': 0.25}]
    (tmp_path / 'log').write_text(json.dumps(log))
    prefix, rows = demo.ssl_curve(str(tmp_path))
    assert prefix == 'test'
    assert rows == [(1, 50.0, 60.0), (2, 12.5, 25.0)]
    text = demo.ssl_table(prefix, rows)
    assert '| 2 | 12.50 | 25.00 |' in text


def test_quick_classifier_is_cached_under_its_own_name(tmp_path,
                                                        monkeypatch):
    cache = str(tmp_path)
    accurate = mnist_classifier.cache_paths(cache)
    quick = mnist_classifier.quick_cache_paths(cache)
    assert set(accurate).isdisjoint(quick)
    model, info = mnist_classifier.load_for_demo(
        cache, log=None, examples=300, test_limit=200)
    assert info['quick'] and info['train_examples'] == 300
    assert all(os.path.exists(p) for p in quick)
    assert not any(os.path.exists(p) for p in accurate)
    # the recorded accuracy is the model's, counted here digit by digit
    from gan import datasets
    xt, yt = datasets.load_mnist('test')
    hits = [int(model.predict_proba(xt[i:i + 1])[0].argmax() == yt[i])
            for i in range(200)]
    assert info['test_accuracy'] == pytest.approx(sum(hits) / 200.0)

    def no_training(**kwargs):
        raise AssertionError('should have used the cache')
    monkeypatch.setattr(mnist_classifier, 'train_quick', no_training)
    monkeypatch.setattr(mnist_classifier, 'train', no_training)
    again, info2 = mnist_classifier.load_for_demo(cache, log=None)
    assert info2 == info
    for (name, p), q in zip(model.namedparams(), again.params()):
        numpy.testing.assert_array_equal(p.array, q.array, err_msg=name)
    # once the accurate classifier is cached, the demo takes it
    import chainer
    chainer.serializers.save_npz(accurate[0],
                                 mnist_classifier.MNISTClassifier())
    with open(accurate[1], 'w') as f:
        json.dump({'version': 1, 'test_accuracy': 0.991}, f)
    best, info3 = mnist_classifier.load_for_demo(cache, log=None)
    assert not info3.get('quick')
    assert best.c1.W.shape[0] == 32
    assert 'approximate' in demo.classifier_note(info)
    assert 'approximate' not in demo.classifier_note(info3)


def test_demo_end_to_end_on_a_tiny_comparison(tmp_path, monkeypatch):
    """Two variants trained for 2 iterations through the command line, then
    the demo with the stand-in classifier: its numbers equal a count made
    here from the same generators and latents."""
    out = tmp_path / 'compare'
    cmd = [sys.executable, '-m', 'animeface.compare', '--data',
           'stacked-mnist', '--size', '32', '--ch', '8', '--batchsize', '8',
           '--iterations', '2', '--snapshot-interval', '1',
           '--grid-interval', '2', '--log-interval', '1', '--no-metrics',
           '--variants', 'dcgan', 'mbd', '--out', str(out)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS='1')
    subprocess.run(cmd, cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    info = {'quick': True, 'test_accuracy': 0.5, 'train_examples': 1}
    monkeypatch.setattr(mnist_classifier, 'load_for_demo',
                        lambda *a, **k: (BrightnessClassifier(), info))
    summary = demo.main(['--compare', str(out), '--out', str(tmp_path),
                         '--samples', '40', '--columns', '2', '--cells',
                         '2'])
    assert [v['name'] for v in summary['variants']] == ['dcgan', 'mbd']
    from animeface import analogy
    from gan import metrics
    for v in summary['variants']:
        assert [p['iteration'] for p in v['points']] == [1, 2]
        for p in v['points']:
            gen = analogy.load_generator(str(
                out / v['name'] / 'snapshot_iter_{}'.format(p['iteration'])))
            images = metrics.generate(gen, 40, seed=0)
            modes = {tuple(BrightnessClassifier().predict_proba(
                numpy.stack([demo_resize(im[ch]) for ch in range(3)])
            ).argmax(axis=1)) for im in images}
            assert p['modes'] == len(modes)
    with Image.open(tmp_path / 'demo.png') as im:
        assert im.size[0] > 2 * 2 * 32 and im.size[1] > 2 * 2 * 32
    text = (tmp_path / 'demo.md').read_text()
    assert 'approximate' in text
    for v in summary['variants']:
        row, = [line for line in text.splitlines()
                if line.startswith('| {} |'.format(v['label']))]
        cells = [c.strip() for c in row.strip('|').split('|')]
        assert cells[1:3] == ['{} ({:.2f})'.format(p['modes'], p['kl'])
                              for p in v['points']]


def demo_resize(digit):
    from gan import datasets
    return datasets.resize_gray(digit[None], 28)[0]
