// The raw loops behind models/fused_cpu.h: plain C++ over float pointers, no LibTorch, so this
// file builds in a second with its own flags: -O3 (GCC's -O2 cost model does not vectorize these
// loops), -fno-math-errno and -fno-trapping-math (with them a sqrt is a vector instruction and
// the clamps of exp_elements if-convert; keel reads neither errno nor FP exception flags). Each
// kernel is compiled for AVX-512F, AVX2 and baseline x86-64 and dispatched on ISA features at
// run time (active_isa(): the widest the CPU has, or the one KEEL_ISA forces, so that every path
// can be tested on any CPU that has it). Not GCC's "arch=" clones, which dispatch on the CPU
// model: this project's CPU (Intel model 207) is as unknown to GCC 12 as to OpenBLAS, so they
// silently ran the SSE2 clone (exp 1.98 ns/element vs 0.77). Callers split rows / elements over
// threads.
//
// Built without FMA contraction (-ffp-contract=off): with it GCC fused a * b + c into one rounding
// in the AVX-512 build only, and not always alike in a loop's vector body and its scalar tail, so
// an element's bits depended on the ISA and on where it fell in the array (its length mod 16). A
// data-parallel run, whose tensors have other lengths than one process's, then drifted from it
// (Adam turns such 1-ulp differences of near-zero gradients into 1e-4 weight differences). Now
// every path computes the same bits for the same inputs, the small linear layer aside: its vector
// width, and so its summation order, is the ISA's.
#pragma once

#include <cstdint>
#include <vector>

namespace keel::models {

/// One AdamW update, with the arithmetic of torch::optim::AdamW::step in the same order (one pass
/// over p, g, m, v where torch runs nine ATen ops):
///   p *= decay;  m = m * beta1 + (1 - beta1) g;  v = v * beta2 + (1 - beta2) g g;
///   p += neg_step_size * m / (sqrt(v) / sqrt_bias_correction2 + eps).
struct AdamWCoefficients {
  float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, sqrt_bias_correction2, eps, neg_step_size;
};

}  // namespace keel::models

namespace keel::models::kernels {

/// Rows of width h: y = w * x * rstd, rstd[r] = (mean(x_r^2) + eps)^-1/2.
void rms_norm_forward_rows(const float* x, const float* w, float* y, float* rstd, int64_t rows, int64_t h, float eps);
/// dx = rstd * (g * w - xn * mean(g * w * xn)), xn = x * rstd; dw[j] += sum over the rows of g * xn.
void rms_norm_backward_rows(const float* g, const float* x, const float* w, const float* rstd, float* dx, float* dw,
                            int64_t rows, int64_t h);
/// Rows of width d of a [B, T, heads, d] tensor, starting at row first_row; cos / sin [B, T, d].
void rotary_forward_rows(const float* x, const float* cos, const float* sin, float* y, int64_t rows, int64_t heads,
                         int64_t d, int64_t first_row);
void rotary_backward_rows(const float* g, const float* cos, const float* sin, float* dx, int64_t rows, int64_t heads,
                          int64_t d, int64_t first_row);
/// y[i] = e^x[i] by range reduction and a degree-6 polynomial (Cephes expf): within 2 ulp of
/// std::exp for x in [-87.3, 88.3], inputs beyond clamped (so tiny results are ~1e-38, not 0);
/// NaN stays NaN. Pure arithmetic, so the loops that use it vectorize.
void exp_elements(const float* x, float* y, int64_t n);

/// Rows of width v: lse[r] = logsumexp(s * x_r), out[r] = s * x_r[target[r]] - lse[r].
void token_logprob_forward_rows(const float* x, const int64_t* target, float* out, float* lse, int64_t rows,
                                int64_t v, float s);
/// dx_r = g[r] * s * (onehot(target[r]) - exp(s * x_r - lse[r])).
void token_logprob_backward_rows(const float* x, const int64_t* target, const float* lse, const float* g, float* dx,
                                 int64_t rows, int64_t v, float s);

/// SwiGLU: y = silu(a) * b = a * sigmoid(a) * b over n elements.
void swiglu_forward_elements(const float* a, const float* b, float* y, int64_t n);
/// da = g * b * s * (1 + a * (1 - s)), db = g * a * s, s = sigmoid(a).
void swiglu_backward_elements(const float* a, const float* b, const float* g, float* da, float* db, int64_t n);

/// Causal softmax in place over rows of width s of [N, T, S] scores, rows first_row .. first_row +
/// rows - 1 counted over N * T: row i of each T sees keys 0 .. i + S - T (queries are the last T
/// positions); those get the softmax, the keys after get 0.
void causal_softmax_rows(float* x, int64_t rows, int64_t t, int64_t s, int64_t first_row);
/// Its backward: ds = p * (dp - sum(p * dp)) over the visible keys, 0 after (dp there is not read).
void causal_softmax_backward_rows(const float* p, const float* dp, float* ds, int64_t rows, int64_t t, int64_t s,
                                  int64_t first_row);

/// The instruction sets every kernel here is built for (x86-64; elsewhere only kBaseline).
enum class Isa { kBaseline, kAvx2, kAvx512 };
bool isa_supported(Isa isa);
Isa best_isa();  // the widest this CPU supports
/// The build every kernel runs: best_isa(), unless the environment variable KEEL_ISA names one
/// (avx512 | avx2 | baseline, or auto), read once. A name this CPU cannot run, or an unknown one,
/// ends the process with exit code 2 and a message saying which paths the CPU has: results would
/// otherwise silently come from another path than the one asked for.
Isa active_isa();
/// Tests: every kernel runs `isa` (one this CPU supports) while this lives, then the path before.
class ScopedKernelIsa {
 public:
  explicit ScopedKernelIsa(Isa isa);
  ~ScopedKernelIsa();
  ScopedKernelIsa(const ScopedKernelIsa&) = delete;
  ScopedKernelIsa& operator=(const ScopedKernelIsa&) = delete;

 private:
  int before_;
};
const char* isa_name(Isa isa);  // "avx512", "avx2", "baseline"
/// The paths this CPU supports, widest first.
const std::vector<Isa>& supported_isas();
/// Their names, comma-separated ("avx512,avx2,baseline").
const char* supported_isa_names();

/// Linear layer over a few rows (a decode step): y[r, o] = sum_i x[r, i] * w[o, i] (+ bias[o] when
/// bias is not null) for r < rows (1 .. kSmallLinearMaxRows) and the outputs o_begin .. o_end - 1;
/// x [rows, in], w [out, in], y [rows, out], all row-major. One streaming pass over those rows of
/// w with every x row in registers. At batch 1 a matrix-vector product is bound by reading the
/// weight: this reads 14-17 GB/s on one core (Intel model 207 with AVX-512, AMD Zen 3 with AVX2),
/// OpenBLAS 0.3.21's sgemv 7-8 (tests/models/fused_cpu_test.cpp, bench/decode_bench.cpp). The
/// overload without `isa` runs active_isa(); one with it runs that build (it must be supported).
inline constexpr int64_t kSmallLinearMaxRows = 4;
void small_linear_rows(const float* x, const float* w, const float* bias, float* y, int64_t rows, int64_t in,
                       int64_t out, int64_t o_begin, int64_t o_end);
void small_linear_rows(const float* x, const float* w, const float* bias, float* y, int64_t rows, int64_t in,
                       int64_t out, int64_t o_begin, int64_t o_end, Isa isa);

/// Attention of a few query rows (a decode step) over s keys, one row at a time:
///   out_r = sum_j p_j v_j,  p = softmax_j(scale * q_r . k_j + mask_r[j]),
/// q, out rows of width d (row strides q_stride, out_stride), keys and values rows of width d
/// (row strides k_stride, v_stride: a KV cache read in place), additive mask rows of width s (row
/// stride mask_stride). A key whose score is -inf gets probability exactly 0, as in a
/// softmax; a row with every key masked gets NaN, as ATen's softmax does. scores: scratch of s
/// floats.
void attention_rows(const float* q, int64_t q_stride, const float* k, int64_t k_stride, const float* v,
                    int64_t v_stride, const float* mask, int64_t mask_stride, float* out, int64_t out_stride,
                    float* scores, int64_t rows, int64_t s, int64_t d, float scale);

/// Attention of `rows` query rows (the query heads that share one key/value head, rows of width d,
/// contiguous) over the keys first_key .. s - 1 of one sequence in a paged KV cache: key j lives
/// in block table[j / block_size] at row j % block_size, i.e. at k_pool + table[..] * block_stride
/// + (j % block_size) * d (k_pool / v_pool already offset to the key/value head). Causal by
/// construction (the query is the last key). out rows of width d, contiguous; scores: scratch of
/// s - first_key floats. Same arithmetic as attention_rows without a mask.
void paged_attention_rows(const float* q, int64_t rows, const float* k_pool, const float* v_pool, int64_t block_stride,
                          const int32_t* table, int64_t block_size, int64_t first_key, int64_t s, int64_t d,
                          float scale, float* out, float* scores);

/// n elements of one AdamW update (see AdamWCoefficients).
void adamw_elements(float* p, const float* g, float* m, float* v, int64_t n, const AdamWCoefficients& c);

}  // namespace keel::models::kernels
