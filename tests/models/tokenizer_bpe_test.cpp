// HF byte-level BPE on a hand-made tokenizer.json whose merges can be followed by hand, plus a
// comparison of the heap-based merge loop with a slow, obvious BPE (rescan for the best pair after
// every merge) on random words over random merge tables.
#include "models/tokenizer_bpe.h"

#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "models/tokenizer_pretokenize.h"
#include "base/error.h"

namespace keel::models {
namespace {

using json = nlohmann::json;
using Ids = std::vector<int64_t>;

// Vocabulary (byte-level pieces; "Ġ" is the space byte, "Ã©" is é = C3 A9):
//   0 a  1 b  2 c  3 d  4 Ġ  5 !  6 ab  7 abc  8 bc  9 Ġa  10 cd  11 aa  12 Ã  13 ©  14 Ã©  15 abcd
// Merges by rank:
//   0 a b -> ab   1 ab c -> abc   2 b c -> bc   3 Ġ a -> Ġa   4 c d -> cd   5 a a -> aa   6 Ã © -> Ã©
// Added tokens: 16 <|x|> (special), 17 <y> (not special), 18 <s>, 19 </s> (special).
json tiny_tokenizer(bool string_merges, bool ignore_merges = false) {
  json vocab = json::object();
  const std::vector<std::string> pieces = {"a", "b", "c", "d", "Ġ", "!", "ab", "abc", "bc", "Ġa", "cd", "aa", "Ã", "©", "Ã©", "abcd"};
  for (size_t i = 0; i < pieces.size(); ++i) vocab[pieces[i]] = i;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"a", "b"}, {"ab", "c"}, {"b", "c"}, {"Ġ", "a"}, {"c", "d"}, {"a", "a"}, {"Ã", "©"}};
  json m = json::array();
  for (const auto& [l, r] : merges) {
    if (string_merges) m.push_back(l + " " + r);
    else m.push_back(json::array({l, r}));
  }
  auto added = [](int id, const char* content, bool special) {
    return json{{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                {"normalized", false}, {"special", special}};
  };
  return json{
      {"version", "1.0"},
      {"added_tokens", json::array({added(16, "<|x|>", true), added(17, "<y>", false), added(18, "<s>", true),
                                    added(19, "</s>", true)})},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         json::array({{{"type", "Split"},
                       {"pattern", {{"Regex", std::string(split_pattern_regex(SplitPattern::kQwen2))}}},
                       {"behavior", "Isolated"},
                       {"invert", false}},
                      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}})}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}})},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {18}}, {"tokens", {"<s>"}}}},
                            {"</s>", {{"id", "</s>"}, {"ids", {19}}, {"tokens", {"</s>"}}}}}}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", ignore_merges},
        {"vocab", vocab}, {"merges", m}}}};
}

std::unique_ptr<Tokenizer> make(const json& j, const std::string& config = {}) {
  return parse_hf_tokenizer_json(j.dump(), "tiny/tokenizer.json", config, "tiny/tokenizer_config.json");
}

TEST(TokenizerBpe, HandCheckedMerges) {
  for (bool string_merges : {true, false}) {
    SCOPED_TRACE(string_merges ? "\"a b\" merges" : "[a, b] merges");
    const auto tok = make(tiny_tokenizer(string_merges));
    // abcd: pairs ab(0) bc(2) cd(4) -> merge ab -> ab c d: abc(1) cd(4) -> abc d; (abc,d) no merge.
    EXPECT_EQ(tok->encode("abcd", false), (Ids{7, 3}));
    // bcd: bc(2) cd(4) -> bc d.
    EXPECT_EQ(tok->encode("bcd", false), (Ids{8, 3}));
    // " abc" is one pre-token -> Ġ a b c: ab(0) first, then abc(1); Ġa(3) never gets its chance.
    EXPECT_EQ(tok->encode(" abc", false), (Ids{4, 7}));
    // " a" -> Ġ a -> Ġa(3).
    EXPECT_EQ(tok->encode(" a", false), (Ids{9}));
    // aaa: two equal-rank (5) candidates, the leftmost merges first -> aa a.
    EXPECT_EQ(tok->encode("aaa", false), (Ids{11, 0}));
    // "ab!" splits into "ab" and "!" before BPE.
    EXPECT_EQ(tok->encode("ab!", false), (Ids{6, 5}));
    // é is the bytes C3 A9 -> Ã © -> Ã©(6).
    EXPECT_EQ(tok->encode("\u00e9", false), (Ids{14}));
  }
}

TEST(TokenizerBpe, NfcNormalizerRunsFirst) {
  const auto tok = make(tiny_tokenizer(false));
  // e + combining acute is NFC-composed to é before byte mapping.
  EXPECT_EQ(tok->encode("e\u0301", false), tok->encode("\u00e9", false));
}

TEST(TokenizerBpe, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  EXPECT_EQ(make(tiny_tokenizer(false, /*ignore_merges=*/false))->encode("abcd", false), (Ids{7, 3}));
  EXPECT_EQ(make(tiny_tokenizer(false, /*ignore_merges=*/true))->encode("abcd", false), (Ids{15}));
}

TEST(TokenizerBpe, Gpt2StyleByteLevelWithPrefixSpace) {
  // ByteLevel alone with use_regex (the GPT-2 pattern) and add_prefix_space: every text segment
  // between added tokens gets a leading space, as in HF.
  json j = tiny_tokenizer(false);
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  const auto tok = make(j);
  EXPECT_EQ(tok->encode("a", false), (Ids{9}));                      // " a" -> Ġ a -> Ġa
  EXPECT_EQ(tok->encode("ab<|x|>a", false), (Ids{4, 6, 16, 9}));     // " ab" -> Ġ ab; <|x|>; " a" -> Ġa
  EXPECT_EQ(tok->encode(" a", false), (Ids{9}));                     // already starts with a space
}

TEST(TokenizerBpe, AddedTokensAreSplitOutFirst) {
  const auto tok = make(tiny_tokenizer(false));
  EXPECT_EQ(tok->encode("ab<|x|>cd", false), (Ids{6, 16, 10}));
  EXPECT_EQ(tok->encode("<y>abc<y>", false), (Ids{17, 7, 17}));
  // parse_special=false keeps special tokens as text ("<", "|" are not in this vocabulary and are
  // dropped, as HF does without an unk token) but still splits non-special added tokens.
  EXPECT_EQ(tok->encode("<|x|><y>", false, /*parse_special=*/false), (Ids{17}));
  EXPECT_EQ(tok->encode("ab", /*add_special=*/true), (Ids{18, 6, 19}));
  EXPECT_EQ(tok->encode("", /*add_special=*/true), (Ids{18, 19}));
}

TEST(TokenizerBpe, DecodeIsByteLevel) {
  const auto tok = make(tiny_tokenizer(false));
  EXPECT_EQ(tok->decode(Ids{4, 7, 16, 17, 14}, /*skip_special=*/false), " abc<|x|><y>\u00e9");
  EXPECT_EQ(tok->decode(Ids{4, 7, 16, 17, 14}, /*skip_special=*/true), " abc<y>\u00e9");
  // Half of é alone is not UTF-8: U+FFFD in decode, the raw byte in id_to_bytes.
  EXPECT_EQ(tok->decode(Ids{12}, false), "\uFFFD");
  EXPECT_EQ(tok->id_to_bytes(12), "\xC3");
  EXPECT_EQ(tok->id_to_bytes(4), " ");
  for (const std::string s : {"abcd", " a bc!", "aaa \u00e9", "<|x|>ab<y>"}) {
    EXPECT_EQ(tok->decode(tok->encode(s, false), false), s) << s;
  }
  EXPECT_THROW(tok->decode(Ids{20}, false), keel::Error);
  EXPECT_THROW(tok->decode(Ids{-1}, false), keel::Error);
}

TEST(TokenizerBpe, VocabularyAccessors) {
  const auto tok = make(tiny_tokenizer(false));
  EXPECT_EQ(tok->kind(), "hf_bpe");
  EXPECT_EQ(tok->source(), "tiny/tokenizer.json");
  EXPECT_EQ(tok->vocab_size(), 20);
  EXPECT_EQ(tok->id_to_piece(9), "Ġa");
  EXPECT_EQ(tok->piece_to_id("Ġa"), 9);
  EXPECT_EQ(tok->piece_to_id("<|x|>"), 16);
  EXPECT_EQ(tok->piece_to_id("zz"), kNoToken);
  EXPECT_TRUE(tok->is_special(16));
  EXPECT_FALSE(tok->is_special(17));
  EXPECT_FALSE(tok->is_special(6));
  EXPECT_EQ(tok->special_tokens(), (std::vector<std::string>{"<|x|>", "<s>", "</s>"}));
  // Without tokenizer_config.json: BOS from the template, EOS by name (</s>), no PAD.
  EXPECT_EQ(tok->bos_id(), 18);
  EXPECT_EQ(tok->eos_id(), 19);
  EXPECT_EQ(tok->pad_id(), kNoToken);
  // With one: its tokens win, in both spellings.
  const auto cfg = make(tiny_tokenizer(false), R"({"bos_token": null, "eos_token": "<|x|>", "pad_token": {"content": "<y>"}})");
  EXPECT_EQ(cfg->bos_id(), kNoToken);
  EXPECT_EQ(cfg->eos_id(), 16);
  EXPECT_EQ(cfg->pad_id(), 17);
}

TEST(TokenizerBpe, TokenizeDebugShowsPiecesAndBytes) {
  const auto tok = make(tiny_tokenizer(false));
  const std::string out = tokenize_debug(*tok, " abc<|x|>\u00e9");
  EXPECT_THAT(out, testing::StartsWith("4 tokens"));  // Ġ abc <|x|> Ã©
  EXPECT_THAT(out, testing::HasSubstr("\"Ġ\""));
  EXPECT_THAT(out, testing::HasSubstr("\" \""));
  EXPECT_THAT(out, testing::HasSubstr("\"<|x|>\""));
  EXPECT_THAT(out, testing::HasSubstr("(special)"));
  EXPECT_THAT(out, testing::HasSubstr("\"\u00e9\""));
  EXPECT_EQ(escape_for_display("a\n\"\xC3"), "a\\n\\\"\\xC3");
}

// ---- heap merge loop vs. the obvious BPE ---------------------------------------------------------

// Slow BPE: repeatedly find the adjacent pair with the lowest rank (leftmost on ties) by a full
// scan, merge it, start over.
std::vector<std::string> slow_bpe(const std::string& word, const std::map<std::pair<std::string, std::string>, int>& ranks) {
  std::vector<std::string> sym;
  for (char c : word) sym.emplace_back(1, c);
  while (true) {
    int best = -1, best_rank = 1 << 30;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      auto it = ranks.find({sym[i], sym[i + 1]});
      if (it != ranks.end() && it->second < best_rank) best = static_cast<int>(i), best_rank = it->second;
    }
    if (best < 0) return sym;
    sym[static_cast<size_t>(best)] += sym[static_cast<size_t>(best) + 1];
    sym.erase(sym.begin() + best + 1);
  }
}

TEST(TokenizerBpe, HeapMergesMatchSlowReferenceOnRandomTables) {
  for (uint32_t seed = 0; seed < 60; ++seed) {
    std::mt19937 rng(seed);
    const std::string alphabet = seed % 2 ? "ab" : "abcd";  // tiny alphabets force long merge chains
    // Random merges over pieces built so far; every merged piece enters the vocabulary.
    std::vector<std::string> pieces;
    for (char c : alphabet) pieces.emplace_back(1, c);
    std::map<std::pair<std::string, std::string>, int> ranks;
    json merges = json::array();
    const int n_merges = 5 + static_cast<int>(rng() % 40);
    for (int r = 0; r < n_merges; ++r) {
      const std::string& l = pieces[rng() % pieces.size()];
      const std::string& rr = pieces[rng() % pieces.size()];
      if (l.size() + rr.size() > 8 || ranks.count({l, rr})) continue;
      ranks.emplace(std::pair{l, rr}, static_cast<int>(merges.size()));
      merges.push_back(json::array({l, rr}));
      const std::string m = l + rr;
      if (std::find(pieces.begin(), pieces.end(), m) == pieces.end()) pieces.push_back(m);
    }
    json vocab = json::object();
    for (size_t i = 0; i < pieces.size(); ++i) vocab[pieces[i]] = i;
    // No pre-tokenizer: the whole text is one word; no decoder (pieces joined by spaces).
    const json j = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"unk_token", "a"}}}};
    const auto tok = parse_hf_tokenizer_json(j.dump(), "random.json");
    for (int w = 0; w < 10; ++w) {
      std::string word;
      const size_t len = 1 + rng() % 40;
      for (size_t k = 0; k < len; ++k) word += alphabet[rng() % alphabet.size()];
      Ids want;
      for (const std::string& p : slow_bpe(word, ranks)) want.push_back(vocab[p].get<int64_t>());
      ASSERT_EQ(tok->encode(word, false), want) << "seed " << seed << " word " << word;
    }
  }
}

}  // namespace
}  // namespace keel::models
