"""Many semi-supervised runs, resumable, and their tables.

Each run has its own folder under the batch folder.  A run whose
``result.json`` exists is skipped; a run with snapshots continues from the
latest one; so a batch killed at any point is continued by the same command.
Runs go in sequence in one process, or ``jobs`` at a time in child
processes (:func:`run_parallel`) that share the CPU cores.
"""
import glob
import json
import math
import os
import statistics
import subprocess
import sys
import time

from gan import runs
from mnist_ssl import experiment

# Published numbers (test errors out of 10,000): the paper's table 1 (mean
# +- std) and the blog's accuracies.
PAPER = {20: (1677, 452), 50: (221, 136), 100: (93, 6.5), 200: (90, 4.2)}
BLOG = {20: '~2700 (73 % accuracy)', 100: '~500 (95 % accuracy)'}


# options that change how a run is executed or reported, not what it
# computes: a batch folder may be continued with other values of these
EXECUTION_OPTIONS = frozenset((
    'out', 'resume', 'progress', 'device', 'data_dir', 'fused',
    'keep_every', 'keep_snapshots', 'snapshot_interval', 'grid_interval',
    'eval_interval', 'collapse_threshold'))


def check_same_run(options):
    """Refuse (OptionError) when ``options['out']`` holds a run, finished
    or not, whose options.json differs from ``options`` (resolved as a run
    records them) in an option that changes the result: a batch rerun
    would otherwise skip or continue it and show it in the table as the
    configuration asked for."""
    path = os.path.join(options['out'], 'options.json')
    if not os.path.exists(path):
        return
    with open(path) as f:
        saved = json.load(f)
    options = experiment.resolve_options(options)
    diff = ['--{} {} (asked: {})'.format(k.replace('_', '-'),
                                         saved.get(k, '(none)'), options[k])
            for k in sorted(options)
            if k not in EXECUTION_OPTIONS and saved.get(k) != options[k]]
    if diff:
        raise experiment.OptionError(
            '{} holds a run with other options: {}; choose another --out, '
            'or move that folder away'.format(options['out'],
                                               ', '.join(diff)))


def is_finished(options):
    """Whether the run of ``options`` has finished (its folder holds
    ``result.json``); a folder that holds a run of other options is
    refused (:func:`check_same_run`)."""
    check_same_run(options)
    return os.path.exists(os.path.join(options['out'], 'result.json'))


def run_one(options, log=print):
    """Run (or finish, or skip) one configuration; returns its result.
    A folder that holds a run of other options is refused
    (:func:`check_same_run`).  A folder with a snapshot is continued from
    it; one without starts from ``options['resume']`` when given (the
    snapshot of another run: a branch), else from scratch."""
    out = options['out']
    done = os.path.join(out, 'result.json')
    if is_finished(options):
        log('[skip] {} is finished'.format(out))
        return json.load(open(done))
    if experiment.find_latest_snapshot(out):
        resume, how = 'auto', ' (resuming)'
    elif options.get('resume'):
        resume = options['resume']
        how = ' (branch of {})'.format(resume)
    else:  # fresh, also over the options.json of a run stopped early
        resume, how = 'auto', ''
    log('[run ] {}{}'.format(out, how))
    return experiment.run(dict(options, resume=resume))


# environment variables that bound the threads of numpy's BLAS
THREAD_VARS = ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS')


def threads_per_job(jobs, cores=None):
    """BLAS threads for each of ``jobs`` processes sharing the cores."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, jobs))


def run_parallel(commands, jobs, threads=None, log=print, poll=0.2):
    """Run ``commands``, a list of (argv, log_path), at most ``jobs`` at a
    time, each with its output appended to its log file and its BLAS
    bounded to ``threads`` threads (default: the cores shared out).

    The iteration's matrices are small, so a second BLAS thread gains a
    run less than a second run gains the machine.  Returns the failures
    as a list of (log_path, exit status); the other commands still run."""
    threads = threads or threads_per_job(jobs)
    env = dict(os.environ, PYTHONUNBUFFERED='1',  # live log files
               **{k: str(threads) for k in THREAD_VARS})
    waiting, running, failed = list(commands), [], []
    while waiting or running:
        while waiting and len(running) < jobs:
            argv, path = waiting.pop(0)
            os.makedirs(os.path.dirname(os.path.abspath(path)),
                        exist_ok=True)
            f = open(path, 'a')
            log('[start] {} ({} BLAS thread{}), output in {}'.format(
                ' '.join(argv[1:]), threads, 's' if threads > 1 else '',
                path))
            running.append((subprocess.Popen(argv, stdout=f,
                                             stderr=subprocess.STDOUT,
                                             env=env), f, path))
        time.sleep(poll)
        for item in list(running):
            proc, f, path = item
            if proc.poll() is None:
                continue
            running.remove(item)
            f.close()
            if proc.returncode:
                failed.append((path, proc.returncode))
                log('[fail ] exit status {}: see {}'.format(
                    proc.returncode, path))
            else:
                log('[done ] {}'.format(path))
    return failed


def run_children(commands, jobs, write_table, noun='runs'):
    """:func:`run_parallel`, then ``write_table()`` (the table of every
    finished run), then, if any command failed, exit with one line."""
    failed = run_parallel(commands, jobs)
    write_table()
    if failed:
        sys.exit('{} of {} {} failed (see their console.log); rerun the same '
                 'command to continue them'.format(len(failed),
                                                   len(commands), noun))


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


def mean_std(values):
    if not values:
        return None, None
    m = float(statistics.mean(values))
    s = statistics.stdev(values) if len(values) > 1 else 0.0
    return m, s


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
        m, s = mean_std(errs)
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
            'minutes_to_error': [experiment.milestone_minutes(
                r['minutes_to_error_avg']) for r in rs],
            # data seed -> 'collapsed at epoch N, (not) recovered'
            # (model/data seed when they differ)
            'collapsed': {seed: text for seed, text in (
                (seed_name(r), experiment.collapse_text(r)) for r in rs)
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
    top = experiment.largest_confusions(counts)
    return {
        'seed': result['seed'], 'data_seed': result['data_seed'],
        'test_errors': result['test_errors'],
        'test_errors_raw': result['test_errors_raw'],
        'largest_confusions': top,
        'errors_outside_largest': experiment.confusion_errors(counts)
        - sum(c for _, _, c in top),
        'minutes_to_error': experiment.milestone_minutes(
            result['minutes_to_error_avg']),
        'collapsed': experiment.collapse_text(result),
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
