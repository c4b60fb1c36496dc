#include "trainer/credit/token_placement.h"

#include <torch/torch.h>

namespace keel::credit {

at::Tensor place_sequence_rewards(const at::Tensor& rewards, const at::Tensor& mask) {
  TORCH_CHECK(mask.dim() == 2 && rewards.dim() == 1 && rewards.size(0) == mask.size(0),
              "place_sequence_rewards: rewards [N] and mask [N, T] expected, got ", rewards.sizes(), " and ",
              mask.sizes());
  const auto m = mask.to(torch::kBool);
  const int64_t t = m.size(1);
  // Last index with mask 1: the largest (index + 1) over kept positions, minus 1.
  const auto pos = torch::arange(1, t + 1, torch::kLong).unsqueeze(0).expand_as(m);
  const auto last = (pos * m.to(torch::kLong)).amax(1) - 1;  // -1 on empty rows
  auto out = torch::zeros(m.sizes(), torch::kFloat);
  const auto has = last >= 0;
  out.scatter_(1, last.clamp_min(0).unsqueeze(1), rewards.to(torch::kFloat).unsqueeze(1));
  return out * has.to(torch::kFloat).unsqueeze(1);
}

at::Tensor snap_to_segment_ends(const at::Tensor& token_rewards, const at::Tensor& mask) {
  TORCH_CHECK(mask.dim() == 2 && token_rewards.dim() == 2 && token_rewards.size(0) == mask.size(0),
              "snap_to_segment_ends: token rewards [N, T'] and mask [N, T] expected, got ", token_rewards.sizes(),
              " and ", mask.sizes());
  const int64_t n = mask.size(0), t = mask.size(1);
  auto tr = token_rewards.to(torch::kFloat).contiguous();
  if (tr.size(1) > t) {
    TORCH_CHECK(tr.slice(1, t).abs().sum().item<double>() == 0, "snap_to_segment_ends: dense rewards beyond the ",
                t, " response tokens");
    tr = tr.slice(1, 0, t).contiguous();
  } else if (tr.size(1) < t) {
    tr = torch::cat({tr, torch::zeros({n, t - tr.size(1)}, torch::kFloat)}, 1);
  }
  const auto m = mask.to(torch::kBool).contiguous();
  auto out = torch::zeros({n, t}, torch::kFloat);
  const auto ra = tr.accessor<float, 2>();
  const auto ma = m.accessor<bool, 2>();
  auto oa = out.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t prev = -1;   // last kept token so far
    float pending = 0;   // a leading hole's rewards, for the first kept token
    for (int64_t j = 0; j < t; ++j) {
      if (ma[i][j]) {
        prev = j;
        oa[i][j] += ra[i][j] + pending;
        pending = 0;
      } else if (prev >= 0) {
        oa[i][prev] += ra[i][j];
      } else {
        pending += ra[i][j];
      }
    }
    TORCH_CHECK(prev >= 0 || pending == 0, "snap_to_segment_ends: row ", i,
                " has dense rewards but no response token");
  }
  return out;
}

}  // namespace keel::credit
