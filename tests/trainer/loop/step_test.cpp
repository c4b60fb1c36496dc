// The RL step's stages as a public API: the run state of a tiny random-init model on the built-in
// arithmetic task, built from a YAML string as `keel train` builds it (one process), then one step
// through the real stages — sample -> score -> shape -> credit -> update — checking what each one
// fills; then a whole rl_step.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "base/node.h"
#include "tests/trainer/cli/run_compare.h"
#include "tests/trainer/cli/run_keel.h"
#include "trainer/cli/catalog.h"
#include "trainer/config/config.h"
#include "trainer/credit/thr.h"
#include "trainer/learner/numerics_guard.h"
#include "trainer/loop/credit.h"
#include "trainer/loop/run_state.h"
#include "trainer/loop/sample.h"
#include "trainer/loop/score.h"
#include "trainer/loop/shape.h"
#include "trainer/loop/step.h"
#include "trainer/loop/update.h"

namespace keel::loop {
namespace {

// 2 prompts x 4 samples, up to 4 new tokens, 1-layer model; the reward is the task's verifier plus
// a regex that varies across random responses (so that GRPO's advantages are not all zero).
const std::string kTinyGrpo = testing::kTinyArithmeticRun + R"(
batch: {prompts_per_step: 2, mini_batch_size: 8, micro_batch_size: 4}
learner: {algorithm: grpo}
advantage: {estimator: grpo}
optim: {lr: 1.0e-2, lr_schedule: constant, weight_decay: 0.0}
reward:
  components:
    - {scheme: task_arithmetic, name: correct, weight: 1.0}
    - {scheme: format_regex, name: digits_only, weight: 0.5, params: {pattern: "^-?[0-9]+$"}}
)";

constexpr int64_t kRows = 8;
constexpr int64_t kGroupSize = 4;

/// The run state `keel train` builds in one process (train.cpp's order, without the run directory's
/// config copy, checkpoints and metric writers).
void build_run_state(RunState& s, const std::filesystem::path& out_dir) {
  config::LoadOptions opt;
  opt.overrides = {"run.output_dir=" + out_dir.string()};
  s.cfg = config::load_config_node(config::parse_yaml_string(kTinyGrpo, "stages.yaml"), opt, cli::known_names());
  s.algorithm = s.cfg.learner.algorithm;
  s.run_dir = out_dir / s.cfg.run.name;
  init_ranks(s, "stages.yaml");
  resolve_device(s, 0);
  torch::manual_seed(s.cfg.run.seed);
  build_components(s, cli::reward_registry(), /*lead=*/true, {});
  build_models(s, std::nullopt);
  make_optimizers(s, std::nullopt);
  set_update_options(s);
}

std::vector<at::Tensor> snapshot(models::Transformer& m) {
  std::vector<at::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

bool any_changed(models::Transformer& m, const std::vector<at::Tensor>& before) {
  const auto now = m.parameters();
  for (size_t i = 0; i < now.size(); ++i)
    if (!torch::equal(now[i], before[i])) return true;
  return false;
}

TEST(LoopStages, OneGrpoStepThroughTheStages) {
  keel::testing::ScratchDir dir("loop_stages");
  RunState s;
  build_run_state(s, dir.path());
  ASSERT_TRUE(s.policy && s.tok && s.reward && s.data && s.optimizer);
  EXPECT_FALSE(s.reference);  // no KL term, not DPO
  EXPECT_FALSE(s.comm);
  const int64_t step = 1;
  metrics::Metrics m;

  // ---- sample (+ score each attempt) ----
  PromptStore store;
  auto b = sample(s, step, store, m);
  ASSERT_EQ(b.size(), kRows);
  EXPECT_EQ(b.response_ids.size(0), kRows);
  EXPECT_LE(b.response_ids.size(1), 4);
  EXPECT_EQ(b.response_mask.sizes(), b.response_ids.sizes());
  EXPECT_EQ(b.old_logprobs.sizes(), b.response_ids.sizes());
  EXPECT_EQ(b.prompt_ids.size(0), kRows);
  EXPECT_EQ(b.records.size(), static_cast<size_t>(kRows));
  EXPECT_EQ(b.response_texts.size(), static_cast<size_t>(kRows));
  EXPECT_TRUE(torch::equal(b.group_ids, torch::tensor({0, 0, 0, 0, 1, 1, 1, 1}, torch::kLong)));
  ASSERT_EQ(b.rewards.sizes(), (std::vector<int64_t>{kRows}));
  EXPECT_EQ(b.rewards.scalar_type(), torch::kFloat);
  // verifier (0 / 1) + 0.5 * regex match (0 / 1): in [0, 1.5].
  EXPECT_GE(b.rewards.min().item<float>(), 0.0f);
  EXPECT_LE(b.rewards.max().item<float>(), 1.5f);
  EXPECT_TRUE(m.count("time/rollout_s") && m.count("time/reward_s"));
  ASSERT_GT((b.rewards.max() - b.rewards.min()).item<float>(), 0.0f) << "the rewards must vary for this test";

  // ---- score: the whole RewardOutput of the batch; the same rewards sample() wrote ----
  const auto rout = score(*s.reward, b, step);
  EXPECT_TRUE(torch::equal(rout.rewards.to(torch::kFloat), b.rewards));
  EXPECT_FALSE(rout.detail.empty());  // per-component detail travels through the stage

  // ---- shape: the sequence reward on each row's last response token ----
  const auto rewards_before = b.rewards.clone();
  const Shaped shaped = shape(s, b, m);
  EXPECT_FALSE(shaped.kl_rewards.defined());  // kl.in_reward is off
  EXPECT_TRUE(torch::equal(b.rewards, rewards_before));  // overlong is off
  ASSERT_EQ(b.token_rewards.sizes(), b.response_mask.sizes());
  EXPECT_TRUE(torch::allclose(b.token_rewards.sum(1), b.rewards));
  EXPECT_EQ((b.token_rewards != 0).logical_and(b.response_mask == 0).sum().item<int64_t>(), 0);
  EXPECT_TRUE(m.count("reward/accuracy"));

  // ---- credit: GRPO advantages, one value per row broadcast over its tokens, zero-mean per group ----
  assign_credit(s, b, shaped, at::Tensor(), step, m);
  ASSERT_EQ(b.advantages.sizes(), b.response_mask.sizes());
  EXPECT_TRUE(torch::equal(b.loss_mask, b.response_mask));
  const auto mask = b.response_mask.to(torch::kFloat);
  const auto row_adv = (b.advantages * mask).sum(1) / mask.sum(1).clamp_min(1);
  for (int64_t g = 0; g < kRows / kGroupSize; ++g) {
    const auto adv = row_adv.slice(0, g * kGroupSize, (g + 1) * kGroupSize);
    const auto r = b.rewards.slice(0, g * kGroupSize, (g + 1) * kGroupSize);
    EXPECT_NEAR(adv.mean().item<double>(), 0.0, 1e-5) << "group " << g;
    // Ordered like the rewards: the best-rewarded row has the largest advantage.
    EXPECT_EQ(adv.argmax().item<int64_t>(), r.argmax().item<int64_t>()) << "group " << g;
  }
  EXPECT_GT(row_adv.abs().max().item<double>(), 0.0);

  // ---- update: one optimizer step over the 8-row mini-batch; the policy moves ----
  const auto before = snapshot(*s.policy);
  learner::NumericsGuard guard(s.cfg.optim.rollback_after);
  const auto upd = update_policy(s, b, guard);
  EXPECT_FALSE(upd.rollback);
  EXPECT_EQ(upd.optimizer_steps, 1);
  EXPECT_EQ(s.opt_step, 1);
  EXPECT_TRUE(upd.metrics.count("actor/pg_loss"));
  EXPECT_TRUE(any_changed(*s.policy, before));

  // ---- a whole step: the same sequence behind rl_step ----
  const auto out = rl_step(s, guard, step + 1);
  EXPECT_FALSE(out.rollback);
  EXPECT_EQ(s.opt_step, 2);
  for (const char* k : {"reward/mean", "reward/accuracy", "adv/mean", "actor/pg_loss", "response/length_mean",
                        "time/rollout_s", "time/update_s"})
    EXPECT_TRUE(out.metrics.count(k)) << k;
}

// THR's producer: the credit stage's no-grad pass keeps the policy's probabilities on the batch's
// distinct response tokens only; its hidden states and prediction errors equal a reference built
// from one full-vocabulary forward ([N, T, V] probabilities, thr_prediction_errors on the true ids).
TEST(LoopStages, ThrInputsMatchAFullVocabularyReference) {
  keel::testing::ScratchDir dir("loop_thr");
  RunState s;
  build_run_state(s, dir.path());
  PromptStore store;
  metrics::Metrics m;
  const auto b = sample(s, 1, store, m);
  const auto [hidden, errors] = policy_thr_inputs(s, b);
  // Reference: the whole batch in one forward, every vocabulary column.
  torch::NoGradGuard ng;
  const int64_t p = b.prompt_ids.size(1), r = b.response_ids.size(1);
  const auto ids = torch::cat({b.prompt_ids, b.response_ids}, 1);
  const auto mask = torch::cat({b.prompt_mask.to(torch::kLong), b.response_mask.to(torch::kLong)}, 1);
  const auto h_ref = s.policy->forward_hidden(ids, mask).narrow(1, p - 1, r).to(torch::kFloat);
  const auto probs = torch::softmax(s.policy->lm_logits(h_ref).to(torch::kFloat) / s.cfg.rollout.temperature, -1);
  const auto [g_ref, vocab] = credit::thr_prediction_errors(b.response_ids, probs, b.response_mask, b.group_ids);
  const auto valid = b.response_mask.to(torch::kBool).unsqueeze(2);
  ASSERT_EQ(hidden.sizes(), h_ref.sizes());
  EXPECT_TRUE(torch::allclose(hidden.masked_select(valid), h_ref.masked_select(valid), 1e-5, 1e-5));
  ASSERT_EQ(errors.sizes(), g_ref.sizes());
  EXPECT_TRUE(torch::allclose(errors, g_ref, 1e-5, 1e-6));
  EXPECT_GT(errors.abs().sum().item<double>(), 0.0);
  // The influence scores they give are non-zero once a group has a correct response.
  auto positive = torch::zeros({b.size()}, torch::kBool);
  positive[0] = true;
  const auto scores = credit::thr_token_scores(hidden, errors, b.response_mask, b.group_ids, positive);
  EXPECT_GT(scores.slice(0, 0, kGroupSize).abs().sum().item<double>(), 0.0);
}

// SS-GRPO's stages from a judge's steps: step j is stage min(j, K - 1), a merged stage keeps its
// last step's score, tokens after a row's last step end get -1.
TEST(LoopStages, JudgeStepsBecomeSsGrpoStages) {
  rollout::RolloutBatch b;
  b.group_ids = torch::tensor({0, 0}, torch::kLong);
  b.response_ids = torch::zeros({2, 6}, torch::kLong);
  // Row 0: steps end at 1, 3, 5 (three steps, K = 2: the last two merge); row 1: one step ending at 2.
  b.step_end_mask = torch::tensor({{0, 1, 0, 1, 0, 1}, {0, 0, 1, 0, 0, 0}}, torch::kFloat);
  b.step_scores = torch::tensor({{0.0, 0.9, 0.0, 0.2, 0.0, 0.7}, {0.0, 0.0, 0.4, 0.0, 0.0, 0.0}}, torch::kFloat);
  const auto st = judge_stages(b, 2);
  EXPECT_TRUE(torch::equal(st.ids, torch::tensor({{0, 0, 1, 1, 1, 1}, {0, 0, 0, -1, -1, -1}}, torch::kLong)));
  EXPECT_TRUE(torch::allclose(st.rewards, torch::tensor({{0.9, 0.7}, {0.4, 0.0}}, torch::kFloat)));
  EXPECT_TRUE(torch::equal(st.present, torch::tensor({{true, true}, {true, false}})));
}

}  // namespace
}  // namespace keel::loop
