#include "trainer/checkpoint/checkpoint_manager.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "base/error.h"
#include "base/fs.h"

namespace keel::checkpoint {
namespace {

namespace stdfs = std::filesystem;

class Checkpoints : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = stdfs::temp_directory_path() / ("keel_ckpt_" + std::to_string(::getpid())) / "checkpoints";
    keel::fs::remove_tree(root_.parent_path());
  }
  void TearDown() override { keel::fs::remove_tree(root_.parent_path()); }
  stdfs::path save(CheckpointManager& m, int64_t step) {
    const auto s = m.begin(step);
    fs::write_file_atomic(s / "state.json", "{\"step\": " + std::to_string(step) + "}");
    return m.commit(s, step);
  }
  stdfs::path root_;
};

TEST_F(Checkpoints, CommitKeepsLastNAndLatestIsNewest) {
  CheckpointManager m(root_, 2);
  EXPECT_FALSE(m.latest());
  for (int64_t s : {5, 10, 15}) save(m, s);
  const auto all = m.complete();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].filename(), "step-00000010");
  EXPECT_EQ(m.latest()->filename(), "step-00000015");
  EXPECT_EQ(fs::read_file(*m.latest() / "state.json"), "{\"step\": 15}");
  EXPECT_EQ(CheckpointManager::step_of(*m.latest()), 15);
}

TEST_F(Checkpoints, InterruptedCheckpointsAreNeverPickedAndAreCleanedUp) {
  CheckpointManager m(root_, 3);
  save(m, 1);
  // A kill mid-write leaves a staging dir; a kill between rename and marker cannot happen (the
  // marker is written before the rename), but a hand-made dir without a marker is ignored too.
  const auto staging = m.begin(2);
  fs::write_file_atomic(staging / "state.json", "partial");
  stdfs::create_directories(root_ / "step-00000003");
  EXPECT_EQ(m.latest()->filename(), "step-00000001");
  EXPECT_EQ(m.resolve_resume("auto")->filename(), "step-00000001");
  EXPECT_EQ(m.discard_incomplete(), 2);
  EXPECT_FALSE(stdfs::exists(staging));
  EXPECT_EQ(m.complete().size(), 1u);
}

TEST_F(Checkpoints, ResolveResume) {
  CheckpointManager m(root_, 2);
  EXPECT_FALSE(m.resolve_resume("none"));
  EXPECT_FALSE(m.resolve_resume("auto"));
  const auto p = save(m, 7);
  EXPECT_EQ(*m.resolve_resume(p.string()), p);
  stdfs::create_directories(root_ / "half");
  try {
    m.resolve_resume((root_ / "half").string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "run.resume: " + (root_ / "half").string() +
                                         " is not a complete checkpoint (no COMPLETE marker; it was probably interrupted)");
  }
}

}  // namespace
}  // namespace keel::checkpoint
