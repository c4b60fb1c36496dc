#include "trainer/common/fs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "trainer/common/error.h"

namespace keel::fs {
namespace {

TEST(Fs, AtomicWriteReplacesAndLeavesNoTemporaries) {
  const auto dir = std::filesystem::temp_directory_path() / ("keel_fs_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  write_file_atomic(dir / "sub" / "a.txt", "one");
  write_file_atomic(dir / "sub" / "a.txt", "two");
  EXPECT_EQ(read_file(dir / "sub" / "a.txt"), "two");
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "sub")) { (void)e; ++n; }
  EXPECT_EQ(n, 1);
  std::filesystem::remove_all(dir);
}

TEST(Fs, ReadOfAMissingFileNamesIt) {
  try {
    read_file("/nonexistent/x.json", "model config");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("/nonexistent/x.json: cannot open model config", 0), 0u) << e.what();
  }
}

}  // namespace
}  // namespace keel::fs
