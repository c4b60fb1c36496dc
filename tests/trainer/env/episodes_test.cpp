// Tests for trainer/env/episodes: the multi-turn rollout on hand-made episodes of a scripted
// environment (fixed observations, rewards and info per turn) with a tiny random-init policy —
// masks, turn ids, observation tokens, per-turn rewards, info and message ids (ONI's counts), the log-prob contract over the
// whole conversation, reward placement at turn ends, failing and hanging environments, KV reuse
// against recomputation, and the expert episode's encoding.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <torch/torch.h>

#include "base/node.h"
#include "models/chat_template.h"
#include "models/logprobs.h"
#include "rewards/composite.h"
#include "tests/trainer/cli/run_keel.h"
#include "trainer/cli/catalog.h"
#include "trainer/credit/advantage_options.h"
#include "trainer/credit/turn_grpo.h"
#include "trainer/env/episodes.h"
#include "trainer/learner/sequence_batch.h"
#include "trainer/loop/credit.h"
#include "trainer/loop/run_state.h"
#include "trainer/loop/score.h"

namespace keel::env {
namespace {

/// Turn t of every episode: reward 0.25 * (t + 1), info {success: done, progress: t + 1},
/// observation "r<t>". Done after `done_at` turns. A record whose prompt contains "boom" throws on
/// its second step; "hang" sleeps past the deadline on its second step.
class ScriptedEnv : public Environment {
 public:
  explicit ScriptedEnv(int done_at) : done_at_(done_at) {}
  std::string reset(const data::PromptRecord& r, uint64_t) override {
    prompt_ = r.prompt;
    return "";
  }
  StepResult step(const std::string& action) override {
    actions.push_back(action);
    ++t_;
    if (t_ == 2 && prompt_.find("boom") != std::string::npos) throw std::runtime_error("boom at turn 2");
    if (t_ == 2 && prompt_.find("hang") != std::string::npos) std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    StepResult s;
    s.reward = 0.25 * t_;
    s.done = t_ == done_at_;
    s.observation = "r" + std::to_string(t_);
    s.info = {{"success", s.done ? 1.0 : 0.0}, {"progress", static_cast<double>(t_)}};
    return s;
  }
  std::optional<std::string> expert_action() const override { return std::string("7+8"); }
  std::vector<std::string> actions;

 private:
  int done_at_;
  int t_ = 0;
  std::string prompt_;
};

class ScriptedFactory : public EnvFactory {
 public:
  explicit ScriptedFactory(int done_at) : done_at_(done_at) {}
  std::unique_ptr<Environment> make() const override { return std::make_unique<ScriptedEnv>(done_at_); }
  std::vector<std::string> info_keys() const override { return {"success", "progress"}; }

 private:
  int done_at_;
};

/// Returns `messages[t]` as turn t's observation (never done), reward 1 on a "key" turn (else 0)
/// and info {bonus: 1}: ONI's inputs by hand.
class MessageEnv : public Environment {
 public:
  explicit MessageEnv(std::vector<std::string> messages) : messages_(std::move(messages)) {}
  std::string reset(const data::PromptRecord&, uint64_t) override { return ""; }
  StepResult step(const std::string&) override {
    StepResult s;
    s.observation = messages_[std::min(t_++, messages_.size() - 1)];
    s.reward = s.observation == "key" ? 1.0 : 0.0;
    s.info = {{"bonus", 1.0}};
    return s;
  }

 private:
  std::vector<std::string> messages_;
  size_t t_ = 0;
};

class MessageFactory : public EnvFactory {
 public:
  explicit MessageFactory(std::vector<std::string> messages) : messages_(std::move(messages)) {}
  std::unique_ptr<Environment> make() const override { return std::make_unique<MessageEnv>(messages_); }
  std::vector<std::string> info_keys() const override { return {"bonus"}; }

 private:
  std::vector<std::string> messages_;
};

const std::string kRun = R"(
run: {name: episodes, total_steps: 1, device: cpu, seed: 5, threads: 1}
model:
  init: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, max_position_embeddings: 96}
data: {task: arithmetic, task_params: {min_digits: 1, max_digits: 1}, eval_size: 8}
rollout: {samples_per_prompt: 2, max_new_tokens: 5}
batch: {prompts_per_step: 2, mini_batch_size: 4, micro_batch_size: 4}
learner: {algorithm: grpo}
)";

struct Fixture {
  keel::testing::ScratchDir dir{"episodes"};
  loop::RunState s;
  Fixture() {
    config::LoadOptions opt;
    opt.overrides = {"run.output_dir=" + dir.path().string()};
    s.cfg = config::load_config_node(config::parse_yaml_string(kRun, "episodes.yaml"), opt, cli::known_names());
    s.algorithm = s.cfg.learner.algorithm;
    s.run_dir = dir.path() / s.cfg.run.name;
    loop::init_ranks(s, "episodes.yaml");
    loop::resolve_device(s, 0);
    torch::manual_seed(5);
    loop::build_components(s, cli::reward_registry(), true, {});
    loop::build_models(s, std::nullopt);
  }
};

std::vector<data::PromptRecord> records(std::vector<std::string> prompts) {
  std::vector<data::PromptRecord> out;
  for (size_t i = 0; i < prompts.size(); ++i) {
    data::PromptRecord r;
    r.id = "r" + std::to_string(i);
    r.prompt = prompts[i];
    out.push_back(r);
  }
  return out;
}

/// The composite reward of a `reward:` section (the run's contract check left out: the scripted
/// environment is not a registered one).
std::unique_ptr<rewards::CompositeReward> reward_of(const std::string& section) {
  auto known = cli::known_names();
  known.contracts = nullptr;
  const auto cfg = config::load_config_node(config::parse_yaml_string(kRun + section, "r.yaml"), {}, known);
  return rewards::build_composite_reward(cfg.reward, cli::reward_registry(), "");
}

/// Three turns, `max_tokens` response-side tokens.
EpisodeOptions episode_options(int64_t max_tokens) {
  EpisodeOptions eo;
  eo.max_turns = 3;
  eo.max_tokens = max_tokens;
  return eo;
}

rollout::RolloutOptions options(int samples) {
  rollout::RolloutOptions ro;
  ro.samples_per_prompt = samples;
  ro.max_new_tokens = 5;
  ro.temperature = 1.0;
  ro.seed = 11;
  ro.chat_template = "plain";
  return ro;
}

TEST(Episodes, MasksTurnIdsObservationsRewardsAndTheLogprobContract) {
  Fixture f;
  ScriptedFactory envs(/*done_at=*/2);
  rewards::Scorer pool(rewards::ScorerOptions{.timeout_ms = 5000, .threads = 2});
  auto eo = episode_options(60);
  EpisodeStats st;
  const auto prompts = records({"1+2=", "3+4="});
  const auto b = run_episodes(*f.s.policy, *f.s.tok, envs, pool, prompts, options(2), eo, &st);
  ASSERT_EQ(b.size(), 4);
  EXPECT_EQ(b.env_keys, (std::vector<std::string>{"success", "progress", "env_failed"}));
  const auto obs1 = f.s.tok->encode(models::render_observation("plain", "tool", "r1"), false, true);
  for (int64_t i = 0; i < 4; ++i) {
    // Two policy turns around one observation: [turn 0 tokens][obs "r1"][turn 1 tokens].
    const auto m = b.response_mask[i], a = b.response_attention[i], t = b.turn_ids[i];
    const int64_t len = a.sum().item<int64_t>();
    EXPECT_TRUE(a.slice(0, 0, len).eq(1).all().item<bool>()) << "attention is a prefix";
    EXPECT_TRUE(m.to(torch::kBool).eq(t.ge(0)).all().item<bool>()) << "policy tokens are exactly the turn tokens";
    int64_t t0 = 0;
    while (t0 < len && t[t0].item<int64_t>() == 0) ++t0;
    ASSERT_GT(t0, 0);
    for (size_t k = 0; k < obs1.size(); ++k) {
      EXPECT_EQ(t[t0 + static_cast<int64_t>(k)].item<int64_t>(), -1);
      EXPECT_EQ(b.response_ids[i][t0 + static_cast<int64_t>(k)].item<int64_t>(), obs1[k]);
      EXPECT_EQ(b.old_logprobs[i][t0 + static_cast<int64_t>(k)].item<float>(), 0.0f);
    }
    EXPECT_EQ(t[t0 + static_cast<int64_t>(obs1.size())].item<int64_t>(), 1);
    EXPECT_EQ(t[len - 1].item<int64_t>(), 1);
    EXPECT_EQ(b.finish_reasons[static_cast<size_t>(i)], "done");
    // Per-turn rewards 0.25, 0.5, nothing for the unplayed third; info at the last step.
    EXPECT_FLOAT_EQ(b.env_turn_rewards[i][0].item<float>(), 0.25f);
    EXPECT_FLOAT_EQ(b.env_turn_rewards[i][1].item<float>(), 0.5f);
    EXPECT_FLOAT_EQ(b.env_turn_rewards[i][2].item<float>(), 0.0f);
    EXPECT_FLOAT_EQ(b.env_info[i][0].item<float>(), 1.0f);  // success
    EXPECT_FLOAT_EQ(b.env_info[i][1].item<float>(), 2.0f);  // progress
    EXPECT_FLOAT_EQ(b.env_info[i][2].item<float>(), 0.0f);  // env_failed
    EXPECT_FLOAT_EQ(b.env_turn_info[i][0][1].item<float>(), 1.0f);
  }
  EXPECT_EQ(st.turns, 8);
  EXPECT_EQ(st.endings.at("done"), 4);
  // The learner's teacher-forced log-probs over the whole conversation (observations attended to)
  // equal the sampler's on every policy token.
  models::LogprobOptions lo;
  lo.response_attention = b.response_attention;
  const auto lp = models::sequence_logprobs(*f.s.policy, b.prompt_ids, b.prompt_mask, b.response_ids, b.response_mask, lo);
  EXPECT_TRUE(torch::allclose(lp.logprobs, b.old_logprobs, 1e-5, 1e-5));
  // Without the observations in view the policy's second turn would be scored differently.
  const auto blind = models::sequence_logprobs(*f.s.policy, b.prompt_ids, b.prompt_mask, b.response_ids, b.response_mask);
  EXPECT_FALSE(torch::allclose(blind.logprobs, b.old_logprobs, 1e-5, 1e-5));

  // Reward placement: the env scheme, dense, puts each turn's reward on its turn's last token.
  auto in = loop::reward_input(b, 0);
  ASSERT_TRUE(in.step_ends.defined());
  const auto out = reward_of("reward: {components: [{name: env, scheme: env, params: {dense: true}}]}")->score(in);
  for (int64_t i = 0; i < 4; ++i) {
    const int64_t end0 = in.step_ends[i][0].item<int64_t>(), end1 = in.step_ends[i][1].item<int64_t>();
    EXPECT_EQ(b.turn_ids[i][end0].item<int64_t>(), 0);
    EXPECT_EQ(b.turn_ids[i][end0 + 1].item<int64_t>(), -1);
    EXPECT_EQ(in.step_ends[i][2].item<int64_t>(), -1);
    EXPECT_FLOAT_EQ(out.token_rewards[i][end0].item<float>(), 0.25f);
    EXPECT_FLOAT_EQ(out.token_rewards[i][end1].item<float>(), 0.5f);
    EXPECT_FLOAT_EQ(out.token_rewards[i].sum().item<float>(), 0.75f);
    EXPECT_FLOAT_EQ(out.rewards[i].item<float>(), 0.75f);
    EXPECT_TRUE(out.correct[i].item<bool>());
  }
  // turn_grpo on the batch: advantages only on policy tokens; equal episodes give 0.
  credit::AdvantageInputs ain;
  ain.token_rewards = out.token_rewards;
  ain.response_mask = b.response_mask;
  ain.group_ids = b.group_ids;
  ain.turn_ids = b.turn_ids;
  credit::AdvantageOptions ao;
  const auto adv = credit::advantage_turn_grpo(ain, ao).advantages;
  EXPECT_TRUE(adv.masked_select(b.response_mask.eq(0)).eq(0).all().item<bool>());
  EXPECT_LT(adv.abs().max().item<float>(), 1e-6);  // every episode earned the same turn rewards
}

// ONI (Zheng et al., arXiv 2410.23022) on the episode path: each turn's observation id reaches the
// `oni` scheme, which counts it within the episode. Turn 1 is the worked example (c_ext 0.1, c_llm
// 0.4, beta 3, r_env 0, r_int 1, the second occurrence of "wall"): 0.4 / 2^3 = 0.05.
TEST(Episodes, OniCountsEachTurnsObservationWithinItsEpisode) {
  Fixture f;
  MessageFactory envs({"wall", "wall", "key"});
  rewards::Scorer pool(rewards::ScorerOptions{.timeout_ms = 5000, .threads = 2});
  const auto prompts = records({"1+2=", "3+4="});  // the batch points at them
  const auto b = run_episodes(*f.s.policy, *f.s.tok, envs, pool, prompts, options(2), episode_options(60));
  ASSERT_EQ(b.size(), 4);
  const auto want = torch::tensor({message_id("wall"), message_id("wall"), message_id("key")}, torch::kLong);
  EXPECT_NE(message_id("wall"), message_id("key"));
  EXPECT_LT(message_id("wall"), int64_t{1} << 53) << "exact as the float64 the schemes read";
  auto in = loop::reward_input(b, 0);
  for (int64_t i = 0; i < 4; ++i) {
    ASSERT_EQ(b.finish_reasons[static_cast<size_t>(i)], "max_turns");
    EXPECT_TRUE(torch::equal(b.env_turn_message_ids[i], want)) << b.env_turn_message_ids[i];
    EXPECT_TRUE(in.step_mask[i].all().item<bool>());
  }
  EXPECT_TRUE(torch::equal(in.extra.at("message_ids"), b.env_turn_message_ids));
  EXPECT_TRUE(torch::equal(in.extra.at("env_rewards"), b.env_turn_rewards));
  const std::string oni = "reward: {components: [{name: oni, scheme: oni, params: {c_ext: 0.1, c_llm: 0.4, beta: 3, "
                          "intrinsic: extra.bonus_turns}}]}";
  // wall (N 1): 0.4 / 1 = 0.4; wall (N 2): 0.4 / 8 = 0.05; key (N 1, r_env 1): 0.1 + 0.4 = 0.5.
  auto out = reward_of(oni)->score(in);
  for (int64_t i = 0; i < 4; ++i) EXPECT_NEAR(out.rewards[i].item<double>(), 0.95, 1e-6) << i;
  // The first two turns alone: the worked example's 0.05 on top of the first wall's 0.4.
  in.step_mask.select(1, 2).fill_(false);
  out = reward_of(oni)->score(in);
  for (int64_t i = 0; i < 4; ++i) EXPECT_NEAR(out.rewards[i].item<double>(), 0.45, 1e-6) << i;
  // Counts restart with each episode (row): a batch of one-turn episodes pays every wall in full.
  auto eo = episode_options(60);
  eo.max_turns = 1;
  const auto one = run_episodes(*f.s.policy, *f.s.tok, envs, pool, prompts, options(1), eo);
  out = reward_of(oni)->score(loop::reward_input(one, 0));
  for (int64_t i = 0; i < 2; ++i) EXPECT_NEAR(out.rewards[i].item<double>(), 0.4, 1e-6) << i;
}

TEST(Episodes, TheTurnsAreSsGrpoStagesWithTheirRewards) {
  Fixture f;
  ScriptedFactory envs(/*done_at=*/3);
  rewards::Scorer pool(rewards::ScorerOptions{.timeout_ms = 5000, .threads = 2});
  auto eo = episode_options(60);
  const auto b = run_episodes(*f.s.policy, *f.s.tok, envs, pool, records({"1+2="}), options(2), eo);
  // Three turns, two stages: turns 1 and 2 merge into stage 1, which keeps turn 2's reward.
  const auto st = loop::env_stages(b, 2);
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t t = 0; t < b.turn_ids.size(1); ++t) {
      const int64_t turn = b.turn_ids[i][t].item<int64_t>();
      EXPECT_EQ(st.ids[i][t].item<int64_t>(), turn < 0 ? -1 : std::min<int64_t>(turn, 1));
    }
    EXPECT_FLOAT_EQ(st.rewards[i][0].item<float>(), 0.25f);
    EXPECT_FLOAT_EQ(st.rewards[i][1].item<float>(), 0.75f);
    EXPECT_TRUE(st.present[i].all().item<bool>());
  }
}

TEST(Episodes, AThrowingOrHangingEnvironmentFailsItsEpisodeOnlyAndIsCounted) {
  Fixture f;
  ScriptedFactory envs(/*done_at=*/3);
  rewards::Scorer pool(rewards::ScorerOptions{.timeout_ms = 300, .threads = 2});
  auto eo = episode_options(60);
  EpisodeStats st;
  const auto t0 = std::chrono::steady_clock::now();
  const auto prompts = records({"1+2=", "boom", "hang"});  // the batch points to them (reward_input below)
  const auto b = run_episodes(*f.s.policy, *f.s.tok, envs, pool, prompts, options(1), eo, &st);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 1.4) << "the hanging environment must not stall the batch";
  EXPECT_EQ(st.env_errors, 1);
  EXPECT_EQ(st.env_timeouts, 1);
  EXPECT_EQ(st.first_error, "boom at turn 2");
  EXPECT_EQ(b.finish_reasons, (std::vector<std::string>{"done", "env_failed", "env_failed"}));
  EXPECT_FLOAT_EQ(b.env_info[0][2].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(b.env_info[1][2].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(b.env_info[2][2].item<float>(), 1.0f);
  EXPECT_EQ(b.turn_ids[0].max().item<int64_t>(), 2);  // the healthy episode played its three turns
  EXPECT_EQ(b.turn_ids[1].max().item<int64_t>(), 1);  // the failed ones stopped at their second
  // The env scheme gives failed episodes failed_reward and no correctness.
  auto in = loop::reward_input(b, 0);
  const auto out = reward_of("reward: {components: [{name: env, scheme: env, params: {failed_reward: -1}}]}")->score(in);
  EXPECT_FLOAT_EQ(out.rewards[0].item<float>(), 1.5f);
  EXPECT_FLOAT_EQ(out.rewards[1].item<float>(), -1.0f);
  EXPECT_FALSE(out.correct[2].item<bool>());
}

TEST(Episodes, ReusingTheCacheSamplesWhatRecomputingDoesWithLessWork) {
  Fixture f;
  ScriptedFactory envs(3);
  rewards::Scorer pool(rewards::ScorerOptions{.timeout_ms = 5000, .threads = 2});
  auto eo = episode_options(60);
  EpisodeStats reuse, recompute;
  const auto prompts = records({"1+2=", "3+4=", "5+6="});
  const auto a = run_episodes(*f.s.policy, *f.s.tok, envs, pool, prompts, options(2), eo, &reuse);
  eo.reuse_kv = false;
  const auto b = run_episodes(*f.s.policy, *f.s.tok, envs, pool, prompts, options(2), eo, &recompute);
  EXPECT_TRUE(torch::equal(a.response_ids, b.response_ids));
  EXPECT_TRUE(torch::allclose(a.old_logprobs, b.old_logprobs, 1e-5, 1e-5));
  EXPECT_LT(reuse.forwarded_tokens, recompute.forwarded_tokens);
  // Chunked decoding (batch_size 2 of 6 rows) samples what one chunk does.
  auto ro = options(2);
  ro.batch_size = 2;
  eo.reuse_kv = true;
  const auto c = run_episodes(*f.s.policy, *f.s.tok, envs, pool, prompts, ro, eo);
  EXPECT_TRUE(torch::equal(a.response_ids, c.response_ids));
}

TEST(Episodes, TheTokenBudgetEndsAnEpisode) {
  Fixture f;
  ScriptedFactory envs(3);
  rewards::Scorer pool(rewards::ScorerOptions{.timeout_ms = 5000, .threads = 1});
  EpisodeOptions eo;
  eo.max_turns = 3;
  eo.max_tokens = 7;  // fewer than two 5-token turns and an observation
  const auto b = run_episodes(*f.s.policy, *f.s.tok, envs, pool, records({"1+2="}), options(4), eo);
  for (int64_t i = 0; i < b.size(); ++i) {
    EXPECT_LE(b.response_attention[i].sum().item<int64_t>(), 7);
    EXPECT_NE(b.finish_reasons[static_cast<size_t>(i)], "done");
  }
}

TEST(Episodes, ExpertEpisodeEncodesTurnsObservationsAndTheMask) {
  Fixture f;
  ScriptedFactory envs(2);
  auto eo = episode_options(60);
  const auto prompts = records({"1+2="});
  const auto ep = expert_episode(*f.s.tok, envs, prompts[0], 1, "plain", eo);
  EXPECT_TRUE(ep.success);
  auto turn = f.s.tok->encode("7+8", false, false);
  turn.push_back(f.s.tok->eos_id());
  const auto obs = f.s.tok->encode(models::render_observation("plain", "tool", "r1"), false, true);
  std::vector<int64_t> want = turn, mask(turn.size(), 1);
  want.insert(want.end(), obs.begin(), obs.end());
  mask.insert(mask.end(), obs.size(), 0);
  want.insert(want.end(), turn.begin(), turn.end());
  mask.insert(mask.end(), turn.size(), 1);
  EXPECT_EQ(ep.response, want);
  EXPECT_EQ(ep.mask, mask);
  eo.max_tokens = 3;
  EXPECT_THROW(expert_episode(*f.s.tok, envs, prompts[0], 1, "plain", eo), std::exception);
}

}  // namespace
}  // namespace keel::env
