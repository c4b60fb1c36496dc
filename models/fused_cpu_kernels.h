// The raw loops behind models/fused_cpu.h: plain C++ over float pointers, no LibTorch, so this
// file builds in a second with its own flags (-O3 -fno-math-errno: GCC's -O2 cost model does not
// vectorize these loops, and with errno a sqrt cannot be a vector instruction; keel never reads
// errno after math functions). Each kernel is compiled for AVX-512, AVX2 + FMA and baseline x86-64
// (target_clones; the loader picks one for the CPU). Callers split rows / elements over threads.
#pragma once

#include <cstdint>

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
/// n elements of one AdamW update (see AdamWCoefficients).
void adamw_elements(float* p, const float* g, float* m, float* v, int64_t n, const AdamWCoefficients& c);

}  // namespace keel::models::kernels
