"""Small helpers every command line and run folder needs: one error type,
presets, devices, the ``--out`` / ``--resume`` rule, snapshots and a record
of the machine that trained a run."""
import argparse
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


class PresetParser(argparse.ArgumentParser):
    """An ArgumentParser with ``--preset NAME``: the preset, a dict of
    option values (argparse dests), becomes the parser's defaults before
    the command line is parsed, so any flag given explicitly overrides it
    and ``--help`` shows the preset's values as the defaults.  The
    parsed namespace holds ``preset`` with the rest.

    Args:
        presets: name -> {dest: value}.
        default_preset: the preset used without ``--preset``.
        preset_help: help text of ``--preset``.
    """

    def __init__(self, *args, presets, default_preset, preset_help=None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        if default_preset not in presets:
            raise ValueError('default preset {!r} is not among {}'.format(
                default_preset, sorted(presets)))
        self.presets = presets
        self.add_argument(
            '--preset', choices=sorted(presets), default=default_preset,
            help=(preset_help or 'a named set of option defaults; flags '
                  'given explicitly override it') + ' (default %(default)s)')
        self._base_defaults = None

    def parse_known_args(self, args=None, namespace=None):
        pre = argparse.ArgumentParser(prog=self.prog, add_help=False)
        pre.add_argument('--preset', default=self.get_default('preset'))
        name = pre.parse_known_args(args)[0].preset
        if name in self.presets:  # else the full parse names the error
            if self._base_defaults is None:
                dests = {a.dest for a in self._actions}
                keys = {k for p in self.presets.values() for k in p}
                unknown = sorted(keys - dests)
                if unknown:
                    raise ValueError('presets set unknown options: {}'.format(
                        ', '.join(unknown)))
                self._base_defaults = {k: self.get_default(k) for k in keys}
            self.set_defaults(**dict(self._base_defaults,
                                     **self.presets[name]))
        return super().parse_known_args(args, namespace)


def parse_device(spec):
    """'-1' or '@numpy' -> CPU, '0' -> '@cupy:0', any other Chainer device
    specifier as it is.  Raises UsageError with a one-line reason."""
    spec = str(spec)
    if re.fullmatch(r'-?\d+', spec):
        spec = '@numpy' if int(spec) < 0 else '@cupy:' + spec
    try:
        return chainer.get_device(spec)
    except Exception as e:  # unknown specifier, CuPy missing, no GPU
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UsageError('--device {}: {} (use -1 for the CPU, or a GPU id '
                         'such as 0 with CuPy installed: make install-gpu)'
                         .format(spec, reason))


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


def machine_info():
    """What identifies the machine a run or benchmark ran on: float32
    training is reproducible bit for bit only on the same CPU kernels, BLAS
    thread count and library versions."""
    import numpy
    return {'platform': platform.platform(), 'cpu': cpu_model(),
            'cpu_count': os.cpu_count(),
            'python': platform.python_version(),
            'numpy': numpy.__version__, 'chainer': chainer.__version__,
            'blas': blas_libraries(),
            'OPENBLAS_NUM_THREADS': os.environ.get('OPENBLAS_NUM_THREADS')}


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


def record_machine(out, iteration):
    """Append this process's machine, start time and the iteration it
    starts from to ``OUT/machines.jsonl`` (one line per process that
    trained the run, so a run resumed elsewhere shows where it moved)."""
    entry = dict(machine_info(), iteration=int(iteration),
                 started=time.strftime('%Y-%m-%dT%H:%M:%S%z'))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'machines.jsonl'), 'a') as f:
        f.write(json.dumps(entry, sort_keys=True) + '\n')
    return entry
