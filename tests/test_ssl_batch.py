import json
import os

import numpy
import pytest

from gan import jobs
from mnist_ssl import batch
from mnist_ssl import options as sopt


def fake_result(labels, seed, errors):
    """A result.json with every key the tables read: all ``errors`` are
    1s taken for 7s."""
    counts = numpy.diag([1000] * 10)
    counts[1, 7] = errors
    return {'labels': labels, 'data_seed': seed, 'seed': seed,
            'test_errors': errors, 'test_errors_raw': errors + 5,
            'epochs': 3, 'wall_seconds': 120.0,
            'minutes_to_error_avg': {'0.02': None, '0.015': None,
                                     '0.01': None},
            'generator_collapse_epoch': None, 'generator_recovered': None,
            'confusion_avg': counts.tolist()}


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
    assert ('| 100 | 3 | 92.0 +- 8.2 | 1/1, 2/2, 3/3 | 90, 101, 85 | '
            '95, 106, 90 | no |') in md
    assert '| -/-/-, -/-/-, -/-/- |' in md  # no milestone reached
    assert '| 100 | 2/2 | 101 | 106 | 1 as 7: 101 | 0 | -/-/- | no |' in md


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


def test_seeds_table_model_seeds_on_one_data_seed():
    """Runs that share a labeled subset (one data seed, several model
    seeds) are told apart by their model seed, also when they collapse."""
    rs = [fake_result(100, 1, e) for e in (210, 190, 170)]
    for r, seed in zip(rs, (1, 2, 3)):
        r.update(seed=seed, generator_collapse_epoch=None)
    rs[1].update(generator_collapse_epoch=8, generator_recovered=False)
    rows = batch.seeds_table(batch.sorted_results(rs[::-1]))
    row, = rows
    assert (row['seeds'], row['data_seeds']) == ([1, 2, 3], [1, 1, 1])
    assert row['test_errors'] == [210, 190, 170]
    assert row['collapsed'] == {'2/1': 'collapsed at epoch 8, not recovered'}
    md = batch.seeds_markdown(rows)
    assert ('| 190.0 +- 20.0 | 1/1, 2/1, 3/1 | 210, 190, 170 | 215, 195, '
            '175 | seed 2/1: collapsed at epoch 8, not recovered |') in md


def test_seeds_table_shows_where_each_runs_errors_sit():
    # the three largest confusion cells of each run and the errors
    # outside them, against a loop over the cells
    rng = numpy.random.RandomState(0)
    counts = rng.randint(0, 6, size=(10, 10))
    counts[numpy.arange(10), numpy.arange(10)] = 900
    counts[7, 9], counts[7, 2], counts[9, 8] = 60, 30, 20
    off = [(i, j) for i in range(10) for j in range(10) if i != j]
    errors = int(sum(counts[i, j] for i, j in off))
    r = fake_result(100, 1, errors)
    r['confusion_avg'] = counts.tolist()
    clean = fake_result(100, 2, 0)  # no errors at all
    rows = batch.seeds_table([clean, r])
    run, run_clean = rows[0]['per_run']
    assert run['largest_confusions'] == [(7, 9, 60), (7, 2, 30), (9, 8, 20)]
    outside = sum(counts[i, j] for i, j in off
                  if (i, j) not in ((7, 9), (7, 2), (9, 8)))
    assert run['errors_outside_largest'] == outside
    assert run_clean['largest_confusions'] == []
    md = batch.seeds_markdown(rows)
    assert ('| 100 | 1/1 | {} | {} | 7 as 9: 60, 7 as 2: 30, 9 as 8: 20 | '
            '{} | -/-/- | no |').format(errors, errors + 5, outside) in md
    assert '| 100 | 2/2 | 0 | 5 | none | 0 | -/-/- | no |' in md


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


def test_result_files_are_replaced_whole(tmp_path):
    # A run's result.json is read by the table of every other process in
    # the batch (CI once failed when a table read a half-written one): a
    # reader sees the old file or the new one, and a write that fails
    # leaves the old file as it was.
    import threading
    from gan import runs
    d = tmp_path / 'labels100_seed1'
    path = str(d / 'result.json')
    big = dict(fake_result(100, 1, 80), confusion=[[7] * 300] * 300)
    runs.write_json(path, big)
    stop, seen, errors = threading.Event(), [], []

    def rewrite():
        for i in range(60):
            runs.write_json(path, dict(big, test_errors=81 + i))
        stop.set()

    writer = threading.Thread(target=rewrite)
    writer.start()
    while not stop.is_set():
        try:
            seen.extend(r['test_errors']
                        for r in batch.finished_results(str(tmp_path)))
        except ValueError as e:  # a half-written file
            errors.append(e)
    writer.join()
    assert not errors and len(seen) > 0
    assert json.load(open(path))['test_errors'] == 140
    with pytest.raises(TypeError):
        runs.write_json(path, {'test_errors': 1, 'bad': object()})
    assert json.load(open(path))['test_errors'] == 140
    assert os.listdir(str(d)) == ['result.json']  # no temporary files


def test_ablation_rows_in_variant_order_from_every_process(tmp_path):
    ablation = load_script('ssl_ablation')
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
    assert '| 600 | 605 | no |' in md and '| 1900 | 1905 | collapsed at epoch 4, recovered |' in md


def load_script(name):
    import importlib
    return importlib.import_module('experiments.' + name)


# a child that records when it ran and its BLAS thread variables
CHILD = '''
import json, os, sys, time
t0 = time.time()
time.sleep(float(sys.argv[2]))
print('child', sys.argv[1])
json.dump({'start': t0, 'end': time.time(),
           'env': [os.environ.get(k) for k in sys.argv[4:]]},
          open(sys.argv[1], 'w'))
sys.exit(int(sys.argv[3]))
'''


def test_run_parallel_bounds_jobs_threads_and_reports_failures(tmp_path):
    import sys
    script = tmp_path / 'child.py'
    script.write_text(CHILD)
    commands = []
    for i, (sleep, status) in enumerate(((0.6, 0), (0.6, 0), (0.6, 3),
                                         (0.1, 0), (0.3, 0))):
        rec = str(tmp_path / 'rec{}.json'.format(i))
        commands.append(([sys.executable, str(script), rec, str(sleep),
                          str(status)] + list(jobs.THREAD_VARS),
                         str(tmp_path / 'logs' / 'c{}.log'.format(i))))
    lines, done_seen = [], []

    def on_done():  # a driver's table, rewritten: the child just reported
        # done has finished its work
        i = int(lines[-1].split('c')[-1].split('.')[0])
        rec = str(tmp_path / 'rec{}.json'.format(i))
        done_seen.append(i if os.path.exists(rec) else None)

    failed = jobs.run_parallel(commands, jobs=2, threads=3,
                                log=lines.append, poll=0.02, on_done=on_done)
    assert failed == [(commands[2][1], 3)]
    # called once after each success, not for the failure
    assert sorted(done_seen) == [0, 1, 3, 4]
    recs = [json.load(open(str(tmp_path / 'rec{}.json'.format(i))))
            for i in range(5)]
    for r in recs:  # every child ran with the BLAS threads bounded
        assert r['env'] == ['3', '3', '3']
    # never more than 2 at once (checked at each start), and 2 did overlap
    overlaps = [sum(1 for o in recs if o['start'] <= r['start'] < o['end'])
                for r in recs]
    assert max(overlaps) == 2
    # commands are started in order
    started = [line for line in lines if line.startswith('[start]')]
    assert [('rec{}.json'.format(i) in line) for i, line in
            enumerate(started)] == [True] * 5
    for i, (_, log_path) in enumerate(commands):
        assert open(log_path).read() == 'child {}\n'.format(
            tmp_path / 'rec{}.json'.format(i))
    assert sum('[fail ]' in line for line in lines) == 1
    assert sum('[done ]' in line for line in lines) == 4


def test_threads_per_job_shares_the_cores():
    none = {}
    assert jobs.threads_per_job(2, cores=2, environ=none) == 1
    assert jobs.threads_per_job(2, cores=16, environ=none) == 8
    assert jobs.threads_per_job(3, cores=16, environ=none) == 5
    assert jobs.threads_per_job(4, cores=2, environ=none) == 1
    # a count the user set wins (a shared machine); junk is ignored
    assert jobs.threads_per_job(1, cores=16, environ={
        'OPENBLAS_NUM_THREADS': '1'}) == 1
    assert jobs.threads_per_job(1, cores=16, environ={
        'OMP_NUM_THREADS': '3'}) == 3
    assert jobs.threads_per_job(2, cores=16, environ={
        'OPENBLAS_NUM_THREADS': 'many'}) == 8


def test_ssl_table_jobs_runs_entries_in_children(tmp_path, capsys):
    """Two entries at once in child processes: one with a bad label count
    fails with its one-line error in its console.log, the other finishes,
    and the table holds it; rerunning skips the finished one."""
    from test_mnist_data import make_idx_dir
    data = str(tmp_path / 'idx')
    make_idx_dir(data, n_train=600, n_test=200)
    table = load_script('ssl_table')
    out = str(tmp_path / 'table')
    argv = ['--labels', '15', '20', '--seeds', '3', '--out', out, '--jobs',
            '2', '--', '--data-dir', data, '--epochs', '1', '--batchsize',
            '50', '--lr-decay-epochs', '0']
    with pytest.raises(SystemExit) as e:
        table.main(argv)
    assert '1 of 2 runs failed' in str(e.value)
    bad = open(os.path.join(out, 'labels15_seed3', 'console.log')).read()
    assert 'must be a positive multiple' in bad
    assert 'Traceback' not in bad
    result = json.load(open(os.path.join(out, 'labels20_seed3',
                                         'result.json')))
    assert (result['labels'], result['seed'], result['data_seed'],
            result['iterations']) == (20, 3, 3, 12)
    assert '[run ]' in open(os.path.join(out, 'labels20_seed3',
                                         'console.log')).read()
    rows = json.load(open(os.path.join(out, 'table.json')))
    assert [(r['labels'], r['data_seeds']) for r in rows] == [(20, [3])]
    # again, only the good entry: nothing left to run
    capsys.readouterr()
    table.main(argv[:1] + argv[2:])
    assert '[start]' not in capsys.readouterr().out


def test_ssl_table_data_seed_varies_only_the_model_seed(tmp_path):
    """--data-seed D: every entry trains on data seed D's labeled subset
    (the same labeled.png as the plain entry of seed D, another than data
    seed 1's) with its own model seed, in folders labelsL_seedS_dataD,
    also when the entries run in child processes."""
    from test_mnist_data import make_idx_dir
    from mnist_ssl import data as mdata
    from mnist_ssl import report as sreport
    data = str(tmp_path / 'idx')
    make_idx_dir(data, n_train=600, n_test=200)
    table = load_script('ssl_table')
    out = str(tmp_path / 'table')
    common = ['--', '--data-dir', data, '--epochs', '1', '--batchsize', '50',
              '--lr-decay-epochs', '0']
    table.main(['--labels', '20', '--seeds', '1', '2', '--data-seed', '3',
                '--out', out, '--jobs', '2'] + common)
    table.main(['--labels', '20', '--seeds', '3', '--out', out] + common)
    names = ['labels20_seed1_data3', 'labels20_seed2_data3', 'labels20_seed3']
    results = [json.load(open(os.path.join(out, n, 'result.json')))
               for n in names]
    assert [(r['seed'], r['data_seed']) for r in results] == [
        (1, 3), (2, 3), (3, 3)]
    losses = [json.load(open(os.path.join(out, n, 'log')))[-1]['gen/loss']
              for n in names]
    assert len(set(losses)) == 3  # three model seeds, three trainings
    pngs = [open(os.path.join(out, n, 'labeled.png'), 'rb').read()
            for n in names]
    assert pngs[0] == pngs[1] == pngs[2]
    d = mdata.load(data)
    other = str(tmp_path / 'data1.png')
    sreport.labeled_grid(other, d.x_pool, d.y_pool,
                            mdata.labeled_subset(d.y_pool, 20, 1))
    assert open(other, 'rb').read() != pngs[0]
    row, = json.load(open(os.path.join(out, 'table.json')))
    assert (row['seeds'], row['data_seeds']) == ([1, 2, 3], [3, 3, 3])


def test_ssl_ablation_jobs_and_unknown_variant(tmp_path, capsys):
    from test_mnist_data import make_idx_dir
    data = str(tmp_path / 'idx')
    make_idx_dir(data, n_train=600, n_test=200)
    ablation = load_script('ssl_ablation')
    out = str(tmp_path / 'abl')
    with pytest.raises(SystemExit) as e:
        ablation.main(['--only', 'defaults', 'paired', '--out', out])
    assert e.value.code == 2
    assert 'unknown variant paired' in capsys.readouterr().err
    ablation.main(['--only', 'fm-labeled', 'defaults', '--epochs', '1',
                   '--labels', '20', '--jobs', '2', '--out', out,
                   '--data-dir', data, '--batchsize', '50'])
    rows = json.load(open(os.path.join(out, 'ablation.json')))
    assert [r['name'] for r in rows] == ['defaults', 'fm-labeled']
    result = json.load(open(os.path.join(out, 'fm-labeled', 'result.json')))
    assert result['options']['fm_target'] == 'labeled'
    assert result['options']['data_dir'] == data
    assert result['epochs'] == 1


def test_a_folder_of_other_options_is_refused_not_skipped(tmp_path, capsys):
    """A batch rerun with other options must not skip (or continue) the
    folder's run and table it as the configuration asked for: one line
    naming each differing option, compared as the run records them (the
    default --lr-decay-epochs follows --epochs).  Options that change only
    how the run is executed or reported do not count."""
    from gan import options as gopt
    out = str(tmp_path / 'labels20_seed3')
    os.makedirs(out)
    saved = gopt.to_dict(sopt.resolve(sopt.parser().parse(
        ['--labels', '20', '--seed', '3', '--data-seed', '3', '--out', out,
         '--epochs', '6'])))
    saved.update(keep_every=0, data_source='idx')
    with open(os.path.join(out, 'options.json'), 'w') as f:
        json.dump(saved, f)
    with open(os.path.join(out, 'result.json'), 'w') as f:
        json.dump(fake_result(20, 3, 1500), f)
    asked = dict(saved, epochs=20, ema_rate=1e-4, keep_every=20,
                 progress=False, device='0', lr_decay_epochs=None)
    del asked['data_source']
    with pytest.raises(Exception) as e:
        batch.run_one(asked, log=lambda m: None)
    assert str(e.value) == (
        '{} holds a run with other options: --ema-rate 0.001 (asked: '
        '0.0001), --epochs 6 (asked: 20), --lr-decay-epochs 2 (asked: 7); '
        'give the same flags, or choose another --out'.format(out))
    with pytest.raises(Exception, match=r'--gen-init glorot \(asked: lecun'):
        batch.run_one(dict(asked, epochs=6, ema_rate=saved['ema_rate'],
                           gen_init='lecun'), log=lambda m: None)
    same = dict(asked, epochs=6, ema_rate=saved['ema_rate'])
    assert batch.run_one(same, log=lambda m: None)['test_errors'] == 1500
    # the scripts: one line, exit status 2, before any child starts
    table = load_script('ssl_table')
    for n_jobs in ('1', '2'):
        with pytest.raises(SystemExit) as e:
            table.main(['--labels', '20', '--seeds', '3', '--out',
                        str(tmp_path), '--jobs', n_jobs, '--', '--epochs', '9'])
        assert e.value.code == 2
        err = capsys.readouterr()
        assert err.err.count('\n') == 1 and '--epochs 6 (asked: 9)' in err.err
        assert '[start]' not in err.out


def test_ssl_table_branches_equal_runs_of_the_new_schedule(tmp_path, capsys):
    """--branch-from SRC --branch-epoch 1: each entry continues its own
    kept epoch-1 snapshot of SRC (constant rate) with the schedule given
    after --, and ends with the parameters and errors of a run of that
    schedule from the start; a missing source is one line, before any
    run starts; --resume after -- is refused."""
    from test_mnist_data import make_idx_dir
    data = str(tmp_path / 'idx')
    make_idx_dir(data, n_train=600, n_test=200)
    table = load_script('ssl_table')
    common = ['--data-dir', data, '--batchsize', '50']
    src, br, ref = (str(tmp_path / n) for n in ('src', 'branch', 'ref'))
    seeds = ['--labels', '20', '--seeds', '1', '2']
    table.main(seeds + ['--out', src, '--jobs', '2', '--'] + common
               + ['--epochs', '2', '--lr-decay-epochs', '0',
                  '--keep-every', '1'])
    decay = ['--epochs', '3', '--lr-decay-epochs', '2']
    capsys.readouterr()
    # seed 3 has no source: nothing runs, not even seeds 1 and 2
    for n_jobs in ('1', '2'):
        with pytest.raises(SystemExit) as e:
            table.main(['--labels', '20', '--seeds', '1', '3', '--out', br,
                        '--jobs', n_jobs, '--branch-from', src,
                        '--branch-epoch', '1', '--'] + common + decay)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1
        assert 'labels20_seed3/snapshot_epoch_001: no such snapshot' in err
        assert '--keep-every 1' in err
        assert not os.path.exists(os.path.join(br, 'labels20_seed1'))
    for bad in (['--branch-from', src], ['--', '--resume', 'x']):
        with pytest.raises(SystemExit) as e:
            table.main(seeds + ['--out', br] + bad)
        assert e.value.code == 2
    capsys.readouterr()
    table.main(seeds + ['--out', br, '--jobs', '2', '--branch-from', src,
                        '--branch-epoch', '1', '--'] + common + decay)
    # children, like the source and the branches: one BLAS thread each
    # (another thread count sums in another order)
    table.main(seeds + ['--out', ref, '--jobs', '2', '--'] + common + decay)
    for name in ('labels20_seed1', 'labels20_seed2'):
        a = os.path.join(br, name)
        b = os.path.join(ref, name)
        assert '(branch of {})'.format(os.path.join(
            src, name, 'snapshot_epoch_001')) in open(
                os.path.join(a, 'console.log')).read()
        ra, rb = (json.load(open(os.path.join(f, 'result.json')))
                  for f in (a, b))
        assert ra['iterations'] == rb['iterations'] == 36
        assert (ra['test_errors'], ra['test_errors_raw']) == (
            rb['test_errors'], rb['test_errors_raw'])
        with numpy.load(os.path.join(a, 'snapshot_iter_36')) as fa, \
                numpy.load(os.path.join(b, 'snapshot_iter_36')) as fb:
            keys = [k for k in fa.files if k.startswith('updater/model:')]
            assert len(keys) > 10
            for k in keys:
                numpy.testing.assert_allclose(fa[k], fb[k], rtol=1e-6,
                                              atol=1e-7, err_msg=k)
    # the branches' own table; a rerun skips them (their sources may be gone)
    rows = json.load(open(os.path.join(br, 'table.json')))
    assert [(r['labels'], r['seeds']) for r in rows] == [(20, [1, 2])]
    import shutil
    shutil.rmtree(src)
    capsys.readouterr()
    table.main(seeds + ['--out', br, '--branch-from', src,
                        '--branch-epoch', '1', '--'] + common + decay)
    assert capsys.readouterr().out.count('[skip]') == 2
