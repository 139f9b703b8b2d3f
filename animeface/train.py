"""One DCGAN run, start to result: options (:mod:`animeface.options`) ->
images (:mod:`animeface.data`) -> the pieces (:mod:`animeface.build`) ->
a Chainer Trainer -> the run folder.

A run folder holds ``options.json`` (the resolved options), ``log``
(LogReport), ``loss.png``, ``samples_<iteration>.png`` grids of a fixed
latent batch (and ``samples_latest.png``), ``snapshot_iter_<iteration>``
trainer snapshots, ``machines.jsonl`` (a line per process that trained it)
and, once finished, ``result.json``.
"""
import os

from gan import health, multinode, runs
from gan import options as gopt

from animeface import build
from animeface import data as adata
from animeface.options import FREE_OPTIONS, MODEL_OPTIONS, check, resolve


def saved_options(o, images):
    """What ``options.json`` holds: the options and the data's size,
    channels and kind."""
    return dict(gopt.to_dict(o), images=len(images),
                channels=images.channels, data_kind=images.kind)


def write_result(trainer, o, comm=None):
    """``result.json``: iterations done, time, images per second, and the
    run-health warnings and checks (:mod:`gan.health`)."""
    it = trainer.updater.iteration
    elapsed = trainer.elapsed_time
    result = {'iterations': it, 'epoch': trainer.updater.epoch_detail,
              'elapsed_seconds': round(elapsed, 2),
              'images_per_second': round(it * o.batchsize / elapsed, 2)
              if elapsed > 0 else None,
              'out': o.out,
              'machine': runs.machine_info(trainer.updater.device),
              'multi_node': multinode.describe(comm)}
    try:  # warnings of a run going wrong, and the sample checks
        result.update(trainer.get_extension('health').result())
    except ValueError:  # ranks other than 0 have no such extension
        pass
    runs.write_json(os.path.join(o.out, 'result.json'), result)
    return result


def summary_line(result):
    """result.json's content as one line for people."""
    ips = result.get('images_per_second')
    return ('{} iterations (epoch {:.2f}) in {:.1f} s{}; grids, log and '
            'snapshots in {}'.format(
                result['iterations'], result['epoch'],
                result['elapsed_seconds'],
                ', {:.1f} images/s'.format(ips) if ips else '',
                result.get('out', '?')) + (
                    '; WARNINGS: ' + health.summary(result['warnings'])
                    if result.get('warnings') else ''))


def train(o, images=None, resume_from=None, log=None, comm=None):
    """Train one run of options ``o`` to its end from the snapshot
    ``resume_from`` (None: a fresh start); returns result.json's content
    (None on the ranks other than 0 of a multi-node run, ``comm``)."""
    if images is None:  # under --multi-node rank 0 loads, all get them
        images = runs.root_only(comm, lambda: adata.load(
            o.data, o.size, seed=o.seed, log=log))
    root = runs.is_root(comm)
    runs.root_only(comm, lambda: runs.write_json(
        os.path.join(o.out, 'options.json'), saved_options(o, images),
        sort_keys=True))
    trainer = build.build_trainer(o, images, comm)
    if resume_from:
        runs.load_snapshot(trainer, resume_from, hint=runs.snapshot_hint(
            resume_from, gopt.to_dict(o), MODEL_OPTIONS))
    if root:
        runs.record_machine(o.out, trainer.updater.iteration,
                            trainer.updater.device)
    trainer.run()
    return write_result(trainer, o, comm) if root else None


def run(o, images=None, log=None, comm=None, check_same=False):
    """The whole run of ``o`` (:class:`animeface.options.Options`, or a dict
    of values for :func:`animeface.options.resolve`): its folder decided
    by :func:`gan.runs.start` (a folder holding a run is refused unless
    resuming; ``resume='auto'`` continues the latest snapshot, or reports
    a finished run), then the training.  ``comm``: the communicator of a
    multi-node run (default: the one ``o.multi_node`` asks for).
    ``check_same``: also refuse a folder whose run has other options (a
    comparison's variants).  Returns ``(result, trained)``, ``trained``
    False for a finished run reported again; the result is None on the
    ranks other than 0."""
    o = resolve(o)
    check(o)
    if comm is None:
        comm = multinode.from_options(o.multi_node, o.communicator, o.device)
    if comm is not None:  # options.json records the one chosen
        o = resolve(o, communicator=comm.gan_name)
    same_as = None
    if check_same:
        if images is None:
            images = runs.root_only(comm, lambda: adata.load(
                o.data, o.size, seed=o.seed, log=log))
        same_as = saved_options(o, images)
    snapshot, done = runs.start(o.out, o.resume, comm, same_as=same_as,
                                ignore=FREE_OPTIONS)
    if done is not None:
        return (done if runs.is_root(comm) else None), False
    if snapshot and log is not None and runs.is_root(comm):
        print('{}: resuming from {}'.format(o.out, snapshot), file=log)
    return train(o, images, snapshot, log, comm), True
