// See compat.h: the LibTorch 1.13 / 2.x switches, compiled in one translation unit.
// Before 2.1 attention is explicit softmax(QK^T)V; in fp32 it runs as a hand-written autograd
// Function (ExplicitAttention below) whose batched matmuls are spread over ATen's intra-op
// threads with a single-threaded BLAS each, instead of at::bmm's serial loop of small multi-
// threaded sgemms (measured 3-4x faster for [64 x 256 x 64] x [64 x 64 x 256] on the 2-core
// machine with OpenBLAS-pthread; see bench/train_step_bench.cpp).
#include "models/compat.h"

#include <dlfcn.h>

#include <algorithm>
#include <limits>

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "models/fused_cpu.h"

#if defined(KEEL_WITH_CUDA)
#include <torch/cuda.h>
#endif

namespace keel::compat {

namespace {
using BlasSetFn = void (*)(int);
BlasSetFn openblas_set() {  // null unless OpenBLAS is the BLAS
  static const auto fn = reinterpret_cast<BlasSetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  return fn;
}
}  // namespace

void set_blas_threads(int n) {
  if (openblas_set() != nullptr && n > 0) openblas_set()(n);
}

SingleThreadedBlas::SingleThreadedBlas(bool enable) {
  const auto set = openblas_set();
  static const auto get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (!enable || set == nullptr || get == nullptr || at::in_parallel_region()) return;
  prev_ = get();
  if (prev_ > 1) set_ = set, set(1);
}

SingleThreadedBlas::~SingleThreadedBlas() {
  if (set_ != nullptr) set_(prev_);
}

namespace {
using OmpSetFn = void (*)(int);
using OmpGetFn = int (*)();
OmpSetFn omp_set() {
  static const auto fn = reinterpret_cast<OmpSetFn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  return fn;
}
OmpGetFn omp_get() {
  static const auto fn = reinterpret_cast<OmpGetFn>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
  return fn;
}
thread_local int held_by_guards = 0;
}  // namespace

int SingleThreaded::held_threads() { return held_by_guards; }

SingleThreaded::SingleThreaded(bool enable) : blas_(enable) {
  if (!enable || at::in_parallel_region()) return;
  prev_ = at::get_num_threads();
  if (prev_ <= 1) {
    prev_ = 0;
    return;
  }
  prev_held_ = held_by_guards;
  held_by_guards = prev_;
  // With ATen's OpenMP backend, at::get_num_threads() is the calling thread's omp_get_max_threads(),
  // so setting that is enough, and costs nanoseconds. at::set_num_threads also rebuilds caffe2's
  // pthreadpool (for QNNPACK) on every call, whose new worker then spins on the other core: 1.4 ms
  // per set-and-restore here, twice per decode step. The check after the set proves that this
  // OpenMP runtime is the one ATen reads (a second copy of libgomp would not be); if not, ATen's way.
  const OmpSetFn set = omp_set();
  const OmpGetFn get = omp_get();
  if (set != nullptr && get != nullptr && get() == prev_) {
    set(1);
    if (at::get_num_threads() == 1) {
      omp_only_ = true;
      return;
    }
    set(prev_);
  }
  at::set_num_threads(1);
}

SingleThreaded::~SingleThreaded() {
  if (prev_ <= 1) return;
  held_by_guards = prev_held_;
  if (omp_only_) {
    omp_set()(prev_);
  } else {
    at::set_num_threads(prev_);
  }
}

namespace {
thread_local bool twice_differentiable_attention = false;
}  // namespace

TwiceDifferentiableAttention::TwiceDifferentiableAttention() : prev_(twice_differentiable_attention) {
  twice_differentiable_attention = true;
}
TwiceDifferentiableAttention::~TwiceDifferentiableAttention() { twice_differentiable_attention = prev_; }
bool TwiceDifferentiableAttention::active() { return twice_differentiable_attention; }

namespace {

using SgemmFn = void (*)(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                        const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                        const float* beta, float* c, const int* ldc);

/// The BLAS's Fortran sgemm_ when the loaded BLAS exports it (Debian's OpenBLAS does; otherwise
/// null and batched_gemm goes through ATen).
SgemmFn blas_sgemm() {
  static const auto fn = reinterpret_cast<SgemmFn>(dlsym(RTLD_DEFAULT, "sgemm_"));
  return fn;
}

/// A [.., R, C] fp32 operand as BLAS sees it: row-major rows (unit column stride) or a transposed
/// view (unit row stride), with its leading dimension; false for other layouts.
bool blas_layout(const at::Tensor& t, bool& transposed, int& ld) {
  const int64_t r = t.size(-2), c = t.size(-1), sr = t.stride(-2), sc = t.stride(-1);
  if (sc == 1 && sr >= std::max<int64_t>(1, c)) return transposed = false, ld = static_cast<int>(sr), true;
  if (sr == 1 && sc >= std::max<int64_t>(1, r)) return transposed = true, ld = static_cast<int>(sc), true;
  return false;
}

/// out[i] = alpha * a[i] @ b[i] (+ out[i] if accumulate) for i over dim 0, the batch split across
/// ATen's intra-op threads. out [N, M, P], a [N, M, K], b [N, K, P]: fp32 views with a unit stride
/// in one of the last two dims (e.g. transposed or narrowed views). One single-threaded sgemm per
/// matrix, called directly: ATen's bmm costs ~100 us of dispatch per matrix (select, resolve_conj,
/// addmm_) on top of it, a third of the attention's GEMM time at head_dim 64. Without an sgemm_
/// symbol or for other layouts, ATen's bmm. No autograd: tensors must be detached.
void batched_gemm(at::Tensor& out, const at::Tensor& a, const at::Tensor& b, double alpha, bool accumulate) {
  SingleThreadedBlas blas;
  // Chunks of >= ~1M multiply-adds: a decode step's tiny products stay in this thread (a parallel
  // region costs more than they do, and much more on a loaded machine).
  const int64_t macs = std::max<int64_t>(1, a.size(1) * a.size(2) * b.size(2));
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 20) / macs);
  bool ta = false, tb = false, tc = false;
  int lda = 0, ldb = 0, ldc = 0;
  const SgemmFn sgemm = blas_sgemm();
  const bool direct = sgemm != nullptr && out.scalar_type() == at::kFloat && a.scalar_type() == at::kFloat &&
                      b.scalar_type() == at::kFloat && blas_layout(a, ta, lda) && blas_layout(b, tb, ldb) &&
                      blas_layout(out, tc, ldc) && !tc && a.size(1) > 0 && b.size(2) > 0 && a.size(2) > 0;
  if (direct) {
    // Row-major C = A B is column-major C^T = B^T A^T: pass B first, then A, with m = P, n = M.
    const int m = static_cast<int>(b.size(2)), n = static_cast<int>(a.size(1)), k = static_cast<int>(a.size(2));
    const char opb = tb ? 'T' : 'N', opa = ta ? 'T' : 'N';
    const float fa = static_cast<float>(alpha), fb = accumulate ? 1.0f : 0.0f;
    const float *ap = a.data_ptr<float>(), *bp = b.data_ptr<float>();
    float* cp = out.data_ptr<float>();
    const int64_t sa = a.stride(0), sb = b.stride(0), sc = out.stride(0);
    models::parallel_for(0, a.size(0), grain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        sgemm(&opb, &opa, &m, &n, &k, &fa, bp + i * sb, &ldb, ap + i * sa, &lda, &fb, cp + i * sc, &ldc);
    });
    return;
  }
  models::parallel_for(0, a.size(0), grain, [&](int64_t begin, int64_t end) {
    c10::AutoGradMode no_grad(false);  // thread-local: worker threads start with grad mode on
    auto o = out.narrow(0, begin, end - begin);
    const auto ai = a.narrow(0, begin, end - begin), bi = b.narrow(0, begin, end - begin);
    if (accumulate) {
      o.baddbmm_(ai, bi, /*beta=*/1.0, /*alpha=*/alpha);
    } else {
      at::bmm_out(o, ai, bi);
      if (alpha != 1.0) o.mul_(alpha);
    }
  });
}

/// A block of query rows [row0, row1) of causal attention and the keys it can see: [0, keys).
/// Queries are the last T of S positions (query i sees key j iff j <= i + S - T).
struct CausalBlock {
  int64_t row0, row1, keys;
  int64_t rows() const { return row1 - row0; }
};

/// Query blocks of 128 rows (one block when T <= 128, e.g. decoding): with T = S = 256 the two
/// blocks skip a quarter of QK^T and PV and of their gradients; smaller blocks would skip more but
/// run smaller, slower GEMMs.
std::vector<CausalBlock> causal_blocks(int64_t t, int64_t s) {
  constexpr int64_t kRows = 128;
  std::vector<CausalBlock> out;
  for (int64_t r0 = 0; r0 < t; r0 += kRows) {
    const int64_t r1 = std::min(t, r0 + kRows);
    out.push_back({r0, r1, std::min(s, r1 + s - t)});
  }
  return out;
}

/// softmax(scale * q k^T + mask) v for fp32 q [B, H, T, D], k, v [B, H, S, D]; mask additive,
/// broadcastable to [B, H, T, S], or an empty placeholder (1.13's Function::apply rejects
/// undefined tensors) meaning causal (key j visible to query i iff j <= i + S - T) or nothing.
/// Backward: dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dP * P)), dQ = scale dS K,
/// dK = scale dS^T Q. Saves P [B*H, T, S] like the autograd graph of the explicit formula would.
struct ExplicitAttention : public torch::autograd::Function<ExplicitAttention> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor q, at::Tensor k, at::Tensor v,
                            at::Tensor mask, bool is_causal, double scale) {
    const int64_t b = q.size(0), h = q.size(1), t = q.size(2), d = q.size(3), s = k.size(2);
    auto q3 = q.detach().reshape({b * h, t, d});
    auto k3 = k.detach().reshape({b * h, s, d});
    auto v3 = v.detach().reshape({b * h, s, v.size(3)});
    const bool causal = mask.numel() == 0 && is_causal;
    at::Tensor probs;  // [B*H, T, S]
    auto out = torch::empty({b * h, t, v.size(3)}, q.options());
    if (causal) {
      // Causal: each block of query rows multiplies only the keys it can see (the products of the
      // masked upper-right blocks are skipped, not computed and then masked).
      const auto blocks = causal_blocks(t, s);
      auto scores = torch::empty({b * h, t, s}, q.options());
      for (const auto& blk : blocks) {
        auto sc = scores.narrow(1, blk.row0, blk.rows()).narrow(2, 0, blk.keys);
        batched_gemm(sc, q3.narrow(1, blk.row0, blk.rows()), k3.narrow(1, 0, blk.keys).transpose(1, 2), scale, false);
      }
      models::causal_softmax_(scores);  // in place (models/fused_cpu.h): scores become the probabilities
      probs = std::move(scores);
      for (const auto& blk : blocks) {
        auto o = out.narrow(1, blk.row0, blk.rows());
        batched_gemm(o, probs.narrow(1, blk.row0, blk.rows()).narrow(2, 0, blk.keys), v3.narrow(1, 0, blk.keys), 1.0,
                     false);
      }
    } else {
      at::Tensor scores;  // [B*H, T, S]
      if (mask.numel() > 0) {  // additive, broadcastable to [B, H, T, S]
        scores = mask.detach().to(at::kFloat).expand({b, h, t, s}).contiguous().view({b * h, t, s});
        batched_gemm(scores, q3, k3.transpose(1, 2), scale, /*accumulate=*/true);
      } else {
        scores = torch::empty({b * h, t, s}, q.options());
        batched_gemm(scores, q3, k3.transpose(1, 2), scale, /*accumulate=*/false);
      }
      probs = at::_softmax(scores, -1, /*half_to_float=*/false);
      scores = at::Tensor();
      batched_gemm(out, probs, v3, 1.0, /*accumulate=*/false);
    }
    ctx->save_for_backward({q3, k3, v3, probs});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["causal"] = causal;
    return out.view({b, h, t, v.size(3)});
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const auto &q3 = saved[0], &k3 = saved[1], &v3 = saved[2], &probs = saved[3];
    const double scale = ctx->saved_data["scale"].toDouble();
    const auto& g = grad_out[0];  // [B, H, T, Dv]
    const int64_t b = g.size(0), h = g.size(1), t = g.size(2), dv = g.size(3);
    const int64_t s = k3.size(1), d = q3.size(2);
    auto go = g.reshape({b * h, t, dv});
    auto dv3 = torch::empty({b * h, s, dv}, go.options());
    auto dp = torch::empty({b * h, t, s}, go.options());
    auto dq = torch::empty({b * h, t, d}, go.options());
    auto dk = torch::empty({b * h, s, d}, go.options());
    if (ctx->saved_data["causal"].toBool()) {
      // The blocks of the forward; P is 0 right of each block's keys, so those parts of dV, dP
      // (never read: the causal softmax backward stops at each row's last visible key), dQ and
      // dK are skipped. The last block sees every key and writes dV and dK whole; the others add
      // to their leading keys.
      auto blocks = causal_blocks(t, s);
      std::reverse(blocks.begin(), blocks.end());
      for (size_t i = 0; i < blocks.size(); ++i) {
        const auto& blk = blocks[i];
        auto dvi = dv3.narrow(1, 0, blk.keys);
        batched_gemm(dvi, probs.narrow(1, blk.row0, blk.rows()).narrow(2, 0, blk.keys).transpose(1, 2),
                     go.narrow(1, blk.row0, blk.rows()), 1.0, /*accumulate=*/i > 0);
        auto dpk = dp.narrow(1, blk.row0, blk.rows()).narrow(2, 0, blk.keys);
        batched_gemm(dpk, go.narrow(1, blk.row0, blk.rows()), v3.narrow(1, 0, blk.keys).transpose(1, 2), 1.0, false);
      }
      auto ds = models::causal_softmax_backward(dp, probs);  // [B*H, T, S]
      dp = at::Tensor();
      for (size_t i = 0; i < blocks.size(); ++i) {
        const auto& blk = blocks[i];
        auto dsi = ds.narrow(1, blk.row0, blk.rows()).narrow(2, 0, blk.keys);
        auto dqi = dq.narrow(1, blk.row0, blk.rows());
        batched_gemm(dqi, dsi, k3.narrow(1, 0, blk.keys), scale, false);
        auto dki = dk.narrow(1, 0, blk.keys);
        batched_gemm(dki, dsi.transpose(1, 2), q3.narrow(1, blk.row0, blk.rows()), scale, /*accumulate=*/i > 0);
      }
    } else {
      batched_gemm(dv3, probs.transpose(1, 2), go, 1.0, false);
      batched_gemm(dp, go, v3.transpose(1, 2), 1.0, false);
      auto ds = at::_softmax_backward_data(dp, probs, -1, at::kFloat);  // [B*H, T, S]
      dp = at::Tensor();
      batched_gemm(dq, ds, k3, scale, false);
      batched_gemm(dk, ds.transpose(1, 2), q3, scale, false);
    }
    return {dq.view({b, h, t, d}), dk.view({b, h, s, d}), dv3.view({b, h, s, dv}), at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};

}  // namespace

at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const at::Tensor& attn_mask, bool is_causal, double scale) {
  const bool plain_ops = TwiceDifferentiableAttention::active();
#if KEEL_TORCH_AT_LEAST(2, 1)
  // 2.1+ takes an explicit scale. Its is_causal aligns the triangle top-left (key j visible to
  // query i iff j <= i); keel's contract, as in the 1.13 path below, is bottom-right (j <= i + S - T:
  // the queries are the last T positions), so T != S gets an explicit mask.
  if (!plain_ops) {
    at::Tensor mask = attn_mask;
    const int64_t t = q.size(-2), s = k.size(-2);
    if (!mask.defined() && is_causal && t != s) {
      const auto allowed = torch::ones({t, s}, q.options().dtype(torch::kBool)).tril(s - t);
      mask = torch::zeros({t, s}, q.options()).masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
    }
    return at::scaled_dot_product_attention(q, k, v, mask.defined() ? c10::optional<at::Tensor>(mask) : c10::nullopt,
                                            /*dropout_p=*/0.0, /*is_causal=*/is_causal && !mask.defined(), scale);
  }
#else
  if (!plain_ops && q.scalar_type() == at::kFloat && k.scalar_type() == at::kFloat && v.scalar_type() == at::kFloat &&
      q.device().is_cpu() && q.dim() == 4 && k.dim() == 4 && v.dim() == 4) {
    const at::Tensor mask_arg = attn_mask.defined() ? attn_mask : torch::empty({0}, q.options());
    return ExplicitAttention::apply(q, k, v, mask_arg, is_causal && !attn_mask.defined(), scale);
  }
#endif
  // Other dtypes / devices (and TwiceDifferentiableAttention): explicit attention in the input
  // dtype with an fp32 softmax, plain ATen ops all the way (differentiable any number of times).
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * scale;  // [B, H, T, S]
  if (attn_mask.defined()) {
    scores = scores + attn_mask;
  } else if (is_causal) {
    const auto t = q.size(-2), s = k.size(-2);
    auto causal = torch::ones({t, s}, q.options().dtype(torch::kBool)).tril(s - t);
    scores = scores.masked_fill(causal.logical_not(), -std::numeric_limits<float>::infinity());
  }
  auto probs = torch::softmax(scores.to(torch::kFloat), -1).to(q.scalar_type());
  return torch::matmul(probs, v);
}

bool cuda_available() { return torch::cuda::is_available(); }
int cuda_device_count() { return static_cast<int>(torch::cuda::device_count()); }

bool nccl_available() {
#if defined(USE_C10D_NCCL) && defined(KEEL_WITH_CUDA) && __has_include(<nccl.h>)  // as c10d_communicator.cpp
  return torch::cuda::is_available();
#else
  return false;
#endif
}

namespace {
#if KEEL_TORCH_AT_LEAST(2, 4)
bool autocast_on() { return at::autocast::is_autocast_enabled(at::kCUDA); }
void set_autocast_on(bool on) { at::autocast::set_autocast_enabled(at::kCUDA, on); }
at::ScalarType autocast_dtype() { return at::autocast::get_autocast_dtype(at::kCUDA); }
void set_autocast_dtype(at::ScalarType t) { at::autocast::set_autocast_dtype(at::kCUDA, t); }
#else
bool autocast_on() { return at::autocast::is_enabled(); }
void set_autocast_on(bool on) { at::autocast::set_enabled(on); }
at::ScalarType autocast_dtype() { return at::autocast::get_autocast_gpu_dtype(); }
void set_autocast_dtype(at::ScalarType t) { at::autocast::set_autocast_gpu_dtype(t); }
#endif
}  // namespace

CudaAutocast::CudaAutocast(const at::Device& device, at::ScalarType dtype, bool enable) {
  if (!enable || !device.is_cuda()) return;
  TORCH_CHECK(dtype == at::kBFloat16 || dtype == at::kHalf, "CudaAutocast: dtype must be bfloat16 or float16, got ",
              dtype);
  active_ = true;
  prev_enabled_ = autocast_on();
  prev_dtype_ = autocast_dtype();
  set_autocast_on(true);
  set_autocast_dtype(dtype);
  at::autocast::increment_nesting();
}

CudaAutocast::~CudaAutocast() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast_on(prev_enabled_);
  set_autocast_dtype(prev_dtype_);
}

bool CudaAutocast::enabled() { return autocast_on(); }
at::ScalarType CudaAutocast::dtype() { return autocast_dtype(); }

}  // namespace keel::compat
