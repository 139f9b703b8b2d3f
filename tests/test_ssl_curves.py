"""mnist_ssl.curves on constructed run logs."""
import json
import os

import pytest

from mnist_ssl import curves


def write_log(folder, errors, minutes_per_epoch=2.0, key='test/error_avg',
              every=1):
    os.makedirs(folder, exist_ok=True)
    log = []
    for i, err in enumerate(errors, start=1):
        entry = {'epoch': i, 'iteration': 600 * i,
                 'elapsed_time': 60.0 * minutes_per_epoch * i}
        if i % every == 0:
            entry[key] = err / 10000.0
            entry[key.replace('avg', 'raw')] = (err + 7) / 10000.0
        log.append(entry)
    with open(os.path.join(folder, 'log'), 'w') as f:
        json.dump(log, f)


def test_short_names_drop_the_common_parts():
    assert curves.short_names(['r/table/labels100_seed1',
                                'r/paper/labels100_seed1']) == [
        'table', 'paper']
    assert curves.short_names(['r/a/x', 'r/b']) == ['a/x', 'b']
    assert curves.short_names(['r/a/labels20_seed1']) == ['labels20_seed1']


def test_table_plot_and_milestones(tmp_path):
    a = str(tmp_path / 'sched' / 'fast')
    b = str(tmp_path / 'sched' / 'slow')
    errs_a = [2500, 900, 210, 160, 140, 99]
    errs_b = [3000, 2000, 1500, 1000, 800, 400, 300, 200]
    write_log(a, errs_a, minutes_per_epoch=1.5)
    write_log(b, errs_b, minutes_per_epoch=3.0, every=2)
    out = str(tmp_path / 'cmp' / 'both')
    rows = curves.main([a, b, '--epochs', '2', '3', '4', '8', '--out', out])
    ra, rb = rows
    assert (ra['name'], rb['name']) == ('fast', 'slow')
    assert ra['errors_at_epochs'] == [900, 210, 160, None]
    # the slow run is evaluated every second epoch only
    assert rb['errors_at_epochs'] == [2000, None, 1000, 200]
    assert (ra['last_epoch'], ra['last_errors'], ra['last_minutes']) == (
        6, 99, 9.0)
    # first evaluation at or below 2 % / 1.5 % / 1 %, in minutes
    assert ra['minutes_to_error'] == [6.0, 7.5, 9.0]
    assert rb['minutes_to_error'] == [24.0, None, None]
    for ext in ('.png', '.md', '.json'):
        assert os.path.getsize(out + ext) > 0
    md = open(out + '.md').read()
    assert '| fast | 900 | 210 | 160 | - | 99 (6, 9) | 6 / 8 / 9 |' in md
    raw = curves.compare([a], epochs=[3], which='raw')
    assert raw[0]['errors_at_epochs'] == [217]


def test_validation_runs_are_read_by_their_key(tmp_path):
    run = str(tmp_path / 'v')
    write_log(run, [500, 300], key='validation/error_avg')
    row, = curves.compare([run], epochs=[2])
    assert row['key'] == 'validation/error_avg'
    assert row['errors_at_epochs'] == [300]


def test_on_picks_the_set_of_a_run_that_has_both(tmp_path, capsys):
    run = str(tmp_path / 'both')
    write_log(run, [500, 300], key='validation/error_avg')
    log = json.load(open(os.path.join(run, 'log')))
    for e, err in zip(log, (700, 400)):
        e['test/error_avg'] = err / 10000.0
    json.dump(log, open(os.path.join(run, 'log'), 'w'))
    assert curves.compare([run], epochs=[2])[0]['errors_at_epochs'] == [400]
    row, = curves.main([run, '--epochs', '2', '--on', 'validation',
                        '--blog-line', '--out', str(tmp_path / 'o')])
    assert row['errors_at_epochs'] == [300]
    only_test = str(tmp_path / 'test_only')
    write_log(only_test, [500])
    with pytest.raises(SystemExit):
        curves.main([only_test, '--on', 'validation', '--out',
                     str(tmp_path / 'o2')])
    err = capsys.readouterr().err
    assert 'no validation errors' in err and err.count('\n') == 1


@pytest.mark.parametrize('content, message', [
    (None, 'no log'), ('{"epoch": ', 'not JSON'),
    ('[{"epoch": 1, "elapsed_time": 3}]', 'no evaluated epoch')])
def test_bad_run_folders_end_with_one_line(tmp_path, capsys, content,
                                            message):
    run = tmp_path / 'run'
    run.mkdir()
    if content is not None:
        (run / 'log').write_text(content)
    with pytest.raises(SystemExit) as e:
        curves.main([str(run), '--out', str(tmp_path / 'o')])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count('\n') == 1


def test_port_curve_row_and_plot(tmp_path):
    run = str(tmp_path / 'paper')
    write_log(run, [3200, 2100, 1500], minutes_per_epoch=1.2)
    out = str(tmp_path / 'cmp')
    rows = curves.main([run, '--epochs', '1', '2', '20', '100',
                         '--port-curve', '--out', out])
    port = rows[-1]
    assert port['name'] == curves.PORT_NAME
    # the published log: 30.6 % at epoch 1, 5.6 % at 20, 1.11 % at 100
    assert port['errors_at_epochs'] == [3060, None, 560, 111]
    md = open(out + '.md').read()
    assert '| {} | 3060 | - | 560 | 111 | 82 (300, -) | - / - / - |'.format(
        curves.PORT_NAME) in md
    assert '| paper | 3200 | 2100 | - | - | 1500 (3, 4) |' in md
    assert os.path.getsize(out + '.png') > 0
    assert json.load(open(out + '.json'))[-1]['folder'] is None
