"""experiments/doc_images.py on small run folders made here: the right
source files, the right log keys, sizes and the byte budget."""
import json
import os

import numpy
import pytest
from PIL import Image

from experiments import doc_images
from gan.runs import UsageError


def solid(path, size, colour, noise=0, seed=0):
    """A picture of one colour, plus uniform noise of +-noise per pixel."""
    w, h = size
    a = numpy.empty((h, w, 3), numpy.float64)
    a[:] = colour
    if noise:
        a += numpy.random.RandomState(seed).uniform(-noise, noise, a.shape)
    Image.fromarray(a.clip(0, 255).astype(numpy.uint8)).save(path)


def fake_ssl_run(root, labels=100):
    run = os.path.join(root, 'ssl')
    os.makedirs(run)
    log = []
    for epoch in (1, 2, 3, 4):
        entry = {'epoch': epoch, 'iteration': 600 * epoch,
                 'gen/loss': 1.0 / epoch}
        if epoch != 3:  # an entry without evaluation is skipped
            entry.update({'test/error_avg': 0.5 / epoch,
                          'test/error_raw': 0.4 / epoch,
                          'test/errors_avg': 5000.0 / epoch})
        log.append(entry)
    with open(os.path.join(run, 'log'), 'w') as f:
        json.dump(log, f)
    with open(os.path.join(run, 'options.json'), 'w') as f:
        json.dump({'labels': labels}, f)
    # by name epoch200 sorts after epoch1000; by number it is earlier
    solid(os.path.join(run, 'samples_epoch200.png'), (300, 300), (0, 0, 255))
    solid(os.path.join(run, 'samples_epoch1000.png'), (300, 300),
          (90, 90, 90))
    solid(os.path.join(run, 'samples_epoch050.png'), (300, 300), (255, 0, 0))
    return run, log


def fake_compare(root, big=(1200, 600), noise=0):
    d = os.path.join(root, 'cmp')
    os.makedirs(os.path.join(d, 'fm'))
    solid(os.path.join(d, 'compare.png'), big, (10, 200, 10), noise, 1)
    solid(os.path.join(d, 'final_dcgan.png'), (400, 400), (200, 0, 0),
          noise, 2)
    solid(os.path.join(d, 'fm', 'samples_latest.png'), (400, 400),
          (0, 200, 0), noise, 3)
    solid(os.path.join(d, 'final_mbd.png'), (400, 400), (0, 0, 200), noise, 4)
    solid(os.path.join(d, 'analogy_dcgan.png'), (400, 250), (250, 250, 0))
    solid(os.path.join(d, 'analogy_mbd.png'), (400, 250), (0, 250, 250))
    return d


def mean_colour(path):
    with Image.open(path) as im:
        return numpy.asarray(im.convert('RGB'), numpy.float64).mean(axis=(0, 1))


def test_error_curve_reads_percent_of_evaluated_epochs(tmp_path):
    _, log = fake_ssl_run(str(tmp_path))
    prefix, epochs, avg, raw = doc_images.error_curve(log)
    assert prefix == 'test'
    assert epochs == [1, 2, 4]
    numpy.testing.assert_allclose(avg, [50.0, 25.0, 12.5])
    numpy.testing.assert_allclose(raw, [40.0, 20.0, 10.0])


def test_error_curve_of_a_validation_run_and_of_an_empty_log():
    log = [{'epoch': 1, 'validation/error_avg': 0.1,
            'validation/error_raw': 0.2}]
    prefix, epochs, avg, raw = doc_images.error_curve(log)
    assert (prefix, epochs) == ('validation', [1])
    numpy.testing.assert_allclose([avg[0], raw[0]], [10.0, 20.0])
    with pytest.raises(UsageError, match='first evaluation'):
        doc_images.error_curve([{'epoch': 1, 'gen/loss': 3.0}])


def test_last_samples_is_the_highest_epoch_by_number(tmp_path):
    run, _ = fake_ssl_run(str(tmp_path))
    assert doc_images.last_samples(run).endswith('samples_epoch1000.png')


def test_all_pictures_from_two_folders(tmp_path, capsys):
    run, _ = fake_ssl_run(str(tmp_path))
    cmp = fake_compare(str(tmp_path))
    out = str(tmp_path / 'images')
    assert doc_images.main(['--ssl', run, '--compare', cmp,
                            '--out', out]) == 0
    names = sorted(os.listdir(out))
    assert names == sorted(['ssl_accuracy.png', 'ssl_samples.png',
                            'compare.png', 'grid_dcgan.png', 'grid_fm.png',
                            'grid_mbd.png', 'analogy.png'])
    # the last grid (epoch 1000, grey), scaled to 280 px, stored as grey
    with Image.open(os.path.join(out, 'ssl_samples.png')) as im:
        assert im.size == (280, 280) and im.mode == 'L'
    numpy.testing.assert_allclose(
        mean_colour(os.path.join(out, 'ssl_samples.png')), 90, atol=1)
    # each variant's grid from its own file (fm from its run folder)
    for name, colour in (('grid_dcgan.png', (200, 0, 0)),
                         ('grid_fm.png', (0, 200, 0)),
                         ('grid_mbd.png', (0, 0, 200)),
                         ('analogy.png', (0, 250, 250)),
                         ('compare.png', (10, 200, 10))):
        numpy.testing.assert_allclose(
            mean_colour(os.path.join(out, name)), colour, atol=1)
    with Image.open(os.path.join(out, 'compare.png')) as im:
        assert im.size == (960, 480)  # aspect kept
    with Image.open(os.path.join(out, 'grid_mbd.png')) as im:
        assert im.size == (320, 320)
    with Image.open(os.path.join(out, 'ssl_accuracy.png')) as im:
        assert max(im.size) <= 500
    total = sum(os.path.getsize(os.path.join(out, n)) for n in names)
    assert total <= doc_images.MAX_BYTES
    assert '{} PNG bytes'.format(total) in capsys.readouterr().out


def test_analogy_variant_is_chosen(tmp_path):
    cmp = fake_compare(str(tmp_path))
    out = str(tmp_path / 'images')
    doc_images.main(['--compare', cmp, '--out', out, '--analogy', 'dcgan'])
    numpy.testing.assert_allclose(
        mean_colour(os.path.join(out, 'analogy.png')), (250, 250, 0),
        atol=1)


def test_pictures_are_made_to_fit_the_budget(tmp_path):
    # noisy pictures compress badly: about 1.9 MB before the budget acts
    cmp = fake_compare(str(tmp_path), big=(1200, 600), noise=60)
    out = str(tmp_path / 'images')
    free = str(tmp_path / 'free')
    doc_images.main(['--compare', cmp, '--out', free])
    unconstrained = sum(os.path.getsize(os.path.join(free, n))
                        for n in os.listdir(free))
    budget = unconstrained // 3
    doc_images.main(['--compare', cmp, '--out', out,
                     '--max-bytes', str(budget)])
    total = sum(os.path.getsize(os.path.join(out, n))
                for n in os.listdir(out))
    assert total <= budget < unconstrained
    # the largest one gave way first: compare.png is no longer full size
    with Image.open(os.path.join(out, 'compare.png')) as im:
        assert im.mode == 'P' or im.size[0] < 960


def test_impossible_budget_and_bad_folders_are_one_line_errors(tmp_path,
                                                               capsys):
    run, _ = fake_ssl_run(str(tmp_path))
    for argv, words in (
            (['--ssl', run, '--max-bytes', '200'], '--max-bytes 200'),
            (['--ssl', str(tmp_path / 'missing')], 'no such folder'),
            (['--compare', run], 'animeface.compare'),
            ([], 'nothing to do')):
        with pytest.raises(SystemExit) as e:
            doc_images.main(argv + ['--out', str(tmp_path / 'o')])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert words in err and err.count('\n') == 1


def test_stacked_compare_from_a_table_folder(tmp_path, capsys):
    from experiments import four_way_seeds as stacked_mnist
    folder = str(tmp_path / 'stk')
    colours = {'dcgan': (200, 0, 0), 'fm': (0, 200, 0),
               'mbd': (0, 0, 200), 'fm_mbd': (200, 200, 0)}
    for v, colour in colours.items():
        run = stacked_mnist.run_dir(folder, ('authors', 1, v))
        os.makedirs(run)
        open(os.path.join(run, 'result.json'), 'w').write('{}')
        for it in (100, 200, 300, 400, 500, 600):
            solid(os.path.join(run, 'samples_{:08d}.png'.format(it)),
                  (320, 320), colour)
    out = str(tmp_path / 'images')
    assert doc_images.main(['--stacked', folder, '--seed', '1',
                            '--out', out]) == 0
    path = os.path.join(out, 'stacked_compare.png')
    with Image.open(path) as im:
        assert im.mode == 'P'
        # 5 of the 6 points, 4 x 4 samples of 32 px each, 4 rows
        assert im.size == (150 + 5 * (128 + 4), 16 + 4 * (128 + 4))
        pic = numpy.asarray(im.convert('RGB'))
    y = 16 + 3 * (128 + 4) + 64  # the fourth row: "+ both"
    assert tuple(pic[y, 150 + 64]) == colours['fm_mbd']
    # a seed without runs is a one-line error that names the fix
    with pytest.raises(SystemExit) as e:
        doc_images.main(['--stacked', folder, '--seed', '0', '--out', out])
    err = capsys.readouterr().err
    assert e.value.code == 2 and '--seed' in err and err.count('\n') == 1


def test_stacked_set_prefix_grids_and_analogy_at_64_px(tmp_path, capsys):
    """--set picks the set, the size comes from the runs' options, --grids
    adds a full-size corner of each final grid and the analogy."""
    from experiments import four_way_seeds
    folder = str(tmp_path / 'seeds')
    colours = {'dcgan': (200, 0, 0), 'fm': (0, 200, 0),
               'mbd': (0, 0, 200), 'fm_mbd': (200, 200, 0)}
    for s in ('authors', 'authors-d'):
        for v, colour in colours.items():
            run = four_way_seeds.run_dir(folder, (s, 0, v))
            os.makedirs(run)
            open(os.path.join(run, 'result.json'), 'w').write('{}')
            open(os.path.join(run, 'options.json'), 'w').write(
                '{"size": 64}')
            if s == 'authors':
                colour = (255, 255, 255)
            for it in (100, 200, 300):
                solid(os.path.join(run, 'samples_{:08d}.png'.format(it)),
                      (640, 640), colour)
            # the final grid: the top-left sample marked black
            grid = Image.new('RGB', (640, 640), colour)
            grid.paste((0, 0, 0), (0, 0, 64, 64))
            grid.save(os.path.join(os.path.dirname(run),
                                   'final_{}.png'.format(v)))
    solid(os.path.join(os.path.dirname(four_way_seeds.run_dir(
        folder, ('authors-d', 0, 'fm'))), 'analogy_fm.png'), (1280, 1280),
        (0, 100, 100))
    out = str(tmp_path / 'images')
    assert doc_images.main(['--stacked', folder, '--set', 'authors-d',
                            '--prefix', 'e64_', '--grids', '--analogy', 'fm',
                            '--out', out]) == 0
    assert sorted(os.listdir(out)) == sorted(
        ['e64_compare.png', 'e64_analogy.png']
        + ['e64_grid_{}.png'.format(v) for v in colours])
    with Image.open(os.path.join(out, 'e64_compare.png')) as im:
        # 3 points, 3 x 3 samples of 64 px each, 4 rows
        assert im.size == (150 + 3 * (192 + 4), 16 + 4 * (192 + 4))
        pic = numpy.asarray(im.convert('RGB'))
    for r, v in enumerate(colours):  # authors-d's colours, not white
        assert tuple(pic[16 + r * (192 + 4) + 96, 150 + 96]) == colours[v]
    for v, colour in colours.items():
        with Image.open(os.path.join(out, 'e64_grid_{}.png'.format(v))) as im:
            assert im.size == (384, 384)  # 6 x 6 samples, not scaled
            pic = numpy.asarray(im.convert('RGB'))
        assert tuple(pic[32, 32]) == (0, 0, 0)
        assert tuple(pic[64 + 32, 64 + 32]) == colour
    with Image.open(os.path.join(out, 'e64_analogy.png')) as im:
        assert im.size == (640, 640)
    for argv, words in ((['--stacked', folder, '--set', 'nope'], 'nope'),
                        (['--compare', folder, '--grids'], '--grids needs')):
        with pytest.raises(SystemExit) as e:
            doc_images.main(argv + ['--out', out])
        err = capsys.readouterr().err
        assert e.value.code == 2 and words in err and err.count('\n') == 1


def test_by_set_picture_of_one_variant_over_seeds_and_sets(tmp_path,
                                                           capsys):
    from experiments import four_way_seeds
    folder = str(tmp_path / 'seeds')
    colours = {('authors', 0): (200, 0, 0), ('authors-d', 0): (0, 200, 0),
               ('authors', 1): (0, 0, 200), ('authors-d', 1): (200, 200, 0)}
    for (s, seed), colour in colours.items():
        run = four_way_seeds.run_dir(folder, (s, seed, 'mbd'))
        os.makedirs(run)
        open(os.path.join(run, 'result.json'), 'w').write('{}')
        for it in (100, 200, 300):
            solid(os.path.join(run, 'samples_{:08d}.png'.format(it)),
                  (320, 320), colour)
    # an unfinished run (no result.json) is left out
    os.makedirs(four_way_seeds.run_dir(folder, ('noise-0.3', 0, 'mbd')))
    out = str(tmp_path / 'images')
    assert doc_images.main(['--stacked', folder, '--by-set', 'mbd',
                            '--out', out]) == 0
    assert doc_images.main(['--stacked', folder, '--by-set', 'mbd',
                            '--prefix', 'e64_', '--out', out]) == 0
    assert sorted(os.listdir(out)) == ['e64_mbd_by_set.png', 'mbd_by_set.png']
    with Image.open(os.path.join(out, 'mbd_by_set.png')) as im:
        assert im.size == (150 + 3 * (128 + 4), 16 + 4 * (128 + 4))
        pic = numpy.asarray(im.convert('RGB'))
    # rows by seed, then set in the driver's order
    order = [('authors', 0), ('authors-d', 0), ('authors', 1),
             ('authors-d', 1)]
    for r, key in enumerate(order):
        y = 16 + r * (128 + 4) + 64
        assert tuple(pic[y, 150 + 64]) == colours[key]
    for argv, words in ((['--stacked', folder, '--by-set', 'fm'], 'fm'),
                        (['--by-set', 'mbd'], '--stacked')):
        with pytest.raises(SystemExit) as e:
            doc_images.main(argv + ['--out', out])
        err = capsys.readouterr().err
        assert e.value.code == 2 and words in err and err.count('\n') == 1
