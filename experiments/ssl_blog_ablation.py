"""Where the blog's 95 % comes from: start from ``train_ssl.py --preset
blog`` (the blog's code on the post's day; ``--preset blog-2016-12-25``
and ``blog-2017`` its later versions) and switch one of its choices at a
time to the authors', then switch them cumulatively, in the order of the
single effects (the largest gain first).  Same seeds and budget for every
row; resumable.

    python -m experiments.ssl_blog_ablation --epochs 20 --seeds 1 2 \\
        --out result/ssl_blog_ablation --jobs 2

A switch that does not change the base's options (``fake-term`` when the
base already has the authors' term) is left out.  ``--archive DIR`` keeps
every finished run's ``options.json``, ``log`` and ``result.json`` in
DIR/ROW/seedS (small files, to commit) and puts them back into OUT when
they are missing there, so the same command continues the table on another
machine.

Every run lies in OUT/ROW/seedS (seed = data seed = S); a run whose
result.json exists is skipped, one with a snapshot continues from it, so
the same command continues a stopped table (rewritten after every finished
run, also with ``--jobs``).  The cumulative rows start
once every single row has finished; their order is then written to
OUT/cumulative_order.json and kept (``--order`` gives it instead).
Writes OUT/ablation.md (the table), OUT/ablation.json and OUT/ablation.png
(test error against epoch, one line per row, mean over the seeds).
Flags this script does not know go to every run (``--device 0``,
``--iters-per-epoch 2`` for a quick check).
"""
import argparse
import json
import os
import shutil
import sys

from gan import jobs, runs
from gan import options as gopt
from mnist_ssl import batch
from mnist_ssl import options as sopt


# (name, what changes, flags(args) -> list): the authors' choices
SINGLES = [
    ('fake-term', 'D\'s loss on generated images -log(1 - D(G(z))) (the '
     'authors\', and the post\'s text) instead of +log D(G(z))',
     lambda a: ['--fake-term', 'log-one-minus-d']),
    ('adam', 'the authors\' Adam (epsilon inside the square root) and '
     'rate: 0.003, decayed linearly to 0 over the last third',
     lambda a: ['--adam', 'eps-in-sqrt', '--lr', '0.003', '--lr-schedule',
                'linear', '--lr-decay-epochs',
                str(sopt.default_lr_decay_epochs(a.epochs))]),
    ('weight-norm', 'weight norm with data-dependent init in D',
     lambda a: ['--weight-norm']),
    ('fm-paper', 'feature matching in the paper\'s form (batch means, no '
     '-log D) on a second unlabeled batch',
     lambda a: ['--feature-matching', 'paper', '--fm-target', 'unlabeled']),
    ('unlabeled-weight', 'the authors\' unsupervised weight (half the '
     'blog\'s)', lambda a: ['--unlabeled-weight', '1']),
    ('authors-d', 'the authors\' D: dense 1000-500-250-250-250, ReLU, '
     'noise after it', lambda a: ['--dis-net', 'paper']),
    ('authors-g', 'the authors\' G: z 100 ~ U(0, 1), softplus, weight-normed '
     'sigmoid output; images in [0, 1]', lambda a: ['--gen-net', 'paper']),
    ('averaging', 'evaluation with a parameter average of D',
     lambda a: ['--ema-rate', repr(a.ema_rate)]),
]
SINGLE_NAMES = [s[0] for s in SINGLES]
ORDER_FILE = 'cumulative_order.json'


def active_singles(args, extra):
    """The names of the singles that change the base run's options."""
    def opts(switched):
        o = gopt.to_dict(run_options(args, extra, 'x', switched,
                                     args.seeds[0]))
        o.pop('out')
        return o
    base = opts([])
    return [n for n in SINGLE_NAMES if opts([n]) != base]


def cumulative_rows(order):
    """[(row name, the singles switched)] of the cumulative path from its
    second step on (its first step is the single row ``order[0]``)."""
    return [('path{}-{}'.format(k, name), order[:k])
            for k, name in enumerate(order, 1) if k > 1]


def table_rows(args, order):
    """(row name, folder row, switched) of the table: the blog, the
    singles, then the cumulative path, whose first step reuses the run of
    its single row."""
    rows = [('blog', 'blog', [])] + [(n, n, [n]) for n in args.singles]
    if order:
        rows.append(('path1-' + order[0], order[0], order[:1]))
        rows += [(name, name, sw) for name, sw in cumulative_rows(order)]
    return rows


def row_flags(args, switched):
    by_name = {s[0]: s[2] for s in SINGLES}
    flags = []
    for name in switched:
        flags += by_name[name](args)
    return flags


def run_options(args, extra, row, switched, seed):
    """train_ssl.py's resolved options of one run."""
    out = os.path.join(args.out, row, 'seed{}'.format(seed))
    o = sopt.parser().parse(
        ['--preset', args.preset] + extra + row_flags(args, switched) + [
            '--epochs', str(args.epochs), '--labels', str(args.labels),
            '--seed', str(seed), '--data-seed', str(seed), '--out', out])
    return sopt.resolve(o, progress=False)


def result_of(folder):
    path = os.path.join(folder, 'result.json')
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def test_errors(result):
    """Test-set errors of a run (the averaged D where there is one): the
    test set is reported alongside the validation set of the blog's
    protocol, or is the evaluation set itself."""
    return result.get('test_set_errors', result['test_errors'])


def validation_errors(result):
    return result['test_errors'] if result['evaluated_on'] == \
        'validation' else None


def read_order(args):
    """The cumulative order: --order, else the saved one, else (every single
    row finished) the singles by mean test error, best first, saved; None
    while singles are missing."""
    path = os.path.join(args.out, ORDER_FILE)
    saved = json.load(open(path)) if os.path.exists(path) else None
    if args.order:
        if saved and saved != args.order:
            raise sopt.OptionError(
                '--order {} differs from the saved order {} in {}: remove '
                'that file and the path* folders to change it'.format(
                    ','.join(args.order), ','.join(saved), path))
        order = args.order
    elif saved:
        order = saved
    else:
        means = {}
        for name in args.singles:
            errs = []
            for seed in args.seeds:
                r = result_of(os.path.join(args.out, name,
                                           'seed{}'.format(seed)))
                if r is None:
                    return None
                errs.append(test_errors(r))
            means[name] = sum(errs) / float(len(errs))
        order = sorted(args.singles, key=lambda n: (
            means[n], args.singles.index(n)))
    if not saved:
        os.makedirs(args.out, exist_ok=True)
        runs.write_json(path, order)
    return order


def all_rows(args, order):
    rows = [('blog', [])] + [(n, [n]) for n in args.singles]
    return rows + (cumulative_rows(order) if order else [])


def describe(args, name, switched):
    if not switched:
        return 'none: the blog\'s code (--preset {})'.format(args.preset)
    if name.startswith('path'):
        return ' + '.join(switched)
    return dict((s[0], s[1]) for s in SINGLES)[switched[0]]


def mean_curve(folders):
    """Mean test error (%) per epoch over the finished runs' logs."""
    per_epoch = {}
    for folder in folders:
        path = os.path.join(folder, 'log')
        if not os.path.exists(path):
            continue
        for e in json.load(open(path)):
            key = 'test/error_avg' if 'test/error_avg' in e else None
            if key is None or 'epoch' not in e:
                continue
            per_epoch.setdefault(e['epoch'], []).append(100.0 * e[key])
    epochs = sorted(per_epoch)
    return epochs, [sum(per_epoch[e]) / len(per_epoch[e]) for e in epochs]


def collect(args, order):
    rows = []
    for name, folder, switched in table_rows(args, order):
        results = [result_of(os.path.join(args.out, folder,
                                          'seed{}'.format(s)))
                   for s in args.seeds]
        done = [r for r in results if r is not None]
        if not done:
            continue
        test = [test_errors(r) for r in done]
        rows.append({
            'name': name, 'change': describe(args, name, switched),
            'switched': switched,
            'seeds': [r['seed'] for r in done],
            'test_errors': test,
            'test_errors_raw': [r.get('test_set_errors_raw',
                                      r['test_errors_raw']) for r in done],
            'validation_errors': [validation_errors(r) for r in done],
            'epochs': [r['epochs'] for r in done],
            'minutes': [round(r['wall_seconds'] / 60.0, 1) for r in done],
            'test_mean_std': jobs.mean_std(test),
        })
    return rows


def fmt(values):
    return ', '.join('-' if v is None else '{:g}'.format(v) for v in values)


def markdown(args, rows):
    base = next((r for r in rows if r['name'] == 'blog'), None)
    lines = [
        'Test errors out of 10,000 (validation: of the 10,000 held-out '
        'training images), {} epochs, seeds {}, {} labels; each row is '
        '`train_ssl.py --preset {}` with the flags of its switches.'
        .format(args.epochs, ' '.join(map(str, args.seeds)), args.labels,
                args.preset),
        '',
        '| row | switched to the authors\' choice | test errors (seeds) | '
        'mean +- std | vs blog | raw D | validation errors | minutes |',
        '|---|---|---|---|---|---|---|---|']
    for r in rows:
        mean, std = r['test_mean_std']
        delta = ('{:+.0f}'.format(mean - base['test_mean_std'][0])
                 if base and r is not base and mean is not None else '')
        lines.append('| {} | {} | {} | {} | {} | {} | {} | {} |'.format(
            r['name'], r['change'], fmt(r['test_errors']),
            '{:.1f} +- {:.1f}'.format(mean, std) if std is not None
            else '{:.1f}'.format(mean), delta, fmt(r['test_errors_raw']),
            fmt(r['validation_errors']), fmt(r['minutes'])))
    return '\n'.join(lines) + '\n'


def plot(args, order, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    rows = table_rows(args, order)
    groups = [('one at a time', rows[:1 + len(args.singles)]),
              ('cumulative', rows[:1] + rows[1 + len(args.singles):])]
    for ax, (title, group) in zip(axes, groups):
        for name, folder, _ in group:
            epochs, err = mean_curve([
                os.path.join(args.out, folder, 'seed{}'.format(s))
                for s in args.seeds])
            if epochs:
                ax.plot(epochs, err, label=name,
                        linewidth=2.5 if name == 'blog' else 1.2)
        ax.set_title(title)
        ax.set_xlabel('epoch')
        ax.set_yscale('log')
        ax.grid(True, which='both', alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel('test error (%), mean over seeds')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# the files of a finished run that --archive keeps
ARCHIVED = ('options.json', 'log', 'result.json')


def _finished_runs(root):
    """(ROW/seedS, folder) of every finished run under ``root``."""
    if not root or not os.path.isdir(root):
        return []
    found = []
    for row in sorted(os.listdir(root)):
        for seed in sorted(os.listdir(os.path.join(root, row))) \
                if os.path.isdir(os.path.join(root, row)) else []:
            folder = os.path.join(root, row, seed)
            if os.path.isfile(os.path.join(folder, 'result.json')):
                found.append((os.path.join(row, seed), folder))
    return found


def _copy_run(src, dst):
    os.makedirs(dst, exist_ok=True)
    for name in ARCHIVED:
        if os.path.isfile(os.path.join(src, name)):
            shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))


def archive(args, names=(ORDER_FILE,)):
    """Finished runs of OUT, and the files ``names`` of OUT, into
    --archive."""
    os.makedirs(args.archive, exist_ok=True)
    for rel, folder in _finished_runs(args.out):
        _copy_run(folder, os.path.join(args.archive, rel))
    for name in names:
        if os.path.isfile(os.path.join(args.out, name)):
            shutil.copyfile(os.path.join(args.out, name),
                            os.path.join(args.archive, name))


def restore(args):
    """Archived runs that OUT lacks, back into OUT (finished runs there are
    then skipped)."""
    for rel, folder in _finished_runs(args.archive):
        dst = os.path.join(args.out, rel)
        if not os.path.isfile(os.path.join(dst, 'result.json')):
            _copy_run(folder, dst)
    order = os.path.join(args.archive, ORDER_FILE)
    if os.path.isfile(order) and not os.path.isfile(
            os.path.join(args.out, ORDER_FILE)):
        os.makedirs(args.out, exist_ok=True)
        shutil.copyfile(order, os.path.join(args.out, ORDER_FILE))


def write_table(args):
    order = read_order(args)
    rows = collect(args, order)
    stem = os.path.join(args.out, 'ablation')
    batch.write(stem, rows, markdown(args, rows))
    plot(args, order, stem + '.png')
    if args.archive:  # the runs and the table
        archive(args, (ORDER_FILE, 'ablation.md', 'ablation.json',
                       'ablation.png'))
    return rows


def child_command(args, extra, row, seed):
    argv = [sys.executable, '-m', 'experiments.ssl_blog_ablation',
            '--only', row, '--seeds', str(seed), '--epochs', str(args.epochs),
            '--labels', str(args.labels), '--ema-rate', repr(args.ema_rate),
            '--preset', args.preset, '--out', args.out, '--no-table']
    if args.order:
        argv += ['--order'] + args.order
    return argv + extra, os.path.join(args.out, row, 'seed{}'.format(seed),
                                      'console.log')


def run_rows(args, extra, rows):
    """Run the (row, switched) list for every seed, in this process or
    ``--jobs`` at a time in children."""
    todo = [(name, switched, seed) for name, switched in rows
            for seed in args.seeds
            if not batch.is_finished(run_options(args, extra, name,
                                                 switched, seed))]
    if args.jobs > 1 and len(todo) > 1:
        failed = jobs.run_parallel(
            [child_command(args, extra, name, seed)
             for name, _, seed in todo], args.jobs,
            on_done=None if args.no_table else lambda: write_table(args))
        if failed:
            write_table(args)
            sys.exit('{} of {} runs failed (see their console.log); rerun '
                     'the same command to continue them'.format(
                         len(failed), len(todo)))
        return
    for name, switched, seed in todo:
        batch.run_one(run_options(args, extra, name, switched, seed))
        if not args.no_table:
            write_table(args)


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument('--preset', choices=('blog', 'blog-2016-12-25',
                                        'blog-2017'), default='blog',
                   help='the base: the blog\'s code on the post\'s day '
                   '(default), two days later or its last version')
    p.add_argument('--epochs', type=gopt.positive_int, default=20,
                   help='epochs of every run (default %(default)s)')
    p.add_argument('--seeds', type=int, nargs='+', default=[1, 2],
                   help='seeds; each is also the data seed (default 1 2)')
    p.add_argument('--labels', type=gopt.positive_int, default=100,
                   help='labeled examples (default %(default)s)')
    p.add_argument('--ema-rate', type=float, default=1e-3,
                   help='rate of the averaging row\'s parameter average '
                   '(default %(default)s, bias-corrected; the authors\' '
                   '1e-4 averages over about 17 epochs)')
    p.add_argument('--order', nargs='+', choices=SINGLE_NAMES, default=None,
                   help='order of the cumulative path (default: the singles '
                   'by mean test error, best first)')
    p.add_argument('--only', nargs='+', default=None,
                   help='run only these rows (blog, the singles, path1-...)')
    p.add_argument('--jobs', type=gopt.positive_int, default=1,
                   help='runs at a time, each in its own process '
                   '(default %(default)s)')
    p.add_argument('--archive', default=None,
                   help='keep the small files of every finished run here '
                   '(and take back those OUT lacks)')
    p.add_argument('--no-table', action='store_true',
                   help=argparse.SUPPRESS)  # children: the parent writes it
    p.add_argument('--out', default='result/ssl_blog_ablation',
                   help='folder of the table and its runs (default '
                   '%(default)s)')
    args, extra = p.parse_known_args(argv)
    with gopt.one_line_errors(p):
        # bad flags and values: now, not in the first run
        sopt.check(sopt.resolve(sopt.parser().parse(
            ['--preset', args.preset] + extra)))
        args.singles = active_singles(args, extra)
        if args.archive and not args.no_table:
            restore(args)
        if args.order and sorted(args.order) != sorted(args.singles):
            p.error('--order must name each of {} once'.format(
                ', '.join(args.singles)))
        singles = [('blog', [])] + [(n, [n]) for n in args.singles]
        if args.only:
            order = read_order(args)
            known = dict(all_rows(args, order))
            unknown = [n for n in args.only if n not in known]
            if unknown:
                p.error('unknown row {} (the cumulative rows exist once '
                        'the single ones have finished): choose from {}'
                        .format(', '.join(unknown), ', '.join(known)))
            run_rows(args, extra, [(n, known[n]) for n in args.only])
        else:
            run_rows(args, extra, singles)
            order = read_order(args)
            run_rows(args, extra, cumulative_rows(order))
        if not args.no_table:
            write_table(args)
    if not args.no_table:
        print(open(os.path.join(args.out, 'ablation.md')).read())


if __name__ == '__main__':
    main()
