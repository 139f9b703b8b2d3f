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
* minibatch discrimination: each rank all-gathers the projected features
  (``chainermn.functions.allgather``, whose gradient is summed back over
  the ranks) and compares its samples with all B (in training mode; in
  test mode a rank compares within the batch it is given), in every form;
  the fused layer uses :class:`CrossL1Closeness`.  The authors' form's
  data-dependent init takes its statistics (nearest-neighbour distances,
  mean closeness) over the global batch, so every rank sets the same
  log-scale and bias;
* random numbers: every rank keeps the same random stream and draws the
  numbers of the whole batch (latents, Gaussian noise, VAT's random
  directions) with the same draw function as one process, taking its own
  rows (:func:`draw_local`, :class:`GlobalNoise`, :func:`global_normal`);
* data: rank 0 loads (:func:`root_only`); every rank holds the data and
  :class:`ShardIterator` gives it its slice of the batch that one process
  would draw with the same seed;
* the weight-norm data-dependent init runs on every rank over the whole
  init batch (the same numbers everywhere; the optimizers also broadcast
  rank 0's parameters once before the first step).

Only rank 0 writes the run folder; snapshots record the number of ranks
(:class:`RankCount`) and a resume under another number is refused.
Resuming needs the run folder visible to every rank (a shared file
system).  Communicators: ``naive`` on CPUs (MPI on numpy arrays), NCCL
ones (default ``pure_nccl``) on GPUs, one GPU per rank (the rank's index
on its node).
"""
import contextlib
import os
import sys
import warnings

import numpy

import chainer
import chainer.functions as F
import chainer.links as L

from gan import random as grandom
from gan import runs

CPU_COMMUNICATORS = ('naive',)
GPU_COMMUNICATORS = ('pure_nccl', 'flat', 'hierarchical', 'two_dimensional',
                     'single_node', 'non_cuda_aware', 'naive')
COMMUNICATORS = tuple(sorted(set(CPU_COMMUNICATORS + GPU_COMMUNICATORS)))
INSTALL_HINT = 'install mpi4py and an MPI (make install-mn)'


# --------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------
def add_arguments(parser):
    """``--multi-node`` and ``--communicator`` (shared by the trainers)."""
    g = parser.add_argument_group('multi-node (run under mpiexec -n N)')
    g.add_argument('--multi-node', action='store_true',
                   help='data-parallel over the MPI ranks with ChainerMN; '
                        '--batchsize is the global batch, each rank takes '
                        'batchsize/N (%s)' % INSTALL_HINT)
    g.add_argument('--communicator', default=None, choices=COMMUNICATORS,
                   help='ChainerMN communicator (default naive on the CPU, '
                        'pure_nccl on GPUs)')
    return parser


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


def error(parser, message):
    """``parser.error(message)`` on rank 0; the other ranks exit with the
    same status (2) without repeating the line."""
    if process_rank() != 0:
        sys.exit(2)
    parser.error(message)


def create(communicator=None, device='-1'):
    """The communicator for this rank, with this rank's Chainer device as
    ``gan_device``.  ``device`` is ``--device``: on a GPU each rank takes
    the GPU of its index on its node."""
    reason = missing()
    if reason is not None:
        raise runs.UsageError('--multi-node needs mpi4py and ChainerMN ({}): '
                              '{}'.format(reason, INSTALL_HINT))
    dev = runs.parse_device(device)
    gpu = dev.xp is not numpy
    name = communicator or ('pure_nccl' if gpu else 'naive')
    if not gpu and name not in CPU_COMMUNICATORS:
        raise runs.UsageError('--communicator {} needs GPUs; on the CPU use '
                              '--communicator naive'.format(name))
    import chainermn
    try:
        comm = chainermn.create_communicator(name)
    except Exception as e:
        raise runs.UsageError('--communicator {}: {} (try --communicator '
                              'naive)'.format(name, str(e).splitlines()[0]
                                              if str(e) else
                                              type(e).__name__)) from None
    comm.gan_name = name
    chainer.disable_experimental_feature_warning = True  # ChainerMN's links
    # an uncaught exception on one rank ends all of them (no rank waits
    # forever in a collective)
    import chainermn.global_except_hook
    with warnings.catch_warnings():  # a second call: already there
        warnings.simplefilter('ignore')
        chainermn.global_except_hook.add_hook()
    _shared(comm)
    if gpu:
        dev = runs.parse_device('@cupy:{}'.format(comm.intra_rank))
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


def is_root(comm):
    return comm is None or comm.rank == 0


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


def root_only(comm, fn):
    """``fn()`` on rank 0, its value (or the exception it raised) passed to
    every rank (in pieces, so data sets over 2 GiB pass too)."""
    if comm is None:
        return fn()
    value = error_ = None
    if comm.rank == 0:
        try:
            value = fn()
        except Exception as e:
            error_ = e
    try:
        value, error_ = comm.bcast_obj(
            (value, error_) if comm.rank == 0 else None)
    except Exception as e:  # an exception that does not pickle
        raise runs.UsageError(str(error_ or e)) from None
    if error_ is not None:
        raise error_
    return value


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

    def __call__(self, shape, xp, dtype):
        n, rest = shape[0], tuple(shape[1:])
        parts = self.segments or (n,)
        if sum(parts) != n:
            raise ValueError('noise segments {} do not add up to the batch '
                             '{}'.format(parts, n))
        k = self.comm.size
        full = self.normal(xp, (n * k,) + rest, dtype)
        out, start = [], 0
        for m in parts:
            out.append(full[start:start + m * k][rank_slice(self.comm, m)])
            start += m * k
        return xp.concatenate(out) if len(out) > 1 else out[0].copy()


def global_normal(comm, normal=None):
    """A draw function ``(xp, shape, dtype) -> array`` (like
    :func:`gan.random.normal`, the default ``normal``) that draws the
    numbers of the whole batch with ``normal`` and returns this rank's
    rows: VAT's random start directions."""
    normal = normal or grandom.normal
    if comm is None:
        return normal

    def draw(xp, shape, dtype):
        n = shape[0]
        full = normal(xp, (n * comm.size,) + tuple(shape[1:]), dtype)
        return full[rank_slice(comm, n)].copy()
    return draw


def _noise_layers(link):
    from gan.links import GaussianNoise
    return [l for l in link.links() if isinstance(l, GaussianNoise)]


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


class CrossL1Closeness(chainer.function_node.FunctionNode):
    """``o[i, b] = sum_{j != offset + i} exp(-sum_c |M[i, b, c] - A[j, b,
    c]|)`` for this rank's rows M (n, B, C) against the global batch A (N,
    B, C), whose rows ``offset .. offset + n`` are M itself.  Like
    :class:`gan.links.PairwiseL1Closeness` it never holds the (n, N, B,
    C) difference tensor; first-order gradients::

        E[i, j, b]  = exp(-d[i, j, b])  (0 where j = offset + i)
        S[i, j, b, c] = go[i, b] E[i, j, b] sign(M[i, b, c] - A[j, b, c])
        gM[i, b, c] = -sum_j S[i, j, b, c]
        gA[j, b, c] = +sum_i S[i, j, b, c]

    gA goes back to its ranks through the all-gather, whose backward
    sums the ranks' parts: the row of M at global index g then gets the
    single-process gradient ``-sum_j (go[g] + go[j]) E[g, j] sign(...)``.
    """

    def __init__(self, offset):
        self.offset = offset

    def forward(self, inputs):
        M, A = inputs
        xp = chainer.backend.get_array_module(M)
        n, N = M.shape[0], A.shape[0]
        mc = xp.ascontiguousarray(M.transpose(2, 0, 1))  # (C, n, B)
        ac = xp.ascontiguousarray(A.transpose(2, 0, 1))  # (C, N, B)
        d = xp.zeros((n, N, M.shape[1]), dtype=M.dtype)
        buf = xp.empty_like(d)
        for m, a in zip(mc, ac):
            xp.subtract(m[:, None, :], a[None, :, :], out=buf)
            xp.abs(buf, out=buf)
            d += buf
        E = xp.exp(-d, out=d)
        idx = xp.arange(n)
        E[idx, idx + self.offset, :] = 0
        self.E = E
        self.retain_inputs((0, 1))
        return E.sum(axis=1),

    def backward(self, indexes, grad_outputs):
        M, A = (v.array for v in self.get_retained_inputs())
        xp = chainer.backend.get_array_module(M)
        G = grad_outputs[0].array[:, None, :] * self.E  # (n, N, B)
        mc = xp.ascontiguousarray(M.transpose(2, 0, 1))
        ac = xp.ascontiguousarray(A.transpose(2, 0, 1))
        gM, gA = xp.empty_like(mc), xp.empty_like(ac)
        buf = xp.empty_like(G)
        for c in range(len(mc)):
            xp.subtract(mc[c][:, None, :], ac[c][None, :, :], out=buf)
            xp.sign(buf, out=buf)
            buf *= G
            gM[c] = -buf.sum(axis=1)
            gA[c] = buf.sum(axis=0)
        return (chainer.Variable(gM.transpose(1, 2, 0)),
                chainer.Variable(gA.transpose(1, 2, 0)))


def cross_l1_closeness(M, A, offset):
    """:class:`CrossL1Closeness` of M (n, B, C) against A (N, B, C)."""
    return CrossL1Closeness(offset).apply((M, A))[0]


def cross_l1_closeness_broadcast(M, A, offset):
    """The same numbers composed from stock functions over the (n, N, B,
    C) difference tensor."""
    n, B, C = M.shape
    N = A.shape[0]
    xp = chainer.backend.get_array_module(M)
    diff = F.broadcast_to(F.expand_dims(M, 1), (n, N, B, C)) - \
        F.broadcast_to(F.expand_dims(A, 0), (n, N, B, C))
    dist = F.sum(F.absolute(diff), axis=3)
    mask = xp.ones((n, N), dtype=M.dtype)
    mask[xp.arange(n), xp.arange(n) + offset] = 0
    c = F.exp(-dist) * F.broadcast_to(mask[:, :, None], dist.shape)
    return F.sum(c, axis=1)


def minibatch_closeness(comm, M, fused=False):
    """Minibatch discrimination's ``o(x_i)_b = sum_{j != i} exp(-||M_i,b -
    M_j,b||_1)`` for this rank's samples against all samples of the
    global batch (gathered with ``chainermn.functions.allgather``, whose
    backward returns each rank the gradients of its rows).  M: (n, B, C)
    -> (n, B); ``fused``: :class:`CrossL1Closeness`, else stock
    functions."""
    n = M.shape[0]
    xp = chainer.backend.get_array_module(M)
    dev = chainer.backend.get_device_from_array(M.array)
    import chainermn.functions
    local = F.copy(M, -1) if xp is not numpy else M
    everyone = F.concat(chainermn.functions.allgather(comm, local), axis=0)
    if xp is not numpy:
        everyone = F.copy(everyone, dev.device.id)
    closeness = cross_l1_closeness if fused else \
        cross_l1_closeness_broadcast
    return closeness(M, everyone, comm.rank * n)


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
    discrimination against all samples, Gaussian noise drawn for the whole
    batch.  Returns ``link``."""
    from gan.links import GaussianNoise, MinibatchDiscrimination
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
    if isinstance(link, MinibatchDiscrimination):
        link.comm = comm
    if isinstance(link, GaussianNoise):
        link.noise_source = GlobalNoise(comm, link.normal)
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
# Snapshots
# --------------------------------------------------------------------------
RANKS_KEY = 'extensions/multi_node/ranks'


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


def snapshot_ranks(path):
    """The number of ranks that wrote the snapshot ``path`` (1 for one
    process)."""
    try:
        with numpy.load(path) as npz:
            keys = [k for k in npz.files if k.endswith(RANKS_KEY)]
            return int(npz[keys[0]]) if keys else 1
    except Exception:
        return 1  # unreadable: the loader says why


def check_resume(path, comm):
    """UsageError when ``path`` was written by another number of ranks."""
    if not path:
        return
    written, here = snapshot_ranks(path), size(comm)
    if written != here:
        how = ('mpiexec -n {} ... --multi-node'.format(written)
               if written > 1 else 'one process (no --multi-node)')
        raise runs.UsageError('snapshot {} was written by {} rank{} and this '
                              'run has {}: resume it under {}'.format(
                                  path, written, 's' if written > 1 else '',
                                  here, how))
