// Tests for models/fused_cpu: hand-checked values, then the fused kernels against the plain ATen
// composites (forward and both gradients) over random shapes, odd widths included, and the
// fallbacks (other dtypes, non-contiguous inputs, the double-backward guard).
#include "models/fused_cpu.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <string>
#include <vector>

#include "models/compat.h"
#include "models/fused_cpu_kernels.h"
#include "models/parallel.h"

namespace keel::models {
namespace {

std::string grad_fn_name(const at::Tensor& t) { return t.grad_fn() ? t.grad_fn()->name() : ""; }

TEST(FusedCpu, RmsNormHandValues) {
  // rms([3, 4]) = sqrt((9 + 16) / 2) = 3.5355339; y = [1 * 3, 2 * 4] / 3.5355339.
  auto x = torch::tensor({3.0f, 4.0f}).view({1, 2});
  auto w = torch::tensor({1.0f, 2.0f});
  auto y = rms_norm(x, w, 0.0);
  EXPECT_NEAR(y[0][0].item<float>(), 0.8485281f, 1e-6);
  EXPECT_NEAR(y[0][1].item<float>(), 2.2627417f, 1e-6);
}

TEST(FusedCpu, RotaryHandValues) {
  // D = 4, half = 2; cos = [1, 0, 1, 0], sin = [0, 1, 0, 1]:
  // y = x * cos + [-x2, -x3, x0, x1] * sin = [1, -4, 3, 2] for x = [1, 2, 3, 4].
  auto x = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).view({1, 1, 1, 4});
  auto cos = torch::tensor({1.0f, 0.0f, 1.0f, 0.0f}).view({1, 1, 4});
  auto sin = torch::tensor({0.0f, 1.0f, 0.0f, 1.0f}).view({1, 1, 4});
  auto y = rotary(x, cos, sin).flatten();
  const float want[] = {1, -4, 3, 2};
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(y[i].item<float>(), want[i]) << i;
}

// Forward and input/weight gradients of fused vs reference for the same inputs and output grad.
void expect_same(const std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>& fused,
                 const std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>& ref, const at::Tensor& a0,
                 const at::Tensor& b0, bool b_grad, const std::string& what) {
  auto a1 = a0.clone().requires_grad_(true), b1 = b0.clone().requires_grad_(b_grad);
  auto a2 = a0.clone().requires_grad_(true), b2 = b0.clone().requires_grad_(b_grad);
  auto y1 = fused(a1, b1), y2 = ref(a2, b2);
  ASSERT_EQ(y1.sizes(), y2.sizes()) << what;
  EXPECT_TRUE(torch::allclose(y1, y2, 1e-5, 1e-6)) << what << ": forward max diff " << (y1 - y2).abs().max().item<float>();
  auto g = torch::randn_like(y1);
  y1.backward(g);
  y2.backward(g);
  EXPECT_TRUE(torch::allclose(a1.grad(), a2.grad(), 1e-4, 1e-5))
      << what << ": input grad max diff " << (a1.grad() - a2.grad()).abs().max().item<float>();
  if (b_grad) {
    EXPECT_TRUE(torch::allclose(b1.grad(), b2.grad(), 1e-4, 1e-4))
        << what << ": second grad max diff " << (b1.grad() - b2.grad()).abs().max().item<float>();
  }
}

TEST(FusedCpu, RmsNormEqualsTheCompositeOverRandomShapes) {
  torch::manual_seed(0);
  for (const auto& shape : std::vector<std::vector<int64_t>>{{1, 1}, {3, 7}, {2, 5, 37}, {4, 64, 512}, {130, 48}}) {
    auto x = torch::randn(shape) * 3;
    auto w = torch::randn({shape.back()});
    const double eps = 1e-5;
    expect_same([&](const at::Tensor& a, const at::Tensor& b) { return rms_norm(a, b, eps); },
                [&](const at::Tensor& a, const at::Tensor& b) { return rms_norm_reference(a, b, eps); }, x, w, true,
                "rms_norm " + c10::str(x.sizes()));
  }
  auto y = rms_norm(torch::randn({2, 8}).requires_grad_(true), torch::ones({8}), 1e-6);
  EXPECT_NE(grad_fn_name(y).find("RmsNorm"), std::string::npos) << grad_fn_name(y);
}

TEST(FusedCpu, RotaryEqualsTheCompositeOverRandomShapes) {
  torch::manual_seed(1);
  for (const auto& s : std::vector<std::vector<int64_t>>{{1, 1, 1, 2}, {2, 5, 3, 6}, {3, 17, 4, 64}, {1, 9, 8, 128}}) {
    auto x = torch::randn(s);
    auto ang = torch::randn({s[0], s[1], s[3]});
    auto cos = ang.cos(), sin = ang.sin();
    expect_same([&](const at::Tensor& a, const at::Tensor&) { return rotary(a, cos, sin); },
                [&](const at::Tensor& a, const at::Tensor&) { return rotary_reference(a, cos, sin); }, x, cos, false,
                "rotary " + c10::str(x.sizes()));
  }
  auto y = rotary(torch::randn({1, 2, 2, 4}).requires_grad_(true), torch::ones({1, 2, 4}), torch::zeros({1, 2, 4}));
  EXPECT_NE(grad_fn_name(y).find("Rotary"), std::string::npos) << grad_fn_name(y);
}

TEST(FusedCpu, SwigluEqualsTheCompositeOverRandomShapes) {
  torch::manual_seed(2);
  for (const auto& s : std::vector<std::vector<int64_t>>{{1, 1}, {3, 37}, {2, 16, 1376}}) {
    auto a = torch::randn(s) * 4, b = torch::randn(s);
    expect_same([](const at::Tensor& x, const at::Tensor& y) { return swiglu(x, y); },
                [](const at::Tensor& x, const at::Tensor& y) { return swiglu_reference(x, y); }, a, b, true,
                "swiglu " + c10::str(a.sizes()));
  }
  // silu(-100) * 1 is ~-4e-42 (0 to fp32 tolerance), silu(100) * 2 = 200; NaN stays NaN.
  auto y = swiglu(torch::tensor({-100.0f, 100.0f, NAN}), torch::tensor({1.0f, 2.0f, 1.0f}));
  EXPECT_NEAR(y[0].item<float>(), 0.0f, 1e-30);
  EXPECT_FLOAT_EQ(y[1].item<float>(), 200.0f);
  EXPECT_TRUE(std::isnan(y[2].item<float>()));
}

TEST(FusedCpu, ExpPolynomialIsWithinTwoUlpOfStdExp) {
  std::vector<float> x;
  for (float v = -87.0f; v <= 88.0f; v += 0.0137f) x.push_back(v);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 0.34657359f, -0.34657359f, 1.0f}) x.push_back(v);
  std::vector<float> y(x.size());
  kernels::exp_elements(x.data(), y.data(), static_cast<int64_t>(x.size()));
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = std::exp(static_cast<double>(x[i]));
    worst = std::max(worst, std::abs(y[i] - want) / want);
  }
  EXPECT_LT(worst, 2.5e-7);  // 2 ulp of fp32 is 2.4e-7 relative
  const float special[] = {NAN, -INFINITY, -1000.0f, 1000.0f};
  float out[4];
  kernels::exp_elements(special, out, 4);
  EXPECT_TRUE(std::isnan(out[0]));
  EXPECT_LT(out[1], 1e-37f);  // clamped: ~1e-38 instead of 0
  EXPECT_LT(out[2], 1e-37f);
  EXPECT_GT(out[3], 1e38f);
}

TEST(FusedCpu, TokenLogprobsHandValues) {
  // log softmax([0, ln 3])[1] = ln(3 / 4) = -0.2876821; at temperature 2: logits [0, ln 3 / 2],
  // log(sqrt 3 / (1 + sqrt 3)) = log(0.6339746) = -0.4557464.
  auto logits = torch::tensor({0.0f, std::log(3.0f)}).view({1, 2});
  auto target = torch::tensor({int64_t{1}});
  EXPECT_NEAR(token_logprobs(logits, target, 1.0).item<float>(), -0.2876821f, 1e-6);
  EXPECT_NEAR(token_logprobs(logits, target, 2.0).item<float>(), -0.4557464f, 1e-6);
}

TEST(FusedCpu, TokenLogprobsEqualTheCompositeOverRandomShapes) {
  torch::manual_seed(4);
  for (const auto& s : std::vector<std::vector<int64_t>>{{1, 1}, {3, 37}, {2, 5, 100}, {4, 16, 8192}}) {
    for (double temperature : {1.0, 0.7}) {
      auto logits = torch::randn(s) * 6;
      std::vector<int64_t> rows(s.begin(), s.end() - 1);
      auto targets = torch::randint(0, s.back(), rows, torch::kLong);
      expect_same([&](const at::Tensor& a, const at::Tensor&) { return token_logprobs(a, targets, temperature); },
                  [&](const at::Tensor& a, const at::Tensor&) { return token_logprobs_reference(a, targets, temperature); },
                  logits, logits, false, "token_logprobs " + c10::str(logits.sizes()) + " T " + std::to_string(temperature));
    }
  }
  // Large logits and masked (-inf) entries: finite results equal to the composite's.
  auto logits = torch::randn({3, 50}) * 80;
  logits.index_put_({0, torch::indexing::Slice(0, 10)}, -INFINITY);
  auto targets = torch::tensor(std::vector<int64_t>{20, 3, 49});
  auto a = token_logprobs(logits, targets, 1.0), b = token_logprobs_reference(logits, targets, 1.0);
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-5)) << a << b;
  // NaN logits give NaN log-probs (the numerics guard must see them).
  logits[1][7] = NAN;
  EXPECT_TRUE(std::isnan(token_logprobs(logits, targets, 1.0)[1].item<float>()));
  auto y = token_logprobs(torch::randn({2, 8}).requires_grad_(true), torch::tensor(std::vector<int64_t>{1, 2}), 1.0);
  EXPECT_NE(grad_fn_name(y).find("TokenLogprob"), std::string::npos) << grad_fn_name(y);
  EXPECT_THROW(token_logprobs(torch::randn({2, 8}), torch::tensor(std::vector<int64_t>{1, 8}), 1.0), c10::Error);
}

TEST(FusedCpu, OtherDtypesLayoutsAndTheDoubleBackwardGuardUseTheComposite) {
  torch::manual_seed(3);
  auto xd = torch::randn({3, 8}, torch::kFloat64);
  auto wd = torch::randn({8}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(rms_norm(xd, wd, 1e-6), rms_norm_reference(xd, wd, 1e-6)));
  auto xt = torch::randn({8, 3}).t();  // not contiguous
  auto w = torch::randn({8});
  EXPECT_TRUE(torch::allclose(rms_norm(xt, w, 1e-6), rms_norm_reference(xt, w, 1e-6)));

  // Under the guard the result is differentiable twice: d/dx of sum(d rms_norm / dx) exists.
  compat::TwiceDifferentiableAttention twice;
  auto x = torch::randn({2, 8}, torch::requires_grad());
  auto y = rms_norm(x, torch::randn({8}), 1e-6);
  EXPECT_EQ(grad_fn_name(y).find("RmsNorm"), std::string::npos) << grad_fn_name(y);
  auto [gx] = std::tuple{torch::autograd::grad({y.pow(2).sum()}, {x}, {}, true, true)[0]};
  auto [ggx] = std::tuple{torch::autograd::grad({gx.sum()}, {x})[0]};
  EXPECT_TRUE(ggx.defined());
  auto r = rotary(torch::randn({1, 2, 2, 4}, torch::requires_grad()), torch::ones({1, 2, 4}), torch::zeros({1, 2, 4}));
  EXPECT_EQ(grad_fn_name(r).find("Rotary"), std::string::npos) << grad_fn_name(r);
}

TEST(FusedCpu, SmallLinearHandValues) {
  // W = [[1, 0, 1], [2, 1, 0]], b = [0.5, -1]: [1, 2, 3] -> [1 + 3 + 0.5, 2 + 2 - 1] = [4.5, 3];
  // [0, 1, -1] -> [-1 + 0.5, 1 - 1] = [-0.5, 0].
  torch::NoGradGuard no_grad;
  auto w = torch::tensor({1.0f, 0.0f, 1.0f, 2.0f, 1.0f, 0.0f}).view({2, 3});
  auto b = torch::tensor({0.5f, -1.0f});
  auto x = torch::tensor({1.0f, 2.0f, 3.0f, 0.0f, 1.0f, -1.0f}).view({2, 3});
  auto y = linear(x, w, b);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2, 2}));
  const float want[] = {4.5f, 3.0f, -0.5f, 0.0f};
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(y.flatten()[i].item<float>(), want[i]) << i;
  auto y_no_bias = linear(x, w, at::Tensor());
  EXPECT_FLOAT_EQ(y_no_bias[0][0].item<float>(), 4.0f);
  EXPECT_FLOAT_EQ(y_no_bias[1][1].item<float>(), 1.0f);
}

// The small-row kernel against an fp64 product over shapes with odd widths (the scalar tail past
// a multiple of 16, a partial block of weight rows), 1 .. 4 rows as [rows, in] and [1, rows, in],
// with and without bias; splitting the outputs over threads changes no bit.
TEST(FusedCpu, SmallLinearEqualsTheDoubleProductOverRandomShapes) {
  torch::manual_seed(11);
  torch::NoGradGuard no_grad;
  struct Case {
    std::string what;
    at::Tensor x, w, b, y1;
  };
  std::vector<Case> cases;
  for (int64_t rows = 1; rows <= kernels::kSmallLinearMaxRows; ++rows)
    for (int64_t in : {1, 15, 16, 17, 64, 130})
      for (int64_t out : {1, 3, 5, 33, 700})
        for (bool with_bias : {false, true})
          cases.push_back({"rows " + std::to_string(rows) + " in " + std::to_string(in) + " out " +
                               std::to_string(out) + (with_bias ? " bias" : ""),
                           rows % 2 == 0 ? torch::randn({rows, in}) : torch::randn({1, rows, in}),
                           torch::randn({out, in}), with_bias ? torch::randn({out}) : at::Tensor(), at::Tensor()});
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  for (auto& c : cases) {
    c.y1 = linear(c.x, c.w, c.b);
    auto want = torch::linear(c.x.to(torch::kDouble), c.w.to(torch::kDouble),
                              c.b.defined() ? c.b.to(torch::kDouble) : at::Tensor());
    ASSERT_EQ(c.y1.sizes(), want.sizes()) << c.what;
    EXPECT_TRUE(torch::allclose(c.y1.to(torch::kDouble), want, 1e-5, 1e-5))
        << c.what << ": max diff " << (c.y1.to(torch::kDouble) - want).abs().max().item<double>();
  }
  at::set_num_threads(2);  // split over two threads where a core is idle: the same bits
  for (const auto& c : cases) EXPECT_TRUE(torch::equal(linear(c.x, c.w, c.b), c.y1)) << c.what << ": 1 vs 2 threads";
  at::set_num_threads(before);
}

// Each instruction-set build of the small-row kernel this CPU can run (baseline x86-64 always, AVX2
// and AVX-512 where supported; each has its own vector width and blocking) against an fp64
// product, over widths around its step (16, 32 or 64 floats) and a slice of the outputs.
TEST(FusedCpu, SmallLinearEveryIsaBuildEqualsTheDoubleProduct) {
  torch::manual_seed(13);
  int isas = 0;
  for (auto isa : {kernels::Isa::kBaseline, kernels::Isa::kAvx2, kernels::Isa::kAvx512}) {
    if (!kernels::isa_supported(isa)) continue;
    ++isas;
    for (int64_t rows = 1; rows <= kernels::kSmallLinearMaxRows; ++rows)
      for (int64_t in : {1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 130})
        for (int64_t out : {1, 3, 5, 33}) {
          auto x = torch::randn({rows, in}), w = torch::randn({out, in}), b = torch::randn({out});
          auto y = torch::full({rows, out}, 1234.0f);
          const int64_t o_begin = out > 3 ? 1 : 0, o_end = out;  // a slice, as one thread's chunk
          kernels::small_linear_rows(x.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(), y.data_ptr<float>(),
                                     rows, in, out, o_begin, o_end, isa);
          auto want = torch::linear(x.to(torch::kDouble), w.to(torch::kDouble), b.to(torch::kDouble));
          const std::string what = "isa " + std::to_string(static_cast<int>(isa)) + " rows " + std::to_string(rows) +
                                   " in " + std::to_string(in) + " out " + std::to_string(out);
          auto got = y.narrow(1, o_begin, o_end - o_begin).to(torch::kDouble);
          EXPECT_TRUE(torch::allclose(got, want.narrow(1, o_begin, o_end - o_begin), 1e-5, 1e-5)) << what;
          if (o_begin > 0) {
            EXPECT_EQ(y[0][0].item<float>(), 1234.0f) << what << ": wrote outside its slice";
          }
        }
  }
  EXPECT_GE(isas, 1);
  EXPECT_TRUE(kernels::isa_supported(kernels::best_isa()));
}

// The raw kernels' outputs (every kernel but the small linear layer, whose vector width is the
// ISA's by design) on awkward sizes: widths and lengths that are no multiple of a vector, so that
// both a loop's vector body and its scalar tail run.
std::vector<std::vector<float>> run_every_kernel(const std::vector<float>& a, const std::vector<float>& b,
                                                 const std::vector<float>& c) {
  const int64_t n = 1000, rows = 7, h = 37, heads = 3, d = 10, v = 53, t = 5, s = 9;
  std::vector<std::vector<float>> out;
  const auto add = [&](int64_t len) -> float* { return out.emplace_back(len, 0.0f).data(); };
  float* y = add(rows * h);
  float* rstd = add(rows);
  kernels::rms_norm_forward_rows(a.data(), b.data(), y, rstd, rows, h, 1e-6f);
  float* dx = add(rows * h);
  float* dw = add(h);
  kernels::rms_norm_backward_rows(c.data(), a.data(), b.data(), rstd, dx, dw, rows, h);
  float* ry = add(rows * heads * d);  // [B = 1, T = rows, heads, d]; cos / sin [1, rows, d]
  kernels::rotary_forward_rows(a.data(), b.data(), c.data(), ry, rows * heads, heads, d, 0);
  float* rdx = add(rows * heads * d);
  kernels::rotary_backward_rows(a.data(), b.data(), c.data(), rdx, rows * heads, heads, d, 0);
  kernels::exp_elements(a.data(), add(n), n);
  std::vector<int64_t> target(rows);
  for (int64_t r = 0; r < rows; ++r) target[r] = (r * 17) % v;
  float* lp = add(rows);
  float* lse = add(rows);
  kernels::token_logprob_forward_rows(a.data(), target.data(), lp, lse, rows, v, 0.7f);
  kernels::token_logprob_backward_rows(a.data(), target.data(), lse, c.data(), add(rows * v), rows, v, 0.7f);
  kernels::swiglu_forward_elements(a.data(), b.data(), add(n), n);
  float* da = add(n);
  kernels::swiglu_backward_elements(a.data(), b.data(), c.data(), da, add(n), n);
  float* p = add(rows * t * s);
  std::copy(a.begin(), a.begin() + rows * t * s, p);
  kernels::causal_softmax_rows(p, rows * t, t, s, 0);
  kernels::causal_softmax_backward_rows(p, c.data(), add(rows * t * s), rows * t, t, s, 0);
  std::vector<float> mask(rows * s, 0.0f), scores(s);
  mask[3] = -INFINITY;
  kernels::attention_rows(a.data(), d, b.data(), d, c.data(), d, mask.data(), s, add(rows * d), d, scores.data(), rows,
                          s, d, 0.3f);
  float* pa = add(n);
  float* m = add(n);
  float* vv = add(n);
  std::copy(a.begin(), a.begin() + n, pa);
  std::copy(b.begin(), b.begin() + n, m);
  for (int64_t i = 0; i < n; ++i) vv[i] = c[i] * c[i];
  const AdamWCoefficients k{0.999f, 0.9f, 0.1f, 0.999f, 0.001f, 0.3f, 1e-8f, -1e-3f};
  kernels::adamw_elements(pa, c.data(), m, vv, n, k);
  return out;
}

std::vector<float> randn_vector(int64_t n) {
  const auto t = torch::randn({n});
  return {t.data_ptr<float>(), t.data_ptr<float>() + n};
}

// KEEL_ISA (and ScopedKernelIsa) may put a run on any path its CPU has, and a data-parallel run's
// ranks compare their results with one process's: every path must compute the baseline's bits.
// Before the kernels were built without FMA contraction, the AVX-512 build differed here.
TEST(FusedCpu, EveryIsaPathComputesTheBaselineBits) {
  torch::manual_seed(21);
  const auto a = randn_vector(1000), b = randn_vector(1000), c = randn_vector(1000);
  std::vector<std::vector<float>> want;
  {
    kernels::ScopedKernelIsa on(kernels::Isa::kBaseline);
    want = run_every_kernel(a, b, c);
  }
  for (auto isa : {kernels::Isa::kAvx2, kernels::Isa::kAvx512}) {
    if (!kernels::isa_supported(isa)) continue;
    kernels::ScopedKernelIsa on(isa);
    EXPECT_EQ(kernels::active_isa(), isa);
    const auto got = run_every_kernel(a, b, c);
    ASSERT_EQ(got.size(), want.size());
    for (size_t k = 0; k < got.size(); ++k) {
      ASSERT_EQ(got[k].size(), want[k].size());
      int differ = 0;
      for (size_t i = 0; i < got[k].size(); ++i)
        differ += std::memcmp(&got[k][i], &want[k][i], sizeof(float)) != 0;
      EXPECT_EQ(differ, 0) << kernels::isa_name(isa) << ": output " << k << " differs from the baseline build in "
                           << differ << " of " << got[k].size() << " values";
    }
  }
}

// An element-wise kernel computes each element alike wherever it falls: in a loop's vector body or
// in its scalar tail (the last length mod 16). Otherwise a tensor's length, which differs between a
// data-parallel rank and one process, would change values that should be equal.
TEST(FusedCpu, ElementBitsDoNotDependOnTheArrayLength) {
  torch::manual_seed(22);
  const int64_t n = 4099;
  auto a = randn_vector(n), b = randn_vector(n), c = randn_vector(n);
  for (int64_t i = 0; i < n; ++i) a[i] *= 1 + i % 29;  // up to exp's clamps and past them
  for (auto isa : {kernels::Isa::kBaseline, kernels::Isa::kAvx2, kernels::Isa::kAvx512}) {
    if (!kernels::isa_supported(isa)) continue;
    kernels::ScopedKernelIsa on(isa);
    std::vector<float> e(n), y(n), da(n), db(n);
    kernels::exp_elements(a.data(), e.data(), n);
    kernels::swiglu_forward_elements(a.data(), b.data(), y.data(), n);
    kernels::swiglu_backward_elements(a.data(), b.data(), c.data(), da.data(), db.data(), n);
    int differ = 0;
    for (int64_t i = 0; i < n; ++i) {
      float e1, y1, da1, db1;  // element i alone: the scalar tail
      kernels::exp_elements(&a[i], &e1, 1);
      kernels::swiglu_forward_elements(&a[i], &b[i], &y1, 1);
      kernels::swiglu_backward_elements(&a[i], &b[i], &c[i], &da1, &db1, 1);
      differ += std::memcmp(&e1, &e[i], 4) != 0 || std::memcmp(&y1, &y[i], 4) != 0 ||
                std::memcmp(&da1, &da[i], 4) != 0 || std::memcmp(&db1, &db[i], 4) != 0;
    }
    EXPECT_EQ(differ, 0) << kernels::isa_name(isa) << ": " << differ << " of " << n
                         << " elements change with the array's length";
  }
}

// Anything to differentiate, more rows than the kernel takes, or other dtypes and layouts:
// torch::linear itself (same bits, and a gradient when one is wanted).
TEST(FusedCpu, SmallLinearFallsBackToTorchLinear) {
  torch::manual_seed(12);
  auto w = torch::randn({6, 8}, torch::requires_grad());
  auto x = torch::randn({2, 8});
  auto y = linear(x, w, at::Tensor());
  ASSERT_TRUE(y.requires_grad());
  y.sum().backward();
  EXPECT_TRUE(torch::allclose(w.grad(), x.sum(0).expand({6, 8})));
  torch::NoGradGuard no_grad;
  auto wd = w.detach();
  auto many = torch::randn({kernels::kSmallLinearMaxRows + 1, 8});
  EXPECT_TRUE(torch::equal(linear(many, wd, at::Tensor()), torch::linear(many, wd)));
  auto xt = torch::randn({8, 2}).t();  // not contiguous
  EXPECT_TRUE(torch::equal(linear(xt, wd, at::Tensor()), torch::linear(xt, wd)));
  auto xd = torch::randn({1, 8}, torch::kDouble);
  EXPECT_TRUE(torch::equal(linear(xd, wd.to(torch::kDouble), at::Tensor()), torch::linear(xd, wd.to(torch::kDouble))));
  EXPECT_THROW(linear(torch::randn({1, 7}), wd, at::Tensor()), c10::Error);  // width mismatch: torch's error
}

TEST(FusedCpu, SmallAttentionHandValues) {
  // One batch row, 2 query heads sharing 1 key/value head, T = 1, S = 3, D = 2, scale 0.5; key 2
  // masked. Head 0: q = [2, 0] -> scores 0.5 * [2 * 0, 2 * ln 3] = [0, ln 3] -> p = [1/4, 3/4, 0]
  // -> out = 1/4 [4, 0] + 3/4 [0, 8] = [1, 6]. Head 1: q = 0 -> p = [1/2, 1/2, 0] -> out = [2, 4].
  torch::NoGradGuard no_grad;
  const float ln3 = std::log(3.0f);
  auto q = torch::tensor({2.0f, 0.0f, 0.0f, 0.0f}).view({1, 2, 1, 2});
  auto k = torch::tensor({0.0f, 5.0f, ln3, 7.0f, 9.0f, 0.0f}).view({1, 1, 3, 2});
  auto v = torch::tensor({4.0f, 0.0f, 0.0f, 8.0f, 100.0f, 100.0f}).view({1, 1, 3, 2});
  auto mask = torch::tensor({0.0f, 0.0f, -INFINITY}).view({1, 1, 1, 3});
  auto out = small_attention(q, k, v, mask, 0.5);
  ASSERT_TRUE(out.defined());
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{1, 1, 2, 2}));  // [B, T, Hq, D]
  const float want[] = {1.0f, 6.0f, 2.0f, 4.0f};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(out.flatten()[i].item<float>(), want[i], 1e-5) << i;
}

namespace {
/// softmax(scale q k^T + mask) v in fp64 with HF's repeat_kv, as [B, T, Hq, D].
at::Tensor attention_in_double(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                               double scale) {
  const int64_t rep = q.size(1) / k.size(1);
  auto kd = k.to(torch::kDouble).repeat_interleave(rep, 1), vd = v.to(torch::kDouble).repeat_interleave(rep, 1);
  auto scores = torch::matmul(q.to(torch::kDouble), kd.transpose(-2, -1)) * scale + mask.to(torch::kDouble);
  return torch::matmul(torch::softmax(scores, -1), vd).transpose(1, 2);
}
}  // namespace

// The decode-step attention against fp64 over random shapes: GQA and MHA, 1 .. 8 query rows, keys
// and values read from a wider cache (strided), a transposed query (the projection's layout),
// odd head sizes, masks with -inf holes (padding, a window) per batch row or broadcast over it.
TEST(FusedCpu, SmallAttentionEqualsTheDoubleFormulaOverRandomShapes) {
  torch::manual_seed(21);
  torch::NoGradGuard no_grad;
  int cases = 0;
  for (int64_t b : {1, 3})
    for (int64_t hkv : {1, 2})
      for (int64_t rep : {1, 4})
        for (int64_t t : {1, 2, 8})
          for (int64_t d : {1, 17, 64})
            for (int64_t s : {t, t + 5, t + 300})
              for (bool per_row_mask : {true, false}) {
                const int64_t hq = hkv * rep, cap = s + 7;
                auto q = torch::randn({b, t, hq, d}).transpose(1, 2);  // [B, Hq, T, D], strided
                auto k = torch::randn({b, hkv, cap, d}).narrow(2, 0, s);
                auto v = torch::randn({b, hkv, cap, d}).narrow(2, 0, s);
                auto holes = torch::rand({per_row_mask ? b : 1, 1, t, s}) < 0.3;
                holes.select(3, s - 1).fill_(false);  // every query sees at least its own key
                auto mask = torch::zeros(holes.sizes()).masked_fill(holes, -INFINITY);
                const double scale = 1.0 / std::sqrt(static_cast<double>(d));
                auto got = small_attention(q, k, v, mask, scale);
                const std::string what = "b " + std::to_string(b) + " hkv " + std::to_string(hkv) + " rep " +
                                         std::to_string(rep) + " t " + std::to_string(t) + " d " + std::to_string(d) +
                                         " s " + std::to_string(s);
                ASSERT_TRUE(got.defined()) << what;
                auto want = attention_in_double(q, k, v, mask.expand({b, 1, t, s}), scale);
                EXPECT_LT((got.to(torch::kDouble) - want).abs().max().item<double>(), 1e-5) << what;
                ++cases;
              }
  EXPECT_EQ(cases, 2 * 2 * 2 * 3 * 3 * 3 * 2);
  // A row whose keys are all masked is NaN, as ATen's softmax makes it.
  auto q = torch::randn({1, 1, 1, 4});
  auto kv = torch::randn({1, 1, 2, 4});
  auto all_masked = torch::full({1, 1, 1, 2}, -INFINITY);
  EXPECT_TRUE(small_attention(q, kv, kv, all_masked, 0.5).isnan().all().item<bool>());
}

TEST(FusedCpu, SmallAttentionLeavesOtherCasesToTheGeneralPath) {
  torch::manual_seed(22);
  auto q = torch::randn({1, 2, 1, 4}), kv = torch::randn({1, 1, 3, 4}), mask = torch::zeros({1, 1, 1, 3});
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(small_attention(q, kv, kv, mask, 0.5).defined());
    EXPECT_FALSE(small_attention(q, kv, kv, at::Tensor(), 0.5).defined());  // no mask: plain causal
    EXPECT_FALSE(small_attention(q.to(torch::kDouble), kv.to(torch::kDouble), kv.to(torch::kDouble),
                                 mask.to(torch::kDouble), 0.5).defined());
    auto many = torch::randn({1, 2, kSmallAttentionMaxRows + 1, 4});
    EXPECT_FALSE(small_attention(many, kv, kv, torch::zeros({1, 1, kSmallAttentionMaxRows + 1, 3}), 0.5).defined());
    auto q_cols = torch::randn({1, 2, 1, 8}).slice(3, 0, 8, 2);  // last stride 2
    EXPECT_FALSE(small_attention(q_cols, kv, kv, mask, 0.5).defined());
    EXPECT_FALSE(small_attention(q, kv, kv, torch::zeros({1, 1, 1, 2}), 0.5).defined());  // mask width
    EXPECT_FALSE(small_attention(torch::randn({1, 3, 1, 4}), torch::randn({1, 2, 3, 4}), torch::randn({1, 2, 3, 4}),
                                 mask, 0.5).defined());  // 3 query heads over 2 key/value heads
    compat::TwiceDifferentiableAttention twice;
    EXPECT_FALSE(small_attention(q, kv, kv, mask, 0.5).defined());
  }
  auto qg = q.clone().requires_grad_(true);
  EXPECT_FALSE(small_attention(qg, kv, kv, mask, 0.5).defined());  // autograd: the general path
}

// Packing moves the values, not the tensors: the same TensorImpls (what modules and optimizers
// hold), equal values, contiguous, 64-byte aligned, laid out one after another from a 2 MiB
// boundary; autograd and in-place updates work on the packed tensors. Mixed dtypes and small
// sets are left alone.
TEST(FusedCpu, PackOnHugePagesKeepsTheTensorsAndTheirValues) {
  torch::manual_seed(23);
  std::vector<at::Tensor> params{torch::randn({300, 7}, torch::requires_grad()), torch::randn({5}),
                                 torch::randn({1000, 1000}, torch::requires_grad())};
  std::vector<at::Tensor> before;
  std::vector<const void*> impls;
  for (const auto& p : params) before.push_back(p.detach().clone()), impls.push_back(p.unsafeGetTensorImpl());
  ASSERT_TRUE(pack_on_huge_pages(params, /*min_bytes=*/1));
  const auto base = reinterpret_cast<uintptr_t>(params[0].data_ptr());
  EXPECT_EQ(base % (uintptr_t{2} << 20), 0u);
  uintptr_t expect = base;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    EXPECT_EQ(p.unsafeGetTensorImpl(), impls[i]) << i;
    EXPECT_TRUE(torch::equal(p, before[i])) << i;
    EXPECT_TRUE(p.is_contiguous()) << i;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p.data_ptr()), expect) << i;
    expect += (static_cast<uintptr_t>(p.numel()) * 4 + 63) / 64 * 64;
  }
  EXPECT_TRUE(params[0].requires_grad());
  EXPECT_FALSE(params[1].requires_grad());
  auto x = torch::randn({2, 300});
  torch::mm(x, params[0]).sum().backward();
  EXPECT_TRUE(torch::allclose(params[0].grad(), x.sum(0).unsqueeze(1).expand({300, 7})));
  {
    torch::NoGradGuard no_grad;
    params[2].add_(1.0);  // an optimizer's in-place step lands in the arena
  }
  EXPECT_TRUE(torch::allclose(params[2], before[2] + 1.0));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(params[2].data_ptr()), expect - 1000 * 1000 * 4);

  EXPECT_FALSE(pack_on_huge_pages({torch::randn({4}), torch::randn({4}, torch::kDouble)}, 1));  // mixed dtypes
  auto small = torch::randn({4});
  const void* small_ptr = small.data_ptr();
  EXPECT_FALSE(pack_on_huge_pages({small}));  // under the default 8 MB
  EXPECT_EQ(small.data_ptr(), small_ptr);
  EXPECT_FALSE(pack_on_huge_pages({}));
}

namespace {
/// The (begin, end) chunks a parallel loop ran and the threads that ran them.
struct ChunkLog {
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  std::set<std::thread::id> threads;
  std::function<void(int64_t, int64_t)> recorder() {
    return [this](int64_t b, int64_t e) {
      std::lock_guard<std::mutex> lock(mu);
      chunks.emplace_back(b, e);
      threads.insert(std::this_thread::get_id());
    };
  }
};
}  // namespace

// keel's parallel_for really runs on ATen's intra-op threads (at::parallel_for, compiled into keel's
// non-OpenMP sources, ran everything on the calling thread), in at::parallel_for's chunks, serially
// inside a compat::SingleThreaded guard, and rethrows a chunk's exception.
TEST(FusedCpu, ParallelForUsesAtensThreads) {
  if (!parallel_chunks_run_in_parallel()) GTEST_SKIP() << "keel was built without OpenMP (CMake found none)";
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  ChunkLog log;
  auto& chunks = log.chunks;
  auto& threads = log.threads;
  const auto record = log.recorder();
  parallel_for(0, 1001, 1, record);
  std::sort(chunks.begin(), chunks.end());
  EXPECT_EQ(chunks, (std::vector<std::pair<int64_t, int64_t>>{{0, 501}, {501, 1001}}));
  EXPECT_EQ(threads.size(), 2u);
  chunks.clear();
  threads.clear();
  parallel_for(0, 1001, 600, record);  // chunks of at least the grain: still two
  EXPECT_EQ(chunks.size(), 2u);
  chunks.clear();
  parallel_for(0, 1001, 2000, record);  // one grain: inline
  EXPECT_EQ(chunks, (std::vector<std::pair<int64_t, int64_t>>{{0, 1001}}));
  chunks.clear();
  threads.clear();
  {
    compat::SingleThreaded serial;
    parallel_for(0, 1001, 1, record);
  }
  EXPECT_EQ(chunks, (std::vector<std::pair<int64_t, int64_t>>{{0, 1001}}));
  EXPECT_EQ(threads, std::set<std::thread::id>{std::this_thread::get_id()});
  EXPECT_THROW(parallel_for(0, 10, 1,
                            [](int64_t b, int64_t) {
                              if (b > 0) throw std::runtime_error("chunk failed");
                            }),
               std::runtime_error);
  at::set_num_threads(before);
}

// spinning_chunks: parallel_chunks' chunks on keel's spinning helpers (3 threads: 2 helpers), the
// same bits whatever runs them; a call from a helper, or while another thread's job runs, runs
// inline; exceptions from any chunk are rethrown; idle helpers go to sleep after kSpinMicros and
// wake for the next job.
TEST(FusedCpu, SpinningChunksSplitLikeParallelChunks) {
  ChunkLog log;
  auto& chunks = log.chunks;
  auto& threads = log.threads;
  const auto record = log.recorder();
  spinning_chunks(0, 1001, 1, 3, record);
  std::sort(chunks.begin(), chunks.end());
  EXPECT_EQ(chunks, (std::vector<std::pair<int64_t, int64_t>>{{0, 334}, {334, 668}, {668, 1001}}));
  EXPECT_EQ(threads.size(), 3u);
  EXPECT_TRUE(threads.count(std::this_thread::get_id()));
  chunks.clear();
  spinning_chunks(10, 15, 1, 4, record);  // 4 chunks of 2 over 5 elements: the last one is empty
  std::sort(chunks.begin(), chunks.end());
  EXPECT_EQ(chunks, (std::vector<std::pair<int64_t, int64_t>>{{10, 12}, {12, 14}, {14, 15}}));
  chunks.clear();
  spinning_chunks(0, 1001, 2000, 3, record);  // one grain: inline
  EXPECT_EQ(chunks, (std::vector<std::pair<int64_t, int64_t>>{{0, 1001}}));
  chunks.clear();

  // A chunk that calls spinning_chunks runs the inner range inline, on its own thread.
  std::atomic<int> inner_inline{0};
  spinning_chunks(0, 2, 1, 2, [&](int64_t, int64_t) {
    const auto me = std::this_thread::get_id();
    bool same = true;
    spinning_chunks(0, 100, 1, 2, [&](int64_t, int64_t) { same = same && std::this_thread::get_id() == me; });
    if (same) ++inner_inline;
  });
  EXPECT_EQ(inner_inline.load(), 2);

  // Two callers at once: both complete, each range covered exactly once.
  std::vector<int> hits(2000, 0);
  auto count_hits = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) ++hits[static_cast<size_t>(i)];  // disjoint ranges: no race
  };
  std::thread other([&] {
    for (int k = 0; k < 200; ++k) spinning_chunks(1000, 2000, 1, 2, count_hits);
  });
  for (int k = 0; k < 200; ++k) spinning_chunks(0, 1000, 1, 2, count_hits);
  other.join();
  EXPECT_TRUE(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 200; }));

  EXPECT_THROW(spinning_chunks(0, 10, 1, 2,
                               [](int64_t b, int64_t) {
                                 if (b > 0) throw std::runtime_error("helper's chunk failed");
                               }),
               std::runtime_error);
  EXPECT_THROW(spinning_chunks(0, 10, 1, 2,
                               [](int64_t b, int64_t) {
                                 if (b == 0) throw std::runtime_error("caller's chunk failed");
                               }),
               std::runtime_error);

  // Idle helpers sleep after kSpinMicros (allowing for a loaded machine); a job wakes them.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (spinning_helpers_awake() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(kSpinMicros));
  EXPECT_EQ(spinning_helpers_awake(), 0);
  threads.clear();
  spinning_chunks(0, 1001, 1, 3, record);
  EXPECT_EQ(threads.size(), 3u);
}

// The small linear layer's second thread only where a core is idle: clamp(1 + cpus - runnable, 1,
// wanted), runnable counting the caller. And the count a SingleThreaded guard holds back.
TEST(FusedCpu, ThreadsWithIdleCores) {
  EXPECT_EQ(threads_with_idle_cores(2, 2, 1), 2);  // only this thread runs: the other core is idle
  EXPECT_EQ(threads_with_idle_cores(2, 2, 2), 1);  // something else runs on the other core
  EXPECT_EQ(threads_with_idle_cores(2, 2, 5), 1);
  EXPECT_EQ(threads_with_idle_cores(8, 16, 3), 8);
  EXPECT_EQ(threads_with_idle_cores(8, 16, 12), 5);
  EXPECT_EQ(threads_with_idle_cores(1, 16, 1), 1);
  const int live = threads_with_idle_cores(2);
  EXPECT_GE(live, 1);
  EXPECT_LE(live, 2);
  EXPECT_EQ(threads_with_idle_cores(1), 1);

  const int before = at::get_num_threads();
  at::set_num_threads(2);
  EXPECT_EQ(compat::SingleThreaded::held_threads(), 0);
  {
    compat::SingleThreaded serial;
    EXPECT_EQ(compat::SingleThreaded::held_threads(), 2);
    {
      compat::SingleThreaded inner;  // finds 1 thread: holds nothing more
      EXPECT_EQ(compat::SingleThreaded::held_threads(), 2);
    }
    EXPECT_EQ(compat::SingleThreaded::held_threads(), 2);
  }
  EXPECT_EQ(compat::SingleThreaded::held_threads(), 0);
  at::set_num_threads(before);
}

}  // namespace
}  // namespace keel::models
