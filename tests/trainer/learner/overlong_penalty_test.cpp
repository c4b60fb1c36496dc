// Tests of trainer/learner/overlong_penalty.{h,cpp}: spec §2.3 worked example and a loop reference.
#include "trainer/learner/overlong_penalty.h"

#include <algorithm>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace keel::learner {
namespace {

TEST(OverlongPenalty, SpecWorkedExample) {
  // Defaults L_max = 20480, L_cache = 4096, f = 1 → L_exp = 16384.
  const OverlongOptions o;
  EXPECT_NEAR(overlong_penalty(16000, o), 0.0, 1e-4);   // below L_exp
  EXPECT_NEAR(overlong_penalty(18432, o), -0.5, 1e-4);  // −(18432 − 16384)/4096
  EXPECT_NEAR(overlong_penalty(20480, o), -1.0, 1e-4);  // −4096/4096
  const torch::Tensor v = overlong_penalty(torch::tensor({16000L, 18432L, 20480L, 16384L}), o);
  EXPECT_TRUE(torch::allclose(v, torch::tensor({0.0, -0.5, -1.0, 0.0}, torch::kDouble), 0, 1e-12));
  // A correct answer's reward 1 + (−1) can reach 0, and with f = 2 go negative (by design).
  EXPECT_NEAR(1.0 + overlong_penalty(20480, {20480, 4096, 2.0}), -1.0, 1e-12);
}

TEST(OverlongPenalty, MatchesLoopReference) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    const OverlongOptions o{100 + static_cast<int64_t>(seed) * 37, 1 + static_cast<int64_t>(seed % 40),
                            0.5 + 0.1 * static_cast<double>(seed % 7)};
    const torch::Tensor len = torch::randint(0, o.max_len + 10, {8}, torch::kLong);
    const torch::Tensor got = overlong_penalty(len, o);
    for (int64_t i = 0; i < 8; ++i) {
      const double l = static_cast<double>(len[i].item<int64_t>());
      const double exp_len = static_cast<double>(o.max_len - o.buffer_len);
      const double want = l <= exp_len ? 0.0 : -(l - exp_len) / o.buffer_len * o.penalty_factor;
      EXPECT_NEAR(got[i].item<double>(), want, 1e-12) << "seed " << seed;
      EXPECT_NEAR(overlong_penalty(len[i].item<int64_t>(), o), want, 1e-12);
    }
  }
}

TEST(OverlongPenalty, RejectsBadOptions) {
  EXPECT_THROW(overlong_penalty(10, {100, 0, 1.0}), c10::Error);
  EXPECT_THROW(overlong_penalty(10, {100, 200, 1.0}), c10::Error);
}

}  // namespace
}  // namespace keel::learner
