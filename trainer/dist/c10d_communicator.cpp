// The Communicator over LibTorch c10d: TCPStore rendezvous with a deadline and a missing-ranks
// report, ProcessGroupGloo (CPU) or ProcessGroupNCCL (CUDA builds only), sub-groups through
// PrefixStores of the one TCPStore. The only translation unit that includes c10d headers;
// 1.13 / 2.x differences go through KEEL_C10D_BACKEND (models/compat.h).
//
// Data that only needs to be copied (broadcast, all-gather, send/recv) travels as a byte view of
// the tensor, so every dtype (bool, bfloat16, ...) works on every backend.
#include "trainer/dist/communicator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include <fmt/ranges.h>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>
// ProcessGroupGloo.hpp needs gloo's own headers, which Debian's libtorch-dev has but pip wheels do
// not ship (the library is inside libtorch_cpu all the same): without them keel has no Gloo backend
// and says so when asked for one. -DKEEL_GLOO=OFF (KEEL_NO_GLOO) leaves it out where the gloo headers
// found do not belong to the LibTorch (Debian's gloo beside a pip LibTorch: scripts/build_libtorch2.sh).
#if defined(USE_C10D_GLOO) && !defined(KEEL_NO_GLOO) && __has_include(<gloo/algorithm.h>)
#define KEEL_WITH_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
// ProcessGroupNCCL.hpp is empty unless USE_C10D_NCCL is defined (the CUDA LibTorch's torch_cuda
// target defines it) and needs nccl.h (pip: the nvidia-nccl package's include/, which
// scripts/gpu_env.sh puts on the include path); otherwise keel builds without NCCL.
#if defined(KEEL_WITH_CUDA) && defined(USE_C10D_NCCL) && __has_include(<nccl.h>)
#define KEEL_WITH_NCCL 1
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "models/compat.h"
#include "base/error.h"

namespace keel::dist {

namespace {

using Clock = std::chrono::steady_clock;
using BackendPtr = c10::intrusive_ptr<KEEL_C10D_BACKEND>;
using StorePtr = c10::intrusive_ptr<c10d::Store>;
// Builds a process group of the communicator's backend on a (prefixed) store.
using BackendFactory = std::function<BackendPtr(const StorePtr& store, int rank, int size)>;

// Shape/dtype header of point-to-point and variable-size messages: [dtype, ndim, d0..d7] (int64).
constexpr int64_t kMaxDims = 8;
constexpr int64_t kHeaderLen = 2 + kMaxDims;
constexpr int kTagHeader = 0;
constexpr int kTagData = 1;

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

// A contiguous tensor's elements as a flat uint8 tensor sharing its storage.
at::Tensor byte_view(const at::Tensor& contiguous) {
  return contiguous.reshape({-1}).view(at::kByte);
}

// The inverse of byte_view: `bytes` [numel * itemsize] as `dtype` of `shape`.
at::Tensor from_bytes(const at::Tensor& bytes, at::ScalarType dtype, at::IntArrayRef shape) {
  if (bytes.numel() == 0) return at::empty(shape, bytes.options().dtype(dtype));
  return bytes.view(dtype).view(shape);
}

// [kHeaderLen] int64 on CPU describing `t`.
at::Tensor make_header(const at::Tensor& t) {
  TORCH_CHECK(t.dim() <= kMaxDims, "keel::dist: tensors of at most ", kMaxDims, " dims can be sent, got ", t.sizes());
  auto h = at::full({kHeaderLen}, -1, at::kLong);
  auto a = h.accessor<int64_t, 1>();
  a[0] = static_cast<int64_t>(t.scalar_type());
  a[1] = t.dim();
  for (int64_t d = 0; d < t.dim(); ++d) a[2 + d] = t.size(d);
  return h;
}

struct Described {
  at::ScalarType dtype;
  std::vector<int64_t> shape;
  int64_t numel = 1;
};

Described read_header(const at::Tensor& header) {
  const auto h = header.to(at::kCPU).contiguous();
  const auto a = h.accessor<int64_t, 1>();
  Described d;
  d.dtype = static_cast<at::ScalarType>(a[0]);
  TORCH_CHECK(a[1] >= 0 && a[1] <= kMaxDims, "keel::dist: corrupt tensor header (ndim ", a[1], ")");
  for (int64_t i = 0; i < a[1]; ++i) {
    d.shape.push_back(a[2 + i]);
    d.numel *= a[2 + i];
  }
  return d;
}

std::atomic<int64_t> g_progress{0};

// Heartbeats through the store. A rank that stops (SIGSTOP, a debugger) or hangs makes the others
// time out in their next collective, and they, not it, fail first: the failure must name it. Each
// rank's own store client sets keel/hb/<rank> = "<wall ms> <progress>" every second from a thread;
// a failed collective reads every rank's and names those silent for more than kSilentMs (stopped,
// dead, or cut off) and those whose progress (the training step, note_progress) is behind this
// rank's (stuck in a step while their thread still beats).
class Heartbeats {
 public:
  static constexpr int64_t kSilentMs = 3000;

  Heartbeats(const RendezvousInfo& info, std::chrono::milliseconds store_timeout) : rank_(info.rank), world_(info.world_size) {
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(info.master_port);
    o.isServer = false;
    o.numWorkers = c10::nullopt;
    o.waitWorkers = false;
    o.timeout = store_timeout;
    store_ = c10::make_intrusive<c10d::TCPStore>(info.master_addr, o);
    store_->setTimeout(std::chrono::milliseconds(2000));  // a report must not wait as long as a collective
    beat();
    thread_ = std::thread([this] { run(); });
  }
  ~Heartbeats() {
    {
      std::lock_guard<std::mutex> lk(wake_mu_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  /// "" or "; heartbeats: rank 1 silent for 31.2 s (stopped, hung or gone), ..." for this rank's error.
  std::string report() {
    std::vector<std::string> notes;
    try {
      const int64_t now = wall_ms(), mine = g_progress.load();
      std::lock_guard<std::mutex> lk(store_mu_);
      for (int r = 0; r < world_; ++r) {
        if (r == rank_) continue;
        const std::string key = fmt::format("keel/hb/{}", r);
        if (!store_->check({key})) continue;
        const auto v = store_->get(key);
        int64_t ms = 0, progress = 0;
        if (std::sscanf(std::string(v.begin(), v.end()).c_str(), "%lld %lld", reinterpret_cast<long long*>(&ms),
                        reinterpret_cast<long long*>(&progress)) != 2)
          continue;
        if (now - ms > kSilentMs)
          notes.push_back(fmt::format("rank {} silent for {:.1f} s (stopped, hung or gone; at step {})", r,
                                      static_cast<double>(now - ms) / 1000.0, progress));
        else if (progress < mine)
          notes.push_back(fmt::format("rank {} alive but at step {} (this rank: {}), stuck there", r, progress, mine));
      }
    } catch (const std::exception&) {
      notes.push_back("(the store is unreachable: rank 0, which hosts it, may be the one that stopped)");
    }
    if (notes.empty()) return "";
    return fmt::format("; heartbeats: {}", fmt::join(notes, "; "));
  }

 private:
  static int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  void beat() {
    const std::string v = fmt::format("{} {}", wall_ms(), g_progress.load());
    std::lock_guard<std::mutex> lk(store_mu_);
    store_->set(fmt::format("keel/hb/{}", rank_), std::vector<uint8_t>(v.begin(), v.end()));
  }
  void run() {
    std::unique_lock<std::mutex> lk(wake_mu_);
    while (!wake_.wait_for(lk, std::chrono::seconds(1), [this] { return stop_; })) {
      lk.unlock();
      try {
        beat();
      } catch (const std::exception&) {  // rank 0 gone (job ending): the next beat tries again
      }
      lk.lock();
    }
  }

  int rank_, world_;
  StorePtr store_;
  std::mutex store_mu_;  // one request at a time on the client's socket
  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

std::mutex g_heartbeats_mu;
Heartbeats* g_heartbeats = nullptr;  // the world communicator's, while it lives

std::string heartbeat_report() {
  std::lock_guard<std::mutex> lk(g_heartbeats_mu);
  return g_heartbeats != nullptr ? g_heartbeats->report() : "";
}

// A c10d / Gloo failure (timeout, peer gone) rethrown with the operation and the rank, without
// c10's C++ backtrace, and what the heartbeats say of the other ranks.
template <typename Fn>
auto guarded(const char* op, int rank, int size, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const c10::Error& e) {
    throw std::runtime_error(fmt::format("keel::dist: {} failed on rank {} of {}: {}{}", op, rank, size,
                                         e.what_without_backtrace(), heartbeat_report()));
  } catch (const std::exception& e) {  // gloo::IoException (a peer died: connection closed / reset)
    throw std::runtime_error(
        fmt::format("keel::dist: {} failed on rank {} of {}: {}{}", op, rank, size, e.what(), heartbeat_report()));
  }
}

class C10dWork final : public CommWork {
 public:
  C10dWork(c10::intrusive_ptr<c10d::Work> w, int rank, int size, const char* op)
      : w_(std::move(w)), rank_(rank), size_(size), op_(op) {}
  void wait() override {
    guarded(op_, rank_, size_, [&] { return w_->wait(); });
  }

 private:
  c10::intrusive_ptr<c10d::Work> w_;
  int rank_, size_;
  const char* op_;
};

class C10dCommunicator final : public Communicator {
 public:
  C10dCommunicator(StorePtr root_store, std::string prefix, BackendPtr pg, int rank, std::vector<int> global_ranks,
                   std::string backend, at::Device device, BackendFactory factory,
                   std::unique_ptr<Heartbeats> heartbeats = nullptr)
      : root_store_(std::move(root_store)), prefix_(std::move(prefix)), pg_(std::move(pg)), rank_(rank),
        global_ranks_(std::move(global_ranks)), backend_(std::move(backend)), device_(device),
        factory_(std::move(factory)), heartbeats_(std::move(heartbeats)) {
    if (heartbeats_) {
      std::lock_guard<std::mutex> lk(g_heartbeats_mu);
      g_heartbeats = heartbeats_.get();
    }
  }
  ~C10dCommunicator() override {
    if (heartbeats_) {
      std::lock_guard<std::mutex> lk(g_heartbeats_mu);
      if (g_heartbeats == heartbeats_.get()) g_heartbeats = nullptr;
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(global_ranks_.size()); }
  const std::vector<int>& global_ranks() const override { return global_ranks_; }
  std::string backend() const override { return backend_; }
  at::Device device() const override { return device_; }

  void all_reduce(at::Tensor& t, ReduceOp op) override {
    check_tensor(t, "all_reduce");
    TORCH_CHECK(op != ReduceOp::kMean || at::isFloatingType(t.scalar_type()),
                "keel::dist::all_reduce: mean needs a floating dtype, got ", t.scalar_type());
    // Gloo reduces in the element type; bfloat16 is not among its types in every version, so it is
    // reduced in float32 and rounded once at the end.
    const bool upcast = backend_ == "gloo" && t.scalar_type() == at::kBFloat16;
    at::Tensor work = upcast ? t.to(at::kFloat) : t.contiguous();
    std::vector<at::Tensor> v{work};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    guarded("all_reduce", rank_, size(), [&] { return pg_->allreduce(v, o)->wait(); });
    if (op == ReduceOp::kMean) work.div_(size());
    if (!work.is_same(t)) t.copy_(work);
  }

  void broadcast(at::Tensor& t, int root) override {
    check_tensor(t, "broadcast");
    check_rank(root, "broadcast root");
    if (t.numel() == 0) return;
    at::Tensor c = t.contiguous();
    std::vector<at::Tensor> v{byte_view(c)};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    guarded("broadcast", rank_, size(), [&] { return pg_->broadcast(v, o)->wait(); });
    if (!c.is_same(t)) t.copy_(c);
  }

  std::unique_ptr<CommWork> broadcast_async(at::Tensor& t, int root) override {
    check_tensor(t, "broadcast_async");
    check_rank(root, "broadcast_async root");
    TORCH_CHECK(t.is_contiguous(), "keel::dist::broadcast_async: the tensor must be contiguous, got strides ",
                t.strides());
    std::vector<at::Tensor> v{byte_view(t)};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    auto w = guarded("broadcast_async", rank_, size(), [&] { return pg_->broadcast(v, o); });
    return std::make_unique<C10dWork>(std::move(w), rank_, size(), "broadcast_async");
  }

  std::vector<at::Tensor> all_gather(const at::Tensor& t) override {
    check_tensor(t, "all_gather");
    const at::Tensor c = t.contiguous();
    std::vector<at::Tensor> out;
    if (t.numel() == 0) {
      for (int i = 0; i < size(); ++i) out.push_back(at::empty_like(c));
      return out;
    }
    const at::Tensor bytes = byte_view(c);
    std::vector<std::vector<at::Tensor>> outputs(1);
    for (int i = 0; i < size(); ++i) outputs[0].push_back(at::empty_like(bytes));
    std::vector<at::Tensor> inputs{bytes};
    guarded("all_gather", rank_, size(), [&] { return pg_->allgather(outputs, inputs)->wait(); });
    for (auto& o : outputs[0]) out.push_back(from_bytes(o, t.scalar_type(), t.sizes()));
    return out;
  }

  std::unique_ptr<CommWork> all_gather_into_async(const at::Tensor& t, at::Tensor& out) override {
    check_tensor(t, "all_gather_into_async");
    check_tensor(out, "all_gather_into_async");
    const int64_t n = t.numel();
    TORCH_CHECK(t.is_contiguous() && out.is_contiguous() && out.numel() == n * size() &&
                    out.scalar_type() == t.scalar_type(),
                "keel::dist::all_gather_into_async: a contiguous [n] input and a contiguous [", size(),
                " * n] output of its dtype, got ", t.sizes(), " and ", out.sizes(), " ", out.scalar_type());
    // The list form (Gloo has no _allgather_base in every version): views of `out` as the outputs.
    std::vector<std::vector<at::Tensor>> outputs(1);
    const auto flat = out.view({-1});
    for (int i = 0; i < size(); ++i) outputs[0].push_back(byte_view(flat.narrow(0, i * n, n)));
    std::vector<at::Tensor> inputs{byte_view(t)};
    auto w = guarded("all_gather_into_async", rank_, size(), [&] { return pg_->allgather(outputs, inputs); });
    return std::make_unique<C10dWork>(std::move(w), rank_, size(), "all_gather_into_async");
  }

  at::Tensor reduce_scatter(at::Tensor& t) override {
    check_tensor(t, "reduce_scatter");
    // Gloo (LibTorch 1.13) has no reduce-scatter: the base class's all-reduce of `t`.
    if (backend_ != "nccl") return Communicator::reduce_scatter(t);
    TORCH_CHECK(t.dim() == 1 && t.numel() % size() == 0, "keel::dist::reduce_scatter: the input must be [",
                size(), " * n], got ", t.sizes());
    const int64_t n = t.numel() / size();
    at::Tensor in = t.contiguous();
    at::Tensor out = at::empty({n}, in.options());
    c10d::ReduceScatterOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    guarded("reduce_scatter", rank_, size(), [&] { return pg_->_reduce_scatter_base(out, in, o)->wait(); });
    return out;
  }

  std::vector<at::Tensor> all_gather_varsize(const at::Tensor& t) override {
    check_tensor(t, "all_gather_varsize");
    // 1) everyone's dtype and shape, 2) everyone's bytes padded to the largest, 3) cut and view.
    const auto headers = all_gather(make_header(t).to(device_));
    std::vector<Described> desc;
    int64_t max_bytes = 0;
    for (int i = 0; i < size(); ++i) {
      desc.push_back(read_header(headers[i]));
      TORCH_CHECK(desc[i].dtype == t.scalar_type(), "keel::dist::all_gather_varsize: rank ", i, " has dtype ",
                  desc[i].dtype, " but rank ", rank_, " has ", t.scalar_type());
      max_bytes = std::max<int64_t>(max_bytes, desc[i].numel * static_cast<int64_t>(t.element_size()));
    }
    std::vector<at::Tensor> out;
    if (max_bytes == 0) {
      for (const auto& d : desc) out.push_back(at::empty(d.shape, t.options()));
      return out;
    }
    auto padded = at::zeros({max_bytes}, t.options().dtype(at::kByte));
    if (t.numel() > 0) padded.narrow(0, 0, t.numel() * t.element_size()).copy_(byte_view(t.contiguous()));
    const auto gathered = all_gather(padded);
    for (int i = 0; i < size(); ++i) {
      const int64_t n = desc[i].numel * static_cast<int64_t>(t.element_size());
      out.push_back(from_bytes(gathered[i].narrow(0, 0, n), t.scalar_type(), desc[i].shape));
    }
    return out;
  }

  void send(const at::Tensor& t, int dst) override {
    check_tensor(t, "send");
    check_rank(dst, "send destination");
    TORCH_CHECK(dst != rank_, "keel::dist::send: rank ", rank_, " cannot send to itself");
    std::vector<at::Tensor> h{make_header(t).to(device_)};
    guarded("send (header)", rank_, size(), [&] { return pg_->send(h, dst, kTagHeader)->wait(); });
    if (t.numel() == 0) return;
    const at::Tensor c = t.contiguous();
    std::vector<at::Tensor> v{byte_view(c)};
    guarded("send", rank_, size(), [&] { return pg_->send(v, dst, kTagData)->wait(); });
  }

  at::Tensor recv(int src) override {
    check_rank(src, "recv source");
    TORCH_CHECK(src != rank_, "keel::dist::recv: rank ", rank_, " cannot receive from itself");
    std::vector<at::Tensor> h{at::empty({kHeaderLen}, at::TensorOptions().dtype(at::kLong).device(device_))};
    guarded("recv (header)", rank_, size(), [&] { return pg_->recv(h, src, kTagHeader)->wait(); });
    const Described d = read_header(h[0]);
    at::Tensor out = at::empty(d.shape, at::TensorOptions().dtype(d.dtype).device(device_));
    if (out.numel() == 0) return out;
    std::vector<at::Tensor> v{byte_view(out)};
    guarded("recv", rank_, size(), [&] { return pg_->recv(v, src, kTagData)->wait(); });
    return out;
  }

  void barrier() override {
    guarded("barrier", rank_, size(), [&] { return pg_->barrier()->wait(); });
  }

  std::unique_ptr<Communicator> new_group(const std::vector<int>& ranks) override {
    TORCH_CHECK(!ranks.empty(), "keel::dist::new_group: the rank list is empty");
    std::vector<int> sorted = ranks;
    std::sort(sorted.begin(), sorted.end());
    TORCH_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(),
                "keel::dist::new_group: repeated rank in ", c10::ArrayRef<int>(ranks));
    for (int r : ranks) check_rank(r, "new_group member");
    // Every member of this communicator counts new_group() calls, so the n-th call of all ranks
    // meets under the same store prefix; the rank list is part of it so that ranks calling with
    // different lists do not pair up silently (they time out naming the collective instead).
    std::string key = fmt::format("{}/g{}[{}]", prefix_, groups_made_++, fmt::join(ranks, ","));
    const auto it = std::find(ranks.begin(), ranks.end(), rank_);
    if (it == ranks.end()) return nullptr;
    const int sub_rank = static_cast<int>(it - ranks.begin());
    std::vector<int> global;
    for (int r : ranks) global.push_back(global_ranks_[r]);
    auto store = c10::make_intrusive<c10d::PrefixStore>(key, root_store_);
    BackendPtr pg = guarded("new_group", rank_, size(),
                            [&] { return factory_(store, sub_rank, static_cast<int>(ranks.size())); });
    return std::make_unique<C10dCommunicator>(root_store_, key, std::move(pg), sub_rank, std::move(global), backend_,
                                              device_, factory_);
  }

 private:
  void check_tensor(const at::Tensor& t, const char* op) const {
    TORCH_CHECK(t.defined(), "keel::dist::", op, ": undefined tensor");
    TORCH_CHECK(t.device() == device_, "keel::dist::", op, ": tensor on ", t.device(), " but the ", backend_,
                " communicator works on ", device_);
  }
  void check_rank(int r, const char* what) const {
    TORCH_CHECK(r >= 0 && r < size(), "keel::dist: ", what, " ", r, " is not a rank of this communicator (size ",
                size(), ")");
  }

  StorePtr root_store_;
  std::string prefix_;
  BackendPtr pg_;
  int rank_;
  std::vector<int> global_ranks_;
  std::string backend_;
  at::Device device_;
  BackendFactory factory_;
  int64_t groups_made_ = 0;
  std::unique_ptr<Heartbeats> heartbeats_;  ///< the world communicator's only
};

// Rank 0 hosts the TCPStore; the others connect, retrying until the deadline. The retry loop is
// ours: c10d's own connect loop gives up early when its back-off would cross the deadline (1.13
// stopped after 1 s of a 2 s timeout while rank 0 was still starting).
StorePtr connect_store(const RendezvousInfo& info, std::chrono::milliseconds timeout, double timeout_s) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<std::uint16_t>(info.master_port);
  o.isServer = info.rank == 0;
  o.numWorkers = c10::nullopt;
  o.waitWorkers = false;  // arrival is checked afterwards, with a list of who is missing
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    o.timeout = std::max(left, std::chrono::milliseconds(50));
    try {
      auto store = c10::make_intrusive<c10d::TCPStore>(info.master_addr, o);
      store->setTimeout(timeout);  // later gets / waits use the full timeout
      return store;
    } catch (const std::exception& e) {
      std::string why = e.what();
      if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) why = ce->what_without_backtrace();
      if (info.rank == 0)
        fail("rendezvous: rank 0 could not open the store on {}:{}: {}", info.master_addr, info.master_port, why);
      if (Clock::now() + std::chrono::milliseconds(50) >= deadline)
        fail("rendezvous at {}:{} timed out after {} s: rank 0 (which hosts the store) did not arrive; this is rank "
             "{} of {} (last error: {})",
             info.master_addr, info.master_port, timeout_s, info.rank, info.world_size, why);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

// Each rank sets keel/rdzv/<rank>; everyone waits for all keys until the deadline and otherwise
// reports which ranks are missing. Rank 0 hosts the store, so when it gives up it first publishes
// its report under keel/rdzv/failed and waits (at most kReportWait) until the other arrived ranks
// have read it: they fail with the same list instead of with a lost connection.
void wait_for_peers(c10d::Store& store, const RendezvousInfo& info, double timeout_s) {
  constexpr auto kReportWait = std::chrono::seconds(2);
  const std::string failed_key = "keel/rdzv/failed", ack_key = "keel/rdzv/failed_ack";
  const auto deadline = Clock::now() + to_ms(timeout_s);
  const auto key = [](int r) { return fmt::format("keel/rdzv/{}", r); };
  const auto as_bytes = [](const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); };
  const std::string ws = std::to_string(info.world_size);
  const std::string hint = fmt::format(
      "; this is rank {} (check that every rank was started with the same MASTER_ADDR, MASTER_PORT and "
      "WORLD_SIZE={})",
      info.rank, info.world_size);
  std::vector<std::string> keys;
  for (int r = 0; r < info.world_size; ++r) keys.push_back(key(r));
  try {
    store.set(key(info.rank), as_bytes(ws));
    auto pause = std::chrono::milliseconds(5);
    while (!store.check(keys)) {
      if (info.rank != 0 && store.check({failed_key})) {
        const auto report = store.get(failed_key);
        store.add(ack_key, 1);
        fail("{}{}", std::string(report.begin(), report.end()), hint);
      }
      if (Clock::now() >= deadline) {
        std::vector<int> missing;
        for (int r = 0; r < info.world_size; ++r)
          if (!store.check({key(r)})) missing.push_back(r);
        if (missing.empty()) break;  // they arrived just now
        constexpr size_t kShown = 32;
        const std::vector<int> shown(missing.begin(), missing.begin() + std::min(missing.size(), kShown));
        const std::string report = fmt::format(
            "rendezvous at {}:{} timed out after {} s: {} of {} ranks did not arrive: {} {}{}", info.master_addr,
            info.master_port, timeout_s, missing.size(), info.world_size, missing.size() == 1 ? "rank" : "ranks",
            fmt::join(shown, ", "),
            missing.size() > kShown ? fmt::format(" and {} more", missing.size() - kShown) : std::string());
        if (info.rank == 0) {
          store.set(failed_key, as_bytes(report));
          const int64_t arrived_others = info.world_size - 1 - static_cast<int64_t>(missing.size());
          const auto until = Clock::now() + kReportWait;
          while (store.add(ack_key, 0) < arrived_others && Clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        } else {
          store.add(ack_key, 1);  // rank 0 waits for every arrived rank to be done with the store
        }
        fail("{}{}", report, hint);
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(100));
    }
    const auto v0 = store.get(key(0));
    const std::string ws0(v0.begin(), v0.end());
    if (ws0 != ws)
      fail("rendezvous at {}:{}: rank 0 has WORLD_SIZE={} but rank {} has WORLD_SIZE={}", info.master_addr,
           info.master_port, ws0, info.rank, ws);
  } catch (const keel::Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string why = e.what();
    if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) why = ce->what_without_backtrace();
    fail("rendezvous at {}:{}: lost the store hosted by rank 0 (this is rank {}): {}", info.master_addr,
         info.master_port, info.rank, why);
  }
}

#if defined(KEEL_WITH_GLOO)
std::shared_ptr<::gloo::transport::Device> gloo_device(const RendezvousInfo& info) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname != '\0')
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  // All ranks on one machine: loopback always works, even where the hostname does not resolve.
  if (info.local_world_size == info.world_size) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}
#endif

}  // namespace

std::unique_ptr<Communicator> init_communicator(const RendezvousInfo& info, const CommOptions& opt) {
  if (opt.timeout_s <= 0) fail("dist.timeout_s must be > 0, got {}", opt.timeout_s);
  if (opt.backend != "auto" && opt.backend != "gloo" && opt.backend != "nccl")
    fail("dist.backend must be auto, gloo or nccl, got '{}'", opt.backend);
  // One rank needs no sockets, except that an explicit nccl backend still builds a real
  // ProcessGroupNCCL (of one member): on a one-GPU machine that is the only way to run the NCCL
  // path at all (the distributed issue's "NCCL built and run with world size 1").
  if (info.world_size == 1 && opt.backend != "nccl") return make_single_process_communicator();

  std::string backend = opt.backend;
  if (backend == "auto") backend = compat::nccl_available() ? "nccl" : "gloo";
  const auto timeout = to_ms(opt.timeout_s);

  BackendFactory factory;
  at::Device device = at::kCPU;
  if (backend == "gloo") {
#if !defined(KEEL_WITH_GLOO)
    fail("dist.backend is gloo but this keel was built without Gloo (LibTorch {} shipped no gloo headers); use "
         "dist.backend=nccl, or build against a LibTorch with them (Debian's libtorch-dev)",
         compat::torch_version());
#else
    auto dev = gloo_device(info);
    if (opt.gloo_threads < 1) fail("keel::dist::init_communicator: gloo_threads must be >= 1, got {}", opt.gloo_threads);
    const int threads = opt.gloo_threads;
    factory = [dev, timeout, threads](const StorePtr& store, int rank, int size) -> BackendPtr {
      auto o = c10d::ProcessGroupGloo::Options::create(timeout);
      o->devices.push_back(dev);
      o->threads = threads;
      return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, o);
    };
#endif
  } else {
#if defined(KEEL_WITH_NCCL)
    if (!compat::nccl_available()) fail("dist.backend is nccl but no CUDA device is usable on rank {}", info.rank);
    const int ndev = compat::cuda_device_count();
    const auto index = static_cast<c10::DeviceIndex>(info.local_rank % ndev);
    c10::cuda::set_device(index);
    device = at::Device(at::kCUDA, index);
    factory = [timeout](const StorePtr& store, int rank, int size) -> BackendPtr {
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = timeout;
      return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, o);
    };
#else
    fail("dist.backend is nccl but this keel was built without NCCL (LibTorch {}); use dist.backend=gloo",
         compat::torch_version());
#endif
  }

  StorePtr store = connect_store(info, timeout, opt.timeout_s);
  wait_for_peers(*store, info, opt.timeout_s);
  const std::string prefix = "keel/pg/world";
  auto pg_store = c10::make_intrusive<c10d::PrefixStore>(prefix, store);
  BackendPtr pg = guarded("process group setup", info.rank, info.world_size,
                          [&] { return factory(pg_store, info.rank, info.world_size); });
  std::vector<int> global(info.world_size);
  for (int r = 0; r < info.world_size; ++r) global[r] = r;
  std::unique_ptr<Heartbeats> heartbeats;
  try {
    heartbeats = std::make_unique<Heartbeats>(info, timeout);
  } catch (const std::exception& e) {  // diagnostics only: the job runs without them
    std::fprintf(stderr, "keel::dist: rank %d runs without heartbeats: %s\n", info.rank, e.what());
  }
  return std::make_unique<C10dCommunicator>(store, prefix, std::move(pg), info.rank, std::move(global), backend,
                                            device, std::move(factory), std::move(heartbeats));
}

void note_progress(int64_t step) { g_progress.store(step); }

}  // namespace keel::dist
