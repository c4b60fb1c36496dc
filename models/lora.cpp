// LoRA options and PEFT adapter directories. See lora.h.
#include "models/lora.h"

#include <algorithm>
#include <array>
#include <filesystem>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "base/error.h"
#include "base/fs.h"
#include "models/safetensors.h"

namespace keel::models {

namespace stdfs = std::filesystem;

namespace {
constexpr const char* kConfigFile = "adapter_config.json";
constexpr const char* kWeightsFile = "adapter_model.safetensors";

/// Heads that train beside the adapters (PEFT's modules_to_save), by parameter name.
constexpr std::array<const char*, 2> kHeads = {"value_head.weight", "score.weight"};

/// PEFT's key for a parameter: base_model.model.<module>.lora_A.weight for an adapter,
/// base_model.model.<name> for a head.
std::string peft_key(const std::string& name) {
  return "base_model.model." + name + (name.ends_with(".weight") ? "" : ".weight");
}

/// What a PEFT file holds for `model`, by PEFT key: every adapter, and the heads it carries.
std::map<std::string, at::Tensor> peft_tensors(const Transformer& model) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, p] : model.adapter_parameters()) out.emplace(peft_key(name), p);
  const auto params = model.named_parameters();
  for (const char* h : kHeads)
    if (const auto it = params.find(h); it != params.end()) out.emplace(peft_key(h), it->second);
  return out;
}
}  // namespace

std::vector<std::string> LoraOptions::targets(const std::string& where) const {
  if (target_modules.empty()) fail("{}: no target modules (expected names from {} or \"all-linear\")", where, kLoraTargets);
  std::vector<std::string> out;
  for (const auto& t : target_modules) {
    if (t == "all-linear") return kLoraTargets;
    if (std::find(kLoraTargets.begin(), kLoraTargets.end(), t) == kLoraTargets.end())
      fail("{}: unknown target module '{}' (expected names from {} or \"all-linear\")", where, t, kLoraTargets);
  }
  for (const auto& t : kLoraTargets)
    if (std::find(target_modules.begin(), target_modules.end(), t) != target_modules.end()) out.push_back(t);
  return out;
}

LoraOptions read_adapter_config(const std::string& dir) {
  const auto path = stdfs::path(dir) / kConfigFile;
  const std::string where = path.string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(fs::read_file(path, "adapter config"));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", where, e.what());
  }
  if (!j.is_object()) fail("{}: expected a JSON object", where);
  if (j.contains("peft_type") && j["peft_type"] != "LORA")
    fail("{}: peft_type is {}, keel loads LORA adapters", where, j["peft_type"].dump());
  for (const char* k : {"use_dora", "use_rslora", "use_qalora", "use_bdlora", "lora_bias", "fan_in_fan_out"})
    if (j.contains(k) && j[k].is_boolean() && j[k].get<bool>())
      fail("{}: {} is set; keel's adapters are plain LoRA (alpha / r)", where, k);
  // PEFT options that change which modules carry an adapter or its rank / scale: keel applies one
  // rank and alpha to every target module of every layer, so an adapter that uses any of them would
  // load into the wrong shapes or, worse, with the wrong scale. Refused, naming the key.
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    if (j.contains(k) && !j[k].is_null() && !j[k].empty())
      fail("{}: {} is {}; keel applies one r and lora_alpha to every module", where, k, j[k].dump());
  for (const char* k : {"layers_to_transform", "layers_pattern", "exclude_modules", "layer_replication",
                        "target_parameters", "trainable_token_indices"})
    if (j.contains(k) && !j[k].is_null() && !(j[k].is_array() && j[k].empty()))
      fail("{}: {} is {}; keel puts adapters on every layer's target modules and nothing else", where, k, j[k].dump());
  LoraOptions o;
  try {
    o.rank = j.at("r").get<int64_t>();
    o.alpha = j.at("lora_alpha").get<double>();
    o.dropout = j.value("lora_dropout", 0.0);
    const auto& t = j.at("target_modules");
    if (t.is_string()) o.target_modules = {t.get<std::string>()};
    else o.target_modules = t.get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    fail("{}: expected r (integer), lora_alpha (number), target_modules (list or \"all-linear\"): {}", where, e.what());
  }
  if (o.rank < 1) fail("{}: r must be >= 1, got {}", where, o.rank);
  (void)o.targets(where + " target_modules");
  return o;
}

void save_adapter(const Transformer& model, const std::string& dir, const std::string& base_model_name_or_path) {
  TORCH_CHECK(model.has_lora(), "save_adapter: the model carries no adapters");
  const auto& o = model.lora_options();
  std::map<std::string, at::Tensor> tensors;
  for (const auto& [key, t] : peft_tensors(model)) tensors.emplace(key, t.detach().to(at::kCPU));
  // Trained heads go along as PEFT's modules_to_save.
  std::vector<std::string> heads;
  for (const char* h : kHeads)
    if (tensors.count(peft_key(h))) heads.push_back(std::string(h).substr(0, std::string(h).size() - 7));  // no ".weight"
  nlohmann::ordered_json cfg;
  cfg["peft_type"] = "LORA";
  cfg["task_type"] = "CAUSAL_LM";
  cfg["base_model_name_or_path"] = base_model_name_or_path;
  cfg["r"] = o.rank;
  cfg["lora_alpha"] = o.alpha;
  cfg["lora_dropout"] = o.dropout;
  cfg["target_modules"] = o.targets("save_adapter");
  cfg["modules_to_save"] = heads.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(heads);
  cfg["bias"] = "none";
  cfg["fan_in_fan_out"] = false;
  cfg["use_rslora"] = false;
  cfg["use_dora"] = false;
  cfg["inference_mode"] = true;
  fs::write_dir_atomic(stdfs::path(dir), [&](const stdfs::path& tmp) {
    save_safetensors((tmp / kWeightsFile).string(), tensors, {{"format", "pt"}});
    fs::write_file_atomic(tmp / kConfigFile, cfg.dump(2) + "\n");
  }, "adapter");
}

void load_adapter(Transformer& model, const std::string& dir) {
  TORCH_CHECK(model.has_lora(), "load_adapter: add_lora first (read_adapter_config gives the options)");
  const auto path = stdfs::path(dir) / kWeightsFile;
  const auto tensors = load_safetensors(path.string());
  const auto wanted = peft_tensors(model);
  for (const auto& [key, t] : tensors)
    if (!wanted.count(key))
      fail("{}: unexpected tensor '{}' (shape {}): not an adapter of this model's target modules nor a head it carries",
           path.string(), key, c10::str(t.sizes()));
  torch::NoGradGuard g;
  for (const auto& [key, p] : wanted) {
    const auto it = tensors.find(key);
    const bool head = key.find(".lora_") == std::string::npos;
    if (it == tensors.end()) {
      if (head) continue;  // a head the file does not hold keeps its fresh init
      fail("{}: missing adapter tensor '{}' (shape {})", path.string(), key, c10::str(p.sizes()));
    }
    if (it->second.sizes() != p.sizes())
      fail("{}: {} '{}' has shape {}, the model's rank and sizes imply {}", path.string(), head ? "head" : "adapter tensor",
           key, c10::str(it->second.sizes()), c10::str(p.sizes()));
    p.copy_(it->second);
  }
}

}  // namespace keel::models
