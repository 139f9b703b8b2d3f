"""Test error of several semi-supervised runs on one plot, over epochs and
over minutes of training, and their errors side by side at chosen epochs:

    python -m mnist_ssl.curves result/ssl_table/labels100_seed1 \\
        result/ssl_paper/labels100_seed1 --out result/curves_schedules

Reads each run folder's ``log`` (runs that are still going or were stopped
work too) and writes OUT.png, OUT.md and OUT.json.  A run's name in the
legend is its folder path, shortened to what differs between the runs.
"""
import argparse
import json
import os

from gan import runs
from mnist_ssl import report

DEFAULT_EPOCHS = (10, 20, 40, 60, 100, 150, 200, 300)

# The test errors (out of 10,000, averaged D) that the faithful Chainer port
# of the authors' code (hiroharu-kato/improved_gan_chainer, on a GPU)
# published in its log with the authors' schedule, 100 labels: a yardstick
# for runs of that schedule (``--port-curve``).
PORT_NAME = 'faithful port (GPU, published log)'
PORT_ERRORS = {1: 3060, 20: 560, 40: 210, 100: 111, 200: 89, 300: 82}


class CurvesError(runs.UsageError):
    """A run folder that cannot be compared (one line for the user)."""


def read_log(folder, which='avg', on=None):
    """(error key, log entries that have it) of a run's log, for the
    averaged (``avg``) or the raw D, on the test or the validation set
    (``on``; None: the test set where the log has it, else the set it
    has)."""
    path = os.path.join(folder, 'log')
    if not os.path.isfile(path):
        raise CurvesError('{}: no log: not a train_ssl.py run folder, or '
                           'no epoch finished yet'.format(folder))
    try:
        with open(path) as f:
            log = json.load(f)
    except ValueError:
        raise CurvesError('{}: the log is not JSON (a run writing it right '
                           'now? try again)'.format(path))
    suffix = '/error_' + which
    sets = sorted({k[:-len(suffix)] for e in log for k in e
                   if k.endswith(suffix)})  # 'test', 'validation'
    if not sets:
        raise CurvesError('{}: no evaluated epoch in the log yet'.format(
            path))
    if on is None:
        on = sets[0]
    elif on not in sets:
        raise CurvesError('{}: no {} errors in the log (it has {}); give '
                          '--on {}'.format(path, on, ', '.join(sets),
                                           sets[0]))
    key = on + suffix
    return key, [e for e in log if key in e]


def short_names(folders):
    """The folder paths without the leading and trailing path parts that
    all of them share."""
    parts = [os.path.normpath(f).split(os.sep) for f in folders]
    if len(parts) == 1:
        return [parts[0][-1]]
    lead = 0
    while all(len(p) > lead + 1 for p in parts) and len(
            {p[lead] for p in parts}) == 1:
        lead += 1
    trail = 0
    while all(len(p) > lead + trail + 1 for p in parts) and len(
            {p[-1 - trail] for p in parts}) == 1:
        trail += 1
    return ['/'.join(p[lead:len(p) - trail]) for p in parts]


def at_epochs(points, epochs):
    """The errors at each of ``epochs`` (None where the run has no
    evaluation at that epoch)."""
    by_epoch = {e: err for e, _, err in points}
    return [by_epoch.get(e) for e in epochs]


def compare(folders, epochs=DEFAULT_EPOCHS, which='avg', on=None):
    """One row per run: name, folder, the errors at ``epochs``, the last
    evaluation and the minutes to each error milestone."""
    rows = []
    for name, folder in zip(short_names(folders), folders):
        key, log = read_log(folder, which, on)
        points = [(e['epoch'], e['elapsed_time'] / 60.0,
                   int(round(e[key] * 10000))) for e in log]
        last = points[-1]
        to_error = report.time_to_error(log, key)
        rows.append({
            'name': name, 'folder': folder, 'key': key,
            'errors_at_epochs': at_epochs(points, epochs),
            'last_epoch': last[0], 'last_errors': last[2],
            'last_minutes': round(last[1], 1),
            'minutes_to_error': report.milestone_minutes(to_error),
            'points': points})
    return rows


def port_row(epochs):
    """The faithful port's published errors as a table row (no minutes:
    another machine)."""
    points = [(e, None, n) for e, n in sorted(PORT_ERRORS.items())]
    return {'name': PORT_NAME, 'folder': None, 'key': None,
            'errors_at_epochs': at_epochs(points, epochs),
            'last_epoch': points[-1][0], 'last_errors': points[-1][2],
            'last_minutes': None,
            'minutes_to_error': [None] * len(report.ERROR_MILESTONES),
            'points': points}


def markdown(rows, epochs):
    miles = ' / '.join('{:g} %'.format(th * 100)
                       for th in report.ERROR_MILESTONES)
    lines = ['| run | ' + ' | '.join('epoch {}'.format(e) for e in epochs)
             + ' | last (epoch, minutes) | minutes to ' + miles + ' |',
             '|---|' + '---|' * (len(epochs) + 2)]
    def cell(v):  # '-' for None, whole numbers otherwise
        return '-' if v is None else str(int(round(v)))
    for r in rows:
        lines.append('| {} | {} | {} ({}, {}) | {} |'.format(
            r['name'], ' | '.join(cell(v) for v in r['errors_at_epochs']),
            r['last_errors'], r['last_epoch'], cell(r['last_minutes']),
            ' / '.join(cell(v) for v in r['minutes_to_error'])))
    return '\n'.join(lines) + '\n'


# the blog's reported result: about 95 % validation accuracy (100 labels)
BLOG_ACCURACY = 0.95


def plot(rows, path, which='avg', on=None, blog_line=False):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for r in rows:
        epochs, minutes, errs = zip(*r['points'])
        if r['folder'] is None:  # the port: by epoch only, as markers
            axes[0].plot(epochs, [e / 100.0 for e in errs], 'k--o',
                         markersize=4, linewidth=0.8, label=r['name'])
            continue
        for ax, x in zip(axes, (epochs, minutes)):
            ax.plot(x, [e / 100.0 for e in errs], label=r['name'])
    for ax, xlabel in zip(axes, ('epoch', 'minutes of training')):
        ax.set_xlabel(xlabel)
        ax.set_yscale('log')
        ax.grid(True, which='both', alpha=0.3)
        for th, style in ((1.0, ':'), (0.93, '--')):
            ax.axhline(th, color='gray', linestyle=style, linewidth=0.8)
        if blog_line:
            ax.axhline(100 * (1 - BLOG_ACCURACY), color='tab:red',
                       linestyle='-.', linewidth=1.0,
                       label='the blog: about 95 % validation accuracy')
    axes[0].set_ylabel('{} error, % ({} D; dashed: the paper\'s '
                       '0.93 %)'.format(on or 'test', 'averaged' if which == 'avg'
                                        else 'raw'))
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('folders', nargs='+', help='train_ssl.py run folders')
    p.add_argument('--out', default='result/compare_ssl',
                   help='writes OUT.png, OUT.md and OUT.json '
                   '(default %(default)s)')
    p.add_argument('--epochs', type=int, nargs='+',
                   default=list(DEFAULT_EPOCHS),
                   help='epochs for the table (default %(default)s)')
    p.add_argument('--which', choices=['avg', 'raw'], default='avg',
                   help='averaged (default) or raw discriminator')
    p.add_argument('--on', choices=['test', 'validation'],
                   help='the errors on the test set or on the validation '
                   'set of runs made with --validation (default: the test '
                   'set where a run has it)')
    p.add_argument('--blog-line', action='store_true',
                   help='draw the blog\'s reported result (about 95 %% '
                   'validation accuracy, 100 labels)')
    p.add_argument('--port-curve', action='store_true',
                   help='add the errors that a faithful port of the '
                   'authors\' code logged with their schedule (100 labels, '
                   'test set, averaged D; epochs 1-300, on a GPU)')
    args = p.parse_args(argv)
    try:
        rows = compare(args.folders, args.epochs, args.which, args.on)
    except CurvesError as e:
        p.exit(2, '{}: error: {}\n'.format(p.prog, e))
    if args.port_curve:
        rows.append(port_row(args.epochs))
    md = markdown(rows, args.epochs)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + '.md', 'w') as f:
        f.write(md)
    runs.write_json(args.out + '.json', rows)
    plot(rows, args.out + '.png', args.which, args.on, args.blog_line)
    print(md)
    print('wrote {0}.png, {0}.md, {0}.json'.format(args.out))
    return rows


if __name__ == '__main__':
    main()
