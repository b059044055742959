#include "counting_chunks.hpp"

#include <zlib.h>

#include <stdexcept>
#include <string>

namespace collapse::storage::detail {

namespace {

// The most pieces kept: aligned chunks of 2^16 values need 2 + 256 per byte
// above them; any other chunk length stays bounded too.
constexpr std::size_t max_pieces = 4096;

std::uint64_t low_bits(std::uint64_t value, std::size_t bits) {
    return bits >= 64 ? value : value & ((std::uint64_t{1} << bits) - 1);
}

// A raw deflate stream of `bytes` that ends byte-aligned without a final
// block (Z_FULL_FLUSH), so pieces can be joined and more can follow.
std::vector<unsigned char> deflate_piece(const std::vector<unsigned char>& bytes, int level) {
    z_stream stream{};
    if (deflateInit2(&stream, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("zlib: deflateInit2 failed");
    std::vector<unsigned char> out(deflateBound(&stream, static_cast<uLong>(bytes.size())) + 16);
    stream.next_in = const_cast<unsigned char*>(bytes.data());
    stream.avail_in = static_cast<uInt>(bytes.size());
    stream.next_out = out.data();
    stream.avail_out = static_cast<uInt>(out.size());
    const int status = deflate(&stream, Z_FULL_FLUSH);
    const bool complete = status == Z_OK && stream.avail_in == 0 && stream.avail_out > 0;
    out.resize(out.size() - stream.avail_out);
    deflateEnd(&stream);
    if (!complete) throw std::runtime_error("zlib: deflate of a coordinate chunk failed");
    return out;
}

} // namespace

CountingChunkEncoder::CountingChunkEncoder(std::size_t element_size, std::size_t chunk_length, int level)
    : element_size_(element_size), chunk_length_(chunk_length), level_(level) {
    if (element_size < 1 || element_size > 8 || chunk_length < 1 || chunk_length > (std::size_t{1} << 24))
        throw std::invalid_argument("CountingChunkEncoder: element size " + std::to_string(element_size) +
                                    ", chunk length " + std::to_string(chunk_length));
}

const CountingChunkEncoder::Piece& CountingChunkEncoder::piece(std::size_t plane, std::uint64_t first) {
    const std::size_t shift = 8 * plane;
    const std::uint64_t last = first + (chunk_length_ - 1);
    const bool constant = (first >> shift) == (last >> shift);
    const PieceKey key{plane, constant, constant ? (first >> shift) & 0xff : low_bits(first, shift + 8)};
    if (auto found = pieces_.find(key); found != pieces_.end()) return found->second;
    if (pieces_.size() >= max_pieces) pieces_.clear();
    plane_bytes_.resize(chunk_length_);
    for (std::size_t i = 0; i < chunk_length_; ++i)
        plane_bytes_[i] = static_cast<unsigned char>((first + i) >> shift);
    Piece made;
    made.deflated = deflate_piece(plane_bytes_, level_);
    made.adler = adler32(1, plane_bytes_.data(), static_cast<uInt>(plane_bytes_.size()));
    return pieces_.emplace(key, std::move(made)).first->second;
}

const std::vector<unsigned char>& CountingChunkEncoder::encode(std::uint64_t first) {
    // zlib header: deflate with a 32 KiB window, default level flag; (0x78 * 256 + 0x9c) % 31 == 0.
    chunk_.assign({0x78, 0x9c});
    unsigned long adler = 1; // Adler-32 of nothing
    for (std::size_t plane = 0; plane < element_size_; ++plane) {
        const Piece& part = piece(plane, first);
        chunk_.insert(chunk_.end(), part.deflated.begin(), part.deflated.end());
        adler = adler32_combine(adler, part.adler, static_cast<z_off_t>(chunk_length_));
    }
    // An empty final block with fixed codes (BFINAL 1, BTYPE 01, end-of-block code), then Adler-32, big-endian.
    chunk_.insert(chunk_.end(), {0x03, 0x00});
    for (int shift = 24; shift >= 0; shift -= 8) chunk_.push_back(static_cast<unsigned char>(adler >> shift));
    return chunk_;
}

} // namespace collapse::storage::detail
