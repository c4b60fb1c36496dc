// keel train with LoRA adapters (model.lora): the base stays frozen (it is the KL reference too),
// only the adapters change; a checkpoint holds the merged model (policy/), the adapter in PEFT's
// layout (policy_adapter/) and, for a random-init run, the base (policy_base/); `keel logprobs`
// reads the merged directory back with the log-probs of base + adapter (<= 1e-5); a run killed
// after a checkpoint resumes to the uninterrupted run's metrics and weights; a run started from a
// saved adapter (model.lora.adapter) starts from that model; dpo, ppo with a value head and
// multi-turn episodes train; a non-finite step rolls back; validate checks the target modules.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/lora.h"
#include "models/model_config.h"
#include "models/pretrained.h"
#include "models/safetensors.h"
#include "tests/trainer/cli/run_compare.h"
#include "tests/trainer/cli/run_keel.h"

namespace keel::testing {
namespace {

namespace stdfs = std::filesystem;

/// The tiny arithmetic run with adapters in its model section.
std::string lora_run() {
  std::string head = kTinyArithmeticRun;
  const auto at = head.find("model:\n") + 7;
  head.insert(at, "  lora: {rank: 4, alpha: 8, target_modules: [q_proj, v_proj, up_proj]}\n");
  return head + R"(
batch: {prompts_per_step: 4, mini_batch_size: 8, micro_batch_size: 4, epochs: 1}
optim: {lr: 1.0e-2, lr_schedule: constant}
eval: {every: 0}
checkpoint: {every: 1, keep_last: 10}
learner: {algorithm: grpo}
kl: {in_loss: true, coef: 0.05}
)";
}
const std::string kRun = lora_run();

std::map<std::string, at::Tensor> weights(const stdfs::path& dir) {
  models::ModelRegistry reg("model family");
  models::register_builtin_models(reg);
  return models::load_pretrained(dir.string(), reg).named_parameters();
}

TEST(TrainLora, TrainsTheAdaptersOnlyAndCheckpointsMergedAdapterAndBase) {
  ScratchDir dir("lora");
  dir.write("c.yaml", kRun);
  auto r = run_keel("train c.yaml", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto ckpt = dir.path() / "runs/tiny/checkpoints/step-00000003";
  for (const char* sub : {"policy/model.safetensors", "policy/config.json", "policy_adapter/adapter_config.json",
                          "policy_adapter/adapter_model.safetensors", "policy_base/model.safetensors"})
    EXPECT_TRUE(stdfs::exists(ckpt / sub)) << sub;
  EXPECT_FALSE(stdfs::exists(ckpt / "reference")) << "the reference is the base, not a second copy";
  const auto cfg = nlohmann::json::parse(fs::read_file(ckpt / "policy_adapter/adapter_config.json"));
  EXPECT_EQ(cfg["r"], 4);
  EXPECT_EQ(cfg["target_modules"], (std::vector<std::string>{"q_proj", "v_proj", "up_proj"}));

  // The base did not move between checkpoints; the merged model did, in the adapted weights only.
  const auto base1 = weights(dir.path() / "runs/tiny/checkpoints/step-00000001/policy_base");
  const auto base3 = weights(ckpt / "policy_base");
  const auto merged = weights(ckpt / "policy");
  for (const auto& [name, t] : base1) {
    EXPECT_TRUE(torch::equal(t, base3.at(name))) << name;
    const bool adapted = name.find("q_proj.weight") != std::string::npos ||
                         name.find("v_proj.weight") != std::string::npos ||
                         name.find("up_proj.weight") != std::string::npos;
    EXPECT_EQ(!torch::equal(t, merged.at(name)), adapted) << name;
  }
  const auto lines = json_file_lines(dir.path() / "runs/tiny/metrics.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_GT(lines[2]["actor/kl_loss"].get<double>(), 0) << "the policy left the base it is regularised to";

  // keel logprobs: the merged directory and base + adapter score the same completions.
  dir.write("c.jsonl", "{\"prompt\": \"12+3=\", \"completion\": \"15\"}\n{\"prompt\": \"7*8=\", \"completion\": \"56 done\"}\n");
  const auto m = run_keel("logprobs " + (ckpt / "policy").string() + " c.jsonl", dir.path());
  ASSERT_EQ(m.exit_code, 0) << m.out;
  const auto a = run_keel("logprobs " + (ckpt / "policy_base").string() + " c.jsonl --adapter " +
                              (ckpt / "policy_adapter").string(),
                          dir.path());
  ASSERT_EQ(a.exit_code, 0) << a.out;
  const auto b0 = run_keel("logprobs " + (ckpt / "policy_base").string() + " c.jsonl", dir.path());
  const auto lm = json_lines(m.out), la = json_lines(a.out), lb = json_lines(b0.out);
  ASSERT_EQ(lm.size(), 2u);
  ASSERT_EQ(la.size(), 2u);
  double base_gap = 0;
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_EQ(lm[i]["logprobs"].size(), la[i]["logprobs"].size());
    for (size_t t = 0; t < lm[i]["logprobs"].size(); ++t) {
      EXPECT_NEAR(lm[i]["logprobs"][t].get<double>(), la[i]["logprobs"][t].get<double>(), 1e-5) << i << " " << t;
      base_gap = std::max(base_gap, std::abs(lm[i]["logprobs"][t].get<double>() - lb[i]["logprobs"][t].get<double>()));
    }
  }
  EXPECT_GT(base_gap, 1e-4) << "the trained adapters changed nothing";
}

// Killed after step 2's checkpoint, resumed: the same metrics and merged weights as straight.
TEST(TrainLora, ResumeAfterKillIsExact) {
  ScratchDir dir("lora_resume");
  dir.write("c.yaml", kRun);
  auto r = run_keel("train c.yaml run.output_dir=straight run.total_steps=4", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ASSERT_TRUE(train_until_then_kill(dir.path(), "c.yaml", "killed",
                                    dir.path() / "killed/tiny/checkpoints/step-00000002/COMPLETE"));
  r = run_keel("train c.yaml run.output_dir=killed run.total_steps=4 run.resume=" +
                   (dir.path() / "killed/tiny/checkpoints/step-00000002").string(),
               dir.path());
  expect_resumed_equals(r, dir.path() / "straight/tiny", dir.path() / "killed/tiny", 4, 40, "step-00000004");
}

// model.lora.adapter: a run from step 3's base + adapter starts from that run's model: its first
// rollout samples what a run from the merged directory samples. A rank other than the adapter's r
// is an error.
TEST(TrainLora, StartsFromASavedPeftAdapter) {
  ScratchDir dir("lora_adapter");
  dir.write("c.yaml", kRun);
  auto r = run_keel("train c.yaml run.output_dir=first", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto ckpt = dir.path() / "first/tiny/checkpoints/step-00000003";
  const std::string from = " model.path=" + (ckpt / "policy_base").string() +
                           " model.lora.rank=0 model.lora.adapter=" + (ckpt / "policy_adapter").string();
  // The same model loaded merged (full fine-tuning from the merged weights) samples the same first step.
  r = run_keel("train c.yaml run.output_dir=adapter run.total_steps=1" + from, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_keel("train c.yaml run.output_dir=merged run.total_steps=1 model.lora.rank=0 model.path=" +
                   (ckpt / "policy").string(),
               dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto a = json_file_lines(dir.path() / "adapter/tiny/metrics.jsonl");
  const auto b = json_file_lines(dir.path() / "merged/tiny/metrics.jsonl");
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  // What the first rollout saw (the updates differ: adapters against full fine-tuning).
  int compared = 0;
  for (const auto& [k, v] : b[0].items())
    if (k.rfind("reward/", 0) == 0 || k.rfind("response/", 0) == 0) {
      EXPECT_NEAR(a[0][k].get<double>(), v.get<double>(), 1e-6) << k;
      ++compared;
    }
  EXPECT_GE(compared, 4);
  // A rank that disagrees with the adapter's r is an error naming both.
  r = run_keel("train c.yaml run.output_dir=bad run.total_steps=1 model.path=" + (ckpt / "policy_base").string() +
                   " model.lora.rank=8 model.lora.adapter=" + (ckpt / "policy_adapter").string(),
               dir.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("model.lora.rank is 8 but the adapter"), std::string::npos) << r.out;
}

// A non-finite step rolls a LoRA run back to its last checkpoint (base + adapter), and it goes on.
TEST(TrainLora, NonFiniteStepsRollBack) {
  ScratchDir dir("lora_nan");
  dir.write("c.yaml", kRun);
  const auto r = run_keel("train c.yaml run.total_steps=5 optim.rollback_after=1", dir.path(), "KEEL_TEST_INJECT_NAN_STEP=3");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("rolled back to"), std::string::npos) << r.out;
  const auto lines = json_file_lines(dir.path() / "runs/tiny/metrics.jsonl");
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[2].value("actor/rolled_back", 0.0), 1.0) << lines[2];
  EXPECT_TRUE(std::isfinite(lines[4]["actor/kl_loss"].get<double>())) << lines[4];
}

TEST(TrainLora, DpoAndPpoWithAValueHeadTrain) {
  ScratchDir dir("lora_learners");
  dir.write("c.yaml", kRun);
  auto r = run_keel("train c.yaml run.output_dir=dpo learner.algorithm=dpo kl.in_loss=false kl.coef=0", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto lines = json_file_lines(dir.path() / "dpo/tiny/metrics.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_GT(std::abs(lines[2]["rewards/margins"].get<double>()), 0) << "the policy never left the reference";
  r = run_keel("train c.yaml run.output_dir=ppo learner.algorithm=ppo advantage.estimator=gae kl.in_loss=false kl.coef=0",
               dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // The value head trains with the adapters and travels in the adapter directory.
  const auto t = models::load_safetensors(
      (dir.path() / "ppo/tiny/checkpoints/step-00000003/policy_adapter/adapter_model.safetensors").string());
  EXPECT_TRUE(t.count("base_model.model.value_head.weight"));
}

// Multi-turn episodes decode through DecodeSession's paged cache, which drives the layers itself:
// the adapters apply there too (the run's sampled log-probs are the learner's: ppo_kl stays at
// rounding level on the first mini-batch), and they train.
TEST(TrainLora, MultiTurnEpisodesTrain) {
  ScratchDir dir("lora_env");
  std::string head = kTinyCalculatorRun;
  head.insert(head.find("model:\n") + 7, "  lora: {rank: 4, alpha: 8}\n");
  dir.write("c.yaml", head + R"(
batch: {prompts_per_step: 4, mini_batch_size: 16, micro_batch_size: 4, epochs: 1}
optim: {lr: 1.0e-2, lr_schedule: constant}
eval: {every: 0}
checkpoint: {every: 0}
)");
  const auto r = run_keel("train c.yaml", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto lines = json_file_lines(dir.path() / "runs/tiny/metrics.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  for (const auto& l : lines) EXPECT_LT(std::abs(l["actor/ppo_kl"].get<double>()), 1e-5) << l.dump();
  const auto a = models::load_safetensors(
      (dir.path() / "runs/tiny/checkpoints/step-00000003/policy_adapter/adapter_model.safetensors").string());
  double b_norm = 0;
  for (const auto& [k, t] : a)
    if (k.find("lora_B") != std::string::npos) b_norm += t.abs().sum().item<double>();
  EXPECT_GT(b_norm, 0) << "B starts at 0: the adapters never trained";
}

TEST(TrainLora, ValidateChecksTheTargetModules) {
  ScratchDir dir("lora_validate");
  dir.write("c.yaml", kRun);
  auto r = run_keel("validate c.yaml model.lora.target_modules=[q_proj,qkv]", dir.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("model.lora.target_modules"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unknown module 'qkv'"), std::string::npos) << r.out;
  r = run_keel("validate c.yaml", dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

}  // namespace
}  // namespace keel::testing
