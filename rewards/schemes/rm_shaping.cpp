// RM-reward shaping pipeline (see rm_shaping.h).
#include "rewards/schemes/rm_shaping.h"

#include <torch/torch.h>

#include "base/reader.h"

namespace keel::rewards {

namespace {

bool is_sigmoid_family(const std::string& s) {
  static const std::vector<std::string> kFamily{"par", "sigmoid", "sigmoidk2", "sigmoidk3", "tanh", "fittedpoly", "centered", "sgfc"};
  return std::find(kFamily.begin(), kFamily.end(), s) != kFamily.end();
}

}  // namespace

const std::vector<std::string>& rm_shaping_names() {
  static const std::vector<std::string> kNames{"vanilla", "warm", "meanstd", "clip", "minmax", "lsc", "par", "sigmoid",
                                               "sigmoidk2", "sigmoidk3", "tanh", "fittedpoly", "centered", "sgfc"};
  return kNames;
}

at::Tensor RmShaper::apply(const at::Tensor& r_in, const at::Tensor& length, const at::Tensor& r_ref,
                           const at::Tensor& ref_mask) {
  TORCH_CHECK(r_in.dim() == 1, "RmShaper: r must be [N], got ", r_in.sizes());
  at::Tensor r = r_in;
  if (o_.length_penalty.enabled) {
    TORCH_CHECK(length.defined(), "RmShaper: the length penalty is enabled but no response lengths were given");
    r = length_penalty_reward(r, length, o_.length_penalty);
  }
  r = ceil_reward(r, o_.ceil);
  const std::string& s = o_.shaping;
  if (s == "vanilla" || s == "warm") return r;  // WARM changes the RM checkpoint, not the transform
  if (s == "meanstd" || s == "clip") {
    stats_.update(r);
    return s == "meanstd" ? meanstd_reward(r, stats_, o_.meanstd) : clip_reward(r, stats_, o_.meanstd);
  }
  if (s == "minmax") {
    range_.update(r);
    return minmax_reward(r, range_, o_.minmax);
  }
  if (s == "lsc") {
    TORCH_CHECK(r_ref.defined(), "RmShaper: lsc needs reference rewards r_ref [N, M]");
    return lsc_reward(r, r_ref, ref_mask, o_.lsc);
  }
  TORCH_CHECK(is_sigmoid_family(s), "RmShaper: unknown shaping '", s, "'");
  return par_reward(r, r_ref, ref_mask, o_.par);
}

void RmShaper::save_state(StateDict& out, const std::string& prefix) const {
  stats_.save_state(out, prefix + "meanstd/");
  range_.save_state(out, prefix + "minmax/");
}

void RmShaper::load_state(const StateDict& in, const std::string& prefix) {
  stats_.load_state(in, prefix + "meanstd/");
  range_.load_state(in, prefix + "minmax/");
}

void read_rm_shaping_options(config::Reader& r, RmShapingOptions& o) {
  r.field("shaping", o.shaping, "the one transform after length penalty and ceil").one_of(rm_shaping_names(), "shaping");
  if (is_sigmoid_family(o.shaping)) o.par = par_preset(o.shaping);
  r.section("length_penalty", "linear penalty for tokens beyond valid_len (applied first)",
            [&](config::Reader& s) { read_length_penalty_options(s, o.length_penalty); });
  double ceil = 0.0;
  if (r.field("ceil", ceil, "upper bound on the reward after the length penalty (absent = none)").present()) o.ceil.ceil = ceil;
  r.section("par", "PAR / sigmoid-family parameters", [&](config::Reader& s) { read_par_options(s, o.par); });
  r.section("meanstd", "meanstd / clip parameters", [&](config::Reader& s) { read_meanstd_options(s, o.meanstd); });
  r.section("minmax", "minmax parameters", [&](config::Reader& s) { read_minmax_options(s, o.minmax); });
  r.section("lsc", "log-sigmoid-centred parameters", [&](config::Reader& s) { read_lsc_options(s, o.lsc); });
}

}  // namespace keel::rewards
