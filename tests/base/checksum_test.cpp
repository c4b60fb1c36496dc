#include "base/checksum.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <string>

#include "base/fs.h"

namespace keel::checksum {
namespace {

std::string bytes_0_255_three_times_xyz() {
  std::string s;
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s + "xyz";
}

// Reference values from the xxhash package on PyPI (xxhash.xxh64(data, seed).intdigest()): the
// short inputs take the tail paths, the 771-byte one the 32-byte stripes as well.
TEST(Xxh64, MatchesTheReferenceImplementation) {
  EXPECT_EQ(xxh64("", 0), 0xef46db3751d8e999ULL);
  EXPECT_EQ(xxh64("a", 1), 0xd24ec4f1a98c6e5bULL);
  EXPECT_EQ(xxh64("abc", 3), 0x44bc2cf5ad770999ULL);
  EXPECT_EQ(xxh64("keel", 4), 0xbb0f2315222e4723ULL);
  EXPECT_EQ(xxh64("abc", 3, 7), 0x9e755206156676d7ULL);
  const auto s = bytes_0_255_three_times_xyz();
  EXPECT_EQ(xxh64(s.data(), s.size()), 0xe921a1b45bd779f8ULL);
  EXPECT_EQ(hex(0xe921a1b45bd779f8ULL), "e921a1b45bd779f8");
}

// Streaming in pieces of any size gives the one-shot digest.
TEST(Xxh64, StreamingEqualsOneShotForAnySplit) {
  std::mt19937 rng(5);
  std::string data(5000, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  for (int trial = 0; trial < 50; ++trial) {
    const size_t n = rng() % data.size();
    Xxh64 x;
    for (size_t at = 0; at < n;) {
      const size_t take = std::min<size_t>(n - at, rng() % 70);
      x.update(data.data() + at, take);
      at += take;
    }
    EXPECT_EQ(x.digest(), xxh64(data.data(), n)) << "n " << n;
  }
}

TEST(Xxh64, FileHashEqualsTheBytesHashAndNamesAMissingFile) {
  const auto dir = std::filesystem::temp_directory_path() / ("keel_xxh_" + std::to_string(::getpid()));
  const auto s = bytes_0_255_three_times_xyz();
  fs::write_file_atomic(dir / "f.bin", s);
  EXPECT_EQ(file_xxh64(dir / "f.bin"), 0xe921a1b45bd779f8ULL);
  try {
    file_xxh64(dir / "missing.bin");
    ADD_FAILURE() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("missing.bin"), std::string::npos) << e.what();
  }
  fs::remove_tree(dir);
}

}  // namespace
}  // namespace keel::checksum
