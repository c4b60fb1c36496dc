// SentencePiece: train a tiny model on synthetic arithmetic text with SentencePieceTrainer, then
// encode / decode round trips, special tokens, piece lookups, load errors.
#include "models/tokenizer_sentencepiece.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "models/tokenizer.h"
#include "base/error.h"
#include "base/fs.h"

namespace keel::models {
namespace {

namespace fs = std::filesystem;

// A fresh temporary directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("keel_sp_test_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    keel::fs::remove_tree(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Synthetic arithmetic lines like the quickstart's: "User: 12+7=\nAssistant: 19".
std::vector<std::string> arithmetic_corpus(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(0, 99);
  const char* ops = "+-*";
  std::vector<std::string> lines;
  for (int i = 0; i < n; ++i) {
    const int a = d(rng), b = d(rng);
    const char op = ops[i % 3];
    const int r = op == '+' ? a + b : op == '-' ? a - b : a * b;
    lines.push_back("What is " + std::to_string(a) + " " + op + " " + std::to_string(b) + "? The answer is " +
                    std::to_string(r) + ".");
  }
  return lines;
}

// One trained model shared by the tests of this suite (training takes ~100 ms).
class SentencePieceTokenizerTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    SentencePieceTrainOptions o;
    o.control_symbols = {"<|im_start|>", "<|im_end|>"};
    o.pad_id = 3;
    model_path_ = train_sentencepiece(arithmetic_corpus(400, 7), 64, dir_->file("arith"), o);
    tok_ = load_tokenizer(model_path_).release();
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete dir_;
  }
  static TempDir* dir_;
  static std::string model_path_;
  static Tokenizer* tok_;
};
TempDir* SentencePieceTokenizerTest::dir_ = nullptr;
std::string SentencePieceTokenizerTest::model_path_;
Tokenizer* SentencePieceTokenizerTest::tok_ = nullptr;

TEST_F(SentencePieceTokenizerTest, TrainedModelFilesAndVocab) {
  EXPECT_TRUE(fs::exists(model_path_));
  EXPECT_TRUE(fs::exists(dir_->file("arith.vocab")));
  EXPECT_EQ(tok_->kind(), "sentencepiece");
  EXPECT_EQ(tok_->source(), model_path_);
  EXPECT_EQ(tok_->vocab_size(), 64);
  // Ids fixed by the options: unk 0, bos 1, eos 2, pad 3, then the control symbols.
  EXPECT_EQ(tok_->id_to_piece(0), "<unk>");
  EXPECT_EQ(tok_->bos_id(), 1);
  EXPECT_EQ(tok_->eos_id(), 2);
  EXPECT_EQ(tok_->pad_id(), 3);
  EXPECT_EQ(tok_->id_to_piece(1), "<s>");
  EXPECT_EQ(tok_->id_to_piece(2), "</s>");
  EXPECT_EQ(tok_->piece_to_id("<|im_start|>"), 4);
  EXPECT_EQ(tok_->piece_to_id("<|im_end|>"), 5);
  EXPECT_EQ(tok_->piece_to_id("no such piece"), kNoToken);
  EXPECT_EQ(tok_->piece_to_id("<unk>"), 0);
  EXPECT_TRUE(tok_->is_special(1));
  EXPECT_TRUE(tok_->is_special(4));
  EXPECT_FALSE(tok_->is_special(tok_->piece_to_id("\xE2\x96\x81" "is")));
  EXPECT_EQ(tok_->special_tokens(), (std::vector<std::string>{"<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"}));
}

TEST_F(SentencePieceTokenizerTest, DigitsAreSplitAndRoundTrip) {
  const std::string text = "What is 12 + 34? The answer is 46.";
  const std::vector<int64_t> ids = tok_->encode(text, /*add_special=*/false);
  EXPECT_EQ(tok_->decode(ids, /*skip_special=*/true), text);
  // split_digits: "12" is two tokens, each a single digit (possibly with the ▁ prefix piece apart).
  std::vector<std::string> pieces;
  for (int64_t id : ids) pieces.push_back(tok_->id_to_piece(id));
  EXPECT_THAT(pieces, testing::Contains("1"));
  EXPECT_THAT(pieces, testing::Contains("2"));
  for (const std::string& p : pieces) EXPECT_FALSE(p.find("12") != std::string::npos) << p;
  // Every line of a held-out corpus round-trips.
  for (const std::string& line : arithmetic_corpus(50, 99)) {
    EXPECT_EQ(tok_->decode(tok_->encode(line, false), true), line);
  }
}

TEST_F(SentencePieceTokenizerTest, SpecialTokens) {
  const std::vector<int64_t> plain = tok_->encode("What is 1", /*add_special=*/false);
  const std::vector<int64_t> with_bos = tok_->encode("What is 1", /*add_special=*/true);
  ASSERT_EQ(with_bos.size(), plain.size() + 1);
  EXPECT_EQ(with_bos[0], 1);
  EXPECT_TRUE(std::equal(plain.begin(), plain.end(), with_bos.begin() + 1));
  // Control-symbol text is parsed into its id when parse_special is on.
  const std::vector<int64_t> chat = tok_->encode("<|im_start|>What is 1<|im_end|>", false);
  EXPECT_EQ(chat.front(), 4);
  EXPECT_EQ(chat.back(), 5);
  EXPECT_EQ(std::vector<int64_t>(chat.begin() + 1, chat.end() - 1), plain);
  EXPECT_EQ(tok_->decode(chat, /*skip_special=*/false), "<|im_start|>What is 1<|im_end|>");
  EXPECT_EQ(tok_->decode(chat, /*skip_special=*/true), "What is 1");
  const std::vector<int64_t> raw = tok_->encode("<|im_start|>", false, /*parse_special=*/false);
  EXPECT_THAT(raw, testing::Not(testing::Contains(4)));
  // id_to_bytes: "▁" becomes a space.
  EXPECT_EQ(tok_->id_to_bytes(tok_->piece_to_id("\xE2\x96\x81" "is")), " is");
}

TEST_F(SentencePieceTokenizerTest, OutOfRangeIdsThrow) {
  EXPECT_THROW(tok_->decode(std::vector<int64_t>{64}, true), keel::Error);
  EXPECT_THROW(tok_->decode(std::vector<int64_t>{-1}, true), keel::Error);
  EXPECT_THROW(tok_->id_to_piece(1000), keel::Error);
}

TEST_F(SentencePieceTokenizerTest, TokenizeDebugListsIdsAndPieces) {
  const std::string out = tokenize_debug(*tok_, "<|im_start|>What is 7");
  const std::vector<int64_t> ids = tok_->encode("<|im_start|>What is 7", false);
  EXPECT_THAT(out, testing::StartsWith(std::to_string(ids.size()) + " tokens"));
  EXPECT_THAT(out, testing::HasSubstr("\"<|im_start|>\""));
  EXPECT_THAT(out, testing::HasSubstr("(special)"));
  EXPECT_THAT(out, testing::HasSubstr("\" is\""));
  // One header line, one column-title line, one line per token.
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), static_cast<long>(ids.size()) + 2);
}

TEST(SentencePieceTrain, UnigramAndDeterminism) {
  TempDir dir;
  SentencePieceTrainOptions o;
  o.model_type = "unigram";
  const auto corpus = arithmetic_corpus(300, 3);
  const std::string a = train_sentencepiece(corpus, 30, dir.file("a"), o);
  const std::string b = train_sentencepiece(corpus, 30, dir.file("b"), o);
  const auto ta = load_tokenizer(a), tb = load_tokenizer(b);
  EXPECT_EQ(ta->vocab_size(), 30);
  for (int64_t id = 0; id < 30; ++id) EXPECT_EQ(ta->id_to_piece(id), tb->id_to_piece(id)) << id;
  EXPECT_EQ(ta->decode(ta->encode(corpus[0], false), true), corpus[0]);
}

TEST(SentencePieceTrain, Errors) {
  TempDir dir;
  try {
    train_sentencepiece(arithmetic_corpus(20, 1), 5000, dir.file("big"));
    FAIL() << "expected keel::Error";
  } catch (const keel::Error& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("vocab_size 5000"));
    EXPECT_THAT(e.what(), testing::HasSubstr("HINT"));
  }
  SentencePieceTrainOptions soft;
  soft.hard_vocab_limit = false;
  const auto t = load_tokenizer(train_sentencepiece(arithmetic_corpus(20, 1), 5000, dir.file("soft"), soft));
  EXPECT_LT(t->vocab_size(), 5000);
  EXPECT_THROW(train_sentencepiece({}, 10, dir.file("x")), keel::Error);
  try {
    train_sentencepiece(arithmetic_corpus(20, 1), 30, dir.file("missing/dir/m"));
    FAIL() << "expected keel::Error";
  } catch (const keel::Error& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("does not exist"));
  }
}

TEST(SentencePieceLoad, MalformedModelIsAnError) {
  TempDir dir;
  const std::string bad = dir.file("tokenizer.model");
  std::ofstream(bad) << "this is not a protobuf";
  try {
    load_tokenizer(bad);
    FAIL() << "expected keel::Error";
  } catch (const keel::Error& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr(bad));
    EXPECT_THAT(e.what(), testing::HasSubstr("not a valid SentencePiece model"));
  }
  const std::string empty = dir.file("empty.model");
  std::ofstream(empty).flush();
  EXPECT_THROW(load_tokenizer(empty), keel::Error);
  EXPECT_THROW(load_sentencepiece_model(dir.file("absent.model")), keel::Error);
}

}  // namespace
}  // namespace keel::models
