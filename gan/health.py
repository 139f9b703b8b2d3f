"""Signs that a GAN run is going wrong, checked while it trains.

Three problems, each with a number that real images (or a healthy run)
keep far from its threshold:

* ``dis-wins`` -- D's loss is below :data:`DIS_LOSS_FLOOR` in
  :data:`DIS_LOSS_NEED` of the last :data:`DIS_LOSS_STRETCH` log entries
  (500 iterations at the default log interval of 100): D separates real
  from generated images almost perfectly and G's gradients fade.  Healthy DCGAN runs hold D's
  loss (``softplus(-D(x)) + softplus(D(G(z)))``, batch means) at 0.2-1.4.
* ``collapse`` -- the samples of the fixed latent batch lose their
  spread: their diversity (mean pairwise distance over that of real
  images, :func:`gan.metrics.diversity`) falls below
  :data:`MIN_DIVERSITY`, or more than :data:`MAX_DUPLICATE_SHARE` of their
  pairs are near duplicates (real images: about 0.0001).
* ``noise`` -- the samples turn into high-frequency noise: their
  high-frequency ratio (:func:`high_frequency_ratio`) exceeds
  :data:`NOISE_FACTOR` times that of real images at :data:`NOISE_CHECKS`
  sample checks in a row.  On the emoji faces at 32 px real images have
  0.12, clean DCGAN samples 0.13, the speckled samples of a
  minibatch-discrimination run 0.22-0.26, white noise 1.  At 64 px a
  healthy run can pass 2x at one check, mostly early in training (grid
  artefacts it then loses, back to 1.2-1.5x), where a run that turns to
  noise stays above it (2.2-15x).

Checks start after a warm-up (a new generator draws noise and a new D
wins easily).  A problem is warned of once, with one line on standard
error, and again only after a healthy check; every warning is kept
(``warnings`` of ``result.json``) with the sample checks (``health``).
"""
import json
import sys

import numpy

import chainer
from chainer.training import extension

from gan import metrics

DIS_LOSS_KEY = 'dis/loss'
DIS_LOSS_FLOOR = 0.05
DIS_LOSS_STRETCH = 5
DIS_LOSS_NEED = 4
MIN_DIVERSITY = 0.4
MAX_DUPLICATE_SHARE = 0.05
DUPLICATE_THRESHOLD = 8.0
NOISE_FACTOR = 2.0
NOISE_CHECKS = 2
WARMUP = 1000

KINDS = ('dis-wins', 'collapse', 'noise')


def high_frequency_ratio(images):
    """Mean over images (N, C, H, W) of the mean squared difference of
    neighbouring pixels (rows and columns alike) over twice the image's
    variance: about 1 for white noise, near 0 for smooth images, 0 for a
    constant image."""
    x = numpy.asarray(images, dtype=numpy.float64)
    rows = ((x[:, :, 1:, :] - x[:, :, :-1, :]) ** 2).mean(axis=(1, 2, 3))
    cols = ((x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2).mean(axis=(1, 2, 3))
    var = x.reshape(len(x), -1).var(axis=1)
    ratio = numpy.where(var > 0, (rows + cols) / 2 / numpy.maximum(
        2 * var, 1e-12), 0.0)
    return float(ratio.mean())


def sample_health(samples, real, threshold=DUPLICATE_THRESHOLD):
    """The numbers of the sample checks: uint8 ``samples`` against uint8
    ``real`` images of the same shape."""
    hf, hf_real = high_frequency_ratio(samples), high_frequency_ratio(real)
    return {'diversity': metrics.diversity(samples, real),
            'near_duplicate_share': metrics.near_duplicate_share(
                samples, threshold),
            'high_frequency_ratio': hf,
            'high_frequency_real': hf_real,
            'noise_factor': hf / hf_real if hf_real > 0 else None}


def sample_problems(h):
    """The problems (:data:`KINDS`) that a :func:`sample_health` dict
    shows, each with the line that says it."""
    out = []
    if h['diversity'] < MIN_DIVERSITY or \
            h['near_duplicate_share'] > MAX_DUPLICATE_SHARE:
        out.append(('collapse', 'the samples lost their spread (diversity '
                    '{:.2f}, real images 1; near-duplicate pairs {:.3f}): '
                    'the generator is collapsing'.format(
                        h['diversity'], h['near_duplicate_share'])))
    if h['noise_factor'] is not None and h['noise_factor'] > NOISE_FACTOR:
        out.append(('noise', 'the samples are high-frequency noise (ratio '
                    '{:.2f}, {:.1f}x the real images\' {:.2g})'.format(
                        h['high_frequency_ratio'], h['noise_factor'],
                        h['high_frequency_real'])))
    return out


def noisy(h):
    """Whether a :func:`sample_health` dict is over the noise factor."""
    return h['noise_factor'] is not None and h['noise_factor'] > NOISE_FACTOR


def check_problems(checks):
    """The problems that the last of a run's sample checks (a list of
    :func:`sample_health` dicts, oldest first) shows: those of
    :func:`sample_problems`, noise only when the :data:`NOISE_CHECKS` - 1
    checks before it were over the factor too."""
    problems = sample_problems(checks[-1])
    if len(checks) < NOISE_CHECKS or not all(
            noisy(h) for h in checks[-NOISE_CHECKS:]):
        problems = [p for p in problems if p[0] != 'noise']
    return problems


def sample_warnings(checks):
    """The warnings of the sample checks that :class:`RunHealth` gives a
    run with these checks (``health`` of ``result.json``), replayed by
    today's rules: [{'iteration', 'kind', 'message'}]."""
    out, warned = [], set()
    for i, h in enumerate(checks):
        problems = dict(check_problems(checks[:i + 1]))
        for kind in ('collapse', 'noise'):
            if kind not in problems:
                warned.discard(kind)
            elif kind not in warned:
                warned.add(kind)
                out.append({'iteration': int(h['iteration']), 'kind': kind,
                            'message': problems[kind]})
    return out


def dis_wins(log, warmup=WARMUP, key=DIS_LOSS_KEY, floor=DIS_LOSS_FLOOR,
             stretch=DIS_LOSS_STRETCH, need=DIS_LOSS_NEED):
    """[(iteration, loss, first iteration of the window)] each time that
    ``need`` of the last ``stretch`` entries of a LogReport ``log`` after
    ``warmup`` have ``key`` below ``floor`` (a single spike of D's loss
    does not hide a D that wins); again only after a window with fewer."""
    found, window, on = [], [], False
    for e in log:
        if e.get('iteration', 0) <= warmup or e.get(key) is None:
            continue
        window = (window + [e])[-stretch:]
        below = sum(w[key] < floor for w in window)
        if len(window) == stretch and below >= need:
            if not on:
                found.append((e['iteration'], float(e[key]),
                              window[0]['iteration']))
            on = True
        elif len(window) == stretch:
            on = False
    return found


class RunHealth(extension.Extension):
    """Warns when a DCGAN run goes wrong (see the module's docstring).

    ``generator`` and ``z``: the fixed latent batch the sample checks draw
    (test mode, like the grids); ``real``: uint8 real images as many as
    ``z``; ``sample_points``: the iterations at which to check the samples
    (the grids'); ``log_report``: the name of the LogReport extension whose
    log the D-loss check reads; ``out``: where the warnings are printed
    (default standard error).  State is kept in snapshots (snapshots
    written without it load with an empty history)."""
    trigger = 1, 'iteration'
    priority = extension.PRIORITY_READER

    def __init__(self, generator, z, real, sample_points, warmup=WARMUP,
                 log_report='LogReport', value_range=(-1.0, 1.0),
                 out=None):
        self.generator, self.z, self.real = generator, z, real
        self.sample_points, self.warmup = set(sample_points), warmup
        self.log_report, self.value_range = log_report, value_range
        self.out = out
        self.warnings, self.checks = [], []
        self._log_seen = 0

    def samples(self):
        return metrics.draw(self.generator, self.z, self.value_range)

    def _warn(self, iteration, kind, message):
        if any(w['kind'] == kind and w['iteration'] == iteration
               for w in self.warnings):
            return
        self.warnings.append({'iteration': int(iteration), 'kind': kind,
                              'message': message})
        print('warning: iteration {}: {}'.format(iteration, message),
              file=self.out or sys.stderr, flush=True)

    def check_log(self, log):
        for it, loss, since in dis_wins(log, self.warmup):
            self._warn(it, 'dis-wins', 'D\'s loss was below {} in {} of the '
                       'last {} log entries (from iteration {}; {:.4f} now): '
                       'D is winning and G\'s gradients fade'.format(
                           DIS_LOSS_FLOOR, DIS_LOSS_NEED, DIS_LOSS_STRETCH,
                           since, loss))

    def check_samples(self, iteration):
        h = sample_health(self.samples(), self.real)
        h['iteration'] = int(iteration)
        self.checks.append(h)
        for w in sample_warnings(self.checks):
            if w['iteration'] == h['iteration']:
                self._warn(w['iteration'], w['kind'], w['message'])
        return h

    def __call__(self, trainer):
        iteration = trainer.updater.iteration
        report = trainer.get_extension(self.log_report)
        if report is not None and len(report.log) != self._log_seen:
            self._log_seen = len(report.log)
            self.check_log(report.log)
        if iteration in self.sample_points and iteration > self.warmup:
            self.check_samples(iteration)

    def result(self):
        """``result.json``'s entries: the warnings and the sample checks."""
        return {'warnings': list(self.warnings), 'health': list(self.checks)}

    def serialize(self, serializer):
        if isinstance(serializer, chainer.serializer.Deserializer):
            try:
                arr = serializer('state', None)
            except KeyError:  # a snapshot from before these checks
                return
            state = json.loads(bytes(numpy.asarray(
                arr, dtype=numpy.uint8)).decode())
            self.warnings, self.checks = state['warnings'], state['checks']
        else:
            state = json.dumps({'warnings': self.warnings,
                                'checks': self.checks})
            serializer('state', numpy.frombuffer(state.encode(),
                                                 dtype=numpy.uint8).copy())


def summary(warnings):
    """The warnings of a run as a short text for tables: each problem with
    the iteration it was first seen at ('' for a healthy run)."""
    first = {}
    for w in warnings or ():
        first.setdefault(w['kind'], w['iteration'])
    names = {'dis-wins': 'D wins', 'collapse': 'collapse', 'noise': 'noise'}
    return '; '.join('{} (from {})'.format(names.get(k, k), first[k])
                     for k in KINDS if k in first)
