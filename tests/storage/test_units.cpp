// SPEC §6: every dataset carries `units` and `long_name`, and every group the
// settings that give its data meaning. Read back with the plain HDF5 C API
// from a written file and from a merged (virtual-dataset) file.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <map>
#include <string>
#include <vector>

#include "collapse/storage/boundary_writer.hpp"
#include "collapse/storage/merge.hpp"
#include "synthetic.hpp"

namespace collapse::storage::testing {
namespace {

std::string string_attribute(hid_t object, const char* name) {
    if (H5Aexists(object, name) <= 0) return "<missing>";
    const hid_t attribute = H5Aopen(object, name, H5P_DEFAULT);
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    char* text = nullptr;
    std::string value = "<unreadable>";
    if (H5Aread(attribute, type, &text) >= 0 && text != nullptr) {
        value = text;
        H5free_memory(text);
    }
    H5Tclose(type);
    H5Aclose(attribute);
    return value;
}

double number_attribute(hid_t object, const char* name) {
    double value = -1;
    const hid_t attribute = H5Aopen(object, name, H5P_DEFAULT);
    H5Aread(attribute, H5T_NATIVE_DOUBLE, &value);
    H5Aclose(attribute);
    return value;
}

struct Described {
    std::string units, long_name;
};

// path -> (units, long_name) of every dataset in the file.
std::map<std::string, Described> every_dataset(const std::string& path) {
    std::map<std::string, Described> out;
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    EXPECT_GE(file, 0) << path;
    auto visit = [](hid_t root, const char* name, const H5O_info_t* info, void* data) -> herr_t {
        if (info->type != H5O_TYPE_DATASET) return 0;
        const hid_t dataset = H5Dopen2(root, name, H5P_DEFAULT);
        (*static_cast<std::map<std::string, Described>*>(data))[std::string("/") + name] = {
            string_attribute(dataset, "units"), string_attribute(dataset, "long_name")};
        H5Dclose(dataset);
        return 0;
    };
    H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, visit, &out, H5O_INFO_BASIC);
    H5Fclose(file);
    return out;
}

void expect_described(const std::string& path, const SweepSpec& spec) {
    const auto datasets = every_dataset(path);
    ASSERT_GT(datasets.size(), 40u) << path;
    for (const auto& [name, described] : datasets) {
        EXPECT_NE(described.units, "<missing>") << path << ": " << name;
        EXPECT_NE(described.long_name, "<missing>") << path << ": " << name;
        EXPECT_FALSE(described.long_name.empty()) << path << ": " << name;
    }
    const std::map<std::string, std::string> expected_units = {
        {"/results/collapse_step", "steps"},     {"/results/final_step", "steps"},
        {"/results/peak_accuracy_step", "steps"}, {"/results/collapse_time", "lr-steps"},
        {"/results/slow_rate", "1/lr-steps"},    {"/results/status", "1"},
        {"/results/final_accuracy", "1"},        {"/traces/label_distance", "1"},
        {"/traces/step", "steps"},               {"/results/frustration", "1"},
        {"/traces/seed", "1"},                   {"/final/head", "1"}};
    for (const auto& [name, units] : expected_units) {
        ASSERT_TRUE(datasets.contains(name)) << path << ": " << name;
        EXPECT_EQ(datasets.at(name).units, units) << path << ": " << name;
    }
    EXPECT_EQ(datasets.at("/results/collapse_time").long_name, "collapse time lr * step, interpolated in log distance");

    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    for (const char* group_name : {"results", "traces", "final", "initial", "graph"}) {
        const hid_t group = H5Gopen2(file, group_name, H5P_DEFAULT);
        ASSERT_GE(group, 0) << group_name;
        EXPECT_EQ(number_attribute(group, "collapse_threshold"), spec.collapse.threshold) << group_name;
        EXPECT_EQ(number_attribute(group, "max_steps"), static_cast<double>(spec.integrator.max_steps)) << group_name;
        EXPECT_EQ(number_attribute(group, "record_points"), spec.output.record_points) << group_name;
        EXPECT_EQ(number_attribute(group, "stop_on_collapse"), spec.collapse.stop_on_collapse ? 1 : 0) << group_name;
        EXPECT_EQ(string_attribute(group, "collapse_metric"), "label") << group_name;
        EXPECT_EQ(string_attribute(group, "precision"), "float32") << group_name;
        EXPECT_EQ(string_attribute(group, "method"), "gd") << group_name;
        EXPECT_EQ(string_attribute(group, "kind"), "embedding") << group_name;
        H5Gclose(group);
    }
    H5Fclose(file);
}

TEST(StorageUnits, EveryDatasetAndGroupIsDescribedInWrittenAndMergedFiles) {
    SpecOptions options = two_axis_options();
    options.precision = Precision::float32; // a setting that differs from the defaults
    const SweepSpec spec = make_spec(options);
    const Grid grid(spec);
    const std::string directory = temporary_directory("units");
    std::vector<std::string> shards;
    for (std::int64_t i = 0; i < 2; ++i) {
        const std::string path = directory + "/part" + std::to_string(i) + ".h5";
        const ShardRange range{i, 2, i == 0 ? 0 : 5, i == 0 ? 5 : grid.size()};
        auto writer = ResultWriter::create(path, spec, grid, test_provenance(), range, false);
        std::vector<std::int64_t> owned;
        for (std::int64_t flat = range.begin; flat < range.end; ++flat) owned.push_back(flat);
        write_in_batches(*writer, spec, owned, 4);
        for (std::int64_t seed = 0; seed < spec.seeds; ++seed) writer->write_seed_data(make_seed_data(spec, seed));
        writer->close();
        shards.push_back(path);
    }
    expect_described(shards[0], spec);
    merge_shards(directory + "/merged.h5", shards, false);
    expect_described(directory + "/merged.h5", spec);
}

TEST(StorageUnits, RefinedBoundariesAreDescribed) {
    const SweepSpec spec = make_spec(two_axis_options()); // frustration x head_dim
    const Grid grid(spec);
    const std::string path = temporary_directory("units_boundaries") + "/out.h5";
    auto writer = ResultWriter::create(path, spec, grid, test_provenance(), {}, false);
    writer->close();
    BoundaryTable table;
    table.axis = "frustration";
    table.coordinates = {integer_axis("head_dim", {0, 2})};
    table.estimate = table.bracket_low = table.bracket_high = table.standard_error = {0.05, 0.07};
    table.probes_run = {1, 1};
    table.probe_value = table.probe_quantity = {0.5, 0.5};
    table.crossings = {1, 1};
    table.crossing_low = table.crossing_high = {0.05, 0.07};
    write_boundaries(path, table);
    const auto datasets = every_dataset(path);
    for (const char* name : {"estimate", "bracket_low", "standard_error", "probes_run", "probe_value",
                             "crossings", "crossing_low", "crossing_high", "head_dim", "probe", "crossing"}) {
        const std::string full = std::string("/boundaries/frustration/") + name;
        ASSERT_TRUE(datasets.contains(full)) << full;
        EXPECT_EQ(datasets.at(full).units, "1") << full;
        EXPECT_NE(datasets.at(full).long_name, "<missing>") << full;
    }
}

} // namespace
} // namespace collapse::storage::testing
