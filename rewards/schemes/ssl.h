// SSL — Sweet Spot Learning, a tiered, progressively amplified reward (spec rewards.md A3; Wu et
// al., arXiv 2601.22491). Only a summary of the paper was reachable: everything below except the
// form R = C + α·Ŝ is the spec's [interp] — INTERPRETATION, a design choice, not the paper's method:
//   d = Mahalanobis distance of the click to the box centre, Σ = diag((w/2)², (h/2)²)
//   s = exp(−d²/2)  (or the fraction of matched sub-units for grid / reasoning tasks)
//   k = number of thresholds t_1 > … > t_{K−1} that s reaches,  Ŝ = v_k,  R = C + α·Ŝ
// Multi-step trajectories: per-step s averaged over the valid steps before bucketing.
//
// Legend: N trajectories, S steps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct SslOptions {
  int64_t num_tiers = 4;                                ///< K
  std::vector<double> thresholds{0.9, 0.6, 0.3};        ///< K−1 thresholds on s, strictly decreasing
  std::vector<double> tier_values{0.0, 0.2, 0.5, 1.0};  ///< v_0..v_{K−1}, tier 0 = reached no threshold
  double alpha = 0.5;                                   ///< weight of the tiered score
  std::string proximity = "gaussian";                   ///< gaussian | block_match (how the scorer makes s)
  double min_box_frac = 0.01;    ///< [interp] zero-size box side -> this fraction of the screen side
  double min_box_size = 1.0;     ///< [interp] ... or this absolute size when no screen size is known
};

/// Gaussian proximity s [N] in [0, 1].
///   click  [N, 2] (x, y); center [N, 2]; size [N, 2] (w, h) of the target box
///   valid  [N] bool: coordinates parsed (false -> s = 0); undefined = all valid
///   screen [N, 2] screen (width, height) for the minimum box size; may be undefined
at::Tensor ssl_gaussian_proximity(const at::Tensor& click, const at::Tensor& center, const at::Tensor& size,
                                  const at::Tensor& valid, const at::Tensor& screen, const SslOptions& o);
/// Block-match proximity: matched [N] / total [N] (0 where total is 0).
at::Tensor ssl_block_match_proximity(const at::Tensor& matched, const at::Tensor& total);
/// Mean of per-step proximities s [N, S] over step_mask [N, S] (bool) -> [N]; rows with no step -> 0.
at::Tensor ssl_aggregate_steps(const at::Tensor& s, const at::Tensor& step_mask);
/// Tier index k [N] (int64, 0..K−1).
at::Tensor ssl_tier(const at::Tensor& s, const SslOptions& o);
/// R = C·valid + α·v_k [N]. success [N] (0/1), s [N], valid [N] bool (undefined = all valid; an
/// unparsable answer gets C = 0 and s = 0, so R = α·v_0).
at::Tensor ssl_reward(const at::Tensor& success, const at::Tensor& s, const at::Tensor& valid, const SslOptions& o);

/// Reads and cross-checks (|thresholds| = K−1 decreasing, |tier_values| = K).
void read_ssl_options(config::Reader& r, SslOptions& o);

}  // namespace keel::rewards
