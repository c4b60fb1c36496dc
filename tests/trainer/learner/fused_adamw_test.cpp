// Tests for learner/fused_adamw: hand-checked first step, the same trajectory as torch's AdamW over
// random tensors (odd sizes, two groups, a parameter without a gradient, a schedule changing lr),
// and checkpoints that load into either optimizer.
#include "trainer/learner/fused_adamw.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>
#include <vector>

#include "base/fs.h"

namespace keel::learner {
namespace {

TEST(FusedAdamW, FirstStepByHand) {
  // Step 1: m = 0.1 g, v = 0.05 g^2 (betas 0.9, 0.95); bias-corrected m / sqrt(v) = g / |g| = sign(g),
  // so p = p (1 - lr wd) - lr sign(g) g-independently (eps aside): 2 * 0.99 - 0.1 = 1.88, -1 * 0.99 + 0.1 = -0.89.
  auto p = torch::tensor({2.0f, -1.0f}).requires_grad_(true);
  FusedAdamW opt({p}, torch::optim::AdamWOptions(0.1).betas({0.9, 0.95}).eps(1e-12).weight_decay(0.1));
  p.mutable_grad() = torch::tensor({0.5f, -3.0f});
  opt.step();
  EXPECT_NEAR(p[0].item<float>(), 1.88f, 1e-6);
  EXPECT_NEAR(p[1].item<float>(), -0.89f, 1e-6);
}

std::vector<at::Tensor> random_params(uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<at::Tensor> ps;
  for (int64_t n : {1, 7, 33, 1000, 70001}) ps.push_back(torch::randn({n}).requires_grad_(true));
  ps.push_back(torch::randn({37, 5}).requires_grad_(true));
  return ps;
}

std::vector<torch::optim::OptimizerParamGroup> two_groups(const std::vector<at::Tensor>& ps) {
  const auto opts = torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.1);
  auto other = torch::optim::AdamWOptions(3e-3).betas({0.8, 0.99}).eps(1e-6).weight_decay(0.0);
  return {torch::optim::OptimizerParamGroup({ps[0], ps[1], ps[2]}, std::make_unique<torch::optim::AdamWOptions>(opts)),
          torch::optim::OptimizerParamGroup({ps[3], ps[4], ps[5]}, std::make_unique<torch::optim::AdamWOptions>(other))};
}

void run_steps(torch::optim::AdamW& opt, const std::vector<at::Tensor>& ps, int steps, uint64_t grad_seed) {
  torch::manual_seed(grad_seed);
  for (int s = 0; s < steps; ++s) {
    for (size_t i = 0; i < ps.size(); ++i) {
      // Parameter 2 has no gradient on odd steps (skipped, its state does not advance).
      if (i == 2 && s % 2 == 1) ps[i].mutable_grad() = at::Tensor();
      else ps[i].mutable_grad() = torch::randn_like(ps[i]) * (1 + static_cast<double>(i));
    }
    if (s == 3) static_cast<torch::optim::AdamWOptions&>(opt.param_groups()[0].options()).lr(5e-3);  // a schedule
    opt.step();
  }
}

void expect_close(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-5, 1e-6))
        << "param " << i << " max diff " << (a[i] - b[i]).abs().max().item<float>();
}

TEST(FusedAdamW, FollowsTorchAdamWOverRandomSteps) {
  auto pa = random_params(0), pb = random_params(0);
  FusedAdamW fused(two_groups(pa));
  torch::optim::AdamW plain(two_groups(pb));
  run_steps(fused, pa, 8, 1);
  run_steps(plain, pb, 8, 1);
  expect_close(pa, pb);
  EXPECT_EQ(fused.state().size(), plain.state().size());  // one AdamWParamState per parameter
}

TEST(FusedAdamW, CheckpointsLoadIntoEitherOptimizer) {
  const auto dir = std::filesystem::temp_directory_path() / ("keel_fused_adamw_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto pa = random_params(3), pb = random_params(3);
  FusedAdamW fused(two_groups(pa));
  run_steps(fused, pa, 3, 4);
  torch::serialize::OutputArchive out;
  fused.save(out);
  out.save_to((dir / "opt.pt").string());
  // Continue 3 steps with the fused one, and with torch's AdamW restored from the checkpoint.
  for (size_t i = 0; i < pa.size(); ++i) pb[i].detach().copy_(pa[i].detach());
  torch::optim::AdamW plain(two_groups(pb));
  torch::serialize::InputArchive in;
  in.load_from((dir / "opt.pt").string());
  plain.load(in);
  run_steps(fused, pa, 3, 5);
  run_steps(plain, pb, 3, 5);
  expect_close(pa, pb);
  keel::fs::remove_tree(dir);
}

TEST(FusedAdamW, NonFp32ParametersTakeTorchsStep) {
  torch::manual_seed(7);
  auto a = torch::randn({9}, torch::kFloat64).requires_grad_(true);
  auto b = a.detach().clone().requires_grad_(true);
  FusedAdamW fused({a}, torch::optim::AdamWOptions(1e-2));
  torch::optim::AdamW plain({b}, torch::optim::AdamWOptions(1e-2));
  for (int s = 0; s < 3; ++s) {
    auto g = torch::randn({9}, torch::kFloat64);
    a.mutable_grad() = g.clone();
    b.mutable_grad() = g.clone();
    fused.step();
    plain.step();
  }
  EXPECT_TRUE(torch::equal(a, b));
}

}  // namespace
}  // namespace keel::learner
