// Data-parallel learner (trainer/dist/data_parallel.h).
// (1) One process: the gradient bucketing against a slow reference (the gradients concatenated
//     per dtype run and cut every bucket) through a mirroring fake communicator over random
//     layouts; rank shares of every policy loss with global AggCounts add up to the whole-batch
//     loss and gradient; hooks over a 1-member communicator change nothing in rl_update.
// (2) Gloo, 2 processes: all_reduce_gradients with buckets smaller than one tensor, in between and
//     larger than all, gradients undefined on one rank; all_reduce_metrics and its key check;
//     and the equivalence: 2 ranks running rl_update on their halves with the hooks end with the
//     weights and metrics of 1 process on the whole batch (4 loss_agg modes, epochs 2, 2
//     mini-batches, clipping on), and take the same numerics-guard decisions; a negative control
//     (AggCounts left unreduced) shows the comparison notices rank-local denominators.
#include "trainer/dist/data_parallel.h"

#include <torch/torch.h>

#include <cstdio>
#include <random>
#include <sstream>

#include "models/logprobs.h"
#include "models/transformer.h"
#include "tests/models/test_util.h"
#include "tests/trainer/dist/dist_test_util.h"
#include "tests/trainer/learner/loss_test_util.h"
#include "base/error.h"
#include "trainer/learner/policy_loss.h"
#include "trainer/learner/rl_update.h"

namespace keel::dist {
namespace {

using learner::AggCounts;
using learner::AggMode;
using rollout::RolloutBatch;
using testing::spawn_ranks;
using testing::SpawnSpec;

std::unique_ptr<Communicator> worker_comm() { return testing::gloo_worker_comm(60); }

// ---- (1) one process ---------------------------------------------------------------------------

// A member of a world where every other rank holds exactly this rank's tensors: all_reduce(SUM)
// multiplies by size(). Records the numel of every all_reduce.
class MirrorComm final : public Communicator {
 public:
  explicit MirrorComm(int size) : ranks_(size) {}
  int rank() const override { return 0; }
  int size() const override { return static_cast<int>(ranks_.size()); }
  const std::vector<int>& global_ranks() const override { return ranks_; }
  std::string backend() const override { return "mirror"; }
  at::Device device() const override { return at::kCPU; }
  void all_reduce(at::Tensor& t, ReduceOp op) override {
    reduced.push_back(t.numel());
    dtypes.push_back(t.scalar_type());
    if (op == ReduceOp::kSum) t.mul_(size());
  }
  void broadcast(at::Tensor&, int) override {}
  std::unique_ptr<CommWork> broadcast_async(at::Tensor&, int) override { return nullptr; }
  std::vector<at::Tensor> all_gather(const at::Tensor& t) override { return std::vector<at::Tensor>(size(), t.clone()); }
  std::vector<at::Tensor> all_gather_varsize(const at::Tensor& t) override { return all_gather(t); }
  void send(const at::Tensor&, int) override {}
  at::Tensor recv(int) override { return {}; }
  void barrier() override {}
  std::unique_ptr<Communicator> new_group(const std::vector<int>&) override { return nullptr; }

  std::vector<int64_t> reduced;
  std::vector<at::ScalarType> dtypes;

 private:
  std::vector<int> ranks_;
};

// Random parameters with gradients: mixed dtypes (float, double, bfloat16), empty tensors,
// non-contiguous gradients, some gradients undefined.
std::vector<at::Tensor> random_params_with_grads(std::mt19937& rng) {
  std::vector<at::Tensor> out;
  const int n = static_cast<int>(rng() % 9);
  for (int i = 0; i < n; ++i) {
    const int k = static_cast<int>(rng() % 10);
    const at::ScalarType dtype = k < 6 ? at::kFloat : k < 8 ? at::kDouble : at::kBFloat16;
    const int64_t a = static_cast<int64_t>(rng() % 9), b = 1 + static_cast<int64_t>(rng() % 7);
    at::Tensor p = at::zeros({a, b}, dtype).requires_grad_(true);
    const int g = static_cast<int>(rng() % 6);
    if (g == 0) {
      // no gradient
    } else if (g == 1) {
      p.mutable_grad() = at::randn({b, a}, at::kDouble).to(dtype).t();  // [a, b] non-contiguous
    } else {
      p.mutable_grad() = at::randn({a, b}, at::kDouble).to(dtype);
    }
    out.push_back(p);
  }
  return out;
}

TEST(DataParallel, GradientBucketsCutTheStreamLikeTheReference) {
  for (int seed = 0; seed < 60; ++seed) {
    std::mt19937 rng(seed);
    at::manual_seed(seed);
    auto params = random_params_with_grads(rng);
    std::vector<at::Tensor> before;
    for (const auto& p : params) before.push_back(p.grad().defined() ? p.grad().clone() : at::Tensor());
    const int64_t bucket_bytes = seed % 6 == 0 ? (int64_t{1} << 30) : 1 + static_cast<int64_t>(rng() % 90);

    // The slow reference: consecutive parameters with a gradient, grouped into runs of one dtype;
    // each run cut every max(1, bucket_bytes / itemsize) elements.
    std::vector<int64_t> expect_sizes;
    std::vector<at::ScalarType> expect_dtypes;
    std::vector<std::pair<at::ScalarType, int64_t>> runs;  // (dtype, elements)
    for (const auto& p : params) {
      if (!p.grad().defined()) continue;
      if (runs.empty() || runs.back().first != p.scalar_type()) runs.push_back({p.scalar_type(), 0});
      runs.back().second += p.numel();
    }
    for (const auto& [dtype, elems] : runs) {
      const int64_t cap = std::max<int64_t>(1, bucket_bytes / static_cast<int64_t>(c10::elementSize(dtype)));
      for (int64_t off = 0; off < elems; off += cap) {
        expect_sizes.push_back(std::min(cap, elems - off));
        expect_dtypes.push_back(dtype);
      }
    }

    MirrorComm comm(/*size=*/2);
    const auto stats = all_reduce_gradients(comm, params, bucket_bytes);
    // The first all_reduce is the [n] "defined" flags (when there are parameters).
    std::vector<int64_t> got(comm.reduced.begin() + (params.empty() ? 0 : 1), comm.reduced.end());
    std::vector<at::ScalarType> got_dtypes(comm.dtypes.begin() + (params.empty() ? 0 : 1), comm.dtypes.end());
    if (!params.empty()) {
      EXPECT_EQ(comm.reduced[0], static_cast<int64_t>(params.size())) << "seed " << seed;
    }
    EXPECT_EQ(got, expect_sizes) << "seed " << seed << " bucket " << bucket_bytes;
    EXPECT_EQ(got_dtypes, expect_dtypes) << "seed " << seed;
    EXPECT_EQ(stats.buckets, static_cast<int64_t>(expect_sizes.size()));
    // Every gradient doubled (the mirror's sum), exactly; undefined ones stay undefined.
    for (size_t i = 0; i < params.size(); ++i) {
      if (!before[i].defined()) {
        EXPECT_FALSE(params[i].grad().defined()) << "seed " << seed << " param " << i;
        continue;
      }
      EXPECT_TRUE(at::equal(params[i].grad(), before[i] * 2)) << "seed " << seed << " param " << i;
      EXPECT_EQ(params[i].grad().strides(), before[i].strides()) << "seed " << seed << " param " << i;
    }
  }
}

TEST(DataParallel, RejectsBadBucket) {
  MirrorComm comm(2);
  EXPECT_THROW(all_reduce_gradients(comm, {}, 0), c10::Error);
  EXPECT_THROW(learner_hooks(comm, {.bucket_mb = 0}), c10::Error);
}

TEST(DataParallel, SingleProcessOrderInterleavesMiniBatches) {
  // 2 ranks x 4 rows, mini-batches of 2 per rank: step 0 = rank 0 rows {0,1} + rank 1 rows {4,5}.
  EXPECT_EQ(dp_single_process_order(4, 2, 2), (std::vector<int64_t>{0, 1, 4, 5, 2, 3, 6, 7}));
  EXPECT_EQ(dp_single_process_order(2, 2, 3), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(dp_single_process_order(3, 1, 1), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_THROW(dp_single_process_order(5, 2, 2), c10::Error);
}

// Rank shares with global denominators add up: for every policy loss and aggregation mode, the
// rows split by whole groups over W "ranks", each rank's loss computed with the summed AggCounts
// (what all_reduce_agg_counts yields), Σ_r loss_r and its gradient equal the whole-batch ones.
TEST(DataParallel, RankSharesOfEveryLossAddUpToTheWholeBatch) {
  using learner::PolicyLossInputs;
  using learner::PolicyLossOptions;
  const std::vector<std::pair<std::string, learner::PolicyLossFn>> losses{
      {"ppo_clip", learner::ppo_clip_loss}, {"gspo", learner::gspo_loss}, {"p3o_v1", learner::p3o_v1_loss},
      {"p3o_v2", learner::p3o_v2_loss},     {"opmd", learner::opmd_loss}};
  const AggMode modes[] = {AggMode::kTokenMean, AggMode::kSeqMeanTokenSum, AggMode::kSeqMeanTokenMean,
                           AggMode::kSeqMeanTokenSumNorm};
  for (uint64_t seed = 0; seed < 60; ++seed) {
    const auto b = learner::testing::rand_batch(seed, {.seq_advantages = true});
    const int64_t groups = b.n / b.group_size;
    const int64_t w = seed % 2 == 0 ? groups : std::min<int64_t>(2, groups);  // ranks
    // Rank r holds groups [r*groups/w, (r+1)*groups/w).
    std::vector<std::pair<int64_t, int64_t>> rows;
    for (int64_t r = 0; r < w; ++r)
      rows.push_back({r * groups / w * b.group_size, (r + 1) * groups / w * b.group_size});
    for (const auto& [name, fn] : losses) {
      {
        const AggMode mode = modes[(seed / 10) % 4];  // each mode meets every edge case of seed % 10
        PolicyLossOptions o;
        o.agg.mode = mode;
        o.agg.norm_len = 7;
        o.kl_in_loss = true;
        o.entropy_coef = 0.01;
        auto make = [&](const torch::Tensor& logp, int64_t lo, int64_t hi) {
          PolicyLossInputs in;
          in.logp = logp.slice(0, lo, hi);
          in.logp_old = b.logp_old.slice(0, lo, hi);
          in.logp_ref = b.logp_ref.slice(0, lo, hi);
          in.advantages = b.adv.slice(0, lo, hi);
          in.response_mask = b.mask.slice(0, lo, hi);
          in.entropy = b.entropy.slice(0, lo, hi);
          in.group_ids = b.group_ids.slice(0, lo, hi);
          return in;
        };
        const auto whole_lp = b.logp.clone().requires_grad_(true);
        auto whole = make(whole_lp, 0, b.n);
        whole.agg = learner::AggContext::from_mask(b.mask);
        const auto lw = fn(whole, o).loss;
        lw.backward();

        AggCounts global;  // Σ_r counts of rank r's rows
        for (const auto& [lo, hi] : rows) global += learner::count_for_agg(b.mask.slice(0, lo, hi));
        const auto split_lp = b.logp.clone().requires_grad_(true);
        torch::Tensor total = torch::zeros({}, torch::kDouble);
        for (const auto& [lo, hi] : rows) {
          auto in = make(split_lp, lo, hi);
          in.agg = learner::AggContext::from_counts(global);
          total = total + fn(in, o).loss;
        }
        total.backward();
        const std::string what = name + " " + learner::agg_mode_name(mode) + " seed " + std::to_string(seed) +
                                 " ranks " + std::to_string(w);
        // Relative: the ±20 log-ratio clamp edge case gives losses near e^20 ≈ 5e8.
        EXPECT_NEAR(total.item<double>(), lw.item<double>(), 1e-10 * std::max(1.0, std::abs(lw.item<double>()))) << what;
        EXPECT_TRUE(torch::allclose(split_lp.grad(), whole_lp.grad(), 1e-9, 1e-10)) << what;
      }
    }
  }
}

// ---- the synthetic RL batch and the tiny policy --------------------------------------------------

constexpr int64_t kRows = 16;       // global batch: 4 prompts x 4 samples
constexpr int64_t kGroup = 4;
constexpr int64_t kPromptLen = 6;   // P
constexpr int64_t kRespLen = 7;     // R

/// A global batch of kRows rows with varied prompt / response lengths; old / ref log-probs are
/// the policy's own plus noise (so ratios spread and clipping happens); row 5 has an empty loss
/// mask (N' < N). Row order is rank-major: rank r of W owns rows [r*kRows/W, (r+1)*kRows/W).
RolloutBatch make_global_batch(models::Transformer& policy, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto i64 = at::TensorOptions().dtype(at::kLong);
  RolloutBatch b;
  b.prompt_ids = at::randint(3, 50, {kRows, kPromptLen}, gen, i64);
  b.response_ids = at::randint(3, 50, {kRows, kRespLen}, gen, i64);
  const auto plen = at::randint(1, kPromptLen + 1, {kRows, 1}, gen, i64);  // 1..P
  const auto rlen = at::randint(1, kRespLen + 1, {kRows, 1}, gen, i64);    // 1..R
  const auto cols_p = at::arange(kPromptLen, i64).unsqueeze(0);
  const auto cols_r = at::arange(kRespLen, i64).unsqueeze(0);
  b.prompt_mask = (cols_p >= kPromptLen - plen).to(at::kLong);  // left-padded
  b.response_mask = (cols_r < rlen).to(at::kLong);              // right-padded
  b.prompt_ids = b.prompt_ids * b.prompt_mask;
  b.response_ids = b.response_ids * b.response_mask;
  b.group_ids = at::arange(kRows, i64).div(kGroup, "floor");
  {
    torch::NoGradGuard ng;
    const auto lp = models::sequence_logprobs(policy, b.prompt_ids, b.prompt_mask, b.response_ids, b.response_mask);
    const auto m = b.response_mask.to(at::kFloat);
    b.old_logprobs = (lp.logprobs + 0.3 * at::randn({kRows, kRespLen}, gen, at::kFloat)) * m;
    b.ref_logprobs = (lp.logprobs + 0.2 * at::randn({kRows, kRespLen}, gen, at::kFloat)) * m;
    b.advantages = at::randn({kRows, 1}, gen, at::kFloat).expand({kRows, kRespLen}) * m;
  }
  b.loss_mask = b.response_mask.clone();
  b.loss_mask.select(0, 5).zero_();
  return b;
}

at::Tensor rows_tensor(const std::vector<int64_t>& v) { return at::tensor(v, at::TensorOptions().dtype(at::kLong)); }

models::Transformer tiny_policy(uint64_t seed) {
  models::Transformer m(models::testing::tiny_config());
  models::testing::randomize(m, seed);
  return m;
}

std::unique_ptr<torch::optim::AdamW> adamw(models::Transformer& m) {
  return std::make_unique<torch::optim::AdamW>(m.parameters(),
                                               torch::optim::AdamWOptions(1e-3).weight_decay(0.01));
}

learner::RlUpdateOptions update_options(AggMode mode, int mini_batch_size) {
  learner::RlUpdateOptions u;
  u.epochs = 2;
  u.mini_batch_size = mini_batch_size;
  u.micro_batch_size = 2;
  u.grad_clip = 0.1;  // below every mode's gradient norm here: clipping acts on every step
  u.lr.lr = 1e-3;
  u.lr.total_steps = 100;
  u.loss.agg.mode = mode;
  u.loss.agg.norm_len = kRespLen;
  u.loss.kl_in_loss = true;
  u.loss.kl_coef = 0.1;
  u.loss.entropy_coef = 0.01;
  return u;
}

double max_abs_diff(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, (a[i] - b[i]).abs().max().item<double>());
  return d;
}

at::Tensor flat_params(const models::Transformer& m) {
  std::vector<at::Tensor> v;
  for (const auto& p : m.parameters()) v.push_back(p.detach().reshape({-1}));
  return at::cat(v);
}

TEST(DataParallel, SingleProcessHooksChangeNothing) {
  // Hooks over a 1-member communicator (every collective the identity) give bit-identical
  // weights and metrics to hooks = null: the hook plumbing adds no arithmetic.
  auto a = tiny_policy(100), b = tiny_policy(100);
  const auto batch = make_global_batch(a, 7);
  auto oa = adamw(a), ob = adamw(b);
  auto comm = make_single_process_communicator();
  const auto hooks = learner_hooks(*comm);
  auto ua = update_options(AggMode::kSeqMeanTokenMean, 8), ub = ua;
  ub.dp = &hooks;
  learner::NumericsGuard ga(3), gb(3);
  int64_t sa = 0, sb = 0;
  const auto ra = learner::rl_update(a, *oa, batch, learner::ppo_clip_loss, ua, ga, sa);
  const auto rb = learner::rl_update(b, *ob, batch, learner::ppo_clip_loss, ub, gb, sb);
  EXPECT_EQ(ra.metrics, rb.metrics);
  EXPECT_EQ(ra.optimizer_steps, 4);
  EXPECT_EQ(rb.optimizer_steps, 4);
  EXPECT_TRUE(at::equal(flat_params(a), flat_params(b)));
}

// ---- (2) Gloo workers ---------------------------------------------------------------------------

// Rank k's gradient of parameter i: deterministic in (k, i), so every rank can recompute all.
at::Tensor rank_grad(int k, int i, at::IntArrayRef shape, at::ScalarType dtype) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 * k + i);
  return at::randn(shape, gen, at::kDouble).to(dtype);
}

TEST(AllReduceGradientsDist, Worker) {
  KEEL_DIST_WORKER_OR_SKIP();
  auto comm = worker_comm();
  const int r = comm->rank();
  ASSERT_EQ(comm->size(), 2);
  struct Spec {
    std::vector<int64_t> shape;
    at::ScalarType dtype;
    int defined_on;  // bit k: rank k has a gradient
    bool transposed;
  };
  // 35 + 3 + 24 floats, then 5 doubles, then 4 + 3 floats (the 3 never have a gradient).
  const std::vector<Spec> specs{{{7, 5}, at::kFloat, 3, false}, {{3}, at::kFloat, 3, false},
                                {{6, 4}, at::kFloat, 3, true},  {{5}, at::kDouble, 3, false},
                                {{2, 2}, at::kFloat, 1, false}, {{3}, at::kFloat, 0, false}};
  // bucket bytes -> expected buckets: 4 B (smaller than any tensor) -> 62 + 5 + 4 one-element
  // buckets; 52 B = 13 floats / 6 doubles -> ceil(62/13) + 1 + 1; 1 GiB (larger than all) -> one
  // per dtype run.
  const std::vector<std::pair<int64_t, int64_t>> cases{{4, 71}, {52, 7}, {int64_t{1} << 30, 3}};
  for (const auto& [bucket, expect_buckets] : cases) {
    std::vector<at::Tensor> params;
    for (size_t i = 0; i < specs.size(); ++i) {
      const auto& s = specs[i];
      at::Tensor p = at::zeros(s.shape, s.dtype).requires_grad_(true);
      if (s.defined_on & (1 << r)) {
        if (s.transposed) {
          std::vector<int64_t> rev(s.shape.rbegin(), s.shape.rend());
          p.mutable_grad() = rank_grad(r, static_cast<int>(i), rev, s.dtype).t();  // non-contiguous
        } else {
          p.mutable_grad() = rank_grad(r, static_cast<int>(i), s.shape, s.dtype);
        }
      }
      params.push_back(p);
    }
    const auto stats = all_reduce_gradients(*comm, params, bucket);
    EXPECT_EQ(stats.buckets, expect_buckets) << "bucket " << bucket;
    EXPECT_EQ(stats.elements, 62 + 5 + 4);
    EXPECT_EQ(stats.reduced_params, 5);
    for (size_t i = 0; i < specs.size(); ++i) {
      const auto& s = specs[i];
      if (s.defined_on == 0) {
        EXPECT_FALSE(params[i].grad().defined()) << "param " << i;
        continue;
      }
      ASSERT_TRUE(params[i].grad().defined()) << "param " << i;
      // The slow reference: add up every rank's gradient (absent = 0). Two fp32 addends: exact.
      at::Tensor ref = at::zeros(s.shape, s.dtype);
      for (int k = 0; k < 2; ++k) {
        if (!(s.defined_on & (1 << k))) continue;
        if (s.transposed) {
          std::vector<int64_t> rev(s.shape.rbegin(), s.shape.rend());
          ref = ref + rank_grad(k, static_cast<int>(i), rev, s.dtype).t();
        } else {
          ref = ref + rank_grad(k, static_cast<int>(i), s.shape, s.dtype);
        }
      }
      EXPECT_TRUE(at::equal(params[i].grad(), ref)) << "bucket " << bucket << " param " << i;
    }
  }
}

TEST(MetricsDist, Worker) {
  KEEL_DIST_WORKER_OR_SKIP();
  auto comm = worker_comm();
  const int r = comm->rank();
  std::map<std::string, double> m{{"a", r + 1.0}, {"b", 10.0 * (r + 1)}};
  all_reduce_metrics(*comm, m, ReduceOp::kSum);
  EXPECT_EQ(m, (std::map<std::string, double>{{"a", 3.0}, {"b", 30.0}}));
  m = {{"a", r + 1.0}, {"b", 10.0 * (r + 1)}};
  all_reduce_metrics(*comm, m, ReduceOp::kMean);
  EXPECT_EQ(m, (std::map<std::string, double>{{"a", 1.5}, {"b", 15.0}}));

  // Rank 1 has a key rank 0 lacks and lacks one rank 0 has: every rank throws, naming both.
  std::map<std::string, double> bad{{"a", 1.0}, {r == 0 ? "actor/b" : "actor/only_on_1", 2.0}};
  try {
    all_reduce_metrics(*comm, bad, ReduceOp::kSum);
    ADD_FAILURE() << "no error on rank " << r;
  } catch (const keel::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("rank 1 has [actor/only_on_1] that rank 0 lacks and lacks [actor/b]"), std::string::npos)
        << msg;
  }
  // The ranks stayed in step: the next collective still pairs up.
  std::map<std::string, double> after{{"x", 1.0}};
  all_reduce_metrics(*comm, after, ReduceOp::kSum);
  EXPECT_EQ(after.at("x"), 2.0);

  // AggCounts are summed.
  AggCounts c{.tokens = 10.0 + r, .seqs = 3.0};
  all_reduce_agg_counts(*comm, c);
  EXPECT_EQ(c.tokens, 21.0);
  EXPECT_EQ(c.seqs, 6.0);
}

// Two RL steps of the equivalence: W ranks (this process is rank r) vs 1 process. With
// `local_denominators` (the negative control) the AggCounts are not reduced, so each rank
// normalises by its own token / row counts: the weights must then differ.
void expect_equivalent_updates(Communicator& comm, AggMode mode, bool local_denominators = false) {
  const int r = comm.rank(), w = comm.size();
  const std::string what = std::string("mode ") + learner::agg_mode_name(mode) + " rank " + std::to_string(r);
  // Different initial weights on purpose: replicate_parameters must give everyone rank 0's.
  auto dp_policy = tiny_policy(100 + r);
  replicate_parameters(comm, dp_policy.parameters());
  auto single = tiny_policy(100);
  ASSERT_TRUE(at::equal(flat_params(dp_policy), flat_params(single))) << what;

  const auto global = make_global_batch(single, 7);
  const int64_t per_rank = kRows / w, mini_global = kRows / 2, mini_rank = mini_global / w;
  std::vector<int64_t> mine_rows;
  for (int64_t i = r * per_rank; i < (r + 1) * per_rank; ++i) mine_rows.push_back(i);
  const auto mine = rollout::select_rows(global, rows_tensor(mine_rows));
  const auto whole = rollout::select_rows(global, rows_tensor(dp_single_process_order(per_rank, mini_rank, w)));

  auto dp_opt = adamw(dp_policy), single_opt = adamw(single);
  auto hooks = learner_hooks(comm, {.bucket_mb = 1000.0 / (1 << 20)});  // ~1 KB: many buckets
  if (local_denominators) hooks.reduce_counts = [](AggCounts&) {};
  auto u_dp = update_options(mode, static_cast<int>(mini_rank));
  u_dp.dp = &hooks;
  const auto u_single = update_options(mode, static_cast<int>(mini_global));
  learner::NumericsGuard g_dp(3), g_single(3);
  int64_t s_dp = 0, s_single = 0;
  for (int step = 0; step < 2; ++step) {  // two RL steps on the same batch
    const auto rd = learner::rl_update(dp_policy, *dp_opt, mine, learner::ppo_clip_loss, u_dp, g_dp, s_dp);
    const auto rs = learner::rl_update(single, *single_opt, whole, learner::ppo_clip_loss, u_single, g_single, s_single);
    ASSERT_EQ(rs.optimizer_steps, 4) << what;  // epochs 2 x 2 mini-batches
    if (local_denominators) continue;
    EXPECT_EQ(rd.optimizer_steps, rs.optimizer_steps) << what;
    // The test means something only if clipping and the PPO clip are active.
    EXPECT_GT(rs.metrics.at("actor/grad_norm"), u_single.grad_clip) << what;
    EXPECT_GT(rs.metrics.at("actor/pg_clipfrac"), 0.0) << what;
    std::vector<std::string> keys_d, keys_s;
    for (const auto& [k, v] : rd.metrics) keys_d.push_back(k);
    for (const auto& [k, v] : rs.metrics) keys_s.push_back(k);
    EXPECT_EQ(keys_d, keys_s) << what;
    for (const auto& [k, v] : rs.metrics) {
      if (rd.metrics.count(k)) {
        EXPECT_NEAR(rd.metrics.at(k), v, 1e-5 * std::max(1.0, std::abs(v))) << what << " step " << step << " " << k;
      }
    }
  }
  EXPECT_EQ(s_dp, s_single) << what;
  const double diff = max_abs_diff(dp_policy.parameters(), single.parameters());
  if (local_denominators) {
    if (r == 0) std::printf("[equivalence] %s, local denominators: max |w_dp - w_single| = %.3g\n", what.c_str(), diff);
    EXPECT_GT(diff, 1e-4) << what << ": local denominators went unnoticed";
    return;
  }
  EXPECT_LE(diff, 1e-5) << what;
  // The replicas are bit-identical (same reduced gradients, same AdamW arithmetic).
  const auto all = comm.all_gather(flat_params(dp_policy));
  for (int k = 1; k < w; ++k) EXPECT_TRUE(at::equal(all[k], all[0])) << what << " replica " << k;
  if (r == 0) std::printf("[equivalence] %s: max |w_dp - w_single| = %.3g\n", what.c_str(), diff);
}

TEST(RlUpdateEquivalenceDist, Worker) {
  KEEL_DIST_WORKER_OR_SKIP();
  at::set_num_threads(1);
  auto comm = worker_comm();
  for (const AggMode mode : {AggMode::kTokenMean, AggMode::kSeqMeanTokenMean, AggMode::kSeqMeanTokenSum,
                             AggMode::kSeqMeanTokenSumNorm}) {
    expect_equivalent_updates(*comm, mode);
  }
  expect_equivalent_updates(*comm, AggMode::kTokenMean, /*local_denominators=*/true);
}

TEST(RlUpdateGuardDist, Worker) {
  // A NaN advantage on rank 1 only (row 1 of its first mini-batch): the reduced loss is NaN on
  // every rank, so both skip that step (and only it) and the replicas stay identical; one process
  // with the same NaN row skips the same step and ends with the same weights.
  KEEL_DIST_WORKER_OR_SKIP();
  at::set_num_threads(1);
  auto comm = worker_comm();
  const int r = comm->rank(), w = comm->size();
  auto dp_policy = tiny_policy(100), single = tiny_policy(100);
  auto global = make_global_batch(single, 11);
  const int64_t per_rank = kRows / w, nan_row = per_rank + 1;  // rank 1's row 1
  global.advantages[nan_row][0] = std::numeric_limits<float>::quiet_NaN();
  std::vector<int64_t> mine_rows;
  for (int64_t i = r * per_rank; i < (r + 1) * per_rank; ++i) mine_rows.push_back(i);
  const auto mine = rollout::select_rows(global, rows_tensor(mine_rows));
  const auto whole = rollout::select_rows(global, rows_tensor(dp_single_process_order(per_rank, kRows / 2 / w, w)));
  auto dp_opt = adamw(dp_policy), single_opt = adamw(single);
  const auto hooks = learner_hooks(*comm);
  auto u_dp = update_options(AggMode::kTokenMean, kRows / 2 / w);
  u_dp.epochs = 1;
  u_dp.dp = &hooks;
  auto u_single = update_options(AggMode::kTokenMean, kRows / 2);
  u_single.epochs = 1;
  learner::NumericsGuard g_dp(3), g_single(3);
  int64_t s_dp = 0, s_single = 0;
  const auto rd = learner::rl_update(dp_policy, *dp_opt, mine, learner::ppo_clip_loss, u_dp, g_dp, s_dp);
  const auto rs = learner::rl_update(single, *single_opt, whole, learner::ppo_clip_loss, u_single, g_single, s_single);
  EXPECT_EQ(rs.optimizer_steps, 1);
  EXPECT_EQ(rd.optimizer_steps, 1) << "rank " << r;
  EXPECT_EQ(g_dp.skipped_total(), 1) << "rank " << r;
  EXPECT_FALSE(rd.rollback);
  EXPECT_LE(max_abs_diff(dp_policy.parameters(), single.parameters()), 1e-5) << "rank " << r;
  const auto all = comm->all_gather(flat_params(dp_policy));
  EXPECT_TRUE(at::equal(all[1], all[0]));
}

// ---- the launchers --------------------------------------------------------------------------------

void run_two(const std::string& filter) {
  const auto runs = spawn_ranks(SpawnSpec{.filter = filter, .world_size = 2, .timeout_s = 120});
  EXPECT_EQ(testing::failures(runs), "");
  for (const auto& run : runs) EXPECT_TRUE(testing::ran_worker(run)) << run.output;
  // Rank 0's measured weight differences, for the log.
  std::istringstream out(runs.empty() ? "" : runs[0].output);
  for (std::string line; std::getline(out, line);)
    if (line.starts_with("[equivalence]")) std::printf("%s\n", line.c_str());
}

TEST(AllReduceGradientsDist, TwoRanks) { run_two("AllReduceGradientsDist.Worker"); }
TEST(MetricsDist, TwoRanks) { run_two("MetricsDist.Worker"); }
TEST(RlUpdateEquivalenceDist, TwoRanks) { run_two("RlUpdateEquivalenceDist.Worker"); }
TEST(RlUpdateGuardDist, TwoRanks) { run_two("RlUpdateGuardDist.Worker"); }

}  // namespace
}  // namespace keel::dist
