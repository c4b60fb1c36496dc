// Test-only helpers for the learner's losses: random batches with the spec's edge cases, slow
// loop references (plain doubles, one element at a time) and a central finite-difference
// gradient check. Nothing here is used by the library.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer/learner/kl.h"
#include "trainer/learner/loss_agg.h"

namespace keel::learner::testing {

using Mat = std::vector<std::vector<double>>;

inline Mat to_mat(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kDouble).contiguous();
  Mat out(c.size(0), std::vector<double>(c.size(1)));
  auto a = c.accessor<double, 2>();
  for (int64_t i = 0; i < c.size(0); ++i)
    for (int64_t j = 0; j < c.size(1); ++j) out[i][j] = a[i][j];
  return out;
}

inline torch::Tensor from_mat(const Mat& m) {
  torch::Tensor t = torch::zeros({static_cast<int64_t>(m.size()), m.empty() ? 0 : static_cast<int64_t>(m[0].size())},
                                 torch::kDouble);
  for (size_t i = 0; i < m.size(); ++i)
    for (size_t j = 0; j < m[i].size(); ++j) t[i][j] = m[i][j];
  return t;
}

inline double val(const torch::Tensor& t) { return t.item<double>(); }

/// A random float64 micro-batch with the edge cases the spec lists, chosen by `seed`:
/// seed % 10 == 0 → some empty rows, 1 → the whole batch masked, 2 → log-ratios beyond the ±20
/// clamp, 3 → all advantages 0; masks always have random holes (multi-turn style).
struct RandBatch {
  int64_t n = 0, t = 0, group_size = 1;
  torch::Tensor logp, logp_old, logp_ref, adv, mask, entropy, group_ids;
};

struct RandOptions {
  bool seq_advantages = false;  ///< advantages constant over a row's tokens (sequence-level)
  bool edge_cases = true;       ///< allow the seed-selected edge cases
  double ratio_scale = 0.4;     ///< std of logp − logp_old
  int64_t min_n = 1;
};

inline RandBatch rand_batch(uint64_t seed, const RandOptions& o = {}) {
  torch::manual_seed(seed);
  RandBatch b;
  b.group_size = 2 + static_cast<int64_t>(seed % 3);  // 2..4
  const int64_t groups = 1 + static_cast<int64_t>((seed / 3) % 3);
  b.n = std::max(o.min_n, groups * b.group_size);
  b.t = 1 + static_cast<int64_t>((seed * 7) % 9);
  auto dbl = torch::TensorOptions().dtype(torch::kDouble);
  b.logp = -torch::rand({b.n, b.t}, dbl) * 3.0;
  b.logp_old = b.logp - torch::randn({b.n, b.t}, dbl) * o.ratio_scale;
  b.logp_ref = b.logp - torch::randn({b.n, b.t}, dbl) * 0.5;
  b.adv = o.seq_advantages ? torch::randn({b.n, 1}, dbl).expand({b.n, b.t}).contiguous() : torch::randn({b.n, b.t}, dbl);
  b.mask = (torch::rand({b.n, b.t}, dbl) > 0.25).to(torch::kDouble);
  b.mask.select(1, 0).fill_(1.0);  // every row non-empty unless an edge case says otherwise
  b.entropy = torch::rand({b.n, b.t}, dbl) * 2.0;
  b.group_ids = torch::arange(b.n, torch::kLong).div(b.group_size, "floor");
  if (o.edge_cases) {
    switch (seed % 10) {
      case 0:
        b.mask.select(0, 0).zero_();
        if (b.n > 2) b.mask.select(0, b.n - 1).zero_();
        break;
      case 1: b.mask.zero_(); break;
      case 2: b.logp_old.select(0, 0).sub_(30.0); if (b.n > 1) b.logp_old.select(0, 1).add_(30.0); break;
      case 3: b.adv.zero_(); break;
      default: break;
    }
  }
  return b;
}

// ---- slow references ---------------------------------------------------------------------------

inline double ref_agg(const Mat& l, const Mat& m, AggMode mode, double norm_len) {
  double sum = 0, tokens = 0, seqs = 0, seq_mean_sum = 0;
  for (size_t i = 0; i < l.size(); ++i) {
    double row = 0, len = 0;
    for (size_t j = 0; j < l[i].size(); ++j)
      if (m[i][j] > 0) {
        row += l[i][j];
        len += 1;
      }
    sum += row;
    tokens += len;
    if (len > 0) {
      seqs += 1;
      seq_mean_sum += row / len;
    }
  }
  switch (mode) {
    case AggMode::kTokenMean: return tokens > 0 ? sum / tokens : 0;
    case AggMode::kSeqMeanTokenSum: return seqs > 0 ? sum / seqs : 0;
    case AggMode::kSeqMeanTokenMean: return seqs > 0 ? seq_mean_sum / seqs : 0;
    case AggMode::kSeqMeanTokenSumNorm: return seqs > 0 ? sum / (seqs * norm_len) : 0;
  }
  return NAN;
}

inline double ref_kl(double logp, double logp_ref, KlEstimator est) {
  const double d = logp - logp_ref;
  const double x = std::clamp(-d, -20.0, 20.0);
  const double k3 = std::clamp(std::exp(x) - x - 1.0, -10.0, 10.0);
  switch (est) {
    case KlEstimator::kK1: case KlEstimator::kK1Plus: return d;
    case KlEstimator::kK2: case KlEstimator::kK2Plus: return 0.5 * d * d;
    case KlEstimator::kK3: case KlEstimator::kK3Plus: return k3;
    case KlEstimator::kAbs: return std::abs(d);
  }
  return NAN;
}

inline Mat map2(const Mat& a, const std::function<double(size_t, size_t)>& f) {
  Mat out = a;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < a[i].size(); ++j) out[i][j] = f(i, j);
  return out;
}

// ---- finite differences --------------------------------------------------------------------------

/// Compares autograd's gradient of f at x (float64) with central differences, element by element:
/// |g − fd| <= tol·(1 + |g|).
inline void expect_grad_matches_fd(const std::function<torch::Tensor(const torch::Tensor&)>& f, const torch::Tensor& x0,
                                   double tol = 1e-6, double h = 1e-6) {
  torch::Tensor x = x0.detach().clone().requires_grad_(true);
  torch::Tensor y = f(x);
  ASSERT_EQ(y.numel(), 1);
  torch::Tensor g = torch::autograd::grad({y}, {x}, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                          /*allow_unused=*/true)[0];
  if (!g.defined()) g = torch::zeros_like(x);
  const torch::Tensor flat = x0.detach().clone().reshape(-1);
  for (int64_t i = 0; i < flat.numel(); ++i) {
    torch::Tensor xp = flat.clone(), xm = flat.clone();
    xp[i] += h;
    xm[i] -= h;
    double fp, fm;
    {
      torch::NoGradGuard ng;
      fp = f(xp.reshape(x0.sizes())).item<double>();
      fm = f(xm.reshape(x0.sizes())).item<double>();
    }
    const double fd = (fp - fm) / (2 * h);
    const double ga = g.reshape(-1)[i].item<double>();
    EXPECT_NEAR(ga, fd, tol * (1 + std::abs(ga))) << "element " << i;
  }
}

/// Row ranges [begin, end) of a split of n rows into `parts` uneven micro-batches whose boundaries
/// are multiples of `align` (group boundaries when align = group size).
inline std::vector<std::pair<int64_t, int64_t>> uneven_split(int64_t n, int parts, int64_t align = 1) {
  std::vector<int64_t> cuts{0};
  const int64_t units = n / align;
  for (int p = 1; p < parts; ++p) {
    const int64_t c = std::min<int64_t>(units, (units * p * p) / (parts * parts) + p) * align;
    if (c > cuts.back() && c < n) cuts.push_back(c);
  }
  cuts.push_back(n);
  std::vector<std::pair<int64_t, int64_t>> out;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) out.emplace_back(cuts[i], cuts[i + 1]);
  return out;
}

}  // namespace keel::learner::testing
