"""The paper-style table: test errors (out of 10,000) over data seeds and
label counts, mean +- std, as Markdown and JSON.  Runs in sequence and is
resumable: rerun the same command to continue after an interruption.

    python -m experiments.ssl_table --labels 100 --seeds 1 2 3 \\
        --out result/ssl_table [--device 0] [-- extra train_ssl.py flags]

By default seed S means model seed S on the labeled subset of data seed S.
``--data-seed D`` keeps the labeled subset of data seed D for every entry
and varies only the model seed (initialisation, noise, batch order): the
spread that the choice of the labeled examples does not explain.  Its
folders are OUT/labelsL_seedS_dataD.

``--branch-from SRC --branch-epoch E`` starts each entry from the kept
snapshot SRC/<its folder>/snapshot_epoch_E (a run of SRC with
``--keep-every``) and goes on with the schedule given after ``--``: a
schedule compared with SRC's on the same training up to epoch E, e.g.

    python -m experiments.ssl_table --labels 100 --seeds 9 10 \
        --out result/ssl_e120 --branch-from result/ssl_table \
        --branch-epoch 40 -- --epochs 120 --lr-decay-epochs 40

Writes OUT/table.md and OUT/table.json (and one run folder per entry).
The table holds every finished run under OUT, so several processes can
share one OUT, each with its own --labels / --seeds.  ``--jobs N`` runs N
entries at a time, each in its own process with the BLAS threads shared
out, and its output in OUT/labelsL_seedS/console.log.
"""
import argparse
import os
import sys

from gan import jobs, runs
from gan import options as gopt
from mnist_ssl import batch
from mnist_ssl import options as sopt


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if '--' in argv:
        i = argv.index('--')
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--labels', type=int, nargs='+', default=[100])
    p.add_argument('--seeds', type=int, nargs='+', default=[1, 2, 3],
                   help='data seeds (the model seed is the same number)')
    p.add_argument('--data-seed', type=int, default=None,
                   help='one labeled subset for every entry; --seeds are '
                   'then model seeds only')
    p.add_argument('--out', default='result/ssl_table')
    p.add_argument('--jobs', type=gopt.positive_int, default=1,
                   help='runs at a time, each in its own process '
                   '(default %(default)s: in sequence, in this process)')
    p.add_argument('--branch-from', metavar='SRC', default=None,
                   help='start each entry from the kept snapshot of its '
                   'folder in the table SRC (see --branch-epoch)')
    p.add_argument('--branch-epoch', type=gopt.positive_int,
                   default=None, help='the epoch of that snapshot '
                   '(SRC/labelsL_seedS/snapshot_epoch_EEE, written by '
                   '--keep-every)')
    gopt.add_device(p, help='where every entry trains: '
                    + gopt.DEVICE_HELP.replace('%(default)s', '-1, or the '
                                               '--device after --'))
    p.set_defaults(device=None)
    args = p.parse_args(argv)
    if args.device is not None:  # for every entry (and child process)
        with gopt.one_line_errors(p):
            runs.parse_device(args.device)
        extra = extra + ['--device', args.device]
    if (args.branch_from is None) != (args.branch_epoch is None):
        p.error('--branch-from and --branch-epoch go together')
    if any(a == '--resume' or a.startswith('--resume=') for a in extra):
        p.error('--resume after --: every entry needs its own snapshot; '
                'use --branch-from SRC --branch-epoch E')
    # (labels, model seed, data seed)
    entries = [(labels, seed, seed if args.data_seed is None
                else args.data_seed)
               for labels in args.labels for seed in args.seeds]
    names = {e: folder_name(e, args.data_seed) for e in entries}
    folders = {e: os.path.join(args.out, names[e]) for e in entries}
    sopt.parser().parse_args(extra)  # bad flags: one line, now

    options = {}
    with gopt.one_line_errors(p):  # missing branch sources: now
        for e in entries:
            options[e] = entry_options(extra, e, folders[e])
            if args.branch_from is not None:
                options[e] = sopt.resolve(options[e], resume=branch_source(
                    args, names[e], folders[e]))
    if args.jobs > 1:
        with gopt.one_line_errors(p):  # folders of other runs: now
            todo = [e for e in entries if not batch.is_finished(options[e])]
        run_children(args, extra, todo, folders)
    else:
        for e in entries:
            with gopt.one_line_errors(p):
                batch.run_one(options[e])
            write_table(args.out)
    print(open(os.path.join(args.out, 'table.md')).read())


def folder_name(entry, fixed_data_seed):
    """labelsL_seedS, or labelsL_seedS_dataD under --data-seed D."""
    labels, seed, data_seed = entry
    name = 'labels{}_seed{}'.format(labels, seed)
    return name if fixed_data_seed is None else '{}_data{}'.format(
        name, data_seed)


def branch_source(args, name, folder):
    """The kept snapshot an entry branches from; an error that names the
    fix when it is missing and the entry has not started yet."""
    path = os.path.join(args.branch_from, name,
                        'snapshot_epoch_{:03d}'.format(args.branch_epoch))
    if not os.path.isfile(path) and not os.path.isfile(
            os.path.join(folder, 'result.json')) and \
            runs.latest_snapshot(folder) is None:
        raise sopt.OptionError(
            '{}: no such snapshot to branch from; run that entry with '
            '--keep-every {} (or a divisor of it), or choose another '
            '--branch-epoch'.format(path, args.branch_epoch))
    return path


def entry_options(extra, entry, folder):
    """train_ssl.py's options for one (labels, model seed, data seed)
    entry."""
    labels, seed, data_seed = entry
    o = sopt.parser().parse(
        extra + ['--labels', str(labels), '--seed', str(seed),
                 '--data-seed', str(data_seed), '--out', folder])
    return sopt.resolve(o, progress=False)


def run_children(args, extra, todo, folders):
    """The unfinished entries ``todo``, ``args.jobs`` at a time, each one
    this script in a child process."""
    fixed = [] if args.data_seed is None else [
        '--data-seed', str(args.data_seed)]
    if args.branch_from is not None:
        fixed += ['--branch-from', args.branch_from, '--branch-epoch',
                  str(args.branch_epoch)]
    jobs.run_children(
        [([sys.executable, '-m', 'experiments.ssl_table',
           '--labels', str(labels), '--seeds', str(seed), '--out', args.out]
          + fixed + ['--'] + extra,
          os.path.join(folders[labels, seed, data_seed], 'console.log'))
         for labels, seed, data_seed in todo], args.jobs,
        lambda: write_table(args.out))


def write_table(out):
    """OUT/table.md|json from every finished run in OUT, also those of
    other processes."""
    rows = batch.seeds_table(batch.finished_results(out))
    batch.write(os.path.join(out, 'table'), rows,
                batch.seeds_markdown(rows, runs.machine_text()))


if __name__ == '__main__':
    main()
