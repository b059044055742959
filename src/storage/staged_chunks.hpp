// Chunks prepared outside the write window. Compressing a batch's chunks is
// most of the time a batch takes to write; done inside the window it kept
// the file marked "open for writing" (unreadable to plain HDF5 readers after
// a kill) for 5-15% of a run with small batches. So the chunks a batch
// touches are assembled and compressed first, in an in-memory HDF5 file,
// from the file's current chunks (copied raw through a read-only open) with
// the batch written over them; the window then only stores finished chunks
// (H5Dwrite_chunk), which is I/O, not compression.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "collapse/storage/flat_boxes.hpp"
#include "hdf5_util.hpp"
#include "layout.hpp"

namespace collapse::storage::detail {

struct StagedChunk {
    const DatasetLayout* layout = nullptr;
    std::vector<hsize_t> offset; // element coordinates of the chunk's first element
    std::uint32_t filter_mask = 0;
    std::vector<unsigned char> bytes; // as stored in the file (compressed)
};

// Chunks staged but not yet stored (coalesced writes, writer_state.hpp), by
// dataset path and offset: the newest version of each chunk.
using ChunkKey = std::pair<std::string, std::vector<hsize_t>>;
using PendingChunks = std::map<ChunkKey, StagedChunk>;

// Writes a batch's values of `layout` into `dataset` (a staging copy) over
// the selection `file_space` (the batch's items).
using StageWriter = std::function<void(hid_t dataset, const DatasetLayout& layout, hid_t file_space)>;

// For every dataset in `layouts`, the finished chunks that the items covered
// by `boxes` touch. Each starts from its version in `earlier` if there is
// one (not stored yet), else from the file: `path` is read (read-only, no
// HDF5 file lock), never written.
std::vector<StagedChunk> stage_chunks(const std::string& path, const std::vector<const DatasetLayout*>& layouts,
                                      const std::vector<GridBox>& boxes, const StageWriter& write,
                                      const PendingChunks& earlier);

// Stores staged chunks into the open file's datasets (inside a window).
void store_chunks(const std::vector<StagedChunk>& chunks, const std::function<hid_t(const DatasetLayout&)>& dataset_of);

// The file-space selection of the items covered by `boxes`, each extended
// over the dataset's trailing dimensions.
Handle select_items(hid_t dataset, const DatasetLayout& layout, const std::vector<GridBox>& boxes);

} // namespace collapse::storage::detail
