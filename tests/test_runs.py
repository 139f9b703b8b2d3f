"""gan.runs: the --out / --resume rule and presets of every command line."""
import os

import pytest

from gan import runs


def touch(path):
    with open(path, 'w') as f:
        f.write('{}')
    return path


def test_prepare_out_fresh_folder_is_made(tmp_path):
    out = str(tmp_path / 'a' / 'b')
    assert runs.prepare_out(out) is None
    assert os.path.isdir(out)
    # an empty existing folder (or one of other files) is no run
    touch(os.path.join(out, 'notes.txt'))
    assert runs.prepare_out(out) is None


@pytest.mark.parametrize('marker', ['options.json', 'log', 'result.json',
                                    'snapshot_iter_30'])
def test_prepare_out_refuses_a_folder_holding_a_run(tmp_path, marker):
    out = str(tmp_path / 'run')
    os.makedirs(out)
    touch(os.path.join(out, marker))
    with pytest.raises(runs.UsageError) as e:
        runs.prepare_out(out)
    msg = str(e.value)
    assert '\n' not in msg
    assert msg == ('{} already holds a run: continue it with --resume auto '
                   '(or a snapshot path), or choose another --out'.format(out))


def test_prepare_out_auto_picks_the_latest_snapshot(tmp_path):
    out = str(tmp_path / 'run')
    # no folder yet, and a folder without snapshots: a fresh start
    assert runs.prepare_out(out, 'auto') is None
    touch(os.path.join(out, 'options.json'))
    assert runs.prepare_out(out, 'auto') is None
    for n in (600, 1200, 90):  # by iteration, not by name
        touch(os.path.join(out, 'snapshot_iter_{}'.format(n)))
    touch(os.path.join(out, 'snapshot_iter_7.tmp'))
    touch(os.path.join(out, 'snapshot_epoch_003'))
    assert runs.prepare_out(out, 'auto') == os.path.join(
        out, 'snapshot_iter_1200')


def test_prepare_out_snapshot_path_must_exist(tmp_path):
    src = str(tmp_path / 'src')
    os.makedirs(src)
    snap = touch(os.path.join(src, 'snapshot_iter_12'))
    out = str(tmp_path / 'branch')
    assert runs.prepare_out(out, snap) == snap  # a branch in a new folder
    assert os.path.isdir(out)
    missing = os.path.join(src, 'snapshot_iter_13')
    with pytest.raises(runs.UsageError, match='no such snapshot file'):
        runs.prepare_out(str(tmp_path / 'other'), missing)
    assert not os.path.exists(str(tmp_path / 'other'))  # nothing made


def test_prepare_out_uncreatable_path_is_one_line(tmp_path):
    blocker = touch(str(tmp_path / 'a_file'))
    for resume in (None, 'auto'):
        with pytest.raises(runs.UsageError) as e:
            runs.prepare_out(os.path.join(blocker, 'run'), resume)
        msg = str(e.value)
        assert '\n' not in msg and 'cannot create the folder' in msg
        assert msg.startswith('--out {}'.format(os.path.join(blocker, 'run')))


def test_usage_error_is_a_value_error():
    assert issubclass(runs.UsageError, ValueError)
    from gan import datasets
    from mnist_ssl import data, experiment
    for cls in (datasets.DataError, data.DataError, experiment.OptionError):
        assert issubclass(cls, runs.UsageError)


def toy_parser(presets, default='a'):
    p = runs.PresetParser(prog='toy', presets=presets, default_preset=default)
    p.add_argument('--width', type=int, default=1)
    p.add_argument('--form', choices=['x', 'y', 'z'], default='x')
    p.add_argument('--fast', action='store_true')
    return p


def test_preset_values_are_defaults_that_flags_override():
    presets = {'a': {}, 'b': {'width': 7, 'form': 'y', 'fast': True},
               'c': {'width': 3}}
    p = toy_parser(presets)
    assert vars(p.parse_args([])) == {'preset': 'a', 'width': 1,
                                      'form': 'x', 'fast': False}
    assert vars(p.parse_args(['--preset', 'b'])) == {
        'preset': 'b', 'width': 7, 'form': 'y', 'fast': True}
    # explicit flags win, before or after --preset
    assert vars(p.parse_args(['--width', '2', '--preset', 'b'])) == {
        'preset': 'b', 'width': 2, 'form': 'y', 'fast': True}
    # the same parser again: c's values over the base defaults, none of b's
    assert vars(p.parse_args(['--preset', 'c'])) == {
        'preset': 'c', 'width': 3, 'form': 'x', 'fast': False}
    assert p.parse_args([]).width == 1
    # --help shows the chosen preset's defaults
    p.parse_args(['--preset', 'b'])
    assert p.get_default('width') == 7


def test_preset_errors(capsys):
    p = toy_parser({'a': {}, 'b': {'width': 7}})
    with pytest.raises(SystemExit) as e:
        p.parse_args(['--preset', 'nope'])
    assert e.value.code == 2
    assert "toy: error: argument --preset: invalid choice: 'nope'" in \
        capsys.readouterr().err
    with pytest.raises(ValueError, match='unknown options: colour'):
        toy_parser({'a': {'colour': 'red'}}).parse_args([])
    with pytest.raises(ValueError, match='default preset'):
        toy_parser({'b': {}}, default='a')


def test_parse_device():
    assert runs.parse_device('-1').xp.__name__ == 'numpy'
    assert runs.parse_device(-1).xp.__name__ == 'numpy'
    assert runs.parse_device('@numpy').xp.__name__ == 'numpy'
    with pytest.raises(runs.UsageError, match='--device bogus'):
        runs.parse_device('bogus')


def test_finished_result(tmp_path):
    assert runs.finished_result(str(tmp_path)) is None
    runs.write_json(str(tmp_path / 'result.json'), {'test_errors': 93})
    assert runs.finished_result(str(tmp_path)) == {'test_errors': 93}

