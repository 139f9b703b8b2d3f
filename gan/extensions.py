"""Trainer extensions shared by both experiments.

* :class:`FixedLatentGrid` -- a grid of generated images from a fixed latent
  batch, written at a set interval (the same z every time, so grids over
  training are comparable).
* :class:`ParameterAverage` -- an exponential moving average of a link's
  parameters with bias correction (usable from the first iteration).
* :class:`CollapseWarning` -- a one-line warning when the generator's
  samples have become all alike.
* :class:`RandomState` -- puts :mod:`gan.random`'s generator state into
  trainer snapshots, so a resumed run draws the same numbers.
* :class:`EpochSteps` -- a hyperparameter (the learning rate) that changes
  at given epochs.
"""
import copy
import json
import os
import sys

import numpy

import chainer
from chainer.training import extension

from gan import image as gimage
from gan import random as grandom


class FixedLatentGrid(extension.Extension):
    """Writes ``out/<filename>`` (formatted with ``iteration`` and ``epoch``)
    showing ``generator(z)`` for a fixed ``z`` in test mode.

    Args:
        generator: a link with ``forward(z)`` returning images.
        z: fixed latent batch (rows * cols, z_dim), on the generator's device.
        value_range: range of the generator's output.
        image_shape: (C, H, W) when the generator returns flat vectors.
        latest: also write this file name (a fixed name to look at), or
            None.
    """
    priority = extension.PRIORITY_READER

    def __init__(self, generator, z, rows=10, cols=10,
                 filename='samples_{iteration:08d}.png',
                 value_range=(-1.0, 1.0), image_shape=None,
                 latest='samples_latest.png'):
        self.generator, self.z = generator, z
        self.rows, self.cols = rows, cols
        self.filename, self.value_range = filename, value_range
        self.image_shape, self.latest = image_shape, latest

    def render(self, path):
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            x = self.generator(self.z)
        x = chainer.backend.CpuDevice().send(x.array)
        return gimage.save_grid(path, x, self.rows, self.cols,
                                self.value_range, image_shape=self.image_shape)

    def __call__(self, trainer):
        updater = trainer.updater
        name = self.filename.format(iteration=updater.iteration,
                                    epoch=updater.epoch)
        path = self.render(os.path.join(trainer.out, name))
        if self.latest:
            latest = os.path.join(trainer.out, self.latest)
            with open(path, 'rb') as src, open(latest, 'wb') as dst:
                dst.write(src.read())


class CollapseWarning(extension.Extension):
    """Warns once, in one line on stderr, when the observed ``key`` (a
    measure of how much the generator's samples differ from one another,
    such as ``gen/sample_std`` of :class:`gan.ssl_updater.
    SemiSupervisedGANUpdater`) is below ``threshold``: the generator has
    collapsed to a single output.  Epochs before ``start_epoch`` are not
    checked: a new generator's samples are briefly alike while it learns
    the mean image.  It warns again only after a recovery.  It reads the
    epoch's last iteration, so it can warn an epoch before
    :func:`first_epoch_below`, which reads the epoch means of the log.
    :func:`first_epoch_below` finds the epoch in a run's log afterwards.
    Nothing is saved in snapshots, so snapshots without it still load.
    """
    trigger = 1, 'epoch'
    priority = extension.PRIORITY_READER

    def __init__(self, key='gen/sample_std', threshold=0.01, start_epoch=2):
        self.key, self.threshold = key, float(threshold)
        self.start_epoch = start_epoch
        self.warned = False

    def __call__(self, trainer):
        value = trainer.observation.get(self.key)
        if value is None or trainer.updater.epoch < self.start_epoch:
            return
        value = float(value)  # a 0-dim numpy or cupy array
        if value >= self.threshold:
            self.warned = False  # healthy (again): warn at the next collapse
        elif not self.warned:
            self.warned = True
            print('warning: epoch {}: the generator has collapsed (the '
                  'samples of its last batch are all alike: {} {:.4f} < '
                  '{}); some runs recover within a few epochs, others stay '
                  'collapsed'
                  .format(trainer.updater.epoch, self.key, value,
                          self.threshold), file=sys.stderr, flush=True)


def first_epoch_below(log, key, threshold, start_epoch=1):
    """The first epoch (from ``start_epoch`` on) of a LogReport log whose
    ``key`` is below ``threshold``, or None."""
    for entry in log:
        if entry['epoch'] >= start_epoch and entry.get(key) is not None \
                and entry[key] < threshold:
            return entry['epoch']
    return None


class ParameterAverage(extension.Extension):
    """Exponential moving average of ``link``'s parameters, bias-corrected.

    With shadow ``s_t = (1 - r_t) s_{t-1} + r_t p_t`` and ``s_0 = 0``, the
    average is ``s_t / m_t``, where ``m_t = 1 - prod_k (1 - r_k)`` is the
    total weight the shadow holds (``1 - (1 - r)^t`` at a constant rate):
    a proper weighted mean of the parameters seen so far, so it is usable
    from the first iteration (an uncorrected average starting at 0 lags for
    about 1/rate steps), and still one when a resumed run changes the rate.
    Persistent values (batch-norm statistics, fixed weight-norm scales) are
    copied from the live link.

    ``averaged`` returns a copy of the link holding the averaged parameters.
    Called every iteration (its default trigger).
    """
    trigger = 1, 'iteration'
    priority = extension.PRIORITY_WRITER

    def __init__(self, link, rate=1e-4):
        self.link = link
        self.rate = float(rate)
        self.t = 0
        self.mass = 0.0
        self._shadow = None
        self._copy = None

    def _params(self):
        return sorted(self.link.namedparams(), key=lambda kv: kv[0])

    def _init_shadow(self):
        self._shadow = {name: p.xp.zeros_like(p.array)
                        for name, p in self._params()}

    def update(self):
        if self._shadow is None:
            self._init_shadow()
        keep = 1.0 - self.rate
        for name, p in self._params():
            s = self._shadow[name]
            s *= keep
            s += self.rate * p.array
        self.t += 1
        self.mass = 1.0 - (1.0 - self.mass) * keep

    def __call__(self, trainer=None):
        self.update()

    def averaged(self):
        """A link with the bias-corrected averaged parameters."""
        if self._copy is None:
            self._copy = copy.deepcopy(self.link)
        dst = self._copy
        dst.copyparams(self.link, copy_persistent=True)
        if self.t == 0:
            return dst
        corr = 1.0 / self.mass
        params = dict(dst.namedparams())
        for name, s in self._shadow.items():
            params[name].array[...] = s * corr
        return dst

    def serialize(self, serializer):
        self.t = int(serializer('t', self.t))
        self.mass = float(serializer('mass', self.mass))
        if self._shadow is None:
            self._init_shadow()
        for name in sorted(self._shadow):
            key = 'shadow' + name.replace('/', '_')
            arr = serializer(key, self._shadow[name])
            if arr is not None and arr is not self._shadow[name]:
                self._shadow[name][...] = arr


class RandomState(extension.Extension):
    """Saves and restores :mod:`gan.random`'s generators in snapshots (the
    two CPU generators and the GPU stream's position), so a resumed run
    draws the same numbers on the CPU and on a GPU.  It does nothing
    while training (trigger every 10**9 iterations)."""
    trigger = 10 ** 9, 'iteration'

    def __call__(self, trainer):
        pass

    def serialize(self, serializer):
        state = json.dumps(grandom.get_state())
        assert len(state) <= 512, 'generator state does not fit its slot'
        loaded = serializer('state', numpy.frombuffer(
            state.encode().ljust(512), dtype=numpy.uint8).copy())
        if isinstance(serializer, chainer.serializer.Deserializer):
            text = bytes(numpy.asarray(loaded, dtype=numpy.uint8)).decode()
            grandom.set_state(json.loads(text.strip()))


class ClassificationError(extension.Extension):
    """Test error of one or more classifiers, in test mode (noise off).

    Reports ``<prefix>/error_<name>`` (fraction), ``<prefix>/errors_<name>``
    (count) and ``<prefix>/accuracy_<name>`` for each entry of ``models``, a dict
    name -> link or name -> callable returning a link (for the parameter
    average, whose copy is refreshed at evaluation time).
    """
    trigger = 1, 'epoch'
    priority = extension.PRIORITY_WRITER

    def __init__(self, x, y, models, batchsize=1000, prefix='test'):
        self.x, self.y, self.models = x, y, models
        self.batchsize, self.prefix = batchsize, prefix
        self.last = {}
        self.predictions = {}  # name -> predicted classes, last evaluate()

    @staticmethod
    def predict(model, x, batchsize=1000):
        """Predicted classes (argmax of the logits), in test mode."""
        xp = chainer.backend.get_array_module(x)
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            return xp.concatenate([
                model(x[i:i + batchsize]).array.argmax(axis=1)
                for i in range(0, len(x), batchsize)])

    def confusion(self, name, n_classes):
        """Confusion matrix of model ``name`` at the last :meth:`evaluate`:
        rows are the true classes, columns the predicted ones (a list of
        lists of counts)."""
        cpu = chainer.backend.CpuDevice()
        pred, y = cpu.send(self.predictions[name]), cpu.send(self.y)
        counts = numpy.zeros((n_classes, n_classes), dtype=numpy.int64)
        numpy.add.at(counts, (y, pred), 1)
        return counts.tolist()

    def evaluate(self):
        out = {}
        done = {}  # id(link) -> predictions: a link listed twice runs once
        for name, model in self.models.items():
            link = model() if not isinstance(model, chainer.Link) else model
            if id(link) not in done:
                done[id(link)] = self.predict(link, self.x, self.batchsize)
            pred = done[id(link)]
            self.predictions[name] = pred
            wrong = int((pred != self.y).sum())
            out['{}/errors_{}'.format(self.prefix, name)] = wrong
            out['{}/error_{}'.format(self.prefix, name)] = wrong / len(self.y)
            out['{}/accuracy_{}'.format(self.prefix, name)] = \
                1.0 - wrong / len(self.y)
        self.last = out
        return out

    def __call__(self, trainer):
        chainer.report(self.evaluate())


def parse_epoch_steps(text):
    """'10:3e-4,50:1e-4' -> [(10, 3e-4), (50, 1e-4)] (epochs counted from
    1, increasing); '' -> [].  Raises ValueError with a one-line reason."""
    steps = []
    for item in filter(None, (s.strip() for s in str(text).split(','))):
        epoch, sep, value = item.partition(':')
        try:
            if not sep:
                raise ValueError
            epoch, value = int(epoch), float(value)
        except ValueError:
            raise ValueError('{!r} is not EPOCH:VALUE (e.g. 10:3e-4)'.format(
                item)) from None
        if epoch < 2 or value <= 0:
            raise ValueError('{!r}: the epoch must be 2 or more (epoch 1 runs '
                             'at the initial value) and the value '
                             'positive'.format(item))
        if steps and epoch <= steps[-1][0]:
            raise ValueError('{!r}: epochs must increase'.format(item))
        steps.append((epoch, value))
    return steps


class EpochSteps(extension.Extension):
    """A piecewise-constant schedule of an optimizer hyperparameter:
    ``init`` in epoch 1, and from epoch E on (epochs counted from 1) the
    value of the last step ``(E, value)`` with E at or below it.  The blog's
    learning rate is ``EpochSteps('alpha', 1e-3, [(10, 3e-4), (50, 1e-4)],
    opt)``.

    It sets the value for the coming iteration after every update and at
    (re)start, from the updater's epoch alone: it holds no state, so a
    resumed run continues on the schedule.
    """
    trigger = 1, 'iteration'
    priority = extension.PRIORITY_EDITOR

    def __init__(self, attr, init, steps, optimizer):
        self.attr, self.init = attr, float(init)
        self.steps = sorted((int(e), float(v)) for e, v in steps)
        self.optimizer = optimizer

    def value_at(self, epoch):
        """The value in (1-based) ``epoch``."""
        value = self.init
        for e, v in self.steps:
            if epoch >= e:
                value = v
        return value

    def _apply(self, trainer):
        epoch = int(trainer.updater.epoch_detail) + 1
        setattr(self.optimizer, self.attr, self.value_at(epoch))

    def initialize(self, trainer):
        self._apply(trainer)

    def __call__(self, trainer):
        self._apply(trainer)
