// PURPLE preconditioning (see purple.h).
#include "rewards/schemes/purple.h"

#include <torch/torch.h>

#include "base/reader.h"

namespace keel::rewards {

at::Tensor discriminator_reward(const at::Tensor& d) { return -torch::log1p(-d); }

at::Tensor discriminator_reward_from_logits(const at::Tensor& logit) { return torch::softplus(logit); }

double purple_kappa(int64_t step, const PurpleOptions& o) {
  if (o.schedule == "constant") return o.kappa;
  const double frac = std::min(1.0, static_cast<double>(std::max<int64_t>(step, 0)) / static_cast<double>(o.decay_steps));
  if (o.schedule == "linear") return o.kappa + (o.kappa_min - o.kappa) * frac;
  // exponential: geometric interpolation kappa · (kappa_min / kappa)^frac
  return o.kappa * std::pow(o.kappa_min / o.kappa, frac);
}

at::Tensor purple_precondition(const at::Tensor& r, double kappa) {
  TORCH_CHECK(kappa > 0.0 && kappa <= 1.0, "purple_precondition: kappa must be in (0, 1], got ", kappa);
  return kappa * r;
}

void read_purple_options(config::Reader& r, PurpleOptions& o) {
  r.field("kappa", o.kappa, "reward scale at step 0 (pessimistic preconditioning)").gt(0).le(1);
  r.field("schedule", o.schedule, "how kappa moves towards kappa_min").one_of({"constant", "linear", "exponential"}, "schedule");
  r.field("kappa_min", o.kappa_min, "kappa after decay_steps").gt(0).le(1);
  r.field("decay_steps", o.decay_steps, "steps over which kappa decays").ge(1);
}

}  // namespace keel::rewards
