// LoraOptions: which projections carry LoRA adapters, their rank, scale and dropout (models/lora.h
// has the PEFT directory I/O; Transformer::add_lora attaches them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace keel::models {

/// The projections LoRA can adapt, by HF module name (lm_head and the embeddings are not adapted).
inline const std::vector<std::string> kLoraTargets = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                      "gate_proj", "up_proj", "down_proj"};

struct LoraOptions {
  int64_t rank = 0;      ///< r; 0 = no adapters
  double alpha = 16.0;   ///< scale = alpha / r (PEFT's lora_alpha; rslora off)
  double dropout = 0.0;  ///< on the adapter's input, in training mode only (PEFT's lora_dropout)
  /// Module names from kLoraTargets, or {"all-linear"} (PEFT's shorthand: every one of them).
  std::vector<std::string> target_modules = {"all-linear"};

  double scale() const { return alpha / static_cast<double>(rank); }
  /// target_modules with "all-linear" expanded, in kLoraTargets order. Unknown names are errors
  /// naming `where`.
  std::vector<std::string> targets(const std::string& where) const;
};

}  // namespace keel::models
