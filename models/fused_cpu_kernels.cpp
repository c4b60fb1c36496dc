#include "models/fused_cpu_kernels.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace keel::models::kernels {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KEEL_X86_ISA_BUILDS 1
#endif

// KEEL_ISA_KERNEL(name, (params), (args)) defines `void name(params)` from the always-inline body
// `name##_body`: one build per instruction set (target attributes; the body is inlined and
// vectorized in each), and a switch on active_isa(). Explicit builds rather than GCC's
// target_clones, whose ifunc resolver picks the build itself: this way KEEL_ISA can force every
// kernel onto any path the CPU has, and the tests run each path on whatever CPU they land on. The
// target strings are the ones the clones had ("avx512f", "avx2", default), so each path computes
// the bits its clone computed.
#ifdef KEEL_X86_ISA_BUILDS
#define KEEL_ISA_KERNEL(name, params, args)                                          \
  namespace {                                                                        \
  [[gnu::target("avx512f")]] void name##_avx512 params { name##_body args; }         \
  [[gnu::target("avx2")]] void name##_avx2 params { name##_body args; }              \
  void name##_baseline params { name##_body args; }                                  \
  }                                                                                  \
  void name params {                                                                 \
    switch (active_isa()) {                                                          \
      case Isa::kAvx512: return name##_avx512 args;                                  \
      case Isa::kAvx2: return name##_avx2 args;                                      \
      case Isa::kBaseline: break;                                                    \
    }                                                                                \
    name##_baseline args;                                                            \
  }
#else
#define KEEL_ISA_KERNEL(name, params, args) \
  void name params { name##_body args; }
#endif

constexpr int kLanes = 16;  // independent partial sums, so that a float reduction vectorizes

namespace {

/// sum_i a[i] * b[i] over n floats.
[[gnu::always_inline]] inline float dot(const float* a, const float* b, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
  float s = 0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

/// max_i x[i] over n floats (-inf for n = 0), in kLanes running maxima so that it vectorizes.
[[gnu::always_inline]] inline float row_max(const float* x, int64_t n) {
  float mx[kLanes];
  for (int l = 0; l < kLanes; ++l) mx[l] = -INFINITY;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) mx[l] = x[i + l] > mx[l] ? x[i + l] : mx[l];
  float m = -INFINITY;
  for (int l = 0; l < kLanes; ++l) m = mx[l] > m ? mx[l] : m;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

/// e^x, Cephes expf: x = n ln2 + r, |r| <= ln2 / 2, e^r by a degree-6 polynomial, 2^n by the
/// exponent bits. Clamped to [-87.3, 88.3] so that n + 127 stays in [1, 254].
[[gnu::always_inline]] inline float exp_poly(float x) {
  x = x < -87.3f ? -87.3f : x;  // NaN compares false and passes through both clamps
  x = x > 88.3f ? 88.3f : x;
  // n = round(x / ln2): adding and subtracting 1.5 * 2^23 rounds to an integer (|x / ln2| < 128),
  // plain arithmetic where floor() would keep GCC from vectorizing.
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  // n is a small integer here (NaN converts to some integer; e is NaN then anyway).
  const auto bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  return e * std::bit_cast<float>(bits);
}

/// L floats in one vector (GCC's vector extension), one machine register wide in the small linear
/// layer's clone for each ISA: Vec16 a zmm (AVX-512), Vec8 a ymm (AVX2), Vec4 an xmm (x86-64). The
/// accumulators live in these; float arrays there stayed on the stack, and so does a vector wider
/// than the ISA's registers: GCC 12 moves a Vec16 through the stack in 64-bit pieces on AVX2, which
/// held the AVX2 clone to ~4.4 GB/s on a Zen 3 core that streams ~15.
typedef float Vec16 __attribute__((vector_size(64)));
typedef float Vec8 __attribute__((vector_size(32)));
typedef float Vec4 __attribute__((vector_size(16)));

template <class V>
[[gnu::always_inline]] inline V load_vec(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);  // unaligned load
  return v;
}

/// Outputs o .. o + R - 1 for all M rows of x: the R weight rows are read once, each multiplying
/// every x row; U vectors of each row per step (M * R * U independent accumulators); the tail of
/// `in` past a multiple of L * U is scalar.
template <class V, int M, int R, int U>
[[gnu::always_inline]] inline void small_linear_block(const float* x, const float* w, const float* bias, float* y,
                                                      int64_t in, int64_t out, int64_t o) {
  constexpr int L = sizeof(V) / sizeof(float);
  V acc[R][M][U];
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m)
      for (int u = 0; u < U; ++u) acc[r][m][u] = V{};
  int64_t i = 0;
  for (; i + L * U <= in; i += L * U)
    for (int u = 0; u < U; ++u) {
      V xv[M];
      for (int m = 0; m < M; ++m) xv[m] = load_vec<V>(x + m * in + i + u * L);
      for (int r = 0; r < R; ++r) {
        const V wv = load_vec<V>(w + (o + r) * in + i + u * L);
        for (int m = 0; m < M; ++m) acc[r][m][u] += wv * xv[m];
      }
    }
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m) {
      V a = acc[r][m][0];
      for (int u = 1; u < U; ++u) a += acc[r][m][u];
      float s = 0;
      for (int l = 0; l < L; ++l) s += a[l];
      for (int64_t j = i; j < in; ++j) s += w[(o + r) * in + j] * x[m * in + j];
      y[m * out + o + r] = bias != nullptr ? s + bias[o + r] : s;
    }
}

template <class V, int M, int R, int U>
[[gnu::always_inline]] inline void small_linear_outputs(const float* x, const float* w, const float* bias, float* y,
                                                        int64_t in, int64_t out, int64_t o_begin, int64_t o_end) {
  int64_t o = o_begin;
  for (; o + R <= o_end; o += R) small_linear_block<V, M, R, U>(x, w, bias, y, in, out, o);
  for (; o < o_end; ++o) small_linear_block<V, M, 1, U>(x, w, bias, y, in, out, o);
}

/// The blockings, measured: AVX-512 (Intel model 207), 4 (M <= 2) or 2 weight rows a block, one
/// zmm each: 13.6-15.6 GB/s on one core, where OpenBLAS 0.3.21's sgemv reads 7-8. AVX2 and x86-64
/// (16 vector registers; Zen 3): one weight row, a strictly sequential stream, 4 (M <= 2) or 2
/// vectors a step: 15-17 GB/s at M = 1, where a block of 4 rows of one ymm each read 11-16.
template <class V, int M>
[[gnu::always_inline]] inline void small_linear_rows_as(const float* x, const float* w, const float* bias, float* y,
                                                        int64_t in, int64_t out, int64_t o_begin, int64_t o_end) {
  if constexpr (sizeof(V) == 64)
    small_linear_outputs<V, M, M <= 2 ? 4 : 2, 1>(x, w, bias, y, in, out, o_begin, o_end);
  else
    small_linear_outputs<V, M, 1, M <= 2 ? 4 : 2>(x, w, bias, y, in, out, o_begin, o_end);
}

template <class V>
[[gnu::always_inline]] inline void small_linear_dispatch(const float* x, const float* w, const float* bias, float* y,
                                                         int64_t rows, int64_t in, int64_t out, int64_t o_begin,
                                                         int64_t o_end) {
  switch (rows) {
    case 1: small_linear_rows_as<V, 1>(x, w, bias, y, in, out, o_begin, o_end); break;
    case 2: small_linear_rows_as<V, 2>(x, w, bias, y, in, out, o_begin, o_end); break;
    case 3: small_linear_rows_as<V, 3>(x, w, bias, y, in, out, o_begin, o_end); break;
    case 4: small_linear_rows_as<V, 4>(x, w, bias, y, in, out, o_begin, o_end); break;
    default: break;  // callers keep rows in 1 .. kSmallLinearMaxRows (fused_cpu.cpp linear)
  }
}

#ifdef KEEL_X86_ISA_BUILDS
[[gnu::target("avx512f")]] void small_linear_avx512(const float* x, const float* w, const float* bias, float* y,
                                                    int64_t rows, int64_t in, int64_t out, int64_t b, int64_t e) {
  small_linear_dispatch<Vec16>(x, w, bias, y, rows, in, out, b, e);
}
[[gnu::target("avx2,fma")]] void small_linear_avx2(const float* x, const float* w, const float* bias, float* y,
                                                   int64_t rows, int64_t in, int64_t out, int64_t b, int64_t e) {
  small_linear_dispatch<Vec8>(x, w, bias, y, rows, in, out, b, e);
}
#endif
void small_linear_baseline(const float* x, const float* w, const float* bias, float* y, int64_t rows, int64_t in,
                           int64_t out, int64_t b, int64_t e) {
  small_linear_dispatch<Vec4>(x, w, bias, y, rows, in, out, b, e);
}

}  // namespace

bool isa_supported(Isa isa) {
#ifdef KEEL_X86_ISA_BUILDS
  switch (isa) {
    case Isa::kAvx512: return __builtin_cpu_supports("avx512f");
    case Isa::kAvx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::kBaseline: return true;
  }
  return false;
#else
  return isa == Isa::kBaseline;
#endif
}

Isa best_isa() {
  static const Isa best = isa_supported(Isa::kAvx512) ? Isa::kAvx512
                          : isa_supported(Isa::kAvx2) ? Isa::kAvx2
                                                      : Isa::kBaseline;
  return best;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx2: return "avx2";
    case Isa::kBaseline: return "baseline";
  }
  return "?";
}

const std::vector<Isa>& supported_isas() {
  static const std::vector<Isa> isas = [] {
    std::vector<Isa> v;
    for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kBaseline})
      if (isa_supported(isa)) v.push_back(isa);
    return v;
  }();
  return isas;
}

const char* supported_isa_names() {
  static const std::string names = [] {
    std::string s;
    for (Isa isa : supported_isas()) s += std::string(s.empty() ? "" : ",") + isa_name(isa);
    return s;
  }();
  return names.c_str();
}

namespace {

Isa isa_from_environment() {
  const char* env = std::getenv("KEEL_ISA");
  if (env == nullptr || *env == '\0' || std::strcmp(env, "auto") == 0) return best_isa();
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kBaseline}) {
    if (std::strcmp(env, isa_name(isa)) != 0) continue;
    if (isa_supported(isa)) return isa;
    std::fprintf(stderr, "keel: KEEL_ISA=%s: this CPU cannot run the %s kernels; it supports %s (or unset KEEL_ISA)\n",
                 env, env, supported_isa_names());
    std::exit(2);
  }
  std::fprintf(stderr, "keel: KEEL_ISA=%s is not a kernel path; expected one of avx512, avx2, baseline, auto "
               "(this CPU supports %s)\n", env, supported_isa_names());
  std::exit(2);
}

std::atomic<int> isa_override{-1};  // a ScopedKernelIsa's path, -1 = none

}  // namespace

Isa active_isa() {
  if (const int o = isa_override.load(std::memory_order_relaxed); o >= 0) return static_cast<Isa>(o);
  static const Isa active = isa_from_environment();
  return active;
}

ScopedKernelIsa::ScopedKernelIsa(Isa isa) : before_(isa_override.load()) {
  if (!isa_supported(isa)) {
    std::fprintf(stderr, "keel: ScopedKernelIsa(%s): this CPU supports %s\n", isa_name(isa), supported_isa_names());
    std::abort();
  }
  isa_override.store(static_cast<int>(isa));
}

ScopedKernelIsa::~ScopedKernelIsa() { isa_override.store(before_); }

void small_linear_rows(const float* x, const float* w, const float* bias, float* y, int64_t rows, int64_t in,
                       int64_t out, int64_t o_begin, int64_t o_end, Isa isa) {
#ifdef KEEL_X86_ISA_BUILDS
  if (isa == Isa::kAvx512) return small_linear_avx512(x, w, bias, y, rows, in, out, o_begin, o_end);
  if (isa == Isa::kAvx2) return small_linear_avx2(x, w, bias, y, rows, in, out, o_begin, o_end);
#endif
  small_linear_baseline(x, w, bias, y, rows, in, out, o_begin, o_end);
}

void small_linear_rows(const float* x, const float* w, const float* bias, float* y, int64_t rows, int64_t in,
                       int64_t out, int64_t o_begin, int64_t o_end) {
  small_linear_rows(x, w, bias, y, rows, in, out, o_begin, o_end, active_isa());
}

[[gnu::always_inline]] inline void rms_norm_forward_rows_body(const float* x, const float* w, float* y, float* rstd,
                                                              int64_t rows, int64_t h, float eps) {
  for (int64_t r = 0; r < rows; ++r, x += h, y += h) {
    const float rs = 1.0f / std::sqrt(dot(x, x, h) / static_cast<float>(h) + eps);
    rstd[r] = rs;
    for (int64_t i = 0; i < h; ++i) y[i] = w[i] * (x[i] * rs);
  }
}
KEEL_ISA_KERNEL(rms_norm_forward_rows,
                (const float* x, const float* w, float* y, float* rstd, int64_t rows, int64_t h, float eps),
                (x, w, y, rstd, rows, h, eps))

// y = w * x * rs, rs = (mean(x^2) + eps)^-1/2, xn = x * rs:
//   dx = rs * (g * w - xn * mean(g * w * xn)),  dw = sum over rows of g * xn.
[[gnu::always_inline]] inline void rms_norm_backward_rows_body(const float* g, const float* x, const float* w,
                                                               const float* rstd, float* dx, float* dw, int64_t rows,
                                                               int64_t h) {
  for (int64_t r = 0; r < rows; ++r, g += h, x += h, dx += h) {
    const float rs = rstd[r];
    float acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= h; i += kLanes)
      for (int l = 0; l < kLanes; ++l) acc[l] += g[i + l] * w[i + l] * x[i + l];
    float gwx = 0;
    for (int l = 0; l < kLanes; ++l) gwx += acc[l];
    for (; i < h; ++i) gwx += g[i] * w[i] * x[i];
    const float m = gwx * rs / static_cast<float>(h);  // mean(g * w * xn)
    for (int64_t j = 0; j < h; ++j) {
      const float xn = x[j] * rs;
      dx[j] = rs * (g[j] * w[j] - xn * m);
      dw[j] += g[j] * xn;
    }
  }
}
KEEL_ISA_KERNEL(rms_norm_backward_rows,
                (const float* g, const float* x, const float* w, const float* rstd, float* dx, float* dw, int64_t rows,
                 int64_t h),
                (g, x, w, rstd, dx, dw, rows, h))

// out[i] = x[i] * c[i] - x[i + half] * s[i] (i < half), x[i] * c[i] + x[i - half] * s[i] (i >= half).
[[gnu::always_inline]] inline void rotary_forward_rows_body(const float* x, const float* cos, const float* sin,
                                                            float* y, int64_t rows, int64_t heads, int64_t d,
                                                            int64_t first_row) {
  const int64_t half = d / 2;
  for (int64_t r = 0; r < rows; ++r, x += d, y += d) {
    const int64_t bt = (first_row + r) / heads;
    const float* c = cos + bt * d;
    const float* s = sin + bt * d;
    for (int64_t i = 0; i < half; ++i) y[i] = x[i] * c[i] + (-x[i + half]) * s[i];
    for (int64_t i = half; i < d; ++i) y[i] = x[i] * c[i] + x[i - half] * s[i];
  }
}
KEEL_ISA_KERNEL(rotary_forward_rows,
                (const float* x, const float* cos, const float* sin, float* y, int64_t rows, int64_t heads, int64_t d,
                 int64_t first_row),
                (x, cos, sin, y, rows, heads, d, first_row))

// The transpose of the above: dx[j] = g[j] c[j] + g[j + half] s[j + half] (j < half),
//                             dx[j] = g[j] c[j] - g[j - half] s[j - half] (j >= half).
[[gnu::always_inline]] inline void rotary_backward_rows_body(const float* g, const float* cos, const float* sin,
                                                             float* dx, int64_t rows, int64_t heads, int64_t d,
                                                             int64_t first_row) {
  const int64_t half = d / 2;
  for (int64_t r = 0; r < rows; ++r, g += d, dx += d) {
    const int64_t bt = (first_row + r) / heads;
    const float* c = cos + bt * d;
    const float* s = sin + bt * d;
    for (int64_t j = 0; j < half; ++j) dx[j] = g[j] * c[j] + g[j + half] * s[j + half];
    for (int64_t j = half; j < d; ++j) dx[j] = g[j] * c[j] - g[j - half] * s[j - half];
  }
}
KEEL_ISA_KERNEL(rotary_backward_rows,
                (const float* g, const float* cos, const float* sin, float* dx, int64_t rows, int64_t heads, int64_t d,
                 int64_t first_row),
                (g, cos, sin, dx, rows, heads, d, first_row))

[[gnu::always_inline]] inline void exp_elements_body(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = exp_poly(x[i]);
}
KEEL_ISA_KERNEL(exp_elements, (const float* x, float* y, int64_t n), (x, y, n))

[[gnu::always_inline]] inline void token_logprob_forward_rows_body(const float* x, const int64_t* target, float* out,
                                                                   float* lse, int64_t rows, int64_t v, float s) {
  for (int64_t r = 0; r < rows; ++r, x += v) {
    float m = row_max(x, v) * s;  // s > 0: the max of s * x
    if (m == -INFINITY) m = 0;  // every logit -inf: lse = -inf below, not NaN from -inf - -inf
    float acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= v; i += kLanes)
      for (int l = 0; l < kLanes; ++l) acc[l] += exp_poly(s * x[i + l] - m);
    float sum = 0;
    for (int l = 0; l < kLanes; ++l) sum += acc[l];
    for (; i < v; ++i) sum += exp_poly(s * x[i] - m);
    lse[r] = m + std::log(sum);
    out[r] = s * x[target[r]] - lse[r];
  }
}
KEEL_ISA_KERNEL(token_logprob_forward_rows,
                (const float* x, const int64_t* target, float* out, float* lse, int64_t rows, int64_t v, float s),
                (x, target, out, lse, rows, v, s))

[[gnu::always_inline]] inline void token_logprob_backward_rows_body(const float* x, const int64_t* target,
                                                                    const float* lse, const float* g, float* dx,
                                                                    int64_t rows, int64_t v, float s) {
  for (int64_t r = 0; r < rows; ++r, x += v, dx += v) {
    const float gs = g[r] * s, l = lse[r];
    for (int64_t i = 0; i < v; ++i) dx[i] = -gs * exp_poly(s * x[i] - l);
    dx[target[r]] += gs;
  }
}
KEEL_ISA_KERNEL(token_logprob_backward_rows,
                (const float* x, const int64_t* target, const float* lse, const float* g, float* dx, int64_t rows,
                 int64_t v, float s),
                (x, target, lse, g, dx, rows, v, s))

[[gnu::always_inline]] inline void swiglu_forward_elements_body(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] / (1.0f + exp_poly(-a[i])) * b[i];
}
KEEL_ISA_KERNEL(swiglu_forward_elements, (const float* a, const float* b, float* y, int64_t n), (a, b, y, n))

[[gnu::always_inline]] inline void swiglu_backward_elements_body(const float* a, const float* b, const float* g,
                                                                 float* da, float* db, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float s = 1.0f / (1.0f + exp_poly(-a[i]));
    da[i] = g[i] * b[i] * s * (1.0f + a[i] * (1.0f - s));
    db[i] = g[i] * a[i] * s;
  }
}
KEEL_ISA_KERNEL(swiglu_backward_elements,
                (const float* a, const float* b, const float* g, float* da, float* db, int64_t n),
                (a, b, g, da, db, n))

[[gnu::always_inline]] inline void causal_softmax_rows_body(float* x, int64_t rows, int64_t t, int64_t s,
                                                            int64_t first_row) {
  for (int64_t r = 0; r < rows; ++r, x += s) {
    const int64_t i = (first_row + r) % t;
    const int64_t n = std::min(s, std::max<int64_t>(0, i + s - t + 1));  // visible keys
    float m = row_max(x, n);
    if (m == -INFINITY) m = 0;
    float sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      x[j] = exp_poly(x[j] - m);
      sum += x[j];
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < n; ++j) x[j] *= inv;
    for (int64_t j = n; j < s; ++j) x[j] = 0.0f;
  }
}
KEEL_ISA_KERNEL(causal_softmax_rows,
                (float* x, int64_t rows, int64_t t, int64_t s, int64_t first_row),
                (x, rows, t, s, first_row))

[[gnu::always_inline]] inline void causal_softmax_backward_rows_body(const float* p, const float* dp, float* ds,
                                                                     int64_t rows, int64_t t, int64_t s,
                                                                     int64_t first_row) {
  for (int64_t r = 0; r < rows; ++r, p += s, dp += s, ds += s) {
    const int64_t i = (first_row + r) % t;
    const int64_t n = std::min(s, std::max<int64_t>(0, i + s - t + 1));
    const float d = dot(p, dp, n);
    for (int64_t j = 0; j < n; ++j) ds[j] = p[j] * (dp[j] - d);
    for (int64_t j = n; j < s; ++j) ds[j] = 0.0f;
  }
}
KEEL_ISA_KERNEL(causal_softmax_backward_rows,
                (const float* p, const float* dp, float* ds, int64_t rows, int64_t t, int64_t s, int64_t first_row),
                (p, dp, ds, rows, t, s, first_row))

[[gnu::always_inline]] inline void attention_rows_body(const float* q, int64_t q_stride, const float* k,
                                                       int64_t k_stride, const float* v, int64_t v_stride,
                                                       const float* mask, int64_t mask_stride, float* out,
                                                       int64_t out_stride, float* scores, int64_t rows, int64_t s,
                                                       int64_t d, float scale) {
  for (int64_t r = 0; r < rows; ++r, q += q_stride, out += out_stride) {
    const float* m_row = mask + r * mask_stride;
    for (int64_t j = 0; j < s; ++j) scores[j] = dot(q, k + j * k_stride, d) * scale + m_row[j];
    const float m = row_max(scores, s);  // -inf only when every key is masked: NaN below, as ATen
    float sum = 0;
    for (int64_t j = 0; j < s; ++j) {
      const float e = scores[j] == -INFINITY ? 0.0f : exp_poly(scores[j] - m);
      scores[j] = e;
      sum += e;
    }
    const float inv = 1.0f / sum;
    for (int64_t i = 0; i < d; ++i) out[i] = 0.0f;
    for (int64_t j = 0; j < s; ++j) {
      const float p = scores[j] * inv;
      if (p == 0.0f) continue;  // masked keys (padding, the sliding window's far past)
      const float* vj = v + j * v_stride;
      for (int64_t i = 0; i < d; ++i) out[i] += p * vj[i];
    }
  }
}
KEEL_ISA_KERNEL(attention_rows,
                (const float* q, int64_t q_stride, const float* k, int64_t k_stride, const float* v, int64_t v_stride,
                 const float* mask, int64_t mask_stride, float* out, int64_t out_stride, float* scores, int64_t rows,
                 int64_t s, int64_t d, float scale),
                (q, q_stride, k, k_stride, v, v_stride, mask, mask_stride, out, out_stride, scores, rows, s, d, scale))

/// Asks for the n floats at p to be brought into cache (one prefetch per 64-byte line): the next
/// block of a paged cache while this one is computed, so that a row's scattered blocks stream
/// like one contiguous run.
[[gnu::always_inline]] inline void prefetch_rows(const float* p, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) __builtin_prefetch(p + i, 0, 3);
}

[[gnu::always_inline]] inline void paged_attention_rows_body(const float* q, int64_t rows, const float* k_pool,
                                                             const float* v_pool, int64_t block_stride,
                                                             const int32_t* table, int64_t block_size,
                                                             int64_t first_key, int64_t s, int64_t d, float scale,
                                                             float* out, float* scores) {
  const int64_t n = s - first_key;
  const int64_t first_block = first_key / block_size, end_block = (s + block_size - 1) / block_size;
  for (int64_t r = 0; r < rows; ++r, q += d, out += d) {
    // Block by block: keys j0 .. j1 - 1 of block b are rows j0 - b * block_size .. of its storage.
    float* sc = scores;
    for (int64_t b = first_block; b < end_block; ++b) {
      const int64_t j0 = std::max(first_key, b * block_size), j1 = std::min(s, (b + 1) * block_size);
      const float* kb = k_pool + table[b] * block_stride + (j0 - b * block_size) * d;
      if (b + 1 < end_block) prefetch_rows(k_pool + table[b + 1] * block_stride, block_size * d);
      for (int64_t j = j0; j < j1; ++j, kb += d) *sc++ = dot(q, kb, d) * scale;
    }
    const float m = row_max(scores, n);
    float sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      const float e = exp_poly(scores[j] - m);
      scores[j] = e;
      sum += e;
    }
    const float inv = 1.0f / sum;
    for (int64_t i = 0; i < d; ++i) out[i] = 0.0f;
    sc = scores;
    for (int64_t b = first_block; b < end_block; ++b) {
      const int64_t j0 = std::max(first_key, b * block_size), j1 = std::min(s, (b + 1) * block_size);
      const float* vb = v_pool + table[b] * block_stride + (j0 - b * block_size) * d;
      if (b + 1 < end_block) prefetch_rows(v_pool + table[b + 1] * block_stride, block_size * d);
      for (int64_t j = j0; j < j1; ++j, vb += d) {
        const float p = *sc++ * inv;
        for (int64_t i = 0; i < d; ++i) out[i] += p * vb[i];
      }
    }
  }
}
KEEL_ISA_KERNEL(paged_attention_rows,
                (const float* q, int64_t rows, const float* k_pool, const float* v_pool, int64_t block_stride,
                 const int32_t* table, int64_t block_size, int64_t first_key, int64_t s, int64_t d, float scale,
                 float* out, float* scores),
                (q, rows, k_pool, v_pool, block_stride, table, block_size, first_key, s, d, scale, out, scores))

[[gnu::always_inline]] inline void adamw_elements_body(float* p, const float* g, float* m, float* v, int64_t n,
                                                       const AdamWCoefficients& c) {
  for (int64_t i = 0; i < n; ++i) {
    const float mi = m[i] * c.beta1 + c.one_minus_beta1 * g[i];
    const float vi = v[i] * c.beta2 + c.one_minus_beta2 * g[i] * g[i];
    const float denom = std::sqrt(vi) / c.sqrt_bias_correction2 + c.eps;
    p[i] = p[i] * c.decay + c.neg_step_size * (mi / denom);
    m[i] = mi;
    v[i] = vi;
  }
}
KEEL_ISA_KERNEL(adamw_elements,
                (float* p, const float* g, float* m, float* v, int64_t n, const AdamWCoefficients& c),
                (p, g, m, v, n, c))

}  // namespace keel::models::kernels
