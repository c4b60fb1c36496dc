// Unicode helpers: character classes, UTF-8 decoding, NFC and lossy UTF-8 repair. NFC and the lossy
// repair are also compared with independent implementations (V8/ICU String.normalize and the WHATWG
// TextDecoder) on a few hundred generated cases stored in tokenizer_parity/reference.json.
#include "models/tokenizer_unicode.h"

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace keel::models::unicode {
namespace {

const nlohmann::json& reference() {
  static const nlohmann::json ref = [] {
    std::ifstream in(std::string(KEEL_SOURCE_DIR) + "/tests/models/tokenizer_parity/reference.json");
    return nlohmann::json::parse(in);
  }();
  return ref;
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

TEST(TokenizerUnicode, CharacterClasses) {
  for (char32_t c : {U'a', U'Z', U'é', U'ß', U'Ж', U'λ', U'你', U'ｆ', U'ª', U'ʰ' /* Lm */, U'ا'}) EXPECT_TRUE(is_letter(c)) << std::hex << static_cast<uint32_t>(c);
  for (char32_t c : {U'0', U'9', U'٣', U'½', U'Ⅲ' /* Nl */, U'①', U'²'}) EXPECT_TRUE(is_number(c)) << std::hex << static_cast<uint32_t>(c);
  for (char32_t c : {U' ', U'\t', U'\n', U'\r', U'\v', U'\f', U'\u0085', U'\u00a0', U'\u2003', U'\u3000', U'\u2028'})
    EXPECT_TRUE(is_whitespace(c)) << std::hex << static_cast<uint32_t>(c);
  // Not letters: digits, marks, punctuation, symbols, emoji. Not numbers: letters. Not space: ZWSP, BOM.
  for (char32_t c : {U'1', U'\u0301', U'!', U'_', U'€', U'😀', U' '}) EXPECT_FALSE(is_letter(c)) << std::hex << static_cast<uint32_t>(c);
  for (char32_t c : {U'a', U'一', U'.'}) EXPECT_FALSE(is_number(c)) << std::hex << static_cast<uint32_t>(c);
  for (char32_t c : {U'\u200b', U'\ufeff', U'a', U'\u001c'}) EXPECT_FALSE(is_whitespace(c)) << std::hex << static_cast<uint32_t>(c);
  EXPECT_EQ(combining_class(U'a'), 0);
  EXPECT_EQ(combining_class(U'\u0301'), 230);
  EXPECT_EQ(combining_class(U'\u0323'), 220);
  EXPECT_STREQ(tables_version(), "14.0.0");
}

TEST(TokenizerUnicode, DecodeUtf8OffsetsAndInvalidBytes) {
  const std::string s = "a\xC3\xA9\xE4\xBD\xA0\xF0\x9F\x98\x80\xFF";  // a é 你 😀 <invalid>
  const auto cps = decode_utf8(s);
  ASSERT_EQ(cps.size(), 5u);
  EXPECT_EQ(cps[0].cp, U'a');
  EXPECT_EQ(cps[1].cp, U'é');
  EXPECT_EQ(cps[1].offset, 1u);
  EXPECT_EQ(cps[1].length, 2u);
  EXPECT_EQ(cps[2].cp, U'你');
  EXPECT_EQ(cps[3].cp, U'😀');
  EXPECT_EQ(cps[3].length, 4u);
  EXPECT_EQ(cps[4].cp, 0xFFFDu);
  EXPECT_EQ(cps[4].length, 1u);
  // Overlong and surrogate encodings are invalid byte by byte.
  EXPECT_EQ(decode_utf8("\xC0\x80").size(), 2u);
  EXPECT_EQ(decode_utf8("\xED\xA0\x80").size(), 3u);
  std::string round;
  for (const auto& c : cps) append_utf8(round, c.cp);
  EXPECT_EQ(round, "a\xC3\xA9\xE4\xBD\xA0\xF0\x9F\x98\x80\xEF\xBF\xBD");
}

TEST(TokenizerUnicode, NfcHandCases) {
  EXPECT_EQ(nfc("e\u0301"), "\u00e9");                  // e + acute -> é
  EXPECT_EQ(nfc("A\u030a\u0323"), "\u1ea0\u030a");      // reorder (ccc 220 before 230), then A+dot below
  EXPECT_EQ(nfc("\u1100\u1161\u11a8"), "\uac01");       // Hangul L V T -> 각
  EXPECT_EQ(nfc("\u212b"), "\u00c5");                   // Angstrom sign: singleton -> Å
  EXPECT_EQ(nfc("\u0958"), "\u0915\u093c");             // composition exclusion stays decomposed
  EXPECT_EQ(nfc("a\u0308\u0301"), "\u00e4\u0301");      // second mark blocked? no: ä then acute has no composite
  EXPECT_EQ(nfc("plain ascii"), "plain ascii");
  EXPECT_EQ(nfc("caf\u00e9"), "caf\u00e9");
  EXPECT_EQ(nfc("x\xFFy\u0301"), "x\xFF\u00fd");        // invalid bytes pass through; y + acute -> ý
}

TEST(TokenizerUnicode, NfcMatchesIcu) {
  size_t n = 0;
  for (const auto& c : reference()["nfc"]) {
    const std::string in = c[0].get<std::string>(), want = c[1].get<std::string>();
    EXPECT_EQ(nfc(in), want) << "case " << n;
    ++n;
  }
  EXPECT_EQ(n, 300u);
}

TEST(TokenizerUnicode, Utf8LossyHandCases) {
  EXPECT_EQ(utf8_lossy("ok \xC3\xA9"), "ok \xC3\xA9");
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98"), "\xEF\xBF\xBD");                                  // truncated emoji: one U+FFFD
  EXPECT_EQ(utf8_lossy("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(utf8_lossy("\xE0\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");          // E0 needs A0..BF next
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");          // surrogate
}

TEST(TokenizerUnicode, Utf8LossyMatchesTextDecoder) {
  size_t n = 0;
  for (const auto& c : reference()["lossy"]) {
    EXPECT_EQ(utf8_lossy(from_hex(c[0].get<std::string>())), c[1].get<std::string>()) << "bytes " << c[0];
    ++n;
  }
  EXPECT_EQ(n, 300u);
}

}  // namespace
}  // namespace keel::models::unicode
