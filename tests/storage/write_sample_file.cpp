// Writes the sample files the Python-side checks read (run_conformance.sh):
// a complete float64 embedding sweep, an unfinished float32 teacher-student
// sweep, three shards and their merged virtual file, and a file whose writer
// was SIGKILLed. Also writes expected.json: each file's axes and record steps
// taken from the spec, not from the files, for check_xarray.py to compare.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "collapse/record_steps.hpp"
#include "collapse/storage/merge.hpp"
#include "synthetic.hpp"

using namespace collapse;
using namespace collapse::storage;
using namespace collapse::storage::testing;

namespace {

std::string json_numbers(const std::vector<double>& values) {
    std::string text = "[";
    char number[32];
    for (std::size_t i = 0; i < values.size(); ++i) {
        std::snprintf(number, sizeof number, "%.17g", values[i]);
        text += (i == 0 ? "" : ", ") + std::string(number);
    }
    return text + "]";
}

std::string json_entry(const std::string& file, const SweepSpec& spec, const std::string& status_note) {
    std::string text = "  \"" + file + "\": {\"axes\": [";
    for (std::size_t a = 0; a < spec.axes.size(); ++a)
        text += (a == 0 ? "" : ", ") + std::string("[\"") + spec.axes[a].name + "\", " +
                json_numbers(spec.axes[a].values) + "]";
    std::vector<double> seeds, steps;
    for (std::int64_t s = 0; s < spec.seeds; ++s) seeds.push_back(static_cast<double>(s));
    for (std::int64_t step : record_steps(spec.integrator.max_steps, spec.output.record_points))
        steps.push_back(static_cast<double>(step));
    text += std::string(spec.axes.empty() ? "" : ", ") + "[\"seed\", " + json_numbers(seeds) + "]], \"steps\": " +
            json_numbers(steps) + ", \"status\": \"" + status_note + "\"}";
    return text;
}

SpecOptions conformance_options() {
    SpecOptions options;
    options.axes = {real_axis("frustration", {0.0, 0.05, 0.1}), integer_axis("head_dim", {0, 2}),
                    real_axis("lr", {0.1, 1.0}, true), boolean_axis("stop_gradient")};
    options.seeds = 3;
    return options;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: write_sample_file OUT_DIR\n";
        return 2;
    }
    const std::string directory = argv[1];
    try {
        std::vector<std::string> entries;

        const SweepSpec full = make_spec(conformance_options());
        const Grid full_grid(full);
        auto writer = ResultWriter::create(directory + "/full_embedding.h5", full, full_grid, test_provenance(), {}, true);
        write_in_batches(*writer, full, shuffled_indices(full_grid.size(), 1), 10);
        for (std::int64_t seed = 0; seed < full.seeds; ++seed) writer->write_seed_data(make_seed_data(full, seed));
        writer->close();
        entries.push_back(json_entry("full_embedding.h5", full, "complete"));

        SpecOptions teacher_options = conformance_options();
        teacher_options.kind = ModelKind::teacher_student;
        teacher_options.precision = Precision::float32;
        teacher_options.save_samples = false;
        const SweepSpec teacher = make_spec(teacher_options);
        const Grid teacher_grid(teacher);
        writer = ResultWriter::create(directory + "/partial_teacher.h5", teacher, teacher_grid, test_provenance(), {}, true);
        std::vector<std::int64_t> half = shuffled_indices(teacher_grid.size(), 2);
        half.resize(half.size() / 2);
        write_in_batches(*writer, teacher, half, 7);
        writer->write_seed_data(make_seed_data(teacher, 0));
        writer->close();
        entries.push_back(json_entry("partial_teacher.h5", teacher, "partial"));

        std::vector<std::string> shards;
        const std::vector<std::int64_t> cuts = {0, 20, 51, full_grid.size()};
        for (std::int64_t i = 0; i < 3; ++i) {
            const std::string name = "shard" + std::to_string(i) + ".h5";
            const ShardRange range{i, 3, cuts[static_cast<std::size_t>(i)], cuts[static_cast<std::size_t>(i) + 1]};
            writer = ResultWriter::create(directory + "/" + name, full, full_grid, test_provenance(), range, true);
            std::vector<std::int64_t> owned;
            for (std::int64_t flat = range.begin; flat < range.end; ++flat) owned.push_back(flat);
            write_in_batches(*writer, full, owned, 9);
            for (std::int64_t seed = 0; seed < full.seeds; ++seed) writer->write_seed_data(make_seed_data(full, seed));
            writer->close();
            shards.push_back(directory + "/" + name);
            entries.push_back(json_entry(name, full, "shard"));
        }
        merge_shards(directory + "/merged.h5", shards, true);
        entries.push_back(json_entry("merged.h5", full, "complete"));

        // A writer killed right after a batch: the file keeps its superblock
        // "open for writing" flags, as after any crash.
        const pid_t child = ::fork();
        if (child == 0) {
            auto killed = ResultWriter::create(directory + "/killed.h5", full, full_grid, test_provenance(), {}, true);
            write_in_batches(*killed, full, {0, 5, 9, 17, 40}, 2);
            ::raise(SIGKILL);
        }
        int status = 0;
        ::waitpid(child, &status, 0);
        if (!WIFSIGNALED(status)) throw std::runtime_error("the killed writer was not killed");
        entries.push_back(json_entry("killed.h5", full, "killed"));

        std::ofstream json(directory + "/expected.json");
        json << "{\n";
        for (std::size_t i = 0; i < entries.size(); ++i) json << entries[i] << (i + 1 < entries.size() ? ",\n" : "\n");
        json << "}\n";
    } catch (const std::exception& error) {
        std::cerr << "write_sample_file: " << error.what() << "\n";
        return 1;
    }
    return 0;
}
