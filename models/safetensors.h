// safetensors: keel's own reader and writer for the published format
// (https://huggingface.co/docs/safetensors): 8-byte little-endian header length N, N bytes of
// JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the data buffer. Reads are memory-mapped and zero-copy where alignment allows; every
// header field is checked against the file size before any byte of data is touched.
// Sharded checkpoints are read through model.safetensors.index.json.
// Deliberately not here: dtypes other than F32/F16/BF16 (a clear error), splitting into shards
// (pretrained.cpp),
// anything about models (see transformer.h for HF parameter names).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace keel::models {

/// One entry of a safetensors header, already validated against the file.
struct SafetensorsEntry {
  std::string name;
  at::ScalarType dtype = at::kFloat;  ///< F32 -> kFloat, F16 -> kHalf, BF16 -> kBFloat16
  std::vector<int64_t> shape;
  uint64_t begin = 0;  ///< byte offset into the data buffer (after the header)
  uint64_t end = 0;    ///< one past the last byte
};

/// An open, memory-mapped safetensors file. Tensors returned by tensor() alias the mapping
/// (copy-on-write: writing to them never touches the file) and keep it alive.
class SafetensorsFile {
 public:
  /// Maps and validates `path`; any problem is a keel::Error naming the file and the problem.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  /// Tensor names in header order of their data offsets.
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  const SafetensorsEntry& entry(const std::string& name) const;
  /// The tensor `name` on CPU in its stored dtype (keel::Error if absent).
  at::Tensor tensor(const std::string& name) const;
  /// The optional "__metadata__" string map.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  struct Mapping;
  std::string path_;
  std::shared_ptr<Mapping> map_;
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

/// Reads every tensor of one file (CPU, stored dtype).
std::map<std::string, at::Tensor> load_safetensors(const std::string& path);

/// Reads a checkpoint directory: `dir/model.safetensors.index.json` (sharded; every listed tensor
/// must be in the shard named for it, shards must stay inside `dir`) or else `dir/model.safetensors`.
std::map<std::string, at::Tensor> load_safetensors_dir(const std::string& dir);

/// Writes `tensors` (F32/F16/BF16, any device, made contiguous on CPU) to `path` atomically:
/// a temp file in the same directory, fsync, rename, fsync of the directory.
void save_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// "F32" / "F16" / "BF16" for the three supported dtypes (keel::Error otherwise).
std::string safetensors_dtype_name(at::ScalarType t);

}  // namespace keel::models
