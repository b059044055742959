// Where each tensor of one trajectory lives in its flat buffers. The
// integrators see the trainable state as one vector; the model reads it
// through these offsets. Shared by both backends.
#pragma once

#include <cstddef>

#include "collapse/model/hd.hpp"

namespace collapse {

struct TrajectoryDims {
    int classes = 0;   // K
    int samples = 0;   // N
    int dim = 0;       // d
    int head_dim = 0;  // h, 0 = no head
    int input_dim = 0; // p, 0 = embedding kind (x_i trained directly)

    COLLAPSE_HD bool teacher_student() const { return input_dim > 0; }
};

// Trainable state: [x_i (N*d) or encoder E (d*p)] [y_k (K*d)] [A (h*d)] [B (d*h)],
// all row-major. Gradients use the same layout.
struct StateLayout {
    std::size_t first_block = 0; // N*d (embedding) or d*p (encoder)
    std::size_t labels = 0, head_A = 0, head_B = 0, size = 0;

    COLLAPSE_HD explicit StateLayout(const TrajectoryDims& dims) {
        const std::size_t d = static_cast<std::size_t>(dims.dim);
        const std::size_t first = dims.teacher_student() ? d * static_cast<std::size_t>(dims.input_dim)
                                                         : d * static_cast<std::size_t>(dims.samples);
        labels = first;
        head_A = labels + static_cast<std::size_t>(dims.classes) * d;
        head_B = head_A + static_cast<std::size_t>(dims.head_dim) * d;
        size = head_B + d * static_cast<std::size_t>(dims.head_dim);
    }
};

// Scratch of one gradient evaluation, reused every step so the step loop
// never allocates. Transposed copies exist so that every matrix product runs
// along contiguous rows (row_kernels.hpp).
struct WorkspaceLayout {
    std::size_t head = 0;                 // W = B A, d*d
    std::size_t head_transposed = 0;      // W^T, d*d: W x_i is a sum of rows of W^T
    std::size_t head_gradient = 0;        // dL/dW, d*d
    std::size_t head_gradient_transposed = 0; // (dL/dW)^T, d*d: for dL/dB
    std::size_t head_B_gradient_transposed = 0; // (dL/dB)^T, h*d
    std::size_t projected_labels = 0;     // W y_k, K*d
    std::size_t label_sample_sum = 0;     // sum of x_i over samples paired with k, K*d, + 8 spare rows
    std::size_t label_projected_sum = 0;  // W times label_sample_sum, K*d
    std::size_t labels_transposed = 0;    // y^T, d rows of K padded to 16 (nearest-label search)
    std::size_t samples = 0;              // x_i = E u_i (teacher_student), N*d
    std::size_t sample_gradient = 0;      // dL/dx_i (teacher_student), N*d
    std::size_t encoder_transposed = 0;   // E^T (teacher_student), p*d
    std::size_t encoder_gradient_transposed = 0; // (dL/dE)^T (teacher_student), p*d
    std::size_t size = 0;

    COLLAPSE_HD explicit WorkspaceLayout(const TrajectoryDims& dims) {
        const std::size_t d = static_cast<std::size_t>(dims.dim);
        const std::size_t h = static_cast<std::size_t>(dims.head_dim);
        const std::size_t sample_block = static_cast<std::size_t>(dims.samples) * d;
        const std::size_t label_block = static_cast<std::size_t>(dims.classes) * d;
        const std::size_t padded_classes = (static_cast<std::size_t>(dims.classes) + 15) / 16 * 16;
        const std::size_t encoder_block = dims.teacher_student() ? static_cast<std::size_t>(dims.input_dim) * d : 0;
        std::size_t next = 0;
        head = next; next += d * d;
        head_transposed = next; next += d * d;
        head_gradient = next; next += d * d;
        head_gradient_transposed = next; next += d * d;
        head_B_gradient_transposed = next; next += h * d;
        projected_labels = next; next += label_block;
        label_sample_sum = next; next += label_block + 8 * d; // spare rows: rows::spare_label_rows
        label_projected_sum = next; next += label_block;
        labels_transposed = next; next += d * padded_classes;
        samples = next; next += dims.teacher_student() ? sample_block : 0;
        sample_gradient = next; next += dims.teacher_student() ? sample_block : 0;
        encoder_transposed = next; next += encoder_block;
        encoder_gradient_transposed = next; next += encoder_block;
        size = next;
    }
};

} // namespace collapse
