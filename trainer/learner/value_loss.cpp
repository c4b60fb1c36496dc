// Clipped value loss (spec §1.3). See value_loss.h.
#include "trainer/learner/value_loss.h"

namespace keel::learner {

LossOutput value_loss(const ValueLossInputs& in, const ValueLossOptions& opts) {
  TORCH_CHECK(in.values.dim() == 2, "value_loss: values must be [N, T], got ", in.values.sizes());
  TORCH_CHECK(in.values_old.sizes() == in.values.sizes() && in.returns.sizes() == in.values.sizes() &&
                  in.response_mask.sizes() == in.values.sizes(),
              "value_loss: values ", in.values.sizes(), ", values_old ", in.values_old.sizes(), ", returns ",
              in.returns.sizes(), ", response_mask ", in.response_mask.sizes(), " must all be the same [N, T]");
  const torch::Tensor v_old = in.values_old.detach();
  const torch::Tensor ret = in.returns.detach();
  const torch::Tensor l1 = (in.values - ret).pow(2);  // [N, T]
  torch::Tensor per_token = l1;
  torch::Tensor clipped_more;
  if (opts.clip > 0) {
    const torch::Tensor vclip = torch::max(torch::min(in.values, v_old + opts.clip), v_old - opts.clip);
    const torch::Tensor l2 = (vclip - ret).pow(2);
    per_token = torch::maximum(l1, l2);
    clipped_more = l2 > l1;
  }
  LossOutput out;
  out.loss = 0.5 * agg_loss(per_token, in.response_mask, opts.agg, in.agg);
  out.metrics["critic/vf_loss"] = out.loss.item<double>();
  out.metrics["critic/vf_clipfrac"] =
      clipped_more.defined() ? masked_mean_value(clipped_more, in.response_mask) : 0.0;
  out.metrics["critic/vpred_mean"] = masked_mean_value(in.values, in.response_mask);
  return out;
}

}  // namespace keel::learner
