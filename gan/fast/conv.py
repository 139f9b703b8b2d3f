"""Faster CPU convolution and transposed convolution for the DCGAN (a CPU
fast path: ``fast=True`` of :class:`gan.nets.DCGANGenerator`,
:class:`gan.nets.DCGANDiscriminator` and of the blog's pair,
:class:`gan.nets.BlogConvGenerator` and
:class:`gan.nets.BlogConvDiscriminator`).

Profiling the 64 px DCGAN step on the CPU showed most of the time in
Chainer's im2col / col2im and in the copies ``numpy.tensordot`` makes to
bring its (N, C, kh, kw, out_h, out_w) columns into matrix form; the matrix
products themselves were a minor part.  Here the columns are gathered once,
directly in matrix layout, from a channels-last padded copy of the input::

    col[(n, y, x), (i, j, c)] = x_pad[n, s*y + i, s*x + j, c]     (M x K)
    conv:    y   = col  W_mat^T + b          W_mat = W (O, kh, kw, C) -> (O, K)
    deconv:  y   = col2im(x_mat W_mat)       (the conv's input gradient)

so each pass is one copy plus one large matrix product.  With few
channels (the RGB layers) the transposed direction multiplies each sample
in NCHW and adds the taps phase by phase of the stride, where the adds run
over whole image rows (:func:`_scatter_taps_phases`).  The results are
the same as ``F.convolution_2d`` / ``F.deconvolution_2d`` (cover_all=False,
dilate=1, groups=1).  On a GPU the links fall back to Chainer's functions
(cuDNN's kernels are better there).
"""
import numpy
from numpy.lib.stride_tricks import as_strided

import chainer
import chainer.functions as F
import chainer.links as L
from chainer import function_node


def _dot(a, b):
    """Every matrix product of this module goes through here (a benchmark
    records them: ``benchmarks/dcgan_speed.py --floor``); a stack of
    products where an operand has three axes."""
    return numpy.matmul(a, b)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _im2col(x, kh, kw, sy, sx, ph, pw):
    """x (N, C, H, W) -> col (N*oh*ow, kh*kw*C), oh, ow."""
    n, c, h, w = x.shape
    oh = (h + 2 * ph - kh) // sy + 1
    ow = (w + 2 * pw - kw) // sx + 1
    xp = numpy.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)
    xp[:, ph:ph + h, pw:pw + w, :] = x.transpose(0, 2, 3, 1)
    s0, s1, s2, s3 = xp.strides
    view = as_strided(xp, (n, oh, ow, kh, kw, c),
                      (s0, s1 * sy, s2 * sx, s1, s2, s3), writeable=False)
    return view.reshape(n * oh * ow, kh * kw * c), oh, ow


def _col2im(col, n, oh, ow, kh, kw, c, h, w, sy, sx, ph, pw):
    """Adjoint of :func:`_im2col`: col (N*oh*ow, kh*kw*C) -> (N, C, h, w)."""
    col = col.reshape(n, oh, ow, kh, kw, c)
    out = numpy.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=col.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, i:i + sy * (oh - 1) + 1:sy,
                j:j + sx * (ow - 1) + 1:sx, :] += col[:, :, :, i, j, :]
    return numpy.ascontiguousarray(
        out[:, ph:ph + h, pw:pw + w, :].transpose(0, 3, 1, 2))


def _scatter_taps(a, W, h, w, sy, sx, ph, pw):
    """The adjoint of a convolution's column gather applied to a W: a
    (N, O, oh, ow) NCHW, W (O, C, kh, kw) -> (N, C, h, w).  Two layouts of
    the same sum, chosen by shape: with few channels (the RGB layers) the
    channels-last window adds would work on runs of C numbers, so the taps
    are added in phases of the stride, where the runs are image rows."""
    if W.shape[1] < 2 * a.shape[3]:
        return _scatter_taps_phases(a, W, h, w, sy, sx, ph, pw)
    n, _, oh, ow = a.shape
    return _scatter_taps_channels_last(_to_mat(a), W, n, oh, ow, h, w, sy,
                                       sx, ph, pw)


def _scatter_taps_phases(a, W, h, w, sy, sx, ph, pw):
    """All taps of each sample in one (kh*kw*C, O) x (O, oh*ow') product,
    then, for each phase (fy, fx) of the stride, the taps that land on it
    added at their shifts into a phase image of row width ow' = ow + (kw -
    1) // sx: the input has ow' - ow zero columns appended, so a shift is
    one offset into the flat image and each add runs over whole images;
    the columns that wrap around carry zeros.  Each phase image is then
    written into every sy-th row and sx-th column of the output."""
    n, o, oh, ow = a.shape
    _, c, kh, kw = W.shape
    ey, ex = (kh - 1) // sy, (kw - 1) // sx
    wq = ow + ex
    if ex:
        padded = numpy.zeros((n, o, oh, wq), dtype=a.dtype)
        padded[..., :ow] = a
        a = padded
    w_taps = numpy.ascontiguousarray(W.transpose(2, 3, 1, 0)).reshape(
        kh * kw * c, o)
    size = oh * wq
    taps = _dot(w_taps, a.reshape(n, o, size)).reshape(
        n, kh, kw, c, size)
    out = numpy.empty((n, c, h, w), dtype=a.dtype)
    for fy in range(sy):
        r0 = (fy - ph) % sy
        for fx in range(sx):
            c0 = (fx - pw) % sx
            if r0 >= h or c0 >= w:
                continue
            phase = numpy.zeros((n, c, (oh + ey) * wq + ex), dtype=a.dtype)
            for i in range(fy, kh, sy):
                for j in range(fx, kw, sx):
                    off = (i // sy) * wq + j // sx
                    phase[:, :, off:off + size] += taps[:, i, j]
            image = phase[:, :, :(oh + ey) * wq].reshape(n, c, oh + ey, wq)
            q0, k0 = (r0 + ph) // sy, (c0 + pw) // sx
            rows, cols = len(range(r0, h, sy)), len(range(c0, w, sx))
            out[:, :, r0::sy, c0::sx] = image[:, :, q0:q0 + rows,
                                              k0:k0 + cols]
    return out


def _scatter_taps_channels_last(a_mat, W, n, oh, ow, h, w, sy, sx, ph, pw):
    """One (M, O) x (O, C) product per kernel tap, each added in place into
    the strided (N, H, W, C) output window."""
    _, c, kh, kw = W.shape
    out = numpy.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=a_mat.dtype)
    for i in range(kh):
        for j in range(kw):
            tap = _dot(a_mat, numpy.ascontiguousarray(W[:, :, i, j]))
            out[:, i:i + sy * (oh - 1) + 1:sy,
                j:j + sx * (ow - 1) + 1:sx, :] += tap.reshape(n, oh, ow, c)
    return numpy.ascontiguousarray(
        out[:, ph:ph + h, pw:pw + w, :].transpose(0, 3, 1, 2))


def _w_mat(W):
    """(O, C, kh, kw) -> (O, kh*kw*C)."""
    return W.transpose(0, 2, 3, 1).reshape(W.shape[0], -1)


def _w_from_mat(gW_mat, shape):
    o, c, kh, kw = shape
    return numpy.ascontiguousarray(
        gW_mat.reshape(o, kh, kw, c).transpose(0, 3, 1, 2))


def _to_nchw(y_mat, n, h, w):
    return numpy.ascontiguousarray(
        y_mat.reshape(n, h, w, -1).transpose(0, 3, 1, 2))


def _to_mat(x):
    """(N, C, H, W) -> (N*H*W, C)."""
    return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])


class Convolution2DCPU(function_node.FunctionNode):
    """y = conv(x, W) + b on the CPU (see the module doc)."""

    def __init__(self, stride, pad):
        self.sy, self.sx = _pair(stride)
        self.ph, self.pw = _pair(pad)

    def forward(self, inputs):
        x, W = inputs[:2]
        kh, kw = W.shape[2:]
        col, oh, ow = _im2col(x, kh, kw, self.sy, self.sx, self.ph, self.pw)
        y = _dot(col, _w_mat(W).T)
        if len(inputs) == 3:
            y += inputs[2]
        self.col = col
        self.x_shape, self.W_shape = x.shape, W.shape
        self.retain_inputs((1,))
        return _to_nchw(y, x.shape[0], oh, ow),

    def backward(self, indexes, grad_outputs):
        W, = self.get_retained_inputs()
        W = W.array
        gy = grad_outputs[0].array  # (N, O, oh, ow)
        _, _, h, w = self.x_shape
        out = []
        for i in indexes:
            if i == 0:
                out.append(_scatter_taps(gy, W, h, w, self.sy, self.sx,
                                         self.ph, self.pw))
            elif i == 1:
                out.append(_w_from_mat(_dot(_to_mat(gy).T, self.col),
                                       self.W_shape))
            else:
                out.append(gy.sum(axis=(0, 2, 3)))
        return tuple(chainer.Variable(a) for a in out)


class Deconvolution2DCPU(function_node.FunctionNode):
    """y = deconv(x, W) + b on the CPU; W (C_in, C_out, kh, kw) as in
    Chainer; output size s * (H - 1) + k - 2p."""

    def __init__(self, stride, pad):
        self.sy, self.sx = _pair(stride)
        self.ph, self.pw = _pair(pad)

    def forward(self, inputs):
        x, W = inputs[:2]
        _, _, h, w = x.shape
        kh, kw = W.shape[2:]
        oh = self.sy * (h - 1) + kh - 2 * self.ph
        ow = self.sx * (w - 1) + kw - 2 * self.pw
        y = _scatter_taps(x, W, oh, ow, self.sy, self.sx, self.ph, self.pw)
        if len(inputs) == 3:
            y += inputs[2].reshape(1, -1, 1, 1)
        self.x_shape, self.W_shape = x.shape, W.shape
        self.retain_inputs((0, 1))
        return y,

    def backward(self, indexes, grad_outputs):
        x, W = (v.array for v in self.get_retained_inputs())
        gy = grad_outputs[0].array
        kh, kw = W.shape[2:]
        n, _, h, w = self.x_shape
        out = []
        col = None
        if 0 in indexes or 1 in indexes:
            col, _, _ = _im2col(gy, kh, kw, self.sy, self.sx, self.ph,
                                self.pw)
        for i in indexes:
            if i == 0:
                out.append(_to_nchw(_dot(col, _w_mat(W).T), n, h, w))
            elif i == 1:
                out.append(_w_from_mat(_dot(_to_mat(x).T, col),
                                       self.W_shape))
            else:
                out.append(gy.sum(axis=(0, 2, 3)))
        return tuple(chainer.Variable(a) for a in out)


def _inputs(x, W, b):
    return (x, W) if b is None else (x, W, b)


def convolution_2d(x, W, b=None, stride=1, pad=0):
    if chainer.backend.get_array_module(x) is not numpy:
        return F.convolution_2d(x, W, b, stride=stride, pad=pad)
    return Convolution2DCPU(stride, pad).apply(_inputs(x, W, b))[0]


def deconvolution_2d(x, W, b=None, stride=1, pad=0):
    if chainer.backend.get_array_module(x) is not numpy:
        return F.deconvolution_2d(x, W, b, stride=stride, pad=pad)
    return Deconvolution2DCPU(stride, pad).apply(_inputs(x, W, b))[0]


class Convolution2D(L.Convolution2D):
    """:class:`chainer.links.Convolution2D` with the fast CPU path."""

    def forward(self, x):
        if self.W.array is None:
            self._initialize_params(x.shape[1])
        return convolution_2d(x, self.W, self.b, self.stride, self.pad)


class Deconvolution2D(L.Deconvolution2D):
    """:class:`chainer.links.Deconvolution2D` with the fast CPU path
    (default output size only)."""

    def forward(self, x):
        if self.W.array is None:
            self._initialize_params(x.shape[1])
        if self.outsize not in (None, (None, None)):
            return super().forward(x)
        return deconvolution_2d(x, self.W, self.b, self.stride, self.pad)


def rectifier_grad(gy, y, slope):
    """gy * (1 where y > 0, else slope): the input gradient of ReLU (slope
    0) or leaky ReLU from its output.  A float mask multiplied in, not
    ``numpy.where``, which branches per element and was 13x slower on the
    random signs of activations."""
    scale = (y > 0).astype(gy.dtype)
    if slope:
        scale *= gy.dtype.type(1 - slope)
        scale += gy.dtype.type(slope)
    scale *= gy
    return scale


class LeakyReLUCPU(function_node.FunctionNode):
    """max(x, slope * x) (0 < slope < 1).  Chainer's CPU version copies and
    masks with a boolean index, which took about a tenth of the DCGAN
    step; this one is vectorized passes each way."""

    def __init__(self, slope):
        self.slope = slope

    def forward(self, inputs):
        x, = inputs
        self.retain_outputs((0,))
        return numpy.maximum(x, x * x.dtype.type(self.slope)),

    def backward(self, indexes, grad_outputs):
        y = self.get_retained_outputs()[0].array
        return chainer.Variable(rectifier_grad(grad_outputs[0].array, y,
                                               self.slope)),


def leaky_relu(x, slope=0.2):
    if not 0 < slope < 1 or \
            chainer.backend.get_array_module(x) is not numpy:
        return F.leaky_relu(x, slope)
    return LeakyReLUCPU(slope).apply((x,))[0]
