// Issue 14: out-of-space is a clear, resumable event; a refused --resume
// leaves the file byte-identical; a kill inside the resume's opening window
// leaves a readable, resumable file; counting coordinates cost little disk.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include "collapse/storage/error.hpp"
#include "synthetic.hpp"

namespace collapse::storage::testing {
namespace {

SweepSpec limit_spec() {
    SpecOptions options = two_axis_options();
    options.seeds = 40;
    options.record_points = 32;
    return make_spec(options);
}

std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_everything(ResultWriter& writer, const SweepSpec& spec, const Grid& grid) {
    for (std::int64_t seed = 0; seed < spec.seeds; ++seed) writer.write_seed_data(make_seed_data(spec, seed));
    write_in_batches(writer, spec, shuffled_indices(grid.size(), 3), 37);
}

// Runs `body` in a child process under a file-size limit with SIGXFSZ
// ignored (what `ulimit -f` does to a process that ignores the signal);
// returns what the child wrote to the message pipe.
std::string in_child_with_file_size_limit(rlim_t bytes, const std::function<void()>& body) {
    int message[2];
    EXPECT_EQ(::pipe(message), 0);
    const pid_t child = ::fork();
    if (child == 0) {
        ::close(message[0]);
        ::signal(SIGXFSZ, SIG_IGN);
        const rlimit limit{bytes, bytes};
        ::setrlimit(RLIMIT_FSIZE, &limit);
        std::string text = "no error";
        try {
            body();
        } catch (const OutOfSpaceError& error) {
            text = std::string("OutOfSpaceError: ") + error.what();
        } catch (const std::exception& error) {
            text = std::string("other: ") + error.what();
        }
        (void)!::write(message[1], text.data(), text.size());
        ::_exit(0);
    }
    ::close(message[1]);
    std::string text;
    char buffer[4096];
    for (ssize_t got; (got = ::read(message[0], buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(got));
    ::close(message[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the writer crashed: " << text;
    return text;
}

// A full disk mid-run: one clear error naming the user's path and the number
// of trajectories safe in the file, which is then readable and resumes to the
// same data as an uninterrupted run (ulimit -f used to crash the process).
TEST(StorageLimits, FileSizeLimitMidRunIsAResumableOutOfSpaceError) {
    const SweepSpec spec = limit_spec();
    const Grid grid(spec);
    const std::string directory = temporary_directory("fsize");
    const std::string reference_path = directory + "/reference.h5";
    {
        auto writer = ResultWriter::create(reference_path, spec, grid, test_provenance(), {}, false);
        write_everything(*writer, spec, grid);
        writer->close();
    }
    const auto full_size = static_cast<rlim_t>(std::filesystem::file_size(reference_path));
    const ResultReader reference(reference_path);
    int partial = 0;
    for (const double fraction : {0.35, 0.45, 0.52, 0.6, 0.68, 0.75, 0.83, 0.9, 0.97}) {
        const std::string path = directory + "/limited.h5";
        std::filesystem::remove(path);
        const auto limit = static_cast<rlim_t>(fraction * static_cast<double>(full_size));
        SCOPED_TRACE("limit " + std::to_string(limit) + " of " + std::to_string(full_size) + " bytes");
        const std::string message = in_child_with_file_size_limit(limit, [&] {
            auto writer = ResultWriter::create(path, spec, grid, test_provenance(), {}, false);
            write_everything(*writer, spec, grid);
            writer->close();
        });
        if (!std::filesystem::exists(path)) {
            EXPECT_NE(message.find("OutOfSpaceError: disk full (or file size limit reached) creating " + path), std::string::npos) << message;
            continue;
        }
        EXPECT_EQ(message.find(".creating-"), std::string::npos) << message;
        EXPECT_NE(message.find("OutOfSpaceError: file size limit reached writing " + path + " ("), std::string::npos) << message;
        std::int64_t finished = 0;
        {
            const ResultReader survivor(path);
            EXPECT_EQ(check_finished_trajectories(survivor, spec), "");
            for (std::int8_t s : survivor.status()) finished += s >= 0;
        }
        EXPECT_NE(message.find(std::to_string(finished) + " of " + std::to_string(grid.size()) +
                               " trajectories are safe in the file; raise the limit (ulimit -f) and run again with --resume)"),
                  std::string::npos) << message;
        partial += finished > 0 && finished < grid.size();
        std::vector<std::int8_t> status;
        auto resumed = ResultWriter::resume(path, spec, grid, test_provenance(), status);
        std::vector<std::int64_t> remaining;
        for (std::int64_t flat = 0; flat < grid.size(); ++flat)
            if (status[static_cast<std::size_t>(flat)] < 0) remaining.push_back(flat);
        for (std::int64_t seed = 0; seed < spec.seeds; ++seed) resumed->write_seed_data(make_seed_data(spec, seed));
        write_in_batches(*resumed, spec, remaining, 37);
        resumed->close();
        EXPECT_EQ(compare_files(ResultReader(path), reference, dataset_paths(spec)), "");
    }
    EXPECT_GE(partial, 2) << "the limits did not land mid-run";
}

// A limit hit while the file is built: a clear error, and neither OUT nor
// the temporary file is left (HDF5 used to crash in its exit handler).
TEST(StorageLimits, FileSizeLimitDuringCreationLeavesNothing) {
    const SweepSpec spec = limit_spec();
    const Grid grid(spec);
    const std::string directory = temporary_directory("fsize-create");
    const std::string path = directory + "/out.h5";
    const std::string message = in_child_with_file_size_limit(4096, [&] {
        ResultWriter::create(path, spec, grid, test_provenance(), {}, false);
    });
    EXPECT_NE(message.find("OutOfSpaceError: disk full (or file size limit reached) creating " + path), std::string::npos)
        << message;
    EXPECT_TRUE(std::filesystem::is_empty(directory));
}

// A file killed inside the resume's opening window (between its read-write
// open and its close): SWMR writing from the first moment, so it opens for
// ResultReader and resumes; and every refused resume of it leaves it
// byte-identical (a refused --resume used to clear its open-for-write flags,
// after which merge accepted it).
TEST(StorageLimits, KillInResumeOpenWindowAndRefusedResumesChangeNothing) {
    const SweepSpec spec = limit_spec();
    const Grid grid(spec);
    const std::string directory = temporary_directory("resume-window");
    const std::string path = directory + "/out.h5";
    {
        auto writer = ResultWriter::create(path, spec, grid, test_provenance(), {}, false);
        write_in_batches(*writer, spec, shuffled_indices(grid.size(), 3), 50);
    }
    int opened[2];
    ASSERT_EQ(::pipe(opened), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(opened[0]);
        ::setenv("COLLAPSE_TEST_PAUSE_RESUME_OPEN", "30", 1);
        std::vector<std::int8_t> status;
        ResultWriter::resume(path, spec, grid, test_provenance(), status);
        ::_exit(0);
    }
    ::close(opened[1]);
    // Wait until the child has the file open for writing: its flags are set.
    bool flagged = false;
    for (int wait = 0; wait < 200 && !flagged; ++wait) {
        ::usleep(20000);
        flagged = ResultReader(path).opened_with_swmr();
    }
    ASSERT_TRUE(flagged) << "the child never reached the resume window";
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    ::close(opened[0]);

    {
        const ResultReader killed(path);
        EXPECT_TRUE(killed.opened_with_swmr());
        EXPECT_EQ(check_finished_trajectories(killed, spec), "");
    }
    const std::string before = file_bytes(path);
    SpecOptions other_options = two_axis_options();
    other_options.seeds = 40;
    other_options.record_points = 32;
    other_options.overrides = {"grid.seeds=31"};
    const SweepSpec other = make_spec(other_options);
    std::vector<std::int8_t> status;
    EXPECT_THROW(ResultWriter::resume(path, other, Grid(other), test_provenance(), status), StorageError);
    EXPECT_EQ(file_bytes(path), before) << "a refused resume changed the file";
    EXPECT_TRUE(ResultReader(path).opened_with_swmr()) << "a refused resume cleared the open-for-write flags";

    const std::string empty = directory + "/empty.h5";
    { std::ofstream create(empty); }
    EXPECT_THROW(ResultWriter::resume(empty, spec, grid, test_provenance(), status), StorageError);
    EXPECT_EQ(std::filesystem::file_size(empty), 0u) << "a refused resume wrote into an empty file";

    auto resumed = ResultWriter::resume(path, spec, grid, test_provenance(), status);
    resumed->close();
    const ResultReader after(path);
    EXPECT_FALSE(after.opened_with_swmr());
    EXPECT_EQ(check_finished_trajectories(after, spec), "");
    EXPECT_NE(after.attribute("resume_history"), "");
}

// Counting coordinates are chunked and compressed: 10^6 seeds start as a
// file far smaller than 3 copies x 8 bytes x 10^6 (24 MB before the fix).
TEST(StorageLimits, CountingCoordinatesCostLittleDisk) {
    SpecOptions options;
    options.seeds = 1000000;
    options.save_initial = false;
    options.save_samples = false;
    options.record_points = 2;
    const SweepSpec spec = make_spec(options);
    const Grid grid(spec);
    const std::string path = temporary_directory("seeds") + "/out.h5";
    ResultWriter::create(path, spec, grid, test_provenance(), {}, false)->close();
    EXPECT_LT(std::filesystem::file_size(path), 1'000'000u);
    const ResultReader reader(path);
    EXPECT_EQ(reader.shape(), (std::vector<std::int64_t>{1000000}));
}

} // namespace
} // namespace collapse::storage::testing
