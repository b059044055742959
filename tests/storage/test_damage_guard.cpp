// The crash guard of hostile_input.hpp: a fault inside HDF5's read of a
// damaged file becomes `error: ... crashed inside HDF5` and exit 1 (CI met a
// SIGSEGV in H5HG_read on a bit-flipped heap object size); a fault anywhere
// else is still a crash, and a temporary file named by RemoveOnFatalExit is
// gone after either of the tool's fatal exits.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "hostile_input.hpp"

namespace collapse::storage::testing {
namespace {

using detail::MetadataDeadline;
using detail::RemoveOnFatalExit;

// A store to a page that is mapped without access: a real SIGSEGV, as HDF5's
// wild copies give, which UBSan (unlike a null store) does not stop first.
void fault() {
    void* const page = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(page, MAP_FAILED);
    *static_cast<volatile int*>(page) = 1;
}

#if defined(__SANITIZE_ADDRESS__)
// ASan's handler, put back for a fault that is not the file's, reports and
// then exits 1 or aborts (ASAN_OPTIONS=abort_on_error=1, tools/sanitize.sh):
// its report is what tells it from the guard's exit.
const auto crashed = [](int status) { return WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0); };
const char* const crash_report = "AddressSanitizer: SEGV";
#else
const auto crashed = ::testing::KilledBySignal(SIGSEGV);
const char* const crash_report = "";
#endif

// Not under process_folder(): a threadsafe death test runs the test body again
// in a new process, which must name the same file as the parent checks.
std::string unfinished_file(const std::string& name) {
    const std::filesystem::path path = std::filesystem::temp_directory_path() / ("collapse-damage-guard-" + name);
    std::ofstream(path) << "half a file";
    EXPECT_TRUE(std::filesystem::exists(path));
    return path.string();
}

class DamageGuard : public ::testing::Test {
protected:
    // A fresh process per death test: the watchdog reads its timeout once.
    void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(DamageGuard, AFaultInsideAnArmedReadIsTheFilesDamage) {
    const std::string temporary = unfinished_file("merging-fault");
    EXPECT_EXIT(
        {
            const RemoveOnFatalExit unfinished(temporary);
            const MetadataDeadline deadline("reading attribute format of damaged.h5");
            fault();
        },
        ::testing::ExitedWithCode(1),
        "^error: reading attribute format of damaged.h5 crashed inside HDF5: the file is damaged");
    EXPECT_FALSE(std::filesystem::exists(temporary));
}

TEST_F(DamageGuard, TheOutermostReadNamesTheDamage) {
    EXPECT_EXIT(
        {
            const MetadataDeadline outer("opening damaged.h5");
            const MetadataDeadline inner("reading attribute format of damaged.h5");
            fault();
        },
        ::testing::ExitedWithCode(1), "^error: opening damaged.h5 crashed inside HDF5");
}

TEST_F(DamageGuard, AFaultAfterTheReadIsStillACrash) {
    EXPECT_EXIT(
        {
            { const MetadataDeadline deadline("opening damaged.h5"); }
            fault();
        },
        crashed, crash_report);
}

TEST_F(DamageGuard, AFaultOnAnotherThreadIsNotBlamedOnTheFile) {
    EXPECT_EXIT(
        {
            const MetadataDeadline deadline("opening damaged.h5");
            std::thread(fault).join();
        },
        crashed, crash_report);
}

TEST_F(DamageGuard, TheDeadlineRemovesTheUnfinishedFileToo) {
    const std::string temporary = unfinished_file("merging-hang");
    EXPECT_EXIT(
        {
            ::setenv("COLLAPSE_HDF5_METADATA_TIMEOUT", "0.2", 1);
            const RemoveOnFatalExit unfinished(temporary);
            const MetadataDeadline deadline("reading attribute format of looping.h5");
            std::this_thread::sleep_for(std::chrono::seconds(20));
        },
        ::testing::ExitedWithCode(1), "^error: reading attribute format of looping.h5 did not finish within 0.2 s");
    EXPECT_FALSE(std::filesystem::exists(temporary));
}

TEST_F(DamageGuard, AFileReleasedBeforeTheExitIsKept) {
    const std::string finished = unfinished_file("published");
    EXPECT_EXIT(
        {
            { const RemoveOnFatalExit unfinished(finished); }
            const MetadataDeadline deadline("opening damaged.h5");
            fault();
        },
        ::testing::ExitedWithCode(1), "crashed inside HDF5");
    EXPECT_TRUE(std::filesystem::exists(finished));
    std::filesystem::remove(finished);
}

} // namespace
} // namespace collapse::storage::testing
