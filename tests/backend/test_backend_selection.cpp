// --backend auto|cpu|cuda: runs on every machine. Without a usable device the
// CUDA backend must refuse with a readable reason and auto must fall back.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "collapse/backend/backend.hpp"

namespace collapse {
namespace {

// The reason make_cuda_backend() gives, or nothing when a device works.
std::optional<std::string> cuda_unavailable_reason() {
    try {
        make_cuda_backend();
        return std::nullopt;
    } catch (const BackendError& error) {
        return std::string(error.what());
    }
}

TEST(BackendSelection, AutoFallsBackToCpuWhenCudaIsUnavailable) {
    const std::optional<std::string> reason = cuda_unavailable_reason();
    std::string note;
    const auto backend = make_backend("auto", 1, note);
    if (!reason) {
        EXPECT_EQ(backend->name(), "cuda");
        EXPECT_TRUE(note.empty()) << note;
        return;
    }
    EXPECT_EQ(backend->name(), "cpu");
    EXPECT_NE(note.find("CUDA"), std::string::npos) << note;
    EXPECT_NE(note.find(*reason), std::string::npos) << "the note should carry the reason: " << note;
}

TEST(BackendSelection, ExplicitCudaFailsWithAReadableReason) {
    if (!cuda_unavailable_reason()) GTEST_SKIP() << "a CUDA device is usable here";
    std::string note;
    try {
        make_backend("cuda", 1, note);
        FAIL() << "make_backend(\"cuda\") returned a backend without a device";
    } catch (const BackendError& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find("CUDA"), std::string::npos) << message;
#ifdef COLLAPSE_TEST_HAVE_CUDA
        // A CUDA build names the runtime's error, e.g. cudaErrorInsufficientDriver or cudaErrorNoDevice.
        EXPECT_NE(message.find("cudaError"), std::string::npos) << message;
#endif
    }
}

TEST(BackendSelection, CpuIsAlwaysAvailableAndUnknownNamesAreRejected) {
    std::string note;
    EXPECT_EQ(make_backend("cpu", 1, note)->name(), "cpu");
    EXPECT_TRUE(note.empty());
    EXPECT_THROW(make_backend("tpu", 1, note), BackendError);
}

} // namespace
} // namespace collapse
