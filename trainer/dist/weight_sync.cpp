// Bucketed parameter broadcast over the Communicator interface (no c10d here).
#include "trainer/dist/weight_sync.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <limits>

namespace keel::dist {

namespace {

// A piece of one parameter inside a bucket: bytes [param_off, param_off + len) of parameter
// `param`, at [bucket_off, bucket_off + len) of the bucket.
struct Segment {
  size_t param;  // the unit: one parameter or a run of adjacent ones (see plan_transfers)
  int64_t param_off;
  int64_t len;
  int64_t bucket_off;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// FNV-1a over bytes, its value kept positive for an int64 tensor.
struct Fnv {
  uint64_t h = 1469598103934665603ULL;
  void byte(uint8_t b) { h = (h ^ b) * 1099511628211ULL; }
  void word(int64_t v) {
    for (int i = 0; i < 8; ++i) byte(static_cast<uint8_t>(v >> (8 * i)));
  }
  int64_t value() const { return static_cast<int64_t>(h >> 2); }
};

// Over the (dtype, ndim, sizes...) of every parameter.
int64_t layout_hash(const std::vector<at::Tensor>& params) {
  Fnv f;
  for (const auto& p : params) {
    f.word(static_cast<int64_t>(p.scalar_type()));
    f.word(p.dim());
    for (int64_t s : p.sizes()) f.word(s);
  }
  return f.value();
}

int64_t flags_hash(const std::vector<uint8_t>& flags) {
  Fnv f;
  for (uint8_t b : flags) f.byte(b);
  return f.value();
}

// Every member's (count, bytes, layout hash) must equal src's. Returns whether every member's
// `joined` flags (which neighbours lie back to back) hash alike, gathered in the same collective.
bool check_same_layout(Communicator& comm, const std::vector<at::Tensor>& params, int64_t total, int src,
                       const std::vector<uint8_t>& joined) {
  auto sig = at::empty({4}, at::kLong);
  sig[0] = static_cast<int64_t>(params.size());
  sig[1] = total;
  sig[2] = layout_hash(params);
  sig[3] = flags_hash(joined);
  const auto all = comm.all_gather(sig.to(comm.device()));
  const auto ref = all[src].cpu();
  std::vector<int> bad;
  bool same_joins = true;
  for (int r = 0; r < comm.size(); ++r) {
    const auto other = all[r].cpu();
    if (!at::equal(other.narrow(0, 0, 3), ref.narrow(0, 0, 3))) bad.push_back(r);
    same_joins = same_joins && other[3].item<int64_t>() == ref[3].item<int64_t>();
  }
  if (!bad.empty()) {
    const auto mine = all[comm.rank()].cpu();
    TORCH_CHECK(false, "keel::dist::broadcast_parameters: ", bad.size(), " member(s) (first: rank ", bad[0],
                ") hold a parameter list that differs from src rank ", src, "'s (", ref[0].item<int64_t>(),
                " tensors, ", ref[1].item<int64_t>(), " bytes); this rank ", comm.rank(), " has ",
                mine[0].item<int64_t>(), " tensors, ", mine[1].item<int64_t>(), " bytes");
  }
  return same_joins;
}

// One broadcast: a bucket of the packed stream (staged when it spans several parameters) or a
// piece of a direct parameter (in place).
struct Transfer {
  std::vector<Segment> segments;
  int64_t len = 0;
  bool staged = false;
};

// The broadcasts, identical on every rank. begin[i] = byte offset of unit i in the list
// (begin.back() = total); a unit is one parameter, or a run of parameters that lie back to back in
// memory on every member (one flat view over their bytes). Units of at least direct_min bytes are
// cut into bucket-size pieces broadcast in place; the others form the packed stream, cut every
// `bucket` bytes. Packed buckets come first, then the direct pieces, each in list order.
std::vector<Transfer> plan_transfers(const std::vector<int64_t>& begin, int64_t bucket, int64_t direct_min) {
  const size_t n = begin.size() - 1;
  std::vector<Transfer> out;
  std::vector<size_t> packed;               // parameters in the packed stream
  std::vector<int64_t> packed_begin{0};     // their offsets in it
  for (size_t i = 0; i < n; ++i) {
    const int64_t bytes = begin[i + 1] - begin[i];
    if (bytes == 0 || bytes >= direct_min) continue;
    packed.push_back(i);
    packed_begin.push_back(packed_begin.back() + bytes);
  }
  const int64_t packed_total = packed_begin.back();
  size_t p = 0;  // first packed parameter that may overlap the current bucket
  for (int64_t off = 0; off < packed_total; off += bucket) {
    const int64_t end = std::min(packed_total, off + bucket);
    Transfer t;
    t.len = end - off;
    while (packed_begin[p + 1] <= off) ++p;
    for (size_t j = p; j < packed.size() && packed_begin[j] < end; ++j) {
      const int64_t lo = std::max(off, packed_begin[j]), hi = std::min(end, packed_begin[j + 1]);
      if (hi > lo) t.segments.push_back({packed[j], lo - packed_begin[j], hi - lo, lo - off});
    }
    t.staged = t.segments.size() > 1;
    out.push_back(std::move(t));
  }
  for (size_t i = 0; i < n; ++i) {
    const int64_t bytes = begin[i + 1] - begin[i];
    if (bytes == 0 || bytes < direct_min) continue;
    for (int64_t off = 0; off < bytes; off += bucket) {
      const int64_t len = std::min(bucket, bytes - off);
      out.push_back(Transfer{{Segment{i, off, len, 0}}, len, false});
    }
  }
  return out;
}

}  // namespace

WeightSyncStats broadcast_parameters(Communicator& comm, const std::vector<at::Tensor>& params, int src,
                                     const WeightSyncOptions& opt, WeightSyncBuffers* buffers) {
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
  int64_t total = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    TORCH_CHECK(p.defined(), "keel::dist::broadcast_parameters: parameter ", i, " is undefined");
    TORCH_CHECK(p.device() == comm.device(), "keel::dist::broadcast_parameters: parameter ", i, " is on ",
                p.device(), " but the communicator works on ", comm.device());
    const at::Tensor c = p.contiguous();
    flat[i] = c.numel() == 0 ? at::empty({0}, c.options().dtype(at::kByte)) : c.reshape({-1}).view(at::kByte);
    total += flat[i].numel();
  }
  // Fewer, larger messages without a copy: parameters that lie back to back in memory on every
  // member (keel's CPU models keep theirs in one arena, models::pack_on_huge_pages) are sent as one
  // unit through a byte view over the run. Only where the lists are known to match (check_layout,
  // whose collective also tells whether every member found the same neighbours back to back; if
  // not, every member sends parameter by parameter).
  std::vector<uint8_t> joined(params.empty() ? 0 : params.size() - 1, 0);  // [i]: i and i + 1 adjacent
  if (opt.merge_adjacent)
    for (size_t i = 0; i + 1 < params.size(); ++i) {
      const int64_t n = flat[i].numel();
      joined[i] = n > 0 && flat[i + 1].numel() > 0 &&
                  static_cast<const uint8_t*>(flat[i].data_ptr()) + n == flat[i + 1].data_ptr();
    }
  const bool same_joins = opt.check_layout && check_same_layout(comm, params, total, src, joined);
  if (!same_joins) std::fill(joined.begin(), joined.end(), 0);
  std::vector<at::Tensor> units;  // [bytes] uint8 each: a parameter, or a byte view over a run
  std::vector<int64_t> unit_begin{0};
  for (size_t i = 0; i < params.size();) {
    size_t j = i;
    int64_t bytes = flat[i].numel();
    while (j < joined.size() && joined[j]) bytes += flat[++j].numel();
    units.push_back(j == i ? flat[i]
                           : at::from_blob(flat[i].data_ptr(), {bytes},
                                           at::TensorOptions().dtype(at::kByte).device(comm.device())));
    unit_begin.push_back(unit_begin.back() + bytes);
    i = j + 1;
  }

  WeightSyncStats stats;
  stats.bytes = total;
  const int64_t bucket = std::max<int64_t>(1, static_cast<int64_t>(opt.bucket_mb * 1024.0 * 1024.0));
  const int64_t direct_min = opt.direct_min_mb < 0 ? std::numeric_limits<int64_t>::max()
                                                   : static_cast<int64_t>(opt.direct_min_mb * 1024.0 * 1024.0);
  const auto transfers = plan_transfers(unit_begin, bucket, direct_min);
  int64_t staging_len = 0;
  for (const auto& t : transfers)
    if (t.staged) staging_len = std::max(staging_len, t.len);
  WeightSyncBuffers local;
  std::vector<at::Tensor>& staging = (buffers != nullptr ? buffers : &local)->staging;  // [>= staging_len] uint8
  staging.resize(std::max<size_t>(staging.size(), static_cast<size_t>(opt.max_in_flight)));

  struct InFlight {
    std::unique_ptr<CommWork> work;
    int slot = -1;                      // staging slot, -1 when broadcast in place
    const Transfer* transfer = nullptr;
  };
  std::deque<InFlight> pending;
  const auto finish_oldest = [&] {
    InFlight f = std::move(pending.front());
    pending.pop_front();
    const double t0 = now_s();
    f.work->wait();
    const double t1 = now_s();
    stats.wait_seconds += t1 - t0;
    if (f.slot >= 0 && !sending) {
      for (const auto& s : f.transfer->segments)
        units[s.param].narrow(0, s.param_off, s.len).copy_(staging[f.slot].narrow(0, s.bucket_off, s.len));
      stats.copy_seconds += now_s() - t1;
    }
  };

  for (size_t k = 0; k < transfers.size(); ++k) {
    const Transfer& t = transfers[k];
    if (static_cast<int>(pending.size()) == opt.max_in_flight) finish_oldest();
    InFlight f;
    f.transfer = &t;
    at::Tensor buf;
    if (!t.staged) {
      const auto& s = t.segments[0];
      buf = units[s.param].narrow(0, s.param_off, s.len);  // in place, no copy
    } else {
      // The slot of transfer k - max_in_flight, finished just above (or earlier).
      f.slot = static_cast<int>(k % opt.max_in_flight);
      at::Tensor& slot = staging[f.slot];
      if (!slot.defined() || slot.numel() < staging_len || slot.device() != comm.device())
        slot = at::empty({staging_len}, at::TensorOptions().dtype(at::kByte).device(comm.device()));
      buf = slot.narrow(0, 0, t.len);
      if (sending) {
        const double t0 = now_s();
        for (const auto& s : t.segments)
          buf.narrow(0, s.bucket_off, s.len).copy_(units[s.param].narrow(0, s.param_off, s.len));
        stats.copy_seconds += now_s() - t0;
      }
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
