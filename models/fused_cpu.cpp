#include "models/fused_cpu.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <initializer_list>
#include <vector>

#include "models/compat.h"
#include "models/fused_cpu_kernels.h"
#include "models/parallel.h"

namespace keel::models {

// ---- the composites ------------------------------------------------------------------------------

at::Tensor rms_norm_reference(const at::Tensor& x, const at::Tensor& weight, double eps) {
  auto xf = x.to(torch::kFloat);
  xf = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * xf.to(x.scalar_type());
}

at::Tensor swiglu_reference(const at::Tensor& gate, const at::Tensor& up) { return torch::silu(gate) * up; }

at::Tensor token_logprobs_reference(const at::Tensor& logits, const at::Tensor& targets, double temperature) {
  return torch::log_softmax(logits / temperature, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);
}

at::Tensor rotary_reference(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos.unsqueeze(2) + rotated * sin.unsqueeze(2);  // cos, sin [B, T, D] -> [B, T, 1, D]
}

namespace {

/// Rows per parallel chunk for row kernels of `width` floats: about 64K floats a chunk.
int64_t grain_rows(int64_t width) { return std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, width)); }

/// Whether grad mode is on and any defined one of these requires grad: the no-grad kernels
/// (linear, small_attention) leave those calls to autograd-aware ATen.
bool needs_autograd(std::initializer_list<const at::Tensor*> ts) {
  if (!torch::GradMode::is_enabled()) return false;
  for (const auto* t : ts)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool fusable(std::initializer_list<const at::Tensor*> ts) {
  if (compat::TwiceDifferentiableAttention::active()) return false;
  for (const auto* t : ts)
    if (!t->defined() || !fused_cpu_tensor(*t)) return false;
  return true;
}

// ---- autograd Functions --------------------------------------------------------------------------

struct RmsNormFn : public torch::autograd::Function<RmsNormFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            double eps) {
    const int64_t h = x.size(-1), rows = x.numel() / std::max<int64_t>(1, h);
    auto y = torch::empty_like(x);
    auto rstd = torch::empty({rows}, x.options());
    const float* xp = x.data_ptr<float>();
    const float* wp = weight.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    float* rp = rstd.data_ptr<float>();
    parallel_for(0, rows, grain_rows(h), [&](int64_t b, int64_t e) {
      kernels::rms_norm_forward_rows(xp + b * h, wp, yp + b * h, rp + b, e - b, h, static_cast<float>(eps));
    });
    ctx->save_for_backward({x, weight, rstd});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1], &rstd = saved[2];
    const auto g = grad_out[0].contiguous();
    const int64_t h = x.size(-1), rows = x.numel() / std::max<int64_t>(1, h);
    auto dx = torch::empty_like(x);
    // dw: one partial sum per chunk, added up below (chunks are fixed here, not by parallel_for,
    // so that the result does not depend on how the runtime splits the range).
    const int64_t chunk = std::max<int64_t>(grain_rows(h), (rows + 63) / 64);
    const int64_t chunks = std::max<int64_t>(1, (rows + chunk - 1) / chunk);
    auto dw_parts = torch::zeros({chunks, h}, x.options());
    const float *gp = g.data_ptr<float>(), *xp = x.data_ptr<float>(), *wp = weight.data_ptr<float>();
    const float* rp = rstd.data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    float* dwp = dw_parts.data_ptr<float>();
    parallel_for(0, chunks, 1, [&](int64_t cb, int64_t ce) {
      for (int64_t c = cb; c < ce; ++c) {
        const int64_t b = c * chunk, e = std::min(rows, b + chunk);
        kernels::rms_norm_backward_rows(gp + b * h, xp + b * h, wp, rp + b, dxp + b * h, dwp + c * h, e - b, h);
      }
    });
    return {dx, dw_parts.sum(0), at::Tensor()};
  }
};

struct RotaryFn : public torch::autograd::Function<RotaryFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin) {
    const int64_t heads = x.size(2), d = x.size(3), rows = x.numel() / std::max<int64_t>(1, d);
    auto y = torch::empty_like(x);
    const float *xp = x.data_ptr<float>(), *cp = cos.data_ptr<float>(), *sp = sin.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    parallel_for(0, rows, grain_rows(d), [&](int64_t b, int64_t e) {
      kernels::rotary_forward_rows(xp + b * d, cp, sp, yp + b * d, e - b, heads, d, b);
    });
    ctx->save_for_backward({cos, sin});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const auto &cos = saved[0], &sin = saved[1];
    const auto g = grad_out[0].contiguous();
    const int64_t heads = g.size(2), d = g.size(3), rows = g.numel() / std::max<int64_t>(1, d);
    auto dx = torch::empty_like(g);
    const float *gp = g.data_ptr<float>(), *cp = cos.data_ptr<float>(), *sp = sin.data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    parallel_for(0, rows, grain_rows(d), [&](int64_t b, int64_t e) {
      kernels::rotary_backward_rows(gp + b * d, cp, sp, dxp + b * d, e - b, heads, d, b);
    });
    return {dx, at::Tensor(), at::Tensor()};
  }
};

/// Elements per parallel chunk of the elementwise kernels.
constexpr int64_t kElementGrain = int64_t{1} << 15;

struct SwigluFn : public torch::autograd::Function<SwigluFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& a, const at::Tensor& b) {
    auto y = torch::empty_like(a);
    const float *ap = a.data_ptr<float>(), *bp = b.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    parallel_for(0, a.numel(), kElementGrain, [&](int64_t s, int64_t e) {
      kernels::swiglu_forward_elements(ap + s, bp + s, yp + s, e - s);
    });
    ctx->save_for_backward({a, b});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const auto &a = saved[0], &b = saved[1];
    const auto g = grad_out[0].contiguous();
    auto da = torch::empty_like(a), db = torch::empty_like(b);
    const float *ap = a.data_ptr<float>(), *bp = b.data_ptr<float>(), *gp = g.data_ptr<float>();
    float *dap = da.data_ptr<float>(), *dbp = db.data_ptr<float>();
    parallel_for(0, a.numel(), kElementGrain, [&](int64_t s, int64_t e) {
      kernels::swiglu_backward_elements(ap + s, bp + s, gp + s, dap + s, dbp + s, e - s);
    });
    return {da, db};
  }
};

struct TokenLogprobFn : public torch::autograd::Function<TokenLogprobFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& logits, const at::Tensor& targets,
                            double temperature) {
    const int64_t v = logits.size(-1), rows = logits.numel() / std::max<int64_t>(1, v);
    auto out = torch::empty(targets.sizes(), logits.options());
    auto lse = torch::empty({rows}, logits.options());
    const float* xp = logits.data_ptr<float>();
    const int64_t* tp = targets.data_ptr<int64_t>();
    float *op = out.data_ptr<float>(), *lp = lse.data_ptr<float>();
    const auto s = static_cast<float>(1.0 / temperature);
    parallel_for(0, rows, grain_rows(v), [&](int64_t b, int64_t e) {
      kernels::token_logprob_forward_rows(xp + b * v, tp + b, op + b, lp + b, e - b, v, s);
    });
    ctx->save_for_backward({logits, targets, lse});
    ctx->saved_data["temperature"] = temperature;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const auto &logits = saved[0], &targets = saved[1], &lse = saved[2];
    const auto g = grad_out[0].contiguous();
    const int64_t v = logits.size(-1), rows = logits.numel() / std::max<int64_t>(1, v);
    auto dx = torch::empty_like(logits);
    const float *xp = logits.data_ptr<float>(), *lp = lse.data_ptr<float>(), *gp = g.data_ptr<float>();
    const int64_t* tp = targets.data_ptr<int64_t>();
    float* dp = dx.data_ptr<float>();
    const auto s = static_cast<float>(1.0 / ctx->saved_data["temperature"].toDouble());
    parallel_for(0, rows, grain_rows(v), [&](int64_t b, int64_t e) {
      kernels::token_logprob_backward_rows(xp + b * v, tp + b, lp + b, gp + b, dp + b * v, e - b, v, s);
    });
    return {dx, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) {
  if (!fusable({&gate, &up}) || gate.sizes() != up.sizes()) return swiglu_reference(gate, up);
  return SwigluFn::apply(gate, up);
}

at::Tensor token_logprobs(const at::Tensor& logits, const at::Tensor& targets, double temperature) {
  TORCH_CHECK(temperature > 0, "token_logprobs: temperature must be > 0, got ", temperature);
  TORCH_CHECK(logits.dim() >= 1 && targets.dim() == logits.dim() - 1 &&
                  targets.sizes() == logits.sizes().slice(0, logits.dim() - 1),
              "token_logprobs: targets ", targets.sizes(), " must be logits ", logits.sizes(), " without the last dim");
  if (!fusable({&logits}) || targets.scalar_type() != at::kLong || !targets.device().is_cpu() || logits.size(-1) == 0)
    return token_logprobs_reference(logits, targets.to(at::kLong), temperature);
  const auto t = targets.contiguous();
  TORCH_CHECK(t.numel() == 0 || (t.min().item<int64_t>() >= 0 && t.max().item<int64_t>() < logits.size(-1)),
              "token_logprobs: targets must be in [0, ", logits.size(-1), ")");
  return TokenLogprobFn::apply(logits, t, temperature);
}

bool fused_cpu_tensor(const at::Tensor& t) {
  return t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous();
}

void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  parallel_chunks(begin, end, grain, at::in_parallel_region() ? 1 : at::get_num_threads(), f);
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  const int64_t in = weight.dim() == 2 ? weight.size(1) : -1;
  const int64_t rows = x.dim() >= 1 && x.size(-1) == in && in > 0 ? x.numel() / in : -1;
  if (needs_autograd({&x, &weight, &bias}) || rows < 1 || rows > kernels::kSmallLinearMaxRows || !fusable({&x, &weight}) ||
      (bias.defined() && (!fusable({&bias}) || bias.dim() != 1 || bias.size(0) != weight.size(0))))
    return torch::linear(x, weight, bias);
  const int64_t out = weight.size(0);
  std::vector<int64_t> sizes(x.sizes().begin(), x.sizes().end());
  sizes.back() = out;
  auto y = torch::empty(sizes, x.options());
  const float *xp = x.data_ptr<float>(), *wp = weight.data_ptr<float>();
  const float* bp = bias.defined() ? bias.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  // Reading the weight is the whole cost, so a second thread pays (~1.4x here) when it has an
  // idle core, also inside a decode step's SingleThreaded guard; when it would wait for a busy
  // core, it costs far more. Split by outputs (~64K weight floats a chunk), so the bits do not
  // depend on the thread count. On helpers that spin between a decode step's layers
  // (spinning_chunks): waking an OpenMP thread per layer cost more than it saved on Zen 3 VMs.
  const int held = std::max(at::get_num_threads(), compat::SingleThreaded::held_threads());
  const int threads = at::in_parallel_region() ? 1 : threads_with_idle_cores(held);
  spinning_chunks(0, out, grain_rows(in), threads, [&](int64_t b, int64_t e) {
    kernels::small_linear_rows(xp, wp, bp, yp, rows, in, out, b, e);
  });
  return y;
}

at::Tensor small_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                           double scale) {
  const auto fp32_rows = [](const at::Tensor& t) {
    return t.defined() && t.dim() == 4 && t.device().is_cpu() && t.scalar_type() == at::kFloat && t.stride(3) == 1;
  };
  if (compat::TwiceDifferentiableAttention::active() || !fp32_rows(q) || !fp32_rows(k) || !fp32_rows(v) ||
      !fp32_rows(mask))
    return {};
  if (needs_autograd({&q, &k, &v, &mask})) return {};
  const int64_t b = q.size(0), hq = q.size(1), t = q.size(2), d = q.size(3);
  const int64_t hkv = k.size(1), s = k.size(2);
  if (t < 1 || t > kSmallAttentionMaxRows || s < 1 || hkv < 1 || hq % hkv != 0 || k.size(0) != b ||
      k.size(3) != d || v.sizes() != k.sizes() || (mask.size(0) != b && mask.size(0) != 1) || mask.size(1) != 1 ||
      mask.size(2) != t || mask.size(3) != s)
    return {};
  const int64_t rep = hq / hkv;
  auto out = torch::empty({b, t, hq, d}, q.options());
  const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
  const float* mp = mask.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int64_t mask_b = mask.size(0) == 1 ? 0 : mask.stride(0);
  const auto f = static_cast<float>(scale);
  // One (batch row, query head) pair per unit: its T rows against its key/value head. About 64K
  // multiply-adds a chunk, so that a decode step stays on its thread.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, 2 * t * s * d));
  parallel_for(0, b * hq, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(s));
    for (int64_t u = begin; u < end; ++u) {
      const int64_t bi = u / hq, h = u % hq, g = h / rep;
      kernels::attention_rows(qp + bi * q.stride(0) + h * q.stride(1), q.stride(2),
                              kp + bi * k.stride(0) + g * k.stride(1), k.stride(2),
                              vp + bi * v.stride(0) + g * v.stride(1), v.stride(2), mp + bi * mask_b, mask.stride(2),
                              op + (bi * t * hq + h) * d, hq * d, scores.data(), t, s, d, f);
    }
  });
  return out;
}

namespace {
/// A 1-D CPU tensor of at least `bytes` bytes (rounded up to 2 MiB pages) on 2 MiB-aligned memory
/// advised as huge pages, uninitialised; undefined when the allocation fails.
at::Tensor huge_page_arena(int64_t bytes, at::ScalarType dtype) {
  constexpr int64_t kPage = int64_t{2} << 20;
  const int64_t arena_bytes = (std::max<int64_t>(1, bytes) + kPage - 1) / kPage * kPage;
  void* mem = std::aligned_alloc(static_cast<size_t>(kPage), static_cast<size_t>(arena_bytes));
  if (mem == nullptr) return {};
#ifdef MADV_HUGEPAGE
  madvise(mem, static_cast<size_t>(arena_bytes), MADV_HUGEPAGE);  // advice only: no error if refused
#endif
  return torch::from_blob(mem, {arena_bytes / static_cast<int64_t>(c10::elementSize(dtype))},
                          [](void* q) { std::free(q); }, torch::TensorOptions().dtype(dtype));
}
}  // namespace

at::Tensor empty_on_huge_pages(at::IntArrayRef sizes, at::ScalarType dtype) {
  int64_t numel = 1;
  for (auto s : sizes) numel *= s;
  auto arena = huge_page_arena(numel * static_cast<int64_t>(c10::elementSize(dtype)), dtype);
  if (!arena.defined()) return torch::empty(sizes, torch::TensorOptions().dtype(dtype));
  return arena.narrow(0, 0, numel).view(sizes);
}

bool pack_on_huge_pages(const std::vector<at::Tensor>& params, int64_t min_bytes) {
  if (params.empty()) return false;
  const auto dtype = params.front().scalar_type();
  const int64_t esize = static_cast<int64_t>(params.front().element_size());
  constexpr int64_t kAlign = 64;
  int64_t bytes = 0;
  std::vector<int64_t> offsets;
  for (const auto& p : params) {
    if (!p.defined() || !p.device().is_cpu() || p.scalar_type() != dtype) return false;
    offsets.push_back(bytes);
    bytes += (p.numel() * esize + kAlign - 1) / kAlign * kAlign;
  }
  if (bytes < min_bytes) return false;
  const auto arena = huge_page_arena(bytes, dtype);
  if (!arena.defined()) return false;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    auto slot = arena.narrow(0, offsets[i] / esize, p.numel()).view(p.sizes());
    slot.copy_(p);
    p.set_data(slot);
  }
  return true;
}

void causal_softmax_(at::Tensor& scores) {
  const int64_t n = scores.size(0), t = scores.size(1), s = scores.size(2);
  float* p = scores.data_ptr<float>();
  parallel_for(0, n * t, grain_rows(s),
                   [&](int64_t b, int64_t e) { kernels::causal_softmax_rows(p + b * s, e - b, t, s, b); });
}

at::Tensor causal_softmax_backward(const at::Tensor& dp, const at::Tensor& probs) {
  const int64_t n = probs.size(0), t = probs.size(1), s = probs.size(2);
  auto ds = torch::empty_like(probs);
  const float *pp = probs.data_ptr<float>(), *dpp = dp.data_ptr<float>();
  float* dsp = ds.data_ptr<float>();
  parallel_for(0, n * t, grain_rows(s), [&](int64_t b, int64_t e) {
    kernels::causal_softmax_backward_rows(pp + b * s, dpp + b * s, dsp + b * s, e - b, t, s, b);
  });
  return ds;
}

void adamw_update(at::Tensor& p, const at::Tensor& g, at::Tensor& m, at::Tensor& v, const AdamWCoefficients& c) {
  for (const at::Tensor* t : std::initializer_list<const at::Tensor*>{&p, &g, &m, &v})
    TORCH_CHECK(fused_cpu_tensor(*t) && t->numel() == p.numel(),
                "adamw_update: p, grad, exp_avg and exp_avg_sq must be contiguous fp32 CPU tensors of ", p.numel(),
                " elements");
  float *pp = p.data_ptr<float>(), *mp = m.data_ptr<float>(), *vp = v.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  parallel_for(0, p.numel(), kElementGrain, [&](int64_t b, int64_t e) {
    kernels::adamw_elements(pp + b, gp + b, mp + b, vp + b, e - b, c);
  });
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (!fusable({&x, &weight}) || x.dim() < 1 || weight.dim() != 1 || weight.size(0) != x.size(-1))
    return rms_norm_reference(x, weight, eps);
  return RmsNormFn::apply(x, weight, eps);
}

at::Tensor rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  if (!fusable({&x, &cos, &sin}) || x.dim() != 4 || x.size(3) % 2 != 0 || cos.dim() != 3 ||
      cos.sizes() != sin.sizes() || cos.size(0) != x.size(0) || cos.size(1) != x.size(1) || cos.size(2) != x.size(3) ||
      cos.requires_grad() || sin.requires_grad())
    return rotary_reference(x, cos, sin);
  return RotaryFn::apply(x, cos, sin);
}

}  // namespace keel::models
