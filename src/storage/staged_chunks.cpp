#include "staged_chunks.hpp"

#include <unistd.h>

#include <atomic>
#include <set>

#include "writer_state.hpp"

namespace collapse::storage::detail {

namespace {

// Chunk offsets (in elements) of every chunk the boxes touch, each box
// extended over the trailing dimensions; in increasing order, no repeats.
std::set<std::vector<hsize_t>> touched_chunks(const DatasetLayout& layout, const std::vector<GridBox>& boxes) {
    const std::size_t rank = layout.shape.size();
    std::set<std::vector<hsize_t>> chunks;
    for (const GridBox& box : boxes) {
        std::vector<std::int64_t> first(rank), last(rank);
        for (std::size_t d = 0; d < rank; ++d) {
            const bool grid = d < box.start.size();
            const std::int64_t begin = grid ? box.start[d] : 0;
            const std::int64_t end = grid ? box.start[d] + box.count[d] : layout.shape[d];
            first[d] = begin / layout.chunk[d];
            last[d] = (end - 1) / layout.chunk[d];
        }
        std::vector<std::int64_t> index = first;
        for (;;) {
            std::vector<hsize_t> offset(rank);
            for (std::size_t d = 0; d < rank; ++d) offset[d] = static_cast<hsize_t>(index[d] * layout.chunk[d]);
            chunks.insert(std::move(offset));
            std::size_t d = rank;
            while (d > 0 && index[d - 1] == last[d - 1]) {
                index[d - 1] = first[d - 1];
                --d;
            }
            if (d == 0) break;
            ++index[d - 1];
        }
    }
    return chunks;
}

// Copies the chunk at `offset` of `from` raw into `to`, if `from` has it.
void copy_raw_chunk(hid_t from, hid_t to, const std::vector<hsize_t>& offset, std::vector<unsigned char>& buffer,
                    const std::string& what) {
    hsize_t size = 0;
    if (H5Dget_chunk_storage_size(from, offset.data(), &size) < 0) {
        take_error_stack(); // not allocated yet: the chunk still holds only fill values
        return;
    }
    if (size == 0) return;
    buffer.resize(static_cast<std::size_t>(size));
    std::uint32_t mask = 0;
    check(H5Dread_chunk(from, H5P_DEFAULT, offset.data(), &mask, buffer.data()), "cannot read a chunk of " + what);
    check(H5Dwrite_chunk(to, H5P_DEFAULT, mask, offset.data(), static_cast<std::size_t>(size), buffer.data()),
          "cannot stage a chunk of " + what);
}

Handle in_memory_file() {
    static std::atomic<unsigned> counter{0};
    Handle access = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "cannot make a file access list");
    check(H5Pset_fapl_core(access.get(), 1 << 22, 0), "cannot select the in-memory driver");
    // The name only has to be unique among the files this process has open.
    const std::string name = "collapse-staging-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    return checked(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get()), H5Fclose,
                   "cannot make an in-memory staging file");
}

} // namespace

Handle select_items(hid_t dataset, const DatasetLayout& layout, const std::vector<GridBox>& boxes) {
    Handle space = checked(H5Dget_space(dataset), H5Sclose, "cannot get the dataspace of " + layout.path());
    const std::size_t rank = layout.shape.size();
    std::vector<hsize_t> start(rank, 0), count(layout.shape.begin(), layout.shape.end());
    check(H5Sselect_none(space.get()), "cannot reset a selection");
    for (const GridBox& box : boxes) {
        std::copy(box.start.begin(), box.start.end(), start.begin());
        std::copy(box.count.begin(), box.count.end(), count.begin());
        check(H5Sselect_hyperslab(space.get(), H5S_SELECT_OR, start.data(), nullptr, count.data(), nullptr),
              "cannot select in " + layout.path());
    }
    return space;
}

std::vector<StagedChunk> stage_chunks(const std::string& path, const std::vector<const DatasetLayout*>& layouts,
                                      const std::vector<GridBox>& boxes, const StageWriter& write,
                                      const PendingChunks& earlier) {
    Handle access = writer_access();
    // Between windows the file is closed and clean: a plain read-only open.
    Handle file = checked(H5Fopen(path.c_str(), H5F_ACC_RDONLY, access.get()), H5Fclose,
                          "cannot open " + path + " to read its chunks");
    Handle staging = in_memory_file();
    std::vector<StagedChunk> staged;
    std::vector<unsigned char> buffer;
    for (const DatasetLayout* layout : layouts) {
        const std::string what = path + ": " + layout->path();
        Handle source = open_dataset(file.get(), layout->path());
        Handle creation = checked(H5Dget_create_plist(source.get()), H5Pclose, "cannot read the layout of " + what);
        // Setting the chunk shape again resets the layout's storage part,
        // which H5Dget_create_plist copies from the file's dataset: with it, a
        // single-chunk dataset whose chunk the file had not allocated yet
        // corrupted the heap once a raw chunk was written into the copy
        // (HDF5 1.10.8; met when coalesced batches were staged).
        std::vector<hsize_t> chunk_shape(layout->shape.size());
        if (H5Pget_chunk(creation.get(), static_cast<int>(chunk_shape.size()), chunk_shape.data()) !=
            static_cast<int>(chunk_shape.size()))
            fail("cannot read the chunk shape of " + what);
        check(H5Pset_chunk(creation.get(), static_cast<int>(chunk_shape.size()), chunk_shape.data()),
              "cannot chunk the staging copy of " + what);
        Handle type = checked(H5Dget_type(source.get()), H5Tclose, "cannot read the type of " + what);
        Handle space = checked(H5Dget_space(source.get()), H5Sclose, "cannot read the shape of " + what);
        const std::string name = std::to_string(staged.size()) + "-" + layout->name;
        Handle copy = checked(H5Dcreate2(staging.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT,
                                         creation.get(), H5P_DEFAULT),
                              H5Dclose, "cannot stage " + what);
        const std::set<std::vector<hsize_t>> chunks = touched_chunks(*layout, boxes);
        for (const std::vector<hsize_t>& offset : chunks) {
            const auto newer = earlier.find(ChunkKey{layout->path(), offset});
            if (newer == earlier.end()) {
                copy_raw_chunk(source.get(), copy.get(), offset, buffer, what);
                continue;
            }
            const StagedChunk& chunk = newer->second;
            check(H5Dwrite_chunk(copy.get(), H5P_DEFAULT, chunk.filter_mask, offset.data(), chunk.bytes.size(),
                                 chunk.bytes.data()),
                  "cannot stage a chunk of " + what);
        }
        {
            Handle selection = select_items(copy.get(), *layout, boxes);
            write(copy.get(), *layout, selection.get());
        }
        check(H5Dflush(copy.get()), "cannot compress the chunks of " + what);
        for (const std::vector<hsize_t>& offset : chunks) {
            StagedChunk chunk;
            chunk.layout = layout;
            chunk.offset = offset;
            hsize_t size = 0;
            check(H5Dget_chunk_storage_size(copy.get(), offset.data(), &size), "cannot size a chunk of " + what);
            chunk.bytes.resize(static_cast<std::size_t>(size));
            check(H5Dread_chunk(copy.get(), H5P_DEFAULT, offset.data(), &chunk.filter_mask, chunk.bytes.data()),
                  "cannot read a staged chunk of " + what);
            staged.push_back(std::move(chunk));
        }
    }
    return staged;
}

void store_chunks(const std::vector<StagedChunk>& chunks, const std::function<hid_t(const DatasetLayout&)>& dataset_of) {
    for (const StagedChunk& chunk : chunks)
        check(H5Dwrite_chunk(dataset_of(*chunk.layout), H5P_DEFAULT, chunk.filter_mask, chunk.offset.data(),
                             chunk.bytes.size(), chunk.bytes.data()),
              "cannot write " + chunk.layout->path());
}

} // namespace collapse::storage::detail
