// Bounds on what a spec may ask for, and reading a spec file with bounded
// work (docs/sweep-file.md, "Limits"; issue 14 items 2 and 7).
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "spec_test_support.hpp"

namespace collapse::test {
namespace {

namespace fs = std::filesystem;

std::string file_error(const std::string& path) {
    try {
        parse_sweep_spec_file(path);
    } catch (const SpecError& error) {
        return error.what();
    }
    ADD_FAILURE() << "expected a SpecError for " << path;
    return {};
}

class SpecFileTest : public ::testing::Test {
protected:
    void SetUp() override {
        directory_ = fs::temp_directory_path() /
                     ("collapse-spec-limits-" + std::to_string(::getpid()) + "-" +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(directory_);
    }
    void TearDown() override { fs::remove_all(directory_); }
    std::string path(const std::string& name) const { return (directory_ / name).string(); }

    fs::path directory_;
};

TEST_F(SpecFileTest, ReadsARegularFile) {
    std::ofstream(path("a.toml")) << "[grid]\nseeds = 3\n";
    EXPECT_EQ(parse_sweep_spec_file(path("a.toml")).seeds, 3);
}

// `validate /dev/zero` read 2.1 GB before it failed.
TEST_F(SpecFileTest, RefusesCharacterDevicesAtOnce) {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_NE(file_error("/dev/zero").find("cannot read sweep file '/dev/zero': a character device"), std::string::npos);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

// Opening a FIFO for reading would wait for a writer forever.
TEST_F(SpecFileTest, RefusesAFifoWithoutWaiting) {
    ASSERT_EQ(::mkfifo(path("pipe").c_str(), 0600), 0);
    EXPECT_NE(file_error(path("pipe")).find("a FIFO (named pipe)"), std::string::npos);
}

TEST_F(SpecFileTest, RefusesADirectory) {
    EXPECT_NE(file_error(directory_.string()).find("a directory"), std::string::npos);
}

TEST_F(SpecFileTest, NamesAMissingFile) {
    EXPECT_NE(file_error(path("missing.toml")).find("No such file or directory"), std::string::npos);
}

// A sparse file: its size is what counts, nothing is read.
TEST_F(SpecFileTest, RefusesAFileOverTheSizeBound) {
    const std::string big = path("big.toml");
    std::ofstream(big) << "";
    fs::resize_file(big, static_cast<std::uintmax_t>(max_spec_file_bytes) + 1);
    EXPECT_NE(file_error(big).find("larger than 64 MiB"), std::string::npos);
    fs::resize_file(big, static_cast<std::uintmax_t>(max_spec_file_bytes));
    // At the bound it is read, and then fails as TOML (NUL bytes), not on size.
    EXPECT_EQ(file_error(big).find("larger than"), std::string::npos);
}

TEST(SpecLimits, SeedsAreBounded) {
    EXPECT_EQ(parse("[grid]\nseeds = 1000000000\n").seeds, max_seeds);
    EXPECT_EQ(spec_error("[grid]\nseeds = 1000000000000\n"),
              "sweeps/x.toml:2: grid.seeds: value 1000000000000 outside [1, 1000000000]");
}

TEST(SpecLimits, GridSizeIsBounded) {
    // 3 x 1 x 10^4 x 10^6 seeds = 3e10 > 1e10.
    const std::string error =
        spec_error("[grid]\nfrustration = [0, 0.1, 0.2]\nlr = {linspace = [0.1, 1, 10000]}\nseeds = 1000000\n");
    EXPECT_NE(error.find("grid: the grid has 1 x 3 x 10000 x 1000000 seeds = 30000000000 trajectories, more than "
                         "the limit of 10000000000"),
              std::string::npos)
        << error;
    // Overflowing 2^63-1 is the same error.
    EXPECT_NE(spec_error("[grid]\nfrustration = {linspace = [0, 1, 1000000]}\nlr = {linspace = [0.1, 1, 1000000]}\n"
                         "init_scale = {linspace = [0.1, 1, 1000000]}\nseeds = 1000000000\n")
                  .find("more than 2^63-1 trajectories"),
              std::string::npos);
    EXPECT_EQ(parse("[grid]\nlr = {linspace = [0.1, 1, 10]}\nseeds = 1000000000\n").seeds, max_seeds);
}

// record_points = 2^31-1 gave a bare std::bad_alloc.
TEST(SpecLimits, RecordPointsAreBounded) {
    EXPECT_EQ(parse("[output]\nrecord_points = 1000000\n").output.record_points, 1000000);
    EXPECT_EQ(spec_error("[output]\nrecord_points = 2147483647\n"),
              "sweeps/x.toml:2: output.record_points: value 2147483647 outside [2, 1000000]");
}

} // namespace
} // namespace collapse::test
