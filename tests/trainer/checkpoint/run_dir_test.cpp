#include "trainer/checkpoint/run_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "base/build_info.h"
#include "base/fs.h"

namespace keel::checkpoint {
namespace {

TEST(RunDir, WritesResolvedConfigRevisionAndCommand) {
  const auto dir = std::filesystem::temp_directory_path() / ("keel_rundir_" + std::to_string(::getpid())) / "r";
  prepare_run_dir(dir, "run:\n  name: r\n", {"keel", "train", "c.yaml"});
  EXPECT_EQ(fs::read_file(dir / "config.yaml"), "# resolved config of this run (keel print-config)\nrun:\n  name: r\n");
  const std::string rev = fs::read_file(dir / "git_revision");
  EXPECT_EQ(rev, std::string(build_git_revision()) + "\n");
  EXPECT_NE(rev, "unknown\n");  // built from this git checkout
  EXPECT_EQ(fs::read_file(dir / "command"), "keel train c.yaml\n");
  keel::fs::remove_tree(dir.parent_path());
}

}  // namespace
}  // namespace keel::checkpoint
