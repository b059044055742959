// The stored chunks of a counting coordinate (0, 1, 2, ...: seed, class,
// sample, ...) under HDF5's shuffle + deflate filters, without compressing
// each chunk from scratch.
//
// Compressing the values through H5Dwrite took 24-79 s for 10^8 seeds (3 x
// 10^8 values, deflate level 6, one copy per group) before the file existed.
// But shuffle splits a chunk into byte planes (byte j of every value), and
// the planes of an arange repeat: in chunks of 2^16 values the two low planes
// are the same in every chunk and each higher plane is one byte repeated. A
// zlib stream may be any sequence of deflate blocks, so each plane is
// compressed once on its own (a raw deflate stream closed by a full flush,
// byte-aligned and referring to nothing before it, as pigz joins its pieces)
// and a chunk is the zlib header, its planes' pieces, an empty final block
// and the Adler-32 of the whole (adler32_combine). The result is an ordinary
// zlib stream that HDF5's deflate filter, h5py and any zlib inflate read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

namespace collapse::storage::detail {

class CountingChunkEncoder {
public:
    // Chunks of `chunk_length` values of `element_size` bytes (little-endian
    // unsigned integers, as HDF5 stores int32/int64 counting scales),
    // deflated at `level`.
    CountingChunkEncoder(std::size_t element_size, std::size_t chunk_length, int level);

    // The stored bytes (shuffle, then deflate) of the chunk holding `first`,
    // first + 1, ..., first + chunk_length - 1. Valid until the next call.
    const std::vector<unsigned char>& encode(std::uint64_t first);

    std::size_t element_size() const { return element_size_; }
    std::size_t chunk_length() const { return chunk_length_; }

private:
    struct Piece {
        std::vector<unsigned char> deflated; // raw deflate blocks ending in a full flush
        unsigned long adler = 1;             // Adler-32 of the plane
    };
    // Byte plane `plane` of a chunk is fixed by (plane, constant, value): a
    // plane whose value bits above it do not change within the chunk is one
    // byte repeated (constant = true, value = that byte); any other plane
    // depends only on `first` modulo 2^(8 (plane + 1)) (value).
    using PieceKey = std::tuple<std::size_t, bool, std::uint64_t>;

    const Piece& piece(std::size_t plane, std::uint64_t first);

    std::size_t element_size_;
    std::size_t chunk_length_;
    int level_;
    std::map<PieceKey, Piece> pieces_;
    std::vector<unsigned char> plane_bytes_;
    std::vector<unsigned char> chunk_;
};

} // namespace collapse::storage::detail
