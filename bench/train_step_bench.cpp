// Training-step benchmark: forward + backward + AdamW step of a ~25M-parameter Llama-layout
// keel::models::Transformer on next-token cross-entropy, seq 256, batch 8, fp32 on CPU. Its
// Python/PyTorch-eager twin is bench/py/train_step.py (same architecture, same libtorch);
// scripts/bench_models.sh runs both and compares them.
//
// Model (default): vocab 8192, hidden 512, 6 layers, 8 query heads / 4 key-value heads
// (head_dim 64), intermediate 1376, untied embeddings, RMSNorm eps 1e-5, rope theta 10000.
// Optimizer: keel's learner::FusedAdamW (what keel's learners build: torch's AdamW with a one-pass
// CPU update), lr 1e-4, betas (0.9, 0.95), eps 1e-8, weight decay 0.1; zero_grad before each step
// (as keel's learner does). No grad clipping.
//
// FLOP estimate per step (what "achieved GFLOP/s" divides): 6 * N_mm * tokens for the weight
// matmuls (N_mm = parameters used in matmuls = all but the input embedding, which is a gather),
// plus attention 12 * layers * B * T^2 * Hq * D (QK^T and PV, forward + 2x backward, over the full
// T x T square, which is what an eager implementation computes). Norms, softmax, RoPE, the loss
// and AdamW are left out, so the figure slightly understates the work done.
// The matmul peak is the best of several 2048^3 fp32 sgemms (torch::matmul) at the same thread count.
//
// --init-dir DIR writes the initial weights (HF names) and the token batch to DIR/init.safetensors
// so that bench/py/train_step.py can start from identical weights and data: the step-0 loss of
// both must then agree (a check that the two really are the same architecture).
//
//   train_step_bench [--threads 2] [--warmup 2] [--steps 5] [--batch 8] [--seq 256] [--layers 6]
//                    [--init-dir DIR] [--peak-n 2048] [--profile trace.json] [--lockstep 1]
// --lockstep 1: each step waits for a line on stdin (bench/py/lockstep.py alternates the steps of
// this bench and its Python twin, so that both see the same machine load).
// Prints "RESULT key value" lines (parsed by scripts/bench_models.sh) and a readable summary.
// Not a test: it asserts nothing.
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "base/startup_env.h"
#include "bench/bench_args.h"
#include "bench/bench_model.h"
#include "models/model_config.h"
#include "models/safetensors.h"
#include "models/fused_cpu.h"
#include "models/transformer.h"
#include "trainer/learner/fused_adamw.h"

namespace {

using keel::models::ModelConfig;
using keel::models::Transformer;

struct Args {
  int threads = 2;
  int warmup = 2;
  int steps = 5;
  int64_t batch = 8;
  int64_t seq = 256;
  int64_t layers = 6;
  int peak_n = 2048;
  std::string init_dir;
  std::string profile;
  bool lockstep = false;
};

Args parse(int argc, char** argv) {
  Args a;
  keel::bench::for_each_option(argc, argv, [&](const std::string& k, const std::string& v) {
    if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--warmup") a.warmup = std::stoi(v);
    else if (k == "--steps") a.steps = std::stoi(v);
    else if (k == "--batch") a.batch = std::stoll(v);
    else if (k == "--seq") a.seq = std::stoll(v);
    else if (k == "--layers") a.layers = std::stoll(v);
    else if (k == "--peak-n") a.peak_n = std::stoi(v);
    else if (k == "--init-dir") a.init_dir = v;
    else if (k == "--profile") a.profile = v;
    else if (k == "--lockstep") a.lockstep = v == "1";
    else return false;
    return true;
  });
  return a;
}


double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Best GFLOP/s of `reps` n x n x n fp32 matmuls.
double matmul_peak_gflops(int n, int reps) {
  torch::NoGradGuard g;
  auto x = torch::randn({n, n});
  auto y = torch::randn({n, n});
  auto z = torch::matmul(x, y);  // warm-up
  double best = 0;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    z = torch::matmul(x, y);
    best = std::max(best, 2.0 * n * n * static_cast<double>(n) / seconds_since(t0) / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  keel::startup::use_fast_library_settings(argv);  // as keel's own main() does
  const Args a = parse(argc, argv);
  at::set_num_threads(a.threads);
  const ModelConfig cfg = keel::bench::llama_bench_config(512, a.layers, 8192);

  torch::manual_seed(0);
  Transformer model(cfg);
  model.train(true);
  torch::manual_seed(1);
  const auto data = torch::randint(0, cfg.vocab_size, {a.batch, a.seq + 1}, torch::kLong);  // [B, T + 1]
  const auto input = data.narrow(1, 0, a.seq).contiguous();                                // [B, T]
  const auto target = data.narrow(1, 1, a.seq).contiguous();                               // [B, T]
  if (!a.init_dir.empty()) {
    auto tensors = model.state_dict();
    for (auto& [name, t] : tensors) t = t.detach().clone();
    tensors["bench.tokens"] = data.to(torch::kFloat);  // ids < 2^24 are exact in fp32
    keel::models::save_safetensors(a.init_dir + "/init.safetensors", tensors);
  }

  int64_t n_params = 0, n_embed = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    n_params += p.numel();
    if (name == "model.embed_tokens.weight") n_embed = p.numel();
  }
  const double tokens = static_cast<double>(a.batch * a.seq);
  const double flops_mm = 6.0 * static_cast<double>(n_params - n_embed) * tokens;
  const double flops_attn = 12.0 * cfg.num_hidden_layers * a.batch * static_cast<double>(a.seq * a.seq) *
                            cfg.num_attention_heads * cfg.head_dim;
  const double flops = flops_mm + flops_attn;

  keel::learner::FusedAdamW opt(model.parameters(),
                          torch::optim::AdamWOptions(1e-4).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.1));
  std::vector<double> times, losses;
  for (int step = 0; step < a.warmup + a.steps; ++step) {
    // --profile FILE: a chrome://tracing trace of the last step's ATen ops (timed like the others).
    if (a.lockstep) {  // bench/py/lockstep.py: one line on stdin starts each step
      std::string go;
      if (!std::getline(std::cin, go)) break;
    }
    std::optional<torch::autograd::profiler::RecordProfile> prof;
    if (!a.profile.empty() && step + 1 == a.warmup + a.steps) prof.emplace(a.profile);
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    auto logits = model.forward(input);  // [B, T, V]
    // Next-token cross-entropy as keel's learners compute it (token log-probs, models/fused_cpu.h);
    // the Python twin uses F.cross_entropy, the same value.
    auto loss = -keel::models::token_logprobs(logits.view({-1, cfg.vocab_size}), target.view({-1}), 1.0).mean();
    loss.backward();
    opt.step();
    const double l = loss.item<double>();
    const double s = seconds_since(t0);
    losses.push_back(l);
    if (step >= a.warmup) times.push_back(s);
    std::printf("  keel step %d: loss %.6f, %.1f ms%s\n", step, l, s * 1e3, step < a.warmup ? " (warm-up)" : "");
    std::fflush(stdout);
  }
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  const double peak = matmul_peak_gflops(a.peak_n, 5);
  const double achieved = flops / median / 1e9;

  std::printf("train_step_bench (keel): llama layout, vocab %lld, hidden %lld, %lld layers, %lld/%lld heads "
              "(head_dim %lld), intermediate %lld, untied; %lld parameters (%.2fM, %.2fM in matmuls); batch %lld x seq "
              "%lld; threads %d\n",
              (long long)cfg.vocab_size, (long long)cfg.hidden_size, (long long)cfg.num_hidden_layers,
              (long long)cfg.num_attention_heads, (long long)cfg.num_key_value_heads, (long long)cfg.head_dim,
              (long long)cfg.intermediate_size, (long long)n_params, n_params / 1e6, (n_params - n_embed) / 1e6,
              (long long)a.batch, (long long)a.seq, at::get_num_threads());
  std::printf("  median %.1f ms/step (min %.1f) over %d timed steps; %.1f GFLOP/step (%.1f matmul + %.1f attention); "
              "%.1f GFLOP/s = %.1f%% of the measured %d^3 sgemm peak %.1f GFLOP/s\n",
              median * 1e3, sorted.front() * 1e3, a.steps, flops / 1e9, flops_mm / 1e9, flops_attn / 1e9, achieved,
              100.0 * achieved / peak, a.peak_n, peak);
  const std::string set = keel::startup::library_env_note();
  std::printf("  BLAS: OpenBLAS %s kernels; OMP_WAIT_POLICY %s%s%s\n", keel::startup::openblas_core().c_str(),
              std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "(unset)",
              set.empty() ? "" : "; keel set ", set.c_str());
  std::printf("RESULT train/params %lld\n", (long long)n_params);
  std::printf("RESULT train/ms_per_step %.3f\n", median * 1e3);
  std::printf("RESULT train/gflop_per_step %.3f\n", flops / 1e9);
  std::printf("RESULT train/gflops %.3f\n", achieved);
  std::printf("RESULT train/peak_gflops %.3f\n", peak);
  std::printf("RESULT train/loss0 %.6f\n", losses.front());
  std::printf("RESULT train/loss_last %.6f\n", losses.back());
  return 0;
}
