"""What every run and command line shares: one error type, devices, the ``--out`` / ``--resume`` rule, snapshots and a record
of the machine that trained a run."""
import glob
import json
import os
import platform
import re
import time

import chainer


class UsageError(ValueError):
    """A bad option, input or combination.  Its message is one line that
    names the problem and the fix; the command lines print it and exit with
    status 2, never with a traceback."""


def parse_device(spec):
    """'-1' or '@numpy' -> CPU, '0' -> '@cupy:0', any other Chainer device
    specifier as it is.  A GPU must be usable (CuPy, its CUDA libraries, a
    driver, that GPU): else UsageError with one line that names what is
    missing and how to install it (:mod:`gan.gpu`)."""
    from gan import gpu
    spec = str(spec)
    if re.fullmatch(r'-?\d+', spec):
        spec = '@numpy' if int(spec) < 0 else '@cupy:' + spec
    try:
        device = chainer.get_device(spec)
    except Exception as e:  # unknown specifier, CuPy missing
        raise UsageError('--device {}: {}'.format(spec, gpu.explain(e, spec)))
    problem = gpu.unusable(device)  # no driver, no such GPU
    if problem:
        raise UsageError('--device {}: {}'.format(spec, problem))
    return device


def snapshot_iteration(path):
    """N of ``.../snapshot_iter_N``, or -1."""
    m = re.search(r'snapshot_iter_(\d+)$', os.path.basename(path))
    return int(m.group(1)) if m else -1


def latest_snapshot(out):
    """The trainer snapshot in ``out`` with the highest iteration, or None."""
    paths = [p for p in glob.glob(os.path.join(out, 'snapshot_iter_*'))
             if snapshot_iteration(p) >= 0]
    return max(paths, key=snapshot_iteration) if paths else None


# files whose presence means a folder already holds a run
RUN_MARKERS = ('options.json', 'log', 'result.json')


def holds_run(out):
    """Whether ``out`` already holds a run (its options, log, result or a
    snapshot)."""
    return os.path.isdir(out) and (
        any(os.path.exists(os.path.join(out, m)) for m in RUN_MARKERS)
        or latest_snapshot(out) is not None)


def prepare_out(out, resume=None):
    """The one rule for ``--out`` and ``--resume`` in every command line.

    ``resume`` None: a fresh run; ``out`` must not hold one already.
    ``'auto'``: the latest snapshot in ``out``, or a fresh run when there
    is none.  Any other value: a snapshot file, which must exist (it may
    lie in another folder: a branch).  Makes ``out``.  Returns the snapshot
    to load, or None for a fresh start; raises UsageError."""
    if resume is None and holds_run(out):
        raise UsageError('{} already holds a run: continue it with --resume '
                         'auto (or a snapshot path), or choose another --out'
                         .format(out))
    if resume == 'auto':
        snapshot = latest_snapshot(out)
    elif resume is not None:
        if not os.path.isfile(resume):
            raise UsageError('--resume {}: no such snapshot file (give a '
                             'snapshot_iter_N file, or auto)'.format(resume))
        snapshot = resume
    else:
        snapshot = None
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise UsageError('--out {}: cannot create the folder ({}): choose a '
                         'writable path'.format(out, e.strerror or e))
    if not os.access(out, os.W_OK):
        raise UsageError('--out {}: the folder is not writable: choose a '
                         'writable path'.format(out))
    return snapshot


def finished_result(out):
    """``OUT/result.json`` as a dict when the run in ``out`` has finished,
    else None."""
    path = os.path.join(out, 'result.json')
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def read_options(out):
    """``OUT/options.json`` as a dict, or None when there is none."""
    path = os.path.join(out, 'options.json')
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def differing_options(saved, wanted, ignore=()):
    """``[(name, saved value, wanted value)]`` for the names of ``wanted``
    (a dict) whose value differs in ``saved`` (a run's options.json), but
    those in ``ignore``."""
    return [(k, saved.get(k, '(none)'), wanted[k]) for k in sorted(wanted)
            if k not in ignore and saved.get(k) != wanted[k]]


def flag_text(diffs):
    """'--lr 0.001 (asked: 0.002), ...' for :func:`differing_options`."""
    return ', '.join('--{} {} (asked: {})'.format(k.replace('_', '-'), s, w)
                     for k, s, w in diffs)


def check_same_run(out, wanted, ignore=()):
    """UsageError when ``out`` holds a run (finished or not) whose
    options.json differs from ``wanted`` (a dict) in an option outside
    ``ignore``: continuing it, or reporting it as finished, would pass it
    off as the run asked for."""
    saved = read_options(out)
    if saved is None:
        return
    diffs = differing_options(saved, wanted, ignore)
    if diffs:
        raise UsageError('{} holds a run with other options: {}; give the '
                         'same flags, or choose another --out'.format(
                             out, flag_text(diffs)))


def snapshot_hint(path, wanted, model_options):
    """' (its options.json has ...)' for the ``model_options`` in which
    ``wanted`` (a dict) differs from the run that wrote snapshot ``path``,
    else '': the reason a snapshot does not fit."""
    saved = read_options(os.path.dirname(os.path.abspath(path))) or {}
    diffs = differing_options(
        {k: saved[k] for k in model_options if k in saved},
        {k: wanted[k] for k in model_options if k in saved and k in wanted})
    return ' (its run has {})'.format(flag_text(diffs)) if diffs else ''


# --------------------------------------------------------------------------
# Rank 0 decides, every rank follows
# --------------------------------------------------------------------------
def is_root(comm):
    """Whether this process writes the run folder: one process, or rank 0
    of a multi-node run (a ChainerMN communicator ``comm``)."""
    return comm is None or comm.rank == 0


def root_only(comm, fn):
    """``fn()`` on rank 0, its value (or the exception it raised) passed to
    every rank (in pieces, so data sets over 2 GiB pass too)."""
    if comm is None:
        return fn()
    value = error_ = None
    if comm.rank == 0:
        try:
            value = fn()
        except Exception as e:
            error_ = e
    try:
        value, error_ = comm.bcast_obj(
            (value, error_) if comm.rank == 0 else None)
    except Exception as e:  # an exception that does not pickle
        raise UsageError(str(error_ or e)) from None
    if error_ is not None:
        raise error_
    return value


# the key under which a multi-node trainer snapshot records its ranks
# (gan.multinode.RankCount, an extension named multi_node)
RANKS_KEY = 'extensions/multi_node/ranks'


def snapshot_ranks(path):
    """The number of ranks that wrote the snapshot ``path`` (1 for one
    process)."""
    import numpy
    try:
        with numpy.load(path) as npz:
            keys = [k for k in npz.files if k.endswith(RANKS_KEY)]
            return int(npz[keys[0]]) if keys else 1
    except Exception:
        return 1  # unreadable: the loader says why


def check_resume(path, comm):
    """UsageError when ``path`` was written by another number of ranks."""
    if not path:
        return
    written = snapshot_ranks(path)
    here = 1 if comm is None else comm.size
    if written != here:
        how = ('mpiexec -n {} ... --multi-node'.format(written)
               if written > 1 else 'one process (no --multi-node)')
        raise UsageError('snapshot {} was written by {} rank{} and this '
                         'run has {}: resume it under {}'.format(
                             path, written, 's' if written > 1 else '',
                             here, how))


def start(out, resume=None, comm=None, same_as=None, ignore=()):
    """The one start-or-resume decision of every run (rank 0 looks at the
    folder, every rank gets its answer).

    ``same_as`` (a dict of options): a folder holding a run of other
    options (but those in ``ignore``) is refused (:func:`check_same_run`).
    ``resume='auto'`` on a finished run returns its result; otherwise the
    folder is prepared (:func:`prepare_out`) and a snapshot written by
    another number of ranks refused.  Returns ``(snapshot or None,
    result.json of a finished run or None)``."""
    def decide():
        if same_as is not None:
            check_same_run(out, same_as, ignore)
        if resume == 'auto':
            done = finished_result(out)
            if done is not None:
                return None, done
        snapshot = prepare_out(out, resume)
        check_resume(snapshot, comm)
        return snapshot, None
    return root_only(comm, decide)


def load_snapshot(trainer, path, ignore_names=None, hint=''):
    """Load the trainer snapshot ``path`` into ``trainer`` (the one resume
    path of every command line).  ``ignore_names(key)`` may skip keys the
    snapshot lacks on purpose (optional extensions).  A snapshot that does
    not fit the model or cannot be read raises UsageError with one line;
    ``hint`` is added to the mismatch message (which options differ)."""
    import numpy
    if not os.path.isfile(path):
        raise UsageError('--resume {}: no such snapshot file'.format(path))
    try:
        with numpy.load(path) as npz:
            chainer.serializers.NpzDeserializer(
                npz, ignore_names=ignore_names).load(trainer)
    except (KeyError, ValueError) as e:
        raise UsageError(
            'snapshot {} does not match this model ({}){}: resume with the '
            'options of the run that wrote it (its options.json)'.format(
                path, str(e).splitlines()[0][:120] if str(e) else
                type(e).__name__, hint)) from None
    except Exception as e:  # zip errors, truncated files
        raise UsageError('snapshot {} cannot be read ({}): use an earlier '
                         'snapshot'.format(path, type(e).__name__)) from None
    return path


def write_text(path, text):
    """Write ``text`` to ``path`` whole, making its folder: the text goes
    to a temporary file beside it that then replaces ``path``, so that a
    reader in another process (a batch table of runs that finish side by
    side) sees the old file or the new one, never a part of it, and an
    error while writing leaves the old file as it was."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = '{}.{}.tmp'.format(path, os.getpid())
    try:
        with open(tmp, 'w') as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, obj, sort_keys=False):
    """Write ``obj`` to ``path`` as indented JSON, whole
    (:func:`write_text`)."""
    write_text(path, json.dumps(obj, indent=1, sort_keys=sort_keys))


# --------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------
def cpu_model(cpuinfo='/proc/cpuinfo'):
    """The first ``model name`` of a Linux cpuinfo file; elsewhere
    ``platform.processor()``; None when neither names the CPU."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, sep, value = line.partition(':')
                if sep and key.strip().lower() == 'model name':
                    return value.strip() or None
    except OSError:
        pass
    return platform.processor() or None


def blas_libraries():
    """The BLAS libraries this process loaded (numpy's, and SciPy's when
    something imported it), each as ``{library, version, architecture,
    threads, file}`` (``architecture``: the CPU kernel set OpenBLAS chose
    at run time, which decides its rounding).  Needs the optional
    package threadpoolctl; without it an empty list."""
    try:
        import threadpoolctl
    except ImportError:
        return []
    return [{'library': i.get('internal_api'), 'version': i.get('version'),
             'architecture': i.get('architecture'),
             'threads': i.get('num_threads'),
             'file': os.path.basename(i.get('filepath') or '')}
            for i in threadpoolctl.threadpool_info()
            if i.get('user_api') == 'blas']


def machine_info(device=None):
    """What identifies the machine a run or benchmark ran on: float32
    training is reproducible bit for bit only on the same CPU kernels, BLAS
    thread count and library versions; on a GPU (``device``) also the GPU
    and its driver, CUDA, CuPy, NVRTC, cuDNN and NCCL versions
    (:func:`gan.gpu.describe`, under ``gpu``)."""
    import numpy
    from gan import gpu
    info = {'platform': platform.platform(), 'cpu': cpu_model(),
            'cpu_count': os.cpu_count(),
            'python': platform.python_version(),
            'numpy': numpy.__version__, 'chainer': chainer.__version__,
            'blas': blas_libraries(),
            'OPENBLAS_NUM_THREADS': os.environ.get('OPENBLAS_NUM_THREADS')}
    if device is not None and gpu.is_gpu(device):
        info['gpu'] = gpu.describe(device)
    return info


def machine_text(info=None):
    """:func:`machine_info` in one line, for tables."""
    info = info or machine_info()
    blas = ', '.join('{} {} ({} kernels)'.format(b['library'], b['version'],
                                                 b['architecture'])
                     for b in info['blas'])
    return '; '.join(p for p in (
        info['platform'], info['cpu'],
        '{} CPUs'.format(info['cpu_count']), blas,
        'numpy {}, Chainer {}'.format(info['numpy'], info['chainer'])) if p)


def record_machine(out, iteration, device=None):
    """Append this process's machine (with the GPU it trains on, when
    ``device`` is one), start time and the iteration it starts from to
    ``OUT/machines.jsonl`` (one line per process that trained the run, so
    a run resumed elsewhere shows where it moved)."""
    entry = dict(machine_info(device), iteration=int(iteration),
                 started=time.strftime('%Y-%m-%dT%H:%M:%S%z'))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'machines.jsonl'), 'a') as f:
        f.write(json.dumps(entry, sort_keys=True) + '\n')
    return entry
