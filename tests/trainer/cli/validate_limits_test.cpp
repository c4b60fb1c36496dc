// `keel validate` / `keel train` / `keel launch` on the inputs that used to validate and then train
// the wrong thing, hang or exhaust memory (issue 22 items 7-10, 13, 14), through the real binary:
// a directory or an empty file as the config, a KL coefficient with no KL term, infinite numbers,
// sizes that cannot fit this machine, a YAML alias bomb, a million threads, a bare `keel` under
// `keel launch` without keel on PATH, and a hub name as model.path.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "tests/trainer/cli/run_keel.h"

namespace keel::testing {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Item 7: a directory was read as an empty config, and an empty config trained the defaults.
TEST(ValidateLimits, ADirectoryOrAnEmptyFileIsNotAConfig) {
  ScratchDir dir("dir_config");
  std::filesystem::create_directory(dir.path() / "configs");
  for (const char* cmd : {"validate", "train", "print-config"}) {
    const auto r = run_keel(std::string(cmd) + " configs", dir.path());
    EXPECT_EQ(r.exit_code, 1) << cmd << "\n" << r.out;
    EXPECT_EQ(r.out, "keel: error: configs: is a directory, not a config file (give a YAML file)\n") << cmd;
  }
  dir.write("empty.yaml", "");
  for (const char* cmd : {"validate", "train"}) {
    const auto r = run_keel(std::string(cmd) + " empty.yaml", dir.path());
    EXPECT_EQ(r.exit_code, 1) << cmd << "\n" << r.out;
    EXPECT_EQ(r.out, "keel: error: empty.yaml: the config file is empty (write `{}` to train every default, or start "
                     "from configs/quickstart.yaml or configs/reference.yaml)\n")
        << cmd;
  }
  dir.write("defaults.yaml", "{}\n");
  const auto ok = run_keel("validate defaults.yaml", dir.path());
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
}

// Item 8: what validates trains as configured — no ignored coefficient, no infinite number.
TEST(ValidateLimits, IgnoredKlCoefAndInfiniteNumbersAreErrors) {
  ScratchDir dir("kl_inf");
  dir.write("c.yaml", "run: {name: a}\n");
  auto r = run_keel("validate c.yaml kl.coef=0.05", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(r.out, "keel: error: override kl.coef=0.05: kl.coef: 0.05 is set but neither kl.in_loss nor kl.in_reward "
                   "is true, so no KL term would be computed: set one of them to true, or drop the coefficient (or "
                   "set it to 0)\n");
  EXPECT_EQ(run_keel("validate c.yaml kl.coef=0.05 kl.in_loss=true", dir.path()).exit_code, 0);
  dir.write("inf.yaml", "rollout:\n  temperature: .inf\noptim:\n  lr: .inf\nkl:\n  in_loss: true\n  coef: .nan\n");
  r = run_keel("validate inf.yaml", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(r.out,
            "keel: error: inf.yaml:2: rollout.temperature: expected a finite number, got '.inf'\n"
            "keel: error: inf.yaml:4: optim.lr: expected a finite number, got '.inf'\n"
            "keel: error: inf.yaml:7: kl.coef: expected a finite number, got '.nan'\n");
}

// Item 9: sizes that validated but could never fit are refused with the estimate, its keys and the
// override. The sizes are terabytes, beyond any machine these tests run on.
TEST(ValidateLimits, SizesThatCannotFitAreRefusedWithTheEstimate) {
  ScratchDir dir("memory");
  dir.write("c.yaml", "run: {name: a, device: cpu}\n");
  auto r = run_keel("validate c.yaml batch.prompts_per_step=268435456 rollout.samples_per_prompt=4", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(r.out.rfind("keel: error: override batch.prompts_per_step=268435456: batch.prompts_per_step: the run needs "
                        "an estimated 1.3 TiB per rank (at least), more than the ",
                        0),
            0u)
      << r.out;
  EXPECT_TRUE(contains(r.out, "RAM available on this machine: rollout batch (1.07e+09 sequences on this rank) 1.2 TiB "
                              "(batch.prompts_per_step, rollout.samples_per_prompt, rollout.max_new_tokens)"))
      << r.out;
  EXPECT_TRUE(contains(r.out, "set run.skip_memory_check: true to start anyway")) << r.out;
  r = run_keel("validate c.yaml batch.prompts_per_step=268435456 rollout.samples_per_prompt=4 run.skip_memory_check=true",
               dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out;

  r = run_keel("validate c.yaml eval.k=16777216", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "eval.k: the run needs an estimated")) << r.out;
  r = run_keel("validate c.yaml model.init.hidden_size=1048576", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "model.init.hidden_size: the run needs an estimated 96.1 TiB")) << r.out;
  // The issue's own numbers: past the int range of the batch arithmetic, said as such.
  r = run_keel("validate c.yaml batch.prompts_per_step=1073741824", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "override batch.prompts_per_step=1073741824: batch: the rollout batch prompts_per_step "
                              "1073741824 x rollout.samples_per_prompt 8 = 8589934592 sequences is more than 2147483647"))
      << r.out;
  r = run_keel("validate c.yaml eval.k=2147483647", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  // A config that fits says what it needs.
  r = run_keel("validate c.yaml", dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "memory: an estimated ")) << r.out;
  EXPECT_TRUE(contains(r.out, " RAM available on this machine)")) << r.out;
}

// Item 10: a "billion laughs" document took 7.4 GB and 17 s before bad_alloc.
TEST(ValidateLimits, AnAliasBombFailsFast) {
  ScratchDir dir("bomb");
  std::string text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i <= 9; ++i) {
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) text += (j ? ", *a" : "*a") + std::to_string(i - 1);
    text += "]\n";
  }
  dir.write("bomb.yaml", text);
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = run_keel("validate bomb.yaml", dir.path());
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(r.out.rfind("keel: error: bomb.yaml: the YAML expands to more than 100000 values", 0), 0u) << r.out;
}

// Item 10: run.threads 1000000 validated and hung creating the pool; more threads than the
// hardware's slowed each step. Refused above 1024; capped to the hardware, with a warning, below.
TEST(ValidateLimits, ThreadCountsAreBoundedAndCapped) {
  ScratchDir dir("threads");
  dir.write("c.yaml", R"(run: {name: t, total_steps: 1, device: cpu, seed: 3}
model:
  init: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, max_position_embeddings: 32}
data:
  task: arithmetic
  task_params: {min_digits: 1, max_digits: 1}
  eval_size: 4
rollout: {samples_per_prompt: 2, max_new_tokens: 4}
batch: {prompts_per_step: 2, mini_batch_size: 4, micro_batch_size: 2}
eval: {every: 0}
)");
  auto r = run_keel("validate c.yaml run.threads=1000000", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(r.out, "keel: error: override run.threads=1000000: run.threads: must be <= 1024, got 1000000\n");
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (hw >= 1024) GTEST_SKIP() << "this machine has " << hw << " hardware threads";
  const std::string more = std::to_string(hw + 1);
  r = run_keel("train c.yaml run.output_dir=out run.threads=" + more, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "run.threads " + more + " is more than this machine's " + std::to_string(hw) +
                                  " hardware threads: using " + std::to_string(hw)))
      << r.out;
}

// Item 13: the README's `keel launch --nproc-per-node 2 -- keel train ...` needed keel on PATH.
TEST(ValidateLimits, LaunchRunsABareKeelWithoutPath) {
  ScratchDir dir("launch");
  const auto r = run_keel("launch --nproc-per-node 2 --log-dir logs -- keel version", dir.path(), "PATH=/usr/bin:/bin");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "[rank 0] keel ")) << r.out;
  EXPECT_TRUE(contains(r.out, "[rank 1] keel ")) << r.out;
}

// Item 14: a hub name as model.path blamed the tokenizer.
TEST(ValidateLimits, AHubNameIsNamedAsOne) {
  ScratchDir dir("hub");
  dir.write("c.yaml", "model:\n  path: Qwen/Qwen2.5-0.5B-Instruct\n");
  for (const char* cmd : {"validate", "train"}) {
    const auto r = run_keel(std::string(cmd) + " c.yaml", dir.path());
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_EQ(r.out.rfind("keel: error: c.yaml:2: model.path: 'Qwen/Qwen2.5-0.5B-Instruct' is not a local directory "
                          "and looks like a Hugging Face hub name: keel does not download or resolve hub names; give a "
                          "local HF model directory",
                          0),
              0u)
        << cmd << "\n" << r.out;
  }
  dir.write("p.jsonl", "{\"prompt\": \"hi\"}\n");
  const auto g = run_keel("generate Qwen/Qwen2.5-0.5B-Instruct p.jsonl", dir.path());
  EXPECT_EQ(g.exit_code, 1) << g.out;
  EXPECT_TRUE(contains(g.out, "is not a local directory and looks like a Hugging Face hub name")) << g.out;
  EXPECT_FALSE(contains(g.out, "tokenizer path 'Qwen/Qwen2.5-0.5B-Instruct' does not exist")) << g.out;
}

}  // namespace
}  // namespace keel::testing
