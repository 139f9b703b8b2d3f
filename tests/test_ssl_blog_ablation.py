"""experiments.ssl_blog_ablation: its rows are the post's preset with one
switch each, a switch that changes nothing is left out, and its table is
made from the runs' results."""
import json
import os

from experiments import ssl_blog_ablation as abl

TINY = ['--epochs', '1', '--seeds', '1', '--labels', '20',
        '--iters-per-epoch', '1', '--batchsize', '10', '--pool-size', '600',
        '--no-validation', '--no-progress']


def saved(out, row):
    with open(os.path.join(out, row, 'seed1', 'options.json')) as f:
        o = json.load(f)
    return {k: v for k, v in o.items() if k not in (
        'out', 'data_source', 'resumed_from', 'networks')}


def test_rows_switch_one_choice_and_the_table_reads_them(idx, tmp_path,
                                                         capsys):
    out = str(tmp_path / 'abl')
    abl.main(TINY + ['--data-dir', idx, '--out', out, '--only', 'blog',
                     'fake-term', 'adam'])
    base = saved(out, 'blog')
    assert (base['preset'], base['fake_term']) == ('blog', 'log-d')
    term = saved(out, 'fake-term')
    assert {k for k in base if base[k] != term[k]} == {'fake_term'}
    adam = saved(out, 'adam')
    assert {k for k in base if base[k] != adam[k]} == {
        'adam', 'lr', 'lr_decay_epochs'}
    assert (adam['adam'], adam['lr'], adam['lr_decay_epochs']) == (
        'eps-in-sqrt', 0.003, 1)
    rows = json.load(open(os.path.join(out, 'ablation.json')))
    assert [r['name'] for r in rows] == ['blog', 'fake-term', 'adam']
    r = json.load(open(os.path.join(out, 'fake-term', 'seed1',
                                    'result.json')))
    assert rows[1]['test_errors'] == [r['test_errors']]
    assert '| fake-term |' in open(os.path.join(out, 'ablation.md')).read()


def test_a_switch_the_base_already_has_is_left_out():
    args = type('A', (), dict(epochs=20, seeds=[1], labels=100,
                              out='/nonexistent', preset='blog',
                              ema_rate=1e-3))()
    assert 'fake-term' in abl.active_singles(args, [])
    assert 'fake-term' not in abl.active_singles(
        args, ['--fake-term', 'log-one-minus-d'])
    args.preset = 'blog-2017'
    names = abl.active_singles(args, [])
    assert 'fake-term' not in names and 'adam' in names


def test_archive_keeps_finished_runs_and_brings_them_back(idx, tmp_path,
                                                          capsys):
    out, keep = str(tmp_path / 'abl'), str(tmp_path / 'kept')
    argv = TINY + ['--data-dir', idx, '--out', out, '--archive', keep,
                   '--only', 'blog']
    abl.main(argv)
    kept = os.path.join(keep, 'blog', 'seed1')
    assert sorted(os.listdir(kept)) == ['log', 'options.json',
                                        'result.json']
    assert os.path.isfile(os.path.join(keep, 'ablation.md'))
    first = json.load(open(os.path.join(kept, 'result.json')))
    # another machine: OUT is gone, the archive is back in place; the run
    # is not trained again and the table is made from it
    import shutil
    shutil.rmtree(out)
    capsys.readouterr()
    abl.main(argv)
    assert 'iteration' not in capsys.readouterr().out  # no training
    assert sorted(os.listdir(os.path.join(out, 'blog', 'seed1'))) == [
        'log', 'options.json', 'result.json']  # no snapshot either
    assert json.load(open(os.path.join(out, 'blog', 'seed1',
                                       'result.json'))) == first
    rows = json.load(open(os.path.join(out, 'ablation.json')))
    assert rows[0]['test_errors'] == [first['test_errors']]
