// keel train-rm end to end on a tiny model: a synthetic preference set where the chosen response
// contains a keyword is learnt to well above chance on held-out pairs; the checkpoint is an HF
// *ForSequenceClassification that the reward_model scheme scores with; resume continues exactly;
// the adaptive margin reads an ensemble; bad JSONL lines and bad rm settings name file:line.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "models/pretrained.h"
#include "models/tokenizer.h"
#include "models/tokenizer_sentencepiece.h"
#include "rewards/models/reward_model.h"
#include "tests/models/test_util.h"
#include "tests/trainer/cli/run_keel.h"
#include "trainer/common/fs.h"

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
  rewards::RewardModelOptions o;
  o.path = model_dir.string();
  rewards::RewardModelScheme scheme(o, "rm");
  rewards::RewardInput in;
  in.prompts = {"Describe item 3:", "Describe item 3:", "Describe item 9:", "Describe item 9:"};
  in.responses = {" cat good sun", " cat bad sun", " good tree fish dog", " tree fish bad dog"};
  in.group_ids = torch::tensor({0, 0, 1, 1}, torch::kLong);
  const auto s = scheme.score(in).rewards;
  EXPECT_GT(s[0].item<double>(), s[1].item<double>()) << s;
  EXPECT_GT(s[2].item<double>(), s[3].item<double>()) << s;
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
}

}  // namespace
}  // namespace keel::testing
