// Tests for models/fused_cpu: hand-checked values, then the fused kernels against the plain ATen
// composites (forward and both gradients) over random shapes, odd widths included, and the
// fallbacks (other dtypes, non-contiguous inputs, the double-backward guard).
#include "models/fused_cpu.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "models/compat.h"

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

}  // namespace
}  // namespace keel::models
