"""gan.runs: the --out / --resume rule of every command line, the
start-or-resume decision and the same-options check."""
import os

import pytest

from mnist_ssl import options as sopt
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
    from mnist_ssl import data
    for cls in (datasets.DataError, data.DataError, sopt.OptionError):
        assert issubclass(cls, runs.UsageError)


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



def test_start_reports_a_finished_run_and_refuses_other_options(tmp_path):
    out = str(tmp_path / 'run')
    # a fresh folder: no snapshot, nothing finished
    assert runs.start(out, None) == (None, None)
    runs.write_json(os.path.join(out, 'options.json'), {'lr': 0.1, 'out': out})
    touch(os.path.join(out, 'snapshot_iter_7'))
    # a folder holding a run: refused without --resume, continued with auto
    with pytest.raises(runs.UsageError, match='already holds a run'):
        runs.start(out, None)
    assert runs.start(out, 'auto') == (os.path.join(out, 'snapshot_iter_7'),
                                       None)
    # a run of other options is refused when the caller asks for the same
    with pytest.raises(runs.UsageError) as e:
        runs.start(out, 'auto', same_as={'lr': 0.2, 'out': 'elsewhere'},
                   ignore=('out',))
    assert str(e.value) == ('{} holds a run with other options: --lr 0.1 '
                            '(asked: 0.2); give the same flags, or choose '
                            'another --out'.format(out))
    # finished: auto returns its result instead of a snapshot
    runs.write_json(os.path.join(out, 'result.json'), {'errors': 3})
    assert runs.start(out, 'auto') == (None, {'errors': 3})


def test_snapshot_hint_names_the_differing_model_options(tmp_path):
    out = str(tmp_path / 'run')
    runs.write_json(os.path.join(out, 'options.json'),
                    {'ch': 64, 'size': 32, 'lr': 0.1})
    path = os.path.join(out, 'snapshot_iter_1')
    hint = runs.snapshot_hint(path, {'ch': 32, 'size': 32, 'lr': 0.5},
                              ('ch', 'size'))
    assert hint == ' (its run has --ch 64 (asked: 32))'
    assert runs.snapshot_hint(path, {'ch': 64, 'size': 32}, ('ch',)) == ''


class FakeRank:
    """A communicator's rank and broadcast, for rank 0 of two."""
    rank, size = 0, 2

    def __init__(self):
        self.sent = []

    def bcast_obj(self, obj):
        self.sent.append(obj)
        return obj


def test_root_only_broadcasts_the_value_or_the_error():
    comm = FakeRank()
    assert runs.root_only(comm, lambda: 5) == 5
    assert comm.sent == [(5, None)]

    def bad():
        raise runs.UsageError('no such folder')
    with pytest.raises(runs.UsageError, match='no such folder'):
        runs.root_only(comm, bad)
    assert isinstance(comm.sent[-1][1], runs.UsageError)
    assert runs.is_root(None) and runs.is_root(comm)
