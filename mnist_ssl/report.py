"""What a semi-supervised run reports: minutes to given test errors, the
generator's collapse, the confusion matrix and its largest cells, the
labeled examples as a picture, and the lines printed at the end."""
import numpy

from gan import image
from mnist_ssl.options import N_CLASSES


# test errors whose first crossing time_to_error reports (result.json keys
# '0.02', ...)
ERROR_MILESTONES = (0.02, 0.015, 0.01)


def milestone_key(th):
    """The key of a threshold in time_to_error's dict ('0.02', ...)."""
    return '{:g}'.format(th)


def milestone_minutes(to_error):
    """A time_to_error dict as a list in ERROR_MILESTONES order (None: not
    reached, or not recorded)."""
    return [to_error.get(milestone_key(th)) for th in ERROR_MILESTONES]


def time_to_error(log, key, thresholds=ERROR_MILESTONES):
    """Minutes of training until ``key`` first drops to each threshold."""
    out = {}
    for th in thresholds:
        hit = [e for e in log if e.get(key) is not None and e[key] <= th]
        out[milestone_key(th)] = (round(hit[0]['elapsed_time'] / 60.0, 2)
                                  if hit else None)
    return out


def collapse_text(result):
    """'' when the run's generator never collapsed, else e.g. 'collapsed
    at epoch 9, recovered'."""
    epoch = result['generator_collapse_epoch']
    if epoch is None:
        return ''
    return 'collapsed at epoch {}, {}'.format(
        epoch, 'recovered' if result.get('generator_recovered')
        else 'not recovered')


def labeled_grid(path, x, y, index, n_classes=N_CLASSES, max_cols=20):
    """The labeled examples ``x[index]`` as a PNG, one row per class (its
    first ``max_cols`` examples in ``index`` order; white where a class
    has fewer).  Next to ``mnist_ssl.evaluate --errors-grid`` it shows
    which writing styles the labels cover."""
    index = numpy.asarray(index)
    per_class = [index[numpy.asarray(y)[index] == c] for c in range(n_classes)]
    cols = min(max_cols, max(1, max(len(i) for i in per_class)))
    return image.save_index_rows(path, x, per_class, cols)


def largest_confusions(counts, n=3):
    """The ``n`` largest off-diagonal cells of a confusion matrix (rows:
    true class), largest first, as (true, predicted, count); empty cells
    are left out.  With few labels a run's errors above the hard test
    digits that every run misses sit in a few such cells: a writing style
    of one digit given to another class."""
    k = len(counts)
    cells = [(-counts[i][j], i, j) for i in range(k) for j in range(k)
             if i != j and counts[i][j] > 0]
    return [(i, j, -c) for c, i, j in sorted(cells)[:n]]


def confusion_errors(counts):
    """The off-diagonal total of a confusion matrix: its errors."""
    return sum(map(sum, counts)) - sum(row[i] for i, row in enumerate(counts))


def confusion_text(counts):
    """The confusion matrix as printed at the end of a run, with each
    class's errors: whole classes taken by another one (the failure mode of
    runs with few labels) show as a large off-diagonal count."""
    k = len(counts)
    lines = ['confusion of the averaged D (rows: true class, columns: '
             'predicted)', 'true ' + ''.join('{:>6d}'.format(j)
                                            for j in range(k)) + '  errors']
    for i, row in enumerate(counts):
        lines.append('{:>4d} '.format(i) + ''.join(
            '{:>6d}'.format(c) for c in row) + '{:>8d}'.format(
                sum(row) - row[i]))
    top = largest_confusions(counts)
    if top:
        errors = confusion_errors(counts)
        lines.append('largest confusions (true as predicted): {} ({} of {} '
                     'errors)'.format(', '.join('{} as {}: {}'.format(*c)
                                                for c in top),
                                      sum(c[2] for c in top), errors))
    return '\n'.join(lines)


def peak_rss_mb():
    """Peak resident memory of this process so far, in MiB."""
    import resource
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.,
                 1)


def summary(result, out):
    """The lines a run prints at the end: the evaluation set's errors and,
    under --validation, the test set's."""
    collapse = collapse_text(result)
    text = ('{}: {} errors ({:.2%}) with the averaged discriminator, {} with '
            'the raw one; {:.0f} s of training;{} {}/result.json'.format(
                result['evaluated_on'], result['test_errors'],
                result['test_error'], result['test_errors_raw'],
                result['wall_seconds'],
                ' the generator {};'.format(collapse) if collapse else '',
                out))
    if 'test_set_errors' in result:  # --validation: the test set as well
        text += '\ntest: {} errors ({:.2%}), {} with the raw one'.format(
            result['test_set_errors'], result['test_set_error'],
            result['test_set_errors_raw'])
    return text
