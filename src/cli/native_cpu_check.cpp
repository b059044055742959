// Runs before anything else in the binary (a constructor of the highest
// priority) and is compiled for generic x86-64 (src/cli/CMakeLists.txt), so
// it runs on any CPU: a binary built with COLLAPSE_NATIVE (-march=native) on
// a CPU with, say, AVX-512 stops here with a clear message on a CPU
// without, instead of dying of SIGILL halfway through a job.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

#include "collapse/native_cpu_features.hpp"

#if defined(__x86_64__) || defined(__i386__)
namespace {

// COLLAPSE_TEST_MISSING_CPU_FEATURE=name pretends the CPU lacks `name`: the
// only way to test this message on a machine that has every feature.
bool lacks(const char* name, bool supported) {
    const char* pretend = std::getenv("COLLAPSE_TEST_MISSING_CPU_FEATURE");
    return !supported || (pretend != nullptr && std::strcmp(pretend, name) == 0);
}

__attribute__((constructor(101))) void check_native_cpu_features() {
    __builtin_cpu_init();
    char built[512] = "", missing[512] = "";
    const auto append = [](char* list, const char* name) {
        if (list[0] != '\0') std::strncat(list, ", ", 511 - std::strlen(list));
        std::strncat(list, name, 511 - std::strlen(list));
    };
#define COLLAPSE_CHECK_FEATURE(name)                                                                                  \
    append(built, name);                                                                                              \
    if (lacks(name, __builtin_cpu_supports(name))) append(missing, name);
    COLLAPSE_NATIVE_CPU_FEATURES(COLLAPSE_CHECK_FEATURE)
#undef COLLAPSE_CHECK_FEATURE
    if (missing[0] == '\0') return;
    std::fprintf(stderr,
                 "error: this collapse-sweep was built with COLLAPSE_NATIVE=ON (-march=native) for a CPU with %s;\n"
                 "error: this CPU lacks %s, so it would stop with an illegal instruction.\n"
                 "error: rebuild it on this machine, or configure with -DCOLLAPSE_NATIVE=OFF for a binary that runs on "
                 "any x86-64 CPU.\n",
                 built, missing);
    std::fflush(stderr);
    _exit(1);
}

} // namespace
#endif
