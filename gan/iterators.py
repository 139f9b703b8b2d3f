"""A fast iterator over in-memory arrays.

:class:`chainer.iterators.SerialIterator` gathers a batch example by example
and then stacks it; for MNIST-sized batches that costs more than a small
matrix product.  :class:`ArrayIterator` gathers a batch with one fancy-index
per array (on the arrays' device, so a dataset put on the GPU once is never
copied again), and otherwise behaves like ``SerialIterator(repeat=True,
shuffle=True)``: every epoch is a fresh permutation and a batch that crosses
an epoch boundary takes its tail from the next permutation.

Its state (position, epoch, the current order and its own random generator)
is serialized, so a resumed run sees the same batches.
"""
import json

import numpy

from chainer.dataset import iterator


class ArrayIterator(iterator.Iterator):
    """Batches of ``tuple(a[idx] for a in arrays)``.

    Args:
        arrays: arrays with the same first dimension (numpy or cupy).
        batch_size (int): examples per batch (may exceed the array length:
            the batch then spans several permutations).
        seed (int): seed of this iterator's own permutation generator.
        shuffle (bool): permute every epoch (else sequential order).
        repeat (bool): endless (True) or one pass (False).
    """

    def __init__(self, arrays, batch_size, seed=0, shuffle=True,
                 repeat=True):
        self.arrays = tuple(arrays)
        n = len(self.arrays[0])
        if n == 0:
            raise ValueError('ArrayIterator needs a non-empty dataset')
        if any(len(a) != n for a in self.arrays):
            raise ValueError('arrays must have the same length')
        self.n, self.batch_size = n, int(batch_size)
        self.shuffle, self.repeat = shuffle, repeat
        self._rng = numpy.random.default_rng(seed)
        self.reset()

    def reset(self):
        self.current_position = 0
        self.epoch = 0
        self.is_new_epoch = False
        self._previous_epoch_detail = -1.
        self._order = self._new_order()

    def _new_order(self):
        if self.shuffle:
            return self._rng.permutation(self.n)
        return numpy.arange(self.n)

    def __next__(self):
        if not self.repeat and self.epoch > 0:
            raise StopIteration
        self._previous_epoch_detail = self.epoch_detail
        parts = []
        need = self.batch_size
        self.is_new_epoch = False
        while need > 0:
            take = self._order[self.current_position:
                               self.current_position + need]
            parts.append(take)
            need -= len(take)
            self.current_position += len(take)
            if self.current_position >= self.n:
                self.current_position = 0
                self.epoch += 1
                self.is_new_epoch = True
                self._order = self._new_order()
                if not self.repeat:
                    break
        idx = parts[0] if len(parts) == 1 else numpy.concatenate(parts)
        return tuple(a[idx] for a in self.arrays)

    next = __next__

    @property
    def epoch_detail(self):
        return self.epoch + self.current_position / self.n

    @property
    def previous_epoch_detail(self):
        if self._previous_epoch_detail < 0:
            return None
        return self._previous_epoch_detail

    def serialize(self, serializer):
        self.current_position = int(serializer('current_position',
                                               self.current_position))
        self.epoch = int(serializer('epoch', self.epoch))
        self.is_new_epoch = bool(serializer('is_new_epoch',
                                            self.is_new_epoch))
        self._previous_epoch_detail = float(serializer(
            'previous_epoch_detail', self._previous_epoch_detail))
        self._order[...] = serializer('order', self._order)
        state = json.dumps(self._rng.bit_generator.state)
        buf = numpy.frombuffer(state.encode().ljust(512), dtype=numpy.uint8)
        loaded = serializer('rng', buf.copy())
        text = bytes(numpy.asarray(loaded, dtype=numpy.uint8)).decode()
        bg = numpy.random.PCG64()
        bg.state = json.loads(text.strip())
        self._rng = numpy.random.Generator(bg)


class FixedLengthEpochs(iterator.Iterator):
    """``base``'s batches, with an epoch of ``iters_per_epoch`` batches
    instead of one pass over the data (the blog counts 500 updates as an
    epoch whatever the data size).  The base iterator keeps its own
    passes; only the epoch count that the trainer sees changes.
    ``arrays`` is the base iterator's."""

    def __init__(self, base, iters_per_epoch):
        if iters_per_epoch <= 0:
            raise ValueError('iters_per_epoch must be positive, got '
                             '{}'.format(iters_per_epoch))
        self.base = base
        self.iters_per_epoch = int(iters_per_epoch)
        self.iteration = 0

    @property
    def arrays(self):
        return self.base.arrays

    @property
    def batch_size(self):
        return self.base.batch_size

    def __next__(self):
        batch = next(self.base)
        self.iteration += 1
        return batch

    next = __next__

    @property
    def epoch(self):
        return self.iteration // self.iters_per_epoch

    @property
    def epoch_detail(self):
        return self.iteration / self.iters_per_epoch

    @property
    def previous_epoch_detail(self):
        if self.iteration == 0:
            return None
        return (self.iteration - 1) / self.iters_per_epoch

    @property
    def is_new_epoch(self):
        return self.iteration > 0 and \
            self.iteration % self.iters_per_epoch == 0

    def reset(self):
        self.base.reset()
        self.iteration = 0

    def serialize(self, serializer):
        self.iteration = int(serializer('iteration', self.iteration))
        self.base.serialize(serializer['base'])
