#include "trainer/cli/train_common.h"

#include <set>
#include <torch/torch.h>

#include "base/error.h"
#include "models/compat.h"
#include "models/lora.h"
#include "models/tokenizer.h"
#include "models/tokenizer_sentencepiece.h"
#include "base/log.h"
#include "trainer/learner/fused_adamw.h"

namespace keel::cli {

namespace stdfs = std::filesystem;

models::ModelConfig init_config(const config::ModelSection& m, const models::Tokenizer& tok) {
  models::ModelConfig c;
  const auto& i = m.init;
  c.model_type = i.family;
  c.hidden_size = i.hidden_size;
  c.num_hidden_layers = i.num_layers;
  c.num_attention_heads = i.num_heads;
  c.num_key_value_heads = i.num_kv_heads;
  c.head_dim = i.hidden_size / i.num_heads;
  c.intermediate_size = i.intermediate_size;
  c.vocab_size = tok.vocab_size();
  c.max_position_embeddings = i.max_position_embeddings;
  c.rope_theta = i.rope_theta;
  c.rms_norm_eps = 1e-6;
  c.tie_word_embeddings = i.tie_word_embeddings;
  if (tok.eos_id() != models::kNoToken) c.eos_token_ids = {tok.eos_id()};
  if (tok.bos_id() != models::kNoToken) c.bos_token_id = tok.bos_id();
  if (tok.pad_id() != models::kNoToken) c.pad_token_id = tok.pad_id();
  else if (tok.eos_id() != models::kNoToken) c.pad_token_id = tok.eos_id();
  if (i.family == "qwen2") c.attention_bias = true;
  if (i.family == "qwen3") c.qk_norm = true;  // (and no bias, as Qwen3Config's default)
  return c;
}

at::Device select_device(const std::string& device, const std::string& what, int local_rank) {
  if (device != "auto" && device != "cpu" && device != "cuda")
    fail("{} must be auto, cpu or cuda, got '{}'", what, device);
  const bool cuda = device == "cuda" || (device == "auto" && compat::cuda_available());
  if (!cuda) return at::kCPU;
  if (!compat::cuda_available())
    fail("{} cuda: no CUDA device is usable (LibTorch {}; `keel version` shows what it sees)", what,
         compat::torch_version());
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(local_rank % compat::cuda_device_count()));
}

void attach_lora(models::Transformer& model, const config::LoraSection& l, const std::string& adapter_dir,
                 uint64_t seed) {
  models::LoraOptions o;
  o.rank = l.rank;
  o.alpha = l.alpha;
  o.dropout = l.dropout;
  o.target_modules = l.target_modules;
  if (!adapter_dir.empty()) {
    const auto file = models::read_adapter_config(adapter_dir);
    if (l.rank > 0 && l.rank != file.rank)
      fail("model.lora.rank is {} but the adapter {} has r = {}: set model.lora.rank to 0 or {}", l.rank, adapter_dir,
           file.rank, file.rank);
    o = file;
  }
  model.add_lora(o, seed ^ 0x4c6f5241ull);
  if (!adapter_dir.empty()) models::load_adapter(model, adapter_dir);
}

std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<at::Tensor>& params, double lr,
                                                const config::OptimSection& o,
                                                const std::optional<stdfs::path>& state_file) {
  auto opt = std::make_unique<learner::FusedAdamW>(
      params,
      torch::optim::AdamWOptions(lr).betas({o.adam_beta1, o.adam_beta2}).eps(o.adam_eps).weight_decay(o.weight_decay));
  if (state_file) {
    torch::serialize::InputArchive ar;
    // Optimizer state goes where the parameters are (a CPU checkpoint resumed on CUDA, or back).
    ar.load_from(state_file->string(), params.empty() ? at::Device(at::kCPU) : params.front().device());
    opt->load(ar);
  }
  return opt;
}

stdfs::path train_run_tokenizer(const std::vector<std::string>& corpus, const stdfs::path& run_dir,
                                const std::vector<std::string>& symbols, int extra_pieces) {
  const auto dir = run_dir / "tokenizer";
  const auto model_file = dir / "tokenizer.model";
  if (stdfs::exists(model_file)) return model_file;
  std::error_code ec;
  stdfs::create_directories(dir, ec);
  models::SentencePieceTrainOptions so;
  so.hard_vocab_limit = false;
  so.user_defined_symbols = symbols;
  // SentencePiece reads its corpus line by line, so a newline inside a text (the steps of a
  // multi-step response) would never be seen and encode as <unk>; as a user-defined symbol it is
  // one piece, and step boundaries survive tokenization.
  for (const auto& t : corpus)
    if (t.find('\n') != std::string::npos) {
      so.user_defined_symbols.push_back("\n");
      break;
    }
  // 64 pieces, or more when the text has more distinct characters than that (SentencePiece needs
  // one piece per character, plus its meta pieces and the user-defined symbols), plus
  // `extra_pieces` merged ones.
  std::set<std::string> chars;
  for (const auto& t : corpus)
    for (size_t i = 0; i < t.size();) {
      size_t len = 1;
      const auto c = static_cast<unsigned char>(t[i]);
      if (c >= 0xF0) len = 4;
      else if (c >= 0xE0) len = 3;
      else if (c >= 0xC0) len = 2;
      chars.insert(t.substr(i, len));
      i += len;
    }
  // Text with non-ASCII characters keeps SentencePiece's default coverage: the rarest characters
  // become <unk> in training as unseen ones will at run time (a judge learns what <unk> text is
  // worth); ASCII-only text (the arithmetic tasks) keeps every character.
  bool ascii = true;
  for (const auto& c : chars) ascii = ascii && static_cast<unsigned char>(c[0]) < 0x80;
  if (!ascii) so.character_coverage = 0.9995;
  const int vocab = std::max<int>(64, static_cast<int>(chars.size() + so.user_defined_symbols.size()) + extra_pieces);
  const auto staged = models::train_sentencepiece(corpus, vocab, (dir / "staging").string(), so);
  stdfs::rename(staged, model_file);
  stdfs::remove(dir / "staging.vocab", ec);
  log::info("trained a SentencePiece tokenizer on the training data's text: {}", model_file.string());
  return model_file;
}

}  // namespace keel::cli
