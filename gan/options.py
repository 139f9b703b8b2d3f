"""Options declared once: a dataclass per experiment whose fields carry
their command-line help, presets as named overrides of its defaults, and
one parser that turns flags into an instance.

An experiment package declares::

    @dataclasses.dataclass
    class Options:
        lr: float = option(0.003, 'Adam step size', group='training')
        weight_norm: bool = option(True, 'weight-normalized layers in D')
        ...

    PRESETS = {'paper': {}, 'blog': {'lr': 1e-3, 'weight_norm': False}}

and its command line is ``Parser(Options, PRESETS, 'paper').parse(argv)``:
``--preset NAME`` puts the preset's values in place of the defaults, any
flag given explicitly wins, and ``--help`` shows the preset's values.
Programs (tests, batch drivers) build the same instance with
:func:`resolve`.  A field's flag is its name with dashes (``--lr``,
``--weight-norm``); a bool field gets both ``--name`` and ``--no-name``.

The options both experiments share (device, output folder, resume,
multi-node, feature matching, minibatch discrimination) are declared here
once, as functions that return the field (an experiment may give its own
default).
"""
import argparse
import contextlib
import dataclasses

from gan import links
from gan import losses
from gan import multinode
from gan.runs import UsageError


def positive_int(text):
    """argparse type: an integer above 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('{!r} is not an integer'.format(text))
    if value <= 0:
        raise argparse.ArgumentTypeError('must be positive, got {}'.format(
            value))
    return value


def option(default, help, *, group='options', type=None, choices=None,
           metavar=None, flag=None, cli=True, required=False, nargs=None):
    """A dataclass field with its command-line declaration.

    Args:
        default: the value without flag or preset.
        help: the help text (``%(default)s`` is the preset's value).
        group: the ``--help`` section it is listed in.
        type: argparse type (default: the type of ``default``; needed when
            the default is None).
        choices: the allowed values.
        metavar: the value's name in ``--help``.
        flag: the flag, when not ``--`` + the name with dashes.
        cli: False for an option that programs set but no flag does.
        required: the command line must give the flag.
        nargs: argparse nargs (a list value).
    """
    metadata = dict(help=help, group=group, type=type, choices=choices,
                    metavar=metavar, flag=flag, cli=cli, required=required,
                    nargs=nargs)
    if isinstance(default, list):  # a fresh list per instance
        return dataclasses.field(default_factory=lambda: list(default),
                                 metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def default_of(f):
    """The default value of the dataclass field ``f``."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


# --------------------------------------------------------------------------
# The options both experiments declare
# --------------------------------------------------------------------------
DEVICE_HELP = ('-1 for the CPU, a GPU id (0) or a Chainer device '
               'specifier (@numpy, @cupy:0) (default %(default)s)')


def device():
    return option('-1', DEVICE_HELP, group='run')


def add_device(parser, help=DEVICE_HELP):
    """``--device`` for a command line written with argparse (convert
    its value with :func:`gan.runs.parse_device`)."""
    parser.add_argument('--device', default='-1', help=help)


def out(default):
    return option(default, 'output folder; one that holds a run is refused '
                  'unless resuming (default %(default)s)', group='run')


def resume():
    return option(None, 'auto: continue the latest snapshot in --out (a fresh '
                  'start when there is none; a finished run is reported, not '
                  'trained again); or a snapshot_iter_N file (one of another '
                  'folder starts a branch)', group='run', type=str,
                  metavar='auto|SNAPSHOT')


def seed(default):
    return option(default, 'seed of the initial weights, the noise and the '
                  'batch order (default %(default)s)', group='run')


def fast():
    return option(True, 'the CPU fast paths of gan.fast (fused network '
                  'passes; same numbers as the plain Chainer functions, '
                  'which --no-fast selects, e.g. for benchmarks)',
                  group='run')


def multi_node():
    return option(False, 'data-parallel over the MPI ranks with ChainerMN '
                  '(under mpiexec -n N); --batchsize stays the global batch, '
                  'each rank takes batchsize/N (make install-mn)',
                  group='multi-node (run under mpiexec -n N)')


def communicator():
    return option(None, 'ChainerMN communicator (default naive on the CPU, '
                  'pure_nccl on GPUs)', type=str,
                  choices=multinode.COMMUNICATORS,
                  group='multi-node (run under mpiexec -n N)')


def feature_matching(default, choices=losses.FEATURE_MATCHING):
    return option(default, 'generator loss: none = -log D(G(z)); paper = '
                  'only the distance between the batch means of D\'s '
                  'features; blog = -log D(G(z)) plus the per-sample mean '
                  'squared feature error (default %(default)s)',
                  group='model', choices=tuple(choices))


def minibatch_discrimination():
    return option(False, 'minibatch discrimination before D\'s output '
                  '(gan.links.MinibatchDiscrimination)', group='model')


def mbd_kernels():
    return option(100, 'minibatch discrimination: its number of kernels B '
                  '(default %(default)s)', group='model', type=positive_int)


def mbd_dim():
    return option(5, 'minibatch discrimination: its kernel dimension C '
                  '(default %(default)s)', group='model', type=positive_int)


def mbd_form():
    return option('authors', 'minibatch discrimination: authors (normalised '
                  'T, learned log-scale and bias, data-dependent init), raw '
                  '(T ~ N(0, 0.05^2)) or blog (T ~ N(0, 0.001^2)) (default '
                  '%(default)s)', group='model', choices=links.MBD_FORMS)


def mbd_fixed_t():
    return option(False, 'minibatch discrimination: keep T (and the '
                  'log-scale after its init) at the initial value instead of '
                  'learning it', group='model')


def mbd_arguments(o, **extra):
    """The keyword arguments of :class:`gan.links.MinibatchDiscrimination`
    for options ``o`` (with the shared ``mbd_*`` fields), or None without
    minibatch discrimination."""
    if not o.minibatch_discrimination:
        return None
    return dict(num_kernels=o.mbd_kernels, kernel_dim=o.mbd_dim,
                form=o.mbd_form, learn_T=not o.mbd_fixed_t, **extra)


# --------------------------------------------------------------------------
# Options <-> flags, dicts
# --------------------------------------------------------------------------
def fields(cls):
    """The dataclass fields of ``cls`` by name."""
    return {f.name: f for f in dataclasses.fields(cls)}


def flag_of(f):
    return f.metadata.get('flag') or '--' + f.name.replace('_', '-')


def add_options(parser, cls, exclude=(), groups=None):
    """Add a flag per field of ``cls`` (but those in ``exclude`` and those
    with ``cli=False``) to ``parser``, in sections by ``group``.  Returns
    the sections by name (pass them on to add a second class's fields)."""
    groups = {} if groups is None else groups
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if not meta.get('cli', True) or f.name in exclude:
            continue
        name = meta.get('group', 'options')
        if name not in groups:
            groups[name] = parser.add_argument_group(name)
        default = default_of(f)
        kwargs = dict(dest=f.name, default=default, help=meta.get('help'))
        if meta.get('metavar'):
            kwargs['metavar'] = meta['metavar']
        if meta.get('required'):
            kwargs['required'] = True
        if meta.get('nargs'):
            kwargs['nargs'] = meta['nargs']
        if isinstance(default, bool):
            kwargs['action'] = argparse.BooleanOptionalAction
        else:
            kwargs['type'] = meta.get('type') or type(default)
            if meta.get('choices'):
                kwargs['choices'] = list(meta['choices'])
        groups[name].add_argument(flag_of(f), **kwargs)
    return groups


def fail(parser, message):
    """End the program with ``PROG: error: MESSAGE`` (one line, exit status
    2, as argparse's own errors), said by rank 0 alone under mpiexec."""
    if multinode.process_rank() != 0:
        parser.exit(2)
    parser.exit(2, '{}: error: {}\n'.format(parser.prog, message))


@contextlib.contextmanager
def one_line_errors(parser):
    """A UsageError inside ends the program with one line (:func:`fail`):
    bad options or data, never a traceback."""
    try:
        yield
    except UsageError as e:
        fail(parser, str(e))


class Parser(argparse.ArgumentParser):
    """The command line of an options dataclass ``cls`` with ``--preset``.

    The preset's values become the parser's defaults before the command
    line is parsed, so any flag given explicitly overrides them and
    ``--help`` shows them.  :meth:`parse` returns an instance of ``cls``
    (and, with ``extra`` classes, a tuple with one instance of each).

    Args:
        cls: the options dataclass (it has a ``preset`` field when there
            are presets).
        presets: name -> {field: value}.
        default_preset: the preset without ``--preset``.
        preset_help: help text of ``--preset``.
        exclude: fields of ``cls`` without a flag here (they keep their
            default, or the preset's value).
        extra: further option dataclasses parsed by the same command line
            (a comparison's own options).
        defaults: {field: value} that this command line uses in place of
            the defaults of ``cls`` (a preset still overrides them).
    """

    def __init__(self, cls, presets=None, default_preset=None,
                 preset_help=None, exclude=(), extra=(), defaults=None,
                 **kwargs):
        kwargs.setdefault('formatter_class',
                          argparse.RawDescriptionHelpFormatter)
        super().__init__(**kwargs)
        self.classes = (cls,) + tuple(extra)
        self.presets = presets or {}
        self.exclude = set(exclude)
        if self.presets:
            if default_preset not in self.presets:
                raise ValueError('default preset {!r} is not among {}'.format(
                    default_preset, sorted(self.presets)))
            unknown = sorted({k for p in self.presets.values() for k in p}
                             - set(fields(cls)))
            if unknown:
                raise ValueError('presets set unknown options: {}'.format(
                    ', '.join(unknown)))
            self.add_argument(
                '--preset', choices=sorted(self.presets),
                default=default_preset,
                help=(preset_help or 'a named set of option defaults; flags '
                      'given explicitly override it') +
                ' (default %(default)s)')
        groups = {}
        for c in self.classes:
            add_options(self, c, self.exclude if c is cls else (), groups)
        if defaults:
            self.set_defaults(**defaults)
        self._base = {a.dest: a.default for a in self._actions
                      if a.default is not argparse.SUPPRESS}

    def parse_known_args(self, args=None, namespace=None):
        if self.presets:
            pre = argparse.ArgumentParser(prog=self.prog, add_help=False)
            pre.add_argument('--preset', default=self.get_default('preset'))
            name = pre.parse_known_args(args)[0].preset
            if name in self.presets:  # else the full parse names the error
                values = dict(self._base, **{
                    k: v for k, v in self.presets[name].items()
                    if k in self._base})
                self.set_defaults(**values)
        return super().parse_known_args(args, namespace)

    def fail(self, message):
        """One line and exit status 2 (:func:`fail`)."""
        fail(self, message)

    def parse(self, args=None):
        """Parse ``args`` (default: sys.argv) into option instances."""
        ns = vars(self.parse_args(args))
        made = []
        for i, c in enumerate(self.classes):
            values = {k: v for k, v in ns.items() if k in fields(c)
                      and not (i == 0 and k in self.exclude)}
            if i == 0 and self.presets:  # the fields without a flag here
                preset = self.presets[ns['preset']]
                values = dict({k: v for k, v in preset.items()
                               if k not in values}, **values)
            made.append(c(**values))
        return made[0] if len(made) == 1 else tuple(made)


def resolve(cls, values=None, presets=None, default_preset=None):
    """An instance of ``cls`` from a dict (or an instance) of ``values``:
    the preset named by ``values['preset']`` (or ``default_preset``) over
    the defaults, then ``values``.  Unknown names raise UsageError."""
    if values is None:
        values = {}
    elif dataclasses.is_dataclass(values):
        values = dataclasses.asdict(values)
    known = fields(cls)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UsageError('unknown option{} {}: see --help'.format(
            's' if len(unknown) > 1 else '', ', '.join(
                '--' + k.replace('_', '-') for k in unknown)))
    merged = {}
    if presets:
        name = values.get('preset', default_preset)
        if name not in presets:
            raise UsageError('--preset {}: unknown; choose one of {}'.format(
                name, ', '.join(sorted(presets))))
        # a preset given by name replaces the defaults; values given as an
        # instance already hold their preset's values
        merged.update(presets[name])
        merged['preset'] = name
    merged.update(values)
    return cls(**merged)


def check_choices(o, error=UsageError):
    """``error`` (one line) for a field of ``o`` whose value is not among
    its declared choices (a value set by a program, not by a flag)."""
    for key, f in fields(type(o)).items():
        choices = f.metadata.get('choices')
        if choices and getattr(o, key) not in (None,) + tuple(choices):
            raise error('--{} {}: choose one of {}'.format(
                key.replace('_', '-'), getattr(o, key), ', '.join(choices)))


def to_dict(o):
    """The options as a plain dict (for options.json)."""
    return dataclasses.asdict(o)


def from_saved(cls, saved):
    """An instance of ``cls`` from a run's options.json (a dict): the
    fields it holds, the defaults for fields added since it was written;
    entries that are no options (data size, results) are left out."""
    known = fields(cls)
    return cls(**{k: v for k, v in saved.items() if k in known})


def flags(overrides, cls=None):
    """The command-line flags that set ``overrides`` ({field: value}),
    e.g. ``{'minibatch_discrimination': True, 'mbd_kernels': 50}`` ->
    ``['--minibatch-discrimination', '--mbd-kernels', '50']``."""
    known = fields(cls) if cls is not None else {}
    out = []
    for name, value in overrides.items():
        f = known.get(name)
        flag = flag_of(f) if f is not None else '--' + name.replace('_', '-')
        if isinstance(value, bool):
            out.append(flag if value else '--no-' + flag[2:])
        else:
            out += [flag, str(value)]
    return out
