// load_tokenizer's choice of implementation, and the `keel tokenize` debug table.
#include "models/tokenizer.h"

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "models/tokenizer_bpe.h"
#include "models/tokenizer_sentencepiece.h"
#include "models/tokenizer_unicode.h"
#include "base/error.h"
#include "base/hub_name.h"

namespace keel::models {

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(path);
  if (path.empty()) fail("tokenizer path is empty");
  if (looks_like_hub_name(path)) fail("tokenizer path {}", hub_name_message(path, "give"));
  if (!fs::exists(p, ec)) fail("tokenizer path '{}' does not exist", path);
  if (fs::is_directory(p, ec)) {
    if (fs::exists(p / "tokenizer.json", ec)) return load_hf_tokenizer_json((p / "tokenizer.json").string());
    if (fs::exists(p / "tokenizer.model", ec)) return load_sentencepiece_model((p / "tokenizer.model").string());
    fail("model directory '{}' has neither tokenizer.json nor tokenizer.model", path);
  }
  const std::string ext = p.extension().string();
  if (ext == ".json") return load_hf_tokenizer_json(path);
  if (ext == ".model") return load_sentencepiece_model(path);
  // Unknown extension: JSON starts with '{' (after whitespace); a SentencePiece proto never does
  // (its first byte is a field tag, 0x0A).
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open tokenizer file '{}'", path);
  char c = 0;
  while (in.get(c) && (c == ' ' || c == '\n' || c == '\r' || c == '\t')) {
  }
  if (!in) fail("{}: file is empty", path);
  return c == '{' ? load_hf_tokenizer_json(path) : load_sentencepiece_model(path);
}

std::string escape_for_display(std::string_view bytes) {
  std::string out;
  for (const unicode::CodePoint& c : unicode::decode_utf8(bytes)) {
    const auto b = static_cast<unsigned char>(bytes[c.offset]);
    if (c.cp == 0xFFFD && c.length == 1 && b >= 0x80) {
      out += fmt::format("\\x{:02X}", b);
    } else if (c.cp == '\n') {
      out += "\\n";
    } else if (c.cp == '\t') {
      out += "\\t";
    } else if (c.cp == '\r') {
      out += "\\r";
    } else if (c.cp == '\\' || c.cp == '"') {
      out += '\\';
      out += static_cast<char>(c.cp);
    } else if (c.cp < 0x20 || c.cp == 0x7F) {
      out += fmt::format("\\x{:02X}", b);
    } else {
      out.append(bytes.substr(c.offset, c.length));
    }
  }
  return out;
}

std::string tokenize_debug(const Tokenizer& tokenizer, std::string_view text, bool add_special) {
  const std::vector<int64_t> ids = tokenizer.encode(text, add_special, /*parse_special=*/true);
  std::string out = fmt::format("{} tokens ({} bytes of text, tokenizer {} '{}')\n", ids.size(), text.size(),
                                tokenizer.kind(), tokenizer.source());
  out += fmt::format("{:>5}  {:>8}  {:<24}  {}\n", "pos", "id", "piece", "bytes");
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string piece = fmt::format("\"{}\"", escape_for_display(tokenizer.id_to_piece(ids[i])));
    out += fmt::format("{:>5}  {:>8}  {:<24}  \"{}\"{}\n", i, ids[i], piece,
                       escape_for_display(tokenizer.id_to_bytes(ids[i])),
                       tokenizer.is_special(ids[i]) ? "  (special)" : "");
  }
  return out;
}

}  // namespace keel::models
