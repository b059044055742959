// The full trainable state of one trajectory at chosen steps, as written by
// `collapse-sweep replay --state-at` into /states of a closed output file
// (docs/cli.md, "replay").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace collapse::storage {

struct StateSnapshots {
    std::vector<std::int64_t> requested_step; // [S], what the user asked for
    std::vector<std::int64_t> step;           // [S], the step the state is at (earlier when the run stopped first)
    int classes = 0, samples = 0, dim = 0, head_dim = 0, input_dim = 0; // K, N, d, h, p (p = 0: embedding kind)
    // [S][state] in the trainer's layout: x_i [N][d] or E [d][p], y_k [K][d], A [h][d], B [d][h].
    std::vector<double> states;
};

// Adds /states to the closed file `path`: step and requested_step [S], and
// sample_embeddings [S,N,d] or encoder [S,d,p], label_embeddings [S,K,d], and
// with h > 0 head_A [S,h,d] and head_B [S,d,h]. Throws StorageError.
void write_state_snapshots(const std::string& path, const StateSnapshots& snapshots);

} // namespace collapse::storage
