"""Numbers that say whether a generator collapsed.

Digit data (MNIST, Stacked-MNIST; the mode-collapse benchmark of Metz et
al. 2017):
each generated image is resized to 28 px and every channel is classified by
a pretrained MNIST classifier (:mod:`gan.mnist_classifier`).  A sample's
mode is its digit (10 modes) or its triple of digits read as
``100 R + 10 G + B`` (1000 modes).

* :func:`count_modes` -- modes with at least one sample;
* :func:`kl_to_uniform` -- KL(generated mode distribution || uniform);
* :func:`inception_score` -- ``exp(E_x KL(p(y|x) || p(y)))`` with the
  classifier in place of Inception (for stacked digits ``p(y|x)`` is the
  product of the three channels' distributions over the 1000 triples).

Any images:

* :func:`diversity` -- the mean pairwise L2 distance of generated samples
  divided by that of real images (about 1 when samples are as varied as the
  data, near 0 when they collapse onto a few images);
* :func:`near_duplicate_share` -- the share of sample pairs whose RMS pixel
  difference is below a threshold (collapse shows as many such pairs);
* :func:`nearest_distances` -- each sample's RMS pixel distance to its
  nearest training image (memorisation shows as distances near 0);
* :func:`frechet_distance` -- the Fréchet distance between Gaussians
  fitted to two sets of features (the quality number of
  :mod:`animeface.quality`).

RMS distances are ``||a - b|| / sqrt(D)`` on pixel values 0-255, D the
number of values of an image.
"""
import numpy

import chainer

from gan import datasets
from gan import image as gimage


def count_modes(modes, n_modes):
    """Number of distinct values of the int array ``modes`` in
    [0, n_modes)."""
    return int(numpy.count_nonzero(mode_histogram(modes, n_modes)))


def mode_histogram(modes, n_modes):
    modes = numpy.asarray(modes, dtype=numpy.int64).ravel()
    if modes.size and (modes.min() < 0 or modes.max() >= n_modes):
        raise ValueError('mode ids must lie in [0, {})'.format(n_modes))
    return numpy.bincount(modes, minlength=n_modes)


def kl_to_uniform(modes, n_modes):
    """KL(p || uniform) = sum_k p_k log(n_modes p_k), p the empirical mode
    frequencies (nats; 0 for a uniform spread, log(n_modes) for a single
    mode)."""
    counts = mode_histogram(modes, n_modes).astype(numpy.float64)
    p = counts[counts > 0] / counts.sum()
    return float(numpy.sum(p * numpy.log(p * n_modes)))


def inception_score(probs, splits=10):
    """Inception score of class probabilities ``probs`` (N, K): the mean and
    standard deviation over ``splits`` equal parts of
    ``exp(mean_i KL(p(y|x_i) || p(y)))``, ``p(y)`` the part's mean."""
    probs = numpy.asarray(probs, dtype=numpy.float64)
    scores = []
    for part in numpy.array_split(probs, splits):
        if len(part) == 0:
            continue
        py = part.mean(axis=0, keepdims=True)
        kl = numpy.sum(part * (_safe_log(part) - _safe_log(py)), axis=1)
        scores.append(numpy.exp(kl.mean()))
    return float(numpy.mean(scores)), float(numpy.std(scores))


def _safe_log(p):
    return numpy.log(numpy.maximum(p, 1e-30))


def digit_modes(classifier, images):
    """Classify every channel of uint8 images (N, C, S, S), C = 1 or 3.

    Returns (mode ids (N,) in [0, 10**C), probabilities (N, 10**C)): the
    channels read as the digits of one number, R first."""
    images = numpy.asarray(images)
    n, c = images.shape[:2]
    digits = datasets.resize_gray(images.reshape((n * c,) + images.shape[2:]),
                                  28)
    p = classifier.predict_proba(digits).reshape(n, c, 10)
    modes = numpy.zeros(n, dtype=numpy.int64)
    joint = numpy.ones((n, 1), dtype=numpy.float64)
    for k in range(c):
        modes = modes * 10 + p[:, k].argmax(axis=1)
        joint = (joint[:, :, None] * p[:, k][:, None, :]).reshape(n, -1)
    return modes, joint


def digit_metrics(classifier, images, splits=10):
    """modes, KL to uniform and Inception score of uint8 digit images
    (N, C, S, S) as a dict (``n_modes`` = 10 ** C)."""
    modes, joint = digit_modes(classifier, images)
    n_modes = 10 ** images.shape[1]
    is_mean, is_std = inception_score(joint, splits)
    return {'samples': int(len(images)), 'n_modes': n_modes,
            'modes': count_modes(modes, n_modes),
            'kl': kl_to_uniform(modes, n_modes),
            'inception_score': is_mean, 'inception_score_std': is_std}


def mean_pairwise_distance(images):
    """Mean L2 distance over all pairs i < j of images (N, ...) (any
    dtype; computed in float64 on the flattened images)."""
    x = numpy.asarray(images, dtype=numpy.float64).reshape(len(images), -1)
    n = len(x)
    if n < 2:
        raise ValueError('need at least two images')
    sq = numpy.einsum('ij,ij->i', x, x)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    iu = numpy.triu_indices(n, k=1)
    return float(numpy.sqrt(numpy.maximum(d2[iu], 0.0)).mean())


def diversity(generated, real):
    """Mean pairwise distance of ``generated`` over that of ``real``
    (images of the same shape and scale)."""
    return mean_pairwise_distance(generated) / mean_pairwise_distance(real)


def _flat(images):
    x = numpy.asarray(images, dtype=numpy.float64)
    return x.reshape(len(x), -1)


def _squared_distances(a, b, b_sq=None):
    """||a_i - b_j||^2 (len(a), len(b)), float64, clipped at 0."""
    a_sq = numpy.einsum('ij,ij->i', a, a)
    if b_sq is None:
        b_sq = numpy.einsum('ij,ij->i', b, b)
    return numpy.maximum(a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T), 0)


def near_duplicate_share(images, threshold=8.0, chunk=500):
    """Share of the pairs i < j of ``images`` (N, ...) whose RMS pixel
    difference is below ``threshold`` (pixel units, 0-255 images)."""
    x = _flat(images)
    n, dim = x.shape
    if n < 2:
        raise ValueError('need at least two images')
    limit = threshold ** 2 * dim
    close = 0
    for i in range(0, n, chunk):
        d2 = _squared_distances(x[i:i + chunk], x)
        rows = numpy.arange(i, min(i + chunk, n))[:, None]
        upper = numpy.arange(n)[None, :] > rows
        close += int(numpy.count_nonzero((d2 < limit) & upper))
    return close / (n * (n - 1) / 2)


def nearest_distances(images, train, chunk=250):
    """RMS pixel distance of each of ``images`` (N, ...) to its nearest
    image in ``train`` (M, ...): (N,) float64."""
    x, t = _flat(images), _flat(train)
    if x.shape[1] != t.shape[1]:
        raise ValueError('images and training images differ in shape')
    t_sq = numpy.einsum('ij,ij->i', t, t)
    out = numpy.empty(len(x))
    for i in range(0, len(x), chunk):
        out[i:i + chunk] = _squared_distances(x[i:i + chunk], t,
                                              t_sq).min(axis=1)
    return numpy.sqrt(out / x.shape[1])


def draw(generator, z, value_range=(-1.0, 1.0)):
    """The generator's images of the latents ``z`` in test mode (no
    batch statistics, nothing updated), as uint8 (N, C, S, S) on the
    CPU."""
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        x = generator(generator.xp.asarray(z)).array
    return gimage.to_uint8(chainer.backend.CpuDevice().send(x), value_range)


def generate(generator, n, seed=0, batchsize=500, value_range=(-1.0, 1.0)):
    """n samples of ``generator`` (test mode, z from the generator's own
    distribution, :meth:`sample_z`, on a stream seeded by ``seed``) as
    uint8 (n, C, S, S)."""
    rng = numpy.random.default_rng(seed)
    return numpy.concatenate([
        draw(generator, generator.sample_z(rng, min(batchsize, n - i)),
             value_range) for i in range(0, n, batchsize)])


def frechet_distance(a, b):
    """Fréchet distance between Gaussians fitted to the rows of ``a`` (N,
    D) and ``b`` (M, D):
    ``||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``.

    The trace of the matrix square root is the sum of the square roots of
    the eigenvalues of ``S_a^(1/2) S_b S_a^(1/2)`` (symmetric, positive
    semi-definite, with the eigenvalues of ``S_a S_b``); computed in
    float64 with symmetric eigendecompositions only."""
    a = numpy.asarray(a, dtype=numpy.float64)
    b = numpy.asarray(b, dtype=numpy.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or \
            len(a) < 2 or len(b) < 2:
        raise ValueError('need two (N, D) feature arrays of the same D, at '
                         'least two rows each')
    mu = a.mean(axis=0) - b.mean(axis=0)
    sa = numpy.atleast_2d(numpy.cov(a, rowvar=False))
    sb = numpy.atleast_2d(numpy.cov(b, rowvar=False))
    w, v = numpy.linalg.eigh(sa)
    root_a = (v * numpy.sqrt(numpy.maximum(w, 0))) @ v.T
    inner = root_a @ sb @ root_a
    cross = numpy.sqrt(numpy.maximum(numpy.linalg.eigvalsh(
        (inner + inner.T) / 2), 0)).sum()
    return float(mu @ mu + numpy.trace(sa) + numpy.trace(sb) - 2 * cross)
