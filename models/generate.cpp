// Batched KV-cache generation. See generate.h.
#include "models/generate.h"

#include <algorithm>
#include <limits>
#include <set>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "base/error.h"

namespace keel::models {
namespace {

// splitmix64: decorrelates the per-row seeds derived from (seed, row).
uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

}  // namespace

std::vector<int64_t> row_limits(const SamplingOptions& opts, int64_t n) {
  if (opts.row_max_new_tokens.empty()) return std::vector<int64_t>(static_cast<size_t>(std::max<int64_t>(n, 1)), opts.max_new_tokens);
  TORCH_CHECK(static_cast<int64_t>(opts.row_max_new_tokens.size()) == n, "generate: row_max_new_tokens has ",
              opts.row_max_new_tokens.size(), " entries for ", n, " rows");
  for (auto m : opts.row_max_new_tokens) TORCH_CHECK(m >= 0, "generate: row_max_new_tokens must be >= 0, got ", m);
  return opts.row_max_new_tokens;
}

at::Generator row_generator(uint64_t seed, int64_t row) {
  return at::detail::createCPUGenerator(splitmix64(seed ^ splitmix64(static_cast<uint64_t>(row))));
}

double next_uniform(at::Generator& g) {
  auto* impl = at::check_generator<at::CPUGeneratorImpl>(g);
  return static_cast<double>(impl->random64() >> 11) * 0x1.0p-53;
}

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kEos: return "eos";
    case FinishReason::kStopToken: return "stop_token";
    case FinishReason::kLength: return "length";
  }
  return "?";
}

std::pair<at::Tensor, at::Tensor> left_pad(const std::vector<std::vector<int64_t>>& prompts, int64_t pad_token_id) {
  TORCH_CHECK(!prompts.empty(), "left_pad: no prompts");
  size_t p = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    TORCH_CHECK(!prompts[i].empty(), "left_pad: prompt ", i, " is empty");
    p = std::max(p, prompts[i].size());
  }
  const auto n = static_cast<int64_t>(prompts.size());
  auto ids = torch::full({n, static_cast<int64_t>(p)}, pad_token_id, torch::kLong);
  auto mask = torch::zeros({n, static_cast<int64_t>(p)}, torch::kLong);
  auto ia = ids.accessor<int64_t, 2>();
  auto ma = mask.accessor<int64_t, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const auto& row = prompts[static_cast<size_t>(i)];
    const size_t off = p - row.size();
    for (size_t j = 0; j < row.size(); ++j) {
      ia[i][static_cast<int64_t>(off + j)] = row[j];
      ma[i][static_cast<int64_t>(off + j)] = 1;
    }
  }
  return {ids, mask};
}

at::Tensor sample_tokens(const at::Tensor& logits, const at::Tensor& uniforms, const SamplingOptions& opts) {
  TORCH_CHECK(logits.dim() == 2, "sample_tokens: logits must be [N, V], got ", logits.sizes());
  TORCH_CHECK(uniforms.dim() == 1 && uniforms.size(0) == logits.size(0), "sample_tokens: uniforms must be [N] = [",
              logits.size(0), "], got ", uniforms.sizes());
  if (opts.greedy || opts.temperature <= 0) return logits.argmax(-1);
  const int64_t v = logits.size(1);
  auto scaled = logits.to(torch::kFloat) / opts.temperature;  // [N, V]
  if (opts.top_k > 0 && opts.top_k < v) {
    auto kth = std::get<0>(scaled.topk(opts.top_k, -1)).narrow(-1, opts.top_k - 1, 1);  // [N, 1]
    scaled = scaled.masked_fill(scaled < kth, kNegInf);
  }
  if (opts.top_p < 1.0) {
    // Nucleus (Holtzman et al. 2020): keep the most likely tokens until their mass reaches top_p;
    // a token is dropped when the mass strictly before it already exceeds top_p (the first stays).
    auto [sorted, idx] = scaled.sort(-1, /*descending=*/true);
    auto probs = torch::softmax(sorted, -1);
    auto drop = (probs.cumsum(-1) - probs) > opts.top_p;
    scaled = torch::full_like(scaled, kNegInf).scatter(-1, idx, sorted.masked_fill(drop, kNegInf));
  }
  // Inverse-CDF sampling: the first token whose cumulative mass exceeds u * total. Zero-probability
  // tokens never satisfy it (their CDF equals their predecessor's), and u < 1 keeps it in range.
  auto cdf = torch::softmax(scaled, -1).to(torch::kDouble).cumsum(-1);  // [N, V]
  auto x = (uniforms.to(cdf.device(), torch::kDouble) * cdf.select(1, -1)).unsqueeze(1);
  return torch::searchsorted(cdf, x, /*out_int32=*/false, /*right=*/true).squeeze(1).clamp_max(v - 1);
}

at::Tensor sampled_logprobs(const at::Tensor& logits, const at::Tensor& tokens, const SamplingOptions& opts) {
  const double t = opts.temperature > 0 ? opts.temperature : 1.0;
  return torch::log_softmax(logits / t, -1).gather(1, tokens.unsqueeze(1)).squeeze(1);
}

GenerateOutput generate(Transformer& model, const at::Tensor& prompt_ids, const at::Tensor& prompt_mask,
                        const SamplingOptions& opts) {
  TORCH_CHECK(prompt_ids.dim() == 2 && prompt_mask.sizes() == prompt_ids.sizes(), "generate: prompt_ids ",
              prompt_ids.sizes(), " and prompt_mask ", prompt_mask.sizes(), " must both be [N, P]");
  TORCH_CHECK(prompt_ids.size(1) >= 1, "generate: prompts must have at least one token");
  TORCH_CHECK(prompt_mask.select(1, -1).to(torch::kBool).all().item<bool>(),
              "generate: prompts must be left-padded (last prompt column all real)");
  TORCH_CHECK(opts.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0");
  TORCH_CHECK(opts.top_p > 0 && opts.top_p <= 1, "generate: top_p must be in (0, 1], got ", opts.top_p);
  TORCH_CHECK(opts.top_k >= 0, "generate: top_k must be >= 0, got ", opts.top_k);
  torch::NoGradGuard no_grad;
  const auto dev = model.device();
  const int64_t n = prompt_ids.size(0), p = prompt_ids.size(1);
  const auto row_max = row_limits(opts, n);
  const int64_t max_new = *std::max_element(row_max.begin(), row_max.end());
  const bool greedy = opts.greedy || opts.temperature <= 0;
  const auto& eos_list = opts.eos_token_ids.empty() ? model.config().eos_token_ids : opts.eos_token_ids;
  const std::set<int64_t> eos(eos_list.begin(), eos_list.end());
  const std::set<int64_t> stop(opts.stop_token_ids.begin(), opts.stop_token_ids.end());

  GenerateOutput out;
  out.prompt_ids = prompt_ids.to(torch::kLong);
  out.prompt_mask = prompt_mask.to(torch::kLong);
  out.finish_reasons.assign(static_cast<size_t>(n), FinishReason::kLength);
  std::vector<at::Generator> gens;
  for (int64_t i = 0; i < n; ++i) gens.push_back(row_generator(opts.seed, opts.first_row + i));

  auto mask = out.prompt_mask.to(dev);
  auto cache = model.make_cache(n, p + max_new);
  auto hidden = model.forward_hidden(out.prompt_ids.to(dev), mask, {}, &cache).select(1, -1);  // [N, H]
  auto logits = model.lm_logits(hidden).to(torch::kFloat);                                      // [N, V]

  std::vector<at::Tensor> tokens, logprobs, alive;
  std::vector<bool> finished(static_cast<size_t>(n), false);
  for (int64_t i = 0; i < n; ++i) finished[static_cast<size_t>(i)] = row_max[static_cast<size_t>(i)] == 0;
  auto finished_dev = torch::tensor(std::vector<uint8_t>(finished.begin(), finished.end()), torch::kUInt8)
                          .to(dev, torch::kBool);
  const auto pad = torch::full({n}, opts.pad_token_id, torch::TensorOptions().dtype(torch::kLong).device(dev));
  for (int64_t step = 0; step < max_new; ++step) {
    auto u = torch::empty({n}, torch::kDouble);
    if (!greedy) {
      auto ua = u.accessor<double, 1>();
      for (int64_t i = 0; i < n; ++i) ua[i] = next_uniform(gens[static_cast<size_t>(i)]);
    }
    auto tok = sample_tokens(logits, u, opts);  // [N]
    auto lp = sampled_logprobs(logits, tok, opts);
    tok = torch::where(finished_dev, pad, tok);
    lp = torch::where(finished_dev, torch::zeros_like(lp), lp);
    tokens.push_back(tok);
    logprobs.push_back(lp);
    alive.push_back(finished_dev.logical_not());

    const auto tok_cpu = tok.to(torch::kCPU);
    const auto ta = tok_cpu.accessor<int64_t, 1>();
    bool all_done = true;
    for (int64_t i = 0; i < n; ++i) {
      const auto s = static_cast<size_t>(i);
      if (!finished[s]) {
        if (eos.count(ta[i])) finished[s] = true, out.finish_reasons[s] = FinishReason::kEos;
        else if (stop.count(ta[i])) finished[s] = true, out.finish_reasons[s] = FinishReason::kStopToken;
        else if (step + 1 >= row_max[s]) finished[s] = true;  // kLength
      }
      all_done = all_done && finished[s];
    }
    if (all_done || step + 1 == max_new) break;
    std::vector<uint8_t> fin_bytes(finished.begin(), finished.end());
    finished_dev = torch::tensor(fin_bytes, torch::kUInt8).to(dev, torch::kBool);
    mask = torch::cat({mask, torch::ones({n, 1}, mask.options())}, 1);
    hidden = model.forward_hidden(tok.unsqueeze(1), mask, {}, &cache).select(1, -1);
    logits = model.lm_logits(hidden).to(torch::kFloat);
  }
  const auto opts_long = torch::TensorOptions().dtype(torch::kLong);
  if (tokens.empty()) {
    out.response_ids = torch::empty({n, 0}, opts_long);
    out.response_mask = torch::empty({n, 0}, opts_long);
    out.logprobs = torch::empty({n, 0}, torch::kFloat);
  } else {
    out.response_ids = torch::stack(tokens, 1).to(torch::kCPU);
    out.response_mask = torch::stack(alive, 1).to(torch::kCPU, torch::kLong);
    out.logprobs = torch::stack(logprobs, 1).to(torch::kCPU);
  }
  return out;
}

GenerateOutput generate(Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
                        const SamplingOptions& opts) {
  auto [ids, mask] = left_pad(prompts, opts.pad_token_id);
  return generate(model, ids, mask, opts);
}

}  // namespace keel::models
