// Read-only access to a collapse-sweep output file (or a merged virtual file).
// Opens files left by a killed or still-running writer too, by falling back to
// SWMR reading when HDF5 refuses a plain open.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "collapse/storage/result_writer.hpp"

namespace collapse::storage {

class ResultReader {
public:
    explicit ResultReader(const std::string& path);
    ~ResultReader();
    ResultReader(const ResultReader&) = delete;
    ResultReader& operator=(const ResultReader&) = delete;

    std::string spec_text() const;
    std::vector<std::string> spec_overrides() const;
    std::string spec_sha256() const;
    // Any root attribute rendered as text (numbers in decimal).
    std::string attribute(const std::string& name) const;
    bool has_attribute(const std::string& name) const;
    // An attribute of any group or dataset ("/boundaries/lr") as text; "" when
    // the object or the attribute does not exist.
    std::string object_attribute(const std::string& object_path, const std::string& name) const;
    ShardRange shard() const;

    // Grid axes in spec order, then "seed".
    std::vector<std::string> axis_names() const;
    std::vector<std::vector<double>> axis_values() const;
    std::vector<std::int64_t> shape() const;
    std::int64_t size() const;

    std::vector<std::int8_t> status() const;                   // flat order
    // How many trajectories are not run (status -1), stable, collapsed and
    // diverged, read in blocks: memory does not grow with the grid.
    std::array<std::int64_t, 4> status_counts() const;
    std::vector<double> result(const std::string& name) const; // /results/<name> as double, flat order
    std::vector<double> trace(const std::string& name) const;  // /traces/<name>, [flat][T]
    std::vector<std::int64_t> record_steps() const;             // /traces/step
    std::vector<double> final_dataset(const std::string& name) const; // /final/<name>, flat order

    // Any dataset by absolute path ("/initial/encoder"), converted by HDF5.
    bool has_dataset(const std::string& path) const;
    std::vector<std::int64_t> dataset_shape(const std::string& path) const;
    std::vector<double> read_doubles(const std::string& path) const;
    std::vector<std::int64_t> read_integers(const std::string& path) const;

    // True when SWMR reading was used: a live writer holds the file's writer
    // lock, or HDF5 refused a plain open because the superblock still says a
    // writer has the file (killed inside a write window).
    bool opened_with_swmr() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

} // namespace collapse::storage
