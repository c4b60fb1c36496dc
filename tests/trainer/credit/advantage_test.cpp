// Tests of the estimator registry (names from spec §13/§14, unknown-name errors), the properties
// every grouped estimator shares (uniform groups score exactly 0, one advantage.singleton rule),
// and the options readers of the `advantage:` subsections.
#include "trainer/credit/advantage.h"

#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "base/error.h"
#include "base/reader.h"
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

/// Inputs for every grouped estimator from per-row outcomes R (at the last valid token of `m`):
/// one turn / stage per row (turn_ids, stage_ids 0 on valid tokens, stage_rewards = R), random
/// THR scores and VERL metrics, a constant preference, a judge.
AdvantageInputs grouped_inputs(const Vec& r, const Mat& m, const std::vector<int64_t>& gid, torch::ScalarType dt) {
  AdvantageInputs in = inputs(outcome_at_last(r, m), m, gid);
  in.token_rewards = in.token_rewards.to(dt);
  const int64_t n = in.token_rewards.size(0);
  const at::Tensor on = in.response_mask != 0;
  in.turn_ids = torch::where(on, torch::zeros({}, torch::kLong), torch::full({}, -1, torch::kLong));
  in.stage_ids = in.turn_ids.clone();
  in.stage_rewards = vec(r).to(dt).unsqueeze(1);
  torch::manual_seed(11);
  in.token_scores = torch::randn(in.token_rewards.sizes()).to(dt);
  in.rank_metrics = torch::rand({n, 3}).to(dt);
  in.pair_judge = [](int64_t a, int64_t b) { return std::make_pair(static_cast<double>(a % 3), static_cast<double>(b % 3)); };
  in.preference = [](int64_t, int64_t) { return 0.5; };
  return in;
}

// Not grouped, or nothing uniform to test: gae (critic), reinforce_pp (no group), remax (greedy
// baseline). arena_rank and spo_winrate run with judge reward_order below: the rewards are the judge.
const std::vector<std::string> kNotGroupedOrNeverUniform = {"gae", "reinforce_pp", "remax"};

bool skipped(const std::string& name) {
  return std::find(kNotGroupedOrNeverUniform.begin(), kNotGroupedOrNeverUniform.end(), name) !=
         kNotGroupedOrNeverUniform.end();
}

TEST(AdvantageGrouped, UniformGroupsGiveExactlyZeroInFloat32AndFloat64) {
  // Issue 16: eight float32 0.7s gave +0.056 per row under GRPO. Spec §2.1: std = 0 → a = 0, for
  // every estimator built on a group baseline. Groups 0.7 ×8, −0.3 ×8, 0.1 ×3, 0.7 ×6, rows
  // interleaved, masks with holes and short rows; exactly 0, not nearly.
  auto reg = make_advantage_registry();
  register_builtin_advantages(reg);
  const std::vector<std::pair<double, int>> groups = {{0.7, 8}, {-0.3, 8}, {0.1, 3}, {0.7, 6}};
  Vec r;
  std::vector<int64_t> gid;
  for (size_t g = 0; g < groups.size(); ++g)
    for (int k = 0; k < groups[g].second; ++k) {
      r.push_back(groups[g].first);
      gid.push_back(40 - 3 * static_cast<int64_t>(g));
    }
  const size_t n = r.size();  // 25, coprime with 7: (7i mod 25) is a permutation
  Vec rp(n);
  std::vector<int64_t> gp(n);
  Mat m(n);
  for (size_t i = 0; i < n; ++i) {
    rp[i] = r[(7 * i) % n];
    gp[i] = gid[(7 * i) % n];
    m[i] = i % 3 == 0 ? Vec{1, 1, 1} : i % 3 == 1 ? Vec{1, 0, 1} : Vec{1, 1, 0};
  }
  int tested = 0;
  for (auto dt : {torch::kFloat, torch::kDouble}) {
    AdvantageInputs in = grouped_inputs(rp, m, gp, dt);
    in.state = {{"verl_rank/mid_er", 0.5}, {"verl_rank/mid_erv", 0.5}, {"verl_rank/mid_era", 0.5}};
    for (const auto& name : reg.names()) {
      if (skipped(name)) continue;
      for (bool norm : {true, false}) {
        AdvantageOptions o;
        o.norm_by_std = norm;
        o.ss.lambda = {1.0};
        o.arena.judge = "reward_order";  // identical rewards → every match tied → equal ranks
        o.spo.judge = "reward_order";    // identical rewards → every P = .5
        const AdvantageOutput out = reg.get(name).fn(in, o);
        EXPECT_EQ(out.advantages.scalar_type(), dt) << name;
        EXPECT_EQ(out.advantages.abs().max().item<double>(), 0.0) << name << " " << dt << " norm " << norm;
        ++tested;
      }
    }
  }
  EXPECT_EQ(tested, 2 * 2 * 13);  // every grouped estimator: a new one must be placed on either list
}

/// The lone row's advantage under advantage.singleton raw (each estimator's documented rule) for
/// the batch of AdvantageSingleton.EveryGroupedEstimatorUnderEverySetting: lone R = 0.5, the other
/// group [1, 0, 0]. NAN = raw is refused.
double lone_raw(const std::string& name) {
  const double g = 0.5 / (1 + 1e-6);  // GRPO raw: mean 0, std 1 (verl)
  if (name == "dr_grpo" || name == "rloo" || name == "reinforce_pp_baseline") return 0.5;  // no baseline
  if (name == "r3l_opmd") return 3.0 * 0.5;  // b = 0, positive amplification α = 3
  // A-GRAE: ω = mean(.5, 1, 0, 0) = .375, p = .5 → factor (ω/2 + (1−ω)/2)/√.5 = √.5; A > 0 → ×min(1, ω/α)
  if (name == "agrae") return g * std::sqrt(0.5) * 0.375;
  if (name == "spo_winrate" || name == "arena_rank") return NAN;
  return g;  // grpo, thr (inactive group), dcpo (kept), ss_grpo / turn_grpo (G/(1+ε)), verl_rank (no state)
}

TEST(AdvantageSingleton, EveryGroupedEstimatorUnderEverySetting) {
  // Row 0 is a group of one (R = 0.5); rows 1–3 a group with R = [1, 0, 0].
  auto reg = make_advantage_registry();
  register_builtin_advantages(reg);
  const Mat m(4, Vec{1, 1});
  const AdvantageInputs in = grouped_inputs({0.5, 1, 0, 0}, m, {9, 4, 4, 4}, torch::kDouble);
  int tested = 0;
  for (const auto& name : reg.names()) {
    if (name == "gae" || name == "reinforce_pp" || name == "remax") continue;  // not grouped
    ++tested;
    AdvantageOptions o;
    o.ss.lambda = {1.0};
    o.whiten = false;  // reinforce_pp_baseline: keep the row's own return visible
    o.singleton = "error";
    EXPECT_THROW(reg.get(name).fn(in, o), c10::Error) << name;
    o.singleton = "zero";
    const AdvantageOutput zero = reg.get(name).fn(in, o);
    EXPECT_EQ(zero.advantages[0].abs().max().item<double>(), 0.0) << name;
    if (name == "dcpo") EXPECT_EQ(zero.loss_mask[0].abs().max().item<double>(), 0.0) << "dcpo drops the lone row";
    o.singleton = "raw";
    const double want = lone_raw(name);
    if (std::isnan(want)) {
      EXPECT_THROW(reg.get(name).fn(in, o), c10::Error) << name << " has no reward for a lone sample";
      continue;
    }
    const AdvantageOutput raw = reg.get(name).fn(in, o);
    EXPECT_TRUE(close(raw.advantages[0], Vec{want, want}, 1e-9)) << name;
    if (name == "dcpo") EXPECT_EQ(raw.loss_mask[0].sum().item<double>(), 2.0) << "dcpo keeps the lone row";
    // The lone row's rule never touches the other group.
    EXPECT_TRUE(close(raw.advantages.slice(0, 1), zero.advantages.slice(0, 1), 1e-12)) << name;
  }
  EXPECT_EQ(tested, 13);
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
  // grpo.singleton moved up to advantage.singleton: the old key says where it went.
  EXPECT_NE(e[2].find("advantage.grpo.singleton: moved to advantage.singleton"), std::string::npos) << e[2];
}

TEST(AdvantageOptionsReader, PairwiseJudgesAndDcpoKeep) {
  // judge: none (default, a judge model) | reward_order, under advantage.arena and advantage.spo.
  AdvantageOptions d;
  EXPECT_EQ(d.arena.judge, "none");
  EXPECT_EQ(d.spo.judge, "none");
  EXPECT_EQ(d.dcpo.k_keep, 0);  // half of each group
  AdvantageOptions o;
  EXPECT_TRUE(read_errors("arena:\n  judge: reward_order\nspo:\n  judge: reward_order\ndcpo:\n  k_keep: 4\n", o).empty());
  EXPECT_EQ(o.arena.judge, "reward_order");
  EXPECT_EQ(o.spo.judge, "reward_order");
  EXPECT_EQ(o.dcpo.k_keep, 4);
  AdvantageOptions bad;
  const auto e = read_errors("arena:\n  judge: reward\nspo:\n  judge: model\ndcpo:\n  k_keep: 1\n", bad);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_NE(e[0].find("advantage.arena.judge"), std::string::npos) << e[0];
  EXPECT_NE(e[0].find("reward_order"), std::string::npos) << e[0];
  EXPECT_NE(e[1].find("advantage.spo.judge"), std::string::npos) << e[1];
  EXPECT_NE(e[2].find("advantage.dcpo.k_keep: must be 0 (half the group) or >= 2"), std::string::npos) << e[2];
}

}  // namespace
}  // namespace keel::credit
