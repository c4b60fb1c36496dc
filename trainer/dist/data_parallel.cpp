// Data-parallel learner pieces over the Communicator (see data_parallel.h): parameter
// replication, bucketed gradient all-reduce, metric / count reductions and rl_update's hooks.
#include "trainer/dist/data_parallel.h"

#include <torch/torch.h>

#include <algorithm>
#include <set>

#include "base/error.h"
#include "trainer/dist/weight_sync.h"

namespace keel::dist {

namespace {

void check_on_device(const Communicator& comm, const at::Tensor& t, size_t i, const char* what) {
  TORCH_CHECK(t.device() == comm.device(), "keel::dist::all_reduce_gradients: ", what, " ", i, " is on ", t.device(),
              " but the communicator works on ", comm.device());
}

/// FNV-1a, 64 bits: a fingerprint of the key list that every rank computes the same way.
int64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (const unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return static_cast<int64_t>(h);
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  size_t b = 0;
  for (size_t e = s.find('\n'); e != std::string::npos; b = e + 1, e = s.find('\n', b)) out.push_back(s.substr(b, e - b));
  return out;
}

/// Fails on every rank when the ranks' key lists (one key per line) differ, naming what rank i
/// has that rank 0 lacks and vice versa. One all_gather of a hash when they agree.
void check_same_keys(Communicator& comm, const std::string& keys, const char* what) {
  if (comm.size() == 1) return;
  const auto opts = at::TensorOptions().dtype(at::kLong).device(comm.device());
  const auto hashes = comm.all_gather(at::full({1}, fnv1a(keys), opts));
  bool same = true;
  for (const auto& h : hashes) same = same && h.item<int64_t>() == hashes[0].item<int64_t>();
  if (same) return;
  // Rare path: fetch every rank's list to say what differs.
  const auto bytes = at::from_blob(const_cast<char*>(keys.data()), {static_cast<int64_t>(keys.size())}, at::kByte)
                         .clone()
                         .to(comm.device());
  const auto lists = comm.all_gather_varsize(bytes);
  auto text = [](const at::Tensor& t) {
    const at::Tensor c = t.to(at::kCPU).contiguous();
    return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), static_cast<size_t>(c.numel()));
  };
  const auto k0 = split_lines(text(lists[0]));
  const std::set<std::string> s0(k0.begin(), k0.end());
  std::string msg;
  for (size_t r = 1; r < lists.size(); ++r) {
    const auto kr = split_lines(text(lists[r]));
    const std::set<std::string> sr(kr.begin(), kr.end());
    std::string extra, missing;
    for (const auto& k : sr)
      if (!s0.count(k)) extra += (extra.empty() ? "" : ", ") + k;
    for (const auto& k : s0)
      if (!sr.count(k)) missing += (missing.empty() ? "" : ", ") + k;
    if (extra.empty() && missing.empty()) continue;
    msg += fmt::format("; rank {} has [{}] that rank 0 lacks and lacks [{}]", r, extra, missing);
  }
  fail("{}: the ranks reduce different keys{}", what, msg);
}

/// One all_reduce(SUM) over the values of several maps, then the maps flagged `mean` divided by
/// the number of ranks. Keys are checked first; with several maps a key line is prefixed with
/// its map's label ("(sum) actor/loss").
void reduce_maps(Communicator& comm, const std::vector<std::map<std::string, double>*>& maps,
                 const std::vector<bool>& mean, const char* what) {
  std::string keys;
  std::vector<double> values;
  for (size_t i = 0; i < maps.size(); ++i)
    for (const auto& [k, v] : *maps[i]) {
      keys += (maps.size() == 1 ? "" : mean[i] ? "(mean) " : "(sum) ") + k + "\n";
      values.push_back(v);
    }
  check_same_keys(comm, keys, what);
  if (comm.size() == 1 || values.empty()) return;
  at::Tensor t = at::tensor(values, at::TensorOptions().dtype(at::kDouble)).to(comm.device());
  comm.all_reduce(t, ReduceOp::kSum);
  const at::Tensor c = t.to(at::kCPU);
  const double* p = c.data_ptr<double>();
  const double w = static_cast<double>(comm.size());
  size_t j = 0;
  for (size_t i = 0; i < maps.size(); ++i)
    for (auto& [k, v] : *maps[i]) v = mean[i] ? p[j++] / w : p[j++];
}

}  // namespace

void replicate_parameters(Communicator& comm, const std::vector<at::Tensor>& params, int root, double bucket_mb) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> plain;  // detached views: same storage, no autograd
  plain.reserve(params.size());
  for (const auto& p : params) plain.push_back(p.detach());
  WeightSyncOptions opt;
  opt.bucket_mb = bucket_mb;
  broadcast_parameters(comm, plain, root, opt);
}

GradReduceStats all_reduce_gradients(Communicator& comm, const std::vector<at::Tensor>& params, int64_t bucket_bytes) {
  TORCH_CHECK(bucket_bytes > 0, "keel::dist::all_reduce_gradients: bucket_bytes must be > 0, got ", bucket_bytes);
  torch::NoGradGuard no_grad;
  GradReduceStats stats;
  const size_t n = params.size();
  // 1) Which gradients exist anywhere: flags [n] summed over the ranks.
  std::vector<float> any(n, 0.0f);  // [n]
  for (size_t i = 0; i < n; ++i) {
    TORCH_CHECK(params[i].defined(), "keel::dist::all_reduce_gradients: parameter ", i, " is undefined");
    check_on_device(comm, params[i], i, "parameter");
    if (params[i].grad().defined()) {
      check_on_device(comm, params[i].grad(), i, "the gradient of parameter");
      any[i] = 1.0f;
    }
  }
  if (n > 0 && comm.size() > 1) {
    at::Tensor f = at::tensor(any, at::TensorOptions().dtype(at::kFloat)).to(comm.device());
    comm.all_reduce(f, ReduceOp::kSum);
    const at::Tensor c = f.to(at::kCPU).contiguous();
    std::copy(c.data_ptr<float>(), c.data_ptr<float>() + n, any.begin());
  }

  // 2) The participating gradients as flat contiguous views (zeros where this rank has none).
  std::vector<at::Tensor> grads, flat;  // grads[j]: the .grad to write back; flat[j]: [numel] view
  for (size_t i = 0; i < n; ++i) {
    if (any[i] <= 0) continue;
    at::Tensor p = params[i];  // a handle sharing the parameter (mutable_grad needs non-const)
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    const at::Tensor g = p.grad();
    grads.push_back(g);
    flat.push_back(g.is_contiguous() ? g.view({-1}) : g.contiguous().view({-1}));
    ++stats.reduced_params;
  }

  // 3) Stream them through one bucket: fill, all_reduce, copy back. A dtype change flushes.
  struct Segment {
    size_t j;
    int64_t off, len, at;  // flat[j][off, off+len) <-> bucket[at, at+len)
  };
  at::Tensor bucket;
  int64_t cap = 0, fill = 0;
  std::vector<Segment> segs;
  const auto flush = [&] {
    if (fill == 0) return;
    at::Tensor part = bucket.narrow(0, 0, fill);
    comm.all_reduce(part, ReduceOp::kSum);
    for (const auto& s : segs) flat[s.j].narrow(0, s.off, s.len).copy_(part.narrow(0, s.at, s.len));
    ++stats.buckets;
    stats.elements += fill;
    fill = 0;
    segs.clear();
  };
  for (size_t j = 0; j < flat.size(); ++j) {
    const at::Tensor& f = flat[j];
    if (!bucket.defined() || bucket.scalar_type() != f.scalar_type()) {
      flush();
      cap = std::max<int64_t>(1, bucket_bytes / static_cast<int64_t>(f.element_size()));
      // A run shorter than a bucket gets a buffer of its own size (same cuts, less memory).
      int64_t run = 0;
      for (size_t k = j; k < flat.size() && flat[k].scalar_type() == f.scalar_type() && run < cap; ++k)
        run += flat[k].numel();
      cap = std::max<int64_t>(1, std::min(cap, run));
      bucket = at::empty({cap}, f.options());
    }
    for (int64_t off = 0; off < f.numel();) {
      const int64_t len = std::min(cap - fill, f.numel() - off);
      bucket.narrow(0, fill, len).copy_(f.narrow(0, off, len));
      segs.push_back({j, off, len, fill});
      fill += len;
      off += len;
      if (fill == cap) flush();
    }
  }
  flush();
  // Non-contiguous gradients were reduced in a copy: write it back.
  for (size_t j = 0; j < grads.size(); ++j)
    if (!grads[j].is_contiguous()) grads[j].copy_(flat[j].view(grads[j].sizes()));
  return stats;
}

void all_reduce_metrics(Communicator& comm, std::map<std::string, double>& metrics, ReduceOp op) {
  reduce_maps(comm, {&metrics}, {op == ReduceOp::kMean}, "keel::dist::all_reduce_metrics");
}

void all_reduce_agg_counts(Communicator& comm, learner::AggCounts& counts) {
  if (comm.size() == 1) return;
  const std::vector<double> v{counts.tokens, counts.seqs};
  at::Tensor t = at::tensor(v, at::TensorOptions().dtype(at::kDouble)).to(comm.device());
  comm.all_reduce(t, ReduceOp::kSum);
  const at::Tensor c = t.to(at::kCPU);
  counts.tokens = c[0].item<double>();
  counts.seqs = c[1].item<double>();
}

learner::DataParallelHooks learner_hooks(Communicator& comm, const DataParallelOptions& opt) {
  TORCH_CHECK(opt.bucket_mb > 0, "keel::dist::learner_hooks: bucket_mb must be > 0, got ", opt.bucket_mb);
  const int64_t bucket_bytes = std::max<int64_t>(1, static_cast<int64_t>(opt.bucket_mb * 1024.0 * 1024.0));
  Communicator* c = &comm;
  learner::DataParallelHooks h;
  h.reduce_counts = [c](learner::AggCounts& counts) { all_reduce_agg_counts(*c, counts); };
  h.reduce_gradients = [c, bucket_bytes](const std::vector<at::Tensor>& params) {
    all_reduce_gradients(*c, params, bucket_bytes);
  };
  h.reduce_scalars = [c](std::map<std::string, double>& sum, std::map<std::string, double>& mean) {
    reduce_maps(*c, {&sum, &mean}, {false, true}, "keel::dist::learner_hooks (step scalars)");
  };
  return h;
}

std::vector<int64_t> dp_single_process_order(int64_t rows_per_rank, int64_t mini_per_rank, int world) {
  TORCH_CHECK(world >= 1 && mini_per_rank >= 1 && rows_per_rank >= 0 && rows_per_rank % mini_per_rank == 0,
              "keel::dist::dp_single_process_order: rows_per_rank ", rows_per_rank,
              " must be a multiple of mini_per_rank ", mini_per_rank, " (world ", world, ")");
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(rows_per_rank * world));
  for (int64_t k = 0; k < rows_per_rank / mini_per_rank; ++k)
    for (int r = 0; r < world; ++r)
      for (int64_t j = 0; j < mini_per_rank; ++j) order.push_back(r * rows_per_rank + k * mini_per_rank + j);
  return order;
}

}  // namespace keel::dist
