"""Units and long names of everything in a collapse-sweep file.

Files written by the engine carry `units` and `long_name` on every dataset
(src/storage/units.cpp writes them); this table is the same catalogue for
files written before they did, and for tools/make_synthetic_output.py.
tests/storage/check_xarray.py checks that the engine's attributes equal it.

Units: "steps" (integrator steps), "lr-steps" (continuous time t = lr * step),
"1/lr-steps" (rates in that time), "1" (ratios, fractions, counts, indices,
embedding coordinates).
"""

STEPS, TIME, RATE, ONE = 'steps', 'lr-steps', '1/lr-steps', '1'

# name -> (units, long_name); names are unique across the groups except where noted
DATASETS = {
    # /results
    'status': (ONE, 'status: -1 not run, 0 stable, 1 collapsed, 2 diverged'),
    'collapse_step': (STEPS, 'first step with the collapse metric below the threshold'),
    'collapse_time': (TIME, 'collapse time lr * step, interpolated in log distance'),
    'final_step': (STEPS, 'step at which the trajectory stopped'),
    'peak_accuracy': (ONE, 'highest accuracy over the run'),
    'peak_accuracy_step': (STEPS, 'step of the highest accuracy'),
    'final_accuracy': (ONE, 'accuracy at the final step'),
    'final_loss': (ONE, 'loss at the final step'),
    'final_label_distance': (ONE, 'label distance D/D_ref at the final step'),
    'final_projected_distance': (ONE, 'projected distance at the final step'),
    'slow_rate': (RATE, 'slow-phase decay rate of the label distance (fit)'),
    'slow_rate_first_step': (STEPS, 'first step of the slow_rate fit window'),
    'slow_rate_last_step': (STEPS, 'last step of the slow_rate fit window'),
    'initial_label_distance': (ONE, 'initial label distance D(0)/D_ref'),
    'reference_distance': (ONE, 'reference class separation D_ref (embedding units)'),
    'theory_slow_rate': (RATE, 'theory: asymptotic decay rate of the label distance'),
    'theory_window_rate': (RATE, 'theory: slow_rate fit applied to the exact trace, same window'),
    'critical_lr': (ONE, 'theory: gd stability limit 2/lambda_max(L_G/M)'),
    'selfconsistency_residual': (ONE, 'relative residual of the head + stop-gradient fixed point'),
    # /traces
    'label_distance': (ONE, 'label distance D/D_ref'),
    'projected_distance': (ONE, 'projected label distance min ||W(y_k - y_l)||/D_ref'),
    'accuracy': (ONE, 'accuracy (fraction of samples nearest their label)'),
    'loss': (ONE, 'loss L'),
    'theory_label_distance': (ONE, 'theory: exact label distance D/D_ref (plain model)'),
    # /final and /initial
    'label_embeddings': (ONE, 'label embeddings y_k'),
    'head': (ONE, 'head W = B A'),
    'sample_embeddings': (ONE, 'sample embeddings x_i'),
    'head_A': (ONE, 'initial head factor A'),
    'head_B': (ONE, 'initial head factor B'),
    'encoder': (ONE, 'initial encoder E (teacher-student)'),
    'inputs': (ONE, 'inputs u_i (teacher-student)'),
    'teacher': (ONE, 'teacher T (teacher-student)'),
    # /graph
    'primary_label': (ONE, 'primary label c_i of each sample'),
    'second_label': (ONE, 'label a sample gets when frustrated'),
    'frustration_order': (ONE, 'frustration order: permutation of the samples'),
    # /boundaries/<axis> (collapse-sweep refine)
    'estimate': (ONE, 'boundary: where the quantity crosses the level'),
    'bracket_low': (ONE, 'boundary: lower end of the final bracket'),
    'bracket_high': (ONE, 'boundary: upper end of the final bracket'),
    'standard_error': (ONE, 'boundary: bootstrap standard error over seeds'),
    'probes_run': (ONE, 'boundary: probe points run'),
    'probe_value': (ONE, 'boundary: probe positions in the order run'),
    'probe_quantity': (ONE, 'boundary: the quantity at each probe'),
    'crossings': (ONE, 'boundary: number of crossings of the level along the axis in the grid'),
    'crossing_low': (ONE, "boundary: lower end of each crossing's bracket (0: the refined one)"),
    'crossing_high': (ONE, "boundary: upper end of each crossing's bracket (0: the refined one)"),
}

SCALES = {
    'frustration': (ONE, 'frustration f'),
    'head_dim': (ONE, 'head width h'),
    'lr': (ONE, 'learning rate lr (rk4: dt)'),
    'stop_gradient': (ONE, 'stop-gradient'),
    'init_scale': (ONE, 'initial scale s'),
    'seed': (ONE, 'seed index'),
    'step': (STEPS, 'record step'),
    'class': (ONE, 'class k'),
    'component': (ONE, 'embedding component'),
    'component_out': (ONE, 'head row (output component)'),
    'component_in': (ONE, 'head column (input component)'),
    'sample': (ONE, 'sample i'),
    'head_unit': (ONE, 'head bottleneck unit'),
    'input': (ONE, 'input component'),
    'probe': (ONE, 'probe slot'),
    'crossing': (ONE, 'crossing slot'),
}


def describe(name):
    """(units, long_name) of a dataset or coordinate, or None when unknown."""
    return DATASETS.get(name) or SCALES.get(name)
