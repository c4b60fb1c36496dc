// Slow, obvious loop references of the vectorized estimators, written straight from the spec
// (spec/credit-assignment.md) with plain doubles, one row / one group at a time. The tests compare
// the tensor implementations with these over many random batches.
#pragma once

#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/trainer/credit/credit_test_util.h"

namespace keel::credit::testing::ref {

inline Vec row_sums(const Mat& r) {
  Vec out;
  for (const auto& row : r) {
    double s = 0;
    for (double v : row) s += v;
    out.push_back(s);
  }
  return out;
}

/// Members of each group, by group id.
inline std::map<int64_t, std::vector<size_t>> groups_of(const std::vector<int64_t>& gid) {
  std::map<int64_t, std::vector<size_t>> g;
  for (size_t i = 0; i < gid.size(); ++i) g[gid[i]].push_back(i);
  return g;
}

/// Mean; exactly the value when all values are equal (spec §2.1: std = 0 → a = 0 exactly, even
/// where the float64 sum is inexact, e.g. 0.1 × 3).
inline double mean_of(const Vec& x) {
  double s = 0;
  bool same = true;
  for (double v : x) {
    s += v;
    same &= v == x[0];
  }
  if (x.empty()) return 0.0;
  return same ? x[0] : s / static_cast<double>(x.size());
}
/// Unbiased std (Bessel); 0 for fewer than 2 values.
inline double std_of(const Vec& x, bool unbiased = true) {
  if (x.size() < 2) return 0.0;
  const double m = mean_of(x);
  double ss = 0;
  for (double v : x) ss += (v - m) * (v - m);
  return std::sqrt(ss / static_cast<double>(unbiased ? x.size() - 1 : x.size()));
}

inline Mat broadcast(const Vec& a, const Mat& mask) {
  Mat out = mask;
  for (size_t i = 0; i < mask.size(); ++i)
    for (size_t j = 0; j < mask[i].size(); ++j) out[i][j] = mask[i][j] != 0 ? a[i] : 0.0;
  return out;
}

/// GRPO scores; singleton: "error" throws, "raw" → R/(1+eps) (verl mean 0 std 1), "zero" → 0.
inline Vec grpo(const Vec& r, const std::vector<int64_t>& gid, double eps, bool norm,
                const std::string& singleton = "error") {
  Vec a(r.size(), 0.0);
  for (const auto& [g, rows] : groups_of(gid)) {
    Vec x;
    for (size_t i : rows) x.push_back(r[i]);
    if (rows.size() == 1) {
      if (singleton == "error") throw std::runtime_error("singleton");
      a[rows[0]] = singleton == "raw" ? (norm ? r[rows[0]] / (1.0 + eps) : r[rows[0]]) : 0.0;
      continue;
    }
    const double m = mean_of(x), s = std_of(x);
    for (size_t i : rows) a[i] = norm ? (r[i] - m) / (s + eps) : r[i] - m;
  }
  return a;
}

/// RLOO: R_n − mean of the other members.
inline Vec rloo(const Vec& r, const std::vector<int64_t>& gid) {
  Vec a(r.size(), 0.0);
  for (const auto& [g, rows] : groups_of(gid)) {
    if (rows.size() < 2) throw std::runtime_error("singleton");
    for (size_t i : rows) {
      double others = 0;
      for (size_t j : rows)
        if (j != i) others += r[j];
      a[i] = r[i] - others / static_cast<double>(rows.size() - 1);
    }
  }
  return a;
}

/// Masked whitening over all valid tokens; unbiased (verl) or biased (OpenRLHF). Not masked.
inline Mat whiten(const Mat& x, const Mat& mask, bool unbiased, bool scale = true) {
  double n = 0, s = 0;
  for (size_t i = 0; i < x.size(); ++i)
    for (size_t j = 0; j < x[i].size(); ++j)
      if (mask[i][j] != 0) {
        n += 1;
        s += x[i][j];
      }
  if (n == 0) return x;
  const double mu = s / n;
  double ss = 0;
  for (size_t i = 0; i < x.size(); ++i)
    for (size_t j = 0; j < x[i].size(); ++j)
      if (mask[i][j] != 0) ss += (x[i][j] - mu) * (x[i][j] - mu);
  double inv = 1.0;
  if (scale) {
    if (unbiased) {
      if (n < 2) throw std::runtime_error("whiten n < 2");
      inv = 1.0 / std::sqrt(ss / (n - 1) + 1e-8);
    } else {
      inv = 1.0 / std::sqrt(std::max(ss / n, 1e-8));
    }
  }
  Mat out = x;
  for (auto& row : out)
    for (double& v : row) v = (v - mu) * inv;
  return out;
}

inline Mat masked(const Mat& x, const Mat& mask) {
  Mat out = x;
  for (size_t i = 0; i < x.size(); ++i)
    for (size_t j = 0; j < x[i].size(); ++j)
      if (mask[i][j] == 0) out[i][j] = 0.0;
  return out;
}

/// GAE per row, straight from the §1.1 pseudo code. Returns {A (raw, unmasked), returns}.
inline std::pair<Mat, Mat> gae(const Mat& r, const Mat& v, const Mat& m, double gamma, double lam) {
  Mat a = r, ret = r;
  for (size_t i = 0; i < r.size(); ++i) {
    double next_v = 0, last_a = 0;
    for (size_t t = r[i].size(); t-- > 0;) {
      const double delta = r[i][t] + gamma * next_v - v[i][t];
      const double cand = delta + gamma * lam * last_a;
      if (m[i][t] != 0) {
        next_v = v[i][t];
        last_a = cand;
      }
      a[i][t] = last_a;
      ret[i][t] = last_a + v[i][t];
    }
  }
  return {a, ret};
}

/// Return-to-go with hole skipping (carry) or verl's reset after masked positions.
inline Mat returns_to_go(const Mat& r, const Mat& m, double gamma, bool reset_on_holes) {
  Mat out = r;
  for (size_t i = 0; i < r.size(); ++i) {
    double g = 0;
    for (size_t t = r[i].size(); t-- > 0;) {
      if (reset_on_holes) {
        g = r[i][t] + gamma * g;
        out[i][t] = g;
        if (m[i][t] == 0) g = 0;
      } else {
        if (m[i][t] != 0) g = r[i][t] + gamma * g;
        out[i][t] = g;
      }
    }
  }
  return out;
}

}  // namespace keel::credit::testing::ref
