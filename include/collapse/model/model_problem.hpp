// The fixed data of one trajectory's right-hand side and what one evaluation
// returns; shared by the plain and head variants and by both backends.
#pragma once

#include "collapse/model/layout.hpp"

namespace collapse {

// The pair set D is stored per sample: (i, primary_label[i]) always,
// (i, second_label[i]) when second_label[i] >= 0.
template <class Real>
struct ModelProblem {
    TrajectoryDims dims;
    bool stop_gradient = false;   // ignored when h = 0: the gradients coincide
    Real inverse_pair_count = 0;  // 1 / M
    const int* primary_label = nullptr; // [N]
    const int* second_label = nullptr;  // [N], -1 = not frustrated
    const Real* label_degree = nullptr; // |S_k| [K], the number of pairs with label k
    const Real* inputs = nullptr;       // u_i [N][p], teacher_student only
};

// What one evaluation yields besides the gradient.
template <class Real>
struct Evaluation {
    Real loss = 0;
    int correct = 0; // samples whose nearest label to W x_i is c_i (when asked for)
};

} // namespace collapse
