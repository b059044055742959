#include "collapse/storage/format.hpp"

#include <openssl/evp.h>

#include <ctime>

#include "collapse/storage/error.hpp"

namespace collapse::storage {

std::string spec_hash_input(const SweepSpec& spec) {
    std::string text = spec.source_text + "\n";
    for (std::size_t i = 0; i < spec.overrides.size(); ++i) text += (i == 0 ? "" : "\n") + spec.overrides[i];
    return text;
}

std::string spec_sha256(const SweepSpec& spec) {
    const std::string text = spec_hash_input(spec);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1)
        throw StorageError("OpenSSL could not compute a SHA-256");
    static constexpr char hex[] = "0123456789abcdef";
    std::string result;
    for (unsigned int i = 0; i < length; ++i) {
        result += hex[digest[i] >> 4];
        result += hex[digest[i] & 0xF];
    }
    return result;
}

std::string utc_timestamp() {
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    gmtime_r(&now, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

} // namespace collapse::storage
