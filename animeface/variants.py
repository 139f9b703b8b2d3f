"""The variants a comparison trains, as data: a name (its folder), a label
(its row in tables and pictures) and the option values that make it, over
the comparison's shared options (every technique off).

The blog's four are DCGAN, + feature matching, + minibatch discrimination
and + both.  Adding a variant is adding an entry here (and its technique,
an option of :class:`animeface.options.Options`)::

    Variant('mbd_noise', 'DCGAN + minibatch discrimination + input noise',
            {'minibatch_discrimination': True, 'input_noise': 0.3}),

after which ``python -m animeface.compare --variants dcgan mbd_noise`` trains
it beside the plain DCGAN and puts it in compare.png and the table.
"""
import dataclasses
from dataclasses import dataclass

from gan import options as gopt

from animeface.options import Options

# the value of ``feature_matching`` that stands for the comparison's form
# (``compare --feature-matching paper|blog``)
FM = 'chosen'


@dataclass(frozen=True)
class Variant:
    """One row of a comparison."""
    name: str
    label: str
    options: dict = dataclasses.field(default_factory=dict)

    def apply(self, base, feature_matching='blog', **changes):
        """The options of this variant: ``base`` (the comparison's shared
        options) with the variant's values and ``changes``;
        ``feature_matching`` is the form that :data:`FM` stands for."""
        values = {k: (feature_matching if v == FM and k == 'feature_matching'
                      else v) for k, v in self.options.items()}
        return dataclasses.replace(base, **dict(values, **changes))

    def flags(self, feature_matching='blog'):
        """The ``train_dcgan.py`` flags that make this variant."""
        values = {k: (feature_matching if v == FM and k == 'feature_matching'
                      else v) for k, v in self.options.items()}
        return gopt.flags(values, Options)


VARIANTS = (
    Variant('dcgan', 'DCGAN', {}),
    Variant('fm', 'DCGAN + feature matching', {'feature_matching': FM}),
    Variant('mbd', 'DCGAN + minibatch discrimination',
            {'minibatch_discrimination': True}),
    Variant('fm_mbd', 'DCGAN + minibatch discrimination + feature matching',
            {'feature_matching': FM, 'minibatch_discrimination': True}),
)
# the blog's four-way, in its order
DEFAULT = tuple(v.name for v in VARIANTS)


def names():
    return [v.name for v in VARIANTS]


def get(name):
    """The variant called ``name`` (KeyError names the known ones)."""
    for v in VARIANTS:
        if v.name == name:
            return v
    raise KeyError('unknown variant {!r}; known: {}'.format(
        name, ', '.join(names())))
