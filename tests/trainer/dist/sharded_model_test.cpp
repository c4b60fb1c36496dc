// Tests for trainer/dist/sharded_model (ZeRO-2 / ZeRO-3 over Gloo) and the communicator's
// reduce-scatter and async all-gather it uses. On 2 and 3 ranks (units cut unevenly, padded last
// slices), a tiny 3-layer transformer with gradient checkpointing trains 3 steps on its rows of a
// 6-row batch, micro-batch by micro-batch, with clipping that acts and a learning rate that changes:
// the weights, the gradient norms and each rank's AdamW moments match one process running keel's
// AdamW on all 6 rows (fp32 summation order apart). Inside an update, `full` keeps the layers'
// weights freed outside their forward / backward, and both levels hold no whole layer gradient
// after the backward; the measured peak of model-state bytes is below the unsharded 16 bytes per
// parameter at both levels; each rank's moments are the reference's, and a
// model that reads them back from shard files goes on as the reference does (a resume).
#include "trainer/dist/sharded_model.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "base/error.h"
#include "tests/models/test_util.h"
#include "tests/trainer/dist/dist_test_util.h"
#include "tests/trainer/dist/moment_test_util.h"
#include "trainer/learner/fused_adamw.h"
#include "trainer/learner/gradient_shards.h"

namespace keel::dist {
namespace {

using testing::spawn_ranks;
using testing::SpawnSpec;

constexpr int64_t kRows = 6, kLen = 7;
constexpr double kMaxNorm = 0.5;

models::Transformer make_model() {
  auto cfg = models::testing::tiny_config();
  cfg.num_hidden_layers = 3;
  models::Transformer m(cfg);
  models::testing::randomize(m, 3);
  m.set_gradient_checkpointing(true);
  m.train(true);
  return m;
}

// eps 1e-6: the reference and the ranks sum gradients in different orders, and AdamW moves an
// element whose gradient nearly cancels by lr * g / (|g| + eps), so a 1e-11 summation difference
// there moves the weight by lr * 1e-11 / eps (1.7e-5 at eps 1e-8 on an AMD avx2 machine, over the
// 2e-6 bound below; 1e-7 at 1e-6). A sharding error moves weights by ~lr.
torch::optim::AdamWOptions options() { return torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).eps(1e-6).weight_decay(0.1); }

void set_lr(torch::optim::Optimizer& o, double lr) {
  for (auto& g : o.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
}

struct Batch {
  at::Tensor ids, targets;  // [kRows, kLen]
};
Batch batch(int step) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 + step);
  return {at::randint(3, 50, {kRows, kLen}, gen), at::randint(0, 50, {kRows, kLen}, gen)};
}

/// Row `row`'s share of the batch's token-mean cross-entropy, backpropagated.
void backward_row(models::Transformer& m, const Batch& b, int64_t row) {
  const auto logits = m.forward(b.ids.narrow(0, row, 1));
  const auto loss = torch::nn::functional::cross_entropy(
                        logits.reshape({-1, logits.size(-1)}), b.targets.narrow(0, row, 1).reshape({-1}),
                        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)) /
                    static_cast<double>(kRows * kLen);
  loss.backward();
}

double max_abs_diff(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, (a[i] - b[i]).abs().max().item<double>());
  return d;
}

int64_t count(const std::vector<at::Tensor>& ps) {
  int64_t n = 0;
  for (const auto& p : ps) n += p.numel();
  return n;
}

/// One process on all rows and W ranks on theirs, `steps` steps each; the ranks' results checked.
void train_and_compare(Communicator& comm, ShardLevel level, int64_t* peak_out) {
  const int w = comm.size(), r = comm.rank();
  auto ref = make_model(), mine = make_model();
  learner::FusedAdamW ref_opt(ref.parameters(), options());
  auto opt = std::make_unique<ShardedModel>(comm, mine, level, options());
  const auto layer_weight = mine.named_parameters().at("model.layers.1.mlp.up_proj.weight");
  const auto root_weight = mine.named_parameters().at("model.embed_tokens.weight");
  const int64_t per_rank = kRows / w;
  int64_t peak = 0;
  for (int s = 1; s <= 3; ++s) {
    const auto b = batch(s);
    ref_opt.zero_grad();
    for (int64_t row = 0; row < kRows; ++row) backward_row(ref, b, row);
    const double ref_norm = torch::nn::utils::clip_grad_norm_(ref.parameters(), kMaxNorm);
    set_lr(ref_opt, 1e-2 / s);
    ref_opt.step();
    {
      learner::UpdateScope scope(*opt);
      if (level == ShardLevel::kFull) {
        EXPECT_EQ(layer_weight.storage().nbytes(), 0U) << "a layer's weights stay whole in the update";
        EXPECT_GT(root_weight.storage().nbytes(), 0U);
      }
      opt->zero_grad();
      for (int64_t row = r * per_rank; row < (r + 1) * per_rank; ++row) {
        backward_row(mine, b, row);
        // The layers' gradients went to the shards in backward; their weights are freed again.
        EXPECT_FALSE(layer_weight.grad().defined());
        if (level == ShardLevel::kFull) EXPECT_EQ(layer_weight.storage().nbytes(), 0U);
        EXPECT_TRUE(root_weight.grad().defined());  // reduce-scattered once, after the mini-batch
      }
      auto* shards = learner::gradient_shards(*opt);
      ASSERT_NE(shards, nullptr);
      const double norm = shards->reduce_and_clip(kMaxNorm);
      EXPECT_GT(ref_norm, kMaxNorm);  // clipping acts
      EXPECT_NEAR(norm, ref_norm, 1e-5 * ref_norm) << "step " << s;
      EXPECT_FALSE(root_weight.grad().defined());
      set_lr(*opt, 1e-2 / s);
      opt->step();
      peak = std::max(peak, opt->peak_model_state_bytes());
    }
    EXPECT_GT(layer_weight.storage().nbytes(), 0U) << "whole again after the update";
    EXPECT_LT(max_abs_diff(ref.parameters(), mine.parameters()), 2e-6) << "step " << s << ", rank " << r;
  }
  // This rank's moments: its slices only (units padded to multiples of W).
  const int64_t n = count(mine.parameters());
  EXPECT_LE(opt->state_bytes(), 8 * (n / w + 4 * w));
  EXPECT_GE(opt->state_bytes(), 8 * (n / w));

  // This rank's slices hold the reference's moments.
  testing::expect_moments_match(*opt, ref_opt, ref.parameters(), 1e-4, 1e-7, 1e-9);
  EXPECT_THROW(
      {
        torch::serialize::OutputArchive a;
        opt->save(a);
      },
      Error);

  // A resume through shard files: a sharded model reading them goes on as the reference does.
  std::vector<int64_t> numels;
  for (const auto& p : mine.parameters()) numels.push_back(p.numel());
  testing::write_shards(comm, *opt, numels);
  opt.reset();
  EXPECT_EQ(mine.layer_residency(), nullptr);
  ShardedModel resumed(comm, mine, level, options());
  testing::read_shards(comm, resumed, numels);
  const auto b = batch(4);
  ref_opt.zero_grad();
  for (int64_t row = 0; row < kRows; ++row) backward_row(ref, b, row);
  torch::nn::utils::clip_grad_norm_(ref.parameters(), kMaxNorm);
  set_lr(ref_opt, 2e-3);
  ref_opt.step();
  {
    learner::UpdateScope scope(resumed);
    resumed.zero_grad();
    for (int64_t row = r * per_rank; row < (r + 1) * per_rank; ++row) backward_row(mine, b, row);
    resumed.reduce_and_clip(kMaxNorm);
    set_lr(resumed, 2e-3);
    resumed.step();
  }
  EXPECT_LT(max_abs_diff(ref.parameters(), mine.parameters()), 2e-6) << "after the resume, rank " << r;
  *peak_out = peak;
}

TEST(ShardedModelDist, Worker) {
  KEEL_DIST_WORKER_OR_SKIP();
  auto comm = testing::gloo_worker_comm(60);
  const int w = comm->size(), r = comm->rank();

  // The collectives: reduce-scatter sums and keeps this rank's slice; the async all-gather fills
  // one buffer rank by rank.
  auto in = at::arange(w * 3, at::kFloat) * static_cast<float>(r + 1);
  const auto got = comm->reduce_scatter(in);
  const float ranks_sum = static_cast<float>(w * (w + 1) / 2);
  EXPECT_TRUE(at::equal(got, at::arange(r * 3, r * 3 + 3, at::kFloat) * ranks_sum));
  auto out = at::empty({w * 2}, at::kFloat);
  const auto mine_part = at::full({2}, static_cast<float>(r));
  comm->all_gather_into_async(mine_part, out)->wait();
  for (int i = 0; i < w; ++i) EXPECT_EQ(out[2 * i + 1].item<float>(), static_cast<float>(i));

  int64_t peak_gradients = 0, peak_full = 0;
  train_and_compare(*comm, ShardLevel::kGradients, &peak_gradients);
  train_and_compare(*comm, ShardLevel::kFull, &peak_full);
  const int64_t unsharded = 16 * count(make_model().parameters());
  // (Which of the two is lower depends on the model's shape: full adds master copies and gathered
  // layers, and this model's root unit is most of it. TrainDist.ShardingLevelsLowerThePeakOfModelStates
  // orders them on a deeper model.)
  EXPECT_LT(peak_gradients, unsharded);
  EXPECT_LT(peak_full, unsharded);
  std::printf("model-state peak per rank at %d ranks: none %lld, gradients %lld, full %lld bytes\n", w,
              static_cast<long long>(unsharded), static_cast<long long>(peak_gradients),
              static_cast<long long>(peak_full));
}

void run_ranks(int w) {
  const auto runs = spawn_ranks(SpawnSpec{.filter = "ShardedModelDist.Worker", .world_size = w, .timeout_s = 180});
  EXPECT_EQ(testing::failures(runs), "");
  for (const auto& run : runs) EXPECT_TRUE(testing::ran_worker(run)) << run.output;
}

TEST(ShardedModelDist, TwoRanks) { run_ranks(2); }
TEST(ShardedModelDist, ThreeRanks) { run_ranks(3); }

// Without gradient checkpointing a forward that records a graph over freed weights is refused.
TEST(ShardedModel, FullShardingNeedsCheckpointingForAGradForward) {
  auto comm = make_single_process_communicator();
  auto m = make_model();
  m.set_gradient_checkpointing(false);
  ShardedModel opt(*comm, m, ShardLevel::kFull, options());
  learner::UpdateScope scope(opt);
  const auto ids = at::randint(3, 50, {1, 5}, at::kLong);
  EXPECT_THROW(m.forward(ids), c10::Error);
  torch::NoGradGuard ng;
  EXPECT_EQ(m.forward(ids).size(2), 50);  // without a graph the layers are gathered and freed
}

}  // namespace
}  // namespace keel::dist
