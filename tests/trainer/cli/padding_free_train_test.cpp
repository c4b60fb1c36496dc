// keel train with padding-free learner passes (batch.padding_free) and token-capped micro-batches
// (batch.max_tokens_per_micro_batch): the same per-step metrics and weights as the padded passes
// with fixed micro-batches, within fp32 tolerance, for grpo (with the reference's KL in the loss),
// ppo with a separate critic, ppo with a value head, offline dpo, sft and multi-turn episodes (the
// observations seen, not trained on). Only the memory bound and the cost change.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <cmath>
#include <set>

#include "tests/trainer/cli/run_compare.h"
#include "tests/trainer/cli/run_keel.h"

namespace keel::testing {
namespace {

namespace stdfs = std::filesystem;

// adam_eps 1e-4: packed and padded matmuls round differently (gradients agree to ~2e-7), and at
// Adam's default eps 1e-8 an entry whose gradient is that small gets a full +-lr step whose sign is
// the rounding's, which the comparison would then chase rather than the learners' arithmetic.
const std::string kTail = R"(
batch: {prompts_per_step: 4, mini_batch_size: 8, micro_batch_size: 4, epochs: 2}
optim: {lr: 1.0e-2, lr_schedule: constant, adam_eps: 1.0e-4}
eval: {every: 0}
checkpoint: {every: 0}
)";

/// Per-micro-batch means (rates such as clip fractions, the entropy, DPO's implicit rewards/*):
/// the learners average them over micro-batches, so they follow the micro-batches' composition.
bool per_micro_batch_mean(const std::string& k) {
  static const std::set<std::string> means = {"actor/entropy", "actor/pg_clipfrac", "actor/pg_clipfrac_lower",
                                              "actor/ppo_kl", "critic/vf_clipfrac", "critic/vpred_mean"};
  return means.count(k) > 0 || (k.rfind("dpo/", 0) == 0 && k != "dpo/loss") || k.rfind("rewards/", 0) == 0;
}

// padding_free alone: every metric and weight as the padded run's. With a token budget as well
// (18 tokens: a row of the tiny arithmetic task is about 10, so the 4-row micro-batches split into
// runs of one or two rows; the episodes' rows each go alone): the same weights, losses, gradient
// norms and rollouts; only the per-micro-batch means follow the new micro-batches.
void padding_free_equivalence(const std::string& head, const std::string& learner_yaml,
                              const std::vector<std::string>& models, int min_compared, bool means_move = true) {
  ScratchDir dir("padfree");
  dir.write("c.yaml", head + kTail + learner_yaml);
  auto r = run_keel("train c.yaml run.output_dir=padded", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_keel("train c.yaml run.output_dir=packed batch.padding_free=true", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_keel("train c.yaml run.output_dir=budget batch.padding_free=true batch.max_tokens_per_micro_batch=18",
               dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto a = json_file_lines(dir.path() / "padded/tiny/metrics.jsonl");
  const auto b = json_file_lines(dir.path() / "packed/tiny/metrics.jsonl");
  const auto c = json_file_lines(dir.path() / "budget/tiny/metrics.jsonl");
  ASSERT_EQ(a.size(), 3u);
  expect_same_metrics(a, b, 0, min_compared);
  ASSERT_EQ(c.size(), a.size());
  int compared = 0, means = 0, means_moved = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (const auto& [k, v] : a[i].items()) {
      if (k == "wall_time" || k.rfind("time/", 0) == 0 || k.rfind("perf/", 0) == 0) continue;
      if (per_micro_batch_mean(k)) {  // the budget did regroup the rows: some of these moved
        ++means;
        means_moved += std::abs(v.get<double>() - c[i][k].get<double>()) > 1e-7;
        continue;
      }
      ASSERT_TRUE(c[i].contains(k)) << k;
      EXPECT_NEAR(v.get<double>(), c[i][k].get<double>(), 1e-5) << "step " << i + 1 << " " << k;
      ++compared;
    }
  EXPECT_GT(compared, min_compared / 2);
  if (means > 0 && means_move) {
    EXPECT_GT(means_moved, 0) << "the token budget left every micro-batch as it was";
  }
  for (const auto& m : models) {
    expect_same_weights(dir.path() / "padded/tiny", dir.path() / "packed/tiny", m);
    expect_same_weights(dir.path() / "padded/tiny", dir.path() / "budget/tiny", m);
  }
}

TEST(TrainPaddingFree, GrpoWithKlInLoss) {
  padding_free_equivalence(kTinyArithmeticRun, "learner: {algorithm: grpo}\nkl: {in_loss: true, coef: 0.01}\n",
                           {"policy"}, 30);
}

TEST(TrainPaddingFree, PpoWithASeparateCritic) {
  padding_free_equivalence(kTinyArithmeticRun,
                           "learner: {algorithm: ppo}\nadvantage: {estimator: gae}\ncritic: {mode: separate, lr: "
                           "1.0e-2}\nkl: {in_reward: true, estimator: k1, coef: 0.01}\n",
                           {"policy", "critic"}, 30);
}

TEST(TrainPaddingFree, PpoWithAValueHead) {
  padding_free_equivalence(kTinyArithmeticRun, "learner: {algorithm: ppo}\nadvantage: {estimator: gae}\n", {"policy"},
                           30);
}

// A pair (chosen + rejected, about 20 tokens) is over the 18-token budget, so every pair goes alone:
// micro-batches of one pair each, against two of four, average the per-pair means the same way, and
// dpo/* and rewards/* cannot move (they differed only by the CPU's rounding, which is no check).
TEST(TrainPaddingFree, OfflineDpo) {
  padding_free_equivalence(kTinyArithmeticRun, "learner: {algorithm: dpo}\ndpo: {loss: sigmoid, beta: 0.1}\n",
                           {"policy"}, 15, /*means_move=*/false);
}

TEST(TrainPaddingFree, Sft) {
  padding_free_equivalence(kTinyArithmeticRun, "learner: {algorithm: sft}\n", {"policy"}, 10);
}

// Episodes' rows carry observations between the policy's turns (response_attention). From random
// init every turn runs to max_new_tokens, so all rows hold as many policy tokens and a mean over
// micro-batches equals the mean over rows whatever the grouping: the means cannot show the regrouping.
TEST(TrainPaddingFree, MultiTurnEpisodes) {
  padding_free_equivalence(kTinyCalculatorRun, "", {"policy"}, 30, /*means_move=*/false);
}

}  // namespace
}  // namespace keel::testing
