#!/usr/bin/env python
"""The checks for the first machine with a CUDA GPU, in one command
(``make gpu-check``; about 3 to 5 minutes on one H100, most of it the
first compilation of the kernels and the 2-epoch run):

1. the GPU tests (``pytest -m gpu tests/test_gpu.py``): layers and losses
   against the CPU, the GPU random stream's kernel against its array
   form, SSL and DCGAN runs and their exact resume, evaluate and analogy,
   the machine record; with two GPUs also ``--device 1`` and a 2-rank
   ``pure_nccl`` run;
2. speed on the GPU: the SSL iteration (the default model, batch 100),
   the DCGAN step at 64 px (Radford et al.'s network, batch 64) and the
   blog's 96 px step (``--preset blog``, batch 128): ms per step and
   images per second;
3. a 2-epoch SSL run (the defaults, 100 labels, data seed 1, the learning
   rate decayed over the second epoch): its test errors.

    python benchmarks/gpu_check.py [--json result/gpu_check.json]
        [--device 0] [--skip-tests] [--quick]

Every step runs even when an earlier one failed, so one run reports
everything it can; the JSON file holds each step's numbers or error and the
machine (GPU, driver, CUDA, CuPy, cuDNN, NCCL), and a table is printed.
Any failed step makes the exit status 1 and is printed as FAILED with its
error.  ``--quick`` runs tiny sizes (the test suite runs it on the
stand-in GPU to keep this script working).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
import traceback

import numpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from gan import gpu, runs  # noqa: E402


def synchronize(device):
    """Wait for the GPU's queued work (nothing on the CPU)."""
    if gpu.is_gpu(device):
        device.device.synchronize()


def time_steps(step, device, warmup, steps):
    """Seconds per ``step()`` after ``warmup`` calls (the kernels compile
    in the first ones)."""
    for _ in range(warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / steps


# --------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------
def gpu_tests(args):
    """pytest -m gpu on tests/test_gpu.py, in a child process."""
    start = time.time()
    # GPU_TEST_PREFIX: the stand-in GPU, when this script runs on it
    prefix = os.environ.get('GPU_TEST_PREFIX', '').split()
    proc = subprocess.run(
        [sys.executable] + prefix + [
            '-m', 'pytest', '-q', '-m', 'gpu', '-rs', '-p', 'no:cacheprovider',
            os.path.join(ROOT, 'tests', 'test_gpu.py')], cwd=ROOT,
        capture_output=True, text=True, timeout=args.test_timeout)
    lines = proc.stdout.strip().splitlines()
    summary = lines[-1] if lines else proc.stderr.strip()[-300:]
    result = {'summary': summary, 'seconds': round(time.time() - start, 1),
              'skipped': [l for l in lines if l.startswith('SKIPPED')]}
    if proc.returncode != 0 or 'passed' not in summary:
        raise RuntimeError('GPU tests failed: {}\n{}'.format(
            summary, proc.stdout[-4000:] + proc.stderr[-2000:]))
    return result


def ssl_iteration(args, device):
    from mnist_ssl import build as sbuild
    from mnist_ssl import options as sopt
    quick = dict(pool_size=600, batchsize=50) if args.quick else {}
    o = sopt.resolve(device=args.device, progress=False,
                     out=os.path.join(args.work, 'ssl_speed'), **quick)
    updater = sbuild.build(o)['updater']
    seconds = time_steps(updater.update, device, 3 if args.quick else 20,
                         3 if args.quick else 200)
    return {'batch': o.batchsize, 'ms': round(1000 * seconds, 3),
            'images_per_second': round(o.batchsize / seconds, 1)}


def dcgan_step(args, device, preset):
    from animeface import build as abuild
    from animeface import data as adata
    from animeface import options as aopt
    o = aopt.resolve({'preset': preset}, data='synthetic', device=args.device,
                     out=os.path.join(args.work, 'dcgan_' + preset),
                     iterations=10 ** 6)
    if args.quick:
        o = aopt.resolve(o, size=32, ch=16, batchsize=4)
    rng = numpy.random.default_rng(0)
    images = adata.ImageData(rng.integers(
        0, 256, (max(4 * o.batchsize, 64), 3, o.size, o.size),
        dtype=numpy.uint8), 3, 'folder')
    trainer = abuild.build_trainer(o, images)
    seconds = time_steps(trainer.updater.update, device,
                         2 if args.quick else 10, 2 if args.quick else 50)
    return {'size': o.size, 'batch': o.batchsize, 'net': o.net, 'ch': o.ch,
            'ms': round(1000 * seconds, 2),
            'images_per_second': round(o.batchsize / seconds, 1)}


def ssl_run(args, device):
    from mnist_ssl import train as strain
    out = os.path.join(args.work, 'ssl_2_epochs')
    quick = dict(pool_size=600, batchsize=50,
                 iters_per_epoch=2) if args.quick else {}
    start = time.time()
    result = strain.run(dict(device=args.device, epochs=2,
                             lr_decay_epochs=1, progress=False, out=out,
                             **quick))
    return {'test_errors': result['test_errors'],
            'test_errors_raw': result['test_errors_raw'],
            'iterations': result['iterations'],
            'seconds': round(time.time() - start, 1), 'out': out}


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------
def _speed(r):
    return '{} ms/step, {:,.0f} images/s'.format(r['ms'],
                                                  r['images_per_second'])


ROWS = [
    ('gpu_tests', 'GPU tests', lambda r: '{} ({} s)'.format(r['summary'],
                                                           r['seconds'])),
    ('ssl_iteration', 'SSL iteration', lambda r: 'batch {}: {}'.format(
        r['batch'], _speed(r))),
    ('dcgan_64', 'DCGAN step', lambda r: '{} px, ch {}, batch {}: {}'.format(
        r['size'], r['ch'], r['batch'], _speed(r))),
    ('blog_96', 'blog step', lambda r: '{} px, ch {}, batch {}: {}'.format(
        r['size'], r['ch'], r['batch'], _speed(r))),
    ('ssl_run', '2-epoch SSL run', lambda r: '{} test errors ({} raw D), '
     '{} iterations in {} s'.format(r['test_errors'], r['test_errors_raw'],
                                    r['iterations'], r['seconds'])),
]


def table(report):
    g = (report.get('machine') or {}).get('gpu') or {}
    head = 'GPU check on {} (driver for CUDA {}, CuPy {}, cuDNN {}){}'.format(
        g.get('name', '?'), g.get('driver_cuda', '?'), g.get('cupy', '?'),
        'on' if (g.get('cudnn') or {}).get('loaded') and (
            g.get('cudnn') or {}).get('use_cudnn') != 'never' else 'off',
        ', quick sizes' if report.get('quick') else '')
    lines = [head, '| step | result |', '|---|---|']
    for key, label, fmt in ROWS:
        step = report['steps'].get(key)
        if step is None:
            continue
        text = ('FAILED: ' + step['error'].splitlines()[0]
                if 'error' in step else fmt(step))
        lines.append('| {} | {} |'.format(label, text))
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--json', default=os.path.join('result',
                                                  'gpu_check.json'))
    p.add_argument('--device', default='0')
    p.add_argument('--skip-tests', action='store_true',
                   help='leave out step 1 (the pytest run)')
    p.add_argument('--quick', action='store_true',
                   help='tiny sizes: a check of this script, not of a GPU')
    p.add_argument('--test-timeout', type=int, default=420)
    args = p.parse_args(argv)
    try:
        device = runs.parse_device(args.device)
    except runs.UsageError as e:
        p.exit(2, 'gpu_check.py: error: {}\n'.format(e))
    if not gpu.is_gpu(device):
        p.exit(2, 'gpu_check.py: error: --device {} is not a GPU\n'.format(
            args.device))
    gpu.select(device)
    report = {'started': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
              'quick': args.quick, 'device': str(device),
              'machine': runs.machine_info(device), 'steps': {}}
    steps = [('ssl_iteration', lambda: ssl_iteration(args, device)),
             ('dcgan_64', lambda: dcgan_step(args, device, 'dcgan')),
             ('blog_96', lambda: dcgan_step(args, device, 'blog')),
             ('ssl_run', lambda: ssl_run(args, device))]
    if not args.skip_tests:
        steps.insert(0, ('gpu_tests', lambda: gpu_tests(args)))
    with tempfile.TemporaryDirectory(prefix='gpu_check_') as work:
        args.work = work
        for name, fn in steps:
            start = time.time()
            print('gpu_check: {} ...'.format(name), file=sys.stderr,
                  flush=True)
            try:
                report['steps'][name] = fn()
            except Exception as e:
                report['steps'][name] = {
                    'error': '{}: {}'.format(type(e).__name__, e),
                    'traceback': traceback.format_exc()[-4000:]}
                print('gpu_check: {} FAILED: {}'.format(name, e),
                      file=sys.stderr, flush=True)
            report['steps'][name]['wall_seconds'] = round(
                time.time() - start, 1)
            gpu.select(device)  # a step may have made another current
    report['failed'] = [k for k, v in report['steps'].items()
                        if 'error' in v]
    runs.write_json(args.json, report)
    print(table(report))
    print('written: {}'.format(args.json))
    if report['failed']:
        print('FAILED: {}'.format(', '.join(report['failed'])),
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
