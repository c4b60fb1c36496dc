// Communicator over Gloo with 2 and 3 processes: every collective against values each rank can
// recompute locally (rank k's input is a tensor drawn with seed 1000 + k), sub-groups, and the
// one-member communicator.
#include "trainer/dist/communicator.h"

#include <torch/torch.h>

#include "models/compat.h"
#include "tests/trainer/dist/dist_test_util.h"
#include "base/error.h"
#include "trainer/config/config.h"
#include "trainer/dist/weight_sync.h"

namespace keel::dist {
namespace {

using testing::spawn_ranks;
using testing::SpawnSpec;

// Rank k's input for the collective tests: deterministic in (k, shape, dtype).
at::Tensor rank_data(int k, at::IntArrayRef shape, at::ScalarType dtype = at::kFloat) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 + k);
  if (dtype == at::kBool) return at::randint(0, 2, shape, gen, at::kLong).to(at::kBool);
  if (at::isIntegralType(dtype, /*includeBool=*/false)) return at::randint(-1000, 1000, shape, gen, at::kLong).to(dtype);
  return at::randn(shape, gen, at::kDouble).to(dtype);
}

std::unique_ptr<Communicator> worker_comm() { return testing::gloo_worker_comm(30); }

// ---- the worker: run inside every spawned rank -------------------------------------------------

TEST(CollectivesDist, Worker) {
  KEEL_DIST_WORKER_OR_SKIP();
  auto comm = worker_comm();
  const int r = comm->rank(), w = comm->size();
  ASSERT_EQ(w, std::atoi(std::getenv("WORLD_SIZE")));
  EXPECT_EQ(comm->backend(), "gloo");

  // all_reduce sum / mean: the slow reference adds every rank's input locally.
  for (auto dtype : {at::kFloat, at::kDouble}) {
    auto t = rank_data(r, {5, 7}, dtype);
    auto ref = at::zeros({5, 7}, dtype);
    for (int k = 0; k < w; ++k) ref += rank_data(k, {5, 7}, dtype);
    auto s = t.clone();
    comm->all_reduce(s, ReduceOp::kSum);
    EXPECT_TRUE(at::allclose(s, ref, 1e-5, 1e-5)) << dtype;
    auto m = t.clone();
    comm->all_reduce(m, ReduceOp::kMean);
    EXPECT_TRUE(at::allclose(m, ref / w, 1e-5, 1e-5)) << dtype;
  }
  {  // integers are exact; bfloat16 of small integers too (reduced in float32)
    auto i = rank_data(r, {11}, at::kLong);
    auto ref = at::zeros({11}, at::kLong);
    for (int k = 0; k < w; ++k) ref += rank_data(k, {11}, at::kLong);
    comm->all_reduce(i, ReduceOp::kSum);
    EXPECT_TRUE(at::equal(i, ref));
    auto b = at::full({4}, r + 1, at::kBFloat16);  // 1 + 2 (+ 3)
    comm->all_reduce(b, ReduceOp::kSum);
    EXPECT_TRUE(at::equal(b, at::full({4}, w * (w + 1) / 2, at::kBFloat16)));
    EXPECT_THROW(comm->all_reduce(i, ReduceOp::kMean), c10::Error);  // mean of integers
  }
  {  // a non-contiguous tensor is reduced in place through its view
    auto base = rank_data(r, {6, 4});
    auto view = base.t();  // [4, 6], strides (1, 4)
    auto ref = at::zeros({6, 4});
    for (int k = 0; k < w; ++k) ref += rank_data(k, {6, 4});
    comm->all_reduce(view, ReduceOp::kSum);
    EXPECT_TRUE(at::allclose(base, ref, 1e-5, 1e-5));
  }

  // broadcast from every root, several dtypes, a scalar and a non-contiguous destination.
  for (int root = 0; root < w; ++root) {
    for (auto dtype : {at::kFloat, at::kBFloat16, at::kLong, at::kBool}) {
      auto t = r == root ? rank_data(root, {3, 5}, dtype) : at::zeros({3, 5}, dtype);
      comm->broadcast(t, root);
      EXPECT_TRUE(at::equal(t, rank_data(root, {3, 5}, dtype))) << "root " << root << " " << dtype;
    }
    auto scalar = r == root ? at::scalar_tensor(42.5 + root) : at::scalar_tensor(0.0);
    comm->broadcast(scalar, root);
    EXPECT_EQ(scalar.item<float>(), 42.5F + root);
    auto base = at::zeros({5, 3});
    auto dst = base.t();
    if (r == root) dst.copy_(rank_data(root, {3, 5}));
    comm->broadcast(dst, root);
    EXPECT_TRUE(at::equal(base.t(), rank_data(root, {3, 5})));
  }

  // all_gather: [k] is rank k's tensor.
  {
    const auto got = comm->all_gather(rank_data(r, {3, 4}, at::kDouble));
    ASSERT_EQ(static_cast<int>(got.size()), w);
    for (int k = 0; k < w; ++k) EXPECT_TRUE(at::equal(got[k], rank_data(k, {3, 4}, at::kDouble))) << k;
    const auto bools = comm->all_gather(rank_data(r, {9}, at::kBool));
    for (int k = 0; k < w; ++k) EXPECT_TRUE(at::equal(bools[k], rank_data(k, {9}, at::kBool))) << k;
  }
  // all_gather_varsize: rank k holds [k + 1, 2]; then ranks of different dims (rank 0 a scalar,
  // rank k > 0 a [k, 3, 1]); then rank 0 empty; then everyone empty.
  {
    const auto got = comm->all_gather_varsize(rank_data(r, {r + 1, 2}));
    ASSERT_EQ(static_cast<int>(got.size()), w);
    for (int k = 0; k < w; ++k) EXPECT_TRUE(at::equal(got[k], rank_data(k, {k + 1, 2}))) << k;
    const auto shape_of = [](int k) { return k == 0 ? std::vector<int64_t>{} : std::vector<int64_t>{k, 3, 1}; };
    const auto mixed = comm->all_gather_varsize(rank_data(r, shape_of(r), at::kBFloat16));
    for (int k = 0; k < w; ++k) EXPECT_TRUE(at::equal(mixed[k], rank_data(k, shape_of(k), at::kBFloat16))) << k;
    const auto with_empty = comm->all_gather_varsize(rank_data(r, {r == 0 ? 0 : 4, 5}, at::kLong));
    EXPECT_EQ(with_empty[0].sizes(), at::IntArrayRef({0, 5}));
    for (int k = 1; k < w; ++k) EXPECT_TRUE(at::equal(with_empty[k], rank_data(k, {4, 5}, at::kLong))) << k;
    const auto empty = comm->all_gather_varsize(at::empty({0, 2}));
    for (const auto& e : empty) EXPECT_EQ(e.sizes(), at::IntArrayRef({0, 2}));
  }

  // send / recv around the ring (even ranks send first, odd ranks receive first), shapes that
  // depend on the sender, then rank 0 -> last rank with empty, bool and non-contiguous tensors.
  {
    const int next = (r + 1) % w, prev = (r + w - 1) % w;
    const auto mine = rank_data(r, {r + 2, r + 1}, at::kLong);
    at::Tensor got;
    if (r % 2 == 0) {
      comm->send(mine, next);
      got = comm->recv(prev);
    } else {
      got = comm->recv(prev);
      comm->send(mine, next);
    }
    EXPECT_TRUE(at::equal(got, rank_data(prev, {prev + 2, prev + 1}, at::kLong)));
    if (r == 0) {
      comm->send(at::empty({0, 3}), w - 1);
      comm->send(rank_data(7, {2, 2, 2}, at::kBool), w - 1);
      comm->send(rank_data(8, {4, 6}, at::kBFloat16).t(), w - 1);
    } else if (r == w - 1) {
      const auto e = comm->recv(0);
      EXPECT_EQ(e.sizes(), at::IntArrayRef({0, 3}));
      EXPECT_EQ(e.scalar_type(), at::kFloat);
      EXPECT_TRUE(at::equal(comm->recv(0), rank_data(7, {2, 2, 2}, at::kBool)));
      EXPECT_TRUE(at::equal(comm->recv(0), rank_data(8, {4, 6}, at::kBFloat16).t()));
    }
    EXPECT_THROW(comm->send(mine, r), c10::Error);  // to itself
    EXPECT_THROW(comm->recv(w), c10::Error);        // no such rank
  }

  // barrier: the last rank arrives 300 ms late; nobody leaves before it arrived.
  {
    const auto t0 = std::chrono::steady_clock::now();
    if (r == w - 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    comm->barrier();
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_GE(waited, 0.25) << "rank " << r << " left the barrier early";
  }
  comm->barrier();
}

TEST(SubgroupDist, Worker) {
  KEEL_DIST_WORKER_OR_SKIP();
  auto comm = worker_comm();
  const int r = comm->rank(), w = comm->size();
  ASSERT_EQ(w, 3);
  // {2, 0}: member 0 is world rank 2, member 1 is world rank 0; rank 1 is outside.
  auto g = comm->new_group({2, 0});
  auto solo = comm->new_group({1});
  if (r == 1) {
    EXPECT_EQ(g, nullptr);
    ASSERT_NE(solo, nullptr);
    EXPECT_EQ(solo->size(), 1);
    auto t = at::full({3}, 5.0);
    solo->all_reduce(t, ReduceOp::kSum);
    EXPECT_TRUE(at::equal(t, at::full({3}, 5.0)));
  } else {
    EXPECT_EQ(solo, nullptr);
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(g->size(), 2);
    EXPECT_EQ(g->rank(), r == 2 ? 0 : 1);
    EXPECT_EQ(g->global_ranks(), (std::vector<int>{2, 0}));
    // (2 + 1) + (0 + 1) = 4: rank 1 does not take part.
    auto t = at::full({2, 2}, static_cast<double>(r + 1));
    g->all_reduce(t, ReduceOp::kSum);
    EXPECT_TRUE(at::equal(t, at::full({2, 2}, 4.0)));
    // broadcast from member 0 (world rank 2).
    auto b = g->rank() == 0 ? rank_data(2, {4}) : at::zeros({4});
    g->broadcast(b, 0);
    EXPECT_TRUE(at::equal(b, rank_data(2, {4})));
    // point to point inside the group, in group ranks.
    if (g->rank() == 0) {
      g->send(rank_data(3, {2, 3}), 1);
    } else {
      EXPECT_TRUE(at::equal(g->recv(0), rank_data(3, {2, 3})));
    }
    // a group of the group: member 1 of g (world rank 0) alone.
    auto nested = g->new_group({1});
    if (r == 0) {
      ASSERT_NE(nested, nullptr);
      EXPECT_EQ(nested->global_ranks(), std::vector<int>{0});
    } else {
      EXPECT_EQ(nested, nullptr);
    }
  }
  // The world still works after the groups, and a second group over the same ranks is distinct.
  auto all = at::full({1}, 1.0);
  comm->all_reduce(all, ReduceOp::kSum);
  EXPECT_EQ(all.item<double>(), 3.0);
  auto pair = comm->new_group({0, 1});
  if (pair) {
    auto t = at::full({1}, static_cast<double>(r));
    pair->all_reduce(t, ReduceOp::kMean);
    EXPECT_EQ(t.item<double>(), 0.5);
  }
  EXPECT_THROW(comm->new_group({0, 0}), c10::Error);
  EXPECT_THROW(comm->new_group({3}), c10::Error);
  comm->barrier();
}

// The last rank dies (no clean-up) right after the rendezvous; the others' next collective must
// fail with an error naming it, not hang.
TEST(CollectivesDist, WorkerPeerDies) {
  KEEL_DIST_WORKER_OR_SKIP();
  auto comm = init_communicator(read_rendezvous_env(process_env()), CommOptions{.backend = "gloo", .timeout_s = 3});
  comm->barrier();
  if (comm->rank() == comm->size() - 1) std::_Exit(0);
  const auto t0 = std::chrono::steady_clock::now();
  auto t = at::ones({1000});
  try {
    comm->all_reduce(t, ReduceOp::kSum);
    ADD_FAILURE() << "all_reduce with a dead peer must fail";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("all_reduce failed on rank " + std::to_string(comm->rank())), std::string::npos)
        << e.what();
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 3.0 + 2.0);
}

// ---- the spawning tests ------------------------------------------------------------------------

TEST(CollectivesDist, DeadPeerFailsTheCollective) {
  const auto runs = spawn_ranks(SpawnSpec{.filter = "CollectivesDist.WorkerPeerDies", .world_size = 3, .timeout_s = 30});
  ASSERT_EQ(runs.size(), 3u);
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(runs[r].ok()) << runs[r].output;
    EXPECT_TRUE(testing::ran_worker(runs[r])) << runs[r].output;
  }
}

TEST(CollectivesDist, TwoRanks) {
  const auto runs = spawn_ranks(SpawnSpec{.filter = "CollectivesDist.Worker", .world_size = 2});
  EXPECT_EQ(testing::failures(runs), "");
  for (const auto& run : runs) EXPECT_TRUE(testing::ran_worker(run)) << run.output;
}

TEST(CollectivesDist, ThreeRanks) {
  const auto runs = spawn_ranks(SpawnSpec{.filter = "CollectivesDist.Worker", .world_size = 3});
  EXPECT_EQ(testing::failures(runs), "");
  for (const auto& run : runs) EXPECT_TRUE(testing::ran_worker(run)) << run.output;
}

TEST(SubgroupDist, ThreeRanks) {
  const auto runs = spawn_ranks(SpawnSpec{.filter = "SubgroupDist.Worker", .world_size = 3});
  EXPECT_EQ(testing::failures(runs), "");
  for (const auto& run : runs) EXPECT_TRUE(testing::ran_worker(run)) << run.output;
}

// ---- one process ---------------------------------------------------------------------------------

TEST(Communicator, SingleProcessIsTheIdentity) {
  auto comm = make_single_process_communicator();
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->size(), 1);
  auto t = at::arange(6, at::kFloat);
  comm->all_reduce(t, ReduceOp::kMean);
  EXPECT_TRUE(at::equal(t, at::arange(6, at::kFloat)));
  comm->broadcast(t, 0);
  EXPECT_TRUE(at::equal(comm->all_gather_varsize(t)[0], t));
  EXPECT_THROW(comm->broadcast(t, 1), c10::Error);
  EXPECT_THROW(comm->send(t, 1), c10::Error);
  comm->barrier();
}

TEST(Communicator, WorldOfOneNeedsNoStore) {
  RendezvousInfo info;  // world size 1: no TCPStore is opened (port 1 would fail)
  info.master_port = 1;
  auto comm = init_communicator(info, CommOptions{.backend = "gloo", .timeout_s = 1});
  EXPECT_EQ(comm->size(), 1);
}

TEST(Communicator, OptionsFromTheRunConfig) {
  config::DistSection d;
  d.backend = "gloo";
  d.timeout_s = 7.5;
  const auto o = comm_options(d);
  EXPECT_EQ(o.backend, "gloo");
  EXPECT_EQ(o.timeout_s, 7.5);
}

TEST(Communicator, RejectsBadOptions) {
  RendezvousInfo info;
  EXPECT_THROW(init_communicator(info, CommOptions{.backend = "mpi", .timeout_s = 1}), keel::Error);
  EXPECT_THROW(init_communicator(info, CommOptions{.backend = "gloo", .timeout_s = 0}), keel::Error);
#if !defined(KEEL_WITH_CUDA)
  info.world_size = 2;
  try {
    init_communicator(info, CommOptions{.backend = "nccl", .timeout_s = 1});
    ADD_FAILURE() << "nccl on a CPU build must fail";
  } catch (const keel::Error& e) {
    EXPECT_NE(std::string(e.what()).find("without NCCL"), std::string::npos) << e.what();
  }
#endif
}

// On a CUDA machine: an explicit nccl backend builds a real ProcessGroupNCCL even for one rank, and
// every collective runs through it on the GPU. Skipped without CUDA / NCCL.
TEST(CommunicatorGpu, NcclWorldSizeOne) {
  if (!compat::nccl_available()) GTEST_SKIP() << "no CUDA device or no NCCL in this LibTorch";
  RendezvousInfo info;
  info.master_port = testing::free_port();
  auto comm = init_communicator(info, CommOptions{.backend = "nccl", .timeout_s = 60});
  ASSERT_EQ(comm->backend(), "nccl");
  ASSERT_EQ(comm->size(), 1);
  ASSERT_TRUE(comm->device().is_cuda());
  const auto dev = comm->device();
  auto t = torch::arange(6, torch::TensorOptions().dtype(torch::kFloat).device(dev)).view({2, 3});
  comm->all_reduce(t, ReduceOp::kSum);
  EXPECT_TRUE(torch::equal(t.cpu(), torch::arange(6, torch::kFloat).view({2, 3})));
  comm->all_reduce(t, ReduceOp::kMean);
  EXPECT_TRUE(torch::equal(t.cpu(), torch::arange(6, torch::kFloat).view({2, 3})));
  auto b = torch::full({5}, 3.0, torch::TensorOptions().dtype(torch::kBFloat16).device(dev));
  comm->broadcast(b, 0);
  EXPECT_EQ(b.to(torch::kFloat).sum().item<float>(), 15.0f);
  auto g = comm->all_gather(t);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_TRUE(torch::equal(g[0].cpu(), t.cpu()));
  auto gv = comm->all_gather_varsize(torch::ones({3, 2}, torch::TensorOptions().device(dev)));
  ASSERT_EQ(gv.size(), 1u);
  EXPECT_EQ(gv[0].sizes(), (std::vector<int64_t>{3, 2}));
  comm->barrier();
  // Weight sync over NCCL (the learner -> rollout path), one member: the call must run end to end.
  std::vector<at::Tensor> params{torch::randn({300, 7}, torch::TensorOptions().device(dev)),
                                 torch::randn({11}, torch::TensorOptions().device(dev))};
  const auto before = params[0].clone();
  WeightSyncOptions wo;
  wo.bucket_mb = 0.001;
  const auto st = broadcast_parameters(*comm, params, 0, wo);
  EXPECT_EQ(st.bytes, (300 * 7 + 11) * 4);
  EXPECT_TRUE(torch::equal(params[0], before));
}

}  // namespace
}  // namespace keel::dist
