"""The largest confusions and the grid of their misclassified digits."""
import numpy
from PIL import Image

from mnist_ssl import evaluate
from mnist_ssl import report as sreport
def test_largest_confusions_against_a_masked_argsort():
    rng = numpy.random.RandomState(0)
    counts = rng.permutation(100).reshape(10, 10)  # distinct counts
    counts[3, 5] = 0
    top = sreport.largest_confusions(counts.tolist(), n=4)
    off = counts.astype(float)
    numpy.fill_diagonal(off, -1)
    flat = numpy.argsort(-off, axis=None)[:4]
    assert top == [(int(f // 10), int(f % 10), int(counts.flat[f]))
                   for f in flat]
    # ties: the earlier (true, predicted) pair first; empty cells left out
    tied = [[5, 2, 0], [0, 4, 2], [1, 0, 7]]
    assert sreport.largest_confusions(tied, n=5) == [
        (0, 1, 2), (1, 2, 2), (2, 0, 1)]
    assert sreport.largest_confusions([[3, 0], [0, 4]]) == []


def test_confusion_text_names_the_largest_cells_and_their_share():
    counts = [[50, 0, 0], [7, 40, 1], [2, 9, 30]]
    last = sreport.confusion_text(counts).splitlines()[-1]
    assert last == ('largest confusions (true as predicted): 2 as 1: 9, '
                    '1 as 0: 7, 2 as 0: 2 (18 of 19 errors)')
    assert 'largest' not in sreport.confusion_text([[3, 0], [0, 4]])


def test_errors_grid_rows_hold_each_pairs_digits_in_test_order(tmp_path):
    n = 100
    # image k is one grey level, (k + 1) / 128: its pixels name it
    x = numpy.repeat(((numpy.arange(n) + 1) / 128.0)[:, None], 784, axis=1)
    rng = numpy.random.RandomState(1)
    y = rng.randint(0, 3, n)
    pred = y.copy()
    pred[rng.permutation(n)[:30]] = rng.randint(0, 3, 30)
    counts = numpy.zeros((3, 3), int)
    numpy.add.at(counts, (y, pred), 1)
    path = str(tmp_path / 'g.png')
    top = evaluate.errors_grid(path, x.astype(numpy.float32), y, pred,
                               counts.tolist(), rows=3, cols=4)
    assert top == sreport.largest_confusions(counts.tolist(), 3)
    grid = numpy.asarray(Image.open(path))
    assert grid.shape == (len(top) * 30 - 2, 4 * 30 - 2)
    for r, (t, p, c) in enumerate(top):
        want = [k for k in range(n) if y[k] == t and pred[k] == p][:4]
        for col in range(4):
            cell = grid[r * 30:r * 30 + 28, col * 30:col * 30 + 28]
            assert (cell == cell[0, 0]).all()
            if col < len(want):
                assert cell[0, 0] == round((want[col] + 1) / 128 * 255)
            else:  # fewer digits than columns: white
                assert cell[0, 0] == 255


def test_labeled_grid_rows_are_classes_in_index_order(tmp_path):
    n = 60
    x = numpy.repeat(((numpy.arange(n) + 1) / 128.0)[:, None], 16, axis=1)
    y = numpy.arange(n) % 3
    index = [10, 4, 7, 3, 13, 22, 1]  # classes 1, 1, 1, 0, 1, 1, 1
    path = sreport.labeled_grid(str(tmp_path / 'l.png'), x, y, index,
                                   n_classes=3, max_cols=4)
    grid = numpy.asarray(Image.open(path))
    assert grid.shape == (3 * 6 - 2, 4 * 6 - 2)  # 4 px images, pad 2
    want = {0: [3], 1: [10, 4, 7, 13], 2: []}  # at most max_cols each
    for c in range(3):
        for col in range(4):
            v = grid[c * 6, col * 6]
            assert v == (round((want[c][col] + 1) / 128 * 255)
                         if col < len(want[c]) else 255)
