// keel generate / logprobs / tokenize end to end on a tiny random model with a SentencePiece
// tokenizer trained here, and batch tokenization with small HF byte-level BPE tokenizers written here.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "models/compat.h"
#include "models/pretrained.h"
#include "models/tokenizer.h"
#include "models/tokenizer_pretokenize.h"
#include "models/tokenizer_sentencepiece.h"
#include "tests/models/test_util.h"
#include "tests/trainer/cli/run_keel.h"
#include "base/fs.h"

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
  EXPECT_EQ(r.out, "keel: error: bad.jsonl:2: missing 'completion' (a string) or 'completion_ids' (a list of token ids)"
                   " (--skip-bad-lines skips and counts bad lines)\n");

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

using Ids = std::vector<int64_t>;

/// The SentencePiece tokenizer of the fixture's model.
std::unique_ptr<models::Tokenizer> model_tokenizer(const std::filesystem::path& dir) {
  return models::load_tokenizer((dir / "model" / "tokenizer.model").string());
}

/// A JSON array text of ids, e.g. "[1,5,7]".
std::string ids_json(const Ids& ids) { return nlohmann::json(ids).dump(); }

TEST_F(ModelCommands, GenerateTakesTokenIdsAndEchoesRecordIds) {
  const auto tok = model_tokenizer(dir_->path());
  // The same three prompts as text and as the ids text encodes to (BOS included); the first two
  // records carry their own ids, the third falls back to FILE:LINE.
  const std::vector<std::string> prompts = {"12+3=", "7+70=", "40+1="};
  std::string text_jsonl, ids_jsonl;
  const std::vector<std::string> own_ids = {"\"id\": \"q1\", ", "\"id\": 7, ", ""};
  for (size_t i = 0; i < prompts.size(); ++i) {
    text_jsonl += "{" + own_ids[i] + "\"prompt\": \"" + prompts[i] + "\"}\n";
    ids_jsonl += "{" + own_ids[i] + "\"prompt_ids\": " + ids_json(tok->encode(prompts[i], true)) + "}\n";
  }
  dir_->write("pt.jsonl", text_jsonl);
  dir_->write("pi.jsonl", ids_jsonl);
  const std::string opts = " --max-new-tokens 5 --seed 11 --samples 2 --logprobs";
  const auto rt = run_keel("generate model pt.jsonl" + opts, dir_->path());
  const auto ri = run_keel("generate model pi.jsonl" + opts, dir_->path());
  ASSERT_EQ(rt.exit_code, 0) << rt.out;
  ASSERT_EQ(ri.exit_code, 0) << ri.out;
  const auto lt = json_lines(rt.out), li = json_lines(ri.out);
  ASSERT_EQ(lt.size(), 6u);
  ASSERT_EQ(li.size(), 6u);
  for (size_t k = 0; k < lt.size(); ++k) {
    SCOPED_TRACE(k);
    for (const char* key : {"completion", "finish_reason", "num_tokens", "logprobs"}) EXPECT_EQ(li[k][key], lt[k][key]) << key;
    EXPECT_EQ(lt[k]["prompt"], prompts[k / 2]);
    // Ids are echoed as the model saw them, special tokens included.
    EXPECT_EQ(li[k]["prompt"], tok->decode(tok->encode(prompts[k / 2], true), /*skip_special=*/false));
  }
  EXPECT_EQ(lt[0]["id"], "q1");
  EXPECT_EQ(lt[1]["id"], "q1");
  EXPECT_EQ(lt[2]["id"], 7);
  EXPECT_EQ(lt[4]["id"], "pt.jsonl:3");
  EXPECT_EQ(li[0]["id"], "q1");
  EXPECT_EQ(li[3]["id"], 7);
  EXPECT_EQ(li[5]["id"], "pi.jsonl:3");
}

TEST_F(ModelCommands, LogprobsTakesTokenIdsAndEchoesRecordIds) {
  const auto tok = model_tokenizer(dir_->path());
  const Ids prompt = tok->encode("12+3=", true), completion = tok->encode("15", false);
  dir_->write("ct.jsonl", "{\"id\": \"a\", \"prompt\": \"12+3=\", \"completion\": \"15\"}\n"
                          "{\"prompt\": \"12+3=\", \"completion\": \"15\"}\n");
  dir_->write("ci.jsonl", "{\"id\": \"a\", \"prompt_ids\": " + ids_json(prompt) + ", \"completion_ids\": " +
                              ids_json(completion) + "}\n" +
                              // Mixed forms: ids for the prompt, text for the completion.
                              "{\"prompt_ids\": " + ids_json(prompt) + ", \"completion\": \"15\"}\n");
  const auto rt = run_keel("logprobs model ct.jsonl", dir_->path());
  const auto ri = run_keel("logprobs model ci.jsonl", dir_->path());
  ASSERT_EQ(rt.exit_code, 0) << rt.out;
  ASSERT_EQ(ri.exit_code, 0) << ri.out;
  const auto lt = json_lines(rt.out), li = json_lines(ri.out);
  ASSERT_EQ(lt.size(), 2u);
  ASSERT_EQ(li.size(), 2u);
  for (size_t k = 0; k < 2; ++k)
    for (const char* key : {"tokens", "pieces", "logprobs", "sum_logprob"}) EXPECT_EQ(li[k][key], lt[k][key]) << k << key;
  EXPECT_EQ(lt[0]["tokens"].get<Ids>(), completion);
  EXPECT_EQ(lt[0]["id"], "a");
  EXPECT_EQ(li[0]["id"], "a");
  EXPECT_EQ(lt[1]["id"], "ct.jsonl:2");
  EXPECT_EQ(li[1]["id"], "ci.jsonl:2");
}

TEST_F(ModelCommands, TokenIdRecordsAreCheckedLineByLine) {
  const auto tok = model_tokenizer(dir_->path());
  const int64_t v = tok->vocab_size();  // the model's embedding has exactly this many rows
  const std::string ok = "{\"prompt\": \"1+1=\", \"completion\": \"2\"}\n";
  const std::string hint = " (--skip-bad-lines skips and counts bad lines)\n";
  auto expect_error = [&](const std::string& cmd, const std::string& record, const std::string& msg) {
    dir_->write("e.jsonl", ok + record + "\n");
    const auto r = run_keel(cmd + " model e.jsonl" + (cmd == "generate" ? " --max-new-tokens 4" : ""), dir_->path());
    EXPECT_EQ(r.exit_code, 1) << record;
    EXPECT_EQ(r.out, "keel: error: e.jsonl:2: " + msg + hint) << record;
  };
  expect_error("logprobs", "{\"prompt\": \"1+1=\", \"prompt_ids\": [1, 5], \"completion\": \"2\"}",
               "give 'prompt' or 'messages' (text) or 'prompt_ids' (token ids), not both");
  expect_error("logprobs", "{\"prompt_ids\": [1, 5], \"completion\": \"2\", \"completion_ids\": [5]}",
               "give 'completion' (text) or 'completion_ids' (token ids), not both");
  expect_error("logprobs", "{\"completion\": \"2\"}",
               "missing 'prompt' (a string), 'messages' (a list of {role, content}) or 'prompt_ids' (a list of token ids)");
  expect_error("logprobs", "{\"prompt_ids\": [1, " + std::to_string(v) + "], \"completion\": \"2\"}",
               fmt::format("'prompt_ids'[1] is {}, outside the vocabulary [0, {})", v, v));
  expect_error("logprobs", "{\"prompt_ids\": [1], \"completion_ids\": [-1]}",
               fmt::format("'completion_ids'[0] is -1, outside the vocabulary [0, {})", v));
  expect_error("logprobs", "{\"prompt_ids\": [1, \"5\"], \"completion\": \"2\"}",
               "'prompt_ids'[1] must be an integer token id, got \"5\"");
  expect_error("logprobs", "{\"prompt_ids\": [], \"completion\": \"2\"}", "'prompt_ids' must be a non-empty list of token ids");
  expect_error("logprobs", "{\"id\": [1], \"prompt\": \"1+1=\", \"completion\": \"2\"}", "'id' must be a string or a number, got array");
  expect_error("generate", "{\"prompt\": \"1+1=\", \"prompt_ids\": [1, 5]}",
               "give 'prompt' or 'messages' (text) or 'prompt_ids' (token ids), not both");
  expect_error("generate", "{\"prompt_ids\": [" + std::to_string(v + 3) + "]}",
               fmt::format("'prompt_ids'[0] is {}, outside the vocabulary [0, {})", v + 3, v));
  expect_error("generate", "{\"answer\": \"2\"}",
               "missing 'prompt' (a string), 'messages' (a list of {role, content}) or 'prompt_ids' (a list of token ids)");
  // 21 ids + 4 new tokens do not fit the context of 24.
  expect_error("generate", "{\"prompt_ids\": " + ids_json(Ids(21, 5)) + "}",
               "prompt of 21 tokens + max_new_tokens 4 exceeds the model's context of 24 tokens");

  // The option the hint names exists: the bad line is skipped, counted and reported on stderr.
  dir_->write("s.jsonl", "{\"id\": 1, \"prompt_ids\": [1, 5]}\n{\"prompt_ids\": [" + std::to_string(v) +
                             "]}\n{\"id\": 3, \"prompt\": \"1+1=\"}\n");
  const auto r = run_keel("generate model s.jsonl --max-new-tokens 2 --skip-bad-lines -o s_out.jsonl", dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("s.jsonl: skipped 1 bad line(s); the first: s.jsonl:2: 'prompt_ids'[0]"), std::string::npos) << r.out;
  const auto lines = json_file_lines(dir_->path() / "s_out.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["id"], 1);
  EXPECT_EQ(lines[1]["id"], 3);
}

TEST_F(ModelCommands, MissingTokenizerNamesTheFlag) {
  // The model without its tokenizer files.
  const auto bare = dir_->path() / "bare";
  std::filesystem::create_directories(bare);
  for (const auto& e : std::filesystem::directory_iterator(dir_->path() / "model"))
    if (e.path().filename().string().rfind("tokenizer", 0) != 0) std::filesystem::copy_file(e.path(), bare / e.path().filename());
  dir_->write("m.jsonl", "{\"prompt\": \"1+1=\", \"completion\": \"2\"}\n");
  for (const char* args : {"generate bare m.jsonl", "logprobs bare m.jsonl"}) {
    const auto r = run_keel(args, dir_->path());
    EXPECT_EQ(r.exit_code, 1) << args;
    EXPECT_EQ(r.out, "keel: error: model directory 'bare' has neither tokenizer.json nor tokenizer.model: pass "
                     "--tokenizer FILE_OR_DIR\n") << args;
  }
  const auto r = run_keel("logprobs bare m.jsonl --tokenizer model/tokenizer.model", dir_->path());
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

/// Small HF byte-level BPE tokenizers in the Llama-3 layout: the 256 byte characters, a few
/// merges, three special tokens, and (with_bos) a TemplateProcessing post-processor adding
/// <|begin_of_text|> as Llama-3's does; without it nothing is added, as for Qwen.
class TokenizeBatch : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { dir_ = new ScratchDir("tokenize_batch"); }
  static void TearDownTestSuite() { delete dir_; }

  static std::string write_tokenizer(const std::string& name, bool with_bos) {
    using nlohmann::json;
    json vocab = json::object();
    for (int b = 0; b < 256; ++b) vocab[models::byte_to_unicode(static_cast<unsigned char>(b))] = b;
    const std::vector<std::pair<std::string, std::string>> merges = {
        {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"Ġ", "w"}, {"o", "r"}, {"Ġw", "or"}, {"Ã", "©"}};
    json m = json::array();
    for (const auto& [l, r] : merges) {
      const size_t id = vocab.size();
      vocab[l + r] = id;
      m.push_back(l + " " + r);
    }
    const int64_t n = static_cast<int64_t>(vocab.size());
    json added = json::array();
    const std::vector<std::string> specials = {"<|begin_of_text|>", "<|im_start|>", "<|im_end|>"};
    for (size_t i = 0; i < specials.size(); ++i)
      added.push_back({{"id", n + static_cast<int64_t>(i)}, {"content", specials[i]}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", false}, {"special", true}});
    json post = nullptr;
    if (with_bos)
      post = {{"type", "TemplateProcessing"},
              {"single", json::array({{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                                      {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
              {"special_tokens", {{"<|begin_of_text|>", {{"id", "<|begin_of_text|>"}, {"ids", {n}}, {"tokens", {"<|begin_of_text|>"}}}}}}};
    const json j = {
        {"version", "1.0"},
        {"added_tokens", added},
        {"normalizer", nullptr},
        {"pre_tokenizer",
         {{"type", "Sequence"},
          {"pretokenizers",
           json::array({{{"type", "Split"},
                         {"pattern", {{"Regex", std::string(models::split_pattern_regex(models::SplitPattern::kCl100k))}}},
                         {"behavior", "Isolated"},
                         {"invert", false}},
                        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}})}}},
        {"post_processor", post},
        {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
        {"model",
         {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
          {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", true},
          {"vocab", vocab}, {"merges", m}}}};
    std::filesystem::create_directories(dir_->path() / name);
    dir_->write(name + "/tokenizer.json", j.dump());
    return name + "/tokenizer.json";
  }
  static ScratchDir* dir_;
};
ScratchDir* TokenizeBatch::dir_ = nullptr;

/// Texts with special tokens, unicode (2-, 3- and 4-byte UTF-8, a combining mark), whitespace runs
/// and the empty string. None contains a single quote (they are passed to a shell in quotes).
const std::vector<std::string>& batch_texts() {
  static const std::vector<std::string> t = {
      "hello world",
      "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n",
      "caf\u00e9 \u00fcber na\u0308ive \u4f60\u597d \U0001F642!",
      "  two  spaces\tand a tab",
      "",
      "<|begin_of_text|>already there",
      "12345 + 678 = 13023",
  };
  return t;
}

/// {text, id?} JSONL of batch_texts(): even lines carry an id ("t0", 2, "t4", 6 alternate string
/// and number), odd lines none.
std::string batch_jsonl() {
  std::string out;
  for (size_t i = 0; i < batch_texts().size(); ++i) {
    nlohmann::json o;
    o["text"] = batch_texts()[i];
    if (i % 2 == 0) {
      if (i % 4 == 0) o["id"] = "t" + std::to_string(i);
      else o["id"] = i;
    }
    out += o.dump() + "\n";
  }
  return out;
}

/// The ids of the single-text table (`keel tokenize TOK TEXT`): the second column after the two
/// header lines.
Ids table_ids(const std::string& table) {
  Ids ids;
  std::stringstream ss(table);
  std::string line;
  std::getline(ss, line);
  std::getline(ss, line);
  while (std::getline(ss, line)) {
    std::stringstream ls(line);
    int64_t pos = 0, id = 0;
    if (ls >> pos >> id) ids.push_back(id);
  }
  return ids;
}

void check_batch(const std::filesystem::path& cwd, const std::string& tok_path, bool add_special) {
  SCOPED_TRACE(tok_path + (add_special ? " --add-special" : ""));
  const auto tok = models::load_tokenizer((cwd / tok_path).string());
  const auto r = run_keel("tokenize " + tok_path + " --jsonl texts.jsonl" + (add_special ? " --add-special" : ""), cwd);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), batch_texts().size());
  for (size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(batch_texts()[i]);
    const Ids ids = lines[i]["ids"].get<Ids>();
    EXPECT_EQ(ids, tok->encode(batch_texts()[i], add_special));
    ASSERT_EQ(lines[i]["tokens"].size(), ids.size());
    for (size_t k = 0; k < ids.size(); ++k) EXPECT_EQ(lines[i]["tokens"][k], tok->id_to_piece(ids[k]));
    if (i % 2 == 1) EXPECT_EQ(lines[i]["id"], "texts.jsonl:" + std::to_string(i + 1));
    else if (i % 4 == 0) EXPECT_EQ(lines[i]["id"], "t" + std::to_string(i));
    else EXPECT_EQ(lines[i]["id"], i);
    // The single-text command gives the same ids.
    if (!batch_texts()[i].empty()) {
      const auto one = run_keel("tokenize " + tok_path + " '" + batch_texts()[i] + "'" + (add_special ? " --add-special" : ""), cwd);
      ASSERT_EQ(one.exit_code, 0) << one.out;
      EXPECT_EQ(table_ids(one.out), ids) << one.out;
    }
  }
}

TEST_F(TokenizeBatch, MatchesTheSingleTextTokenizer) {
  dir_->write("texts.jsonl", batch_jsonl());
  const std::string hf = write_tokenizer("llama3_like", /*with_bos=*/true);
  for (bool add_special : {false, true}) check_batch(dir_->path(), hf, add_special);
  // The special tokens and the unicode text really are exercised: <|im_start|> is one id, and é
  // (C3 A9) is one merged piece.
  const auto tok = models::load_tokenizer((dir_->path() / hf).string());
  EXPECT_EQ(tok->encode("<|im_start|>", false), (Ids{tok->piece_to_id("<|im_start|>")}));
  EXPECT_EQ(tok->encode("\u00e9", false), (Ids{tok->piece_to_id("Ã©")}));
}

TEST_F(TokenizeBatch, MatchesTheSingleTextTokenizerForSentencePiece) {
  dir_->write("texts.jsonl", batch_jsonl());
  std::vector<std::string> corpus;
  for (const auto& t : batch_texts()) corpus.push_back(t.empty() ? "hello" : t);
  models::SentencePieceTrainOptions spo;
  spo.hard_vocab_limit = false;
  spo.byte_fallback = true;
  spo.control_symbols = {"<|im_start|>", "<|im_end|>"};
  models::train_sentencepiece(corpus, 400, (dir_->path() / "sp").string(), spo);
  for (bool add_special : {false, true}) check_batch(dir_->path(), "sp.model", add_special);
}

TEST_F(TokenizeBatch, AddSpecialPrependsBosExactlyOnce) {
  dir_->write("texts.jsonl", batch_jsonl());
  const std::string llama = write_tokenizer("with_bos", /*with_bos=*/true);
  const std::string qwen = write_tokenizer("no_post_processor", /*with_bos=*/false);
  const auto tok = models::load_tokenizer((dir_->path() / llama).string());
  const int64_t bos = tok->piece_to_id("<|begin_of_text|>");
  ASSERT_NE(bos, models::kNoToken);
  auto run = [&](const std::string& t, const std::string& extra) {
    const auto r = run_keel("tokenize " + t + " --jsonl texts.jsonl" + extra, dir_->path());
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return json_lines(r.out);
  };
  const auto plain = run(llama, ""), special = run(llama, " --add-special");
  const auto qwen_plain = run(qwen, ""), qwen_special = run(qwen, " --add-special");
  ASSERT_EQ(plain.size(), batch_texts().size());
  ASSERT_EQ(special.size(), plain.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    SCOPED_TRACE(batch_texts()[i]);
    Ids expected = {bos};
    for (int64_t id : plain[i]["ids"].get<Ids>()) expected.push_back(id);
    EXPECT_EQ(special[i]["ids"].get<Ids>(), expected);  // BOS first, the rest unchanged, nothing appended
    EXPECT_EQ(special[i]["tokens"][0], "<|begin_of_text|>");
    // Without a post-processor (Qwen) --add-special adds nothing.
    EXPECT_EQ(qwen_special[i]["ids"], qwen_plain[i]["ids"]);
  }
  // A text that starts with the BOS text keeps it and gets a second one, as transformers does.
  EXPECT_EQ(special[5]["ids"][0], bos);
  EXPECT_EQ(special[5]["ids"][1], bos);
  EXPECT_EQ(special[4]["ids"], nlohmann::json::array({bos}));  // the empty text: BOS alone

  // SentencePiece: its BOS id first.
  std::vector<std::string> corpus = {"hello world", "two spaces", "12345 + 678 = 13023"};
  models::SentencePieceTrainOptions spo;
  spo.hard_vocab_limit = false;
  models::train_sentencepiece(corpus, 60, (dir_->path() / "sp_bos").string(), spo);
  const auto sp = models::load_tokenizer((dir_->path() / "sp_bos.model").string());
  dir_->write("one.jsonl", "{\"text\": \"hello world\"}\n");
  const auto r = run_keel("tokenize sp_bos.model --jsonl - --add-special < one.jsonl", dir_->path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto l = json_lines(r.out);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0]["ids"][0], sp->bos_id());
  EXPECT_EQ(l[0]["ids"].get<Ids>(), sp->encode("hello world", true));
  EXPECT_EQ(l[0]["id"], "<stdin>:1");
}

TEST_F(TokenizeBatch, BadInputsAreClearErrors) {
  const std::string hf = write_tokenizer("errors", /*with_bos=*/true);
  dir_->write("bad.jsonl", "{\"text\": \"hello\"}\n{\"txt\": \"hello\"}\n{\"text\": \"world\", \"id\": 3}\n");
  auto r = run_keel("tokenize " + hf + " --jsonl bad.jsonl", dir_->path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "keel: error: bad.jsonl:2: expected a string 'text' (--skip-bad-lines skips and counts bad lines)\n");
  r = run_keel("tokenize " + hf + " --jsonl bad.jsonl --skip-bad-lines -o good.jsonl", dir_->path());
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("bad.jsonl: skipped 1 bad line(s)"), std::string::npos) << r.out;
  EXPECT_EQ(json_file_lines(dir_->path() / "good.jsonl").size(), 2u);
  r = run_keel("tokenize " + hf, dir_->path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "keel: error: tokenize: give a TEXT or --jsonl FILE (a {text, id?} object per line)\n");
  r = run_keel("tokenize " + hf + " --jsonl missing.jsonl", dir_->path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "keel: error: missing.jsonl: cannot open input file (does it exist and is it readable?)\n");
}

}  // namespace
}  // namespace keel::testing
