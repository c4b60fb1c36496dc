// Bucketed parameter broadcast over the Communicator interface (no c10d here).
#include "trainer/dist/weight_sync.h"

#include <algorithm>
#include <chrono>
#include <deque>

namespace keel::dist {

namespace {

/// A piece of one parameter inside a bucket: bytes [param_off, param_off + len) of parameter
/// `param`, at [bucket_off, bucket_off + len) of the bucket.
struct Segment {
  size_t param;
  int64_t param_off;
  int64_t len;
  int64_t bucket_off;
};

/// FNV-1a over the (dtype, ndim, sizes...) of every parameter, kept positive for an int64 tensor.
int64_t layout_hash(const std::vector<at::Tensor>& params) {
  uint64_t h = 1469598103934665603ULL;
  const auto mix = [&](int64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= static_cast<uint64_t>(v >> (8 * i)) & 0xffU;
      h *= 1099511628211ULL;
    }
  };
  for (const auto& p : params) {
    mix(static_cast<int64_t>(p.scalar_type()));
    mix(p.dim());
    for (int64_t s : p.sizes()) mix(s);
  }
  return static_cast<int64_t>(h >> 2);
}

/// Every member's (count, bytes, layout hash) must equal src's.
void check_same_layout(Communicator& comm, const std::vector<at::Tensor>& params, int64_t total, int src) {
  auto sig = at::empty({3}, at::kLong);
  sig[0] = static_cast<int64_t>(params.size());
  sig[1] = total;
  sig[2] = layout_hash(params);
  const auto all = comm.all_gather(sig.to(comm.device()));
  const auto ref = all[src].cpu();
  std::vector<int> bad;
  for (int r = 0; r < comm.size(); ++r)
    if (!at::equal(all[r].cpu(), ref)) bad.push_back(r);
  if (!bad.empty()) {
    const auto mine = all[comm.rank()].cpu();
    TORCH_CHECK(false, "keel::dist::broadcast_parameters: ", bad.size(), " member(s) (first: rank ", bad[0],
                ") hold a parameter list that differs from src rank ", src, "'s (", ref[0].item<int64_t>(),
                " tensors, ", ref[1].item<int64_t>(), " bytes); this rank ", comm.rank(), " has ",
                mine[0].item<int64_t>(), " tensors, ", mine[1].item<int64_t>(), " bytes");
  }
}

}  // namespace

WeightSyncStats broadcast_parameters(Communicator& comm, const std::vector<at::Tensor>& params, int src,
                                     const WeightSyncOptions& opt) {
  TORCH_CHECK(opt.bucket_mb > 0, "keel::dist::broadcast_parameters: bucket_mb must be > 0, got ", opt.bucket_mb);
  TORCH_CHECK(opt.max_in_flight >= 1, "keel::dist::broadcast_parameters: max_in_flight must be >= 1, got ",
              opt.max_in_flight);
  TORCH_CHECK(src >= 0 && src < comm.size(), "keel::dist::broadcast_parameters: src ", src,
              " is not a rank of the communicator (size ", comm.size(), ")");
  const auto start = std::chrono::steady_clock::now();
  const bool sending = comm.rank() == src;

  // The stream: each parameter's bytes through a contiguous flat uint8 view. Non-contiguous
  // parameters go through a contiguous copy (copied back at the end on receivers).
  std::vector<at::Tensor> flat(params.size());  // [bytes_i] uint8
  std::vector<int64_t> begin(params.size() + 1, 0);
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    TORCH_CHECK(p.defined(), "keel::dist::broadcast_parameters: parameter ", i, " is undefined");
    TORCH_CHECK(p.device() == comm.device(), "keel::dist::broadcast_parameters: parameter ", i, " is on ",
                p.device(), " but the communicator works on ", comm.device());
    const at::Tensor c = p.contiguous();
    flat[i] = c.numel() == 0 ? at::empty({0}, c.options().dtype(at::kByte)) : c.reshape({-1}).view(at::kByte);
    begin[i + 1] = begin[i] + flat[i].numel();
  }
  const int64_t total = begin.back();
  if (opt.check_layout) check_same_layout(comm, params, total, src);

  WeightSyncStats stats;
  stats.bytes = total;
  const int64_t bucket = std::max<int64_t>(1, static_cast<int64_t>(opt.bucket_mb * 1024.0 * 1024.0));
  const int64_t staging_len = std::min(bucket, total);
  std::vector<at::Tensor> staging(opt.max_in_flight);  // [staging_len] uint8, allocated on first use

  struct InFlight {
    std::unique_ptr<CommWork> work;
    int slot = -1;                      // staging slot, -1 when broadcast in place
    std::vector<Segment> segments;
  };
  std::deque<InFlight> pending;
  const auto finish_oldest = [&] {
    InFlight f = std::move(pending.front());
    pending.pop_front();
    f.work->wait();
    if (f.slot >= 0 && !sending)
      for (const auto& s : f.segments)
        flat[s.param].narrow(0, s.param_off, s.len).copy_(staging[f.slot].narrow(0, s.bucket_off, s.len));
  };

  size_t p = 0;  // first parameter that may overlap the current bucket
  for (int64_t off = 0; off < total; off += bucket) {
    const int64_t end = std::min(total, off + bucket);
    InFlight f;
    while (begin[p + 1] <= off) ++p;
    for (size_t i = p; i < params.size() && begin[i] < end; ++i) {
      const int64_t lo = std::max(off, begin[i]), hi = std::min(end, begin[i + 1]);
      if (hi > lo) f.segments.push_back({i, lo - begin[i], hi - lo, lo - off});
    }
    if (static_cast<int>(pending.size()) == opt.max_in_flight) finish_oldest();
    at::Tensor buf;
    if (f.segments.size() == 1) {
      const auto& s = f.segments[0];
      buf = flat[s.param].narrow(0, s.param_off, s.len);  // in place, no copy
    } else {
      // The slot of the bucket max_in_flight back, finished just above.
      f.slot = static_cast<int>(stats.buckets % opt.max_in_flight);
      if (!staging[f.slot].defined())
        staging[f.slot] = at::empty({staging_len}, at::TensorOptions().dtype(at::kByte).device(comm.device()));
      buf = staging[f.slot].narrow(0, 0, end - off);
      if (sending)
        for (const auto& s : f.segments)
          buf.narrow(0, s.bucket_off, s.len).copy_(flat[s.param].narrow(0, s.param_off, s.len));
      ++stats.staged_buckets;
    }
    f.work = comm.broadcast_async(buf, src);
    pending.push_back(std::move(f));
    ++stats.buckets;
  }
  while (!pending.empty()) finish_oldest();

  if (!sending)
    for (size_t i = 0; i < params.size(); ++i)
      if (!params[i].is_contiguous() && params[i].numel() > 0)
        params[i].copy_(flat[i].view(params[i].scalar_type()).view(params[i].sizes()));
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace keel::dist
