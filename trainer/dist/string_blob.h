// Strings and byte strings as tensors, for the collectives and point-to-point messages that carry
// texts (batch transport, gathered batches) and opaque state (reward states at checkpoints).
// Layout of a string list: [count][len, bytes]... with 8-byte host-order integers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace keel::dist {

/// Appends `v` to `blob` as a string list.
void put_strings(std::string& blob, const std::vector<std::string>& v);

/// Reads string lists back from a blob; a truncated or malformed blob is a keel::Error naming `what`.
class StringBlobReader {
 public:
  StringBlobReader(const std::string& blob, std::string what);
  std::vector<std::string> strings();
  bool done() const { return p_ == end_; }

 private:
  int64_t get();
  const char* p_;
  const char* end_;
  std::string what_;
};

/// `bytes` as a 1-D uint8 CPU tensor, and back.
at::Tensor bytes_tensor(const std::string& bytes);
std::string tensor_bytes(const at::Tensor& t);

}  // namespace keel::dist
