#include "models/fused_cpu_kernels.h"

#include <cmath>

namespace keel::models::kernels {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KEEL_VECTOR_CLONES __attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
#else
#define KEEL_VECTOR_CLONES
#endif

constexpr int kLanes = 16;  // independent partial sums, so that a float reduction vectorizes

namespace {

/// sum_i a[i] * b[i] over n floats.
inline float dot(const float* a, const float* b, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
  float s = 0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

KEEL_VECTOR_CLONES
void rms_norm_forward_rows(const float* x, const float* w, float* y, float* rstd, int64_t rows, int64_t h,
                           float eps) {
  for (int64_t r = 0; r < rows; ++r, x += h, y += h) {
    const float rs = 1.0f / std::sqrt(dot(x, x, h) / static_cast<float>(h) + eps);
    rstd[r] = rs;
    for (int64_t i = 0; i < h; ++i) y[i] = w[i] * (x[i] * rs);
  }
}

// y = w * x * rs, rs = (mean(x^2) + eps)^-1/2, xn = x * rs:
//   dx = rs * (g * w - xn * mean(g * w * xn)),  dw = sum over rows of g * xn.
KEEL_VECTOR_CLONES
void rms_norm_backward_rows(const float* g, const float* x, const float* w, const float* rstd, float* dx, float* dw,
                            int64_t rows, int64_t h) {
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

// out[i] = x[i] * c[i] - x[i + half] * s[i] (i < half), x[i] * c[i] + x[i - half] * s[i] (i >= half).
KEEL_VECTOR_CLONES
void rotary_forward_rows(const float* x, const float* cos, const float* sin, float* y, int64_t rows, int64_t heads,
                         int64_t d, int64_t first_row) {
  const int64_t half = d / 2;
  for (int64_t r = 0; r < rows; ++r, x += d, y += d) {
    const int64_t bt = (first_row + r) / heads;
    const float* c = cos + bt * d;
    const float* s = sin + bt * d;
    for (int64_t i = 0; i < half; ++i) y[i] = x[i] * c[i] + (-x[i + half]) * s[i];
    for (int64_t i = half; i < d; ++i) y[i] = x[i] * c[i] + x[i - half] * s[i];
  }
}

// The transpose of the above: dx[j] = g[j] c[j] + g[j + half] s[j + half] (j < half),
//                             dx[j] = g[j] c[j] - g[j - half] s[j - half] (j >= half).
KEEL_VECTOR_CLONES
void rotary_backward_rows(const float* g, const float* cos, const float* sin, float* dx, int64_t rows, int64_t heads,
                          int64_t d, int64_t first_row) {
  const int64_t half = d / 2;
  for (int64_t r = 0; r < rows; ++r, g += d, dx += d) {
    const int64_t bt = (first_row + r) / heads;
    const float* c = cos + bt * d;
    const float* s = sin + bt * d;
    for (int64_t j = 0; j < half; ++j) dx[j] = g[j] * c[j] + g[j + half] * s[j + half];
    for (int64_t j = half; j < d; ++j) dx[j] = g[j] * c[j] - g[j - half] * s[j - half];
  }
}

KEEL_VECTOR_CLONES
void adamw_elements(float* p, const float* g, float* m, float* v, int64_t n, const AdamWCoefficients& c) {
  for (int64_t i = 0; i < n; ++i) {
    const float mi = m[i] * c.beta1 + c.one_minus_beta1 * g[i];
    const float vi = v[i] * c.beta2 + c.one_minus_beta2 * g[i] * g[i];
    const float denom = std::sqrt(vi) / c.sqrt_bias_correction2 + c.eps;
    p[i] = p[i] * c.decay + c.neg_step_size * (mi / denom);
    m[i] = mi;
    v[i] = vi;
  }
}

}  // namespace keel::models::kernels
