// Tests of the estimator registry (names from spec §13/§14, unknown-name errors) and the options
// readers of the `advantage:` subsections.
#include "trainer/credit/advantage.h"

#include <gtest/gtest.h>

#include "trainer/common/error.h"
#include "trainer/config/reader.h"
#include "tests/trainer/credit/credit_test_util.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

const std::vector<std::string> kSpecNames = {
    "agrae", "arena_rank", "dcpo", "dr_grpo", "gae", "grpo", "r3l_opmd", "reinforce_pp",
    "reinforce_pp_baseline", "remax", "rloo", "spo_winrate", "ss_grpo", "thr", "turn_grpo", "verl_rank"};

TEST(AdvantageRegistry, RegistersEverySpecName) {
  auto reg = make_advantage_registry();
  register_builtin_advantages(reg);
  EXPECT_EQ(reg.names(), kSpecNames);  // sorted
  for (const auto& n : reg.names()) EXPECT_FALSE(reg.get(n).description.empty()) << n;
}

TEST(AdvantageRegistry, UnknownNameListsKnownNames) {
  auto reg = make_advantage_registry();
  register_builtin_advantages(reg);
  try {
    reg.get("grpoo");
    FAIL() << "no error";
  } catch (const keel::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("unknown advantage estimator 'grpoo'"), std::string::npos) << msg;
    for (const auto& n : kSpecNames) EXPECT_NE(msg.find(n), std::string::npos) << n;
  }
  EXPECT_THROW(register_builtin_advantages(reg), keel::Error);  // duplicates
}

TEST(AdvantageRegistry, EntriesRunThroughTheUniformSignature) {
  auto reg = make_advantage_registry();
  register_builtin_advantages(reg);
  const Mat m(4, Vec{1, 1});
  const auto in = inputs(outcome_at_last({1, 0, 0, 1}, m), m, {0, 0, 0, 0});
  const auto out = reg.get("grpo").fn(in, AdvantageOptions{});
  EXPECT_TRUE(close(out.advantages.select(1, 0), Vec{0.866024, -0.866024, -0.866024, 0.866024}));
  EXPECT_TRUE(out.metrics.count("adv/mean"));
}

/// One batch carrying every optional field, float32 with a bool mask: 2 groups × 4 rows (rows of
/// the groups interleaved), T = 5, an empty row and holes.
AdvantageInputs full_batch() {
  const Mat m{{1, 1, 0, 1, 0}, {1, 0, 1, 1, 1}, {1, 1, 1, 0, 0}, {0, 0, 0, 0, 0},
              {1, 1, 1, 1, 1}, {1, 0, 0, 1, 1}, {1, 1, 0, 0, 0}, {1, 1, 1, 1, 0}};
  AdvantageInputs in = inputs(outcome_at_last({1, 0, 1, 0, 0, 1, 1, 0}, m), m, {7, 3, 7, 3, 7, 3, 7, 3});
  in.token_rewards = in.token_rewards.to(torch::kFloat);
  in.response_mask = in.response_mask.to(torch::kBool);
  const int64_t n = 8, t = 5;
  in.values = torch::linspace(-1, 1, n * t).view({n, t}).to(torch::kFloat);
  in.baseline_rewards = torch::full({n}, 0.5);
  in.turn_ids = torch::tensor({0, 0, -1, 1, -1}, torch::kLong).repeat({n, 1});
  in.pivot_steps = torch::tensor({1, 1, 0, 0, 0, 0, 0, 0}, torch::kLong);
  in.stage_ids = torch::tensor({0, 0, 1, 1, -1}, torch::kLong).repeat({n, 1});
  in.stage_rewards = torch::rand({n, 2});
  in.token_scores = torch::randn({n, t});
  in.rank_metrics = torch::rand({n, 3});
  in.state = {{"verl_rank/mid_er", 0.5}, {"verl_rank/mid_erv", 0.5}, {"verl_rank/mid_era", 0.5}};
  in.pair_judge = [](int64_t a, int64_t b) { return std::make_pair(static_cast<double>(a % 3), static_cast<double>(b % 3)); };
  in.preference = [](int64_t a, int64_t b) { return a < b ? 0.75 : 0.25; };
  return in;
}

TEST(AdvantageRegistry, EveryEstimatorHonoursTheOutputContract) {
  // float32 in → float32 out, [N, T], finite, zero wherever the effective mask is 0.
  auto reg = make_advantage_registry();
  register_builtin_advantages(reg);
  const auto in = full_batch();
  AdvantageOptions o;
  o.ss.lambda = {1, 0.5, 0, 1};
  for (const auto& name : reg.names()) {
    const AdvantageOutput out = reg.get(name).fn(in, o);
    ASSERT_TRUE(out.advantages.defined() && out.returns.defined()) << name;
    EXPECT_EQ(out.advantages.sizes(), in.token_rewards.sizes()) << name;
    EXPECT_EQ(out.returns.sizes(), in.token_rewards.sizes()) << name;
    EXPECT_EQ(out.advantages.scalar_type(), torch::kFloat) << name;
    EXPECT_TRUE(torch::isfinite(out.advantages).all().item<bool>()) << name;
    const auto eff = out.loss_mask.defined() ? out.loss_mask : in.response_mask.to(torch::kFloat);
    EXPECT_EQ(out.advantages.masked_select(eff == 0).abs().sum().item<double>(), 0.0) << name;
    EXPECT_TRUE(out.metrics.count("adv/mean")) << name;
  }
}

std::vector<std::string> read_errors(const std::string& yaml, AdvantageOptions& o) {
  config::Node root = config::parse_yaml_string(yaml, "a.yaml");
  config::Diagnostics d;
  config::Reader r(&root, "advantage", d);
  read_advantage_subsections(r, o);
  r.finish();
  return d.errors();
}

TEST(AdvantageOptionsReader, ReadsSubsectionsAndReportsBadValues) {
  AdvantageOptions o;
  EXPECT_TRUE(read_errors("agrae:\n  alpha: 0.5\n  easy_term: one_minus_sqrt_p\nthr:\n  p: 0.25\n"
                          "ss:\n  lambda: [1, 0.5, 0, 1]\nrpp:\n  reset_on_holes: true\n", o).empty());
  EXPECT_DOUBLE_EQ(o.agrae.alpha, 0.5);
  EXPECT_EQ(o.agrae.easy_term, "one_minus_sqrt_p");
  EXPECT_DOUBLE_EQ(o.thr.p, 0.25);
  EXPECT_EQ(o.ss.lambda.size(), 4u);
  EXPECT_TRUE(o.rpp.reset_on_holes);
  AdvantageOptions bad;
  const auto e = read_errors("thr:\n  p: 1.5\nss:\n  lambda: [1, 0, 0.3, 1]\ngrpo:\n  singleton: maybe\n", bad);
  ASSERT_EQ(e.size(), 3u);
  // Errors come in file order.
  EXPECT_NE(e[0].find("advantage.thr.p: must be < 1"), std::string::npos) << e[0];
  EXPECT_NE(e[1].find("below the diagonal"), std::string::npos) << e[1];
  EXPECT_NE(e[2].find("advantage.grpo.singleton"), std::string::npos) << e[2];
}

}  // namespace
}  // namespace keel::credit
