"""One semi-supervised MNIST run, start to result: options
(:mod:`mnist_ssl.options`) -> the pieces (:mod:`mnist_ssl.build`) -> a
Chainer Trainer -> ``OUT/result.json``."""
import json
import os
import time

from gan import extensions as gext
from gan import multinode, runs
from gan import options as gopt
from mnist_ssl import build, report
from mnist_ssl.options import N_CLASSES, check, resolve


def run(o):
    """Train with options ``o`` (:class:`mnist_ssl.options.Options`, or a
    dict of values for :func:`mnist_ssl.options.resolve`) and write
    OUT/result.json; returns it.

    ``--out`` and ``--resume`` follow :func:`gan.runs.prepare_out`, checked
    before any data is read: a folder holding a run is refused unless
    resuming; ``resume='auto'`` continues the latest snapshot, or returns
    the result of a finished run (``result['reported'] = True``) without
    training again.  Under ``--multi-node`` rank 0 alone looks at and
    writes the folder (the other ranks return None), and a snapshot
    written by another number of ranks is refused."""
    o = resolve(o)
    check(o)
    runs.parse_device(o.device)
    out = o.out
    comm = multinode.from_options(o.multi_node, o.communicator,
                                  o.device)
    if comm is not None:  # options.json records the one chosen
        build.check_multi_node(o, comm)
        o = resolve(o, communicator=comm.gan_name)
    root = runs.is_root(comm)
    snapshot, done = runs.start(out, o.resume, comm)
    if done is not None:
        return dict(done, reported=True) if root else None
    parts = build.build(o, comm)
    trainer = build.make_trainer(o, parts, comm)
    resumed = build.resume(trainer, snapshot, o) if snapshot else None
    if not root:  # rank 0 writes the run folder
        trainer.run()
        return None
    runs.write_json(os.path.join(out, 'options.json'),
                    dict(gopt.to_dict(o), data_source=parts['data'].source,
                         resumed_from=resumed,
                         networks=dict(dis=parts['dis'].describe(),
                                       gen=parts['gen'].describe())),
                    sort_keys=True)
    runs.record_machine(out, trainer.updater.iteration, parts['device'])
    report.labeled_grid(os.path.join(out, 'labeled.png'),
                        parts['data'].x_pool, parts['data'].y_pool,
                        parts['labeled_index'])
    t0 = time.time()
    trainer.run()
    final = parts['evaluator'].evaluate()
    ev = parts['data'].eval_name
    log_path = os.path.join(out, 'log')
    log = json.load(open(log_path)) if os.path.exists(log_path) else []
    collapse = gext.first_epoch_below(log, 'gen/sample_std',
                                      o.collapse_threshold, start_epoch=2)
    result = {
        'test_error': final[ev + '/error_avg'],
        'test_errors': final[ev + '/errors_avg'],
        'test_error_raw': final[ev + '/error_raw'],
        'test_errors_raw': final[ev + '/errors_raw'],
        'evaluated_on': ev,
        'labels': o.labels, 'seed': o.seed,
        'data_seed': o.data_seed, 'epochs': trainer.updater.epoch_detail,
        'iterations': trainer.updater.iteration,
        'wall_seconds': round(trainer.elapsed_time, 1),
        'wall_seconds_this_process': round(time.time() - t0, 1),
        'minutes_to_error_avg': report.time_to_error(log, ev + '/error_avg'),
        'minutes_to_error_raw': report.time_to_error(log, ev + '/error_raw'),
        'peak_rss_mb': report.peak_rss_mb(),
        # every process's: machines.jsonl
        'machine': runs.machine_info(parts['device']),
        'multi_node': multinode.describe(comm),
        # first epoch whose samples were all alike (None: no collapse),
        # and whether they differ again at the end
        'generator_collapse_epoch': collapse,
        'generator_recovered': None if collapse is None else bool(
            log[-1].get('gen/sample_std', 0) >= o.collapse_threshold),
        # rows: true class, columns: predicted class (averaged D)
        'confusion_avg': parts['evaluator'].confusion('avg', N_CLASSES),
        'options': gopt.to_dict(o),
    }
    if 'test_evaluator' in parts:  # --validation: the test set as well
        test = parts['test_evaluator'].evaluate()
        for key in ('error_avg', 'errors_avg', 'error_raw', 'errors_raw'):
            name = key.replace('_avg', '')
            result['test_set_' + name] = test['test/' + key]
    print(report.confusion_text(result['confusion_avg']))
    # whole or not at all: batch tables of other processes read it
    runs.write_json(os.path.join(out, 'result.json'), result, sort_keys=True)
    return result
