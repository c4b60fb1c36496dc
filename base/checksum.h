// XXH64 (Yann Collet's xxHash, 64-bit variant, as specified in xxHash's doc/xxhash_spec.md): the
// checksum of checkpoint manifests. Fast enough (several GB/s) that hashing a checkpoint costs
// little next to writing it, and it catches truncated, zeroed and bit-flipped files. Not a
// cryptographic hash: it guards against accidents, not against an adversary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace keel::checksum {

/// Streaming XXH64: update() any number of times, then digest() (which does not reset).
class Xxh64 {
 public:
  explicit Xxh64(uint64_t seed = 0);
  void update(const void* data, size_t n);
  uint64_t digest() const;

 private:
  uint64_t v_[4];
  uint64_t seed_;
  uint64_t total_ = 0;
  unsigned char buf_[32];
  size_t buffered_ = 0;
};

/// XXH64 of [data, data + n).
uint64_t xxh64(const void* data, size_t n, uint64_t seed = 0);

/// XXH64 of a file's bytes, read in chunks; a missing or unreadable file throws keel::Error naming it.
uint64_t file_xxh64(const std::filesystem::path& p);

/// 16 lower-case hex digits.
std::string hex(uint64_t h);

}  // namespace keel::checksum
