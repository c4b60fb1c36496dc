// Bucketed weight broadcast. (1) The bucket arithmetic against a slow reference (the parameters'
// bytes concatenated, cut every bucket_bytes) through a recording fake communicator, over random
// layouts and bucket sizes. (2) Real Gloo broadcasts with 2 and 3 processes: receivers end equal
// to the source bit for bit, for buckets smaller than one tensor, in between, and larger than all.
#include "trainer/dist/weight_sync.h"

#include <torch/torch.h>

#include <random>

#include "tests/trainer/dist/dist_test_util.h"

namespace keel::dist {
namespace {

using testing::spawn_ranks;
using testing::SpawnSpec;

// The slow reference: every parameter's bytes, in order, in one uint8 tensor.
at::Tensor concat_bytes(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> parts;
  for (const auto& p : params) parts.push_back(p.contiguous().reshape({-1}).view(at::kByte).clone());
  return parts.empty() ? at::empty({0}, at::kByte) : at::cat(parts);
}

// A fake member: on the source it records what each broadcast carries; elsewhere it fills each
// broadcast buffer with the next bytes of `stream` (what the source would have sent).
class FakeComm final : public Communicator {
 public:
  FakeComm(int rank, int size, at::Tensor stream = {}) : rank_(rank), ranks_(size), stream_(std::move(stream)) {}
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(ranks_.size()); }
  const std::vector<int>& global_ranks() const override { return ranks_; }
  std::string backend() const override { return "fake"; }
  at::Device device() const override { return at::kCPU; }
  void all_reduce(at::Tensor&, ReduceOp) override { FAIL() << "unused"; }
  void broadcast(at::Tensor&, int) override { FAIL() << "unused"; }
  std::unique_ptr<CommWork> broadcast_async(at::Tensor& t, int root) override {
    EXPECT_TRUE(t.is_contiguous());
    EXPECT_EQ(t.scalar_type(), at::kByte);
    if (rank_ == root) {
      sent.push_back(t.clone());
      return std::make_unique<Later>(at::Tensor(), at::Tensor());
    }
    const auto chunk = stream_.narrow(0, offset_, t.numel());
    offset_ += t.numel();
    return std::make_unique<Later>(t, chunk);  // lands at wait(), like a real transfer
  }
  std::vector<at::Tensor> all_gather(const at::Tensor& t) override { return std::vector<at::Tensor>(size(), t.clone()); }
  std::vector<at::Tensor> all_gather_varsize(const at::Tensor& t) override { return all_gather(t); }
  void send(const at::Tensor&, int) override { FAIL() << "unused"; }
  at::Tensor recv(int) override { return {}; }
  void barrier() override {}
  std::unique_ptr<Communicator> new_group(const std::vector<int>&) override { return nullptr; }

  std::vector<at::Tensor> sent;  // [bucket bytes] uint8 each

 private:
  struct Later final : CommWork {
    Later(at::Tensor dst, at::Tensor src) : dst_(std::move(dst)), src_(std::move(src)) {}
    void wait() override {
      if (dst_.defined()) dst_.copy_(src_);
    }
    at::Tensor dst_, src_;
  };
  int rank_;
  std::vector<int> ranks_;
  at::Tensor stream_;
  int64_t offset_ = 0;
};

// A random parameter list: mixed dtypes, empty and 0-d tensors, some non-contiguous views.
std::vector<at::Tensor> random_params(std::mt19937& rng, bool zeros) {
  std::uniform_int_distribution<int> count(0, 9), dim(0, 40), kind(0, 9);
  std::vector<at::Tensor> out;
  const int n = count(rng);
  for (int i = 0; i < n; ++i) {
    const int k = kind(rng);
    const at::ScalarType dtype = k < 5 ? at::kFloat : k < 7 ? at::kBFloat16 : k < 8 ? at::kLong : at::kBool;
    std::vector<int64_t> shape;
    const int nd = k == 9 ? 0 : 1 + static_cast<int>(rng() % 3);
    for (int d = 0; d < nd; ++d) shape.push_back(dim(rng) / (d + 1));
    at::Tensor t = zeros ? at::zeros(shape, dtype) : at::randn(shape, at::kDouble).mul(100).to(dtype);
    if (nd == 2 && (rng() % 2 == 0)) {
      // A transposed view over a fresh [b, a] tensor holding the same values.
      const at::Tensor c = t.t().contiguous();
      t = c.t();
    }
    out.push_back(t);
  }
  return out;
}

TEST(WeightSync, BucketsCutTheByteStreamLikeTheReference) {
  for (int seed = 0; seed < 60; ++seed) {
    std::mt19937 rng(seed);
    at::manual_seed(seed);
    const auto params = random_params(rng, /*zeros=*/false);
    const auto stream = concat_bytes(params);
    const int64_t total = stream.numel();
    // Bucket sizes from 1 byte to more than everything.
    const int64_t bucket = seed % 5 == 0 ? total + 7 : 1 + static_cast<int64_t>(rng() % 700);
    WeightSyncOptions opt;
    opt.bucket_mb = static_cast<double>(bucket) / (1024.0 * 1024.0);
    opt.max_in_flight = 1 + seed % 3;
    opt.direct_min_mb = -1;  // everything through the packed stream

    FakeComm src(/*rank=*/0, /*size=*/2);
    const auto stats = broadcast_parameters(src, params, /*src=*/0, opt);
    EXPECT_EQ(stats.bytes, total) << "seed " << seed;
    const int64_t expect_buckets = (total + bucket - 1) / bucket;
    ASSERT_EQ(static_cast<int64_t>(src.sent.size()), expect_buckets) << "seed " << seed;
    EXPECT_EQ(stats.buckets, expect_buckets);
    // Every bucket is bucket bytes except the last, and together they are the stream.
    for (int64_t b = 0; b < expect_buckets; ++b)
      EXPECT_EQ(src.sent[b].numel(), std::min(bucket, total - b * bucket)) << "seed " << seed << " bucket " << b;
    if (total > 0) {
      EXPECT_TRUE(at::equal(at::cat(src.sent), stream)) << "seed " << seed;
    }

    // A receiver fed the stream ends bit-equal to the source, strides untouched.
    std::mt19937 rng2(seed);
    auto dst = random_params(rng2, /*zeros=*/true);
    FakeComm recv(/*rank=*/1, /*size=*/2, stream);
    broadcast_parameters(recv, dst, /*src=*/0, opt);
    ASSERT_EQ(dst.size(), params.size());
    for (size_t i = 0; i < dst.size(); ++i) {
      EXPECT_EQ(dst[i].strides(), params[i].strides()) << "seed " << seed << " param " << i;
      EXPECT_TRUE(at::equal(dst[i], params[i])) << "seed " << seed << " param " << i;
    }
  }
}

// The slow reference of the transfer order: the packed stream (parameters under direct_min
// bytes, concatenated) first, then each direct parameter's bytes. Also the expected count.
std::pair<at::Tensor, int64_t> reference_transfers(const std::vector<at::Tensor>& params, int64_t bucket,
                                                   int64_t direct_min) {
  std::vector<at::Tensor> small, direct;
  int64_t count = 0;
  for (const auto& p : params) {
    const int64_t bytes = p.numel() * p.element_size();
    if (bytes == 0) continue;
    if (bytes >= direct_min) {
      direct.push_back(p);
      count += (bytes + bucket - 1) / bucket;
    } else {
      small.push_back(p);
    }
  }
  const auto packed = concat_bytes(small);
  count += (packed.numel() + bucket - 1) / bucket;
  return {at::cat({packed, concat_bytes(direct)}), count};
}

TEST(WeightSync, LargeParametersGoDirectInBucketPieces) {
  for (int seed = 0; seed < 60; ++seed) {
    std::mt19937 rng(1000 + seed);
    at::manual_seed(seed);
    const auto params = random_params(rng, /*zeros=*/false);
    const int64_t bucket = 1 + static_cast<int64_t>(rng() % 300);
    const int64_t direct_min = static_cast<int64_t>(rng() % 200);  // 0: everything direct
    WeightSyncOptions opt;
    opt.bucket_mb = static_cast<double>(bucket) / (1024.0 * 1024.0);
    opt.direct_min_mb = static_cast<double>(direct_min) / (1024.0 * 1024.0);
    opt.max_in_flight = 1 + seed % 3;
    // The MiB -> bytes conversion truncates; recompute what the implementation sees.
    const int64_t direct_bytes = static_cast<int64_t>(opt.direct_min_mb * 1024.0 * 1024.0);
    const auto [expect, count] = reference_transfers(params, bucket, direct_bytes);

    FakeComm src(/*rank=*/0, /*size=*/3);
    const auto stats = broadcast_parameters(src, params, /*src=*/0, opt);
    ASSERT_EQ(static_cast<int64_t>(src.sent.size()), count) << "seed " << seed;
    EXPECT_EQ(stats.buckets, count);
    for (const auto& b : src.sent) EXPECT_LE(b.numel(), bucket) << "seed " << seed;
    const auto sent = src.sent.empty() ? at::empty({0}, at::kByte) : at::cat(src.sent);
    EXPECT_TRUE(at::equal(sent, expect)) << "seed " << seed;

    std::mt19937 rng2(1000 + seed);
    auto dst = random_params(rng2, /*zeros=*/true);
    FakeComm recv(/*rank=*/2, /*size=*/3, sent);
    broadcast_parameters(recv, dst, /*src=*/0, opt);
    for (size_t i = 0; i < dst.size(); ++i) EXPECT_TRUE(at::equal(dst[i], params[i])) << "seed " << seed << " param " << i;
  }
}

TEST(WeightSync, BucketInsideOneTensorIsNotStaged) {
  // Two 4000-byte tensors, 1000-byte buckets: 8 buckets, each inside one tensor -> none staged.
  // 3000-byte buckets: [0,3000) in p0, [3000,6000) spans both (staged), [6000,8000) in p1.
  std::vector<at::Tensor> params{at::ones({1000}), at::ones({1000})};
  FakeComm a(0, 2);
  auto s = broadcast_parameters(a, params, 0, {.bucket_mb = 1000.0 / (1 << 20)});
  EXPECT_EQ(s.buckets, 8);
  EXPECT_EQ(s.staged_buckets, 0);
  FakeComm b(0, 2);
  s = broadcast_parameters(b, params, 0, {.bucket_mb = 3000.0 / (1 << 20)});
  EXPECT_EQ(s.buckets, 3);
  EXPECT_EQ(s.staged_buckets, 1);
}

// Parameters [shapes] as views of one buffer, back to back in list order (an arena, as keel's CPU
// models keep theirs), or each on its own. `gap_after` (>= 0) leaves 4 unlisted floats after that
// parameter. Values from seed 9 when `values`, else zeros.
std::vector<at::Tensor> arena_params(bool values, bool arena, int gap_after = -1) {
  const std::vector<std::vector<int64_t>> shapes{{300, 64}, {64}, {17, 33}, {5}, {40, 16}};
  at::manual_seed(9);
  std::vector<at::Tensor> vals;
  int64_t total = 0;
  for (const auto& s : shapes) {
    vals.push_back(values ? at::randn(s) : at::zeros(s));
    total += vals.back().numel();
  }
  if (!arena) return vals;
  auto buf = at::full({total + 4}, 1234.0f);
  std::vector<at::Tensor> out;
  int64_t off = 0;
  for (size_t i = 0; i < vals.size(); ++i) {
    out.push_back(buf.narrow(0, off, vals[i].numel()).view(vals[i].sizes()));
    out.back().copy_(vals[i]);
    off += vals[i].numel() + (static_cast<int>(i) == gap_after ? 4 : 0);
  }
  return out;
}

// A run of adjacent parameters is one unit: cut into buckets like one parameter, sent in place (no
// staging), never across a gap (the bytes there are not the list's), and not at all when
// merge_adjacent is off.
TEST(WeightSync, AdjacentParametersGoAsOneRun) {
  const int64_t bucket = 10000;
  const auto sent_by = [&](const std::vector<at::Tensor>& params, bool merge) {
    FakeComm src(/*rank=*/0, /*size=*/2);
    WeightSyncOptions opt{.bucket_mb = bucket / 1048576.0, .direct_min_mb = 0, .merge_adjacent = merge};
    const auto stats = broadcast_parameters(src, params, /*src=*/0, opt);
    EXPECT_EQ(stats.staged_buckets, 0);
    EXPECT_EQ(stats.buckets, static_cast<int64_t>(src.sent.size()));
    return src.sent;
  };
  const auto arena = arena_params(true, true);
  const auto stream = concat_bytes(arena);  // 4 * (19200 + 64 + 561 + 5 + 640) = 81880 bytes
  auto sent = sent_by(arena, true);
  ASSERT_EQ(sent.size(), 9u);  // ceil(81880 / 10000): one unit, cut every bucket
  for (size_t b = 0; b + 1 < sent.size(); ++b) EXPECT_EQ(sent[b].numel(), bucket);
  EXPECT_TRUE(at::equal(at::cat(sent), stream));
  // Unmerged: each parameter on its own, ceil(76800/1e4) + 1 + 1 + 1 + 1 = 12 broadcasts.
  EXPECT_EQ(sent_by(arena, false).size(), 12u);
  EXPECT_EQ(sent_by(arena_params(true, false), true).size(), 12u);
  // A gap after parameter 1: runs {0, 1} and {2, 3, 4}: ceil(77056 / 1e4) + ceil(4824 / 1e4) = 9.
  const auto gapped = arena_params(true, true, /*gap_after=*/1);
  sent = sent_by(gapped, true);
  ASSERT_EQ(sent.size(), 9u);
  EXPECT_TRUE(at::equal(at::cat(sent), concat_bytes(gapped)));

  // A receiver's arena ends equal to the source, the unlisted floats in the gap untouched.
  auto dst = arena_params(false, true, /*gap_after=*/1);
  FakeComm recv(/*rank=*/1, /*size=*/2, at::cat(sent));
  broadcast_parameters(recv, dst, /*src=*/0, {.bucket_mb = bucket / 1048576.0, .direct_min_mb = 0});
  for (size_t i = 0; i < dst.size(); ++i) EXPECT_TRUE(at::equal(dst[i], gapped[i])) << "param " << i;
  const float* base = dst[0].data_ptr<float>();
  for (int k = 0; k < 4; ++k) EXPECT_EQ(base[300 * 64 + 64 + k], 1234.0f) << "gap float " << k;
}

TEST(WeightSync, RejectsBadOptions) {
  FakeComm c(0, 2);
  std::vector<at::Tensor> params{at::ones({4})};
  EXPECT_THROW(broadcast_parameters(c, params, 0, {.bucket_mb = 0}), c10::Error);
  EXPECT_THROW(broadcast_parameters(c, params, 0, {.bucket_mb = 1, .max_in_flight = 0}), c10::Error);
  EXPECT_THROW(broadcast_parameters(c, params, 2), c10::Error);
}

// ---- real processes ------------------------------------------------------------------------------

// Same list on every rank: values from `seed` on the source, zeros elsewhere. Sizes chosen so that
// a 100-byte bucket is smaller than most tensors and 1 MiB is larger than all of them.
std::vector<at::Tensor> model_like(bool values) {
  at::manual_seed(7);
  const auto make = [&](std::vector<int64_t> shape, at::ScalarType dtype) {
    auto v = at::randn(shape, at::kDouble).mul(10).to(dtype);
    return values ? v : at::zeros(shape, dtype);
  };
  std::vector<at::Tensor> p{make({200, 64}, at::kFloat), make({64}, at::kFloat), make({3, 5}, at::kBFloat16),
                            make({0}, at::kFloat),       make({7}, at::kLong),   make({4, 4}, at::kBool),
                            make({}, at::kFloat),        make({17, 33}, at::kFloat).t(), make({96, 8}, at::kDouble)};
  return p;
}

TEST(WeightSyncDist, Worker) {
  KEEL_DIST_WORKER_OR_SKIP();
  CommOptions co;
  co.backend = "gloo";
  co.timeout_s = 30;
  auto comm = init_communicator(read_rendezvous_env(process_env()), co);
  const int r = comm->rank(), w = comm->size();
  const auto reference = model_like(true);
  int64_t total = 0;
  for (const auto& t : reference) total += t.numel() * t.element_size();
  WeightSyncBuffers buffers;  // reused across calls of different bucket sizes
  for (double bucket_bytes : {100.0, 4096.0, 1048576.0}) {
    for (int src : {0, w - 1}) {
      for (int in_flight : {1, 3}) {
        // Direct (in place) for parameters of >= 1024 bytes, or everything packed.
        const double direct_mb = in_flight == 1 ? 1024.0 / (1 << 20) : -1.0;
        auto params = r == src ? model_like(true) : model_like(false);
        WeightSyncOptions opt{.bucket_mb = bucket_bytes / (1 << 20), .max_in_flight = in_flight, .direct_min_mb = direct_mb};
        const auto stats = broadcast_parameters(*comm, params, src, opt, in_flight == 1 ? &buffers : nullptr);
        EXPECT_EQ(stats.bytes, total);
        const int64_t direct_bytes = direct_mb < 0 ? std::numeric_limits<int64_t>::max() : 1024;
        EXPECT_EQ(stats.buckets, reference_transfers(reference, int64_t(bucket_bytes), direct_bytes).second);
        EXPECT_GT(stats.seconds, 0);
        for (size_t i = 0; i < params.size(); ++i)
          EXPECT_TRUE(at::equal(params[i], reference[i]))
              << "bucket " << bucket_bytes << " src " << src << " in_flight " << in_flight << " param " << i;
      }
    }
  }
  // An arena on every member: one run, ceil(81880 / 4096) = 20 broadcasts. One member whose
  // parameters are separate keeps everyone on the per-parameter plan; each receiver ends equal.
  for (bool every_arena : {true, false}) {
    const bool arena = every_arena || r != w - 1;
    auto params = arena_params(/*values=*/r == 0, arena);
    const auto stats = broadcast_parameters(*comm, params, 0, {.bucket_mb = 4096.0 / (1 << 20), .direct_min_mb = 0});
    const auto want = arena_params(true, false);
    EXPECT_EQ(stats.buckets, every_arena ? 20 : reference_transfers(want, 4096, 0).second) << every_arena;
    for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(at::equal(params[i], want[i])) << every_arena << " " << i;
  }
  // A rank whose list differs from the source's: every rank refuses, naming it.
  auto params = model_like(r == 0);
  if (r == w - 1) params[1] = at::zeros({65});
  try {
    broadcast_parameters(*comm, params, 0);
    ADD_FAILURE() << "a mismatched parameter list must be refused";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank " + std::to_string(w - 1) + ")"), std::string::npos) << e.what();
  }
  comm->barrier();
}

TEST(WeightSyncDist, TwoRanks) {
  const auto runs = spawn_ranks(SpawnSpec{.filter = "WeightSyncDist.Worker", .world_size = 2});
  EXPECT_EQ(testing::failures(runs), "");
  for (const auto& run : runs) EXPECT_TRUE(testing::ran_worker(run)) << run.output;
}

TEST(WeightSyncDist, ThreeRanks) {
  const auto runs = spawn_ranks(SpawnSpec{.filter = "WeightSyncDist.Worker", .world_size = 3});
  EXPECT_EQ(testing::failures(runs), "");
  for (const auto& run : runs) EXPECT_TRUE(testing::ran_worker(run)) << run.output;
}

}  // namespace
}  // namespace keel::dist
