// RewardInput helpers: metadata access and the shape checks shared by every scheme.
#include "rewards/reward.h"

#include <torch/torch.h>

#include "base/reader.h"

namespace keel::rewards {

const nlohmann::json& RewardInput::meta(int64_t i) const {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  if (metadata.empty()) return kEmpty;
  TORCH_CHECK(i >= 0 && i < static_cast<int64_t>(metadata.size()), "RewardInput::meta: index ", i,
              " out of range for metadata of size ", metadata.size());
  return metadata[static_cast<size_t>(i)];
}

namespace {

void check_leading(const torch::Tensor& t, int64_t n, const char* field) {
  if (!t.defined()) return;
  TORCH_CHECK(t.dim() >= 1 && t.size(0) == n, "RewardInput: ", field, " must have leading dimension N = ", n,
              ", got shape ", t.sizes());
}

}  // namespace

void RewardInput::check() const {
  const int64_t n = size();
  TORCH_CHECK(static_cast<int64_t>(prompts.size()) == n, "RewardInput: prompts has ", prompts.size(),
              " entries but responses has ", n);
  TORCH_CHECK(group_ids.defined() && group_ids.dim() == 1 && group_ids.size(0) == n,
              "RewardInput: group_ids must be [N] with N = ", n,
              group_ids.defined() ? ", got shape " : ", got an undefined tensor",
              group_ids.defined() ? group_ids.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(metadata.empty() || static_cast<int64_t>(metadata.size()) == n, "RewardInput: metadata has ",
              metadata.size(), " entries, expected 0 or N = ", n);
  check_leading(response_lengths, n, "response_lengths");
  check_leading(rm_scores, n, "rm_scores");
  check_leading(criterion_scores, n, "criterion_scores");
  check_leading(criterion_mask, n, "criterion_mask");
  check_leading(step_ends, n, "step_ends");
  check_leading(step_scores, n, "step_scores");
  check_leading(step_mask, n, "step_mask");
  check_leading(response_tokens, n, "response_tokens");
  check_leading(response_mask, n, "response_mask");
  check_leading(token_logprobs, n, "token_logprobs");
  for (const auto& [k, t] : prior) check_leading(t, n, ("prior[" + k + "]").c_str());
  for (const auto& [k, t] : extra) check_leading(t, n, ("extra[" + k + "]").c_str());
}

void require_tensor(const RewardInput& in, const torch::Tensor& t, const char* field, const std::string& scheme) {
  TORCH_CHECK(t.defined(), "reward scheme '", scheme, "' needs RewardInput::", field, ", which is not set");
  TORCH_CHECK(t.dim() >= 1 && t.size(0) == in.size(), "reward scheme '", scheme, "': RewardInput::", field,
              " must have leading dimension N = ", in.size(), ", got shape ", t.sizes());
}

void require_metadata(const RewardInput& in, const std::string& key, const std::string& scheme) {
  TORCH_CHECK(static_cast<int64_t>(in.metadata.size()) == in.size(), "reward scheme '", scheme,
              "' needs per-sample metadata with key '", key, "', but the batch has none");
  for (int64_t i = 0; i < in.size(); ++i)
    TORCH_CHECK(in.metadata[static_cast<size_t>(i)].contains(key), "reward scheme '", scheme,
                "' needs metadata key '", key, "', missing in sample ", i);
}

}  // namespace keel::rewards

namespace keel::rewards {

namespace {
thread_local Contract* g_recording = nullptr;  // the contract build_scheme is recording, if any
}  // namespace

void require_input(config::Reader& params, const std::string& input, const std::string& param) {
  if (!g_recording) return;
  const std::string key = param.empty() ? params.path() : params.path_of(param);
  for (const auto& r : *g_recording)
    if (r.input == input && r.key == key) return;
  g_recording->push_back({input, key});
}

Contract record_requirements(const std::function<void()>& fn) {
  Contract c;
  Contract* const outer = g_recording;
  g_recording = &c;
  try {
    fn();
  } catch (...) {
    g_recording = outer;
    throw;
  }
  g_recording = outer;
  return c;
}

BuiltScheme build_scheme(const RewardRegistry& registry, config::Reader& params, const std::string& scheme) {
  BuiltScheme b;
  b.contract = record_requirements([&] { b.impl = registry.get(scheme).fn(params); });
  return b;
}

}  // namespace keel::rewards
