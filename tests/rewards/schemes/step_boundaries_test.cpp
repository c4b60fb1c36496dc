// Tests of the step-boundary finder and step/token placement (spec rewards.md C1, C4).
#include "rewards/schemes/step_boundaries.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"
#include "base/error.h"

namespace keel::rewards {
namespace {

using testing::dt;
using testing::lt;

torch::Tensor bools(std::vector<int> v) { return torch::tensor(std::vector<int64_t>(v.begin(), v.end())).to(torch::kBool); }

TEST(StepBoundaries, DelimiterRunsAndTrailingStep) {
  // tokens: [p p | a b NL NL c NL d . .]; NL = 9, mask covers positions 2..8.
  auto ids = lt({5, 5, 1, 2, 9, 9, 3, 9, 4, 0, 0}).view({1, 11});
  auto mask = bools({0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0}).view({1, 11});
  auto ends = step_ends_from_delimiters(ids, mask, {9});
  EXPECT_TRUE(torch::equal(ends, bools({0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0}).view({1, 11})));
  // Leading delimiters start no step: [NL a NL] -> one end at the second NL.
  auto lead = step_ends_from_delimiters(lt({9, 1, 9}).view({1, 3}), bools({1, 1, 1}).view({1, 3}), {9});
  EXPECT_TRUE(torch::equal(lead, bools({0, 0, 1}).view({1, 3})));
}

TEST(StepBoundaries, FallbackAndEmpty) {
  StepBoundaryOptions o;
  o.delimiter_ids = {9};
  // Only delimiters -> no step found -> the whole response is one step (last valid token).
  auto ends = find_step_ends(lt({9, 9, 0}).view({1, 3}), bools({1, 1, 0}).view({1, 3}), o);
  EXPECT_TRUE(torch::equal(ends, bools({0, 1, 0}).view({1, 3})));
  // Empty response -> no step.
  auto none = find_step_ends(lt({1, 2}).view({1, 2}), bools({0, 0}).view({1, 2}), o);
  EXPECT_FALSE(none.any().item<bool>());
  // Tag mode: every tag is an end; no tag -> last token.
  o.mode = "tag";
  o.tag_id = 7;
  EXPECT_TRUE(torch::equal(find_step_ends(lt({1, 7, 2, 7}).view({1, 4}), bools({1, 1, 1, 1}).view({1, 4}), o),
                           bools({0, 1, 0, 1}).view({1, 4})));
  EXPECT_TRUE(torch::equal(find_step_ends(lt({1, 2, 3, 0}).view({1, 4}), bools({1, 1, 1, 0}).view({1, 4}), o),
                           bools({0, 0, 1, 0}).view({1, 4})));
  o.mode = "bogus";
  EXPECT_THROW(find_step_ends(lt({1}).view({1, 1}), bools({1}).view({1, 1}), o), Error);
}

TEST(StepBoundaries, TurnIds) {
  // turn ids: prompt −1, turn 0 (3 tokens), observation −1, turn 1 (2 tokens).
  auto turns = lt({-1, 0, 0, 0, -1, -1, 1, 1}).view({1, 8});
  auto mask = bools({0, 1, 1, 1, 1, 1, 1, 1}).view({1, 8});
  EXPECT_TRUE(torch::equal(step_ends_from_turn_ids(turns, mask), bools({0, 0, 0, 1, 0, 0, 0, 1}).view({1, 8})));
}

// Slow reference of the delimiter rule: walk the tokens.
std::vector<int> delimiter_loop(const std::vector<int64_t>& ids, const std::vector<int>& mask, int64_t delim) {
  std::vector<int> ends(ids.size(), 0);
  bool content = false;
  for (size_t t = 0; t < ids.size(); ++t) {
    if (!mask[t]) continue;
    const bool is_d = ids[t] == delim;
    const bool next_valid = t + 1 < ids.size() && mask[t + 1];
    const bool next_d = next_valid && ids[t + 1] == delim;
    if (!is_d) content = true;
    if (is_d && !next_d && content) ends[t] = 1;
    if (!is_d && !next_valid) ends[t] = 1;
  }
  bool any = false;
  for (int e : ends) any = any || e;
  if (!any)
    for (size_t t = ids.size(); t-- > 0;)
      if (mask[t]) {
        ends[t] = 1;
        break;
      }
  return ends;
}

TEST(StepBoundaries, DelimiterMatchesLoopAndRoundTripsValues) {
  for (int seed = 0; seed < 60; ++seed) {
    torch::manual_seed(seed);
    const int64_t n = 1 + seed % 4, t = 1 + seed % 15;
    auto ids = torch::randint(0, 4, {n, t}, torch::kLong);  // 0 is the delimiter
    auto lens = torch::randint(0, t + 1, {n}, torch::kLong);
    auto starts = torch::randint(0, t + 1, {n}, torch::kLong);
    auto mask = torch::zeros({n, t}, torch::kBool);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = starts[i].item<int64_t>(); j < std::min(t, starts[i].item<int64_t>() + lens[i].item<int64_t>()); ++j)
        mask[i][j] = true;
    StepBoundaryOptions o;
    o.delimiter_ids = {0};
    auto ends = find_step_ends(ids, mask, o);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<int64_t> row(t);
      std::vector<int> m(t);
      for (int64_t j = 0; j < t; ++j) {
        row[j] = ids[i][j].item<int64_t>();
        m[j] = mask[i][j].item<bool>();
      }
      auto ref = delimiter_loop(row, m, 0);
      for (int64_t j = 0; j < t; ++j) EXPECT_EQ(ends[i][j].item<bool>(), ref[j] == 1) << "seed " << seed;
    }
    // gather -> scatter reproduces the values at the ends and zero elsewhere.
    auto vals = torch::randn({n, t}, torch::kFloat64);
    auto [steps, smask] = gather_at_step_ends(vals, ends);
    EXPECT_TRUE(torch::equal(smask.sum(1), ends.sum(1)));
    auto back = scatter_to_step_ends(steps, smask, ends);
    EXPECT_TRUE(torch::equal(back, vals.masked_fill(ends.logical_not(), 0.0)));
  }
}

TEST(StepBoundaries, AddOnLastStep) {
  auto per = dt({0.1, 0.2, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0}).view({3, 3});
  auto m = bools({1, 1, 0, 1, 0, 0, 0, 0, 0}).view({3, 3});
  auto out = add_on_last_step(per, m, dt({1, 2, 3}));
  EXPECT_TRUE(torch::allclose(out, dt({0.1, 1.2, 0, 2.5, 0, 0, 0, 0, 0}).view({3, 3})));
  StepBoundaryOptions o;
  auto e = testing::read_yaml("  mode: tag\n", o, read_step_boundary_options);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("tag_id"), std::string::npos);
}

}  // namespace
}  // namespace keel::rewards
