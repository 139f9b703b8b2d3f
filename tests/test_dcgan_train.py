"""train_dcgan.py end to end on a tiny generated folder: the four variants,
exact resume, and one-line errors."""
import json
import os

import numpy
import pytest
from PIL import Image

import train_dcgan
from test_animeface_data import TINY, faces  # noqa: F401 (fixture)



def train(faces, out, *extra):
    train_dcgan.main(['--data', faces, '--out', str(out)] + TINY +
                     [str(e) for e in extra])


def read_log(out):
    with open(os.path.join(str(out), 'log')) as f:
        return json.load(f)


@pytest.mark.parametrize('variant', [
    [], ['--feature-matching', 'paper', '--fm-weight', '2'],
    ['--minibatch-discrimination', '--mbd-kernels', '6', '--mbd-dim', '3'],
    ['--minibatch-discrimination', '--feature-matching', 'blog']])
def test_each_variant_trains_and_writes_its_grid(faces, tmp_path, variant):
    train(faces, tmp_path, '--iterations', 3, '--grid-interval', 2,
          *variant)
    names = set(os.listdir(str(tmp_path)))
    assert {'samples_00000002.png', 'samples_00000003.png',
            'samples_latest.png', 'snapshot_iter_3', 'options.json',
            'result.json', 'log'} <= names
    with Image.open(str(tmp_path / 'samples_latest.png')) as im:
        assert im.size == (320, 320) and im.mode == 'RGB'
    log = read_log(tmp_path)
    assert [e['iteration'] for e in log] == [1, 2, 3]
    for e in log:
        assert numpy.isfinite(e['gen/loss']) and numpy.isfinite(e['dis/loss'])
        if '--feature-matching' in variant:
            assert numpy.isfinite(e['gen/loss_fm'])
        if 'paper' in variant:  # the paper's FM replaces the GAN loss
            assert e['gen/loss'] == pytest.approx(2 * e['gen/loss_fm'])
    options = json.load(open(str(tmp_path / 'options.json')))
    assert options['minibatch_discrimination'] == \
        ('--minibatch-discrimination' in variant)
    assert json.load(open(str(tmp_path / 'result.json')))['iterations'] == 3


def test_resume_continues_exactly(faces, tmp_path):
    """4 iterations in one go == 2 iterations, then resume for 2 more: same
    parameters, optimizer state and data order (the folder has 10 images,
    batch 4, so an epoch boundary and a reshuffle fall in the second half)."""
    flags = ['--iterations', 4, '--snapshot-interval', 2,
             '--minibatch-discrimination']
    train(faces, tmp_path / 'straight', *flags)
    train(faces, tmp_path / 'first', '--iterations', 2,
          '--minibatch-discrimination')
    train(faces, tmp_path / 'second', *flags, '--resume',
          tmp_path / 'first' / 'snapshot_iter_2')
    # a finished run resumed with auto is reported, not trained again;
    # an interrupted one (no result.json) continues the same way
    train(faces, tmp_path / 'first', *flags, '--resume', 'auto')
    assert not (tmp_path / 'first' / 'snapshot_iter_4').exists()
    os.remove(str(tmp_path / 'first' / 'result.json'))
    train(faces, tmp_path / 'first', *flags, '--resume', 'auto')
    c = numpy.load(str(tmp_path / 'first' / 'snapshot_iter_4'))
    a = numpy.load(str(tmp_path / 'straight' / 'snapshot_iter_4'))
    b = numpy.load(str(tmp_path / 'second' / 'snapshot_iter_4'))
    keys = [k for k in a.files if k.startswith('updater/')]
    assert any('optimizer:dis' in k for k in keys)
    assert any('iterator:main/order' in k for k in keys)
    for k in keys:
        numpy.testing.assert_array_equal(a[k], b[k], err_msg=k)
        numpy.testing.assert_array_equal(a[k], c[k], err_msg=k)
    # the resumed folder records the process that resumed it, from
    # iteration 2 (the snapshot came from another folder)
    second = open(str(tmp_path / 'second' / 'machines.jsonl')).readlines()
    assert [json.loads(l)['iteration'] for l in second] == [2]
    done = json.load(open(str(tmp_path / 'second' / 'result.json')))
    assert done['machine']['numpy'] == numpy.__version__


def error_of(capsys, argv):
    with pytest.raises(SystemExit) as e:
        train_dcgan.main(argv)
    assert e.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1]


def test_errors_are_one_line(faces, tmp_path, capsys):
    out = ['--out', str(tmp_path / 'x')]
    assert 'does not exist' in error_of(
        capsys, ['--data', str(tmp_path / 'nope')] + out)
    (tmp_path / 'empty').mkdir()
    assert 'is empty' in error_of(
        capsys, ['--data', str(tmp_path / 'empty')] + out)
    assert 'invalid choice' in error_of(
        capsys, ['--data', faces, '--feature-matching', 'both'] + out)
    assert '--size 48: the dcgan network takes 32, 64, 96 px' in error_of(
        capsys, ['--data', faces, '--size', '48'] + out)
    assert 'divisible by 16' in error_of(
        capsys, ['--data', faces, '--net', 'blog', '--size', '40'] + out)
    assert 'divisible' in error_of(
        capsys, ['--data', faces, '--size', '64', '--ch', '30'] + out)
    assert 'device' in error_of(
        capsys, ['--data', faces, '--device', '@nothing'] + out)
    assert '--dis-dropout must be in [0, 1), got 1.0' in error_of(
        capsys, ['--data', faces, '--dis-dropout', '1'] + out)
    assert 'the blog network has no dropout' in error_of(
        capsys, ['--data', faces, '--net', 'blog', '--size', '32',
                 '--dis-dropout', '0.5'] + out)
    assert '--gen-steps must be at least 1' in error_of(
        capsys, ['--data', faces, '--gen-steps', '0'] + out)


def test_snapshot_from_another_model_is_refused(faces, tmp_path, capsys):
    train(faces, tmp_path / 'a', '--iterations', 1)
    msg = error_of(capsys, ['--data', faces, '--out', str(tmp_path / 'b'),
                            '--size', '32', '--ch', '32', '--iterations', '2',
                            '--resume', str(tmp_path / 'a' / 'snapshot_iter_1')])
    assert 'does not match this model' in msg
    assert '--ch 16 (asked: 32)' in msg


def test_presets_set_defaults_flags_override_and_options_record(tmp_path):
    from animeface import build as abuild
    from animeface import options as aopt
    blog = aopt.parser().parse(['--data', 'x', '--preset', 'blog',
                                        '--batchsize', '16'])
    assert (blog.net, blog.size, blog.z_dim, blog.wscale, blog.input_noise,
            blog.lr, blog.beta1, blog.grad_clip, blog.update_order,
            blog.sampling, blog.epoch_updates, blog.mbd_kernels,
            blog.mbd_form) == (
        'blog', 96, 50, 0.001, 0.3, 1e-4, 0.5, 0.0, 'd-then-g',
        'replacement', 500, 50, 'blog')
    assert blog.batchsize == 16  # the flag wins over the preset's 128
    plain = aopt.parser().parse(['--data', 'x'])
    assert (plain.preset, plain.net, plain.size, plain.batchsize,
            plain.mbd_kernels, plain.mbd_form, plain.device) == (
        'dcgan', 'dcgan', 64, 64, 100, 'authors', '-1')
    assert abuild.total_iterations(blog, 10 ** 6) == 375 * 500


def test_blog_preset_trains_and_records_resolved_options(faces, tmp_path):
    out = tmp_path / 'blog'
    train_dcgan.main(['--data', faces, '--out', str(out), '--preset', 'blog',
                      '--size', '32', '--ch', '16', '--batchsize', '4',
                      '--iterations', '3', '--epoch-updates', '2',
                      '--minibatch-discrimination', '--log-interval', '1'])
    options = json.load(open(str(out / 'options.json')))
    assert options['preset'] == 'blog' and options['net'] == 'blog'
    assert options['grad_clip'] == 0.0 and options['z_dim'] == 50
    assert options['update_order'] == 'd-then-g'
    assert options['mbd_form'] == 'blog' and options['mbd_kernels'] == 50
    log = read_log(out)
    # an epoch is 2 updates
    assert [e['epoch'] for e in log] == [0, 1, 1]
    snap = numpy.load(str(out / 'snapshot_iter_3'))
    assert 'updater/model:dis/mbd/T' in snap.files
    assert 'updater/model:gen/ups/0/W' in snap.files


def test_mbd_init_runs_once_and_not_again_on_resume(faces, tmp_path,
                                                    monkeypatch):
    from gan import links
    calls = []
    real = links.MinibatchDiscrimination._data_dependent_init

    def spy(self, x):
        calls.append(int(x.shape[0]))
        return real(self, x)
    monkeypatch.setattr(links.MinibatchDiscrimination,
                        '_data_dependent_init', spy)
    flags = ['--minibatch-discrimination', '--snapshot-interval', '2']
    train(faces, tmp_path, '--iterations', 2, *flags)
    assert calls == [4]
    snap = numpy.load(str(tmp_path / 'snapshot_iter_2'))
    assert snap['updater/model:dis/mbd/initialized']
    os.remove(str(tmp_path / 'result.json'))
    train(faces, tmp_path, '--iterations', 4, *flags, '--resume', 'auto')
    assert calls == [4]  # no second init
    assert os.path.exists(str(tmp_path / 'snapshot_iter_4'))


def test_small_images_are_counted_and_tiny_ones_refused(tmp_path, capsys):
    folder = tmp_path / 'small'
    folder.mkdir()
    for i, side in enumerate([20, 24, 40]):
        Image.new('RGB', (side, side), (i * 50, 0, 0)).save(
            str(folder / '{}.png'.format(i)))
    train_dcgan.main(['--data', str(folder), '--out', str(tmp_path / 'o')] +
                     TINY + ['--iterations', '1', '--batchsize', '2'])
    err = capsys.readouterr().err
    assert '2 of 3 images are smaller than 32 px and are upscaled' in err
    assert 'finished: 1 iterations' in err and '{' not in err.splitlines()[-1]
    Image.new('RGB', (7, 30)).save(str(folder / 'tiny.png'))
    msg = error_of(capsys, ['--data', str(folder), '--out',
                            str(tmp_path / 'p')] + TINY)
    assert '1 images under' in msg and 'smaller than 8 px' in msg


def test_out_that_cannot_be_created_is_one_line(faces, tmp_path, capsys):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    msg = error_of(capsys, ['--data', faces, '--out', str(blocker / 'sub')] +
                   TINY)
    assert 'cannot create the folder' in msg
