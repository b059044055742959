"""Helpers the end-to-end Python tests share: the small test sweep, and
reading and comparing the gridded datasets of two output files bit for bit."""
import h5py
import numpy as np

# A small mixed grid: every status appears, with head and stop-gradient axes.
SMALL_SPEC = """
[model]
classes = 3
samples_per_class = 6
dim = 4

[integrator]
max_steps = {max_steps}

[grid]
frustration = [0.0, 0.2, 0.5]
head_dim = [0, 3]
lr = [0.2, 0.5]
stop_gradient = [false, true]
seeds = {seeds}
seed = 11

[collapse]
stop_on_collapse = {stop_on_collapse}

[output]
record_points = 40
save_initial = true
save_samples = true
"""

GRIDDED_GROUPS = ('results', 'traces', 'final', 'initial', 'graph')


def small_spec(max_steps=3000, seeds=4, stop_on_collapse='true'):
    return SMALL_SPEC.format(max_steps=max_steps, seeds=seeds, stop_on_collapse=stop_on_collapse)


def datasets(path):
    """Every gridded dataset of the file as numpy arrays, by name. SWMR
    reading, so files left by a killed writer open too."""
    out = {}
    with h5py.File(path, 'r', swmr=True) as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and name.split('/')[0] in GRIDDED_GROUPS:
                out[name] = obj[()]
        f.visititems(visit)
    return out


def assert_same_data(test, a, b):
    """Fails `test` unless files a and b hold the same gridded data, NaN for NaN."""
    da, db = datasets(a), datasets(b)
    test.assertEqual(sorted(da), sorted(db))
    for name in da:
        test.assertTrue(np.array_equal(da[name], db[name], equal_nan=da[name].dtype.kind == 'f'), name)
