"""Train the blog's four variants on the same data, seed and budget, then
compare them.

    python -m animeface.compare --data faces/ --size 64 --out result/compare
    python -m animeface.compare --data stacked-mnist --size 32 --ch 64 \\
        --iterations 1500 --out result/compare_stacked

Variants run in sequence in DIR/<name> (dcgan, fm, mbd, fm_mbd).  The two
feature-matching variants use ``--feature-matching`` (default blog: G keeps
``-log D(G(z))``, through minibatch discrimination, and adds the feature
term; paper: the feature term alone).  ``--resume auto`` continues an
interrupted comparison: a finished variant (result.json) is skipped and an
unfinished one resumes from its last snapshot.  Then it writes

* DIR/compare.png -- rows = variants, columns = points in training, each
  cell the top-left ``--cells`` x ``--cells`` samples of that grid;
* DIR/final_<name>.png -- the final 10x10 grids;
* DIR/analogy_<name>.png -- the analogy grids;
* DIR/metrics.md and DIR/metrics.json -- the collapse metrics of each
  variant and of real data (see :mod:`animeface.evaluate`).
"""
import argparse
import copy
import glob
import os
import re
import shutil
import sys

import numpy
from PIL import Image, ImageDraw

from gan import runs

from animeface import analogy
from animeface import data as adata
from animeface import evaluate
from animeface import training
from gan import multinode

# name, label, minibatch discrimination, feature matching on
VARIANTS = (
    ('dcgan', 'DCGAN', False, False),
    ('fm', 'DCGAN + feature matching', False, True),
    ('mbd', 'DCGAN + minibatch discrimination', True, False),
    ('fm_mbd', 'DCGAN + minibatch discrimination + feature matching', True,
     True),
)
# Options that may differ when a comparison is continued.
FREE_OPTIONS = ('out', 'resume', 'device', 'log_interval')
COMPARE_OPTIONS = ('variants', 'samples', 'cache', 'metrics', 'columns',
                   'cells')


def variant_args(args, name, mbd, fm):
    v = copy.copy(args)
    v.out = os.path.join(args.out, name)
    v.minibatch_discrimination = mbd
    v.feature_matching = args.feature_matching if fm else 'none'
    for key in COMPARE_OPTIONS:
        delattr(v, key)
    return v


def check_same_run(vargs, images):
    """A run folder written by other options cannot be continued."""
    written = training.read_options(vargs.out)
    if written is None:
        return
    wanted = dict(vars(vargs), images=len(images), channels=images.channels,
                  data_kind=images.kind)
    diffs = sorted(k for k in set(written) | set(wanted)
                   if k not in FREE_OPTIONS and written.get(k) != wanted.get(k))
    if diffs:
        raise runs.UsageError(
            '{} was trained with other options ({}); give the same flags or '
            'a new --out'.format(vargs.out, ', '.join(
                '--{} {}'.format(k.replace('_', '-'), written.get(k))
                for k in diffs)))


def train_variant(vargs, images, log=sys.stderr, comm=None):
    def decide():  # under --multi-node rank 0 looks, every rank follows
        check_same_run(vargs, images)
        if training.read_result(vargs.out) is not None:
            print('{}: finished earlier, skipped'.format(vargs.out),
                  file=log)
            return 'skip'
        snapshot = training.latest_snapshot(vargs.out)
        if snapshot:
            print('{}: resuming from {}'.format(vargs.out, snapshot),
                  file=log)
        return snapshot
    snapshot = multinode.root_only(comm, decide)
    if snapshot == 'skip':
        return
    extra = {} if comm is None else {'comm': comm}
    result = training.run(vargs, images, resume_from=snapshot, **extra)
    if result is not None:
        print('{}: {}'.format(vargs.out, training.summary_line(result)),
              file=log)


def grid_files(run_dir):
    """(iteration, path) of the fixed-latent grids of a run, in order."""
    found = []
    for path in glob.glob(os.path.join(run_dir, 'samples_*.png')):
        m = re.search(r'samples_(\d+)\.png$', path)
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def pick_columns(iterations, n):
    """At most n of the sorted ``iterations``, evenly spread, always with
    the last one."""
    if len(iterations) <= n:
        return list(iterations)
    idx = numpy.unique(numpy.linspace(0, len(iterations) - 1, n).round())
    return [iterations[int(i)] for i in idx]


def compare_image(runs, size, columns=8, cells=5, pad=4, label_width=150):
    """One picture: a row per (label, run_dir), a column per point in
    training shared by all runs; cell = top-left cells x cells samples of
    the grid at that iteration.  Returns a PIL image."""
    grids = [dict(grid_files(d)) for _, d in runs]
    shared = sorted(set.intersection(*[set(g) for g in grids]))
    cols = pick_columns(shared, columns)
    cell = cells * size
    header = 16
    width = label_width + len(cols) * (cell + pad)
    height = header + len(runs) * (cell + pad)
    out = Image.new('RGB', (width, height), 'white')
    draw = ImageDraw.Draw(out)
    for c, it in enumerate(cols):
        draw.text((label_width + c * (cell + pad), 2),
                  'iteration {}'.format(it), fill='black')
    for r, ((label, _), grid) in enumerate(zip(runs, grids)):
        y = header + r * (cell + pad)
        for k, line in enumerate(_wrap(label, 22)):
            draw.text((4, y + 4 + 12 * k), line, fill='black')
        for c, it in enumerate(cols):
            with Image.open(grid[it]) as im:
                part = im.convert('RGB').crop((0, 0, cell, cell))
            out.paste(part, (label_width + c * (cell + pad), y))
    return out


def _wrap(text, width):
    lines, line = [], ''
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = (line + ' ' + word).strip()
    return lines + [line]


def metrics_markdown(rows, kind):
    """Markdown table of the metrics rows (dicts with 'variant'); the last
    row is the real data."""
    digits = kind in adata.DIGIT_SETS
    head = ['variant']
    if digits:
        head += ['modes (of {})'.format(rows[0].get('n_modes', '?')),
                 'KL to uniform', 'Inception score']
    head += ['diversity', 'near-duplicate pairs',
             'distance to nearest training image (median)', 'iterations',
             'train time (s)']
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '---|' * len(head)]
    for r in rows:
        cells = [r['variant']]
        if digits:
            cells += [str(r.get('modes', '')), _num(r.get('kl')),
                      _num(r.get('inception_score'))]
        cells += [_num(r.get('diversity'), 3),
                  _num(r.get('near_duplicate_share'), 4),
                  _num(r.get('nearest_train_median'), 1),
                  str(r.get('iterations', '')),
                  _num(r.get('elapsed_seconds'), 0)]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def _num(x, digits=2):
    return '' if x is None else '{:.{}f}'.format(x, digits)


def main(argv=None):
    parser = training.add_arguments(argparse.ArgumentParser(
        description='Train DCGAN, + feature matching, + minibatch '
                    'discrimination and + both on the same data, seed and '
                    'budget; write compare.png, grids, analogies and a '
                    'metrics table.'), variants=False)
    parser.set_defaults(out='result/compare')
    g = parser.add_argument_group('comparison')
    g.add_argument('--feature-matching', default='blog',
                   choices=('paper', 'blog'),
                   help='the form used by the two feature-matching variants:'
                        ' blog (-log D(G(z)) + per-sample feature error) or '
                        'paper (batch-mean feature distance only) (default '
                        '%(default)s)')
    g.add_argument('--variants', nargs='+', default=[v[0] for v in VARIANTS],
                   choices=[v[0] for v in VARIANTS],
                   help='a subset of the variants (default all four)')
    g.add_argument('--samples', type=int, default=26000,
                   help='generated samples for the metrics (default '
                        '%(default)s)')
    g.add_argument('--cache', help='MNIST classifier cache folder')
    g.add_argument('--no-metrics', dest='metrics', action='store_false',
                   help='skip the metrics table (on MNIST data its '
                   'classifier is trained on first use, about 15 minutes '
                   'on a CPU): pictures only')
    g.add_argument('--columns', type=int, default=8,
                   help='points in training shown in compare.png (default '
                        '%(default)s)')
    g.add_argument('--cells', type=int, default=5,
                   help='compare.png shows cells x cells samples per point '
                        '(default %(default)s)')
    args = training.parse_args(parser, argv)
    try:
        training.check_args(args)
        if args.samples < 2 or args.columns < 1 or not 1 <= args.cells <= 10:
            raise runs.UsageError('--samples must be at least 2, '
                                  '--columns at least 1, --cells 1-10')
        if args.resume not in (None, 'auto'):
            raise runs.UsageError(
                '--resume {}: a comparison continues with --resume auto '
                '(each variant from its latest snapshot)'.format(
                    args.resume))
        comm = multinode.from_options(args.multi_node, args.communicator,
                                      args.device)
        multinode.root_only(comm, lambda: runs.prepare_out(args.out,
                                                           args.resume))
        return run(args, comm=comm)
    except runs.UsageError as e:
        multinode.error(parser, str(e))


def run(args, log=sys.stderr, comm=None):
    """Train the chosen variants, then (rank 0 of a multi-node run alone)
    evaluate them and write the comparison; None on the other ranks."""
    images = multinode.root_only(comm, lambda: adata.load(
        args.data, args.size, seed=args.seed, log=log))
    if multinode.is_root(comm):
        runs.write_json(os.path.join(args.out, 'options.json'), vars(args),
                        sort_keys=True)
    chosen = [v for v in VARIANTS if v[0] in args.variants]
    variant_runs = []
    for name, label, mbd, fm in chosen:
        vargs = variant_args(args, name, mbd, fm)
        train_variant(vargs, images, log, comm)
        variant_runs.append((name, label, vargs))
    if not multinode.is_root(comm):  # rank 0 evaluates and writes
        return None

    classifier, classifier_info = None, None
    if args.metrics:
        classifier, classifier_info = evaluate.load_classifier(
            images.kind, args.cache)
    rows = []
    for name, label, vargs in variant_runs:
        shutil.copyfile(os.path.join(vargs.out, 'samples_latest.png'),
                        os.path.join(args.out, 'final_{}.png'.format(name)))
        gen = analogy.load_generator(training.latest_snapshot(vargs.out))
        analogy.write_analogy(gen, os.path.join(
            args.out, 'analogy_{}.png'.format(name)), seed=args.seed)
        row = {'variant': label, 'name': name}
        if args.metrics:
            row.update(evaluate.evaluate_run(
                vargs.out, images, args.samples, classifier, seed=args.seed))
        row.update(training.read_result(vargs.out))
        row.pop('machine', None)
        rows.append(row)
        if args.metrics:
            print('{}: {}'.format(name, evaluate.metrics_line(row)),
                  file=log)

    compare_image([(label, v.out) for _, label, v in variant_runs],
                  args.size, args.columns, args.cells).save(
                      os.path.join(args.out, 'compare.png'))
    if not args.metrics:
        return {'options': dict(vars(args)), 'rows': rows}
    reference = evaluate.reference_metrics(images, args.samples, classifier,
                                           seed=args.seed)
    reference['variant'] = 'real data'
    rows.append(reference)
    summary = {'options': dict(vars(args)), 'classifier': classifier_info,
               'rows': rows}
    runs.write_json(os.path.join(args.out, 'metrics.json'), summary)
    runs.write_text(os.path.join(args.out, 'metrics.md'),
                    metrics_markdown(rows, images.kind))
    print(metrics_markdown(rows, images.kind), file=log)
    return summary


if __name__ == '__main__':
    main()
