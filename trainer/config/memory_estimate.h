// What one rank of a run needs in memory, estimated from the config alone, and the check that
// refuses a run which cannot fit the machine (at `keel validate` and the start of `keel train`).
// The estimate is deliberately a floor: sequence lengths count only the response side (prompts are
// unknown before the data is read), a random-init model's vocabulary counts as the run tokenizer's
// smallest (64 pieces), and only the largest tensors of each stage are counted. A run it refuses
// cannot fit; one it passes may still run out of memory. run.skip_memory_check turns it off.
// Deliberately not here: finding the machine's memory or reading a model's config.json (that needs
// LibTorch; trainer/loop/resources.h does both and calls check_memory).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace keel::config {

struct RunConfig;
struct LoraSection;
struct ModelInitSection;
class Node;
class Diagnostics;

/// The sizes that decide a decoder's parameter count and per-token tensors.
struct ModelShape {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t intermediate_size = 0;
  bool tie_word_embeddings = false;
};

/// model.init's shape with `vocab_size` tokens.
ModelShape init_model_shape(const ModelInitSection& m, int64_t vocab_size);

/// Parameters of a Llama-layout decoder (embedding, attention, SwiGLU MLP, norms, LM head unless
/// tied), in double: a hostile shape overflows int64.
double parameter_count(const ModelShape& s);
/// LoRA adapter parameters of model.lora on that shape (rank x (in + out) per adapted projection).
double lora_parameter_count(const ModelShape& s, const LoraSection& l);

/// One term of the estimate: what it holds, its bytes and the config keys that drive it.
struct MemoryPart {
  std::string what;
  double bytes = 0;
  std::vector<std::string> keys;
};

struct MemoryEstimate {
  double parameters = 0;  ///< 0 when the model's size is unknown (model.path without config.json)
  std::vector<MemoryPart> parts;
  double total() const;
};

/// The estimate for one rank. `shape`: nullopt when unknown (the model-sized terms are left out);
/// `reference`: the run holds the frozen reference model (loop::uses_reference); `cuda`:
/// activations in bf16 autocast (2 bytes) rather than fp32.
MemoryEstimate estimate_memory(const RunConfig& cfg, const std::optional<ModelShape>& shape, bool reference, bool cuda);

/// The memory the run may use: `bytes` shared by `ranks` ranks of this job on it; `what` names it
/// in messages ("RAM available", "memory of CUDA device 0").
struct MemoryBudget {
  double bytes = 0;
  int ranks = 1;
  std::string what;
};

/// Reports an error into `diag` when ranks x the estimate exceeds the budget (unless
/// run.skip_memory_check), at the YAML key driving the largest term, naming the estimate, each
/// term with its keys, the budget and the override.
void check_memory(const RunConfig& cfg, const MemoryEstimate& e, const MemoryBudget& budget, const Node& root,
                  Diagnostics& diag);

/// "1.5 GiB", "12.0 TiB", "640 B".
std::string format_bytes(double bytes);

}  // namespace keel::config
