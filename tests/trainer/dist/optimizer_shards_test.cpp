// Tests for trainer/dist/optimizer_shards: moments written as 3 ranks' shard files (slices that cut
// parameters) read back exactly into 2 ranks' slices and into whole per-parameter states; a
// never-stepped parameter stays without state; a missing rank file, another model's shards and an
// uncovered element are errors that name the file or the gap.
#include "trainer/dist/optimizer_shards.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "base/error.h"
#include "tests/models/test_util.h"
#include "trainer/learner/fused_adamw.h"

namespace keel::dist {
namespace {

namespace stdfs = std::filesystem;

// Parameters of 10, 7 and 5 elements laid end to end (22), cut into `world` slices.
const std::vector<int64_t> kNumels{10, 7, 5};

std::vector<MomentSegment> slices(int rank, int world) {
  const int64_t total = 22, per = (total + world - 1) / world;
  const int64_t lo = std::min(total, rank * per), hi = std::min(total, lo + per);
  std::vector<MomentSegment> out;
  int64_t off = 0;
  for (size_t i = 0; i < kNumels.size(); ++i) {
    const int64_t a = std::max(lo, off), b = std::min(hi, off + kNumels[i]);
    if (a < b) out.push_back({i, a - off, b - a, {}, {}, 0});
    off += kNumels[i];
  }
  return out;
}

/// Element e of parameter i: m = 100 i + e, v = 1000 + m; parameter 2 never stepped.
void fill(std::vector<MomentSegment>& segs) {
  for (auto& s : segs) {
    if (s.param == 2) continue;
    s.exp_avg = torch::arange(s.offset, s.offset + s.length, torch::kFloat) + 100.0 * static_cast<double>(s.param);
    s.exp_avg_sq = s.exp_avg + 1000.0;
    s.step = 4;
  }
}

void write_three(const stdfs::path& dir) {
  for (int r = 0; r < 3; ++r) {
    auto segs = slices(r, 3);
    fill(segs);
    write_moment_shard(dir, "optimizer", r, 3, segs, kNumels);
  }
}

TEST(OptimizerShards, ThreeRanksReadBackOnTwoAndWhole) {
  models::testing::TempDir dir;
  write_three(dir.path());
  EXPECT_TRUE(has_moment_shards(dir.path(), "optimizer"));
  EXPECT_FALSE(has_moment_shards(dir.path(), "critic_optimizer"));
  for (int r = 0; r < 2; ++r) {
    auto want = slices(r, 2), expect = slices(r, 2);
    fill(expect);
    read_moment_segments(dir.path(), "optimizer", kNumels, want, at::kCPU);
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(want[i].step, expect[i].step) << r << " " << i;
      if (expect[i].step == 0) continue;
      EXPECT_TRUE(at::equal(want[i].exp_avg, expect[i].exp_avg)) << r << " " << i;
      EXPECT_TRUE(at::equal(want[i].exp_avg_sq, expect[i].exp_avg_sq)) << r << " " << i;
    }
  }
  std::vector<at::Tensor> params{torch::zeros({2, 5}), torch::zeros({7}), torch::zeros({5})};
  learner::FusedAdamW opt(params, torch::optim::AdamWOptions(1e-3));
  load_whole_moments(dir.path(), "optimizer", params, opt);
  using Key = std::decay_t<decltype(opt.state())>::key_type;
  EXPECT_EQ(opt.state().size(), 2U);  // parameter 2 never stepped
  const auto& st = static_cast<const torch::optim::AdamWParamState&>(*opt.state().at(compat::optimizer_state_key<Key>(params[1])));
  EXPECT_EQ(st.step(), 4);
  EXPECT_TRUE(at::equal(st.exp_avg(), torch::arange(0, 7, torch::kFloat) + 100.0));
  const auto& s0 = static_cast<const torch::optim::AdamWParamState&>(*opt.state().at(compat::optimizer_state_key<Key>(params[0])));
  EXPECT_EQ(s0.exp_avg_sq().sizes(), params[0].sizes());
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(OptimizerShards, MissingFilesOtherModelsAndGapsAreErrors) {
  models::testing::TempDir dir;
  write_three(dir.path());
  auto want = slices(0, 1);
  // Another model: other parameter sizes.
  EXPECT_NE(error_of([&] { read_moment_segments(dir.path(), "optimizer", {10, 7, 6}, want, at::kCPU); })
                .find("optimizer.shard-00000-of-00003.pt: the optimizer state is of other parameters"),
            std::string::npos);
  // Elements no file covers (rank 1 of 2 wrote nothing).
  models::testing::TempDir gap;
  auto first = slices(0, 2);
  fill(first);
  write_moment_shard(gap.path(), "optimizer", 0, 2, first, kNumels);
  write_moment_shard(gap.path(), "optimizer", 1, 2, {}, kNumels);
  EXPECT_NE(error_of([&] { read_moment_segments(gap.path(), "optimizer", kNumels, want, at::kCPU); })
                .find("the optimizer shards of optimizer cover 1 of the 7 elements [0, 7) of trainable parameter 1"),
            std::string::npos);
  stdfs::remove(dir.path() / moment_shard_name("optimizer", 1, 3));
  EXPECT_NE(error_of([&] { read_moment_segments(dir.path(), "optimizer", kNumels, want, at::kCPU); })
                .find("optimizer.shard-00001-of-00003.pt is missing (the checkpoint's optimizer state was written by 3 ranks)"),
            std::string::npos);
}

}  // namespace
}  // namespace keel::dist
