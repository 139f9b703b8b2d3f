"""Data-parallel training over MPI ranks with ChainerMN, equal to one
process with the whole batch.

Launch any trainer under ``mpiexec -n N`` with ``--multi-node``.  The
``--batchsize`` stays the global batch B; each rank computes B/N examples
of it, and everything that couples the examples of a batch is taken over
the global batch, so the run follows the single-process run with batch B
up to float rounding:

* gradients: :func:`optimizer` wraps an optimizer with
  ``chainermn.create_multi_node_optimizer`` (mean of the ranks' gradients;
  each rank's loss is the mean over its B/N examples, so the mean of the
  ranks' means is the mean over B);
* batch normalization: :func:`make_global` replaces every
  ``L.BatchNormalization`` with :class:`GlobalBatchNormalization`
  (ChainerMN's ``MultiNodeBatchNormalization``: batch statistics over all
  ranks, and running statistics with the global batch's unbiased-variance
  factor B/(B-1), so they equal one process's on every rank);
* feature matching of batch means: :func:`feature_matching` all-reduces
  the means before the distance;
* minibatch discrimination: :func:`make_global` sets the layer's
  ``pairs_source`` to :class:`GlobalPairs`, which all-gathers the
  projected features (``chainermn.functions.allgather``, whose gradient
  is summed back over the ranks) and compares the rank's samples with all
  B (in training mode; in test mode a rank compares within the batch it
  is given), in every form, with the layer's own kernel
  (:class:`gan.links.PairwiseL1Closeness` given the gathered rows and the
  rank's offset in them, or its broadcast form).  The authors' form's
  data-dependent init takes its statistics (nearest-neighbour distances,
  mean closeness) over the global batch from the same object, so every
  rank sets the same log-scale and bias;
* random numbers: every rank keeps the same random stream and draws the
  numbers of the whole batch (latents, Gaussian noise, VAT's random
  directions) with the same draw function as one process, taking its own
  rows (:func:`draw_local`, :class:`GlobalNoise`, :func:`global_normal`);
* data: rank 0 loads (:func:`gan.runs.root_only`); every rank holds the data and
  :class:`ShardIterator` gives it its slice of the batch that one process
  would draw with the same seed;
* the weight-norm data-dependent init runs on every rank over the whole
  init batch (the same numbers everywhere; the optimizers also broadcast
  rank 0's parameters once before the first step).

Only rank 0 writes the run folder; snapshots record the number of ranks
(:class:`RankCount`) and a resume under another number is refused
(:func:`gan.runs.check_resume`).
Resuming needs the run folder visible to every rank (a shared file
system).  Communicators: ``naive`` on CPUs (MPI on numpy arrays), NCCL
ones (default ``pure_nccl``) on GPUs, one GPU per rank (the rank's index
on its node).
"""
import contextlib
import os
import warnings

import numpy

import chainer
import chainer.functions as F
import chainer.links as L

from gan import gpu
from gan import random as grandom
from gan import runs

CPU_COMMUNICATORS = ('naive',)
# on GPUs: NCCL between the GPUs, MPI (if at all) on host memory
GPU_COMMUNICATORS = ('pure_nccl', 'single_node', 'non_cuda_aware')
# these hand GPU buffers to MPI, which needs an MPI built with CUDA; the
# MPICH of make install-mn is not
CUDA_AWARE_MPI_COMMUNICATORS = ('naive', 'flat', 'hierarchical',
                                'two_dimensional')
COMMUNICATORS = tuple(sorted(set(CPU_COMMUNICATORS + GPU_COMMUNICATORS
                                 + CUDA_AWARE_MPI_COMMUNICATORS)))
INSTALL_HINT = 'install mpi4py and an MPI (make install-mn)'


# --------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------
def missing():
    """None when mpi4py and ChainerMN import, else the reason (one line)."""
    try:
        import mpi4py.MPI  # noqa: F401
        import chainermn  # noqa: F401
    except Exception as e:  # ImportError, or no MPI library to load
        return '{}: {}'.format(type(e).__name__, str(e).splitlines()[0]
                               if str(e) else '')
    return None


def process_rank():
    """This process's MPI rank from the launcher's environment (0 when not
    launched by mpiexec); readable before MPI is initialized."""
    for key in ('PMI_RANK', 'OMPI_COMM_WORLD_RANK', 'PMIX_RANK',
                'MV2_COMM_WORLD_RANK', 'SLURM_PROCID'):
        if os.environ.get(key, '').isdigit():
            return int(os.environ[key])
    return 0


def create(communicator=None, device='-1'):
    """The communicator for this rank, with this rank's Chainer device as
    ``gan_device``.  ``device`` is ``--device``: on a GPU each rank takes
    the GPU of its index on its node, and makes it current before any
    CuPy or NCCL call of the run (:func:`gan.gpu.select`)."""
    reason = missing()
    if reason is not None:
        raise runs.UsageError('--multi-node needs mpi4py and ChainerMN ({}): '
                              '{}'.format(reason, INSTALL_HINT))
    dev = runs.parse_device(device)
    on_gpu = gpu.is_gpu(dev)
    name = communicator or ('pure_nccl' if on_gpu else 'naive')
    if not on_gpu and name not in CPU_COMMUNICATORS:
        raise runs.UsageError('--communicator {} needs GPUs; on the CPU use '
                              '--communicator naive'.format(name))
    if on_gpu and name not in GPU_COMMUNICATORS:
        raise runs.UsageError(
            '--communicator {} hands GPU memory to MPI, and the MPI of make '
            'install-mn is not built with CUDA: use --communicator pure_nccl '
            '(NCCL, one GPU per rank)'.format(name))
    if on_gpu:
        problem = gpu.nccl_problem(dev)
        if problem:
            raise runs.UsageError(
                '--communicator {} needs NCCL ({}): install it with '
                '{}'.format(name, problem, gpu.INSTALL))
    import chainermn
    try:
        comm = chainermn.create_communicator(name)
    except Exception as e:
        raise runs.UsageError('--communicator {}: {}{}'.format(
            name, str(e).splitlines()[0] if str(e) else type(e).__name__,
            '' if on_gpu else ' (try --communicator naive)')) from None
    comm.gan_name = name
    chainer.disable_experimental_feature_warning = True  # ChainerMN's links
    # an uncaught exception on one rank ends all of them (no rank waits
    # forever in a collective)
    import chainermn.global_except_hook
    with warnings.catch_warnings():  # a second call: already there
        warnings.simplefilter('ignore')
        chainermn.global_except_hook.add_hook()
    _shared(comm)
    if on_gpu:  # the rank's GPU, current before the first NCCL call
        dev = gpu.select(runs.parse_device('@cupy:{}'.format(
            comm.intra_rank)))
    comm.gan_device = dev
    return comm


def from_options(multi_node, communicator=None, device='-1'):
    """The communicator of ``--multi-node`` (see :func:`create`; its
    ``gan_device`` is this rank's device), or None without the flag."""
    if not multi_node:
        if communicator is not None:
            raise runs.UsageError('--communicator needs --multi-node')
        return None
    return create(communicator, device)


def _shared(comm):
    """Copies of a model (the parameter average's) share the
    communicator."""
    comm.__deepcopy__ = lambda memo: comm
    return comm


def size(comm):
    return 1 if comm is None else comm.size


def describe(comm):
    """What result.json records about the ranks."""
    if comm is None:
        return {'ranks': 1, 'communicator': None}
    return {'ranks': comm.size, 'communicator': getattr(comm, 'gan_name',
                                                        type(comm).__name__),
            'nodes': comm.inter_size}


def local_batchsize(batchsize, comm, flag='--batchsize'):
    """B/N; UsageError when B is not a multiple of N."""
    n = size(comm)
    if batchsize % n:
        raise runs.UsageError('{} {} is not divisible by the {} ranks: give '
                              'a multiple of {}'.format(flag, batchsize, n, n))
    return batchsize // n


# --------------------------------------------------------------------------
# Batches and random numbers
# --------------------------------------------------------------------------
def rank_slice(comm, n):
    """The rows of this rank in a global batch of ``n * size`` rows."""
    r = 0 if comm is None else comm.rank
    return slice(r * n, (r + 1) * n)


def draw_local(comm, draw, n):
    """This rank's ``n`` rows of ``draw(n * size)``: the numbers one process
    draws for the whole batch, so the random stream stays the same."""
    if comm is None:
        return draw(n)
    return draw(n * comm.size)[rank_slice(comm, n)]


class ShardIterator(chainer.dataset.Iterator):
    """This rank's part of each batch of ``iterator``, which yields the
    global batch (every rank runs the same iterator with the same seed, so
    the ranks' parts make up the batch one process would see).  Epochs,
    state and snapshots are the wrapped iterator's."""

    def __init__(self, iterator, comm):
        self.iterator, self.comm = iterator, comm

    def __iter__(self):
        return self

    def __next__(self):
        batch = self.iterator.next()
        n = local_batchsize(len(batch[0]) if isinstance(batch, tuple)
                            else len(batch), self.comm, 'the batch size')
        s = rank_slice(self.comm, n)
        if isinstance(batch, tuple):
            return tuple(a[s] for a in batch)
        return batch[s]

    next = __next__

    def serialize(self, serializer):
        self.iterator.serialize(serializer)

    def finalize(self):
        self.iterator.finalize()

    def __getattr__(self, name):
        return getattr(self.iterator, name)


class GlobalNoise:
    """Noise source of :class:`gan.links.GaussianNoise` for one rank: draws
    the numbers of the whole batch and returns this rank's rows.  A pass
    over concatenated batches (the fused SSL discriminator) sets
    ``segments`` (:func:`noise_segments`) to the local sizes of the parts:
    each part's rows are then taken from its own block of the global
    draw, which one process lays out part by part."""

    def __init__(self, comm, normal=None):
        self.comm, self.segments = comm, None
        self.normal = normal or grandom.normal  # the layer's own draw

    def __call__(self, shape, where, dtype):
        n, rest = shape[0], tuple(shape[1:])
        parts = self.segments or (n,)
        if sum(parts) != n:
            raise ValueError('noise segments {} do not add up to the batch '
                             '{}'.format(parts, n))
        k = self.comm.size
        full = self.normal(where, (n * k,) + rest, dtype)
        out, start = [], 0
        for m in parts:
            out.append(full[start:start + m * k][rank_slice(self.comm, m)])
            start += m * k
        if len(out) == 1:
            return out[0].copy()
        return grandom.array_module(full).concatenate(out)


def global_normal(comm, normal=None):
    """A draw function ``(where, shape, dtype) -> array`` (like
    :func:`gan.random.normal`, the default ``normal``) that draws the
    numbers of the whole batch with ``normal`` and returns this rank's
    rows: VAT's random start directions."""
    normal = normal or grandom.normal
    if comm is None:
        return normal

    def draw(where, shape, dtype):
        n = shape[0]
        full = normal(where, (n * comm.size,) + tuple(shape[1:]), dtype)
        return full[rank_slice(comm, n)].copy()
    return draw


def _noise_layers(link):
    """The links under ``link`` that draw noise through a ``noise_source``
    (:class:`gan.links.GaussianNoise`)."""
    return [l for l in link.links() if hasattr(l, 'noise_source')]


@contextlib.contextmanager
def noise_segments(link, sizes):
    """Within this block the global noise of ``link`` treats its batch as
    the concatenation of parts of local sizes ``sizes``."""
    sources = [l.noise_source for l in _noise_layers(link)
               if isinstance(l.noise_source, GlobalNoise)]
    for s in sources:
        s.segments = tuple(sizes)
    try:
        yield
    finally:
        for s in sources:
            s.segments = None


# --------------------------------------------------------------------------
# Collectives that are part of the model
# --------------------------------------------------------------------------
def _host(comm, a):
    """(host array, device): MPI reads host memory (CUDA-aware MPI is not
    assumed)."""
    dev = chainer.backend.get_device_from_array(a)
    return chainer.backend.CpuDevice().send(a), dev


def mean_array(comm, a):
    """The mean of ``a`` over the ranks (an array on ``a``'s device)."""
    if comm is None or comm.size == 1:
        return a
    h, dev = _host(comm, a)
    s = comm.allreduce(numpy.ascontiguousarray(h))
    return dev.send((s * s.dtype.type(1.0 / comm.size)).astype(h.dtype))


class AllreduceMean(chainer.function_node.FunctionNode):
    """y = mean over the ranks of x (every rank gets y); the gradient of
    x is the mean of the ranks' gradients of y."""

    def __init__(self, comm):
        self.comm = comm

    def forward(self, inputs):
        return mean_array(self.comm, inputs[0]),

    def backward(self, indexes, grad_outputs):
        return AllreduceMean(self.comm).apply(grad_outputs)


def allreduce_mean(comm, x):
    """Differentiable mean over the ranks (see :class:`AllreduceMean`)."""
    if comm is None or comm.size == 1:
        return x
    return AllreduceMean(comm).apply((x,))[0]


def feature_matching(comm, features_real, features_fake):
    """:func:`gan.losses.feature_matching` with the batch means taken over
    the global batch: ``|| E f(x) - E f(G(z)) ||^2 / A``."""
    real = features_real.array if isinstance(
        features_real, chainer.Variable) else features_real
    real = real.reshape(real.shape[0], -1)
    fake = F.reshape(features_fake, (features_fake.shape[0], -1))
    target = mean_array(comm, real.mean(axis=0))
    diff = allreduce_mean(comm, F.mean(fake, axis=0)) - target
    return F.sum(diff * diff) / diff.size


def sum_array(comm, a):
    """The sum of ``a`` over the ranks (an array on ``a``'s device)."""
    if comm is None or comm.size == 1:
        return a
    h, dev = _host(comm, a)
    return dev.send(comm.allreduce(numpy.ascontiguousarray(h)).astype(
        h.dtype))


def gather_rows(comm, a):
    """The arrays ``a`` (n, ...) of all ranks stacked in rank order (N,
    ...): the global batch, without a graph."""
    if comm is None or comm.size == 1:
        return a
    h, dev = _host(comm, a)
    return dev.send(numpy.concatenate(comm.allgather(
        numpy.ascontiguousarray(h)), axis=0))


class GlobalPairs:
    """The ``pairs_source`` of :class:`gan.links.MinibatchDiscrimination`
    for one rank (set by :func:`make_global`): in training mode each of
    the rank's samples is compared with the samples of every rank, and
    the data-dependent init's statistics are those of the global batch;
    in test mode a rank compares within the batch it is given (the
    layer's default, ``gan.links.BatchPairs``).  The ranks hold equal
    parts of the batch, in rank order."""

    def __init__(self, comm):
        self.comm = comm

    def closeness(self, M, kernel):
        """o (n, B) of this rank's M (n, B, C) against the rows of all
        ranks, gathered with ``chainermn.functions.allgather`` (whose
        backward returns each rank the gradients of its rows), with
        ``kernel(M, A, offset)`` (the layer's: this rank's rows are at
        ``offset`` in A and their self pairs are left out)."""
        if not chainer.config.train:
            return kernel(M)
        n = M.shape[0]
        xp = chainer.backend.get_array_module(M)
        dev = chainer.backend.get_device_from_array(M.array)
        import chainermn.functions
        local = F.copy(M, -1) if xp is not numpy else M
        everyone = F.concat(chainermn.functions.allgather(self.comm, local),
                            axis=0)
        if xp is not numpy:
            everyone = F.copy(everyone, dev)
        return kernel(M, everyone, self.comm.rank * n)

    def rows(self, M):
        """The array M (n, B, C) of every rank, stacked: (N, B, C)."""
        if not chainer.config.train:
            return M
        return gather_rows(self.comm, M)

    def mean(self, o):
        """The mean of the array o (n, B) over the global batch."""
        if not chainer.config.train:
            return o.mean(axis=0)
        return sum_array(self.comm, o.sum(axis=0)) / (
            o.shape[0] * self.comm.size)


# --------------------------------------------------------------------------
# Models and optimizers
# --------------------------------------------------------------------------
def _multi_node_bn_class():
    import chainermn.links

    class GlobalBatchNormalization(chainermn.links.MultiNodeBatchNormalization):
        """ChainerMN's batch normalization over the ranks, with running
        variance updated by the global batch's factor B/(B-1) (ChainerMN's
        uses the local batch's n/(n-1))."""

        def __call__(self, x, finetune=False):
            if not chainer.config.train or finetune:
                return super().__call__(x, finetune)
            old = self.avg_var.copy()
            y = super().__call__(x, finetune)
            m = x.size // self.avg_mean.size
            big = m * self.comm.size
            local, full = m / max(m - 1., 1.), big / max(big - 1., 1.)
            if local != full:  # avg_var = decay old + (1 - decay) adj var
                base = old * self.decay
                self.avg_var[...] = base + (self.avg_var - base) * (
                    full / local)
            return y

    return GlobalBatchNormalization


def _global_bn(bn, comm):
    cls = _multi_node_bn_class()
    new = cls(bn.avg_mean.shape, comm, decay=bn.decay, eps=bn.eps,
              dtype=bn.avg_mean.dtype,
              use_gamma=getattr(bn, 'gamma', None) is not None,
              use_beta=getattr(bn, 'beta', None) is not None)
    new.copyparams(bn)
    new.avg_mean[...] = bn.avg_mean
    new.avg_var[...] = bn.avg_var
    new.name = bn.name
    return new


def make_global(link, comm):
    """Make ``link`` (in place, on the CPU, before ``to_device``) compute
    over the global batch: batch norm over all ranks, minibatch
    discrimination against all samples (every link with a
    ``pairs_source`` gets a :class:`GlobalPairs`), Gaussian noise drawn
    for the whole batch (every link with a ``noise_source`` gets a
    :class:`GlobalNoise` of its ``normal``).  Returns ``link``."""
    if comm is None:
        return link
    _shared(comm)
    if isinstance(link, chainer.ChainList):
        for i, child in enumerate(list(link._children)):
            if isinstance(child, L.BatchNormalization):
                link._children[i] = _global_bn(child, comm)
            else:
                make_global(child, comm)
    elif isinstance(link, chainer.Chain):
        for name in link._children:
            child = getattr(link, name)
            if isinstance(child, L.BatchNormalization):
                link.__dict__[name] = _global_bn(child, comm)
            else:
                make_global(child, comm)
    if hasattr(link, 'pairs_source'):
        link.pairs_source = GlobalPairs(comm)
    if hasattr(link, 'noise_source'):
        link.noise_source = GlobalNoise(comm,
                                        getattr(link, 'normal', None))
    return link


def optimizer(opt, comm):
    """``opt`` (already set up) with the ranks' mean gradient: ChainerMN's
    multi-node optimizer.  Rank 0's parameters are broadcast now, so the
    first update is a real step (ChainerMN's own first call only
    broadcasts)."""
    if comm is None:
        return opt
    import chainermn
    mn = chainermn.create_multi_node_optimizer(opt, comm)
    comm.bcast_data(opt.target)
    mn.is_changed(opt.target)  # records the parameters: no broadcast step
    return mn


def global_report(comm, report):
    """The values of a report dict averaged over the ranks (one small
    all-reduce): rank 0's log then shows the global batch's means."""
    if comm is None or comm.size == 1:
        return report
    keys = sorted(report)
    vals = [report[k] for k in keys]
    arr = numpy.array([float(chainer.backend.CpuDevice().send(
        v.array if isinstance(v, chainer.Variable) else v)) for v in vals],
        dtype=numpy.float64)
    arr = comm.allreduce(arr) / comm.size
    return dict(zip(keys, arr.tolist()))


# --------------------------------------------------------------------------
# Snapshots (gan.runs.check_resume refuses a resume under another number of
# ranks)
# --------------------------------------------------------------------------
class RankCount(chainer.training.Extension):
    """Writes the number of ranks into trainer snapshots (extension name
    ``multi_node``); does nothing while training."""
    trigger = 10 ** 9, 'iteration'

    def __init__(self, comm):
        self.ranks = size(comm)

    def __call__(self, trainer):
        pass

    def serialize(self, serializer):
        serializer('ranks', self.ranks)


def add_rank_count(trainer, comm):
    if comm is not None:
        trainer.extend(RankCount(comm), name='multi_node')
