"""Train the blog's four variants on the same data, seed and budget, then
compare them.

    python -m animeface.compare --data faces/ --size 64 --out result/compare
    python -m animeface.compare --data stacked-mnist --size 32 --ch 64 \\
        --iterations 1500 --out result/compare_stacked

Variants (animeface/variants.py) run in sequence in DIR/<name> (dcgan,
fm, mbd, fm_mbd).  All four hold D back as the authors' CIFAR-10
discriminator does: Gaussian noise 0.2 on its input and dropout 0.5 after
its hidden convolutions, in training (``--input-noise 0 --dis-dropout 0``:
Radford et al.'s D, as ``train_dcgan.py`` has it).  The two
feature-matching variants use ``--feature-matching`` (default blog: G keeps
``-log D(G(z))``, through minibatch discrimination, and adds the feature
term; paper: the feature term alone).  ``--resume auto`` continues an
interrupted comparison: a finished variant (result.json) is skipped and an
unfinished one resumes from its last snapshot.  Then it writes

* DIR/compare.png -- rows = variants, columns = points in training, each
  cell the top-left ``--cells`` x ``--cells`` samples of that grid;
* DIR/final_<name>.png -- the final 10x10 grids;
* DIR/analogy_<name>.png -- the analogy grids;
* DIR/metrics.md and DIR/metrics.json -- the collapse metrics of each
  variant and of real data (see :mod:`animeface.evaluate`; on a folder
  made by :mod:`animeface.emoji` also the quality number of
  :mod:`animeface.quality`), and the
  run-health warnings each variant raised while it trained (D winning,
  collapse, noise; see :mod:`gan.health`).
"""
import glob
import os
import re
import shutil
import sys
from dataclasses import dataclass

import numpy
from PIL import Image, ImageDraw

from gan import health, multinode, runs
from gan import options as gopt
from gan.options import option

from animeface import analogy
from animeface import data as adata
from animeface import evaluate
from animeface import options as aopt
from animeface import train
from animeface import variants as V


@dataclass
class Comparison:
    """The options of a comparison beyond those of its runs."""
    feature_matching: str = option(
        'blog', 'the form used by the feature-matching variants: blog '
        '(-log D(G(z)) + per-sample feature error) or paper (batch-mean '
        'feature distance only) (default %(default)s)', group='comparison',
        choices=('paper', 'blog'))
    variants: list = option(
        list(V.DEFAULT), 'the variants to train, by name (default: the '
        'blog\'s four, %(default)s; animeface/variants.py lists them)',
        group='comparison', nargs='+', type=str)
    samples: int = option(26000, 'generated samples for the metrics '
                          '(default %(default)s)', group='comparison')
    cache: str = option(None, 'cache folder of the metrics\' classifiers '
                        '(MNIST; the quality metric\'s of an emoji folder)',
                        group='comparison', type=str)
    metrics: bool = option(True, 'the metrics table (--no-metrics: pictures '
                           'only; on MNIST data its classifier is trained on '
                           'first use, about 15 minutes on a CPU)',
                           group='comparison')
    columns: int = option(8, 'points in training shown in compare.png '
                          '(default %(default)s)', group='comparison')
    cells: int = option(5, 'compare.png shows cells x cells samples per '
                        'point (default %(default)s)', group='comparison')


# the options of a variant's run that the comparison sets itself
VARIANT_OPTIONS = ('feature_matching', 'minibatch_discrimination')
# D held back as the authors' CIFAR-10 discriminator is, in all four
# variants alike: without it the minibatch-discrimination variants' D wins
# on colour images (docs/RESULTS.md); --input-noise 0 --dis-dropout 0 turns
# it off, and --preset blog uses the blog's noise 0.3 without dropout
D_DEFAULTS = {'input_noise': 0.2, 'dis_dropout': 0.5}


def parser():
    return aopt.parser(
        description='Train DCGAN, + feature matching, + minibatch '
        'discrimination and + both on the same data, seed and budget; write '
        'compare.png, grids, analogies and a metrics table.',
        exclude=VARIANT_OPTIONS, extra=(Comparison,),
        defaults=dict(D_DEFAULTS, out='result/compare'))


def check(base, c):
    aopt.check(base)
    if c.samples < 2 or c.columns < 1 or not 1 <= c.cells <= 10:
        raise runs.UsageError('--samples must be at least 2, '
                              '--columns at least 1, --cells 1-10')
    unknown = [n for n in c.variants if n not in V.names()]
    if unknown:
        raise runs.UsageError('--variants {}: unknown; choose from {}'.format(
            ' '.join(unknown), ' '.join(V.names())))
    if base.resume not in (None, 'auto'):
        raise runs.UsageError(
            '--resume {}: a comparison continues with --resume auto '
            '(each variant from its latest snapshot)'.format(base.resume))


def variant_options(base, c, variant):
    """The run options of ``variant`` in the comparison (``base``, ``c``):
    its folder under ``--out``, continued when it holds a snapshot."""
    return variant.apply(base, c.feature_matching,
                         out=os.path.join(base.out, variant.name),
                         resume='auto')


def train_variant(vo, images, log=sys.stderr, comm=None):
    """Train (continue, or skip when finished) one variant's run."""
    result, trained = train.run(vo, images, log=log, comm=comm,
                                check_same=True)
    if result is not None:
        print('{}: {}'.format(vo.out, train.summary_line(result) if trained
                              else 'finished earlier, skipped'), file=log)


def grid_files(run_dir):
    """(iteration, path) of the fixed-latent grids of a run, in order."""
    found = []
    for path in glob.glob(os.path.join(run_dir, 'samples_*.png')):
        m = re.search(r'samples_(\d+)\.png$', path)
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def pick_columns(iterations, n):
    """At most n of the sorted ``iterations``, evenly spread, always with
    the last one."""
    if len(iterations) <= n:
        return list(iterations)
    if n == 1:
        return list(iterations[-1:])
    idx = numpy.unique(numpy.linspace(0, len(iterations) - 1, n).round())
    return [iterations[int(i)] for i in idx]


def compare_image(runs, size, columns=8, cells=5, pad=4, label_width=150):
    """One picture: a row per (label, run_dir), a column per point in
    training shared by all runs; cell = top-left cells x cells samples of
    the grid at that iteration.  Returns a PIL image."""
    grids = [dict(grid_files(d)) for _, d in runs]
    shared = sorted(set.intersection(*[set(g) for g in grids]))
    cols = pick_columns(shared, columns)
    cell = cells * size
    header = 16
    width = label_width + len(cols) * (cell + pad)
    height = header + len(runs) * (cell + pad)
    out = Image.new('RGB', (width, height), 'white')
    draw = ImageDraw.Draw(out)
    for c, it in enumerate(cols):
        draw.text((label_width + c * (cell + pad), 2),
                  'iteration {}'.format(it), fill='black')
    for r, ((label, _), grid) in enumerate(zip(runs, grids)):
        y = header + r * (cell + pad)
        for k, line in enumerate(wrap_text(label, 22)):
            draw.text((4, y + 4 + 12 * k), line, fill='black')
        for c, it in enumerate(cols):
            with Image.open(grid[it]) as im:
                part = im.convert('RGB').crop((0, 0, cell, cell))
            out.paste(part, (label_width + c * (cell + pad), y))
    return out


def wrap_text(text, width):
    """``text`` in lines of at most ``width`` characters (whole words)."""
    lines, line = [], ''
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = (line + ' ' + word).strip()
    return lines + [line]


def metrics_markdown(rows, kind):
    """Markdown table of the metrics rows (dicts with 'variant'); the last
    row is the real data."""
    digits = kind in adata.DIGIT_SETS
    head = ['variant']
    if digits:
        head += ['modes (of {})'.format(rows[0].get('n_modes', '?')),
                 'KL to uniform', 'Inception score']
    quality = any(r.get('frechet') is not None for r in rows)
    if quality:
        head += ['Fréchet distance']
    head += ['diversity', 'near-duplicate pairs',
             'distance to nearest training image (median)', 'iterations',
             'train time (s)', 'warnings']
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '---|' * len(head)]
    for r in rows:
        cells = [r['variant']]
        if digits:
            cells += [str(r.get('modes', '')), _num(r.get('kl')),
                      _num(r.get('inception_score'))]
        if quality:
            cells += [_num(r.get('frechet'), 1)]
        cells += [_num(r.get('diversity'), 3),
                  _num(r.get('near_duplicate_share'), 4),
                  _num(r.get('nearest_train_median'), 1),
                  str(r.get('iterations', '')),
                  _num(r.get('elapsed_seconds'), 0),
                  health.summary(r.get('warnings'))]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def _num(x, digits=2):
    return '' if x is None else '{:.{}f}'.format(x, digits)


def main(argv=None):
    p = parser()
    base, c = p.parse(argv)
    try:
        check(base, c)
        comm = multinode.from_options(base.multi_node, base.communicator,
                                      base.device)
        runs.root_only(comm, lambda: runs.prepare_out(base.out, base.resume))
        return run(base, c, comm=comm)
    except runs.UsageError as e:
        p.fail(str(e))


def run(base, c=None, log=sys.stderr, comm=None):
    """Train the variants of comparison ``c`` (:class:`Comparison`) over
    the shared options ``base`` (:class:`animeface.options.Options`), then
    (rank 0 of a multi-node run alone) evaluate them and write the
    comparison; None on the other ranks."""
    c = c or Comparison()
    images = runs.root_only(comm, lambda: adata.load(
        base.data, base.size, seed=base.seed, log=log))
    saved = dict(gopt.to_dict(base), **gopt.to_dict(c))
    if runs.is_root(comm):
        runs.write_json(os.path.join(base.out, 'options.json'), saved,
                        sort_keys=True)
    variant_runs = []
    for variant in [V.get(n) for n in c.variants]:
        vo = variant_options(base, c, variant)
        train_variant(vo, images, log, comm)
        variant_runs.append((variant, vo))
    if not runs.is_root(comm):  # rank 0 evaluates and writes
        return None

    # the analogies and metrics on the device the variants trained on
    device = (comm.gan_device if comm is not None
              else runs.parse_device(base.device))
    classifier, classifier_info, features = None, None, None
    if c.metrics:
        classifier, classifier_info = evaluate.load_classifier(
            images.kind, c.cache, device)
        features = evaluate.load_features(base.data, images.kind, c.cache,
                                          device)
    rows = []
    for variant, vo in variant_runs:
        name = variant.name
        shutil.copyfile(os.path.join(vo.out, 'samples_latest.png'),
                        os.path.join(base.out, 'final_{}.png'.format(name)))
        gen = analogy.load_generator(runs.latest_snapshot(vo.out),
                                     device=device)
        analogy.write_analogy(gen, os.path.join(
            base.out, 'analogy_{}.png'.format(name)), seed=base.seed)
        row = {'variant': variant.label, 'name': name}
        if c.metrics:
            row.update(evaluate.evaluate_run(
                vo.out, images, c.samples, classifier, seed=base.seed,
                device=device, features=features))
        row.update(runs.finished_result(vo.out))
        row.pop('machine', None)
        rows.append(row)
        if c.metrics:
            print('{}: {}'.format(name, evaluate.metrics_line(row)),
                  file=log)

    compare_image([(v.label, vo.out) for v, vo in variant_runs],
                  base.size, c.columns, c.cells).save(
                      os.path.join(base.out, 'compare.png'))
    if not c.metrics:
        return {'options': saved, 'rows': rows}
    reference = evaluate.reference_metrics(images, c.samples, classifier,
                                           seed=base.seed, features=features)
    reference['variant'] = 'real data'
    rows.append(reference)
    summary = {'options': saved, 'classifier': classifier_info, 'rows': rows}
    runs.write_json(os.path.join(base.out, 'metrics.json'), summary)
    runs.write_text(os.path.join(base.out, 'metrics.md'),
                    metrics_markdown(rows, images.kind))
    print(metrics_markdown(rows, images.kind), file=log)
    return summary


if __name__ == '__main__':
    main()
