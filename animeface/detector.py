"""The offline anime-face detector of the PyPI package ``animeface``.

That package imports itself as ``animeface`` (its ``__init__`` runs ``from
animeface import _nvxs``), the same name as this project's folder, so a
plain ``import animeface`` here would find this folder.  :func:`load`
executes the installed distribution's files under the private name
``_animeface_detector``: while they run, ``sys.modules['animeface']`` points
at the private module (which already holds the compiled ``_nvxs``), and the
previous entry is put back afterwards.
"""
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import sys

PRIVATE_NAME = '_animeface_detector'

MISSING = ('the anime-face detector is missing: pip install animeface==2.0.3 '
           '(the PyPI package "animeface", an offline detector)')


class DetectorMissing(RuntimeError):
    pass


def _package_dir():
    try:
        dist = importlib.metadata.distribution('animeface')
    except importlib.metadata.PackageNotFoundError:
        raise DetectorMissing(MISSING) from None
    path = os.path.join(str(dist.locate_file('')), 'animeface')
    if not os.path.exists(os.path.join(path, '__init__.py')):
        raise DetectorMissing(MISSING + ' (its files are not in {})'.format(
            path))
    return path


def _extension(package_dir):
    """The compiled ``_nvxs`` module, loaded as ``<private>._nvxs``."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(package_dir, '_nvxs' + suffix)
        if os.path.exists(path):
            name = PRIVATE_NAME + '._nvxs'
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise DetectorMissing(MISSING + ' (no compiled _nvxs for this Python in '
                          '{})'.format(package_dir))


def load():
    """The detector module (cached): ``load().detect(pil_image)`` returns
    faces with ``.face.pos`` (x, y, width, height) and ``.likelihood``.

    Raises :class:`DetectorMissing` with a one-line message when the
    package is not installed or its compiled part is missing."""
    if PRIVATE_NAME in sys.modules:
        return sys.modules[PRIVATE_NAME]
    package_dir = _package_dir()
    nvxs = _extension(package_dir)
    spec = importlib.util.spec_from_file_location(
        PRIVATE_NAME, os.path.join(package_dir, '__init__.py'),
        submodule_search_locations=[package_dir])
    module = importlib.util.module_from_spec(spec)
    module._nvxs = nvxs
    saved = {k: sys.modules.get(k) for k in ('animeface', 'animeface._nvxs')}
    sys.modules['animeface'] = module
    sys.modules['animeface._nvxs'] = nvxs
    try:
        spec.loader.exec_module(module)
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value
    sys.modules[PRIVATE_NAME] = module
    sys.modules[PRIVATE_NAME + '._nvxs'] = nvxs
    return module
