"""The four-way comparison over seeds, with the mean and spread of its
numbers, as Markdown and JSON: on Stacked-MNIST (modes and KL, the
default) or on a folder of colour images (the quality number, diversity,
nearest-image distance, D's loss late in training and the run-health
warnings).  Resumable: rerun the same command to continue; a finished run
(result.json) is skipped, an unfinished one resumes from its last
snapshot, an evaluated one (metrics.json) is not evaluated again.

    python -m experiments.four_way_seeds --seeds 0 1 2 --jobs 2 \\
        --out result/stacked_mnist [--sets authors raw fixed] [--device 0]
    python -m experiments.four_way_seeds --data data/emoji --iterations 6000 \\
        --sets authors noise-0.3 authors-d gen-steps-3 --variants mbd \\
        --jobs 2 --out result/emoji_seeds

Sets (each a variant list and the flags that make it):

* ``authors`` -- all four variants with the authors' minibatch
  discrimination and the blog's feature-matching form, D as Radford et
  al.'s (``--input-noise 0 --dis-dropout 0``; so are the sets below but
  ``noise-0.3`` and ``authors-d``);
* ``raw`` -- the two minibatch-discrimination variants with the raw-T
  layer (``--mbd-form raw``);
* ``fixed`` -- minibatch discrimination with T kept at its data-dependent
  init (``--mbd-fixed-t``), against the learned T of ``authors``;
* ``gen-steps-3`` -- the two minibatch-discrimination variants with the
  authors' three G updates per D update (``--gen-steps 3``);
* ``noise-0.3`` -- all four variants with the blog's Gaussian noise 0.3 on
  D's input and no dropout (``--input-noise 0.3 --dis-dropout 0``);
* ``authors-d`` -- all four variants with the authors' CIFAR-10 noise 0.2
  and dropout 0.5 in D (``--input-noise 0.2 --dis-dropout 0.5``): the
  defaults of ``animeface.compare``.

``--variants`` keeps only the named variants of each set.  Every run is
``python -m animeface.compare --data DATA --size S --ch C --iterations N
--variants V`` in OUT/SET_sSEED_V (the variant's own folder is
OUT/SET_sSEED_V/V), then evaluated as ``python -m animeface.evaluate``
does, on ``--samples`` samples (the real data's values once per seed, in
OUT/real_sSEED.json).  Writes OUT/table.md and OUT/table.json from every
evaluated run under OUT, and OUT/compare_sSEED.png (the four ``authors``
variants' samples over training; OUT/compare_SET_sSEED.png for the other
sets) for every seed whose runs of a set finished, and OUT/dis_loss.png
(D's loss over training of every run, a colour per set).  ``--at N`` evaluates
the snapshots of iteration N instead (into metrics_iterN.json) and writes
OUT/table_iterN.md and .json: the variants early in training, where a
collapse shows.
"""
import argparse
import glob
import json
import os
import sys

from gan import jobs, runs
from gan import options as gopt

from gan import health

from animeface import build as abuild
from animeface import evaluate
from animeface import compare
from animeface import data as adata
from animeface import variants as V

MBD = ('mbd', 'fm_mbd')
# D as Radford et al.'s, without the comparison's default noise and dropout
PLAIN_D = ['--input-noise', '0', '--dis-dropout', '0']
SETS = {
    'authors': (V.DEFAULT, PLAIN_D),
    'raw': (MBD, PLAIN_D + ['--mbd-form', 'raw']),
    'fixed': (('mbd',), PLAIN_D + ['--mbd-fixed-t']),
    'noise-0.3': (V.DEFAULT, ['--input-noise', '0.3', '--dis-dropout', '0']),
    'authors-d': (V.DEFAULT, ['--input-noise', '0.2',
                              '--dis-dropout', '0.5']),
    'gen-steps-3': (MBD, PLAIN_D + ['--gen-steps', '3']),
}
SET_TITLES = {
    'authors': "the authors' minibatch discrimination (learned T), the "
               "blog's feature-matching form, D without noise or dropout",
    'raw': 'raw-T minibatch discrimination (T ~ N(0, 0.05^2), no '
           'normalisation, scale or bias)',
    'fixed': "the authors' minibatch discrimination with T fixed at its "
             "data-dependent init",
    'noise-0.3': "the blog's Gaussian noise 0.3 on D's input",
    'authors-d': "the authors' CIFAR-10 measures in D: noise 0.2 on its "
                 "input, dropout 0.5 after its hidden convolutions",
    'gen-steps-3': "the authors' three G updates per D update",
}
SNAPSHOT_INTERVAL = 1000
LOG_INTERVAL = 100
# the late phase whose D loss the folder table reports
LATE = 1000


def common(args):
    """Flags every run shares (also the folder check of
    animeface.compare)."""
    return ['--data', args.data, '--size', str(args.size), '--ch',
            str(args.ch), '--snapshot-interval', str(SNAPSHOT_INTERVAL),
            '--log-interval', str(LOG_INTERVAL), '--no-metrics']


def entries(sets, seeds, variants=None):
    """(set, seed, variant) in the order they run: seed by seed; only
    ``variants`` when given."""
    return [(s, seed, v) for seed in seeds for s in sets
            for v in SETS[s][0] if not variants or v in variants]


def folder(out, entry):
    """The compare folder of an entry (its run is folder/VARIANT)."""
    s, seed, v = entry
    return os.path.join(out, '{}_s{}_{}'.format(s, seed, v))


def run_dir(out, entry):
    return os.path.join(folder(out, entry), entry[2])


def train_command(args, entry):
    s, seed, v = entry
    return [sys.executable, '-m', 'animeface.compare'] + common(args) + [
        '--iterations', str(args.iterations),
        '--grid-interval', str(max(1, args.iterations // 8)),
        '--seed', str(seed), '--variants', v, '--out', folder(args.out, entry),
        '--resume', 'auto', '--device', args.device] + SETS[s][1]


def evaluate_command(args, target, seed):
    """A child that evaluates one run folder (its metrics.json) or, for
    ``target`` 'real', the real data of a seed (OUT/real_sSEED.json)."""
    return [sys.executable, '-m', 'experiments.four_way_seeds',
            '--evaluate', target, '--seeds', str(seed),
            '--samples', str(args.samples), '--out', args.out,
            '--data', args.data, '--size', str(args.size),
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
        data = adata.load(args.data, args.size, seed=seed)
        classifier, _ = evaluate.load_classifier(data.kind, args.cache,
                                                 device)
        features = evaluate.load_features(args.data, data.kind, args.cache,
                                          device)
        if args.evaluate == 'real':
            result = evaluate.reference_metrics(data, args.samples,
                                                classifier, seed=seed,
                                                features=features)
            result['samples'] = args.samples
            runs.write_json(real_path(args.out, seed), result)
        else:
            result = evaluate.evaluate_run(args.evaluate, data, args.samples,
                                           classifier, seed=seed,
                                           iteration=args.at, device=device,
                                           features=features)
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
        m.update(training_health(os.path.dirname(path), result))
        found.append(dict(m, set=s, seed=int(seed), variant=v,
                          train_seconds=result.get('elapsed_seconds'),
                          iterations=result.get('iterations')))
    return sorted(found, key=lambda r: (list(SETS).index(r['set']),
                                        SETS[r['set']][0].index(r['variant']),
                                        r['seed']))


def training_health(run, result):
    """What a run's log and result.json say of its training: D's mean
    loss over the last :data:`LATE` iterations, the share of log entries
    after the health checks' warm-up in which D's loss is under the
    floor of the D-wins warning, and the warnings by today's rules: those
    of the sample checks replayed from result.json's checks
    (:func:`gan.health.sample_warnings`; the result's own without them),
    the D-wins ones found again in the log (:func:`gan.health.dis_wins`)."""
    log = read_json(os.path.join(run, 'log')) or []
    key = health.DIS_LOSS_KEY
    entries = [e for e in log if e.get(key) is not None]
    warmup = abuild.health_warmup(result.get('iterations') or (
        entries[-1]['iteration'] if entries else 0))
    checks = result.get('health')
    sample = health.sample_warnings(checks) if checks else [
        w for w in result.get('warnings') or () if w['kind'] != 'dis-wins']
    out = {'warnings': sorted(
        [{'iteration': w['iteration'], 'kind': w['kind']} for w in sample] +
        [{'iteration': it, 'kind': 'dis-wins'}
         for it, _, _ in health.dis_wins(log, warmup)],
        key=lambda w: w['iteration'])}
    if not entries:
        return out
    last = entries[-1]['iteration']
    late = [e[key] for e in entries if e['iteration'] > last - LATE]
    after = [e[key] for e in entries if e['iteration'] > warmup]
    out['dis_loss_late'] = sum(late) / len(late)
    if after:
        out['dis_wins_share'] = sum(
            v < health.DIS_LOSS_FLOOR for v in after) / float(len(after))
    return out


# the mean +- std columns of a table, by the data's metrics
DIGIT_KEYS = ('modes', 'kl', 'diversity', 'near_duplicate_share')
FOLDER_KEYS = ('frechet', 'diversity', 'nearest_train_median',
               'dis_loss_late', 'dis_wins_share')


def summarize(found):
    """Rows per (set, variant): mean +- std over seeds; then the real
    data's row (the mean of the evaluations' reference values)."""
    groups = {}
    for r in found:
        groups.setdefault((r['set'], r['variant']), []).append(r)
    rows = []
    for (s, v), rs in groups.items():
        digits = all('modes' in r for r in rs)
        row = {'set': s, 'variant': v, 'label': V.get(v).label,
               'seeds': [r['seed'] for r in rs],
               'iterations': [r['iterations'] for r in rs],
               'train_seconds': [r['train_seconds'] for r in rs]}
        if digits:
            row.update(modes=[r['modes'] for r in rs],
                       kl=[round(r['kl'], 3) for r in rs])
        else:
            row.update(frechet=[r.get('frechet') for r in rs],
                       dis_loss_late=[r.get('dis_loss_late') for r in rs],
                       warnings=[health.summary(r.get('warnings'))
                                 for r in rs])
        for key in DIGIT_KEYS if digits else FOLDER_KEYS:
            values = [r[key] for r in rs if r.get(key) is not None]
            m, sd = jobs.mean_std(values)
            row[key + '_mean'], row[key + '_std'] = m, sd
        rows.append(row)
    reals = [r['real'] for r in found if r.get('real')]
    real = None
    if reals:
        keys = ('modes', 'kl', 'diversity') if 'modes' in reals[0] else (
            'frechet', 'diversity', 'nearest_train_median')
        real = {k: jobs.mean_std([x[k] for x in reals
                                  if x.get(k) is not None])[0] for k in keys}
    return rows, real


def _cell(row, key, fmt):
    m, s = row[key + '_mean'], row[key + '_std']
    if m is None:
        return ''
    return (fmt + ' +- ' + fmt).format(m, s)


def _each(values, fmt):
    return ', '.join('' if v is None else fmt.format(v) for v in values)


def _by_set(rows, at, heads):
    """(the set's rows, the lines of its heading and table head) for
    every set with rows, in the order of :data:`SETS`."""
    for s in SETS:
        mine = [r for r in rows if r['set'] == s]
        if mine:
            where = ', the snapshots of iteration {}'.format(at) if at \
                else ''
            yield mine, ['**{}** ({}{})'.format(s, SET_TITLES[s], where),
                         '', '| ' + ' | '.join(heads) + ' |',
                         '|---' * len(heads) + '|']


def markdown(rows, real, at=None):
    if rows and 'modes' not in rows[0]:
        return folder_markdown(rows, real, at)
    out = []
    heads = ['variant', 'modes (of 1000)', 'modes per seed',
             'KL to uniform', 'KL per seed', 'diversity', 'seeds'] + (
                 [] if at else ['mean train time (s)'])
    for mine, head in _by_set(rows, at, heads):
        out += head
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


def folder_markdown(rows, real, at=None):
    """The table of runs on an image folder: the quality number, spread
    and memorisation, and how training went."""
    out = []
    heads = ['variant', 'Fréchet distance', 'per seed', 'diversity',
             'nearest training image (median RMS)',
             'D\'s loss, last {} it.'.format(LATE), 'per seed',
             'log entries with D\'s loss < {}'.format(
                 health.DIS_LOSS_FLOOR), 'warnings', 'seeds']
    for mine, head in _by_set(rows, at, heads):
        out += head
        for r in mine:
            share = r['dis_wins_share_mean']
            out.append('| ' + ' | '.join([
                r['label'], _cell(r, 'frechet', '{:.1f}'),
                _each(r['frechet'], '{:.1f}'),
                _cell(r, 'diversity', '{:.3f}'),
                _cell(r, 'nearest_train_median', '{:.1f}'),
                _cell(r, 'dis_loss_late', '{:.3f}'),
                _each(r['dis_loss_late'], '{:.3f}'),
                '' if share is None else '{:.0f} %'.format(100 * share),
                '; '.join('s{}: {}'.format(seed, w) for seed, w in zip(
                    r['seeds'], r['warnings']) if w) or 'none',
                ', '.join(str(x) for x in r['seeds'])]) + ' |')
        if real:
            out.append('| real data | {:.1f} | | {:.3f} | {:.1f} | | | | | |'
                       .format(real['frechet'] or 0, real['diversity'],
                               real['nearest_train_median']))
        out.append('')
    return '\n'.join(out)


def write_pictures(out, seeds, size=32, variants=None):
    """OUT/dis_loss.png (D's loss over training of every run, finished or
    not), OUT/compare_sSEED.png (the four ``authors`` variants over
    training) and OUT/compare_SET_sSEED.png (another set's variants) for
    every seed whose runs of a set (its ``variants`` only, when given)
    have all finished."""
    written = []
    curves = loss_curves(out, variants)
    if curves:
        fig = loss_figure(curves)
        path = os.path.join(out, 'dis_loss.png')
        fig.savefig(path, dpi=90)
        written.append(path)
        import matplotlib.pyplot as plt
        plt.close(fig)
    for seed in seeds:
        for s, (names, _) in SETS.items():
            es = [(s, seed, v) for v in names
                  if not variants or v in variants]
            if not es or not all(is_trained(out, e) for e in es):
                continue
            path = os.path.join(out, 'compare_s{}.png'.format(seed)
                                if s == 'authors' else
                                'compare_{}_s{}.png'.format(s, seed))
            compare.compare_image([(V.get(e[2]).label, run_dir(out, e))
                                   for e in es], size).save(path)
            written.append(path)
    return written


def run_entries(out, variants=None):
    """(set, seed, variant) of every run folder under ``out`` (finished or
    not), by set in :data:`SETS` order, then variant, then seed."""
    found = []
    for s, (names, _) in SETS.items():
        for v in names:
            if variants and v not in variants:
                continue
            for path in glob.glob(os.path.join(out, '{}_s*_{}'.format(s,
                                                                     v))):
                seed = os.path.basename(path)[len(s) + 2:-len(v) - 1]
                if seed.isdigit() and os.path.isdir(path):
                    found.append((s, int(seed), v))
    return sorted(found, key=lambda e: (list(SETS).index(e[0]),
                                        SETS[e[0]][0].index(e[2]), e[1]))


def loss_curves(out, variants=None):
    """{variant: [(set, seed, iterations, D's loss)]}: D's loss over
    training from the log of every run under ``out`` that has one."""
    curves = {}
    key = health.DIS_LOSS_KEY
    for e in run_entries(out, variants):
        entries = [x for x in read_json(os.path.join(run_dir(out, e), 'log'))
                   or () if x.get(key) is not None]
        if entries:
            curves.setdefault(e[2], []).append((
                e[0], e[1], [x['iteration'] for x in entries],
                [x[key] for x in entries]))
    return curves


def loss_figure(curves):
    """D's loss over training, a panel per variant, a line per run
    (colour: the set), log scale, the D-wins floor dashed."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = [v for v in V.names() if v in curves]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6),
                             squeeze=False)
    sets = list(SETS)
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for ax, v in zip(axes[0], names):
        shown = set()
        for s, seed, its, loss in curves[v]:
            colour = colours[sets.index(s) % len(colours)]
            ax.plot(its, loss, color=colour, lw=1, alpha=0.8,
                    label=None if s in shown else s)
            shown.add(s)
        ax.axhline(health.DIS_LOSS_FLOOR, color='grey', ls='--', lw=0.8)
        ax.set_yscale('log')
        ax.set_title(V.get(v).label, fontsize=9)
        ax.set_xlabel('iteration')
        ax.set_ylabel("D's loss")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


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


def parser():
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__)
    p.add_argument('--data', default='stacked-mnist',
                   help='stacked-mnist (default), mnist, or a folder of '
                   'images (one made by animeface.emoji adds the quality '
                   'number)')
    p.add_argument('--size', type=int, default=32,
                   help='image size (default %(default)s)')
    p.add_argument('--ch', type=int, default=64,
                   help='network width (default %(default)s)')
    p.add_argument('--sets', nargs='+', choices=list(SETS),
                   default=['authors'])
    p.add_argument('--variants', nargs='+', choices=V.names(),
                   help='only these variants of each set (default: all)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--iterations', type=int, default=4688,
                   help='per run (default %(default)s: 5 epochs of the '
                   '60,000 stacked images at batch 64)')
    p.add_argument('--samples', type=int, default=None,
                   help='generated samples for the metrics (default 26000 '
                   'on digits, for modes and KL; 1000 on a folder)')
    p.add_argument('--cache', help='cache folder of the metrics\' '
                   'classifiers')
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
    return p


def data_kind(data):
    return data if data in adata.DIGIT_SETS else 'folder'


def parse(argv=None, p=None):
    """The flags, with the data-dependent defaults filled in."""
    p = p or parser()
    args = p.parse_args(argv)
    if args.samples is None:
        args.samples = 1000 if data_kind(args.data) == 'folder' else 26000
    return args


def main(argv=None):
    p = parser()
    args = parse(argv, p)
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
        kind = data_kind(args.data)
        if kind == 'folder' and not os.path.isdir(args.data):
            raise runs.UsageError('--data {}: no such folder (give a folder '
                                  'of images, mnist or stacked-mnist)'
                                  .format(args.data))
    except runs.UsageError as e:
        gopt.fail(p, str(e))  # one line, no usage
    if args.evaluate:  # a child of this script
        return evaluate_one(args, p)
    todo = entries(args.sets, args.seeds, args.variants)
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
                evaluate.load_classifier(kind, args.cache)
                evaluate.load_features(args.data, kind, args.cache)
            except runs.UsageError as e:
                gopt.fail(p, str(e))
        failed += jobs.run_parallel(evals, args.jobs)
    write_pictures(args.out, args.seeds, args.size, args.variants)
    write_table(args.out, at=args.at)
    if failed:
        sys.exit('{} runs failed (see their .log); rerun the same '
                 'command to continue them'.format(len(failed)))


if __name__ == '__main__':
    main()
