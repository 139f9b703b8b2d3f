"""The dataset tool: the PyPI detector under a private name, crops on known
boxes, images without faces, unreadable files, one-line errors."""
import importlib.metadata
import os
import sys

import numpy
import pytest
from PIL import Image

import animeface
from animeface import build_dataset
from animeface import detector


class FakeFace:
    """The shape of a detector result: .face.pos and .likelihood."""

    def __init__(self, x, y, w, h, likelihood=1.0):
        self.face = type('Part', (), {})()
        self.face.pos = type('Box', (), dict(x=x, y=y, width=w, height=h))()
        self.likelihood = likelihood


def test_detector_loads_under_a_private_name_and_leaves_ours():
    module = detector.load()
    assert module.__name__ == detector.PRIVATE_NAME
    assert sys.modules['animeface'] is animeface
    assert os.path.dirname(animeface.__file__) != \
        os.path.dirname(module.__file__)
    blank = Image.new('RGB', (120, 120), (255, 255, 255))
    assert module.detect(blank) == []


def test_missing_detector_gives_one_line_error(monkeypatch, tmp_path, capsys):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.delitem(sys.modules, detector.PRIVATE_NAME, raising=False)
    monkeypatch.setattr(importlib.metadata, 'distribution', missing)
    with pytest.raises(detector.DetectorMissing, match='pip install'):
        detector.load()
    Image.new('RGB', (20, 20)).save(str(tmp_path / 'a.png'))
    with pytest.raises(SystemExit):
        build_dataset.main([str(tmp_path), str(tmp_path / 'out')])
    err = capsys.readouterr().err.strip().splitlines()
    assert 'detector is missing' in err[-1]


def test_square_box_widens_centres_and_fits():
    assert build_dataset.square_box((40, 30, 20, 10), 0.0, 200, 100) == \
        (40, 25, 20, 20)
    assert build_dataset.square_box((40, 30, 20, 20), 0.5, 200, 100) == \
        (30, 20, 40, 40)
    # near the left edge: shifted inside
    assert build_dataset.square_box((0, 10, 20, 20), 0.5, 200, 100) == \
        (0, 0, 40, 40)
    # larger than the picture: shrunk to its shorter side
    assert build_dataset.square_box((0, 0, 80, 80), 1.0, 200, 60) == \
        (10, 0, 60, 60)


def picture(path, face_box=None, size=(160, 120)):
    """Grey picture; the face box (if any) painted red, its centre half
    green, so a crop shows whether it hit the box."""
    arr = numpy.full((size[1], size[0], 3), 100, numpy.uint8)
    if face_box:
        x, y, w, h = face_box
        arr[y:y + h, x:x + w] = (255, 0, 0)
        arr[y + h // 4:y + 3 * h // 4, x + w // 4:x + 3 * w // 4] = \
            (0, 255, 0)
    Image.fromarray(arr).save(path)


def test_build_crops_known_boxes_and_counts(tmp_path):
    src, dst = tmp_path / 'src', tmp_path / 'dst'
    (src / 'deep').mkdir(parents=True)
    boxes = {'one.png': [(30, 20, 40, 40)],
             'two.png': [(10, 10, 32, 32), (100, 60, 8, 8)],
             'deep/none.png': []}
    for name, bs in boxes.items():
        picture(str(src / name), bs[0] if bs else None)
    (src / 'broken.jpg').write_bytes(b'\xff\xd8 not a jpeg')
    (src / 'readme.txt').write_text('hi')
    seen = {}

    def detect(image):
        # the image is identified by its size and first red pixel
        arr = numpy.asarray(image)
        red = numpy.argwhere((arr == (255, 0, 0)).all(axis=2))
        if not len(red):
            return []
        y, x = red[0]
        for name, bs in boxes.items():
            if bs and bs[0][:2] == (x, y):
                seen[name] = image.mode
                return [FakeFace(*b, likelihood=0.9 if b[2] > 10 else 0.2)
                        for b in bs]
        raise AssertionError('unexpected picture')

    summary = build_dataset.build(str(src), str(dst), size=16,
                                  min_likelihood=0.5, detect=detect, log=None)
    assert (summary.files, summary.images, summary.unreadable) == (5, 3, 2)
    assert (summary.no_face, summary.rejected, summary.written) == (1, 1, 2)
    assert set(seen.values()) == {'RGB'}
    assert sorted(os.listdir(str(dst))) == ['one_0.png', 'two_0.png']
    for name in ('one_0.png', 'two_0.png'):
        crop = numpy.asarray(Image.open(str(dst / name)))
        assert crop.shape == (16, 16, 3)
        # exact box: red border, green centre, no grey background
        assert tuple(crop[0, 0]) == (255, 0, 0)
        assert tuple(crop[8, 8]) == (0, 255, 0)
        assert not ((crop == 100).all(axis=2)).any()
    # with a margin, the grey background enters the crop
    build_dataset.build(str(src), str(tmp_path / 'wide'), size=16, margin=0.5,
                        detect=detect, log=None)
    wide = numpy.asarray(Image.open(str(tmp_path / 'wide' / 'one_0.png')))
    assert tuple(wide[0, 0]) == (100, 100, 100)
    assert tuple(wide[8, 8]) == (0, 255, 0)


def test_build_with_the_real_detector_on_pictures_without_faces(tmp_path,
                                                                capsys):
    src = tmp_path / 'src'
    src.mkdir()
    picture(str(src / 'grey.png'))
    picture(str(src / 'boxes.png'), (20, 20, 50, 50))
    build_dataset.main([str(src), str(tmp_path / 'dst'), '--size', '32'])
    err = capsys.readouterr().err
    assert '2 images read' in err and '2 without a face' in err
    assert 'no face was written' in err
    assert os.listdir(str(tmp_path / 'dst')) == []


def test_build_refuses_a_missing_source(tmp_path, capsys):
    with pytest.raises(SystemExit):
        build_dataset.main([str(tmp_path / 'nope'), str(tmp_path / 'dst')])
    assert 'does not exist' in capsys.readouterr().err
