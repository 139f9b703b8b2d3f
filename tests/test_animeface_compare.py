"""Analogy grids and the four-way comparison on tiny runs."""
import json
import os

import numpy
import pytest
from PIL import Image

import train_dcgan
from animeface import analogy
from animeface import data as adata
from animeface import compare
from animeface import evaluate
from animeface import train as atrain
from animeface import variants as V
from gan import health
from gan import runs
from test_animeface_data import TINY, faces  # noqa: F401 (fixture)


def test_linear_interpolation_ends_and_middle():
    a, b = numpy.array([1.0, -2.0, 0.0]), numpy.array([3.0, 2.0, 4.0])
    z = analogy.interpolate(a, b, 5)
    numpy.testing.assert_allclose(z[0], a)
    numpy.testing.assert_allclose(z[-1], b)
    numpy.testing.assert_allclose(z[2], (a + b) / 2)
    numpy.testing.assert_allclose(numpy.diff(z, axis=0), [(b - a) / 4] * 4,
                                  rtol=1e-6)


def test_slerp_keeps_the_norm_between_orthogonal_vectors():
    a, b = numpy.array([2.0, 0.0]), numpy.array([0.0, 2.0])
    z = analogy.interpolate(a, b, 7, spherical=True)
    numpy.testing.assert_allclose(numpy.linalg.norm(z, axis=1), 2.0,
                                  rtol=1e-6)
    numpy.testing.assert_allclose(z[0], a, atol=1e-6)
    numpy.testing.assert_allclose(z[-1], b, atol=1e-6)
    # equal angular steps of 15 degrees
    angles = numpy.degrees(numpy.arctan2(z[:, 1], z[:, 0]))
    numpy.testing.assert_allclose(angles, numpy.arange(0, 91, 15), atol=1e-4)
    # parallel ends fall back to the straight line
    numpy.testing.assert_allclose(
        analogy.interpolate(a, 2 * a, 3, spherical=True)[1], 1.5 * a)


def test_analogy_and_evaluate_commands_on_a_run(faces, tmp_path):
    train_dcgan.main(['--data', faces, '--out', str(tmp_path)] + TINY +
                     ['--iterations', '2'])
    snap = str(tmp_path / 'snapshot_iter_2')
    analogy.main([snap, '--rows', '3', '--cols', '4'])
    analogy.main([snap, '--slerp', '--out', str(tmp_path / 's.png')])
    with Image.open(str(tmp_path / 'analogy_2.png')) as im:
        assert im.size == (4 * 32, 3 * 32)
    with Image.open(str(tmp_path / 's.png')) as im:
        assert im.size == (320, 320)
    # the rows' ends differ, and a row changes along its length
    grid = numpy.asarray(Image.open(str(tmp_path / 'analogy_2.png')),
                         dtype=float)
    first, last = grid[:32, :32], grid[:32, 96:]
    assert numpy.abs(first - last).mean() > 0
    # the same run folder through the metrics command
    evaluate.main([str(tmp_path), '--samples', '20'])
    result = json.load(open(str(tmp_path / 'metrics.json')))
    assert result['samples'] == 20 and result['snapshot'] == 'snapshot_iter_2'
    # the real images are not in the pool: their nearest distance is > 0
    assert result['real']['nearest_train_median'] > 0
    assert result['pool'] == result['real']['pool'] == 5
    # diversity: the samples' mean pairwise distance over the real
    # images', counted here pair by pair
    from gan import metrics
    fake = metrics.generate(analogy.load_generator(snap), 20, seed=0)
    real = adata.load(faces, 32).sample(1000, seed=1)
    assert result['diversity'] == pytest.approx(
        mean_distance(fake) / mean_distance(real), rel=1e-6)


def test_evaluate_an_earlier_snapshot(faces, tmp_path, capsys):
    run = str(tmp_path)
    train_dcgan.main(['--data', faces, '--out', run] + TINY +
                     ['--iterations', '2', '--snapshot-interval', '1'])
    evaluate.main([run, '--samples', '20', '--iteration', '1'])
    early = json.load(open(str(tmp_path / 'metrics_iter1.json')))
    assert early['snapshot'] == 'snapshot_iter_1' and early['iteration'] == 1
    assert not os.path.exists(str(tmp_path / 'metrics.json'))
    # the diversity of that snapshot's generator, computed pair by pair
    fake = metrics_generate(str(tmp_path / 'snapshot_iter_1'))
    real = adata.load(faces, 32).sample(1000, seed=1)
    assert early['diversity'] == pytest.approx(
        mean_distance(fake) / mean_distance(real), rel=1e-6)
    evaluate.main([run, '--samples', '20'])
    final = json.load(open(str(tmp_path / 'metrics.json')))
    assert final['iteration'] == 2 and final['diversity'] != early['diversity']
    # a snapshot that is not there: one line naming the ones that are
    with pytest.raises(SystemExit):
        evaluate.main([run, '--iteration', '5'])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert 'no snapshot of iteration 5' in err and '(1, 2)' in err


def metrics_generate(snapshot, n=20):
    from gan import metrics
    return metrics.generate(analogy.load_generator(snapshot), n, seed=0)


def mean_distance(images):
    """Mean Euclidean distance over the pairs i < j of ``images``, pair by
    pair over the distinct images (a draw from a small folder repeats its
    images: a pair of copies counts as distance 0)."""
    x = images.reshape(len(images), -1).astype(float)
    distinct, counts = numpy.unique(x, axis=0, return_counts=True)
    total = 0.0
    for k in range(len(distinct)):
        for l in range(k + 1, len(distinct)):
            total += counts[k] * counts[l] * numpy.linalg.norm(
                distinct[k] - distinct[l])
    n = len(x)
    return total / (n * (n - 1) / 2)


def test_compare_end_to_end_and_resumable(faces, tmp_path, monkeypatch):
    out = tmp_path / 'cmp'
    argv = ['--data', faces, '--out', str(out), '--iterations', '4',
            '--grid-interval', '2', '--snapshot-interval', '2',
            '--samples', '40', '--columns', '2', '--cells', '3'] + TINY
    compare.main(argv)
    names = V.names()
    for name in names:
        for f in ('final_{}.png', 'analogy_{}.png'):
            assert os.path.exists(str(out / f.format(name)))
        assert runs.finished_result(str(out / name))['iterations'] == 4
    opts = {n: runs.read_options(str(out / n)) for n in names}
    assert [(o['feature_matching'], o['minibatch_discrimination'])
            for o in opts.values()] == [('none', False), ('blog', False),
                                        ('none', True), ('blog', True)]
    assert {o['mbd_form'] for o in opts.values()} == {'authors'}
    assert len({o['seed'] for o in opts.values()}) == 1
    with Image.open(str(out / 'compare.png')) as im:
        # 4 rows of 3x3 samples of 32 px, 2 columns (iterations 2 and 4)
        assert im.size == (150 + 2 * (96 + 4), 16 + 4 * (96 + 4))
    summary = json.load(open(str(out / 'metrics.json')))
    rows = summary['rows']
    assert [r['variant'] for r in rows][-1] == 'real data'
    # real data: held-out real images against a draw of the folder's 10
    # (the compare seed, 0), counted here pair by pair
    data = adata.load(faces, 32, seed=0)
    real, _ = evaluate.split_real(data, seed=0)
    other = data.sample(evaluate.DIVERSITY_SAMPLES, seed=1)
    assert len(real) == 5
    assert rows[-1]['diversity'] == pytest.approx(
        mean_distance(real) / mean_distance(other), rel=1e-6)
    table = open(str(out / 'metrics.md')).read().splitlines()
    assert table[0].startswith('| variant |') and len(table) == 2 + 5
    assert 'near-duplicate pairs' in table[0]
    # each variant's run-health warnings (result.json) are marked in its row
    assert table[0].endswith('| warnings |')
    for line, name in zip(table[2:], names):
        result = runs.finished_result(str(out / name))
        assert result['health'] and result['health'][-1]['iteration'] == 4
        assert line.split('|')[-2].strip() == health.summary(
            result['warnings'])

    # An interrupted variant resumes from its last snapshot; finished ones
    # are skipped: only 'mbd' trains again, from iteration 2.
    os.remove(str(out / 'mbd' / 'result.json'))
    os.remove(str(out / 'mbd' / 'snapshot_iter_4'))
    calls = []
    real_train = atrain.train

    def spy(vo, images=None, resume_from=None, log=None, comm=None):
        calls.append((os.path.basename(vo.out), resume_from))
        return real_train(vo, images, resume_from, log, comm)
    monkeypatch.setattr(atrain, 'train', spy)
    with pytest.raises(SystemExit):  # a folder with a comparison: refused
        compare.main(argv)
    assert calls == []
    compare.main(argv + ['--resume', 'auto'])
    assert calls == [('mbd', str(out / 'mbd' / 'snapshot_iter_2'))]
    assert os.path.exists(str(out / 'mbd' / 'snapshot_iter_4'))


def test_compare_without_metrics_writes_the_pictures_only(faces, tmp_path,
                                                         monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError('metrics computed under --no-metrics')
    for name in ('load_classifier', 'evaluate_run', 'reference_metrics'):
        monkeypatch.setattr(evaluate, name, refuse)
    out = tmp_path / 'cmp'
    compare.main(['--data', faces, '--out', str(out), '--iterations', '2',
                  '--grid-interval', '1', '--snapshot-interval', '2',
                  '--variants', 'dcgan', 'fm', '--no-metrics'] + TINY)
    for f in ('compare.png', 'final_dcgan.png', 'final_fm.png',
              'analogy_fm.png'):
        assert os.path.exists(str(out / f)), f
    assert not os.path.exists(str(out / 'metrics.md'))
    # the switch is not an option of the variants' runs
    assert 'metrics' not in runs.read_options(str(out / 'fm'))


def test_compare_refuses_to_mix_budgets(faces, tmp_path, capsys):
    out = str(tmp_path / 'cmp')
    argv = ['--data', faces, '--out', out, '--samples', '10',
            '--variants', 'dcgan'] + TINY
    compare.main(argv + ['--iterations', '1'])
    with pytest.raises(SystemExit):
        compare.main(argv + ['--iterations', '2', '--resume', 'auto'])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert 'other options' in err and '--iterations 1' in err


def test_evaluate_on_digits_with_a_stand_in_classifier(tmp_path):
    """Real stacked digits classified by their true labels cover the 1000
    modes almost uniformly; a single repeated image covers one."""
    from animeface import data as adata
    digits = numpy.repeat(numpy.arange(10, dtype=numpy.uint8), 30)
    digits = digits[:, None, None] * numpy.ones((1, 28, 28), numpy.uint8)
    labels = numpy.repeat(numpy.arange(10), 30)
    stacked = adata.ImageData(adata.StackedMNIST(digits * 20 + 10, labels),
                              3, 'stacked-mnist')

    class ByIntensity:
        def predict_proba(self, d):
            k = (d.reshape(len(d), -1).mean(1) // 20).astype(int)
            return numpy.eye(10, dtype=numpy.float32)[k]

    ref = evaluate.reference_metrics(stacked, 300, ByIntensity())
    assert ref['modes'] == len(set(stacked.dataset.modes().tolist()))
    one = numpy.repeat(stacked.sample(1), 50, axis=0)
    m = evaluate.image_metrics(one, 'stacked-mnist', stacked.sample(20),
                               stacked.sample(30, seed=1), ByIntensity())
    assert m['modes'] == 1 and m['diversity'] == 0.0
    assert m['near_duplicate_share'] == 1.0
    assert m['kl'] == pytest.approx(numpy.log(1000))


def test_variant_flags_make_the_options_apply_makes():
    """A variant's train_dcgan.py flags parse to the options its apply()
    gives over the same base, for both feature-matching forms."""
    from animeface import options as aopt
    base = aopt.parser().parse(['--data', 'x'])
    for v in V.VARIANTS:
        for form in ('paper', 'blog'):
            parsed = aopt.parser().parse(['--data', 'x'] + v.flags(form))
            assert parsed == v.apply(base, form), (v.name, form)
    assert V.get('fm_mbd').flags('paper') == [
        '--feature-matching', 'paper', '--minibatch-discrimination']
    with pytest.raises(KeyError, match='unknown variant'):
        V.get('nope')


def test_a_fifth_variant_is_one_entry(faces, tmp_path, monkeypatch):
    """The worked example of the README: one entry in VARIANTS and compare
    trains it, with its options, row label and pictures."""
    extra = V.Variant('mbd_noise', 'DCGAN + MD + input noise',
                      {'minibatch_discrimination': True, 'input_noise': 0.3})
    monkeypatch.setattr(V, 'VARIANTS', V.VARIANTS + (extra,))
    out = tmp_path / 'cmp'
    compare.main(['--data', faces, '--out', str(out), '--iterations', '2',
                  '--grid-interval', '1', '--snapshot-interval', '2',
                  '--variants', 'dcgan', 'mbd_noise', '--no-metrics'] + TINY)
    o = runs.read_options(str(out / 'mbd_noise'))
    assert (o['minibatch_discrimination'], o['input_noise'],
            o['feature_matching']) == (True, 0.3, 'none')
    # the comparison's own default noise, in the variant that sets none
    assert runs.read_options(str(out / 'dcgan'))['input_noise'] == 0.2
    for f in ('final_mbd_noise.png', 'analogy_mbd_noise.png'):
        assert os.path.exists(str(out / f)), f
    with pytest.raises(SystemExit):  # an unknown name: one line
        compare.main(['--data', faces, '--out', str(tmp_path / 'x'),
                      '--variants', 'nope'] + TINY)


def test_the_comparison_holds_d_back_in_every_variant_alike():
    """compare's default D: input noise 0.2 and dropout 0.5 for all four
    variants; flags override it; --preset blog keeps the blog's noise 0.3
    and no dropout (its D has none); train_dcgan.py keeps Radford et al.'s
    D."""
    from animeface import options as aopt

    def variant_d(argv):
        base, c = compare.parser().parse(['--data', 'x'] + argv)
        compare.check(base, c)
        return {(vo.input_noise, vo.dis_dropout) for vo in (
            compare.variant_options(base, c, V.get(n)) for n in c.variants)}
    assert variant_d([]) == {(0.2, 0.5)}
    assert variant_d(['--input-noise', '0', '--dis-dropout', '0']) == {
        (0.0, 0.0)}
    assert variant_d(['--dis-dropout', '0.3']) == {(0.2, 0.3)}
    assert variant_d(['--preset', 'blog']) == {(0.3, 0.0)}
    single = aopt.parser().parse(['--data', 'x'])
    assert (single.input_noise, single.dis_dropout) == (0.0, 0.0)
