"""The CUDA code paths on the stand-in GPU (tests/standin_gpu.py), in the
CPU suite: every command line takes ``--device N`` and runs its model
there, every array and random draw lands on the model's GPU (``--device
1`` with GPU 0 current at the start, as on a machine with two GPUs), a
resumed GPU run repeats the uninterrupted one, and two ranks train with
``pure_nccl`` on their own GPUs.  A numpy call on a device array, a mix of
host and device arrays, a device array handed to PIL or matplotlib or a
host array fed to a model on the device fails these tests (the stand-in's
own test, tests/test_standin_gpu.py, shows that it does)."""
import json
import os
import subprocess
import sys

import numpy
import pytest

import train_dcgan
import train_ssl
from gan import random as grandom
from test_animeface_data import TINY, faces  # noqa: F401 (fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SSL = ['--batchsize', '50', '--lr-decay-epochs', '0', '--no-progress',
       '--labels', '20']


def ssl_flags(idx, *extra):
    return SSL + ['--data-dir', idx] + [str(a) for a in extra]


def read_json(path):
    with open(path) as f:
        return json.load(f)


def model_arrays(path, prefix):
    """The arrays of a trainer snapshot under ``prefix``."""
    with numpy.load(path) as f:
        return {k: f[k] for k in f.files if k.startswith(prefix)}


def assert_same_arrays(a, b):
    assert sorted(a) == sorted(b) and len(a) > 5
    for k in a:
        numpy.testing.assert_array_equal(a[k], b[k], err_msg=k)


def gpu_record(out):
    """The GPU entries of a run folder's machines.jsonl."""
    with open(os.path.join(out, 'machines.jsonl')) as f:
        return [json.loads(line).get('gpu') for line in f]


# --------------------------------------------------------------------------
# Semi-supervised MNIST
# --------------------------------------------------------------------------
@pytest.mark.parametrize('extra', [[], ['--vat-weight', '1'],
                                   ['--minibatch-discrimination']],
                         ids=['default', 'vat', 'mbd'])
def test_ssl_on_the_second_gpu(standin, idx, tmp_path, extra):
    out = str(tmp_path / 'run')
    with standin.recording() as log:
        train_ssl.main(ssl_flags(idx, '--device', 1, '--iters-per-epoch', 3,
                                 '--epochs', 1, '--out', out, *extra))
    # every allocation and draw of the run (data, noise, latents,
    # evaluation) on GPU 1, though GPU 0 was current at the start
    assert log and {gpu for _, gpu in log} == {1}
    assert ('random', 1) not in log  # the draws are gan.random's
    result = read_json(os.path.join(out, 'result.json'))
    assert result['iterations'] == 3
    record = gpu_record(out)
    assert len(record) == 1 and record[0]['id'] == 1
    assert record[0]['name'] == 'stand-in GPU'
    assert record[0]['cudnn']['use_cudnn'] == 'never'
    assert result['machine']['gpu']['id'] == 1
    if not extra:  # the same run on GPU 0: the same numbers
        other = str(tmp_path / 'gpu0')
        train_ssl.main(ssl_flags(idx, '--device', 0, '--iters-per-epoch', 3,
                                 '--epochs', 1, '--out', other))
        assert_same_arrays(
            model_arrays(os.path.join(out, 'snapshot_iter_3'), 'updater/'),
            model_arrays(os.path.join(other, 'snapshot_iter_3'),
                         'updater/'))


def test_ssl_blog_preset_on_the_gpu(standin, tmp_path):
    """The blog's networks, Adam and validation split (the real MNIST)."""
    out = str(tmp_path / 'blog')
    with standin.recording() as log:
        train_ssl.main(['--preset', 'blog', '--device', '1', '--pool-size',
                        '600', '--labels', '20', '--batchsize', '50',
                        '--iters-per-epoch', '2', '--epochs', '1',
                        '--no-progress', '--out', out])
    assert log and {gpu for _, gpu in log} == {1}
    result = read_json(os.path.join(out, 'result.json'))
    assert result['evaluated_on'] == 'validation'
    assert 'test_set_errors' in result


def test_ssl_resume_on_the_gpu_is_exact(standin, idx, tmp_path, monkeypatch):
    """3 + 3 iterations resumed from a snapshot == 6 in one go, the GPU
    random stream included; without its saved position the resumed run
    differs."""
    straight, first = str(tmp_path / 'straight'), str(tmp_path / 'first')
    flags = ['--device', 1, '--iters-per-epoch', 3]
    train_ssl.main(ssl_flags(idx, *flags, '--epochs', 2, '--out', straight))
    train_ssl.main(ssl_flags(idx, *flags, '--epochs', 1, '--out', first))
    snap = os.path.join(first, 'snapshot_iter_3')
    state = json.loads(bytes(model_arrays(snap, 'extensions/random_state')[
        'extensions/random_state/state']).decode())
    assert state['gpu'][1] > 0  # the GPU stream's position is saved
    second = str(tmp_path / 'second')
    train_ssl.main(ssl_flags(idx, *flags, '--epochs', 2, '--out', second,
                             '--resume', snap))
    a = model_arrays(os.path.join(straight, 'snapshot_iter_6'), 'updater/')
    assert_same_arrays(a, model_arrays(
        os.path.join(second, 'snapshot_iter_6'), 'updater/'))
    # negative control: a resume that loses the GPU stream's position
    set_state = grandom.set_state
    monkeypatch.setattr(grandom, 'set_state', lambda s: set_state(
        {k: v for k, v in s.items() if k != 'gpu'}))
    lost = str(tmp_path / 'lost')
    train_ssl.main(ssl_flags(idx, *flags, '--epochs', 2, '--out', lost,
                             '--resume', snap))
    b = model_arrays(os.path.join(lost, 'snapshot_iter_6'), 'updater/')
    assert any(not numpy.array_equal(a[k], b[k]) for k in a)


def test_ssl_evaluate_on_the_gpu(standin, idx, tmp_path):
    from mnist_ssl import evaluate
    out = str(tmp_path / 'run')
    train_ssl.main(ssl_flags(idx, '--device', 1, '--iters-per-epoch', 2,
                             '--epochs', 1, '--out', out))
    grid = str(tmp_path / 'errors.png')
    gpu = evaluate.main([out, '--device', '1', '--errors-grid', grid])
    cpu = evaluate.main([out, '--device', '-1'])  # the host's computation
    assert gpu['errors_raw'] == cpu['errors_raw']
    assert gpu['confusion_avg'] == cpu['confusion_avg']
    assert os.path.exists(grid) == bool(gpu['errors_grid_rows'])


# --------------------------------------------------------------------------
# DCGAN, analogy, evaluate, compare
# --------------------------------------------------------------------------
def dcgan(faces, out, *extra):
    return train_dcgan.main(['--data', faces, '--out', str(out)] + TINY
                            + [str(a) for a in extra])


@pytest.mark.parametrize('extra', [
    [], ['--minibatch-discrimination', '--feature-matching', 'blog'],
    ['--preset', 'blog']], ids=['default', 'mbd-fm', 'blog'])
def test_dcgan_on_the_second_gpu(standin, faces, tmp_path, extra):
    out = tmp_path / 'run'
    with standin.recording() as log:
        dcgan(faces, out, '--device', 1, '--iterations', 2,
              '--snapshot-interval', 2, '--grid-interval', 1, *extra)
    assert log and {gpu for _, gpu in log} == {1}
    assert (out / 'samples_00000001.png').exists()
    assert read_json(str(out / 'result.json'))['machine']['gpu']['id'] == 1
    assert gpu_record(str(out))[0]['id'] == 1


def test_dcgan_resume_on_the_gpu_is_exact(standin, faces, tmp_path):
    flags = ['--device', 1, '--minibatch-discrimination']
    dcgan(faces, tmp_path / 'straight', *flags, '--iterations', 4,
          '--snapshot-interval', 2)
    dcgan(faces, tmp_path / 'first', *flags, '--iterations', 2)
    dcgan(faces, tmp_path / 'second', *flags, '--iterations', 4,
          '--snapshot-interval', 2, '--resume',
          tmp_path / 'first' / 'snapshot_iter_2')
    assert_same_arrays(
        model_arrays(str(tmp_path / 'straight' / 'snapshot_iter_4'),
                     'updater/'),
        model_arrays(str(tmp_path / 'second' / 'snapshot_iter_4'),
                     'updater/'))


def test_analogy_and_evaluate_on_the_gpu(standin, faces, tmp_path):
    """The same pictures and metrics as on the host, computed on GPU 1."""
    from PIL import Image
    from animeface import analogy, evaluate
    run = tmp_path / 'run'
    dcgan(faces, run, '--device', 1, '--iterations', 2)
    snap = str(run / 'snapshot_iter_2')
    for device in ('1', '-1'):
        analogy.main([snap, '--rows', '3', '--cols', '4', '--device', device,
                      '--out', str(tmp_path / 'a{}.png'.format(device))])
    with Image.open(str(tmp_path / 'a1.png')) as a, \
            Image.open(str(tmp_path / 'a-1.png')) as b:
        assert numpy.array_equal(numpy.asarray(a), numpy.asarray(b))
    on_gpu = evaluate.main([str(run), '--samples', '20', '--device', '1'])
    on_cpu = evaluate.main([str(run), '--samples', '20', '--device', '-1'])
    for key in ('diversity', 'near_duplicate_share', 'nearest_train_median'):
        assert on_gpu[key] == on_cpu[key], key


def tiny_classifier():
    from gan import mnist_classifier
    return mnist_classifier.MNISTClassifier(), {'stand-in': True}


def test_compare_trains_and_evaluates_on_the_gpu(standin, tmp_path,
                                                 monkeypatch):
    """Training, analogies and metrics (with the digit classifier) of a
    comparison on GPU 1."""
    from animeface import analogy, compare, evaluate
    from gan import mnist_classifier
    monkeypatch.setattr(mnist_classifier, 'load_or_train',
                        lambda cache=None: tiny_classifier())
    used = []
    for module, name in ((analogy, 'load_generator'),
                         (evaluate, 'load_classifier')):
        def spy(*args, _real=getattr(module, name), **kwargs):
            made = _real(*args, **kwargs)
            used.append(made[0] if isinstance(made, tuple) else made)
            return made
        monkeypatch.setattr(module, name, spy)
    out = tmp_path / 'cmp'
    summary = compare.main(['--data', 'mnist', '--out', str(out),
                            '--variants', 'dcgan', 'mbd', '--iterations', '2',
                            '--samples', '20', '--columns', '1', '--cells',
                            '2', '--device', '1'] + TINY)
    assert [r['variant'] for r in summary['rows']][-1] == 'real data'
    assert summary['rows'][0]['modes'] >= 1
    links = [m for m in used if m is not None]
    assert len(links) >= 3  # the classifier, two generators (and more)
    for link in links:
        assert {standin.on_device(p) for p in link.params()} == {1}


# --------------------------------------------------------------------------
# Multi-node: two ranks, pure_nccl, one GPU each
# --------------------------------------------------------------------------
def mpiexec():
    here = os.path.join(os.path.dirname(sys.executable), 'mpiexec')
    return here if os.path.exists(here) else None


def mpi_missing():
    import importlib.util
    if importlib.util.find_spec('mpi4py') is None:
        return 'mpi4py is not installed (make install-mn)'
    if mpiexec() is None:
        return 'mpiexec is not installed (make install-mn)'
    return None


needs_mpi = pytest.mark.skipif(mpi_missing() is not None,
                               reason=mpi_missing() or '')


def launch(args, timeout=600):
    env = dict(os.environ, OPENBLAS_NUM_THREADS='1', OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    return subprocess.run([mpiexec(), '-n', '2', sys.executable]
                          + [str(a) for a in args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


STANDIN = os.path.join('tests', 'standin_gpu.py')


@needs_mpi
def test_two_ranks_with_pure_nccl_on_their_own_gpus(standin, idx, tmp_path):
    """Two ranks (--device 0: each takes the GPU of its index) with the
    stand-in NCCL communicator, which refuses a rank whose first NCCL call
    is not on its own GPU; the result equals one process's."""
    flags = ssl_flags(idx, '--iters-per-epoch', 2, '--epochs', 1)
    out = str(tmp_path / 'ranks')
    proc = launch([STANDIN, 'train_ssl.py', '--multi-node', '--device', 0,
                   '--out', out] + flags)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = read_json(os.path.join(out, 'result.json'))
    assert result['multi_node'] == {'ranks': 2, 'communicator': 'pure_nccl',
                                    'nodes': 1}
    assert result['machine']['gpu']['id'] == 0  # rank 0's
    one = str(tmp_path / 'one')
    train_ssl.main(flags + ['--device', '0', '--out', one])
    a = model_arrays(os.path.join(out, 'snapshot_iter_2'), 'updater/model')
    b = model_arrays(os.path.join(one, 'snapshot_iter_2'), 'updater/model')
    assert sorted(a) == sorted(b)
    for k in a:
        numpy.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6,
                                      err_msg=k)
    # the ranks without the device selection: rank 1 starts NCCL on GPU 0
    # (each rank records its own error: the MPI_Abort that follows it may
    # cut the forwarded stderr short)
    bad = tmp_path / 'bad'
    proc = launch([__file__, 'no-select', str(bad), 'train_ssl.py',
                   '--multi-node', '--device', 0, '--out', str(bad)] + flags)
    assert proc.returncode != 0
    error = (bad / 'error.rank1.txt').read_text()
    assert error.startswith('StandInError'), error
    assert "not on the rank's GPU 1" in error


@needs_mpi
def test_two_ranks_dcgan_minibatch_discrimination(faces, tmp_path):
    """The all-gather of minibatch discrimination goes through the host
    and back to each rank's GPU."""
    out = str(tmp_path / 'ranks')
    proc = launch([STANDIN, 'train_dcgan.py', '--multi-node', '--device', 0,
                   '--data', faces, '--out', out, '--iterations', 2,
                   '--minibatch-discrimination'] + TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = read_json(os.path.join(out, 'result.json'))
    assert result['multi_node']['communicator'] == 'pure_nccl'
    assert result['iterations'] == 2


# --------------------------------------------------------------------------
# Every command line takes --device
# --------------------------------------------------------------------------
COMMANDS = {
    'train_ssl': lambda d: [],
    'train_dcgan': lambda d: ['--data', d['faces']],
    'animeface.compare': lambda d: ['--data', d['faces']],
    'animeface.analogy': lambda d: [d['snapshot']],
    'animeface.evaluate': lambda d: [d['run']],
    'mnist_ssl.evaluate': lambda d: [d['run']],
    'experiments.four_way_seeds': lambda d: [],
    'experiments.doc_images': lambda d: ['--ssl', d['run']],
    'experiments.ssl_paths': lambda d: [],
    'experiments.ssl_table': lambda d: [],
}


@pytest.mark.parametrize('module', sorted(COMMANDS))
def test_every_command_line_takes_device(module, faces, tmp_path, capsys):
    """A device specifier that does not exist: one line naming it, before
    the command reads or writes anything."""
    import importlib
    main = importlib.import_module(module).main
    args = COMMANDS[module]({'faces': faces, 'run': str(tmp_path),
                             'snapshot': str(tmp_path / 'snapshot_iter_1')})
    with pytest.raises(SystemExit) as e:
        main(args + ['--device', '@nosuch', '--out',
                     str(tmp_path / 'out')] if module not in (
            'animeface.analogy', 'animeface.evaluate', 'mnist_ssl.evaluate')
            else args + ['--device', '@nosuch'])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert ': error: --device @nosuch: ' in err[0]
    assert not (tmp_path / 'out').exists()


def test_drivers_hand_device_to_every_run(standin, idx, tmp_path):
    """ssl_table trains each entry on --device (also in its child
    processes); four_way_seeds passes it to every child it starts."""
    from experiments import ssl_table
    from experiments import four_way_seeds as seeds
    out = str(tmp_path / 'table')
    with standin.recording() as log:
        ssl_table.main(['--labels', '20', '--seeds', '1', '--out', out,
                        '--device', '1', '--', '--data-dir', idx,
                        '--batchsize', '50', '--iters-per-epoch', '2',
                        '--epochs', '1', '--lr-decay-epochs', '0'])
    assert log and {gpu for _, gpu in log} == {1}
    result = read_json(os.path.join(out, 'labels20_seed1', 'result.json'))
    assert result['machine']['gpu']['id'] == 1
    args = seeds.parse(['--iterations', '100', '--seeds', '0',
                        '--samples', '10', '--out', 'o', '--device', '1'])
    entry = ('authors', 0, 'mbd')
    for cmd in (seeds.train_command(args, entry),
                seeds.evaluate_command(args, 'o/run', 0)):
        assert cmd[cmd.index('--device') + 1] == '1'


def test_gpu_check_script_runs_on_the_standin(standin, tmp_path, capsys):
    """make gpu-check's script, its steps at tiny sizes (the pytest step
    left out): the JSON report and the table."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'gpu_check', os.path.join(ROOT, 'benchmarks', 'gpu_check.py'))
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    path = str(tmp_path / 'gpu_check.json')
    assert gpu_check.main(['--quick', '--skip-tests', '--device', '1',
                           '--json', path]) == 0
    report = read_json(path)
    assert report['failed'] == [] and report['quick']
    assert report['machine']['gpu']['id'] == 1
    steps = report['steps']
    assert sorted(steps) == ['blog_96', 'dcgan_64', 'ssl_iteration',
                             'ssl_run']
    assert steps['blog_96']['net'] == 'blog'
    assert steps['ssl_run']['iterations'] == 4
    assert steps['ssl_iteration']['ms'] > 0
    out = capsys.readouterr().out
    assert 'GPU check on stand-in GPU' in out and '| SSL iteration |' in out
    # a step that fails: reported, the others still run, exit status 1
    def broken(*args):
        raise RuntimeError('injected')
    gpu_check.ssl_run = broken
    assert gpu_check.main(['--quick', '--skip-tests', '--json', path]) == 1
    report = read_json(path)
    assert report['failed'] == ['ssl_run']
    assert 'injected' in report['steps']['ssl_run']['error']
    assert 'ms' in report['steps']['blog_96']
    assert 'FAILED: RuntimeError: injected' in capsys.readouterr().out


def test_make_gpu_check_runs_on_the_standin(tmp_path):
    """The whole prepared script of the first GPU machine, the pytest run
    of tests/test_gpu.py included (its two-GPU and 2-rank tests too), on
    the stand-in: a check of the script and of those tests."""
    path = str(tmp_path / 'gpu_check.json')
    env = dict(os.environ, OPENBLAS_NUM_THREADS='1')
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    # the inner pytest's folders apart from this one's
    env['PYTEST_ADDOPTS'] = '--basetemp={}'.format(tmp_path / 'inner')
    proc = subprocess.run(
        [sys.executable, STANDIN, '--as-cupy', 'benchmarks/gpu_check.py',
         '--quick', '--json', path], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = read_json(path)
    tests = report['steps']['gpu_tests']
    assert ' passed' in tests['summary'] and 'failed' not in tests['summary']
    skipped = [s for s in tests['skipped'] if 'mpi' not in s.lower()]
    assert skipped == []  # every GPU test ran (the 2-rank one needs MPI)
    assert '| GPU tests |' in proc.stdout


if __name__ == '__main__':
    # mpiexec -n 2 python tests/test_gpu_standin.py no-select DIR SCRIPT
    # ARGS: the stand-in, with gan.gpu.select leaving the current GPU as it
    # is; a rank's error goes to DIR/error.rankN.txt as well
    assert sys.argv[1] == 'no-select'
    from gan import gpu
    gpu.select = lambda device: device
    import standin_gpu
    errors = sys.argv[2]  # (main sets sys.argv to the script's)
    try:
        standin_gpu.main(sys.argv[3:])
    except Exception as e:
        from mpi4py import MPI
        os.makedirs(errors, exist_ok=True)
        path = os.path.join(errors, 'error.rank{}.txt'.format(
            MPI.COMM_WORLD.Get_rank()))
        with open(path, 'w') as f:
            f.write('{}: {}\n'.format(type(e).__name__, e))
        raise
