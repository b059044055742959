// libFuzzer target for the sweep file parser and the --set parser (issue 14
// item 5). Input: TOML text, then optionally a NUL byte and --set overrides,
// one per line. A SpecError is the expected way to fail; any other exception,
// a crash, a sanitizer report or a hang is a finding. Built and run by
// tools/fuzz.sh with clang's -fsanitize=fuzzer,address,undefined.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "collapse/sweep/grid.hpp"
#include "collapse/sweep/spec_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const std::size_t split = input.find('\0');
    const std::string_view text = input.substr(0, split);
    std::vector<std::string> overrides;
    if (split != std::string_view::npos) {
        std::string_view rest = input.substr(split + 1);
        while (!rest.empty()) {
            const std::size_t newline = rest.find('\n');
            overrides.emplace_back(rest.substr(0, newline));
            if (newline == std::string_view::npos) break;
            rest.remove_prefix(newline + 1);
        }
    }
    try {
        const collapse::SweepSpec spec = collapse::parse_sweep_spec_text(text, "fuzz.toml", overrides);
        // A spec that parses must describe itself and index its grid.
        (void)collapse::describe_sweep(spec);
        const collapse::Grid grid(spec);
        if (grid.size() < 1) __builtin_trap();
        (void)grid.params(0);
        (void)grid.params(grid.size() - 1);
    } catch (const collapse::SpecError&) {
    }
    return 0;
}
