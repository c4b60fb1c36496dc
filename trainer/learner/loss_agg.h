// Loss aggregation (spec/credit-assignment.md §1.6): turns a per-token loss matrix into the scalar
// a micro-batch contributes to its mini-batch loss, with denominators taken over the WHOLE
// mini-batch (all micro-batches, all data-parallel ranks), so the gradient of a mini-batch does
// not depend on how it is split.
//
// Deliberately not here: the all-reduce of the counts across ranks (the distributed layer sums
// AggCounts and passes the result in), and any per-loss math.
//
// Shape legend: N rows (samples) in this micro-batch, T padded response length.
#pragma once

#include <string>

#include <torch/types.h>

namespace keel::learner {

/// The four aggregation modes of spec §1.6 (YAML names in agg_mode_name()).
enum class AggMode {
  kTokenMean,           ///< "token-mean":              Σ m·ℓ / Σ m
  kSeqMeanTokenSum,     ///< "seq-mean-token-sum":      Σ m·ℓ / N'
  kSeqMeanTokenMean,    ///< "seq-mean-token-mean":     Σ_n (Σ_t m·ℓ / len_n) / N'
  kSeqMeanTokenSumNorm, ///< "seq-mean-token-sum-norm": Σ m·ℓ / (N'·L_max)   (Dr.GRPO, TRL form)
};

/// Parses a YAML mode name; an unknown name throws keel::Error listing the four choices.
AggMode parse_agg_mode(const std::string& name);
/// The YAML name of a mode.
const char* agg_mode_name(AggMode mode);

/// The counts an aggregation denominator needs. Computed per micro-batch (or per rank), summed
/// over every micro-batch of the mini-batch and all-reduced (SUM) over data-parallel ranks.
struct AggCounts {
  double tokens = 0;  ///< Σ_{n,t} m[n,t]
  double seqs = 0;    ///< N' = number of rows with len_n > 0 (fully-masked rows excluded)

  AggCounts& operator+=(const AggCounts& o) {
    tokens += o.tokens;
    seqs += o.seqs;
    return *this;
  }
};

/// Counts of a mask [N, T] (bool or 0/1 floating). Reads two scalars back to the host.
AggCounts count_for_agg(const torch::Tensor& mask);

/// The global denominators of one mini-batch, computed once and handed unchanged to every
/// micro-batch's loss. Summing the micro-batch losses over micro-batches and ranks gives the
/// mini-batch loss; a data-parallel layer that AVERAGES gradients over W ranks (instead of
/// summing) must multiply each loss by W (verl multiplies by dp_size for the same reason).
struct AggContext {
  double tokens = 0;  ///< global Σ m over the mini-batch
  double seqs = 0;    ///< global number of non-empty rows of the mini-batch

  static AggContext from_counts(const AggCounts& global) { return {global.tokens, global.seqs}; }
  /// Convenience for an unsplit mini-batch (one micro-batch, one rank): counts of `mask` [N, T].
  static AggContext from_mask(const torch::Tensor& mask) { return from_counts(count_for_agg(mask)); }
};

/// The mode plus the Dr.GRPO constant (config learner.loss_agg / learner.agg_norm_len).
struct AggOptions {
  AggMode mode = AggMode::kTokenMean;
  double norm_len = 512;  ///< L_max of seq-mean-token-sum-norm (TRL max_completion_length)
};

/// This micro-batch's contribution to agg(ℓ, m, mode) over the whole mini-batch.
///   loss_mat [N, T] per-token loss (any floating dtype, may require grad)
///   mask     [N, T] response/loss mask (bool or 0/1), rows are never split across micro-batches
/// An empty global denominator (nothing valid in the whole mini-batch) yields 0 with the graph
/// kept; an empty context with valid tokens in this micro-batch fails a TORCH_CHECK. Masked positions may hold any finite value; they never reach the result or its gradient.
torch::Tensor agg_loss(const torch::Tensor& loss_mat, const torch::Tensor& mask, const AggOptions& opts,
                       const AggContext& ctx);

/// Σ m·x / Σ m over this tensor only (metrics; not a loss). 0 when the mask is empty. [N, T] each.
torch::Tensor masked_mean(const torch::Tensor& x, const torch::Tensor& mask);
/// masked_mean(...) read back as a double (metrics).
double masked_mean_value(const torch::Tensor& x, const torch::Tensor& mask);

}  // namespace keel::learner
