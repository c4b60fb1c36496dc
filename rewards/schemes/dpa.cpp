// DPA directional reward (see dpa.h).
#include "rewards/schemes/dpa.h"

#include <numbers>

#include <torch/torch.h>

#include "base/reader.h"

namespace keel::rewards {

at::Tensor dpa_direction(const DpaOptions& o) {
  at::Tensor v;
  if (!o.direction.empty()) {
    v = torch::tensor(o.direction, torch::kFloat64);
  } else {
    const double th = o.angle_deg * std::numbers::pi / 180.0;
    v = torch::tensor({std::cos(th), std::sin(th)}, torch::kFloat64);
  }
  if (o.normalize) v = v / v.norm();
  return v;
}

at::Tensor dpa_reward(const at::Tensor& r, const at::Tensor& v) {
  TORCH_CHECK(r.dim() == 2, "dpa_reward: r must be [N, k], got ", r.sizes());
  TORCH_CHECK((v.dim() == 1 && v.size(0) == r.size(1)) || v.sizes() == r.sizes(), "dpa_reward: v must be [k] or [N, k] ",
              "with k = ", r.size(1), ", got ", v.sizes());
  return (r.to(torch::kFloat64) * v.to(torch::kFloat64)).sum(1);
}

at::Tensor dpa_prompt_weights(const at::Tensor& v) { return torch::round(100.0 * v).to(torch::kLong); }

at::Tensor dpa_to_helpsteer_scale(const at::Tensor& score) { return (score - 10.0) / 20.0; }

void read_dpa_options(config::Reader& r, DpaOptions& o) {
  r.field("attributes", o.attributes, "RM output attributes the direction weighs").nonempty();
  r.field("direction", o.direction, "preference vector, one entry per attribute (empty = from angle_deg)");
  r.field("angle_deg", o.angle_deg, "angle of (cos, sin) over two attributes; |angle| <= 45 keeps helpfulness >= 71")
      .ge(-180).le(180);
  r.field("normalize", o.normalize, "rescale the direction to unit length");
  if (!o.direction.empty() && o.direction.size() != o.attributes.size())
    r.error("direction", fmt::format("expected {} entries (one per attribute), got {}", o.attributes.size(), o.direction.size()));
  if (o.direction.empty() && o.attributes.size() != 2)
    r.error("attributes", "angle_deg needs exactly two attributes; give `direction` for more");
  bool nonzero = o.direction.empty();
  for (double x : o.direction) nonzero = nonzero || x != 0.0;
  if (!nonzero) r.error("direction", "must not be the zero vector");
}

}  // namespace keel::rewards
