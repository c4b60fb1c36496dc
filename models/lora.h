// LoRA adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models", eq. 3:
// h = W0 x + (alpha / r) B A x) on the decoder's projections, in PEFT's layout on disk:
// adapter_config.json (r, lora_alpha, lora_dropout, target_modules, ...) and
// adapter_model.safetensors with keys base_model.model.<module>.lora_A.weight [r, in] and
// .lora_B.weight [out, r]. The adapters live on the Transformer (Transformer::add_lora); this
// header holds the options, their file format and the directory I/O.
// Deliberately not here: the forward arithmetic (transformer.cpp), which projections a family has.
#pragma once

#include <string>

#include "models/lora_options.h"
#include "models/transformer.h"

namespace keel::models {

/// Reads a PEFT adapter_config.json (peft_type LORA): r, lora_alpha, lora_dropout,
/// target_modules (a list, or a string "all-linear"). Errors name the file and the key.
LoraOptions read_adapter_config(const std::string& dir);

/// Writes `model`'s adapters as a PEFT adapter directory (adapter_config.json,
/// adapter_model.safetensors), atomically (a temp directory renamed into place).
/// base_model_name_or_path is written as given. Trained heads (value_head, score) are saved with
/// them as PEFT modules_to_save (base_model.model.value_head.weight) and loaded back by load_adapter.
void save_adapter(const Transformer& model, const std::string& dir, const std::string& base_model_name_or_path = "");

/// Loads a PEFT adapter directory into a model that carries adapters of the same rank and targets
/// (add_lora with read_adapter_config's options): every adapter tensor must be present with its
/// shape; errors name the directory and the tensor.
void load_adapter(Transformer& model, const std::string& dir);

}  // namespace keel::models
