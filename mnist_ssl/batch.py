"""Many semi-supervised runs, resumable, and their tables.

Each run has its own folder under the batch folder.  A run whose
``result.json`` exists is skipped; a run with snapshots continues from the
latest one; so a batch killed at any point is continued by the same command.
Runs go in sequence in one process, or ``jobs`` at a time in child
processes (:func:`gan.jobs.run_parallel`) that share the CPU cores.
"""
import glob
import json
import math
import os
import statistics

from gan import options as gopt
from gan import jobs, runs
from mnist_ssl import options, report, train

# Published numbers (test errors out of 10,000): the paper's table 1 (mean
# +- std) and the blog's accuracies.
PAPER = {20: (1677, 452), 50: (221, 136), 100: (93, 6.5), 200: (90, 4.2)}
BLOG = {20: '~2700 (73 % accuracy)', 100: '~500 (95 % accuracy)'}


def check_same_run(o):
    """Refuse (UsageError) when ``o.out`` holds a run, finished or not,
    whose options.json differs from the options ``o`` in an option that
    changes the result: a batch rerun would otherwise skip or continue it
    and show it in the table as the configuration asked for."""
    o = options.resolve(o)
    runs.check_same_run(o.out, gopt.to_dict(o), options.EXECUTION_OPTIONS)


def is_finished(o):
    """Whether the run of options ``o`` has finished (its folder holds
    ``result.json``); a folder that holds a run of other options is
    refused (:func:`check_same_run`)."""
    check_same_run(o)
    return runs.finished_result(o.out) is not None


def run_one(o, log=print):
    """Run (or finish, or skip) one configuration ``o``
    (:class:`mnist_ssl.options.Options`); returns its result.  A folder
    that holds a run of other options is refused (:func:`check_same_run`).
    A folder with a snapshot is continued from it; one without starts from
    ``o.resume`` when given (the snapshot of another run: a branch), else
    from scratch."""
    o = options.resolve(o)
    if is_finished(o):
        log('[skip] {} is finished'.format(o.out))
        return runs.finished_result(o.out)
    if runs.latest_snapshot(o.out):
        resume, how = 'auto', ' (resuming)'
    elif o.resume:
        resume = o.resume
        how = ' (branch of {})'.format(resume)
    else:  # fresh, also over the options.json of a run stopped early
        resume, how = 'auto', ''
    log('[run ] {}{}'.format(o.out, how))
    return train.run(options.resolve(o, resume=resume))


def finished_results(folder, pattern='labels*_seed*'):
    """The results of every finished run folder under ``folder`` (several
    processes may share one batch folder, each running other entries),
    sorted by label count and data seed."""
    results = []
    for path in glob.glob(os.path.join(folder, pattern, 'result.json')):
        with open(path) as f:
            results.append(json.load(f))
    return sorted_results(results)


def sorted_results(results):
    """By label count, data seed, then model seed."""
    return sorted(results, key=lambda r: (
        r['labels'], r['data_seed'], r['seed']))


def seed_name(result):
    """A run's seed as the tables name it: the data seed, or 'model/data'
    when the model seed differs from it."""
    if result['seed'] == result['data_seed']:
        return result['data_seed']
    return '{}/{}'.format(result['seed'], result['data_seed'])


def seeds_table(results):
    """Rows per label count: mean +- std of test errors over seeds, the
    runs in :func:`sorted_results` order."""
    by_labels = {}
    for r in sorted_results(results):
        by_labels.setdefault(r['labels'], []).append(r)
    rows = []
    for labels in sorted(by_labels):
        rs = by_labels[labels]
        errs = [r['test_errors'] for r in rs]
        raw = [r['test_errors_raw'] for r in rs]
        m, s = jobs.mean_std(errs)
        paper = PAPER.get(labels)
        rows.append({
            'labels': labels, 'runs': len(rs),
            'data_seeds': [r['data_seed'] for r in rs],
            'seeds': [r['seed'] for r in rs],
            'test_errors': errs, 'test_errors_raw': raw,
            'mean': round(m, 1), 'std': round(s, 1),
            'max': max(errs),
            'epochs': rs[0]['epochs'],
            'minutes_per_run': round(statistics.mean(
                r['wall_seconds'] for r in rs) / 60.0, 1),
            # per seed: minutes of training until the averaged D's test
            # error first reached 2 %, 1.5 %, 1 % (None: not reached)
            'minutes_to_error': [report.milestone_minutes(
                r['minutes_to_error_avg']) for r in rs],
            # data seed -> 'collapsed at epoch N, (not) recovered'
            # (model/data seed when they differ)
            'collapsed': {seed: text for seed, text in (
                (seed_name(r), report.collapse_text(r)) for r in rs)
                if text},
            'paper': '{} +- {}'.format(*paper) if paper else '',
            'blog': BLOG.get(labels, ''),
            'per_run': [run_row(r) for r in rs],
        })
    return rows


def run_row(result):
    """One run of a seed table: its seeds, errors, where they sit (the
    three largest confusion cells of the averaged D and the errors outside
    them), minutes to 2 / 1.5 / 1 % and its collapse."""
    counts = result['confusion_avg']
    top = report.largest_confusions(counts)
    return {
        'seed': result['seed'], 'data_seed': result['data_seed'],
        'test_errors': result['test_errors'],
        'test_errors_raw': result['test_errors_raw'],
        'largest_confusions': top,
        'errors_outside_largest': report.confusion_errors(counts)
        - sum(c for _, _, c in top),
        'minutes_to_error': report.milestone_minutes(
            result['minutes_to_error_avg']),
        'collapsed': report.collapse_text(result),
    }


def seeds_markdown(rows, machine=''):
    lines = [
        '| labels | runs | test errors (averaged D), mean +- std | seeds '
        '(model/data) | per seed | raw D per seed | generator collapsed | '
        'epochs | min/run | min to 2 / 1.5 / 1 %, per seed | paper | blog |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        collapsed = '; '.join('seed {}: {}'.format(k, v) for k, v in
                              r['collapsed'].items()) or 'no'
        lines.append('| {labels} | {runs} | {mean} +- {std} | {pairs} | {errs} '
                     '| {raw} '
                     '| {collapsed} | {epochs} | {minutes_per_run} | {tte} '
                     '| {paper} | {blog} |'.format(
                         tte=', '.join('/'.join(
                             '-' if m is None else '{:.0f}'.format(m)
                             for m in seed) for seed in r['minutes_to_error']),
                         pairs=', '.join('{}/{}'.format(*p) for p in zip(
                             r['seeds'], r['data_seeds'])),
                         errs=', '.join(map(str, r['test_errors'])),
                         raw=', '.join(map(str, r['test_errors_raw'])),
                         **dict(r, collapsed=collapsed)))
    lines += ['', 'Each run (largest confusions: true as predicted, '
              'averaged D):', '',
              '| labels | seeds (model/data) | test errors | raw D | three '
              'largest confusions | errors outside them | min to 2 / 1.5 / '
              '1 % | generator collapsed |',
              '|---|---|---|---|---|---|---|---|']
    for r in rows:
        for run in r['per_run']:
            top = run['largest_confusions']
            lines.append('| {} | {}/{} | {} | {} | {} | {} | {} | {} |'.format(
                r['labels'], run['seed'], run['data_seed'],
                run['test_errors'], run['test_errors_raw'],
                ', '.join('{} as {}: {}'.format(*c) for c in top) or 'none',
                run['errors_outside_largest'],
                '/'.join('-' if m is None else '{:.0f}'.format(m)
                         for m in run['minutes_to_error']),
                run['collapsed'] or 'no'))
    if machine:
        lines.append('')
        lines.append('Machine: ' + machine)
    return '\n'.join(lines) + '\n'


def ablation_markdown(rows):
    lines = ['| variant | change from the defaults | test errors (avg D) | '
             'raw D | generator collapsed | epochs | minutes |',
             '|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append('| {name} | {change} | {test_errors} | {test_errors_raw}'
                     ' | {collapsed} | {epochs} | {minutes} |'.format(
                         **dict(r, collapsed=r.get('collapsed') or 'no')))
    return '\n'.join(lines) + '\n'


def write(path_stem, rows, markdown):
    """Write STEM.json and STEM.md, each replaced whole (another process
    of the same batch may write or read them too)."""
    runs.write_json(path_stem + '.json', rows)
    runs.write_text(path_stem + '.md', markdown)


def is_finite(x):
    return isinstance(x, (int, float)) and math.isfinite(x)
