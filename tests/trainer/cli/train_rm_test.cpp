// keel train-rm end to end on a tiny model: a synthetic preference set where the chosen response
// contains a keyword is learnt to well above chance on held-out pairs; the checkpoint is an HF
// *ForSequenceClassification that the reward_model scheme scores with; resume continues exactly;
// the adaptive margin reads an ensemble; ODIN's two heads; the gradient-penalised discriminator;
// an ensemble trained in one run and averaged by keel average-rm (WARM); bad JSONL lines and bad
// rm settings name file:line.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "models/pretrained.h"
#include "models/safetensors.h"
#include "models/tokenizer.h"
#include "models/tokenizer_sentencepiece.h"
#include "rewards/models/reward_model.h"
#include "tests/models/test_util.h"
#include "tests/trainer/cli/run_compare.h"
#include "tests/trainer/cli/run_keel.h"
#include "base/fs.h"

namespace keel::testing {
namespace {

namespace stdfs = std::filesystem;

/// A response of filler words with `keyword` at a random position.
std::string response_with(std::mt19937& gen, const std::string& keyword) {
  static const std::vector<std::string> filler = {"red", "blue", "green", "cat", "dog", "sun", "tree", "fish"};
  std::uniform_int_distribution<size_t> pick(0, filler.size() - 1);
  std::uniform_int_distribution<int> len(2, 5);
  std::vector<std::string> words;
  const int n = len(gen);
  for (int i = 0; i < n; ++i) words.push_back(filler[pick(gen)]);
  words.insert(words.begin() + std::uniform_int_distribution<int>(0, n)(gen), keyword);
  std::string out;
  for (const auto& w : words) out += " " + w;
  return out;
}

const char* kConfig = R"(
run: {name: rm, total_steps: 40, device: cpu, seed: 5, threads: 1}
model:
  tokenizer: tok/tokenizer.model
  init: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, max_position_embeddings: 48}
data: {train_file: prefs.jsonl, eval_fraction: 0.25}
batch: {mini_batch_size: 16, micro_batch_size: 8}
learner: {algorithm: rm}
optim: {lr: 3.0e-3, lr_schedule: constant, grad_clip: 1.0}
eval: {every: 20, num_prompts: 200}
checkpoint: {every: 20, keep_last: 2}
)";

/// Scratch dir with the tokenizer, a 240-pair preference file (chosen says "good", rejected "bad",
/// otherwise the same distribution) and the config.
/// r("good") > r("bad") under the reward_model scheme for two held-out-like pairs.
void expect_prefers_good(const stdfs::path& model_dir, const std::string& normalize = "none") {
  rewards::RewardModelOptions o;
  o.path = model_dir.string();
  o.normalize = normalize;
  rewards::RewardModelScheme scheme(o, "rm");
  rewards::RewardInput in;
  in.prompts = {"Describe item 3:", "Describe item 3:", "Describe item 9:", "Describe item 9:"};
  in.responses = {" cat good sun", " cat bad sun", " good tree fish dog", " tree fish bad dog"};
  in.group_ids = torch::tensor({0, 0, 1, 1}, torch::kLong);
  const auto s = scheme.score(in).rewards;
  EXPECT_GT(s[0].item<double>(), s[1].item<double>()) << model_dir << " " << s;
  EXPECT_GT(s[2].item<double>(), s[3].item<double>()) << model_dir << " " << s;
  if (normalize == "minimax") {
    EXPECT_GT(s.min().item<double>(), 0.0) << s;  // −log(1 − D) > 0
  }
}

class TrainRmSlow : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScratchDir("train_rm");
    try {
      std::mt19937 gen(3);
      std::ostringstream prefs;
      std::vector<std::string> corpus;
      for (int i = 0; i < 240; ++i) {
        const std::string prompt = "Describe item " + std::to_string(i % 17) + ":";
        const std::string chosen = response_with(gen, "good"), rejected = response_with(gen, "bad");
        prefs << nlohmann::json{{"prompt", prompt}, {"chosen", chosen}, {"rejected", rejected}, {"margin", 0.5}}.dump()
              << "\n";
        corpus.push_back(prompt + chosen);
        corpus.push_back(prompt + rejected);
      }
      dir_->write("prefs.jsonl", prefs.str());
      dir_->write("c.yaml", kConfig);
      stdfs::create_directories(dir_->path() / "tok");
      models::SentencePieceTrainOptions so;
      so.hard_vocab_limit = false;
      models::train_sentencepiece(corpus, 64, (dir_->path() / "tok" / "tokenizer").string(), so);
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }
  static ScratchDir* dir_;
  static std::string setup_error_;
};
ScratchDir* TrainRmSlow::dir_ = nullptr;
std::string TrainRmSlow::setup_error_;

TEST_F(TrainRmSlow, LearnsAKeywordPreferenceAndSavesAnHfRewardModel) {
  const auto r = run_keel("train-rm c.yaml run.output_dir=learn", dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto run = dir_->path() / "learn/rm";
  const auto lines = json_file_lines(run / "metrics.jsonl");
  ASSERT_EQ(lines.size(), 40u);
  EXPECT_EQ(lines[0]["rm/train_pairs"], 180);  // 240 pairs, a quarter held out
  EXPECT_EQ(lines[0]["rm/eval_pairs"], 60);
  for (const char* k : {"rm/loss", "rm/accuracy", "rm/margin_mean", "actor/lr", "actor/grad_norm"})
    EXPECT_TRUE(lines.back().contains(k)) << k;
  // Held-out accuracy well above chance (0.5), and the training loss fell from ~log 2.
  ASSERT_TRUE(lines.back().contains("eval/rm_accuracy")) << lines.back().dump();
  EXPECT_GE(lines.back()["eval/rm_accuracy"].get<double>(), 0.85) << lines.back().dump();
  EXPECT_EQ(lines.back()["eval/rm_pairs"], 60);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) first += lines[static_cast<size_t>(i)]["rm/loss"].get<double>() / 5;
  for (size_t i = 35; i < 40; ++i) last += lines[i]["rm/loss"].get<double>() / 5;
  EXPECT_LT(last, first - 0.2) << first << " -> " << last;

  // The checkpoint's model/: an HF sequence classifier with the score head and the tokenizer.
  const auto model_dir = run / "checkpoints/step-00000040/model";
  const auto cfg = nlohmann::json::parse(fs::read_file(model_dir / "config.json"));
  EXPECT_EQ(cfg["architectures"][0], "LlamaForSequenceClassification");
  EXPECT_EQ(cfg["num_labels"], 1);
  EXPECT_TRUE(stdfs::exists(model_dir / "tokenizer.model"));
  models::ModelRegistry reg("model family");
  models::register_builtin_models(reg);
  const auto m = models::load_pretrained(model_dir.string(), reg);
  EXPECT_TRUE(m.heads().reward_head);
  EXPECT_FALSE(m.heads().lm_head);

  // The reward_model scheme scores with it the way it was trained: "good" beats "bad" on new text.
  expect_prefers_good(model_dir);
}

TEST_F(TrainRmSlow, StartsFromACausalLmWithAFreshScoreHead) {
  // A 2-layer causal LM (model.init would build 1 layer) saved with the tokenizer.
  const auto tok = models::load_tokenizer((dir_->path() / "tok" / "tokenizer.model").string());
  auto cfg = models::testing::tiny_config();
  cfg.vocab_size = tok->vocab_size();
  cfg.eos_token_ids = {tok->eos_id()};
  models::Transformer lm(cfg);
  models::SaveOptions so;
  so.tokenizer_dir = (dir_->path() / "tok").string();
  models::save_pretrained(lm, (dir_->path() / "lm").string(), so);
  const auto r = run_keel("train-rm c.yaml run.total_steps=2 eval.every=0 run.output_dir=from_lm model.path=lm "
                          "'model.tokenizer=\"\"'",
                          dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto saved = dir_->path() / "from_lm/rm/checkpoints/step-00000002/model";
  const auto j = nlohmann::json::parse(fs::read_file(saved / "config.json"));
  EXPECT_EQ(j["architectures"][0], "LlamaForSequenceClassification");
  EXPECT_EQ(j["num_hidden_layers"], 2);
  EXPECT_TRUE(stdfs::exists(saved / "tokenizer.model"));
  models::ModelRegistry reg("model family");
  models::register_builtin_models(reg);
  const auto m = models::load_pretrained(saved.string(), reg);
  EXPECT_TRUE(m.heads().reward_head);
  EXPECT_FALSE(m.heads().lm_head);
}

TEST_F(TrainRmSlow, ResumeContinuesExactly) {
  const std::string base = "train-rm c.yaml run.total_steps=8 checkpoint.every=4 eval.every=4";
  auto r = run_keel(base + " run.output_dir=straight", dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_keel(base + " run.output_dir=resumed run.total_steps=4", dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_keel(base + " run.output_dir=resumed run.resume=auto", dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("resumed from"), std::string::npos) << r.out;
  const auto a = json_file_lines(dir_->path() / "straight/rm/metrics.jsonl");
  const auto b = json_file_lines(dir_->path() / "resumed/rm/metrics.jsonl");
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), 8u);
  for (size_t i = 0; i < 8; ++i)
    for (const char* k : {"rm/loss", "rm/accuracy", "actor/grad_norm"})
      EXPECT_NEAR(a[i][k].get<double>(), b[i][k].get<double>(), 1e-6) << "step " << i + 1 << " " << k;
  EXPECT_NEAR(a[7]["eval/rm_accuracy"].get<double>(), b[7]["eval/rm_accuracy"].get<double>(), 1e-9);
}

// Padding-free pair passes (each sequence scored at its own last token) and token-capped
// micro-batches train as the padded passes do: the same metrics (per-pair ones are weighted by
// their micro-batch's share, so the grouping does not move them) and weights.
TEST_F(TrainRmSlow, PaddingFreeAndATokenBudgetTrainAsPadded) {
  const std::string base = "train-rm c.yaml run.total_steps=6 checkpoint.every=6 eval.every=3";
  auto r = run_keel(base + " run.output_dir=padded", dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_keel(base + " run.output_dir=packed batch.padding_free=true batch.max_tokens_per_micro_batch=60", dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto a = json_file_lines(dir_->path() / "padded/rm/metrics.jsonl");
  const auto b = json_file_lines(dir_->path() / "packed/rm/metrics.jsonl");
  ASSERT_EQ(a.size(), 6u);
  expect_same_metrics(a, b, 0, 30);
  expect_same_weights(dir_->path() / "padded/rm", dir_->path() / "packed/rm", "model", "step-00000006");
}

// LoRA on a reward model: the adapters and the score head train on a frozen base; the checkpoint's
// model/ is the merged HF classifier the reward_model scheme scores with, model_adapter/ the PEFT
// adapter (the score head in it), model_base/ the random-init base; resume rebuilds base + adapter.
TEST_F(TrainRmSlow, LoraTrainsAdaptersAndTheScoreHeadAndResumes) {
  const std::string base = "train-rm c.yaml model.lora.rank=8 model.lora.alpha=16 optim.lr=1.0e-2 checkpoint.every=20";
  auto r = run_keel(base + " run.output_dir=lora", dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto run = dir_->path() / "lora/rm";
  const auto lines = json_file_lines(run / "metrics.jsonl");
  ASSERT_EQ(lines.size(), 40u);
  EXPECT_GE(lines.back()["eval/rm_accuracy"].get<double>(), 0.85) << lines.back().dump();
  const auto ckpt = run / "checkpoints/step-00000040";
  const auto adapter = models::load_safetensors((ckpt / "model_adapter/adapter_model.safetensors").string());
  EXPECT_TRUE(adapter.count("base_model.model.score.weight"));
  EXPECT_TRUE(stdfs::exists(ckpt / "model_base/model.safetensors"));
  expect_prefers_good(ckpt / "model");

  r = run_keel(base + " run.output_dir=lora_resumed run.total_steps=20", dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_keel(base + " run.output_dir=lora_resumed run.resume=auto", dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("resumed from"), std::string::npos) << r.out;
  const auto b = json_file_lines(dir_->path() / "lora_resumed/rm/metrics.jsonl");
  ASSERT_EQ(b.size(), 40u);
  expect_same_metrics(lines, b, 0, 100);
  expect_same_weights(run, dir_->path() / "lora_resumed/rm", "model", "step-00000040");
}

TEST_F(TrainRmSlow, MarginsFromTheJsonlAndFromAnEnsemble) {
  // Fixed margins: every pair carries "margin": 0.5 -> the loss is −logσ(Δ − 0.5), larger than without.
  auto r = run_keel("train-rm c.yaml run.total_steps=1 eval.every=0 run.output_dir=nomargin", dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_keel("train-rm c.yaml run.total_steps=1 eval.every=0 run.output_dir=fixed rm.loss.margin=fixed", dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const double plain = json_file_lines(dir_->path() / "nomargin/rm/metrics.jsonl")[0]["rm/loss"].get<double>();
  const double with_m = json_file_lines(dir_->path() / "fixed/rm/metrics.jsonl")[0]["rm/loss"].get<double>();
  EXPECT_GT(with_m, plain + 0.1) << plain << " vs " << with_m;
  // Adaptive: an ensemble of two reward models (the same checkpoint twice: μ̂ = its gap, σ̂ = 0).
  r = run_keel("train-rm c.yaml run.total_steps=4 checkpoint.every=4 eval.every=0 run.output_dir=member", dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string member = "member/rm/checkpoints/step-00000004/model";
  r = run_keel("train-rm c.yaml run.total_steps=1 eval.every=0 run.output_dir=adaptive rm.loss.margin=adaptive "
               "'rm.ensemble.paths=[" + member + ", " + member + "]'",
               dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto m = json_file_lines(dir_->path() / "adaptive/rm/metrics.jsonl")[0];
  ASSERT_TRUE(m.contains("rm/strength_mean")) << m.dump();
  EXPECT_DOUBLE_EQ(m["rm/strength_std_mean"].get<double>(), 0.0);
  EXPECT_EQ(m["rm/flipped_pairs"], 0);
}

/// Mean of `key` over metrics lines [a, b).
double mean_of(const std::vector<nlohmann::json>& lines, size_t a, size_t b, const char* key) {
  double s = 0;
  for (size_t i = a; i < b; ++i) s += lines[i][key].get<double>() / static_cast<double>(b - a);
  return s;
}


TEST_F(TrainRmSlow, OdinTrainsTwoHeadsAndScoresWithTheQualityHead) {
  const auto r = run_keel("train-rm c.yaml run.output_dir=odin rm.variant=odin", dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto lines = json_file_lines(dir_->path() / "odin/rm/metrics.jsonl");
  ASSERT_EQ(lines.size(), 40u);
  for (const char* k : {"odin/quality_length_corr", "odin/length_head_corr", "odin/head_cosine", "rm/quality_accuracy"})
    EXPECT_TRUE(lines.back().contains(k)) << k;
  EXPECT_LT(mean_of(lines, 35, 40, "rm/loss"), mean_of(lines, 0, 5, "rm/loss") - 0.2);
  // The orthogonality term drives the heads apart (random init: |cos| of two 32-d Gaussians ~ 0.14).
  EXPECT_LT(lines.back()["odin/head_cosine"].get<double>(), 0.1) << lines.back().dump();
  EXPECT_GE(lines.back()["eval/rm_accuracy"].get<double>(), 0.8) << lines.back().dump();  // r_Q alone
  // The checkpoint: score.weight = r_Q (what the reward_model scheme uses), r_L beside it.
  const auto model_dir = dir_->path() / "odin/rm/checkpoints/step-00000040/model";
  const auto len = models::load_safetensors((model_dir / "odin_length_head.safetensors").string());
  ASSERT_EQ(len.count("length_head.weight"), 1u);
  EXPECT_EQ(len.at("length_head.weight").sizes(), torch::IntArrayRef({1, 32}));
  const auto w = models::load_safetensors((model_dir / "model.safetensors").string());
  ASSERT_EQ(w.count("score.weight"), 1u);
  EXPECT_EQ(w.count("length_head.weight"), 0u);
  EXPECT_FALSE(torch::allclose(w.at("score.weight"), len.at("length_head.weight")));
  expect_prefers_good(model_dir);
  // Resuming an odin run reloads the length head (the run continues to 44 steps).
  const auto r2 = run_keel("train-rm c.yaml run.output_dir=odin rm.variant=odin run.resume=auto run.total_steps=44",
                           dir_->path());
  ASSERT_EQ(r2.exit_code, 0) << r2.out;
  EXPECT_NE(r2.out.find("resumed from"), std::string::npos) << r2.out;
}

TEST_F(TrainRmSlow, DiscriminatorWithGradPenaltyLowersTheLoss) {
  // Defaults: λ = 10, k = 1, one-sided, wgan interpolation, f = D = σ(score).
  const auto r = run_keel("train-rm c.yaml run.output_dir=gp run.total_steps=60 eval.every=60 rm.variant=discriminator "
                          "rm.loss.grad_penalty.enabled=true",
                          dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto lines = json_file_lines(dir_->path() / "gp/rm/metrics.jsonl");
  ASSERT_EQ(lines.size(), 60u);
  for (const char* k : {"rm/grad_penalty", "rm/input_grad_norm_mean", "rm/expert_prob_mean", "rm/agent_prob_mean"})
    EXPECT_TRUE(lines.back().contains(k)) << k;
  for (const auto& l : lines) {
    EXPECT_GE(l["rm/grad_penalty"].get<double>(), 0.0);
    EXPECT_NEAR(l["rm/loss"].get<double>(), l["rm/base_loss"].get<double>() + l["rm/grad_penalty"].get<double>(), 1e-6);
  }
  // BCE starts at 2·log 2 = 1.386 per pair and falls (slowly: the penalty keeps D flat in embedding
  // space); the penalty, active at init (the first RMSNorm divides by the small embeddings' scale, so
  // ‖∇_z D‖ starts above k = 1), falls too, and with it the total loss.
  EXPECT_NEAR(lines[0]["rm/base_loss"].get<double>(), 1.386, 0.15);
  EXPECT_GT(lines[0]["rm/grad_penalty"].get<double>(), 0.0);
  EXPECT_LT(mean_of(lines, 55, 60, "rm/base_loss"), 1.386 - 0.05);  // below chance level (measured 1.28)
  EXPECT_LT(mean_of(lines, 55, 60, "rm/loss"), mean_of(lines, 0, 5, "rm/loss") - 0.5);
  EXPECT_GT(mean_of(lines, 50, 60, "rm/accuracy"), 0.7);
  EXPECT_GT(mean_of(lines, 50, 60, "rm/expert_prob_mean"), mean_of(lines, 50, 60, "rm/agent_prob_mean"));
  EXPECT_GE(lines.back()["eval/rm_accuracy"].get<double>(), 0.6) << lines.back().dump();
  expect_prefers_good(dir_->path() / "gp/rm/checkpoints/step-00000060/model", "minimax");
  // A penalty that bites: λ = 10 with target 0 penalises every gradient; the input-gradient norms
  // end smaller than without the penalty (λ = 0). Measured: 0.05 vs 4.1 after 10 steps.
  auto r0 = run_keel("train-rm c.yaml run.output_dir=gp0 run.total_steps=10 eval.every=0 rm.variant=discriminator "
                     "rm.loss.grad_penalty.enabled=true rm.loss.grad_penalty.lambda=0",
                     dir_->path());
  ASSERT_EQ(r0.exit_code, 0) << r0.out;
  auto r1 = run_keel("train-rm c.yaml run.output_dir=gp1 run.total_steps=10 eval.every=0 rm.variant=discriminator "
                     "rm.loss.grad_penalty.enabled=true rm.loss.grad_penalty.target=0",
                     dir_->path());
  ASSERT_EQ(r1.exit_code, 0) << r1.out;
  const auto l0 = json_file_lines(dir_->path() / "gp0/rm/metrics.jsonl");
  const auto l1 = json_file_lines(dir_->path() / "gp1/rm/metrics.jsonl");
  EXPECT_DOUBLE_EQ(l0.back()["rm/grad_penalty"].get<double>(), 0.0);
  EXPECT_GT(l1[0]["rm/grad_penalty"].get<double>(), 0.0);
  EXPECT_LT(mean_of(l1, 7, 10, "rm/input_grad_norm_mean"), mean_of(l0, 7, 10, "rm/input_grad_norm_mean"));
}

TEST_F(TrainRmSlow, EnsembleTrainedInOneRunAndAveragedByAverageRm) {
  const auto r = run_keel("train-rm c.yaml run.output_dir=ens run.total_steps=6 eval.every=0 rm.ensemble.size=2",
                          dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto run = dir_->path() / "ens/rm";
  for (const char* m : {"member_0", "member_1"}) {
    EXPECT_TRUE(stdfs::exists(run / m / "checkpoints/step-00000006/model/config.json")) << m;
    EXPECT_EQ(json_file_lines(run / m / "metrics.jsonl").size(), 6u) << m;
  }
  EXPECT_FALSE(stdfs::exists(run / "checkpoints/step-00000006")) << "no run model without adaptive margins / flips";
  // Per-pair strengths of the 180 training pairs and their summary.
  const auto st = json_file_lines(run / "preference_strength.jsonl");
  ASSERT_EQ(st.size(), 180u);
  double std_sum = 0;
  for (const auto& l : st) {
    EXPECT_GE(l["strength_std"].get<double>(), 0.0);
    std_sum += l["strength_std"].get<double>();
  }
  EXPECT_GT(std_sum, 0.0) << "members with different seeds disagree somewhere";
  const auto summary = nlohmann::json::parse(fs::read_file(run / "ensemble_strength.json"));
  EXPECT_EQ(summary["members"].size(), 2u);
  EXPECT_NEAR(summary["rm/strength_std_mean"].get<double>(), std_sum / 180.0, 1e-6);
  // The members are different models (seed offsets): their score heads differ.
  const auto w0 = models::load_safetensors((run / "member_0/checkpoints/step-00000006/model/model.safetensors").string());
  const auto w1 = models::load_safetensors((run / "member_1/checkpoints/step-00000006/model/model.safetensors").string());
  EXPECT_FALSE(torch::allclose(w0.at("score.weight"), w1.at("score.weight")));

  // With margin: adaptive the run then trains its own model on the members' μ̂.
  auto ra = run_keel("train-rm c.yaml run.output_dir=ens_adaptive run.total_steps=2 eval.every=0 rm.ensemble.size=2 "
                     "rm.loss.margin=adaptive",
                     dir_->path());
  ASSERT_EQ(ra.exit_code, 0) << ra.out;
  const auto la = json_file_lines(dir_->path() / "ens_adaptive/rm/metrics.jsonl");
  ASSERT_EQ(la.size(), 2u);
  EXPECT_TRUE(la[0].contains("rm/strength_mean")) << la[0].dump();
  EXPECT_TRUE(stdfs::exists(dir_->path() / "ens_adaptive/rm/checkpoints/step-00000002/model/config.json"));

  // WARM: keel average-rm averages the two members elementwise; the result scores like an RM.
  const std::string m0 = "ens/rm/member_0/checkpoints/step-00000006/model",
                    m1 = "ens/rm/member_1/checkpoints/step-00000006/model";
  auto rw = run_keel("average-rm --out warm " + m0 + " " + m1, dir_->path());
  ASSERT_EQ(rw.exit_code, 0) << rw.out;
  const auto wa = models::load_safetensors((dir_->path() / "warm/model.safetensors").string());
  ASSERT_EQ(wa.size(), w0.size());
  for (const auto& [name, t] : wa)
    EXPECT_TRUE(torch::allclose(t, (w0.at(name) + w1.at(name)) / 2, 1e-6, 1e-7)) << name;
  EXPECT_TRUE(stdfs::exists(dir_->path() / "warm/tokenizer.model"));
  rewards::RewardModelOptions o;
  o.path = (dir_->path() / "warm").string();
  rewards::RewardModelScheme scheme(o, "rm");
  const auto raw = scheme.raw_scores({"Describe item 3:", "Describe item 3:"}, {" cat good sun", " cat bad sun"});
  ASSERT_EQ(raw.numel(), 2);
  EXPECT_TRUE(torch::isfinite(raw).all().item<bool>());
  // Given weights: 3:1 → 0.75·θ0 + 0.25·θ1.
  rw = run_keel("average-rm --out warm31 --weights 3,1 " + m0 + " " + m1, dir_->path());
  ASSERT_EQ(rw.exit_code, 0) << rw.out;
  const auto w31 = models::load_safetensors((dir_->path() / "warm31/model.safetensors").string());
  EXPECT_TRUE(torch::allclose(w31.at("score.weight"), 0.75 * w0.at("score.weight") + 0.25 * w1.at("score.weight"), 1e-6,
                              1e-7));
  // A reward model of another architecture (2 layers, 4 heads) is refused, naming its path.
  const auto tok = models::load_tokenizer((dir_->path() / "tok" / "tokenizer.model").string());
  auto cfg = models::testing::tiny_config();
  cfg.vocab_size = tok->vocab_size();
  models::Transformer other(cfg, {/*lm_head=*/false, /*value_head=*/false, /*reward_head=*/true});
  models::save_pretrained(other, (dir_->path() / "rm_other").string());
  rw = run_keel("average-rm --out warm_bad " + m0 + " rm_other", dir_->path());
  EXPECT_EQ(rw.exit_code, 1) << rw.out;
  EXPECT_NE(rw.out.find("keel: error: rm_other: num_hidden_layers is 2 but 1 in"), std::string::npos) << rw.out;
  EXPECT_FALSE(stdfs::exists(dir_->path() / "warm_bad"));
}

TEST_F(TrainRmSlow, BadPreferenceLinesNameFileAndLine) {
  dir_->write("bad.jsonl",
              "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"
              "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"
              "{\"prompt\": \"p\", \"chosen\": \"a\"}\n");
  auto r = run_keel("train-rm c.yaml data.train_file=bad.jsonl run.output_dir=bad", dir_->path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("keel: error: bad.jsonl:3: missing 'rejected'"), std::string::npos) << r.out;
  dir_->write("nomargin.jsonl",
              "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\", \"margin\": 1}\n"
              "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\", \"margin\": \"big\"}\n");
  r = run_keel("train-rm c.yaml data.train_file=nomargin.jsonl rm.loss.margin=fixed run.output_dir=bad", dir_->path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("nomargin.jsonl:2: 'margin' must be a number"), std::string::npos) << r.out;
}

TEST_F(TrainRmSlow, BadRmSettingsAreConfigErrors) {
  auto r = run_keel("train-rm c.yaml learner.algorithm=grpo run.output_dir=bad", dir_->path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("set learner.algorithm: rm"), std::string::npos) << r.out;
  dir_->write("bad_rm.yaml", std::string(kConfig) + "rm:\n  loss: {margin: adaptive, label_smoothing: 0.7}\n");
  r = run_keel("validate bad_rm.yaml", dir_->path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("rm.loss.label_smoothing: must be < 0.5, got 0.7"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rm.ensemble: margin: adaptive and flip_negative_strength need ensemble.paths"), std::string::npos)
      << r.out;
  dir_->write("bad_rm2.yaml", std::string(kConfig) +
                                  "rm:\n  variant: odinn\n  ensemble: {size: 1}\n"
                                  "  odin: {length_weight: -1}\n");
  r = run_keel("validate bad_rm2.yaml", dir_->path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("bad_rm2.yaml:13"), std::string::npos) << r.out;  // the variant's line
  EXPECT_NE(r.out.find("rm.variant"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rm.ensemble.size: must be 0 (no ensemble) or >= 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rm.odin.length_weight: must be >= 0"), std::string::npos) << r.out;
  dir_->write("bad_rm3.yaml", std::string(kConfig) +
                                  "rm:\n  variant: odin\n  loss: {grad_penalty: {enabled: true, type: dragan}}\n");
  r = run_keel("validate bad_rm3.yaml", dir_->path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("rm.loss.grad_penalty.type"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rm.loss.grad_penalty: the gradient penalty is for variant bt or discriminator"), std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace keel::testing
