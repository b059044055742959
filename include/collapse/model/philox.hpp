// Philox4x32-10 (Salmon et al., SC'11), the counter-based generator of
// SPEC §5. A draw is a pure function of (key, counter), so any trajectory's
// initial state can be made on any backend, in any order, without state.
#pragma once

#include <cstdint>

#include "collapse/model/hd.hpp"
#include "collapse/model/portable_math.hpp"

namespace collapse::philox {

struct Block {
    std::uint32_t word[4];
};

COLLAPSE_HD inline void multiply_high_low(std::uint32_t a, std::uint32_t b, std::uint32_t& high, std::uint32_t& low) {
    const std::uint64_t product = static_cast<std::uint64_t>(a) * b;
    high = static_cast<std::uint32_t>(product >> 32);
    low = static_cast<std::uint32_t>(product);
}

// Ten rounds with the published multipliers and Weyl key increments.
COLLAPSE_HD inline Block philox4x32_10(Block counter, std::uint32_t key0, std::uint32_t key1) {
    constexpr std::uint32_t multiplier0 = 0xD2511F53u, multiplier1 = 0xCD9E8D57u;
    constexpr std::uint32_t weyl0 = 0x9E3779B9u, weyl1 = 0xBB67AE85u;
    for (int round = 0; round < 10; ++round) {
        std::uint32_t high0, low0, high1, low1;
        multiply_high_low(multiplier0, counter.word[0], high0, low0);
        multiply_high_low(multiplier1, counter.word[2], high1, low1);
        counter = Block{{high1 ^ counter.word[1] ^ key0, low1, high0 ^ counter.word[3] ^ key1, low0}};
        key0 += weyl0;
        key1 += weyl1;
    }
    return counter;
}

// Independent streams of one seed; the numbering is part of the file format's
// reproducibility promise, so never renumber, only append.
enum class Stream : std::uint32_t {
    sample_embeddings = 0,
    label_embeddings = 1,
    head_A = 2,
    head_B = 3,
    frustration_order = 4,
    second_label = 5,
    encoder = 6,
    inputs = 7,
    teacher = 8,
};

// The generator for one (master seed, seed index, stream): element e of the
// stream lives in block e / 4, word e % 4.
class StreamGenerator {
public:
    COLLAPSE_HD StreamGenerator(std::uint64_t master_seed, std::uint64_t seed_index, Stream stream)
        : key0_(static_cast<std::uint32_t>(master_seed)), key1_(static_cast<std::uint32_t>(master_seed >> 32)),
          seed_low_(static_cast<std::uint32_t>(seed_index)), seed_high_(static_cast<std::uint32_t>(seed_index >> 32)),
          stream_(static_cast<std::uint32_t>(stream)) {}

    COLLAPSE_HD Block block(std::uint64_t block_index) const {
        // Block indices above 2^32 would need another counter word; no
        // trajectory state comes close (4 * 2^32 values per stream).
        return philox4x32_10(Block{{static_cast<std::uint32_t>(block_index), stream_, seed_low_, seed_high_}}, key0_, key1_);
    }

    COLLAPSE_HD std::uint32_t bits(std::uint64_t element) const { return block(element / 4).word[element % 4]; }

    // Standard normals by Box-Muller on word pairs (0,1) and (2,3) of a block:
    // sqrt(-2 log u1) cos(2 pi u2) for even elements, sin for odd. log, sin
    // and cos are portable_math.hpp's, made of correctly rounded operations
    // only, so host and device return the same bits (SPEC §5).
    COLLAPSE_HD double normal(std::uint64_t element) const {
        const Block random = block(element / 4);
        const int pair = static_cast<int>(element % 4) / 2;
        const double uniform_open = (static_cast<double>(random.word[2 * pair]) + 1.0) * 0x1p-32; // (0, 1], exact
        const double uniform_angle = static_cast<double>(random.word[2 * pair + 1]) * 0x1p-32;    // [0, 1), exact
        const double radius = portable::sqrt(portable::mul(-2.0, portable::log(uniform_open)));
        double sine, cosine;
        portable::sincos_two_pi(uniform_angle, sine, cosine);
        return portable::mul(radius, (element % 2 == 0) ? cosine : sine);
    }

    // Uniform integer in [0, bound) by multiply-shift; the bias is below
    // bound / 2^32, far under anything a sweep could resolve.
    COLLAPSE_HD std::uint32_t below(std::uint64_t element, std::uint32_t bound) const {
        return static_cast<std::uint32_t>((static_cast<std::uint64_t>(bits(element)) * bound) >> 32);
    }

private:
    std::uint32_t key0_, key1_, seed_low_, seed_high_, stream_;
};

} // namespace collapse::philox
