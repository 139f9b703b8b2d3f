"""Cartoon faces from emoji image packages: a training folder of colour
images, offline.

    npm pack emoji-datasource-google@16.0.0 emoji-datasource-twitter@16.0.0
    mkdir google twitter
    tar xzf emoji-datasource-google-16.0.0.tgz -C google
    tar xzf emoji-datasource-twitter-16.0.0.tgz -C twitter
    python -m animeface.emoji google/package twitter/package emoji_faces/

A package folder holds ``emoji.json`` (one entry per emoji with its
``category``, ``image`` file name, ``has_img_<set>`` flags and
``skin_variations``) and ``img/<set>/64/<image>`` PNGs with transparency.
Every emoji of the chosen categories (default "Smileys & Emotion" and
"People & Body"), with its skin-tone variants unless ``--no-skin-tones``,
is composited on white and written as ``OUT/<set>_<image>`` (RGB PNG).
``OUT/labels.json`` gives each file its category, subcategory (e.g.
"face-smiling", "person-role"; 32 in the two default categories) and emoji
(the code point of the emoji without its skin tone), which the quality
metric's classifier learns (:mod:`animeface.quality`).
The Google set (Noto) is under the Apache-2.0 licence, the Twitter set
(Twemoji) under CC-BY 4.0.  A summary per package and category is printed.
"""
import argparse
import collections
import json
import os
import sys

from PIL import Image

from gan import runs

DEFAULT_CATEGORIES = ('Smileys & Emotion', 'People & Body')
IMAGE_SIZE = 64
LABELS = 'labels.json'


def package_dir(path):
    """The folder holding emoji.json: ``path`` or its ``package/`` (the
    layout ``tar xzf`` of an npm tarball leaves)."""
    for folder in (path, os.path.join(path, 'package')):
        if os.path.isfile(os.path.join(folder, 'emoji.json')):
            return folder
    raise runs.UsageError(
        '{}: no emoji.json here or in {}/package: give an unpacked '
        'emoji-datasource-* package (npm pack, then tar xzf)'.format(
            path, path))


def image_sets(folder):
    """The image sets of a package folder: names under img/ with a 64 px
    folder."""
    root = os.path.join(folder, 'img')
    if not os.path.isdir(root):
        return []
    return sorted(s for s in os.listdir(root) if os.path.isdir(
        os.path.join(root, s, str(IMAGE_SIZE))))


def read_entries(folder):
    with open(os.path.join(folder, 'emoji.json'), encoding='utf-8') as f:
        try:
            entries = json.load(f)
        except ValueError as e:
            raise runs.UsageError('{}/emoji.json is not JSON ({}): unpack '
                                  'the package again'.format(folder, e))
    if not isinstance(entries, list):
        raise runs.UsageError('{}/emoji.json is not a list of emoji: give an'
                              ' emoji-datasource-* package'.format(folder))
    return entries


def selected_images(entries, image_set, categories, skin_tones=True):
    """(category, subcategory, image file name) of every emoji of
    ``categories`` that the set draws (``has_img_<set>``), with its
    skin-tone variants (which share the emoji's subcategory)."""
    flag = 'has_img_' + image_set
    out = []
    for e in entries:
        if e.get('category') not in categories:
            continue
        sub = e.get('subcategory') or e['category']
        if e.get(flag, True) and e.get('image'):
            out.append((e['category'], sub, e['image']))
        if skin_tones:
            for v in (e.get('skin_variations') or {}).values():
                if v.get(flag, True) and v.get('image'):
                    out.append((e['category'], sub, v['image']))
    return out


def on_white(path):
    """The image at ``path`` composited on a white background, RGB."""
    with Image.open(path) as im:
        im = im.convert('RGBA')
        white = Image.new('RGBA', im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im).convert('RGB')


def build(packages, out, categories=DEFAULT_CATEGORIES, skin_tones=True,
          log=None):
    """Write the faces of every package (folders) into ``out``; returns
    a summary dict ``{set: {'written': {category: n}, 'missing': n}}``.
    The summary lines go to ``log`` (default standard error)."""
    log = sys.stderr if log is None else log
    folders = [package_dir(p) for p in packages]
    summary = collections.OrderedDict()
    plans = []
    for folder in folders:
        entries = read_entries(folder)
        known = {e.get('category') for e in entries}
        unknown = [c for c in categories if c not in known]
        if unknown:
            raise runs.UsageError('{}: no category {} (there are: {})'.format(
                folder, ', '.join(repr(c) for c in unknown),
                ', '.join(sorted(c for c in known if c))))
        sets = image_sets(folder)
        if not sets:
            raise runs.UsageError('{}: no img/<set>/{} folder of images'
                                  .format(folder, IMAGE_SIZE))
        for image_set in sets:
            plans.append((folder, image_set, selected_images(
                entries, image_set, categories, skin_tones)))
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise runs.UsageError('{}: cannot create the folder ({}): choose a '
                              'writable path'.format(out, e.strerror or e))
    labels = {}
    for folder, image_set, images in plans:
        written = collections.Counter()
        missing = 0
        for category, sub, name in images:
            src = os.path.join(folder, 'img', image_set, str(IMAGE_SIZE),
                               name)
            if not os.path.isfile(src):
                missing += 1
                continue
            target = '{}_{}'.format(image_set, name)
            on_white(src).save(os.path.join(out, target))
            labels[target] = {'category': category, 'subcategory': sub,
                              'emoji': name.split('.')[0].split('-')[0]}
            written[category] += 1
        summary[image_set] = {'written': dict(written), 'missing': missing}
        print('{} ({}): {} images ({}){}'.format(
            image_set, folder, sum(written.values()),
            ', '.join('{} {}'.format(c, written[c]) for c in categories),
            ', {} listed but without a file'.format(missing)
            if missing else ''), file=log)
    runs.write_json(os.path.join(out, LABELS), labels, sort_keys=True)
    total = sum(sum(s['written'].values()) for s in summary.values())
    print('{}: {} face images of {} px on white'.format(
        out, total, IMAGE_SIZE), file=log)
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Turn unpacked emoji-datasource-* npm packages into a '
                    'folder of face images on white for train_dcgan.py.')
    parser.add_argument('packages', nargs='+', metavar='PACKAGE_DIR',
                        help='unpacked package folders (with emoji.json)')
    parser.add_argument('out', metavar='OUT_DIR', help='folder to write')
    parser.add_argument('--categories', nargs='+',
                        default=list(DEFAULT_CATEGORIES),
                        help='emoji.json categories to keep (default '
                             '%(default)s)')
    parser.add_argument('--no-skin-tones', action='store_true',
                        help='leave out the skin-tone variants')
    args = parser.parse_args(argv)
    try:
        return build(args.packages, args.out, args.categories,
                     not args.no_skin_tones)
    except runs.UsageError as e:
        parser.error(str(e))


if __name__ == '__main__':
    main()
