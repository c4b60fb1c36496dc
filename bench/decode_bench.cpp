// Decode benchmark: tokens/s of greedy decoding with the KV cache (the real models::generate path)
// against full recomputation (one forward over the whole sequence per new token, no cache), on a
// random-init Llama-layout model, at batch 1 and batch 32, measured side by side in one process.
//
// Model (default): hidden 512, 8 layers, 8 query heads / 4 key-value heads (head_dim 64),
// intermediate 1376, vocab 8000, untied embeddings (~31.6M parameters), fp32, eval mode, no grad.
// Prompts: random ids, 16 tokens each (no padding); 256 new tokens; no EOS (every row runs all 256).
//
// Full recomputation at step k runs forward(prompt + first k generated tokens) and takes the
// argmax of the last position. It reuses the token sequence the cached run produced, so it
// decodes exactly the same sequence, and it reports how often its own argmax agrees with the
// cached run's token (a sanity check of the cache: fp32 rounding may flip near-ties).
// With --stride s > 1 only steps 0, s, 2s, ..., and the last step are run and timed; the total is
// the trapezoid integral of the measured per-step times over all steps (the per-step time is a
// smooth, convex function of the sequence length, so this is accurate to well under 1%). The
// output says when a figure is sampled this way.
//
//   decode_bench [--threads 2] [--batches 1,32] [--new 256] [--prompt 16] [--layers 8]
//                [--hidden 512] [--vocab 8000] [--stride-b1 8] [--stride 64] [--reps 1] [--profile trace.json]
// Prints one "RESULT key value" line per figure (scripts/bench_models.sh parses them) plus a
// readable summary. Not a test: it asserts nothing.
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <optional>
#include <vector>

#include "base/startup_env.h"
#include "bench/bench_args.h"
#include "bench/bench_model.h"
#include "models/generate.h"
#include "models/model_config.h"
#include "models/transformer.h"

namespace {

using keel::models::ModelConfig;
using keel::models::Transformer;

struct Args {
  int threads = 2;
  std::vector<int64_t> batches{1, 32};
  int64_t new_tokens = 256;
  int64_t prompt = 16;
  int64_t layers = 8;
  int64_t hidden = 512;
  int64_t vocab = 8000;
  int64_t stride_b1 = 8;  // recompute stride at batch 1 (1 = every step measured)
  int64_t stride = 64;    // recompute stride at larger batches
  int reps = 1;           // repetitions of the cached run (median reported)
  std::string profile;    // --profile FILE: chrome trace of the first batch's last cached run
};

std::vector<int64_t> parse_list(const std::string& v) {
  std::vector<int64_t> out;
  size_t s = 0;
  while (s <= v.size()) {
    const size_t c = v.find(',', s);
    out.push_back(std::stoll(v.substr(s, c - s)));
    if (c == std::string::npos) break;
    s = c + 1;
  }
  return out;
}

Args parse(int argc, char** argv) {
  Args a;
  keel::bench::for_each_option(argc, argv, [&](const std::string& k, const std::string& v) {
    if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--batches") a.batches = parse_list(v);
    else if (k == "--new") a.new_tokens = std::stoll(v);
    else if (k == "--prompt") a.prompt = std::stoll(v);
    else if (k == "--layers") a.layers = std::stoll(v);
    else if (k == "--hidden") a.hidden = std::stoll(v);
    else if (k == "--vocab") a.vocab = std::stoll(v);
    else if (k == "--stride-b1") a.stride_b1 = std::stoll(v);
    else if (k == "--stride") a.stride = std::stoll(v);
    else if (k == "--reps") a.reps = std::stoi(v);
    else if (k == "--profile") a.profile = v;
    else return false;
    return true;
  });
  return a;
}


double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct RecomputeResult {
  double seconds = 0;     // total (measured, or trapezoid-integrated when sampled)
  int64_t measured = 0;   // steps actually run
  int64_t agree = 0;      // measured steps whose argmax equals the cached run's token in every row
};

// Full recomputation: step k (0-based) forwards ids[:, :P + k] and takes the argmax at the last position.
RecomputeResult recompute(Transformer& model, const at::Tensor& prompt /*[B, P]*/, const at::Tensor& response /*[B, R]*/,
                          int64_t stride) {
  torch::NoGradGuard g;
  const int64_t r = response.size(1);
  auto ids = torch::cat({prompt, response}, 1);  // [B, P + R]
  std::vector<int64_t> steps;
  for (int64_t k = 0; k < r; k += stride) steps.push_back(k);
  if (steps.back() != r - 1) steps.push_back(r - 1);
  std::vector<double> times;
  RecomputeResult out;
  for (int64_t k : steps) {
    const auto t0 = std::chrono::steady_clock::now();
    auto logits = model.forward(ids.narrow(1, 0, prompt.size(1) + k));  // [B, P + k, V]
    auto tok = logits.select(1, -1).argmax(-1);                           // [B]
    const bool same = torch::equal(tok, response.select(1, k));          // syncs like generate() does
    times.push_back(seconds_since(t0));
    out.agree += same ? 1 : 0;
  }
  out.measured = static_cast<int64_t>(steps.size());
  if (stride == 1) {
    for (double t : times) out.seconds += t;
  } else {
    // Trapezoid over the step index: sum over all r steps of the interpolated per-step time.
    for (size_t i = 0; i + 1 < steps.size(); ++i) {
      const double n = static_cast<double>(steps[i + 1] - steps[i]);  // steps [k_i, k_{i+1})
      // sum_{j=0}^{n-1} (t_i + (t_{i+1} - t_i) * j / n) = n * t_i + (t_{i+1} - t_i) * (n - 1) / 2
      out.seconds += n * times[i] + (times[i + 1] - times[i]) * (n - 1) / 2.0;
    }
    out.seconds += times.back();  // the last step itself
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  keel::startup::use_fast_library_settings(argv);  // as keel's own main() does
  const Args a = parse(argc, argv);
  at::set_num_threads(a.threads);
  const ModelConfig cfg = keel::bench::llama_bench_config(a.hidden, a.layers, a.vocab);
  int64_t n_params = 0;
  Transformer model = keel::bench::make_bench_model(cfg, &n_params);
  std::printf("decode_bench: llama layout, hidden %lld, %lld layers, %lld/%lld heads (head_dim 64), "
              "intermediate %lld, vocab %lld, untied, %lld parameters (%.1fM), fp32, threads %d\n",
              (long long)cfg.hidden_size, (long long)cfg.num_hidden_layers, (long long)cfg.num_attention_heads,
              (long long)cfg.num_key_value_heads, (long long)cfg.intermediate_size, (long long)cfg.vocab_size,
              (long long)n_params, n_params / 1e6, at::get_num_threads());
  std::printf("RESULT decode/params %lld\n", (long long)n_params);

  for (int64_t b : a.batches) {
    torch::manual_seed(100 + b);
    auto prompt = torch::randint(0, cfg.vocab_size, {b, a.prompt}, torch::kLong);
    auto mask = torch::ones_like(prompt);
    keel::models::SamplingOptions so;
    so.max_new_tokens = a.new_tokens;
    so.greedy = true;
    so.seed = 7;
    // Warm-up (allocator, OpenMP pool), then the timed cached runs.
    keel::models::SamplingOptions warm = so;
    warm.max_new_tokens = 8;
    keel::models::generate(model, prompt, mask, warm);
    std::vector<double> cached;
    at::Tensor response;
    for (int rep = 0; rep < a.reps; ++rep) {
      std::optional<torch::autograd::profiler::RecordProfile> prof;
      if (!a.profile.empty() && b == a.batches.front() && rep + 1 == a.reps) prof.emplace(a.profile);
      const auto t0 = std::chrono::steady_clock::now();
      auto out = keel::models::generate(model, prompt, mask, so);
      cached.push_back(seconds_since(t0));
      response = out.response_ids;
    }
    std::sort(cached.begin(), cached.end());
    const double cached_s = cached[cached.size() / 2];
    const int64_t r = response.size(1);
    const int64_t stride = b == 1 ? a.stride_b1 : a.stride;
    const auto rc = recompute(model, prompt, response, stride);
    const double toks = static_cast<double>(b * r);
    const double tps_cache = toks / cached_s, tps_full = toks / rc.seconds;
    std::printf("batch %lld: %lld new tokens/row; KV cache %.3f s = %.1f tok/s; full recompute %.3f s = %.1f tok/s%s; "
                "speed-up %.2fx; argmax agreement %lld/%lld steps\n",
                (long long)b, (long long)r, cached_s, tps_cache, rc.seconds, tps_full,
                stride == 1 ? "" : (" (" + std::to_string(rc.measured) + " of " + std::to_string(r) +
                                    " steps measured, trapezoid over the rest)").c_str(),
                tps_cache / tps_full, (long long)rc.agree, (long long)rc.measured);
    std::printf("RESULT decode/b%lld/cache_tok_s %.3f\n", (long long)b, tps_cache);
    std::printf("RESULT decode/b%lld/full_tok_s %.3f\n", (long long)b, tps_full);
    std::printf("RESULT decode/b%lld/full_stride %lld\n", (long long)b, (long long)stride);
    std::printf("RESULT decode/b%lld/agree %lld/%lld\n", (long long)b, (long long)rc.agree, (long long)rc.measured);
    std::fflush(stdout);
  }
  return 0;
}
