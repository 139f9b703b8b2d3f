"""The four-way seeds table (Stacked-MNIST and image folders): what it
runs, what it skips, and its means and spreads (against a hand
computation on made-up metrics)."""
import json
import math
import os

import numpy
import pytest

from experiments import four_way_seeds as sm


def _write(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f)


def _fake_run(out, s, seed, v, modes, kl, div, seconds, real_modes=1000):
    run = os.path.join(out, '{}_s{}_{}'.format(s, seed, v), v)
    _write(os.path.join(run, 'result.json'),
           {'iterations': 4688, 'elapsed_seconds': seconds})
    _write(os.path.join(run, 'metrics.json'),
           {'samples': 26000, 'modes': modes, 'kl': kl, 'diversity': div,
            'near_duplicate_share': 0.0})
    _write(sm.real_path(out, seed),
           {'modes': real_modes, 'kl': 0.02, 'diversity': 1.0})


def test_entries_and_commands_follow_the_sets():
    es = sm.entries(['authors', 'raw', 'fixed'], [0, 1])
    assert len(es) == 2 * (4 + 2 + 1)
    assert es[:4] == [('authors', 0, v) for v in
                      ('dcgan', 'fm', 'mbd', 'fm_mbd')]
    cmd = sm.train_command(sm.parse(['--out', 'O', '--iterations', '800']),
                           ('raw', 1, 'mbd'))
    assert cmd[cmd.index('--data') + 1] == 'stacked-mnist'
    assert cmd[cmd.index('--variants') + 1] == 'mbd'
    assert cmd[cmd.index('--seed') + 1] == '1'
    assert cmd[cmd.index('--iterations') + 1] == '800'
    assert cmd[cmd.index('--grid-interval') + 1] == '100'
    assert cmd[cmd.index('--mbd-form') + 1] == 'raw'
    assert cmd[cmd.index('--out') + 1] == os.path.join('O', 'raw_s1_mbd')
    fixed = sm.train_command(sm.parse(['--out', 'O', '--iterations', '8']),
                             ('fixed', 0, 'mbd'))
    assert '--mbd-fixed-t' in fixed and '--mbd-form' not in fixed


def test_table_means_and_spreads(tmp_path):
    out = str(tmp_path)
    modes = {0: 10, 1: 30, 2: 20}
    for seed, m in modes.items():
        _fake_run(out, 'authors', seed, 'mbd', m, 0.5 * m, 0.6, 100 + seed)
        _fake_run(out, 'authors', seed, 'dcgan', 1, 6.91, 0.2, 50)
    _fake_run(out, 'raw', 0, 'mbd', 7, 4.0, 0.5, 90)
    # a run that trained but was not evaluated, and a stray folder
    _write(os.path.join(out, 'authors_s3_fm', 'fm', 'result.json'), {})
    _write(os.path.join(out, 'notes_s0_x', 'x', 'metrics.json'), {})
    rows = {(r['set'], r['variant']): r for r in sm.write_table(
        out, log=lambda *a: None)}
    assert set(rows) == {('authors', 'mbd'), ('authors', 'dcgan'),
                         ('raw', 'mbd')}
    r = rows['authors', 'mbd']
    assert r['seeds'] == [0, 1, 2] and r['modes'] == [10, 30, 20]
    assert math.isclose(r['modes_mean'], 20.0)
    # sample standard deviation by hand: sqrt(((-10)^2 + 10^2 + 0) / 2)
    assert math.isclose(r['modes_std'], 10.0)
    assert math.isclose(r['kl_std'], 5.0)
    assert rows['raw', 'mbd']['modes_std'] == 0.0
    text = open(os.path.join(out, 'table.md')).read()
    assert ('| DCGAN + minibatch discrimination | 20 +- 10 | 10, 30, 20 | '
            '10.00 +- 5.00 | 5.00, 15.00, 10.00 | 0.600 +- 0.000 | 0, 1, 2 '
            '| 101 |\n') in text
    assert text.index('**authors**') < text.index('**raw**')
    assert '| real data | 1000 |' in text
    assert json.load(open(os.path.join(out, 'table.json')))['real'][
        'modes'] == 1000


def test_evaluated_needs_the_same_sample_count(tmp_path):
    out = str(tmp_path)
    e = ('authors', 0, 'mbd')
    assert not sm.is_trained(out, e) and not sm.is_evaluated(out, e, 26000)
    _fake_run(out, *e, modes=5, kl=1.0, div=0.5, seconds=1)
    assert sm.is_trained(out, e)
    assert sm.is_evaluated(out, e, 26000)
    assert not sm.is_evaluated(out, e, 1000)


def test_pictures_only_for_seeds_with_all_four_runs(tmp_path):
    from PIL import Image
    out = str(tmp_path)
    for seed, variants in ((0, ('dcgan', 'fm', 'mbd', 'fm_mbd')),
                           (1, ('dcgan', 'mbd'))):
        for k, v in enumerate(variants):
            _fake_run(out, 'authors', seed, v, 1, 1.0, 0.5, 1)
            for it in (5, 10):
                Image.new('RGB', (320, 320), (40 * k, it, 0)).save(
                    os.path.join(out, 'authors_s{}_{}'.format(seed, v), v,
                                 'samples_{}.png'.format(it)))
    assert sm.write_pictures(out, [0, 1]) == [
        os.path.join(out, 'compare_s0.png')]
    with Image.open(os.path.join(out, 'compare_s0.png')) as im:
        pic = numpy.asarray(im.convert('RGB'))
    # four rows of 5 x 5 samples of 32 px, two columns (iterations 5, 10)
    assert pic.shape[0] == 16 + 4 * (160 + 4)
    # the third row is the minibatch-discrimination run's grid at it 10
    y, x = 16 + 2 * (160 + 4) + 80, 150 + (160 + 4) + 80
    assert tuple(pic[y, x]) == (80, 10, 0)


def test_tables_of_an_earlier_iteration(tmp_path):
    out = str(tmp_path)
    for seed, (late, early) in enumerate(((900, 3), (990, 5))):
        _fake_run(out, 'authors', seed, 'dcgan', late, 0.5, 0.9, 1000)
        _write(os.path.join(out, 'authors_s{}_dcgan'.format(seed), 'dcgan',
                            'metrics_iter1000.json'),
               {'samples': 26000, 'modes': early, 'kl': 6.0,
                'diversity': 0.2, 'near_duplicate_share': 0.5})
    _fake_run(out, 'authors', 0, 'mbd', 1000, 0.3, 1.0, 2000)  # final only
    e = ('authors', 1, 'dcgan')
    assert sm.is_evaluated(out, e, 26000, at=1000)
    assert not sm.is_evaluated(out, ('authors', 0, 'mbd'), 26000, at=1000)
    rows = sm.write_table(out, log=lambda *a: None, at=1000)
    assert [(r['variant'], r['modes']) for r in rows] == [('dcgan', [3, 5])]
    assert not os.path.exists(os.path.join(out, 'table.md'))
    text = open(os.path.join(out, 'table_iter1000.md')).read()
    assert 'the snapshots of iteration 1000' in text
    # the whole run's train time is not shown against an early snapshot
    assert '| DCGAN | 4 +- 1 | 3, 5 | 6.00 +- 0.00 | 6.00, 6.00 | 0.200 +- ' \
        '0.000 | 0, 1 |\n' in text
    assert 'train time' not in text
    assert json.load(open(os.path.join(out, 'table_iter1000.json')))[
        'iteration'] == 1000
    args = sm.parse(['--out', out, '--at', '1000'])
    assert args.samples == 26000
    cmd = sm.evaluate_command(args, sm.run_dir(out, e), 1)
    assert cmd[cmd.index('--at') + 1] == '1000'
    assert '--at' not in sm.evaluate_command(args, 'real', 1)


def test_at_must_name_a_snapshot(capsys):
    for at in ('1500', '5000'):
        with pytest.raises(SystemExit):
            sm.main(['--at', at, '--out', 'unused', '--table-only'])
        assert 'no snapshot of that iteration' in capsys.readouterr().err


def test_anchor_sets_carry_their_flags_and_variants_filter():
    es = sm.entries(['noise-0.3', 'authors-d', 'gen-steps-3'], [0],
                    variants=['mbd'])
    assert es == [('noise-0.3', 0, 'mbd'), ('authors-d', 0, 'mbd'),
                  ('gen-steps-3', 0, 'mbd')]
    # the two sets that hold D back do it for all four variants alike
    for name in ('noise-0.3', 'authors-d'):
        assert [e[2] for e in sm.entries([name], [0])] == [
            'dcgan', 'fm', 'mbd', 'fm_mbd']
    assert [e[2] for e in sm.entries(['gen-steps-3'], [0])] == [
        'mbd', 'fm_mbd']
    args = sm.parse(['--data', 'faces', '--size', '64', '--ch', '32'])
    assert args.samples == 1000  # a folder: the metrics take 1000
    flags = {e[0]: sm.train_command(args, e) for e in es}
    cmd = flags['authors-d']
    assert cmd[cmd.index('--input-noise') + 1] == '0.2'
    assert cmd[cmd.index('--dis-dropout') + 1] == '0.5'
    assert cmd[cmd.index('--data') + 1] == 'faces'
    assert cmd[cmd.index('--size') + 1] == '64'
    assert cmd[cmd.index('--ch') + 1] == '32'
    assert flags['noise-0.3'][flags['noise-0.3'].index(
        '--input-noise') + 1] == '0.3'
    assert '--gen-steps' in flags['gen-steps-3']
    # every set but authors-d asks for D without the comparison's default
    # noise and dropout, so its runs mean what they meant before
    for s in ('authors', 'raw', 'fixed', 'gen-steps-3'):
        cmd = sm.train_command(args, (s, 0, 'mbd'))
        assert cmd[cmd.index('--input-noise') + 1] == '0', s
        assert cmd[cmd.index('--dis-dropout') + 1] == '0', s
    assert flags['noise-0.3'][flags['noise-0.3'].index(
        '--dis-dropout') + 1] == '0'


def test_folder_table_reads_quality_and_training_health(tmp_path):
    out = str(tmp_path)
    late = {}
    for seed, (fd, floor_hits) in enumerate(((20.0, 0), (40.0, 4))):
        run = os.path.join(out, 'authors-d_s{}_mbd'.format(seed), 'mbd')
        # log every 100 iterations to 3000; the last 10 entries are the
        # last 1000 iterations; floor_hits of the entries after 1000 are
        # under 0.05
        log = [{'iteration': 100 * (i + 1), 'dis/loss': 0.5 + 0.01 * i}
               for i in range(30)]
        for e in log[10:10 + floor_hits]:
            e['dis/loss'] = 0.01
        late[seed] = numpy.mean([e['dis/loss'] for e in log[-10:]])
        _write(os.path.join(run, 'log'), log)
        warnings = [{'iteration': 1400, 'kind': 'noise', 'message': 'm'}] \
            if floor_hits else []
        _write(os.path.join(run, 'result.json'),
               {'iterations': 3000, 'elapsed_seconds': 10,
                'warnings': warnings})
        _write(os.path.join(run, 'metrics.json'),
               {'samples': 1000, 'frechet': fd, 'diversity': 0.9,
                'nearest_train_median': 50.0, 'near_duplicate_share': 0})
        _write(sm.real_path(out, seed), {'frechet': 3.0, 'diversity': 1.0,
                                         'nearest_train_median': 18.0})
    rows = sm.write_table(out, log=lambda *a: None)
    r = rows[0]
    assert r['frechet'] == [20.0, 40.0]
    assert math.isclose(r['frechet_mean'], 30.0)
    assert math.isclose(r['frechet_std'], math.sqrt(200.0))
    assert r['dis_loss_late'] == pytest.approx([late[0], late[1]])
    # 0 of 20 and 4 of 20 entries after the warm-up: 10 % on average
    assert math.isclose(r['dis_wins_share_mean'], 0.1)
    text = open(os.path.join(out, 'table.md')).read()
    assert '**authors-d**' in text
    assert '| 30.0 +- 14.1 | 20.0, 40.0 |' in text
    # result.json holds the noise warning; D winning (4 of the 5 entries
    # 1100-1500 under the floor) is found again in the log
    assert '| 10 % | s1: D wins (from 1500); noise (from 1400) | 0, 1 |' \
        in text
    assert '| real data | 3.0 | | 1.000 | 18.0 |' in text


def test_training_health_replays_the_sample_checks_by_todays_rule(
        tmp_path):
    """A result written under an older rule (noise warned of at one
    check) is tabled by today's (two checks in a row)."""
    def check(it, f):
        return {'iteration': it, 'diversity': 1.0,
                'near_duplicate_share': 0.0, 'high_frequency_ratio': 0.1,
                'high_frequency_real': 0.05, 'noise_factor': f}
    run = str(tmp_path / 'run')
    _write(os.path.join(run, 'log'), [{'iteration': 100 * (i + 1),
                                       'dis/loss': 0.5} for i in range(30)])
    old = [{'iteration': 1500, 'kind': 'noise', 'message': 'm'}]
    for factors, want in (((2.5, 1.2, 1.3), []),
                          ((2.5, 2.6, 1.3), [(2250, 'noise')])):
        _write(os.path.join(run, 'result.json'), {
            'iterations': 3000, 'warnings': old,
            'health': [check(1500 + 750 * i, f)
                       for i, f in enumerate(factors)]})
        got = sm.training_health(run, sm.read_json(
            os.path.join(run, 'result.json')))
        assert [(w['iteration'], w['kind']) for w in got['warnings']] == want


def test_a_folder_study_end_to_end(tmp_path):
    """One anchor run on a labeled folder: trained, evaluated with the
    quality number, tabled, pictured."""
    from test_quality import shapes
    from PIL import Image
    data = tmp_path / 'faces'
    data.mkdir()
    labels = {}
    for i, im in enumerate(shapes('disc', 8, 1) + shapes('square', 8, 2)):
        name = 'i{:02d}.png'.format(i)
        Image.fromarray(im).save(str(data / name))
        labels[name] = {'subcategory': 'disc' if i < 8 else 'square',
                        'emoji': str(i)}
    _write(str(data / 'labels.json'), labels)
    out = str(tmp_path / 'study')
    sm.main(['--data', str(data), '--ch', '16', '--iterations', '3',
             '--sets', 'authors-d', '--variants', 'mbd', '--seeds', '0',
             '--samples', '20', '--cache', str(tmp_path / 'cache'),
             '--out', out])
    run = os.path.join(out, 'authors-d_s0_mbd', 'mbd')
    options = json.load(open(os.path.join(run, 'options.json')))
    assert options['dis_dropout'] == 0.5 and options['input_noise'] == 0.2
    metrics = json.load(open(os.path.join(run, 'metrics.json')))
    assert metrics['frechet'] > 0 and metrics['samples'] == 20
    assert json.load(open(sm.real_path(out, 0)))['frechet'] >= 0
    text = open(os.path.join(out, 'table.md')).read()
    assert '**authors-d**' in text and 'Fréchet distance' in text
    assert os.path.exists(os.path.join(out, 'compare_authors-d_s0.png'))
    assert not os.path.exists(os.path.join(out, 'compare_s0.png'))


def test_loss_curves_and_figure_follow_every_log(tmp_path):
    """dis_loss.png: a line per run with a log, its points D's logged
    loss; runs without a log (or a loss) are left out."""
    out = str(tmp_path)
    logs = {('authors', 0, 'mbd'): [0.5, 0.02, 0.01],
            ('authors-d', 0, 'mbd'): [0.6, 0.4, 0.3],
            ('authors-d', 1, 'mbd'): [0.7, 0.5],
            ('authors', 0, 'dcgan'): [0.9, 0.8, 0.7]}
    for (s, seed, v), loss in logs.items():
        _write(os.path.join(out, '{}_s{}_{}'.format(s, seed, v), v, 'log'),
               [{'iteration': 100 * (i + 1), 'dis/loss': x}
                for i, x in enumerate(loss)] + [{'iteration': 999}])
    os.makedirs(os.path.join(out, 'noise-0.3_s0_mbd', 'mbd'))  # no log
    curves = sm.loss_curves(out, variants=['mbd'])
    assert sorted(curves) == ['mbd']
    got = {(s, seed): (its, loss) for s, seed, its, loss in curves['mbd']}
    assert got == {(s, seed): ([100 * (i + 1) for i in range(len(loss))],
                               loss)
                   for (s, seed, v), loss in logs.items() if v == 'mbd'}
    fig = sm.loss_figure(sm.loss_curves(out))
    panels = fig.axes
    assert [ax.get_title() for ax in panels] == [
        'DCGAN', 'DCGAN + minibatch discrimination']
    lines = [list(l.get_ydata()) for l in panels[1].get_lines()
             if l.get_linestyle() != '--']
    assert sorted(lines) == sorted(loss for (s, seed, v), loss in
                                   logs.items() if v == 'mbd')
    assert os.path.join(out, 'dis_loss.png') in sm.write_pictures(out, [0])
