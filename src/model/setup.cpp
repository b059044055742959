#include "collapse/model/setup.hpp"

#include <cmath>
#include <numeric>

#include "collapse/model/observables.hpp"
#include "collapse/model/philox.hpp"
#include "collapse/model/small_matrix.hpp"

namespace collapse {
namespace {

std::vector<double> normals(const philox::StreamGenerator& generator, std::size_t count) {
    std::vector<double> values(count);
    for (std::size_t e = 0; e < count; ++e) values[e] = generator.normal(e);
    return values;
}

std::size_t product(int a, int b) { return static_cast<std::size_t>(a) * static_cast<std::size_t>(b); }

} // namespace

SeedDraws draw_seed(const ModelShape& shape, int max_head_dim, std::uint64_t master_seed, std::int64_t seed_index) {
    using philox::Stream;
    const auto seed = static_cast<std::uint64_t>(seed_index);
    const auto stream = [&](Stream which) { return philox::StreamGenerator(master_seed, seed, which); };
    const int samples = shape.samples(), classes = shape.classes, dim = shape.dim;
    SeedDraws draws;
    draws.label_normals = normals(stream(Stream::label_embeddings), product(classes, dim));
    draws.head_A_normals = normals(stream(Stream::head_A), product(max_head_dim, dim));
    draws.head_B_normals = normals(stream(Stream::head_B), product(max_head_dim, dim));
    draws.primary_label.resize(static_cast<std::size_t>(samples));
    if (shape.kind == ModelKind::teacher_student) {
        const int input_dim = shape.input_dim;
        draws.encoder_normals = normals(stream(Stream::encoder), product(dim, input_dim));
        draws.inputs = normals(stream(Stream::inputs), product(samples, input_dim));
        draws.teacher = normals(stream(Stream::teacher), product(classes, input_dim));
        // c_i = argmax_k (T u_i)_k, ties to the lower class.
        for (int i = 0; i < samples; ++i) {
            int best = 0;
            double best_score = -INFINITY;
            for (int k = 0; k < classes; ++k) {
                double score = 0;
                for (int j = 0; j < input_dim; ++j)
                    score += draws.teacher[product(k, input_dim) + j] * draws.inputs[product(i, input_dim) + j];
                if (score > best_score) {
                    best_score = score;
                    best = k;
                }
            }
            draws.primary_label[i] = best;
        }
    } else {
        draws.sample_normals = normals(stream(Stream::sample_embeddings), product(samples, dim));
        for (int i = 0; i < samples; ++i) draws.primary_label[i] = i % classes;
    }
    // Fisher-Yates driven by element index, so pi is a pure function of the seed.
    const philox::StreamGenerator order_stream = stream(Stream::frustration_order);
    draws.frustration_order.resize(static_cast<std::size_t>(samples));
    std::iota(draws.frustration_order.begin(), draws.frustration_order.end(), 0);
    for (int i = samples - 1; i > 0; --i) {
        const auto j = static_cast<int>(order_stream.below(static_cast<std::uint64_t>(i), static_cast<std::uint32_t>(i + 1)));
        std::swap(draws.frustration_order[i], draws.frustration_order[j]);
    }
    // c'_i uniform over the K-1 classes other than c_i.
    const philox::StreamGenerator second_stream = stream(Stream::second_label);
    draws.second_label.resize(static_cast<std::size_t>(samples));
    for (int i = 0; i < samples; ++i) {
        const int other = static_cast<int>(second_stream.below(static_cast<std::uint64_t>(i), static_cast<std::uint32_t>(classes - 1)));
        draws.second_label[i] = other < draws.primary_label[i] ? other : other + 1;
    }
    return draws;
}

int frustrated_count(double frustration, int samples) {
    return static_cast<int>(std::floor(frustration * samples + 0.5));
}

template <class Real>
double reference_distance(const TrajectoryDims& dims, const int* primary_label, const Real* samples, const Real* labels) {
    const int classes = dims.classes, dim = dims.dim;
    std::vector<double> component_mean(product(classes, dim));
    std::vector<double> component_size(static_cast<std::size_t>(classes), 1.0);
    for (std::size_t e = 0; e < component_mean.size(); ++e) component_mean[e] = static_cast<double>(labels[e]);
    for (int i = 0; i < dims.samples; ++i) {
        const int k = primary_label[i];
        component_size[k] += 1.0;
        for (int c = 0; c < dim; ++c) component_mean[product(k, dim) + c] += static_cast<double>(samples[product(i, dim) + c]);
    }
    for (int k = 0; k < classes; ++k)
        for (int c = 0; c < dim; ++c) component_mean[product(k, dim) + c] /= component_size[k];
    return minimum_pairwise_distance(component_mean.data(), classes, dim);
}

template <class Real>
ModelProblem<Real> TrajectorySetup<Real>::problem() const {
    ModelProblem<Real> problem;
    problem.dims = dims;
    problem.stop_gradient = stop_gradient;
    problem.inverse_pair_count = Real(1) / static_cast<Real>(pair_count);
    problem.primary_label = primary_label.data();
    problem.second_label = second_label.data();
    problem.label_degree = label_degree.data();
    problem.inputs = inputs.empty() ? nullptr : inputs.data();
    return problem;
}

template <class Real>
TrajectorySetup<Real> make_trajectory(const ModelShape& shape, const TrajectoryParams& params, const SeedDraws& draws) {
    TrajectorySetup<Real> setup;
    const bool teacher_student = shape.kind == ModelKind::teacher_student;
    setup.dims = TrajectoryDims{shape.classes, shape.samples(), shape.dim, params.head_dim,
                                teacher_student ? shape.input_dim : 0};
    setup.stop_gradient = params.stop_gradient;
    const int samples = shape.samples(), classes = shape.classes, dim = shape.dim, head_dim = params.head_dim;

    setup.primary_label = draws.primary_label;
    setup.second_label.assign(static_cast<std::size_t>(samples), -1);
    const int frustrated = frustrated_count(params.frustration, samples);
    for (int r = 0; r < frustrated; ++r) {
        const int i = draws.frustration_order[r];
        setup.second_label[i] = draws.second_label[i];
    }
    setup.pair_count = samples + frustrated;
    setup.label_degree.assign(static_cast<std::size_t>(classes), Real(0));
    for (int i = 0; i < samples; ++i) {
        setup.label_degree[setup.primary_label[i]] += 1;
        if (setup.second_label[i] >= 0) setup.label_degree[setup.second_label[i]] += 1;
    }

    const StateLayout layout(setup.dims);
    setup.initial_state.assign(layout.size, Real(0));
    Real* state = setup.initial_state.data();
    const double scale = params.init_scale;
    if (teacher_student) {
        const double encoder_scale = scale / std::sqrt(static_cast<double>(shape.input_dim));
        for (std::size_t e = 0; e < draws.encoder_normals.size(); ++e)
            state[e] = static_cast<Real>(encoder_scale * draws.encoder_normals[e]);
        setup.inputs.assign(draws.inputs.begin(), draws.inputs.end());
    } else {
        for (std::size_t e = 0; e < draws.sample_normals.size(); ++e)
            state[e] = static_cast<Real>(scale * draws.sample_normals[e]);
    }
    for (std::size_t e = 0; e < draws.label_normals.size(); ++e)
        state[layout.labels + e] = static_cast<Real>(scale * draws.label_normals[e]);
    // The head at width h is the leading part of the h_max draw, so widths share randomness.
    const double a_scale = 1.0 / std::sqrt(static_cast<double>(dim));
    const double b_scale = head_dim > 0 ? 1.0 / std::sqrt(static_cast<double>(head_dim)) : 0.0;
    for (int r = 0; r < head_dim; ++r)
        for (int c = 0; c < dim; ++c) {
            state[layout.head_A + product(r, dim) + c] = static_cast<Real>(a_scale * draws.head_A_normals[product(r, dim) + c]);
            state[layout.head_B + product(c, head_dim) + r] = static_cast<Real>(b_scale * draws.head_B_normals[product(r, dim) + c]);
        }

    std::vector<Real> encoded;
    const Real* samples_at_start = state;
    if (teacher_student) {
        encoded.resize(product(samples, dim));
        for (int i = 0; i < samples; ++i)
            small_matrix::multiply(state, setup.inputs.data() + product(i, shape.input_dim), encoded.data() + product(i, dim), dim,
                                   shape.input_dim);
        samples_at_start = encoded.data();
    }
    setup.reference_distance =
        reference_distance(setup.dims, setup.primary_label.data(), samples_at_start, state + layout.labels);
    return setup;
}

SeedData make_seed_data(const SweepSpec& spec, std::int64_t seed_index) {
    const ModelShape& shape = spec.shape;
    const SeedDraws draws = draw_seed(shape, spec.max_head_dim(), spec.master_seed, seed_index);
    TrajectoryParams params = spec.defaults;
    params.head_dim = 0;
    params.seed_index = seed_index;
    const TrajectorySetup<double> setup = make_trajectory<double>(shape, params, draws);
    const StateLayout layout(setup.dims);
    const auto& state = setup.initial_state;

    SeedData data;
    data.seed_index = seed_index;
    data.initial_label_embeddings.assign(state.begin() + static_cast<long>(layout.labels),
                                         state.begin() + static_cast<long>(layout.head_A));
    if (shape.kind == ModelKind::teacher_student) {
        data.encoder.assign(state.begin(), state.begin() + static_cast<long>(layout.labels));
        data.inputs = draws.inputs;
        data.teacher = draws.teacher;
    } else {
        data.initial_sample_embeddings.assign(state.begin(), state.begin() + static_cast<long>(layout.labels));
    }
    data.primary_label.assign(draws.primary_label.begin(), draws.primary_label.end());
    data.second_label.assign(draws.second_label.begin(), draws.second_label.end());
    data.frustration_order.assign(draws.frustration_order.begin(), draws.frustration_order.end());
    return data;
}

template struct TrajectorySetup<float>;
template struct TrajectorySetup<double>;
template TrajectorySetup<float> make_trajectory<float>(const ModelShape&, const TrajectoryParams&, const SeedDraws&);
template TrajectorySetup<double> make_trajectory<double>(const ModelShape&, const TrajectoryParams&, const SeedDraws&);
template double reference_distance<float>(const TrajectoryDims&, const int*, const float*, const float*);
template double reference_distance<double>(const TrajectoryDims&, const int*, const double*, const double*);

} // namespace collapse
