// PAR and the sigmoid family (see par.h).
#include "rewards/schemes/par.h"

#include <torch/torch.h>

#include "base/error.h"
#include "base/reader.h"

namespace keel::rewards {

ParOptions par_preset(const std::string& name) {
  ParOptions o;
  if (name == "par") return o;
  if (name == "sigmoid") { o.centered = false; return o; }
  if (name == "sigmoidk2") { o.centered = false; o.k = 2.0; return o; }
  if (name == "sigmoidk3") { o.centered = false; o.k = 3.0; return o; }
  if (name == "tanh") { o.squash = "tanh"; return o; }
  if (name == "fittedpoly") { o.squash = "fittedpoly"; return o; }
  if (name == "centered") { o.squash = "identity"; return o; }
  // "slow growth then fast converge" (older code): PAR applied to r − 3.
  if (name == "sgfc") { o.shift = -3.0; return o; }
  fail("unknown sigmoid-family shaping '{}' (known: par, sigmoid, sigmoidk2, sigmoidk3, tanh, "
       "fittedpoly, centered, sgfc)", name);
}

at::Tensor fitted_sigmoid_poly(const at::Tensor& z) {
  const at::Tensor z2 = z * z;
  // Horner form of 0.000376132953 z^5 − 0.0132916611 z^3 + 0.239537005 z + 0.5.
  const at::Tensor poly = z * (0.239537005 + z2 * (-0.0132916611 + z2 * 0.000376132953)) + 0.5;
  return torch::where(z.abs() <= 4.0, poly, torch::sigmoid(z));
}

namespace {

at::Tensor squash(const at::Tensor& z, const std::string& kind) {
  if (kind == "sigmoid") return torch::sigmoid(z);
  if (kind == "tanh") return torch::tanh(z);
  if (kind == "fittedpoly") return fitted_sigmoid_poly(z);
  if (kind == "identity") return z;
  fail("unknown squash '{}' (known: sigmoid, tanh, fittedpoly, identity)", kind);
}

}  // namespace

at::Tensor par_reward(const at::Tensor& r, const at::Tensor& r_ref, const at::Tensor& ref_mask,
                      const ParOptions& opts) {
  TORCH_CHECK(r.dim() == 1, "par_reward: r must be [N], got ", r.sizes());
  const at::Tensor x = r + opts.shift;
  if (!opts.centered) return squash(opts.k * x, opts.squash);

  TORCH_CHECK(r_ref.defined() && r_ref.dim() == 2 && r_ref.size(0) == r.size(0),
              "par_reward: r_ref must be [N, M] with N = ", r.size(0), ", got ",
              r_ref.defined() ? r_ref.sizes() : at::IntArrayRef{});
  at::Tensor valid = ref_mask.defined() ? ref_mask.to(torch::kBool)
                                        : torch::ones(r_ref.sizes(), r_ref.options().dtype(torch::kBool));
  TORCH_CHECK(valid.sizes() == r_ref.sizes(), "par_reward: ref_mask ", valid.sizes(), " != r_ref ",
              r_ref.sizes());
  // Keep only the first max_refs valid references of each row (column order).
  valid = valid.logical_and(valid.to(torch::kLong).cumsum(1) <= opts.max_refs);
  const at::Tensor count = valid.sum(1);  // [N]
  const at::Tensor per_ref = squash(opts.k * (x.unsqueeze(1) - r_ref), opts.squash);  // [N, M]
  const at::Tensor mean = per_ref.masked_fill(valid.logical_not(), 0.0).sum(1) /
                          count.clamp_min(1).to(per_ref.scalar_type());
  const at::Tensor missing = count == 0;
  if (!missing.any().item<bool>()) return mean;
  if (opts.missing_refs == "fail")
    fail("par: {} response(s) have no reference rewards (set missing_refs: uncentered|raw to allow it)",
         missing.sum().item<int64_t>());
  const at::Tensor fallback = opts.missing_refs == "raw" ? r : squash(opts.k * x, opts.squash);
  return torch::where(missing, fallback, mean);
}

void read_par_options(config::Reader& r, ParOptions& o) {
  r.field("squash", o.squash, "squashing function").one_of({"sigmoid", "tanh", "fittedpoly", "identity"}, "squash");
  r.field("centered", o.centered, "subtract each stored reference reward before squashing");
  r.field("k", o.k, "slope of the squashing function").gt(0);
  r.field("shift", o.shift, "added to the reward before centring (sgfc: -3)");
  r.field("max_refs", o.max_refs, "use at most this many stored references per prompt").ge(1);
  r.field("num_refs", o.num_refs, "references generated per prompt by the data pipeline").ge(1);
  r.field("missing_refs", o.missing_refs, "a row without references: fail, squash uncentred, or keep raw")
      .one_of({"fail", "uncentered", "raw"}, "missing_refs policy");
}

}  // namespace keel::rewards
