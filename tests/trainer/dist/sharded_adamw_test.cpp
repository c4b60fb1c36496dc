// Tests for trainer/dist/sharded_adamw (ZeRO-1 over Gloo): on 2 and 3 ranks (slices that cut
// parameters, a padded last slice), the sharded step gives bit for bit the weights of keel's
// unsharded AdamW on the same gradients — with weight decay, a learning rate that changes between
// steps and a parameter without a gradient in one step — each rank holds only its slice's moments,
// which are the reference's exactly, and a ShardedAdamW that reads them back from shard files (a
// resume) goes on as the reference does.
#include "trainer/dist/sharded_adamw.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "base/error.h"
#include "tests/trainer/dist/dist_test_util.h"
#include "tests/trainer/dist/moment_test_util.h"
#include "trainer/dist/rendezvous.h"
#include "trainer/learner/fused_adamw.h"

namespace keel::dist {
namespace {

using testing::spawn_ranks;
using testing::SpawnSpec;

std::unique_ptr<Communicator> worker_comm() { return testing::gloo_worker_comm(60); }

// 35 + 3 + 24 + 11 = 73 elements: on 2 ranks slices of 37 (the [6, 4] cut), on 3 of 25 (two cuts,
// the last slice padded by 2).
std::vector<at::Tensor> make_params(uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<at::Tensor> ps;
  for (const auto& shape : std::vector<std::vector<int64_t>>{{7, 5}, {3}, {6, 4}, {11}})
    ps.push_back(at::randn(shape, gen).requires_grad_(true));
  return ps;
}

/// The (already summed) gradients of step `s`: the same on every rank; parameter 1 has none at step 2.
void set_grads(const std::vector<at::Tensor>& ps, int s) {
  for (size_t i = 0; i < ps.size(); ++i) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(100 * s + static_cast<int>(i));
    ps[i].mutable_grad() = (s == 2 && i == 1) ? at::Tensor() : at::randn(ps[i].sizes(), gen);
  }
}

torch::optim::AdamWOptions options() { return torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.1); }

void set_lr(torch::optim::Optimizer& o, double lr) {
  for (auto& g : o.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
}

bool same(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (!at::equal(a[i], b[i])) return false;
  return true;
}

TEST(ShardedAdamWDist, Worker) {
  KEEL_DIST_WORKER_OR_SKIP();
  auto comm = worker_comm();
  const int w = comm->size();
  auto ref = make_params(7), mine = make_params(7);
  learner::FusedAdamW ref_opt(ref, options());
  ShardedAdamW opt(*comm, mine, options());
  EXPECT_EQ(opt.total_elements(), 73);
  EXPECT_EQ(opt.shard_elements(), comm->rank() < w - 1 ? (73 + w - 1) / w : 73 - (w - 1) * ((73 + w - 1) / w));
  for (int s = 1; s <= 3; ++s) {
    set_grads(ref, s);
    set_grads(mine, s);
    set_lr(ref_opt, 1e-2 / s);
    set_lr(opt, 1e-2 / s);
    ref_opt.step();
    opt.step();
    EXPECT_TRUE(same(ref, mine)) << "step " << s << ", rank " << comm->rank();
    opt.zero_grad();  // the full parameters' gradients
    for (const auto& p : mine) EXPECT_TRUE(!p.grad().defined() || p.grad().abs().max().item<double>() == 0);
  }
  // Only this rank's moments live here: no state at all in the outer (whole-list) optimizer.
  EXPECT_TRUE(opt.state().empty());
  EXPECT_THROW(
      {
        torch::serialize::OutputArchive a;
        opt.save(a);
      },
      Error);

  // This rank's slices hold the reference's moments exactly (parameter 1 skipped step 2: 2 steps).
  testing::expect_moments_match(opt, ref_opt, ref, 0, 0, 0);
  // A resume through shard files: a new sharded optimizer reads them and goes on as the reference does.
  ShardedAdamW resumed(*comm, mine, options());
  std::vector<int64_t> numels;
  for (const auto& p : mine) numels.push_back(p.numel());
  testing::write_shards(*comm, opt, numels);
  testing::read_shards(*comm, resumed, numels);
  set_grads(ref, 4);
  set_grads(mine, 4);
  set_lr(ref_opt, 2e-3);  // the schedule sets the rate before every step
  set_lr(resumed, 2e-3);
  ref_opt.step();
  resumed.step();
  EXPECT_TRUE(same(ref, mine)) << "after the resume, rank " << comm->rank();
}

void run_ranks(int w) {
  const auto runs = spawn_ranks(SpawnSpec{.filter = "ShardedAdamWDist.Worker", .world_size = w, .timeout_s = 120});
  EXPECT_EQ(testing::failures(runs), "");
  for (const auto& run : runs) EXPECT_TRUE(testing::ran_worker(run)) << run.output;
}

TEST(ShardedAdamWDist, TwoRanks) { run_ranks(2); }
TEST(ShardedAdamWDist, ThreeRanks) { run_ranks(3); }

}  // namespace
}  // namespace keel::dist
