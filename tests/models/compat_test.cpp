// Tests for models/compat: scaled_dot_product_attention (on LibTorch 1.13 the hand-written fp32
// autograd Function with thread-split batched matmuls; on 2.1+ ATen's fused kernel) against a
// slow per-(batch, head) loop implementation differentiated by autograd: outputs and q/k/v gradients,
// over random shapes, causal / additive-mask / unmasked attention, strided inputs and 1 or 2
// intra-op threads.
#include "models/compat.h"

#include <dlfcn.h>

#include <cmath>
#include <limits>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace keel::compat {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Obvious reference: for every (b, h) pair, softmax(scale * q k^T + bias) v as plain matrices,
// differentiated by autograd. bias4 [B, H, T, S] additive (zeros = no mask).
at::Tensor slow_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias4,
                          double scale) {
  const int64_t b = q.size(0), h = q.size(1), t = q.size(2);
  std::vector<at::Tensor> blocks;
  for (int64_t bi = 0; bi < b; ++bi) {
    for (int64_t hi = 0; hi < h; ++hi) {
      auto scores = torch::mm(q[bi][hi], k[bi][hi].t()) * scale + bias4[bi][hi];  // [T, S]
      blocks.push_back(torch::mm(torch::softmax(scores, 1), v[bi][hi]));          // [T, Dv]
    }
  }
  return torch::stack(blocks).view({b, h, t, v.size(3)});
}

/// compat's attention (output and the gradients of q, k, v for one random output gradient) equals
/// slow_attention with the additive bias4 [B, H, T, S].
void expect_matches_slow_loop(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                              bool is_causal, const at::Tensor& bias4, double scale) {
  auto out = scaled_dot_product_attention(q, k, v, mask, is_causal, scale);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{q.size(0), q.size(1), q.size(2), v.size(3)}));
  auto go = torch::randn(out.sizes());
  auto grads = torch::autograd::grad({out}, {q, k, v}, {go});
  auto ref = slow_attention(q, k, v, bias4, scale);
  auto ref_grads = torch::autograd::grad({ref}, {q, k, v}, {go});
  EXPECT_TRUE(torch::allclose(out, ref, 1e-5, 1e-5)) << (out - ref).abs().max().item<double>();
  const char* names[] = {"dq", "dk", "dv"};
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(torch::allclose(grads[i], ref_grads[i], 1e-4, 1e-5))
        << names[i] << " max diff " << (grads[i] - ref_grads[i]).abs().max().item<double>();
}

TEST(Compat, AttentionMatchesSlowLoopWithGradients) {
  const int prev_threads = at::get_num_threads();
  for (int seed = 0; seed < 50; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    at::set_num_threads(seed % 5 == 1 ? 2 : 1);  // 10 seeds (every mode) exercise the thread split
    torch::manual_seed(seed);
    const int64_t b = 1 + seed % 3, h = 1 + (seed / 3) % 4, t = 1 + (seed * 7) % 7;
    const int mode = seed % 4;  // 0 causal, 1 mask [B, 1, T, S], 2 none, 3 mask [T, S]
    const int64_t s = t + (mode == 2 ? (seed % 5) : (seed / 4) % 4);
    const int64_t d = 1 + (seed * 5) % 8, dv = seed % 3 == 0 ? d : 1 + (seed * 3) % 6;
    // q in the permuted layout the model produces ([B, T, H, D] memory), k / v contiguous.
    auto q = torch::randn({b, t, h, d}).transpose(1, 2).requires_grad_(true);
    auto k = torch::randn({b, h, s, d}).requires_grad_(true);
    auto v = torch::randn({b, h, s, dv}).requires_grad_(true);
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));

    at::Tensor mask;                                       // passed to compat
    at::Tensor bias4 = torch::zeros({b, h, t, s});         // what the reference adds
    // Key j is visible to query i iff j <= i + S - T (queries are the last T positions).
    auto causal = torch::ones({t, s}, torch::kBool).tril(s - t);
    auto causal_bias = torch::zeros({t, s}).masked_fill(causal.logical_not(), -kInf);
    if (mode == 0) {
      bias4 = causal_bias.expand({b, h, t, s}).clone();
    } else if (mode == 1 || mode == 3) {
      // Random blocked keys, the query's own slot (j = i + S - T) always allowed so no row is all -inf.
      auto blocked = torch::rand(mode == 1 ? std::vector<int64_t>{b, 1, t, s} : std::vector<int64_t>{t, s}) < 0.4;
      auto own = torch::zeros({t, s}, torch::kBool);
      for (int64_t i = 0; i < t; ++i) own[i][i + s - t] = true;
      blocked = blocked.logical_and(own.logical_not());
      mask = torch::zeros(blocked.sizes()).masked_fill(blocked, -kInf) + 0.1 * torch::randn(blocked.sizes());
      bias4 = mask.expand({b, h, t, s}).clone();
    }
    const bool is_causal = mode == 0;

    expect_matches_slow_loop(q, k, v, mask, is_causal, bias4, scale);
  }
  at::set_num_threads(prev_threads);
}

// Causal attention over more than one block of 128 query rows skips the masked products; values
// and gradients still equal the slow loop, with T = S and with T < S (queries are the last T).
TEST(Compat, CausalAttentionOverSeveralQueryBlocksMatchesSlowLoop) {
  const int prev_threads = at::get_num_threads();
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{129, 129}, {256, 256}, {300, 310}, {130, 400}};
  for (size_t c = 0; c < shapes.size(); ++c) {
    const auto [t, s] = shapes[c];
    SCOPED_TRACE("T " + std::to_string(t) + ", S " + std::to_string(s));
    at::set_num_threads(c % 2 == 0 ? 2 : 1);
    torch::manual_seed(static_cast<uint64_t>(c));
    const int64_t b = 2, h = 2, d = 8;
    auto q = torch::randn({b, t, h, d}).transpose(1, 2).requires_grad_(true);
    auto k = torch::randn({b, h, s, d}).requires_grad_(true);
    auto v = torch::randn({b, h, s, d}).requires_grad_(true);
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    auto causal = torch::ones({t, s}, torch::kBool).tril(s - t);
    auto bias4 = torch::zeros({t, s}).masked_fill(causal.logical_not(), -kInf).expand({b, h, t, s});
    expect_matches_slow_loop(q, k, v, at::Tensor(), /*is_causal=*/true, bias4, scale);
  }
  at::set_num_threads(prev_threads);
}

// Without grad (the decode path) the same values come out, and nothing keeps a graph.
TEST(Compat, AttentionNoGradDecodeStep) {
  torch::manual_seed(3);
  auto q = torch::randn({2, 4, 1, 8});
  auto k = torch::randn({2, 4, 6, 8});
  auto v = torch::randn({2, 4, 6, 8});
  auto mask = torch::zeros({2, 1, 1, 6});
  mask[0][0][0][1] = -kInf;  // a padded key of row 0
  torch::NoGradGuard g;
  auto out = scaled_dot_product_attention(q, k, v, mask, false, 0.3);
  EXPECT_FALSE(out.requires_grad());
  auto ref = slow_attention(q, k, v, mask.expand({2, 4, 1, 6}), 0.3);
  EXPECT_TRUE(torch::allclose(out, ref, 1e-5, 1e-6));
}

// The guard sets OpenBLAS to one thread while alive and restores the previous count, nesting
// included; disabled it changes nothing. (Skipped where the BLAS is not OpenBLAS.)
TEST(Compat, SingleThreadedBlasRestoresThreadCount) {
  const auto get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  const auto set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (get == nullptr || set == nullptr) GTEST_SKIP() << "BLAS is not OpenBLAS";
  const int before = get();
  set(2);
  {
    SingleThreadedBlas outer;
    EXPECT_EQ(get(), 1);
    {
      SingleThreadedBlas inner;
      EXPECT_EQ(get(), 1);
    }
    EXPECT_EQ(get(), 1);  // the inner guard found 1 and leaves it
  }
  EXPECT_EQ(get(), 2);
  {
    SingleThreadedBlas off(/*enable=*/false);
    EXPECT_EQ(get(), 2);
  }
  set(before);
}

// SingleThreaded also drops ATen's intra-op threads to 1 and restores them.
TEST(Compat, SingleThreadedRestoresAtenThreads) {
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  {
    SingleThreaded serial;
    EXPECT_EQ(at::get_num_threads(), 1);
  }
  EXPECT_EQ(at::get_num_threads(), 2);
  {
    SingleThreaded off(/*enable=*/false);
    EXPECT_EQ(at::get_num_threads(), 2);
  }
  {  // nested: the inner guard finds 1 thread and leaves it; the outer restores 2
    SingleThreaded outer;
    {
      SingleThreaded inner;
      EXPECT_EQ(at::get_num_threads(), 1);
    }
    EXPECT_EQ(at::get_num_threads(), 1);
  }
  EXPECT_EQ(at::get_num_threads(), 2);
  at::set_num_threads(before);
}

}  // namespace
}  // namespace keel::compat
