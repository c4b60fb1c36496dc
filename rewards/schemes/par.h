// PAR — Preference As Reward — and its sigmoid-family siblings (spec rewards.md A1; Fu et al.,
// arXiv 2502.18770, repo PorUna-byte/PAR src/trainers/reward_shaper.py).
//
//   PAR(r; refs) = (1/M) Σ_m squash( k·(r + shift − r_ref,m) )      squash = σ | tanh | poly | identity
//
// One function covers par, sigmoid, sigmoidk2, sigmoidk3, tanh, fittedpoly, centered and sgfc; the
// YAML names differ only in their default options (par_preset). Pure tensor math: the references are
// RM scores of stored reference responses, read by the scorer, never computed here.
//
// Legend: N responses in the batch, M reference slots per response (ragged: see ref_mask).
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct ParOptions {
  std::string squash = "sigmoid";      ///< sigmoid | tanh | fittedpoly | identity
  bool centered = true;                ///< subtract the reference rewards (PAR); false = squash(k·r)
  double k = 1.0;                      ///< slope ("relative sigmoid"; sigmoidk2/k3 presets use 2/3)
  double shift = 0.0;                  ///< added to r before centring (sgfc uses −3)
  int64_t max_refs = 10;               ///< only the first max_refs valid references are used
  int64_t num_refs = 5;                ///< how many references the data pipeline generates (metadata)
  std::string missing_refs = "fail";   ///< fail | uncentered | raw : a centred row with no reference
};

/// Default options of each YAML name: par, sigmoid, sigmoidk2, sigmoidk3, tanh, fittedpoly,
/// centered, sgfc. Throws keel::Error for another name.
ParOptions par_preset(const std::string& name);

/// The odd 5th-order polynomial fitted to σ on [−4, 4] (newer PAR code), σ(z) outside:
/// 0.000376132953·z⁵ − 0.0132916611·z³ + 0.239537005·z + 0.5.
at::Tensor fitted_sigmoid_poly(const at::Tensor& z);

/// Shaped rewards [N].
///   r        [N]     raw RM reward of each response
///   r_ref    [N, M]  reference rewards (may be undefined when !centered)
///   ref_mask [N, M]  bool, true = a stored reference (undefined = all valid); references are used
///                    in column order, the first max_refs valid ones.
/// Rows with no reference follow missing_refs: "fail" throws keel::Error, "uncentered" uses
/// squash(k·(r+shift)), "raw" returns r unchanged (what the newer PAR code does).
at::Tensor par_reward(const at::Tensor& r, const at::Tensor& r_ref, const at::Tensor& ref_mask,
                      const ParOptions& opts);

/// Reads reward.par params into `o` (which holds the preset defaults on entry).
void read_par_options(config::Reader& r, ParOptions& o);

}  // namespace keel::rewards
