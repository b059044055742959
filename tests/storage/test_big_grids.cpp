// Issue 14: a grid of 10^7-10^8 seeds starts with a file of a few MB, made
// in a moment, that grows with the trajectories written, not with the grid.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <zlib.h>

#include <filesystem>
#include <numeric>

#include "counting_chunks.hpp"
#include "synthetic.hpp"

namespace collapse::storage::testing {
namespace {

using detail::CountingChunkEncoder;

// What HDF5's shuffle filter makes of first, first + 1, ...: byte j of
// element i (little-endian) at position j * length + i.
std::vector<unsigned char> shuffled_counting_values(std::uint64_t first, std::size_t length, std::size_t size) {
    std::vector<unsigned char> bytes(length * size);
    for (std::size_t i = 0; i < length; ++i)
        for (std::size_t j = 0; j < size; ++j)
            bytes[j * length + i] = static_cast<unsigned char>((first + i) >> (8 * j));
    return bytes;
}

std::vector<unsigned char> inflated(const std::vector<unsigned char>& stream, std::size_t expected_size) {
    std::vector<unsigned char> out(expected_size + 64); // room to notice a stream that is too long
    uLongf out_size = out.size();
    const int status = uncompress(out.data(), &out_size, stream.data(), static_cast<uLong>(stream.size()));
    EXPECT_EQ(status, Z_OK) << "not a valid zlib stream (checksum or structure)";
    out.resize(out_size);
    return out;
}

TEST(CountingChunks, EveryChunkInflatesToTheShuffledValues) {
    struct Case {
        std::size_t element_size, length;
        std::vector<std::uint64_t> firsts;
    };
    const Case cases[] = {
        {8, 65536, {0, 65536, 5 * 65536, 255 * 65536, 256 * 65536, 1525 * 65536, (1ull << 32) - 65536, 1ull << 40}},
        {8, 1000, {0, 1000, 254000, 65000}},  // chunks crossing byte boundaries inside
        {4, 65536, {0, 65536, 3 * 65536}},
        {4, 7, {0}},
        {8, 1, {0, 1, 255, 256}},
    };
    for (const Case& c : cases) {
        CountingChunkEncoder encoder(c.element_size, c.length, 9);
        for (int pass = 0; pass < 2; ++pass) // the second pass is served from the pieces kept by the first
            for (std::uint64_t first : c.firsts) {
                const std::vector<unsigned char> expected = shuffled_counting_values(first, c.length, c.element_size);
                EXPECT_EQ(inflated(encoder.encode(first), expected.size()), expected)
                    << "element size " << c.element_size << ", length " << c.length << ", first " << first;
            }
    }
}

TEST(CountingChunks, AlignedChunksCostAboutAKilobyte) {
    // Compressed whole, the same chunk is ~1.6 KB at level 9: the pieces must not be worse by much.
    CountingChunkEncoder encoder(8, 65536, 9);
    const std::vector<unsigned char> plain = shuffled_counting_values(7 * 65536, 65536, 8);
    std::vector<unsigned char> whole(compressBound(plain.size()));
    uLongf whole_size = whole.size();
    ASSERT_EQ(compress2(whole.data(), &whole_size, plain.data(), plain.size(), 9), Z_OK);
    EXPECT_LT(encoder.encode(7 * 65536).size(), whole_size + 200);
}

// Reads values [first, first + count) of a 1-D int64 dataset.
std::vector<std::int64_t> read_range(hid_t file, const std::string& path, hsize_t first, hsize_t count) {
    const hid_t dataset = H5Dopen2(file, path.c_str(), H5P_DEFAULT);
    const hid_t space = H5Dget_space(dataset);
    H5Sselect_hyperslab(space, H5S_SELECT_SET, &first, nullptr, &count, nullptr);
    const hid_t memory = H5Screate_simple(1, &count, nullptr);
    std::vector<std::int64_t> values(count, -7);
    EXPECT_GE(H5Dread(dataset, H5T_NATIVE_INT64, memory, space, H5P_DEFAULT, values.data()), 0) << path;
    H5Sclose(memory);
    H5Sclose(space);
    H5Dclose(dataset);
    return values;
}

TEST(CountingChunks, HDF5ReadsTheSeedCoordinateBack) {
    SpecOptions options;
    options.seeds = 200'000; // three whole chunks of 65536 and a partial one
    options.save_initial = false;
    options.save_samples = false;
    options.record_points = 2;
    const SweepSpec spec = make_spec(options);
    const std::string path = temporary_directory("seed-scale") + "/out.h5";
    ResultWriter::create(path, spec, Grid(spec), test_provenance(), {}, false)->close();
    const ResultReader reader(path);
    std::vector<std::int64_t> expected(200'000);
    std::iota(expected.begin(), expected.end(), 0);
    for (const char* group : {"/results", "/traces", "/final"})
        EXPECT_EQ(reader.read_integers(std::string(group) + "/seed"), expected) << group;
    EXPECT_EQ(reader.read_integers("/final/class"), (std::vector<std::int64_t>{0, 1, 2}));
}

std::uintmax_t size_of(const std::string& path) { return std::filesystem::file_size(path); }

// 6 x 10^7 trajectories (frustration x head_dim x 10^7 seeds): 117 188
// chunks of 512 trajectories per gridded dataset. A fixed-array chunk index
// (~16 B per chunk) is allocated whole on a dataset's first write, ~2 MB per
// dataset, ~45 MB for the first batch; the extensible array grows with it.
TEST(StorageLimits, ABigGridStartsSmallAndGrowsWithTheWorkDone) {
    SpecOptions options = two_axis_options();
    options.seeds = 10'000'000;
    options.save_initial = false;
    options.save_samples = false;
    options.record_points = 4;
    const SweepSpec spec = make_spec(options);
    const Grid grid(spec);
    const std::string path = temporary_directory("big-grid") + "/out.h5";
    auto writer = ResultWriter::create(path, spec, grid, test_provenance(), {}, false);
    const std::uintmax_t created = size_of(path);
    EXPECT_LT(created, 2'000'000u) << "three copies of 10^7 seed values (measured 0.77 MB)";

    std::vector<std::int64_t> first_batch(1024);
    std::iota(first_batch.begin(), first_batch.end(), 0);
    writer->write_batch(make_batch(spec, first_batch));
    const std::uintmax_t after_first = size_of(path);
    // 1024 trajectories of a few hundred bytes each, compressed (measured 23 KB; 46 MB with a fixed array).
    EXPECT_LT(after_first - created, 1'000'000u) << "created " << created << " B, after one batch " << after_first;

    // A batch at the far end of the grid: the index grows to reach it, but
    // by far less than the whole grid's (the extensible array's blocks grow
    // geometrically; a fixed array would be ~45 MB here).
    std::vector<std::int64_t> last_batch(1024);
    std::iota(last_batch.begin(), last_batch.end(), grid.size() - 1024);
    writer->write_batch(make_batch(spec, last_batch));
    EXPECT_LT(size_of(path) - after_first, 4'000'000u); // measured 0.43 MB
    writer->close();

    const ResultReader reader(path);
    const std::array<std::int64_t, 4> counts = reader.status_counts();
    EXPECT_EQ(counts[0] + counts[1] + counts[2] + counts[3], grid.size());
    EXPECT_EQ(grid.size() - counts[0], 2048); // both batches landed (their values: StorageRoundTrip)
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    EXPECT_EQ(read_range(file, "/results/seed", 9'999'990, 10),
              (std::vector<std::int64_t>{9'999'990, 9'999'991, 9'999'992, 9'999'993, 9'999'994, 9'999'995, 9'999'996,
                                         9'999'997, 9'999'998, 9'999'999}));
    EXPECT_EQ(read_range(file, "/traces/seed", 65'530, 12)[11], 65'541);
    H5Fclose(file);
}

} // namespace
} // namespace collapse::storage::testing
