// SentencePiece behind keel's Tokenizer interface, plus in-memory training. Special tokens are
// SentencePiece's control pieces (<s>, </s>, and any control_symbols); user-defined symbols are
// matched inside text by SentencePiece itself.
//
// Why dlopen: Debian's libsentencepiece.so.0 carries its own (older) copy of protobuf-lite and
// exports every protobuf symbol. Loaded next to LibTorch's libprotobuf.so.32 it breaks the process
// either way round: searched first, libprotobuf's static initialisers bind to its copy and crash
// at startup; searched second, SentencePiece's own code binds to libprotobuf 3.21 and fails a
// CHECK on first use. So keel never links it: the library is opened on first use with
// RTLD_LOCAL | RTLD_DEEPBIND (it binds to its own protobuf, and nobody else sees it), the few
// non-virtual entry points are looked up by their (Itanium-mangled) names, and everything else is a
// virtual call through the object's vtable.
#include "models/tokenizer_sentencepiece.h"

#include <dlfcn.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "models/tokenizer_unicode.h"
#include "base/error.h"

namespace keel::models {
namespace {

using KwArgs = std::unordered_map<std::string, std::string>;

// The non-virtual SentencePiece entry points keel uses, resolved from the dlopen'ed libraries.
struct SpLib {
  void (*processor_ctor)(void* self) = nullptr;
  void (*status_ctor)(void* self) = nullptr;
  void (*status_dtor)(void* self) = nullptr;
  std::string (*status_to_string)(const void* self) = nullptr;  // sret first, then this (Itanium ABI)
  void (*set_random_seed)(unsigned int) = nullptr;
  void (*set_min_log_level)(int) = nullptr;
  int (*get_min_log_level)() = nullptr;
  sentencepiece::util::Status (*train)(const KwArgs&, sentencepiece::SentenceIterator*, std::string*) = nullptr;
};

template <typename Fn>
void resolve(void* handle, const char* lib, const char* symbol, Fn& out) {
  void* p = dlsym(handle, symbol);
  if (!p) fail("{} lacks symbol {} (keel expects SentencePiece 0.1.9x's C++ ABI)", lib, symbol);
  out = reinterpret_cast<Fn>(p);
}

const SpLib& sp_lib() {
  static std::once_flag once;
  static SpLib lib;
  static std::string error;
  std::call_once(once, [] {
    try {
      constexpr int kFlags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
      // The trainer library pulls libsentencepiece.so.0 into the same private scope.
      const char* train_name = "libsentencepiece_train.so.0";
      void* train = dlopen(train_name, kFlags);
      if (!train)
        fail("cannot load {} ({}) — install Debian's libsentencepiece0 (scripts/setup.sh)", train_name, dlerror());
      const char* core_name = "libsentencepiece.so.0";
      void* core = dlopen(core_name, kFlags);
      if (!core) fail("cannot load {} ({}) — install Debian's libsentencepiece0 (scripts/setup.sh)", core_name, dlerror());
      resolve(core, core_name, "_ZN13sentencepiece22SentencePieceProcessorC1Ev", lib.processor_ctor);
      resolve(core, core_name, "_ZN13sentencepiece4util6StatusC1Ev", lib.status_ctor);
      resolve(core, core_name, "_ZN13sentencepiece4util6StatusD1Ev", lib.status_dtor);
      resolve(core, core_name, "_ZNK13sentencepiece4util6Status8ToStringB5cxx11Ev", lib.status_to_string);
      resolve(core, core_name, "_ZN13sentencepiece22SetRandomGeneratorSeedEj", lib.set_random_seed);
      resolve(core, core_name, "_ZN13sentencepiece7logging14SetMinLogLevelEi", lib.set_min_log_level);
      resolve(core, core_name, "_ZN13sentencepiece7logging14GetMinLogLevelEv", lib.get_min_log_level);
      resolve(train, train_name,
              "_ZN13sentencepiece20SentencePieceTrainer5TrainERKSt13unordered_mapINSt7__cxx1112basic_stringIcSt11"
              "char_traitsIcESaIcEEES7_St4hashIS7_ESt8equal_toIS7_ESaISt4pairIKS7_S7_EEEPNS_16SentenceIteratorEPS7_",
              lib.train);
    } catch (const keel::Error& e) {
      error = e.what();
    }
  });
  if (!error.empty()) throw keel::Error(error);
  return lib;
}

// A processor built by the library's constructor; destroyed by its virtual destructor.
std::unique_ptr<sentencepiece::SentencePieceProcessor> make_processor() {
  const SpLib& lib = sp_lib();
  void* mem = ::operator new(sizeof(sentencepiece::SentencePieceProcessor));
  lib.processor_ctor(mem);
  return std::unique_ptr<sentencepiece::SentencePieceProcessor>(static_cast<sentencepiece::SentencePieceProcessor*>(mem));
}

}  // namespace
}  // namespace keel::models

// The util::Status members that keel's code (implicitly) calls, defined here under their mangled
// names and forwarded to the dlopen'ed library, so that nothing needs link-time symbols from
// libsentencepiece (Status's own definition cannot be compiled here: its Rep is private).
extern "C" {
void keel_sp_status_ctor(void* self) __asm__("_ZN13sentencepiece4util6StatusC1Ev");
void keel_sp_status_dtor(void* self) __asm__("_ZN13sentencepiece4util6StatusD1Ev");
void keel_sp_status_ctor(void* self) { keel::models::sp_lib().status_ctor(self); }
void keel_sp_status_dtor(void* self) { keel::models::sp_lib().status_dtor(self); }
}
std::string keel_sp_status_to_string(const void* self) __asm__("_ZNK13sentencepiece4util6Status8ToStringB5cxx11Ev");
std::string keel_sp_status_to_string(const void* self) { return keel::models::sp_lib().status_to_string(self); }

namespace keel::models {
namespace {

class VectorIterator final : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(const std::vector<std::string>& lines) : lines_(lines) {}
  bool done() const override { return i_ >= lines_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return lines_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& lines_;
  size_t i_ = 0;
};

std::string join(const std::vector<std::string>& v, const char* what) {
  std::string s;
  for (const std::string& x : v) {
    if (x.empty() || x.find(',') != std::string::npos)
      fail("sentencepiece {} '{}' must be non-empty and contain no comma", what, x);
    s += (s.empty() ? "" : ",") + x;
  }
  return s;
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> sp, std::string source)
      : sp_(std::move(sp)), source_(std::move(source)) {
    for (int id = 0; id < sp_->GetPieceSize(); ++id) {
      if (sp_->IsControl(id)) {
        control_.push_back(sp_->IdToPiece(id));
        control_ids_.push_back(id);
      }
    }
  }

  std::vector<int64_t> encode(std::string_view text, bool add_special, bool parse_special) const override {
    std::vector<int64_t> out;
    if (add_special && sp_->bos_id() >= 0) out.push_back(sp_->bos_id());
    // Control pieces are never produced by SentencePiece from text; with parse_special their text
    // is split out first and each remaining segment is encoded on its own.
    // [interp] each segment gets SentencePiece's dummy-prefix "▁" like a fresh sentence.
    size_t seg = 0, i = 0;
    while (parse_special && i < text.size()) {
      size_t best = 0, best_len = 0;
      for (size_t k = 0; k < control_.size(); ++k) {
        const std::string& c = control_[k];
        if (c.size() > best_len && text.compare(i, c.size(), c) == 0) best = k, best_len = c.size();
      }
      if (best_len == 0) {
        ++i;
        continue;
      }
      encode_segment(text.substr(seg, i - seg), out);
      out.push_back(control_ids_[best]);
      i += best_len;
      seg = i;
    }
    encode_segment(text.substr(seg), out);
    return out;
  }

  std::string decode(std::span<const int64_t> ids, bool skip_special) const override {
    // Runs of ordinary ids go through SentencePiece's decoder (which drops control ids); control
    // ids are written as their piece text unless skipped.
    std::string out;
    std::vector<int> run;
    auto flush = [&] {
      if (run.empty()) return;
      std::string s;
      const auto st = sp_->Decode(run, &s);
      if (!st.ok()) fail("sentencepiece decode failed for '{}': {}", source_, st.ToString());
      out += s;
      run.clear();
    };
    for (int64_t id : ids) {
      check_id(id);
      if (sp_->IsControl(static_cast<int>(id))) {
        flush();
        if (!skip_special) out += sp_->IdToPiece(static_cast<int>(id));
      } else {
        run.push_back(static_cast<int>(id));
      }
    }
    flush();
    return unicode::utf8_lossy(out);
  }

  std::string id_to_bytes(int64_t id) const override {
    check_id(id);
    const int i = static_cast<int>(id);
    const std::string& piece = sp_->IdToPiece(i);
    if (sp_->IsByte(i)) {  // "<0xAB>"
      return std::string(1, static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
    }
    if (sp_->IsControl(i)) return piece;
    if (sp_->IsUnknown(i)) return " \xE2\x81\x87 ";  // SentencePiece decodes <unk> as " ⁇ "
    std::string out;
    for (size_t k = 0; k < piece.size();) {
      if (piece.compare(k, 3, "\xE2\x96\x81") == 0) {  // U+2581 "▁" stands for a space
        out += ' ';
        k += 3;
      } else {
        out += piece[k++];
      }
    }
    return out;
  }

  std::string id_to_piece(int64_t id) const override {
    check_id(id);
    return sp_->IdToPiece(static_cast<int>(id));
  }
  int64_t piece_to_id(std::string_view piece) const override {
    const int id = sp_->PieceToId(piece);
    // PieceToId answers unk_id for unknown pieces.
    if (id == sp_->unk_id() && sp_->IdToPiece(id) != piece) return kNoToken;
    return id;
  }
  int64_t vocab_size() const override { return sp_->GetPieceSize(); }
  int64_t bos_id() const override { return sp_->bos_id() >= 0 ? sp_->bos_id() : kNoToken; }
  int64_t eos_id() const override { return sp_->eos_id() >= 0 ? sp_->eos_id() : kNoToken; }
  int64_t pad_id() const override { return sp_->pad_id() >= 0 ? sp_->pad_id() : kNoToken; }
  bool is_special(int64_t id) const override {
    check_id(id);
    return sp_->IsControl(static_cast<int>(id));
  }
  std::vector<std::string> special_tokens() const override { return control_; }
  std::string kind() const override { return "sentencepiece"; }
  std::string source() const override { return source_; }

 private:
  void check_id(int64_t id) const {
    if (id < 0 || id >= vocab_size())
      fail("token id {} is out of range for tokenizer '{}' (vocab_size {})", id, source_, vocab_size());
  }
  void encode_segment(std::string_view s, std::vector<int64_t>& out) const {
    if (s.empty()) return;
    std::vector<int> ids;
    const auto st = sp_->Encode(s, &ids);
    if (!st.ok()) fail("sentencepiece encode failed for '{}': {}", source_, st.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
  }

  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string source_;
  std::vector<std::string> control_;  // control pieces, in id order
  std::vector<int64_t> control_ids_;
};

}  // namespace

std::string train_sentencepiece(const std::vector<std::string>& corpus_lines, int vocab_size,
                                const std::string& model_prefix, const SentencePieceTrainOptions& o) {
  if (corpus_lines.empty()) fail("sentencepiece training for '{}' needs a non-empty corpus", model_prefix);
  if (vocab_size <= 0) fail("sentencepiece vocab_size must be positive, got {}", vocab_size);
  if (model_prefix.empty()) fail("sentencepiece model_prefix must not be empty");
  const std::filesystem::path parent = std::filesystem::path(model_prefix).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent))
    fail("cannot write sentencepiece model '{}.model': directory '{}' does not exist", model_prefix, parent.string());

  std::unordered_map<std::string, std::string> kw = {
      {"model_prefix", model_prefix},
      {"vocab_size", std::to_string(vocab_size)},
      {"model_type", o.model_type},
      {"character_coverage", fmt::format("{}", o.character_coverage)},
      {"normalization_rule_name", o.normalization_rule_name},
      {"byte_fallback", o.byte_fallback ? "true" : "false"},
      {"split_digits", o.split_digits ? "true" : "false"},
      {"add_dummy_prefix", o.add_dummy_prefix ? "true" : "false"},
      {"remove_extra_whitespaces", o.remove_extra_whitespaces ? "true" : "false"},
      {"hard_vocab_limit", o.hard_vocab_limit ? "true" : "false"},
      {"unk_id", std::to_string(o.unk_id)},
      {"bos_id", std::to_string(o.bos_id)},
      {"eos_id", std::to_string(o.eos_id)},
      {"pad_id", std::to_string(o.pad_id)},
      {"num_threads", std::to_string(o.num_threads)},
      {"max_sentence_length", std::to_string(o.max_sentence_length)},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
  };
  if (!o.user_defined_symbols.empty()) kw["user_defined_symbols"] = join(o.user_defined_symbols, "user_defined_symbols entry");
  if (!o.control_symbols.empty()) kw["control_symbols"] = join(o.control_symbols, "control_symbols entry");

  const SpLib& lib = sp_lib();
  lib.set_random_seed(o.seed);
  const int old_level = lib.get_min_log_level();
  if (o.quiet) lib.set_min_log_level(2);  // errors only
  VectorIterator it(corpus_lines);
  const sentencepiece::util::Status st = lib.train(kw, &it, nullptr);
  lib.set_min_log_level(old_level);
  if (!st.ok())
    fail("sentencepiece training for '{}' (vocab_size {}) failed: {}{}", model_prefix, vocab_size, st.ToString(),
         st.ToString().find("Vocabulary size") != std::string::npos
             ? " (HINT: lower vocab_size, add text, or set hard_vocab_limit=false)"
             : "");
  return model_prefix + ".model";
}

std::unique_ptr<Tokenizer> load_sentencepiece_model(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open sentencepiece model '{}'", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  if (bytes.empty()) fail("{}: file is empty (expected a SentencePiece .model)", path);
  auto sp = make_processor();
  const auto st = sp->LoadFromSerializedProto(bytes);
  if (!st.ok())
    fail("{}: not a valid SentencePiece model ({})", path, st.ToString());
  if (sp->GetPieceSize() <= 0) fail("{}: SentencePiece model has an empty vocabulary", path);
  return std::make_unique<SentencePieceTokenizer>(std::move(sp), path);
}

}  // namespace keel::models
