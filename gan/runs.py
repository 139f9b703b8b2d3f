"""Small helpers every run folder needs: devices and snapshots."""
import glob
import json
import os
import re

import chainer


def parse_device(spec):
    """'-1' or '@numpy' -> CPU, '0' -> '@cupy:0', any other Chainer device
    specifier as it is.  Raises ValueError with a one-line reason."""
    spec = str(spec)
    if re.fullmatch(r'-?\d+', spec):
        spec = '@numpy' if int(spec) < 0 else '@cupy:' + spec
    try:
        return chainer.get_device(spec)
    except Exception as e:  # unknown specifier, CuPy missing, no GPU
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError('--device {}: {} (use -1 for the CPU, or a GPU id '
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
