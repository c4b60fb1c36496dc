// Learner MFU benchmark (issue 20, item 5): training steps of a random-init model of a real shape
// (default: Qwen2.5-0.5B — hidden 896, 24 layers, 14 query / 2 key-value heads of 64, intermediate
// 4864, vocabulary 151936, tied embeddings) — forward, next-token cross-entropy over every
// position, backward and keel's AdamW step, as keel's learner runs them: bf16 autocast on CUDA
// (fp32 master weights), fp32 on CPU; optionally with LoRA adapters or activation checkpointing.
//
// FLOPs per step: 6 * N_matmul * tokens + 12 * layers * B * T^2 * Hq * D (attention over the full
// square, forward + 2x backward), N_matmul = every parameter used in a matmul (with tied embeddings
// the LM head's; the input embedding is a gather). With LoRA the weight gradients of the frozen
// base are not computed: 4 * N_base + 6 * N_adapters per token instead of 6 * N. MFU = achieved
// FLOP/s / --peak-tflops (default 989: H100 / H200 dense bf16, the figure NVIDIA states without
// sparsity). Not a test: it asserts nothing.
//
//   learner_mfu_bench [--device cuda] [--batch 8] [--seq 1024] [--steps 10] [--warmup 3]
//                     [--layers 24] [--hidden 896] [--heads 14] [--kv-heads 2] [--intermediate 4864]
//                     [--vocab 151936] [--lora-rank 0] [--checkpointing 0] [--peak-tflops 989] [--threads 2]
// Prints "RESULT key value" lines and a summary.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "base/startup_env.h"
#include "bench/bench_args.h"
#include "models/compat.h"
#include "models/lora.h"
#include "models/model_config.h"
#include "models/transformer.h"
#include "trainer/learner/fused_adamw.h"

namespace {

struct Args {
  std::string device = "cuda";
  int64_t batch = 8, seq = 1024;
  int steps = 10, warmup = 3;
  int64_t layers = 24, hidden = 896, heads = 14, kv_heads = 2, intermediate = 4864, vocab = 151936;
  int64_t lora_rank = 0;
  bool checkpointing = false;
  double peak_tflops = 989;
  int threads = 2;
};

Args parse(int argc, char** argv) {
  Args a;
  keel::bench::for_each_option(argc, argv, [&](const std::string& k, const std::string& v) {
    if (k == "--device") a.device = v;
    else if (k == "--batch") a.batch = std::stoll(v);
    else if (k == "--seq") a.seq = std::stoll(v);
    else if (k == "--steps") a.steps = std::stoi(v);
    else if (k == "--warmup") a.warmup = std::stoi(v);
    else if (k == "--layers") a.layers = std::stoll(v);
    else if (k == "--hidden") a.hidden = std::stoll(v);
    else if (k == "--heads") a.heads = std::stoll(v);
    else if (k == "--kv-heads") a.kv_heads = std::stoll(v);
    else if (k == "--intermediate") a.intermediate = std::stoll(v);
    else if (k == "--vocab") a.vocab = std::stoll(v);
    else if (k == "--lora-rank") a.lora_rank = std::stoll(v);
    else if (k == "--checkpointing") a.checkpointing = v == "1";
    else if (k == "--peak-tflops") a.peak_tflops = std::stod(v);
    else if (k == "--threads") a.threads = std::stoi(v);
    else return false;
    return true;
  });
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  keel::startup::use_fast_library_settings(argv);  // as keel's own main() does
  const Args a = parse(argc, argv);
  at::set_num_threads(a.threads);
  const bool cuda = a.device == "cuda";
  if (cuda && !keel::compat::cuda_available()) {
    std::printf("RESULT skipped 1\nno usable CUDA device (LibTorch %s): nothing measured\n",
                keel::compat::torch_version());
    return 0;
  }
  keel::models::ModelConfig c;
  c.model_type = "qwen2";
  c.hidden_size = a.hidden;
  c.num_hidden_layers = a.layers;
  c.num_attention_heads = a.heads;
  c.num_key_value_heads = a.kv_heads;
  c.head_dim = a.hidden / a.heads;
  c.intermediate_size = a.intermediate;
  c.vocab_size = a.vocab;
  c.max_position_embeddings = std::max<int64_t>(a.seq, 32768);
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 1e6;
  c.tie_word_embeddings = true;
  c.attention_bias = true;
  torch::manual_seed(1);
  keel::models::Transformer model(c);
  const at::Device dev = cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  model.to(dev);
  if (cuda) model.set_autocast(at::kBFloat16);
  model.set_gradient_checkpointing(a.checkpointing);
  if (a.lora_rank > 0) {
    keel::models::LoraOptions o;
    o.rank = a.lora_rank;
    o.alpha = 2.0 * static_cast<double>(a.lora_rank);
    model.add_lora(o, 1);
  }
  model.train(true);
  // Parameter counts: matmul weights (with tied embeddings the LM head's), adapters.
  double n_all = 0, n_adapters = 0, n_base_matmul = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    const double n = static_cast<double>(p.numel());
    n_all += n;
    if (name.find(".lora_") != std::string::npos) n_adapters += n;
    else if (p.dim() == 2 && (name != "model.embed_tokens.weight" || c.tie_word_embeddings)) n_base_matmul += n;
  }
  keel::learner::FusedAdamW opt(model.parameters(), torch::optim::AdamWOptions(1e-5).weight_decay(0.0));
  const auto ids = torch::randint(0, a.vocab, {a.batch, a.seq + 1}, torch::TensorOptions().dtype(torch::kLong).device(dev));
  const auto step = [&]() {
    opt.zero_grad();
    const auto logits = model.forward(ids.narrow(1, 0, a.seq));  // [B, T, V] in bf16 under autocast
    const auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, a.vocab}).to(torch::kFloat),
                                                           ids.narrow(1, 1, a.seq).reshape({-1}));
    loss.backward();
    opt.step();
    return model.parameters().front().sum().item<double>() + loss.item<double>();  // waits for the GPU
  };
  for (int i = 0; i < a.warmup; ++i) step();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < a.steps; ++i) step();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / a.steps;
  const double tokens = static_cast<double>(a.batch * a.seq);
  const double matmul_flops = a.lora_rank > 0 ? (4 * n_base_matmul + 6 * n_adapters) * tokens : 6 * n_base_matmul * tokens;
  const double attn_flops = 12.0 * static_cast<double>(a.layers * a.batch) * static_cast<double>(a.seq * a.seq) *
                            static_cast<double>(a.heads * c.head_dim);
  const double tflops = (matmul_flops + attn_flops) / s / 1e12;
  std::printf("device %s, LibTorch %s; %.1fM parameters (%.2fM adapters), batch %lld x seq %lld, checkpointing %d\n",
              cuda ? "cuda (bf16 autocast)" : "cpu (fp32)", keel::compat::torch_version(), n_all / 1e6,
              n_adapters / 1e6, static_cast<long long>(a.batch), static_cast<long long>(a.seq), a.checkpointing ? 1 : 0);
  std::printf("RESULT step_s %.4f\nRESULT tokens_per_s %.1f\nRESULT tflops %.2f\nRESULT mfu %.4f\n", s, tokens / s, tflops,
              tflops / a.peak_tflops);
  return 0;
}
