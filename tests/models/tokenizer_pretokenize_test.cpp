// Pre-tokenizer splits (hand-checked cases with the regex alternative that produces each piece) and
// the byte-level alphabet. The same splitters are compared with JavaScript's RegExp on ~340
// strings per pattern in tokenizer_parity_test.cpp and below for GPT-2.
#include "models/tokenizer_pretokenize.h"

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "models/tokenizer_unicode.h"

namespace keel::models {
namespace {

std::vector<std::string> split(std::string_view s, SplitPattern p) {
  std::vector<std::string> out;
  for (std::string_view v : split_pretokens(s, p)) out.emplace_back(v);
  return out;
}
using V = std::vector<std::string>;

TEST(TokenizerPretokenize, PatternLookupIsExact) {
  for (SplitPattern p : {SplitPattern::kGpt2, SplitPattern::kCl100k, SplitPattern::kQwen2}) {
    EXPECT_EQ(split_pattern_from_regex(split_pattern_regex(p)), p) << split_pattern_name(p);
  }
  EXPECT_FALSE(split_pattern_from_regex("\\s+").has_value());
  EXPECT_FALSE(split_pattern_from_regex(std::string(split_pattern_regex(SplitPattern::kQwen2)) + " ").has_value());
}

TEST(TokenizerPretokenize, Cl100kHandCases) {
  const auto p = SplitPattern::kCl100k;
  // "Hello" \p{L}+; " world" [^\r\n\p{L}\p{N}]?\p{L}+; "!" [^\s\p{L}\p{N}]+.
  EXPECT_EQ(split("Hello world!", p), (V{"Hello", " world", "!"}));
  // Contractions are case-insensitive; "'x" is not one, so "'" joins the letters after it.
  EXPECT_EQ(split("I'M don't 'xyz", p), (V{"I", "'M", " don", "'t", " '", "xyz"}));
  // \p{N}{1,3}: digits in threes; the space before a digit stands alone (\s+ after (?!\S) fails).
  EXPECT_EQ(split("x 1234567", p), (V{"x", " ", "123", "456", "7"}));
  // \s*[\r\n]+ ends at the last newline of a whitespace run; \s+(?!\S) leaves the last space for
  // the next word.
  EXPECT_EQ(split("a  \n  b", p), (V{"a", "  \n", " ", " b"}));
  EXPECT_EQ(split("a   b", p), (V{"a", "  ", " b"}));
  EXPECT_EQ(split("end   ", p), (V{"end", "   "}));
  // "(x": one non-letter may lead a letter run; ");\n\n": ` ?[^\s\p{L}\p{N}]+[\r\n]*` keeps
  // trailing newlines with the punctuation.
  EXPECT_EQ(split("f(x);\n\ny", p), (V{"f", "(x", ");\n\n", "y"}));
  EXPECT_EQ(split(" ...", p), (V{" ..."}));
  // CJK letters form one run; emoji are "other".
  EXPECT_EQ(split("你好 世界🙂🙂", p), (V{"你好", " 世界", "🙂🙂"}));
  EXPECT_EQ(split("", p), V{});
}

TEST(TokenizerPretokenize, Qwen2DiffersOnlyInDigits) {
  EXPECT_EQ(split("x 1234", SplitPattern::kQwen2), (V{"x", " ", "1", "2", "3", "4"}));
  EXPECT_EQ(split("Hello world!", SplitPattern::kQwen2), (V{"Hello", " world", "!"}));
}

TEST(TokenizerPretokenize, Gpt2HandCases) {
  const auto p = SplitPattern::kGpt2;
  // Case-sensitive contractions; " ?\p{N}+" keeps all digits and the space.
  EXPECT_EQ(split("I'M don't x 1234", p), (V{"I", "'", "M", " don", "'t", " x", " 1234"}));
  // No \s*[\r\n]+ alternative: newlines are ordinary whitespace.
  EXPECT_EQ(split("a\n\n b", p), (V{"a", "\n\n", " b"}));
}

TEST(TokenizerPretokenize, PiecesCoverTheText) {
  const std::string s = "Mixed: 123 \t\n 你好, I'll go!!\r\n  end \xFF\xFE";
  for (SplitPattern p : {SplitPattern::kGpt2, SplitPattern::kCl100k, SplitPattern::kQwen2}) {
    std::string joined;
    for (std::string_view v : split_pretokens(s, p)) {
      EXPECT_FALSE(v.empty());
      joined += v;
    }
    EXPECT_EQ(joined, s) << split_pattern_name(p);
  }
}

TEST(TokenizerPretokenize, Gpt2MatchesJavaScriptRegex) {
  std::ifstream in(std::string(KEEL_SOURCE_DIR) + "/tests/models/tokenizer_parity/reference.json");
  const nlohmann::json ref = nlohmann::json::parse(in);
  const auto& strings = ref["strings"];
  const auto& want = ref["gpt2_pretokens"];
  ASSERT_EQ(strings.size(), want.size());
  for (size_t i = 0; i < strings.size(); ++i) {
    EXPECT_EQ(split(strings[i].get<std::string>(), SplitPattern::kGpt2), want[i].get<V>()) << "string " << i;
  }
}

TEST(TokenizerPretokenize, ByteLevelAlphabet) {
  // Printable bytes map to themselves; the 68 others to U+0100.. in byte order.
  EXPECT_EQ(byte_to_unicode('a'), "a");
  EXPECT_EQ(byte_to_unicode('!'), "!");
  EXPECT_EQ(byte_to_unicode(0x00), "\u0100");
  EXPECT_EQ(byte_to_unicode('\n'), "\u010a");  // Ċ
  EXPECT_EQ(byte_to_unicode(' '), "\u0120");   // Ġ = 256 + 32
  EXPECT_EQ(byte_to_unicode(0x7F), "\u0121");  // 256 + 33
  EXPECT_EQ(byte_to_unicode(0xA0), "\u0142");  // 256 + 33 + 33 (0x7F..0xA0 is 34 bytes)
  EXPECT_EQ(byte_to_unicode(0xAD), "\u0143");  // the last non-printable byte
  EXPECT_EQ(byte_to_unicode(0xC3), "\u00c3");
  // A bijection: all 256 distinct, and the inverse restores every byte.
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  const std::string mapped = bytes_to_unicode(all);
  EXPECT_EQ(unicode::decode_utf8(mapped).size(), 256u);
  std::string back;
  ASSERT_TRUE(unicode_to_bytes(mapped, back));
  EXPECT_EQ(back, all);
  std::string junk;
  EXPECT_FALSE(unicode_to_bytes("\u4f60", junk));  // 你 is outside the alphabet
}

}  // namespace
}  // namespace keel::models
