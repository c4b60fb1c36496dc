// Rollout benchmark: today's static engine (models::generate: one left-padded batch per call, a
// dense KV cache of prompt width + the call's longest response, finished rows keep their slot until
// the whole call ends) against the paged engine (models::generate_paged, rollout_engine.h: paged KV
// blocks, shared prompt prefixes, continuous batching), on the same rows in the same process.
//
// Model (default): random-init Llama layout, hidden 512, 6 layers, 8 query heads / 4 key-value
// heads (head_dim 64), intermediate 1376, vocab 8000, untied embeddings (25.6M parameters; the count
// is printed), fp32, eval mode, no grad, --threads intra-op threads.
//
// Workloads (--workload, comma-separated):
//  - grpo: 16 prompts x 8 samples (rows = 128; the 8 samples of a prompt are adjacent rows, as
//    trainer/rollout/rollout.cpp builds them). Each prompt is a 48-token header shared by all
//    prompts followed by a distinct random tail, total length uniform in [64, 192]. Response
//    lengths follow a log-normal with median 32 and sigma 1 (skewed: mean ~ 50), rounded and
//    clipped to [1, 256], drawn stratified (the 128 quantiles (i + 0.5) / 128, in a random order
//    over the rows: realized median 32 and max 256 for every seed, ~2 rows at the cap); they are
//    SamplingOptions::row_max_new_tokens, and EOS is disabled (eos_token_ids = {vocab + 7}, an
//    id that is never sampled; no stop ids), so the per-row limits are what end rows and both
//    engines generate exactly the same number of tokens.
//  - uniform: 64 rows, distinct random 128-token prompts (no shared header), every row exactly 128
//    new tokens: the case where the static engine wastes nothing (the paged one must not be slower).
// Sampling: temperature 1, seed --seed, so rows draw from the same per-row generators in both engines.
// All random choices (prompts, lengths) come from one std::mt19937_64 seeded with --seed.
//
// Engines, as the trainer runs them:
//  - static: rows in chunks of --batch rows, one generate() call per chunk (first_row = the chunk's
//    first row, row_max_new_tokens = the chunk's limits);
//  - paged: one generate_paged() call over all rows, EngineOptions{max_batch = --batch,
//    block_size = --block, num_blocks = 0 (auto), prefix_cache = true}.
// Lockstep: one untimed warm-up of each engine, then --reps reps; each rep runs both engines back to
// back (static first on even reps, paged first on odd ones, so drift on a shared machine hits both
// alike), timed with a steady clock. Reported: median tokens/s of each engine over the reps, and the
// median of the per-rep paged/static ratios. Tokens = generated tokens (sum of response_mask).
// Peak KV memory: static = max over chunks of dense_kv_bytes(model, rows in chunk, padded prompt
// width + the chunk's longest row limit) (exactly the cache generate() allocates: make_cache(n, p +
// max_new)); paged = EngineStats::peak_kv_bytes() (peak blocks held x bytes per block, plus the
// largest transient dense cache of a prefill forward).
// (The pool itself, EngineStats::pool_blocks, is allocated up front; its size is printed too: by
// default it is about what the static engine allocates for one full chunk. Blocks never handed out
// are never written, so their pages need not be resident, but that is the allocator's business and
// this bench does not measure RSS.)
// Prefill tokens: static = sum over chunks of rows x padded prompt width (what it runs through the
// model, padding included); paged = EngineStats::prefill_tokens (reused prompt tokens not counted).
// Also the decode tokens each runs (static: every row of a chunk for each of its decode forwards,
// finished or not; paged: EngineStats::decode_tokens), and a sanity check: each row's generated
// length must agree between engines (it does by construction) and the fraction of rows whose tokens
// are identical (the same seeds should agree except on rare fp32 near-ties of a different batch
// composition). Printed, not asserted.
//
//   rollout_bench [--threads 2] [--batch 64] [--block 16] [--reps 3] [--seed 1] [--workload grpo,uniform]
//                 [--layers 6] [--hidden 512] [--vocab 8000] [--quick]
// --quick: a smoke run (grpo 4 prompts x 4 samples, max 64 new tokens, median 16; uniform 16 rows
// of 32-token prompts x 32 new tokens; --batch 8 and --reps 1 unless given).
// Prints one "RESULT key value" line per figure (scripts/bench_rollout.sh parses them) plus a
// readable summary. Not a test: it asserts nothing.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "base/startup_env.h"
#include "bench/bench_model.h"
#include "models/generate.h"
#include "models/model_config.h"
#include "models/rollout_engine.h"
#include "models/transformer.h"

namespace {

using keel::models::EngineOptions;
using keel::models::EngineStats;
using keel::models::GenerateOutput;
using keel::models::ModelConfig;
using keel::models::SamplingOptions;
using keel::models::Transformer;

struct Args {
  int threads = 2;
  int64_t batch = 64;
  int64_t block = 16;
  int reps = 3;
  uint64_t seed = 1;
  std::vector<std::string> workloads{"grpo", "uniform"};
  int64_t layers = 6;
  int64_t hidden = 512;
  int64_t vocab = 8000;
  bool quick = false;
  // Workload shapes (--quick shrinks them).
  int64_t grpo_prompts = 16, grpo_samples = 8, grpo_header = 48, grpo_min_prompt = 64, grpo_max_prompt = 192;
  int64_t grpo_median = 32, grpo_max_new = 256;
  int64_t uni_rows = 64, uni_prompt = 128, uni_new = 128;
};

std::vector<std::string> split(const std::string& v) {
  std::vector<std::string> out;
  size_t s = 0;
  while (s <= v.size()) {
    const size_t c = v.find(',', s);
    out.push_back(v.substr(s, c - s));
    if (c == std::string::npos) break;
    s = c + 1;
  }
  return out;
}

Args parse(int argc, char** argv) {
  Args a;
  bool batch_set = false, reps_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--quick") {
      a.quick = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "option %s needs a value\n", k.c_str());
      std::exit(2);
    }
    const std::string v = argv[++i];
    if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--batch") a.batch = std::stoll(v), batch_set = true;
    else if (k == "--block") a.block = std::stoll(v);
    else if (k == "--reps") a.reps = std::stoi(v), reps_set = true;
    else if (k == "--seed") a.seed = std::stoull(v);
    else if (k == "--workload") a.workloads = split(v);
    else if (k == "--layers") a.layers = std::stoll(v);
    else if (k == "--hidden") a.hidden = std::stoll(v);
    else if (k == "--vocab") a.vocab = std::stoll(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  if (a.quick) {
    a.grpo_prompts = 4, a.grpo_samples = 4, a.grpo_median = 16, a.grpo_max_new = 64;
    a.uni_rows = 16, a.uni_prompt = 32, a.uni_new = 32;
    if (!batch_set) a.batch = 8;
    if (!reps_set) a.reps = 1;
  }
  for (const auto& w : a.workloads) {
    if (w != "grpo" && w != "uniform") {
      std::fprintf(stderr, "unknown workload %s (grpo, uniform)\n", w.c_str());
      std::exit(2);
    }
  }
  if (a.reps < 1 || a.batch < 1 || a.block < 1) {
    std::fprintf(stderr, "--reps, --batch and --block must be >= 1\n");
    std::exit(2);
  }
  return a;
}


struct Workload {
  std::string name;
  std::vector<std::vector<int64_t>> rows;  // one prompt per row
  std::vector<int64_t> limits;             // per-row max new tokens
  int64_t max_new = 0;                     // SamplingOptions::max_new_tokens (the cap of the limits)
  std::string shape;                       // for the summary
};

std::vector<int64_t> random_tokens(std::mt19937_64& rng, int64_t n, int64_t vocab) {
  std::uniform_int_distribution<int64_t> tok(1, vocab - 1);  // 0 is the pad id; never needed in a prompt
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (auto& t : out) t = tok(rng);
  return out;
}

constexpr double kSigma = 1.0;  // of the response-length log-normal: mean = median * exp(sigma^2 / 2) before clipping

// The standard normal's quantile function, by bisection on its CDF 0.5 * erfc(-z / sqrt(2)).
double normal_quantile(double q) {
  double lo = -40, hi = 40;
  for (int it = 0; it < 200; ++it) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < q ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

Workload make_grpo(const Args& a, std::mt19937_64& rng) {
  Workload w;
  w.name = "grpo";
  w.max_new = a.grpo_max_new;
  const auto header = random_tokens(rng, a.grpo_header, a.vocab);
  std::uniform_int_distribution<int64_t> len(a.grpo_min_prompt, a.grpo_max_prompt);
  for (int64_t p = 0; p < a.grpo_prompts; ++p) {
    auto prompt = header;
    const auto tail = random_tokens(rng, len(rng) - a.grpo_header, a.vocab);
    prompt.insert(prompt.end(), tail.begin(), tail.end());
    for (int64_t s = 0; s < a.grpo_samples; ++s) w.rows.push_back(prompt);
  }
  // Response lengths: the n quantiles (i + 0.5) / n of the log-normal (a stratified draw, so the
  // realized median is the distribution's for every seed, and the tail reaches the max), shuffled.
  const auto n = static_cast<int64_t>(w.rows.size());
  for (int64_t i = 0; i < n; ++i) {
    const double z = normal_quantile((static_cast<double>(i) + 0.5) / static_cast<double>(n));
    const auto l = static_cast<int64_t>(std::llround(static_cast<double>(a.grpo_median) * std::exp(kSigma * z)));
    w.limits.push_back(std::clamp<int64_t>(l, 1, a.grpo_max_new));
  }
  std::shuffle(w.limits.begin(), w.limits.end(), rng);
  w.shape = std::to_string(a.grpo_prompts) + " prompts x " + std::to_string(a.grpo_samples) + " samples, " +
            std::to_string(a.grpo_header) + "-token shared header, prompts " + std::to_string(a.grpo_min_prompt) +
            "-" + std::to_string(a.grpo_max_prompt) + " tokens, responses log-normal median " +
            std::to_string(a.grpo_median) + " sigma 1 (stratified) clipped to [1, " + std::to_string(a.grpo_max_new) + "]";
  return w;
}

Workload make_uniform(const Args& a, std::mt19937_64& rng) {
  Workload w;
  w.name = "uniform";
  w.max_new = a.uni_new;
  for (int64_t r = 0; r < a.uni_rows; ++r) w.rows.push_back(random_tokens(rng, a.uni_prompt, a.vocab));
  w.limits.assign(w.rows.size(), a.uni_new);
  w.shape = std::to_string(a.uni_rows) + " rows, distinct " + std::to_string(a.uni_prompt) + "-token prompts, " +
            std::to_string(a.uni_new) + " new tokens each";
  return w;
}

struct RunResult {
  double seconds = 0;
  int64_t tokens = 0;                          // generated tokens
  std::vector<std::vector<int64_t>> response;  // per row, generated tokens only
  int64_t kv_bytes = 0;                        // peak
  int64_t prefill_tokens = 0;
  int64_t decode_tokens = 0;
  EngineStats stats;  // paged only
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Appends out's rows (generated tokens only) to `into`; returns the generated token count.
int64_t collect(const GenerateOutput& out, std::vector<std::vector<int64_t>>& into) {
  const auto ids = out.response_ids.contiguous();
  const auto mask = out.response_mask.contiguous();
  const int64_t n = ids.size(0), r = ids.size(1);
  const auto ia = ids.accessor<int64_t, 2>();
  const auto ma = mask.accessor<int64_t, 2>();
  int64_t total = 0;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> row;
    for (int64_t j = 0; j < r; ++j)
      if (ma[i][j] != 0) row.push_back(ia[i][j]);
    total += static_cast<int64_t>(row.size());
    into.push_back(std::move(row));
  }
  return total;
}

SamplingOptions base_options(const Args& a, const Workload& w) {
  SamplingOptions so;
  so.max_new_tokens = w.max_new;
  so.temperature = 1.0;
  so.eos_token_ids = {a.vocab + 7};  // never sampled: the per-row limits end every row
  so.seed = a.seed;
  return so;
}

RunResult run_static(Transformer& model, const Args& a, const Workload& w) {
  RunResult res;
  const auto n = static_cast<int64_t>(w.rows.size());
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t start = 0; start < n; start += a.batch) {
    const int64_t end = std::min(n, start + a.batch);
    std::vector<std::vector<int64_t>> chunk(w.rows.begin() + start, w.rows.begin() + end);
    SamplingOptions so = base_options(a, w);
    so.row_max_new_tokens.assign(w.limits.begin() + start, w.limits.begin() + end);
    so.first_row = start;
    const auto out = keel::models::generate(model, chunk, so);
    res.tokens += collect(out, res.response);
    // What this call ran and held (generate.cpp: make_cache(n, p + max_new); a prefill of the
    // padded [n, p] prompts; max_new - 1 decode forwards over all n rows).
    const int64_t rows = end - start, p = out.prompt_ids.size(1);
    const int64_t max_new = *std::max_element(so.row_max_new_tokens.begin(), so.row_max_new_tokens.end());
    res.kv_bytes = std::max(res.kv_bytes, keel::models::dense_kv_bytes(model, rows, p + max_new));
    res.prefill_tokens += rows * p;
    res.decode_tokens += rows * std::max<int64_t>(max_new - 1, 0);
  }
  res.seconds = seconds_since(t0);
  return res;
}

// The prefill part of run_static alone (its chunks' padded prompts through the model into a cache
// as generate() sizes it), timed apart from the lockstep runs: where the static engine's time goes.
double static_prefill_seconds(Transformer& model, const Args& a, const Workload& w) {
  torch::NoGradGuard ng;
  const auto n = static_cast<int64_t>(w.rows.size());
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t start = 0; start < n; start += a.batch) {
    const int64_t end = std::min(n, start + a.batch);
    std::vector<std::vector<int64_t>> chunk(w.rows.begin() + start, w.rows.begin() + end);
    auto [ids, mask] = keel::models::left_pad(chunk, 0);
    const int64_t max_new = *std::max_element(w.limits.begin() + start, w.limits.begin() + end);
    auto cache = model.make_cache(end - start, ids.size(1) + max_new);
    auto h = model.forward_hidden(ids, mask, {}, &cache).select(1, -1);
    model.lm_logits(h);
  }
  return seconds_since(t0);
}

RunResult run_paged(Transformer& model, const Args& a, const Workload& w) {
  RunResult res;
  SamplingOptions so = base_options(a, w);
  so.row_max_new_tokens = w.limits;
  EngineOptions eo;
  eo.max_batch = a.batch;
  eo.block_size = a.block;
  eo.num_blocks = 0;
  eo.prefix_cache = true;
  const auto t0 = std::chrono::steady_clock::now();
  const auto out = keel::models::generate_paged(model, w.rows, so, eo, &res.stats);
  res.seconds = seconds_since(t0);
  res.tokens = collect(out, res.response);
  res.kv_bytes = res.stats.peak_kv_bytes();
  res.prefill_tokens = res.stats.prefill_tokens;
  res.decode_tokens = res.stats.decode_tokens;
  return res;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

double mib(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

void bench(Transformer& model, const Args& a, const Workload& w) {
  const std::string k = "rollout/" + w.name + "/";
  // The workload itself.
  std::vector<double> lim(w.limits.begin(), w.limits.end());
  int64_t sum_lim = 0, max_lim = 0, sum_prompt = 0;
  for (auto l : w.limits) sum_lim += l, max_lim = std::max(max_lim, l);
  for (const auto& r : w.rows) sum_prompt += static_cast<int64_t>(r.size());
  const double med_lim = median(lim);
  std::printf("\n== workload %s: %s\n", w.name.c_str(), w.shape.c_str());
  std::printf("   %zu rows, %lld prompt tokens; response lengths: median %.1f, mean %.1f, max %lld, total %lld\n",
              w.rows.size(), (long long)sum_prompt, med_lim, static_cast<double>(sum_lim) / w.rows.size(),
              (long long)max_lim, (long long)sum_lim);
  std::printf("RESULT %srows %zu\n", k.c_str(), w.rows.size());
  std::printf("RESULT %sprompt_tokens %lld\n", k.c_str(), (long long)sum_prompt);
  std::printf("RESULT %sresp_median %.1f\n", k.c_str(), med_lim);
  std::printf("RESULT %sresp_mean %.2f\n", k.c_str(), static_cast<double>(sum_lim) / w.rows.size());
  std::printf("RESULT %sresp_max %lld\n", k.c_str(), (long long)max_lim);
  std::fflush(stdout);

  // Warm-up (allocator, thread pools), untimed.
  run_static(model, a, w);
  run_paged(model, a, w);

  std::vector<double> tps_s, tps_p, ratios;
  RunResult last_s, last_p;
  for (int rep = 0; rep < a.reps; ++rep) {
    RunResult s, p;
    if (rep % 2 == 0) {
      s = run_static(model, a, w);
      p = run_paged(model, a, w);
    } else {
      p = run_paged(model, a, w);
      s = run_static(model, a, w);
    }
    const double ts = s.tokens / s.seconds, tp = p.tokens / p.seconds;
    tps_s.push_back(ts);
    tps_p.push_back(tp);
    ratios.push_back(tp / ts);
    std::printf("   rep %d (%s first): static %.3f s = %.1f tok/s; paged %.3f s = %.1f tok/s; ratio %.3f\n", rep,
                rep % 2 == 0 ? "static" : "paged", s.seconds, ts, p.seconds, tp, tp / ts);
    std::fflush(stdout);
    last_s = std::move(s);
    last_p = std::move(p);
  }

  // Sanity: same generated length per row; identical tokens per row.
  const size_t n = w.rows.size();
  int64_t same_len = 0, identical = 0;
  for (size_t i = 0; i < n && i < last_s.response.size() && i < last_p.response.size(); ++i) {
    same_len += last_s.response[i].size() == last_p.response[i].size() ? 1 : 0;
    identical += last_s.response[i] == last_p.response[i] ? 1 : 0;
  }
  const bool all_len = same_len == static_cast<int64_t>(n) && last_s.response.size() == n && last_p.response.size() == n;

  const double ms = median(tps_s), mp = median(tps_p), mr = median(ratios);
  const double kv_ratio = static_cast<double>(last_p.kv_bytes) / static_cast<double>(last_s.kv_bytes);
  const auto& st = last_p.stats;
  std::printf("   static (chunks of %lld rows): %.1f tok/s (median of %d), peak KV %.2f MiB, prefill %lld tokens "
              "(padding included), decode %lld row-steps\n",
              (long long)a.batch, ms, a.reps, mib(last_s.kv_bytes), (long long)last_s.prefill_tokens,
              (long long)last_s.decode_tokens);
  std::printf("   paged (max_batch %lld, block %lld, prefix cache): %.1f tok/s (median of %d), peak KV %.2f MiB "
              "(%lld blocks x %lld B; the pool reserves %lld blocks = %.2f MiB), prefill %lld tokens, reused %lld, decode %lld row-steps in %lld steps, "
              "%lld preemptions\n",
              (long long)a.batch, (long long)a.block, mp, a.reps, mib(last_p.kv_bytes), (long long)st.peak_blocks,
              (long long)st.block_bytes, (long long)st.pool_blocks, mib(st.pool_blocks * st.block_bytes),
              (long long)st.prefill_tokens,
              (long long)st.reused_tokens, (long long)st.decode_tokens, (long long)st.decode_steps,
              (long long)st.preemptions);
  std::printf("   paged / static: tokens/s %.3fx (median of per-rep ratios), peak KV %.3fx, prefill tokens %.3fx\n", mr,
              kv_ratio, static_cast<double>(last_p.prefill_tokens) / static_cast<double>(last_s.prefill_tokens));
  std::printf("   sanity: generated tokens static %lld, paged %lld; same length in %lld/%zu rows%s; identical tokens in "
              "%lld/%zu rows (%.1f%%)\n",
              (long long)last_s.tokens, (long long)last_p.tokens, (long long)same_len, n,
              all_len ? "" : " (MISMATCH: the engines should generate the same lengths)", (long long)identical, n,
              100.0 * identical / static_cast<double>(n));

  std::printf("RESULT %sgenerated_tokens %lld\n", k.c_str(), (long long)last_s.tokens);
  std::printf("RESULT %sstatic/tok_s %.3f\n", k.c_str(), ms);
  std::printf("RESULT %spaged/tok_s %.3f\n", k.c_str(), mp);
  std::printf("RESULT %sratio %.4f\n", k.c_str(), mr);
  std::printf("RESULT %sstatic/kv_bytes %lld\n", k.c_str(), (long long)last_s.kv_bytes);
  std::printf("RESULT %spaged/kv_bytes %lld\n", k.c_str(), (long long)last_p.kv_bytes);
  std::printf("RESULT %skv_ratio %.4f\n", k.c_str(), kv_ratio);
  std::printf("RESULT %sstatic/prefill_tokens %lld\n", k.c_str(), (long long)last_s.prefill_tokens);
  std::printf("RESULT %spaged/prefill_tokens %lld\n", k.c_str(), (long long)st.prefill_tokens);
  std::printf("RESULT %sstatic/decode_tokens %lld\n", k.c_str(), (long long)last_s.decode_tokens);
  std::printf("RESULT %spaged/decode_tokens %lld\n", k.c_str(), (long long)st.decode_tokens);
  std::printf("RESULT %spaged/reused_tokens %lld\n", k.c_str(), (long long)st.reused_tokens);
  std::printf("RESULT %spaged/decode_steps %lld\n", k.c_str(), (long long)st.decode_steps);
  std::printf("RESULT %spaged/preemptions %lld\n", k.c_str(), (long long)st.preemptions);
  std::printf("RESULT %spaged/pool_blocks %lld\n", k.c_str(), (long long)st.pool_blocks);
  std::printf("RESULT %spaged/peak_blocks %lld\n", k.c_str(), (long long)st.peak_blocks);
  std::printf("RESULT %spaged/pool_bytes %lld\n", k.c_str(), (long long)(st.pool_blocks * st.block_bytes));
  std::printf("RESULT %sstatic/prefill_s %.3f\n", k.c_str(), static_prefill_seconds(model, a, w));
  std::printf("RESULT %spaged/prefill_s %.3f\n", k.c_str(), st.prefill_seconds);
  std::printf("RESULT %spaged/decode_s %.3f\n", k.c_str(), st.decode_seconds);
  std::printf("RESULT %spaged/sample_s %.3f\n", k.c_str(), st.sample_seconds);
  std::printf("RESULT %ssame_lengths %lld/%zu\n", k.c_str(), (long long)same_len, n);
  std::printf("RESULT %sidentical_rows %lld/%zu\n", k.c_str(), (long long)identical, n);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  keel::startup::use_fast_library_settings(argv);  // as keel's own main() does
  const Args a = parse(argc, argv);
  at::set_num_threads(a.threads);
  torch::NoGradGuard no_grad;
  const ModelConfig cfg = keel::bench::llama_bench_config(a.hidden, a.layers, a.vocab);
  int64_t n_params = 0;
  Transformer model = keel::bench::make_bench_model(cfg, &n_params);
  std::printf("rollout_bench: llama layout, hidden %lld, %lld layers, %lld/%lld heads (head_dim 64), "
              "intermediate %lld, vocab %lld, untied, %lld parameters (%.1fM), fp32, threads %d, seed %llu, "
              "batch %lld, block %lld, reps %d%s\n",
              (long long)cfg.hidden_size, (long long)cfg.num_hidden_layers, (long long)cfg.num_attention_heads,
              (long long)cfg.num_key_value_heads, (long long)cfg.intermediate_size, (long long)cfg.vocab_size,
              (long long)n_params, n_params / 1e6, at::get_num_threads(), (unsigned long long)a.seed,
              (long long)a.batch, (long long)a.block, a.reps, a.quick ? ", quick" : "");
  std::printf("RESULT rollout/params %lld\n", (long long)n_params);
  std::printf("RESULT rollout/quick %d\n", a.quick ? 1 : 0);
  std::fflush(stdout);

  for (const auto& name : a.workloads) {
    // Each workload draws from its own stream of the one seed, so --workload uniform alone sees the
    // same rows as the full run.
    std::mt19937_64 rng(a.seed * 1000003ULL + (name == "grpo" ? 1 : 2));
    const Workload w = name == "grpo" ? make_grpo(a, rng) : make_uniform(a, rng);
    bench(model, a, w);
  }
  return 0;
}
