"""Batch normalization in training mode fused with the activation after it,
on the CPU: one graph node for ``act(bn(x))`` where act is the identity,
ReLU, leaky ReLU or ELU (alpha 1).

Chainer's CPU batch norm and the activation after it make about ten
passes over the activations forward and again backward, with a broadcast
temporary at each; here the statistics are reduced over the (N, C, H*W)
view, the normalized input is kept for the backward pass, and the
activation's mask is applied in the same passes.  The results are those of
``act(F.batch_normalization(...))`` with the link's running averages
updated the same way (decay, the unbiased variance), checked by the
tests; test mode, GPUs and multi-node batch norm go to Chainer's links.
"""
import numpy

import chainer
import chainer.functions as F
import chainer.links as L
from chainer import function_node

from gan.fast.conv import leaky_relu, rectifier_grad

ACTIVATIONS = ('identity', 'relu', 'leaky_relu', 'elu')


def _stat_view(x):
    """x (N, C) or (N, C, H, W) as (N, C, P) (a view)."""
    return x.reshape(x.shape[0], x.shape[1], -1)


class BatchNormActCPU(function_node.FunctionNode):
    """y = act(gamma * (x - mean) / sqrt(var + eps) + beta), statistics of
    the batch over every axis but the channels (axis 1)."""

    def __init__(self, act, slope, eps, running_mean, running_var, decay):
        self.act, self.slope, self.eps = act, slope, eps
        self.running_mean, self.running_var = running_mean, running_var
        self.decay = decay

    def forward(self, inputs):
        x, gamma, beta = inputs
        x3 = _stat_view(x)
        m = x3.shape[0] * x3.shape[2]
        inv_m = x.dtype.type(1.0 / m)  # a numpy scalar: float32 stays
        mean = x3.sum(axis=(0, 2)) * inv_m
        x_hat = x3 - mean[:, None]
        sq = numpy.square(x_hat)
        var = sq.sum(axis=(0, 2)) * inv_m
        del sq
        inv_std = (1.0 / numpy.sqrt(var + self.eps)).astype(x.dtype)
        x_hat *= inv_std[:, None]
        y = x_hat * gamma[:, None]
        y += beta[:, None]
        if self.act == 'relu':
            numpy.maximum(y, 0, out=y)
        elif self.act == 'leaky_relu':
            numpy.maximum(y, y * y.dtype.type(self.slope), out=y)
        elif self.act == 'elu':  # max(y, 0) + expm1(min(y, 0))
            neg = numpy.minimum(y, 0)
            numpy.expm1(neg, out=neg)
            numpy.maximum(y, 0, out=y)
            y += neg
        if self.running_mean is not None:
            adjust = m / max(m - 1.0, 1.0)
            self.running_mean *= self.decay
            self.running_mean += (1 - self.decay) * mean
            self.running_var *= self.decay
            self.running_var += (1 - self.decay) * adjust * var
        self.x_hat, self.inv_std, self.x_shape = x_hat, inv_std, x.shape
        self.retain_inputs((1,))
        if self.act != 'identity':
            self.retain_outputs((0,))
        return y.reshape(x.shape),

    def backward(self, indexes, grad_outputs):
        gamma = self.get_retained_inputs()[0].array
        g = _stat_view(grad_outputs[0].array)
        if self.act == 'elu':  # dy/dx = 1 where y > 0, else y + 1
            y = _stat_view(self.get_retained_outputs()[0].array)
            scale = numpy.minimum(y, 0)
            scale += 1
            g = g * scale
        elif self.act != 'identity':
            y = _stat_view(self.get_retained_outputs()[0].array)
            g = rectifier_grad(g, y, 0 if self.act == 'relu' else self.slope)
        x_hat = self.x_hat
        inv_m = g.dtype.type(1.0 / (g.shape[0] * g.shape[2]))
        gbeta = g.sum(axis=(0, 2))
        ggamma = numpy.einsum('ncp,ncp->c', g, x_hat)
        out = []
        if 0 in indexes:
            gx = x_hat * (ggamma * -inv_m)[:, None]
            gx -= (gbeta * inv_m)[:, None]
            gx += g
            gx *= (gamma * self.inv_std)[:, None]
            out.append(chainer.Variable(gx.reshape(self.x_shape)))
        else:
            out.append(None)
        out.append(chainer.Variable(ggamma.astype(gamma.dtype)))
        out.append(chainer.Variable(gbeta.astype(gamma.dtype)))
        return tuple(out[i] for i in indexes)


def _act(h, act, slope, fast):
    if act == 'relu':
        return F.relu(h)
    if act == 'leaky_relu':
        return leaky_relu(h, slope) if fast else F.leaky_relu(h, slope)
    if act == 'elu':
        return F.elu(h)
    return h


def fusable(bn, x):
    """Whether ``batch_norm_act`` can run ``bn`` on ``x`` as one node."""
    array = x.array if isinstance(x, chainer.Variable) else x
    return (type(bn) is L.BatchNormalization  # not multi-node
            and chainer.backend.get_array_module(array) is numpy
            and array.ndim in (2, 4)
            and array.dtype == numpy.float32
            and chainer.config.train and not chainer.config.in_recomputing
            and bn.axis is None and bn.gamma is not None
            and bn.beta is not None and bn.avg_mean is not None)


def batch_norm_act(bn, x, act='relu', slope=0.2, fast=True):
    """``act(bn(x))`` for a :class:`chainer.links.BatchNormalization`
    ``bn``: with ``fast``, one fused node on the CPU in training mode (see
    the module doc); else (or where it does not apply) the link and
    Chainer's activation function."""
    if act not in ACTIVATIONS:
        raise ValueError('act must be one of {}'.format(ACTIVATIONS))
    if not (fast and fusable(bn, x)):
        return _act(bn(x), act, slope, fast)
    node = BatchNormActCPU(act, slope, bn.eps, bn.avg_mean, bn.avg_var,
                           bn.decay)
    return node.apply((x, bn.gamma, bn.beta))[0]
