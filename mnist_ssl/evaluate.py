"""Test error and confusion matrix of a run folder's latest (or a given)
snapshot, for runs that are still going or were stopped:

    python -m mnist_ssl.evaluate result/ssl_table/labels20_seed2
    python -m mnist_ssl.evaluate RUN --snapshot RUN/snapshot_iter_12000
    python -m mnist_ssl.evaluate RUN --device 0     # the networks on GPU 0

Prints the errors of the raw and of the averaged discriminator and the
averaged one's confusion matrix; ``--json FILE`` writes them too.
``--errors-grid PNG`` shows the misclassified test digits of the largest
confusions, one row per (true, predicted) pair, and ``--labeled-grid PNG``
the run's labeled examples, one row per class.
"""
import argparse
import json
import os

import numpy

import chainer

from gan import extensions as gext
from gan import gpu, image, runs
from gan import options as gopt
from mnist_ssl import data as mdata
from mnist_ssl import build, options, report


def load_run(folder, snapshot=None, device=None):
    """(options, raw D, averaged D, snapshot path) of a run folder, the
    discriminators on ``device`` (default: the CPU)."""
    opt_path = os.path.join(folder, 'options.json')
    if not os.path.isfile(opt_path):
        raise options.OptionError(
            '{}: no options.json, not a train_ssl.py run folder'.format(
                folder))
    with open(opt_path) as f:
        o = options.from_saved(json.load(f))
    snapshot = snapshot or runs.latest_snapshot(folder)
    if snapshot is None or not os.path.isfile(snapshot):
        raise options.OptionError(
            '{}: no snapshot to evaluate (runs write one per epoch)'.format(
                snapshot or folder))
    dis, _ = build.build_models(o)
    average = (gext.ParameterAverage(dis, rate=o.ema_rate)
               if o.ema_rate else None)  # 0: no average
    try:
        with numpy.load(snapshot) as npz:
            chainer.serializers.NpzDeserializer(
                npz, path='updater/model:dis/').load(dis)
            if average is not None:
                chainer.serializers.NpzDeserializer(
                    npz, path='extensions/parameter_average/').load(average)
    except (KeyError, ValueError) as e:
        raise options.OptionError(
            'snapshot {} does not match the options of {} ({})'.format(
                snapshot, folder, str(e).splitlines()[0][:120]))
    except Exception as e:  # zip errors, truncated files
        raise options.OptionError(
            'snapshot {} cannot be read ({}): give an earlier one with '
            '--snapshot'.format(snapshot, type(e).__name__))
    avg = average.averaged() if average else dis
    if device is not None:
        gpu.select(device)
        for link in {id(dis): dis, id(avg): avg}.values():
            link.to_device(device)
    return o, dis, avg, snapshot


def errors_grid(path, x, y, pred, counts, rows=5, cols=12):
    """One row per largest confusion (true t predicted as p): its first
    ``cols`` test images in test-set order; white cells where a pair has
    fewer.  Returns the (true, predicted, count) of the rows."""
    top = report.largest_confusions(counts, rows)
    if not top:
        return top
    image.save_index_rows(path, x, [
        numpy.flatnonzero((y == t) & (pred == p)) for t, p, _ in top], cols)
    return top


def evaluate(folder, snapshot=None, grid=None, grid_rows=5,
             labeled=None, device=None):
    """The errors of a run's snapshot, computed on ``device`` (a Chainer
    device; default the CPU)."""
    o, raw, avg, snapshot = load_run(folder, snapshot, device)
    d = mdata.load(o.data_dir, validation=o.validation)
    send = (device or chainer.backend.CpuDevice()).send
    ev = gext.ClassificationError(send(build.scale_images(o, d.x_eval)),
                                  send(d.y_eval),
                                  {'raw': raw, 'avg': avg},
                                  prefix=d.eval_name)
    out = ev.evaluate()
    counts = ev.confusion('avg', 10)
    r = {'snapshot': snapshot, 'evaluated_on': d.eval_name,
         'errors_raw': out[d.eval_name + '/errors_raw'],
         'errors_avg': out[d.eval_name + '/errors_avg'],
         'confusion_avg': counts,
         'largest_confusions': report.largest_confusions(counts)}
    if grid:
        pred = chainer.backend.CpuDevice().send(ev.predictions['avg'])
        r['errors_grid_rows'] = errors_grid(grid, d.x_eval, d.y_eval, pred,
                                            counts, grid_rows)
    if labeled:
        report.labeled_grid(labeled, d.x_pool, d.y_pool,
                                build.labeled_index(o, d))
    return r


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('run', help='a train_ssl.py --out folder')
    p.add_argument('--snapshot', default=None,
                   help='a snapshot file (default: the latest in RUN)')
    p.add_argument('--json', default=None, help='also write the result here')
    p.add_argument('--errors-grid', default=None, metavar='PNG',
                   help='write the misclassified test digits of the largest '
                   'confusions of the averaged D here, a row per pair')
    p.add_argument('--grid-rows', type=int, default=5,
                   help='confusion pairs in --errors-grid (default '
                   '%(default)s)')
    p.add_argument('--labeled-grid', default=None, metavar='PNG',
                   help='write the run\'s labeled examples here, a row per '
                   'class (new runs write RUN/labeled.png themselves)')
    gopt.add_device(p)
    args = p.parse_args(argv)
    if args.grid_rows <= 0:
        p.error('--grid-rows must be positive, got {}'.format(args.grid_rows))
    try:
        r = evaluate(args.run, args.snapshot, args.errors_grid,
                     args.grid_rows, args.labeled_grid,
                     runs.parse_device(args.device))
    except runs.UsageError as e:
        p.exit(2, '{}: error: {}\n'.format(p.prog, e))
    print('{}: {} errors (raw D), {} (averaged D) on {}'.format(
        r['snapshot'], r['errors_raw'], r['errors_avg'], r['evaluated_on']))
    print(report.confusion_text(r['confusion_avg']))
    if args.errors_grid:
        rows = r['errors_grid_rows']
        print('wrote {} (rows: {})'.format(args.errors_grid, ', '.join(
            '{} as {}'.format(t, q) for t, q, _ in rows)) if rows else
            'no misclassified digits: no grid written')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(r, f, indent=1)
    return r


if __name__ == '__main__':
    main()
