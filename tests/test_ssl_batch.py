import json
import os

import numpy

from mnist_ssl import batch


def fake_result(labels, seed, errors):
    return {'labels': labels, 'data_seed': seed, 'seed': seed,
            'test_errors': errors, 'test_errors_raw': errors + 5,
            'epochs': 3, 'wall_seconds': 120.0}


def test_seeds_table_mean_std_against_numpy():
    rs = [fake_result(100, s, e) for s, e in ((1, 90), (2, 101), (3, 85))]
    rs.append(fake_result(20, 1, 1500))
    rows = batch.seeds_table(rs)
    assert [r['labels'] for r in rows] == [20, 100]
    r = rows[1]
    errs = numpy.array([90, 101, 85])
    assert r['mean'] == round(errs.mean(), 1)
    assert r['std'] == round(errs.std(ddof=1), 1)
    assert r['max'] == 101 and r['runs'] == 3
    assert rows[0]['std'] == 0.0
    assert '93 +- 6.5' in r['paper']
    md = batch.seeds_markdown(rows)
    assert ('| 100 | 3 | 92.0 +- 8.2 | 90, 101, 85 | 95, 106, 90 | seed 1: '
            'not measured; seed 2: not measured; seed 3: not measured |') in md
    assert '| -/-/-, -/-/-, -/-/- |' in md  # no minutes_to_error_avg


def test_seeds_table_minutes_to_error_per_seed():
    rs = [fake_result(100, s, 100) for s in (1, 2)]
    rs[0]['minutes_to_error_avg'] = {'0.02': 72.96, '0.015': 90.4,
                                     '0.01': None}
    rs[1]['minutes_to_error_avg'] = {'0.02': 44.0, '0.015': 60.51,
                                     '0.01': 101.0}
    row, = batch.seeds_table(rs)
    assert row['minutes_to_error'] == [[72.96, 90.4, None],
                                       [44.0, 60.51, 101.0]]
    assert '| 73/90/-, 44/61/101 |' in batch.seeds_markdown([row])


def test_seeds_table_names_collapsed_runs():
    rs = [fake_result(20, s, e) for s, e in ((1, 4000), (2, 1500), (3, 4100))]
    rs[0].update(generator_collapse_epoch=10, generator_recovered=False)
    rs[2].update(generator_collapse_epoch=9, generator_recovered=True)
    rs[1].update(generator_collapse_epoch=None, generator_recovered=None)
    row, = batch.seeds_table(rs)
    assert row['collapsed'] == {1: 'collapsed at epoch 10, not recovered',
                                3: 'collapsed at epoch 9, recovered'}
    md = batch.seeds_markdown([row])
    assert ('| seed 1: collapsed at epoch 10, not recovered; '
            'seed 3: collapsed at epoch 9, recovered |') in md


def test_run_one_skips_finished_runs(tmp_path):
    out = tmp_path / 'r'
    out.mkdir()
    (out / 'result.json').write_text(json.dumps(fake_result(100, 1, 77)))
    calls = []
    r = batch.run_one({'out': str(out)}, log=calls.append)
    assert r['test_errors'] == 77 and 'skip' in calls[0]


def test_finished_results_collects_every_finished_run(tmp_path):
    # two processes sharing one batch folder: the table holds both
    for labels, seed, errors in ((100, 2, 95), (20, 1, 1500), (100, 1, 88)):
        d = tmp_path / 'labels{}_seed{}'.format(labels, seed)
        d.mkdir()
        (d / 'result.json').write_text(
            json.dumps(fake_result(labels, seed, errors)))
    (tmp_path / 'labels50_seed1').mkdir()  # started, not finished
    (tmp_path / 'other').mkdir()
    (tmp_path / 'other' / 'result.json').write_text('{}')
    rs = batch.finished_results(str(tmp_path))
    assert [(r['labels'], r['data_seed']) for r in rs] == [
        (20, 1), (100, 1), (100, 2)]
    batch.write(str(tmp_path / 'table'), batch.seeds_table(rs), 'md\n')
    rows = json.load(open(str(tmp_path / 'table.json')))
    assert [r['runs'] for r in rows] == [1, 2]
    assert sorted(os.listdir(str(tmp_path))) == [
        'labels100_seed1', 'labels100_seed2', 'labels20_seed1',
        'labels50_seed1', 'other', 'table.json', 'table.md']


def test_ablation_rows_in_variant_order_from_every_process(tmp_path):
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), 'benchmarks', 'ssl_ablation.py')
    spec = importlib.util.spec_from_file_location('ssl_ablation', path)
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    for name, errors in (('blog', 1900), ('defaults', 600)):
        (tmp_path / name).mkdir()
        r = fake_result(100, 1, errors)
        if name == 'blog':
            r.update(generator_collapse_epoch=4, generator_recovered=True)
        (tmp_path / name / 'result.json').write_text(json.dumps(r))
    (tmp_path / 'fm-paired').mkdir()  # still running: no result.json
    rows = ablation.finished_rows(str(tmp_path))
    assert [(r['name'], r['test_errors'], r['test_errors_raw'])
            for r in rows] == [('defaults', 600, 605), ('blog', 1900, 1905)]
    assert rows[0]['minutes'] == 2.0
    md = batch.ablation_markdown(rows)
    assert '| 600 | 605 | not measured |' in md and '| 1900 | 1905 | collapsed at epoch 4, recovered |' in md
