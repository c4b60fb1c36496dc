// Tests of the RM-reward shaping pipeline (spec rewards.md A1–A2, order of operations).
#include "rewards/schemes/rm_shaping.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

using testing::dt;
using testing::lt;

TEST(RmShaping, OrderLengthPenaltyThenCeilThenShaping) {
  // r = [1.2, 3.0, 0.5], L = [350, 300, 500], L0 300, c 0.01 -> [0.7, 3.0, −1.5]; ceil 2 -> [0.7, 2, −1.5];
  // minmax on the first batch -> (r + 1.5)/3.5 = [0.6285714, 1, 0].
  RmShapingOptions o;
  o.shaping = "minmax";
  o.ceil.ceil = 2.0;
  RmShaper s(o);
  auto out = s.apply(dt({1.2, 3.0, 0.5}), lt({350, 300, 500}), {}, {});
  EXPECT_TRUE(torch::allclose(out, dt({2.2 / 3.5, 1.0, 0.0}), 0, 1e-12));
}

TEST(RmShaping, MatchesManualCompositionOverBatchesAndRestores) {
  for (const std::string name : {"meanstd", "clip", "minmax", "par", "lsc", "vanilla"}) {
    RmShapingOptions o;
    o.shaping = name;
    o.length_penalty.valid_len = 20;
    if (name == "par") o.par = par_preset("par");
    RmShaper s(o);
    RunningMeanStd ms;
    RunningMinMax mm;
    StateDict mid;
    std::vector<torch::Tensor> outs;
    std::vector<std::tuple<torch::Tensor, torch::Tensor, torch::Tensor>> batches;
    for (int b = 0; b < 6; ++b) {
      torch::manual_seed(100 + b);
      auto r = torch::randn({5}, torch::kFloat64);
      auto len = torch::randint(0, 40, {5}, torch::kLong);
      auto refs = torch::randn({5, 3}, torch::kFloat64);
      batches.emplace_back(r, len, refs);
      auto got = s.apply(r, len, refs, {});
      auto x = length_penalty_reward(r, len, o.length_penalty);
      torch::Tensor want;
      if (name == "meanstd") { ms.update(x); want = meanstd_reward(x, ms, {}); }
      else if (name == "clip") { ms.update(x); want = clip_reward(x, ms, {}); }
      else if (name == "minmax") { mm.update(x); want = minmax_reward(x, mm, {}); }
      else if (name == "par") want = par_reward(x, refs, {}, par_preset("par"));
      else if (name == "lsc") want = lsc_reward(x, refs, {}, {});
      else want = x;
      EXPECT_TRUE(torch::equal(got, want)) << name << " batch " << b;
      if (b == 2) s.save_state(mid, "shaping/");
      outs.push_back(got);
    }
    // Restoring after batch 2 and replaying batches 3..5 reproduces the outputs bit for bit.
    RmShaper t(o);
    t.load_state(mid, "shaping/");
    for (int b = 3; b < 6; ++b) {
      auto [r, len, refs] = batches[b];
      EXPECT_TRUE(torch::equal(t.apply(r, len, refs, {}), outs[b])) << name << " replay " << b;
    }
  }
}

TEST(RmShaping, ReaderAppliesPresetThenOverrides) {
  RmShapingOptions o;
  EXPECT_TRUE(testing::read_yaml("  shaping: sigmoidk2\n  ceil: 4\n  length_penalty: {enabled: false}\n", o,
                                 read_rm_shaping_options).empty());
  EXPECT_EQ(o.par.k, 2.0);
  EXPECT_FALSE(o.par.centered);
  EXPECT_EQ(*o.ceil.ceil, 4.0);
  RmShapingOptions p;
  EXPECT_TRUE(testing::read_yaml("  shaping: par\n  par: {k: 3}\n", p, read_rm_shaping_options).empty());
  EXPECT_TRUE(p.par.centered);
  EXPECT_EQ(p.par.k, 3.0);
  RmShapingOptions bad;
  auto e = testing::read_yaml("  shaping: odin\n", bad, read_rm_shaping_options);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("unknown shaping 'odin'"), std::string::npos);
}

}  // namespace
}  // namespace keel::rewards
