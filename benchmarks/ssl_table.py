#!/usr/bin/env python
"""The paper-style table: test errors (out of 10,000) over data seeds and
label counts, mean +- std, as Markdown and JSON.  Runs in sequence and is
resumable: rerun the same command to continue after an interruption.

    python benchmarks/ssl_table.py --labels 100 --seeds 1 2 3 \\
        --out result/ssl_table [-- extra train_ssl.py flags]

Writes OUT/table.md and OUT/table.json (and one run folder per entry).
The table holds every finished run under OUT, so several processes can
share one OUT, each with its own --labels / --seeds.
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
    p.add_argument('--out', default='result/ssl_table')
    args = p.parse_args(argv)
    for labels in args.labels:
        for seed in args.seeds:
            run_args = extra + ['--labels', str(labels), '--seed', str(seed),
                                '--data-seed', str(seed), '--out', os.path.join(
                                    args.out, 'labels{}_seed{}'.format(
                                        labels, seed))]
            options = vars(train_ssl.parser().parse_args(run_args))
            options['progress'] = False
            batch.run_one(options)
            # every finished run in OUT, also those of other processes
            rows = batch.seeds_table(batch.finished_results(args.out))
            batch.write(os.path.join(args.out, 'table'), rows,
                        batch.seeds_markdown(rows, platform.platform()))
    print(open(os.path.join(args.out, 'table.md')).read())


if __name__ == '__main__':
    main()
