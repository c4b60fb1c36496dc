// The backend-independent parts of communicator.h: options from the run config and the
// one-member communicator used when the job has a single process (no store, no sockets).
#include "trainer/dist/communicator.h"

#include "trainer/config/config.h"

namespace keel::dist {

namespace {
struct DoneWork final : CommWork {
  void wait() override {}
};

class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const std::vector<int>& global_ranks() const override { return ranks_; }
  std::string backend() const override { return "none"; }
  at::Device device() const override { return at::kCPU; }

  void all_reduce(at::Tensor& t, ReduceOp op) override {
    TORCH_CHECK(op != ReduceOp::kMean || at::isFloatingType(t.scalar_type()),
                "keel::dist::all_reduce: mean needs a floating dtype, got ", t.scalar_type());
  }
  void broadcast(at::Tensor& t, int root) override { check_rank(root); }
  std::unique_ptr<CommWork> broadcast_async(at::Tensor& t, int root) override {
    check_rank(root);
    return std::make_unique<DoneWork>();
  }
  std::vector<at::Tensor> all_gather(const at::Tensor& t) override { return {t.clone()}; }
  std::vector<at::Tensor> all_gather_varsize(const at::Tensor& t) override { return {t.clone()}; }
  void send(const at::Tensor& t, int dst) override {
    TORCH_CHECK(false, "keel::dist::send: a single-process job has no rank ", dst, " to send to");
  }
  at::Tensor recv(int src) override {
    TORCH_CHECK(false, "keel::dist::recv: a single-process job has no rank ", src, " to receive from");
  }
  void barrier() override {}
  std::unique_ptr<Communicator> new_group(const std::vector<int>& ranks) override {
    TORCH_CHECK(ranks.size() == 1 && ranks[0] == 0, "keel::dist::new_group: a single-process job has only rank 0");
    return std::make_unique<SingleProcessCommunicator>();
  }

 private:
  static void check_rank(int r) { TORCH_CHECK(r == 0, "keel::dist: rank ", r, " does not exist in a 1-rank job"); }
  std::vector<int> ranks_{0};
};

}  // namespace

std::unique_ptr<CommWork> Communicator::all_gather_into_async(const at::Tensor& t, at::Tensor& out) {
  const int64_t n = t.numel();
  TORCH_CHECK(out.is_contiguous() && out.numel() == n * size() && out.scalar_type() == t.scalar_type(),
              "keel::dist::all_gather_into_async: out must be a contiguous [", size(), " * ", n, "] ", t.scalar_type(),
              " tensor, got ", out.sizes(), " ", out.scalar_type());
  const auto parts = all_gather(t.reshape({-1}));
  for (int i = 0; i < size(); ++i) out.narrow(0, i * n, n).copy_(parts[static_cast<size_t>(i)]);
  return std::make_unique<DoneWork>();
}

at::Tensor Communicator::reduce_scatter(at::Tensor& t) {
  TORCH_CHECK(t.dim() == 1 && t.numel() % size() == 0, "keel::dist::reduce_scatter: the input must be [",
              size(), " * n], got ", t.sizes());
  all_reduce(t, ReduceOp::kSum);
  const int64_t n = t.numel() / size();
  return t.narrow(0, rank() * n, n).clone();
}

CommOptions comm_options(const config::DistSection& dist) {
  CommOptions o;
  o.backend = dist.backend;
  o.timeout_s = dist.timeout_s;
  return o;
}

std::unique_ptr<Communicator> make_single_process_communicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

}  // namespace keel::dist
