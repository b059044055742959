"""Helpers shared by the plotting tools: errors, labels and value formatting."""
import matplotlib.pyplot as plt
import numpy as np

LABELS = {'frustration': 'frustration f', 'lr': 'learning rate lr', 'head_dim': 'head width h',
          'stop_gradient': 'stop-gradient', 'init_scale': 'init scale s', 'seed': 'seed'}
SYMBOLS = {'frustration': 'f', 'lr': 'lr', 'head_dim': 'h', 'stop_gradient': 'sg', 'init_scale': 's',
           'seed': 'seed'}


class UsageError(Exception):
    pass


class OutputError(Exception):
    pass


def save(fig, path):
    try:
        fig.savefig(path, dpi=110)
    except OSError as e:
        raise OutputError(f'cannot write {path}: {e.strerror or e}') from None
    finally:
        plt.close(fig)


def fmt(value):
    if isinstance(value, (bool, np.bool_)):
        return 'on' if value else 'off'
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f'{float(value):.4g}'


def setting(name, value):
    if name == 'stop_gradient':
        return f'stop-gradient {fmt(value)}'
    return f'{SYMBOLS.get(name, name)} = {fmt(value)}'


def parse_assignments(text, option):
    """'a=1,b=2' -> {'a': '1', 'b': '2'}."""
    out = {}
    for part in text.split(','):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition('=')
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f'{option}: expected NAME=VALUE, got {part!r}')
        out[key.strip()] = value.strip()
    return out


def axis_value(sweep, name, raw):
    """The axis value of `name` that `raw` (text) names; error if none matches."""
    if name not in sweep.axes:
        raise UsageError(f'{name!r} is not an axis of {sweep.path}; axes: {", ".join(sweep.axes)}')
    try:
        index = sweep._index({name: raw})[name]
    except ValueError as e:
        raise UsageError(str(e)) from None
    return sweep.axes[name][index]
