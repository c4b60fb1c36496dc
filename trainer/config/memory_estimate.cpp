// The per-rank memory estimate and its check (see memory_estimate.h). All arithmetic is in double:
// the sizes come straight from the YAML, and their products overflow int64 long before they stop
// being worth a message.
#include "trainer/config/memory_estimate.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "base/node.h"
#include "base/reader.h"
#include "trainer/config/config.h"

namespace keel::config {

namespace {

// A frozen copy (the reference model): fp32 weights only.
constexpr double kFrozenBytesPerParam = 4;
// A stored sample's tensors per token: ids, attention and response masks (int64), behaviour and
// reference log-probs, advantages and returns (fp32) — the rollout batch's field table.
constexpr double kBatchBytesPerToken = 3 * 8 + 4 * 4;
// Smallest vocabulary of a tokenizer keel trains for a random-init model (train_run_tokenizer).
constexpr int64_t kMinRunVocab = 64;

double d(int64_t v) { return static_cast<double>(v); }

/// Whether the learner samples responses (RL learners and online DPO) rather than reading them.
bool samples(const RunConfig& cfg) {
  const auto& a = cfg.learner.algorithm;
  return !(a == "sft" || a == "rm" || (a == "dpo" && !cfg.dpo.online));
}

std::vector<std::string> model_keys(const RunConfig& cfg) {
  if (!cfg.model.path.empty()) return {"model.path"};
  return {"model.init.hidden_size", "model.init.num_layers", "model.init.intermediate_size"};
}

std::string join_keys(const std::vector<std::string>& keys) {
  std::string s;
  for (const auto& k : keys) s += (s.empty() ? "" : ", ") + k;
  return s;
}

}  // namespace

ModelShape init_model_shape(const ModelInitSection& m, int64_t vocab_size) {
  ModelShape s;
  s.vocab_size = std::max(vocab_size, kMinRunVocab);
  s.hidden_size = m.hidden_size;
  s.num_layers = m.num_layers;
  s.num_heads = m.num_heads;
  s.num_kv_heads = m.num_kv_heads;
  s.head_dim = m.num_heads > 0 ? m.hidden_size / m.num_heads : 0;
  s.intermediate_size = m.intermediate_size;
  s.tie_word_embeddings = m.tie_word_embeddings;
  return s;
}

double parameter_count(const ModelShape& s) {
  const double h = d(s.hidden_size), q = d(s.num_heads) * d(s.head_dim), kv = d(s.num_kv_heads) * d(s.head_dim);
  const double attention = h * q + 2 * h * kv + q * h;        // q, k, v, o projections
  const double mlp = 3 * h * d(s.intermediate_size);           // gate, up, down
  const double layer = attention + mlp + 2 * h;                // + two RMSNorms
  const double embed = d(s.vocab_size) * h * (s.tie_word_embeddings ? 1 : 2);
  return embed + d(s.num_layers) * layer + h;                  // + the final norm
}

double lora_parameter_count(const ModelShape& s, const LoraSection& l) {
  const double h = d(s.hidden_size), q = d(s.num_heads) * d(s.head_dim), kv = d(s.num_kv_heads) * d(s.head_dim),
               i = d(s.intermediate_size);
  const auto on = [&](const char* m) {
    for (const auto& t : l.target_modules)
      if (t == "all-linear" || t == m) return 1.0;
    return 0.0;
  };
  // Each adapted projection [out, in] adds A [r, in] and B [out, r].
  const double per_rank = on("q_proj") * (h + q) + on("k_proj") * (h + kv) + on("v_proj") * (h + kv) +
                          on("o_proj") * (q + h) + (on("gate_proj") + on("up_proj")) * (h + i) + on("down_proj") * (i + h);
  return d(std::max(1, l.rank)) * per_rank * d(s.num_layers);
}

double MemoryEstimate::total() const {
  double t = 0;
  for (const auto& p : parts) t += p.bytes;
  return t;
}

MemoryEstimate estimate_memory(const RunConfig& cfg, const std::optional<ModelShape>& shape, bool reference,
                               bool cuda) {
  MemoryEstimate e;
  const double act = cuda ? 2 : 4;  // activation bytes: bf16 autocast on CUDA, fp32 on CPU
  // Tokens per sequence: the response side only (a floor; the prompts are not read yet).
  const double seq = d(cfg.env.name.empty() ? cfg.rollout.max_new_tokens : cfg.env.max_tokens);
  const bool rollouts = samples(cfg);
  const bool evals = cfg.eval.every > 0;
  const double rows = d(cfg.derived.rollout_batch) / d(std::max(1, cfg.derived.rollout_ranks));
  // Held-out prompts one evaluation samples k times: a built-in task has eval_size of them.
  const double eval_prompts = cfg.data.train_file.empty() ? std::min(d(cfg.eval.num_prompts), d(cfg.data.eval_size))
                                                          : d(cfg.eval.num_prompts);
  const double eval_rows = eval_prompts * cfg.eval.k;

  // Bytes per trained parameter: fp32 weights and gradients and AdamW's two fp32 moments
  // (parameters stay fp32 under CUDA's bf16 autocast too). Sharded over W learner ranks, each rank
  // holds 1/W of the moments (optimizer), also of the gradients (gradients), and during the update
  // also of the layers' weights, with a 1/W fp32 master slice that outlives them (full; they are
  // whole again for rollout, so the estimate keeps them whole). One layer's whole gradients are left out.
  const double w_ranks = d(std::max(1, cfg.derived.learner_ranks));
  const std::string& level = cfg.dist.sharding;
  const double trained_bytes = level == "optimizer"   ? 4 + 4 + 8 / w_ranks
                               : level == "gradients" ? 4 + (4 + 8) / w_ranks
                               : level == "full"      ? 4 + (4 + 4 + 8) / w_ranks
                                                      : 4 + 4 + 8;
  if (shape) {
    const auto& s = *shape;
    e.parameters = parameter_count(s);
    const auto mk = model_keys(cfg);
    if (cfg.model.lora.enabled()) {
      // LoRA: a frozen base (also the reference: the base with the adapters off) and the adapters
      // trained (with an adapter directory, its own rank and targets apply: the config's are the estimate).
      const double lora = lora_parameter_count(s, cfg.model.lora);
      e.parts.push_back({fmt::format("frozen policy base ({:.3g} parameters)", e.parameters),
                         e.parameters * kFrozenBytesPerParam, mk});
      e.parts.push_back({fmt::format("LoRA adapters, gradients and AdamW moments ({:.3g} parameters)", lora),
                         lora * trained_bytes, {"model.lora.rank", "model.lora.target_modules"}});
    } else {
      e.parts.push_back({fmt::format("policy weights, gradients and AdamW moments ({:.3g} parameters)", e.parameters),
                         e.parameters * trained_bytes, mk});
      if (reference) e.parts.push_back({"frozen reference model", e.parameters * kFrozenBytesPerParam, mk});
    }
    if (cfg.learner.algorithm == "ppo" && cfg.critic.mode == "separate")
      e.parts.push_back({"separate critic with its optimizer", e.parameters * trained_bytes, {"critic.mode"}});
    if (rollouts || evals) {
      // One decode chunk's KV cache: K and V per layer for every row of the chunk.
      const double chunk = std::min(d(cfg.rollout.batch_size), std::max(rollouts ? rows : 0.0, evals ? eval_rows : 0.0));
      const double per_token = 2 * d(s.num_layers) * d(s.num_kv_heads) * d(s.head_dim) * act;
      if (cfg.rollout.engine == "paged" && cfg.rollout.kv_blocks > 0)
        e.parts.push_back({"KV block pool of the paged engine",
                           per_token * d(cfg.rollout.kv_blocks) * d(cfg.rollout.kv_block_size),
                           {"rollout.kv_blocks", "rollout.kv_block_size"}});
      else  // the static engine's chunk; the paged engine's default pool is as large (at most)
        e.parts.push_back({"KV cache of one decode chunk", per_token * seq * chunk,
                           {"rollout.batch_size", "rollout.max_new_tokens"}});
    }
    // One micro-batch's logits (and their log-softmax) plus the activations backward keeps.
    const double per_layer = cfg.model.activation_checkpointing ? d(s.hidden_size)
                                                                : 6 * d(s.hidden_size) + 3 * d(s.intermediate_size);
    const double tokens = d(cfg.batch.micro_batch_size) * seq;
    e.parts.push_back({"logits and activations of one micro-batch",
                       tokens * (2 * d(s.vocab_size) * 4 + d(s.num_layers) * per_layer * act),
                       {"batch.micro_batch_size", "rollout.max_new_tokens"}});
  }
  if (rollouts)
    e.parts.push_back({fmt::format("rollout batch ({:.3g} sequences on this rank)", rows), rows * seq * kBatchBytesPerToken,
                       {"batch.prompts_per_step", "rollout.samples_per_prompt", "rollout.max_new_tokens"}});
  if (evals)
    e.parts.push_back({fmt::format("evaluation samples ({:.3g} prompts x eval.k {})", eval_prompts, cfg.eval.k),
                       eval_rows * seq * kBatchBytesPerToken, {"eval.k", "eval.num_prompts"}});
  return e;
}

void check_memory(const RunConfig& cfg, const MemoryEstimate& e, const MemoryBudget& budget, const Node& root,
                  Diagnostics& diag) {
  if (cfg.run.skip_memory_check || budget.bytes <= 0 || e.parts.empty()) return;
  const double need = e.total() * std::max(1, budget.ranks);
  if (need <= budget.bytes) return;
  auto parts = e.parts;
  std::stable_sort(parts.begin(), parts.end(), [](const MemoryPart& a, const MemoryPart& b) { return a.bytes > b.bytes; });
  std::string list;
  for (const auto& p : parts)
    if (p.bytes > 0) list += fmt::format("{}{} {} ({})", list.empty() ? "" : "; ", p.what, format_bytes(p.bytes), join_keys(p.keys));
  const std::string ranks = budget.ranks > 1 ? fmt::format(" x {} ranks on this machine = {}", budget.ranks, format_bytes(need)) : "";
  const std::string& key = parts.front().keys.front();
  diag.error(source_of(root, key), key,
             fmt::format("the run needs an estimated {} per rank{} (at least), more than the {} {}: {}; lower the keys "
                         "named, or set run.skip_memory_check: true to start anyway",
                         format_bytes(e.total()), ranks, format_bytes(budget.bytes), budget.what, list));
}

std::string format_bytes(double bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) {
    bytes /= 1024;
    ++u;
  }
  if (u == 0) return fmt::format("{:.0f} B", bytes);
  return bytes < 1e4 ? fmt::format("{:.1f} {}", bytes, kUnits[u]) : fmt::format("{:.3g} {}", bytes, kUnits[u]);
}

}  // namespace keel::config
