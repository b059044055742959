// A guard in front of toml++ 3.3 (Debian's): its check for non-ASCII
// whitespace reaches __builtin_unreachable for most non-ASCII code points
// (toml++ issues #190 and #295, fixed upstream after 3.3), which is undefined
// behaviour. It is reached only where TOML allows no non-ASCII character
// anyway: outside strings and comments, and right after a line-ending
// backslash in a multi-line basic string. The fuzzer (tools/fuzz.sh) found it.
#include <cstdint>
#include <string>

#include "spec_detail.hpp"

namespace collapse::spec_detail {

std::optional<NonAsciiPlace> non_ascii_outside_strings(std::string_view text) {
    std::uint64_t line = 1;
    const auto non_ascii = [](char c) { return static_cast<unsigned char>(c) >= 0x80; };
    const auto starts = [&](std::size_t i, std::string_view token) { return text.substr(i, token.size()) == token; };
    // A quote opens a string only where a key or value can start; elsewhere
    // (`-2'abc`) toml++ reads it as part of a malformed bare value and scans
    // on over what follows (a fuzzer find).
    const auto opens_string = [&](std::size_t at) {
        std::size_t j = at;
        while (j > 0 && (text[j - 1] == ' ' || text[j - 1] == '\t')) --j;
        return j == 0 || std::string_view("\n\r=[,{.").find(text[j - 1]) != std::string_view::npos;
    };
    std::size_t i = 0;
    while (i < text.size()) {
        const char c = text[i];
        if (c == '\n') {
            ++line;
            ++i;
        } else if ((c == '"' || c == '\'') && !opens_string(i)) {
            ++i;
        } else if (c == '#') { // a comment runs to the end of the line
            while (i < text.size() && text[i] != '\n') ++i;
        } else if (starts(i, "\"\"\"") || starts(i, "'''")) {
            const bool basic = c == '"';
            const std::string_view close = basic ? "\"\"\"" : "'''";
            i += 3;
            while (i < text.size() && !starts(i, close)) {
                if (basic && text[i] == '\\') {
                    // A line-ending backslash trims the whitespace after it.
                    std::size_t j = i + 1;
                    while (j < text.size() && (text[j] == ' ' || text[j] == '\t')) ++j;
                    if (j < text.size() && (text[j] == '\n' || text[j] == '\r')) {
                        while (j < text.size() && (text[j] == ' ' || text[j] == '\t' || text[j] == '\n' || text[j] == '\r')) {
                            if (text[j] == '\n') ++line;
                            ++j;
                        }
                        if (j < text.size() && non_ascii(text[j])) return NonAsciiPlace{line, "after a line-ending backslash"};
                        i = j;
                        continue;
                    }
                    i += 2;
                    continue;
                }
                if (text[i] == '\n') ++line;
                ++i;
            }
            i += 3;
        } else if (c == '"' || c == '\'') { // one-line strings end at their quote or the line
            ++i;
            while (i < text.size() && text[i] != c && text[i] != '\n') i += c == '"' && text[i] == '\\' ? 2 : 1;
            if (i < text.size() && text[i] == c) ++i;
        } else if (non_ascii(c)) {
            return NonAsciiPlace{line, "outside a string or comment"};
        } else {
            ++i;
        }
    }
    return std::nullopt;
}

} // namespace collapse::spec_detail
