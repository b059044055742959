#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <filesystem>
#include <regex>

#include "collapse/record_steps.hpp"
#include "collapse/storage/error.hpp"
#include "collapse/storage/format.hpp"
#include "synthetic.hpp"

namespace collapse::storage::testing {
namespace {

TEST(StorageRoundTrip, TwoScatteredBatchesReadBackExactly) {
    const SweepSpec spec = make_spec(two_axis_options());
    const Grid grid(spec);
    ASSERT_EQ(grid.size(), 12);
    const std::string path = temporary_directory("round_trip") + "/out.h5";
    auto writer = ResultWriter::create(path, spec, grid, test_provenance(), {}, false);
    writer->write_batch(make_batch(spec, {7, 0, 9, 4}));
    writer->write_batch(make_batch(spec, {11, 2, 3}));
    for (std::int64_t seed = 0; seed < spec.seeds; ++seed) writer->write_seed_data(make_seed_data(spec, seed));
    writer->close();
    writer->close(); // idempotent

    const ResultReader reader(path);
    EXPECT_FALSE(reader.opened_with_swmr()); // a clean close leaves a normal file
    EXPECT_EQ(reader.axis_names(), (std::vector<std::string>{"frustration", "head_dim", "seed"}));
    EXPECT_EQ(reader.axis_values(), (std::vector<std::vector<double>>{{0.0, 0.05, 0.1}, {0, 2}, {0, 1}}));
    EXPECT_EQ(reader.shape(), (std::vector<std::int64_t>{3, 2, 2}));
    EXPECT_EQ(reader.record_steps(), record_steps(1000, 16));
    EXPECT_EQ(check_finished_trajectories(reader, spec), "");

    const std::vector<std::int8_t> status = reader.status();
    const std::vector<double> collapse_step = reader.result("collapse_step"), final_step = reader.result("final_step");
    const std::vector<double> loss = reader.result("final_loss"), trace = reader.trace("loss");
    const std::vector<double> head = reader.final_dataset("head");
    const std::size_t T = reader.record_steps().size();
    for (std::int64_t flat : {1, 5, 6, 8, 10}) {
        const auto f = static_cast<std::size_t>(flat);
        EXPECT_EQ(status[f], -1);
        EXPECT_EQ(collapse_step[f], -1);
        EXPECT_EQ(final_step[f], -1);
        EXPECT_TRUE(std::isnan(loss[f]));
        for (std::size_t j = 0; j < T; ++j) EXPECT_TRUE(std::isnan(trace[f * T + j]));
        for (std::size_t e = 0; e < 16; ++e) EXPECT_TRUE(std::isnan(head[f * 16 + e]));
    }
    EXPECT_EQ(status[7], 1);
    EXPECT_EQ(status[9], 0);
    EXPECT_EQ(status[11], 2);

    for (std::int64_t seed = 0; seed < spec.seeds; ++seed) {
        const SeedData expected = make_seed_data(spec, seed);
        const std::vector<double> labels = reader.read_doubles("/initial/label_embeddings");
        const std::vector<double> samples = reader.read_doubles("/initial/sample_embeddings");
        const std::vector<std::int64_t> second = reader.read_integers("/graph/second_label");
        const std::size_t s = static_cast<std::size_t>(seed);
        for (std::size_t e = 0; e < 12; ++e) EXPECT_EQ(labels[s * 12 + e], expected.initial_label_embeddings[e]);
        for (std::size_t e = 0; e < 48; ++e) EXPECT_EQ(samples[s * 48 + e], expected.initial_sample_embeddings[e]);
        for (std::size_t i = 0; i < 12; ++i) EXPECT_EQ(second[s * 12 + i], expected.second_label[i]);
    }
    EXPECT_EQ(reader.dataset_shape("/initial/head_A"), (std::vector<std::int64_t>{3, 2, 2, 2, 4}));
    EXPECT_EQ(reader.dataset_shape("/initial/head_B"), (std::vector<std::int64_t>{3, 2, 2, 4, 2}));
    EXPECT_FALSE(reader.has_dataset("/initial/encoder"));
}

TEST(StorageRoundTrip, TheCheckerNoticesMisplacedData) {
    const SweepSpec spec = make_spec(two_axis_options());
    const std::string path = temporary_directory("checker") + "/out.h5";
    auto writer = ResultWriter::create(path, spec, Grid(spec), test_provenance(), {}, false);
    BatchOutput batch = make_batch(spec, {4, 5});
    batch.flat_index = {5, 4}; // each trajectory's numbers land on the other's index
    writer->write_batch(batch);
    writer->close();
    EXPECT_NE(check_finished_trajectories(ResultReader(path), spec), "");
}

TEST(StorageRoundTrip, RootAttributesDescribeTheRun) {
    SpecOptions options = two_axis_options();
    options.overrides = {"integrator.max_steps=1000", "grid.seeds=2"};
    const SweepSpec spec = make_spec(options);
    const std::string path = temporary_directory("attributes") + "/out.h5";
    ResultWriter::create(path, spec, Grid(spec), test_provenance(), {1, 3, 4, 8}, false)->close();
    const ResultReader reader(path);
    EXPECT_EQ(reader.attribute("format"), "collapse-sweep");
    EXPECT_EQ(reader.attribute("format_version"), "1");
    EXPECT_EQ(reader.spec_text(), spec.source_text);
    EXPECT_EQ(reader.spec_overrides(), options.overrides);
    EXPECT_EQ(reader.spec_sha256(), spec_sha256(spec));
    EXPECT_EQ(reader.spec_sha256().size(), 64u);
    EXPECT_EQ(reader.attribute("precision"), "float64");
    EXPECT_EQ(reader.attribute("backend"), "test");
    EXPECT_EQ(reader.attribute("command_line"), "storage_tests --synthetic");
    EXPECT_EQ(reader.attribute("kind"), "embedding");
    EXPECT_EQ(reader.attribute("classes"), "3");
    EXPECT_EQ(reader.attribute("max_steps"), "1000");
    EXPECT_EQ(reader.attribute("master_seed"), "12345");
    EXPECT_EQ(reader.attribute("lr"), "0.10000000000000001"); // not an axis: one value for the sweep
    EXPECT_FALSE(reader.has_attribute("frustration"));        // an axis: see /results/frustration
    EXPECT_TRUE(std::regex_match(reader.attribute("creation_time"),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
    const ShardRange shard = reader.shard();
    EXPECT_EQ(shard.index, 1);
    EXPECT_EQ(shard.count, 3);
    EXPECT_EQ(shard.begin, 4);
    EXPECT_EQ(shard.end, 8);
}

TEST(StorageRoundTrip, Float32TeacherStudentRunsStoreTheRunPrecision) {
    SpecOptions options = two_axis_options();
    options.kind = ModelKind::teacher_student;
    options.precision = Precision::float32;
    options.save_samples = false;
    const SweepSpec spec = make_spec(options);
    const Grid grid(spec);
    const std::string path = temporary_directory("float32") + "/out.h5";
    auto writer = ResultWriter::create(path, spec, grid, test_provenance(), {}, false);
    write_in_batches(*writer, spec, shuffled_indices(grid.size(), 3), 5);
    writer->write_seed_data(make_seed_data(spec, 1));
    writer->close();
    const ResultReader reader(path);
    EXPECT_EQ(check_finished_trajectories(reader, spec), "");
    EXPECT_FALSE(reader.has_dataset("/final/sample_embeddings"));
    EXPECT_FALSE(reader.has_dataset("/initial/sample_embeddings"));
    EXPECT_EQ(reader.dataset_shape("/initial/encoder"), (std::vector<std::int64_t>{2, 4, 5}));
    EXPECT_EQ(reader.read_doubles("/initial/teacher")[15], make_seed_data(spec, 1).teacher[0]);
    EXPECT_TRUE(std::isnan(reader.read_doubles("/initial/teacher")[0])); // seed 0 never written

    // Traces and geometry are float32 in the file; results stay float64.
    hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    for (const auto& [dataset_path, bytes] : std::vector<std::pair<std::string, std::size_t>>{
             {"/traces/loss", 4}, {"/final/head", 4}, {"/results/final_loss", 8}, {"/results/status", 1}}) {
        hid_t dataset = H5Dopen2(file, dataset_path.c_str(), H5P_DEFAULT);
        hid_t type = H5Dget_type(dataset);
        EXPECT_EQ(H5Tget_size(type), bytes) << dataset_path;
        H5Tclose(type);
        H5Dclose(dataset);
    }
    H5Fclose(file);
}

TEST(StorageRoundTrip, ManyRandomBatchesOfABiggerGrid) {
    SpecOptions options;
    options.axes = {real_axis("lr", {0.1, 0.2, 0.3, 0.4, 0.5}, true), integer_axis("head_dim", {0, 1, 2, 3}),
                    boolean_axis("stop_gradient")};
    options.seeds = 7;
    const SweepSpec spec = make_spec(options);
    const Grid grid(spec);
    const std::string path = temporary_directory("bigger") + "/out.h5";
    auto writer = ResultWriter::create(path, spec, grid, test_provenance(), {}, false);
    const std::vector<std::int64_t> order = shuffled_indices(grid.size(), 11);
    std::size_t start = 0, size = 1;
    while (start < order.size() - 20) { // leave the last 20 unwritten
        const std::size_t stop = std::min(order.size() - 20, start + size);
        writer->write_batch(make_batch(spec, {order.begin() + static_cast<std::ptrdiff_t>(start),
                                              order.begin() + static_cast<std::ptrdiff_t>(stop)}));
        start = stop;
        size = size % 37 + 5;
    }
    writer->close();
    const ResultReader reader(path);
    EXPECT_EQ(check_finished_trajectories(reader, spec), "");
    std::int64_t not_run = 0;
    for (std::int8_t s : reader.status()) not_run += s < 0;
    EXPECT_EQ(not_run, 20);
}

TEST(StorageRoundTrip, NeverClobbersWithoutOverwrite) {
    const SweepSpec spec = make_spec(two_axis_options());
    const Grid grid(spec);
    const std::string path = temporary_directory("clobber") + "/out.h5";
    auto writer = ResultWriter::create(path, spec, grid, test_provenance(), {}, false);
    writer->write_batch(make_batch(spec, {0, 1}));
    // While a writer owns the file, not even --overwrite may replace it.
    EXPECT_THROW(ResultWriter::create(path, spec, grid, test_provenance(), {}, true), StorageError);
    writer->close();
    EXPECT_THROW(ResultWriter::create(path, spec, grid, test_provenance(), {}, false), StorageError);
    EXPECT_EQ(ResultReader(path).status()[1], 1); // untouched
    ResultWriter::create(path, spec, grid, test_provenance(), {}, true)->close();
    EXPECT_EQ(ResultReader(path).status()[1], -1); // replaced by a fresh file
    for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
        EXPECT_EQ(entry.path().filename(), "out.h5"); // no temporary left behind
}

TEST(StorageRoundTrip, BadBatchesAreRejectedBeforeWritingAnything) {
    const SweepSpec spec = make_spec(two_axis_options());
    const Grid grid(spec);
    const std::string path = temporary_directory("bad_batches") + "/out.h5";
    auto writer = ResultWriter::create(path, spec, grid, test_provenance(), {0, 2, 0, 6}, false);
    EXPECT_THROW(writer->write_batch(make_batch(spec, {6})), StorageError); // outside the shard
    EXPECT_THROW(writer->write_batch(make_batch(spec, {1, 1})), StorageError);
    BatchOutput short_traces = make_batch(spec, {2, 3});
    short_traces.loss_trace.pop_back();
    EXPECT_THROW(writer->write_batch(short_traces), StorageError);
    writer->close();
    for (std::int8_t s : ResultReader(path).status()) EXPECT_EQ(s, -1);
}

TEST(StorageRoundTrip, ChunksAreContiguousRunsOfTrajectories) {
    SpecOptions options = two_axis_options();
    options.seeds = 300;
    const SweepSpec spec = make_spec(options);
    const std::string path = temporary_directory("chunks") + "/out.h5";
    ResultWriter::create(path, spec, Grid(spec), test_provenance(), {}, false)->close();
    hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    auto chunk_of = [&](const char* name) {
        hid_t dataset = H5Dopen2(file, name, H5P_DEFAULT);
        hid_t properties = H5Dget_create_plist(dataset);
        std::vector<hsize_t> chunk(static_cast<std::size_t>(H5Pget_chunk(properties, 8, nullptr)));
        H5Pget_chunk(properties, static_cast<int>(chunk.size()), chunk.data());
        H5Pclose(properties);
        H5Dclose(dataset);
        return std::vector<std::int64_t>(chunk.begin(), chunk.end());
    };
    EXPECT_EQ(chunk_of("/results/status"), (std::vector<std::int64_t>{1, 1, 300}));   // at most 512 trajectories
    EXPECT_EQ(chunk_of("/traces/loss"), (std::vector<std::int64_t>{1, 1, 300, 16})); // T = 16
    EXPECT_EQ(chunk_of("/final/sample_embeddings"), (std::vector<std::int64_t>{1, 1, 300, 12, 4}));
    EXPECT_EQ(chunk_of("/graph/primary_label"), (std::vector<std::int64_t>{16, 12}));
    H5Fclose(file);
}

} // namespace
} // namespace collapse::storage::testing
