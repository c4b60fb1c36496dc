// The judge stage's plumbing (see judge.h): registry, building, contracts, the run with its metrics,
// and the output specs.
#include "rewards/judges/judge.h"

#include <chrono>

#include <torch/torch.h>

#include "base/error.h"
#include "base/reader.h"

namespace keel::rewards {

const JudgeRegistry& builtin_judges() {
  static const JudgeRegistry reg = [] {
    JudgeRegistry r("judge type");
    register_builtin_judges(r);
    return r;
  }();
  return reg;
}

BuiltJudge build_judge(const JudgeRegistry& registry, config::Reader& params, const std::string& type,
                       const std::string& name) {
  BuiltJudge b;
  b.name = name;
  b.type = type;
  b.contract = record_requirements([&] { b.impl = registry.get(type).fn(params, name); });
  return b;
}

std::vector<JudgeContract> judge_contracts(const RewardSpec& section, const JudgeRegistry& registry) {
  std::vector<JudgeContract> out;
  for (size_t i = 0; i < section.judges.size(); ++i) {
    const auto& j = section.judges[i];
    if (!registry.contains(j.type)) continue;  // reported by the loader
    config::Diagnostics ignored;               // (parameter errors are reported by the loader too)
    config::Reader r(j.params.is_null() ? nullptr : &j.params, j.params_path, ignored);
    BuiltJudge b = build_judge(registry, r, j.type, j.name);
    out.push_back({j.name, j.type, "reward.judges." + std::to_string(i), std::move(b.contract), b.impl->produces()});
  }
  return out;
}

void run_judges(std::vector<BuiltJudge>& judges, RewardInput& in, std::map<std::string, double>& metrics) {
  if (judges.empty()) return;
  double total = 0;
  for (auto& j : judges) {
    const auto t0 = std::chrono::steady_clock::now();
    const JudgeStats s = j.impl->run(in);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    total += dt;
    const std::string p = "judge/" + j.name + "/";
    // Timings live under time/ and perf/ (what run comparisons skip); counts under judge/<name>/.
    metrics["time/judge/" + j.name + "_s"] = dt;
    metrics["perf/judge/" + j.name + "/tokens_per_s"] = dt > 0 ? static_cast<double>(s.tokens) / dt : 0.0;
    metrics[p + "prompts"] = static_cast<double>(s.prompts);
    metrics[p + "tokens"] = static_cast<double>(s.tokens);
    metrics[p + "invalid"] = static_cast<double>(s.invalid);
    metrics[p + "timeouts"] = static_cast<double>(s.timeouts);
    metrics[p + "mean"] = s.mean;
  }
  metrics["time/judge_s"] = total;
}

bool check_judge_output(config::Reader& r, const std::string& key, const std::string& spec,
                        const std::vector<std::string>& allowed) {
  const bool extra = spec.rfind("extra.", 0) == 0 && spec.size() > 6;
  if (extra || std::find(allowed.begin(), allowed.end(), spec) != allowed.end()) return true;
  std::string list;
  for (const auto& a : allowed) list += a + " | ";
  r.error(key, fmt::format("expected {}extra.<key>, got '{}'", list, spec));
  return false;
}

void write_judge_output(RewardInput& in, const std::string& spec, const torch::Tensor& values) {
  const auto v = values.to(torch::kFloat);
  if (spec == "criterion_scores") {
    in.criterion_scores = v.dim() == 1 ? v.unsqueeze(1) : v;
  } else if (spec == "rm_scores") {
    TORCH_CHECK(v.dim() == 1, "judge output rm_scores must be [N], got ", v.sizes());
    in.rm_scores = v;
  } else if (spec == "step_scores") {
    in.step_scores = v;
  } else if (spec.rfind("extra.", 0) == 0) {
    in.extra[spec.substr(6)] = v;
  } else {
    fail("judge output '{}': not criterion_scores, rm_scores, step_scores or extra.<key>", spec);
  }
}

}  // namespace keel::rewards
