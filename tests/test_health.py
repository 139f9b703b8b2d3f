"""Run-health warnings (gan.health): the numbers against naive loops, and
DCGAN runs made to fail (D wins, collapse, noise) that say so in their
log and result.json, through a snapshot and a resume."""
import json
import os

import numpy
import pytest
from PIL import Image
from chainer import training

from gan import health, runs

from animeface import build
from animeface import data as adata
from animeface import options as aopt
from animeface import train as atrain


def naive_hf(images):
    out = []
    for im in numpy.asarray(images, dtype=numpy.float64):
        c, h, w = im.shape
        diffs = []
        for k in range(c):
            for i in range(h):
                for j in range(w):
                    if i + 1 < h:
                        diffs.append(('r', (im[k, i + 1, j] - im[k, i, j]) ** 2))
                    if j + 1 < w:
                        diffs.append(('c', (im[k, i, j + 1] - im[k, i, j]) ** 2))
        rows = numpy.mean([d for t, d in diffs if t == 'r'])
        cols = numpy.mean([d for t, d in diffs if t == 'c'])
        var = numpy.var(im)
        out.append(0.0 if var == 0 else (rows + cols) / 2 / (2 * var))
    return float(numpy.mean(out))


def smooth_images(n, size=16, seed=0):
    """Linear colour ramps: smooth, varied, uint8 (n, 3, size, size)."""
    rng = numpy.random.default_rng(seed)
    yy, xx = numpy.mgrid[0:size, 0:size] / (size - 1.0)
    out = []
    for _ in range(n):
        c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        a, b = rng.uniform(-1, 1, 2)
        t = numpy.clip(0.5 + a * (xx - .5) + b * (yy - .5), 0, 1)[None]
        out.append(c0[:, None, None] * (1 - t) + c1[:, None, None] * t)
    return numpy.stack(out).astype(numpy.uint8)


def test_high_frequency_ratio_against_a_loop_and_closed_forms():
    rng = numpy.random.default_rng(0)
    x = rng.integers(0, 256, (3, 2, 5, 7)).astype(numpy.uint8)
    x[1] = 17  # a constant image counts 0
    assert health.high_frequency_ratio(x) == pytest.approx(naive_hf(x))
    # white noise: neighbours independent, E (a - b)^2 = 2 var -> 1
    noise = rng.normal(size=(20, 3, 32, 32))
    assert health.high_frequency_ratio(noise) == pytest.approx(1, abs=0.03)
    assert health.high_frequency_ratio(smooth_images(20)) < 0.05


def naive_dis_wins(log, warmup, stretch, need, floor=0.05):
    """The windows' verdicts one by one, from scratch each time."""
    kept = [e for e in log if e['iteration'] > warmup and 'dis/loss' in e]
    verdicts = [(kept[i + stretch - 1], sum(
        e['dis/loss'] < floor for e in kept[i:i + stretch]) >= need,
        kept[i]) for i in range(len(kept) - stretch + 1)]
    out, before = [], False
    for last, wins, first in verdicts:
        if wins and not before:
            out.append((last['iteration'], last['dis/loss'],
                        first['iteration']))
        before = wins
    return out


def test_dis_wins_finds_each_run_after_the_warmup():
    loss = [1.0, 0.01, 0.01, 0.3, 0.01, 0.01, 0.01, 0.3,  # 2-7: 5 of 6
            0.01, 0.02, 0.5, 0.5, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01]
    log = [{'iteration': 10 * (i + 1), 'dis/loss': v}
           for i, v in enumerate(loss)]
    log.insert(3, {'iteration': 35})  # an entry without the key is skipped
    # warm-up 10: the window 20-60 has 4 of 5 under the floor (a spike of
    # 0.3 at 40); 40-80 has 3 (off), 50-90 4 again; from 70-110 to 110-150
    # at most 3; 120-160 has 4
    assert health.dis_wins(log, warmup=10, stretch=5, need=4) == [
        (60, 0.01, 20), (90, 0.01, 50), (160, 0.01, 120)]
    # all of 5: only the clean run at the end
    assert health.dis_wins(log, warmup=10, stretch=5, need=5) == [
        (170, 0.01, 130)]
    for warmup, stretch, need in ((0, 5, 4), (50, 3, 2), (0, 4, 4),
                                  (30, 2, 1)):
        assert health.dis_wins(log, warmup, stretch=stretch, need=need) \
            == naive_dis_wins(log, warmup, stretch, need)


def test_sample_problems_tell_collapse_noise_and_health_apart():
    real = smooth_images(60, seed=1)
    fine = smooth_images(60, seed=2)
    assert health.sample_problems(health.sample_health(fine, real)) == []
    # collapse onto typical images (as smooth as the real ones on average)
    typical = numpy.argsort([abs(health.high_frequency_ratio(f[None]) -
                                 health.high_frequency_ratio(real))
                             for f in fine])
    same = numpy.repeat(fine[typical[:1]], 60, axis=0)
    h = health.sample_health(same, real)
    assert h['diversity'] == 0 and h['near_duplicate_share'] == 1
    assert [k for k, _ in health.sample_problems(h)] == ['collapse']
    # a few modes: diverse on average, but many near-duplicate pairs
    few = numpy.concatenate([fine[typical[:3]]] * 20)
    assert [k for k, _ in health.sample_problems(health.sample_health(
        few, real))] == ['collapse']
    speckled = numpy.clip(fine + numpy.random.default_rng(0).normal(
        0, 60, fine.shape), 0, 255).astype(numpy.uint8)
    h = health.sample_health(speckled, real)
    assert h['noise_factor'] > health.NOISE_FACTOR
    assert [k for k, _ in health.sample_problems(h)] == ['noise']


def naive_noise_warnings(factors, need, limit):
    """Iterations (index) where noise is warned of: over the limit at
    this check and the need - 1 before it, and not warned since the last
    check under it."""
    out, on = [], False
    for i, f in enumerate(factors):
        run = factors[max(0, i - need + 1):i + 1]
        if f is None or f <= limit:
            on = False
        elif len(run) == need and all(x is not None and x > limit
                                      for x in run) and not on:
            out.append(i)
            on = True
    return out


def test_noise_is_warned_of_when_it_lasts_two_checks():
    def check(i, f):
        return {'iteration': 100 * i, 'diversity': 1.0,
                'near_duplicate_share': 0.0, 'high_frequency_ratio': 0.1,
                'high_frequency_real': 0.05, 'noise_factor': f}
    # a burst at one check (as a healthy 64 px run early on), then noise
    # that lasts, a healthy check, and noise again
    factors = [2.5, 1.2, 2.5, 3.0, 8.0, 1.0, 2.2, 2.4, None, 2.9]
    checks = [check(i, f) for i, f in enumerate(factors)]
    got = health.sample_warnings(checks)
    assert [w['kind'] for w in got] == ['noise'] * len(got)
    want = naive_noise_warnings(factors, health.NOISE_CHECKS,
                                health.NOISE_FACTOR)
    assert [w['iteration'] for w in got] == [100 * i for i in want]
    assert want == [3, 7]
    # the single-check rules still see each noisy check
    assert [k for k, _ in health.sample_problems(checks[0])] == ['noise']
    assert health.check_problems(checks[:1]) == []


def test_summary_names_each_problem_once_with_its_first_iteration():
    w = [{'iteration': 400, 'kind': 'noise'},
         {'iteration': 300, 'kind': 'dis-wins'},
         {'iteration': 900, 'kind': 'noise'}]
    assert health.summary(w) == 'D wins (from 300); noise (from 400)'
    assert health.summary([]) == health.summary(None) == ''


@pytest.fixture(scope='module')
def ramps(tmp_path_factory):
    """16 smooth 32 px images."""
    root = str(tmp_path_factory.mktemp('ramps'))
    for i, im in enumerate(smooth_images(16, size=32)):
        Image.fromarray(im.transpose(1, 2, 0)).save(
            os.path.join(root, 'r{:02d}.png'.format(i)))
    return root


def failing_run(ramps, out, how, resume=None, stop_at=None, extra=()):
    """A tiny run sabotaged ``how``: 'frozen' (G never learns: D wins and
    G keeps its first samples), 'constant' (G ignores z and never learns:
    collapse); ``stop_at``: interrupt it there (a snapshot at 30)."""
    o = aopt.parse(['--data', ramps, '--out', str(out), '--size', '32',
                    '--ch', '16', '--z-dim', '8', '--batchsize', '8',
                    '--log-interval', '1', '--iterations', '40',
                    '--grid-interval', '10', '--snapshot-interval', '30',
                    '--lr', '0.005'] + list(extra))
    images = adata.load(o.data, o.size, seed=o.seed)
    os.makedirs(o.out, exist_ok=True)
    trainer = build.build_trainer(o, images)
    gen_opt = trainer.updater.get_optimizer('gen')
    gen_opt.alpha = 0.0
    if how == 'constant':
        gen_opt.target.l0.W.array[...] = 0
    if resume:
        runs.load_snapshot(trainer, resume)
    if stop_at:
        trainer.stop_trigger = training.get_trigger((stop_at, 'iteration'))
    trainer.run()
    return atrain.write_result(trainer, o)


def kinds(result):
    return [w['kind'] for w in result['warnings']]


def test_a_run_whose_d_wins_says_so_once(ramps, tmp_path, capsys):
    # the initial G draws near-identical noisy images: all three problems
    r = failing_run(ramps, tmp_path / 'a', 'frozen')
    assert sorted(kinds(r)) == ['collapse', 'dis-wins', 'noise']
    win = [w for w in r['warnings'] if w['kind'] == 'dis-wins'][0]
    log = json.load(open(str(tmp_path / 'a' / 'log')))
    # the first window of 5 entries after the warm-up (20) with 4 under
    # the floor
    assert (win['iteration'],) == health.dis_wins(log, 20)[0][:1]
    assert win['iteration'] == naive_dis_wins(log, 20, 5, 4)[0][0]
    err = capsys.readouterr().err
    for w in r['warnings']:  # one line each on standard error
        assert err.count('warning: iteration {}: {}'.format(
            w['iteration'], w['message'])) == 1
    # sample checks at the grids after the warm-up: 30 and 40
    assert [h['iteration'] for h in r['health']] == [30, 40]
    # a warned problem is not warned again while it lasts
    assert kinds(r).count('noise') == 1


def test_collapse_and_noise_are_told_apart_in_runs(ramps, tmp_path):
    r = failing_run(ramps, tmp_path / 'c', 'constant')
    assert 'collapse' in kinds(r) and 'noise' not in kinds(r)
    assert all(h['diversity'] == 0 for h in r['health'])
    # large initial weights: G draws varied noise (no collapse)
    r = failing_run(ramps, tmp_path / 'n', 'frozen', extra=['--wscale',
                                                            '0.3'])
    assert 'noise' in kinds(r) and 'collapse' not in kinds(r)
    assert min(h['diversity'] for h in r['health']) > health.MIN_DIVERSITY


def test_warnings_survive_a_snapshot_and_resume(ramps, tmp_path):
    straight = failing_run(ramps, tmp_path / 's', 'frozen')
    first = failing_run(ramps, tmp_path / 'f', 'frozen', stop_at=30)
    assert first['warnings'] and len(first['health']) == 1
    resumed = failing_run(ramps, tmp_path / 'r', 'frozen',
                          resume=str(tmp_path / 'f' / 'snapshot_iter_30'))
    assert resumed['warnings'] == straight['warnings']
    # (without the saved state the resumed run would warn of collapse and
    # noise again at 40, and keep one check)
    assert len(resumed['health']) == len(straight['health']) == 2
    for a, b in zip(resumed['health'], straight['health']):
        assert a == pytest.approx(b)
