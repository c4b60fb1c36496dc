// VerifierReward: a VerifyFn run over the batch on the shared Scorer.
#include "rewards/verifiers/verifier.h"

#include <fmt/format.h>
#include <torch/torch.h>

namespace keel::rewards {

VerifierReward::VerifierReward(std::string name, VerifyFn fn, std::optional<double> correct_value)
    : name_(std::move(name)), fn_(std::move(fn)), correct_value_(correct_value) {}

void VerifierReward::bind(const RewardContext& ctx) {
  if (ctx.scorer) scorer_ = ctx.scorer;
}

RewardOutput VerifierReward::score(const RewardInput& in) {
  TORCH_CHECK(in.metadata.empty() || static_cast<int64_t>(in.metadata.size()) == in.size(), "reward scheme '",
              name_, "': metadata has ", in.metadata.size(), " records for ", in.size(), " responses");
  if (!scorer_) {
    if (!own_scorer_) own_scorer_ = std::make_unique<Scorer>();
    scorer_ = own_scorer_.get();
  }
  const ScoreResult r = scorer_->score(fn_, in.responses, in.metadata);
  RewardOutput out;
  const int64_t n = in.size();
  std::vector<float> values(r.values.begin(), r.values.end());
  std::vector<int64_t> status(r.status.size());
  for (size_t i = 0; i < r.status.size(); ++i) status[i] = static_cast<int64_t>(r.status[i]);
  out.rewards = torch::tensor(values, torch::kFloat32).reshape({n});
  out.detail["status"] = torch::tensor(status, torch::kInt64).reshape({n});
  if (correct_value_) {
    std::vector<int64_t> ok(r.values.size());
    for (size_t i = 0; i < ok.size(); ++i) ok[i] = r.status[i] == ScoreStatus::kOk && r.values[i] == *correct_value_;
    out.correct = torch::tensor(ok, torch::kInt64).reshape({n}).to(torch::kBool);
  }
  add_scorer_metrics(r, out.metrics);
  out.metrics["scorer/stuck_workers"] = static_cast<double>(scorer_->stuck_workers());
  // The share of the verifier's calls that failed (malformed texts never reach it: a policy that
  // emits nothing is not a broken verifier), what the trainer's error watch reads.
  const int64_t calls = n - r.malformed;
  out.metrics["error_share"] = calls > 0 ? static_cast<double>(r.errors + r.timeouts) / static_cast<double>(calls) : 0.0;
  if (r.errors > 0) out.failures["error"] = r.first_error.empty() ? "(no message)" : r.first_error;
  if (r.timeouts > 0)
    out.failures["timeout"] = fmt::format("a verifier call ran past the deadline of {} ms (reward.timeout_ms)",
                                          scorer_->options().timeout_ms);
  if (r.malformed > 0) out.failures["malformed"] = r.first_malformed;
  return out;
}

}  // namespace keel::rewards
