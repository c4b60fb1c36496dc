// HF tokenizer.json byte-level BPE. The pipeline, in the order HF tokenizers runs it for one text:
//   1. split out added tokens (leftmost-longest match on the raw text),
//   2. normalize each remaining segment (NFC or nothing),
//   3. pre-tokenize: Split regex (hand-written, tokenizer_pretokenize.h), then ByteLevel mapping,
//   4. BPE each piece: merge the lowest-rank adjacent pair, leftmost first, until none applies,
//   5. post-process: the TemplateProcessing "single" template around the ids (add_special only).
// Decoding maps pieces back to bytes (ByteLevel decoder) and repairs invalid UTF-8 with U+FFFD.
#include "models/tokenizer_bpe.h"

#include <array>
#include <fstream>
#include <queue>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "models/tokenizer_pretokenize.h"
#include "models/tokenizer_unicode.h"
#include "base/error.h"

namespace keel::models {
namespace {

using json = nlohmann::json;

struct AddedToken {
  std::string content;
  int64_t id = kNoToken;
  bool special = false;
  bool lstrip = false, rstrip = false, single_word = false;
};

struct PreStep {
  enum class Kind { kSplit, kByteLevel } kind;
  SplitPattern pattern = SplitPattern::kGpt2;  // kSplit; kByteLevel with use_regex uses kGpt2
  bool add_prefix_space = false;               // kByteLevel
  bool use_regex = false;                      // kByteLevel
};

struct MergeInfo {
  int32_t rank;
  int64_t merged_id;
};

// Heterogeneous lookup: find() with a string_view without building a std::string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using PieceMap = std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>>;

uint64_t pair_key(int64_t a, int64_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b); }

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open {} '{}'", what, path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail("cannot read {} '{}'", what, path);
  return ss.str();
}

// Field access with errors that name the file and the JSON path.
const json& member(const json& obj, const char* key, const std::string& src, const std::string& where) {
  if (!obj.is_object()) fail("{}: {} is not a JSON object", src, where.empty() ? "the top level" : where);
  auto it = obj.find(key);
  if (it == obj.end()) fail("{}: missing field {}/{}", src, where, key);
  return *it;
}

bool opt_bool(const json& obj, const char* key, bool dflt, const std::string& src, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return dflt;
  if (!it->is_boolean()) fail("{}: {}/{} must be true or false, got {}", src, where, key, it->dump());
  return it->get<bool>();
}

std::string type_of(const json& obj, const std::string& src, const std::string& where) {
  const json& t = member(obj, "type", src, where);
  if (!t.is_string()) fail("{}: {}/type must be a string, got {}", src, where, t.dump());
  return t.get<std::string>();
}

// A bos_token / eos_token / pad_token entry of tokenizer_config.json: null, "text" or {"content": "text"}.
std::optional<std::string> config_token(const json& cfg, const char* key, const std::string& src) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  fail("{}: {} must be a string or {{\"content\": ...}}, got {}", src, key, it->dump());
}

class HfBpeTokenizer final : public Tokenizer {
 public:
  HfBpeTokenizer(const json& root, const std::string& src, const json* cfg, const std::string& cfg_src);

  std::vector<int64_t> encode(std::string_view text, bool add_special, bool parse_special) const override;
  std::string decode(std::span<const int64_t> ids, bool skip_special) const override;
  std::string id_to_bytes(int64_t id) const override;
  std::string id_to_piece(int64_t id) const override {
    check_id(id);
    return pieces_[static_cast<size_t>(id)];
  }
  int64_t piece_to_id(std::string_view piece) const override {
    auto it = ids_.find(piece);
    return it == ids_.end() ? kNoToken : it->second;
  }
  int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()); }
  int64_t bos_id() const override { return bos_; }
  int64_t eos_id() const override { return eos_; }
  int64_t pad_id() const override { return pad_; }
  bool is_special(int64_t id) const override {
    check_id(id);
    return special_[static_cast<size_t>(id)] != 0;
  }
  std::vector<std::string> special_tokens() const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < pieces_.size(); ++i)
      if (special_[i]) out.push_back(pieces_[i]);
    return out;
  }
  std::string kind() const override { return "hf_bpe"; }
  std::string source() const override { return source_; }

 private:
  void load_model(const json& model);
  void load_added_tokens(const json& added);
  void load_normalizer(const json& n, const std::string& where);
  void load_pre_tokenizer(const json& p, const std::string& where);
  void load_decoder(const json& d, const std::string& where);
  void load_post_processor(const json& p, const std::string& where);
  void resolve_special_ids(const json* cfg, const std::string& cfg_src);

  void check_id(int64_t id) const {
    if (id < 0 || id >= vocab_size())
      fail("token id {} is out of range for tokenizer '{}' (vocab_size {})", id, source_, vocab_size());
  }
  void encode_text(std::string_view text, std::vector<int64_t>& out) const;
  void bpe(const std::string& word, std::vector<int64_t>& out) const;

  std::string source_;
  PieceMap ids_;                                  // piece -> id (model vocab and added tokens)
  std::vector<std::string> pieces_;               // [V] id -> piece ("" for unused ids)
  std::vector<uint8_t> special_;                  // [V] 1 for added tokens marked special
  std::unordered_map<uint64_t, MergeInfo> merges_;
  std::vector<AddedToken> added_;
  std::array<std::vector<size_t>, 256> added_by_byte_;  // first byte -> indices, longest first
  bool nfc_ = false;
  std::vector<PreStep> pre_;
  bool byte_level_ = false;  // a ByteLevel pre-tokenizer maps bytes to its 256-char alphabet
  bool byte_level_decoder_ = false;
  std::vector<int64_t> prefix_, suffix_;  // post-processor template around one sequence
  int64_t unk_ = kNoToken;
  bool byte_fallback_ = false, ignore_merges_ = false, fuse_unk_ = false;
  std::array<int64_t, 256> byte_ids_{};  // <0xXX> ids for byte_fallback
  int64_t bos_ = kNoToken, eos_ = kNoToken, pad_ = kNoToken;
};

HfBpeTokenizer::HfBpeTokenizer(const json& root, const std::string& src, const json* cfg,
                               const std::string& cfg_src)
    : source_(src) {
  if (!root.is_object()) fail("{}: expected a JSON object at the top level (a HF tokenizer.json)", src);
  load_model(member(root, "model", src, ""));
  if (auto it = root.find("added_tokens"); it != root.end() && !it->is_null()) load_added_tokens(*it);
  if (auto it = root.find("normalizer"); it != root.end()) load_normalizer(*it, "/normalizer");
  if (auto it = root.find("pre_tokenizer"); it != root.end()) load_pre_tokenizer(*it, "/pre_tokenizer");
  if (auto it = root.find("decoder"); it != root.end()) load_decoder(*it, "/decoder");
  if (auto it = root.find("post_processor"); it != root.end())
    load_post_processor(*it, "/post_processor");
  if (!byte_level_ && !byte_fallback_) {
    // Without the byte-level alphabet, characters missing from the vocabulary would be dropped.
    if (unk_ == kNoToken)
      fail("{}: no ByteLevel pre-tokenizer, no byte_fallback and no unk_token — characters outside "
           "the vocabulary could not be encoded (only byte-level BPE tokenizers are supported)",
           src);
  }
  resolve_special_ids(cfg, cfg_src);
}

void HfBpeTokenizer::load_model(const json& model) {
  const std::string& s = source_;
  const std::string type = model.is_object() && model.contains("type") ? type_of(model, s, "/model") : "BPE";
  if (type != "BPE") fail("{}: model type '{}' is not supported (only BPE)", s, type);
  if (auto it = model.find("dropout"); it != model.end() && !it->is_null() && it->get<double>() != 0.0)
    fail("{}: /model/dropout {} is not supported (BPE dropout is a training-time augmentation)", s, it->dump());
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = model.find(k);
    if (it != model.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty()))
      fail("{}: /model/{} {} is not supported", s, k, it->dump());
  }
  byte_fallback_ = opt_bool(model, "byte_fallback", false, s, "/model");
  ignore_merges_ = opt_bool(model, "ignore_merges", false, s, "/model");
  fuse_unk_ = opt_bool(model, "fuse_unk", false, s, "/model");

  const json& vocab = member(model, "vocab", s, "/model");
  if (!vocab.is_object()) fail("{}: /model/vocab must be an object {{\"piece\": id}}", s);
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0)
      fail("{}: /model/vocab/{} must be a non-negative integer id, got {}", s, it.key(), it.value().dump());
    max_id = std::max(max_id, it.value().get<int64_t>());
  }
  pieces_.assign(static_cast<size_t>(max_id + 1), std::string());
  std::vector<uint8_t> seen(pieces_.size(), 0);
  ids_.reserve(vocab.size() * 2);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int64_t id = it.value().get<int64_t>();
    if (seen[static_cast<size_t>(id)])
      fail("{}: /model/vocab: id {} is given to both '{}' and '{}'", s, id, pieces_[static_cast<size_t>(id)], it.key());
    seen[static_cast<size_t>(id)] = 1;
    pieces_[static_cast<size_t>(id)] = it.key();
    ids_.emplace(it.key(), id);
  }

  if (auto it = model.find("unk_token"); it != model.end() && !it->is_null()) {
    if (!it->is_string()) fail("{}: /model/unk_token must be a string or null", s);
    auto u = ids_.find(it->get<std::string>());
    if (u == ids_.end()) fail("{}: /model/unk_token '{}' is not in /model/vocab", s, it->get<std::string>());
    unk_ = u->second;
  }
  byte_ids_.fill(kNoToken);
  if (byte_fallback_) {
    for (int b = 0; b < 256; ++b) {
      auto u = ids_.find(fmt::format("<0x{:02X}>", b));
      if (u != ids_.end()) byte_ids_[static_cast<size_t>(b)] = u->second;
    }
  }

  // Merges: "a b" strings (older files) or ["a", "b"] pairs (tokenizers >= 0.20). Rank = position.
  const json& merges = member(model, "merges", s, "/model");
  if (!merges.is_array()) fail("{}: /model/merges must be an array", s);
  merges_.reserve(merges.size() * 2);
  std::string ab;
  for (size_t r = 0; r < merges.size(); ++r) {
    const json& m = merges[r];
    std::string_view a, b;
    if (m.is_string()) {
      const std::string_view line = m.get_ref<const std::string&>();
      const size_t sp = line.find(' ');
      if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos || sp == 0 || sp + 1 == line.size())
        fail("{}: /model/merges/{}: expected \"left right\" (two pieces and one space), got {}", s, r, m.dump());
      a = line.substr(0, sp);
      b = line.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get_ref<const std::string&>();
      b = m[1].get_ref<const std::string&>();
    } else {
      fail("{}: /model/merges/{}: expected \"left right\" or [\"left\", \"right\"], got {}", s, r, m.dump());
    }
    ab.assign(a);
    ab.append(b);
    auto ia = ids_.find(a), ib = ids_.find(b), iab = ids_.find(std::string_view(ab));
    if (ia == ids_.end() || ib == ids_.end())
      fail("{}: /model/merges/{}: piece '{}' is not in /model/vocab", s, r, ia == ids_.end() ? a : b);
    if (iab == ids_.end())
      fail("{}: /model/merges/{}: merged piece '{}' is not in /model/vocab", s, r, ab);
    // The first occurrence of a pair keeps its (lower) rank, as in HF.
    merges_.emplace(pair_key(ia->second, ib->second), MergeInfo{static_cast<int32_t>(r), iab->second});
  }
}

void HfBpeTokenizer::load_added_tokens(const json& added) {
  const std::string& s = source_;
  if (!added.is_array()) fail("{}: /added_tokens must be an array", s);
  for (size_t i = 0; i < added.size(); ++i) {
    const std::string where = fmt::format("/added_tokens/{}", i);
    const json& t = added[i];
    const json& id = member(t, "id", s, where);
    const json& content = member(t, "content", s, where);
    if (!id.is_number_integer() || id.get<int64_t>() < 0)
      fail("{}: {}/id must be a non-negative integer, got {}", s, where, id.dump());
    if (!content.is_string() || content.get<std::string>().empty())
      fail("{}: {}/content must be a non-empty string, got {}", s, where, content.dump());
    AddedToken a;
    a.content = content.get<std::string>();
    a.id = id.get<int64_t>();
    a.special = opt_bool(t, "special", false, s, where);
    a.lstrip = opt_bool(t, "lstrip", false, s, where);
    a.rstrip = opt_bool(t, "rstrip", false, s, where);
    a.single_word = opt_bool(t, "single_word", false, s, where);
    // [interp] every added token is matched on the raw text, also those with "normalized": true;
    // this differs from HF only when the normalizer would change the token's own text.
    if (static_cast<size_t>(a.id) >= pieces_.size()) pieces_.resize(static_cast<size_t>(a.id) + 1);
    pieces_[static_cast<size_t>(a.id)] = a.content;
    ids_[a.content] = a.id;
    added_.push_back(a);
  }
  special_.assign(pieces_.size(), 0);
  for (const AddedToken& a : added_) {
    if (a.special) special_[static_cast<size_t>(a.id)] = 1;
  }
  for (size_t i = 0; i < added_.size(); ++i)
    added_by_byte_[static_cast<unsigned char>(added_[i].content[0])].push_back(i);
  for (auto& v : added_by_byte_) {
    std::stable_sort(v.begin(), v.end(),
                     [&](size_t x, size_t y) { return added_[x].content.size() > added_[y].content.size(); });
  }
}

void HfBpeTokenizer::load_normalizer(const json& n, const std::string& where) {
  if (n.is_null()) return;
  const std::string type = type_of(n, source_, where);
  if (type == "NFC") {
    nfc_ = true;
  } else if (type == "Sequence") {
    const json& list = member(n, "normalizers", source_, where);
    if (!list.is_array()) fail("{}: {}/normalizers must be an array", source_, where);
    for (size_t i = 0; i < list.size(); ++i) load_normalizer(list[i], fmt::format("{}/normalizers/{}", where, i));
  } else {
    fail("{}: {}: normalizer type '{}' is not supported (supported: NFC, Sequence)", source_, where, type);
  }
}

void HfBpeTokenizer::load_pre_tokenizer(const json& p, const std::string& where) {
  if (p.is_null()) return;
  const std::string type = type_of(p, source_, where);
  if (type == "Sequence") {
    const json& list = member(p, "pretokenizers", source_, where);
    if (!list.is_array()) fail("{}: {}/pretokenizers must be an array", source_, where);
    for (size_t i = 0; i < list.size(); ++i) load_pre_tokenizer(list[i], fmt::format("{}/pretokenizers/{}", where, i));
    return;
  }
  if (byte_level_) fail("{}: {}: a pre-tokenizer after ByteLevel is not supported", source_, where);
  if (type == "Split") {
    const json& pat = member(p, "pattern", source_, where);
    std::string regex;
    if (pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string()) regex = pat["Regex"].get<std::string>();
    else fail("{}: {}/pattern: only {{\"Regex\": ...}} patterns are supported, got {}", source_, where, pat.dump());
    const auto known = split_pattern_from_regex(regex);
    if (!known)
      fail("{}: {}/pattern: split regex {} is not one keel implements (supported: the GPT-2, "
           "cl100k/Llama-3 and Qwen2 patterns)", source_, where, pat["Regex"].dump());
    const json& beh = member(p, "behavior", source_, where);
    if (beh != "Isolated") fail("{}: {}/behavior {} is not supported (only \"Isolated\")", source_, where, beh.dump());
    if (opt_bool(p, "invert", false, source_, where)) fail("{}: {}/invert true is not supported", source_, where);
    pre_.push_back({PreStep::Kind::kSplit, *known, false, false});
  } else if (type == "ByteLevel") {
    PreStep st{PreStep::Kind::kByteLevel, SplitPattern::kGpt2, false, false};
    st.add_prefix_space = opt_bool(p, "add_prefix_space", false, source_, where);
    st.use_regex = opt_bool(p, "use_regex", true, source_, where);
    pre_.push_back(st);
    byte_level_ = true;
  } else {
    fail("{}: {}: pre-tokenizer type '{}' is not supported (supported: Split, ByteLevel, Sequence)",
         source_, where, type);
  }
}

void HfBpeTokenizer::load_decoder(const json& d, const std::string& where) {
  if (d.is_null()) return;
  const std::string type = type_of(d, source_, where);
  if (type == "ByteLevel") {
    byte_level_decoder_ = true;
  } else {
    fail("{}: {}: decoder type '{}' is not supported (supported: ByteLevel)", source_, where, type);
  }
}

void HfBpeTokenizer::load_post_processor(const json& p, const std::string& where) {
  if (p.is_null()) return;
  const std::string type = type_of(p, source_, where);
  if (type == "ByteLevel") return;  // offsets only
  if (type == "Sequence") {
    const json& list = member(p, "processors", source_, where);
    if (!list.is_array()) fail("{}: {}/processors must be an array", source_, where);
    for (size_t i = 0; i < list.size(); ++i) load_post_processor(list[i], fmt::format("{}/processors/{}", where, i));
    return;
  }
  if (type != "TemplateProcessing")
    fail("{}: {}: post-processor type '{}' is not supported (supported: TemplateProcessing, ByteLevel, "
         "Sequence)", source_, where, type);
  const json& single = member(p, "single", source_, where);
  const json& specials = member(p, "special_tokens", source_, where);
  if (!single.is_array()) fail("{}: {}/single must be an array", source_, where);
  bool seen_a = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const json& item = single[i];
    const std::string w = fmt::format("{}/single/{}", where, i);
    if (item.is_object() && item.contains("Sequence")) {
      seen_a = true;
    } else if (item.is_object() && item.contains("SpecialToken")) {
      const std::string name = member(item["SpecialToken"], "id", source_, w + "/SpecialToken").get<std::string>();
      const json& entry = member(specials, name.c_str(), source_, where + "/special_tokens");
      const json& ids = member(entry, "ids", source_, where + "/special_tokens/" + name);
      for (const json& id : ids) {
        if (!id.is_number_integer()) fail("{}: {}/special_tokens/{}/ids must hold integers", source_, where, name);
        (seen_a ? suffix_ : prefix_).push_back(id.get<int64_t>());
      }
    } else {
      fail("{}: {}: expected {{\"Sequence\": ...}} or {{\"SpecialToken\": ...}}, got {}", source_, w, item.dump());
    }
  }
  for (int64_t id : prefix_) check_id(id);
  for (int64_t id : suffix_) check_id(id);
}

void HfBpeTokenizer::resolve_special_ids(const json* cfg, const std::string& cfg_src) {
  special_.resize(pieces_.size(), 0);
  auto lookup = [&](const std::string& tok, const char* key) {
    auto it = ids_.find(tok);
    if (it == ids_.end()) fail("{}: {} '{}' is not a token of '{}'", cfg_src, key, tok, source_);
    return it->second;
  };
  if (cfg) {
    if (!cfg->is_object()) fail("{}: expected a JSON object at the top level", cfg_src);
    if (auto t = config_token(*cfg, "bos_token", cfg_src)) bos_ = lookup(*t, "bos_token");
    if (auto t = config_token(*cfg, "eos_token", cfg_src)) eos_ = lookup(*t, "eos_token");
    if (auto t = config_token(*cfg, "pad_token", cfg_src)) pad_ = lookup(*t, "pad_token");
    return;
  }
  if (!prefix_.empty()) bos_ = prefix_.front();
  for (const char* name : {"<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"}) {
    if (auto it = ids_.find(name); it != ids_.end()) {
      eos_ = it->second;
      break;
    }
  }
}

std::vector<int64_t> HfBpeTokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int64_t> out;
  if (add_special) out = prefix_;
  // Split out added tokens: leftmost match, longest first at each position.
  size_t seg_begin = 0;  // start of the pending ordinary-text segment
  size_t i = 0;
  auto is_word = [](char32_t c) { return c == '_' || unicode::is_letter(c) || unicode::is_number(c); };
  while (i < text.size()) {
    const AddedToken* hit = nullptr;
    for (size_t k : added_by_byte_[static_cast<unsigned char>(text[i])]) {
      const AddedToken& a = added_[k];
      if (a.special && !parse_special) continue;
      if (text.compare(i, a.content.size(), a.content) != 0) continue;
      if (a.single_word) {
        const auto before = unicode::decode_utf8(text.substr(i >= 4 ? i - 4 : 0, std::min<size_t>(i, 4)));
        const auto after = unicode::decode_utf8(text.substr(i + a.content.size(), 4));
        if ((!before.empty() && is_word(before.back().cp)) || (!after.empty() && is_word(after.front().cp))) continue;
      }
      hit = &a;
      break;
    }
    if (!hit) {
      ++i;
      continue;
    }
    size_t seg_end = i, next = i + hit->content.size();
    if (hit->lstrip) {
      while (seg_end > seg_begin && unicode::is_whitespace(static_cast<unsigned char>(text[seg_end - 1]))) --seg_end;
    }
    if (hit->rstrip) {
      while (next < text.size() && unicode::is_whitespace(static_cast<unsigned char>(text[next]))) ++next;
    }
    encode_text(text.substr(seg_begin, seg_end - seg_begin), out);
    out.push_back(hit->id);
    seg_begin = i = next;
  }
  encode_text(text.substr(seg_begin), out);
  if (add_special) out.insert(out.end(), suffix_.begin(), suffix_.end());
  return out;
}

void HfBpeTokenizer::encode_text(std::string_view text, std::vector<int64_t>& out) const {
  if (text.empty()) return;
  const std::string normalized = nfc_ ? unicode::nfc(text) : std::string(text);
  std::vector<std::string> pieces{normalized};
  for (const PreStep& st : pre_) {
    std::vector<std::string> next;
    for (std::string& p : pieces) {
      if (st.kind == PreStep::Kind::kByteLevel && st.add_prefix_space && (p.empty() || p[0] != ' ')) p = ' ' + p;
      const bool split = st.kind == PreStep::Kind::kSplit || st.use_regex;
      if (!split) {
        next.push_back(std::move(p));
        continue;
      }
      for (std::string_view v : split_pretokens(p, st.pattern)) next.emplace_back(v);
    }
    pieces = std::move(next);
  }
  for (const std::string& p : pieces) {
    if (p.empty()) continue;
    bpe(byte_level_ ? bytes_to_unicode(p) : p, out);
  }
}

void HfBpeTokenizer::bpe(const std::string& word, std::vector<int64_t>& out) const {
  if (ignore_merges_) {
    if (auto it = ids_.find(std::string_view(word)); it != ids_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  // Initial symbols: one per character (vocabulary lookup), with unk / byte fallback.
  std::vector<int64_t> sym;
  sym.reserve(word.size());
  for (const unicode::CodePoint& c : unicode::decode_utf8(word)) {
    const std::string_view ch = std::string_view(word).substr(c.offset, c.length);
    if (auto it = ids_.find(ch); it != ids_.end()) {
      sym.push_back(it->second);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char b : ch) all = all && byte_ids_[b] != kNoToken;
      if (all) {
        for (unsigned char b : ch) sym.push_back(byte_ids_[b]);
        continue;
      }
    }
    if (unk_ == kNoToken) continue;  // HF drops characters it cannot represent
    if (fuse_unk_ && !sym.empty() && sym.back() == unk_) continue;
    sym.push_back(unk_);
  }
  const int n = static_cast<int>(sym.size());
  if (n <= 1) {
    out.insert(out.end(), sym.begin(), sym.end());
    return;
  }
  // Doubly linked list over sym, and a min-heap of candidate merges ordered by (rank, position):
  // the lowest rank merges first, the leftmost among equal ranks. Entries go stale when a
  // neighbour merges; they are re-validated when popped.
  std::vector<int> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
  std::vector<uint8_t> alive(static_cast<size_t>(n), 1);
  for (int k = 0; k < n; ++k) {
    prev[static_cast<size_t>(k)] = k - 1;
    next[static_cast<size_t>(k)] = k + 1 < n ? k + 1 : -1;
  }
  struct Cand {
    int32_t rank;
    int pos, right;
    int64_t left_id, right_id, merged;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int l) {
    if (l < 0) return;
    const int r = next[static_cast<size_t>(l)];
    if (r < 0) return;
    const int64_t a = sym[static_cast<size_t>(l)], b = sym[static_cast<size_t>(r)];
    auto it = merges_.find(pair_key(a, b));
    if (it != merges_.end()) heap.push({it->second.rank, l, r, a, b, it->second.merged_id});
  };
  for (int k = 0; k + 1 < n; ++k) push(k);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    const auto l = static_cast<size_t>(c.pos), r = static_cast<size_t>(c.right);
    if (!alive[l] || !alive[r] || next[l] != c.right || sym[l] != c.left_id || sym[r] != c.right_id) continue;
    sym[l] = c.merged;
    alive[r] = 0;
    next[l] = next[r];
    if (next[r] >= 0) prev[static_cast<size_t>(next[r])] = c.pos;
    push(prev[l]);
    push(c.pos);
  }
  for (int k = 0; k >= 0; k = next[static_cast<size_t>(k)]) out.push_back(sym[static_cast<size_t>(k)]);
}

std::string HfBpeTokenizer::id_to_bytes(int64_t id) const {
  check_id(id);
  const std::string& piece = pieces_[static_cast<size_t>(id)];
  if (byte_level_decoder_) {
    std::string bytes;
    if (unicode_to_bytes(piece, bytes)) return bytes;
  }
  return piece;  // added tokens outside the byte alphabet decode to their own text, as in HF
}

std::string HfBpeTokenizer::decode(std::span<const int64_t> ids, bool skip_special) const {
  std::string bytes;
  bool first = true;
  for (int64_t id : ids) {
    check_id(id);
    if (skip_special && special_[static_cast<size_t>(id)]) continue;
    // HF joins tokens with spaces when there is no decoder.
    if (!byte_level_decoder_ && !first) bytes += ' ';
    bytes += id_to_bytes(id);
    first = false;
  }
  return unicode::utf8_lossy(bytes);
}

}  // namespace

std::unique_ptr<Tokenizer> parse_hf_tokenizer_json(std::string_view text, const std::string& source,
                                                   std::string_view config_text, const std::string& config_source) {
  json root, cfg;
  try {
    root = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    fail("{}: malformed JSON ({})", source, e.what());
  }
  const bool has_cfg = !config_text.empty();
  if (has_cfg) {
    try {
      cfg = json::parse(config_text.begin(), config_text.end());
    } catch (const json::exception& e) {
      fail("{}: malformed JSON ({})", config_source, e.what());
    }
  }
  try {
    return std::make_unique<HfBpeTokenizer>(root, source, has_cfg ? &cfg : nullptr, config_source);
  } catch (const json::exception& e) {
    // A field of an unexpected JSON type somewhere the checks above do not look.
    fail("{}: unexpected tokenizer.json content ({})", source, e.what());
  }
}

std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const std::string& path) {
  const std::string text = read_file(path, "tokenizer file");
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) fail("{}: file is empty", path);
  const size_t slash = path.find_last_of('/');
  const std::string cfg_path = (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) + "tokenizer_config.json";
  std::string cfg_text;
  if (std::ifstream probe(cfg_path); probe.good()) cfg_text = read_file(cfg_path, "tokenizer config");
  return parse_hf_tokenizer_json(text, path, cfg_text, cfg_path);
}

}  // namespace keel::models
