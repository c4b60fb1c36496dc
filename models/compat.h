// The one place that knows LibTorch 1.13 (Debian, CPU) from LibTorch 2.x (CUDA machines).
// Everything else in keel is written once against the helpers below.
#pragma once

#include <sstream>
#include <string>
#include <type_traits>

#include <ATen/core/Tensor.h>
#include <torch/version.h>

#define KEEL_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// c10d: from 2.0 the process-group implementations (ProcessGroupGloo, ProcessGroupNCCL) derive
// from c10d::Backend and c10d::ProcessGroup became a dispatching wrapper around backends; in 1.13
// they derive from c10d::ProcessGroup itself. Both bases carry the same collective methods
// (broadcast, allreduce, allgather, send, recv, barrier), so code that holds an implementation
// directly (trainer/dist/c10d_communicator.cpp) names it through this macro. Needs the c10d headers
// included first; nothing here includes them.
#if KEEL_TORCH_AT_LEAST(2, 0)
#define KEEL_C10D_BACKEND ::c10d::Backend
#else
#define KEEL_C10D_BACKEND ::c10d::ProcessGroup
#endif

namespace keel::compat {

/// The key of a parameter in torch's optimizer state map (Key: the map's key_type): its TensorImpl's
/// address as a string in LibTorch 1.13, the pointer itself in later versions.
template <typename Key>
Key optimizer_state_key(const at::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    // What 1.13's c10::guts::to_string (gone in 2.x) wrote: the address through an ostream.
    std::ostringstream key;
    key << p.unsafeGetTensorImpl();
    return key.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

/// "1.13.1" etc.
inline const char* torch_version() { return TORCH_VERSION; }

/// Fused scaled-dot-product attention exists from 2.0; 1.13 gets the explicit softmax(QK^T)V.
/// q,k,v: [B, H, T, D]; mask: additive [.., T, S] float mask or undefined; causal applies when mask
/// is undefined. Defined in compat.cpp so that only one TU sees the version switch.
at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const at::Tensor& attn_mask, bool is_causal, double scale);

/// While alive (in this thread), scaled_dot_product_attention runs as plain differentiable ATen ops
/// (matmul, softmax) instead of the fused 2.x kernel or the hand-written fp32 ExplicitAttention,
/// whose backward is not itself differentiable; the fused CPU kernels of models/fused_cpu.h
/// (RMSNorm, rotary, SwiGLU, token log-probs) likewise fall back to ATen composites. Needed when
/// a loss differentiates a gradient (double backward: the gradient penalty of spec D6); slower and
/// hungrier, so off by default.
class TwiceDifferentiableAttention {
 public:
  TwiceDifferentiableAttention();
  ~TwiceDifferentiableAttention();
  TwiceDifferentiableAttention(const TwiceDifferentiableAttention&) = delete;
  TwiceDifferentiableAttention& operator=(const TwiceDifferentiableAttention&) = delete;
  /// Whether a guard is alive in this thread.
  static bool active();

 private:
  bool prev_;
};

/// OpenBLAS's own thread count (openblas_set_num_threads; OpenBLAS-pthread keeps a pool of its
/// own that ATen's at::set_num_threads does not reach). No-op for other BLAS libraries.
void set_blas_threads(int n);

/// While alive, OpenBLAS runs each call single-threaded in the calling thread (OpenBLAS-pthread
/// otherwise hands every sgemm/sgemv to its own thread pool). For many small matmuls (a decode
/// step: M = batch rows) that handoff dominates, and on a loaded machine each one waits for the
/// worker to be scheduled: measured on the shared 2-core machine (load ~8), a [1, 512] x
/// [512, 1376] matmul took 32 ms with 2 OpenBLAS threads vs 1.9 ms with 1, [32, 512] x [512, 1376]
/// 32 ms vs 8.9 ms. No-op for other BLAS libraries, inside an ATen parallel region, or when
/// `enable` is false.
/// The setting is process-wide: keel does its math from one thread at a time.
class SingleThreadedBlas {
 public:
  explicit SingleThreadedBlas(bool enable = true);
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  void (*set_)(int) = nullptr;
  int prev_ = 0;
};

/// SingleThreadedBlas plus ATen's intra-op threads set to 1 while alive: for work so small (a
/// decode step) that any fork/join costs more than it saves. Same caveats as above.
class SingleThreaded {
 public:
  explicit SingleThreaded(bool enable = true);
  ~SingleThreaded();
  SingleThreaded(const SingleThreaded&) = delete;
  SingleThreaded& operator=(const SingleThreaded&) = delete;
  /// The ATen thread count the guards alive in this thread took away (0 when none did): what a
  /// kernel that may still split its work inside the guard (models::linear) could use.
  static int held_threads();

 private:
  SingleThreadedBlas blas_;
  int prev_ = 0;
  int prev_held_ = 0;
  bool omp_only_ = false;  // set through the calling thread's OpenMP setting (compat.cpp)
};

/// Whether this LibTorch was built with CUDA and a device is present.
bool cuda_available();
/// Number of visible CUDA devices (0 on CPU builds).
int cuda_device_count();
/// Whether NCCL support is compiled into this LibTorch (USE_C10D_NCCL, which the CUDA LibTorch's
/// CMake targets define) and a CUDA device is present.
bool nccl_available();

/// While alive and enabled, CUDA autocast runs eligible ops (matmuls, attention) in `dtype`
/// (bfloat16 in keel) while parameters stay fp32, as torch.autocast("cuda", dtype) does. A no-op
/// when disabled or for a CPU device (keel computes in fp32 on CPU). Restores the previous state
/// and clears autocast's cast cache when the outermost guard ends. 1.13 spells the API
/// at::autocast::set_enabled / set_autocast_gpu_dtype; 2.4+ takes the device type.
class CudaAutocast {
 public:
  CudaAutocast(const at::Device& device, at::ScalarType dtype, bool enable = true);
  ~CudaAutocast();
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

  /// Whether CUDA autocast is on in this thread right now, and its dtype.
  static bool enabled();
  static at::ScalarType dtype();

 private:
  bool active_ = false;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kFloat;
};

}  // namespace keel::compat
