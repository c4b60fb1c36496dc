#include "trainer/rollout/staleness.h"

#include <numeric>

#include <fmt/format.h>
#include <torch/torch.h>

namespace keel::rollout {

StalenessResult filter_stale_rows(const at::Tensor& row_versions, int64_t current_version, int max_staleness) {
  TORCH_CHECK(row_versions.defined() && row_versions.dim() == 1 && row_versions.scalar_type() == torch::kLong,
              "filter_stale_rows: row_versions must be [N] int64, got ", row_versions.sizes());
  TORCH_CHECK(max_staleness >= 0, "filter_stale_rows: max_staleness must be >= 0, got ", max_staleness);
  const auto staleness = current_version - row_versions;
  TORCH_CHECK(row_versions.numel() == 0 || staleness.min().item<int64_t>() >= 0,
              "filter_stale_rows: a row's version is newer than the learner's ", current_version);
  StalenessResult out;
  const auto ok = staleness <= max_staleness;
  out.keep = ok.nonzero().squeeze(1);
  out.dropped = row_versions.numel() - out.keep.numel();
  for (int d = 0; d <= max_staleness; ++d)
    out.metrics[fmt::format("async/staleness_{}", d)] = (staleness == d).sum().item<double>();
  const bool any = row_versions.numel() > 0;
  out.metrics["async/staleness_mean"] = any ? staleness.to(torch::kDouble).mean().item<double>() : 0.0;
  out.metrics["async/staleness_max"] = any ? staleness.max().item<double>() : 0.0;
  out.metrics["rollout/dropped_stale"] = static_cast<double>(out.dropped);
  return out;
}

int64_t whole_units(int64_t rows, int64_t group_size, int64_t mini_batch_size) {
  TORCH_CHECK(group_size > 0 && mini_batch_size > 0, "whole_units: group_size ", group_size, " and mini_batch_size ",
              mini_batch_size, " must be > 0");
  const int64_t unit = std::lcm(group_size, mini_batch_size);
  return rows / unit * unit;
}

}  // namespace keel::rollout
