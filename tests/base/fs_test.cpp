#include "base/fs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "base/error.h"

namespace keel::fs {
namespace {

TEST(Fs, AtomicWriteReplacesAndLeavesNoTemporaries) {
  const auto dir = std::filesystem::temp_directory_path() / ("keel_fs_" + std::to_string(::getpid()));
  keel::fs::remove_tree(dir);
  write_file_atomic(dir / "sub" / "a.txt", "one");
  write_file_atomic(dir / "sub" / "a.txt", "two");
  EXPECT_EQ(read_file(dir / "sub" / "a.txt"), "two");
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "sub")) { (void)e; ++n; }
  EXPECT_EQ(n, 1);
  keel::fs::remove_tree(dir);
}

TEST(Fs, RemoveTreeRemovesEverythingAndFollowsNoLink) {
  const auto root = std::filesystem::temp_directory_path() / ("keel_fs_tree_" + std::to_string(::getpid()));
  const auto outside = root.string() + "_outside";
  remove_tree(root);
  remove_tree(outside);
  write_file_atomic(root / "a" / "b" / "f1", "1");
  write_file_atomic(root / "a" / "f2", "2");
  write_file_atomic(root / "f3", "3");
  write_file_atomic(std::filesystem::path(outside) / "keep", "k");
  std::filesystem::create_directory_symlink(outside, root / "link");  // must be removed, not followed
  // root, a, b, f1, f2, f3, link = 7 entries.
  EXPECT_EQ(remove_tree(root), 7u);
  EXPECT_FALSE(std::filesystem::exists(root));
  EXPECT_EQ(read_file(std::filesystem::path(outside) / "keep"), "k");
  std::error_code ec;
  EXPECT_EQ(remove_tree(root, ec), 0u);  // absent: nothing to do, no error
  EXPECT_FALSE(ec);
  write_file_atomic(root / "single", "s");
  EXPECT_EQ(remove_tree(root / "single"), 1u);  // a plain file
  EXPECT_EQ(remove_tree(root), 1u);
  EXPECT_EQ(remove_tree(outside), 2u);
}

// keel must not call std::filesystem::remove_all (see remove_tree in fs.h: the pip LibTorch's copy
// crashes). A lint over the sources, so that a new call fails here and not on a GPU machine.
TEST(Fs, NoSourceCallsStdRemoveAll) {
  std::vector<std::string> offenders;
  for (const char* sub : {"models", "rewards", "trainer", "tests", "bench"}) {
    const auto root = std::filesystem::path(KEEL_SOURCE_DIR) / sub;
    for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
      const auto ext = e.path().extension();
      if (!e.is_regular_file() || (ext != ".cpp" && ext != ".h")) continue;
      const std::string text = read_file(e.path());
      // The needle is spelled in two pieces so that this file does not match itself.
      if (text.find(std::string("remove_") + "all(") != std::string::npos) offenders.push_back(e.path().string());
    }
  }
  EXPECT_TRUE(offenders.empty()) << "use keel::fs::remove_tree instead of std::filesystem::remove_all in: "
                                 << ::testing::PrintToString(offenders);
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
