"""Make the small pictures of the documentation from run folders.

    python -m experiments.doc_images --ssl result/ssl_default \\
        --compare result/compare --out docs/images

From a semi-supervised run folder (``train_ssl.py --out RUN``):

* ``ssl_accuracy.png`` -- test error over epochs of the averaged and the
  raw discriminator, read from ``RUN/log`` (the paper's number for the
  run's label count drawn as a dashed line);
* ``ssl_samples.png`` -- the run's last ``samples_epochNNN.png``, scaled
  down.

From a four-way comparison folder (``python -m animeface.compare --out
DIR``):

* ``compare.png`` -- ``DIR/compare.png`` scaled down;
* ``grid_<variant>.png`` -- each variant's final grid
  (``DIR/final_<variant>.png``, else ``DIR/<variant>/samples_latest.png``);
* ``analogy.png`` -- one variant's analogy grid (``--analogy``, default
  the minibatch-discrimination variant), when the folder has one.

From a Stacked-MNIST table folder (``python -m experiments.stacked_mnist
--out DIR``):

* ``stacked_compare.png`` -- the four variants of one seed (``--seed``,
  default 0) and set (``--set``, default ``authors``) over training, 5
  points of 4 x 4 samples (3 x 3 above 32 px), 256 colours; ``--prefix``
  renames it (``--prefix emoji64_``: ``emoji64_compare.png``), and
  ``--grids`` adds ``<prefix>grid_<variant>.png`` (a 6 x 6 corner of each
  final grid of 64 px samples, the whole grid of 32 px ones, at full
  size) and ``<prefix>analogy.png`` (``--analogy``'s grid), from any
  ``experiments.four_way_seeds`` folder;
* with ``--by-set VARIANT``, ``<prefix>VARIANT_by_set.png`` instead: every
  finished run of that variant (any ``experiments.four_way_seeds``
  folder, Stacked-MNIST or a folder of images), a row per seed and set.

Every picture is written as an optimised PNG no wider or taller than its
limit.  If the pictures in OUT together exceed ``--max-bytes`` (2 MB),
the largest one this command wrote is stored with a 256-colour palette,
then scaled down further, until they fit.
"""
import argparse
import glob
import io
import json
import os
import re
import sys

from PIL import Image

from gan import options as gopt
from gan import runs
from gan.runs import UsageError

from animeface import variants as V

# test errors out of 10,000 of the paper's feature-matching GAN
# (permutation-invariant MNIST, mean over 10 runs), by label count
PAPER_ERRORS = {20: 1677, 50: 221, 100: 93, 200: 90}
VARIANTS = V.DEFAULT
MAX_BYTES = 2 * 1000 * 1000


# ---------------------------------------------------------------- reading

def read_log(run):
    path = os.path.join(run, 'log')
    try:
        with open(path) as f:
            log = json.load(f)
    except FileNotFoundError:
        raise UsageError('{} has no log: give a folder written by '
                         'train_ssl.py --out'.format(run)) from None
    except ValueError:
        raise UsageError('{} is not a JSON log (a run still writing it? '
                         'try again)'.format(path)) from None
    if not isinstance(log, list):
        raise UsageError('{} is not a Chainer LogReport list'.format(path))
    return log


def error_curve(log):
    """Epochs and test errors in percent of the averaged and the raw D.

    Returns ``(prefix, epochs, averaged, raw)``; prefix is ``test`` or
    ``validation`` (``train_ssl.py --validation``), whichever the log
    holds.  Entries without the evaluation are skipped."""
    for prefix in ('test', 'validation'):
        key_avg, key_raw = prefix + '/error_avg', prefix + '/error_raw'
        rows = [e for e in log if key_avg in e and key_raw in e]
        if rows:
            return (prefix, [e['epoch'] for e in rows],
                    [100.0 * e[key_avg] for e in rows],
                    [100.0 * e[key_raw] for e in rows])
    raise UsageError('the log holds no test/error_avg or validation/error_avg '
                     'entry yet: wait for the run\'s first evaluation')


def read_labels(run):
    try:
        with open(os.path.join(run, 'options.json')) as f:
            return json.load(f).get('labels')
    except (OSError, ValueError):
        return None


def numbered(paths, pattern):
    """(number, path) of the paths whose name matches ``pattern`` (one
    group of digits), sorted by the number, not by the name."""
    found = []
    for p in paths:
        m = re.fullmatch(pattern, os.path.basename(p))
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def last_samples(run):
    found = numbered(glob.glob(os.path.join(run, 'samples_epoch*.png')),
                     r'samples_epoch(\d+)\.png')
    if not found:
        raise UsageError('{} has no samples_epochNNN.png yet: wait for its '
                         'first sample grid'.format(run))
    return found[-1][1]


def open_image(path):
    try:
        im = Image.open(path)
        im.load()
    except OSError as e:
        raise UsageError('{} cannot be read as an image ({})'.format(
            path, type(e).__name__)) from None
    return im


# ---------------------------------------------------------------- writing

def shrink(im, max_side):
    """``im`` scaled down (never up) so that its longer side is at most
    ``max_side``, as RGB, or L when it has no colour."""
    if im.mode not in ('RGB', 'L'):
        im = im.convert('RGB')
    if im.mode == 'RGB':
        r, g, b = im.split()
        if r.tobytes() == g.tobytes() == b.tobytes():
            im = r
    scale = max_side / max(im.size)
    if scale < 1:
        size = (max(1, round(im.size[0] * scale)),
                max(1, round(im.size[1] * scale)))
        im = im.resize(size, Image.Resampling.LANCZOS)
    return im


def png_bytes(im, palette=False):
    if palette and im.mode == 'RGB':
        im = im.quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                         dither=Image.Dither.NONE)
    buf = io.BytesIO()
    im.save(buf, format='PNG', optimize=True)
    return buf.getvalue()


def accuracy_figure(epochs, avg, raw, prefix, paper=None, labels=None):
    """The error curves as a PIL image (matplotlib, Agg)."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    from matplotlib import ticker
    fig, ax = plt.subplots(figsize=(5.0, 3.2), dpi=100)
    ax.plot(epochs, avg, color='C0', label='averaged D')
    ax.plot(epochs, raw, color='C1', alpha=0.7, linewidth=1,
            label='raw D')
    if paper is not None:
        ax.axhline(paper / 100.0, color='k', linestyle='--', linewidth=1,
                   label='paper, {} labels ({:.2f} %)'.format(
                       labels, paper / 100.0))
    ax.set_yscale('log')
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(
        lambda v, _: '{:g}'.format(v)))
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xlabel('epoch')
    ax.set_ylabel('{} error (%)'.format(prefix))
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format='png')
    plt.close(fig)
    buf.seek(0)
    return Image.open(buf).convert('RGB')


class Writer:
    """Writes the pictures into ``out`` and keeps them under a byte budget.

    Each picture is kept as an image (scaled to its limit) so that it can
    be re-encoded smaller if the budget needs it."""

    def __init__(self, out, max_bytes=MAX_BYTES):
        self.out = out
        self.max_bytes = max_bytes
        self.images = {}    # name -> [image, palette]
        os.makedirs(out, exist_ok=True)

    def add(self, name, im, palette=False):
        self.images[name] = [im, palette]
        self._write(name)

    def _write(self, name):
        im, palette = self.images[name]
        with open(os.path.join(self.out, name), 'wb') as f:
            f.write(png_bytes(im, palette))

    def total(self):
        return sum(os.path.getsize(p)
                   for p in glob.glob(os.path.join(self.out, '*.png')))

    def fit(self):
        """Re-encode the largest written pictures until OUT's PNGs fit."""
        while self.total() > self.max_bytes:
            name = max(self.images, key=lambda n: os.path.getsize(
                os.path.join(self.out, n)))
            im, palette = self.images[name]
            if not palette and im.mode == 'RGB':
                self.images[name][1] = True
            elif min(im.size) > 16:
                self.images[name][0] = im.resize(
                    (round(im.size[0] * 0.75), round(im.size[1] * 0.75)),
                    Image.Resampling.LANCZOS)
            else:
                raise UsageError(
                    'the pictures in {} take {} bytes, over --max-bytes {}, '
                    'even at 16 px: remove other PNGs there or raise '
                    '--max-bytes'.format(self.out, self.total(),
                                         self.max_bytes))
            self._write(name)
        return self.total()


# ---------------------------------------------------------------- the two sources

def ssl_images(run, writer, plot_side=500, samples_side=280):
    if not os.path.isdir(run):
        raise UsageError('--ssl {}: no such folder'.format(run))
    prefix, epochs, avg, raw = error_curve(read_log(run))
    labels = read_labels(run)
    fig = accuracy_figure(epochs, avg, raw, prefix,
                          PAPER_ERRORS.get(labels), labels)
    writer.add('ssl_accuracy.png', shrink(fig, plot_side))
    writer.add('ssl_samples.png',
               shrink(open_image(last_samples(run)), samples_side))
    return ['ssl_accuracy.png', 'ssl_samples.png']


def final_grid(folder, variant):
    for path in (os.path.join(folder, 'final_{}.png'.format(variant)),
                 os.path.join(folder, variant, 'samples_latest.png')):
        if os.path.isfile(path):
            return path
    return None


def compare_images(folder, writer, analogy='mbd', compare_side=960,
                   grid_side=320):
    if not os.path.isdir(folder):
        raise UsageError('--compare {}: no such folder'.format(folder))
    written = []
    path = os.path.join(folder, 'compare.png')
    if os.path.isfile(path):
        writer.add('compare.png', shrink(open_image(path), compare_side))
        written.append('compare.png')
    for variant in VARIANTS:
        path = final_grid(folder, variant)
        if path:
            name = 'grid_{}.png'.format(variant)
            writer.add(name, shrink(open_image(path), grid_side))
            written.append(name)
    path = os.path.join(folder, 'analogy_{}.png'.format(analogy))
    if os.path.isfile(path):
        writer.add('analogy.png', shrink(open_image(path), grid_side))
        written.append('analogy.png')
    if not written:
        raise UsageError('--compare {}: no compare.png, final_<variant>.png '
                         'or analogy_<variant>.png: give the --out folder of '
                         'python -m animeface.compare'.format(folder))
    return written


def image_size(run, default=32):
    """The image size a run trained at (its options.json), else default."""
    return int((runs.read_options(run) or {}).get('size', default))


def cells_of(size):
    """Samples a side per point in training: 4 x 4 of 32 px, 3 x 3 of
    larger ones."""
    return 4 if size <= 32 else 3


def grid_corner(path, size, side):
    """The top-left k x k samples of a final grid of size-px samples, at
    full size, k = side // size (at most the whole grid)."""
    im = open_image(path)
    k = max(1, min(side // size, im.size[0] // size, im.size[1] // size))
    return im.crop((0, 0, k * size, k * size))


def stacked_images(folder, writer, seed=0, set_name='authors',
                   prefix='stacked_', grids=False, analogy='mbd',
                   columns=5, grid_side=384, analogy_side=640):
    """PREFIXcompare.png: the four variants of one seed and set over
    training; with ``grids`` also PREFIXgrid_<variant>.png (a corner of
    each final grid at full size) and PREFIXanalogy.png."""
    from animeface.compare import compare_image
    from experiments import four_way_seeds as stacked_mnist
    if set_name not in stacked_mnist.SETS:
        raise UsageError('--set {}: not a set of experiments.four_way_seeds '
                         '(one of {})'.format(set_name,
                                              ', '.join(stacked_mnist.SETS)))
    es = [(set_name, seed, v) for v in VARIANTS]
    missing = [stacked_mnist.run_dir(folder, e) for e in es
               if not stacked_mnist.is_trained(folder, e)]
    if missing:
        raise UsageError('--stacked {}: no finished run in {}: give the '
                         '--out folder of python -m experiments.stacked_mnist '
                         'and a --seed and --set it ran'.format(folder,
                                                                missing[0]))
    dirs = [stacked_mnist.run_dir(folder, e) for e in es]
    size = image_size(dirs[0])
    im = compare_image([(V.get(e[2]).label, d) for e, d in zip(es, dirs)],
                       size, columns=columns, cells=cells_of(size))
    names = [prefix + 'compare.png']
    writer.add(names[0], im, palette=True)
    if not grids:
        return names
    for e, d in zip(es, dirs):
        path = final_grid(os.path.dirname(d), e[2])
        if path:
            names.append('{}grid_{}.png'.format(prefix, e[2]))
            writer.add(names[-1], grid_corner(path, size, grid_side),
                       palette=True)
    path = os.path.join(os.path.dirname(dirs[VARIANTS.index(analogy)]),
                        'analogy_{}.png'.format(analogy))
    if os.path.isfile(path):
        names.append(prefix + 'analogy.png')
        writer.add(names[-1], shrink(open_image(path), analogy_side),
                   palette=True)
    return names


def by_set_images(folder, writer, variant, prefix='', columns=5):
    """<variant>_by_set.png: every finished run of one variant in a
    four_way_seeds folder, a row per (seed, set), over training."""
    from animeface.compare import compare_image
    from experiments import four_way_seeds as seeds
    es = sorted(((seed, list(seeds.SETS).index(s), s)
                 for s, seed, v in seeds.run_entries(folder, [variant])
                 if seeds.is_trained(folder, (s, seed, v))))
    es = [(seed, s) for seed, _, s in es]
    if not es:
        raise UsageError('--by-set {}: no finished run of that variant in '
                         '{}: give the --out folder of python -m '
                         'experiments.four_way_seeds'.format(variant, folder))
    name = '{}{}_by_set.png'.format(prefix, variant)
    size = image_size(seeds.run_dir(folder, (es[0][1], es[0][0], variant)))
    im = compare_image([('{}, seed {}'.format(s, seed),
                         seeds.run_dir(folder, (s, seed, variant)))
                        for seed, s in es], size, columns=columns,
                       cells=cells_of(size))
    writer.add(name, im, palette=True)
    return [name]


# ---------------------------------------------------------------- command line

def build_parser():
    p = argparse.ArgumentParser(
        prog='python -m experiments.doc_images',
        description='Regenerate the documentation pictures from run folders.')
    p.add_argument('--ssl', metavar='RUN',
                   help='a train_ssl.py run folder -> ssl_accuracy.png, '
                        'ssl_samples.png')
    p.add_argument('--compare', metavar='DIR',
                   help='an animeface.compare folder -> compare.png, '
                        'grid_<variant>.png, analogy.png')
    p.add_argument('--stacked', metavar='DIR',
                   help='an experiments.stacked_mnist folder -> '
                        'stacked_compare.png')
    p.add_argument('--by-set', metavar='VARIANT', choices=VARIANTS,
                   help='with --stacked: VARIANT_by_set.png, every finished '
                        'run of that variant, a row per seed and set')
    p.add_argument('--seed', type=int, default=0,
                   help='the seed of the Stacked-MNIST runs shown '
                        '(default %(default)s)')
    p.add_argument('--set', default='authors', dest='set_name',
                   help='with --stacked: the set whose four variants are '
                        'shown (default %(default)s)')
    p.add_argument('--prefix',
                   help='with --stacked: the start of the names it writes '
                        '(default stacked_ for stacked_compare.png, none for '
                        'VARIANT_by_set.png)')
    p.add_argument('--grids', action='store_true',
                   help='with --stacked: also PREFIXgrid_<variant>.png (a '
                        'corner of each final grid at full size) and '
                        'PREFIXanalogy.png (--analogy)')
    p.add_argument('--analogy', default='mbd', choices=VARIANTS,
                   help='variant whose analogy grid becomes analogy.png '
                        '(default %(default)s)')
    p.add_argument('--out', default='docs/images',
                   help='folder of the pictures (default %(default)s)')
    p.add_argument('--max-bytes', type=int, default=MAX_BYTES,
                   help='budget for all PNGs in --out together '
                        '(default %(default)s)')
    gopt.add_device(p, help='accepted as by every command line and checked; '
                    'this one runs no model (it reads the pictures and logs '
                    'that the runs wrote) (default %(default)s)')
    return p


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    try:
        runs.parse_device(args.device)
        if not (args.ssl or args.compare or args.stacked):
            raise UsageError('nothing to do: give --ssl RUN, --compare DIR '
                             'and/or --stacked DIR')
        if args.grids and not args.stacked:
            raise UsageError('--grids needs --stacked DIR (an '
                             'experiments.four_way_seeds folder)')
        if args.max_bytes < 1:
            raise UsageError('--max-bytes must be positive')
        writer = Writer(args.out, args.max_bytes)
        names = []
        if args.ssl:
            names += ssl_images(args.ssl, writer)
        if args.compare:
            names += compare_images(args.compare, writer, args.analogy)
        if args.stacked and args.by_set:
            names += by_set_images(args.stacked, writer, args.by_set,
                                   args.prefix or '')
        elif args.stacked:
            names += stacked_images(args.stacked, writer, args.seed,
                                    args.set_name,
                                    args.prefix or 'stacked_', args.grids,
                                    args.analogy)
        elif args.by_set:
            raise UsageError('--by-set needs --stacked DIR (an '
                             'experiments.four_way_seeds folder)')
        total = writer.fit()
    except UsageError as e:
        p.exit(2, '{}: error: {}\n'.format(p.prog, e))
    for name in names:
        path = os.path.join(args.out, name)
        with Image.open(path) as im:
            size = im.size
        print('{}  {}x{}  {} bytes'.format(path, size[0], size[1],
                                           os.path.getsize(path)))
    print('{} PNG bytes in {} (budget {})'.format(total, args.out,
                                                  args.max_bytes))
    return 0


if __name__ == '__main__':
    sys.exit(main())
