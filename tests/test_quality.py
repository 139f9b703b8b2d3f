"""The quality number (animeface.quality): the Fréchet distance against
independent computations, its classifier on a labeled folder made here,
its ranking of speckled images below clean ones, the evaluate command on
such a folder, and every metric drawing G in test mode."""
import json
import os

import numpy
import pytest
from PIL import Image

import chainer

from gan import health, metrics, nets

from animeface import data as adata
from animeface import emoji, evaluate, quality

import train_dcgan


def test_frechet_distance_in_one_dimension_is_the_closed_form():
    rng = numpy.random.default_rng(0)
    a, b = rng.normal(1, 2, (500, 1)), rng.normal(-1, 0.5, (300, 1))
    ma, mb = a.mean(), b.mean()
    sa, sb = a.std(ddof=1), b.std(ddof=1)
    assert metrics.frechet_distance(a, b) == pytest.approx(
        (ma - mb) ** 2 + (sa - sb) ** 2, rel=1e-9)
    assert metrics.frechet_distance(a, a) == pytest.approx(0, abs=1e-9)


def test_frechet_distance_against_the_eigenvalues_of_the_product():
    rng = numpy.random.default_rng(1)
    a = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(150, 6)) @ rng.normal(size=(6, 6)) + 0.3
    sa, sb = numpy.cov(a, rowvar=False), numpy.cov(b, rowvar=False)
    # tr (S_a S_b)^(1/2): the square roots of the (real, non-negative)
    # eigenvalues of the non-symmetric product
    cross = numpy.sqrt(numpy.linalg.eigvals(sa @ sb).real.clip(0)).sum()
    mu = a.mean(0) - b.mean(0)
    expected = mu @ mu + numpy.trace(sa) + numpy.trace(sb) - 2 * cross
    assert metrics.frechet_distance(a, b) == pytest.approx(expected,
                                                           rel=1e-8)
    # invariant under a rotation of both feature sets
    q, _ = numpy.linalg.qr(rng.normal(size=(6, 6)))
    assert metrics.frechet_distance(a @ q, b @ q) == pytest.approx(
        expected, rel=1e-8)
    with pytest.raises(ValueError):
        metrics.frechet_distance(a, b[:, :5])


def shapes(kind, n, seed):
    """uint8 (n, 32, 32, 3): red discs or blue squares on white, of
    varied size and place."""
    rng = numpy.random.default_rng(seed)
    yy, xx = numpy.mgrid[0:32, 0:32]
    out = []
    for _ in range(n):
        cy, cx = rng.integers(10, 22, 2)
        r = rng.integers(5, 10)
        im = numpy.full((32, 32, 3), 255, numpy.uint8)
        if kind == 'disc':
            im[(yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2] = (220, 30, 30)
        else:
            mask = (abs(yy - cy) < r) & (abs(xx - cx) < r)
            im[mask] = (30, 30, 220)
        out.append(im)
    return out


@pytest.fixture(scope='module')
def labeled(tmp_path_factory):
    """40 labeled images of two classes, in pairs of one 'emoji' each."""
    root = str(tmp_path_factory.mktemp('labeled'))
    labels = {}
    for kind in ('disc', 'square'):
        for i, im in enumerate(shapes(kind, 20, seed=len(kind))):
            name = '{}{:02d}.png'.format(kind, i)
            Image.fromarray(im).save(os.path.join(root, name))
            labels[name] = {'category': 'shapes', 'subcategory': kind,
                            'emoji': '{}{}'.format(kind, i // 2)}
    with open(os.path.join(root, emoji.LABELS), 'w') as f:
        json.dump(labels, f)
    return root


def test_classifier_learns_the_labels_and_is_cached(labeled, tmp_path,
                                                    monkeypatch):
    model, info = quality.load_or_train(labeled, cache=str(tmp_path))
    assert info['classes'] == 2 and info['classes_names'] == ['disc',
                                                              'square']
    # held out by emoji: 15 % of the 20 pairs, both images of each
    assert info['held_out_images'] == 6 and info['train_images'] == 34
    assert info['held_out_accuracy'] == 1.0
    # the second call loads the cached weights: same features, no training
    monkeypatch.setattr(quality, 'train', lambda *a, **k: 1 / 0)
    again, _ = quality.load_or_train(labeled, cache=str(tmp_path))
    images = numpy.stack(shapes('disc', 5, seed=9)).transpose(0, 3, 1, 2)
    numpy.testing.assert_array_equal(quality.features(model, images),
                                     quality.features(again, images))
    # a folder without labels: no classifier, and the command says why
    assert quality.load_or_train(str(tmp_path)) == (None, None)
    with pytest.raises(SystemExit):
        quality.main([str(tmp_path)])


def test_speckled_images_rank_below_clean_ones(labeled, tmp_path):
    model, _ = quality.load_or_train(labeled, cache=str(tmp_path))
    real = numpy.stack(shapes('disc', 60, seed=11) + shapes(
        'square', 60, seed=12)).transpose(0, 3, 1, 2)
    clean = numpy.stack(shapes('disc', 60, seed=13) + shapes(
        'square', 60, seed=14)).transpose(0, 3, 1, 2)
    noise = numpy.random.default_rng(0).normal(0, 40, clean.shape)
    speckled = numpy.clip(clean + noise, 0, 255).astype(numpy.uint8)
    discs = numpy.stack(shapes('disc', 120, seed=15)).transpose(0, 3, 1, 2)
    d_clean = quality.frechet(model, clean, real)
    assert d_clean < quality.frechet(model, speckled, real)
    # one class only (a collapse onto half the data) is also worse
    assert d_clean < quality.frechet(model, discs, real)


def test_evaluate_reports_the_quality_number_on_a_labeled_folder(
        labeled, tmp_path, capsys):
    out = tmp_path / 'run'
    train_dcgan.main(['--data', labeled, '--out', str(out), '--size', '32',
                      '--ch', '16', '--z-dim', '8', '--batchsize', '4',
                      '--iterations', '2'])
    cache = str(tmp_path / 'cache')
    result = evaluate.main([str(out), '--samples', '30', '--cache', cache])
    model, _ = quality.load_or_train(labeled, cache=cache)
    # the samples' value, recomputed from the same draws
    data = adata.load(labeled, 32, seed=0, log=None)
    gen = evaluate.analogy.load_generator(str(out / 'snapshot_iter_2'))
    fake = metrics.generate(gen, 30, seed=0)
    real = data.sample(evaluate.DIVERSITY_SAMPLES, seed=1)
    assert result['frechet'] == pytest.approx(quality.frechet(
        model, fake, real))
    assert 0 <= result['real']['frechet'] < result['frechet']
    assert 'Fréchet distance' in capsys.readouterr().out


def bn_state(link):
    """Every persistent value (batch norm's running statistics)."""
    return {'{}/{}'.format(path, name): numpy.array(getattr(sub, name))
            for path, sub in link.namedlinks()
            for name in sorted(sub._persistent)}


def test_metrics_and_health_draw_the_generator_in_test_mode():
    numpy.random.seed(0)
    gen = nets.DCGANGenerator(32, ch=16, z_dim=8)
    # batch statistics unlike the initial ones, as after training
    with chainer.using_config('train', True):
        for _ in range(3):
            gen(numpy.random.default_rng(1).normal(
                2, 3, (16, 8)).astype(numpy.float32))
    before = bn_state(gen)
    assert sum(k.endswith('avg_mean') for k in before) >= 2
    whole = metrics.generate(gen, 12, seed=3, batchsize=12)
    parts = metrics.generate(gen, 12, seed=3, batchsize=5)
    # a sample does not depend on the batch it was drawn in: one by one
    # (pixels may round differently by one level)
    alone = metrics.generate(gen, 12, seed=3, batchsize=1)
    assert numpy.abs(whole.astype(int) - parts).max() <= 1
    assert numpy.abs(whole.astype(int) - alone).max() <= 1
    # and drawing leaves batch norm's statistics as they were
    after = bn_state(gen)
    assert before.keys() == after.keys()
    for k in before:
        numpy.testing.assert_array_equal(before[k], after[k], err_msg=k)
    # the run-health checks draw the same way
    z = gen.sample_z(numpy.random.default_rng(3), 12)
    checks = health.RunHealth(gen, z, whole, [])
    first = checks.samples()
    assert numpy.abs(first.astype(int) - whole).max() <= 1
    checks.z = z[:4]
    assert numpy.abs(checks.samples().astype(int) - first[:4]).max() <= 1
    for k, v in bn_state(gen).items():
        numpy.testing.assert_array_equal(before[k], v, err_msg=k)


def test_grids_are_scored_tile_by_tile(labeled, tmp_path, capsys):
    cache = str(tmp_path / 'c')
    discs = numpy.stack(shapes('disc', 6, seed=21))  # (6, 32, 32, 3)
    grid = numpy.concatenate([numpy.concatenate(list(discs[r * 3:
                                                           r * 3 + 3]), 1)
                              for r in range(2)], 0)  # 2 rows of 3
    path = str(tmp_path / 'g.png')
    Image.fromarray(grid).save(path)
    tiles = quality.grid_tiles(path, 32)
    numpy.testing.assert_array_equal(tiles, discs.transpose(0, 3, 1, 2))
    scores = quality.main([labeled, '--cache', cache, '--grids', path,
                           '--out', str(tmp_path / 's.json')])
    assert set(scores) == {path, 'real data'}
    saved = json.load(open(str(tmp_path / 's.json')))
    assert saved['scores'][path] == pytest.approx(scores[path])
    assert scores[path]['high_frequency_ratio'] == pytest.approx(
        health.high_frequency_ratio(tiles))
    with pytest.raises(SystemExit):  # not a grid of 32 px tiles
        Image.fromarray(grid[:40]).save(path)
        quality.main([labeled, '--cache', cache, '--grids', path])
    assert 'not a grid of 32 px tiles' in capsys.readouterr().err
