// Signal lookup and output packing shared by the registry glue (see register_util.h).
#include "rewards/schemes/register_util.h"

#include <torch/torch.h>

#include "base/error.h"
#include "base/reader.h"

namespace keel::rewards::glue {

namespace {

const char* const kFields[] = {"prior", "correct", "rm_scores", "criterion_scores", "step_scores", "response_lengths"};
const char* const kPrefixes[] = {"prior.", "extra.", "meta."};

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

std::string known_keys(const std::map<std::string, torch::Tensor>& m) {
  std::string s;
  for (const auto& [k, v] : m) s += (s.empty() ? "" : ", ") + k;
  return s.empty() ? "none" : s;
}

}  // namespace

bool check_signal(config::Reader& r, const std::string& key, const std::string& spec, bool allow_none) {
  if (allow_none && spec == "none") return true;
  for (const char* f : kFields)
    if (spec == f) return true;
  for (const char* p : kPrefixes)
    if (starts_with(spec, p) && spec.size() > std::string(p).size()) return true;
  r.error(key, fmt::format("'{}' is not an input signal (expected prior, correct, rm_scores, criterion_scores, "
                           "step_scores, response_lengths, prior.<component>, extra.<key> or meta.<key>{})",
                           spec, allow_none ? ", or none" : ""));
  return false;
}

void declare_signal(config::Reader& r, const std::string& key, const std::string& spec) {
  if (spec == "none" || spec == "response_lengths") return;
  require_input(r, spec, key);
}

bool read_signal_spec(config::Reader& r, const std::string& key, std::string& spec, const std::string& doc,
                      bool allow_none) {
  r.field(key, spec, doc + " (prior|correct|rm_scores|criterion_scores|step_scores|response_lengths|"
                           "prior.<component>|extra.<key>|meta.<key>" + (allow_none ? "|none)" : ")"));
  return check_signal(r, key, spec, allow_none);
}

void read_signal(config::Reader& r, const std::string& key, std::string& spec, const std::string& doc,
                 bool allow_none) {
  // The signal is this scheme's requirement (its contract).
  if (read_signal_spec(r, key, spec, doc, allow_none)) declare_signal(r, key, spec);
}

at::Tensor fetch_signal(const RewardInput& in, const std::string& spec, const std::string& scheme,
                        const std::string& param) {
  const int64_t n = in.size();
  const std::string what = "reward scheme '" + scheme + "' (parameter " + param + " = " + spec + ")";
  torch::Tensor t;
  if (spec == "prior") {
    TORCH_CHECK(in.prior_total.defined(), what, ": no earlier reward component (list the reward to shape first)");
    t = in.prior_total;
  } else if (spec == "correct") {
    TORCH_CHECK(in.correct.defined(), what, ": no earlier component reports correctness (list a task or answer "
                                             "verifier first)");
    t = in.correct;
  } else if (spec == "rm_scores") t = in.rm_scores;
  else if (spec == "criterion_scores") t = in.criterion_scores;
  else if (spec == "step_scores") t = in.step_scores;
  else if (spec == "response_lengths") t = in.response_lengths;
  else if (starts_with(spec, "prior.")) {
    const std::string k = spec.substr(6);
    auto it = in.prior.find(k);
    TORCH_CHECK(it != in.prior.end(), what, ": no earlier reward component named '", k,
                "' (earlier components: ", known_keys(in.prior), "); list it before this one in reward.components");
    t = it->second;
  } else if (starts_with(spec, "extra.")) {
    const std::string k = spec.substr(6);
    auto it = in.extra.find(k);
    TORCH_CHECK(it != in.extra.end(), what, ": RewardInput::extra has no '", k, "' (present: ", known_keys(in.extra), ")");
    t = it->second;
  } else if (starts_with(spec, "meta.")) {
    const std::string k = spec.substr(5);
    TORCH_CHECK(static_cast<int64_t>(in.metadata.size()) == n, what, ": the batch has no per-sample metadata");
    std::vector<double> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const nlohmann::json& m = in.meta(i);
      TORCH_CHECK(m.is_object() && m.contains(k), what, ": metadata key '", k, "' missing in sample ", i);
      const auto& x = m.at(k);
      TORCH_CHECK(x.is_number() || x.is_boolean(), what, ": metadata '", k, "' of sample ", i,
                  " must be a number or a bool, got ", x.dump());
      v[static_cast<size_t>(i)] = x.is_boolean() ? (x.get<bool>() ? 1.0 : 0.0) : x.get<double>();
    }
    return torch::tensor(v, torch::kFloat64);
  } else {
    TORCH_CHECK(false, what, ": unknown input signal");
  }
  TORCH_CHECK(t.defined(), what, ": the input is not set in this batch");
  TORCH_CHECK(t.dim() >= 1 && t.size(0) == n, what, ": must have leading dimension N = ", n, ", got shape ", t.sizes());
  return t.detach().to(torch::kCPU, torch::kFloat64);
}

at::Tensor fetch_vector(const RewardInput& in, const std::string& spec, const std::string& scheme,
                        const std::string& param) {
  at::Tensor t = fetch_signal(in, spec, scheme, param);
  TORCH_CHECK(t.dim() == 1, "reward scheme '", scheme, "' (parameter ", param, " = ", spec, "): must be [N], got shape ",
              t.sizes());
  return t;
}

at::Tensor extra_or_undefined(const RewardInput& in, const std::string& key, const std::string& scheme) {
  auto it = in.extra.find(key);
  if (it == in.extra.end() || !it->second.defined()) return {};
  TORCH_CHECK(it->second.dim() >= 1 && it->second.size(0) == in.size(), "reward scheme '", scheme, "': extra['", key,
              "'] must have leading dimension N = ", in.size(), ", got shape ", it->second.sizes());
  return it->second.detach().cpu();
}

at::Tensor require_extra(const RewardInput& in, const std::string& key, const std::string& scheme) {
  at::Tensor t = extra_or_undefined(in, key, scheme);
  TORCH_CHECK(t.defined(), "reward scheme '", scheme, "' needs RewardInput::extra['", key, "'], which is not set (present: ",
              known_keys(in.extra), ")");
  return t;
}

at::Tensor lengths_of(const RewardInput& in, const std::string& scheme) {
  require_tensor(in, in.response_lengths, "response_lengths", scheme);
  return in.response_lengths.detach().to(torch::kCPU, torch::kFloat64);
}

Refs fetch_refs(const RewardInput& in, const std::string& key, const std::string& scheme) {
  const int64_t n = in.size();
  Refs out;
  if (at::Tensor v = extra_or_undefined(in, key, scheme); v.defined()) {
    TORCH_CHECK(v.dim() == 2, "reward scheme '", scheme, "': extra['", key, "'] must be [N, M], got ", v.sizes());
    out.values = v.to(torch::kFloat64);
    at::Tensor m = extra_or_undefined(in, key + "_mask", scheme);
    if (m.defined())
      TORCH_CHECK(m.sizes() == v.sizes(), "reward scheme '", scheme, "': extra['", key, "_mask'] ", m.sizes(),
                  " must match extra['", key, "'] ", v.sizes());
    out.mask = m.defined() ? m.to(torch::kBool) : torch::ones(v.sizes(), torch::kBool);
    return out;
  }
  std::vector<std::vector<double>> rows(static_cast<size_t>(n));
  size_t width = 0;
  if (static_cast<int64_t>(in.metadata.size()) == n) {
    for (int64_t i = 0; i < n; ++i) {
      const nlohmann::json& m = in.meta(i);
      if (!m.is_object() || !m.contains(key) || m.at(key).is_null()) continue;
      const auto& list = m.at(key);
      TORCH_CHECK(list.is_array(), "reward scheme '", scheme, "': metadata '", key, "' of sample ", i,
                  " must be a list of numbers, got ", list.dump());
      for (const auto& x : list) {
        TORCH_CHECK(x.is_number(), "reward scheme '", scheme, "': metadata '", key, "' of sample ", i,
                    " holds a non-number ", x.dump());
        rows[static_cast<size_t>(i)].push_back(x.get<double>());
      }
      width = std::max(width, rows[static_cast<size_t>(i)].size());
    }
  }
  const auto w = static_cast<int64_t>(width);
  out.values = torch::zeros({n, w}, torch::kFloat64);
  out.mask = torch::zeros({n, w}, torch::kBool);
  for (int64_t i = 0; i < n; ++i)
    for (size_t j = 0; j < rows[static_cast<size_t>(i)].size(); ++j) {
      out.values[i][static_cast<int64_t>(j)] = rows[static_cast<size_t>(i)][j];
      out.mask[i][static_cast<int64_t>(j)] = true;
    }
  return out;
}

at::Tensor step_mask_of(const RewardInput& in, const at::Tensor& steps, const std::string& scheme) {
  if (in.step_mask.defined()) {
    TORCH_CHECK(in.step_mask.sizes() == steps.sizes(), "reward scheme '", scheme, "': step_mask ", in.step_mask.sizes(),
                " must match the per-step values ", steps.sizes());
    return in.step_mask.detach().cpu().to(torch::kBool);
  }
  if (in.step_ends.defined()) {
    TORCH_CHECK(in.step_ends.sizes() == steps.sizes(), "reward scheme '", scheme, "': step_ends ", in.step_ends.sizes(),
                " must match the per-step values ", steps.sizes());
    return in.step_ends.detach().cpu() >= 0;
  }
  return torch::ones(steps.sizes(), torch::kBool);
}

std::vector<std::string> gold_strings(const RewardInput& in, int64_t i, const std::string& key,
                                      const std::string& scheme) {
  const nlohmann::json& m = in.meta(i);
  TORCH_CHECK(m.is_object() && m.contains(key), "reward scheme '", scheme, "' needs metadata key '", key,
              "', missing in sample ", i);
  const auto one = [&](const nlohmann::json& x) { return x.is_string() ? x.get<std::string>() : x.dump(); };
  std::vector<std::string> out;
  const auto& v = m.at(key);
  if (v.is_array())
    for (const auto& x : v) out.push_back(one(x));
  else
    out.push_back(one(v));
  return out;
}

RewardOutput make_output(const at::Tensor& rewards) {
  RewardOutput out;
  out.rewards = rewards.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return out;
}

double mean_of(const at::Tensor& t) {
  if (!t.defined() || t.numel() == 0) return 0.0;
  return t.to(torch::kFloat64).mean().item<double>();
}

}  // namespace keel::rewards::glue
