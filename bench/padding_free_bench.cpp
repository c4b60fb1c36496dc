// Learner-pass benchmark: what one micro-batch of an RL update costs padded (prompts left-padded,
// responses right-padded, one [N, P + R] forward) against padding-free (models::LogprobOptions::
// padding_free: the rows' real tokens packed into one row, attention within each sequence, heads
// only where a response token is predicted), on a random-init ~25M-parameter Llama-layout model
// (bench/bench_model.h), fp32 on CPU.
//
// Workload: --rows sequences (default 16) whose total lengths are drawn uniformly from
// [--min-len, --max-len] (default 16..512) with seed 7; each prompt is a quarter of its sequence
// (at least 8 tokens), the rest is the response. Micro-batches of --micro rows (default 8). One
// pass = for every micro-batch: sequence_logprobs (with entropy, as rl_update asks) under grad,
// then backward of sum(logp * adv) + 0.01 * sum(entropy) with random advantages. No optimizer
// step (its cost does not depend on padding). Both modes run alternately, --reps times after one
// warm-up each; the speedup is the median of the per-rep ratios.
//
//   padding_free_bench [--threads 2] [--reps 3] [--rows 16] [--micro 8] [--min-len 16] [--max-len 512]
//                      [--layers 6] [--hidden 512] [--vocab 8192]
// Prints "RESULT key value" lines (parsed by scripts/bench_padding_free.sh) and a summary.
// Not a test: it asserts nothing.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "base/startup_env.h"
#include "bench/bench_args.h"
#include "bench/bench_model.h"
#include "models/generate.h"
#include "models/logprobs.h"
#include "models/transformer.h"

namespace {

struct Args {
  int threads = 2;
  int reps = 3;
  int64_t rows = 16;
  int64_t micro = 8;
  int64_t min_len = 16;
  int64_t max_len = 512;
  int64_t layers = 6;
  int64_t hidden = 512;
  int64_t vocab = 8192;
};

Args parse(int argc, char** argv) {
  Args a;
  keel::bench::for_each_option(argc, argv, [&](const std::string& k, const std::string& v) {
    if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--reps") a.reps = std::stoi(v);
    else if (k == "--rows") a.rows = std::stoll(v);
    else if (k == "--micro") a.micro = std::stoll(v);
    else if (k == "--min-len") a.min_len = std::stoll(v);
    else if (k == "--max-len") a.max_len = std::stoll(v);
    else if (k == "--layers") a.layers = std::stoll(v);
    else if (k == "--hidden") a.hidden = std::stoll(v);
    else if (k == "--vocab") a.vocab = std::stoll(v);
    else return false;
    return true;
  });
  if (a.min_len < 9 || a.max_len < a.min_len || a.micro < 1 || a.rows < 1 || a.reps < 1) {
    std::fprintf(stderr, "need 9 <= --min-len <= --max-len and --rows, --micro, --reps >= 1\n");
    std::exit(2);
  }
  return a;
}

struct MicroBatch {
  at::Tensor pids, pmask, rids, rmask, adv;
};

std::vector<MicroBatch> make_workload(const Args& a, int64_t* real_tokens, int64_t* padded_tokens) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int64_t> len(a.min_len, a.max_len), tok(3, a.vocab - 1);
  std::vector<MicroBatch> out;
  *real_tokens = *padded_tokens = 0;
  for (int64_t s = 0; s < a.rows; s += a.micro) {
    const int64_t n = std::min(a.micro, a.rows - s);
    std::vector<std::vector<int64_t>> prompts;
    std::vector<int64_t> resp_len;
    int64_t r_max = 1;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t total = len(rng), p = std::max<int64_t>(8, total / 4);
      std::vector<int64_t> prompt(static_cast<size_t>(p));
      for (auto& t : prompt) t = tok(rng);
      prompts.push_back(std::move(prompt));
      resp_len.push_back(total - p);
      r_max = std::max(r_max, total - p);
      *real_tokens += total;
    }
    MicroBatch mb;
    std::tie(mb.pids, mb.pmask) = keel::models::left_pad(prompts, 0);
    mb.rids = torch::randint(3, a.vocab, {n, r_max}, torch::kLong);
    mb.rmask = torch::zeros({n, r_max}, torch::kLong);
    for (int64_t i = 0; i < n; ++i) mb.rmask[i].narrow(0, 0, resp_len[static_cast<size_t>(i)]).fill_(1);
    mb.adv = torch::randn({n, r_max});
    *padded_tokens += n * (mb.pids.size(1) + r_max);
    out.push_back(std::move(mb));
  }
  return out;
}

double run_pass(keel::models::Transformer& model, const std::vector<MicroBatch>& work, bool padding_free) {
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& mb : work) {
    keel::models::LogprobOptions lo;
    lo.entropy = true;
    lo.padding_free = padding_free;
    const auto out = keel::models::sequence_logprobs(model, mb.pids, mb.pmask, mb.rids, mb.rmask, lo);
    ((out.logprobs * mb.adv).sum() + 0.01 * out.entropy.sum()).backward();
  }
  for (auto& p : model.parameters()) p.mutable_grad() = at::Tensor();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  keel::startup::use_fast_library_settings(argv);  // as keel's own main() does
  const Args a = parse(argc, argv);
  at::set_num_threads(a.threads);
  const auto cfg = keel::bench::llama_bench_config(a.hidden, a.layers, a.vocab);
  int64_t params = 0;
  auto model = keel::bench::make_bench_model(cfg, &params);
  model.train(true);
  torch::manual_seed(11);
  int64_t real = 0, padded = 0;
  const auto work = make_workload(a, &real, &padded);
  std::printf("model: %.1fM parameters, %lld layers, hidden %lld; %lld rows of %lld..%lld tokens in micro-batches of "
              "%lld: %lld real tokens, %lld padded positions\n",
              static_cast<double>(params) / 1e6, static_cast<long long>(a.layers), static_cast<long long>(a.hidden),
              static_cast<long long>(a.rows), static_cast<long long>(a.min_len), static_cast<long long>(a.max_len),
              static_cast<long long>(a.micro), static_cast<long long>(real), static_cast<long long>(padded));
  run_pass(model, work, false);  // warm-up
  run_pass(model, work, true);
  std::vector<double> t_pad, t_free, ratio;
  for (int r = 0; r < a.reps; ++r) {
    t_pad.push_back(run_pass(model, work, false));
    t_free.push_back(run_pass(model, work, true));
    ratio.push_back(t_pad.back() / t_free.back());
    std::printf("rep %d: padded %.3f s, padding-free %.3f s (%.2fx)\n", r + 1, t_pad.back(), t_free.back(),
                ratio.back());
  }
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double tp = median(t_pad), tf = median(t_free), sp = median(ratio);
  std::printf("RESULT params %lld\nRESULT real_tokens %lld\nRESULT padded_positions %lld\n", static_cast<long long>(params),
              static_cast<long long>(real), static_cast<long long>(padded));
  std::printf("RESULT padded_s %.4f\nRESULT padding_free_s %.4f\nRESULT padded_tok_s %.1f\nRESULT padding_free_tok_s %.1f\n"
              "RESULT speedup %.3f\n",
              tp, tf, static_cast<double>(real) / tp, static_cast<double>(real) / tf, sp);
  return 0;
}
