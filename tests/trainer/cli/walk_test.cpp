// The rule "what validates, trains", walked over every registered name: each advantage estimator
// and each reward scheme `keel list` offers goes into a minimal config (tiny random model, the
// built-in arithmetic task, the verifier plus a length term so that rewards vary, the scheme's
// defaults) and is given to `keel validate`. A config it refuses must be refused as a config error
// (exit 1, "keel: error:", never "internal error"); a config it accepts must train 20 steps. The
// step-1 batch is the same rollout in every run (same seed, same initial weights), so each name's
// step-1 rewards / advantages are compared with plain GRPO's: they must differ, except for the
// names listed with the reason they equal it. The multi-rank twins run the accepted estimators and
// reward schemes on 2 colocated ranks.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>

#include "tests/trainer/cli/run_compare.h"
#include "tests/trainer/cli/run_keel.h"
#include "tests/trainer/dist/dist_test_util.h"

namespace keel::testing {
namespace {

namespace stdfs = std::filesystem;

const std::string kBase = R"(
run: {name: walk, total_steps: 20, device: cpu, seed: 5, threads: 1}
model:
  init: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, max_position_embeddings: 32}
data: {task: arithmetic, task_params: {min_digits: 1, max_digits: 1}, eval_size: 4}
rollout: {samples_per_prompt: 4, max_new_tokens: 6}
batch: {prompts_per_step: 2, mini_batch_size: 8, micro_batch_size: 8}
optim: {lr: 1.0e-3}
eval: {every: 0}
checkpoint: {every: 0}
)";

// The verifier, and a length term that makes rewards vary within groups (DAPO's soft penalty over
// the last 5 of 6 tokens), so that advantages are not all zero.
const std::string kComponents = R"(    - {scheme: task_arithmetic, name: correct}
    - {scheme: dapo_soft, name: len, params: {max_len: 6, cache_len: 5}}
)";

/// `keel list <kind>`'s names.
std::vector<std::string> listed(const std::string& kind) {
  const auto r = run_keel("list");
  std::istringstream in(r.out);
  std::vector<std::string> names;
  std::string line;
  bool on = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != ' ') {
      on = line == kind + ":";
      continue;
    }
    if (on) {
      std::istringstream w(line);
      std::string name;
      w >> name;
      names.push_back(name);
    }
  }
  return names;
}

/// A config for estimator `est`; the pairwise ones get `judge: reward_order` unless `judge` is false.
std::string estimator_config(const std::string& est, bool judge = true) {
  std::string adv = "advantage:\n  estimator: " + est + "\n";
  if (judge && est == "arena_rank") adv += "  arena: {judge: reward_order}\n";
  if (judge && est == "spo_winrate") adv += "  spo: {judge: reward_order}\n";
  return kBase + "learner: {algorithm: " + std::string(est == "gae" ? "ppo" : "grpo") + "}\n" + adv +
         "reward:\n  components:\n" + kComponents;
}

/// reward.max_all_error_steps 0: a verifier walked over the arithmetic task whose answers it does
/// not read (match_choice wants choice letters) fails on every sample, and the run would rightly
/// stop; the walk checks that every accepted scheme runs through the step, not that it fits the task.
std::string reward_config(const std::string& scheme) {
  return kBase + "learner: {algorithm: grpo}\nadvantage: {estimator: grpo}\nreward:\n  max_all_error_steps: 0\n"
         "  components:\n" + kComponents + "    - {scheme: " + scheme + ", name: under_test}\n";
}

struct Outcome {
  bool refused = false;
  std::string message;
  nlohmann::json step1;
};

/// validate, then (when accepted) train; a refusal must be a config error, a train must succeed.
Outcome walk(const ScratchDir& dir, const std::string& name, const std::string& yaml) {
  dir.write(name + ".yaml", yaml);
  Outcome o;
  auto r = run_keel("validate " + name + ".yaml", dir.path());
  EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 1) << name << ": " << r.out;
  EXPECT_EQ(r.out.find("internal error"), std::string::npos) << name << ": " << r.out;
  if (r.exit_code != 0) {
    EXPECT_EQ(r.out.rfind("keel: error: " + name + ".yaml", 0), 0u) << name << ": " << r.out;
    o.refused = true;
    o.message = r.out;
    return o;
  }
  // run.overwrite: a walk may train one name twice (a learner and an estimator both called grpo).
  r = run_keel("train " + name + ".yaml run.overwrite=true run.output_dir=out run.name=" + name, dir.path());
  EXPECT_EQ(r.exit_code, 0) << name << " validated but did not train:\n" << r.out;
  if (r.exit_code != 0) return o;
  const auto lines = json_file_lines(dir.path() / "out" / name / "metrics.jsonl");
  EXPECT_EQ(lines.size(), 20u) << name;
  if (!lines.empty()) o.step1 = lines.front();
  return o;
}

double metric(const nlohmann::json& m, const std::string& k) { return m.contains(k) ? m.at(k).get<double>() : NAN; }

/// Whether two runs' step-1 metrics in `keys` all agree (to float precision).
bool same(const nlohmann::json& a, const nlohmann::json& b, const std::vector<std::string>& keys) {
  for (const auto& k : keys)
    if (!(std::abs(metric(a, k) - metric(b, k)) <= 1e-6 * (1 + std::abs(metric(b, k))))) return false;
  return true;
}

// Names that need an input only later work produces; each must be refused at validate, its
// message naming the missing input.
const std::map<std::string, std::string> kRefusedEstimators = {
    {"ss_grpo", "stage_rewards"}, {"turn_grpo", "turn_ids"}};

TEST(WalkSlow, EveryEstimatorThatValidatesTrains) {
  ScratchDir dir("walk_est");
  const auto names = listed("estimators");
  ASSERT_GE(names.size(), 16u);
  const Outcome base = walk(dir, "grpo", estimator_config("grpo"));
  ASSERT_FALSE(base.refused) << base.message;
  ASSERT_GT(metric(base.step1, "adv/max"), 0) << "the walk's rewards must vary within groups";
  // Equal to GRPO's step-1 advantages by design, with the reason.
  const std::map<std::string, std::string> equal = {
      {"grpo", "itself"},
      {"thr", "it reweights only groups with both a correct and an incorrect response, and a from-scratch policy "
              "solves no Countdown problem (its influence scores: LoopStages.ThrInputsMatchAFullVocabularyReference)"},
      {"verl_rank", "its bonus compares each row's effective rank with EMA baselines, which start empty: no "
                    "bonus at step 1 (step 2 on differs; VerlRankStep2DiffersFromGrpo below)"},
  };
  int trained = 0;
  for (const auto& est : names) {
    SCOPED_TRACE(est);
    const Outcome o = walk(dir, est, estimator_config(est));
    if (kRefusedEstimators.count(est)) {
      EXPECT_TRUE(o.refused) << est << " should be refused until its producer exists";
      EXPECT_NE(o.message.find(kRefusedEstimators.at(est)), std::string::npos) << o.message;
      EXPECT_NE(o.message.find("which nothing in this run produces"), std::string::npos) << o.message;
      continue;
    }
    EXPECT_FALSE(o.refused) << o.message;
    if (o.refused || o.step1.is_null()) continue;
    ++trained;
    const bool eq = same(o.step1, base.step1, {"adv/max", "adv/min", "adv/mean"});
    EXPECT_EQ(eq, equal.count(est) > 0) << est << ": step-1 advantages " << (eq ? "equal" : "differ from")
                                        << " GRPO's: " << metric(o.step1, "adv/max") << " vs "
                                        << metric(base.step1, "adv/max");
  }
  EXPECT_EQ(trained, static_cast<int>(names.size() - kRefusedEstimators.size()));
  // Without a named judge, the pairwise estimators are refused (no silent reward-order judge).
  const Outcome arena = walk(dir, "arena_nojudge", estimator_config("arena_rank", /*judge=*/false));
  EXPECT_TRUE(arena.refused);
  EXPECT_NE(arena.message.find("judge: reward_order"), std::string::npos) << arena.message;
}

// VERL's producer at work: the credit stage computes (ER, ERV, ERA) from the policy's hidden
// states; from step 2 (non-empty EMA baselines) the bonus moves the advantages off GRPO's.
TEST(WalkSlow, VerlRankStep2DiffersFromGrpo) {
  ScratchDir dir("walk_verl");
  const Outcome g = walk(dir, "grpo", estimator_config("grpo"));
  const Outcome v = walk(dir, "verl_rank", estimator_config("verl_rank"));
  ASSERT_FALSE(v.refused) << v.message;
  const auto a = json_file_lines(dir.path() / "out/grpo/metrics.jsonl");
  const auto b = json_file_lines(dir.path() / "out/verl_rank/metrics.jsonl");
  ASSERT_GE(a.size(), 2u);
  ASSERT_GE(b.size(), 2u);
  EXPECT_TRUE(same(a[0], b[0], {"adv/max", "adv/min", "adv/mean"}));
  EXPECT_GT(metric(b[1], "time/rank_metrics_s"), 0);
  // Step 1: the metrics are computed (a random policy's responses have an effective rank > 1) but
  // the baselines are empty, so no shaping; step 2 shapes against them, with a non-zero bonus.
  EXPECT_GT(metric(b[0], "verl_rank/er_mean"), 1.0) << b[0].dump();
  EXPECT_EQ(metric(b[0], "verl_rank/shaping_active"), 0.0);
  EXPECT_EQ(metric(b[1], "verl_rank/shaping_active"), 1.0);
  EXPECT_NE(metric(b[1], "verl_rank/aux_mean"), 0.0) << b[1].dump();
}

TEST(WalkSlow, EveryRewardSchemeThatValidatesTrains) {
  ScratchDir dir("walk_rw");
  const auto names = listed("rewards");
  ASSERT_GE(names.size(), 40u);
  dir.write("base.yaml", kBase + "learner: {algorithm: grpo}\nreward:\n  components:\n" + kComponents);
  auto r = run_keel("train base.yaml run.output_dir=out run.name=base", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto base = json_file_lines(dir.path() / "out/base/metrics.jsonl").front();
  ASSERT_GT(metric(base, "reward/total/std"), 0) << "the walk's rewards must vary";
  // Schemes whose defaults add nothing to a verifier run at step 1, with the reason.
  const std::map<std::string, std::string> equal = {
      {"format_tags", "a random model writes no <think>/<answer> tags: 0 for every row"},
      {"match_exact", "no answer equals the gold at step 1: 0 for every row"},
      {"match_normalized", "as match_exact"},
      {"math_answer", "as match_exact"},
      {"match_choice", "no choice letter equals the gold: 0"},
      {"task_arithmetic", "the same verifier again: no row is correct at step 1"},
      {"arlcp", "ARLCP rewards correct answers only, and no row is correct at step 1: 0 for every row"},
      {"dapo_soft", "its default L_max 20480 is far beyond the 6 generated tokens: a penalty of 0"},
  };
  int trained = 0, refused = 0;
  std::ostringstream refusals;
  for (const auto& scheme : names) {
    SCOPED_TRACE(scheme);
    const Outcome o = walk(dir, "rw_" + scheme, reward_config(scheme));
    if (o.refused) {
      ++refused;
      refusals << scheme << ": " << o.message.substr(0, o.message.find('\n')) << "\n";
      // A refusal is either a missing input (with its producer) or a parameter the scheme cannot
      // default (a model path, a regex, cost channels).
      EXPECT_TRUE(o.message.find("which nothing in this run produces") != std::string::npos ||
                  o.message.find("missing required key") != std::string::npos ||
                  o.message.find("expected at least one") != std::string::npos)
          << o.message;
      continue;
    }
    if (o.step1.is_null()) continue;
    ++trained;
    const bool eq = same(o.step1, base, {"reward/total/mean", "reward/total/std"});
    EXPECT_EQ(eq, equal.count(scheme) > 0) << scheme << ": step-1 reward/total/mean " << metric(o.step1, "reward/total/mean")
                                           << " vs the verifier run's " << metric(base, "reward/total/mean");
  }
  std::cout << "[walk] reward schemes: " << trained << " trained, " << refused << " refused at validate\n"
            << refusals.str();
  EXPECT_EQ(trained + refused, static_cast<int>(names.size()));
}

// Every environment `keel list environments` offers trains (4 steps of GRPO on its episodes, from
// random init, with the env reward scheme) on the records it is made for.
TEST(WalkSlow, EveryEnvironmentTrains) {
  ScratchDir dir("walk_env");
  const auto names = listed("environments");
  ASSERT_GE(names.size(), 6u);
  const std::map<std::string, std::string> data = {
      {"calculator", "data: {task: calculator, eval_size: 4}\n"},
      {"guessing", "data: {task: guessing, task_params: {candidates: 4}, eval_size: 4}\n"},
      {"gridworld", "data: {task: gridworld, task_params: {size: 3, keys: 1, hazards: 1}, eval_size: 4}\n"},
      {"docsearch", "data: {task: docsearch, eval_size: 4}\n"},
      {"retry", "data: {task: arithmetic, task_params: {min_digits: 1, max_digits: 1}, eval_size: 4}\n"},
      {"subprocess", std::string("data: {train_file: ") + KEEL_SOURCE_DIR + "/configs/data/count_tiny.jsonl}\n"},
  };
  for (const auto& env : names) {
    SCOPED_TRACE(env);
    ASSERT_TRUE(data.count(env)) << "a new environment joins this walk with the records it plays";
    if (env == "subprocess" && std::system("python3 -c pass > /dev/null 2>&1") != 0) continue;
    std::string params = env == "subprocess" ? std::string("  params: {command: [python3, ") + KEEL_SOURCE_DIR +
                                                   "/examples/envs/count_env.py], info_keys: [success, invalid_action]}\n"
                                             : "";
    const std::string yaml = R"(
run: {name: walk_env, total_steps: 4, device: cpu, seed: 5, threads: 1}
model:
  init: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, max_position_embeddings: 128}
rollout: {samples_per_prompt: 4, max_new_tokens: 6}
batch: {prompts_per_step: 2, mini_batch_size: 8, micro_batch_size: 8}
optim: {lr: 1.0e-3}
eval: {every: 0}
checkpoint: {every: 0}
learner: {algorithm: grpo}
reward: {components: [{name: env, scheme: env}]}
env:
  name: )" + env + "\n  max_turns: 3\n  max_tokens: 40\n" +
                             params + data.at(env);
    dir.write(env + ".yaml", yaml);
    auto r = run_keel("validate " + env + ".yaml", dir.path());
    ASSERT_EQ(r.exit_code, 0) << r.out;
    r = run_keel("train " + env + ".yaml run.overwrite=true run.output_dir=out run.name=" + env, dir.path());
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const auto lines = json_file_lines(dir.path() / "out" / env / "metrics.jsonl");
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_GE(metric(lines.front(), "env/turns_mean"), 1.0);
    EXPECT_EQ(metric(lines.front(), "env/errors"), 0.0);
  }
}

/// `keel launch` of 2 colocated ranks on `name`.yaml in `dir`.
RunResult two_ranks(const ScratchDir& dir, const std::string& name, const std::string& out) {
  return run_keel("launch --nproc-per-node 2 --master-port " + std::to_string(dist::testing::free_port()) + " -- '" +
                      std::string(KEEL_BINARY) + "' train " + name + ".yaml run.overwrite=true run.total_steps=2 batch.micro_batch_size=4 run.output_dir=" + out +
                      " run.name=" + name,
                  dir.path());
}

TEST(WalkDist, AcceptedRewardSchemesTrainOnTwoRanks) {
  ScratchDir dir("walk_rw_dist");
  int ran = 0;
  for (const auto& scheme : listed("rewards")) {
    SCOPED_TRACE(scheme);
    const std::string name = "rw_" + scheme;
    dir.write(name + ".yaml", reward_config(scheme));
    if (run_keel("validate " + name + ".yaml --world-size 2 batch.micro_batch_size=4", dir.path()).exit_code != 0) continue;
    const auto r = two_ranks(dir, name, "two");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(json_file_lines(dir.path() / "two" / name / "metrics.jsonl").size(), 2u);
    ++ran;
  }
  EXPECT_GE(ran, 15);
}

TEST(WalkDist, AcceptedEstimatorsTrainOnTwoRanks) {
  ScratchDir dir("walk_dist");
  int ran = 0;
  for (const auto& est : listed("estimators")) {
    if (kRefusedEstimators.count(est)) continue;
    SCOPED_TRACE(est);
    dir.write(est + ".yaml", estimator_config(est));
    auto one = run_keel("train " + est + ".yaml run.overwrite=true run.total_steps=2 batch.micro_batch_size=4 run.output_dir=one run.name=" + est,
                        dir.path());
    ASSERT_EQ(one.exit_code, 0) << one.out;
    auto two = two_ranks(dir, est, "two");
    ASSERT_EQ(two.exit_code, 0) << two.out;
    const auto a = json_file_lines(dir.path() / "one" / est / "metrics.jsonl");
    const auto b = json_file_lines(dir.path() / "two" / est / "metrics.jsonl");
    ASSERT_EQ(a.size(), b.size());
    EXPECT_NEAR(metric(a[0], "reward/total/mean"), metric(b[0], "reward/total/mean"), 1e-6);
    EXPECT_NEAR(metric(a[0], "adv/max"), metric(b[0], "adv/max"), 1e-5);
    ++ran;
  }
  EXPECT_GE(ran, 12);
}

}  // namespace
}  // namespace keel::testing
