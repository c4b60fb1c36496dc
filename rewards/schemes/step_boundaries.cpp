// Step boundaries and placement (see step_boundaries.h).
#include "rewards/schemes/step_boundaries.h"

#include <torch/torch.h>

#include "base/error.h"
#include "base/reader.h"

namespace keel::rewards {

namespace {

void check_pair(const at::Tensor& ids, const at::Tensor& mask, const char* fn) {
  TORCH_CHECK(ids.dim() == 2 && mask.sizes() == ids.sizes(), fn, ": token ids ", ids.sizes(), " and response_mask ",
              mask.sizes(), " must both be [N, T]");
}

// x shifted left by one along T (x[:, t+1]), padded with `fill`.
at::Tensor next_of(const at::Tensor& x, bool fill) {
  const at::Tensor pad = torch::full({x.size(0), 1}, fill, x.options());
  return torch::cat({x.slice(1, 1), pad}, 1);
}

}  // namespace

at::Tensor step_ends_from_delimiters(const at::Tensor& token_ids, const at::Tensor& response_mask,
                                     const std::vector<int64_t>& delimiter_ids) {
  check_pair(token_ids, response_mask, "step_ends_from_delimiters");
  const at::Tensor mask = response_mask.to(torch::kBool);
  at::Tensor delim = torch::zeros_like(mask);
  for (int64_t d : delimiter_ids) delim = delim.logical_or(token_ids == d);
  delim = delim.logical_and(mask);
  const at::Tensor content = mask.logical_and(delim.logical_not());
  const at::Tensor seen_content = content.to(torch::kLong).cumsum(1) > 0;
  // End of a delimiter run that follows content.
  const at::Tensor run_end = delim.logical_and(next_of(delim, false).logical_not()).logical_and(seen_content);
  // Trailing content: a content token whose next token is not a valid token.
  const at::Tensor tail = content.logical_and(next_of(mask, false).logical_not());
  return run_end.logical_or(tail);
}

at::Tensor step_ends_from_tag(const at::Tensor& token_ids, const at::Tensor& response_mask, int64_t tag_id) {
  check_pair(token_ids, response_mask, "step_ends_from_tag");
  return (token_ids == tag_id).logical_and(response_mask.to(torch::kBool));
}

at::Tensor step_ends_from_turn_ids(const at::Tensor& turn_ids, const at::Tensor& response_mask) {
  check_pair(turn_ids, response_mask, "step_ends_from_turn_ids");
  const at::Tensor valid = response_mask.to(torch::kBool).logical_and(turn_ids >= 0);
  const at::Tensor next_ids = torch::cat({turn_ids.slice(1, 1), torch::full({turn_ids.size(0), 1}, -1, turn_ids.options())}, 1);
  const at::Tensor next_valid = next_of(valid, false);
  return valid.logical_and(next_valid.logical_not().logical_or(next_ids != turn_ids));
}

at::Tensor step_ends_with_fallback(const at::Tensor& step_ends, const at::Tensor& response_mask) {
  const at::Tensor mask = response_mask.to(torch::kBool);
  const at::Tensor none = step_ends.any(1).logical_not().logical_and(mask.any(1));  // [N]
  const at::Tensor last_valid = mask.logical_and(next_of(mask, false).logical_not());
  // Keep only the last one if the mask has gaps: the largest index.
  const at::Tensor idx = torch::arange(mask.size(1), torch::kLong).expand_as(mask);
  const at::Tensor last = idx.masked_fill(last_valid.logical_not(), -1).amax(1, true);
  const at::Tensor fallback = (idx == last).logical_and(none.unsqueeze(1));
  return step_ends.to(torch::kBool).logical_or(fallback);
}

at::Tensor find_step_ends(const at::Tensor& token_ids, const at::Tensor& response_mask, const StepBoundaryOptions& o) {
  at::Tensor ends;
  if (o.mode == "delimiter") ends = step_ends_from_delimiters(token_ids, response_mask, o.delimiter_ids);
  else if (o.mode == "tag") ends = step_ends_from_tag(token_ids, response_mask, o.tag_id);
  else if (o.mode == "turns") ends = step_ends_from_turn_ids(token_ids, response_mask);
  else fail("unknown step boundary mode '{}' (known: delimiter, tag, turns)", o.mode);
  return step_ends_with_fallback(ends, response_mask);
}

namespace {

// (row, position, step index) of every step end.
std::tuple<at::Tensor, at::Tensor, at::Tensor, int64_t> step_coords(const at::Tensor& step_ends) {
  TORCH_CHECK(step_ends.dim() == 2, "step_ends must be [N, T], got ", step_ends.sizes());
  const at::Tensor e = step_ends.to(torch::kBool);
  const at::Tensor step_idx = e.to(torch::kLong).cumsum(1) - 1;
  const at::Tensor nz = e.nonzero();  // [E, 2]
  const at::Tensor rows = nz.select(1, 0), cols = nz.select(1, 1);
  const int64_t s = e.numel() == 0 ? 0 : e.sum(1).max().item<int64_t>();
  return {rows, cols, step_idx.index({rows, cols}), s};
}

}  // namespace

std::pair<at::Tensor, at::Tensor> gather_at_step_ends(const at::Tensor& values, const at::Tensor& step_ends) {
  TORCH_CHECK(values.sizes() == step_ends.sizes(), "gather_at_step_ends: values ", values.sizes(), " != step_ends ",
              step_ends.sizes());
  auto [rows, cols, steps, s] = step_coords(step_ends);
  at::Tensor out = torch::zeros({values.size(0), s}, values.options());
  at::Tensor mask = torch::zeros({values.size(0), s}, values.options().dtype(torch::kBool));
  out.index_put_({rows, steps}, values.index({rows, cols}));
  mask.index_put_({rows, steps}, torch::ones({rows.size(0)}, mask.options()));
  return {out, mask};
}

at::Tensor scatter_to_step_ends(const at::Tensor& step_values, const at::Tensor& step_mask, const at::Tensor& step_ends) {
  auto [rows, cols, steps, s] = step_coords(step_ends);
  TORCH_CHECK(step_values.dim() == 2 && step_values.size(0) == step_ends.size(0) && step_values.size(1) >= s,
              "scatter_to_step_ends: step_values ", step_values.sizes(), " must be [N, >= ", s, "] for step_ends ",
              step_ends.sizes());
  const at::Tensor v = step_mask.defined() ? step_values.masked_fill(step_mask.to(torch::kBool).logical_not(), 0.0)
                                           : step_values;
  at::Tensor out = torch::zeros(step_ends.sizes(), step_values.options());
  out.index_put_({rows, cols}, v.index({rows, steps}));
  return out;
}

at::Tensor add_on_last_step(const at::Tensor& per_step, const at::Tensor& step_mask, const at::Tensor& value) {
  TORCH_CHECK(per_step.dim() == 2 && step_mask.sizes() == per_step.sizes() && value.dim() == 1 &&
                  value.size(0) == per_step.size(0),
              "add_on_last_step: per_step ", per_step.sizes(), ", step_mask ", step_mask.sizes(), ", value ",
              value.sizes(), " mismatch");
  const at::Tensor m = step_mask.to(torch::kBool);
  const at::Tensor idx = torch::arange(per_step.size(1), torch::kLong).expand_as(m);
  const at::Tensor last = idx.masked_fill(m.logical_not(), -1).amax(1);
  const at::Tensor has = (last >= 0).to(per_step.scalar_type());
  return per_step.scatter_add(1, last.clamp_min(0).unsqueeze(1), (value.to(per_step.scalar_type()) * has).unsqueeze(1));
}

void read_step_boundary_options(config::Reader& r, StepBoundaryOptions& o) {
  r.field("mode", o.mode, "how step ends are found").one_of({"delimiter", "tag", "turns"}, "step boundary mode");
  r.field("delimiter_ids", o.delimiter_ids, "token ids that delimit steps (mode delimiter)").ge(0);
  r.field("tag_id", o.tag_id, "step tag token id (mode tag)").ge(-1);
  if (o.mode == "delimiter" && o.delimiter_ids.empty()) r.error("delimiter_ids", "mode delimiter needs at least one id");
  if (o.mode == "tag" && o.tag_id < 0) r.error("tag_id", "mode tag needs the tag token id");
}

}  // namespace keel::rewards
