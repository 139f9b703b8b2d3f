"""Many runs as child processes sharing the CPU cores, and the mean and
spread of their numbers: what the batch drivers of both experiments
(seed tables, ablations, the Stacked-MNIST table) and the benchmarks use.
"""
import os
import statistics
import subprocess
import sys
import time


# environment variables that bound the threads of numpy's BLAS
THREAD_VARS = ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS')


def threads_per_job(jobs, cores=None, environ=None):
    """BLAS threads for each of ``jobs`` processes sharing the cores; a
    thread count set in the environment (``OPENBLAS_NUM_THREADS``, ...)
    wins: on a machine that other work shares, more threads than free
    cores stall one another."""
    environ = os.environ if environ is None else environ
    for name in THREAD_VARS:
        value = environ.get(name, '')
        if value.isdigit() and int(value) > 0:
            return int(value)
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, jobs))


def run_parallel(commands, jobs, threads=None, log=print, poll=0.2,
                 on_done=None):
    """Run ``commands``, a list of (argv, log_path), at most ``jobs`` at a
    time, each with its output appended to its log file and its BLAS
    bounded to ``threads`` threads (default: the cores shared out).

    The iteration's matrices are small, so a second BLAS thread gains a
    run less than a second run gains the machine.  ``on_done()``, when
    given, is called after each command that succeeds (a driver's table of
    the finished runs, kept current while the others run).  Returns the
    failures as a list of (log_path, exit status); the other commands
    still run."""
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
                if on_done is not None:
                    on_done()
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




def mean_std(values):
    """(mean, sample standard deviation) of ``values``; the deviation of
    one value is 0, and an empty list gives (None, None)."""
    if not values:
        return None, None
    m = float(statistics.mean(values))
    s = statistics.stdev(values) if len(values) > 1 else 0.0
    return m, s
