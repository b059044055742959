// Shared by the core tests that check the theory columns.
#pragma once

#include <cstdint>
#include <numeric>
#include <vector>

#include "collapse/backend/backend.hpp"
#include "collapse/results.hpp"
#include "collapse/sweep/grid.hpp"
#include "collapse/theory/diagnostics.hpp"

namespace collapse::testing {

// Every trajectory of the grid in one CPU batch, then analysed on the host:
// what the scheduler does with every batch.
inline BatchOutput run_analysed(const SweepSpec& spec, const Grid& grid) {
    std::vector<std::int64_t> flat(static_cast<std::size_t>(grid.size()));
    std::iota(flat.begin(), flat.end(), 0);
    BatchOutput out;
    make_cpu_backend(2)->run_batch(spec, grid, flat, out);
    theory::analyse_batch(spec, grid, out, 2);
    return out;
}

} // namespace collapse::testing
