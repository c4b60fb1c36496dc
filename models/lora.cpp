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

/// PEFT's key for a keel adapter parameter: base_model.model.<module>.lora_A.weight.
std::string peft_key(const std::string& name) { return "base_model.model." + name + ".weight"; }

/// Heads that train beside the adapters (PEFT's modules_to_save), by parameter name.
constexpr std::array<const char*, 2> kHeads = {"value_head.weight", "score.weight"};
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
  for (const char* k : {"use_dora", "use_rslora"})
    if (j.value(k, false)) fail("{}: {} is set; keel's adapters are plain LoRA (alpha / r)", where, k);
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
  for (const auto& [name, p] : model.adapter_parameters()) tensors.emplace(peft_key(name), p.detach().to(at::kCPU));
  // Trained heads go along (PEFT stores modules_to_save as base_model.model.<name>).
  std::vector<std::string> heads;
  const auto params = model.named_parameters();
  for (const char* h : kHeads)
    if (const auto it = params.find(h); it != params.end()) {
      tensors.emplace(std::string("base_model.model.") + h, it->second.detach().to(at::kCPU));
      heads.push_back(std::string(h).substr(0, std::string(h).size() - 7));  // without ".weight"
    }
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
  torch::NoGradGuard g;
  auto params = model.adapter_parameters();
  for (const auto& [key, t] : tensors)  // saved heads the model carries (a fresh head otherwise stays)
    for (const char* h : kHeads)
      if (key == std::string("base_model.model.") + h) {
        const auto all = model.named_parameters();
        const auto it = all.find(h);
        if (it == all.end())
          fail("{}: tensor '{}' is a head this model does not carry", path.string(), key);
        if (t.sizes() != it->second.sizes())
          fail("{}: '{}' has shape {}, the model's is {}", path.string(), key, c10::str(t.sizes()), c10::str(it->second.sizes()));
        it->second.copy_(t);
      }
  for (const auto& [name, p] : params) {
    const auto it = tensors.find(peft_key(name));
    if (it == tensors.end()) fail("{}: missing adapter tensor '{}' (shape {})", path.string(), peft_key(name), c10::str(p.sizes()));
    if (it->second.sizes() != p.sizes())
      fail("{}: adapter tensor '{}' has shape {}, the model's rank and sizes imply {}", path.string(), it->first,
           c10::str(it->second.sizes()), c10::str(p.sizes()));
    p.copy_(it->second);
  }
  for (const auto& [key, t] : tensors) {
    bool known = false;
    for (const auto& [name, p] : params) known = known || peft_key(name) == key;
    for (const char* h : kHeads) known = known || key == std::string("base_model.model.") + h;
    if (!known)
      fail("{}: unexpected tensor '{}' (shape {}): not an adapter of this model's target modules", path.string(), key,
           c10::str(t.sizes()));
  }
}

}  // namespace keel::models
