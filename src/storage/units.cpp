#include "units.hpp"

#include <map>

#include "collapse/storage/error.hpp"
#include "hdf5_util.hpp"

namespace collapse::storage::detail {

namespace {

const std::string steps = "steps", time = "lr-steps", rate = "1/lr-steps", one = "1";

const std::map<std::string, Description>& catalogue() {
    static const std::map<std::string, Description> table = {
        // /results
        {"status", {one, "status: -1 not run, 0 stable, 1 collapsed, 2 diverged"}},
        {"collapse_step", {steps, "first step with the collapse metric below the threshold"}},
        {"collapse_time", {time, "collapse time lr * step, interpolated in log distance"}},
        {"final_step", {steps, "step at which the trajectory stopped"}},
        {"peak_accuracy", {one, "highest accuracy over the run"}},
        {"peak_accuracy_step", {steps, "step of the highest accuracy"}},
        {"final_accuracy", {one, "accuracy at the final step"}},
        {"final_loss", {one, "loss at the final step"}},
        {"final_label_distance", {one, "label distance D/D_ref at the final step"}},
        {"final_projected_distance", {one, "projected distance at the final step"}},
        {"slow_rate", {rate, "slow-phase decay rate of the label distance (fit)"}},
        {"slow_rate_first_step", {steps, "first step of the slow_rate fit window"}},
        {"slow_rate_last_step", {steps, "last step of the slow_rate fit window"}},
        {"initial_label_distance", {one, "initial label distance D(0)/D_ref"}},
        {"reference_distance", {one, "reference class separation D_ref (embedding units)"}},
        {"theory_slow_rate", {rate, "theory: asymptotic decay rate of the label distance"}},
        {"theory_window_rate", {rate, "theory: slow_rate fit applied to the exact trace, same window"}},
        {"critical_lr", {one, "theory: gd stability limit 2/lambda_max(L_G/M)"}},
        {"selfconsistency_residual", {one, "relative residual of the head + stop-gradient fixed point"}},
        // /traces
        {"label_distance", {one, "label distance D/D_ref"}},
        {"projected_distance", {one, "projected label distance min ||W(y_k - y_l)||/D_ref"}},
        {"accuracy", {one, "accuracy (fraction of samples nearest their label)"}},
        {"loss", {one, "loss L"}},
        {"theory_label_distance", {one, "theory: exact label distance D/D_ref (plain model)"}},
        // /final and /initial
        {"label_embeddings", {one, "label embeddings y_k"}},
        {"head", {one, "head W = B A"}},
        {"sample_embeddings", {one, "sample embeddings x_i"}},
        {"head_A", {one, "initial head factor A"}},
        {"head_B", {one, "initial head factor B"}},
        {"encoder", {one, "initial encoder E (teacher-student)"}},
        {"inputs", {one, "inputs u_i (teacher-student)"}},
        {"teacher", {one, "teacher T (teacher-student)"}},
        // /graph
        {"primary_label", {one, "primary label c_i of each sample"}},
        {"second_label", {one, "label a sample gets when frustrated"}},
        {"frustration_order", {one, "frustration order: permutation of the samples"}},
        // /boundaries/<axis> (collapse-sweep refine)
        {"estimate", {one, "boundary: where the quantity crosses the level"}},
        {"bracket_low", {one, "boundary: lower end of the final bracket"}},
        {"bracket_high", {one, "boundary: upper end of the final bracket"}},
        {"standard_error", {one, "boundary: bootstrap standard error over seeds"}},
        {"probes_run", {one, "boundary: probe points run"}},
        {"probe_value", {one, "boundary: probe positions in the order run"}},
        {"probe_quantity", {one, "boundary: the quantity at each probe"}},
        {"crossings", {one, "boundary: number of crossings of the level along the axis in the grid"}},
        {"crossing_low", {one, "boundary: lower end of each crossing's bracket (0: the refined one)"}},
        {"crossing_high", {one, "boundary: upper end of each crossing's bracket (0: the refined one)"}},
        // dimension scales
        {"frustration", {one, "frustration f"}},
        {"head_dim", {one, "head width h"}},
        {"lr", {one, "learning rate lr (rk4: dt)"}},
        {"stop_gradient", {one, "stop-gradient"}},
        {"init_scale", {one, "initial scale s"}},
        {"seed", {one, "seed index"}},
        {"step", {steps, "record step"}},
        {"class", {one, "class k"}},
        {"component", {one, "embedding component"}},
        {"component_out", {one, "head row (output component)"}},
        {"component_in", {one, "head column (input component)"}},
        {"sample", {one, "sample i"}},
        {"head_unit", {one, "head bottleneck unit"}},
        {"input", {one, "input component"}},
        {"probe", {one, "probe slot"}},
        {"crossing", {one, "crossing slot"}},
    };
    return table;
}

} // namespace

Description describe(const std::string& name) {
    const auto& table = catalogue();
    const auto found = table.find(name);
    return found == table.end() ? Description{} : found->second;
}

void write_description(hid_t object, const std::string& name) {
    const Description description = describe(name);
    if (description.long_name.empty())
        throw StorageError("no units or long_name for dataset '" + name + "' (add it to src/storage/units.cpp)");
    write_string_attribute(object, "units", description.units);
    write_string_attribute(object, "long_name", description.long_name);
}

void write_group_settings(hid_t group, const SweepSpec& spec) {
    write_double_attribute(group, "collapse_threshold", spec.collapse.threshold);
    write_string_attribute(group, "collapse_metric", spec.collapse.metric == CollapseMetric::label ? "label" : "projected");
    write_int_attribute(group, "stop_on_collapse", spec.collapse.stop_on_collapse ? 1 : 0, H5T_STD_I8LE);
    write_int_attribute(group, "max_steps", spec.integrator.max_steps, H5T_STD_I64LE);
    write_int_attribute(group, "record_points", spec.output.record_points, H5T_STD_I32LE);
    write_string_attribute(group, "method", spec.integrator.method == IntegratorMethod::gd ? "gd" : "rk4");
    write_string_attribute(group, "precision", spec.integrator.precision == Precision::float32 ? "float32" : "float64");
    write_string_attribute(group, "kind", spec.shape.kind == ModelKind::embedding ? "embedding" : "teacher_student");
}

} // namespace collapse::storage::detail
