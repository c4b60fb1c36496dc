// Tests of PAR and the sigmoid family (spec rewards.md A1): worked examples, presets, ragged
// references vs a loop reference, missing-reference policies, YAML reader.
#include "rewards/schemes/par.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"
#include "base/error.h"

namespace keel::rewards {
namespace {

using testing::dt;
using testing::sig;

TEST(Par, WorkedExampleSymmetricRefsGiveHalf) {
  // r = 2, refs [1, 3]: (σ(1) + σ(−1))/2 = 0.5 exactly.
  auto out = par_reward(dt({2.0}), dt({1.0, 3.0}).view({1, 2}), {}, par_preset("par"));
  EXPECT_NEAR(out.item<double>(), 0.5, 1e-12);
}

TEST(Par, WorkedExampleSlope) {
  // r = 1, refs [0]: σ(1) = 0.7310586; k = 2: σ(2) = 0.8807971.
  ParOptions o = par_preset("par");
  EXPECT_NEAR(par_reward(dt({1.0}), dt({0.0}).view({1, 1}), {}, o).item<double>(), 0.7310586, 1e-6);
  o.k = 2.0;
  EXPECT_NEAR(par_reward(dt({1.0}), dt({0.0}).view({1, 1}), {}, o).item<double>(), 0.8807971, 1e-6);
}

TEST(Par, WorkedExampleCenteredTanh) {
  // (tanh 1 + tanh(−1))/2 = 0.
  auto out = par_reward(dt({2.0}), dt({1.0, 3.0}).view({1, 2}), {}, par_preset("tanh"));
  EXPECT_NEAR(out.item<double>(), 0.0, 1e-12);
}

TEST(Par, WorkedExampleFittedPoly) {
  // z = 1: 0.000376132953 − 0.0132916611 + 0.239537005 + 0.5 = 0.7266215; z = 5: σ(5) = 0.9933071.
  auto out = fitted_sigmoid_poly(dt({1.0, 5.0, -5.0, 4.0}));
  EXPECT_NEAR(out[0].item<double>(), 0.7266215, 1e-6);
  EXPECT_NEAR(out[1].item<double>(), 0.9933071, 1e-6);
  EXPECT_NEAR(out[2].item<double>(), 1.0 - 0.9933071, 1e-6);
  // z = 4 is still the polynomial: 0.000376132953·1024 − 0.0132916611·64 + 0.239537005·4 + 0.5.
  EXPECT_NEAR(out[3].item<double>(), 0.385160144 - 0.85066631 + 0.95814802 + 0.5, 1e-6);
}

TEST(Par, PresetsMatchTheirFormulas) {
  const auto r = dt({0.7});
  const auto refs = dt({0.2, -1.0}).view({1, 2});
  EXPECT_NEAR(par_reward(r, {}, {}, par_preset("sigmoid")).item<double>(), sig(0.7), 1e-12);
  EXPECT_NEAR(par_reward(r, {}, {}, par_preset("sigmoidk2")).item<double>(), sig(1.4), 1e-12);
  EXPECT_NEAR(par_reward(r, {}, {}, par_preset("sigmoidk3")).item<double>(), sig(2.1), 1e-12);
  // centered: mean(r − ref) = (0.5 + 1.7)/2 = 1.1
  EXPECT_NEAR(par_reward(r, refs, {}, par_preset("centered")).item<double>(), 1.1, 1e-12);
  // sgfc: PAR of r − 3: (σ(−2.5) + σ(−1.3))/2
  EXPECT_NEAR(par_reward(r, refs, {}, par_preset("sgfc")).item<double>(), (sig(-2.5) + sig(-1.3)) / 2, 1e-12);
  EXPECT_THROW(par_preset("nope"), Error);
}

TEST(Par, RaggedReferencesMatchLoopReference) {
  for (int seed = 0; seed < 60; ++seed) {
    torch::manual_seed(seed);
    const int64_t n = 1 + seed % 7, m = 1 + seed % 5;
    auto r = torch::randn({n}, torch::kFloat64) * 3;
    auto refs = torch::randn({n, m}, torch::kFloat64) * 3;
    auto mask = torch::rand({n, m}) > 0.3;
    mask.select(1, 0).fill_(true);  // every row has at least one reference
    ParOptions o = par_preset(seed % 3 == 0 ? "par" : (seed % 3 == 1 ? "tanh" : "fittedpoly"));
    o.k = 0.5 + (seed % 4) * 0.5;
    o.max_refs = 1 + seed % 3;
    auto fast = par_reward(r, refs, mask, o);
    for (int64_t i = 0; i < n; ++i) {
      double sum = 0;
      int used = 0;
      for (int64_t j = 0; j < m && used < o.max_refs; ++j) {
        if (!mask[i][j].item<bool>()) continue;
        const double z = o.k * (r[i].item<double>() - refs[i][j].item<double>());
        double v;
        if (o.squash == "sigmoid") v = sig(z);
        else if (o.squash == "tanh") v = std::tanh(z);
        else v = std::abs(z) <= 4 ? 0.000376132953 * std::pow(z, 5) - 0.0132916611 * std::pow(z, 3) + 0.239537005 * z + 0.5 : sig(z);
        sum += v;
        ++used;
      }
      EXPECT_NEAR(fast[i].item<double>(), sum / used, 1e-10) << "seed " << seed << " row " << i;
    }
  }
}

TEST(Par, MissingReferencesPolicy) {
  auto r = dt({1.0, 2.0});
  auto refs = dt({0.0, 0.0, 5.0, 5.0}).view({2, 2});
  auto mask = torch::tensor({true, true, false, false}).view({2, 2});
  ParOptions o = par_preset("par");
  EXPECT_THROW(par_reward(r, refs, mask, o), Error);
  o.missing_refs = "raw";
  auto raw = par_reward(r, refs, mask, o);
  EXPECT_NEAR(raw[0].item<double>(), sig(1.0), 1e-12);
  EXPECT_NEAR(raw[1].item<double>(), 2.0, 1e-12);
  o.missing_refs = "uncentered";
  EXPECT_NEAR(par_reward(r, refs, mask, o)[1].item<double>(), sig(2.0), 1e-12);
}

TEST(Par, ReaderValidates) {
  ParOptions o = par_preset("par");
  EXPECT_TRUE(testing::read_yaml("  k: 2\n  max_refs: 1\n", o, read_par_options).empty());
  EXPECT_DOUBLE_EQ(o.k, 2.0);
  EXPECT_EQ(o.max_refs, 1);
  auto e = testing::read_yaml("  k: 0\n  squash: cube\n  bogus: 1\n", o, read_par_options);
  ASSERT_EQ(e.size(), 3u);
  // Errors come in file order.
  EXPECT_EQ(e[0], "t.yaml:2: p.k: must be > 0.0, got 0.0");
  EXPECT_EQ(e[1], "t.yaml:3: p.squash: unknown squash 'cube' (known: sigmoid, tanh, fittedpoly, identity)");
}

}  // namespace
}  // namespace keel::rewards
