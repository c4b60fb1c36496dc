// Tests of trainer/learner/entropy.{h,cpp}: hand values, chunking invariance, loop reference and
// finite-difference gradient.
#include "trainer/learner/entropy.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/trainer/learner/loss_test_util.h"

namespace keel::learner {
namespace {

TEST(Entropy, HandValues) {
  // uniform over 4 → ln 4 = 1.386294; p = [0.25, 0.75] (logits [0, ln 3]) → −(¼ln¼ + ¾ln¾) = 0.562335
  const torch::Tensor z = torch::tensor({{0.0, 0.0, 0.0, 0.0}, {0.0, std::log(3.0), -1e4, -1e4}}, torch::kDouble);
  const torch::Tensor h = entropy_from_logits(z.unsqueeze(0));  // [1, 2]
  ASSERT_EQ(h.sizes(), (std::vector<int64_t>{1, 2}));
  EXPECT_NEAR(h[0][0].item<double>(), 1.386294, 1e-6);
  EXPECT_NEAR(h[0][1].item<double>(), 0.562335, 1e-6);
  // shift invariance and a float32 input
  const torch::Tensor hf = entropy_from_logits((z + 7.0).to(torch::kFloat));
  EXPECT_EQ(hf.scalar_type(), torch::kFloat);
  EXPECT_NEAR(hf[1].item<double>(), 0.562335, 1e-5);
}

TEST(Entropy, MatchesLoopReferenceForEveryChunkSize) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    const int64_t n = 1 + seed % 3, t = 1 + (seed * 3) % 5, v = 2 + (seed * 7) % 11;
    const torch::Tensor z = torch::randn({n, t, v}, torch::kDouble) * (1.0 + static_cast<double>(seed % 4));
    const auto za = z.accessor<double, 3>();
    for (int64_t chunk : {0L, 1L, 2L, 5L, 1024L}) {
      const torch::Tensor h = entropy_from_logits(z, chunk);
      ASSERT_EQ(h.sizes(), (std::vector<int64_t>{n, t}));
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < t; ++j) {
          double mx = -1e300;
          for (int64_t k = 0; k < v; ++k) mx = std::max(mx, za[i][j][k]);
          double s = 0;
          for (int64_t k = 0; k < v; ++k) s += std::exp(za[i][j][k] - mx);
          double want = 0;  // −Σ p log p
          for (int64_t k = 0; k < v; ++k) {
            const double p = std::exp(za[i][j][k] - mx) / s;
            want -= p * std::log(p);
          }
          EXPECT_NEAR(h[i][j].item<double>(), want, 1e-10) << "seed " << seed << " chunk " << chunk;
        }
    }
  }
}

TEST(Entropy, GradientMatchesFiniteDifferences) {
  for (uint64_t seed = 0; seed < 5; ++seed) {
    torch::manual_seed(seed);
    const torch::Tensor z = torch::randn({2, 2, 5}, torch::kDouble);
    const torch::Tensor w = torch::randn({2, 2}, torch::kDouble);
    testing::expect_grad_matches_fd([&](const torch::Tensor& x) { return (entropy_from_logits(x, 3) * w).sum(); }, z);
  }
}

}  // namespace
}  // namespace keel::learner
