import numpy
import pytest

import chainer
from chainer import gradient_check

from gan import links
from gan.fast import mlp as fast_mlp

RTOL = dict(atol=1e-3, rtol=1e-3)


def naive_minibatch_discrimination(x, W, B, C, bias=None):
    """Double loop over the batch, straight from the paper's equations;
    W (A, B * C) is the effective tensor."""
    n, A = x.shape
    M = (x @ W).reshape(n, B, C)
    o = numpy.zeros((n, B), dtype=numpy.float64)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            for b in range(B):
                o[i, b] += numpy.exp(-numpy.abs(M[i, b] - M[j, b]).sum())
    if bias is not None:
        o += bias
    return numpy.concatenate([x, o], axis=1)


def naive_authors_weight(T, log_scale, B, C):
    """exp(s[b, c]) T[:, b, c] / ||T[:, b, c]||, one column at a time."""
    W = numpy.empty_like(T)
    for b in range(B):
        for c in range(C):
            k = b * C + c
            col = T[:, k]
            W[:, k] = numpy.exp(log_scale[b, c]) * col / numpy.sqrt(
                (col ** 2).sum())
    return W


def effective(link):
    """(W, bias) of a link as float64 numpy, computed naively."""
    T = numpy.asarray(chainer.as_array(link.T), dtype=numpy.float64)
    if link.form != 'authors':
        return T, None
    s = numpy.asarray(chainer.as_array(link.log_scale), dtype=numpy.float64)
    return (naive_authors_weight(T, s, link.num_kernels, link.kernel_dim),
            link.b.array.astype(numpy.float64))


def make_mbd(form, A=7, B=4, C=3, learn_T=True, fast=False, seed=0):
    link = links.MinibatchDiscrimination(A, B, C, form=form, learn_T=learn_T,
                                         fast=fast)
    rng = numpy.random.RandomState(seed)
    # T large enough that the closeness terms are neither 0 nor 1
    T = (rng.randn(A, B * C) * 0.3).astype(numpy.float32)
    if learn_T:
        link.T.array[...] = T
    else:
        link.T[...] = T
    if form == 'authors':
        s = (rng.randn(B, C) * 0.3).astype(numpy.float32)
        if learn_T:
            link.log_scale.array[...] = s
        else:
            link.log_scale[...] = s
        link.b.array[...] = rng.randn(B)
        link.initialized = True
    return link


@pytest.mark.parametrize('form', links.MBD_FORMS)
@pytest.mark.parametrize('learn_T', [True, False])
@pytest.mark.parametrize('fused', [False, True])
def test_minibatch_discrimination_equals_double_loop(form, learn_T, fused):
    A, B, C, n = 7, 4, 3, 6
    link = make_mbd(form, A, B, C, learn_T, fused)
    x = numpy.random.RandomState(1).randn(n, A).astype(numpy.float32)
    y = link(x).array
    W, bias = effective(link)
    expected = naive_minibatch_discrimination(x.astype(numpy.float64), W, B,
                                              C, bias)
    assert y.shape == (n, A + B)
    numpy.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    # the self term is excluded: every closeness is strictly below n - 1
    o = y[:, A:] - (0 if bias is None else bias)
    assert (o < n - 1).all() and (o > 0).all()


@pytest.mark.parametrize('form', links.MBD_FORMS)
def test_minibatch_discrimination_initial_T_by_form(form):
    link = links.MinibatchDiscrimination(400, 50, 5, form=form)
    std = 0.001 if form == 'blog' else 0.05
    assert abs(link.T.array.std() / std - 1) < 0.02
    assert (link.b is None) == (form != 'authors')
    if form == 'authors':
        numpy.testing.assert_array_equal(link.b.array, -1)
        numpy.testing.assert_array_equal(link.log_scale.array, 0)
    with pytest.raises(ValueError, match='form'):
        links.MinibatchDiscrimination(4, 3, 2, form='paper')


def test_minibatch_discrimination_flattens_images_and_batch_of_one():
    link = links.MinibatchDiscrimination(2 * 3 * 3, 5, 2, form='raw')
    x = numpy.random.RandomState(1).randn(1, 2, 3, 3).astype(numpy.float32)
    y = link(x).array
    assert y.shape == (1, 18 + 5)
    numpy.testing.assert_array_equal(y[:, 18:], 0)
    numpy.testing.assert_allclose(y[:, :18], x.reshape(1, -1))


@pytest.mark.parametrize('fused', [False, True])
def test_minibatch_discrimination_identical_samples_give_n_minus_one(fused):
    link = links.MinibatchDiscrimination(4, 3, 2, form='raw', fast=fused)
    x = numpy.tile(numpy.arange(4, dtype=numpy.float32), (5, 1))
    numpy.testing.assert_allclose(link(x).array[:, 4:], 4.0)


@pytest.mark.parametrize('form,n_params', [('authors', 3), ('raw', 1),
                                           ('blog', 1)])
def test_minibatch_discrimination_fixed_T_is_not_a_parameter(form, n_params):
    link = links.MinibatchDiscrimination(4, 3, 2, form=form, learn_T=False)
    # only the authors' bias stays learned
    assert len(list(link.params())) == (1 if form == 'authors' else 0)
    assert len(list(links.MinibatchDiscrimination(
        4, 3, 2, form=form).params())) == n_params


@pytest.mark.parametrize('form', links.MBD_FORMS)
@pytest.mark.parametrize('fused', [False, True])
def test_minibatch_discrimination_backward(form, fused):
    rng = numpy.random.RandomState(2)
    A, B, C, n = 5, 3, 2, 4
    link = _to_f64(make_mbd(form, A, B, C, fast=fused, seed=3))
    x = rng.randn(n, A)
    gy = rng.randn(n, A + B)
    gradient_check.check_backward(link, x, gy, list(link.params()),
                                  eps=1e-4, atol=1e-4, rtol=1e-3,
                                  dtype=numpy.float64)


def test_pairwise_l1_paths_agree_forward_and_gradient():
    rng = numpy.random.RandomState(4)
    M = rng.randn(9, 6, 5)
    go = rng.randn(9, 6)
    fused = chainer.Variable(M.copy())
    plain = chainer.Variable(M.copy())
    y1 = links.pairwise_l1_closeness(fused)
    y2 = links.pairwise_l1_closeness_broadcast(plain)
    numpy.testing.assert_allclose(y1.array, y2.array, rtol=1e-12)
    y1.grad, y2.grad = go, go
    y1.backward()
    y2.backward()
    numpy.testing.assert_allclose(fused.grad, plain.grad, rtol=1e-10,
                                  atol=1e-12)
    gradient_check.check_backward(links.pairwise_l1_closeness, M * 0.3, go,
                                  dtype=numpy.float64, atol=1e-5, rtol=1e-4)


def naive_closeness(M, A, offset):
    """o[i, b] = sum_{j != offset + i} exp(-||M[i, b] - A[j, b]||_1), one
    pair at a time."""
    n, B, _ = M.shape
    o = numpy.zeros((n, B))
    for i in range(n):
        for j in range(A.shape[0]):
            if j == offset + i:
                continue
            for b in range(B):
                o[i, b] += numpy.exp(-numpy.abs(M[i, b] - A[j, b]).sum())
    return o


KERNELS = {'fused': links.pairwise_l1_closeness,
           'broadcast': links.pairwise_l1_closeness_broadcast}


@pytest.mark.parametrize('kernel', sorted(KERNELS))
def test_closeness_against_itself_at_offset_0_is_the_one_batch_kernel(
        kernel):
    """Rows M against A = M at offset 0 give the numbers of M alone, and
    the gradients of M and of A together make the one-batch gradient."""
    fn = KERNELS[kernel]
    rng = numpy.random.RandomState(9)
    M = rng.randn(7, 4, 3) * 0.5
    go = rng.randn(7, 4)
    alone = chainer.Variable(M.copy())
    y1 = fn(alone)
    y1.grad = go
    y1.backward()
    m, a = chainer.Variable(M.copy()), chainer.Variable(M.copy())
    y2 = fn(m, a, 0)
    y2.grad = go
    y2.backward()
    numpy.testing.assert_array_equal(y2.array, y1.array)
    numpy.testing.assert_allclose(m.grad + a.grad, alone.grad, rtol=1e-12,
                                  atol=1e-14)
    # the same Variable as both inputs: the gradients add up in it
    both = chainer.Variable(M.copy())
    y3 = fn(both, both, 0)
    y3.grad = go
    y3.backward()
    numpy.testing.assert_array_equal(y3.array, y1.array)
    numpy.testing.assert_allclose(both.grad, alone.grad, rtol=1e-12,
                                  atol=1e-14)


@pytest.mark.parametrize('kernel', sorted(KERNELS))
@pytest.mark.parametrize('offset', [0, 2, 4])
def test_closeness_with_offset_equals_double_loop(kernel, offset):
    fn = KERNELS[kernel]
    rng = numpy.random.RandomState(10 + offset)
    A = rng.randn(7, 4, 2) * 0.6
    M = A[offset:offset + 3].copy()
    y = fn(M, A, offset).array
    assert y.shape == (3, 4)
    numpy.testing.assert_allclose(y, naive_closeness(M, A, offset),
                                  rtol=1e-12)
    # float32 as well
    y32 = fn(M.astype(numpy.float32), A.astype(numpy.float32), offset)
    assert y32.dtype == numpy.float32
    numpy.testing.assert_allclose(y32.array, y, rtol=1e-5)


@pytest.mark.parametrize('kernel', sorted(KERNELS))
def test_closeness_with_offset_gradient(kernel):
    """Local rows against a larger batch: the gradients of both inputs
    against finite differences."""
    fn = KERNELS[kernel]
    rng = numpy.random.default_rng(2)
    M = rng.standard_normal((3, 4, 2))
    A = rng.standard_normal((7, 4, 2))
    A[2:5] = M  # the rows of M at offset 2
    A += rng.uniform(0.05, 0.1, A.shape) * (numpy.arange(7) % 2)[:, None,
                                                                  None]
    gradient_check.check_backward(
        lambda m, a: fn(m, a, 2), (M, A), rng.standard_normal((3, 4)),
        dtype=numpy.float64, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('kernel', sorted(KERNELS))
def test_closeness_offset_needs_the_rows(kernel):
    with pytest.raises(ValueError, match='offset'):
        KERNELS[kernel](numpy.zeros((2, 3, 1)), None, 1)


class FixedOthers(links.BatchPairs):
    """A pairs source that compares the batch with itself and with fixed
    other samples before and after it (one rank's view of a global batch,
    in one process)."""

    def __init__(self, before, after):
        self.before, self.after = before, after

    def closeness(self, M, kernel):
        A = chainer.functions.concat((self.before, M, self.after), axis=0)
        return kernel(M, A, len(self.before))

    def rows(self, M):
        return numpy.concatenate((self.before, M, self.after))

    def mean(self, o):
        raise AssertionError('the test sets the mean itself')


@pytest.mark.parametrize('fast', [False, True])
def test_minibatch_discrimination_uses_its_pairs_source(fast):
    """The layer compares with the samples its ``pairs_source`` gives:
    with fixed other samples around the batch, its o and gradient are
    those of the double loop over the larger batch."""
    A, B, C = 6, 3, 2
    link = _to_f64(make_mbd('raw', A, B, C, fast=fast, seed=4))
    assert isinstance(link.pairs_source, links.BatchPairs)
    W, _ = effective(link)
    rng = numpy.random.RandomState(11)
    x_all = rng.randn(8, A)
    M_all = (x_all @ W).reshape(8, B, C)
    link.pairs_source = FixedOthers(M_all[:2], M_all[5:])
    x = x_all[2:5]
    y = link(x).array
    o = naive_minibatch_discrimination(x_all, W, B, C)[2:5, A:]
    numpy.testing.assert_allclose(y[:, A:], o, rtol=1e-10)
    gradient_check.check_backward(link, x, rng.randn(3, A + B),
                                  list(link.params()), eps=1e-4, atol=1e-4,
                                  rtol=1e-3, dtype=numpy.float64)


def test_authors_init_takes_rows_and_mean_from_pairs_source():
    """The data-dependent init takes its nearest neighbours from the
    source's rows and the bias from the source's mean."""
    A, B, C = 6, 3, 2
    rng = numpy.random.RandomState(12)
    x_all = (rng.randn(8, A) * 3).astype(numpy.float32)
    one = links.MinibatchDiscrimination(A, B, C)
    part = one.copy(mode='copy')
    one(x_all)  # the init over the whole batch
    M_all = x_all.dot(part.weight().array).reshape(8, B, C)
    seen = []

    class Source(FixedOthers):
        def mean(self, o):
            seen.append(o.copy())
            return numpy.full(B, 0.25, dtype=o.dtype)

    part.pairs_source = Source(M_all[:2], M_all[5:])
    y = part(x_all[2:5]).array
    numpy.testing.assert_allclose(part.log_scale.array, one.log_scale.array,
                                  rtol=1e-5)
    numpy.testing.assert_array_equal(part.b.array, -0.25)
    assert len(seen) == 1 and seen[0].shape == (3, B)
    numpy.testing.assert_allclose(y[:, A:], seen[0] - 0.25, rtol=1e-6)


def test_pairs_source_is_not_serialized(tmp_path):
    link = links.MinibatchDiscrimination(5, 3, 2)
    keys = set(_saved_keys(link))
    assert keys == {'T', 'log_scale', 'b', 'initialized'}
    link.pairs_source = FixedOthers(None, None)
    assert set(_saved_keys(link)) == keys


def _saved_keys(link):
    s = chainer.serializers.DictionarySerializer()
    s.save(link)
    return list(s.target)


def test_authors_data_dependent_init_once():
    rng = numpy.random.RandomState(5)
    A, B, C, n = 30, 8, 5, 16
    link = links.MinibatchDiscrimination(A, B, C)
    x = (rng.randn(n, A) * 4).astype(numpy.float32)
    assert not link.initialized
    with chainer.using_config('train', False):  # test mode: no init
        link(x)
    assert not link.initialized
    during = link(x).array[:, A:]
    assert link.initialized
    after = link(x).array[:, A:]
    numpy.testing.assert_allclose(during, after, rtol=1e-4, atol=1e-5)
    numpy.testing.assert_allclose(after.mean(axis=0), 0, atol=1e-5)
    # the mean distance to the nearest other sample is 2, per kernel
    W, _ = effective(link)
    M = (x.astype(numpy.float64) @ W).reshape(n, B, C)
    nearest = numpy.full((n, B), numpy.inf)
    for i in range(n):
        for j in range(n):
            if i != j:
                nearest[i] = numpy.minimum(
                    nearest[i], numpy.abs(M[i] - M[j]).sum(axis=1))
    numpy.testing.assert_allclose(nearest.mean(axis=0), 2.0, rtol=1e-4)
    # a second batch does not initialize again
    s = link.log_scale.array.copy()
    link(x * 3)
    numpy.testing.assert_array_equal(link.log_scale.array, s)


def test_authors_init_survives_serialization(tmp_path):
    rng = numpy.random.RandomState(6)
    link = links.MinibatchDiscrimination(10, 4, 3)
    link(rng.randn(8, 10).astype(numpy.float32))
    path = str(tmp_path / 'mbd.npz')
    chainer.serializers.save_npz(path, link)
    fresh = links.MinibatchDiscrimination(10, 4, 3)
    chainer.serializers.load_npz(path, fresh)
    assert fresh.initialized
    x = rng.randn(8, 10).astype(numpy.float32)
    numpy.testing.assert_allclose(fresh(x).array, link(x).array)


def _to_f64(link):
    for p in link.params():
        p.array = p.array.astype(numpy.float64)
    return link


@pytest.mark.parametrize('train_scale', [True, False])
def test_weight_norm_linear_forward_and_backward(train_scale):
    rng = numpy.random.RandomState(3)
    link = _to_f64(links.WeightNormLinear(6, 4, train_scale=train_scale))
    link.b.array[...] = rng.randn(4)
    if train_scale:
        link.g.array[...] = rng.rand(4) + 0.5
    x = rng.randn(5, 6)
    V = link.V.array
    g = link.g.array if train_scale else link.g
    W = g[:, None] * V / numpy.linalg.norm(V, axis=1, keepdims=True)
    numpy.testing.assert_allclose(link(x).array, x @ W.T + link.b.array,
                                  rtol=1e-10)
    params = [p for p in link.params()]
    gradient_check.check_backward(link, x, rng.randn(5, 4), params,
                                  eps=1e-5, atol=1e-6, rtol=1e-5,
                                  dtype=numpy.float64)


def test_weight_norm_convolution_and_deconvolution_match_explicit_weight():
    rng = numpy.random.RandomState(4)
    x = rng.randn(2, 3, 6, 6)
    conv = _to_f64(links.WeightNormConvolution2D(3, 5, 3, stride=1, pad=1))
    conv.g.array[...] = rng.rand(5) + 0.5
    V = conv.V.array
    W = conv.g.array[:, None, None, None] * V / numpy.sqrt(
        (V ** 2).sum(axis=(1, 2, 3), keepdims=True))
    ref = chainer.functions.convolution_2d(x, W, conv.b.array, pad=1).array
    numpy.testing.assert_allclose(conv(x).array, ref, rtol=1e-10)
    gradient_check.check_backward(conv, x, rng.randn(2, 5, 6, 6),
                                  list(conv.params()), eps=1e-5, atol=1e-5,
                                  rtol=1e-4, dtype=numpy.float64)

    dec = _to_f64(links.WeightNormDeconvolution2D(3, 4, 4, stride=2, pad=1))
    dec.g.array[...] = rng.rand(4) + 0.5
    V = dec.V.array  # (in, out, kh, kw), one norm per output channel
    W = dec.g.array[None, :, None, None] * V / numpy.sqrt(
        (V ** 2).sum(axis=(0, 2, 3), keepdims=True))
    ref = chainer.functions.deconvolution_2d(x, W, dec.b.array, stride=2,
                                             pad=1).array
    y = dec(x).array
    assert y.shape == (2, 4, 12, 12)
    numpy.testing.assert_allclose(y, ref, rtol=1e-10)
    gradient_check.check_backward(dec, x, rng.randn(2, 4, 12, 12),
                                  list(dec.params()), eps=1e-5, atol=1e-5,
                                  rtol=1e-4, dtype=numpy.float64)


@pytest.mark.parametrize('make', [
    lambda: links.WeightNormLinear(20, 7, train_scale=False),
    lambda: links.WeightNormLinear(20, 7, train_scale=True),
    lambda: links.WeightNormConvolution2D(2, 6, 3, pad=1),
    lambda: links.WeightNormDeconvolution2D(2, 6, 4, stride=2, pad=1),
])
def test_data_dependent_init_standardizes_each_unit(make):
    rng = numpy.random.RandomState(5)
    link = make()
    x = (rng.randn(64, 20) * 3 + 1.5).astype(numpy.float32)
    if not isinstance(link, links.WeightNormLinear):
        x = (rng.randn(16, 2, 5, 5) * 3 + 1.5).astype(numpy.float32)
    before = link(x).array
    axes = (0,) if before.ndim == 2 else (0, 2, 3)
    # not standardized before the init
    assert numpy.abs(before.std(axis=axes) - 1).max() > 0.05
    with links.data_dependent_init():
        during = link(x).array
    after = link(x).array
    assert link.initialized
    numpy.testing.assert_allclose(during, after, rtol=1e-5, atol=1e-5)
    numpy.testing.assert_allclose(after.mean(axis=axes), 0, atol=1e-4)
    numpy.testing.assert_allclose(after.std(axis=axes), 1, atol=1e-3)
    # a second init block does not re-initialize
    with links.data_dependent_init():
        numpy.testing.assert_allclose(link(x * 2).array, link(x * 2).array)
        assert not numpy.allclose(link(x * 2).array.std(axis=axes), 1,
                                  atol=1e-2)


def test_gaussian_noise_only_in_training_mode():
    x = numpy.zeros((2000, 50), dtype=numpy.float32)
    noise = links.GaussianNoise(0.5)
    with chainer.using_config('train', False):
        numpy.testing.assert_array_equal(chainer.as_array(noise(x)), x)
    with chainer.using_config('train', True):
        y = noise(x).array
    assert y.dtype == numpy.float32
    assert abs(y.std() - 0.5) < 0.01 and abs(y.mean()) < 0.01


def test_gaussian_noise_replays_given_numbers_and_passes_gradient():
    noise = links.GaussianNoise(0.3)
    eps = numpy.random.RandomState(0).randn(4, 3)
    noise.noise_source = lambda shape, xp, dtype: eps.astype(dtype)
    x = numpy.random.RandomState(1).randn(4, 3)
    numpy.testing.assert_allclose(noise(x).array, x + 0.3 * eps)
    gradient_check.check_backward(noise, x, numpy.ones((4, 3)),
                                  dtype=numpy.float64)


def test_fused_weight_norm_linear_matches_composed_and_gradients():
    rng = numpy.random.RandomState(7)
    x, V = rng.randn(6, 5), rng.randn(4, 5)
    g, b = rng.rand(4) + 0.5, rng.randn(4)
    W = g[:, None] * V / numpy.linalg.norm(V, axis=1, keepdims=True)
    numpy.testing.assert_allclose(
        fast_mlp.weight_norm_linear(x, V, g, b).array, x @ W.T + b, rtol=1e-12)
    gradient_check.check_backward(fast_mlp.weight_norm_linear, (x, V, g, b),
                                  rng.randn(6, 4), dtype=numpy.float64,
                                  atol=1e-6, rtol=1e-5)
    gradient_check.check_backward(
        lambda x, V, g: fast_mlp.weight_norm_linear(x, V, g), (x, V, g),
        rng.randn(6, 4), dtype=numpy.float64, atol=1e-6, rtol=1e-5)


def test_constant_parameters_skips_parameter_gradients_only():
    rng = numpy.random.RandomState(8)
    link = links.WeightNormLinear(5, 3, fast=True)
    plain = link.copy(mode='copy')
    plain.fast = False
    x = chainer.Variable(rng.randn(4, 5).astype(numpy.float32))
    y = chainer.functions.sum(plain(x) ** 2)
    y.backward()
    gx_ref = x.grad.copy()
    x.cleargrad()
    y = chainer.functions.sum(link(x) ** 2)
    y.backward()
    numpy.testing.assert_allclose(x.grad, gx_ref, rtol=1e-5)
    for name in ('V', 'g', 'b'):  # the fast node's gradients, as composed
        numpy.testing.assert_allclose(getattr(link, name).grad,
                                      getattr(plain, name).grad,
                                      rtol=1e-5, atol=1e-6)
    for fast, net in ((True, link), (False, plain)):
        net.cleargrads()
        x.cleargrad()
        with fast_mlp.constant_parameters():
            y = chainer.functions.sum(net(x) ** 2)
        y.backward()
        numpy.testing.assert_allclose(x.grad, gx_ref, rtol=1e-5)
        grads = [net.V.grad, net.g.grad, net.b.grad]
        # the fast node skips them; the composed links ignore the block
        assert all((g is None) == fast for g in grads)


def test_dropout_keeps_or_zeroes_and_scales_from_the_run_stream():
    from gan import links, random as grandom
    x = numpy.random.default_rng(0).normal(size=(50, 40)).astype(
        numpy.float32) + 3
    drop = links.Dropout(0.25)
    with chainer.using_config('train', False):
        assert drop(x) is x  # test mode: the identity
    grandom.seed(5)
    xv = chainer.Variable(x)
    y = drop(xv)
    kept = y.array != 0
    numpy.testing.assert_allclose(y.array[kept], x[kept] / 0.75, rtol=1e-6)
    assert abs(kept.mean() - 0.75) < 0.03
    # the gradient is the mask: 1 / (1 - ratio) where kept, else 0
    y.grad = numpy.ones_like(x)
    y.backward()
    numpy.testing.assert_allclose(xv.grad, kept / 0.75, rtol=1e-6)
    # the mask comes from gan.random: the same seed, the same mask
    grandom.seed(5)
    numpy.testing.assert_array_equal(drop(x).array, y.array)
    with pytest.raises(ValueError):
        links.Dropout(1.0)
