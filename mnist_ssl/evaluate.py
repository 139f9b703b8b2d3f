"""Test error and confusion matrix of a run folder's latest (or a given)
snapshot, for runs that are still going or were stopped:

    python -m mnist_ssl.evaluate result/ssl_table/labels20_seed2
    python -m mnist_ssl.evaluate RUN --snapshot RUN/snapshot_iter_12000

Prints the errors of the raw and of the averaged discriminator and the
averaged one's confusion matrix; ``--json FILE`` writes them too.
"""
import argparse
import json
import os

import numpy

import chainer

from gan import extensions as gext
from mnist_ssl import data as mdata
from mnist_ssl import experiment


def load_run(folder, snapshot=None):
    """(options, raw D, averaged D, snapshot path) of a run folder."""
    opt_path = os.path.join(folder, 'options.json')
    if not os.path.isfile(opt_path):
        raise experiment.OptionError(
            '{}: no options.json, not a train_ssl.py run folder'.format(
                folder))
    with open(opt_path) as f:
        o = dict(experiment.DEFAULTS, **json.load(f))
    snapshot = snapshot or experiment.find_latest_snapshot(folder)
    if snapshot is None or not os.path.isfile(snapshot):
        raise experiment.OptionError(
            '{}: no snapshot to evaluate (runs write one per epoch)'.format(
                snapshot or folder))
    dis, _ = experiment.build_models(o)
    average = gext.ParameterAverage(dis, rate=o['ema_rate'])
    try:
        with numpy.load(snapshot) as npz:
            chainer.serializers.NpzDeserializer(
                npz, path='updater/model:dis/').load(dis)
            chainer.serializers.NpzDeserializer(
                npz, path='extensions/parameter_average/').load(average)
    except (KeyError, ValueError) as e:
        raise experiment.OptionError(
            'snapshot {} does not match the options of {} ({})'.format(
                snapshot, folder, str(e).splitlines()[0][:120]))
    except Exception as e:  # zip errors, truncated files
        raise experiment.OptionError(
            'snapshot {} cannot be read ({}): give an earlier one with '
            '--snapshot'.format(snapshot, type(e).__name__))
    return o, dis, average.averaged(), snapshot


def evaluate(folder, snapshot=None):
    o, raw, avg, snapshot = load_run(folder, snapshot)
    d = mdata.load(o['data_dir'], validation=o['validation'])
    ev = gext.ClassificationError(d.x_eval, d.y_eval,
                                  {'raw': raw, 'avg': avg},
                                  prefix=d.eval_name)
    out = ev.evaluate()
    return {'snapshot': snapshot, 'evaluated_on': d.eval_name,
            'errors_raw': out[d.eval_name + '/errors_raw'],
            'errors_avg': out[d.eval_name + '/errors_avg'],
            'confusion_avg': ev.confusion('avg', 10)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('run', help='a train_ssl.py --out folder')
    p.add_argument('--snapshot', default=None,
                   help='a snapshot file (default: the latest in RUN)')
    p.add_argument('--json', default=None, help='also write the result here')
    args = p.parse_args(argv)
    try:
        r = evaluate(args.run, args.snapshot)
    except (experiment.OptionError, mdata.DataError) as e:
        p.exit(2, 'error: {}\n'.format(e))
    print('{}: {} errors (raw D), {} (averaged D) on {}'.format(
        r['snapshot'], r['errors_raw'], r['errors_avg'], r['evaluated_on']))
    print(experiment.confusion_text(r['confusion_avg']))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(r, f, indent=1)
    return r


if __name__ == '__main__':
    main()
