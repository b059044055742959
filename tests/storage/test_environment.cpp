// Removes this test process's scratch folder once its tests have run.
#include <gtest/gtest.h>

#include <filesystem>

#include "synthetic.hpp"

namespace {

class ScratchFolderCleanup : public ::testing::Environment {
public:
    void TearDown() override {
        std::error_code ignored;
        std::filesystem::remove_all(collapse::storage::testing::process_folder(), ignored);
    }
};

[[maybe_unused]] ::testing::Environment* const cleanup = ::testing::AddGlobalTestEnvironment(new ScratchFolderCleanup);

} // namespace
