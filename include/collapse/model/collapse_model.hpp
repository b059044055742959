// The right-hand side of SPEC §1: loss and gradient of one trajectory, for the
// plain model (h = 0, plain_model.hpp), the shared head with or without
// stop-gradient (head_model.hpp), and the linear teacher-student encoder.
// Integrators call `evaluate` and never look inside; both backends compile
// this header and run the same arithmetic (simd_pack.hpp says why the bits
// agree).
#pragma once

#include "collapse/model/hd.hpp"
#include "collapse/model/head_model.hpp"
#include "collapse/model/layout.hpp"
#include "collapse/model/model_problem.hpp"
#include "collapse/model/plain_model.hpp"
#include "collapse/model/row_kernels.hpp"

namespace collapse {

// `evaluate` for one compile-time dimension (8, 16, 32, 64), or Dim = 0 for
// any dimension. Both give the same bits for the same d; tests call the
// generic one directly to check it.
template <int Dim, class Real>
COLLAPSE_HD inline Evaluation<Real> evaluate_for_dim(const ModelProblem<Real>& problem, const Real* state, Real* gradient,
                                                     Real* workspace, bool with_accuracy) {
    const TrajectoryDims& dims = problem.dims;
    const StateLayout state_layout(dims);
    const WorkspaceLayout workspace_layout(dims);
    const int dim = dims.dim, input_dim = dims.input_dim;

    const Real* samples = state;
    Real* sample_gradient = gradient;
    if (dims.teacher_student()) {
        // x_i = E u_i = sum_j u_i[j] E^T[j,:]
        Real* encoded = workspace + workspace_layout.samples;
        Real* encoder_transposed = workspace + workspace_layout.encoder_transposed;
        rows::transpose(state, dim, input_dim, encoder_transposed);
        rows::rows_times_matrix<Real, Dim>(problem.inputs, input_dim, 1, encoder_transposed, input_dim, dims.samples, dim,
                                           encoded, false);
        samples = encoded;
        sample_gradient = workspace + workspace_layout.sample_gradient;
    }
    const Real* labels = state + state_layout.labels;
    Real* label_gradient = gradient + state_layout.labels;

    Evaluation<Real> result =
        dims.head_dim == 0
            ? detail::evaluate_plain<Real, Dim>(problem, samples, labels, sample_gradient, label_gradient,
                                                workspace + workspace_layout.label_sample_sum,
                                                workspace + workspace_layout.labels_transposed, with_accuracy)
            : detail::evaluate_head<Real, Dim>(problem, samples, labels, state + state_layout.head_A,
                                               state + state_layout.head_B, sample_gradient, label_gradient,
                                               gradient + state_layout.head_A, gradient + state_layout.head_B, workspace,
                                               with_accuracy);

    if (dims.teacher_student()) {
        // dL/dE = sum_i dL/dx_i u_i^T, built as its transpose: row j = sum_i u_i[j] dL/dx_i
        Real* encoder_gradient_transposed = workspace + workspace_layout.encoder_gradient_transposed;
        rows::rows_times_matrix<Real, Dim>(problem.inputs, 1, input_dim, sample_gradient, dims.samples, input_dim, dim,
                                           encoder_gradient_transposed, false);
        rows::transpose(encoder_gradient_transposed, input_dim, dim, gradient);
    }
    return result;
}

// Loss and full gradient at `state` (layout: StateLayout). `workspace` has
// WorkspaceLayout(dims).size entries; after the call it holds W and W y_k
// (for h > 0) and x_i (teacher_student), which the observables reuse.
template <class Real>
COLLAPSE_HD inline Evaluation<Real> evaluate(const ModelProblem<Real>& problem, const Real* state, Real* gradient,
                                             Real* workspace, bool with_accuracy) {
#if defined(__CUDA_ARCH__)
    // One thread per trajectory has no vector lanes to fill, and the five
    // inlined variants made a 7-30 KiB stack frame at 255 registers (ptxas);
    // the generic code gives the same bits.
    return evaluate_for_dim<0>(problem, state, gradient, workspace, with_accuracy);
#else
    switch (problem.dims.dim) {
    case 8: return evaluate_for_dim<8>(problem, state, gradient, workspace, with_accuracy);
    case 16: return evaluate_for_dim<16>(problem, state, gradient, workspace, with_accuracy);
    case 32: return evaluate_for_dim<32>(problem, state, gradient, workspace, with_accuracy);
    case 64: return evaluate_for_dim<64>(problem, state, gradient, workspace, with_accuracy);
    default: return evaluate_for_dim<0>(problem, state, gradient, workspace, with_accuracy);
    }
#endif
}

} // namespace collapse
