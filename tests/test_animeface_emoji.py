"""The emoji dataset command on a tiny package folder made here."""
import json
import os

import numpy
import pytest
from PIL import Image

from animeface import emoji


def make_package(root, image_set='google', with_package_dir=True):
    """emoji.json with three categories, a skin-tone variant, one emoji the
    set does not draw and one listed file that is missing."""
    folder = os.path.join(root, 'package') if with_package_dir else root
    img = os.path.join(folder, 'img', image_set, '64')
    os.makedirs(img)
    flag = 'has_img_' + image_set
    entries = [
        {'image': 'a.png', 'category': 'Smileys & Emotion', flag: True,
         'subcategory': 'face-smiling'},
        {'image': 'b.png', 'category': 'People & Body', flag: True,
         'subcategory': 'person',
         'skin_variations': {'1F3FB': {'image': 'b-1.png', flag: True},
                             '1F3FC': {'image': 'b-2.png', flag: False}}},
        {'image': 'c.png', 'category': 'Flags', flag: True},
        {'image': 'd.png', 'category': 'People & Body', flag: False},
        {'image': 'gone.png', 'category': 'Smileys & Emotion', flag: True},
    ]
    with open(os.path.join(folder, 'emoji.json'), 'w') as f:
        json.dump(entries, f)
    for i, name in enumerate(['a.png', 'b.png', 'b-1.png', 'b-2.png',
                              'c.png', 'd.png']):
        # a red disc of alpha 0.5 + 0.1 i on a transparent square
        im = Image.new('RGBA', (64, 64), (0, 0, 0, 0))
        alpha = int(255 * (0.5 + 0.05 * i))
        for x in range(16, 48):
            for y in range(16, 48):
                im.putpixel((x, y), (255, 0, 0, alpha))
        im.save(os.path.join(img, name))
    return root


def test_build_selects_categories_and_skin_tones(tmp_path, capsys):
    g = make_package(str(tmp_path / 'g'), 'google')
    t = make_package(str(tmp_path / 't'), 'twitter', with_package_dir=False)
    out = str(tmp_path / 'faces')
    summary = emoji.build([g, t], out)
    names = sorted(os.listdir(out))
    assert names == ['google_a.png', 'google_b-1.png', 'google_b.png',
                     'labels.json', 'twitter_a.png', 'twitter_b-1.png',
                     'twitter_b.png']
    # every image's labels; a skin tone shares its emoji's
    labels = json.load(open(os.path.join(out, 'labels.json')))
    assert sorted(labels) == [n for n in names if n != 'labels.json']
    assert labels['twitter_b-1.png'] == {
        'category': 'People & Body', 'subcategory': 'person', 'emoji': 'b'}
    assert labels['google_a.png']['subcategory'] == 'face-smiling'
    # the training loader reads the images only
    from animeface import data as adata
    assert len(adata.load(out, 32, log=None)) == 6
    assert summary['google'] == {'written': {'Smileys & Emotion': 1,
                                             'People & Body': 2},
                                 'missing': 1}
    err = capsys.readouterr().err
    assert '6 face images' in err and '1 listed but without a file' in err
    # composited on white: alpha a over white is 255 (1 - a) + c a
    with Image.open(os.path.join(out, 'google_b.png')) as im:
        assert im.mode == 'RGB' and im.size == (64, 64)
        px = numpy.asarray(im)
    a = int(255 * 0.55) / 255
    numpy.testing.assert_array_equal(px[0, 0], [255, 255, 255])
    numpy.testing.assert_allclose(px[32, 32], [255, 255 * (1 - a),
                                               255 * (1 - a)], atol=1)
    # other categories, no skin tones
    emoji.build([g], str(tmp_path / 'f2'), ['Flags', 'People & Body'],
                skin_tones=False)
    assert sorted(os.listdir(str(tmp_path / 'f2'))) == [
        'google_b.png', 'google_c.png', 'labels.json']


def test_command_errors_are_one_line(tmp_path, capsys):
    g = make_package(str(tmp_path / 'g'))
    for argv, text in [([str(tmp_path), str(tmp_path / 'o')], 'no emoji.json'),
                       ([g, str(tmp_path / 'o'), '--categories', 'Faces'],
                        "no category 'Faces'")]:
        with pytest.raises(SystemExit) as e:
            emoji.main(argv)
        assert e.value.code == 2
        assert text in capsys.readouterr().err.strip().splitlines()[-1]
    emoji.main([g, str(tmp_path / 'o')])
    assert len(os.listdir(str(tmp_path / 'o'))) == 3 + 1  # and labels.json
