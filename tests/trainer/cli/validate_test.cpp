// `keel validate` on a table of malformed configs and overrides: each gives its exact error text
// (file:line: yaml.path: message) and a non-zero exit; well-formed configs pass.
#include <gtest/gtest.h>

#include "tests/trainer/cli/run_keel.h"

namespace keel::testing {
namespace {

struct BadConfig {
  const char* name;
  const char* yaml;   // written to c.yaml
  const char* args;   // extra arguments after "validate c.yaml"
  const char* expected;  // exact output (every line)
};

// Line numbers refer to the yaml text (line 1 = first line).
const BadConfig kBad[] = {
    {"UnknownSection", "lerner:\n  lr: 1\n", "",
     "keel: error: c.yaml:1: lerner: unknown key (did you mean 'learner'?)\n"},
    {"UnknownKey", "optim:\n  lrr: 0.1\n", "",
     "keel: error: c.yaml:2: optim.lrr: unknown key (did you mean 'lr'?)\n"},
    {"NotANumber", "optim:\n  lr: fast\n", "",
     "keel: error: c.yaml:2: optim.lr: expected a number, got 'fast'\n"},
    {"QuotedNumber", "optim:\n  lr: \"0.1\"\n", "",
     "keel: error: c.yaml:2: optim.lr: expected a number, got the quoted string '0.1' (drop the quotes for a non-string)\n"},
    {"NotAnInteger", "rollout:\n  samples_per_prompt: 2.5\n", "",
     "keel: error: c.yaml:2: rollout.samples_per_prompt: expected an integer, got '2.5'\n"},
    {"NotABool", "data:\n  shuffle: maybe\n", "",
     "keel: error: c.yaml:2: data.shuffle: expected true or false, got 'maybe'\n"},
    {"OutOfRange", "optim:\n  lr: -1\n", "", "keel: error: c.yaml:2: optim.lr: must be > 0.0, got -1.0\n"},
    {"ClipHighBelowClipLow", "learner:\n  clip_low: 0.2\n  clip_high: 0.1\n", "",
     "keel: error: c.yaml:3: learner.clip_high: must be >= learner.clip_low (0.2), got 0.1\n"},
    {"UnknownEnum", "learner:\n  loss_agg: token-sum\n", "",
     "keel: error: c.yaml:2: learner.loss_agg: unknown aggregation mode 'token-sum' "
     "(known: token-mean, seq-mean-token-sum, seq-mean-token-mean, seq-mean-token-sum-norm)\n"},
    {"SectionNotAMap", "optim: 3\n", "", "keel: error: c.yaml:1: optim: expected a map of keys, got '3'\n"},
    {"ListExpected", "rollout:\n  stop_token_ids: 5\n", "",
     "keel: error: c.yaml:2: rollout.stop_token_ids: expected a list of integers, got '5'\n"},
    {"BadListItem", "rollout:\n  stop_token_ids: [1, x]\n", "",
     "keel: error: c.yaml:2: rollout.stop_token_ids: item 1: expected an integer, got 'x'\n"},
    {"NegativeListItem", "rollout:\n  stop_token_ids: [-1]\n", "",
     "keel: error: c.yaml:2: rollout.stop_token_ids: every item must be >= 0, got -1\n"},
    {"EmptyValue", "optim:\n  lr:\n", "",
     "keel: error: c.yaml:2: optim.lr: expected a value, got nothing (omit the key for the default 1e-05)\n"},
    {"TopLevelList", "- a\n- b\n", "", "keel: error: c.yaml:1: a config must be a map of sections, got a list\n"},
    {"DuplicateKey", "optim:\n  lr: 1\n  lr: 2\n", "", "keel: error: c.yaml:3: duplicate key 'lr'\n"},
    {"MiniBatchDoesNotDivide", "batch:\n  prompts_per_step: 8\n  mini_batch_size: 48\n", "",
     "keel: error: c.yaml:1: batch: mini_batch_size 48 must divide the rollout batch (prompts_per_step 8 x "
     "rollout.samples_per_prompt 8 = 64)\n"},
    {"ZeroAccumulationSteps", "batch:\n  mini_batch_size: 64\n  micro_batch_size: 128\n", "",
     "keel: error: c.yaml:1: batch: mini_batch_size 64 is not a whole number (>= 1) of micro_batch_size 128 x 1 "
     "learner rank(s) = 128: it would give 0.5 gradient-accumulation steps\n"},
    {"WorldSizeSplit", "run:\n  name: a\n", "--world-size 3",
     "keel: error: c.yaml:1: batch: prompts_per_step 8 does not divide among 3 rollout ranks\n"
     "keel: error: c.yaml:1: batch: mini_batch_size 64 is not a whole number (>= 1) of micro_batch_size 16 x 3 "
     "learner rank(s) = 48: it would give 1.3333333333333333 gradient-accumulation steps\n"},
    {"OverrideType", "optim:\n  lr: 0.1\n", "optim.lr=abc",
     "keel: error: override optim.lr=abc: optim.lr: expected a number, got 'abc'\n"},
    {"OverrideUnknownKey", "optim:\n  lr: 0.1\n", "optim.lrr=1",
     "keel: error: override optim.lrr=1: optim.lrr: unknown key (did you mean 'lr'?)\n"},
    {"OverrideWithoutValue", "optim:\n  lr: 0.1\n", "optim.lr",
     "keel: error: override 'optim.lr': expected key.path=value (e.g. learner.lr=1e-6)\n"},
    {"OverrideIntoScalar", "run:\n  name: a\n", "run.name.x=1",
     "keel: error: override 'run.name.x=1': run.name is a single value, it has no key 'x'\n"},
    {"OverrideOutOfRange", "optim:\n  lr: 0.1\n", "rollout.top_p=1.5",
     "keel: error: override rollout.top_p=1.5: rollout.top_p: must be <= 1.0, got 1.5\n"},
    {"PpoWithoutGae", "learner:\n  algorithm: ppo\n", "",
     "keel: error: c.yaml:1: advantage: learner.algorithm ppo trains a critic; use advantage.estimator gae, got 'grpo'\n"},
    {"GroupOfOne", "rollout:\n  samples_per_prompt: 1\n  max_new_tokens: 8\n", "--world-size 1 batch.mini_batch_size=8 batch.micro_batch_size=8",
     "keel: error: c.yaml:1: rollout: advantage.estimator grpo compares samples of one prompt: "
     "rollout.samples_per_prompt must be >= 2, got 1\n"},
    {"HeadsDoNotDivide", "model:\n  init:\n    hidden_size: 100\n    num_heads: 3\n", "",
     "keel: error: c.yaml:2: model.init.num_kv_heads: must divide model.init.num_heads (3), got 2\n"
     "keel: error: c.yaml:4: model.init.num_heads: must divide model.init.hidden_size (100), got 3\n"},
    {"ManyErrorsAtOnce", "optim:\n  lr: -1\n  grad_clip: -2\nrollout:\n  top_p: 0\n", "",
     "keel: error: c.yaml:2: optim.lr: must be > 0.0, got -1.0\n"
     "keel: error: c.yaml:3: optim.grad_clip: must be >= 0.0, got -2.0\n"
     "keel: error: c.yaml:5: rollout.top_p: must be > 0.0, got 0.0\n"},
    {"DisaggregatedRanks", "dist:\n  placement: disaggregated\n  rollout_ranks: 1\n  learner_ranks: 1\n",
     "--world-size 4 batch.prompts_per_step=4 batch.mini_batch_size=32",
     "keel: error: c.yaml:1: dist: rollout_ranks + reward_ranks + learner_ranks = 1 + 0 + 1 = 2 must equal the "
     "world size 4\n"},
    {"UnknownDevice", "run:\n  device: gpu\n", "",
     "keel: error: c.yaml:2: run.device: unknown device 'gpu', did you mean 'cpu'? (known: auto, cpu, cuda)\n"},
    {"EmptyName", "run:\n  name: \"\"\n", "", "keel: error: c.yaml:2: run.name: must not be empty\n"},
    {"RewardComponentWithoutScheme", "reward:\n  components:\n    - weight: 1.0\n", "",
     "keel: error: c.yaml:3: reward.components.0.scheme: missing required key\n"},
    {"KlEstimatorUnknown", "kl:\n  estimator: k4\n", "",
     "keel: error: c.yaml:2: kl.estimator: unknown KL estimator 'k4', did you mean 'k1'? (known: abs, k1, k1+, k2, k2+, "
     "k3, k3+)\n"},
    {"DpoSigmoidWithLabelSmoothing", "learner:\n  algorithm: dpo\ndpo:\n  loss: sigmoid\n  label_smoothing: 0.1\n", "",
     "keel: error: c.yaml:5: dpo.label_smoothing: only dpo.loss cdpo and robust use label smoothing, got 0.1 with "
     "dpo.loss sigmoid; for label-smoothed DPO set dpo.loss: cdpo\n"},
    {"ShardingLevelUnknown", "dist:\n  sharding: half\n", "",
     "keel: error: c.yaml:2: dist.sharding: unknown sharding level 'half' (known: none, optimizer, gradients, full)\n"},
    {"FullShardingWithoutCheckpointing", "dist:\n  sharding: full\n", "",
     "keel: error: c.yaml:2: dist.sharding: full needs model.activation_checkpointing: true (each layer is gathered "
     "again and its gradients reduce-scattered inside its recomputed backward)\n"},
    {"GradientShardingWithLora", "model:\n  activation_checkpointing: true\n  lora: {rank: 4}\ndist:\n  sharding: gradients\n",
     "", "keel: error: c.yaml:5: dist.sharding: gradients does not shard LoRA adapters (they are small); use "
     "dist.sharding optimizer or none with model.lora\n"},
    {"LoraUnknownTarget", "model:\n  lora:\n    rank: 4\n    target_modules: [q_proj, qkv]\n", "",
     "keel: error: c.yaml:4: model.lora.target_modules: unknown module 'qkv' (expected one of all-linear, q_proj, "
     "k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)\n"},
    {"KvPoolTooSmall", "rollout:\n  max_new_tokens: 40\n  kv_block_size: 8\n  kv_blocks: 5\n", "",
     "keel: error: c.yaml:1: rollout: kv_blocks 5 x kv_block_size 8 = 40 tokens cannot hold one sequence of a prompt "
     "and max_new_tokens 40: raise kv_blocks (0 = sized from batch_size)\n"},
    {"UnknownEngine", "rollout:\n  engine: vllm\n", "",
     "keel: error: c.yaml:2: rollout.engine: unknown rollout engine 'vllm' (known: paged, static)\n"},
    {"GrpoSingletonMoved", "advantage:\n  grpo:\n    singleton: zero\n", "",
     "keel: error: c.yaml:3: advantage.grpo.singleton: moved to advantage.singleton, one rule for every grouped "
     "estimator (error | zero | raw): write the key under advantage instead of advantage.grpo\n"},
};

class ValidateBad : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ValidateBad, ExactErrorAndNonZeroExit) {
  const auto& c = GetParam();
  ScratchDir dir(c.name);
  dir.write("c.yaml", c.yaml);
  const auto r = run_keel(std::string("validate c.yaml ") + c.args, dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(r.out, c.expected);
}

INSTANTIATE_TEST_SUITE_P(Table, ValidateBad, ::testing::ValuesIn(kBad),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Validate, MissingFileIsAnError) {
  ScratchDir dir("missing");
  const auto r = run_keel("validate nothere.yaml", dir.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "keel: error: nothere.yaml: cannot open config file (does it exist and is it readable?)\n");
}

TEST(Validate, YamlSyntaxErrorNamesTheLine) {
  ScratchDir dir("syntax");
  dir.write("c.yaml", "optim:\n  lr: 0.1\nrollout: [1, 2\n");
  const auto r = run_keel("validate c.yaml", dir.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out.rfind("keel: error: c.yaml:", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("invalid YAML"), std::string::npos) << r.out;
}

TEST(Validate, GoodConfigPassesAndReportsTheBatchArithmetic) {
  ScratchDir dir("good");
  dir.write("c.yaml", "batch:\n  prompts_per_step: 8\n  mini_batch_size: 32\n  micro_batch_size: 8\n");
  const auto r = run_keel("validate c.yaml --world-size 2", dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("rollout batch 64 = 8 prompts x 8 samples, 2 mini-batch(es) per epoch, 2 "
                       "gradient-accumulation step(s) per mini-batch on each of 2 learner rank(s)"),
            std::string::npos)
      << r.out;
}

TEST(Validate, WorldSizeComesFromTheEnvironment) {
  ScratchDir dir("env");
  dir.write("c.yaml", "run:\n  name: a\n");
  const auto r = run_keel("validate c.yaml", dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out;
  const auto r3 = run_keel("validate c.yaml", dir.path(), "WORLD_SIZE=3");
  EXPECT_EQ(r3.exit_code, 1);
  EXPECT_NE(r3.out.find("prompts_per_step 8 does not divide among 3 rollout ranks"), std::string::npos) << r3.out;
  const auto bad = run_keel("validate c.yaml", dir.path(), "WORLD_SIZE=two");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.out, "keel: error: environment WORLD_SIZE=two is not a positive integer\n");
}

}  // namespace
}  // namespace keel::testing
