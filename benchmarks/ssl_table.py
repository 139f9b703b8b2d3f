#!/usr/bin/env python
"""The paper-style table: test errors (out of 10,000) over data seeds and
label counts, mean +- std, as Markdown and JSON.  Runs in sequence and is
resumable: rerun the same command to continue after an interruption.

    python benchmarks/ssl_table.py --labels 100 --seeds 1 2 3 \\
        --out result/ssl_table [-- extra train_ssl.py flags]

By default seed S means model seed S on the labeled subset of data seed S.
``--data-seed D`` keeps the labeled subset of data seed D for every entry
and varies only the model seed (initialisation, noise, batch order): the
spread that the choice of the labeled examples does not explain.  Its
folders are OUT/labelsL_seedS_dataD.

Writes OUT/table.md and OUT/table.json (and one run folder per entry).
The table holds every finished run under OUT, so several processes can
share one OUT, each with its own --labels / --seeds.  ``--jobs N`` runs N
entries at a time, each in its own process with the BLAS threads shared
out, and its output in OUT/labelsL_seedS/console.log.
"""
import argparse
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import train_ssl  # noqa: E402
from mnist_ssl import batch  # noqa: E402


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
    p.add_argument('--jobs', type=train_ssl.positive_int, default=1,
                   help='runs at a time, each in its own process '
                   '(default %(default)s: in sequence, in this process)')
    args = p.parse_args(argv)
    # (labels, model seed, data seed)
    entries = [(labels, seed, seed if args.data_seed is None
                else args.data_seed)
               for labels in args.labels for seed in args.seeds]
    folders = {e: os.path.join(args.out, folder_name(e, args.data_seed))
               for e in entries}
    train_ssl.parser().parse_args(extra)  # bad flags: one line, now
    if args.jobs > 1:
        with train_ssl.one_line_errors(p):  # folders of other runs: now
            todo = [e for e in entries if not batch.is_finished(
                entry_options(extra, e, folders[e]))]
        run_children(args, extra, todo, folders)
    else:
        for e in entries:
            with train_ssl.one_line_errors(p):
                batch.run_one(entry_options(extra, e, folders[e]))
            write_table(args.out)
    print(open(os.path.join(args.out, 'table.md')).read())


def folder_name(entry, fixed_data_seed):
    """labelsL_seedS, or labelsL_seedS_dataD under --data-seed D."""
    labels, seed, data_seed = entry
    name = 'labels{}_seed{}'.format(labels, seed)
    return name if fixed_data_seed is None else '{}_data{}'.format(
        name, data_seed)


def entry_options(extra, entry, folder):
    """train_ssl.py's options for one (labels, model seed, data seed)
    entry."""
    labels, seed, data_seed = entry
    options = vars(train_ssl.parser().parse_args(
        extra + ['--labels', str(labels), '--seed', str(seed),
                 '--data-seed', str(data_seed), '--out', folder]))
    options['progress'] = False
    return options


def run_children(args, extra, todo, folders):
    """The unfinished entries ``todo``, ``args.jobs`` at a time, each one
    this script in a child process."""
    fixed = [] if args.data_seed is None else [
        '--data-seed', str(args.data_seed)]
    batch.run_children(
        [([sys.executable, os.path.abspath(__file__), '--labels', str(labels),
           '--seeds', str(seed), '--out', args.out] + fixed + ['--'] + extra,
          os.path.join(folders[labels, seed, data_seed], 'console.log'))
         for labels, seed, data_seed in todo], args.jobs,
        lambda: write_table(args.out))


def write_table(out):
    """OUT/table.md|json from every finished run in OUT, also those of
    other processes."""
    rows = batch.seeds_table(batch.finished_results(out))
    batch.write(os.path.join(out, 'table'), rows,
                batch.seeds_markdown(rows, platform.platform()))


if __name__ == '__main__':
    main()
