// The backend-independent parts of communicator.h: options from the run config and the
// one-member communicator used when the job has a single process (no store, no sockets).
#include "trainer/dist/communicator.h"

#include "trainer/config/config.h"

namespace keel::dist {

namespace {

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
    return std::make_unique<Done>();
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
  struct Done final : CommWork {
    void wait() override {}
  };
  static void check_rank(int r) { TORCH_CHECK(r == 0, "keel::dist: rank ", r, " does not exist in a 1-rank job"); }
  std::vector<int> ranks_{0};
};

}  // namespace

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
