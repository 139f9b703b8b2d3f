"""The layers of the code point one way: gan/ imports no experiment,
the two experiment packages do not import each other, and no module of
the project imports a training script (tests call the scripts' main)."""
import ast
import glob
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = {'train_ssl', 'train_dcgan'}


def imported(path):
    """The top-level names of every module ``path`` imports, anywhere in
    it (also inside functions)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split('.')[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.level == 0:
            names.add(node.module.split('.')[0])
    return names


def modules(folder):
    return sorted(glob.glob(os.path.join(ROOT, folder, '**', '*.py'),
                            recursive=True))


@pytest.mark.parametrize('folder, forbidden', [
    ('gan', {'mnist_ssl', 'animeface', 'experiments', 'benchmarks'}
     | SCRIPTS),
    ('mnist_ssl', {'animeface', 'experiments', 'benchmarks'} | SCRIPTS),
    ('animeface', {'mnist_ssl', 'experiments', 'benchmarks'} | SCRIPTS),
    ('experiments', SCRIPTS),
    ('benchmarks', SCRIPTS),
])
def test_imports_point_one_way(folder, forbidden):
    found = modules(folder)
    assert found
    bad = {os.path.relpath(p, ROOT): sorted(imported(p) & forbidden)
           for p in found if imported(p) & forbidden}
    assert bad == {}


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    path = tmp_path / 'm.py'
    path.write_text('def f():\n    from mnist_ssl import train\n'
                    '    import train_ssl\n')
    assert imported(str(path)) == {'mnist_ssl', 'train_ssl'}


@pytest.mark.parametrize('script', sorted(SCRIPTS))
def test_training_scripts_are_thin(script):
    with open(os.path.join(ROOT, script + '.py')) as f:
        assert len(f.read().splitlines()) < 100
