"""Helpers shared by the figures: errors, labels, value formatting, the settings line of a title."""
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
        return f'stop-gradient {fmt(bool(value))}'
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
    """The axis value of `name` that `raw` (text) names; UsageError if none matches."""
    if name not in sweep.grid_dims:
        raise UsageError(f'{name!r} is not an axis of {sweep.path}; axes: {", ".join(sweep.grid_dims)}')
    try:
        index = sweep.index({name: raw})[name]
    except ValueError as e:
        raise UsageError(str(e)) from None
    return sweep.axes[name][index]


def varied_axes(sweep):
    """Grid axes (seed excluded) with more than one value: the ones a figure can draw."""
    return [n for n, v in sweep.axes.items() if n != 'seed' and len(v) > 1]


def fixed_settings(sweep):
    """The settings every trajectory of the file shares, as short text parts for a title:
    the model (kind, K, n, d, p), the integrator, and each trajectory parameter that is not
    varied (a length-1 axis or a [model]/[grid] scalar). stop-gradient is named only where
    it matters (some head > 0)."""
    a = sweep.attrs
    kind = sweep.kind
    model = f'{kind}: K = {a.get("classes", "?")}, n = {a.get("samples_per_class", "?")}, d = {a.get("dim", "?")}'
    if kind == 'teacher_student':
        model += f', p = {a.get("input_dim", "?")}'
    parts = [model, f'{a.get("method", "gd")} {a.get("precision", "")}'.strip() + f', {sweep.max_steps} steps']
    varied = set(varied_axes(sweep))
    heads = sweep.axes['head_dim'] if 'head_dim' in sweep.axes else np.array([sweep.parameter('head_dim') or 0])
    for name in ('frustration', 'head_dim', 'lr', 'init_scale', 'stop_gradient'):
        if name in varied:
            continue
        value = sweep.axes[name][0] if name in sweep.axes else sweep.parameter(name)
        if value is None:
            continue
        if name == 'stop_gradient' and not np.any(np.asarray(heads) > 0):
            continue  # without a head stop-gradient changes nothing
        if name == 'init_scale' and name not in sweep.axes and float(value) == 1.0:
            continue
        parts.append(setting(name, value))
    return parts
