// ONI reward combination and bookkeeping (see oni.h).
#include "rewards/schemes/oni.h"

#include <algorithm>
#include <cstring>

#include <torch/torch.h>

#include "base/error.h"
#include "base/reader.h"

namespace keel::rewards {

at::Tensor oni_reward(const at::Tensor& r_env, const at::Tensor& r_int, const at::Tensor& counts, const OniOptions& o) {
  TORCH_CHECK(r_env.sizes() == r_int.sizes() && counts.sizes() == r_env.sizes(), "oni_reward: r_env ", r_env.sizes(),
              ", r_int ", r_int.sizes(), ", counts ", counts.sizes(), " must match");
  const at::Tensor n = counts.to(r_env.scalar_type()).clamp_min(1.0);
  return o.c_ext * r_env + o.c_llm * r_int / n.pow(o.beta);
}

at::Tensor oni_episode_counts(const at::Tensor& message_ids, const at::Tensor& episode_start, const at::Tensor& step_mask) {
  TORCH_CHECK(message_ids.dim() == 2 && episode_start.sizes() == message_ids.sizes(), "oni_episode_counts: message_ids ",
              message_ids.sizes(), " and episode_start ", episode_start.sizes(), " must both be [N, T]");
  const int64_t t = message_ids.size(1);
  const at::Tensor mask = step_mask.defined() ? step_mask.to(torch::kBool)
                                              : torch::ones(message_ids.sizes(), message_ids.options().dtype(torch::kBool));
  const at::Tensor episode = episode_start.to(torch::kLong).cumsum(1);  // [N, T] episode number per step
  // [N, T(current), T(earlier)]: same message, same episode, earlier-or-equal, valid.
  const at::Tensor same_msg = message_ids.unsqueeze(2) == message_ids.unsqueeze(1);
  const at::Tensor same_ep = episode.unsqueeze(2) == episode.unsqueeze(1);
  const at::Tensor causal = torch::ones({t, t}, mask.options()).tril();
  const at::Tensor hit = same_msg.logical_and(same_ep).logical_and(causal).logical_and(mask.unsqueeze(1));
  return hit.sum(2).masked_fill(mask.logical_not(), 0);
}

int64_t OniMessageCounter::observe(int64_t env, const std::string& message) { return ++counts_[env][message]; }

void OniMessageCounter::reset(int64_t env) { counts_.erase(env); }

at::Tensor string_to_tensor(const std::string& s) {
  at::Tensor t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), s.data(), s.size());
  return t;
}

std::string tensor_to_string(const at::Tensor& t) {
  const at::Tensor c = t.to(torch::kUInt8).contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), static_cast<size_t>(c.numel()));
}

// Layout: "<prefix>n" = number of (env, message, count) triples; "<prefix>env", "<prefix>count"
// int64 [n]; "<prefix>msg/<i>" the message bytes.
void OniMessageCounter::save_state(StateDict& out, const std::string& prefix) const {
  std::vector<int64_t> envs, counts;
  int64_t i = 0;
  for (const auto& [env, msgs] : counts_)
    for (const auto& [msg, c] : msgs) {
      envs.push_back(env);
      counts.push_back(c);
      out[prefix + "msg/" + std::to_string(i++)] = string_to_tensor(msg);
    }
  out[prefix + "env"] = torch::tensor(envs, torch::kLong);
  out[prefix + "count"] = torch::tensor(counts, torch::kLong);
}

void OniMessageCounter::load_state(const StateDict& in, const std::string& prefix) {
  const at::Tensor envs = state_get(in, prefix + "env");
  const at::Tensor counts = state_get(in, prefix + "count");
  if (envs.numel() != counts.numel()) fail("reward state: '{}env' and '{}count' differ in length", prefix, prefix);
  counts_.clear();
  for (int64_t i = 0; i < envs.numel(); ++i)
    counts_[envs[i].item<int64_t>()][tensor_to_string(state_get(in, prefix + "msg/" + std::to_string(i)))] =
        counts[i].item<int64_t>();
}

double OniLabelCache::reward(const std::string& message) {
  auto it = labels_.find(message);
  if (it != labels_.end()) return it->second;
  if (std::find(pending_.begin(), pending_.end(), message) == pending_.end()) pending_.push_back(message);
  return 0.0;
}

void OniLabelCache::set_label(const std::string& message, double label) {
  labels_[message] = label;
  pending_.erase(std::remove(pending_.begin(), pending_.end(), message), pending_.end());
}

std::vector<std::string> OniLabelCache::take_pending(size_t max) {
  std::vector<std::string> out;
  while (!pending_.empty() && out.size() < max) {
    out.push_back(pending_.front());
    pending_.pop_front();
  }
  return out;
}

// Layout: "<prefix>label" float64 [n] with "<prefix>key/<i>" bytes; "<prefix>pending_n" and
// "<prefix>pending/<i>" bytes, in queue order.
void OniLabelCache::save_state(StateDict& out, const std::string& prefix) const {
  std::vector<double> values;
  int64_t i = 0;
  for (const auto& [msg, v] : labels_) {
    values.push_back(v);
    out[prefix + "key/" + std::to_string(i++)] = string_to_tensor(msg);
  }
  out[prefix + "label"] = torch::tensor(values, torch::kFloat64);
  state_put_double(out, prefix + "pending_n", static_cast<double>(pending_.size()));
  for (size_t j = 0; j < pending_.size(); ++j) out[prefix + "pending/" + std::to_string(j)] = string_to_tensor(pending_[j]);
}

void OniLabelCache::load_state(const StateDict& in, const std::string& prefix) {
  const at::Tensor values = state_get(in, prefix + "label");
  labels_.clear();
  pending_.clear();
  for (int64_t i = 0; i < values.numel(); ++i)
    labels_[tensor_to_string(state_get(in, prefix + "key/" + std::to_string(i)))] = values[i].item<double>();
  const auto n = static_cast<int64_t>(state_get_double(in, prefix + "pending_n"));
  for (int64_t j = 0; j < n; ++j) pending_.push_back(tensor_to_string(state_get(in, prefix + "pending/" + std::to_string(j))));
}

void read_oni_options(config::Reader& r, OniOptions& o) {
  r.field("c_ext", o.c_ext, "extrinsic reward coefficient").ge(0);
  r.field("c_llm", o.c_llm, "intrinsic (LLM feedback) reward coefficient").ge(0);
  r.field("beta", o.beta, "exponent of the per-episode message count").ge(0);
}

}  // namespace keel::rewards
