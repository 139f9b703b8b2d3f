"""This project's semi-supervised update against an independent PyTorch
implementation of the authors' MNIST model, step by step: the same initial
parameters (this project's, after its data-dependent init), the same
batches, the same noise and latents (one numpy generator both sides draw
from in this project's order).

A measuring tool, not part of the package: it needs PyTorch, which the
project does not depend on.  Run it from a virtual environment that has
PyTorch and this project's requirements, with the repository on
PYTHONPATH::

    python3 -m venv ~/.torch-bench
    ~/.torch-bench/bin/pip install torch==2.13.0 "numpy<2" "setuptools<70" wheel
    ~/.torch-bench/bin/pip install --no-build-isolation -r requirements.txt
    PYTHONPATH=. ~/.torch-bench/bin/python benchmarks/torch_parity.py --steps 20
    PYTHONPATH=. ~/.torch-bench/bin/python benchmarks/torch_parity.py --fast \
        --steps 6000 --eval-every 600 --tape-seed 8      # test errors of both
    PYTHONPATH=. ~/.torch-bench/bin/python benchmarks/torch_parity.py --baseline \
        --steps 30                                    # PyTorch against itself
    PYTHONPATH=. ~/.torch-bench/bin/python benchmarks/torch_parity.py --steps 12 \
        --fixture tests/fixtures/ssl_torch_trajectory.json

``--baseline`` runs two PyTorch copies whose parameters differ by 1e-7
(with ``--fast``: one taking the three D batches in one pass, one in
three): how fast rounding alone makes two runs part.
"""
import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F

import chainer



class WNLinear(torch.nn.Module):
    """w = v * g / ||v|| per output unit; y = x w^T + b."""

    def __init__(self, n_in, n_out, train_scale):
        super().__init__()
        self.v = torch.nn.Parameter(torch.zeros(n_out, n_in))
        self.g = torch.nn.Parameter(torch.ones(n_out),
                                    requires_grad=train_scale)
        self.b = torch.nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        w = self.v * (self.g / self.v.norm(dim=1)).unsqueeze(1)
        return F.linear(x, w, self.b)


class Discriminator(torch.nn.Module):
    """784-1000-500-250-250-250-10, weight-normalized, the hidden scales
    fixed, the output scale learned."""
    sizes = (784, 1000, 500, 250, 250, 250, 10)

    def __init__(self):
        super().__init__()
        s = self.sizes
        self.layers = torch.nn.ModuleList(
            [WNLinear(s[i], s[i + 1], train_scale=(i == len(s) - 2))
             for i in range(len(s) - 1)])


class Generator(torch.nn.Module):
    """z 100 -> dense 500, batch norm, bias, softplus (twice) -> the
    weight-normalized dense 784 with its learned scale -> sigmoid."""

    def __init__(self):
        super().__init__()
        self.l1 = torch.nn.Linear(100, 500, bias=False)
        self.b1 = torch.nn.BatchNorm1d(500, affine=False)
        self.bias1 = torch.nn.Parameter(torch.zeros(500))
        self.l2 = torch.nn.Linear(500, 500, bias=False)
        self.b2 = torch.nn.BatchNorm1d(500, affine=False)
        self.bias2 = torch.nn.Parameter(torch.zeros(500))
        self.l3 = WNLinear(500, 784, train_scale=True)


class EpsInSqrtAdam(torch.optim.Optimizer):
    """The authors' Adam: m_hat / sqrt(v_hat + 1e-8)."""

    def __init__(self, params, lr, beta1=0.5, beta2=0.999, eps=1e-8):
        super().__init__([p for p in params if p.requires_grad],
                         dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group['beta1'], group['beta2']
            for p in group['params']:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st['t'] = 0
                    st['m'] = torch.zeros_like(p)
                    st['v'] = torch.zeros_like(p)
                st['t'] += 1
                st['m'].mul_(b1).add_(p.grad, alpha=1 - b1)
                st['v'].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                m_hat = st['m'] / (1 - b1 ** st['t'])
                v_hat = st['v'] / (1 - b2 ** st['t'])
                p.sub_(group['lr'] * m_hat / torch.sqrt(v_hat + group['eps']))


class tref:  # the names the functions below use
    D, G, TheanoAdam = Discriminator, Generator, EpsInSqrtAdam

from mnist_ssl import build as sbuild  # noqa: E402
from mnist_ssl import options as sopt  # noqa: E402


class Tape:
    """One numpy generator that both sides draw from in the same order."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def normal(self, shape):
        return self.rng.standard_normal(shape, dtype=np.float32)

    def uniform(self, shape):
        return self.rng.random(shape, dtype=np.float32)


class SplitTape(Tape):
    """Hands out the rows of a concatenated three-batch draw one pass at a
    time: the numbers that a single pass over the three batches gets from
    :class:`Tape`, for three separate passes."""

    def __init__(self, seed):
        super().__init__(seed)
        self.pending = []

    def normal(self, shape):
        if self.pending:
            return self.pending.pop(0)
        return super().normal(shape)


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def copy_params(dis, gen, d, g, bn_eps):
    with torch.no_grad():
        for layer, l in zip(list(dis.hidden) + [dis.out], d.layers):
            l.v.copy_(t(layer.V.array))
            garr = layer.g.array if isinstance(layer.g, chainer.Variable) \
                else layer.g
            l.g.copy_(t(garr))
            l.b.copy_(t(layer.b.array))
        g.l1.weight.copy_(t(gen.lins[0].W.array))
        g.l2.weight.copy_(t(gen.lins[1].W.array))
        g.bias1.copy_(t(gen.bns[0].beta.array))
        g.bias2.copy_(t(gen.bns[1].beta.array))
        g.l3.v.copy_(t(gen.out.V.array))
        g.l3.g.copy_(t(gen.out.g.array))
        g.l3.b.copy_(t(gen.out.b.array))
    g.b1.eps = g.b2.eps = bn_eps


def d_forward(d, x, tape, features_only=False, noises=None):
    """The yardstick's D with the tape's noise (or the arrays ``noises``,
    one per noise layer), in this project's order: input noise, then after
    each hidden ReLU (a features-only pass stops before the last hidden
    layer's noise)."""
    draw = (lambda j, shape: t(noises[j])) if noises is not None else (
        lambda j, shape: t(tape.normal(shape)))
    h = x + draw(0, tuple(x.shape)) * 0.3
    feat = None
    n = len(d.layers)
    for i, l in enumerate(d.layers):
        h = l(h)
        if i < n - 1:
            h = F.relu(h)
            feat = h
            if features_only and i == n - 2:
                return feat
            h = h + draw(i + 1, tuple(h.shape)) * 0.5
    return h, feat


def g_forward(g, n, tape):
    z = t(tape.uniform((n, 100)))
    h = F.softplus(g.b1(g.l1(z)) + g.bias1)
    h = F.softplus(g.b2(g.l2(h)) + g.bias2)
    return torch.sigmoid(g.l3(h))


def torch_step(d, g, od, og, batch, tape, concat=False):
    bl, by, bu, bu2 = batch
    with torch.no_grad():
        xg = g_forward(g, 100, tape)
    if concat == 'split':  # the fused pass's noise, three separate passes
        m = len(bl) + len(bu) + len(xg)
        widths = [784] + [l.v.shape[0] for l in d.layers[:-1]]
        noise = [tape.normal((m, w)) for w in widths]
        a, b = len(bl), len(bl) + len(bu)
        ll, _ = d_forward(d, bl, tape, noises=[z[:a] for z in noise])
        lu, _ = d_forward(d, bu, tape, noises=[z[a:b] for z in noise])
        lf, _ = d_forward(d, xg, tape, noises=[z[b:] for z in noise])
    elif concat:  # the fused pass: one draw per layer for the three batches
        logits, _ = d_forward(d, torch.cat([bl, bu, xg]), tape)
        ll, lu, lf = torch.split(logits, [len(bl), len(bu), len(xg)])
    else:
        ll, _ = d_forward(d, bl, tape)
        lu, _ = d_forward(d, bu, tape)
        lf, _ = d_forward(d, xg, tape)
    lse_u, lse_f = torch.logsumexp(lu, 1), torch.logsumexp(lf, 1)
    loss_lab = F.cross_entropy(ll, by)
    loss_unl = (-0.5 * lse_u.mean() + 0.5 * F.softplus(lse_u).mean()
                + 0.5 * F.softplus(lse_f).mean())
    loss = loss_lab + loss_unl
    od.zero_grad()
    loss.backward()
    od.step()
    xg = g_forward(g, 100, tape)
    with torch.no_grad():
        fr = d_forward(d, bu2, tape, features_only=True)
    ff = d_forward(d, xg, tape, features_only=True)
    lg = ((ff.mean(0) - fr.mean(0)) ** 2).mean()
    og.zero_grad()
    lg.backward()
    og.step()
    return float(loss_lab.detach()), float(loss_unl.detach()), float(lg.detach())


def our_params(dis, gen):
    out = {}
    for i, layer in enumerate(list(dis.hidden) + [dis.out]):
        out['d%d.v' % i] = layer.V.array
        out['d%d.b' % i] = layer.b.array
    out['d5.g'] = dis.out.g.array
    out['g.l1'] = gen.lins[0].W.array
    out['g.bias1'] = gen.bns[0].beta.array
    out['g.l3.v'] = gen.out.V.array
    out['g.l3.g'] = gen.out.g.array
    return out


def torch_params(d, g):
    out = {}
    for i, l in enumerate(d.layers):
        out['d%d.v' % i] = l.v.detach().numpy()
        out['d%d.b' % i] = l.b.detach().numpy()
    out['d5.g'] = d.layers[5].g.detach().numpy()
    out['g.l1'] = g.l1.weight.detach().numpy()
    out['g.bias1'] = g.bias1.detach().numpy()
    out['g.l3.v'] = g.l3.v.detach().numpy()
    out['g.l3.g'] = g.l3.g.detach().numpy()
    return out


def our_errors(dis, parts):
    x, y = parts['x_eval'], parts['y_eval']
    wrong = 0
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for i in range(0, len(x), 1000):
            wrong += int((dis(x[i:i + 1000]).array.argmax(1)
                          != y[i:i + 1000]).sum())
    return wrong


def torch_errors(d, parts):
    x, y = t(parts['x_eval']), t(parts['y_eval'].astype(np.int64))
    with torch.no_grad():
        pred = torch.cat([d_forward_clean(d, x[i:i + 1000]).argmax(1)
                          for i in range(0, len(x), 1000)])
    return int((pred != y).sum())


def d_forward_clean(d, x):
    h = x
    n = len(d.layers)
    for i, l in enumerate(d.layers):
        h = l(h)
        if i < n - 1:
            h = F.relu(h)
    return h


def rel_diff(a, b):
    return float(np.abs(a - b).max() / (np.abs(b).max() + 1e-30))


def baseline(a, dis, gen, up):
    import copy
    d, g = tref.D(), tref.G()
    copy_params(dis, gen, d, g, gen.bns[0].eps)
    d2, g2 = copy.deepcopy(d), copy.deepcopy(g)
    if not a.fast:
        with torch.no_grad():
            d2.layers[0].v.mul_(1 + 1e-7)
    od, og = tref.TheanoAdam(d.parameters(), 0.003), tref.TheanoAdam(
        g.parameters(), 0.003)
    od2, og2 = tref.TheanoAdam(d2.parameters(), 0.003), tref.TheanoAdam(
        g2.parameters(), 0.003)
    t1, t2 = Tape(a.tape_seed), Tape(a.tape_seed)
    its = {n: up.get_iterator(n) for n in ('main', 'labeled', 'unlabeled2')}
    for step in range(1, a.steps + 1):
        x_u, = its['main'].next()
        x_l, y_l = its['labeled'].next()
        x_u2, = its['unlabeled2'].next()
        b = (t(x_l), t(y_l.astype(np.int64)), t(x_u), t(x_u2))
        l1 = torch_step(d, g, od, og, b, t1,
                        concat='split' if a.fast else False)
        # --fast: copy 2 takes the three D batches in one pass (the same
        # numbers in another order of summation), copy 1 in three
        l2 = torch_step(d2, g2, od2, og2, b, t2, concat=a.fast)
        if step in a.report or step == a.steps:
            p1, p2 = torch_params(d, g), torch_params(d2, g2)
            pd = {k: rel_diff(p2[k], p1[k]) for k in p1}
            print(json.dumps({'step': step, 'a': [round(x, 6) for x in l1],
                              'b': [round(x, 6) for x in l2],
                              'param_rel_diff_max': max(pd.values()),
                              'worst': max(pd, key=pd.get)}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--steps', type=int, default=100)
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--report', type=int, nargs='+',
                   default=[1, 2, 5, 10, 20, 50, 100, 200, 500, 1000])
    p.add_argument('--adam', default='theano', choices=['theano', 'ours'])
    p.add_argument('--json', default=None)
    p.add_argument('--pool-size', type=int, default=None)
    p.add_argument('--fast', action='store_true',
                   help='this project\'s fast path (fused D pass: the '
                   'PyTorch side draws its noise in that order)')
    p.add_argument('--tape-seed', type=int, default=7)
    p.add_argument('--dump-step', type=int, default=0)
    p.add_argument('--eval-every', type=int, default=0,
                   help='test errors of both raw discriminators every N '
                   'steps')
    p.add_argument('--fixture', default=None,
                   help='write the PyTorch losses of every step here (JSON)')
    p.add_argument('--baseline', action='store_true',
                   help='torch against torch, one copy nudged by 1e-7')
    a = p.parse_args()
    torch.set_num_threads(1)
    options = dict(fast=a.fast, progress=False, seed=a.seed,
                   data_seed=a.seed, lr_decay_epochs=0, epochs=1000,
                   pool_size=a.pool_size)
    o = sopt.resolve(options)
    fixture = []
    parts = sbuild.build(o)
    dis, gen, up = parts['dis'], parts['gen'], parts['updater']
    d, g = tref.D(), tref.G()
    copy_params(dis, gen, d, g, gen.bns[0].eps)
    od = tref.TheanoAdam(d.parameters(), 0.003)
    og = tref.TheanoAdam(g.parameters(), 0.003)

    ours_tape, torch_tape = Tape(a.tape_seed), Tape(a.tape_seed)
    if a.baseline:
        return baseline(a, dis, gen, up)
    for layer in dis.noise_layers():
        layer.noise_source = lambda shape, xp, dtype: ours_tape.normal(shape)
    gen.make_hidden = lambda n: ours_tape.uniform((n, 100))
    batches = {}
    for name in ('main', 'labeled', 'unlabeled2'):
        it = up.get_iterator(name)
        orig = it.next

        def rec(orig=orig, name=name):
            b = orig()
            batches[name] = b
            return b
        it.next = rec
    rows = []
    before = {k: rel_diff(v, torch_params(d, g)[k])
              for k, v in our_params(dis, gen).items()}
    print(json.dumps({'step': 0, 'param_rel_diff_max': max(before.values())}))
    for step in range(1, a.steps + 1):
        reporter = chainer.Reporter()
        obs = {}
        with reporter.scope(obs):
            up.update()
        x_u, = batches['main']
        x_l, y_l = batches['labeled']
        x_u2, = batches['unlabeled2']
        tl = torch_step(d, g, od, og, (t(x_l), t(y_l.astype(np.int64)),
                                       t(x_u), t(x_u2)), torch_tape,
                        concat=a.fast)
        if a.eval_every and step % a.eval_every == 0:
            print(json.dumps({'step': step, 'test_errors_ours': our_errors(
                dis, parts), 'test_errors_torch': torch_errors(d, parts)}),
                flush=True)
        ours = tuple(float(chainer.as_array(obs[k])) for k in (
            'dis/loss_lab', 'dis/loss_unl', 'gen/loss'))
        fixture.append(tl)
        if a.dump_step == step:
            np.savez('/tmp/dump_step.npz', **{'ours_' + k: v for k, v in our_params(dis, gen).items()},
                     **{'torch_' + k: v for k, v in torch_params(d, g).items()})
        if step in a.report or step == a.steps:
            pd = {k: rel_diff(v, torch_params(d, g)[k])
                  for k, v in our_params(dis, gen).items()}
            row = {'step': step, 'ours': ours, 'torch': tl,
                   'loss_rel_diff': [abs(x - y) / (abs(y) + 1e-12)
                                     for x, y in zip(ours, tl)],
                   'param_rel_diff': pd}
            rows.append(row)
            print(json.dumps({'step': step, 'ours': [round(x, 6) for x in ours],
                              'torch': [round(x, 6) for x in tl],
                              'param_rel_diff_max': max(pd.values()),
                              'worst': max(pd, key=pd.get)}), flush=True)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(rows, f, indent=1)
    if a.fixture:
        with open(a.fixture, 'w') as f:
            json.dump({'options': options, 'tape_seed': 7,
                       'torch': torch.__version__,
                       'losses': [[round(x, 7) for x in r] for r in fixture]},
                      f, indent=1)


if __name__ == '__main__':
    main()
