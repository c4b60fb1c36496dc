// VERL effective-rank shaping (see verl_rank.h).
#include "trainer/credit/verl_rank.h"

#include <cmath>
#include <vector>

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"
#include "trainer/credit/gae.h"
#include "trainer/credit/grpo.h"

namespace keel::credit {

double effective_rank_from_singular_values(const at::Tensor& sigma) {
  const at::Tensor s = sigma.to(torch::kDouble);
  const at::Tensor p = s / (s.sum() + 1e-8);
  return std::exp(-(p * (p + 1e-8).log()).sum().item<double>());
}

double effective_rank(const at::Tensor& hidden) {
  TORCH_CHECK(hidden.dim() == 2, "effective_rank: hidden must be [L, D], got ", hidden.sizes());
  if (hidden.size(0) == 0) return 0.0;
  const at::Tensor h = hidden.to(torch::kDouble);
  const at::Tensor centred = h - h.mean(0, /*keepdim=*/true);
  return effective_rank_from_singular_values(at::linalg_svdvals(centred));
}

std::array<double, 3> rank_metrics(const at::Tensor& hidden, int64_t stride, int64_t max_seq_len) {
  TORCH_CHECK(stride >= 1 && max_seq_len >= 1, "rank_metrics: stride and max_seq_len must be >= 1");
  at::Tensor h = hidden;
  if (h.size(0) > max_seq_len) h = h.slice(0, h.size(0) - max_seq_len);
  const int64_t len = h.size(0);
  const double er = effective_rank(h);
  std::vector<double> e, diff, diff2;
  for (int64_t t = stride; t < len; t += stride) e.push_back(effective_rank(h.slice(0, 0, t)));
  double running = 0;
  for (size_t k = 0; k < e.size(); ++k) {
    if (k >= 1) diff.push_back(e[k] - running / static_cast<double>(k));
    running += e[k];
  }
  for (size_t k = 1; k < diff.size(); ++k) diff2.push_back(diff[k] - diff[k - 1]);
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / static_cast<double>(v.size());
  };
  return {er, mean(diff), mean(diff2)};
}

at::Tensor response_rank_metrics(const at::Tensor& hidden, const at::Tensor& mask, int64_t stride, int64_t max_seq_len) {
  TORCH_CHECK(hidden.dim() == 3 && mask.dim() == 2 && hidden.size(0) == mask.size(0) && hidden.size(1) == mask.size(1),
              "response_rank_metrics: hidden must be [N, T, D] and mask [N, T], got ", hidden.sizes(), " and ", mask.sizes());
  at::Tensor out = torch::zeros({hidden.size(0), 3}, torch::kDouble);
  for (int64_t i = 0; i < hidden.size(0); ++i) {
    const at::Tensor rows = (mask[i] != 0).nonzero().squeeze(1);
    if (rows.numel() == 0) continue;
    const auto m = rank_metrics(hidden[i].index_select(0, rows), stride, max_seq_len);
    for (int64_t j = 0; j < 3; ++j) out[i][j] = m[static_cast<size_t>(j)];
  }
  return out;
}

at::Tensor verl_rank_aux(const at::Tensor& dev_er, const at::Tensor& dev_erv, const at::Tensor& dev_era, double gain,
                         double scale) {
  const at::Tensor tend = torch::sigmoid(gain * dev_era);  // ERA is the meta-controller
  // w = tend·w_explore + (1−tend)·w_exploit, w_explore = ER, w_exploit = ERV (ERA's own weight is 0)
  return scale * (torch::tanh(dev_er) * tend + torch::tanh(dev_erv) * (1 - tend));
}

at::Tensor verl_rank_shape(const at::Tensor& a0, const at::Tensor& aux, double kappa) {
  return a0 + torch::minimum(torch::relu(aux), a0.abs() / kappa);
}

AdvantageOutput advantage_verl_rank(const AdvantageInputs& in, const AdvantageOptions& opts) {
  check_core_inputs(in, "verl_rank");
  const VerlRankOptions& o = opts.verl;
  TORCH_CHECK(o.base == "grpo" || o.base == "gae", "verl_rank: unknown base '", o.base, "' (known: gae, grpo)");
  const int64_t n = in.token_rewards.size(0);
  const auto dt = in.token_rewards.scalar_type();
  const at::Tensor m = float_mask(in);
  at::Tensor metrics;  // [N, 3] ER, ERV, ERA
  if (in.rank_metrics.defined()) {
    require_field(in.rank_metrics, {n, 3}, "rank_metrics", "verl_rank");
    metrics = in.rank_metrics.to(dt);
  } else {
    TORCH_CHECK(in.hidden_states.defined(),
                "verl_rank needs AdvantageInputs::rank_metrics [N, 3] or hidden_states [N, T, D]");
    metrics = response_rank_metrics(in.hidden_states, m, o.stride, o.max_seq_len).to(dt).to(m.device());
  }
  const at::Tensor r_task = sequence_rewards(in.token_rewards);
  const bool has_prev = in.state.count(kVerlMidEr) && in.state.count(kVerlMidErv) && in.state.count(kVerlMidEra);
  const auto get = [&](const char* key) { auto it = in.state.find(key); return it == in.state.end() ? 0.0 : it->second; };
  const double mid[3] = {get(kVerlMidEr), get(kVerlMidErv), get(kVerlMidEra)};
  const double ema_perf = get(kVerlEmaPerf);

  at::Tensor aux = torch::zeros({n}, m.options());
  if (has_prev && (o.add_adv || o.add_reward)) {
    auto dev = [&](int64_t j) {
      return ((metrics.select(1, j) - mid[j]) / (std::abs(mid[j]) + 1e-8)).clamp(-5, 5);
    };
    const double scale = o.aux_fix ? o.aux_weight : o.aux_weight * (1 - (ema_perf + 1) / 2);
    aux = verl_rank_aux(dev(0), dev(1), dev(2), o.gain, scale);
  }
  AdvantageInputs base = in;
  if (o.add_reward) base.token_rewards = in.token_rewards + place_at_last_valid(aux, m);
  AdvantageOutput out = o.base == "gae" ? advantage_gae(base, opts) : advantage_grpo(base, opts);
  if (o.add_adv) out.advantages = verl_rank_shape(out.advantages, aux.unsqueeze(1), o.kappa) * m;

  // EMA baselines for the next step, from this batch's means over non-empty responses.
  const at::Tensor nonempty = m.sum(1) > 0;
  const double cnt = nonempty.sum().item<double>();
  const char* keys[3] = {kVerlMidEr, kVerlMidErv, kVerlMidEra};
  const char* names[3] = {"verl_rank/er_mean", "verl_rank/erv_mean", "verl_rank/era_mean"};
  for (int64_t j = 0; j < 3; ++j) {
    const double bm = cnt > 0 ? metrics.select(1, j).masked_select(nonempty).mean().item<double>() : 0.0;
    out.metrics[names[j]] = bm;
    out.state[keys[j]] = (1 - o.ema_alpha) * mid[j] + o.ema_alpha * bm;
  }
  // INTERPRETATION: the task-reward EMA (aux_fix = false) uses the same rate as the metric baselines.
  const double perf = n ? r_task.mean().item<double>() : 0.0;
  out.state[kVerlEmaPerf] = (1 - o.ema_alpha) * ema_perf + o.ema_alpha * perf;
  out.metrics["verl_rank/aux_mean"] = n ? aux.mean().item<double>() : 0.0;
  out.metrics["verl_rank/shaping_active"] = has_prev ? 1.0 : 0.0;
  add_advantage_metrics(out, m);
  return out;
}

}  // namespace keel::credit
