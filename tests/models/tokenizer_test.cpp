// load_tokenizer: choosing the implementation from a file or a model directory, and the errors for
// missing, empty, malformed or unsupported tokenizer files (each must name the file and the problem).
#include "models/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "models/tokenizer_sentencepiece.h"
#include "base/error.h"
#include "base/fs.h"

namespace keel::models {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::HasSubstr;

class TokenizerLoadTest : public testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("keel_tok_load_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    keel::fs::remove_tree(dir_, ec);
  }
  std::string write(const std::string& rel, const std::string& text) {
    const fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  // A minimal valid byte-level tokenizer.json: pieces "a", "b", "ab" and one merge.
  static json minimal() {
    return {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", {"a b"}}}},
            {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
            {"decoder", {{"type", "ByteLevel"}}}};
  }
  // Expects load_tokenizer(path) to throw keel::Error whose message has every one of `parts`.
  static void expect_error(const std::string& path, std::initializer_list<std::string> parts) {
    try {
      load_tokenizer(path);
      ADD_FAILURE() << "expected keel::Error for " << path;
    } catch (const keel::Error& e) {
      for (const std::string& p : parts) EXPECT_THAT(e.what(), HasSubstr(p));
    }
  }
  fs::path dir_;
};

TEST_F(TokenizerLoadTest, PicksImplementationByFileAndDirectory) {
  const std::string json_path = write("hf/tokenizer.json", minimal().dump());
  EXPECT_EQ(load_tokenizer(json_path)->kind(), "hf_bpe");
  EXPECT_EQ(load_tokenizer((dir_ / "hf").string())->kind(), "hf_bpe");
  EXPECT_EQ(load_tokenizer((dir_ / "hf").string())->encode("ab", false), (std::vector<int64_t>{2}));
  // Unknown extension: sniffed by content.
  EXPECT_EQ(load_tokenizer(write("weird.bin", "  \n" + minimal().dump()))->kind(), "hf_bpe");

  std::vector<std::string> corpus;
  for (int i = 0; i < 50; ++i) corpus.push_back("sum " + std::to_string(i) + " plus " + std::to_string(i * 7));
  fs::create_directories(dir_ / "sp");
  const std::string model = train_sentencepiece(corpus, 30, (dir_ / "sp" / "tokenizer").string());
  EXPECT_EQ(load_tokenizer(model)->kind(), "sentencepiece");
  EXPECT_EQ(load_tokenizer((dir_ / "sp").string())->kind(), "sentencepiece");
  fs::copy_file(model, dir_ / "sp" / "model.bin");
  EXPECT_EQ(load_tokenizer((dir_ / "sp" / "model.bin").string())->kind(), "sentencepiece");
  // tokenizer.json wins when a directory has both.
  fs::copy_file(model, dir_ / "hf" / "tokenizer.model");
  EXPECT_EQ(load_tokenizer((dir_ / "hf").string())->kind(), "hf_bpe");
}

TEST_F(TokenizerLoadTest, MissingPaths) {
  expect_error((dir_ / "nope.json").string(), {"nope.json", "does not exist"});
  fs::create_directories(dir_ / "empty_model_dir");
  expect_error((dir_ / "empty_model_dir").string(), {"empty_model_dir", "neither tokenizer.json nor tokenizer.model"});
  expect_error("", {"empty"});
}

TEST_F(TokenizerLoadTest, EmptyAndMalformedJson) {
  const std::string empty = write("empty/tokenizer.json", "  \n");
  expect_error(empty, {empty, "file is empty"});
  const std::string truncated = write("trunc/tokenizer.json", minimal().dump().substr(0, 40));
  expect_error(truncated, {truncated, "malformed JSON"});
  const std::string array = write("array/tokenizer.json", "[1, 2]");
  expect_error(array, {array, "JSON object"});
}

TEST_F(TokenizerLoadTest, StructuralErrorsNameTheJsonPath) {
  auto check = [&](const std::string& name, json j, std::initializer_list<std::string> parts) {
    SCOPED_TRACE(name);
    const std::string p = write(name + "/tokenizer.json", j.dump());
    std::vector<std::string> all(parts);
    all.push_back(p);
    try {
      load_tokenizer(p);
      ADD_FAILURE() << "expected keel::Error";
    } catch (const keel::Error& e) {
      for (const std::string& s : all) EXPECT_THAT(e.what(), HasSubstr(s));
    }
  };
  json j = minimal();
  j.erase("model");
  check("no_model", j, {"missing field /model"});
  j = minimal();
  j["model"].erase("merges");
  check("no_merges", j, {"missing field /model/merges"});
  j = minimal();
  j["model"]["vocab"]["c"] = "three";
  check("bad_id", j, {"/model/vocab/c", "non-negative integer"});
  j = minimal();
  j["model"]["merges"] = {"a b", "ab"};
  check("bad_merge", j, {"/model/merges/1", "two pieces and one space"});
  j = minimal();
  j["model"]["merges"] = json::array({json::array({"a", "x"})});
  check("merge_piece", j, {"/model/merges/0", "'x' is not in /model/vocab"});
  j = minimal();
  j["model"]["merges"] = {"b a"};
  check("merge_result", j, {"/model/merges/0", "merged piece 'ba'"});
  j = minimal();
  j["model"]["type"] = "WordPiece";
  check("wordpiece", j, {"model type 'WordPiece' is not supported"});
  j = minimal();
  j["normalizer"] = {{"type", "NFKC"}};
  check("nfkc", j, {"/normalizer", "normalizer type 'NFKC' is not supported"});
  j = minimal();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\s+"}}}, {"behavior", "Isolated"}};
  check("regex", j, {"/pre_tokenizer/pattern", "split regex", "not one keel implements"});
  j = minimal();
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  check("metaspace", j, {"pre-tokenizer type 'Metaspace' is not supported"});
  j = minimal();
  j["decoder"] = {{"type", "Metaspace"}};
  check("decoder", j, {"/decoder", "decoder type 'Metaspace'"});
  j = minimal();
  j["post_processor"] = {{"type", "BertProcessing"}};
  check("post", j, {"/post_processor", "post-processor type 'BertProcessing'"});
  j = minimal();
  j["added_tokens"] = {{{"id", 5}}};
  check("added", j, {"missing field /added_tokens/0/content"});
  j = minimal();
  j.erase("pre_tokenizer");
  check("no_bytes", j, {"no ByteLevel pre-tokenizer"});
}

TEST_F(TokenizerLoadTest, BadTokenizerConfig) {
  write("cfg/tokenizer.json", minimal().dump());
  const std::string cfg = write("cfg/tokenizer_config.json", R"({"eos_token": "<|nope|>"})");
  expect_error((dir_ / "cfg").string(), {cfg, "eos_token '<|nope|>' is not a token"});
  write("cfg2/tokenizer.json", minimal().dump());
  const std::string cfg2 = write("cfg2/tokenizer_config.json", "{oops");
  expect_error((dir_ / "cfg2").string(), {cfg2, "malformed JSON"});
  write("cfg3/tokenizer.json", minimal().dump());
  write("cfg3/tokenizer_config.json", R"({"eos_token": "ab", "bos_token": {"content": "a"}})");
  const auto tok = load_tokenizer((dir_ / "cfg3").string());
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->bos_id(), 0);
}

}  // namespace
}  // namespace keel::models
