"""Why the blog fell short: start from the defaults and switch one of the
blog's choices at a time.  Same seed, data seed and budget for every
variant; in sequence and resumable.

    python -m experiments.ssl_ablation --epochs 10 --out result/ssl_ablation

Writes OUT/ablation.md and OUT/ablation.json, with every finished variant
under OUT (so processes with disjoint --only lists can share one OUT).
``--jobs N`` runs N variants at a time, each in its own process with the
BLAS threads shared out, and its output in OUT/VARIANT/console.log.
"""
import argparse
import json
import os
import sys

from gan import jobs
from gan import options as gopt
from mnist_ssl import batch, report
from mnist_ssl import options as sopt

VARIANTS = [
    ('defaults', 'none (the authors\' setting)', []),
    ('fm-labeled', 'feature matching against the labeled batch',
     ['--fm-target', 'labeled']),
    ('fm-paired', 'blog feature matching: -log D + per-sample MSE',
     ['--feature-matching', 'blog']),
    ('no-dd-init', 'weight norm without data-dependent init',
     ['--no-dd-init']),
    ('no-weight-norm', 'plain dense layers (no weight norm, no init)',
     ['--no-weight-norm']),
    ('chainer-adam', 'Chainer\'s Adam (eps outside the square root)',
     ['--adam', 'chainer']),
    ('blog', 'three of the blog\'s choices together (not its preset): '
     'paired FM on the labeled batch, no weight norm', ['--feature-matching', 'blog', '--fm-target',
                        'labeled', '--no-weight-norm']),
]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--epochs', type=int, default=10)
    p.add_argument('--labels', type=int, default=100)
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--only', nargs='+', default=None,
                   help='run only these variants: ' + ', '.join(
                       v[0] for v in VARIANTS))
    p.add_argument('--out', default='result/ssl_ablation')
    p.add_argument('--jobs', type=gopt.positive_int, default=1,
                   help='variants at a time, each in its own process '
                   '(default %(default)s: in sequence, in this process)')
    args, extra = p.parse_known_args(argv)
    unknown = set(args.only or []) - set(v[0] for v in VARIANTS)
    if unknown:
        p.error('unknown variant {}: choose from {}'.format(
            ', '.join(sorted(unknown)), ', '.join(v[0] for v in VARIANTS)))
    names = [v[0] for v in VARIANTS if not args.only or v[0] in args.only]
    if args.jobs > 1:
        with gopt.one_line_errors(p):  # folders of other runs: now
            todo = [n for n in names if not batch.is_finished(
                variant_options(args, extra, n))]
        run_children(args, extra, todo)
    else:
        for name in names:
            with gopt.one_line_errors(p):
                batch.run_one(variant_options(args, extra, name))
            write_table(args.out)
    print(open(os.path.join(args.out, 'ablation.md')).read())


def variant_options(args, extra, name):
    """train_ssl.py's options for one variant: the defaults (and the
    extra flags) with the variant's own flags, the rate decayed over the
    last third of the epochs."""
    flags = dict((v[0], v[2]) for v in VARIANTS)[name]
    o = sopt.parser().parse(extra + flags + [
        '--epochs', str(args.epochs), '--labels', str(args.labels),
        '--seed', str(args.seed), '--data-seed', str(args.seed),
        '--lr-decay-epochs', str(max(1, args.epochs // 3)),
        '--out', os.path.join(args.out, name)])
    return sopt.resolve(o, progress=False)


def run_children(args, extra, todo):
    """The unfinished variants ``todo``, ``args.jobs`` at a time, each one
    this script with ``--only VARIANT`` in a child process."""
    jobs.run_children(
        [([sys.executable, '-m', 'experiments.ssl_ablation', '--only', n,
           '--epochs', str(args.epochs), '--labels', str(args.labels),
           '--seed', str(args.seed), '--out', args.out] + extra,
          os.path.join(args.out, n, 'console.log')) for n in todo],
        args.jobs, lambda: write_table(args.out), noun='variants')


def write_table(out):
    rows = finished_rows(out)
    batch.write(os.path.join(out, 'ablation'), rows,
                batch.ablation_markdown(rows))


def finished_rows(out):
    """One row per finished variant under OUT, in the order of VARIANTS,
    also those that another process (another --only list) finished."""
    rows = []
    for name, change, _ in VARIANTS:
        done = os.path.join(out, name, 'result.json')
        if not os.path.exists(done):
            continue
        with open(done) as f:
            r = json.load(f)
        rows.append({'name': name, 'change': change,
                     'test_errors': r['test_errors'],
                     'test_errors_raw': r['test_errors_raw'],
                     'epochs': r['epochs'],
                     'collapsed': report.collapse_text(r),
                     'minutes': round(r['wall_seconds'] / 60.0, 1)})
    return rows


if __name__ == '__main__':
    main()
