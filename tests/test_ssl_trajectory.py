"""The default semi-supervised update against a recorded trajectory of an
independent implementation.

tests/fixtures/ssl_torch_trajectory.json holds the losses of the first 12
iterations of a PyTorch implementation of the authors' model
(benchmarks/torch_parity.py, written apart from this project's code:
weight-normalized dense layers, Gaussian noise, batch-norm generator, the
virtual-class losses, batch-mean feature matching, the authors' Adam),
started from the parameters this project's build makes for those options
(seed 1, after the data-dependent init), fed the same batches and the same
noise and latents (one numpy generator, seeded 7, drawn in the order this
project draws).  On the machine that recorded it the two agreed to 1e-6
relative on every loss of those 12 steps.

The dynamics amplify rounding: two PyTorch copies whose parameters differ
by 1e-7 part by 1e-2 after about 20 steps, and an arithmetic reordering
(this project's fused pass) once took a ReLU across zero at step 3 and
parted by 1e-3 at step 5.  Another machine's BLAS reorders too, so the
check covers the first 3 steps, where no reordering seen moved a loss by
more than 2e-7; a tolerance of 1e-4 passes that and fails any change to
what a step computes (a loss term, a noise scale, a feature layer, the
init; Adam from the second step), which moves the losses by 1e-2 or more
(another seed: 10-50 %).  The recording command is in docs/RESULTS.md.
"""
import json
import os

import numpy
import pytest

import chainer

from mnist_ssl import build as sbuild
from mnist_ssl import options as sopt

FIXTURE = os.path.join(os.path.dirname(__file__), 'fixtures',
                       'ssl_torch_trajectory.json')
KEYS = ('dis/loss_lab', 'dis/loss_unl', 'gen/loss')


def trajectory(record, steps):
    o = sopt.resolve(record['options'])
    parts = sbuild.build(o)
    dis, gen, up = parts['dis'], parts['gen'], parts['updater']
    tape = numpy.random.default_rng(record['tape_seed'])
    for layer in dis.noise_layers():
        layer.noise_source = (lambda shape, xp, dtype:
                              tape.standard_normal(shape,
                                                   dtype=numpy.float32))
    gen.make_hidden = lambda n: tape.random((n, gen.z_dim),
                                            dtype=numpy.float32)
    out = []
    for _ in range(steps):
        obs = {}
        reporter = chainer.Reporter()
        with reporter.scope(obs):
            up.update()
        out.append([float(chainer.as_array(obs[k])) for k in KEYS])
    return numpy.array(out)


@pytest.fixture(scope='module')
def record():
    with open(FIXTURE) as f:
        return json.load(f)


STEPS = 3


def test_first_steps_follow_the_independent_trajectory(record):
    want = numpy.array(record['losses'][:STEPS])
    got = trajectory(record, STEPS)
    numpy.testing.assert_allclose(got, want, rtol=1e-4)


def test_the_check_fails_on_a_changed_step(record, monkeypatch):
    """A small change of the computation (the hidden noise 0.5 -> 0.45)
    takes the first losses outside the tolerance."""
    from gan import nets
    real = nets.MLPDiscriminator.__init__

    def init(self, *args, **kwargs):
        real(self, *args, **dict(kwargs, hidden_noise=0.45))
    monkeypatch.setattr(nets.MLPDiscriminator, '__init__', init)
    want = numpy.array(record['losses'][:STEPS])
    got = trajectory(record, STEPS)
    assert not numpy.allclose(got, want, rtol=1e-4)
