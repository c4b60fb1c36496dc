// The "env" reward scheme: what a multi-turn environment reported, as the run's reward
// (trainer/env/: the rollout hands it over as RewardInput::extra).
//   reward  = Σ_k r_k, the episode's turn rewards (extra.env_return), or with `dense: true` each
//             turn's reward on its turn's last policy token (token_rewards; step_ends = the turn
//             ends) so token-level estimators (gae, reinforce_pp, turn_grpo) see when it came;
//   correct = extra.success (the environment's 0/1 verdict) when `success` is on.
// Rows whose environment failed (extra.env_failed = 1: a crash, a timeout) get `failed_reward`.
#include <torch/torch.h>

#include "base/reader.h"
#include "rewards/reward.h"
#include "rewards/schemes/register_util.h"

namespace keel::rewards::glue {

namespace {

class EnvScheme : public RewardScheme {
 public:
  EnvScheme(bool dense, bool success, double failed_reward)
      : dense_(dense), success_(success), failed_reward_(failed_reward) {}

  RewardOutput score(const RewardInput& in) override {
    const at::Tensor ret = require_extra(in, "env_return", "env").to(torch::kFloat64).cpu();
    TORCH_CHECK(ret.dim() == 1, "reward scheme 'env': extra.env_return must be [N], got ", ret.sizes());
    const at::Tensor failed = extra_or_undefined(in, "env_failed", "env");
    const at::Tensor bad = failed.defined() ? failed.to(torch::kFloat64).cpu().gt(0) : torch::zeros_like(ret, torch::kBool);
    RewardOutput out = make_output(torch::where(bad, torch::full_like(ret, failed_reward_), ret));
    if (dense_) {
      // Each turn's reward on its last token: [N, T] turn rewards at step_ends [N, T].
      const at::Tensor turns = require_extra(in, "env_turn_rewards", "env").to(torch::kFloat64).cpu();
      TORCH_CHECK(in.step_ends.defined() && in.step_ends.sizes() == turns.sizes(), "reward scheme 'env' (dense): ",
                  "step_ends (the turn ends) must be [N, T] like extra.env_turn_rewards ", turns.sizes());
      TORCH_CHECK(in.response_mask.defined(), "reward scheme 'env' (dense): needs response_mask [N, R]");
      const int64_t n = ret.size(0), r = in.response_mask.size(1);
      const at::Tensor ends = in.step_ends.to(torch::kLong).cpu();
      const at::Tensor valid = ends.ge(0).logical_and(ends.lt(r)).logical_and(bad.logical_not().unsqueeze(1));
      auto tok = torch::zeros({n, r + 1}, torch::kFloat64);
      tok.scatter_add_(1, torch::where(valid, ends, torch::full_like(ends, r)), turns * valid.to(torch::kFloat64));
      // A failed row keeps its failed_reward on its last policy token (the sequence convention).
      out.token_rewards = tok.narrow(1, 0, r).contiguous().to(torch::kFloat32);
      const at::Tensor last = ((in.response_mask.to(torch::kLong).cpu() *
                                torch::arange(1, r + 1, torch::kLong).unsqueeze(0)).amax(1) - 1).contiguous();
      const auto la = last.accessor<int64_t, 1>();
      const auto ba = bad.contiguous();
      const auto bb = ba.accessor<bool, 1>();
      auto ta = out.token_rewards.accessor<float, 2>();
      for (int64_t i = 0; i < n; ++i)
        if (bb[i] && la[i] >= 0) ta[i][la[i]] = static_cast<float>(failed_reward_);
      out.rewards = out.token_rewards.sum(1);
    }
    if (success_) {
      const at::Tensor s = require_extra(in, "success", "env").to(torch::kFloat64).cpu();
      out.correct = s.gt(0.5).logical_and(bad.logical_not());
      out.metrics["env/success"] = mean_of(out.correct.to(torch::kFloat64));
    }
    out.metrics["env/return_mean"] = mean_of(ret);
    out.metrics["env/failed"] = bad.to(torch::kFloat64).sum().item<double>();
    return out;
  }

 private:
  bool dense_, success_;
  double failed_reward_;
};

}  // namespace

void register_env_scheme(RewardRegistry& reg) {
  reg.add("env", "the environment's episode: sum of turn rewards (dense: each on its turn's last token), success = correct",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            bool dense = false, success = true;
            double failed = 0.0;
            r.field("dense", dense, "each turn's reward on its turn's last policy token instead of the episode sum");
            r.field("success", success, "report the environment's info.success as correctness");
            r.field("failed_reward", failed, "reward of an episode whose environment failed (crash, timeout)");
            require_input(r, "extra.env_return");
            if (dense) {
              require_input(r, "extra.env_turn_rewards", "dense");
              require_input(r, "step_ends", "dense");
            }
            if (success) require_input(r, "extra.success", "success");
            return std::make_unique<EnvScheme>(dense, success, failed);
          },
          RewardTraits{/*judges_correctness=*/true});
}

}  // namespace keel::rewards::glue
