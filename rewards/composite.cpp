// CompositeReward: weighted sum of registered schemes, built from reward.components.
#include "rewards/composite.h"

#include <set>

#include <torch/torch.h>

#include "base/error.h"
#include "base/reader.h"
#include "rewards/reward_spec.h"

namespace keel::rewards {

void add_summary_metrics(const std::string& prefix, const torch::Tensor& values,
                         std::map<std::string, double>& metrics) {
  if (!values.defined() || values.numel() == 0) return;
  const torch::Tensor v = values.detach().to(torch::kFloat64).flatten();
  metrics[prefix + "/mean"] = v.mean().item<double>();
  metrics[prefix + "/std"] = v.std(/*unbiased=*/false).item<double>();
  metrics[prefix + "/min"] = v.min().item<double>();
  metrics[prefix + "/max"] = v.max().item<double>();
}

CompositeReward::CompositeReward(std::vector<Component> components, const ScorerOptions& scorer_options,
                                 std::vector<BuiltJudge> judges, const JudgeContext& judge_ctx)
    : judges_(std::move(judges)), components_(std::move(components)), scorer_(std::make_unique<Scorer>(scorer_options)) {
  for (auto& j : judges_) {
    TORCH_CHECK(j.impl, "CompositeReward: judge '", j.name, "' has no implementation");
    j.impl->bind(judge_ctx);
  }
  RewardContext ctx;
  ctx.scorer = scorer_.get();
  for (const auto& p : judge_ctx.probes) ctx.probes.emplace_back(p.prompt, p.answer);
  for (auto& c : components_) {
    TORCH_CHECK(c.impl, "CompositeReward: component '", c.name, "' has no scheme");
    c.impl->bind(ctx);
  }
}

RewardOutput CompositeReward::score(const RewardInput& in) {
  in.check();
  const int64_t n = in.size();
  RewardInput local = in;  // shallow for tensors; `prior` grows as components are scored
  RewardOutput out;
  run_judges(judges_, local, out.metrics);  // the judges' signals, before any component reads them
  if (!judges_.empty() && local.step_scores.defined() && local.step_ends.defined()) {
    out.step_scores = local.step_scores;
    out.step_ends = local.step_ends;
  }
  if (const auto it = local.extra.find("pair_prefs"); !judges_.empty() && it != local.extra.end()) out.pair_prefs = it->second;
  out.rewards = torch::zeros({n}, torch::kFloat32);
  for (auto& c : components_) {
    RewardOutput part = c.impl->score(local);
    TORCH_CHECK(part.rewards.defined() && part.rewards.dim() == 1 && part.rewards.size(0) == n, "reward scheme '",
                c.scheme, "' (component '", c.name, "') must return rewards of shape [", n, "], got ",
                part.rewards.defined() ? part.rewards.sizes() : torch::IntArrayRef{});
    const torch::Tensor r = part.rewards.to(torch::kFloat32);
    out.rewards += static_cast<float>(c.weight) * r;
    if (part.token_rewards.defined()) {
      TORCH_CHECK(part.token_rewards.dim() == 2 && part.token_rewards.size(0) == n, "reward scheme '", c.scheme,
                  "' must return token_rewards of shape [N, T] with N = ", n, ", got ", part.token_rewards.sizes());
      const torch::Tensor tr = static_cast<float>(c.weight) * part.token_rewards.to(torch::kFloat32);
      if (!out.token_rewards.defined()) {
        out.token_rewards = tr;
      } else {
        TORCH_CHECK(out.token_rewards.sizes() == tr.sizes(), "reward components return token_rewards of different shapes: ",
                    out.token_rewards.sizes(), " vs ", tr.sizes(), " (component '", c.name, "')");
        out.token_rewards = out.token_rewards + tr;
      }
    }
    out.detail[c.name] = r;
    for (auto& [k, t] : part.detail) out.detail[c.name + "/" + k] = t;
    add_summary_metrics("reward/" + c.name, r, out.metrics);
    for (const auto& [k, v] : part.metrics) {
      if (k.rfind("scorer/", 0) == 0) out.metrics[k] += v;
      else out.metrics["reward/" + c.name + "/" + k] = v;
    }
    for (const auto& [kind, msg] : part.failures) out.failures[c.name + "/" + kind] = msg;
    if (part.correct.defined()) {
      TORCH_CHECK(part.correct.dim() == 1 && part.correct.size(0) == n, "reward scheme '", c.scheme,
                  "' must return correct of shape [", n, "], got ", part.correct.sizes());
      const torch::Tensor ok = part.correct.to(torch::kBool);
      out.correct = out.correct.defined() ? out.correct.logical_and(ok) : ok;
      local.correct = out.correct;
    }
    local.prior[c.name] = r;
    local.prior_total = local.prior_total.defined() ? local.prior_total + r : r.clone();
  }
  add_summary_metrics("reward/total", out.rewards, out.metrics);
  for (const char* k : {"scorer/timeouts", "scorer/errors", "scorer/malformed"}) out.metrics.try_emplace(k, 0.0);
  // A gauge of the shared scorer, not a per-component count: set once, never summed.
  out.metrics["scorer/stuck_workers"] = static_cast<double>(scorer_->stuck_workers());
  return out;
}

bool CompositeReward::stateful() const {
  for (const auto& c : components_)
    if (c.impl->stateful()) return true;
  return false;
}

void CompositeReward::save_state(RewardState& out) const {
  for (const auto& c : components_) {
    if (!c.impl->stateful()) continue;
    RewardState part;
    c.impl->save_state(part);
    for (auto& [k, t] : part) out[c.name + "/" + k] = t;
  }
}

void CompositeReward::load_state(const RewardState& in) {
  for (auto& c : components_) {
    if (!c.impl->stateful()) continue;
    const std::string prefix = c.name + "/";
    RewardState part;
    for (const auto& [k, t] : in)
      if (k.rfind(prefix, 0) == 0) part[k.substr(prefix.size())] = t;
    if (part.empty()) fail("reward state: no entries for stateful component '{}' (expected keys '{}*')", c.name, prefix);
    c.impl->load_state(part);
  }
}

std::unique_ptr<CompositeReward> build_composite_reward(const RewardSpec& section,
                                                        const RewardRegistry& registry,
                                                        const std::string& default_scheme,
                                                        const JudgeContext& judge_ctx) {
  config::Diagnostics diag;
  std::vector<BuiltJudge> judges;
  const JudgeRegistry& judge_types = builtin_judges();
  std::set<std::string> judge_names;
  for (size_t i = 0; i < section.judges.size(); ++i) {
    const auto& j = section.judges[i];
    const std::string path = "reward.judges." + std::to_string(i);
    const config::Source src = j.params.source();
    if (!judge_types.contains(j.type)) {
      diag.error(src, path + ".type", fmt::format("unknown {} '{}' (known: {})", judge_types.kind(), j.type, judge_types.known()));
      continue;
    }
    if (!judge_names.insert(j.name).second)
      diag.error(src, path + ".name", fmt::format("duplicate judge name '{}'", j.name));
    config::Reader r(j.params.is_null() ? nullptr : &j.params, j.params_path, diag);
    BuiltJudge b = build_judge(judge_types, r, j.type, j.name);
    r.finish();
    judges.push_back(std::move(b));
  }
  std::vector<CompositeReward::Component> built;
  std::set<std::string> names;
  std::vector<ComponentSpec> comps = section.components;
  std::string base = "reward.components";
  if (comps.empty()) {
    if (default_scheme.empty())
      fail("reward.components: no reward components and the task has no verifier; add reward.components "
           "(see `keel list rewards`)");
    ComponentSpec c;
    c.scheme = default_scheme;
    c.params_path = "reward (task default " + default_scheme + ").params";
    comps.push_back(std::move(c));
  }
  for (size_t i = 0; i < comps.size(); ++i) {
    const auto& c = comps[i];
    const std::string path = base + "." + std::to_string(i);
    const config::Source src = c.params.source();
    if (!registry.contains(c.scheme)) {
      diag.error(src, path + ".scheme",
                 fmt::format("unknown {} '{}' (known: {})", registry.kind(), c.scheme, registry.known()));
      continue;
    }
    const std::string name = c.name.empty() ? c.scheme : c.name;
    if (!names.insert(name).second)
      diag.error(src, path + ".name", fmt::format("duplicate reward component name '{}' (set a distinct name:)", name));
    config::Reader r(c.params.is_null() ? nullptr : &c.params, c.params_path, diag);
    BuiltScheme b = build_scheme(registry, r, c.scheme);
    r.finish();
    built.push_back({name, c.scheme, c.weight, std::move(b.impl), std::move(b.contract)});
  }
  diag.throw_if_any();
  ScorerOptions so;
  so.timeout_ms = section.timeout_ms;
  so.fallback = section.fallback;
  so.threads = section.threads;
  so.max_bytes = section.max_bytes;
  so.max_stuck_workers = section.max_stuck_workers;
  return std::make_unique<CompositeReward>(std::move(built), so, std::move(judges), judge_ctx);
}

void validate_reward_params(const RewardRegistry& registry, config::Reader& params, const std::string& scheme) {
  if (!registry.contains(scheme)) return;  // the loader reports unknown schemes itself
  (void)build_scheme(registry, params, scheme);
}

std::vector<ComponentContract> reward_contracts(const RewardSpec& section, const RewardRegistry& registry,
                                                const std::string& default_scheme) {
  std::vector<ComponentContract> out;
  std::vector<ComponentSpec> comps = section.components;
  if (comps.empty() && !default_scheme.empty()) {
    ComponentSpec c;
    c.scheme = default_scheme;
    c.params_path = "reward.components.0.params";
    comps.push_back(std::move(c));
  }
  for (size_t i = 0; i < comps.size(); ++i) {
    const auto& c = comps[i];
    if (!registry.contains(c.scheme)) continue;  // reported by the loader
    config::Diagnostics ignored;                 // (parameter errors are reported by the loader too)
    config::Reader r(c.params.is_null() ? nullptr : &c.params, c.params_path, ignored);
    BuiltScheme b = build_scheme(registry, r, c.scheme);
    out.push_back({c.name.empty() ? c.scheme : c.name, c.scheme, "reward.components." + std::to_string(i),
                   std::move(b.contract), registry.get(c.scheme).traits.judges_correctness});
  }
  return out;
}

}  // namespace keel::rewards
