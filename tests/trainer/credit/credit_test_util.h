// Test helpers for the advantage estimators: building AdvantageInputs from nested vectors (float64),
// comparing tensors with an absolute tolerance, and a random batch generator that covers the spec's
// edge cases (std = 0 groups, singleton groups, empty rows, masked holes mid-response, shuffled and
// non-contiguous group ids). Header-only: only *_test.cpp files are compiled into trainer_tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer/credit/advantage.h"

namespace keel::credit::testing {

using Mat = std::vector<std::vector<double>>;
using Vec = std::vector<double>;

inline torch::Tensor mat(const Mat& m) {
  const int64_t n = static_cast<int64_t>(m.size());
  const int64_t t = n ? static_cast<int64_t>(m[0].size()) : 0;
  auto out = torch::zeros({n, t}, torch::kFloat64);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < t; ++j) out[i][j] = m[static_cast<size_t>(i)][static_cast<size_t>(j)];
  return out;
}
inline torch::Tensor vec(const Vec& v) {
  return torch::tensor(std::vector<double>(v), torch::kFloat64);
}
inline torch::Tensor ids(const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong); }

inline Mat to_mat(const torch::Tensor& t) {
  auto c = t.to(torch::kFloat64).contiguous();
  Mat out(static_cast<size_t>(c.size(0)), Vec(static_cast<size_t>(c.size(1))));
  for (int64_t i = 0; i < c.size(0); ++i)
    for (int64_t j = 0; j < c.size(1); ++j) out[static_cast<size_t>(i)][static_cast<size_t>(j)] = c[i][j].item<double>();
  return out;
}

/// Outcome rewards R [N] placed on each row's last valid token of mask m.
inline Mat outcome_at_last(const Vec& r, const Mat& m) {
  Mat out(m.size(), Vec(m.empty() ? 0 : m[0].size(), 0.0));
  for (size_t i = 0; i < m.size(); ++i)
    for (size_t j = m[i].size(); j-- > 0;)
      if (m[i][j] != 0) {
        out[i][j] = r[i];
        break;
      }
  return out;
}

inline AdvantageInputs inputs(const Mat& r_tok, const Mat& mask, const std::vector<int64_t>& gid) {
  AdvantageInputs in;
  in.token_rewards = mat(r_tok);
  in.response_mask = mat(mask);
  in.group_ids = ids(gid);
  return in;
}

inline ::testing::AssertionResult close(const torch::Tensor& got, const torch::Tensor& want, double atol = 1e-4) {
  if (got.sizes() != want.sizes())
    return ::testing::AssertionFailure() << "shape " << got.sizes() << " != " << want.sizes();
  const auto g = got.to(torch::kFloat64), w = want.to(torch::kFloat64);
  const auto diff = (g - w).abs();
  const bool nan_mismatch = (g.isnan() != w.isnan()).any().item<bool>();
  const double worst = diff.numel() ? torch::nan_to_num(diff, 0.0).max().item<double>() : 0.0;
  if (nan_mismatch || worst > atol)
    return ::testing::AssertionFailure() << "max |diff| " << worst << " > " << atol << "\ngot\n" << g << "\nwant\n" << w;
  return ::testing::AssertionSuccess();
}
inline ::testing::AssertionResult close(const torch::Tensor& got, const Mat& want, double atol = 1e-4) {
  return close(got, mat(want), atol);
}
inline ::testing::AssertionResult close(const torch::Tensor& got, const Vec& want, double atol = 1e-4) {
  return close(got, vec(want), atol);
}

/// A random batch with every edge case the spec lists, built as plain vectors.
struct RandomBatch {
  int64_t n = 0, t = 0;
  std::vector<int64_t> gid;  // shuffled, non-contiguous values
  Vec reward;                // R per row (what sits on the last valid token; 0 for empty rows)
  Mat mask, r_tok, values;
  AdvantageInputs in() const {
    AdvantageInputs x = inputs(r_tok, mask, gid);
    x.values = mat(values);
    return x;
  }
};

/// `binary`: rewards in {0,1}; else continuous. Some groups are all-equal (std 0), some singleton
/// when `allow_singletons`, some rows empty, some with holes; `dense` adds small rewards on valid
/// tokens so R ≠ the last-token value.
inline RandomBatch random_batch(uint32_t seed, bool allow_singletons = true, bool binary = false,
                                bool dense = false) {
  std::mt19937 rng(seed);
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  RandomBatch b;
  b.t = pick(1, 7);
  const int groups = pick(1, 4);
  std::vector<int64_t> gid;
  Vec reward;
  for (int g = 0; g < groups; ++g) {
    const int size = allow_singletons && pick(0, 4) == 0 ? 1 : pick(2, 6);
    const bool same = pick(0, 3) == 0;  // std = 0 group
    const double common = binary ? pick(0, 1) : uni(-1, 2);
    for (int k = 0; k < size; ++k) {
      gid.push_back(1000 - 37 * g);
      reward.push_back(same ? common : binary ? pick(0, 1) : uni(-1, 2));
    }
  }
  std::vector<size_t> perm(gid.size());
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  b.n = static_cast<int64_t>(gid.size());
  for (size_t i : perm) {
    b.gid.push_back(gid[i]);
    b.reward.push_back(reward[i]);
  }
  const auto t = static_cast<size_t>(b.t);
  b.mask.assign(static_cast<size_t>(b.n), Vec(t, 0.0));
  b.values.assign(static_cast<size_t>(b.n), Vec(t, 0.0));
  for (size_t i = 0; i < b.mask.size(); ++i) {
    const int len = pick(0, 5) == 0 ? 0 : pick(1, b.t);  // empty responses
    for (int j = 0; j < len; ++j) b.mask[i][static_cast<size_t>(j)] = 1.0;
    for (int j = 1; j + 1 < len; ++j)
      if (pick(0, 3) == 0) b.mask[i][static_cast<size_t>(j)] = 0.0;  // holes mid-response
    for (size_t j = 0; j < t; ++j) b.values[i][j] = uni(-1, 1);
  }
  for (size_t i = 0; i < b.mask.size(); ++i)
    if (std::all_of(b.mask[i].begin(), b.mask[i].end(), [](double v) { return v == 0; })) b.reward[i] = 0.0;
  b.r_tok = outcome_at_last(b.reward, b.mask);
  if (dense)
    for (size_t i = 0; i < b.mask.size(); ++i)
      for (size_t j = 0; j < t; ++j)
        if (b.mask[i][j] != 0 && pick(0, 2) == 0) b.r_tok[i][j] += uni(-0.3, 0.3);
  return b;
}

}  // namespace keel::credit::testing
