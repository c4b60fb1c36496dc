// Weight-sync benchmark: bucketed broadcast_parameters() of a ~110M-parameter Llama-shaped
// parameter list (hidden 768, 12 layers, MLP 2048, vocab 32000, tied embeddings) from rank 0 to
// the other ranks, against a raw broadcast of one tensor of the same byte size measured in the
// same run. Reports seconds, GB/s and the throughput ratio bucketed / raw (raw time / bucketed
// time) for several bucket sizes: medians over --reps interleaved repetitions, and the best of
// them (less disturbed by other load on a shared machine).
//
//   weight_sync_bench [--nproc 2] [--reps 5] [--buckets 4,16,64,256] [--dtype float32|bfloat16]
//                     [--layers 12] [--backend gloo] [--in-flight 4]
//                     [--fresh-buffers 0|1] [--direct-min-mb 1 (-1: pack everything)]
//                     [--layout arena|separate] [--merge 1|0]
// --layout arena (default) keeps the parameters the way keel's CPU models do (one arena in list
// order, models::pack_on_huge_pages); separate allocates each on its own. --merge 0 broadcasts
// adjacent parameters one by one anyway (WeightSyncOptions::merge_adjacent).
// Started without RANK it launches itself with --nproc ranks through run_launch (keel launch);
// with RANK set (torchrun, keel launch) it is one rank.
// Not a test: it asserts nothing beyond the receivers' parameters equalling the source's.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "models/fused_cpu.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/launch.h"
#include "trainer/dist/weight_sync.h"

namespace {

using keel::dist::Communicator;

struct Args {
  int nproc = 2;
  int reps = 5;
  std::vector<double> buckets{4, 16, 64, 256};
  std::string dtype = "float32";
  int layers = 12;
  std::string backend = "gloo";
  int in_flight = keel::dist::WeightSyncOptions{}.max_in_flight;
  double direct_min_mb = 1;             // WeightSyncOptions::direct_min_mb; -1 = pack everything
  bool fresh_buffers = false;           // allocate staging buffers on every call (no reuse)
  std::string layout = "arena";         // arena | separate
  bool merge = true;                    // WeightSyncOptions::merge_adjacent
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--nproc") a.nproc = std::stoi(v);
    else if (k == "--reps") a.reps = std::stoi(v);
    else if (k == "--dtype") a.dtype = v;
    else if (k == "--layers") a.layers = std::stoi(v);
    else if (k == "--backend") a.backend = v;
    else if (k == "--in-flight") a.in_flight = std::stoi(v);
    else if (k == "--direct-min-mb") a.direct_min_mb = std::stod(v);
    else if (k == "--fresh-buffers") a.fresh_buffers = v == "1";
    else if (k == "--layout") a.layout = v;
    else if (k == "--merge") a.merge = v == "1";
    else if (k == "--buckets") {
      a.buckets.clear();
      size_t s = 0;
      while (s <= v.size()) {
        const size_t c = v.find(',', s);
        a.buckets.push_back(std::stod(v.substr(s, c - s)));
        if (c == std::string::npos) break;
        s = c + 1;
      }
    } else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  return a;
}

// Llama-shaped parameters in HF order: embed [V, H]; per layer q,k,v,o [H, H], gate/up [I, H],
// down [H, I], two RMSNorm weights [H]; final norm [H]; lm_head tied to embed.
std::vector<at::Tensor> llama_params(int layers, at::ScalarType dtype, bool fill) {
  const int64_t h = 768, inter = 2048, vocab = 32000;
  std::vector<std::vector<int64_t>> shapes{{vocab, h}};
  for (int l = 0; l < layers; ++l) {
    for (int k = 0; k < 4; ++k) shapes.push_back({h, h});
    shapes.push_back({inter, h});
    shapes.push_back({inter, h});
    shapes.push_back({h, inter});
    shapes.push_back({h});
    shapes.push_back({h});
  }
  shapes.push_back({h});
  std::vector<at::Tensor> out;
  for (const auto& s : shapes) out.push_back(fill ? at::randn(s, at::kFloat).to(dtype) : at::zeros(s, dtype));
  return out;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int run_rank(const Args& a) {
  torch::set_num_threads(1);
  auto comm = keel::dist::init_communicator(keel::dist::read_rendezvous_env(keel::dist::process_env()),
                                            keel::dist::CommOptions{.backend = a.backend, .timeout_s = 600});
  const bool root = comm->rank() == 0;
  const auto dtype = a.dtype == "bfloat16" ? at::kBFloat16 : at::kFloat;
  at::manual_seed(1);
  auto params = llama_params(a.layers, dtype, root);
  if (a.layout == "arena" && !keel::models::pack_on_huge_pages(params, 0)) {
    std::fprintf(stderr, "weight_sync_bench: could not pack the parameters into one arena\n");
    return 2;
  }
  int64_t numel = 0, bytes = 0;
  for (const auto& p : params) numel += p.numel(), bytes += p.numel() * p.element_size();
  auto flat = root ? at::randn({bytes / 4}, at::kFloat) : at::zeros({bytes / 4}, at::kFloat);  // same bytes
  if (root)
    std::printf("weight_sync_bench: %zu tensors, %.1fM parameters, %s, %.1f MB, %d ranks, backend %s, %d reps, "
                "in_flight %d, direct_min_mb %g, fresh_buffers %d, layout %s, merge %d\n",
                params.size(), numel / 1e6, a.dtype.c_str(), bytes / 1e6, comm->size(), comm->backend().c_str(), a.reps,
                a.in_flight, a.direct_min_mb, a.fresh_buffers ? 1 : 0, a.layout.c_str(), a.merge ? 1 : 0);

  // Warm-up: connections, first-touch of the buffers.
  comm->broadcast(flat, 0);
  keel::dist::broadcast_parameters(*comm, params, 0, {.bucket_mb = 64});

  const auto timed = [&](auto&& fn) {
    comm->barrier();
    const double t0 = now_s();
    fn();
    comm->barrier();
    return now_s() - t0;
  };
  for (double mb : a.buckets) {
    std::vector<double> raw, sync;
    int64_t buckets = 0, staged = 0;
    double copy_s = 0, wait_s = 0;
    keel::dist::WeightSyncBuffers buffers;  // kept across reps, as a trainer keeps it across steps
    for (int rep = 0; rep < a.reps; ++rep) {
      // Interleaved so that background load on the machine hits both alike.
      raw.push_back(timed([&] { comm->broadcast(flat, 0); }));
      sync.push_back(timed([&] {
        const keel::dist::WeightSyncOptions opt{
            .bucket_mb = mb, .max_in_flight = a.in_flight, .direct_min_mb = a.direct_min_mb, .merge_adjacent = a.merge};
        const auto st = keel::dist::broadcast_parameters(*comm, params, 0, opt, a.fresh_buffers ? nullptr : &buffers);
        buckets = st.buckets;
        staged = st.staged_buckets;
        copy_s = st.copy_seconds;
        wait_s = st.wait_seconds;
      }));
    }
    const double r = median(raw), s = median(sync);
    const double best_raw = *std::min_element(raw.begin(), raw.end());
    const double best_sync = *std::min_element(sync.begin(), sync.end());
    if (root)
      std::printf("bucket_mb=%-6g buckets=%-4lld staged=%-3lld raw %.3f s %.2f GB/s | bucketed %.3f s %.2f GB/s | "
                  "ratio %.3f (best of %d: raw %.3f s, bucketed %.3f s, ratio %.3f; last call on rank 0: copy %.3f s, "
                  "wait %.3f s)\n",
                  mb, static_cast<long long>(buckets), static_cast<long long>(staged), r, bytes / r / 1e9, s,
                  bytes / s / 1e9, r / s, a.reps, best_raw, best_sync, best_raw / best_sync, copy_s, wait_s);
    std::fflush(stdout);
  }
  // The receivers must hold the source's values bit for bit.
  at::manual_seed(1);
  const auto reference = llama_params(a.layers, dtype, true);
  bool same = true;
  for (size_t i = 0; i < params.size(); ++i) same = same && at::equal(params[i], reference[i]);
  auto ok = at::full({1}, same ? 1.0 : 0.0);
  comm->all_reduce(ok, keel::dist::ReduceOp::kSum);
  if (root) std::printf("receivers equal the source: %s\n", ok.item<double>() == comm->size() ? "yes" : "NO");
  comm->barrier();
  return ok.item<double>() == comm->size() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  if (std::getenv("RANK") != nullptr) return run_rank(a);
  keel::dist::LaunchOptions o;
  o.nproc_per_node = a.nproc;
  o.master_port = 29000 + static_cast<int>(::getpid() % 1000);
  o.log_dir = "/tmp/keel_weight_sync_bench_logs";
  o.command.push_back("/proc/self/exe");
  for (int i = 1; i < argc; ++i) o.command.push_back(argv[i]);
  return keel::dist::run_launch(o);
}
