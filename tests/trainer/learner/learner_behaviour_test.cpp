// Behavioural tests of the learners' updates: on a toy task — one response token, rewarded when it
// is the "good" token — the probability of the good token rises within a few dozen steps for
// GRPO (rl_update + grpo advantages), PPO (rl_update with a value-head critic and gae, and with a
// separate critic) and DPO (dpo_update on good-vs-other pairs), while SFT drives the loss down.
// Real models (a tiny random-init Transformer), the real sampler and the real losses.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/generate.h"
#include "models/logprobs.h"
#include "models/transformer.h"
#include "tests/trainer/learner/tiny_policy.h"
#include "trainer/credit/advantage.h"
#include "trainer/credit/advantage_options.h"
#include "trainer/learner/rl_update.h"
#include "trainer/learner/supervised_update.h"

namespace keel::learner {
namespace {

constexpr int64_t kGood = 5;
constexpr int64_t kVocab = testing::kTinyVocab;

models::Transformer tiny_model(bool value_head = false) { return testing::tiny_policy(7, value_head); }

const std::vector<std::vector<int64_t>> kPrompts = {{2, 3, 4}, {7, 8}, {9, 10, 11, 12}, {6}};

/// Mean probability of the good token as the first response token over the prompts.
double p_good(models::Transformer& m) {
  torch::NoGradGuard ng;
  m.train(false);
  double sum = 0;
  for (const auto& p : kPrompts) {
    const auto ids = torch::tensor(p, torch::kLong).unsqueeze(0);
    const auto logits = m.forward(ids).select(1, -1).squeeze(0);
    sum += torch::softmax(logits, -1)[kGood].item<double>();
  }
  return sum / static_cast<double>(kPrompts.size());
}

/// G samples of one token per prompt, rewarded 1 for the good token.
rollout::RolloutBatch sample(models::Transformer& m, int g, uint64_t seed) {
  std::vector<std::vector<int64_t>> prompts;
  std::vector<int64_t> groups;
  for (size_t i = 0; i < kPrompts.size(); ++i)
    for (int j = 0; j < g; ++j) {
      prompts.push_back(kPrompts[i]);
      groups.push_back(static_cast<int64_t>(i));
    }
  auto b = testing::sampled_batch(m, prompts, groups, /*max_new_tokens=*/1, seed);
  b.rewards = (b.response_ids.select(1, 0) == kGood).to(torch::kFloat);
  b.token_rewards = b.rewards.unsqueeze(1) * b.response_mask.to(torch::kFloat);
  return b;
}

RlUpdateOptions update_options(int64_t n) {
  RlUpdateOptions o;
  o.mini_batch_size = static_cast<int>(n);
  o.micro_batch_size = static_cast<int>(n / 2);
  o.lr.lr = 3e-2;
  return o;
}

PolicyLossFn ppo_clip() {
  PolicyLossRegistry reg("policy loss");
  register_builtin_policy_losses(reg);
  return reg.get("ppo_clip").fn;
}

credit::AdvantageFn estimator(const std::string& name) {
  auto reg = credit::make_advantage_registry();
  credit::register_builtin_advantages(reg);
  return reg.get(name).fn;
}

TEST(LearnerBehaviourSlow, GrpoRaisesTheRewardedTokensProbability) {
  auto m = tiny_model();
  const double before = p_good(m);
  torch::optim::AdamW opt(m.parameters(), torch::optim::AdamWOptions(3e-2));
  NumericsGuard guard(3);
  int64_t step = 0;
  const auto grpo = estimator("grpo");
  for (int it = 0; it < 30; ++it) {
    auto b = sample(m, 8, static_cast<uint64_t>(it));
    credit::AdvantageInputs in;
    in.token_rewards = b.token_rewards;
    in.response_mask = b.response_mask;
    in.group_ids = b.group_ids;
    const auto a = grpo(in, credit::AdvantageOptions{});
    b.advantages = a.advantages.to(torch::kFloat);
    b.loss_mask = b.response_mask;
    rl_update(m, opt, b, ppo_clip(), update_options(b.size()), guard, step);
  }
  const double after = p_good(m);
  EXPECT_LT(before, 0.2);
  EXPECT_GT(after, 0.6) << "before " << before;
  EXPECT_EQ(step, 30);
}

void ppo_run(bool separate) {
  auto m = tiny_model(/*value_head=*/!separate);
  std::optional<models::Transformer> critic;
  if (separate) {
    critic.emplace(m.clone());
    critic->add_value_head();
  }
  const double before = p_good(m);
  torch::optim::AdamW opt(m.parameters(), torch::optim::AdamWOptions(3e-2));
  std::optional<torch::optim::AdamW> copt;
  if (separate) copt.emplace(critic->parameters(), torch::optim::AdamWOptions(3e-2));
  NumericsGuard guard(3);
  int64_t step = 0, cstep = 0;
  const auto gae = estimator("gae");
  credit::AdvantageOptions ao;
  ao.lam = 1.0;
  double first_vf = -1, last_vf = -1;
  for (int it = 0; it < 40; ++it) {
    auto b = sample(m, 8, static_cast<uint64_t>(it));
    models::Transformer& cm = separate ? *critic : m;
    {
      torch::NoGradGuard ng;
      models::LogprobOptions lo;
      lo.values = true;
      lo.logprobs = false;
      b.values = models::sequence_logprobs(cm, b.prompt_ids, b.prompt_mask, b.response_ids, b.response_mask, lo).values;
    }
    credit::AdvantageInputs in;
    in.token_rewards = b.token_rewards;
    in.response_mask = b.response_mask;
    in.group_ids = b.group_ids;
    in.values = b.values;
    const auto a = gae(in, ao);
    b.advantages = a.advantages.to(torch::kFloat);
    b.returns = a.returns.to(torch::kFloat);
    b.loss_mask = b.response_mask;
    CriticUpdate cu;
    cu.model = &cm;
    cu.optimizer = separate ? &*copt : nullptr;
    cu.opt_step = &cstep;
    cu.lr.lr = 3e-2;
    auto o = update_options(b.size());
    o.epochs = 2;
    const auto r = rl_update(m, opt, b, ppo_clip(), o, guard, step, &cu);
    ASSERT_TRUE(r.metrics.count("critic/vf_loss"));
    if (it == 0) first_vf = r.metrics.at("critic/vf_loss");
    last_vf = r.metrics.at("critic/vf_loss");
  }
  const double after = p_good(m);
  EXPECT_LT(before, 0.2);
  // The separate critic starts from a fresh value head and lags the shared one; both must
  // raise the probability several-fold.
  EXPECT_GT(after, separate ? 0.4 : 0.6) << "before " << before;
  EXPECT_EQ(step, 80);
  EXPECT_EQ(cstep, separate ? 80 : 0);
  // The critic learns: its loss falls as the reward becomes predictable.
  EXPECT_LT(last_vf, first_vf);
}

TEST(LearnerBehaviourSlow, PpoWithAValueHeadRaisesTheRewardedTokensProbability) { ppo_run(false); }
TEST(LearnerBehaviourSlow, PpoWithASeparateCriticRaisesTheRewardedTokensProbability) { ppo_run(true); }

TEST(LearnerBehaviourSlow, DpoRaisesTheChosenTokensProbability) {
  auto m = tiny_model();
  auto ref = m.clone();
  ref.set_requires_grad(false);
  const double before = p_good(m);
  torch::optim::AdamW opt(m.parameters(), torch::optim::AdamWOptions(1e-2));
  NumericsGuard guard(3);
  int64_t step = 0;
  DpoLossRegistry reg("DPO loss");
  register_builtin_dpo_losses(reg);
  DpoOptions dopt;
  dopt.beta = 0.5;
  SupervisedOptions so;
  so.micro_batch_size = 3;
  so.lr.lr = 1e-2;
  double first_acc = -1;
  for (int it = 0; it < 30; ++it) {
    std::vector<std::vector<int64_t>> chosen, rejected;
    for (size_t i = 0; i < kPrompts.size(); ++i) {
      chosen.push_back({kGood});
      rejected.push_back({static_cast<int64_t>(2 + (it + i) % 3)});  // some other token
    }
    const auto r = dpo_update(m, &ref, opt, collate(kPrompts, chosen), collate(kPrompts, rejected),
                              reg.get("sigmoid").fn, dopt, so, guard, step);
    if (it == 0) first_acc = r.metrics.at("rewards/margins");
    ASSERT_TRUE(r.stepped);
  }
  EXPECT_LT(before, 0.2);
  EXPECT_GT(p_good(m), 0.6) << "before " << before;
  EXPECT_NEAR(first_acc, 0.0, 1e-6) << "policy == reference at step 0: zero implicit margin";
}

TEST(LearnerBehaviourSlow, SftLearnsTheResponseAndIsSplitInvariant) {
  // The same mini-batch with 1 or 3 rows per micro-batch gives the same step (global token mean).
  auto a = tiny_model(), b = tiny_model();
  torch::optim::AdamW oa(a.parameters(), torch::optim::AdamWOptions(1e-2)), ob(b.parameters(), torch::optim::AdamWOptions(1e-2));
  NumericsGuard ga(3), gb(3);
  int64_t sa = 0, sb = 0;
  const std::vector<std::vector<int64_t>> responses = {{kGood, 1}, {kGood}, {kGood, 9, 1}, {kGood, 1}};
  const auto batch = collate(kPrompts, responses);
  SupervisedOptions o1, o3;
  o1.micro_batch_size = 1;
  o3.micro_batch_size = 3;
  o1.lr.lr = o3.lr.lr = 1e-2;
  const auto r1 = sft_update(a, oa, batch, o1, ga, sa);
  const auto r3 = sft_update(b, ob, batch, o3, gb, sb);
  EXPECT_NEAR(r1.metrics.at("sft/loss"), r3.metrics.at("sft/loss"), 1e-5);
  EXPECT_EQ(r1.metrics.at("sft/tokens"), 8.0);  // 2 + 1 + 3 + 2
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  for (const auto& [k, v] : pa) EXPECT_TRUE(torch::allclose(v, pb.at(k), 1e-5, 1e-6)) << k;
  double last = 0;
  for (int it = 0; it < 40; ++it) last = sft_update(a, oa, batch, o3, ga, sa).metrics.at("sft/loss");
  EXPECT_LT(last, 0.5 * r1.metrics.at("sft/loss"));
  EXPECT_GT(p_good(a), 0.9);
}

TEST(SequenceBatch, CollateAndRowsTrimPadding) {
  const auto b = collate({{1, 2, 3}, {4}}, {{5}, {6, 7, 8}}, /*pad_id=*/0);
  EXPECT_EQ(b.prompt_ids.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(b.prompt_ids[1][2].item<int64_t>(), 4);
  EXPECT_EQ(b.prompt_mask[1].sum().item<int64_t>(), 1);
  EXPECT_EQ(b.response_mask.sum(1)[1].item<int64_t>(), 3);
  const auto r = b.rows(1, 2);
  EXPECT_EQ(r.prompt_ids.sizes(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(r.response_ids.sizes(), (std::vector<int64_t>{1, 3}));
  const auto r0 = b.rows(0, 1);
  EXPECT_EQ(r0.response_ids.sizes(), (std::vector<int64_t>{1, 1}));
  EXPECT_THROW(collate({{1}}, {}), c10::Error);
}

}  // namespace
}  // namespace keel::learner
