// keel generate / logprobs / tokenize end to end on a tiny random model with a SentencePiece
// tokenizer trained here.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "models/compat.h"
#include "models/pretrained.h"
#include "models/tokenizer.h"
#include "models/tokenizer_sentencepiece.h"
#include "tests/models/test_util.h"
#include "tests/trainer/cli/run_keel.h"
#include "trainer/common/fs.h"

namespace keel::testing {
namespace {

/// A model directory: SentencePiece tokenizer.model + a tiny random Llama sized to its vocabulary.
class ModelCommands : public ::testing::Test {
 protected:
  // A throwing SetUpTestSuite would only mark the tests skipped: record the error and fail them.
  static void SetUpTestSuite() {
    dir_ = new ScratchDir("model_cmds");
    try {
      make_model_dir();
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }
  static void make_model_dir() {
    std::vector<std::string> corpus;
    for (int a = 0; a < 40; ++a) corpus.push_back(std::to_string(a * 7) + "+" + std::to_string(a * 13 % 97) + "=" + std::to_string(a * 20));
    const auto tok_dir = dir_->path() / "tok";
    std::filesystem::create_directories(tok_dir);
    models::SentencePieceTrainOptions spo;
    spo.hard_vocab_limit = false;
    models::train_sentencepiece(corpus, 24, (tok_dir / "tokenizer").string(), spo);
    const auto tok = models::load_tokenizer((tok_dir / "tokenizer.model").string());
    auto cfg = models::testing::tiny_config();
    cfg.vocab_size = tok->vocab_size();
    cfg.max_position_embeddings = 24;
    cfg.eos_token_ids = {tok->eos_id()};
    models::Transformer m(cfg);
    models::testing::randomize(m, 1);
    models::SaveOptions so;
    so.tokenizer_dir = tok_dir.string();
    models::save_pretrained(m, (dir_->path() / "model").string(), so);
  }
  static void TearDownTestSuite() { delete dir_; }
  static ScratchDir* dir_;
  static std::string setup_error_;
};
ScratchDir* ModelCommands::dir_ = nullptr;
std::string ModelCommands::setup_error_;

TEST_F(ModelCommands, GenerateIsSeededAndWritesOneLinePerSample) {
  dir_->write("p.jsonl", "{\"prompt\": \"12+3=\"}\n{\"prompt\": \"7+70=\"}\n");
  const std::string args = "generate model p.jsonl --max-new-tokens 5 --seed 3 --samples 2 --logprobs -o out.jsonl";
  const auto r1 = run_keel(args, dir_->path());
  ASSERT_EQ(r1.exit_code, 0) << r1.out;
  const std::string first = fs::read_file(dir_->path() / "out.jsonl");
  const auto lines = json_lines(first);
  ASSERT_EQ(lines.size(), 4u);
  for (const auto& l : lines) {
    EXPECT_LE(l["num_tokens"].get<int>(), 5);
    EXPECT_EQ(l["logprobs"].size(), l["num_tokens"].get<size_t>());
    for (double lp : l["logprobs"]) EXPECT_LE(lp, 0.0);
    const std::string reason = l["finish_reason"];
    EXPECT_TRUE(reason == "eos" || reason == "length") << reason;
  }
  EXPECT_EQ(lines[0]["prompt"], "12+3=");
  const auto r2 = run_keel(args, dir_->path());
  ASSERT_EQ(r2.exit_code, 0) << r2.out;
  EXPECT_EQ(fs::read_file(dir_->path() / "out.jsonl"), first);  // same seed, same output
}

TEST_F(ModelCommands, LogprobsScoresCompletions) {
  dir_->write("c.jsonl", "{\"prompt\": \"12+3=\", \"completion\": \"15\"}\n");
  const auto r = run_keel("logprobs model c.jsonl", dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  const auto& l = lines[0];
  EXPECT_EQ(l["tokens"].size(), l["logprobs"].size());
  double sum = 0;
  for (double v : l["logprobs"]) {
    EXPECT_LE(v, 0.0);
    sum += v;
  }
  EXPECT_NEAR(l["sum_logprob"].get<double>(), sum, 1e-9);
}

TEST_F(ModelCommands, BadInputsAreClearErrors) {
  dir_->write("bad.jsonl", "{\"prompt\": \"1+1=\", \"completion\": \"2\"}\n{\"prompt\": \"1+1=\"}\n");
  auto r = run_keel("logprobs model bad.jsonl", dir_->path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "keel: error: bad.jsonl:2: expected an object with a string 'completion' and a 'prompt' or 'messages'\n");

  dir_->write("long.jsonl", "{\"prompt\": \"1234567890+1234567890=\"}\n");
  r = run_keel("generate model long.jsonl --max-new-tokens 8", dir_->path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("long.jsonl:1: prompt of "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("exceeds the model's context of 24 tokens"), std::string::npos) << r.out;

  r = run_keel("generate nomodel long.jsonl", dir_->path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("nomodel"), std::string::npos) << r.out;

  dir_->write("broken.jsonl", "{\"prompt\": \"1+1=\"\n");
  r = run_keel("generate model broken.jsonl", dir_->path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out.rfind("keel: error: broken.jsonl:1: invalid JSON", 0), 0u) << r.out;

  r = run_keel("generate model long.jsonl --device tpu", dir_->path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "keel: error: --device must be auto, cpu or cuda, got 'tpu'\n");
  if (!compat::cuda_available()) {
    r = run_keel("logprobs model bad.jsonl --device cuda", dir_->path());
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("--device cuda: no CUDA device is usable"), std::string::npos) << r.out;
  }
}

TEST_F(ModelCommands, TokenizePrintsIdsAndPieces) {
  const auto r = run_keel("tokenize model/tokenizer.model '12+3='", dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto tok = models::load_tokenizer((dir_->path() / "model" / "tokenizer.model").string());
  for (int64_t id : tok->encode("12+3=", false)) EXPECT_NE(r.out.find(std::to_string(id)), std::string::npos) << r.out;
}

}  // namespace
}  // namespace keel::testing
