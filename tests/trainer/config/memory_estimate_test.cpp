// Tests of trainer/config/memory_estimate.{h,cpp}: the parameter count by hand, the terms that
// sizes which validated but could never fit (prompts_per_step 2^28, eval.k 2^24, hidden_size 2^20)
// drive, and the check's message, key and override. The budget is given, so these do not depend on
// this machine; tests/trainer/loop/resources_test.cpp checks the count against a real model.
#include "trainer/config/memory_estimate.h"

#include <gtest/gtest.h>

#include "base/error.h"
#include "base/reader.h"
#include "trainer/config/config.h"

namespace keel::config {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

RunConfig load(const std::string& yaml) {
  return load_config_node(parse_yaml_string(yaml, "c.yaml"), LoadOptions{}, KnownNames{});
}

/// check_memory's messages for `yaml` against `gib` GiB shared by `ranks` ranks.
std::vector<std::string> check(const std::string& yaml, double gib, int ranks = 1) {
  const Node root = parse_yaml_string(yaml, "c.yaml");
  const RunConfig cfg = load(yaml);
  const auto e = estimate_memory(cfg, init_model_shape(cfg.model.init, 0), /*reference=*/false, /*cuda=*/false);
  Diagnostics diag;
  check_memory(cfg, e, MemoryBudget{gib * kGiB, ranks, "RAM available on this machine"}, root, diag);
  return diag.errors();
}

TEST(MemoryEstimate, ParameterCountByHand) {
  ModelShape s{.vocab_size = 10, .hidden_size = 4, .num_layers = 1, .num_heads = 2, .num_kv_heads = 1,
               .head_dim = 2, .intermediate_size = 6, .tie_word_embeddings = true};
  // embedding 10*4 = 40; attention q 4*4 + k,v 2*(4*2) + o 4*4 = 48; MLP 3*4*6 = 72; two norms 8;
  // final norm 4: 40 + 48 + 72 + 8 + 4 = 172, and an untied LM head adds 40.
  EXPECT_EQ(parameter_count(s), 172);
  s.tie_word_embeddings = false;
  EXPECT_EQ(parameter_count(s), 212);
}

TEST(MemoryEstimate, TheDefaultConfigIsSmall) {
  const RunConfig cfg = load("{}");
  const auto e = estimate_memory(cfg, init_model_shape(cfg.model.init, 0), false, false);
  EXPECT_GT(e.total(), 1e6);
  EXPECT_LT(e.total(), 256.0 * 1024 * 1024);
  EXPECT_TRUE(check("{}", 1).empty());
}

// prompts_per_step 2^28 x 4 samples = 2^30 sequences of 32 tokens, 40 bytes a token: 1.25 TiB.
TEST(MemoryEstimate, AHugeRolloutBatchIsRefusedAtItsKey) {
  const std::string yaml = "batch:\n  prompts_per_step: 268435456\nrollout:\n  samples_per_prompt: 4\n";
  const auto e = check(yaml, 64);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].rfind("c.yaml:2: batch.prompts_per_step: the run needs an estimated 1.3 TiB per rank (at least), more "
                       "than the 64.0 GiB RAM available on this machine: rollout batch (1.07e+09 sequences on this "
                       "rank) 1.2 TiB (batch.prompts_per_step, rollout.samples_per_prompt, rollout.max_new_tokens); ",
                       0),
            0u)
      << e[0];
  EXPECT_NE(e[0].find("; lower the keys named, or set run.skip_memory_check: true to start anyway"), std::string::npos) << e[0];
  EXPECT_TRUE(check(yaml + "run: {skip_memory_check: true}\n", 64).empty());
}

TEST(MemoryEstimate, HugeEvalSamplesAreRefusedAtEvalK) {
  const auto e = check("eval:\n  k: 16777216\n", 64);  // 64 prompts x 2^24 samples
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].rfind("c.yaml:2: eval.k: the run needs an estimated", 0), 0u) << e[0];
  EXPECT_NE(e[0].find("evaluation samples (64 prompts x eval.k 16777216) 1.2 TiB (eval.k, eval.num_prompts)"),
            std::string::npos) << e[0];
  // eval.every 0 never samples them.
  EXPECT_TRUE(check("eval:\n  k: 16777216\n  every: 0\n", 64).empty());
}

TEST(MemoryEstimate, AHugeModelIsRefusedAtItsShape) {
  const auto e = check("model:\n  init:\n    hidden_size: 1048576\n", 64);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].rfind("c.yaml:3: model.init.hidden_size: the run needs an estimated", 0), 0u) << e[0];
  EXPECT_NE(e[0].find("policy weights, gradients and AdamW moments (6.6e+12 parameters)"), std::string::npos) << e[0];
  EXPECT_NE(e[0].find("(model.init.hidden_size, model.init.num_layers, model.init.intermediate_size)"), std::string::npos)
      << e[0];
}

TEST(MemoryEstimate, RanksOnOneMachineShareIt) {
  // The default config needs about 16 MiB per rank: 0.5 GiB holds one rank, not 64.
  EXPECT_TRUE(check("{}", 0.5, 1).empty());
  const auto e = check("{}", 0.5, 64);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find(" x 64 ranks on this machine = "), std::string::npos) << e[0];
}

TEST(MemoryEstimate, ReferenceAndCriticAddModelCopies) {
  const RunConfig cfg = load("learner: {algorithm: ppo}\nadvantage: {estimator: gae}\ncritic: {mode: separate}\n");
  const auto shape = init_model_shape(cfg.model.init, 0);
  const auto plain = estimate_memory(cfg, shape, false, false);
  const auto with_ref = estimate_memory(cfg, shape, true, false);
  const double p = parameter_count(shape);
  EXPECT_DOUBLE_EQ(with_ref.total() - plain.total(), 4 * p);  // a frozen fp32 copy
  bool critic = false;
  for (const auto& part : plain.parts) critic = critic || (part.what.find("critic") != std::string::npos && part.bytes == 16 * p);
  EXPECT_TRUE(critic);
}

// The same shape as ParameterCountByHand (h 4, q 4, kv 2, I 6, 1 layer): rank 2 on q (4 + 4) and
// down (6 + 4) is 2 * 18 = 36 adapter parameters; all-linear: q 8, k 6, v 6, o 8, gate 10, up 10,
// down 10 = 58 per rank, 116.
TEST(MemoryEstimate, LoraCountsAdaptersAndNoReferenceCopy) {
  ModelShape s{.vocab_size = 10, .hidden_size = 4, .num_layers = 1, .num_heads = 2, .num_kv_heads = 1,
               .head_dim = 2, .intermediate_size = 6, .tie_word_embeddings = true};
  LoraSection l;
  l.rank = 2;
  l.target_modules = {"q_proj", "down_proj"};
  EXPECT_EQ(lora_parameter_count(s, l), 36);
  l.target_modules = {"all-linear"};
  EXPECT_EQ(lora_parameter_count(s, l), 116);

  const RunConfig full = load("learner: {algorithm: grpo}\n");
  const RunConfig lora = load("learner: {algorithm: grpo}\nmodel: {lora: {rank: 2}}\n");
  const auto shape = init_model_shape(full.model.init, 0);
  const double p = parameter_count(shape), a = lora_parameter_count(shape, lora.model.lora);
  // Full fine-tuning with a reference: 16 p + 4 p. LoRA: a frozen base 4 p (the reference too) + 16 a.
  const double diff = estimate_memory(full, shape, true, false).total() - estimate_memory(lora, shape, true, false).total();
  EXPECT_DOUBLE_EQ(diff, 20 * p - (4 * p + 16 * a));
}

// dist.sharding optimizer on 4 learner ranks: 4 + 4 + 8 / 4 = 10 bytes a trained parameter, not 16.
TEST(MemoryEstimate, OptimizerShardingDividesTheMoments) {
  RunConfig a = load("learner: {algorithm: sft}\n"), b = load("learner: {algorithm: sft}\ndist: {sharding: optimizer}\n");
  a.derived.learner_ranks = b.derived.learner_ranks = 4;
  const auto shape = init_model_shape(a.model.init, 0);
  const double p = parameter_count(shape);
  EXPECT_DOUBLE_EQ(estimate_memory(a, shape, false, false).total() - estimate_memory(b, shape, false, false).total(), 6 * p);
}

// dist.sharding on 4 learner ranks: whole fp32 weights plus a quarter of the gradients and moments,
// 4 + 12 / 4 = 7 bytes a trained parameter (gradients), and with full also a quarter for the fp32
// master slices, 4 + 16 / 4 = 8 (the weights are whole for rollout); 16 unsharded.
TEST(MemoryEstimate, GradientShardingDividesGradientsMastersAndMoments) {
  for (const auto& [level, saved] : std::vector<std::pair<std::string, double>>{{"gradients", 9}, {"full", 8}}) {
    const std::string common = "learner: {algorithm: sft}\nmodel: {activation_checkpointing: true}\n";
    RunConfig a = load(common), b = load(common + "dist: {sharding: " + level + "}\n");
    a.derived.learner_ranks = b.derived.learner_ranks = 4;
    const auto shape = init_model_shape(a.model.init, 0);
    const double p = parameter_count(shape);
    EXPECT_DOUBLE_EQ(estimate_memory(a, shape, false, false).total() - estimate_memory(b, shape, false, false).total(),
                     saved * p)
        << level;
  }
}

TEST(MemoryEstimate, FormatsBytes) {
  EXPECT_EQ(format_bytes(640), "640 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(3 * kGiB), "3.0 GiB");
  EXPECT_EQ(format_bytes(1e30), "8.67e+11 EiB");
}

}  // namespace
}  // namespace keel::config
