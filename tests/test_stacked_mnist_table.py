"""The Stacked-MNIST seeds table: what it runs, what it skips, and its
means and spreads (against a hand computation on made-up metrics)."""
import json
import math
import os

import numpy
import pytest

from experiments import stacked_mnist as sm


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
    cmd = sm.train_command(
        type('A', (), {'out': 'O', 'iterations': 800,
                       'device': '-1'})(), ('raw', 1, 'mbd'))
    assert cmd[cmd.index('--variants') + 1] == 'mbd'
    assert cmd[cmd.index('--seed') + 1] == '1'
    assert cmd[cmd.index('--iterations') + 1] == '800'
    assert cmd[cmd.index('--grid-interval') + 1] == '100'
    assert cmd[cmd.index('--mbd-form') + 1] == 'raw'
    assert cmd[cmd.index('--out') + 1] == os.path.join('O', 'raw_s1_mbd')
    fixed = sm.train_command(
        type('A', (), {'out': 'O', 'iterations': 8,
                       'device': '-1'})(), ('fixed', 0, 'mbd'))
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
    args = type('A', (), {'out': out, 'samples': 26000, 'cache': None,
                          'at': 1000, 'device': '-1'})()
    cmd = sm.evaluate_command(args, sm.run_dir(out, e), 1)
    assert cmd[cmd.index('--at') + 1] == '1000'
    assert '--at' not in sm.evaluate_command(args, 'real', 1)


def test_at_must_name_a_snapshot(capsys):
    for at in ('1500', '5000'):
        with pytest.raises(SystemExit):
            sm.main(['--at', at, '--out', 'unused', '--table-only'])
        assert 'no snapshot of that iteration' in capsys.readouterr().err
