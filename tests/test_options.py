"""gan.options: option dataclasses, presets and their command lines, for
both experiments."""
import dataclasses
from dataclasses import dataclass

import pytest

from gan import options as gopt
from gan.options import option
from gan.runs import UsageError


@dataclass
class Toy:
    preset: str = option('a', 'the preset', cli=False)
    width: int = option(1, 'the width', group='model')
    form: str = option('x', 'the form', choices=('x', 'y', 'z'))
    fast: bool = option(False, 'the speed switch')
    hidden: int = option(9, 'no flag', cli=False)
    names: list = option(['p', 'q'], 'a list', nargs='+', type=str)


@dataclass
class Extra:
    cells: int = option(5, 'cells per point')
    form: str = option('y', 'the extra class\'s own form')


PRESETS = {'a': {}, 'b': {'width': 7, 'form': 'y', 'fast': True,
                          'hidden': 2}, 'c': {'width': 3}}


def toy_parser(presets=PRESETS, default='a', **kwargs):
    return gopt.Parser(Toy, presets, default, prog='toy', **kwargs)


def test_fields_become_flags_and_an_instance():
    o = toy_parser().parse([])
    assert o == Toy()
    o = toy_parser().parse(['--width', '4', '--form', 'z', '--fast',
                            '--names', 'r', 's', 't'])
    assert (o.width, o.form, o.fast, o.names) == (4, 'z', True,
                                                 ['r', 's', 't'])
    # a bool has both forms; no flag for cli=False
    assert toy_parser().parse(['--fast', '--no-fast']).fast is False
    with pytest.raises(SystemExit):
        toy_parser().parse(['--hidden', '3'])
    # a fresh default list per instance
    a, b = Toy(), Toy()
    a.names.append('x')
    assert b.names == ['p', 'q']


def test_preset_values_are_defaults_that_flags_override():
    p = toy_parser()
    b = p.parse(['--preset', 'b'])
    assert (b.preset, b.width, b.form, b.fast, b.hidden) == (
        'b', 7, 'y', True, 2)
    # explicit flags win, before or after --preset
    assert p.parse(['--width', '2', '--preset', 'b']).width == 2
    assert p.parse(['--preset', 'b', '--no-fast']).fast is False
    # the same parser again: c's values over the base defaults, none of b's
    c = p.parse(['--preset', 'c'])
    assert (c.width, c.form, c.fast, c.hidden) == (3, 'x', False, 9)
    assert p.parse([]) == Toy()
    # --help shows the chosen preset's defaults
    p.parse(['--preset', 'b'])
    assert p.get_default('width') == 7


def test_preset_errors(capsys):
    with pytest.raises(SystemExit) as e:
        toy_parser().parse(['--preset', 'nope'])
    assert e.value.code == 2
    assert "toy: error: argument --preset: invalid choice: 'nope'" in \
        capsys.readouterr().err
    with pytest.raises(ValueError, match='unknown options: colour'):
        toy_parser({'a': {'colour': 'red'}})
    with pytest.raises(ValueError, match='default preset'):
        toy_parser({'b': {}}, default='a')


def test_resolve_is_the_parse_of_the_same_values():
    """Programs build the instance that the command line builds."""
    for argv, values in ((['--preset', 'b', '--width', '5'],
                          {'preset': 'b', 'width': 5}),
                         ([], {}), (['--preset', 'c'], {'preset': 'c'})):
        assert toy_parser().parse(argv) == gopt.resolve(Toy, values, PRESETS,
                                                        'a')
    # an instance is taken as it is (its preset already applied)
    o = gopt.resolve(Toy, {'preset': 'b', 'width': 5}, PRESETS, 'a')
    assert gopt.resolve(Toy, o, PRESETS, 'a') == o
    with pytest.raises(UsageError, match='unknown option --colour'):
        gopt.resolve(Toy, {'colour': 'red'}, PRESETS, 'a')
    with pytest.raises(UsageError, match='--preset nope: unknown'):
        gopt.resolve(Toy, {'preset': 'nope'}, PRESETS, 'a')


def test_extra_classes_exclude_and_defaults():
    p = toy_parser(exclude=('form',), extra=(Extra,),
                   defaults={'width': 11})
    toy, extra = p.parse(['--form', 'z', '--cells', '2'])
    # --form is the extra class's; the excluded field keeps its default
    assert (toy.form, extra.form, extra.cells) == ('x', 'z', 2)
    assert toy.width == 11
    # a preset still overrides the command line's own defaults
    toy, _ = p.parse(['--preset', 'b'])
    assert (toy.width, toy.form) == (7, 'y')


def test_flags_set_the_values_they_are_made_from():
    overrides = {'width': 4, 'fast': True, 'form': 'z'}
    argv = gopt.flags(overrides, Toy)
    assert argv == ['--width', '4', '--fast', '--form', 'z']
    assert gopt.flags({'fast': False}, Toy) == ['--no-fast']
    assert dataclasses.replace(Toy(), **overrides) == toy_parser().parse(argv)


def test_from_saved_keeps_fields_and_defaults_the_rest():
    saved = {'width': 4, 'images': 100, 'data_source': 'x'}
    assert gopt.from_saved(Toy, saved) == Toy(width=4)


def test_one_line_errors(capsys):
    p = toy_parser()
    with pytest.raises(SystemExit) as e:
        with gopt.one_line_errors(p):
            raise UsageError('--width 0: must be positive')
    assert e.value.code == 2
    assert capsys.readouterr().err == 'toy: error: --width 0: must be ' \
        'positive\n'


@pytest.mark.parametrize('experiment', ['mnist_ssl', 'animeface'])
def test_each_experiment_declares_each_flag_once(experiment):
    """Every flag of a training script comes from one field of its options
    class; the shared ones carry the same help in both experiments."""
    import importlib
    mod = importlib.import_module(experiment + '.options')
    p = mod.parser()
    flags = [s for a in p._actions for s in a.option_strings
             if s.startswith('--') and not s.startswith('--no-')]
    assert len(flags) == len(set(flags))
    fields = gopt.fields(mod.Options)
    cli = {f for f, v in fields.items() if v.metadata.get('cli', True)}
    assert {a.dest for a in p._actions} - {'help', 'preset'} == cli
    from animeface import options as aopt
    from mnist_ssl import options as sopt
    a, s = gopt.fields(aopt.Options), gopt.fields(sopt.Options)
    for name in ('mbd_kernels', 'mbd_dim', 'mbd_form', 'mbd_fixed_t',
                 'minibatch_discrimination', 'feature_matching', 'device',
                 'resume', 'fast', 'multi_node', 'communicator'):
        assert a[name].metadata['help'] == s[name].metadata['help'], name
