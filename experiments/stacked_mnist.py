"""The four-way comparison on Stacked-MNIST over seeds: modes and KL, mean
+- std, as Markdown and JSON.  Resumable: rerun the same command to
continue; a finished run (result.json) is skipped, an unfinished one
resumes from its last snapshot, an evaluated one (metrics.json) is not
evaluated again.

    python -m experiments.stacked_mnist --seeds 0 1 2 --jobs 2 \\
        --out result/stacked_mnist [--sets authors raw fixed] [--device 0]

Sets (each a variant list and the flags that make it):

* ``authors`` -- all four variants with the defaults of
  ``animeface.compare`` (the authors' minibatch discrimination, the blog's
  feature-matching form);
* ``raw`` -- the two minibatch-discrimination variants with the raw-T
  layer (``--mbd-form raw``);
* ``fixed`` -- minibatch discrimination with T kept at its data-dependent
  init (``--mbd-fixed-t``), against the learned T of ``authors``.

Every run is ``python -m animeface.compare --data stacked-mnist --size 32
--ch 64 --iterations N --variants V`` in OUT/SET_sSEED_V (the variant's own
folder is OUT/SET_sSEED_V/V), then evaluated as ``python -m
animeface.evaluate`` does, on ``--samples`` samples (the real data's values
once per seed, in OUT/real_sSEED.json).  Writes OUT/table.md and
OUT/table.json from every evaluated run under OUT, and OUT/compare_sSEED.png
(the four variants' samples over training) for every seed whose four runs
finished.  ``--at N`` evaluates the snapshots of iteration N instead (into
metrics_iterN.json) and writes OUT/table_iterN.md and .json: the variants
early in training, where a collapse shows.
"""
import argparse
import glob
import json
import os
import sys

from gan import jobs, runs
from gan import options as gopt

from animeface import evaluate
from animeface import compare
from animeface import data as adata
from animeface import variants as V

SETS = {
    'authors': (V.DEFAULT, []),
    'raw': (('mbd', 'fm_mbd'), ['--mbd-form', 'raw']),
    'fixed': (('mbd',), ['--mbd-fixed-t']),
}
SET_TITLES = {
    'authors': "the authors' minibatch discrimination (learned T), the "
               "blog's feature-matching form",
    'raw': 'raw-T minibatch discrimination (T ~ N(0, 0.05^2), no '
           'normalisation, scale or bias)',
    'fixed': "the authors' minibatch discrimination with T fixed at its "
             "data-dependent init",
}
SNAPSHOT_INTERVAL = 1000
# flags every run shares (also the folder check of animeface.compare)
COMMON = ['--data', 'stacked-mnist', '--size', '32', '--ch', '64',
          '--snapshot-interval', str(SNAPSHOT_INTERVAL),
          '--log-interval', '100',
          '--no-metrics']


def entries(sets, seeds):
    """(set, seed, variant) in the order they run: seed by seed."""
    return [(s, seed, v) for seed in seeds for s in sets
            for v in SETS[s][0]]


def folder(out, entry):
    """The compare folder of an entry (its run is folder/VARIANT)."""
    s, seed, v = entry
    return os.path.join(out, '{}_s{}_{}'.format(s, seed, v))


def run_dir(out, entry):
    return os.path.join(folder(out, entry), entry[2])


def train_command(args, entry):
    s, seed, v = entry
    return [sys.executable, '-m', 'animeface.compare'] + COMMON + [
        '--iterations', str(args.iterations),
        '--grid-interval', str(max(1, args.iterations // 8)),
        '--seed', str(seed), '--variants', v, '--out', folder(args.out, entry),
        '--resume', 'auto', '--device', args.device] + SETS[s][1]


def evaluate_command(args, target, seed):
    """A child that evaluates one run folder (its metrics.json) or, for
    ``target`` 'real', the real data of a seed (OUT/real_sSEED.json)."""
    return [sys.executable, '-m', 'experiments.stacked_mnist',
            '--evaluate', target, '--seeds', str(seed),
            '--samples', str(args.samples), '--out', args.out,
            '--device', args.device] + (
                ['--cache', args.cache] if args.cache else []) + (
                ['--at', str(args.at)] if args.at and target != 'real'
                else [])


def real_path(out, seed):
    return os.path.join(out, 'real_s{}.json'.format(seed))


def evaluate_one(args, p):
    """--evaluate RUN|real: the metrics of one run (RUN/metrics.json) or
    of the real data (OUT/real_sSEED.json), sampled with the seed."""
    seed = args.seeds[0]
    try:
        device = runs.parse_device(args.device)
        data = adata.load('stacked-mnist', 32, seed=seed)
        classifier, _ = evaluate.load_classifier(data.kind, args.cache,
                                                 device)
        if args.evaluate == 'real':
            result = evaluate.reference_metrics(data, args.samples,
                                                classifier, seed=seed)
            result['samples'] = args.samples
            runs.write_json(real_path(args.out, seed), result)
        else:
            result = evaluate.evaluate_run(args.evaluate, data, args.samples,
                                           classifier, seed=seed,
                                           iteration=args.at, device=device)
            runs.write_json(os.path.join(args.evaluate,
                                         evaluate.metrics_name(args.at)),
                            result)
    except runs.UsageError as e:
        gopt.fail(p, str(e))  # one line, no usage
    print(evaluate.metrics_line(result))


def read_json(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def is_trained(out, entry):
    return os.path.exists(os.path.join(run_dir(out, entry), 'result.json'))


def is_evaluated(out, entry, samples, at=None):
    m = read_json(os.path.join(run_dir(out, entry),
                               evaluate.metrics_name(at)))
    return m is not None and m.get('samples') == samples


def collect(out, at=None):
    """Every evaluated run under ``out`` (its final snapshot, or that of
    iteration ``at``): dicts with set, seed, variant, the metrics and the
    training result."""
    found = []
    for path in glob.glob(os.path.join(out, '*_s*_*', '*',
                                       evaluate.metrics_name(at))):
        name = os.path.basename(os.path.dirname(os.path.dirname(path)))
        s, rest = name.split('_s', 1)
        seed, v = rest.split('_', 1)
        if s not in SETS or v not in SETS[s][0]:
            continue
        with open(path) as f:
            m = json.load(f)
        result = read_json(os.path.join(os.path.dirname(path),
                                        'result.json')) or {}
        m['real'] = read_json(real_path(out, int(seed)))
        found.append(dict(m, set=s, seed=int(seed), variant=v,
                          train_seconds=result.get('elapsed_seconds'),
                          iterations=result.get('iterations')))
    return sorted(found, key=lambda r: (list(SETS).index(r['set']),
                                        SETS[r['set']][0].index(r['variant']),
                                        r['seed']))


def summarize(found):
    """Rows per (set, variant): mean +- std over seeds; then the real
    data's row (the mean of the evaluations' reference values)."""
    groups = {}
    for r in found:
        groups.setdefault((r['set'], r['variant']), []).append(r)
    rows = []
    for (s, v), rs in groups.items():
        row = {'set': s, 'variant': v, 'label': V.get(v).label,
               'seeds': [r['seed'] for r in rs],
               'modes': [r['modes'] for r in rs],
               'kl': [round(r['kl'], 3) for r in rs],
               'iterations': [r['iterations'] for r in rs],
               'train_seconds': [r['train_seconds'] for r in rs]}
        for key in ('modes', 'kl', 'diversity', 'near_duplicate_share'):
            m, sd = jobs.mean_std([r[key] for r in rs])
            row[key + '_mean'], row[key + '_std'] = m, sd
        rows.append(row)
    reals = [r['real'] for r in found if r.get('real')]
    real = None
    if reals:
        real = {k: jobs.mean_std([x[k] for x in reals])[0]
                for k in ('modes', 'kl', 'diversity')}
    return rows, real


def _cell(row, key, fmt):
    m, s = row[key + '_mean'], row[key + '_std']
    return (fmt + ' +- ' + fmt).format(m, s)


def markdown(rows, real, at=None):
    out = []
    for s in SETS:
        mine = [r for r in rows if r['set'] == s]
        if not mine:
            continue
        where = ', the snapshots of iteration {}'.format(at) if at else ''
        heads = ['variant', 'modes (of 1000)', 'modes per seed',
                 'KL to uniform', 'KL per seed', 'diversity', 'seeds'] + (
                     [] if at else ['mean train time (s)'])
        out += ['**{}** ({}{})'.format(s, SET_TITLES[s], where), '',
                '| ' + ' | '.join(heads) + ' |', '|---' * len(heads) + '|']
        for r in mine:
            times = [t for t in r['train_seconds'] if t is not None]
            cells = [r['label'], _cell(r, 'modes', '{:.0f}'),
                     ', '.join(str(m) for m in r['modes']),
                     _cell(r, 'kl', '{:.2f}'),
                     ', '.join('{:.2f}'.format(k) for k in r['kl']),
                     _cell(r, 'diversity', '{:.3f}'),
                     ', '.join(str(x) for x in r['seeds'])]
            if not at:
                cells.append('{:.0f}'.format(sum(times) / len(times))
                             if times else '')
            out.append('| ' + ' | '.join(cells) + ' |')
        if real:
            out.append('| real data | {:.0f} | | {:.2f} | | {:.3f} | |{}'
                       .format(real['modes'], real['kl'], real['diversity'],
                               '' if at else ' |'))
        out.append('')
    return '\n'.join(out)


def write_pictures(out, seeds):
    """OUT/compare_sSEED.png (the four ``authors`` variants over training)
    for every seed whose four runs have finished."""
    written = []
    for seed in seeds:
        es = [('authors', seed, v) for v in SETS['authors'][0]]
        if not all(is_trained(out, e) for e in es):
            continue
        path = os.path.join(out, 'compare_s{}.png'.format(seed))
        compare.compare_image([(V.get(e[2]).label, run_dir(out, e)) for e in es],
                              32).save(path)
        written.append(path)
    return written


def table_name(at=None):
    """OUT/table (the final snapshots) or OUT/table_iterN, without suffix."""
    return 'table' if at is None else 'table_iter{}'.format(at)


def write_table(out, log=print, at=None):
    rows, real = summarize(collect(out, at))
    text = markdown(rows, real, at)
    runs.write_json(os.path.join(out, table_name(at) + '.json'),
                    {'rows': rows, 'real': real, 'iteration': at,
                     'machine': runs.machine_text()})
    runs.write_text(os.path.join(out, table_name(at) + '.md'), text)
    log(text)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--sets', nargs='+', choices=list(SETS),
                   default=['authors'])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--iterations', type=int, default=4688,
                   help='per run (default %(default)s: 5 epochs of the '
                   '60,000 stacked images at batch 64)')
    p.add_argument('--samples', type=int, default=26000,
                   help='generated samples for modes and KL (default '
                   '%(default)s)')
    p.add_argument('--cache', help='MNIST classifier cache folder')
    p.add_argument('--out', default='result/stacked_mnist')
    p.add_argument('--jobs', type=int, default=1,
                   help='runs at a time, each its own process')
    p.add_argument('--table-only', action='store_true',
                   help='write the table of what is evaluated; run nothing')
    p.add_argument('--no-train', dest='train', action='store_false',
                   help='evaluate the runs that have finished; train none '
                   '(while another process trains them)')
    p.add_argument('--at', type=int, metavar='ITERATION',
                   help='evaluate the snapshots of this iteration (a '
                   'multiple of 1000, the snapshot interval) into '
                   'metrics_iterN.json and table_iterN.md: the variants '
                   'early in training')
    p.add_argument('--evaluate', metavar='RUN|real', help=argparse.SUPPRESS)
    gopt.add_device(p, help='where every run trains and is evaluated: '
                    + gopt.DEVICE_HELP)
    args = p.parse_args(argv)
    if args.iterations < 1 or args.samples < 2 or args.jobs < 1:
        p.error('--iterations and --jobs must be positive and --samples at '
                'least 2')
    if args.at is not None and not (
            0 < args.at < args.iterations and args.at % SNAPSHOT_INTERVAL == 0):
        p.error('--at {}: no snapshot of that iteration; give a multiple of '
                '{} below --iterations {}'.format(
                    args.at, SNAPSHOT_INTERVAL, args.iterations))
    try:
        runs.parse_device(args.device)  # a bad --device: now, in one line
    except runs.UsageError as e:
        gopt.fail(p, str(e))  # one line, no usage
    if args.evaluate:  # a child of this script
        return evaluate_one(args, p)
    todo = entries(args.sets, args.seeds)
    failed = []
    if not args.table_only:
        train = [(train_command(args, e), folder(args.out, e) + '.log')
                 for e in todo if not is_trained(args.out, e)]
        if args.train:
            failed += jobs.run_parallel(train, args.jobs)
        evals = [(evaluate_command(args, run_dir(args.out, e), e[1]),
                  folder(args.out, e) + '.log')
                 for e in todo if is_trained(args.out, e)
                 and not is_evaluated(args.out, e, args.samples, args.at)]
        evals += [(evaluate_command(args, 'real', seed),
                   real_path(args.out, seed)[:-5] + '.log')
                  for seed in args.seeds
                  if read_json(real_path(args.out, seed)) is None]
        if evals:  # train it once here, not in every evaluation at once
            try:
                evaluate.load_classifier('stacked-mnist', args.cache)
            except runs.UsageError as e:
                gopt.fail(p, str(e))
        failed += jobs.run_parallel(evals, args.jobs)
    write_pictures(args.out, args.seeds)
    write_table(args.out, at=args.at)
    if failed:
        sys.exit('{} runs failed (see their .log); rerun the same '
                 'command to continue them'.format(len(failed)))


if __name__ == '__main__':
    main()
