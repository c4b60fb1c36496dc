// Tests of THR / NTHR token reweighting (spec §6).
#include "trainer/credit/thr.h"

#include <gtest/gtest.h>

#include <random>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

/// Spec §6 example, d = 2, V* = {a, b}: rows 0 and 1 correct (one token each), row 2 incorrect
/// (two tokens). g and h as in the spec.
AdvantageInputs spec_example() {
  const Mat m{{1, 0}, {1, 0}, {1, 1}};
  auto in = inputs(outcome_at_last({1, 1, 0}, m), m, {0, 0, 0});
  in.pred_errors = torch::tensor({0.4, -0.4, 0.0, 0.0, -0.2, 0.2, 0.0, 0.0, 0.5, -0.5, 0.1, -0.1},
                                 torch::kDouble).view({3, 2, 2});
  in.hidden_states = torch::tensor({1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, -1.0},
                                   torch::kDouble).view({3, 2, 2});
  return in;
}

TEST(Thr, SpecScores) {
  // M⁺ = [.4,−.4]ᵀ[1,0] + [−.2,.2]ᵀ[0,1] = [[.4,−.2],[−.4,.2]]. Positive scores: .32 and .08;
  // negative tokens: g=[.5,−.5], h=[1,1] → M⁺h = [.2,−.2] → .2; g=[.1,−.1], h=[0,−1] → [.2,−.2] → .04.
  const auto in = spec_example();
  const auto s = thr_token_scores(in.hidden_states, in.pred_errors, in.response_mask, in.group_ids,
                                  torch::tensor({true, true, false}));
  EXPECT_TRUE(close(s, Mat{{0.32, 0}, {0.08, 0}, {0.20, 0.04}}));
}

TEST(Thr, SpecWorkedExampleNthr) {
  // A_pos = .577350, A_neg = −1.154701, p = 2/3, η = 2|.5 − 2/3| = .333333, τ = min(.32, .08) = .08.
  // NTHR: the first negative token (.20 > .08) → −1.154701·.333333 = −.384900; the second unchanged.
  AdvantageOptions o;
  o.thr.mode = "nthr";
  const auto out = advantage_thr(spec_example(), o);
  EXPECT_TRUE(close(out.advantages, Mat{{0.577350, 0}, {0.577350, 0}, {-0.384900, -1.154701}}));
}

TEST(Thr, SpecWorkedExampleReweight) {
  // p_thr = .5: negative first token: THR sign = sign(A)·sign(s) = −1 → ×(1 − .5) → −.577350;
  // first positive token (.32 > τ) → ×1.5 → .866025; second positive (.08, not > τ) unchanged.
  AdvantageOptions o;
  o.thr.p = 0.5;
  const auto out = advantage_thr(spec_example(), o);
  EXPECT_TRUE(close(out.advantages, Mat{{0.866025, 0}, {0.577350, 0}, {-0.577350, -1.154701}}));
  o.thr.mode = "thr_only";  // dominant tokens only: |s| > .08 → rows 0 and the first token of row 2
  EXPECT_TRUE(close(advantage_thr(spec_example(), o).advantages, Mat{{0.577350, 0}, {0, 0}, {-1.154701, 0}}));
}

TEST(Thr, PredictionErrorsRestrictedToGroupVocabulary) {
  // Group 0 uses tokens {2, 5}; group 1 uses {3}. Batch vocab U = [2, 3, 5].
  // Row 0 (group 0) token 2 with q = [.1 .2 .3 .1 .1 .2] over V=6: g on U = [1−.3, −(0 outside V*), −.2] = [.7, 0, −.2].
  auto probs = torch::tensor({0.1, 0.2, 0.3, 0.1, 0.1, 0.2}, torch::kDouble).view({1, 1, 6}).repeat({3, 1, 1});
  const auto y = ids({2, 5, 3}).view({3, 1});
  const auto [g, vocab] = thr_prediction_errors(y, probs, torch::ones({3, 1}), ids({0, 0, 1}));
  EXPECT_TRUE(close(vocab.to(torch::kDouble), Vec{2, 3, 5}));
  EXPECT_TRUE(close(g.squeeze(1), Mat{{0.7, 0, -0.2}, {-0.3, 0, 0.8}, {0, 0.9, 0}}));
}

TEST(Thr, GroupsWithoutBothOutcomesKeepPlainGrpo) {
  const Mat m(2, Vec{1});
  auto in = inputs({{1}, {1}}, m, {0, 0});
  in.token_scores = mat({{5}, {-5}});
  AdvantageOptions o;
  o.thr.p = 0.5;
  EXPECT_TRUE(close(advantage_thr(in, o).advantages, Mat{{0}, {0}}));
  EXPECT_THROW(advantage_thr(inputs({{1}, {0}}, m, {0, 0}), o), c10::Error);  // no scores, no hidden states
}

TEST(Thr, MatchesLoopReferenceOnRandomBatches) {
  for (uint32_t seed = 800; seed < 860; ++seed) {
    const auto b = random_batch(seed, false, /*binary=*/true, false);
    std::mt19937 rng(seed);
    std::normal_distribution<double> nd;
    const int64_t d = 3, u = 4;
    const auto hid = torch::zeros({b.n, b.t, d}, torch::kDouble);
    const auto ge = torch::zeros({b.n, b.t, u}, torch::kDouble);
    for (int64_t i = 0; i < b.n; ++i)
      for (int64_t t = 0; t < b.t; ++t) {
        for (int64_t j = 0; j < d; ++j) hid[i][t][j] = nd(rng);
        for (int64_t j = 0; j < u; ++j) ge[i][t][j] = b.mask[static_cast<size_t>(i)][static_cast<size_t>(t)] != 0 ? nd(rng) : 0.0;
      }
    const Vec r = ref::row_sums(b.r_tok);
    const Vec a = ref::grpo(r, b.gid, 1e-6, true);
    auto dot = [&](const torch::Tensor& x, int64_t i, int64_t t, int64_t i2, int64_t t2) {
      return (x[i][t] * x[i2][t2]).sum().item<double>();
    };
    // s[n,t] = Σ over positive tokens (i,t') of ⟨g,g'⟩⟨h,h'⟩ (the kernel form of gᵀM⁺h)
    Mat s = b.mask;
    for (const auto& [grp, rows] : ref::groups_of(b.gid))
      for (size_t n : rows)
        for (size_t t = 0; t < s[n].size(); ++t) {
          double v = 0;
          if (b.mask[n][t] != 0)
            for (size_t i : rows)
              if (r[i] >= 1.0)
                for (size_t t2 = 0; t2 < s[i].size(); ++t2)
                  if (b.mask[i][t2] != 0)
                    v += dot(ge, n, t, i, t2) * dot(hid, n, t, i, t2);
          s[n][t] = v;
        }
    for (const std::string mode : {"reweight", "thr_only", "nthr"}) {
      AdvantageOptions o;
      o.thr.mode = mode;
      o.thr.p = seed % 2 ? 0.3 : -0.4;
      Mat want = ref::broadcast(a, b.mask);
      for (const auto& [grp, rows] : ref::groups_of(b.gid)) {
        double npos = 0, tau = 1e300;
        for (size_t i : rows) {
          if (r[i] < 1.0) continue;
          npos += 1;
          double len = 0, sum = 0;
          for (size_t t = 0; t < s[i].size(); ++t) {
            len += b.mask[i][t];
            sum += s[i][t];
          }
          if (len > 0) tau = std::min(tau, sum / len);
        }
        if (npos == 0 || npos == static_cast<double>(rows.size()) || tau == 1e300) continue;
        const double eta = 2 * std::abs(0.5 - npos / static_cast<double>(rows.size()));
        for (size_t n : rows)
          for (size_t t = 0; t < s[n].size(); ++t) {
            if (b.mask[n][t] == 0) continue;
            const double sg = (a[n] > 0) - (a[n] < 0), ss = (s[n][t] > 0) - (s[n][t] < 0);
            if (mode == "reweight" && std::abs(s[n][t]) > tau) want[n][t] *= 1 + o.thr.p * sg * ss;
            if (mode == "thr_only" && !(std::abs(s[n][t]) > tau)) want[n][t] = 0;
            if (mode == "nthr" && r[n] < 1.0 && s[n][t] > tau) want[n][t] *= eta;
          }
      }
      auto in = b.in();
      in.hidden_states = hid;
      in.pred_errors = ge;
      ASSERT_TRUE(close(advantage_thr(in, o).advantages, want, 1e-8)) << "seed " << seed << " " << mode;
    }
  }
}

}  // namespace
}  // namespace keel::credit
